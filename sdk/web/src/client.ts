/**
 * `TocsinClient`, what a web page uses: the gateway's URL and a token callback in,
 * the inbox, the unread counts, proposals, typing and presence out, as plain reads
 * and change events (the React hooks and `<tocsin-bell>` are built on these).
 *
 * It wires the {@link Engine} to the browser: IndexedDB by default (memory when
 * IndexedDB is missing or `storage` says so), the page's `WebSocket` and `fetch`,
 * `online`/`offline` and `visibilitychange` to reconnect or check the socket at once.
 * With several tabs open, only the leader tab runs the engine (`tabs.ts`); the others
 * read a mirror of its inbox and send it their actions, through the same methods.
 */

import { systemClock, type Clock } from "./clock.js";
import { Engine, newId, type EngineEvents, type TokenReason } from "./engine.js";
import { Emitter } from "./events.js";
import { Follower } from "./follower.js";
import { canShareTabs, elect, LeaderHub } from "./tabs.js";
import { IndexedDbStorage } from "./indexeddb.js";
import type { ListFilter } from "./inbox.js";
import type { Acknowledgement, Kind, Presence, ProposalResponse } from "./protocol/index.js";
import { MemoryStorage, type TocsinStorage } from "./storage.js";
import type { ConnectionState, InboxItem, ProposalView, Typist } from "./types.js";

export interface TocsinClientOptions {
  /** The gateway's base URL, e.g. `https://tocsin.cabinet-dupont.fr:8443`. */
  url: string;
  /**
   * Returns an access token for the signed-in user: the gateway's own, or one the
   * firm's backend mints for Tocsin (`[auth.external]`). Called on every connection
   * with the reason; on `refresh`, `expired` and `rejected` return a new token (throw
   * on `rejected` when the user must sign in again).
   */
  getToken: (reason: TokenReason) => Promise<string> | string;
  /**
   * Where the inbox, positions and outbox are kept. Default: IndexedDB, in a database
   * named after the gateway and `scope`. `"memory"` keeps nothing across reloads.
   */
  storage?: TocsinStorage | "memory";
  /**
   * Separates the stores of several users or apps on one origin (e.g. the signed-in
   * user's id). Without it the client keeps one store per gateway and, when another
   * user signs in, forgets the previous user's notifications.
   */
  scope?: string;
  /** Sent in `hello` for the gateway's logs. */
  clientName?: string;
  /** How long a typing indicator lasts without renewal (default 6 s). */
  typingTtlMs?: number;
  /** For tests: time, timers and randomness. */
  clock?: Clock;
  /** For tests: the socket and fetch implementations. */
  WebSocket?: typeof WebSocket;
  fetch?: typeof fetch;
  /**
   * Share one connection between the tabs of this origin (default true where Web Locks
   * and BroadcastChannel exist): one tab holds the socket, the others follow it.
   */
  shareTabs?: boolean;
  /** Listen to the window's online/offline/visibility events (default true in a browser). */
  watchPage?: boolean;
}

export type TocsinEvents = Omit<EngineEvents, "commit">;

/** The events a client re-emits from its engine or leader. */
const RELAYED: ReadonlyArray<keyof TocsinEvents> = ["state", "notifications", "read", "retracted", "typing", "presence", "action", "caughtUp", "change"];

/** The SDK's version, sent as `client` in `hello`. */
export const VERSION = "0.1.0";

/** What the client reads and calls, whether this tab leads or follows. */
type Backend = Pick<Engine, "events" | "inbox" | "presence" | "state" | "markRead" | "markAllRead" | "respond" | "acknowledge" | "shown" | "typingIn" | "setPresence" | "reconnectNow" | "typists" | "load">;

/** This tab's part: it holds the socket, follows another tab's, or is alone. */
export type TabRole = "leader" | "follower" | "single";

export class TocsinClient {
  readonly #events = new Emitter<EngineEvents>();
  readonly #options: TocsinClientOptions;
  readonly #storage: TocsinStorage;
  readonly #clock: Clock;
  readonly #unwatch: Array<() => void> = [];
  readonly #tabId = newId();
  #backend: Backend;
  #engine: Engine | undefined;
  #follower: Follower | undefined;
  #hub: LeaderHub | undefined;
  #channel: BroadcastChannel | undefined;
  #release: (() => void) | undefined;
  #detach: Array<() => void> = [];
  #role: TabRole;
  #started = false;

  constructor(options: TocsinClientOptions) {
    this.#options = options;
    this.#storage = resolveStorage(options);
    this.#clock = options.clock ?? systemClock;
    const share = (options.shareTabs ?? true) && canShareTabs();
    if (share) {
      const name = `tocsin:${options.url.replace(/\/+$/, "")}${options.scope ? `:${options.scope}` : ""}`;
      this.#channel = new BroadcastChannel(name);
      this.#role = "follower";
      this.#backend = this.#follow();
      this.#release = elect(name, () => this.#lead());
    } else {
      this.#role = "single";
      this.#backend = this.#makeEngine();
    }
    if (options.watchPage ?? typeof window !== "undefined") this.#watchPage();
  }

  /** Whether this tab holds the socket (`leader`), uses another tab's (`follower`), or is alone (`single`). */
  get role(): TabRole {
    return this.#role;
  }

  /** Connects (or joins the tab that is connected), and stays so until {@link stop}. */
  start(): this {
    this.#started = true;
    this.#engine?.start();
    return this;
  }

  /** Disconnects; nothing queued is lost (it is sent on the next start). */
  stop(): void {
    this.#started = false;
    this.#engine?.stop();
  }

