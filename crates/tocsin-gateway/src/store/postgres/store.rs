//! [`PgStore`]: the [`Store`] trait on PostgreSQL. Each method is one short unit of
//! work: a read on a pooled connection, a change in its own transaction, or — for
//! what raises notifications — a command to the node's writer (`writer.rs`).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use sqlx::{PgConnection, PgPool};
use tocsin_protocol::frames::ProposalResponse;
use tocsin_protocol::{Kind, Position, StreamName};
use tokio::sync::{mpsc, oneshot};

use super::cluster::PgRelay;
use super::listener::{self, Hearing};
use super::writer::{self, Command};
use super::{accounts, actions, audit, deadlines, governance, reads, retract, schedule, webhooks};
use crate::store::*;

/// Runs `$work` (an expression using `$conn: &mut PgConnection`) in a transaction of
/// its own and commits it; any error rolls it back (dropping the transaction).
macro_rules! in_transaction {
    ($store:expr, |$conn:ident| $work:expr) => {{
        let mut tx = $store.pool.begin().await?;
        let $conn: &mut PgConnection = &mut tx;
        let out = $work.await?;
        tx.commit().await?;
        Ok(out)
    }};
}

/// Like `in_transaction!`, but first takes the writers' batch lock
/// ([`writer::BATCH_LOCK`]): for changes that lock many stream or notification rows
/// (pruning), which could otherwise deadlock with a writer batch
/// locking the same rows in another order and make PostgreSQL abort the publishes.
macro_rules! in_batch_transaction {
    ($store:expr, |$conn:ident| $work:expr) => {{
        let mut tx = $store.pool.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(writer::BATCH_LOCK)
            .execute(&mut *tx)
            .await?;
        let $conn: &mut PgConnection = &mut tx;
        let out = $work.await?;
        tx.commit().await?;
        Ok(out)
    }};
}

/// The PostgreSQL implementation of [`Store`].
pub struct PgStore {
    pool: PgPool,
    /// This node's id in announcements (random per process).
    node: Arc<str>,
    /// The node's writer; dropping the store stops it once its queue is empty.
    writer: mpsc::UnboundedSender<Command>,
    /// Whether the node hears the others (`None` for an admin command, which does
    /// not listen).
    hearing: Option<Arc<Hearing>>,
}

impl PgStore {
    /// Connects (creating or upgrading the schema if needed) and starts the writer,
    /// for an admin command or a test: it announces what it stores but does not
    /// listen to other nodes. Must run inside a tokio runtime.
    pub async fn connect(
        url: &str,
        max_connections: u32,
        fanout: Arc<dyn Fanout>,
    ) -> Result<PgStore, StoreError> {
        let pool = super::connect_and_migrate(url, max_connections).await?;
        let node: Arc<str> = Arc::from(uuid::Uuid::new_v4().simple().to_string());
        let (tx, rx) = mpsc::unbounded_channel();
        let writer = writer::Writer {
            pool: pool.clone(),
            node: node.clone(),
            fanout,
        };
        tokio::spawn(writer::run(writer, rx));
        Ok(PgStore {
            pool,
            node,
            writer: tx,
            hearing: None,
        })
    }

    /// Connects for a serving node: besides [`PgStore::connect`], LISTENs to the
    /// other nodes (refusing to start if it cannot) and delivers what they commit to
    /// `fanout`.
    pub async fn serve(
        url: &str,
        max_connections: u32,
        fanout: Arc<dyn Fanout>,
    ) -> Result<PgStore, StoreError> {
        let mut store = PgStore::connect(url, max_connections, fanout.clone()).await?;
        let hearing = listener::start(store.pool.clone(), store.node.clone(), fanout).await?;
        super::cluster::start_heartbeat(store.pool.clone(), store.node.clone());
        store.hearing = Some(hearing);
        Ok(store)
    }

    /// What carries this node's hub events to the others (`crate::cluster`).
    pub fn relay(&self) -> Arc<dyn crate::cluster::Relay> {
        Arc::new(PgRelay::start(self.pool.clone(), self.node.clone()))
    }

