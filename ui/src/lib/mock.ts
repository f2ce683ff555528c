// An in-memory stand-in for the Rust shell, used when the panel runs outside Tauri
// (`npm run dev`, a plain browser, tests). It answers every command of the contract
// and emits its events like the shell would. Scenarios come from the page URL:
// ?mock=signedout,offline,connecting,paused,nonotify,nokeyring,empty,live&lang=en

import {
  TABS,
  type AppError,
  type DeadlineAck,
  type DeadlineRow,
  type DeadlineUrgency,
  type Escalation,
  type EventMap,
  type EventName,
  type Item,
  type Locale,
  type Navigation,
  type Preferences,
  type Snapshot,
  type Tab,
  type Transport,
} from './ipc';
import { detectLocale } from './i18n';
import { liveEmail, sampleAcknowledgements, sampleItems } from './mock-data';

export interface MockOptions {
  scenarios?: string[];
  locale?: Locale;
  /** Delay before a proposal's action-result, in ms. */
  answerDelay?: number;
  now?: () => number;
}

const REFUSED_PROPOSAL = 'prop-8852';
/** This user, as the gateway names them once it confirms an acknowledgement. */
const ME = { user_id: 'u-durand', user_name: 'Camille Durand', device: 'Tocsin desktop (poste-durand)' };
const URGENCY_ORDER: DeadlineUrgency[] = ['info', 'warning', 'urgent', 'critical'];
const TENANT = 'Cabinet Durand & Associés';

/** The certificate fingerprint the mock's `selfsigned` gateways present. */
export const MOCK_FINGERPRINT = Array.from({ length: 32 }, (_, i) => ((i * 37 + 11) % 256).toString(16).toUpperCase().padStart(2, '0')).join(':');

function fail(code: string, message: string): AppError {
  return { code, message };
}

function isLoopback(host: string): boolean {
  return host === 'localhost' || host === '127.0.0.1' || host === '[::1]' || host.endsWith('.localhost');
}

export class MockBackend implements Transport {
  private items: Item[];
  private snap: Snapshot;
  private prefs: Preferences = {
    enabled_kinds: { 'system-notification': true, 'conversation-message': false },
    quiet_hours: { start: '22:00', end: '07:00' },
    critical_breaks_through_quiet_hours: true,
    autostart: true,
    language: 'system',
  };
  private systemLocale: Locale;
  private handlers = new Map<string, Set<(payload: unknown) => void>>();
  private pendingNav: Navigation | null = null;
  private readonly answerDelay: number;
  private readonly now: () => number;
  private liveCount = 0;
  /** Who acknowledged which deadline, first first. */
  private acks: Record<string, DeadlineAck[]>;
  private calendarSecret = 0;
  private calendarOn = false;
  /** The links `open_link` would have opened, in order (tests read it). */
  readonly opened: string[] = [];

  constructor(opts: MockOptions = {}) {
    const scenarios = new Set(opts.scenarios ?? []);
    this.now = opts.now ?? (() => Date.now());
    this.answerDelay = opts.answerDelay ?? 900;
    this.systemLocale = opts.locale ?? 'fr';
    const now = this.now();
    this.items = scenarios.has('empty') ? [] : sampleItems(now);
    this.acks = scenarios.has('empty') ? {} : sampleAcknowledgements(now);
    const signedIn = !scenarios.has('signedout');
    this.snap = {
      revision: 0,
      signed_in: signedIn,
      account: { server: 'https://tocsin.cabinet-durand.fr', email: 'c.durand@cabinet-durand.fr' },
      connection: signedIn
        ? { state: 'connected', since: new Date(now - 2 * 3_600_000).toISOString(), tenant: TENANT }
        : { state: 'signed_out', reason: '' },
      unread: { emails: 0, dossiers: 0, deadlines: 0, proposals: 0, system: 0 },
      unread_total: 0,
      pending_actions: 0,
      notifications: { available: true, problem: null },
      secret_store: { persistent: true, warning: null },
      locale: this.systemLocale,
      paused_until: null,
      critical_pending: false,
      unacknowledged_critical: 0,
    };
    if (scenarios.has('offline')) {
      const since = new Date(now - 17 * 60_000).toISOString();
      this.snap.connection = { state: 'offline', since, reason: 'La passerelle ne répond plus' };
      this.snap.pending_actions = 3;
    }
    if (scenarios.has('connecting')) {
      this.snap.connection = { state: 'connecting', attempt: 3, next_retry: new Date(now + 20_000).toISOString() };
    }
    if (scenarios.has('paused')) this.snap.paused_until = new Date(now + 3_600_000).toISOString();
    if (scenarios.has('nonotify')) {
      this.snap.notifications = { available: false, problem: 'aucun service de notification ne répond (D-Bus)' };
    }
    if (scenarios.has('nokeyring')) {
      this.snap.secret_store = {
        persistent: false,
        warning: 'Trousseau du système introuvable : la session ne sera pas mémorisée après redémarrage.',
      };
    }
    if (scenarios.has('signedout') && scenarios.has('expired')) {
      this.snap.connection = { state: 'signed_out', reason: 'session expirée' };
    }
    if (scenarios.has('live')) setInterval(() => this.pushLive(), 30_000);
    this.recount();
  }

