import { describe, expect, it } from 'vitest';
import type { Snapshot } from './ipc';
import {
  applyNavigation,
  applySnapshot,
  closePreferences,
  concernsTab,
  focusDone,
  initialViewState,
  isNewer,
  openPreferences,
  selectTab,
  shownView,
} from './view';

function snap(signed_in: boolean): Snapshot {
  return {
    revision: 1,
    signed_in,
    account: null,
    connection: signed_in
      ? { state: 'connected', since: '2026-11-26T08:00:00Z', tenant: 'Cabinet' }
      : { state: 'signed_out', reason: '' },
    unread: { emails: 0, dossiers: 0, deadlines: 0, proposals: 0, system: 0 },
    unread_total: 0,
    pending_actions: 0,
    notifications: { available: true, problem: null },
    secret_store: { persistent: true, warning: null },
    locale: 'fr',
    paused_until: null,
    critical_pending: false,
    unacknowledged_critical: 0,
  };
}

describe('shownView', () => {
  it('is loading before the first snapshot', () => {
    expect(shownView(initialViewState(), null)).toBe('loading');
  });
  it('signed out always shows the sign-in form, even if preferences were asked', () => {
    expect(shownView(openPreferences(initialViewState()), snap(false))).toBe('signin');
  });
  it('signed in shows what was asked', () => {
    const s = initialViewState();
    expect(shownView(s, snap(true))).toBe('inbox');
    expect(shownView(openPreferences(s), snap(true))).toBe('preferences');
    expect(shownView(closePreferences(openPreferences(s)), snap(true))).toBe('inbox');
  });
});

describe('applyNavigation', () => {
  it('null (nothing pending from take_navigation) changes nothing', () => {
    const s = initialViewState();
    expect(applyNavigation(s, null)).toBe(s);
  });
  it('inbox with a tab and an item switches tab and asks to focus the item', () => {
    const s = applyNavigation(openPreferences(initialViewState()), { view: 'inbox', tab: 'deadlines', item_id: 'n-7' });
    expect(s).toEqual({ requested: 'inbox', tab: 'deadlines', focusItem: 'n-7' });
  });
  it('inbox without a tab keeps the current tab', () => {
    const s = applyNavigation(selectTab(initialViewState(), 'system'), { view: 'inbox', tab: null, item_id: null });
    expect(s.tab).toBe('system');
    expect(s.focusItem).toBeNull();
  });
  it('an unknown tab is ignored', () => {
    const s = applyNavigation(initialViewState(), { view: 'inbox', tab: 'bogus' as never, item_id: null });
    expect(s.tab).toBe('emails');
  });
  it('preferences opens the preferences', () => {
    const s = applyNavigation(initialViewState(), { view: 'preferences', tab: null, item_id: null });
    expect(shownView(s, snap(true))).toBe('preferences');
  });
  it('signin while signed in lands in the inbox; signed out it is the sign-in form', () => {
    const s = applyNavigation(openPreferences(initialViewState()), { view: 'signin', tab: null, item_id: null });
    expect(shownView(s, snap(true))).toBe('inbox');
    expect(shownView(s, snap(false))).toBe('signin');
  });
});

describe('applySnapshot', () => {
  it('signing out forgets preferences and the pending focus', () => {
    let s = applyNavigation(initialViewState(), { view: 'inbox', tab: 'proposals', item_id: 'x' });
    s = openPreferences(s);
    const after = applySnapshot(s, snap(true), snap(false));
    expect(after.requested).toBe('inbox');
    expect(after.focusItem).toBeNull();
    expect(after.tab).toBe('proposals');
  });
  it('other snapshots leave the view alone', () => {
    const s = openPreferences(initialViewState());
    expect(applySnapshot(s, snap(true), snap(true))).toBe(s);
    expect(applySnapshot(s, null, snap(true))).toBe(s);
  });
});

describe('isNewer', () => {
  it('an older snapshot (a command reply after newer state events) does not win', () => {
    const older = { ...snap(true), revision: 4 };
    const newer = { ...snap(true), revision: 5 };
    expect(isNewer(null, older)).toBe(true);
    expect(isNewer(older, newer)).toBe(true);
    expect(isNewer(newer, older)).toBe(false);
    expect(isNewer(newer, { ...newer })).toBe(true);
  });
});

describe('tab moves', () => {
  it('selecting another tab drops a pending focus; the same tab is a no-op', () => {
    const s = applyNavigation(initialViewState(), { view: 'inbox', tab: 'emails', item_id: 'n-1' });
    expect(selectTab(s, 'emails')).toBe(s);
    expect(selectTab(s, 'system')).toEqual({ requested: 'inbox', tab: 'system', focusItem: null });
  });
  it('focusDone clears the item to focus', () => {
    const s = applyNavigation(initialViewState(), { view: 'inbox', tab: 'emails', item_id: 'n-1' });
    expect(focusDone(s).focusItem).toBeNull();
  });
  it('concernsTab tells whether an items-changed touches the visible tab', () => {
    expect(concernsTab(['emails', 'system'], 'system')).toBe(true);
    expect(concernsTab(['emails'], 'deadlines')).toBe(false);
    expect(concernsTab([], 'emails')).toBe(false);
  });
});
