/**
 * The inbox in memory: notifications by id and by slot `(stream, epoch, offset)`,
 * read state (marks by id, `read_all` marks remembered for notifications that arrive
 * later), retracted ids (never shown again), deadline acknowledgements and closures,
 * and the user's proposal answers in flight. It decides; the engine persists what it
 * returns and emits the events.
 */

import type { Acknowledgement, ClosedDeadline, Kind, Position, Retraction } from "./protocol/index.js";
import type { Commit } from "./storage.js";
import type { AnyNotification, InboxItem, ProposalView } from "./types.js";

/** A `read_all` with `up_to`: everything at or before `offset` in that epoch, of `kind` if set. */
export interface ReadMark {
  stream: string;
  epoch: string;
  offset: number;
  kind?: string;
}

/** The meta records the inbox owns (see {@link Inbox.meta}). */
const INBOX_META = ["readMarks", "retracted", "acknowledgements", "closedDeadlines", "answers"];

/** How many retracted ids are remembered (60 days of retractions, generously). */
const RETRACTED_MEMORY = 10_000;

/** Filters of {@link Inbox.list}. */
export interface ListFilter {
  kind?: string | readonly string[];
  stream?: string;
  unreadOnly?: boolean;
}

export class Inbox {
  readonly items = new Map<string, InboxItem>();
  readonly #slots = new Map<string, string>();
  readMarks: ReadMark[] = [];
  retracted: string[] = [];
  readonly #retractedSet = new Set<string>();
  readonly acknowledgements = new Map<string, Acknowledgement>();
  readonly closedDeadlines = new Map<string, ClosedDeadline>();
  readonly answers = new Map<string, NonNullable<ProposalView["answer"]>>();

  /** Loads what storage held. */
  restore(items: InboxItem[], meta: Record<string, unknown>): void {
    for (const item of items) this.#index(item);
    this.readMarks = (meta.readMarks as ReadMark[] | undefined) ?? [];
    this.retracted = (meta.retracted as string[] | undefined) ?? [];
    for (const id of this.retracted) this.#retractedSet.add(id);
    for (const ack of (meta.acknowledgements as Acknowledgement[] | undefined) ?? []) this.acknowledgements.set(ack.deadline_id, ack);
    for (const closed of (meta.closedDeadlines as ClosedDeadline[] | undefined) ?? []) this.closedDeadlines.set(closed.deadline_id, closed);
    this.answers.clear();
    for (const [id, answer] of Object.entries((meta.answers as Record<string, ProposalView["answer"]> | undefined) ?? {})) {
      if (answer) this.answers.set(id, answer);
    }
  }

  /**
   * Applies a change another tab's engine wrote (a follower tab mirrors the leader's
   * inbox this way: the same changes, in the same order, as the store received).
   */
  applyCommit(change: Commit): void {
    for (const id of change.remove ?? []) {
      const item = this.items.get(id);
      if (item) this.#slots.delete(slot(item.stream, item.epoch, item.offset));
      this.items.delete(id);
    }
    for (const item of change.put ?? []) this.#index(item);
    if (change.meta && INBOX_META.some((key) => key in change.meta!)) {
      this.#retractedSet.clear();
      this.acknowledgements.clear();
      this.closedDeadlines.clear();
      this.restore([], { ...this.meta(), ...change.meta });
    }
  }

  clear(): void {
    this.items.clear();
    this.#slots.clear();
    this.readMarks = [];
    this.retracted = [];
    this.#retractedSet.clear();
    this.acknowledgements.clear();
    this.closedDeadlines.clear();
    this.answers.clear();
  }

