//! Opening SQLite connections with the gateway's pragmas, and a small pool of
//! read connections used from `spawn_blocking`.
//!
//! The pool never holds more connections than it lets run at once: reads beyond
//! [`MAX_READERS`] wait (asynchronously, on no thread) for one to be free. Before, a
//! ramp of 256 connecting clients ran 256 reads at once, each opening its own
//! connection — opening one parses the whole schema and closing it tears down its
//! page cache — and dropped all but 8 afterwards: a profile of a connect ramp had
//! ~14 % of the gateway's samples in SQLite's parser and the page-cache teardown
//! (`pcache1TruncateUnsafe`) for that alone.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rusqlite::{Connection, OpenFlags};

use crate::store::StoreError;

/// How long a connection waits for SQLite's write lock before failing. Within one gateway
/// only the writer thread writes; the lock is shared with another process on the same
/// file (the admin CLI run beside a live gateway) and with checkpoints.
pub const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// How many reads run at once, and so how many connections the pool ever opens: more
/// would only share the same cores and the same file.
const MAX_READERS: usize = 8;

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
    /// One permit per connection the pool may have in use.
    permits: std::sync::Arc<tokio::sync::Semaphore>,
    /// Connections opened so far (for tests: the pool reuses them).
    opened: std::sync::atomic::AtomicUsize,
}

impl Pool {
    /// A pool over the file.
    pub fn new(path: PathBuf, synchronous: String) -> Pool {
        Pool {
            path,
            synchronous,
            idle: Mutex::new(Vec::new()),
            permits: std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_READERS)),
            opened: std::sync::atomic::AtomicUsize::new(0),
        }
    }

    /// How many connections the pool has opened.
    #[cfg(test)]
    pub fn opened(&self) -> usize {
        self.opened.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Runs `work` on a pooled connection in the blocking thread pool.
    pub async fn run<R, F>(self: &std::sync::Arc<Self>, work: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&mut Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let pool = self.clone();
        // The semaphore is never closed.
        let permit = pool
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Internal("the read pool is closed".into()))?;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let mut conn = match pool.idle.lock().map_err(poisoned)?.pop() {
                Some(conn) => conn,
                None => {
                    pool.opened
                        .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    open(&pool.path, &pool.synchronous)?
                }
            };
            let result = work(&mut conn);
            // At most MAX_READERS exist, so every one is kept.
            pool.idle.lock().map_err(poisoned)?.push(conn);
            result
        })
        .await
        .map_err(|err| StoreError::Internal(format!("storage task failed: {err}")))?
    }
}

fn poisoned<T>(_: T) -> StoreError {
    StoreError::Internal("a storage lock was poisoned by a panic".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connect ramp runs many reads at once: they share the pool's connections
    /// instead of each opening (and parsing the schema of) its own.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn many_reads_at_once_reuse_the_pools_connections() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("pool.db");
        open(&path, "FULL")
            .and_then(|conn| {
                conn.execute_batch("CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (1);")?;
                Ok(())
            })
            .expect("a database");
        let pool = std::sync::Arc::new(Pool::new(path, "FULL".into()));
        let reads = (0..128).map(|_| {
            let pool = pool.clone();
            tokio::spawn(async move {
                pool.run(|conn| {
                    // A read that takes a while, as a replay page does, so that the
                    // reads overlap.
                    std::thread::sleep(Duration::from_millis(2));
                    Ok(conn.query_row("SELECT x FROM t", [], |row| row.get::<_, i64>(0))?)
                })
                .await
            })
        });
        for read in futures_util::future::join_all(reads).await {
            assert_eq!(read.expect("joined").expect("read"), 1);
        }
        assert!(
            pool.opened() <= MAX_READERS,
            "128 reads opened {} connections; the pool has {MAX_READERS}",
            pool.opened()
        );
    }
}
