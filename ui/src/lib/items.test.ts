import { describe, expect, it } from 'vitest';
import { appendPage, markReadLocally, mayHaveMore, nextCursor, PAGE_SIZE, refetchLimit, urgencyBadge } from './items';
import { makeItem } from './test-fixtures';

describe('pages', () => {
  it('appendPage keeps order and drops ids already listed', () => {
    const a = [makeItem({ id: '1' }), makeItem({ id: '2' })];
    const page = [makeItem({ id: '2' }), makeItem({ id: '3' })];
    expect(appendPage(a, page).map((i) => i.id)).toEqual(['1', '2', '3']);
  });
  it('the next cursor is the last id, none when empty', () => {
    expect(nextCursor([makeItem({ id: 'a' }), makeItem({ id: 'b' })])).toBe('b');
    expect(nextCursor([])).toBeNull();
  });
  it('more pages only after a full page, never for deadlines', () => {
    expect(mayHaveMore('emails', PAGE_SIZE, PAGE_SIZE)).toBe(true);
    expect(mayHaveMore('emails', PAGE_SIZE - 1, PAGE_SIZE)).toBe(false);
    expect(mayHaveMore('deadlines', PAGE_SIZE, PAGE_SIZE)).toBe(false);
  });
  it('a re-fetch asks for at least a page, or as many as shown', () => {
    expect(refetchLimit(3)).toBe(PAGE_SIZE);
    expect(refetchLimit(120)).toBe(120);
  });
});

describe('markReadLocally', () => {
  const items = [makeItem({ id: '1' }), makeItem({ id: '2' }), makeItem({ id: '3', read: true })];
  it('marks only the given ids', () => {
    expect(markReadLocally(items, ['2']).map((i) => i.read)).toEqual([false, true, true]);
  });
  it("'all' marks everything", () => {
    expect(markReadLocally(items, 'all').every((i) => i.read)).toBe(true);
  });
  it('does not mutate and keeps untouched items identical', () => {
    const out = markReadLocally(items, ['1']);
    expect(items[0].read).toBe(false);
    expect(out[2]).toBe(items[2]);
  });
});

describe('urgencyBadge', () => {
  it('shows high and critical items, not normal or low ones', () => {
    expect(urgencyBadge(makeItem({ id: '1', urgency: 'critical' }))).toEqual({ tone: 'critical', label: 'urgency.critical' });
    expect(urgencyBadge(makeItem({ id: '1', urgency: 'high' }))).toEqual({ tone: 'high', label: 'urgency.high' });
    expect(urgencyBadge(makeItem({ id: '1', urgency: 'normal' }))).toBeNull();
    expect(urgencyBadge(makeItem({ id: '1', urgency: 'low' }))).toBeNull();
  });
  it('deadlines use their own scale, always shown', () => {
    const d = (urgency: 'info' | 'warning' | 'urgent' | 'critical') =>
      urgencyBadge(
        makeItem({
          id: 'd',
          kind: 'deadline-alert',
          tab: 'deadlines',
          urgency: 'normal',
          deadline: { due_at: '2026-11-28T16:00:00Z', urgency, remaining_days: 2, deadline_type: 'appel' },
        }),
      );
    expect(d('urgent')).toEqual({ tone: 'high', label: 'deadline.urgency.urgent' });
    expect(d('critical')).toEqual({ tone: 'critical', label: 'deadline.urgency.critical' });
    expect(d('warning')).toEqual({ tone: 'warning', label: 'deadline.urgency.warning' });
    expect(d('info')).toEqual({ tone: 'info', label: 'deadline.urgency.info' });
  });
});
