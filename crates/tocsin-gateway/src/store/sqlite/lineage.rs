//! Recognising an older copy of the database: its lineage.
//!
//! Clients trust `(epoch, offset)`: an offset they hold is never sent again. If the
//! database is replaced by an older copy (a backup restored, a snapshot rolled back)
//! with the same epochs, new notifications get offsets the clients already hold, and
//! they skip them as duplicates: lost, silently. So the database counts its own life —
//! a generation bumped each time a gateway starts serving it, and the writer batches
//! committed — and the gateway keeps the last values it saw in a small file beside the
//! database, `<database>.lineage`. A database behind its lineage file is an older copy:
//! every stream then gets a new epoch, clients are told `recovered: false` and rebuild
//! from history instead of trusting their positions.
//!
//! The file is written after the commits it counts are durable, so it can only be
//! behind the database (a crash between the two), never ahead of a database that lost
//! nothing. It is rewritten at most once a second by the writer and at shutdown; a copy
//! taken in the last second before a crash is the one case it cannot tell.

use std::io::Write;
use std::path::{Path, PathBuf};

use rusqlite::{Connection, params};
use serde::{Deserialize, Serialize};

use super::time::new_epoch;
use crate::store::StoreError;

/// Where a database stands in its own history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Lineage {
    /// How many times a gateway started serving this database.
    pub generation: i64,
    /// How many writer batches it committed.
    pub commits: i64,
}

impl Lineage {
    /// Whether a database at `self` is an older copy than one last seen at `seen`.
    pub fn is_behind(self, seen: Lineage) -> bool {
        self.generation < seen.generation
            || (self.generation == seen.generation && self.commits < seen.commits)
    }
}

/// The lineage file of a database: `tocsin.db` → `tocsin.db.lineage`.
pub fn file_of(database: &Path) -> PathBuf {
    let mut name = database.as_os_str().to_owned();
    name.push(".lineage");
    PathBuf::from(name)
}

/// The database's own lineage.
pub fn read(conn: &Connection) -> Result<Lineage, StoreError> {
    let value = |key: &str| -> Result<i64, StoreError> {
        Ok(conn
            .prepare_cached("SELECT value FROM meta WHERE key = ?1")?
            .query_row(params![key], |row| row.get(0))?)
    };
    Ok(Lineage {
        generation: value("generation")?,
        commits: value("commits")?,
    })
}

/// Counts one committed batch; call inside the batch's transaction. Returns the new
/// count, valid once the transaction commits.
pub fn count_commit(conn: &Connection) -> Result<i64, StoreError> {
    Ok(conn
        .prepare_cached("UPDATE meta SET value = value + 1 WHERE key = 'commits' RETURNING value")?
        .query_row([], |row| row.get(0))?)
}

/// The lineage file's content, `None` when there is none (a database never served by
/// a gateway of this version). An unreadable file is an error: guessing could hide a
/// restored copy.
pub fn read_file(path: &Path) -> Result<Option<Lineage>, StoreError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(err) => {
            return Err(StoreError::Internal(format!(
                "cannot read {}: {err}",
                path.display()
            )));
        }
    };
    serde_json::from_str(&text).map(Some).map_err(|err| {
        StoreError::Internal(format!(
            "{} is damaged ({err}); if you are sure the database beside it is the newest \
             copy, delete the file and start again",
            path.display()
        ))
    })
}

/// Replaces the lineage file atomically and durably (temp file, fsync, rename, fsync
/// of the directory), so a crash leaves the old or the new content, never half.
pub fn write_file(path: &Path, lineage: Lineage) -> std::io::Result<()> {
    let temp = path.with_extension("lineage.tmp");
    {
        let mut file = std::fs::File::create(&temp)?;
        file.write_all(serde_json::to_string(&lineage)?.as_bytes())?;
        file.sync_all()?;
    }
    std::fs::rename(&temp, path)?;
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::File::open(dir)?.sync_all()?;
    }
    Ok(())
}

