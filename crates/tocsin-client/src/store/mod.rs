//! The client's local store: one SQLite file holding the inbox, the position reached
//! in each stream, read state, proposal status, deadline acknowledgements and the
//! offline action queue.
//!
//! It is what lets a restart resume where it left off (PROTOCOL.md §9): a stream's
//! position only moves in the same transaction that persisted the notification at
//! that position, so a crash can lose neither a notification nor its place.
//!
//! [`LocalStore`] is synchronous and short-running by design: the engine keeps it in
//! an `Arc<Mutex<LocalStore>>` and calls it from `spawn_blocking`. The file runs in
//! WAL mode with `synchronous=FULL`; the schema is migrated by `rusqlite_migration`.
//! A damaged file is moved aside and replaced by an empty store (see
//! [`LocalStore::open`]); everything in it except the offline queue can be rebuilt
//! from the server.
//!
//! # Layout
//! - [`error`]: the error type, [`StoreError`].
//! - `migrations`: the schema.
//! - `open`: connection settings, damage detection, moving a damaged file aside.
//! - [`inbox`]: persisting and querying notifications.
//! - [`positions`]: per-stream positions and history rebuilds.
//! - [`read`]: read state, unread counts and panel tabs.
//! - [`proposals`]: local proposal status.
//! - [`acknowledgements`]: who took a deadline in (per deadline, distinct from read).
//! - [`deadlines`]: the Deadlines panel's rows, one per deadline.
//! - [`outbox`]: the offline action queue.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use rusqlite::Connection;

pub mod acknowledgements;
pub mod deadlines;
pub mod error;
pub mod inbox;
mod migrations;
mod open;
pub mod outbox;
pub mod positions;
pub mod proposals;
pub mod read;
pub mod retracted;

/// Sample notifications for tests (this crate's and the desktop app's).
#[cfg(any(test, feature = "testing"))]
pub mod testing;

pub use acknowledgements::DeadlineAck;
pub use deadlines::DeadlineRow;
pub use error::{Divergence, StoreError};
pub use inbox::{InboxItem, Incoming, ListCursor};
pub use outbox::MAX_OUTBOX;
pub use positions::BackfillPass;
pub use read::{Counts, Tab};

/// The local store over one SQLite connection. `Send` (not `Sync`): share it behind
/// a mutex.
#[derive(Debug)]
pub struct LocalStore {
    /// The one connection; statements are prepared through its cache.
    conn: Connection,
}

/// Says that the store file was damaged and replaced by an empty one, so the engine
/// can warn the user and rebuild from the server (every stream starts without a
/// position; queued offline actions are lost with the old file).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recovered {
    /// Where the damaged file was moved (its `-wal`/`-shm` follow with those suffixes).
    pub moved_to: PathBuf,
    /// What was wrong with it, for the log.
    pub reason: String,
}

impl LocalStore {
    /// Opens (or creates) the store at `path`, creating its parent folders.
    ///
    /// If the file is damaged — not a database, failing `PRAGMA integrity_check`,
    /// another program's database, or a schema newer than this version — it is moved
    /// to `<name>.corrupt-<unix secs>` with its companions, a fresh store is created,
    /// and `Some(Recovered)` says so. This happens at most once per call: if the fresh
    /// file fails too, [`StoreError::StillDamaged`]. Other failures (file locked,
    /// permission denied, disk full) are returned and the file is left untouched.
    pub fn open(path: &Path) -> Result<(LocalStore, Option<Recovered>), StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            std::fs::create_dir_all(parent).map_err(|source| StoreError::CreateDir {
                path: parent.to_path_buf(),
                source,
            })?;
        }
        let reason = match open::open_file(path) {
            Ok(conn) => return Ok((LocalStore { conn }, None)),
            Err(open::OpenFailure::Error(err)) => return Err(err),
            Err(open::OpenFailure::Damaged(reason)) => reason,
        };
        // The failed connection is closed by now: the files can be renamed.
        let moved_to = open::move_aside(path)?;
        tracing::warn!(
            store = %path.display(),
            moved_to = %moved_to.display(),
            reason,
            "the local store was damaged: moved aside, starting a fresh one"
        );
        match open::open_file(path) {
            Ok(conn) => Ok((LocalStore { conn }, Some(Recovered { moved_to, reason }))),
            Err(open::OpenFailure::Error(err)) => Err(err),
            Err(open::OpenFailure::Damaged(reason)) => Err(StoreError::StillDamaged {
                path: path.to_path_buf(),
                reason,
            }),
        }
    }

    /// An empty store in memory, with the same schema: for tests of other modules.
    pub fn open_in_memory() -> Result<LocalStore, StoreError> {
        Ok(LocalStore {
            conn: open::open_memory()?,
        })
    }
}

