// Which view the panel shows, and where: a pure reducer over the snapshot, the
// `navigate` event / `take_navigation`, and the user's own moves (tab, gear, back).
// Signed out always shows the sign-in form; signed in shows the inbox or preferences.

import type { Navigation, Snapshot, Tab } from './ipc';
import { isTab } from './tabs';

export type ShownView = 'loading' | 'signin' | 'inbox' | 'preferences';

export interface ViewState {
  /** What the user (or a navigate) asked for when signed in. */
  requested: 'inbox' | 'preferences';
  tab: Tab;
  /** An item to scroll to and focus once the tab's list shows it (from navigate). */
  focusItem: string | null;
}

export function initialViewState(): ViewState {
  return { requested: 'inbox', tab: 'emails', focusItem: null };
}

export function shownView(state: ViewState, snapshot: Snapshot | null): ShownView {
  if (!snapshot) return 'loading';
  if (!snapshot.signed_in) return 'signin';
  return state.requested;
}

/** True when `next` should replace `current`: snapshots can arrive out of order (a
 *  command's reply after newer `state` events), and an older one must not win. */
export function isNewer(current: Snapshot | null, next: Snapshot): boolean {
  return current === null || next.revision >= current.revision;
}

/** A new snapshot: signing out forgets preferences, so signing in again lands in the inbox. */
export function applySnapshot(state: ViewState, previous: Snapshot | null, next: Snapshot): ViewState {
  if (previous?.signed_in && !next.signed_in) return { ...state, requested: 'inbox', focusItem: null };
  return state;
}

/** A navigate payload (event or take_navigation); null leaves the view as it is. */
export function applyNavigation(state: ViewState, nav: Navigation | null): ViewState {
  if (!nav) return state;
  const tab = isTab(nav.tab) ? nav.tab : state.tab;
  switch (nav.view) {
    case 'preferences':
      return { ...state, requested: 'preferences', focusItem: null };
    case 'inbox':
      return { requested: 'inbox', tab, focusItem: nav.item_id };
    case 'signin':
      // The form shows by itself while signed out; signed in, the inbox is the nearest.
      return { ...state, requested: 'inbox', focusItem: null };
    default:
      return state;
  }
}

export function selectTab(state: ViewState, tab: Tab): ViewState {
  return state.tab === tab ? state : { ...state, tab, focusItem: null };
}

export function openPreferences(state: ViewState): ViewState {
  return { ...state, requested: 'preferences', focusItem: null };
}

export function closePreferences(state: ViewState): ViewState {
  return { ...state, requested: 'inbox' };
}

export function focusDone(state: ViewState): ViewState {
  return state.focusItem === null ? state : { ...state, focusItem: null };
}

/** Whether an items-changed event concerns the tab on screen. */
export function concernsTab(changed: readonly Tab[], visible: Tab): boolean {
  return changed.includes(visible);
}
