//! The single writer: one thread owns the write connection and commits in batches.
//!
//! Every change to streams goes through here, so offsets are assigned in commit order
//! by construction. The thread takes every command waiting in its queue (up to
//! [`MAX_COMMANDS_PER_COMMIT`]), applies each in its own savepoint (one bad command
//! does not fail its neighbours), commits once — one fsync for the whole batch — and
//! only then answers the callers and hands the new notifications to the fan-out, in
//! offset order. Nothing is ever answered or fanned out that is not committed.
//!
//! Account changes (firms, users, keys, device sessions, members) come here too, so
//! the database has exactly one writer: before, they ran on pooled connections and,
//! when many new SSO users connected at once, waited on SQLite's write lock past the
//! busy timeout and failed with "database is locked".

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::health::Health;
use super::integrity::{self, FileWatch};
use super::lineage::{self, Lineage};
use super::ops;
use crate::store::{
    ActionCommand, ActionKey, ActionOutcome, AppendRequest, Appended, Fanout, StoreError,
    StoredNotification,
};
use tocsin_protocol::StreamName;

/// The most commands applied in one transaction.
const MAX_COMMANDS_PER_COMMIT: usize = 512;
/// The writer's page cache (SQLite's negative `cache_size` is KiB): 32 MiB.
const WRITER_CACHE_KIB: &str = "-32768";
/// WAL pages between automatic checkpoints (~40 MiB of WAL at most between them).
const WAL_CHECKPOINT_PAGES: &str = "10000";
/// How often an idle writer looks at its files, and the most often the lineage file
/// is rewritten (each rewrite is two fsyncs).
const TICK: Duration = Duration::from_secs(1);

/// A unit of work for the writer, with the channel its answer goes to.
pub enum Command {
    /// Store notifications atomically.
    Append {
        /// The notifications.
        batch: Vec<AppendRequest>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<Vec<Appended>, StoreError>>,
    },
    /// A client action (mark read, mark all read, answer a proposal).
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
    /// An account change, run in its own savepoint like every command.
    Account(AccountWork),
    /// Apply due schedule steps (each only if still planned); answers how many were.
    Fire {
        /// What to do with each step.
        firings: Vec<crate::store::Firing>,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<u32, StoreError>>,
    },
    /// Delete what is older than retention.
    Prune {
        /// Cut-off in microseconds.
        cutoff_us: i64,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
    /// Shut down: fold the WAL into the database file, record the lineage, stop.
    Close(oneshot::Sender<()>),
}

/// An account change: applied to the writer's connection (`None` when the writer
/// refuses the whole batch), it says whether it succeeded and gives the answer to send
/// once the commit's outcome is known.
pub type AccountWork = Box<dyn FnOnce(Option<&Connection>) -> (bool, Answer) + Send>;

/// Sends a command's answer, given whether its transaction committed.
pub type Answer = Box<dyn FnOnce(&Result<(), StoreError>) + Send>;

/// A command's answer, held until the commit succeeded.
enum Pending {
    Append(
        oneshot::Sender<Result<Vec<Appended>, StoreError>>,
        Result<Vec<Appended>, StoreError>,
    ),
    Action(
        oneshot::Sender<Result<ActionOutcome, StoreError>>,
        Result<ActionOutcome, StoreError>,
    ),
    Prune(
        oneshot::Sender<Result<u64, StoreError>>,
        Result<u64, StoreError>,
    ),
    Fire(
        oneshot::Sender<Result<u32, StoreError>>,
        Result<u32, StoreError>,
    ),
    Account(Answer),
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
            Pending::Prune(tx, result) => {
                let _ = tx.send(commit.clone().and(result));
            }
            Pending::Fire(tx, result) => {
                let _ = tx.send(commit.clone().and(result));
            }
            Pending::Account(answer) => answer(commit),
        }
    }

    /// The answer of a command that was not run: the batch's refusal replaces it.
    fn refused(command: Command) -> Option<Pending> {
        fn not_run<T>() -> Result<T, StoreError> {
            Err(StoreError::Internal("not run".into()))
        }
        Some(match command {
            Command::Append { reply, .. } => Pending::Append(reply, not_run()),
            Command::Action { reply, .. } => Pending::Action(reply, not_run()),
            Command::Prune { reply, .. } => Pending::Prune(reply, not_run()),
            Command::Fire { reply, .. } => Pending::Fire(reply, not_run()),
            Command::Account(work) => Pending::Account(work(None).1),
            Command::Close(_) => return None,
        })
    }
}

