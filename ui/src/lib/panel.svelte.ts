// The panel's live state, wired to the shell: the snapshot (from `snapshot` then `state`
// events), the view (view.ts), the visible tab's list (items.ts; the Deadlines tab lists
// one row per deadline instead, deadlines.ts), the proposal and Acknowledge buttons
// (proposals.ts, deadlines.ts) and the live-region text. Components read it and call
// its methods.

import {
  TABS,
  commands,
  on,
  toAppError,
  type ActionResult,
  type AppError,
  type DeadlineRow,
  type Item,
  type ProposalResponse,
  type Snapshot,
  type Tab,
  type Unlisten,
} from './ipc';
import { appendPage, markReadLocally, mayHaveMore, nextCursor, PAGE_SIZE, refetchLimit } from './items';
import { announcement } from './live';
import { markRowsReadLocally, reduceAcks, type AckEvent, type AcksUi } from './deadlines';
import { setLocale, ui } from './locale.svelte';
import { reduceProposals, type ProposalEvent, type ProposalsUi } from './proposals';
import * as views from './view';

export interface TabList {
  items: Item[];
  loaded: boolean;
  loading: boolean;
  error: AppError | null;
  more: boolean;
}

/** The Deadlines tab's rows (`list_deadlines`: one list, no pages). */
export interface DeadlineList {
  rows: DeadlineRow[];
  loaded: boolean;
  loading: boolean;
  error: AppError | null;
}

function emptyDeadlines(): DeadlineList {
  return { rows: [], loaded: false, loading: false, error: null };
}

/** As many rows as the shell gives at once. */
const DEADLINE_ROWS = 200;

function emptyLists(): Record<Tab, TabList> {
  return Object.fromEntries(
    TABS.map((t) => [t, { items: [], loaded: false, loading: false, error: null, more: false }]),
  ) as unknown as Record<Tab, TabList>;
}

export class Panel {
  snapshot = $state<Snapshot | null>(null);
  startError = $state<AppError | null>(null);
  view = $state<views.ViewState>(views.initialViewState());
  lists = $state<Record<Tab, TabList>>(emptyLists());
  deadlines = $state<DeadlineList>(emptyDeadlines());
  proposals = $state<ProposalsUi>({});
  acks = $state<AcksUi>({});
  /** Why "Open" failed, per item id (cleared by the next try). */
  linkErrors = $state<Record<string, AppError>>({});
  liveText = $state('');
  /** Set when leaving preferences, so the inbox gives focus back to the gear button. */
  returnFocusToGear = $state(false);

  shown = $derived(views.shownView(this.view, this.snapshot));

  private seq: Record<Tab, number> = { emails: 0, dossiers: 0, deadlines: 0, proposals: 0, system: 0 };
  private unlisten: Unlisten[] = [];

  /** Load: listen first (nothing is missed), then `snapshot`, then `take_navigation`. */
  async start(): Promise<void> {
    this.startError = null;
    try {
      if (this.unlisten.length === 0) {
        this.unlisten = await Promise.all([
          on('state', (s) => this.applySnapshot(s)),
          on('items-changed', ({ tabs }) => this.itemsChanged(tabs)),
          on('new-items', ({ items }) => this.announce(items)),
          on('action-result', (result) => this.actionResult(result)),
          on('navigate', (nav) => this.navigate(nav)),
        ]);
      }
      this.applySnapshot(await commands.snapshot());
      this.navigate(await commands.takeNavigation());
      if (this.shown === 'inbox') void this.fetchTab(this.view.tab);
    } catch (e) {
      this.startError = toAppError(e);
    }
  }

  stop(): void {
    for (const u of this.unlisten) u();
    this.unlisten = [];
  }

  applySnapshot(next: Snapshot): void {
    const previous = this.snapshot;
    if (!views.isNewer(previous, next)) return;
    this.view = views.applySnapshot(this.view, previous, next);
    this.snapshot = next;
    setLocale(next.locale);
    if (previous?.signed_in && !next.signed_in) {
      this.lists = emptyLists();
      this.deadlines = emptyDeadlines();
      this.proposals = {};
      this.acks = {};
    }
    if (previous && !previous.signed_in && next.signed_in) void this.fetchTab(this.view.tab);
  }

  navigate(nav: Parameters<typeof views.applyNavigation>[1]): void {
    if (!nav) return;
    const before = this.view.tab;
    this.view = views.applyNavigation(this.view, nav);
    if (this.shown === 'inbox' && (this.view.tab !== before || this.view.focusItem)) {
      void this.fetchTab(this.view.tab);
    }
  }

  // ---- the user's moves ----

  selectTab(tab: Tab): void {
    this.view = views.selectTab(this.view, tab);
    void this.fetchTab(tab);
  }

  openPreferences(): void {
    this.view = views.openPreferences(this.view);
  }

  closePreferences(): void {
    this.view = views.closePreferences(this.view);
    this.returnFocusToGear = true;
    void this.fetchTab(this.view.tab);
  }

  focusDone(): void {
    this.view = views.focusDone(this.view);
  }

  // ---- the list ----

  async fetchTab(tab: Tab): Promise<void> {
    if (tab === 'deadlines') return this.fetchDeadlines();
    const list = this.lists[tab];
    const seq = ++this.seq[tab];
    const limit = refetchLimit(list.items.length);
    list.loading = true;
    try {
      const items = await commands.listItems(tab, limit, null);
      if (seq !== this.seq[tab]) return;
      list.items = items;
      list.more = mayHaveMore(tab, items.length, limit);
      list.error = null;
      list.loaded = true;
    } catch (e) {
      if (seq === this.seq[tab]) list.error = toAppError(e);
    } finally {
      if (seq === this.seq[tab]) list.loading = false;
    }
  }

