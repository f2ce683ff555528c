// The IPC contract with the Rust shell (docs/DESKTOP_IPC.md): its types, and one thin
// typed wrapper per command and per event. Mirrors src-tauri/src/ipc.rs; change all
// three together. Outside Tauri (plain browser, `npm run dev`) an in-memory mock
// backend (mock.ts) stands in, so the panel can be seen and tried without the shell.

export const TABS = ['emails', 'dossiers', 'deadlines', 'proposals', 'system'] as const;
export type Tab = (typeof TABS)[number];

/** The kinds this build knows, each with its own toggle in Preferences. */
export const KINDS = [
  'email-received',
  'dossier-updated',
  'deadline-alert',
  'system-notification',
  'proposal-created',
  'proposal-status-changed',
  'conversation-message',
] as const;
export type KnownKind = (typeof KINDS)[number];
/** `unknown`: a kind from a newer gateway, shown in the System tab as a generic item
 *  (title, body, urgency, time); its wire name is the item's `kind_name`. It follows
 *  the system notices' toggle and has none of its own. */
export type Kind = KnownKind | 'unknown';

export type Urgency = 'low' | 'normal' | 'high' | 'critical';
export type Locale = 'fr' | 'en';

export type Connection =
  | { state: 'connected'; since: string; tenant: string }
  | { state: 'connecting'; attempt: number; next_retry: string | null }
  | { state: 'offline'; since: string; reason: string }
  | { state: 'signed_out'; reason: string };
export type ConnectionState = Connection['state'];

export interface Account {
  server: string;
  email: string;
}

export interface Snapshot {
  /** Grows with every snapshot the shell builds: an answer that arrives after newer
   *  `state` events (a command's reply) is older and must be ignored. */
  revision: number;
  signed_in: boolean;
  account: Account | null;
  connection: Connection;
  unread: Record<Tab, number>;
  unread_total: number;
  pending_actions: number;
  notifications: { available: boolean; problem: string | null };
  secret_store: { persistent: boolean; warning: string | null };
  locale: Locale;
  paused_until: string | null;
  /** A critical deadline nobody acknowledged exists (the tray's orange mark). */
  critical_pending: boolean;
  /** How many: the Deadlines tab's badge. Reading their alerts does not lower it. */
  unacknowledged_critical: number;
}

export type ProposalStatus = 'pending' | 'accepted' | 'rejected' | 'cancelled';
export type DeadlineUrgency = 'info' | 'warning' | 'urgent' | 'critical';

export interface ProposalInfo {
  proposal_id: string;
  status: ProposalStatus;
  starts_at: string;
  ends_at: string | null;
  proposed_by: string;
  location: string | null;
}

export interface DeadlineInfo {
  due_at: string;
  urgency: DeadlineUrgency;
  remaining_days: number;
  deadline_type: string;
}

export interface Item {
  id: string;
  kind: Kind;
  /** The kind as on the wire: the received name when `kind` is `unknown`. */
  kind_name: string;
  tab: Tab;
  title: string;
  body: string;
  urgency: Urgency;
  created_at: string;
  read: boolean;
  dossier_number: string | null;
  /** Always an object (`{}` when the wire had none). */
  data: Record<string, unknown>;
  /** The link into the firm's software, present only when the shell would open it:
   *  the item then offers "Open" (`open_link` names the item's id, never this URL). */
  url: string | null;
  proposal: ProposalInfo | null;
  deadline: DeadlineInfo | null;
}

/** Who took a deadline in. `user_id: null`: this device's own acknowledgement, not yet
 *  confirmed by the gateway (`user_name` is then ""). */
export interface DeadlineAck {
  user_id: string | null;
  user_name: string;
  device: string | null;
  at: string;
  pending: boolean;
}

/** Received as an escalation: the owner did not acknowledge in time. */
export interface Escalation {
  step: number;
  owner: string;
  owner_name: string;
}

/** One deadline in the Deadlines tab (`list_deadlines`): all its alerts in one row. */
export interface DeadlineRow {
  deadline_id: string;
  deadline_type: string;
  dossier_number: string | null;
  dossier_title: string | null;
  /** RFC 3339 with the deadline's own offset. */
  due_at: string;
  time_zone: string;
  /** As of `as_of` (the latest alert), not as of now; null when the alert did not say. */
  working_days_left: number | null;
  remaining_days: number;
  as_of: string;
  /** The most urgent of its alerts. */
  urgency: DeadlineUrgency;
  critical: boolean;
  reminder: string | null;
  unread: boolean;
  /** Newest first; a navigation to any of them lands on this row. */
  alert_ids: string[];
  latest_alert_id: string;
  /** The latest alert's title, body and (checked) link: "Open" = `open_link(latest_alert_id)`. */
  title: string;
  body: string;
  url: string | null;
  acknowledged: DeadlineAck | null;
  acknowledgements: DeadlineAck[];
  escalation: Escalation | null;
}

export interface CalendarFeed {
  url: string;
}
export interface CalendarRevoked {
  revoked: boolean;
}

export interface QuietHours {
  start: string;
  end: string;
}

export type LanguagePref = 'system' | 'fr' | 'en';

export interface Preferences {
  enabled_kinds: Partial<Record<KnownKind, boolean>>;
  quiet_hours: QuietHours | null;
  critical_breaks_through_quiet_hours: boolean;
  autostart: boolean;
  language: LanguagePref;
}

