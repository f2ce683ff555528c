//! The SQLite store: one file in the data dir, WAL, a single batching writer thread
//! for every change, and a small pool of connections for reads.

mod accounts;
mod audit;
pub mod backup;
mod connection;
mod deadlines;
mod governance;
mod health;
mod integrity;
mod lineage;
mod migrations;
mod ops;
mod reads;
mod retract;
mod schedule;
pub mod serve_lock;
mod webhooks;
mod writer;

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, mpsc};

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use tocsin_protocol::frames::ProposalResponse;
use tocsin_protocol::{Kind, Position, StreamName};
use tokio::sync::oneshot;

use self::connection::Pool;
use self::health::Health;
use self::writer::{Answer, Command, Guard, Writer};
use crate::store::time;
use crate::store::*;

/// The SQLite implementation of [`Store`].
pub struct SqliteStore {
    /// Queue of the writer thread; dropping the store stops the thread.
    writer: mpsc::Sender<Command>,
    /// Connections for reads.
    pool: Arc<Pool>,
    /// What the writer found about the database (busy, files deleted).
    health: Arc<Health>,
}

impl SqliteStore {
    /// Opens (creating and migrating if needed) the database file and starts the
    /// writer thread, for an admin command or a test. `synchronous` is `full` or
    /// `normal`. A file that is empty, or missing where a gateway served one, is
    /// refused (see `integrity.rs`).
    pub fn open(
        path: &Path,
        synchronous: &str,
        fanout: Arc<dyn Fanout>,
    ) -> Result<SqliteStore, StoreError> {
        let conn = Self::open_checked(path, synchronous)?;
        Self::start(path, synchronous, fanout, conn, None)
    }

    /// Opens the database for a gateway that serves it: besides [`SqliteStore::open`],
    /// runs `PRAGMA quick_check`, recognises an older copy (`lineage.rs`: every stream
    /// then gets a new epoch), and watches the files while serving.
    pub fn serve(
        path: &Path,
        synchronous: &str,
        fanout: Arc<dyn Fanout>,
    ) -> Result<SqliteStore, StoreError> {
        let mut conn = Self::open_checked(path, synchronous)?;
        integrity::quick_check(&conn, path)?;
        let lineage = lineage::begin_serving(&mut conn, path)?;
        let guard = Guard::new(path.to_owned(), lineage);
        Self::start(path, synchronous, fanout, conn, Some(guard))
    }

