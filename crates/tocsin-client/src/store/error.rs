//! The local store's errors: each says what went wrong and what it means for the user.

use std::fmt;
use std::io;
use std::path::PathBuf;

use rusqlite::ErrorCode;
use tocsin_protocol::StreamName;

/// Why a local store operation failed.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite reported `SQLITE_FULL`: the disk (or the quota) holding the store is full.
    /// The operation was rolled back as a whole; nothing was half-written.
    #[error(
        "the disk holding the local store is full: nothing was saved by this operation; free some space (notifications stay on the server and will be fetched again)"
    )]
    DiskFull,
    /// The offline action queue already holds [`super::MAX_OUTBOX`] actions.
    #[error(
        "the offline action queue is full ({max} actions waiting to be sent): reconnect so they can be sent before queuing more"
    )]
    OutboxFull {
        /// The bound that was reached.
        max: usize,
    },
    /// Only actions the gateway applies at most once may wait in the offline queue.
    #[error(
        "a '{frame}' frame cannot be queued offline: only mark_read, mark_all_read and proposal_respond are"
    )]
    NotQueueable {
        /// The refused frame's `type`.
        frame: &'static str,
    },
    /// An action id must be 1-64 bytes (the gateway closes the connection otherwise).
    #[error("the action id '{0}' is invalid: it must be 1-64 bytes (use a UUIDv7)")]
    InvalidActionId(String),
    /// An action with this id already waits in the queue: ids must be unique.
    #[error(
        "an action with id '{0}' is already queued: every action needs its own id (use a UUIDv7)"
    )]
    DuplicateAction(String),
    /// The gateway sent a notification at a `(stream, epoch, offset)` already held
    /// under another id: its history of that stream is no longer the one this store
    /// holds (e.g. its data was restored from an older copy without a new epoch).
    /// The whole batch was rolled back; [`super::LocalStore::rewind_diverged`] is how
    /// the engine re-syncs the stream.
    #[error("{0}")]
    Diverged(Box<Divergence>),
    /// Offsets are stored as SQLite integers (signed 64 bits).
    #[error("offset {0} is too large to store (the largest is 9223372036854775807)")]
    OffsetOutOfRange(u64),
    /// The folder that should hold the store file could not be created.
    #[error("cannot create the folder {path} for the local store: {source}")]
    CreateDir {
        /// The folder.
        path: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// A damaged store file could not be renamed out of the way.
    #[error("cannot move the damaged local store {from} aside to {to}: {source}")]
    MoveAside {
        /// The damaged file (or its `-wal`/`-shm` companion).
        from: PathBuf,
        /// Where it was to go.
        to: PathBuf,
        /// The OS error.
        source: io::Error,
    },
    /// The store was moved aside because it was damaged, and the fresh one is damaged
    /// too: something else is wrong (the disk, the folder); we stop rather than loop.
    #[error(
        "the local store {path} is unusable even after replacing a damaged file ({reason}); check the disk and the folder's permissions"
    )]
    StillDamaged {
        /// The store file.
        path: PathBuf,
        /// What the fresh file failed on.
        reason: String,
    },
    /// The schema could not be brought up to date for a reason other than a damaged
    /// or foreign file (e.g. the file is locked by another process).
    #[error("cannot update the local store's schema: {0}")]
    Migration(rusqlite_migration::Error),
    /// A stored record could not be decoded (written by an incompatible version).
    #[error("a record in the local store cannot be read back: {0}")]
    Decode(String),
    /// A value could not be encoded as JSON for storage.
    #[error("cannot encode a record for the local store: {0}")]
    Encode(#[from] serde_json::Error),
    /// Any other SQLite error.
    #[error("local store (SQLite): {0}")]
    Sqlite(rusqlite::Error),
}

/// Where a stream's history diverged: the first position found held under another id.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Divergence {
    /// The stream.
    pub stream: StreamName,
    /// The epoch both timelines claim.
    pub epoch: String,
    /// The offset held under two ids.
    pub offset: u64,
    /// The id this store holds there.
    pub held_id: String,
    /// The id the gateway sent there.
    pub received_id: String,
}

impl fmt::Display for Divergence {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the server's history of {} changed at offset {} (epoch {}): it sent notification '{}' where '{}' is held; nothing of this batch was saved",
            self.stream, self.offset, self.epoch, self.received_id, self.held_id
        )
    }
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        if err.sqlite_error_code() == Some(ErrorCode::DiskFull) {
            StoreError::DiskFull
        } else {
            StoreError::Sqlite(err)
        }
    }
}

impl From<rusqlite_migration::Error> for StoreError {
    fn from(err: rusqlite_migration::Error) -> Self {
        match err {
            rusqlite_migration::Error::RusqliteError { err, .. } => StoreError::from(err),
            other => StoreError::Migration(other),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sqlite_full_becomes_disk_full() {
        let full = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_FULL),
            None,
        );
        let err = StoreError::from(full);
        assert!(matches!(err, StoreError::DiskFull), "{err:?}");
        assert!(err.to_string().contains("disk"), "{err}");
        let busy = rusqlite::Error::SqliteFailure(
            rusqlite::ffi::Error::new(rusqlite::ffi::SQLITE_BUSY),
            None,
        );
        assert!(matches!(StoreError::from(busy), StoreError::Sqlite(_)));
    }
}