  // ---- Transport ----

  async invoke(cmd: string, args: Record<string, unknown> = {}): Promise<unknown> {
    switch (cmd) {
      case 'snapshot':
        return this.snapshot();
      case 'take_navigation': {
        const nav = this.pendingNav;
        this.pendingNav = null;
        return nav;
      }
      case 'list_items':
        return this.listItems(args.tab as Tab, args.limit as number, args.before as string | null);
      case 'list_deadlines':
        this.requireSignedIn();
        return structuredClone(this.deadlineRows().slice(0, Math.max(0, args.limit as number)));
      case 'acknowledge':
        this.requireSignedIn();
        return this.acknowledge((args.deadlineIds as string[]) ?? []);
      case 'rotate_calendar_feed':
        this.requireSignedIn();
        return this.rotateCalendar();
      case 'revoke_calendar_feed':
        this.requireSignedIn();
        return this.revokeCalendar();
      case 'mark_read':
        this.requireSignedIn();
        return this.markRead((args.ids as string[]) ?? []);
      case 'mark_all_read':
        this.requireSignedIn();
        return this.markAllRead(args.tab as Tab | null);
      case 'respond_proposal':
        this.requireSignedIn();
        return this.respond(args.proposalId as string, args.response as string);
      case 'open_link':
        this.requireSignedIn();
        return this.openLink(args.id as string);
      case 'sign_in':
        return this.signIn(
          args.server as string,
          args.email as string,
          args.password as string,
          (args.fingerprint as string | undefined) ?? null,
        );
      case 'sign_out':
        return this.signOut();
      case 'get_preferences':
        return structuredClone(this.prefs);
      case 'set_preferences':
        return this.setPreferences(args.prefs as Preferences);
      case 'pause':
        return this.pause(args.until as string);
      case 'hide_panel':
        console.info('[mock] hide_panel: the Tauri shell would close the panel now');
        return null;
      default:
        throw fail('internal', `unknown command ${cmd}`);
    }
  }

  async listen(event: string, handler: (payload: unknown) => void): Promise<() => void> {
    let set = this.handlers.get(event);
    if (!set) this.handlers.set(event, (set = new Set()));
    set.add(handler);
    return () => set.delete(handler);
  }

  // ---- test and demo hooks ----

  /** Emits an event as the shell would (asynchronously). */
  emit<E extends EventName>(event: E, payload: EventMap[E]): void {
    const set = this.handlers.get(event);
    if (!set) return;
    for (const h of [...set]) queueMicrotask(() => h(structuredClone(payload)));
  }

  /** A notification click before the window existed: replayed by take_navigation. */
  setPendingNavigation(nav: Navigation | null): void {
    this.pendingNav = nav;
  }

  pushLive(): void {
    this.liveCount += 1;
    const it = liveEmail(this.liveCount, this.now());
    this.items.unshift(it);
    this.recount();
    this.emit('new-items', { items: [it] });
    this.emit('items-changed', { tabs: ['emails'] });
    this.emit('state', this.snapshot());
  }