  /**
   * Takes a notification in. Returns the item to store, or `undefined` when it is a
   * duplicate (same id, or the same slot) or was retracted. `read` comes from history
   * pages; live and replayed notifications start unread unless a read mark covers them.
   */
  accept(stream: string, epoch: string, offset: number, notification: AnyNotification, read = false): InboxItem | undefined {
    if (this.#retractedSet.has(notification.id)) return undefined;
    const held = this.items.get(notification.id);
    if (held) {
      if (read && !held.read) {
        held.read = true;
        return held;
      }
      return undefined;
    }
    if (this.#slots.has(slot(stream, epoch, offset))) return undefined;
    const item: InboxItem = { stream, epoch, offset, read: read || this.#covered(stream, epoch, offset, notification.kind), notification };
    this.#index(item);
    return item;
  }

  /** Marks ids read; returns the items that changed. */
  markRead(ids: readonly string[]): InboxItem[] {
    const changed: InboxItem[] = [];
    for (const id of ids) {
      const item = this.items.get(id);
      if (item && !item.read) {
        item.read = true;
        changed.push(item);
      }
    }
    return changed;
  }

  /** Applies a `read_all` with `up_to` and remembers it; returns the items that changed. */
  markUpTo(upTo: Record<string, Position>, kind?: string): InboxItem[] {
    for (const [stream, position] of Object.entries(upTo)) {
      this.readMarks = this.readMarks.filter((m) => !(m.stream === stream && m.kind === kind && (m.epoch !== position.epoch || m.offset <= position.offset)));
      this.readMarks.push({ stream, epoch: position.epoch, offset: position.offset, ...(kind ? { kind } : {}) });
    }
    const changed: InboxItem[] = [];
    for (const item of this.items.values()) {
      if (!item.read && this.#covered(item.stream, item.epoch, item.offset, item.notification.kind)) {
        item.read = true;
        changed.push(item);
      }
    }
    return changed;
  }

  /** Applies a `read_all` without `up_to` (an older client's): by creation time. */
  markBefore(before: string, kind?: string): InboxItem[] {
    const limit = Date.parse(before);
    const changed: InboxItem[] = [];
    for (const item of this.items.values()) {
      if (item.read || (kind && item.notification.kind !== kind)) continue;
      if (Date.parse(item.notification.created_at) <= limit) {
        item.read = true;
        changed.push(item);
      }
    }
    return changed;
  }

  /** Forgets retracted notifications; returns the ids removed from the inbox. */
  retract(retractions: readonly Retraction[]): string[] {
    const removed: string[] = [];
    for (const r of retractions) {
      if (!this.#retractedSet.has(r.notification_id)) {
        this.#retractedSet.add(r.notification_id);
        this.retracted.push(r.notification_id);
      }
      const item = this.items.get(r.notification_id);
      if (item) {
        this.items.delete(r.notification_id);
        this.#slots.delete(slot(item.stream, item.epoch, item.offset));
        removed.push(r.notification_id);
      }
    }
    while (this.retracted.length > RETRACTED_MEMORY) this.#retractedSet.delete(this.retracted.shift()!);
    return removed;
  }

  /** The inbox, newest first. */
  list(filter: ListFilter = {}): InboxItem[] {
    const kinds = filter.kind === undefined ? undefined : new Set(typeof filter.kind === "string" ? [filter.kind] : filter.kind);
    const out: InboxItem[] = [];
    for (const item of this.items.values()) {
      if (kinds && !kinds.has(item.notification.kind)) continue;
      if (filter.stream && item.stream !== filter.stream) continue;
      if (filter.unreadOnly && item.read) continue;
      out.push(item);
    }
    return out.sort(newestFirst);
  }

  /** Unread counts, as the badge shows them. */
  unread(): { total: number; byKind: Record<string, number> } {
    const byKind: Record<string, number> = {};
    let total = 0;
    for (const item of this.items.values()) {
      if (item.read) continue;
      total += 1;
      byKind[item.notification.kind] = (byKind[item.notification.kind] ?? 0) + 1;
    }
    return { total, byKind };
  }

  /** A conversation's proposals with their current status, newest first. */
  proposals(conversationId: string): ProposalView[] {
    const status = new Map<string, { status: ProposalView["status"]; respondedBy?: string; at: number }>();
    for (const item of this.items.values()) {
      const n = item.notification as AnyNotification;
      if (n.kind !== "proposal-status-changed") continue;
      const data = n.data as { proposal_id: string; status: ProposalView["status"]; responded_by?: string };
      const seen = status.get(data.proposal_id);
      const at = Date.parse(n.created_at);
      if (!seen || seen.at <= at) {
        status.set(data.proposal_id, { status: data.status, at, ...(data.responded_by ? { respondedBy: data.responded_by } : {}) });
      }
    }
    const out: ProposalView[] = [];
    for (const item of this.list({ kind: "proposal-created" })) {
      const data = item.notification.data as { proposal_id: string; conversation_id?: string };
      if (data.conversation_id !== conversationId) continue;
      const known = status.get(data.proposal_id);
      // A proposal published again is pending again: only a status newer than it counts.
      const current = known && known.at >= Date.parse(item.notification.created_at) ? known : undefined;
      const answer = this.answers.get(data.proposal_id);
      out.push({
        item,
        proposalId: data.proposal_id,
        status: current?.status ?? "pending",
        ...(current?.respondedBy ? { respondedBy: current.respondedBy } : {}),
        ...(answer ? { answer } : {}),
      });
    }
    return out;
  }

  /** The records of {@link restore}, to persist after a change to them. */
  meta(): Record<string, unknown> {
    return {
      readMarks: this.readMarks,
      retracted: this.retracted,
      acknowledgements: [...this.acknowledgements.values()],
      closedDeadlines: [...this.closedDeadlines.values()],
      answers: Object.fromEntries(this.answers),
    };
  }

  #index(item: InboxItem): void {
    this.items.set(item.notification.id, item);
    this.#slots.set(slot(item.stream, item.epoch, item.offset), item.notification.id);
  }

  #covered(stream: string, epoch: string, offset: number, kind: string): boolean {
    return this.readMarks.some((m) => m.stream === stream && m.epoch === epoch && offset <= m.offset && (!m.kind || m.kind === kind));
  }
}

function slot(stream: string, epoch: string, offset: number): string {
  return `${stream}\u0000${epoch}\u0000${offset}`;
}

function newestFirst(a: InboxItem, b: InboxItem): number {
  // Times carry up to nine fractional digits or none: compare instants, not text.
  const delta = Date.parse(b.notification.created_at) - Date.parse(a.notification.created_at);
  return delta !== 0 ? delta : b.offset - a.offset;
}

export type { Kind };
