// The tabs' order and the WAI-ARIA tabs keyboard pattern as a pure function
// (Left/Right wrap around, Home/End jump; the tab moved to is also activated).

import { TABS, type Tab } from './ipc';

/** The index a key moves the focus to from `index` among `count` tabs, or null if none. */
export function tabKeyTarget(key: string, index: number, count: number): number | null {
  if (count <= 0) return null;
  switch (key) {
    case 'ArrowRight':
      return (index + 1) % count;
    case 'ArrowLeft':
      return (index - 1 + count) % count;
    case 'Home':
      return 0;
    case 'End':
      return count - 1;
    default:
      return null;
  }
}

/** The tab a key moves to from `tab`, or null when the key is not a tab key. */
export function nextTab(key: string, tab: Tab): Tab | null {
  const target = tabKeyTarget(key, TABS.indexOf(tab), TABS.length);
  return target === null ? null : TABS[target];
}

export function isTab(value: unknown): value is Tab {
  return typeof value === 'string' && (TABS as readonly string[]).includes(value);
}
