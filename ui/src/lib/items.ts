// The visible tab's list between fetches: pages (list_items' `before`), re-fetch sizes,
// local read marks, and the urgency badge an item shows (icon + words, never colour alone).

import type { Item, Tab } from './ipc';
import type { Key } from './i18n';

export const PAGE_SIZE = 50;

/** Appends a next page, dropping ids already listed. */
export function appendPage(items: readonly Item[], page: readonly Item[]): Item[] {
  const seen = new Set(items.map((i) => i.id));
  return [...items, ...page.filter((i) => !seen.has(i.id))];
}

/** Whether "show more" makes sense: a full page came back (deadlines come in one list). */
export function mayHaveMore(tab: Tab, lastPageLength: number, limit: number): boolean {
  return tab !== 'deadlines' && lastPageLength >= limit;
}

/** How many to ask for when re-fetching, so the pages already shown stay shown. */
export function refetchLimit(shown: number): number {
  return Math.max(PAGE_SIZE, shown);
}

/** The `before` cursor for the next page: the last item's id. */
export function nextCursor(items: readonly Item[]): string | null {
  return items.length ? items[items.length - 1].id : null;
}

export function markReadLocally(items: readonly Item[], ids: readonly string[] | 'all'): Item[] {
  const wanted = ids === 'all' ? null : new Set(ids);
  return items.map((i) => (!i.read && (!wanted || wanted.has(i.id)) ? { ...i, read: true } : i));
}

export type Tone = 'critical' | 'high' | 'warning' | 'info';

export interface UrgencyBadge {
  tone: Tone;
  label: Key;
}

/** The badge: deadlines by their own scale (always shown), others only when high or critical. */
export function urgencyBadge(item: Item): UrgencyBadge | null {
  if (item.deadline) {
    const u = item.deadline.urgency;
    const tone: Tone = u === 'critical' ? 'critical' : u === 'urgent' ? 'high' : u;
    return { tone, label: `deadline.urgency.${u}` };
  }
  if (item.urgency === 'critical') return { tone: 'critical', label: 'urgency.critical' };
  if (item.urgency === 'high') return { tone: 'high', label: 'urgency.high' };
  return null;
}