    /// The write connection, on a database that is present, readable and migrated.
    fn open_checked(path: &Path, synchronous: &str) -> Result<rusqlite::Connection, StoreError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|err| {
                StoreError::Internal(format!("cannot create {}: {err}", parent.display()))
            })?;
        }
        integrity::check_present(path)?;
        let explain = |err| integrity::explain_open_error(path, err);
        let mut conn = connection::open(path, synchronous).map_err(explain)?;
        integrity::check_schema_version(&conn, path).map_err(explain)?;
        migrations::upgrade(&mut conn, path).map_err(explain)?;
        Ok(conn)
    }

    fn start(
        path: &Path,
        synchronous: &str,
        fanout: Arc<dyn Fanout>,
        conn: rusqlite::Connection,
        guard: Option<Guard>,
    ) -> Result<SqliteStore, StoreError> {
        let health = Arc::new(Health::default());
        let writer = Writer {
            conn,
            fanout,
            health: health.clone(),
            guard,
        };
        let (tx, rx) = mpsc::channel();
        std::thread::Builder::new()
            .name("tocsin-store-writer".into())
            .spawn(move || writer::run(writer, rx))
            .map_err(|err| {
                StoreError::Internal(format!("cannot start the writer thread: {err}"))
            })?;
        Ok(SqliteStore {
            writer: tx,
            pool: Arc::new(Pool::new(path.to_owned(), synchronous.to_owned())),
            health,
        })
    }

    /// Sends a command to the writer and waits for its answer.
    async fn write<R>(
        &self,
        make: impl FnOnce(oneshot::Sender<Result<R, StoreError>>) -> Command,
    ) -> Result<R, StoreError> {
        if let Some(refusal) = self.health.refusal() {
            return Err(refusal);
        }
        let (reply, answer) = oneshot::channel();
        self.writer
            .send(make(reply))
            .map_err(|_| StoreError::Internal("the storage writer has stopped".into()))?;
        answer
            .await
            .map_err(|_| StoreError::Internal("the storage writer dropped a request".into()))?
    }

    /// Runs an account change on the writer thread and waits for its commit.
    async fn change<R, F>(&self, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&rusqlite::Connection) -> Result<R, StoreError> + Send + 'static,
    {
        self.write(|reply| {
            Command::Account(Box::new(move |conn| {
                // Not run when the writer refuses the batch: the refusal is the answer.
                let result = match conn {
                    Some(conn) => work(conn),
                    None => Err(StoreError::Internal("not run".into())),
                };
                let ok = result.is_ok();
                let answer: Answer = Box::new(move |commit| {
                    // A caller that gave up (dropped its receiver) is not an error here.
                    let _ = reply.send(commit.clone().and(result));
                });
                (ok, answer)
            }))
        })
        .await
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
impl Store for SqliteStore {
    async fn create_tenant(&self, slug: &str, name: &str) -> Result<Tenant, StoreError> {
        let (slug, name) = (slug.to_owned(), name.to_owned());
        self.change(move |conn| accounts::create_tenant(conn, &slug, &name))
            .await
    }

    async fn tenant(&self, slug: &str) -> Result<Option<Tenant>, StoreError> {
        let slug = slug.to_owned();
        self.pool
            .run(move |conn| accounts::tenant(conn, &slug))
            .await
    }

    async fn create_user(&self, user: NewUser) -> Result<User, StoreError> {
        self.change(move |conn| accounts::create_user(conn, user))
            .await
    }

    async fn user_by_id(&self, id: &str) -> Result<Option<User>, StoreError> {
        let id = id.to_owned();
        self.pool
            .run(move |conn| accounts::user_where(conn, "id = ?1", &id))
            .await
    }

    async fn user_by_email(&self, email: &str) -> Result<Option<User>, StoreError> {
        let email = crate::email::normalize(email);
        self.pool
            .run(move |conn| accounts::user_where(conn, "email = ?1", &email))
            .await
    }

    async fn firm_user(&self, tenant: &str, id_or_email: &str) -> Result<Option<User>, StoreError> {
        let (tenant, who) = (tenant.to_owned(), id_or_email.to_owned());
        self.pool
            .run(move |conn| accounts::firm_user(conn, &tenant, &who))
            .await
    }

    async fn list_users(&self, tenant: Option<&str>) -> Result<Vec<User>, StoreError> {
        let tenant = tenant.map(str::to_owned);
        self.pool
            .run(move |conn| accounts::list_users(conn, tenant.as_deref()))
            .await
    }

    async fn create_api_key(&self, key: NewApiKey) -> Result<(), StoreError> {
        self.change(move |conn| accounts::create_api_key(conn, key))
            .await
    }

    async fn api_key(&self, key_id: &str) -> Result<Option<ApiKey>, StoreError> {
        let key_id = key_id.to_owned();
        self.pool
            .run(move |conn| accounts::api_key(conn, &key_id))
            .await
    }

    async fn list_api_keys(&self) -> Result<Vec<ApiKey>, StoreError> {
        self.pool.run(|conn| accounts::list_api_keys(conn)).await
    }

    async fn revoke_api_key(&self, key_id: &str) -> Result<bool, StoreError> {
        let key_id = key_id.to_owned();
        self.change(move |conn| accounts::revoke_api_key(conn, &key_id))
            .await
    }

    async fn set_user_disabled(&self, user_id: &str, disabled: bool) -> Result<u64, StoreError> {
        let id = user_id.to_owned();
        self.change(move |conn| governance::set_disabled(conn, &id, disabled))
            .await
    }

    async fn erase_user(&self, user_id: &str) -> Result<String, StoreError> {
        let id = user_id.to_owned();
        self.change(move |conn| governance::erase(conn, &id)).await
    }

    async fn create_session(&self, session: NewSession) -> Result<(), StoreError> {
        self.change(move |conn| accounts::create_session(conn, session))
            .await
    }

    async fn rotate_session(
        &self,
        old_hash: &str,
        new_hash: &str,
        expires_at: DateTime<Utc>,
        grace: std::time::Duration,
    ) -> Result<RotateOutcome, StoreError> {
        let (old, new) = (old_hash.to_owned(), new_hash.to_owned());
        let grace_us = i64::try_from(grace.as_micros()).unwrap_or(i64::MAX);
        self.change(move |conn| accounts::rotate_session(conn, &old, &new, expires_at, grace_us))
            .await
    }

    async fn session_active(&self, session_id: &str) -> Result<bool, StoreError> {
        let id = session_id.to_owned();
        self.pool
            .run(move |conn| accounts::session_active(conn, &id))
            .await
    }

    async fn revoke_session(&self, refresh_hash: &str) -> Result<Option<String>, StoreError> {
        let hash = refresh_hash.to_owned();
        self.change(move |conn| accounts::revoke_session(conn, &hash))
            .await
    }

    async fn set_members(
        &self,
        conversation_id: &str,
        tenant: &str,
        members: &[String],
    ) -> Result<Vec<String>, StoreError> {
        let (id, tenant, members) = (
            conversation_id.to_owned(),
            tenant.to_owned(),
            members.to_vec(),
        );
        self.change(move |conn| accounts::set_members(conn, &id, &tenant, &members))
            .await
    }

    async fn conversation(
        &self,
        conversation_id: &str,
    ) -> Result<Option<Conversation>, StoreError> {
        let id = conversation_id.to_owned();
        self.pool
            .run(move |conn| accounts::conversation(conn, &id))
            .await
    }

    async fn user_conversations(&self, user_id: &str) -> Result<Vec<String>, StoreError> {
        let id = user_id.to_owned();
        self.pool
            .run(move |conn| accounts::user_conversations(conn, &id))
            .await
    }

    async fn append(&self, batch: Vec<AppendRequest>) -> Result<Vec<Appended>, StoreError> {
        self.write(|reply| Command::Append { batch, reply }).await
    }

    async fn stream_state(&self, stream: &StreamName) -> Result<StreamState, StoreError> {
        let stream = stream.to_string();
        self.pool
            .run(move |conn| reads::stream_state(conn, &stream))
            .await
    }

    async fn read_range(
        &self,
        stream: &StreamName,
        after: u64,
        up_to: u64,
        limit: u32,
    ) -> Result<Vec<StoredNotification>, StoreError> {
        let stream = stream.clone();
        self.pool
            .run(move |conn| reads::read_range(conn, &stream, (after, up_to, limit), None))
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
        let (stream, user) = (stream.clone(), user_id.to_owned());
        self.pool
            .run(move |conn| {
                reads::read_range(conn, &stream, (after, up_to, limit), Some(user.as_str()))
            })
            .await
    }

    async fn read_flags(&self, user_id: &str, ids: &[String]) -> Result<Vec<bool>, StoreError> {
        let (user, ids) = (user_id.to_owned(), ids.to_vec());
        self.pool
            .run(move |conn| reads::read_flags(conn, &user, &ids))
            .await
    }

    async fn unread_counts(
        &self,
        user_id: &str,
        streams: &[StreamName],
    ) -> Result<Vec<(Kind, u64)>, StoreError> {
        let (user, streams) = (user_id.to_owned(), streams.to_vec());
        self.pool
            .run(move |conn| reads::unread_counts(conn, &user, &streams))
            .await
    }

    async fn prune(&self, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let cutoff_us = time::to_us(cutoff);
        self.write(|reply| Command::Prune { cutoff_us, reply })
            .await
    }

    async fn retract(&self, request: RetractRequest) -> Result<Retracted, StoreError> {
        self.change(move |conn| retract::retract(conn, &request))
            .await
    }

    async fn recent_retractions(
        &self,
        streams: &[StreamName],
        since: DateTime<Utc>,
    ) -> Result<Vec<tocsin_protocol::frames::Retraction>, StoreError> {
        let streams = streams.to_vec();
        self.pool
            .run(move |conn| retract::recent(conn, &streams, since))
            .await
    }

    async fn ping(&self) -> Result<(), StoreError> {
        self.health.readiness()?;
        self.pool
            .run(|conn| {
                conn.query_row("SELECT 1", [], |_| Ok(()))?;
                Ok(())
            })
            .await
    }

    async fn close(&self) {
        let (reply, done) = oneshot::channel();
        if self.writer.send(Command::Close(reply)).is_ok() {
            let _ = done.await;
        }
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
        let tenant = tenant.to_owned();
        self.pool
            .run(move |conn| deadlines::settings(conn, &tenant))
            .await
    }

    async fn set_deadline_settings(
        &self,
        tenant: &str,
        settings: String,
    ) -> Result<(), StoreError> {
        let tenant = tenant.to_owned();
        self.change(move |conn| deadlines::set_settings(conn, &tenant, &settings))
            .await
    }

    async fn deadline(&self, tenant: &str, id: &str) -> Result<Option<DeadlineState>, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.pool
            .run(move |conn| deadlines::load(conn, &tenant, &id))
            .await
    }

    async fn list_deadlines(
        &self,
        filter: DeadlineFilter,
    ) -> Result<Vec<DeadlineState>, StoreError> {
        self.pool
            .run(move |conn| deadlines::list(conn, &filter))
            .await
    }

    async fn upsert_deadline(&self, upsert: DeadlineUpsert) -> Result<bool, StoreError> {
        self.change(move |conn| deadlines::upsert(conn, upsert))
            .await
    }

    async fn cancel_deadline(
        &self,
        tenant: &str,
        id: &str,
        status: tocsin_protocol::deadline::DeadlineStatus,
    ) -> Result<bool, StoreError> {
        let (tenant, id) = (tenant.to_owned(), id.to_owned());
        self.change(move |conn| deadlines::cancel(conn, &tenant, &id, status))
            .await
    }

    async fn next_step_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.pool.run(|conn| schedule::next_at(conn)).await
    }

    async fn due_steps(&self, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueStep>, StoreError> {
        self.pool
            .run(move |conn| schedule::due(conn, now, limit))
            .await
    }

    async fn fire(&self, firings: Vec<Firing>) -> Result<u32, StoreError> {
        self.write(|reply| Command::Fire { firings, reply }).await
    }

    async fn user_closed_deadlines(
        &self,
        tenant: &str,
        user_id: &str,
    ) -> Result<Vec<tocsin_protocol::deadline::ClosedDeadline>, StoreError> {
        let (tenant, user_id) = (tenant.to_owned(), user_id.to_owned());
        self.pool
            .run(move |conn| deadlines::closed_for_user(conn, &tenant, &user_id))
            .await
    }

    async fn user_acknowledgements(
        &self,
        tenant: &str,
        user_id: &str,
    ) -> Result<Vec<tocsin_protocol::deadline::Acknowledgement>, StoreError> {
        let (tenant, user_id) = (tenant.to_owned(), user_id.to_owned());
        self.pool
            .run(move |conn| deadlines::acknowledgements_for_user(conn, &tenant, &user_id))
            .await
    }

    async fn set_webhook(&self, tenant: &str, webhook: Option<Webhook>) -> Result<(), StoreError> {
        let tenant = tenant.to_owned();
        self.change(move |conn| webhooks::set(conn, &tenant, webhook.as_ref()))
            .await
    }

    async fn webhook(&self, tenant: &str) -> Result<Option<Webhook>, StoreError> {
        let tenant = tenant.to_owned();
        self.pool
            .run(move |conn| webhooks::get(conn, &tenant))
            .await
    }

    async fn due_webhook_events(
        &self,
        now: DateTime<Utc>,
        limit: u32,
    ) -> Result<Vec<WebhookEvent>, StoreError> {
        self.pool
            .run(move |conn| webhooks::due(conn, now, limit))
            .await
    }

    async fn next_webhook_at(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.pool.run(|conn| webhooks::next_at(conn)).await
    }

    async fn record_webhook_attempt(
        &self,
        id: i64,
        attempt: WebhookAttempt,
    ) -> Result<(), StoreError> {
        self.change(move |conn| webhooks::record(conn, id, &attempt))
            .await
    }

    async fn pending_webhook_events(&self, tenant: Option<&str>) -> Result<u64, StoreError> {
        let tenant = tenant.map(str::to_owned);
        self.pool
            .run(move |conn| webhooks::pending(conn, tenant.as_deref()))
            .await
    }

    async fn calendar_feed_user(&self, secret_hash: &str) -> Result<Option<User>, StoreError> {
        let hash = secret_hash.to_owned();
        self.pool
            .run(move |conn| webhooks::feed_user(conn, &hash))
            .await
    }

    async fn set_calendar_feed(&self, user_id: &str, secret_hash: &str) -> Result<(), StoreError> {
        let (user, hash) = (user_id.to_owned(), secret_hash.to_owned());
        self.change(move |conn| webhooks::set_feed(conn, &user, &hash))
            .await
    }

    async fn revoke_calendar_feed(&self, user_id: &str) -> Result<bool, StoreError> {
        let user = user_id.to_owned();
        self.change(move |conn| webhooks::revoke_feed(conn, &user))
            .await
    }

    async fn record_audit(&self, entries: Vec<AuditEntry>) -> Result<(), StoreError> {
        self.change(move |conn| audit::insert(conn, &entries)).await
    }

    async fn audit(
        &self,
        filter: AuditFilter,
    ) -> Result<Vec<tocsin_protocol::audit::AuditRecord>, StoreError> {
        self.pool.run(move |conn| audit::list(conn, &filter)).await
    }

    async fn prune_audit(&self, tenant: &str, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
        let tenant = tenant.to_owned();
        self.change(move |conn| audit::prune(conn, &tenant, cutoff))
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
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::SqliteStore;
    use crate::store::Store;
    use crate::store::conformance::{self as suite, Recorder};

    /// Runs the shared store suite on a real SQLite file.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sqlite_passes_the_store_suite() {
        let dir = tempfile::tempdir().expect("tempdir");
        let recorder = Arc::new(Recorder::default());
        let store: Arc<dyn Store> = Arc::new(
            SqliteStore::open(&dir.path().join("t.db"), "full", recorder.clone()).expect("opens"),
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

    /// Everything acknowledged survives closing and reopening the file.
    #[tokio::test]
    async fn data_survives_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        let epoch = {
            let store =
                SqliteStore::open(&path, "full", Arc::new(Recorder::default())).expect("opens");
            suite::seed(&store).await;
            suite::idempotency_keys_store_once(Arc::new(store)).await;
            let store =
                SqliteStore::open(&path, "full", Arc::new(Recorder::default())).expect("reopens");
            store
                .stream_state(&"user:idem".parse().expect("name"))
                .await
                .expect("state")
                .epoch
        };
        let store =
            SqliteStore::open(&path, "full", Arc::new(Recorder::default())).expect("reopens");
        let state = store
            .stream_state(&"user:idem".parse().expect("name"))
            .await
            .expect("state");
        assert_eq!((state.epoch, state.head), (epoch, 1));
    }
}