/// Now, in microseconds since the Unix epoch.
fn now_us() -> i64 {
    Utc::now().timestamp_micros()
}

/// Microseconds since the Unix epoch back to a time (out-of-range values clamp to
/// the epoch rather than fail: they are display-only).
fn from_us(us: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_micros(us).unwrap_or(DateTime::UNIX_EPOCH)
}

/// An offset as a SQLite integer.
fn offset_to_sql(offset: u64) -> Result<i64, StoreError> {
    i64::try_from(offset).map_err(|_| StoreError::OffsetOutOfRange(offset))
}

/// A SQLite integer back to an offset (negative values cannot be stored; read as 0).
fn offset_from_sql(offset: i64) -> u64 {
    u64::try_from(offset).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::testing::*;
    use super::*;

    #[test]
    fn local_store_is_send() {
        fn assert_send<T: Send>() {}
        assert_send::<LocalStore>();
    }

    #[test]
    fn open_creates_parent_folders_and_reopens() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("a/b/store.db");
        let (store, recovered) = LocalStore::open(&path).expect("opens");
        assert!(recovered.is_none());
        drop(store);
        let (store, recovered) = LocalStore::open(&path).expect("reopens");
        assert!(recovered.is_none());
        assert_eq!(store.count().expect("count"), 0);
    }

    #[test]
    fn a_garbage_file_is_moved_aside_and_a_fresh_store_works() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        let garbage: Vec<u8> = (0..8192u32).map(|i| (i * 7 + 13) as u8).collect();
        std::fs::write(&path, &garbage).expect("write garbage");

        let (mut store, recovered) = LocalStore::open(&path).expect("recovers");
        let recovered = recovered.expect("says it recovered");
        assert!(
            recovered
                .moved_to
                .to_string_lossy()
                .contains("store.db.corrupt-"),
            "{recovered:?}"
        );
        assert_eq!(std::fs::read(&recovered.moved_to).expect("kept"), garbage);
        assert!(!recovered.reason.is_empty());

        let new = store
            .persist(&[incoming(&user(), "e1", 1, email("n1", 10))])
            .expect("persists");
        assert_eq!(new, vec![true]);
        drop(store);
        let (store, recovered) = LocalStore::open(&path).expect("reopens");
        assert!(recovered.is_none(), "the fresh store is sound");
        assert_eq!(store.count().expect("count"), 1);
    }

    #[test]
    fn a_truncated_store_is_recovered() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        {
            let (mut store, _) = LocalStore::open(&path).expect("opens");
            let batch: Vec<Incoming> = (1..=300)
                .map(|i| incoming(&user(), "e1", i, email(&format!("n{i}"), i as i64)))
                .collect();
            store.persist(&batch).expect("persists");
            store
                .conn
                .execute_batch("PRAGMA wal_checkpoint(TRUNCATE);")
                .expect("checkpoint");
        }
        // Keep the header, wipe the pages after it.
        let mut bytes = std::fs::read(&path).expect("read");
        assert!(bytes.len() > 8192, "several pages");
        for b in &mut bytes[4096..] {
            *b = 0xA5;
        }
        std::fs::write(&path, &bytes).expect("write");
        let (store, recovered) = LocalStore::open(&path).expect("recovers");
        assert!(recovered.is_some());
        assert_eq!(store.count().expect("count"), 0);
    }

    #[test]
    fn in_memory_stores_work() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        store
            .persist(&[incoming(&user(), "e1", 1, email("n1", 10))])
            .expect("persists");
        assert_eq!(store.count().expect("count"), 1);
    }
}
