//! The node's writer: one task commits every change that raises notifications
//! (publishes, client actions, scheduled steps) in batches, like SQLite's writer
//! thread (`store/sqlite/writer.rs`): each command in its own savepoint (one bad
//! command does not fail its neighbours), one commit — one WAL flush — for the batch,
//! and only then are the callers answered and the new notifications fanned out, in
//! offset order.
//!
//! Several nodes share the database, so each batch first takes one transaction-level
//! advisory lock: batches of all nodes commit one after the other. Offsets are
//! gap-free without it (the stream's head row is locked by the update that advances
//! it), but a batch locking streams A then B while another node's locks B then A
//! would deadlock; PostgreSQL would abort one after a second and fail every publish
//! in it. With one lock per batch there is no such cycle, and commit order is the
//! order the lock was granted.
//!
//! Before committing, the batch announces what it stored to the other nodes
//! (`cluster.rs`): NOTIFY is transactional, so they hear of it only if it commits, and
//! in commit order.

use std::sync::Arc;
use std::time::Instant;

use sqlx::{Connection, PgConnection, PgPool};
use tokio::sync::{mpsc, oneshot};

use crate::store::{
    ActionCommand, ActionKey, ActionOutcome, AppendRequest, Appended, Fanout, Firing, StoreError,
    StoredNotification,
};
use tocsin_protocol::StreamName;

/// The longest a batch may take before its callers are answered 503.
pub(super) const COMMIT_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The most commands applied in one transaction.
const MAX_COMMANDS_PER_COMMIT: usize = 512;

/// The advisory lock every writer batch of every node takes (`pg_advisory_xact_lock`):
/// "tocsin" in ASCII, unlikely to collide with another application's key.
pub const BATCH_LOCK: i64 = 0x746f_6373_696e;

/// A unit of work for the writer, with the channel its answer goes to.
pub enum Command {
    /// Store notifications atomically.
    Append {
        /// The notifications.
        batch: Vec<AppendRequest>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Vec<Appended>, StoreError>>,
    },
    /// A client action (mark read, answer a proposal, acknowledge…).
    Action {
        /// Who and which action id.
        key: ActionKey,
        /// The streams the user may read.
        streams: Vec<StreamName>,
        /// What to do.
        action: ActionCommand,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<ActionOutcome, StoreError>>,
    },
    /// Apply due schedule steps (each only if still planned); answers how many were.
    Fire {
        /// What to do with each step.
        firings: Vec<Firing>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<u32, StoreError>>,
    },
}

/// A command's answer, held until the commit's outcome is known.
pub(super) enum Pending {
    Append(
        oneshot::Sender<Result<Vec<Appended>, StoreError>>,
        Result<Vec<Appended>, StoreError>,
    ),
    Action(
        oneshot::Sender<Result<ActionOutcome, StoreError>>,
        Result<ActionOutcome, StoreError>,
    ),
    Fire(
        oneshot::Sender<Result<u32, StoreError>>,
        Result<u32, StoreError>,
    ),
}

impl Pending {
    /// Sends the answer, or the commit's failure instead.
    fn answer(self, commit: &Result<(), StoreError>) {
        // A caller that gave up (dropped its receiver) is not an error here.
        match self {
            Pending::Append(tx, result) => {
                let _ = tx.send(commit.clone().and(result));
            }
            Pending::Action(tx, result) => {
                let _ = tx.send(commit.clone().and(result));
            }
            Pending::Fire(tx, result) => {
                let _ = tx.send(commit.clone().and(result));
            }
        }
    }

    /// The answer of a command that was not run: the batch's failure replaces it.
    fn not_run(command: Command) -> Pending {
        fn not_run<T>() -> Result<T, StoreError> {
            Err(StoreError::Internal("not run".into()))
        }
        match command {
            Command::Append { reply, .. } => Pending::Append(reply, not_run()),
            Command::Action { reply, .. } => Pending::Action(reply, not_run()),
            Command::Fire { reply, .. } => Pending::Fire(reply, not_run()),
        }
    }
}

/// What the writer task owns.
pub struct Writer {
    /// Where its connections come from.
    pub pool: PgPool,
    /// This node's id, in its announcements.
    pub node: Arc<str>,
    /// This node's hub.
    pub fanout: Arc<dyn Fanout>,
}

