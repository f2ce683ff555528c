//! Durable storage behind one trait, so the hub and the API never see SQL.
//!
//! The SQLite implementation lives in [`sqlite`]; a PostgreSQL one can be added beside
//! it without touching the hub or the connections.
//!
//! Invariant (see ARCHITECTURE.md): offsets are assigned inside the storage
//! transaction, in commit order, and a notification is handed to the hub only after
//! its transaction committed, in offset order.

#[cfg(test)]
mod conformance;
mod deadlines;
pub mod postgres;
pub mod sqlite;
mod time;
mod types;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use tocsin_protocol::deadline::{Acknowledgement, DeadlineStatus};
use tocsin_protocol::frames::ProposalResponse;

use tocsin_protocol::{Kind, Position, StreamName};

pub use deadlines::*;
pub use types::*;

/// Everything the gateway stores. Every method is a short, self-contained unit of
/// work; none holds a transaction across calls.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    // --- firms, accounts, keys --------------------------------------------------

    /// Adds a firm.
    async fn create_tenant(&self, slug: &str, name: &str) -> Result<Tenant, StoreError>;
    /// A firm by slug.
    async fn tenant(&self, slug: &str) -> Result<Option<Tenant>, StoreError>;
    /// Adds a user (built-in account, or an external identity's shadow).
    async fn create_user(&self, user: NewUser) -> Result<User, StoreError>;
    /// A user by id.
    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError>;
    /// A user by email (case-insensitive).
    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError>;
    /// A user of one firm by id, else by email: a publish target is only ever looked
    /// up inside the publishing firm, so another firm's user (even one whose id looks
    /// like this firm's email) is never found.
    async fn firm_user(&self, tenant: &str, id_or_email: &str) -> Result<Option<User>, StoreError>;
    /// Users, optionally of one firm.
    async fn list_users(&self, tenant: Option<&str>) -> Result<Vec<User>, StoreError>;
    /// Stores a new API key (only its hash).
    async fn create_api_key(&self, key: NewApiKey) -> Result<(), StoreError>;
    /// An API key by its public id, revoked or not.
    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKey>, StoreError>;
    /// All API keys.
    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError>;
    /// Revokes an API key; false if unknown.
    async fn revoke_api_key(&self, key_id: &str) -> Result<bool, StoreError>;
    /// Disables (`true`) or enables a user by id. Disabling revokes every device
    /// session of theirs in the same transaction and returns how many were signed in;
    /// enabling brings none back. `NotFound` for an unknown id.
    async fn set_user_disabled(&self, user_id: &str, disabled: bool) -> Result<u64, StoreError>;
    /// Erases a user (GDPR) in one transaction: account, sessions, memberships, read
    /// state, calendar feed and personal stream go; audit records, acknowledgements and
    /// deadlines keep the returned anonymised id (`erased:…`) instead of theirs, without
    /// their email or device names. `NotFound` for an unknown id.
    async fn erase_user(&self, user_id: &str) -> Result<String, StoreError>;

    // --- device sessions ----------------------------------------------------------

    /// Opens a device session holding a refresh token's hash.
    async fn create_session(&self, session: NewSession) -> Result<(), StoreError>;
    /// Swaps a session's refresh token for a new one (rotation). The token just
    /// rotated away, presented again within `grace` the first time, is answered as the
    /// same rotation (its answer was lost); any other use of it revokes the session (it
    /// was stolen or replayed).
    async fn rotate_session(
        &self,
        old_hash: &str,
        new_hash: &str,
        expires_at: DateTime<Utc>,
        grace: std::time::Duration,
    ) -> Result<RotateOutcome, StoreError>;
    /// Whether a device session is still signed in (not revoked, not expired).
    async fn session_active(&self, session_id: &str) -> Result<bool, StoreError>;
    /// Revokes the session holding this refresh token; returns its id, if any.
    async fn revoke_session(&self, refresh_hash: &str) -> Result<Option<String>, StoreError>;

    // --- conversations --------------------------------------------------------------

    /// Replaces a conversation's members, creating it in `tenant` on first use.
    async fn set_members(
        &self,
        conversation_id: &str,
        tenant: &str,
        members: &[String],
    ) -> Result<Vec<String>, StoreError>;
    /// A conversation's firm and members.
    async fn conversation(&self, conversation_id: &str)
    -> Result<Option<Conversation>, StoreError>;
    /// The conversations a user is a member of.
    async fn user_conversations(&self, user_id: &str) -> Result<Vec<String>, StoreError>;

    // --- streams --------------------------------------------------------------------

    /// Stores notifications atomically (all or none) and hands them to the hub after
    /// commit. Retries with a known idempotency key return the first result.
    async fn append(&self, batch: Vec<AppendRequest>) -> Result<Vec<Appended>, StoreError>;
    /// Where a stream stands (created empty, with a fresh epoch, if new).
    async fn stream_state(&self, stream: &StreamName) -> Result<StreamState, StoreError>;
    /// Stored notifications with `after < offset <= up_to`, oldest first, at most `limit`.
    async fn read_range(
        &self,
        stream: &StreamName,
        after: u64,
        up_to: u64,
        limit: u32,
    ) -> Result<Vec<StoredNotification>, StoreError>;
    /// Like [`Store::read_range`], but only what `user_id` has not read: a client
    /// rebuilding a stream fetches these first.
    async fn read_unread_range(
        &self,
        user_id: &str,
        stream: &StreamName,
        after: u64,
        up_to: u64,
        limit: u32,
    ) -> Result<Vec<StoredNotification>, StoreError>;
    /// Which of these notification ids the user has read.
    async fn read_flags(&self, user_id: &str, ids: &[String]) -> Result<Vec<bool>, StoreError>;
    /// Unread counts per kind over the given streams.
    async fn unread_counts(
        &self,
        user_id: &str,
        streams: &[StreamName],
    ) -> Result<Vec<(Kind, u64)>, StoreError>;
    /// Deletes notifications created before `cutoff`; returns how many.
    async fn prune(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;
    /// Retracts a notification (or withdraws a scheduled publish), or answers how it
    /// was retracted before; another firm's is `NotFound`.
    async fn retract(&self, request: RetractRequest) -> Result<Retracted, StoreError>;
    /// The retractions made since `since` in these streams (for a connecting client).
    async fn recent_retractions(
        &self,
        streams: &[StreamName],
        since: DateTime<Utc>,
    ) -> Result<Vec<tocsin_protocol::frames::Retraction>, StoreError>;
    /// A cheap query proving the store answers, and that writes would not be refused
    /// (for `/readyz`).
    async fn ping(&self) -> Result<(), StoreError>;
    /// At shutdown, after the last write: leaves the storage self-contained (SQLite
    /// folds its WAL into the database file). Later writes fail.
    async fn close(&self);

    // --- client actions (each applied at most once per user and action id) ----------

    /// Marks notifications read, among those in `streams`.
    async fn mark_read(
        &self,
        action: ActionKey,
        streams: &[StreamName],
        ids: &[String],
    ) -> Result<ActionOutcome, StoreError>;
    /// Marks read, among `streams` and optionally of one kind, what the user saw:
    /// with `up_to`, every notification at or before its position of each stream
    /// (streams not listed, or whose epoch changed, are left alone); without,
    /// everything created up to now (older clients).
    async fn mark_all_read(
        &self,
        action: ActionKey,
        streams: &[StreamName],
        kind: Option<Kind>,
        up_to: Option<BTreeMap<StreamName, Position>>,
    ) -> Result<ActionOutcome, StoreError>;
    /// Answers a pending proposal visible in `streams`, storing and fanning out the
    /// resulting `proposal-status-changed` notification in the same transaction.
    async fn respond_proposal(
        &self,
        action: ActionKey,
        streams: &[StreamName],
        tenant: &str,
        proposal_id: &str,
        response: ProposalResponse,
    ) -> Result<ActionOutcome, StoreError>;
    /// Records that the visible deadline alerts among `ids` were shown as OS
    /// notifications on the acting device (the audit trail's `shown`).
    async fn record_shown(
        &self,
        action: ActionKey,
        streams: &[StreamName],
        ids: &[String],
    ) -> Result<ActionOutcome, StoreError>;
    /// Acknowledges the deadlines of the visible alerts among `ids` (see
    /// docs/DEADLINES.md): who, when, from which device; their escalations stop.
    async fn acknowledge(
        &self,
        action: ActionKey,
        streams: &[StreamName],
        tenant: &str,
        session_id: Option<&str>,
        ids: &[String],
    ) -> Result<ActionOutcome, StoreError>;

    // --- deadlines and the schedule (docs/DEADLINES.md) -------------------------------

    /// A firm's deadline settings (JSON), if it set any.
    async fn deadline_settings(&self, tenant: &str) -> Result<Option<String>, StoreError>;
    /// Replaces a firm's deadline settings.
    async fn set_deadline_settings(&self, tenant: &str, settings: String)
    -> Result<(), StoreError>;
    /// A deadline of a firm, with its schedule and acknowledgements.
    async fn deadline(&self, tenant: &str, id: &str) -> Result<Option<DeadlineState>, StoreError>;
    /// A firm's deadlines matching the filter, soonest due first.
    async fn list_deadlines(
        &self,
        filter: DeadlineFilter,
    ) -> Result<Vec<DeadlineState>, StoreError>;
    /// Declares or changes a deadline (and replaces its plan when given); true if new.
    async fn upsert_deadline(&self, upsert: DeadlineUpsert) -> Result<bool, StoreError>;
    /// Cancels a deadline and its planned steps; false if unknown.
    async fn cancel_deadline(
        &self,
        tenant: &str,
        id: &str,
        status: DeadlineStatus,
    ) -> Result<bool, StoreError>;
    /// When the next planned step is due.
    async fn next_step_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Planned steps due at `now`, oldest first, at most `limit`.
    async fn due_steps(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueStep>, StoreError>;
    /// Applies due steps, each only if still planned, with the notifications each
    /// raises in the same transaction; returns how many were applied.
    async fn fire(&self, firings: Vec<Firing>) -> Result<u32, StoreError>;
    /// Records what connections and devices report for the audit trail.
    async fn record_audit(&self, entries: Vec<AuditEntry>) -> Result<(), StoreError>;
    /// Audit records matching the filter, in the order recorded.
    async fn audit(
        &self,
        filter: AuditFilter,
    ) -> Result<Vec<tocsin_protocol::audit::AuditRecord>, StoreError>;
    /// Deletes a firm's audit records older than `cutoff`; returns how many.
    async fn prune_audit(&self, tenant: &str, cutoff: DateTime<Utc>) -> Result<u64, StoreError>;
    /// The deadlines closed in the last 60 days that a user is involved in (sent after
    /// `caught_up`).
    async fn user_closed_deadlines(
        &self,
        tenant: &str,
        user_id: &str,
    ) -> Result<Vec<tocsin_protocol::deadline::ClosedDeadline>, StoreError>;
    /// The acknowledgements a user's devices should hold (sent after `caught_up`).
    async fn user_acknowledgements(
        &self,
        tenant: &str,
        user_id: &str,
    ) -> Result<Vec<Acknowledgement>, StoreError>;

    // --- webhooks and calendar feeds ----------------------------------------------------

    /// Sets (or with `None` removes) a firm's webhook.
    async fn set_webhook(&self, tenant: &str, webhook: Option<Webhook>) -> Result<(), StoreError>;
    /// A firm's webhook.
    async fn webhook(&self, tenant: &str) -> Result<Option<Webhook>, StoreError>;
    /// Webhook events due for an attempt at `now`, oldest first.
    async fn due_webhook_events(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<WebhookEvent>, StoreError>;
    /// When the next undelivered webhook event is due.
    async fn next_webhook_at(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
    /// Records a delivery attempt of one event.
    async fn record_webhook_attempt(
        &self,
        id: i64,
        attempt: WebhookAttempt,
    ) -> Result<(), StoreError>;
    /// Undelivered webhook events of a firm, or of every firm (`None`: the metric).
    async fn pending_webhook_events(&self, tenant: Option<&str>) -> Result<u64, StoreError>;
    /// The user whose calendar feed secret has this SHA-256 digest.
    async fn calendar_feed_user(&self, secret_hash: &str) -> Result<Option<User>, StoreError>;
    /// Gives a user's calendar feed a new secret digest (the old URL stops working).
    async fn set_calendar_feed(&self, user_id: &str, secret_hash: &str) -> Result<(), StoreError>;
    /// Turns a user's calendar feed off; false if there was none.
    async fn revoke_calendar_feed(&self, user_id: &str) -> Result<bool, StoreError>;
}

/// Identifies one client action: the same user and id are applied at most once.
#[derive(Debug, Clone)]
pub struct ActionKey {
    /// The user acting.
    pub user_id: String,
    /// The device session acting, when known (the audit trail names the device).
    pub session_id: Option<String>,
    /// The client-generated action id.
    pub action_id: String,
}

/// Where committed notifications go (the hub). Called by the store after each commit,
/// in offset order, from the storage writer: it must not block. With several nodes
/// (PostgreSQL), the node's listener also delivers what other nodes committed, and
/// asks which streams anyone here reads.
pub trait Fanout: Send + Sync + 'static {
    /// Hands freshly committed notifications over for delivery.
    fn deliver(&self, notifications: &[std::sync::Arc<StoredNotification>]);
    /// The streams someone on this node reads (to catch up after the listener was
    /// deaf).
    fn subscribed_streams(&self) -> Vec<StreamName> {
        Vec::new()
    }
    /// Whether someone on this node reads `stream` (else another node's
    /// notification is not even read from the log).
    fn wants(&self, _stream: &StreamName) -> bool {
        true
    }
    /// Applies what another node relayed (`crate::cluster`).
    fn apply_remote(&self, _event: crate::cluster::ClusterEvent) {}
    /// The node stays deaf to the other nodes (its database connection is gone):
    /// connections should move to a node that hears them.
    fn deaf(&self) {}
}
