//! Refusing a damaged database, at start and while serving.
//!
//! At start: a database that is missing or empty where one was served before, that
//! fails `PRAGMA quick_check`, or that a newer gateway wrote, is refused with a message
//! that says how to restore — the gateway never starts silently empty, and never serves
//! a file that answers 500 later. While serving: an operator or a backup tool that
//! deletes or replaces `tocsin.db` or `tocsin.db-wal` under the running process would
//! make every later write vanish at the next restart (SQLite keeps writing to the
//! deleted inode). [`FileWatch`] notices it within a second (the writer looks between
//! batches), the writer saves what it holds — every commit, through the descriptors
//! SQLite still has — into a file that still exists, and refuses writes from then on.

use std::path::{Path, PathBuf};

use rusqlite::Connection;

use super::lineage;
use super::migrations;
use crate::store::StoreError;

/// What an operator reads when the database cannot be used: where to go next.
const RESTORE_HINT: &str = "stop here, put your latest backup in its place with \
     `tocsin-gateway restore BACKUP` (docs/OPERATIONS.md, \"Restore\"), and start again";

/// Refuses a database file that is missing or empty where a gateway served one before
/// (its lineage file says so), or that is empty at all: SQLite would take either for a
/// new database, and the gateway would start with no users and no history.
pub fn check_present(database: &Path) -> Result<(), StoreError> {
    let lineage = lineage::file_of(database);
    let size = std::fs::metadata(database).map(|meta| meta.len()).ok();
    let served_before = lineage.exists();
    match size {
        Some(0) => Err(StoreError::Internal(format!(
            "the database {} is an empty file. {}. If this is a new installation that \
             never held data, delete the empty file and start again.",
            database.display(),
            restore_or_start_over(&lineage, served_before)
        ))),
        None if served_before => Err(StoreError::Internal(format!(
            "the database {} is missing, but {} shows a gateway served it before. {}.",
            database.display(),
            lineage.display(),
            restore_or_start_over(&lineage, true)
        ))),
        _ => Ok(()),
    }
}

fn restore_or_start_over(lineage: &Path, served_before: bool) -> String {
    if served_before {
        format!(
            "The gateway will not start empty: {RESTORE_HINT}. To start over with no data \
             on purpose, delete {} too",
            lineage.display()
        )
    } else {
        format!("The gateway will not start empty: {RESTORE_HINT}")
    }
}

/// Turns an error met while opening into what the operator must hear: a file that is
/// not a database, or a damaged one, gets the restore instructions.
pub fn explain_open_error(database: &Path, err: StoreError) -> StoreError {
    match &err {
        StoreError::Internal(message)
            if message.contains("not a database") || message.contains("malformed") =>
        {
            damaged(database, message)
        }
        _ => err,
    }
}

/// Refuses a database whose schema is newer than this build knows.
pub fn check_schema_version(conn: &Connection, database: &Path) -> Result<(), StoreError> {
    let version: i64 = conn.pragma_query_value(None, "user_version", |row| row.get(0))?;
    let latest = migrations::latest_version();
    if version > latest {
        return Err(StoreError::Internal(format!(
            "the database {} has schema version {version}, written by a newer tocsin-gateway \
             (this one knows up to {latest}); run the newer version, or restore a backup \
             made by this one",
            database.display()
        )));
    }
    Ok(())
}

/// Runs `PRAGMA quick_check` (every page and index entry read once: about a second per
/// GB) and refuses a damaged file.
pub fn quick_check(conn: &Connection, database: &Path) -> Result<(), StoreError> {
    let started = std::time::Instant::now();
    let mut statement = conn.prepare("PRAGMA quick_check(5)")?;
    let findings: Vec<String> = statement
        .query_map([], |row| row.get(0))
        .and_then(|rows| rows.collect())
        .map_err(|err| damaged(database, &err.to_string()))?;
    if findings != ["ok"] {
        return Err(damaged(database, &findings.join("; ")));
    }
    tracing::debug!(
        elapsed_ms = started.elapsed().as_millis() as u64,
        "database checked"
    );
    Ok(())
}

fn damaged(database: &Path, detail: &str) -> StoreError {
    StoreError::Internal(format!(
        "the database {} is damaged ({detail}). The gateway will not serve it: {RESTORE_HINT}. \
         The damaged file is left untouched; keep it, `sqlite3 <file> .recover` may save \
         what a backup lacks.",
        database.display()
    ))
}

/// Which file was found gone or replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vanished {
    /// The database file itself.
    Database,
    /// Its write-ahead log.
    Wal,
}

/// The identities (device and inode) of the database file and its WAL as opened,
/// compared with what their paths name now. SQLite keeps both open, so their inodes
/// stay allocated: a new file at either path cannot take the same inode number.
pub struct FileWatch {
    /// The database file and its identity when opened.
    database: (PathBuf, Option<FileId>),
    /// The WAL file and its identity when opened.
    wal: (PathBuf, Option<FileId>),
}

