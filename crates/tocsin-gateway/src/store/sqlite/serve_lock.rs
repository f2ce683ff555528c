//! Knowing whether a gateway serves a database: `tocsin.db.lock`.
//!
//! `restore` must never swap the database under a running gateway (it would go on
//! writing to the file moved aside, and everything it acknowledged after that would be
//! lost at its next restart). SQLite's own locks cannot tell: a serving gateway holds
//! no lock between its batches. So `serve` holds a *shared* advisory lock (`flock`) on
//! `<database>.lock` for as long as it runs, and `restore` takes an *exclusive* one
//! without waiting: it fails exactly while some gateway serves. Shared, not exclusive,
//! for `serve`: this adds no new refusal to serving itself (the admin commands and a
//! second gateway on one file keep working as before), and a `serve` started during a
//! restore finds the exclusive lock and refuses. The kernel drops the lock when the
//! process dies, SIGKILL included, so a crashed gateway never blocks a restore.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

/// A held lock on `<database>.lock`; released when dropped (or the process ends).
#[derive(Debug)]
pub struct ServeLock {
    /// The open lock file: the `flock` lives as long as this descriptor.
    _file: File,
}

/// Who holds the lock, as far as a `try_lock` can tell.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// Nobody: no gateway serves the database, no restore runs.
    Nobody,
    /// At least one gateway serves it; the pid the last one wrote, if readable.
    Serving(Option<u32>),
    /// A restore holds it.
    Restoring,
}

/// `tocsin.db` → `tocsin.db.lock`.
pub fn lock_file_of(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lock");
    PathBuf::from(name)
}

fn open(database: &Path) -> anyhow::Result<File> {
    let path = lock_file_of(database);
    OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|err| {
            anyhow::anyhow!(
                "cannot open the lock file {}: {err}; check that the data directory is \
                 writable by the user running tocsin-gateway",
                path.display()
            )
        })
}

impl ServeLock {
    /// Taken by `serve` for its whole run; refused while a restore runs.
    pub fn serving(database: &Path) -> anyhow::Result<ServeLock> {
        let mut file = open(database)?;
        match file.try_lock_shared() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => anyhow::bail!(
                "a restore of {} is in progress (tocsin-gateway restore holds {}); wait \
                 for it to finish, then start the gateway again",
                database.display(),
                lock_file_of(database).display()
            ),
            Err(TryLockError::Error(err)) => {
                anyhow::bail!("cannot lock {}: {err}", lock_file_of(database).display())
            }
        }
        // For the refusal's message only: which process to stop.
        file.set_len(0)?;
        file.rewind()?;
        write!(file, "{}", std::process::id())?;
        Ok(ServeLock { _file: file })
    }

    /// Taken by `restore`; refused while a gateway serves the database.
    pub fn exclusive(database: &Path) -> anyhow::Result<ServeLock> {
        let file = open(database)?;
        match file.try_lock() {
            Ok(()) => Ok(ServeLock { _file: file }),
            Err(TryLockError::WouldBlock) => {
                let pid = read_pid(&lock_file_of(database))
                    .map(|pid| format!(" (pid {pid})"))
                    .unwrap_or_default();
                anyhow::bail!(
                    "a gateway{pid} is serving {}: restoring under it would lose what it \
                     writes. Stop it first (e.g. `systemctl stop tocsin-gateway`), then run \
                     the restore again",
                    database.display()
                )
            }
            Err(TryLockError::Error(err)) => {
                anyhow::bail!("cannot lock {}: {err}", lock_file_of(database).display())
            }
        }
    }
}

/// Who holds the lock now (for `doctor`); takes and drops it at once.
pub fn holder(database: &Path) -> anyhow::Result<Holder> {
    let file = open(database)?;
    match file.try_lock() {
        Ok(()) => return Ok(Holder::Nobody),
        Err(TryLockError::WouldBlock) => {}
        Err(TryLockError::Error(err)) => return Err(err.into()),
    }
    // Someone holds it: a shared lock is still possible beside gateways, not beside
    // a restore.
    match file.try_lock_shared() {
        Ok(()) => Ok(Holder::Serving(read_pid(&lock_file_of(database)))),
        Err(TryLockError::WouldBlock) => Ok(Holder::Restoring),
        Err(TryLockError::Error(err)) => Err(err.into()),
    }
}

fn read_pid(path: &Path) -> Option<u32> {
    let mut text = String::new();
    File::open(path).ok()?.read_to_string(&mut text).ok()?;
    text.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_serving_lock_refuses_a_restore_and_a_restore_refuses_serving() {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = dir.path().join("t.db");
        assert_eq!(holder(&database).expect("reads"), Holder::Nobody);

        let serving = ServeLock::serving(&database).expect("serves");
        let second = ServeLock::serving(&database).expect("a second gateway is not refused");
        let err = ServeLock::exclusive(&database).expect_err("refused while serving");
        let message = err.to_string();
        assert!(
            message.contains("is serving")
                && message.contains("Stop it first")
                && message.contains(&format!("pid {}", std::process::id())),
            "{message}"
        );
        assert_eq!(
            holder(&database).expect("reads"),
            Holder::Serving(Some(std::process::id()))
        );
        drop((serving, second));

        let restoring = ServeLock::exclusive(&database).expect("free once stopped");
        let err = ServeLock::serving(&database).expect_err("refused while restoring");
        assert!(err.to_string().contains("restore"), "{err}");
        assert_eq!(holder(&database).expect("reads"), Holder::Restoring);
        drop(restoring);
        assert_eq!(holder(&database).expect("reads"), Holder::Nobody);
    }
}
