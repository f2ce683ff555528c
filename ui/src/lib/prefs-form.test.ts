import { describe, expect, it } from 'vitest';
import type { Preferences } from './ipc';
import { formFromPrefs, normalizeTime, prefsFromForm } from './prefs-form';

const prefs: Preferences = {
  enabled_kinds: { 'conversation-message': false },
  quiet_hours: { start: '22:00', end: '07:00' },
  critical_breaks_through_quiet_hours: true,
  autostart: false,
  language: 'en',
};

describe('formFromPrefs', () => {
  it('an absent kind is on, an explicit false is off', () => {
    const f = formFromPrefs(prefs);
    expect(f.kinds['email-received']).toBe(true);
    expect(f.kinds['conversation-message']).toBe(false);
    expect(Object.keys(f.kinds)).toHaveLength(7);
  });
  it('no quiet hours: off, with default times ready', () => {
    const f = formFromPrefs({ ...prefs, quiet_hours: null });
    expect(f.quietEnabled).toBe(false);
    expect([f.quietStart, f.quietEnd]).toEqual(['22:00', '07:00']);
  });
});

describe('prefsFromForm', () => {
  it('round-trips, writing every kind explicitly', () => {
    const out = prefsFromForm(formFromPrefs(prefs))!;
    expect(out.quiet_hours).toEqual({ start: '22:00', end: '07:00' });
    expect(out.enabled_kinds['conversation-message']).toBe(false);
    expect(out.enabled_kinds['deadline-alert']).toBe(true);
    expect(out.language).toBe('en');
    expect(out.critical_breaks_through_quiet_hours).toBe(true);
  });
  it('quiet hours off are sent as null, whatever the times say', () => {
    const f = { ...formFromPrefs(prefs), quietEnabled: false, quietStart: '' };
    expect(prefsFromForm(f)!.quiet_hours).toBeNull();
  });
  it('quiet hours on need two valid times', () => {
    expect(prefsFromForm({ ...formFromPrefs(prefs), quietEnd: '' })).toBeNull();
    expect(prefsFromForm({ ...formFromPrefs(prefs), quietStart: '7:30:00' })!.quiet_hours).toEqual({ start: '07:30', end: '07:00' });
  });
});

describe('normalizeTime', () => {
  it('accepts HH:MM with optional seconds, rejects the rest', () => {
    expect(normalizeTime('22:00')).toBe('22:00');
    expect(normalizeTime('7:05')).toBe('07:05');
    expect(normalizeTime('07:05:00')).toBe('07:05');
    expect(normalizeTime('24:00')).toBeNull();
    expect(normalizeTime('12:60')).toBeNull();
    expect(normalizeTime('')).toBeNull();
  });
});