  // ---- commands ----

  private snapshot(): Snapshot {
    this.snap.revision += 1;
    return structuredClone(this.snap);
  }

  private requireSignedIn(): void {
    if (!this.snap.signed_in) throw fail('not_signed_in', 'Vous n’êtes pas connecté.');
  }

  private listItems(tab: Tab, limit: number, before: string | null): Item[] {
    this.requireSignedIn();
    if (!TABS.includes(tab)) throw fail('invalid_input', `unknown tab ${tab}`);
    let list = this.items.filter((i) => i.tab === tab);
    if (tab === 'deadlines') {
      list.sort((a, b) => Date.parse(a.deadline!.due_at) - Date.parse(b.deadline!.due_at));
    } else {
      list.sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
      if (before) {
        const at = list.findIndex((i) => i.id === before);
        list = at >= 0 ? list.slice(at + 1) : list;
      }
    }
    return structuredClone(list.slice(0, Math.max(0, limit)));
  }

  private markRead(ids: string[]): null {
    const wanted = new Set(ids);
    const tabs = new Set<Tab>();
    for (const it of this.items) {
      if (wanted.has(it.id) && !it.read) {
        it.read = true;
        tabs.add(it.tab);
      }
    }
    this.changed([...tabs]);
    return null;
  }

  private markAllRead(tab: Tab | null): null {
    const tabs = new Set<Tab>();
    for (const it of this.items) {
      if (!it.read && (tab === null || it.tab === tab)) {
        it.read = true;
        tabs.add(it.tab);
      }
    }
    this.changed([...tabs]);
    return null;
  }

  /** Like the shell: the link is looked up by the item's id, never taken from the caller. */
  private openLink(id: string): null {
    const url = this.items.find((i) => i.id === id)?.url;
    if (!url) throw fail('no_link', 'This notification has no link to open');
    this.opened.push(url);
    console.info(`[mock] open_link: the system would open ${url}`);
    return null;
  }

  private respond(proposalId: string, response: string): null {
    const it = this.items.find((i) => i.proposal?.proposal_id === proposalId);
    if (!it?.proposal) throw fail('invalid_input', `unknown proposal ${proposalId}`);
    if (response !== 'accept' && response !== 'reject') throw fail('invalid_input', 'bad response');
    if (this.snap.connection.state !== 'connected') {
      this.snap.pending_actions += 1;
      this.emit('state', this.snapshot());
      return null;
    }
    setTimeout(() => {
      if (proposalId === REFUSED_PROPOSAL) {
        const message =
          this.snap.locale === 'fr'
            ? 'Cette proposition a déjà reçu une réponse depuis un autre appareil.'
            : 'This proposal was already answered from another device.';
        this.emit('action-result', {
          action: 'proposal',
          proposal_id: proposalId,
          deadline_ids: [],
          ok: false,
          error: fail('conflict', message),
        });
        return;
      }
      it.proposal!.status = response === 'accept' ? 'accepted' : 'rejected';
      it.read = true;
      this.changed(['proposals']);
      this.emit('action-result', { action: 'proposal', proposal_id: proposalId, deadline_ids: [], ok: true, error: null });
    }, this.answerDelay);
    return null;
  }

