/**
 * One WebSocket session: open with the `tocsin.v1` subprotocol, send `auth` and
 * `hello` at once, then take every server frame in order. Per stream it keeps a
 * cursor (epoch, next offset expected): a notification at the expected offset is
 * stored and the position advances with it; an earlier one is a duplicate; a later
 * one would be a gap, which the gateway never sends — the session ends rather than
 * skip. A stream the gateway could not resume is rebuilt from history while its live
 * notifications keep arriving; its position is written only once the rebuild is done.
 *
 * It also pings the gateway (browsers cannot send WebSocket pings), renews the token
 * in band, sends the outbox at the gateway's pace once caught up, and ends with what
 * the engine needs to decide the next step.
 */

import { Backoff } from "./backoff.js";
import { STABLE_MS, type Engine, localError, newId } from "./engine.js";
import { fetchHistory, HttpError } from "./history.js";
import type { InboxItem } from "./types.js";
import type { Commit } from "./storage.js";
import { SUBPROTOCOL, WS_PATH } from "./protocol/index.js";
import type { ClientFrame, Limits, Position, Retraction, ServerFrame, StreamStatus, Welcome } from "./protocol/index.js";
import type { Timer } from "./clock.js";
import type { ItemSource } from "./engine.js";

/** How a session ended. */
export interface SessionEnd {
  kind: "closed" | "abandoned" | "welcomed";
  /** The close code and reason, when the socket closed (1006 when it dropped). */
  close?: { code: number; reason: string };
  /** True when a write to the store failed: the engine reloads it before reconnecting. */
  storageFailed?: boolean;
}

/** Notifications persisted per transaction while catching up. */
const REPLAY_BATCH = 500;
/** What the client understands beyond the first v1 (PROTOCOL.md §4.3 `hello.features`). */
const CLIENT_FEATURES = ["retract"];

interface Cursor {
  epoch: string;
  /** The next offset expected. */
  next: number;
  /** True while the stream is rebuilt from history: its position waits for the end. */
  rebuilding: boolean;
}

/** Changes gathered during replay, written together. */
interface Batch {
  change: Commit;
  added: InboxItem[];
}

export class Session {
  readonly #cursors = new Map<string, Cursor>();
  #ws: WebSocket | undefined;
  #limits: Limits | undefined;
  #features: string[] = [];
  #caughtUp = false;
  #welcomed = false;
  #ended = false;
  #storageFailed = false;
  #batch: Batch | undefined;
  #frames: Promise<void> = Promise.resolve();
  #finish: ((end: SessionEnd) => void) | undefined;
  #pingTimer: Timer | undefined;
  #silenceTimer: Timer | undefined;
  #refreshTimer: Timer | undefined;
  #stableTimer: Timer | undefined;
  #pumpTimer: Timer | undefined;
  /** Live-only actions (`typing`, `presence`, `refresh`) waiting for their result. */
  readonly #direct = new Set<string>();
  #refreshId: string | undefined;

  constructor(
    private readonly engine: Engine,
    private readonly token: string,
  ) {}

  /** Runs the session to its end. */
  run(): Promise<SessionEnd> {
    return new Promise((resolve) => {
      this.#finish = resolve;
      const { url, WebSocket: Socket } = this.engine.options;
      let ws: WebSocket;
      try {
        ws = new Socket(wsUrl(url), SUBPROTOCOL);
      } catch (err) {
        this.engine.setState({ error: localError(err) });
        return this.#end({ kind: "abandoned" });
      }
      this.#ws = ws;
      ws.onopen = () => {
        this.#send({ type: "auth", token: this.token });
        this.#send({ type: "hello", positions: { ...this.engine.positions }, client: this.engine.options.clientName, features: CLIENT_FEATURES });
      };
      ws.onmessage = (event) => this.#received(event.data);
      ws.onclose = (event) => this.#end({ kind: this.#welcomed ? "welcomed" : "closed", close: { code: event.code, reason: event.reason } });
      ws.onerror = () => undefined; // onclose follows with 1006
    });
  }