  async fetchDeadlines(): Promise<void> {
    const list = this.deadlines;
    const seq = ++this.seq.deadlines;
    list.loading = true;
    try {
      const rows = await commands.listDeadlines(DEADLINE_ROWS);
      if (seq !== this.seq.deadlines) return;
      list.rows = rows;
      list.error = null;
      list.loaded = true;
      this.ackEvent({ type: 'rows', rows });
    } catch (e) {
      if (seq === this.seq.deadlines) list.error = toAppError(e);
    } finally {
      if (seq === this.seq.deadlines) list.loading = false;
    }
  }

  async loadMore(tab: Tab): Promise<void> {
    const list = this.lists[tab];
    const seq = ++this.seq[tab];
    list.loading = true;
    try {
      const page = await commands.listItems(tab, PAGE_SIZE, nextCursor(list.items));
      if (seq !== this.seq[tab]) return;
      list.items = appendPage(list.items, page);
      list.more = mayHaveMore(tab, page.length, PAGE_SIZE);
    } catch (e) {
      if (seq === this.seq[tab]) list.error = toAppError(e);
    } finally {
      if (seq === this.seq[tab]) list.loading = false;
    }
  }

  private itemsChanged(tabs: Tab[]): void {
    if (this.shown === 'inbox' && views.concernsTab(tabs, this.view.tab)) void this.fetchTab(this.view.tab);
    // The other tabs are fetched afresh when selected (selectTab always re-fetches).
  }

  async markRead(item: Item): Promise<void> {
    const list = this.lists[item.tab];
    list.items = markReadLocally(list.items, [item.id]);
    try {
      await commands.markRead([item.id]);
    } catch (e) {
      list.error = toAppError(e);
      void this.fetchTab(item.tab);
    }
  }

  async markAllRead(tab: Tab): Promise<void> {
    const list = this.lists[tab];
    list.items = markReadLocally(list.items, 'all');
    if (tab === 'deadlines') this.deadlines.rows = markRowsReadLocally(this.deadlines.rows, 'all');
    try {
      await commands.markAllRead(tab);
    } catch (e) {
      list.error = toAppError(e);
      void this.fetchTab(tab);
    }
  }

  /** "Mark as read" on a deadline's row: every alert of it. */
  async markDeadlineRead(row: DeadlineRow): Promise<void> {
    this.deadlines.rows = markRowsReadLocally(this.deadlines.rows, [row.deadline_id]);
    try {
      await commands.markRead(row.alert_ids);
    } catch (e) {
      this.deadlines.error = toAppError(e);
      void this.fetchDeadlines();
    }
  }

  /** "Pris en compte": busy until the row shows it (the shell applies it at once, offline
   *  too) or a refusal comes back as an action-result. */
  async acknowledge(row: DeadlineRow): Promise<void> {
    const ids = [row.deadline_id];
    this.ackEvent({ type: 'clicked', deadline_ids: ids });
    try {
      await commands.acknowledge(ids);
    } catch (e) {
      this.ackEvent({ type: 'failed', deadline_ids: ids, error: toAppError(e) });
    }
  }

  ackEvent(event: AckEvent): void {
    this.acks = reduceAcks(this.acks, event);
  }

  /** "Open": the shell opens the item's link (looked up by id) with the system's handler;
   *  a deadline's row opens its latest alert's. */
  async openLink(item: Pick<Item, 'id' | 'url'>): Promise<void> {
    if (!item.url) return;
    delete this.linkErrors[item.id];
    try {
      await commands.openLink(item.id);
    } catch (e) {
      this.linkErrors[item.id] = toAppError(e);
    }
  }

  // ---- proposals ----

  /** An answered action: a proposal's buttons settle; a refused acknowledgement is said
   *  on its rows, which the shell already undid (they are fetched again). */
  private actionResult(result: ActionResult): void {
    if (result.action === 'acknowledge') {
      this.ackEvent({ type: 'result', result });
      if (this.shown === 'inbox' && this.view.tab === 'deadlines') void this.fetchDeadlines();
      return;
    }
    this.proposalEvent({ type: 'result', result });
  }

  proposalEvent(event: ProposalEvent): void {
    this.proposals = reduceProposals(this.proposals, event);
  }

  async respond(proposalId: string, response: ProposalResponse): Promise<void> {
    this.proposalEvent({ type: 'clicked', proposal_id: proposalId, response });
    try {
      await commands.respondProposal(proposalId, response);
    } catch (e) {
      this.proposalEvent({ type: 'failed', proposal_id: proposalId, error: toAppError(e) });
    }
  }

  // ---- the rest ----

  private announce(items: Item[]): void {
    const text = announcement(ui.locale, items);
    if (!text) return;
    // Clear first so the same words twice are still announced twice.
    this.liveText = '';
    setTimeout(() => (this.liveText = text), 60);
  }

  async resume(): Promise<void> {
    try {
      this.applySnapshot(await commands.pause('resume'));
    } catch (e) {
      console.error('pause(resume) failed', e);
    }
  }

  hide(): void {
    commands.hidePanel().catch((e) => console.error('hide_panel failed', e));
  }
}