/// The writer thread's state: the one write connection and what it reports to.
pub struct Writer {
    /// The only connection that writes.
    pub conn: Connection,
    /// Where committed notifications go.
    pub fanout: Arc<dyn Fanout>,
    /// Shared with `/readyz`.
    pub health: Arc<Health>,
    /// Set when a gateway serves this database (not for an admin command).
    pub guard: Option<Guard>,
}

/// What a serving gateway's writer watches besides committing: that its files are
/// still the ones it opened, and the lineage file (`lineage.rs`).
pub struct Guard {
    /// The database file.
    database: PathBuf,
    /// The identities of the database file and its WAL.
    watch: FileWatch,
    /// The lineage as of the last commit.
    lineage: Lineage,
    /// What the lineage file says, and when it was written.
    recorded: (Lineage, Instant),
    /// When the files were last compared with those opened.
    checked_at: Instant,
}

impl Guard {
    /// Starts watching; call after the first write of this run (the WAL then exists).
    pub fn new(database: PathBuf, lineage: Lineage) -> Guard {
        Guard {
            watch: FileWatch::new(&database),
            database,
            lineage,
            recorded: (lineage, Instant::now()),
            checked_at: Instant::now(),
        }
    }

    /// Rewrites the lineage file if it is behind and was not written for a tick (or
    /// `now_anyway`, at shutdown).
    fn record(&mut self, now_anyway: bool) {
        let (recorded, at) = self.recorded;
        if recorded == self.lineage || (!now_anyway && at.elapsed() < TICK) {
            return;
        }
        let file = lineage::file_of(&self.database);
        match lineage::write_file(&file, self.lineage) {
            Ok(()) => self.recorded = (self.lineage, Instant::now()),
            Err(err) => {
                tracing::warn!(file = %file.display(), error = %err, "cannot update the lineage file; will retry")
            }
        }
    }
}

/// Free space beside the database below which a full disk is still full: room for
/// dozens of ordinary publishes, so readiness does not flap on the next one.
const ROOM_AGAIN: u64 = 512 * 1024;

/// The bytes an unprivileged process may still write on the database's filesystem.
#[cfg(unix)]
fn free_bytes(database: &std::path::Path) -> Option<u64> {
    let dir = database.parent().filter(|p| !p.as_os_str().is_empty())?;
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(stat.blocks_available().saturating_mul(stat.fragment_size()))
}

#[cfg(not(unix))]
fn free_bytes(_: &std::path::Path) -> Option<u64> {
    None
}

