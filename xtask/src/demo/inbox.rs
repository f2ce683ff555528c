//! The desktop app's local database, read by the demo to see what the app holds:
//! `<home>/data/client.db`, opened read-only (the app is its only writer).

use std::collections::HashSet;
use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result};
use rusqlite::{Connection, OpenFlags};

/// How long a read waits for the app's write lock.
const BUSY_TIMEOUT: Duration = Duration::from_secs(2);

/// Opens the database read-only; fails while the app has not created it yet.
fn open(path: &Path) -> Result<Connection> {
    let connection = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )
    .with_context(|| format!("opening {} read-only", path.display()))?;
    connection.busy_timeout(BUSY_TIMEOUT)?;
    Ok(connection)
}

/// How many streams the app holds a position on (one per stream once connected).
pub fn stream_count(path: &Path) -> Result<usize> {
    let count: i64 = open(path)?
        .query_row("SELECT COUNT(*) FROM positions", [], |row| row.get(0))
        .context("reading the app's positions")?;
    Ok(usize::try_from(count)?)
}

/// The ids of every notification in the app's inbox.
pub fn stored_ids(path: &Path) -> Result<HashSet<String>> {
    let connection = open(path)?;
    let mut statement = connection
        .prepare("SELECT id FROM inbox")
        .context("reading the app's inbox")?;
    let ids = statement
        .query_map([], |row| row.get::<_, String>(0))?
        .collect::<rusqlite::Result<HashSet<String>>>()?;
    Ok(ids)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_positions_and_inbox_ids_and_fails_before_the_file_exists() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("client.db");
        assert!(stream_count(&path).is_err(), "no file yet");
        let writer = Connection::open(&path).expect("creates");
        writer
            .execute_batch(
                "CREATE TABLE positions (stream TEXT PRIMARY KEY);
                 CREATE TABLE inbox (id TEXT PRIMARY KEY);
                 INSERT INTO positions VALUES ('user:marie@dupont.example'), ('tenant:dupont');
                 INSERT INTO inbox VALUES ('n1'), ('n2');",
            )
            .expect("fills");
        assert_eq!(stream_count(&path).expect("counts"), 2);
        let ids = stored_ids(&path).expect("reads");
        assert!(ids.contains("n1") && ids.contains("n2") && ids.len() == 2);
    }
}