  /** Like the engine: one row per deadline, grouped from its alerts, soonest due first. */
  private deadlineRows(): DeadlineRow[] {
    const groups = new Map<string, Item[]>();
    for (const it of this.items) {
      const id = it.kind === 'deadline-alert' ? it.data.deadline_id : undefined;
      if (typeof id !== 'string') continue;
      groups.set(id, [...(groups.get(id) ?? []), it]);
    }
    const rows: DeadlineRow[] = [];
    for (const [deadline_id, alerts] of groups) {
      alerts.sort((a, b) => Date.parse(b.created_at) - Date.parse(a.created_at));
      const latest = alerts[0];
      const d = latest.data;
      const text = (v: unknown) => (typeof v === 'string' ? v : null);
      const acks = this.acks[deadline_id] ?? [];
      const escalations = alerts
        .map((a) => a.data.escalation as Escalation | undefined)
        .filter((e): e is Escalation => !!e)
        .sort((a, b) => b.step - a.step);
      rows.push({
        deadline_id,
        deadline_type: latest.deadline!.deadline_type,
        dossier_number: alerts.map((a) => text(a.data.dossier_number)).find((v) => v) ?? null,
        dossier_title: alerts.map((a) => text(a.data.dossier_title)).find((v) => v) ?? null,
        due_at: latest.deadline!.due_at,
        time_zone: text(d.time_zone) ?? 'Europe/Paris',
        working_days_left: typeof d.working_days_left === 'number' ? d.working_days_left : null,
        remaining_days: latest.deadline!.remaining_days,
        as_of: latest.created_at,
        urgency: alerts
          .map((a) => a.deadline!.urgency)
          .reduce((m, u) => (URGENCY_ORDER.indexOf(u) > URGENCY_ORDER.indexOf(m) ? u : m), 'info' as DeadlineUrgency),
        critical: alerts.some((a) => a.urgency === 'critical'),
        reminder: text(d.reminder),
        unread: alerts.some((a) => !a.read),
        alert_ids: alerts.map((a) => a.id),
        latest_alert_id: latest.id,
        title: latest.title,
        body: latest.body,
        url: latest.url,
        acknowledged: acks[0] ?? null,
        acknowledgements: acks,
        escalation: escalations[0] ?? null,
      });
    }
    rows.sort((a, b) => Date.parse(a.due_at) - Date.parse(b.due_at) || a.deadline_id.localeCompare(b.deadline_id));
    return rows;
  }

  /** Like the engine: this device's own at once (pending), named once "the gateway" answers. */
  private acknowledge(ids: string[]): null {
    const known = new Set(this.deadlineRows().map((r) => r.deadline_id));
    const fresh = ids.filter((id) => known.has(id) && !(this.acks[id]?.length));
    if (fresh.length === 0) return null;
    const at = new Date(this.now()).toISOString();
    for (const id of fresh) this.acks[id] = [{ user_id: null, user_name: '', device: null, at, pending: true }];
    const offline = this.snap.connection.state !== 'connected';
    if (offline) this.snap.pending_actions += 1;
    this.changed(['deadlines']);
    if (offline) return null;
    setTimeout(() => {
      for (const id of fresh) this.acks[id] = [{ ...ME, at, pending: false }];
      this.changed(['deadlines']);
    }, this.answerDelay);
    return null;
  }

  private rotateCalendar(): { url: string } {
    if (this.snap.connection.state !== 'connected') {
      throw fail('offline', 'Pas de connexion à la passerelle : le lien de calendrier se crée une fois connecté');
    }
    this.calendarSecret += 1;
    this.calendarOn = true;
    const secret = `demo${this.calendarSecret}-${Math.random().toString(36).slice(2, 12)}`;
    return { url: `${this.snap.account?.server ?? 'https://tocsin.cabinet-durand.fr'}/v1/calendar/${secret}.ics` };
  }

  private revokeCalendar(): { revoked: boolean } {
    if (this.snap.connection.state !== 'connected') {
      throw fail('offline', 'Pas de connexion à la passerelle : le lien de calendrier se crée une fois connecté');
    }
    const revoked = this.calendarOn;
    this.calendarOn = false;
    return { revoked };
  }