    /// A pooled connection for a read.
    async fn conn(&self) -> Result<sqlx::pool::PoolConnection<sqlx::Postgres>, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    /// Sends a command to the writer and waits for its answer.
    async fn write<R>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<R, StoreError>>) -> Command,
    ) -> Result<R, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(make(reply))
            .map_err(|_| StoreError::Internal("the storage writer has stopped".into()))?;
        // The writer drops a request unanswered only when it gave up its batch after
        // COMMIT_TIMEOUT (the database stopped answering in the middle of it): a 503
        // like the rest of that batch, not a 500.
        answer.await.map_err(|_| {
            StoreError::Unreachable(format!(
                "the database did not answer within {} s: this may or may not have been stored; retry in a moment (a publish with the same idempotency key is stored once)",
                super::writer::COMMIT_TIMEOUT.as_secs()
            ))
        })?
    }

    async fn action(
        &self,
        key: ActionKey,
        streams: &[StreamName],
        action: ActionCommand,
    ) -> Result<ActionOutcome, StoreError> {
        let streams = streams.to_vec();
        self.write(|reply| Command::Action {
            key,
            streams,
            action,
            reply,
        })
        .await
    }
}

#[async_trait]
impl Store for PgStore {
    async fn create_tenant(&self, slug: &str, name: &str) -> Result<Tenant, StoreError> {
        in_transaction!(self, |conn| accounts::create_tenant(conn, slug, name))
    }