/// Runs the writer until every sender is dropped.
pub async fn run(writer: Writer, mut commands: mpsc::UnboundedReceiver<Command>) {
    while let Some(first) = commands.recv().await {
        let mut batch = vec![first];
        while batch.len() < MAX_COMMANDS_PER_COMMIT {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        writer.commit_batch(batch).await;
    }
    tracing::debug!("PostgreSQL writer stopped");
}

impl Writer {
    /// Applies a batch of commands in one transaction, then answers and fans out.
    async fn commit_batch(&self, batch: Vec<Command>) {
        let (commands, started) = (batch.len(), Instant::now());
        let mut pending = Vec::with_capacity(batch.len());
        let mut delivered = Vec::new();
        let mut batch = batch.into_iter();
        // A database behind a network cut answers nothing, not even an error: the batch
        // is given up after COMMIT_TIMEOUT with a clear 503 rather than hanging every
        // publisher (its transaction dies with its connection; one whose COMMIT was
        // already sent may have committed, which a retry with the same idempotency key
        // answers as a duplicate).
        let commit = tokio::time::timeout(
        COMMIT_TIMEOUT,
        self.transact(&mut batch, &mut pending, &mut delivered),
    )
    .await
    .unwrap_or_else(|_| {
        Err(StoreError::Unreachable(format!(
            "the database did not answer within {} s: nothing was stored (unless a retry with the same idempotency key says otherwise); retry in a moment",
            COMMIT_TIMEOUT.as_secs()
        )))
    });
        // Whatever the failure left unrun gets the failure as its answer.
        pending.extend(batch.map(Pending::not_run));
        crate::metrics::committed(commands, started.elapsed());
        if let Err(err) = &commit {
            tracing::error!(error = %err, "storage commit failed; nothing from this batch was stored");
            delivered.clear();
        }
        // Answer first, then fan out (see store/sqlite/writer.rs for why this order).
        for item in pending {
            item.answer(&commit);
        }
        if !delivered.is_empty() {
            self.fanout.deliver(&delivered);
        }
    }

    /// Runs every command in its own savepoint of one transaction (a run of plain
    /// publishes in one call, `append_run.rs`), announces what it stored and commits.
    async fn transact(
        &self,
        commands: &mut std::vec::IntoIter<Command>,
        pending: &mut Vec<Pending>,
        delivered: &mut Vec<Arc<StoredNotification>>,
    ) -> Result<(), StoreError> {
        let mut conn = self.pool.acquire().await?;
        let mut tx = conn.begin().await?;
        sqlx::query("SELECT pg_advisory_xact_lock($1)")
            .bind(BATCH_LOCK)
            .execute(&mut *tx)
            .await?;
        loop {
            // Consecutive plain publishes go to the database in one call.
            let mut run = Vec::new();
            while commands
                .as_slice()
                .first()
                .is_some_and(super::append_run::is_plain)
            {
                run.extend(commands.next());
            }
            if !run.is_empty() {
                super::append_run::apply(&mut tx, run, pending, delivered).await?;
                continue;
            }
            let Some(command) = commands.next() else {
                break;
            };
            let mut savepoint = match tx.begin().await {
                Ok(savepoint) => savepoint,
                Err(err) => {
                    pending.push(Pending::not_run(command));
                    return Err(err.into());
                }
            };
            let mut fresh = Vec::new();
            let (item, ok) = apply(&mut savepoint, command, &mut fresh).await;
            pending.push(item);
            if ok {
                savepoint.commit().await?;
                delivered.extend(fresh);
            } else {
                savepoint.rollback().await?;
            }
        }
        if !delivered.is_empty() {
            let committed: Vec<(String, u64)> = delivered
                .iter()
                .map(|n| (n.stream.to_string(), n.offset))
                .collect();
            super::cluster::announce_log(&mut tx, &self.node, &committed).await?;
        }
        tx.commit().await?;
        Ok(())
    }
}

/// Applies one command; returns its pending answer and whether it succeeded.
async fn apply(
    conn: &mut PgConnection,
    command: Command,
    fresh: &mut Vec<Arc<StoredNotification>>,
) -> (Pending, bool) {
    match command {
        Command::Append { batch, reply } => {
            let result = super::ops::append_all(conn, batch, fresh).await;
            let ok = result.is_ok();
            (Pending::Append(reply, result), ok)
        }
        Command::Action {
            key,
            streams,
            action,
            reply,
        } => {
            let result = super::actions::apply_action(conn, &key, &streams, action, fresh).await;
            let ok = result.is_ok();
            (Pending::Action(reply, result), ok)
        }
        Command::Fire { firings, reply } => {
            let result = fire_all(conn, firings, fresh).await;
            let ok = result.is_ok();
            (Pending::Fire(reply, result), ok)
        }
    }
}

/// Applies each firing in its own savepoint: one whose notification cannot be stored
/// is left planned (a minute later) and logged, and the others still commit.
async fn fire_all(
    conn: &mut PgConnection,
    firings: Vec<Firing>,
    fresh: &mut Vec<Arc<StoredNotification>>,
) -> Result<u32, StoreError> {
    let mut applied = 0;
    for firing in firings {
        let step_id = firing.step_id;
        let mut own = Vec::new();
        let mut savepoint = conn.begin().await?;
        match super::schedule::fire(&mut savepoint, firing, &mut own).await {
            Ok(fired) => {
                savepoint.commit().await?;
                applied += u32::from(fired);
                fresh.extend(own);
            }
            Err(err) => {
                savepoint.rollback().await?;
                // Tried again in a minute rather than at once: the scheduler would
                // otherwise find it due again in a loop.
                sqlx::query(
                    "UPDATE schedule SET at_us = at_us + 60000000 WHERE id = $1 AND state = 'planned'",
                )
                .bind(step_id)
                .execute(&mut *conn)
                .await?;
                tracing::error!(step = step_id, error = %err, "a scheduled step could not be applied; it stays planned and is tried again in a minute");
            }
        }
    }
    Ok(applied)
}