  private async signIn(server: string, email: string, password: string, fingerprint: string | null): Promise<Snapshot> {
    await new Promise((r) => setTimeout(r, this.answerDelay));
    let url: URL;
    try {
      url = new URL(server);
    } catch {
      throw fail('invalid_url', 'Adresse invalide (relative URL without a base)');
    }
    if (url.protocol !== 'https:' && url.protocol !== 'http:') throw fail('invalid_url', `Adresse invalide (unsupported scheme ${url.protocol})`);
    if (url.protocol === 'http:' && !isLoopback(url.hostname)) throw fail('insecure_url', 'Le http n’est permis que vers cette machine.');
    if (url.hostname.includes('unreachable')) throw fail('unreachable', `Passerelle injoignable (${url.host}: connection refused)`);
    // A firm's self-signed gateway, as the shell reports it: trusted once its
    // fingerprint is confirmed, refused as changed when another one is offered.
    if (url.hostname.includes('selfsigned') && fingerprint !== MOCK_FINGERPRINT) {
      if (fingerprint) throw fail('certificate_changed', `Certificat changé (expected ${fingerprint}, presented ${MOCK_FINGERPRINT})`);
      throw { ...fail('untrusted_certificate', 'Certificat inconnu de cet ordinateur'), fingerprint: MOCK_FINGERPRINT };
    }
    if (password === 'wrong' || !email.includes('@')) throw fail('unauthorized', 'Identifiants refusés.');
    this.snap.signed_in = true;
    this.snap.account = { server: url.origin, email };
    this.snap.connection = { state: 'connecting', attempt: 1, next_retry: null };
    setTimeout(() => {
      this.snap.connection = { state: 'connected', since: new Date(this.now()).toISOString(), tenant: TENANT };
      this.emit('state', this.snapshot());
    }, 1200);
    this.emit('state', this.snapshot());
    return this.snapshot();
  }

  private signOut(): null {
    this.snap.signed_in = false;
    this.snap.connection = { state: 'signed_out', reason: '' };
    this.emit('state', this.snapshot());
    return null;
  }

  private setPreferences(prefs: Preferences): Preferences {
    const q = prefs.quiet_hours;
    if (q && (!/^\d\d:\d\d$/.test(q.start) || !/^\d\d:\d\d$/.test(q.end))) {
      throw fail('invalid_input', 'quiet hours must be HH:MM');
    }
    this.prefs = structuredClone(prefs);
    this.snap.locale = prefs.language === 'system' ? this.systemLocale : prefs.language;
    this.emit('state', this.snapshot());
    return structuredClone(this.prefs);
  }

  private pause(until: string): Snapshot {
    const now = new Date(this.now());
    if (until === 'hour') this.snap.paused_until = new Date(now.getTime() + 3_600_000).toISOString();
    else if (until === 'tomorrow') {
      const t = new Date(now);
      t.setDate(t.getDate() + 1);
      t.setHours(8, 0, 0, 0);
      this.snap.paused_until = t.toISOString();
    } else if (until === 'resume') this.snap.paused_until = null;
    else throw fail('invalid_input', `bad pause ${until}`);
    this.emit('state', this.snapshot());
    return this.snapshot();
  }

  // ---- bookkeeping ----

  private recount(): void {
    const unread = Object.fromEntries(TABS.map((t) => [t, 0])) as Record<Tab, number>;
    for (const it of this.items) if (!it.read) unread[it.tab] += 1;
    this.snap.unread = unread;
    this.snap.unread_total = TABS.reduce((n, t) => n + unread[t], 0);
    const unacknowledged = this.deadlineRows().filter((r) => r.critical && !r.acknowledged).length;
    this.snap.unacknowledged_critical = unacknowledged;
    this.snap.critical_pending = unacknowledged > 0;
  }

  private changed(tabs: Tab[]): void {
    this.recount();
    if (tabs.length) this.emit('items-changed', { tabs });
    this.emit('state', this.snapshot());
  }
}

/** The mock the panel uses in a browser, configured from the page URL. */
export function createMockTransport(): MockBackend {
  const params = new URLSearchParams(window.location.search);
  const scenarios = (params.get('mock') ?? '').split(',').filter(Boolean);
  const lang = params.get('lang');
  const locale: Locale = lang === 'fr' || lang === 'en' ? lang : detectLocale(navigator.language);
  const backend = new MockBackend({ scenarios, locale });
  const nav = params.get('nav');
  if (nav) {
    const [tab, item_id] = nav.split(':');
    backend.setPendingNavigation({ view: 'inbox', tab: tab as Tab, item_id: item_id ?? null });
  }
  console.info('[mock] Tocsin panel running on the in-memory mock backend', { scenarios, locale });
  return backend;
}