  /** Stops, hands the socket to another tab, and removes the page listeners. */
  dispose(): void {
    this.stop();
    this.#release?.();
    this.#hub?.close();
    this.#follower?.close();
    this.#channel?.close();
    for (const unwatch of this.#unwatch.splice(0)) unwatch();
  }

  /** Tries now, e.g. after the user closed another window (stop code 4104). */
  reconnect(): void {
    this.#backend.reconnectNow();
  }

  /** Waits until the inbox is there (read from the store, or from the leader tab). */
  ready(): Promise<void> {
    return this.#backend.load();
  }

  on<K extends keyof TocsinEvents>(name: K, listener: (value: TocsinEvents[K]) => void): () => void {
    return this.#events.on(name, listener);
  }

  get state(): ConnectionState {
    return this.#backend.state;
  }

  /** The inbox, newest first. */
  notifications(filter?: ListFilter): InboxItem[] {
    return this.#backend.inbox.list(filter);
  }

  /** One notification by id. */
  get(id: string): InboxItem | undefined {
    return this.#backend.inbox.items.get(id);
  }

  unread(): { total: number; byKind: Record<string, number> } {
    return this.#backend.inbox.unread();
  }

  /** A conversation's proposals, newest first, with their status and this device's answer. */
  proposals(conversationId: string): ProposalView[] {
    return this.#backend.inbox.proposals(conversationId);
  }

  /** Whether a deadline was taken in, and by whom. */
  acknowledgement(deadlineId: string): Acknowledgement | undefined {
    return this.#backend.inbox.acknowledgements.get(deadlineId);
  }

  typists(conversationId: string): Typist[] {
    return this.#backend.typists(conversationId);
  }

  presence(): ReadonlyMap<string, Presence> {
    return this.#backend.presence;
  }

  markRead(ids: readonly string[]): Promise<void> {
    return this.#backend.markRead(ids);
  }

  markAllRead(kind?: Kind | string): Promise<void> {
    return this.#backend.markAllRead(kind);
  }

  /** Returns the action id; its answer arrives as an `action` event. */
  respond(proposalId: string, response: ProposalResponse): Promise<string> {
    return this.#backend.respond(proposalId, response);
  }

  acknowledge(notificationIds: readonly string[]): Promise<string> {
    return this.#backend.acknowledge(notificationIds);
  }

  /** Reports notifications shown as browser notifications (for the deadline audit trail). */
  shown(notificationIds: readonly string[]): Promise<void> {
    return this.#backend.shown(notificationIds);
  }

  /** Live only: returns false when not connected (typing is never queued). */
  typing(conversationId: string, active: boolean): boolean {
    return this.#backend.typingIn(conversationId, active);
  }

  /** Live only: returns false when not connected (presence is never queued). */
  setPresence(status: Presence): boolean {
    return this.#backend.setPresence(status);
  }

  // ---- roles --------------------------------------------------------------------

  #makeEngine(): Engine {
    const options = this.#options;
    const getToken = options.getToken;
    const engine = new Engine({
      url: options.url,
      getToken: async (reason) => getToken(reason),
      storage: this.#storage,
      clock: this.#clock,
      WebSocket: options.WebSocket ?? globalThis.WebSocket,
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
      clientName: options.clientName ?? `tocsin-web/${VERSION}`,
      typingTtlMs: options.typingTtlMs ?? 6_000,
    });
    this.#engine = engine;
    this.#relay(engine.events);
    return engine;
  }

  #follow(): Follower {
    const follower = new Follower(this.#tabId, this.#channel!, () => this.#clock.now());
    this.#follower = follower;
    this.#relay(follower.events);
    return follower;
  }

  /** This tab got the lock: run the engine, and finish the calls the old leader left. */
  #lead(): void {
    const pending = this.#follower?.takePending() ?? [];
    this.#follower?.close();
    this.#follower = undefined;
    for (const detach of this.#detach.splice(0)) detach();
    this.#role = "leader";
    const engine = this.#makeEngine();
    this.#backend = engine;
    this.#hub = new LeaderHub(this.#tabId, engine, this.#channel!);
    void engine.load().then(() => {
      this.#events.emit("change", undefined);
      for (const call of pending) {
        const method = engine[call.method] as (...args: unknown[]) => unknown;
        Promise.resolve(method.apply(engine, call.args)).then(call.resolve, call.reject);
      }
    });
    if (this.#started) engine.start();
  }

  /** Re-emits a backend's events to the client's listeners, which outlive the backend. */
  #relay(events: Emitter<EngineEvents>): void {
    for (const name of RELAYED) this.#detach.push(events.on(name, (value) => this.#events.emit(name, value as never)));
  }

  #watchPage(): void {
    const listen = (target: EventTarget | undefined, name: string, fn: () => void) => {
      if (!target) return;
      target.addEventListener(name, fn);
      this.#unwatch.push(() => target.removeEventListener(name, fn));
    };
    const win = typeof window !== "undefined" ? window : undefined;
    const doc = typeof document !== "undefined" ? document : undefined;
    listen(win, "online", () => this.#engine?.resume());
    listen(win, "offline", () => this.#engine?.networkLost());
    listen(doc, "visibilitychange", () => {
      if (doc?.visibilityState === "visible") this.#engine?.resume();
    });
  }
}

function resolveStorage(options: TocsinClientOptions): TocsinStorage {
  if (options.storage === "memory") return new MemoryStorage();
  if (options.storage) return options.storage;
  if (typeof indexedDB === "undefined") return new MemoryStorage();
  const name = `tocsin:${options.url.replace(/\/+$/, "")}${options.scope ? `:${options.scope}` : ""}`;
  return new IndexedDbStorage(name);
}
