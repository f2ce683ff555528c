/**
 * Where the client keeps what must survive a reload: notifications with their place
 * and read flag, the position held per stream, the outbox and a few records
 * (who was signed in, read marks, retracted ids, rebuild progress).
 *
 * Every change is one {@link Commit}, applied atomically: a stream's position is
 * written in the same transaction as the notifications that complete it, so after a
 * crash the position never claims what the store does not hold (PROTOCOL.md §9).
 * {@link MemoryStorage} is for tests and for pages that opt out of persistence;
 * the browser default is IndexedDB (`indexeddb.ts`).
 */

import type { Position } from "./protocol/index.js";
import type { InboxItem, OutboxEntry } from "./types.js";

/** Everything stored, as read back at start. */
export interface Snapshot {
  items: InboxItem[];
  positions: Record<string, Position>;
  outbox: OutboxEntry[];
  meta: Record<string, unknown>;
}

/** One atomic change. */
export interface Commit {
  /** Items to insert or replace, by notification id. */
  put?: InboxItem[];
  /** Notification ids to delete. */
  remove?: string[];
  /** Positions to set. */
  positions?: Record<string, Position>;
  /** Streams whose position is forgotten (their epoch changed). */
  dropPositions?: string[];
  outboxPut?: OutboxEntry[];
  /** Outbox entries to delete, by `seq`. */
  outboxRemove?: number[];
  /** Records to set; `undefined` deletes. */
  meta?: Record<string, unknown>;
}

/** A durable store for one user of one gateway. */
export interface TocsinStorage {
  load(): Promise<Snapshot>;
  commit(change: Commit): Promise<void>;
  /** Forgets everything (another user signed in on this browser). */
  clear(): Promise<void>;
}

/** Keeps everything in memory: lost on reload. */
export class MemoryStorage implements TocsinStorage {
  #items = new Map<string, InboxItem>();
  #positions = new Map<string, Position>();
  #outbox = new Map<number, OutboxEntry>();
  #meta = new Map<string, unknown>();

  async load(): Promise<Snapshot> {
    return structuredClone({
      items: [...this.#items.values()],
      positions: Object.fromEntries(this.#positions),
      outbox: [...this.#outbox.values()].sort((a, b) => a.seq - b.seq),
      meta: Object.fromEntries(this.#meta),
    });
  }

  async commit(change: Commit): Promise<void> {
    // A copy, as IndexedDB's structured clone would take: later changes to the
    // caller's objects must not reach the store.
    const c = structuredClone(change);
    for (const id of c.remove ?? []) this.#items.delete(id);
    for (const item of c.put ?? []) this.#items.set(item.notification.id, item);
    for (const stream of c.dropPositions ?? []) this.#positions.delete(stream);
    for (const [stream, position] of Object.entries(c.positions ?? {})) this.#positions.set(stream, position);
    for (const seq of c.outboxRemove ?? []) this.#outbox.delete(seq);
    for (const entry of c.outboxPut ?? []) this.#outbox.set(entry.seq, entry);
    for (const [key, value] of Object.entries(c.meta ?? {})) {
      if (value === undefined) this.#meta.delete(key);
      else this.#meta.set(key, value);
    }
  }

  async clear(): Promise<void> {
    this.#items.clear();
    this.#positions.clear();
    this.#outbox.clear();
    this.#meta.clear();
  }
}
