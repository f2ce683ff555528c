//! Opening the store file: connection settings, damage detection, and moving a
//! damaged file aside so a fresh store can be rebuilt from the server.
//!
//! A file is "damaged" when SQLite says it is not a database or corrupt, when
//! `PRAGMA integrity_check` fails, when it belongs to another program, or when its
//! schema is newer than this version knows. Anything else (locked by another process,
//! permission denied, disk full) is returned as an error and the file is left alone.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use rusqlite::{Connection, ErrorCode};
use rusqlite_migration::MigrationDefinitionError;

use super::error::StoreError;
use super::migrations::{APPLICATION_ID, migrations};

/// How long a statement waits for a lock held by another connection.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// The companion files SQLite keeps next to a database.
const COMPANIONS: [&str; 3] = ["-wal", "-shm", "-journal"];

/// Why opening failed: a damaged file (to be moved aside) or another error.
#[derive(Debug)]
pub(super) enum OpenFailure {
    /// The file is damaged, foreign or too new; the text says which.
    Damaged(String),
    /// Any other failure: leave the file alone.
    Error(StoreError),
}

impl From<StoreError> for OpenFailure {
    fn from(err: StoreError) -> Self {
        OpenFailure::Error(err)
    }
}

/// True for the SQLite errors that mean "this file is not a sound database".
fn is_damage(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(ErrorCode::NotADatabase | ErrorCode::DatabaseCorrupt)
    )
}

/// Classifies a SQLite error met while opening.
fn classify(err: rusqlite::Error) -> OpenFailure {
    if is_damage(&err) {
        OpenFailure::Damaged(err.to_string())
    } else {
        OpenFailure::Error(err.into())
    }
}

/// Opens `path` (creating it when missing), checks it, and migrates it.
pub(super) fn open_file(path: &Path) -> Result<Connection, OpenFailure> {
    let conn = Connection::open(path).map_err(classify)?;
    prepare(conn, true)
}

/// Opens a private in-memory database with the same schema.
pub(super) fn open_memory() -> Result<Connection, StoreError> {
    let conn = Connection::open_in_memory()?;
    prepare(conn, false).map_err(|failure| match failure {
        OpenFailure::Error(err) => err,
        OpenFailure::Damaged(reason) => StoreError::StillDamaged {
            path: PathBuf::from(":memory:"),
            reason,
        },
    })
}

/// Applies the connection settings, checks integrity and ownership, and migrates.
fn prepare(mut conn: Connection, file: bool) -> Result<Connection, OpenFailure> {
    conn.busy_timeout(BUSY_TIMEOUT).map_err(classify)?;
    if file {
        // The first statement that reads the header: garbage fails here (NOTADB).
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |row| row.get(0))
            .map_err(classify)?;
        if !mode.eq_ignore_ascii_case("wal") {
            tracing::warn!(mode, "the local store could not switch to WAL journaling");
        }
    }
    conn.pragma_update(None, "synchronous", "FULL")
        .map_err(classify)?;
    conn.pragma_update(None, "foreign_keys", true)
        .map_err(classify)?;
    let check: String = conn
        .query_row("PRAGMA integrity_check(1)", [], |row| row.get(0))
        .map_err(classify)?;
    if check != "ok" {
        return Err(OpenFailure::Damaged(format!(
            "the integrity check failed: {check}"
        )));
    }
    check_ownership(&conn)?;
    migrations()
        .to_latest(&mut conn)
        .map_err(classify_migration)?;
    Ok(conn)
}

/// Refuses a database written by another program (so it is never migrated in place).
fn check_ownership(conn: &Connection) -> Result<(), OpenFailure> {
    let app_id: i32 = conn
        .query_row("PRAGMA application_id", [], |row| row.get(0))
        .map_err(classify)?;
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |row| row.get(0))
        .map_err(classify)?;
    let objects: i64 = conn
        .query_row("SELECT COUNT(*) FROM sqlite_schema", [], |row| row.get(0))
        .map_err(classify)?;
    let fresh = version == 0 && objects == 0;
    if !fresh && app_id != APPLICATION_ID {
        return Err(OpenFailure::Damaged(format!(
            "the file is not a Tocsin store (application id {app_id}, schema version {version})"
        )));
    }
    Ok(())
}

