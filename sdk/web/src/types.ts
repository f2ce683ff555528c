/**
 * The SDK's own public types, over the generated protocol types: a notification of
 * any kind (including kinds this build does not know), an inbox item with its place
 * and read flag, queued actions and the connection's state.
 */

import type {
  ClientFrame,
  ErrorBody,
  Notification,
  Position,
  Presence,
  ProposalResponse,
  UserInfo,
} from "./protocol/index.js";
import type { StopReason } from "./close.js";

/** The fields every notification has, whatever its kind. */
export type NotificationBase = Omit<Notification, "kind" | "data">;

/**
 * A notification of a kind this build does not know (a newer gateway's): kept, counted,
 * and shown generically from its title, body and urgency (PROTOCOL.md §9).
 */
export type UnknownNotification = NotificationBase & { kind: string; data: unknown };

/** A stored notification of any kind. Narrow on `kind` to read typed `data`. */
export type AnyNotification = Notification | UnknownNotification;

/** A notification in the inbox: where it sits in its stream, and whether it was read. */
export interface InboxItem {
  /** The stream it was published to (`user:…`, `tenant:…`, `conversation:…`, `all`). */
  stream: string;
  epoch: string;
  offset: number;
  read: boolean;
  notification: AnyNotification;
}

/** Positions by stream name. */
export type Positions = Record<string, Position>;

/** A client action that waits in the outbox until the gateway answers it for good. */
export type ActionFrame = Extract<
  ClientFrame,
  { type: "mark_read" | "mark_all_read" | "proposal_respond" | "acknowledge" | "shown" }
>;

/** One queued action. `seq` keeps the order they were made in. */
export interface OutboxEntry {
  seq: number;
  frame: ActionFrame;
  /** When the user made it (ms since 1970). */
  queuedAt: number;
}

/** The final answer to a queued action, as `action` events report it. */
export interface ActionResult {
  id: string;
  type: ActionFrame["type"];
  ok: boolean;
  data?: unknown;
  error?: ErrorBody;
}

/** The connection as a status line shows it. */
export type ConnectionStatus = "idle" | "connecting" | "connected" | "offline" | "stopped";

export interface ConnectionState {
  status: ConnectionStatus;
  /** True from `welcome` until `caught_up`: the missed notifications are arriving. */
  catchingUp: boolean;
  /** Since when (ms since 1970) the client has not been connected; absent while connected. */
  offlineSince?: number;
  /** When the next attempt is due (ms since 1970), while waiting to reconnect. */
  retryAt?: number;
  /** Why it stopped, when `status` is `stopped`. */
  stopReason?: StopReason;
  /** The gateway's last explanation (its `error` frame before a close), or a local failure. */
  error?: ErrorBody;
  /** Who is signed in, from the last `welcome`. */
  user?: UserInfo;
}

/** Someone typing in a conversation. */
export interface Typist {
  userId: string;
  /** When the indicator lapses unless renewed (ms since 1970). */
  until: number;
}

/** A proposal as the conversation shows it, with the user's own answer in flight. */
export interface ProposalView {
  item: InboxItem;
  proposalId: string;
  status: "pending" | "accepted" | "rejected" | "cancelled";
  respondedBy?: string;
  /** The answer this device sent and its fate, until the gateway's status supersedes it. */
  answer?: { response: ProposalResponse; state: "sending" | "done" | "failed"; error?: ErrorBody };
}

export type { Presence };
