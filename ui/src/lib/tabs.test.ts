import { describe, expect, it } from 'vitest';
import { isTab, nextTab, tabKeyTarget } from './tabs';

describe('tabKeyTarget', () => {
  it('Right and Left move by one and wrap around', () => {
    expect(tabKeyTarget('ArrowRight', 0, 5)).toBe(1);
    expect(tabKeyTarget('ArrowRight', 4, 5)).toBe(0);
    expect(tabKeyTarget('ArrowLeft', 2, 5)).toBe(1);
    expect(tabKeyTarget('ArrowLeft', 0, 5)).toBe(4);
  });
  it('Home and End jump to the ends', () => {
    expect(tabKeyTarget('Home', 3, 5)).toBe(0);
    expect(tabKeyTarget('End', 1, 5)).toBe(4);
  });
  it('other keys do nothing', () => {
    expect(tabKeyTarget('ArrowDown', 1, 5)).toBeNull();
    expect(tabKeyTarget('Enter', 1, 5)).toBeNull();
    expect(tabKeyTarget('a', 1, 5)).toBeNull();
  });
  it('no tabs, no target', () => {
    expect(tabKeyTarget('ArrowRight', 0, 0)).toBeNull();
  });
});

describe('nextTab', () => {
  it('follows the contract order emails → system', () => {
    expect(nextTab('ArrowRight', 'emails')).toBe('dossiers');
    expect(nextTab('ArrowRight', 'system')).toBe('emails');
    expect(nextTab('ArrowLeft', 'emails')).toBe('system');
    expect(nextTab('End', 'dossiers')).toBe('system');
    expect(nextTab('Home', 'proposals')).toBe('emails');
    expect(nextTab('Tab', 'proposals')).toBeNull();
  });
});

describe('isTab', () => {
  it('accepts only the five tabs', () => {
    expect(isTab('deadlines')).toBe(true);
    expect(isTab('inbox')).toBe(false);
    expect(isTab(null)).toBe(false);
  });
});