/// Runs the writer loop until every sender is dropped or [`Command::Close`].
pub fn run(mut writer: Writer, commands: mpsc::Receiver<Command>) {
    tune(&writer.conn);
    loop {
        let first = match commands.recv_timeout(TICK) {
            Ok(first) => first,
            Err(RecvTimeoutError::Timeout) => {
                writer.tick();
                continue;
            }
            Err(RecvTimeoutError::Disconnected) => break,
        };
        let mut batch = vec![first];
        while batch.len() < MAX_COMMANDS_PER_COMMIT {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        let close = batch
            .iter()
            .position(|c| matches!(c, Command::Close(_)))
            .map(|at| batch.remove(at));
        if !batch.is_empty() {
            writer.commit_batch(batch);
        }
        writer.tick();
        if let Some(Command::Close(reply)) = close {
            writer.close();
            let _ = reply.send(());
            break;
        }
    }
    tracing::debug!("storage writer stopped");
}

impl Writer {
    /// Between batches: notice deleted files even with no traffic, see whether another
    /// process released the write lock, keep the lineage file current.
    fn tick(&mut self) {
        let due = self
            .guard
            .as_ref()
            .is_some_and(|guard| guard.checked_at.elapsed() >= TICK);
        if due && self.health.refusal().is_none() {
            let _ = self.check_files();
        }
        if self.health.is_busy() {
            self.probe_lock();
        }
        if self.health.is_full() {
            self.probe_space();
        }
        if let Some(guard) = &mut self.guard {
            guard.record(false);
        }
    }

    /// The refusal for a write now: the database was found unusable. The files are
    /// looked at once a tick, not per batch: four `stat`s per batch were measurable on
    /// single publishes, and nothing committed in between is lost — the rescue saves it
    /// through the descriptors SQLite still holds.
    fn refusal(&mut self) -> Option<StoreError> {
        self.health.refusal()
    }

    /// Compares the files with those opened; on a change saves what can be saved and
    /// makes the store refuse writes from now on.
    fn check_files(&mut self) -> Result<(), StoreError> {
        let Some(guard) = &mut self.guard else {
            return Ok(());
        };
        guard.checked_at = Instant::now();
        let Some(vanished) = guard.watch.check() else {
            return Ok(());
        };
        let message = integrity::rescue(&self.conn, &guard.database, vanished);
        tracing::error!(file = %guard.watch.wal_path().display(), "{message}");
        self.health.make_unusable(message.clone());
        Err(StoreError::Unusable(message))
    }

    /// Whether another process still holds the write lock, without waiting for it.
    fn probe_lock(&mut self) {
        let _ = self.conn.busy_timeout(Duration::ZERO);
        let probe = self
            .conn
            .execute_batch("BEGIN IMMEDIATE; ROLLBACK;")
            .map_err(StoreError::from);
        let _ = self.conn.busy_timeout(super::connection::BUSY_TIMEOUT);
        if !matches!(probe, Err(StoreError::Busy)) {
            self.health.record_commit(&Ok(()));
        }
    }

    /// Whether the disk has room again (the operator freed some), so readiness recovers
    /// without waiting for a publish: [`ROOM_AGAIN`] free beside the database, and a
    /// write of one page that changes nothing. One page alone fits long before a
    /// publish does (the refused one may have needed dozens), so free space decides
    /// first.
    fn probe_space(&mut self) {
        let room = self
            .guard
            .as_ref()
            .and_then(|guard| free_bytes(&guard.database));
        if room.is_some_and(|free| free < ROOM_AGAIN) {
            return;
        }
        let probe = self
            .conn
            .execute_batch(
                "BEGIN IMMEDIATE; UPDATE meta SET value = value WHERE key = 'commits'; COMMIT;",
            )
            .map_err(StoreError::from);
        if probe.is_err() {
            let _ = self.conn.execute_batch("ROLLBACK");
        }
        if !matches!(probe, Err(StoreError::DiskFull)) {
            self.health.record_commit(&probe);
        }
    }

    /// At shutdown: folds the WAL into the database file, so a stopped gateway's data
    /// is one self-contained file (copying `tocsin.db` alone is a whole backup).
    fn close(&mut self) {
        if self.health.refusal().is_none() {
            match self
                .conn
                .query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                    row.get::<_, i64>(0)
                }) {
                Ok(0) => tracing::info!(
                    "database checkpointed: the WAL is folded into the database file"
                ),
                Ok(_) => tracing::warn!(
                    "the final checkpoint was incomplete: a reader held the WAL; it stays beside the database"
                ),
                Err(err) => {
                    tracing::warn!(error = %err, "the final checkpoint failed; the WAL stays beside the database")
                }
            }
        }
        if let Some(guard) = &mut self.guard {
            guard.record(true);
        }
    }

    /// Applies a batch of commands in one transaction, then answers and fans out.
    fn commit_batch(&mut self, batch: Vec<Command>) {
        let mut pending = Vec::with_capacity(batch.len());
        let mut delivered: Vec<Arc<StoredNotification>> = Vec::new();
        let commit = match self.refusal() {
            Some(refusal) => {
                pending.extend(batch.into_iter().filter_map(Pending::refused));
                Err(refusal)
            }
            None => {
                let (commands, started) = (batch.len(), Instant::now());
                let commit = self.transact(batch, &mut pending, &mut delivered);
                crate::metrics::committed(commands, started.elapsed());
                commit
            }
        };
        self.health.record_commit(&commit);
        if let Err(err) = &commit {
            tracing::error!(error = %err, "storage commit failed; nothing from this batch was stored");
            delivered.clear();
        }
        // Answer first, then fan out. Both happen only after the commit, so nothing is
        // sent that is not stored either way; the order decides who tokio runs first. A
        // fan-out to 10k connections wakes 10k tasks, and a publisher answered after it
        // waited behind all of them (~100 ms at 10k, docs/BENCHMARKS.md).
        for item in pending {
            item.answer(&commit);
        }
        if !delivered.is_empty() {
            self.fanout.deliver(&delivered);
        }
    }

    /// Runs every command in its own savepoint of one transaction and commits it.
    fn transact(
        &mut self,
        batch: Vec<Command>,
        pending: &mut Vec<Pending>,
        delivered: &mut Vec<Arc<StoredNotification>>,
    ) -> Result<(), StoreError> {
        // Every command gets an answer, even when the transaction cannot begin (another
        // process holds the lock past the busy timeout): the refusal is then the answer.
        let mut commands = batch.into_iter();
        let refuse_rest = |commands: std::vec::IntoIter<Command>, pending: &mut Vec<Pending>| {
            pending.extend(commands.filter_map(Pending::refused));
        };
        let mut tx = match self
            .conn
            .transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)
        {
            Ok(tx) => tx,
            Err(err) => {
                refuse_rest(commands, pending);
                return Err(err.into());
            }
        };
        while let Some(command) = commands.next() {
            // A savepoint per command: one failing command rolls back alone.
            let sp = match tx.savepoint() {
                Ok(sp) => sp,
                Err(err) => {
                    pending.extend(Pending::refused(command));
                    refuse_rest(commands, pending);
                    return Err(err.into());
                }
            };
            let mut fresh = Vec::new();
            let (item, ok) = apply(&sp, command, &mut fresh);
            pending.extend(item);
            if ok {
                sp.commit()?;
                delivered.extend(fresh);
            } else {
                // Dropping a savepoint rolls it back.
                drop(sp);
            }
        }
        let commits = lineage::count_commit(&tx)?;
        tx.commit()?;
        if let Some(guard) = &mut self.guard {
            guard.lineage.commits = commits;
        }
        Ok(())
    }
}

