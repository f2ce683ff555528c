import { describe, expect, it } from 'vitest';
import { ICONS, KIND_ICON, kindIcon } from './icons';
import { KINDS } from './ipc';

describe('kind icons', () => {
  it('every known kind has a drawn icon', () => {
    for (const kind of KINDS) expect(ICONS[KIND_ICON[kind]]).toBeDefined();
  });

  it('a system notice follows its level', () => {
    expect(kindIcon('system-notification', { level: 'error' })).toBe('critical');
    expect(kindIcon('system-notification', { level: 'warning' })).toBe('warning');
    expect(kindIcon('system-notification', { level: 'info' })).toBe('info');
  });

  it('a kind from a newer gateway is a system notice whose level is its urgency', () => {
    expect(kindIcon('unknown', {}, 'critical')).toBe('critical');
    expect(kindIcon('unknown', {}, 'high')).toBe('warning');
    expect(kindIcon('unknown', {}, 'normal')).toBe('info');
    expect(kindIcon('unknown', {})).toBe('info');
  });
});