  /** Ends the session without waiting for the socket's close (a dead peer never answers). */
  abandon(why: string): void {
    if (this.#ended) return;
    if (why !== "stopped") this.engine.setState({ error: { code: "unavailable", message: why } });
    this.#end({ kind: this.#welcomed ? "welcomed" : "abandoned" });
  }

  /** Checks a connection that may have died while the page was hidden: ping now. */
  probe(): void {
    if (this.#caughtUp) this.#ping();
  }

  /** Sends a live-only action; false when not connected and caught up. */
  sendLive(frame: Extract<ClientFrame, { type: "typing" | "presence" }>): boolean {
    if (!this.#caughtUp || this.#ended) return false;
    this.#direct.add(frame.id);
    this.#send(frame);
    return true;
  }

  /** The positions of what the inbox holds on streams that are not being rebuilt. */
  heldPositions(): Record<string, Position> {
    const out: Record<string, Position> = {};
    for (const [stream, cursor] of this.#cursors) {
      if (!cursor.rebuilding) out[stream] = { epoch: cursor.epoch, offset: cursor.next - 1 };
    }
    return out;
  }

  /** Sends the queued actions the pace allows now; looks again when it says. */
  pump(): void {
    if (!this.#caughtUp || this.#ended) return;
    const clock = this.engine.clock;
    clock.clearTimeout(this.#pumpTimer);
    this.#pumpTimer = undefined;
    const { send, again } = this.engine.outbox.due(clock.now());
    for (const frame of send) this.#send(frame);
    if (again !== undefined) this.#pumpTimer = clock.setTimeout(() => this.pump(), again);
  }

  // ---- frames -----------------------------------------------------------------

  #received(data: unknown): void {
    if (this.#ended) return;
    this.#alive();
    if (typeof data !== "string") return;
    let frame: ServerFrame;
    try {
      frame = JSON.parse(data) as ServerFrame;
    } catch {
      console.warn("tocsin: ignoring a frame that is not JSON", data.slice(0, 200));
      return;
    }
    // One frame at a time, in order: each may wait for the store.
    this.#frames = this.#frames.then(() => (this.#ended ? undefined : this.#handle(frame))).catch((err) => this.#failed(err));
  }

  async #handle(frame: ServerFrame): Promise<void> {
    switch (frame.type) {
      case "welcome":
        return this.#welcome(frame);
      case "notification":
        return this.#notification(frame.stream, frame.epoch, frame.offset, frame.notification, frame.replay ? "replay" : "live");
      case "caught_up":
        return this.#caughtUpNow();
      case "read":
        return this.#read(frame.notification_ids);
      case "read_all": {
        const changed = frame.up_to ? this.engine.inbox.markUpTo(frame.up_to, frame.kind) : this.engine.inbox.markBefore(frame.before, frame.kind);
        await this.#persist({ put: changed, meta: this.engine.inbox.meta() }, []);
        this.engine.events.emit("read", { ids: changed.map((item) => item.notification.id) });
        return;
      }
      case "retracted":
        return this.#retracted(frame.retractions);
      case "acknowledged":
        for (const ack of frame.acknowledgements) this.engine.inbox.acknowledgements.set(ack.deadline_id, ack);
        return this.#persist({ meta: this.engine.inbox.meta() }, []);
      case "deadlines_closed":
        for (const closed of frame.deadlines) this.engine.inbox.closedDeadlines.set(closed.deadline_id, closed);
        return this.#persist({ meta: this.engine.inbox.meta() }, []);
      case "ephemeral":
        return this.#ephemeral(frame);
      case "result":
        return this.#result(frame.id, frame.ok, frame.data, frame.error);
      case "error":
        this.engine.setState({ error: frame.error });
        return;
      case "subscribed":
        this.#follow(frame.stream);
        return;
      case "unsubscribed":
        this.#cursors.delete(frame.stream);
        return;
      default:
        return; // pong, and frame types of a newer gateway
    }
  }

  async #welcome(w: Welcome): Promise<void> {
    const engine = this.engine;
    const known = engine.meta.user as string | undefined;
    if (known !== undefined && known !== w.user.id) {
      // Another user on this browser: their positions and inbox are not this one's.
      await engine.resetForUser(w.user.id);
      return this.abandon("another user signed in: starting over with their notifications");
    }
    if (known === undefined) await engine.commit({ meta: { user: w.user.id } });
    this.#welcomed = true;
    this.#limits = w.limits;
    this.#features = w.features ?? [];
    const drop: string[] = [];
    for (const status of w.streams) {
      const held = engine.positions[status.stream];
      if (status.recovered && held && held.epoch === status.epoch) {
        this.#cursors.set(status.stream, { epoch: held.epoch, next: held.offset + 1, rebuilding: false });
      } else {
        if (held) drop.push(status.stream);
        this.#follow(status);
      }
    }
    if (drop.length) await engine.commit({ dropPositions: drop });
    // Connected again: an earlier failure's explanation no longer describes the state.
    engine.setState({ status: "connected", catchingUp: true, user: w.user, error: undefined });
    this.#schedulePing();
    this.#scheduleRefresh(w.token_expires_at);
  }

  /** A stream to take from its head, rebuilding what came before from history. */
  #follow(status: StreamStatus): void {
    this.#cursors.set(status.stream, { epoch: status.epoch, next: status.head + 1, rebuilding: true });
    void this.#rebuild(status).catch((err) => this.#failed(err));
  }

  async #notification(stream: string, epoch: string, offset: number, notification: InboxItem["notification"], source: ItemSource): Promise<void> {
    const cursor = this.#cursors.get(stream);
    if (!cursor) return; // a stream this connection is not subscribed to (left meanwhile)
    if (epoch !== cursor.epoch) return this.abandon(`the epoch of ${stream} changed while connected: reconnecting to resume it`);
    if (offset < cursor.next) return; // a duplicate, normal after a re-join
    if (offset > cursor.next) return this.abandon(`offsets ${cursor.next}–${offset - 1} of ${stream} never arrived: reconnecting to resume from what is stored`);
    cursor.next = offset + 1;
    const item = this.engine.inbox.accept(stream, epoch, offset, notification);
    const change: Commit = { put: item ? [item] : [] };
    if (!cursor.rebuilding) change.positions = { [stream]: { epoch, offset } };
    await this.#persist(change, item ? [item] : [], source);
  }

  async #caughtUpNow(): Promise<void> {
    await this.#flush();
    this.#caughtUp = true;
    const engine = this.engine;
    engine.setState({ catchingUp: false });
    engine.events.emit("caughtUp", undefined);
    engine.outbox.start(this.#limits!, this.#features, engine.clock.now());
    this.pump();
    this.#stableTimer = engine.clock.setTimeout(() => engine.backoff.reset(), STABLE_MS);
  }

  async #read(ids: string[]): Promise<void> {
    const changed = this.engine.inbox.markRead(ids);
    await this.#persist({ put: changed }, []);
    if (changed.length) this.engine.events.emit("read", { ids: changed.map((item) => item.notification.id) });
  }