/// Applies one command; returns its pending answer and whether it succeeded.
fn apply(
    conn: &Connection,
    command: Command,
    fresh: &mut Vec<Arc<StoredNotification>>,
) -> (Option<Pending>, bool) {
    match command {
        Command::Append { batch, reply } => {
            let result = ops::append_all(conn, batch, fresh);
            let ok = result.is_ok();
            (Some(Pending::Append(reply, result)), ok)
        }
        Command::Action {
            key,
            streams,
            action,
            reply,
        } => {
            let result = ops::apply_action(conn, &key, &streams, action, fresh);
            let ok = result.is_ok();
            (Some(Pending::Action(reply, result)), ok)
        }
        Command::Account(work) => {
            let (ok, answer) = work(Some(conn));
            (Some(Pending::Account(answer)), ok)
        }
        Command::Fire { firings, reply } => {
            let result = fire_all(conn, firings, fresh);
            let ok = result.is_ok();
            (Some(Pending::Fire(reply, result)), ok)
        }
        Command::Prune { cutoff_us, reply } => {
            let result = ops::prune(conn, cutoff_us);
            let ok = result.is_ok();
            (Some(Pending::Prune(reply, result)), ok)
        }
        // Taken out of the batch by `run` before it gets here.
        Command::Close(reply) => {
            let _ = reply.send(());
            (None, true)
        }
    }
}

/// Applies each firing in its own savepoint: one whose notification cannot be stored
/// is left planned (a minute later) and logged, and the others still commit.
fn fire_all(
    conn: &Connection,
    firings: Vec<crate::store::Firing>,
    fresh: &mut Vec<Arc<StoredNotification>>,
) -> Result<u32, StoreError> {
    let mut applied = 0;
    for firing in firings {
        let step_id = firing.step_id;
        let mut own = Vec::new();
        // By hand: the command's own savepoint is a `&Connection` here.
        conn.execute_batch("SAVEPOINT fire")?;
        match super::schedule::fire(conn, firing, &mut own) {
            Ok(fired) => {
                conn.execute_batch("RELEASE fire")?;
                applied += u32::from(fired);
                fresh.extend(own);
            }
            Err(err) => {
                conn.execute_batch("ROLLBACK TO fire; RELEASE fire")?;
                // Tried again in a minute rather than at once: the scheduler would
                // otherwise find it due again in a loop.
                conn.prepare_cached("UPDATE schedule SET at_us = at_us + 60000000 WHERE id = ?1 AND state = 'planned'")?
                    .execute(rusqlite::params![step_id])?;
                tracing::error!(step = step_id, error = %err, "a scheduled step could not be applied; it stays planned and is tried again in a minute");
            }
        }
    }
    Ok(applied)
}

/// Writer-only pragmas, found by profiling a publish load (docs/BENCHMARKS.md). Each
/// command runs in a savepoint, whose sub-journal SQLite spills to a temp file past
/// 64 KiB: with hundreds of commands per commit that was more than half of the writer's
/// write calls, so it is kept in memory (it only ever holds the pages one command
/// touched). A larger page cache keeps the hot b-tree pages of many streams in memory
/// instead of re-reading them from the OS for every batch. Publishes to many users
/// still dirty one `(stream, offset)` index page per stream; checkpointing every
/// [`WAL_CHECKPOINT_PAGES`] instead of SQLite's 1000 lets a page dirtied by several
/// commits be copied to the database once. None of these changes durability: every
/// commit is still fsynced before it is answered.
fn tune(conn: &Connection) {
    let pragmas = [
        ("temp_store", "MEMORY"),
        ("cache_size", WRITER_CACHE_KIB),
        ("wal_autocheckpoint", WAL_CHECKPOINT_PAGES),
    ];
    for (pragma, value) in pragmas {
        if let Err(err) = conn.pragma_update(None, pragma, value) {
            tracing::warn!(error = %err, pragma, "could not tune the storage writer");
        }
    }
}