    async fn tenant(&self, slug: &str) -> Result<Option<Tenant>, StoreError> {
        accounts::tenant(&mut *self.conn().await?, slug).await
    }

    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        in_transaction!(self, |conn| accounts::create_user(conn, user))
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        accounts::user_where(&mut *self.conn().await?, "id = $1", id).await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let email = crate::email::normalize(email);
        accounts::user_where(&mut *self.conn().await?, "lower(email) = lower($1)", &email).await
    }

    async fn firm_user(&self, tenant: &str, id_or_email: &str) -> Result<Option<User>, StoreError> {
        accounts::firm_user(&mut *self.conn().await?, tenant, id_or_email).await
    }

    async fn list_users(&self, tenant: Option<&str>) -> Result<Vec<User>, StoreError> {
        accounts::list_users(&mut *self.conn().await?, tenant).await
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<(), StoreError> {
        in_transaction!(self, |conn| accounts::create_api_key(conn, key))
    }

    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKey>, StoreError> {
        accounts::api_key(&mut *self.conn().await?, key_id).await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        accounts::list_api_keys(&mut *self.conn().await?).await
    }

    async fn revoke_api_key(&self, key_id: &str) -> Result<bool, StoreError> {
        in_transaction!(self, |conn| accounts::revoke_api_key(conn, key_id))
    }

    async fn set_user_disabled(&self, user_id: &str, disabled: bool) -> Result<u64, StoreError> {
        in_transaction!(self, |conn| governance::set_disabled(
            conn, user_id, disabled
        ))
    }

    async fn erase_user(&self, user_id: &str) -> Result<String, StoreError> {
        // `erase` takes the writers' batch lock itself.
        in_transaction!(self, |conn| governance::erase(conn, user_id))
    }

    async fn create_session(&self, session: NewSession) -> Result<(), StoreError> {
        in_transaction!(self, |conn| accounts::create_session(conn, session))
    }

    async fn rotate_session(
        &self,
        old_hash: &str,
        new_hash: &str,
        expires_at: DateTime<Utc>,
        grace: std::time::Duration,
    ) -> Result<RotateOutcome, StoreError> {
        let grace_us = i64::try_from(grace.as_micros()).unwrap_or(i64::MAX);
        in_transaction!(self, |conn| accounts::rotate_session(
            conn, old_hash, new_hash, expires_at, grace_us
        ))
    }

    async fn session_active(&self, session_id: &str) -> Result<bool, StoreError> {
        accounts::session_active(&mut *self.conn().await?, session_id).await
    }

    async fn revoke_session(&self, refresh_hash: &str) -> Result<Option<String>, StoreError> {
        in_transaction!(self, |conn| accounts::revoke_session(conn, refresh_hash))
    }

    async fn set_members(
        &self,
        conversation_id: &str,
        tenant: &str,
        members: &[String],
    ) -> Result<Vec<String>, StoreError> {
        in_transaction!(self, |conn| accounts::set_members(
            conn,
            conversation_id,
            tenant,
            members
        ))
    }

    async fn conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        accounts::conversation(&mut *self.conn().await?, conversation_id).await
    }

    async fn user_conversations(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        accounts::user_conversations(&mut *self.conn().await?, user_id).await
    }

    async fn append(&self, batch: Vec<AppendRequest>) -> Result<Vec<Appended>, StoreError> {
        self.write(|reply| Command::Append { batch, reply }).await
    }

    async fn stream_state(&self, stream: &StreamName) -> Result<StreamState, StoreError> {
        reads::stream_state(&mut *self.conn().await?, &stream.to_string()).await
    }

    async fn read_range(
        &self,
        stream: &StreamName,
        after: u64,
        up_to: u64,
        limit: u32,
    ) -> Result<Vec<StoredNotification>, StoreError> {
        reads::read_range(
            &mut *self.conn().await?,
            stream,
            (after, up_to, limit),
            None,
        )
        .await
    }

    async fn read_unread_range(
        &self,
        user_id: &str,
        stream: &StreamName,
        after: u64,
        up_to: u64,
        limit: u32,
    ) -> Result<Vec<StoredNotification>, StoreError> {
        let mut conn = self.conn().await?;
        reads::read_range(&mut conn, stream, (after, up_to, limit), Some(user_id)).await
    }

    async fn read_flags(&self, user_id: &str, ids: &[String]) -> Result<Vec<bool>, StoreError> {
        reads::read_flags(&mut *self.conn().await?, user_id, ids).await
    }

    async fn unread_counts(
        &self,
        user_id: &str,
        streams: &[StreamName],
    ) -> Result<Vec<(Kind, u64)>, StoreError> {
        reads::unread_counts(&mut *self.conn().await?, user_id, streams).await
    }

    async fn prune(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let cutoff_us = time::to_us(cutoff);
        in_batch_transaction!(self, |conn| actions::prune(conn, cutoff_us))
    }

    async fn retract(&self, request: RetractRequest) -> Result<Retracted, StoreError> {
        in_transaction!(self, |conn| retract::retract(conn, &request))
    }

    async fn recent_retractions(
        &self,
        streams: &[StreamName],
        since: DateTime<Utc>,
    ) -> Result<Vec<tocsin_protocol::frames::Retraction>, StoreError> {
        retract::recent(&mut *self.conn().await?, streams, since).await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        if let Some(deaf_for) = self.hearing.as_ref().and_then(|h| h.deaf_for()) {
            return Err(StoreError::Unreachable(format!(
                "this node has not heard the other nodes for {} s (its LISTEN connection to PostgreSQL is down): it reconnects by itself",
                deaf_for.as_secs()
            )));
        }
        // A primary demoted by a failover still answers reads: ask whether this
        // server takes writes, so /readyz sends load balancers elsewhere.
        let (read_only,): (bool,) = sqlx::query_as("SELECT pg_is_in_recovery()")
            .fetch_one(&self.pool)
            .await?;
        if read_only {
            return Err(StoreError::Unreachable(
                "the PostgreSQL server is a standby (read-only): point the gateway at the primary"
                    .into(),
            ));
        }
        Ok(())
    }

    async fn close(&self) {
        // Nothing to fold as SQLite does: PostgreSQL's data is its own. Closing the
        // pool waits for connections in use and makes later calls fail.
        self.pool.close().await;
    }

    async fn mark_read(
        &self,
        action: ActionKey,
        streams: &[StreamName],
        ids: &[String],
    ) -> Result<ActionOutcome, StoreError> {
        self.action(action, streams, ActionCommand::MarkRead(ids.to_vec()))
            .await
    }

    async fn mark_all_read(
        &self,
        action: ActionKey,
        streams: &[StreamName],
        kind: Option<Kind>,
        up_to: Option<BTreeMap<StreamName, Position>>,
    ) -> Result<ActionOutcome, StoreError> {
        self.action(action, streams, ActionCommand::MarkAllRead { kind, up_to })
            .await
    }

    async fn respond_proposal(
        &self,
        action: ActionKey,
        streams: &[StreamName],
        tenant: &str,
        proposal_id: &str,
        response: ProposalResponse,
    ) -> Result<ActionOutcome, StoreError> {
        let command = ActionCommand::RespondProposal {
            tenant: tenant.to_owned(),
            proposal_id: proposal_id.to_owned(),
            response,
        };
        self.action(action, streams, command).await
    }

    async fn record_shown(
        &self,
        action: ActionKey,
        streams: &[StreamName],
        ids: &[String],
    ) -> Result<ActionOutcome, StoreError> {
        self.action(action, streams, ActionCommand::Shown(ids.to_vec()))
            .await
    }

    async fn acknowledge(
        &self,
        action: ActionKey,
        streams: &[StreamName],
        tenant: &str,
        session_id: Option<&str>,
        ids: &[String],
    ) -> Result<ActionOutcome, StoreError> {
        let command = ActionCommand::Acknowledge {
            tenant: tenant.to_owned(),
            session_id: session_id.map(str::to_owned),
            ids: ids.to_vec(),
        };
        self.action(action, streams, command).await
    }

    async fn deadline_settings(&self, tenant: &str) -> Result<Option<String>, StoreError> {
        deadlines::settings(&mut *self.conn().await?, tenant).await
    }

    async fn set_deadline_settings(
        &self,
        tenant: &str,
        settings: String,
    ) -> Result<(), StoreError> {
        in_transaction!(self, |conn| deadlines::set_settings(
            conn, tenant, &settings
        ))
    }

    async fn deadline(&self, tenant: &str, id: &str) -> Result<Option<DeadlineState>, StoreError> {
        deadlines::load(&mut *self.conn().await?, tenant, id).await
    }

    async fn list_deadlines(
        &self,
        filter: DeadlineFilter,
    ) -> Result<Vec<DeadlineState>, StoreError> {
        deadlines::list(&mut *self.conn().await?, &filter).await
    }

    async fn upsert_deadline(&self, upsert: DeadlineUpsert) -> Result<bool, StoreError> {
        in_transaction!(self, |conn| deadlines::upsert(conn, upsert))
    }

    async fn cancel_deadline(
        &self,
        tenant: &str,
        id: &str,
        status: tocsin_protocol::deadline::DeadlineStatus,
    ) -> Result<bool, StoreError> {
        in_transaction!(self, |conn| deadlines::cancel(conn, tenant, id, status))
    }

    async fn next_step_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        schedule::next_at(&mut *self.conn().await?).await
    }

    async fn due_steps(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueStep>, StoreError> {
        schedule::due(&mut *self.conn().await?, now, limit).await
    }

    async fn fire(&self, firings: Vec<Firing>) -> Result<u32, StoreError> {
        self.write(|reply| Command::Fire { firings, reply }).await
    }

    async fn record_audit(&self, entries: Vec<AuditEntry>) -> Result<(), StoreError> {
        in_transaction!(self, |conn| audit::insert(conn, &entries))
    }

    async fn audit(
        &self,
        filter: AuditFilter,
    ) -> Result<Vec<tocsin_protocol::audit::AuditRecord>, StoreError> {
        audit::list(&mut *self.conn().await?, &filter).await
    }

    async fn prune_audit(&self, tenant: &str, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        in_transaction!(self, |conn| audit::prune(conn, tenant, cutoff))
    }

    async fn user_closed_deadlines(
        &self,
        tenant: &str,
        user_id: &str,
    ) -> Result<Vec<tocsin_protocol::deadline::ClosedDeadline>, StoreError> {
        deadlines::closed_for_user(&mut *self.conn().await?, tenant, user_id).await
    }

    async fn user_acknowledgements(
        &self,
        tenant: &str,
        user_id: &str,
    ) -> Result<Vec<tocsin_protocol::deadline::Acknowledgement>, StoreError> {
        deadlines::acknowledgements_for_user(&mut *self.conn().await?, tenant, user_id).await
    }

    async fn set_webhook(&self, tenant: &str, webhook: Option<Webhook>) -> Result<(), StoreError> {
        in_transaction!(self, |conn| webhooks::set(conn, tenant, webhook.as_ref()))
    }

    async fn webhook(&self, tenant: &str) -> Result<Option<Webhook>, StoreError> {
        webhooks::get(&mut *self.conn().await?, tenant).await
    }

    async fn due_webhook_events(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<WebhookEvent>, StoreError> {
        webhooks::due(&mut *self.conn().await?, now, limit).await
    }

    async fn next_webhook_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        webhooks::next_at(&mut *self.conn().await?).await
    }

    async fn record_webhook_attempt(
        &self,
        id: i64,
        attempt: WebhookAttempt,
    ) -> Result<(), StoreError> {
        in_transaction!(self, |conn| webhooks::record(conn, id, &attempt))
    }

    async fn pending_webhook_events(&self, tenant: Option<&str>) -> Result<u64, StoreError> {
        webhooks::pending(&mut *self.conn().await?, tenant).await
    }

    async fn calendar_feed_user(&self, secret_hash: &str) -> Result<Option<User>, StoreError> {
        webhooks::feed_user(&mut *self.conn().await?, secret_hash).await
    }

    async fn set_calendar_feed(&self, user_id: &str, secret_hash: &str) -> Result<(), StoreError> {
        in_transaction!(self, |conn| webhooks::set_feed(conn, user_id, secret_hash))
    }

    async fn revoke_calendar_feed(&self, user_id: &str) -> Result<bool, StoreError> {
        in_transaction!(self, |conn| webhooks::revoke_feed(conn, user_id))
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::PgStore;
    use crate::store::Store;
    use crate::store::conformance::{self as suite, Recorder};

    /// Runs the shared store suite on a real PostgreSQL server: the same checks as
    /// SQLite's (`store/sqlite/mod.rs`), so a difference is a bug in one backend.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn postgres_passes_the_store_suite() {
        let cluster = tocsin_harness::postgres::PgCluster::start().expect("PostgreSQL starts");
        let url = cluster.create_database("suite").expect("database");
        let recorder = Arc::new(Recorder::default());
        let store: Arc<dyn Store> = Arc::new(
            PgStore::connect(&url, 8, recorder.clone())
                .await
                .expect("connects"),
        );
        let (marie, claire) = suite::seed(store.as_ref()).await;
        suite::offsets_are_consecutive_under_concurrency(store.clone(), &recorder).await;
        suite::batches_are_atomic(store.clone(), &recorder).await;
        suite::idempotency_keys_store_once(store.clone()).await;
        suite::a_refused_publish_fails_alone(store.clone()).await;
        suite::actions_apply_once_and_respect_visibility(store.clone(), &marie).await;
        suite::proposals_are_answered_once(store.clone(), &marie, &claire).await;
        suite::mark_all_read_marks_only_what_was_seen(store.clone(), &marie).await;
        suite::refresh_tokens_rotate_and_detect_reuse(store.clone(), &marie).await;
        suite::a_lost_refresh_answer_gets_one_retry_within_the_grace(store.clone(), &marie).await;
        suite::conversations_stay_in_their_firm(store.clone(), &marie).await;
        suite::schedule_steps_fire_once(store.clone(), &marie).await;
        suite::scheduled_publishes_are_stored_when_fired(store.clone()).await;
        suite::pruning_moves_first(store.clone()).await;
        suite::users_are_disabled_and_erased(store.clone()).await;
        suite::notifications_are_retracted(store.clone(), &marie).await;
    }
}
