/**
 * The queue of the user's actions (mark read, mark all read, proposal answers,
 * acknowledgements): applied locally at once, kept in storage, sent after `caught_up`
 * in the order they were made, at the pace the gateway announced, and resent with
 * the same id until a final answer — the gateway applies each id at most once and
 * answers a repeat the same way (PROTOCOL.md §4.6, §9).
 */

import type { ErrorBody, Limits } from "./protocol/index.js";
import type { ActionFrame, OutboxEntry } from "./types.js";

/** Slots of the burst kept for frames the client sends by itself (`refresh`, `ping`). */
const RESERVED = 2;
/** The first retry of a transiently refused action; doubles up to {@link MAX_RETRY_MS}. */
const FIRST_RETRY_MS = 1_000;
const MAX_RETRY_MS = 60_000;

/** Codes that mean "not now": the action is sent again later with the same id. */
const TRANSIENT = new Set(["rate_limited", "store_busy", "unavailable", "internal"]);
/** Codes that are a final answer; any other (a newer gateway's) counts as transient. */
const FINAL = new Set(["invalid_request", "unauthorized", "forbidden", "not_found", "conflict", "unsupported", "too_large"]);

/** The `welcome.features` entry an action needs (actions added after the first v1). */
function featureOf(frame: ActionFrame): string | undefined {
  return frame.type === "acknowledge" || frame.type === "shown" ? frame.type : undefined;
}

/** What became of an answered action. */
export type Outcome = "done" | "retry" | "unknown";

/** A token bucket with the gateway's rate and burst. */
class Pacer {
  #tokens: number;
  #at: number;
  constructor(
    private readonly rate: number,
    private readonly capacity: number,
    now: number,
  ) {
    this.#tokens = capacity;
    this.#at = now;
  }
  take(now: number): boolean {
    this.#tokens = Math.min(this.capacity, this.#tokens + ((now - this.#at) / 1000) * this.rate);
    this.#at = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
  /** Milliseconds until one token is there. */
  wait(): number {
    return Math.max(1, Math.ceil(((1 - this.#tokens) / this.rate) * 1000));
  }
}

export class Outbox {
  readonly entries: OutboxEntry[] = [];
  #seq = 0;
  /** Per action id: not before this time (ms), after a transient refusal. */
  readonly #notBefore = new Map<string, number>();
  readonly #retries = new Map<string, number>();
  /** Ids sent on the current connection and not answered yet. */
  readonly #inFlight = new Set<string>();
  #pacer: Pacer | undefined;
  #features = new Set<string>();

  restore(entries: OutboxEntry[]): void {
    this.entries.push(...entries.sort((a, b) => a.seq - b.seq));
    this.#seq = entries.reduce((max, e) => Math.max(max, e.seq), 0);
  }

  clear(): void {
    this.entries.length = 0;
    this.#notBefore.clear();
    this.#retries.clear();
    this.#inFlight.clear();
  }

  /**
   * Queues an action; returns the entry to persist, or `undefined` when that id is
   * already queued (a follower tab resending a call the previous leader had taken).
   */
  add(frame: ActionFrame, now: number): OutboxEntry | undefined {
    if (this.entries.some((e) => e.frame.id === frame.id)) return undefined;
    this.#seq += 1;
    const entry = { seq: this.#seq, frame, queuedAt: now };
    this.entries.push(entry);
    return entry;
  }

  /** A new connection reached `caught_up`: nothing is in flight on it yet. */
  start(limits: Limits, features: readonly string[], now: number): void {
    const capacity = Math.max(1, limits.actions_burst - RESERVED);
    this.#pacer = new Pacer(Math.max(0.1, limits.actions_per_second), capacity, now);
    this.#features = new Set(features);
    this.#inFlight.clear();
  }

  /** The connection is gone: what was in flight is sent again on the next one. */
  stop(): void {
    this.#pacer = undefined;
    this.#inFlight.clear();
  }

  /**
   * The actions to send now, in order, and when to look again (ms from now) if some
   * wait for the pace or a retry delay.
   */
  due(now: number): { send: ActionFrame[]; again?: number } {
    const send: ActionFrame[] = [];
    if (!this.#pacer) return { send };
    let again: number | undefined;
    for (const entry of this.entries) {
      const id = entry.frame.id;
      if (this.#inFlight.has(id)) continue;
      const feature = featureOf(entry.frame);
      // An older gateway: keep it queued until it is upgraded (PROTOCOL.md §4.4).
      if (feature && !this.#features.has(feature)) continue;
      const notBefore = this.#notBefore.get(id) ?? 0;
      if (notBefore > now) {
        again = Math.min(again ?? Infinity, notBefore - now);
        continue;
      }
      if (!this.#pacer.take(now)) {
        again = Math.min(again ?? Infinity, this.#pacer.wait());
        break;
      }
      this.#inFlight.add(id);
      send.push(entry.frame);
    }
    return again === undefined ? { send } : { send, again };
  }

  /**
   * An answer arrived. `done` (final: remove and report), `retry` (kept, sent again
   * later) or `unknown` (not an outbox id).
   */
  answer(id: string, ok: boolean, error: ErrorBody | undefined, now: number): { outcome: Outcome; entry?: OutboxEntry } {
    const index = this.entries.findIndex((e) => e.frame.id === id);
    if (index < 0) return { outcome: "unknown" };
    this.#inFlight.delete(id);
    const entry = this.entries[index]!;
    if (!ok && error && isTransient(error.code)) {
      const tries = (this.#retries.get(id) ?? 0) + 1;
      this.#retries.set(id, tries);
      const delay = error.retry_after_ms ?? Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** (tries - 1));
      this.#notBefore.set(id, now + delay);
      return { outcome: "retry", entry };
    }
    this.entries.splice(index, 1);
    this.#notBefore.delete(id);
    this.#retries.delete(id);
    return { outcome: "done", entry };
  }
}

function isTransient(code: string): boolean {
  return TRANSIENT.has(code) || !FINAL.has(code);
}