/// A file's identity: the same path naming another inode is another file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileId {
    device: u64,
    inode: u64,
}

impl FileWatch {
    /// Records what the paths name now; call once the WAL exists (after a write).
    pub fn new(database: &Path) -> FileWatch {
        let wal = wal_of(database);
        FileWatch {
            database: (database.to_owned(), file_id(database)),
            wal: (wal.clone(), file_id(&wal)),
        }
    }

    /// The database's WAL path.
    pub fn wal_path(&self) -> &Path {
        &self.wal.0
    }

    /// The first file found deleted or replaced, if any (two `stat` calls).
    pub fn check(&self) -> Option<Vanished> {
        let moved =
            |(path, id): &(PathBuf, Option<FileId>)| id.is_some_and(|id| file_id(path) != Some(id));
        if moved(&self.database) {
            Some(Vanished::Database)
        } else if moved(&self.wal) {
            Some(Vanished::Wal)
        } else {
            None
        }
    }
}

/// `tocsin.db` → `tocsin.db-wal`.
pub fn wal_of(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push("-wal");
    PathBuf::from(name)
}

#[cfg(unix)]
fn file_id(path: &Path) -> Option<FileId> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(path).ok().map(|meta| FileId {
        device: meta.dev(),
        inode: meta.ino(),
    })
}

#[cfg(not(unix))]
fn file_id(_path: &Path) -> Option<FileId> {
    None
}

/// Saves what the writer's connection still sees (through its open descriptors) into
/// a file that exists, and says what happened and what to do. The connection is not
/// used for writes afterwards.
pub fn rescue(conn: &Connection, database: &Path, vanished: Vanished) -> String {
    match vanished {
        // The main file is intact: copying the WAL's frames into it (through the
        // deleted WAL's open descriptor) makes it hold every commit.
        Vanished::Wal => {
            let saved = conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |row| {
                row.get::<_, i64>(0)
            });
            let outcome = match saved {
                Ok(0) => format!(
                    "everything committed until then was saved into {}",
                    database.display()
                ),
                Ok(_) => format!(
                    "saving into {} was incomplete (a reader held the log); some recent commits may be missing",
                    database.display()
                ),
                Err(err) => format!("saving into {} failed ({err})", database.display()),
            };
            format!(
                "the database's write-ahead log {} was deleted or replaced while the gateway \
                 ran (a cleanup script or a backup tool?); {outcome}. Writes are refused from \
                 now on: they would go to the deleted file. Restart the gateway now, and never \
                 delete tocsin.db-wal or tocsin.db-shm while it runs.",
                wal_of(database).display()
            )
        }
        // The main file is gone from its path: write a whole copy beside it.
        Vanished::Database => {
            let stamp = chrono::Utc::now().format("%Y%m%dT%H%M%SZ");
            let rescued = PathBuf::from(format!("{}.rescued-{stamp}", database.display()));
            let outcome = match conn.execute("VACUUM INTO ?1", [rescued.to_string_lossy()]) {
                Ok(_) => format!(
                    "everything committed until then was saved into {}. Stop the gateway, \
                     move that file to {}, and start again",
                    rescued.display(),
                    database.display()
                ),
                Err(err) => format!(
                    "saving a copy into {} failed ({err}); stop the gateway and restore your \
                     latest backup (`tocsin-gateway restore BACKUP`)",
                    rescued.display()
                ),
            };
            format!(
                "the database file {} was deleted or replaced while the gateway ran; {outcome}. \
                 Writes are refused from now on.",
                database.display()
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_empty_or_missing_served_database_is_refused() {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = dir.path().join("t.db");
        check_present(&database).expect("a new installation may create it");
        std::fs::write(&database, b"").expect("writes");
        let err = check_present(&database).expect_err("an empty file is refused");
        assert!(err.to_string().contains("empty file"), "{err}");

        std::fs::remove_file(&database).expect("removes");
        std::fs::write(lineage::file_of(&database), "{}").expect("writes");
        let err = check_present(&database).expect_err("missing after serving");
        assert!(
            err.to_string().contains("missing") && err.to_string().contains("backup"),
            "{err}"
        );
    }

    #[test]
    fn a_replaced_or_deleted_file_is_noticed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let database = dir.path().join("t.db");
        std::fs::write(&database, b"x").expect("writes");
        std::fs::write(wal_of(&database), b"y").expect("writes");
        // Held open as SQLite holds it, so its inode cannot be reused below.
        let _open_wal = std::fs::File::open(wal_of(&database)).expect("opens");
        let watch = FileWatch::new(&database);
        assert_eq!(watch.check(), None);

        std::fs::remove_file(wal_of(&database)).expect("removes");
        assert_eq!(watch.check(), Some(Vanished::Wal));

        std::fs::write(wal_of(&database), b"y").expect("a new file at the same path");
        assert_eq!(watch.check(), Some(Vanished::Wal), "another inode");

        std::fs::rename(&database, dir.path().join("moved.db")).expect("moves");
        assert_eq!(watch.check(), Some(Vanished::Database));
    }
}
