// TEMPORARY SHIM until generated types land.
export type Urgency = "low" | "normal" | "high" | "critical";
export type Kind = "email-received" | "dossier-updated" | "deadline-alert" | "system-notification" | "proposal-created" | "proposal-status-changed" | "conversation-message" | "typing-indicator" | "user-status" | "message-read";
export type Position = { epoch: string; offset: number };
export type Presence = "online" | "away" | "busy" | "offline";
export type ProposalResponse = "accept" | "reject";
export type ProposalStatus = "pending" | "accepted" | "rejected" | "cancelled";
export type ErrorCode = string;
export type ErrorBody = { code: ErrorCode; message: string; retry_after_ms?: number };
export type UserInfo = { id: string; email?: string; tenant: string; tenant_name?: string; role: string };
export type StreamStatus = { stream: string; epoch: string; head: number; first: number; recovered: boolean };
export type Limits = { heartbeat_interval_ms: number; heartbeat_timeout_ms: number; max_message_bytes: number; actions_per_second: number; actions_burst: number };
export type Welcome = { connection_id: string; user: UserInfo; streams: Array<StreamStatus>; token_expires_at: string; limits: Limits; features?: Array<string> };
export type Retraction = { notification_id: string; stream: string; epoch: string; offset: number; at: string };
export type Acknowledgement = { deadline_id: string; user_id: string; user_name?: string; device?: string; at: string; notification_id?: string };
export type ClosedDeadline = { deadline_id: string; status: string; at: string };
export type ProposalCreated = { proposal_id: string; starts_at: string; ends_at?: string; proposed_by: string; location?: string; conversation_id?: string; dossier_number?: string };
export type ProposalStatusChanged = { proposal_id: string; status: ProposalStatus; responded_by?: string; conversation_id?: string };
export type ConversationMessage = { conversation_id: string; message_id: string; from: string; excerpt: string };
export type DeadlineAlert = { deadline_id: string; deadline_type: string; due_at: string; time_zone: string; urgency: string; remaining_days: number; dossier_number?: string };
export type TypingIndicator = { conversation_id: string; user_id: string; active: boolean };
export type UserStatus = { user_id: string; status: Presence };
export type NotificationData =
  | { kind: "email-received"; data: { subject: string; from: string } }
  | { kind: "dossier-updated"; data: { dossier_number: string; action: string } }
  | { kind: "deadline-alert"; data: DeadlineAlert }
  | { kind: "system-notification"; data: { level: string; code?: string } }
  | { kind: "proposal-created"; data: ProposalCreated }
  | { kind: "proposal-status-changed"; data: ProposalStatusChanged }
  | { kind: "conversation-message"; data: ConversationMessage }
  | { kind: "typing-indicator"; data: TypingIndicator }
  | { kind: "user-status"; data: UserStatus }
  | { kind: "message-read"; data: { conversation_id: string; user_id: string; notification_ids: string[] } };
export type Notification = { id: string; created_at: string; urgency: Urgency; title: string; body: string; url?: string } & NotificationData;
export type ClientFrame =
  | { type: "auth"; token: string }
  | { type: "hello"; positions: Record<string, Position>; client?: string; features?: string[] }
  | { type: "mark_read"; id: string; notification_ids: string[] }
  | { type: "mark_all_read"; id: string; kind?: Kind; up_to?: Record<string, Position> }
  | { type: "proposal_respond"; id: string; proposal_id: string; response: ProposalResponse }
  | { type: "acknowledge"; id: string; notification_ids: string[] }
  | { type: "shown"; id: string; notification_ids: string[] }
  | { type: "join"; id: string; conversation_id: string; position?: Position }
  | { type: "leave"; id: string; conversation_id: string }
  | { type: "typing"; id: string; conversation_id: string; active: boolean }
  | { type: "presence"; id: string; status: Presence }
  | { type: "refresh"; id: string; access_token: string }
  | { type: "ping" };
export type ServerFrame =
  | ({ type: "welcome" } & Welcome)
  | { type: "notification"; stream: string; epoch: string; offset: number; replay: boolean; notification: Notification }
  | { type: "caught_up"; positions: Record<string, Position> }
  | { type: "read"; notification_ids: string[] }
  | { type: "read_all"; kind?: Kind; before: string; up_to?: Record<string, Position> }
  | { type: "acknowledged"; acknowledgements: Acknowledgement[] }
  | { type: "deadlines_closed"; deadlines: ClosedDeadline[] }
  | { type: "retracted"; retractions: Retraction[] }
  | ({ type: "ephemeral"; stream: string; at: string } & NotificationData)
  | { type: "result"; id: string; ok: boolean; data?: unknown; error?: ErrorBody }
  | { type: "error"; error: ErrorBody }
  | { type: "pong" }
  | { type: "subscribed"; stream: StreamStatus }
  | { type: "unsubscribed"; stream: string };
export type HistoryItem = { offset: number; read: boolean; notification: Notification };
export type HistoryResponse = { stream: string; epoch: string; first: number; head: number; notifications: HistoryItem[]; next_after?: number };
export const SUBPROTOCOL = "tocsin.v1";
export const WS_PATH = "/v1/ws";
export const CLOSE_CODES = {
  4000: { name: "going_away", reconnect: true },
  4001: { name: "slow_consumer", reconnect: true },
  4002: { name: "token_expired", reconnect: true },
  4003: { name: "rate_limited", reconnect: true },
  4004: { name: "heartbeat_timeout", reconnect: true },
  4005: { name: "server_error", reconnect: true },
  4100: { name: "invalid_token", reconnect: false },
  4101: { name: "forbidden", reconnect: false },
  4102: { name: "protocol_violation", reconnect: false },
  4103: { name: "message_too_large", reconnect: false },
  4104: { name: "too_many_connections", reconnect: false },
  4105: { name: "auth_timeout", reconnect: false },
  1007: { name: "invalid_payload", reconnect: false },
} as const;
