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

use std::sync::Arc;
use std::sync::mpsc;

use rusqlite::Connection;
use tokio::sync::oneshot;

use super::ops;
use crate::store::{
    ActionKey, ActionOutcome, AppendRequest, Appended, Fanout, StoreError, StoredNotification,
};
use tocsin_protocol::frames::ProposalResponse;
use tocsin_protocol::{Kind, StreamName};

/// The most commands applied in one transaction.
const MAX_COMMANDS_PER_COMMIT: usize = 512;
/// The writer's page cache (SQLite's negative `cache_size` is KiB): 32 MiB.
const WRITER_CACHE_KIB: &str = "-32768";
/// WAL pages between automatic checkpoints (~40 MiB of WAL at most between them).
const WAL_CHECKPOINT_PAGES: &str = "10000";

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
    /// Delete what is older than retention.
    Prune {
        /// Cut-off in microseconds.
        cutoff_us: i64,
        /// Where the answer goes.
        reply: oneshot::Sender<Result<u64, StoreError>>,
    },
}

/// An account change: applied to the writer's connection, it says whether it
/// succeeded and gives the answer to send once the commit's outcome is known.
pub type AccountWork = Box<dyn FnOnce(&Connection) -> (bool, Answer) + Send>;

/// Sends a command's answer, given whether its transaction committed.
pub type Answer = Box<dyn FnOnce(&Result<(), StoreError>) + Send>;

/// The client actions the writer applies.
pub enum ActionCommand {
    /// Mark these ids read.
    MarkRead(Vec<String>),
    /// Mark all (of a kind) read.
    MarkAllRead(Option<Kind>),
    /// Answer a proposal of `tenant`.
    RespondProposal {
        /// The user's firm.
        tenant: String,
        /// The proposal.
        proposal_id: String,
        /// The answer.
        response: ProposalResponse,
    },
}

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
            Pending::Account(answer) => answer(commit),
        }
    }
}

/// Runs the writer loop until every sender is dropped.
pub fn run(mut conn: Connection, commands: mpsc::Receiver<Command>, fanout: Arc<dyn Fanout>) {
    tune(&conn);
    while let Ok(first) = commands.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_COMMANDS_PER_COMMIT {
            match commands.try_recv() {
                Ok(command) => batch.push(command),
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, batch, fanout.as_ref());
    }
    tracing::debug!("storage writer stopped");
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

/// Applies a batch of commands in one transaction, then answers and fans out.
fn commit_batch(conn: &mut Connection, batch: Vec<Command>, fanout: &dyn Fanout) {
    let mut pending = Vec::with_capacity(batch.len());
    let mut delivered: Vec<Arc<StoredNotification>> = Vec::new();
    let commit = (|| -> Result<(), StoreError> {
        let mut tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
        for command in batch {
            // A savepoint per command: one failing command rolls back alone.
            let sp = tx.savepoint()?;
            let mut fresh = Vec::new();
            let (item, ok) = match command {
                Command::Append { batch, reply } => {
                    let result = ops::append_all(&sp, batch, &mut fresh);
                    let ok = result.is_ok();
                    (Pending::Append(reply, result), ok)
                }
                Command::Action {
                    key,
                    streams,
                    action,
                    reply,
                } => {
                    let result = ops::apply_action(&sp, &key, &streams, action, &mut fresh);
                    let ok = result.is_ok();
                    (Pending::Action(reply, result), ok)
                }
                Command::Account(work) => {
                    let (ok, answer) = work(&sp);
                    (Pending::Account(answer), ok)
                }
                Command::Prune { cutoff_us, reply } => {
                    let result = ops::prune(&sp, cutoff_us);
                    let ok = result.is_ok();
                    (Pending::Prune(reply, result), ok)
                }
            };
            if ok {
                sp.commit()?;
                delivered.extend(fresh);
            } else {
                // Dropping a savepoint rolls it back.
                drop(sp);
            }
            pending.push(item);
        }
        tx.commit()?;
        Ok(())
    })();
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
        fanout.deliver(&delivered);
    }
}
