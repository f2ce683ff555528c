import { describe, expect, it } from 'vitest';
import { announcement } from './live';

describe('announcement', () => {
  it('says nothing for nothing', () => {
    expect(announcement('fr', [])).toBe('');
  });
  it('names a single new item', () => {
    expect(announcement('fr', [{ title: 'Nouveau mail — 2026-0142' }])).toBe('Nouveau : Nouveau mail — 2026-0142');
    expect(announcement('en', [{ title: 'Deadline' }])).toBe('New: Deadline');
  });
  it('counts several and names the first three', () => {
    const items = ['A', 'B', 'C', 'D'].map((title) => ({ title }));
    expect(announcement('fr', items)).toBe('4 nouvelles notifications : A, B, C, …');
    expect(announcement('en', items.slice(0, 2))).toBe('2 new notifications: A, B');
  });
});