/// Classifies a migration error: a newer or unknown schema is treated as damage.
fn classify_migration(err: rusqlite_migration::Error) -> OpenFailure {
    use rusqlite_migration::Error as E;
    match err {
        E::MigrationDefinition(MigrationDefinitionError::DatabaseTooFarAhead) => {
            OpenFailure::Damaged(
                "the store was written by a newer version of Tocsin (unknown schema)".into(),
            )
        }
        E::InvalidUserVersion => {
            OpenFailure::Damaged("the store's schema version is invalid".into())
        }
        E::RusqliteError { err, .. } => {
            // A plain SQL error while migrating means the schema is not what this
            // version expects (e.g. a table already exists with another shape).
            if is_damage(&err) || err.sqlite_error_code() == Some(ErrorCode::Unknown) {
                OpenFailure::Damaged(format!("the schema cannot be migrated: {err}"))
            } else {
                OpenFailure::Error(err.into())
            }
        }
        other => OpenFailure::Error(StoreError::Migration(other)),
    }
}

/// `path` with `suffix` appended to its file name (`a.db` + `-wal` → `a.db-wal`).
fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name: OsString = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

/// Moves the store file and its companions to `<name>.corrupt-<unix secs>` (plus
/// `-wal`/`-shm`/`-journal`) and returns the new path of the main file.
pub(super) fn move_aside(path: &Path) -> Result<PathBuf, StoreError> {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let base = format!(".corrupt-{secs}");
    // Two recoveries within one second: add a counter rather than overwrite.
    let target = (1..=100)
        .map(|n| match n {
            1 => with_suffix(path, &base),
            n => with_suffix(path, &format!("{base}-{n}")),
        })
        .find(|candidate| !candidate.exists())
        .unwrap_or_else(|| with_suffix(path, &format!("{base}-last")));
    let rename = |from: PathBuf, to: PathBuf| {
        std::fs::rename(&from, &to).map_err(|source| StoreError::MoveAside { from, to, source })
    };
    if path.exists() {
        rename(path.to_path_buf(), target.clone())?;
    }
    for companion in COMPANIONS {
        let from = with_suffix(path, companion);
        if from.exists() {
            rename(from, with_suffix(&target, companion))?;
        }
    }
    Ok(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffixes_are_appended_to_the_file_name() {
        let path = Path::new("/tmp/x/store.db");
        assert_eq!(
            with_suffix(path, "-wal"),
            PathBuf::from("/tmp/x/store.db-wal")
        );
    }

    #[test]
    fn a_foreign_database_is_damaged_not_migrated() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("other.db");
        {
            let conn = Connection::open(&path).expect("open");
            conn.execute_batch("CREATE TABLE photos (id INTEGER);")
                .expect("create");
        }
        match open_file(&path) {
            Err(OpenFailure::Damaged(reason)) => {
                assert!(reason.contains("not a Tocsin store"), "{reason}")
            }
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn a_newer_schema_is_damaged() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("newer.db");
        {
            let conn = open_file(&path).expect("fresh");
            conn.pragma_update(None, "user_version", 99).expect("bump");
        }
        match open_file(&path) {
            Err(OpenFailure::Damaged(reason)) => assert!(reason.contains("newer"), "{reason}"),
            other => panic!("expected damage, got {other:?}"),
        }
    }

    #[test]
    fn move_aside_takes_the_companions_and_never_overwrites() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("s.db");
        std::fs::write(&path, b"one").expect("write");
        std::fs::write(with_suffix(&path, "-wal"), b"wal").expect("write");
        let first = move_aside(&path).expect("moved");
        assert!(!path.exists());
        assert_eq!(std::fs::read(&first).expect("read"), b"one");
        assert_eq!(
            std::fs::read(with_suffix(&first, "-wal")).expect("read"),
            b"wal"
        );
        std::fs::write(&path, b"two").expect("write");
        let second = move_aside(&path).expect("moved");
        assert_ne!(first, second);
        assert_eq!(std::fs::read(&first).expect("read"), b"one");
        assert_eq!(std::fs::read(&second).expect("read"), b"two");
    }
}
