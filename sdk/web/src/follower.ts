/**
 * A follower tab: no socket of its own. It mirrors the leader's inbox (a snapshot,
 * then every change the leader writes), re-emits the leader's events, and sends its
 * user's actions to the leader as calls. Actions carry their id from here, so a call
 * re-sent to a new leader after a handover is the same action, not a second one.
 */

import { newId, type EngineEvents } from "./engine.js";
import { Emitter } from "./events.js";
import { Inbox } from "./inbox.js";
import type { Kind, Presence, ProposalResponse } from "./protocol/index.js";
import type { CallMethod, TabMessage } from "./tabs.js";
import type { ConnectionState, Typist } from "./types.js";

interface Pending {
  method: CallMethod;
  args: unknown[];
  resolve: (value: unknown) => void;
  reject: (err: Error) => void;
}

export class Follower {
  readonly events = new Emitter<EngineEvents>();
  readonly inbox = new Inbox();
  readonly presence = new Map<string, Presence>();
  state: ConnectionState = { status: "connecting", catchingUp: false };
  readonly #typing = new Map<string, Typist[]>();
  readonly #pending = new Map<string, Pending>();
  #synced = false;
  readonly #ready: Promise<void>;
  #markReady!: () => void;

  constructor(
    readonly id: string,
    private readonly channel: BroadcastChannel,
    private readonly now: () => number,
  ) {
    this.#ready = new Promise((resolve) => (this.#markReady = resolve));
    channel.onmessage = (event: MessageEvent<TabMessage>) => this.#received(event.data);
    this.#post({ t: "sync?", from: id });
  }

  /** Resolves once the first snapshot from the leader arrived. */
  load(): Promise<void> {
    return this.#ready;
  }

  /** The calls not answered yet, to hand to this tab's own engine if it becomes the leader. */
  takePending(): Array<{ method: CallMethod; args: unknown[]; resolve: (v: unknown) => void; reject: (e: Error) => void }> {
    const pending = [...this.#pending.values()];
    this.#pending.clear();
    return pending;
  }

  close(): void {
    this.channel.onmessage = null;
  }

  #received(message: TabMessage): void {
    switch (message.t) {
      case "leader":
        // A new leader: its inbox is the store's; resync, and give it what the old one left unanswered.
        this.#synced = false;
        this.#post({ t: "sync?", from: this.id });
        for (const [callId, call] of this.#pending) this.#post({ t: "call", from: this.id, callId, method: call.method, args: call.args });
        return;
      case "sync":
        if (message.to !== this.id) return;
        this.inbox.clear();
        this.inbox.restore(message.snapshot.items, message.snapshot.meta);
        this.state = message.snapshot.state;
        this.presence.clear();
        for (const [user, status] of message.snapshot.presence) this.presence.set(user, status);
        this.#typing.clear();
        for (const [conversation, typists] of Object.entries(message.snapshot.typing)) this.#typing.set(conversation, typists);
        this.#synced = true;
        this.#markReady();
        this.events.emit("state", this.state);
        this.events.emit("change", undefined);
        return;
      case "commit":
        if (this.#synced) this.inbox.applyCommit(message.change);
        return;
      case "event":
        if (!this.#synced) return;
        this.#event(message.name, message.value);
        return;
      case "return": {
        if (message.to !== this.id) return;
        const call = this.#pending.get(message.callId);
        if (!call) return;
        this.#pending.delete(message.callId);
        if (message.ok) call.resolve(message.value);
        else call.reject(new Error(message.error));
        return;
      }
      default:
        return; // other followers' requests
    }
  }

  #event(name: keyof EngineEvents, value: unknown): void {
    if (name === "state") this.state = value as ConnectionState;
    if (name === "typing") {
      const { conversationId, typists } = value as EngineEvents["typing"];
      this.#typing.set(conversationId, typists);
    }
    if (name === "presence") {
      const { userId, status } = value as EngineEvents["presence"];
      this.presence.set(userId, status);
    }
    this.events.emit(name, value as never);
  }

  #post(message: TabMessage): void {
    this.channel.postMessage(message);
  }

  #call<T>(method: CallMethod, args: unknown[]): Promise<T> {
    const callId = newId();
    return new Promise<T>((resolve, reject) => {
      this.#pending.set(callId, { method, args, resolve: resolve as (v: unknown) => void, reject });
      this.#post({ t: "call", from: this.id, callId, method, args });
    });
  }

  // ---- the engine's surface, by call ------------------------------------------------

  markRead(ids: readonly string[], id = newId()): Promise<void> {
    // Shown read here at once, as on the leader; the leader's commit confirms it.
    this.inbox.markRead(ids);
    this.events.emit("change", undefined);
    return this.#call("markRead", [ids, id]);
  }

  markAllRead(kind?: Kind | string, id = newId()): Promise<void> {
    return this.#call("markAllRead", [kind, id]);
  }

  respond(proposalId: string, response: ProposalResponse, id = newId()): Promise<string> {
    return this.#call("respond", [proposalId, response, id]);
  }

  acknowledge(ids: readonly string[], id = newId()): Promise<string> {
    return this.#call("acknowledge", [ids, id]);
  }

  shown(ids: readonly string[], id = newId()): Promise<void> {
    return this.#call("shown", [ids, id]);
  }

  typingIn(conversationId: string, active: boolean): boolean {
    if (this.state.status !== "connected") return false;
    void this.#call("typingIn", [conversationId, active]);
    return true;
  }

  setPresence(status: Presence): boolean {
    if (this.state.status !== "connected") return false;
    void this.#call("setPresence", [status]);
    return true;
  }

  reconnectNow(): void {
    void this.#call("reconnectNow", []);
  }

  typists(conversationId: string): Typist[] {
    const now = this.now();
    return (this.#typing.get(conversationId) ?? []).filter((t) => t.until > now);
  }
}
