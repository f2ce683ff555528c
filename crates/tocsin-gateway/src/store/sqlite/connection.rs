//! Opening SQLite connections with the gateway's pragmas, and a small pool of
//! read connections used from `spawn_blocking`.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::store::StoreError;

/// How long a connection waits for SQLite's write lock before failing. Within one gateway
/// only the writer thread writes; the lock is shared with another process on the same
/// file (the admin CLI run beside a live gateway) and with checkpoints.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many idle read connections are kept.
const MAX_IDLE_READERS: usize = 8;

/// Opens a connection: WAL (readers never block the writer), foreign keys on, and the
/// configured durability (`FULL` fsyncs every commit, so a power cut loses nothing
/// acknowledged; the writer batches commits to amortise it).
pub fn open(path: &Path, synchronous: &str) -> Result<Connection, StoreError> {
    let flags = OpenFlags::SQLITE_OPEN_READ_WRITE
        | OpenFlags::SQLITE_OPEN_CREATE
        | OpenFlags::SQLITE_OPEN_NO_MUTEX
        | OpenFlags::SQLITE_OPEN_URI;
    let conn = Connection::open_with_flags(path, flags).map_err(|err| {
        StoreError::Internal(format!(
            "cannot open the database {}: {err}",
            path.display()
        ))
    })?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", synchronous)?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    conn.set_prepared_statement_cache_capacity(64);
    Ok(conn)
}

/// A pool of connections for reads (WAL: they never wait for the writer). Std mutex,
/// not tokio's: it is only held to push or pop.
pub struct Pool {
    /// The database file.
    path: PathBuf,
    /// `synchronous` pragma for new connections.
    synchronous: String,
    /// Idle connections.
    idle: Mutex<Vec<Connection>>,
}

impl Pool {
    /// A pool over the file.
    pub fn new(path: PathBuf, synchronous: String) -> Pool {
        Pool {
            path,
            synchronous,
            idle: Mutex::new(Vec::new()),
        }
    }

    /// Runs `work` on a pooled connection in the blocking thread pool.
    pub async fn run<R, F>(self: &std::sync::Arc<Self>, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let pool = self.clone();
        tokio::task::spawn_blocking(move || {
            let mut conn = match pool.idle.lock().map_err(poisoned)?.pop() {
                Some(conn) => conn,
                None => open(&pool.path, &pool.synchronous)?,
            };
            let result = work(&mut conn);
            let mut idle = pool.idle.lock().map_err(poisoned)?;
            if idle.len() < MAX_IDLE_READERS {
                idle.push(conn);
            }
            result
        })
        .await
        .map_err(|err| StoreError::Internal(format!("storage task failed: {err}")))?
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Internal("a storage lock was poisoned by a panic".into())
}
