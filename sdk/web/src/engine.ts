/**
 * The engine: the one object that owns the socket. It loads the store, runs one
 * {@link Session} after another with the backoff between them, decides from each
 * close what comes next (reconnect, refresh the token first, wait, or stop and say
 * why), wakes early on `online` and when the page becomes visible, and applies the
 * user's actions locally before queueing them.
 *
 * Everything that changes the store goes through {@link Engine.commit}, one change
 * at a time in arrival order, so positions are written after the notifications they
 * cover and never ahead of them.
 */

import { Backoff } from "./backoff.js";
import type { Clock, Timer } from "./clock.js";
import { decideClose, type StopReason } from "./close.js";
import { Emitter } from "./events.js";
import { Inbox } from "./inbox.js";
import { Outbox } from "./outbox.js";
import type { ErrorBody, Kind, Position, Presence, ProposalResponse } from "./protocol/index.js";
import { Session, type SessionEnd } from "./session.js";
import type { Commit, TocsinStorage } from "./storage.js";
import type { ActionFrame, ActionResult, ConnectionState, InboxItem, Positions, Typist } from "./types.js";

/** Why the host app is asked for a token. */
export type TokenReason =
  /** Connecting; a cached token that is still valid will do. */
  | "connect"
  /** Renewing before expiry: return a new token. */
  | "refresh"
  /** The gateway said the token expired (close 4002): return a new token. */
  | "expired"
  /** The gateway refused the token (close 4100): return a new one, or throw to sign out. */
  | "rejected";

/** Where an item came from, for deciding whether to alert the user. */
export type ItemSource = "live" | "replay" | "history";

export interface EngineEvents {
  state: ConnectionState;
  /** New notifications (already stored). */
  notifications: { items: InboxItem[]; source: ItemSource };
  /** Anything the inbox shows changed: items, read flags, retractions, acknowledgements. */
  change: void;
  /** Notifications became read (here or on another device). */
  read: { ids: string[] };
  /** Notifications withdrawn by the firm: close their alerts. */
  retracted: { ids: string[] };
  typing: { conversationId: string; typists: Typist[] };
  presence: { userId: string; status: Presence };
  /** A queued action got its final answer. */
  action: ActionResult;
  caughtUp: void;
  /** A change was written to the store (follower tabs apply the same change to their copy). */
  commit: Commit;
}

export interface EngineOptions {
  /** The gateway's base URL (`https://tocsin.example:8443`). */
  url: string;
  getToken: (reason: TokenReason) => Promise<string>;
  storage: TocsinStorage;
  clock: Clock;
  WebSocket: typeof WebSocket;
  fetch: typeof fetch;
  /** Sent in `hello` for the gateway's logs. */
  clientName: string;
  /** How long a typing indicator lasts without renewal. */
  typingTtlMs: number;
}

/** How long a connection must stay up past `caught_up` before the backoff resets. */
export const STABLE_MS = 60_000;

export class Engine {
  readonly events = new Emitter<EngineEvents>();
  readonly inbox = new Inbox();
  readonly outbox = new Outbox();
  /** The positions held durably, as sent in `hello`. */
  positions: Positions = {};
  meta: Record<string, unknown> = {};
  readonly typing = new Map<string, Map<string, number>>();
  readonly presence = new Map<string, Presence>();
  readonly backoff: Backoff;
  state: ConnectionState = { status: "idle", catchingUp: false };
  /** The token of the current connection, for history requests. */
  token: string | undefined;

  #session: Session | undefined;
  #running = false;
  /** Bumped by each start: a loop from before a stop/start ends instead of running beside the new one. */
  #generation = 0;
  #wake: (() => void) | undefined;
  #waitTimer: Timer | undefined;
  #loaded: Promise<void> | undefined;
  #chain: Promise<unknown> = Promise.resolve();
  #typingTimers = new Map<string, Timer>();

  constructor(readonly options: EngineOptions) {
    this.backoff = new Backoff(() => options.clock.random());
  }

  get clock(): Clock {
    return this.options.clock;
  }

  /** Reads the store once (later calls wait for the same read). */
  load(): Promise<void> {
    this.#loaded ??= this.#reload();
    return this.#loaded;
  }