/// Starts a generation of serving: compares the database with its lineage file, gives
/// every stream a new epoch if the database is an older copy, bumps the generation
/// and records it in both places. Returns the lineage now in force.
pub fn begin_serving(conn: &mut Connection, database: &Path) -> Result<Lineage, StoreError> {
    let file = file_of(database);
    let seen = read_file(&file)?;
    let tx = conn.transaction()?;
    let mine = read(&tx)?;
    if let Some(seen) = seen.filter(|seen| mine.is_behind(*seen)) {
        let streams = rotate_epochs(&tx)?;
        tracing::warn!(
            database = %database.display(),
            database_generation = mine.generation,
            database_commits = mine.commits,
            served_generation = seen.generation,
            served_commits = seen.commits,
            streams,
            "this database is OLDER than the one this gateway last served (a backup was \
             restored?): every stream gets a new epoch, so clients rebuild their inbox from \
             history instead of missing what is published from now on"
        );
    }
    let generation = mine.generation.max(seen.map_or(0, |seen| seen.generation)) + 1;
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'generation'",
        params![generation],
    )?;
    tx.commit()?;
    let now = Lineage {
        generation,
        commits: mine.commits,
    };
    write_file(&file, now)
        .map_err(|err| StoreError::Internal(format!("cannot write {}: {err}", file.display())))?;
    Ok(now)
}

/// Gives every stream a fresh epoch; returns how many there are.
pub(super) fn rotate_epochs(conn: &Connection) -> Result<usize, StoreError> {
    let names: Vec<String> = conn
        .prepare("SELECT name FROM streams")?
        .query_map([], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    let mut update = conn.prepare("UPDATE streams SET epoch = ?2 WHERE name = ?1")?;
    for name in &names {
        update.execute(params![name, new_epoch()])?;
    }
    Ok(names.len())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::sqlite::migrations;

    fn database(dir: &Path) -> (Connection, PathBuf) {
        let path = dir.join("t.db");
        let mut conn = Connection::open(&path).expect("opens");
        migrations::migrations()
            .to_latest(&mut conn)
            .expect("migrates");
        conn.execute(
            "INSERT INTO streams (name, epoch, head, first) VALUES ('user:a', 'e1', 5, 1)",
            [],
        )
        .expect("a stream");
        (conn, path)
    }

    fn epoch(conn: &Connection) -> String {
        conn.query_row(
            "SELECT epoch FROM streams WHERE name = 'user:a'",
            [],
            |row| row.get(0),
        )
        .expect("reads")
    }

    #[test]
    fn a_database_behind_its_lineage_gets_new_epochs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut conn, path) = database(dir.path());
        let first = begin_serving(&mut conn, &path).expect("first start");
        assert_eq!(first.generation, 1);
        assert_eq!(epoch(&conn), "e1", "a first start keeps every epoch");

        // The gateway served on: 7 more batches, recorded in the file.
        let served = Lineage {
            generation: 1,
            commits: 7,
        };
        write_file(&file_of(&path), served).expect("writes");
        // The database is an older copy (0 commits in generation 1).
        let next = begin_serving(&mut conn, &path).expect("restart");
        assert_ne!(epoch(&conn), "e1", "an older copy gets new epochs");
        assert_eq!(next.generation, 2);
        assert_eq!(read_file(&file_of(&path)).expect("reads"), Some(next));
    }

    #[test]
    fn a_database_level_with_or_ahead_of_its_file_keeps_its_epochs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (mut conn, path) = database(dir.path());
        begin_serving(&mut conn, &path).expect("first start");
        // A crash between a commit and the file's update leaves the file behind.
        for _ in 0..3 {
            count_commit(&conn).expect("counts");
        }
        let next = begin_serving(&mut conn, &path).expect("restart");
        assert_eq!(epoch(&conn), "e1");
        assert_eq!(
            next,
            Lineage {
                generation: 2,
                commits: 3
            }
        );
    }

    #[test]
    fn an_older_generation_is_behind_whatever_its_commits() {
        let old = Lineage {
            generation: 1,
            commits: 900,
        };
        let seen = Lineage {
            generation: 2,
            commits: 10,
        };
        assert!(old.is_behind(seen));
        assert!(!seen.is_behind(old));
        assert!(!seen.is_behind(seen));
    }

    #[test]
    fn a_damaged_lineage_file_is_an_error_that_says_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db.lineage");
        std::fs::write(&path, "{garbage").expect("writes");
        let err = read_file(&path).expect_err("refused");
        assert!(err.to_string().contains("delete the file"), "{err}");
    }
}