export interface AppError {
  code: string;
  message: string;
  /** `untrusted_certificate` only: the SHA-256 fingerprint ("AB:CD:…") the gateway presented. */
  fingerprint?: string;
}

export type View = 'inbox' | 'preferences' | 'signin';
export interface Navigation {
  view: View;
  tab: Tab | null;
  item_id: string | null;
}

export type PauseUntil = 'hour' | 'tomorrow' | 'resume';
export type ProposalResponse = 'accept' | 'reject';

export interface ItemsChanged {
  tabs: Tab[];
}
export interface NewItems {
  items: Item[];
}
export type ActionKind = 'proposal' | 'acknowledge';
export interface ActionResult {
  /** `acknowledge`: sent only when refused (undone), naming its deadlines. */
  action: ActionKind;
  proposal_id: string | null;
  deadline_ids: string[];
  ok: boolean;
  error: AppError | null;
}

/** Event name → payload, as in the contract's events table. */
export interface EventMap {
  state: Snapshot;
  'items-changed': ItemsChanged;
  'new-items': NewItems;
  'action-result': ActionResult;
  navigate: Navigation;
}
export type EventName = keyof EventMap;

export type Unlisten = () => void;

/** What carries commands and events: Tauri in the app, the mock in a browser or a test. */
export interface Transport {
  invoke(cmd: string, args?: Record<string, unknown>): Promise<unknown>;
  listen(event: string, handler: (payload: unknown) => void): Promise<Unlisten>;
}

export function isTauri(): boolean {
  return typeof window !== 'undefined' && '__TAURI_INTERNALS__' in window;
}

async function tauriTransport(): Promise<Transport> {
  const [{ invoke }, { listen }] = await Promise.all([
    import('@tauri-apps/api/core'),
    import('@tauri-apps/api/event'),
  ]);
  return {
    invoke: (cmd, args) => invoke(cmd, args),
    listen: (event, handler) => listen(event, (e) => handler(e.payload)),
  };
}

let transport: Promise<Transport> | null = null;

function getTransport(): Promise<Transport> {
  if (!transport) {
    transport = isTauri()
      ? tauriTransport()
      : import('./mock').then((m) => m.createMockTransport());
  }
  return transport;
}

/** Replaces the transport (tests). */
export function setTransport(t: Transport): void {
  transport = Promise.resolve(t);
}

/** Whatever a command rejected with, as an AppError (Tauri itself may reject with a string). */
export function toAppError(e: unknown): AppError {
  if (e && typeof e === 'object' && typeof (e as AppError).code === 'string') {
    const { code, message, fingerprint } = e as AppError;
    const error: AppError = { code, message: typeof message === 'string' ? message : '' };
    if (typeof fingerprint === 'string') error.fingerprint = fingerprint;
    return error;
  }
  if (typeof e === 'string') return { code: 'internal', message: e };
  if (e instanceof Error) return { code: 'internal', message: e.message };
  return { code: 'internal', message: String(e) };
}

async function call<T>(cmd: string, args?: Record<string, unknown>): Promise<T> {
  const t = await getTransport();
  try {
    return (await t.invoke(cmd, args)) as T;
  } catch (e) {
    throw toAppError(e);
  }
}

/** The commands. Each rejects with an AppError. */
export const commands = {
  snapshot: () => call<Snapshot>('snapshot'),
  takeNavigation: () => call<Navigation | null>('take_navigation'),
  listItems: (tab: Tab, limit: number, before: string | null = null) =>
    call<Item[]>('list_items', { tab, limit, before }),
  /** The Deadlines tab: one row per deadline, soonest due first. */
  listDeadlines: (limit: number) => call<DeadlineRow[]>('list_deadlines', { limit }),
  /** "Pris en compte", for the whole firm: applied at once (offline too), queued. */
  acknowledge: (deadlineIds: string[]) => call<null>('acknowledge', { deadlineIds }),
  rotateCalendarFeed: () => call<CalendarFeed>('rotate_calendar_feed'),
  revokeCalendarFeed: () => call<CalendarRevoked>('revoke_calendar_feed'),
  markRead: (ids: string[]) => call<null>('mark_read', { ids }),
  markAllRead: (tab: Tab | null) => call<null>('mark_all_read', { tab }),
  respondProposal: (proposalId: string, response: ProposalResponse) =>
    call<null>('respond_proposal', { proposalId, response }),
  /** Opens the item's link with the system's handler; by id, the shell looks the URL up. */
  openLink: (id: string) => call<null>('open_link', { id }),
  /** `fingerprint`: the certificate the user chose to trust after `untrusted_certificate`. */
  signIn: (server: string, email: string, password: string, fingerprint: string | null = null) =>
    call<Snapshot>('sign_in', fingerprint ? { server, email, password, fingerprint } : { server, email, password }),
  signOut: () => call<null>('sign_out'),
  getPreferences: () => call<Preferences>('get_preferences'),
  setPreferences: (prefs: Preferences) => call<Preferences>('set_preferences', { prefs }),
  pause: (until: PauseUntil) => call<Snapshot>('pause', { until }),
  hidePanel: () => call<null>('hide_panel'),
};

/** Subscribes to one event; resolves to the function that unsubscribes. */
export async function on<E extends EventName>(
  event: E,
  handler: (payload: EventMap[E]) => void,
): Promise<Unlisten> {
  const t = await getTransport();
  return t.listen(event, (payload) => handler(payload as EventMap[E]));
}
