/**
 * `TocsinClient`, what a web page uses: the gateway's URL and a token callback in,
 * the inbox, the unread counts, proposals, typing and presence out, as plain reads
 * and change events (the React hooks and `<tocsin-bell>` are built on these).
 *
 * It wires the {@link Engine} to the browser: IndexedDB by default (memory when
 * IndexedDB is missing or `storage` says so), the page's `WebSocket` and `fetch`,
 * `online`/`offline` and `visibilitychange` to reconnect or check the socket at once.
 */

import { systemClock, type Clock } from "./clock.js";
import { Engine, type EngineEvents, type TokenReason } from "./engine.js";
import { IndexedDbStorage } from "./indexeddb.js";
import type { ListFilter } from "./inbox.js";
import type { Kind, Presence, ProposalResponse } from "./protocol/index.js";
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
  /** Listen to the window's online/offline/visibility events (default true in a browser). */
  watchPage?: boolean;
}

export type TocsinEvents = EngineEvents;

/** The SDK's version, sent as `client` in `hello`. */
export const VERSION = "0.1.0";

export class TocsinClient {
  readonly #engine: Engine;
  readonly #unwatch: Array<() => void> = [];

  constructor(options: TocsinClientOptions) {
    const getToken = options.getToken;
    this.#engine = new Engine({
      url: options.url,
      getToken: async (reason) => getToken(reason),
      storage: resolveStorage(options),
      clock: options.clock ?? systemClock,
      WebSocket: options.WebSocket ?? globalThis.WebSocket,
      fetch: options.fetch ?? globalThis.fetch.bind(globalThis),
      clientName: options.clientName ?? `tocsin-web/${VERSION}`,
      typingTtlMs: options.typingTtlMs ?? 6_000,
    });
    if (options.watchPage ?? typeof window !== "undefined") this.#watchPage();
  }

  /** Connects, and stays connected until {@link stop}. Safe to call twice. */
  start(): this {
    this.#engine.start();
    return this;
  }

  /** Disconnects; nothing queued is lost (it is sent on the next start). */
  stop(): void {
    this.#engine.stop();
  }

  /** Stops and removes the page listeners. */
  dispose(): void {
    this.stop();
    for (const unwatch of this.#unwatch.splice(0)) unwatch();
  }

  /** Tries now, e.g. after the user closed another window (stop code 4104). */
  reconnect(): void {
    this.#engine.reconnectNow();
  }

  /** Waits until the store is read (items are there). */
  ready(): Promise<void> {
    return this.#engine.load();
  }

  on<K extends keyof TocsinEvents>(name: K, listener: (value: TocsinEvents[K]) => void): () => void {
    return this.#engine.events.on(name, listener);
  }

  get state(): ConnectionState {
    return this.#engine.state;
  }

  /** The inbox, newest first. */
  notifications(filter?: ListFilter): InboxItem[] {
    return this.#engine.inbox.list(filter);
  }

  /** One notification by id. */
  get(id: string): InboxItem | undefined {
    return this.#engine.inbox.items.get(id);
  }

  unread(): { total: number; byKind: Record<string, number> } {
    return this.#engine.inbox.unread();
  }

  /** A conversation's proposals, newest first, with their status and this device's answer. */
  proposals(conversationId: string): ProposalView[] {
    return this.#engine.inbox.proposals(conversationId);
  }

  /** Whether a deadline was taken in, and by whom. */
  acknowledgement(deadlineId: string) {
    return this.#engine.inbox.acknowledgements.get(deadlineId);
  }

  typists(conversationId: string): Typist[] {
    return this.#engine.typists(conversationId);
  }

  presence(): ReadonlyMap<string, Presence> {
    return this.#engine.presence;
  }

  markRead(ids: readonly string[]): Promise<void> {
    return this.#engine.markRead(ids);
  }

  markAllRead(kind?: Kind | string): Promise<void> {
    return this.#engine.markAllRead(kind);
  }

  /** Returns the action id; its answer arrives as an `action` event. */
  respond(proposalId: string, response: ProposalResponse): Promise<string> {
    return this.#engine.respond(proposalId, response);
  }

  acknowledge(notificationIds: readonly string[]): Promise<string> {
    return this.#engine.acknowledge(notificationIds);
  }

  /** Reports notifications shown as browser notifications (for the deadline audit trail). */
  shown(notificationIds: readonly string[]): Promise<void> {
    return this.#engine.shown(notificationIds);
  }

  /** Live only: returns false when not connected (typing is never queued). */
  typing(conversationId: string, active: boolean): boolean {
    return this.#engine.typingIn(conversationId, active);
  }

  /** Live only: returns false when not connected (presence is never queued). */
  setPresence(status: Presence): boolean {
    return this.#engine.setPresence(status);
  }

  #watchPage(): void {
    const listen = (target: EventTarget | undefined, name: string, fn: () => void) => {
      if (!target) return;
      target.addEventListener(name, fn);
      this.#unwatch.push(() => target.removeEventListener(name, fn));
    };
    const win = typeof window !== "undefined" ? window : undefined;
    const doc = typeof document !== "undefined" ? document : undefined;
    listen(win, "online", () => this.#engine.resume());
    listen(win, "offline", () => this.#engine.networkLost());
    listen(doc, "visibilitychange", () => {
      if (doc?.visibilityState === "visible") this.#engine.resume();
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