  async #reload(): Promise<void> {
    const snapshot = await this.options.storage.load();
    this.inbox.clear();
    this.outbox.clear();
    this.inbox.restore(snapshot.items, snapshot.meta);
    this.outbox.restore(snapshot.outbox);
    this.positions = snapshot.positions;
    this.meta = snapshot.meta;
    this.events.emit("change", undefined);
  }

  /** Starts connecting, and keeps reconnecting until {@link stop} or a stop code. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#generation += 1;
    void this.#run(this.#generation);
  }

  /** Closes the socket and stops reconnecting. */
  stop(): void {
    this.#running = false;
    this.#session?.abandon("stopped");
    this.#wake?.();
    this.#setState({ status: "stopped", stopReason: "stopped" });
  }

  /** Connects now: after a stop code the user asked to retry, or a network came back. */
  reconnectNow(): void {
    if (!this.#running) return this.start();
    this.#wake?.();
  }

  /** The page became visible or the network came back: a waiting client tries at once, a connected one checks its socket. */
  resume(): void {
    if (this.#session) this.#session.probe();
    else this.#wake?.();
  }

  /** The browser says the network is gone: the socket cannot be trusted. */
  networkLost(): void {
    this.#session?.abandon("the browser went offline");
  }

  /** Applies `change` to the store after every earlier change; updates the held positions once it is written. */
  commit(change: Commit): Promise<void> {
    const run = this.#chain.then(async () => {
      await this.options.storage.commit(change);
      if (change.dropPositions) for (const stream of change.dropPositions) delete this.positions[stream];
      if (change.positions) Object.assign(this.positions, structuredClone(change.positions));
      if (change.meta) for (const [key, value] of Object.entries(change.meta)) {
        if (value === undefined) delete this.meta[key];
        else this.meta[key] = value;
      }
      this.events.emit("commit", change);
    });
    this.#chain = run.catch(() => undefined);
    return run;
  }

  async #run(generation: number): Promise<void> {
    let tokenReason: TokenReason = "connect";
    let rejectedOnce = false;
    const current = () => this.#running && this.#generation === generation;
    await this.load().catch((err) => this.#setState({ error: localError(err) }));
    while (current()) {
      this.#setState({ status: "connecting" });
      let end: SessionEnd;
      try {
        this.token = await this.options.getToken(tokenReason);
      } catch (err) {
        if (tokenReason === "rejected") {
          this.#halt("signed_out", localError(err));
          break;
        }
        this.#setState({ error: localError(err) });
        await this.#wait(this.backoff.next());
        continue;
      }
      tokenReason = "connect";
      if (!current()) break;
      const session = new Session(this, this.token);
      this.#session = session;
      end = await session.run();
      if (this.#session === session) this.#session = undefined;
      if (end.kind === "welcomed") rejectedOnce = false;
      if (!current()) break;
      if (end.storageFailed) await this.#reload().catch(() => undefined);
      const decision = end.close ? decideClose(end.close.code, end.close.reason) : { action: "reconnect" as const };
      switch (decision.action) {
        case "stop":
          this.#halt(decision.reason);
          break;
        case "reject_token":
          if (rejectedOnce) {
            this.#halt("signed_out");
            break;
          }
          rejectedOnce = true;
          tokenReason = "rejected";
          await this.#wait(this.backoff.next());
          break;
        case "refresh":
          tokenReason = "expired";
          await this.#wait(this.backoff.next());
          break;
        case "wait":
          await this.#wait(Math.max(decision.ms, this.backoff.next()));
          break;
        case "reconnect":
          await this.#wait(this.backoff.next());
          break;
      }
    }
  }

  #halt(reason: StopReason, error?: ErrorBody): void {
    this.#running = false;
    this.#setState({ status: "stopped", stopReason: reason, ...(error ? { error } : {}) });
  }

  /** Waits `ms`, or less if woken by {@link reconnectNow} / {@link resume}. */
  #wait(ms: number): Promise<void> {
    const clock = this.clock;
    this.#setState({ status: "offline", retryAt: clock.now() + ms });
    return new Promise((resolve) => {
      const finish = () => {
        clock.clearTimeout(this.#waitTimer);
        this.#waitTimer = undefined;
        this.#wake = undefined;
        resolve();
      };
      this.#wake = finish;
      this.#waitTimer = clock.setTimeout(finish, ms);
    });
  }

  /** Updates the state and tells listeners; `offlineSince` starts when the connection is lost. */
  setState(patch: Partial<ConnectionState>): void {
    this.#setState(patch);
  }

  #setState(patch: Partial<ConnectionState>): void {
    const next: ConnectionState = { ...this.state, ...patch };
    // `undefined` in a patch removes the field (optional fields are absent, never undefined).
    for (const key of Object.keys(patch) as Array<keyof ConnectionState>) {
      if (patch[key] === undefined) delete next[key];
    }
    if (next.status === "connected") {
      delete next.offlineSince;
      delete next.retryAt;
      delete next.stopReason;
    } else {
      next.offlineSince ??= this.clock.now();
      if (next.status !== "offline") delete next.retryAt;
    }
    if (next.status !== "stopped") delete next.stopReason;
    this.state = next;
    this.events.emit("state", next);
  }

  /** Another user signed in on this browser: forget the previous one's store. */
  async resetForUser(userId: string): Promise<void> {
    await this.commit({});
    await this.options.storage.clear();
    await this.options.storage.commit({ meta: { user: userId } });
    this.#loaded = this.#reload();
    await this.#loaded;
  }

  // ---- the user's actions -------------------------------------------------------

  /** Marks notifications read here at once, and on the gateway (now or when back online). */
  async markRead(ids: readonly string[], id = newId()): Promise<void> {
    await this.load();
    const changed = this.inbox.markRead(ids);
    if (changed.length === 0) return;
    // The gateway takes at most 500 ids per action.
    const frames: ActionFrame[] = [];
    for (let i = 0; i < changed.length; i += 500) {
      frames.push({ type: "mark_read", id: i === 0 ? id : newId(), notification_ids: changed.slice(i, i + 500).map((item) => item.notification.id) });
    }
    await this.#queue(frames, { put: changed });
    this.events.emit("read", { ids: changed.map((item) => item.notification.id) });
  }

  /** Marks read everything the user has seen (of `kind` if given): what arrives later stays unread. */
  async markAllRead(kind?: Kind | string, id = newId()): Promise<void> {
    await this.load();
    const upTo = this.#seen();
    const changed = this.inbox.list({ unreadOnly: true, ...(kind ? { kind } : {}) }).filter((item) => {
      const seen = upTo[item.stream];
      return seen !== undefined && seen.epoch === item.epoch && item.offset <= seen.offset;
    });
    for (const item of changed) item.read = true;
    const frame: ActionFrame = { type: "mark_all_read", id, up_to: upTo, ...(kind ? { kind: kind as Kind } : {}) };
    await this.#queue([frame], { put: changed });
    this.events.emit("read", { ids: changed.map((item) => item.notification.id) });
  }

  /** Accepts or rejects a proposal; the answer comes as an `action` event and in {@link Inbox.proposals}. */
  async respond(proposalId: string, response: ProposalResponse, id = newId()): Promise<string> {
    await this.load();
    const frame: ActionFrame = { type: "proposal_respond", id, proposal_id: proposalId, response };
    if (!this.outbox.entries.some((e) => e.frame.id === id)) this.inbox.answers.set(proposalId, { response, state: "sending" });
    await this.#queue([frame], { meta: this.inbox.meta() });
    return frame.id;
  }

  /** Takes deadline alerts in ("Pris en compte"). */
  async acknowledge(ids: readonly string[], id = newId()): Promise<string> {
    await this.load();
    const frame: ActionFrame = { type: "acknowledge", id, notification_ids: [...ids] };
    await this.#queue([frame], {});
    return frame.id;
  }

  /** Records that notifications were shown as browser notifications (the deadline audit trail). */
  async shown(ids: readonly string[], id = newId()): Promise<void> {
    await this.load();
    await this.#queue([{ type: "shown", id, notification_ids: [...ids] }], {});
  }

  /** Tells the conversation's other members the user is (or stopped) typing. Live only: false when not connected. */
  typingIn(conversationId: string, active: boolean): boolean {
    return this.#session?.sendLive({ type: "typing", id: newId(), conversation_id: conversationId, active }) ?? false;
  }

  /** Sets the user's presence for the firm. Live only: false when not connected. */
  setPresence(status: Presence): boolean {
    return this.#session?.sendLive({ type: "presence", id: newId(), status }) ?? false;
  }

  /** Who is typing in a conversation now. */
  typists(conversationId: string): Typist[] {
    const now = this.clock.now();
    return [...(this.typing.get(conversationId) ?? new Map<string, number>())]
      .filter(([, until]) => until > now)
      .map(([userId, until]) => ({ userId, until }));
  }

  /** Applies a typing indicator and schedules its lapse. */
  noteTyping(conversationId: string, userId: string, active: boolean): void {
    let users = this.typing.get(conversationId);
    if (!users) this.typing.set(conversationId, (users = new Map()));
    const key = `${conversationId}\u0000${userId}`;
    this.clock.clearTimeout(this.#typingTimers.get(key));
    if (active) {
      users.set(userId, this.clock.now() + this.options.typingTtlMs);
      this.#typingTimers.set(
        key,
        this.clock.setTimeout(() => {
          users.delete(userId);
          this.#typingTimers.delete(key);
          this.events.emit("typing", { conversationId, typists: this.typists(conversationId) });
        }, this.options.typingTtlMs),
      );
    } else {
      users.delete(userId);
      this.#typingTimers.delete(key);
    }
    this.events.emit("typing", { conversationId, typists: this.typists(conversationId) });
  }

  /** The position per stream of everything the inbox holds now: what the user saw. */
  #seen(): Record<string, Position> {
    const seen: Record<string, Position> = {};
    for (const [stream, position] of Object.entries(this.positions)) seen[stream] = { ...position };
    const cursors = this.#session?.heldPositions() ?? {};
    for (const [stream, position] of Object.entries(cursors)) seen[stream] = position;
    return seen;
  }

  async #queue(frames: ActionFrame[], change: Commit): Promise<void> {
    const now = this.clock.now();
    const entries = frames.flatMap((frame) => this.outbox.add(frame, now) ?? []);
    await this.commit({ ...change, outboxPut: entries });
    this.events.emit("change", undefined);
    this.#session?.pump();
  }
}

/** A unique action id (PROTOCOL.md §4.3: unique per user across devices). */
export function newId(): string {
  return globalThis.crypto.randomUUID();
}

export function localError(err: unknown): ErrorBody {
  return { code: "internal", message: err instanceof Error ? err.message : String(err) };
}
