/**
 * One connection per browser, not per tab: the tabs of an origin that use the same
 * gateway and scope elect a leader with the Web Locks API — the tab holding the lock
 * runs the {@link Engine} and its socket — and talk over a BroadcastChannel.
 *
 * The leader sends every change it writes to the store (`commit`), its events and
 * its state; a follower mirrors them into its own inbox after asking for a snapshot,
 * and sends its user's actions to the leader as calls carrying the action's id. When
 * the leader's tab closes, the browser releases its lock and the next tab in line
 * takes it, loads the store (IndexedDB is shared by the origin's tabs) and resumes
 * from the positions the old leader wrote; calls still unanswered are sent again to
 * the new leader with the same ids, so none is lost and none applied twice.
 */

import type { EngineEvents } from "./engine.js";
import type { Engine } from "./engine.js";
import type { Commit } from "./storage.js";
import type { ConnectionState, InboxItem, Presence, Typist } from "./types.js";

/** The engine methods a follower may call on the leader. */
export type CallMethod = "markRead" | "markAllRead" | "respond" | "acknowledge" | "shown" | "typingIn" | "setPresence" | "reconnectNow";

/** Events forwarded from the leader to followers as they are (commit is sent on its own). */
export const FORWARDED: ReadonlyArray<keyof EngineEvents> = ["state", "notifications", "read", "retracted", "typing", "presence", "action", "caughtUp", "change"];

export interface SyncSnapshot {
  items: InboxItem[];
  meta: Record<string, unknown>;
  state: ConnectionState;
  typing: Record<string, Typist[]>;
  presence: Array<[string, Presence]>;
}

export type TabMessage =
  | { t: "sync?"; from: string }
  | { t: "sync"; to: string; snapshot: SyncSnapshot }
  | { t: "commit"; change: Commit }
  | { t: "event"; name: keyof EngineEvents; value: unknown }
  | { t: "call"; from: string; callId: string; method: CallMethod; args: unknown[] }
  | { t: "return"; to: string; callId: string; ok: boolean; value?: unknown; error?: string }
  | { t: "leader"; id: string };

/** True when this browser can share one connection between tabs. */
export function canShareTabs(): boolean {
  return typeof BroadcastChannel !== "undefined" && typeof navigator !== "undefined" && !!navigator.locks;
}

/**
 * Waits for the lock named `name`; calls `onLeader` once it is held and keeps it until
 * `release()` (or the tab closes). Returns `release`.
 */
export function elect(name: string, onLeader: () => void): () => void {
  let release!: () => void;
  const held = new Promise<void>((resolve) => (release = resolve));
  const abort = new AbortController();
  navigator.locks
    .request(name, { signal: abort.signal }, async () => {
      onLeader();
      await held;
    })
    .catch(() => undefined); // aborted before it was granted
  return () => {
    abort.abort();
    release();
  };
}

/** The leader's side of the channel: answers followers and tells them everything. */
export class LeaderHub {
  readonly #unsubscribe: Array<() => void> = [];

  constructor(
    readonly id: string,
    private readonly engine: Engine,
    private readonly channel: BroadcastChannel,
  ) {
    const post = (message: TabMessage) => channel.postMessage(message);
    this.#unsubscribe.push(engine.events.on("commit", (change) => post({ t: "commit", change })));
    for (const name of FORWARDED) {
      this.#unsubscribe.push(engine.events.on(name, (value) => post({ t: "event", name, value })));
    }
    channel.onmessage = (event: MessageEvent<TabMessage>) => void this.#received(event.data);
    post({ t: "leader", id });
  }

  async #received(message: TabMessage): Promise<void> {
    const post = (m: TabMessage) => this.channel.postMessage(m);
    if (message.t === "sync?") {
      await this.engine.load();
      post({ t: "sync", to: message.from, snapshot: this.snapshot() });
    } else if (message.t === "call") {
      try {
        const method = this.engine[message.method] as (...args: unknown[]) => unknown;
        const value = await method.apply(this.engine, message.args);
        post({ t: "return", to: message.from, callId: message.callId, ok: true, value });
      } catch (err) {
        post({ t: "return", to: message.from, callId: message.callId, ok: false, error: err instanceof Error ? err.message : String(err) });
      }
    }
  }

  snapshot(): SyncSnapshot {
    const engine = this.engine;
    const typing: Record<string, Typist[]> = {};
    for (const conversation of engine.typing.keys()) typing[conversation] = engine.typists(conversation);
    return {
      items: [...engine.inbox.items.values()],
      meta: engine.inbox.meta(),
      state: engine.state,
      typing,
      presence: [...engine.presence],
    };
  }

  close(): void {
    for (const unsubscribe of this.#unsubscribe.splice(0)) unsubscribe();
    this.channel.onmessage = null;
  }
}