  async #retracted(retractions: Retraction[]): Promise<void> {
    const positions: Record<string, Position> = {};
    for (const r of retractions) {
      const cursor = this.#cursors.get(r.stream);
      // In replay the retraction takes the notification's own slot: it counts.
      if (cursor && cursor.epoch === r.epoch && cursor.next === r.offset) {
        cursor.next += 1;
        if (!cursor.rebuilding) positions[r.stream] = { epoch: r.epoch, offset: r.offset };
      }
    }
    const removed = this.engine.inbox.retract(retractions);
    await this.#persist({ remove: removed, positions, meta: this.engine.inbox.meta() }, []);
    if (removed.length) this.engine.events.emit("retracted", { ids: removed });
  }

  #ephemeral(frame: Extract<ServerFrame, { type: "ephemeral" }>): void {
    if (frame.kind === "typing-indicator") {
      this.engine.noteTyping(frame.data.conversation_id, frame.data.user_id, frame.data.active);
    } else if (frame.kind === "user-status") {
      this.engine.presence.set(frame.data.user_id, frame.data.status);
      this.engine.events.emit("presence", { userId: frame.data.user_id, status: frame.data.status });
    }
  }

  async #result(id: string, ok: boolean, data: unknown, error: Parameters<Engine["outbox"]["answer"]>[2]): Promise<void> {
    const engine = this.engine;
    if (this.#direct.delete(id)) return;
    if (id === this.#refreshId) {
      this.#refreshId = undefined;
      if (ok) this.#scheduleRefresh((data as { expires_at: string }).expires_at);
      return;
    }
    const { outcome, entry } = engine.outbox.answer(id, ok, error, engine.clock.now());
    if (outcome === "retry") return this.pump();
    if (outcome !== "done" || !entry) return;
    if (entry.frame.type === "proposal_respond") {
      engine.inbox.answers.set(entry.frame.proposal_id, { response: entry.frame.response, state: ok ? "done" : "failed", ...(error ? { error } : {}) });
    }
    await engine.commit({ outboxRemove: [entry.seq], ...(entry.frame.type === "proposal_respond" ? { meta: engine.inbox.meta() } : {}) });
    engine.events.emit("change", undefined);
    engine.events.emit("action", { id, type: entry.frame.type, ok, ...(data !== undefined ? { data } : {}), ...(error ? { error } : {}) });
  }

  // ---- rebuilding from history --------------------------------------------------

  /**
   * Fetches every retained notification of the stream up to the `head` of its status,
   * the unread ones first, page by page, keeping the page reached in the store so a
   * rebuild cut short resumes there. Then writes the stream's position.
   */
  async #rebuild(status: StreamStatus): Promise<void> {
    const engine = this.engine;
    const key = `rebuild:${status.stream}`;
    const saved = engine.meta[key] as { epoch: string; unread: boolean; after: number } | undefined;
    let progress = saved && saved.epoch === status.epoch ? saved : { epoch: status.epoch, unread: true, after: 0 };
    let failures = 0;
    // Its own backoff: a slow history must not lengthen the next reconnection's wait.
    const retry = new Backoff(() => engine.clock.random());
    while (!this.#ended) {
      let page;
      try {
        page = await fetchHistory(engine.options.fetch, httpBase(engine.options.url), engine.token ?? this.token, { stream: status.stream, after: progress.after, unread: progress.unread });
      } catch (err) {
        failures += 1;
        // 403: no longer readable (left the conversation); anything else: retry, then reconnect.
        if (err instanceof HttpError && err.status === 403) return;
        if (failures >= 3) return this.abandon((err as Error).message);
        await new Promise<void>((resolve) => engine.clock.setTimeout(resolve, retry.next()));
        continue;
      }
      failures = 0;
      if (page.epoch !== status.epoch) return this.abandon(`the history of ${status.stream} moved to another epoch: reconnecting to rebuild it`);
      const added: InboxItem[] = [];
      for (const h of page.notifications) {
        // Past the head of `welcome` is live delivery's: taken from history first, a
        // notification arriving now would count as old and raise no alert.
        if (h.offset > status.head) continue;
        const item = engine.inbox.accept(status.stream, page.epoch, h.offset, h.notification, h.read);
        if (item) added.push(item);
      }
      const last = page.next_after === undefined || page.next_after >= status.head;
      let next: typeof progress | undefined;
      if (!last) next = { ...progress, after: page.next_after! };
      else if (progress.unread) next = { epoch: status.epoch, unread: false, after: 0 };
      const cursor = this.#cursors.get(status.stream);
      if (this.#ended || !cursor || cursor.epoch !== status.epoch) return;
      if (next) {
        await this.#queuePersist({ put: added, meta: { [key]: next } }, added);
        progress = next;
        continue;
      }
      // Done: the position covers the rebuilt history and the live notifications since.
      await this.#queuePersist({ put: added, meta: { [key]: undefined } }, added, () => {
        cursor.rebuilding = false;
        return { [status.stream]: { epoch: cursor.epoch, offset: cursor.next - 1 } };
      });
      return;
    }
  }

  /** Persists on the frame queue, after the frames received before it. */
  #queuePersist(change: Commit, added: InboxItem[], positions?: () => Record<string, Position>): Promise<void> {
    const run = this.#frames.then(async () => {
      if (this.#ended) return;
      if (positions) change.positions = positions();
      await this.#persist(change, added, "history");
    });
    this.#frames = run.catch((err) => this.#failed(err));
    return run;
  }

  // ---- persistence ------------------------------------------------------------

  /** Writes a change (batched while replaying), then tells listeners. */
  async #persist(change: Commit, added: InboxItem[], source: ItemSource = "live"): Promise<void> {
    if (!this.#caughtUp && this.#welcomed && source === "replay") {
      this.#batch = merge(this.#batch, change, added);
      if ((this.#batch.change.put?.length ?? 0) >= REPLAY_BATCH) await this.#flush();
      return;
    }
    await this.#flush();
    await this.engine.commit(change);
    this.#announce(added, source);
  }

  async #flush(): Promise<void> {
    const batch = this.#batch;
    if (!batch) return;
    this.#batch = undefined;
    await this.engine.commit(batch.change);
    this.#announce(batch.added, "replay");
  }

  #announce(added: InboxItem[], source: ItemSource): void {
    if (added.length) this.engine.events.emit("notifications", { items: added, source });
    this.engine.events.emit("change", undefined);
  }

  #failed(err: unknown): void {
    this.#storageFailed = true;
    this.engine.setState({ error: localError(err) });
    this.abandon((err as Error)?.message ?? String(err));
  }

  // ---- liveness, tokens, sending ------------------------------------------------

  #schedulePing(): void {
    const clock = this.engine.clock;
    clock.clearTimeout(this.#pingTimer);
    this.#pingTimer = clock.setTimeout(() => this.#ping(), this.#limits!.heartbeat_interval_ms);
  }

  #ping(): void {
    if (this.#ended || !this.#limits) return;
    this.#send({ type: "ping" });
    const clock = this.engine.clock;
    if (this.#silenceTimer === undefined) {
      const timeout = this.#limits.heartbeat_timeout_ms;
      this.#silenceTimer = clock.setTimeout(() => this.abandon(`the gateway did not answer for ${timeout / 1000} s: reconnecting`), timeout);
    }
    this.#schedulePing();
  }

  /** Anything received proves the connection alive. */
  #alive(): void {
    this.engine.clock.clearTimeout(this.#silenceTimer);
    this.#silenceTimer = undefined;
  }

  /** Renews the token at 80 % of its remaining life, in band. */
  #scheduleRefresh(expiresAt: string): void {
    const clock = this.engine.clock;
    clock.clearTimeout(this.#refreshTimer);
    const remaining = Date.parse(expiresAt) - clock.now();
    if (!Number.isFinite(remaining)) return;
    this.#refreshTimer = clock.setTimeout(() => void this.#refresh(), Math.max(1_000, remaining * 0.8));
  }

  async #refresh(): Promise<void> {
    let token: string;
    try {
      token = await this.engine.options.getToken("refresh");
    } catch (err) {
      // The gateway closes with 4002 at expiry; the engine asks again then.
      this.engine.setState({ error: localError(err) });
      return;
    }
    if (this.#ended) return;
    this.engine.token = token;
    this.#refreshId = newId();
    this.#send({ type: "refresh", id: this.#refreshId, access_token: token });
  }

  #send(frame: ClientFrame): void {
    const ws = this.#ws;
    if (!ws || ws.readyState !== 1 /* OPEN */) return;
    ws.send(JSON.stringify(frame));
  }

  #end(end: SessionEnd): void {
    if (this.#ended) return;
    this.#ended = true;
    const clock = this.engine.clock;
    for (const timer of [this.#pingTimer, this.#silenceTimer, this.#refreshTimer, this.#stableTimer, this.#pumpTimer]) clock.clearTimeout(timer);
    this.engine.outbox.stop();
    const ws = this.#ws;
    if (ws) {
      ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
      if (ws.readyState === 0 || ws.readyState === 1) ws.close(1000);
    }
    // What was replayed is written with its positions before the next session starts.
    const batch = this.#batch;
    this.#batch = undefined;
    const write = batch ? this.engine.commit(batch.change).then(() => this.#announce(batch.added, "replay")) : Promise.resolve();
    void write
      .catch(() => {
        this.#storageFailed = true;
      })
      .then(() => this.#finish?.({ ...end, ...(this.#storageFailed ? { storageFailed: true } : {}) }));
  }
}

function merge(batch: Batch | undefined, change: Commit, added: InboxItem[]): Batch {
  const b = batch ?? { change: {}, added: [] };
  const c = b.change;
  if (change.put?.length) (c.put ??= []).push(...change.put);
  if (change.remove?.length) (c.remove ??= []).push(...change.remove);
  if (change.positions) c.positions = { ...c.positions, ...change.positions };
  if (change.meta) c.meta = { ...c.meta, ...change.meta };
  b.added.push(...added);
  return b;
}

/** `https://host` → `wss://host/v1/ws` (and http → ws). */
export function wsUrl(base: string): string {
  const url = new URL(WS_PATH, httpBase(base) + "/");
  url.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  return url.toString();
}

/** The base URL without a trailing slash. */
export function httpBase(base: string): string {
  return base.replace(/\/+$/, "");
}
