//! `backup` and `restore`: a consistent copy of the live database, and putting one
//! back in a way that never lets a client trust a position the copy never had.
//!
//! **Backup.** SQLite's online backup API from a read-only connection, inside one read
//! transaction held for the whole copy. In WAL mode a reader never blocks the writer:
//! publishes go on committing to the WAL while the pages are copied (only the
//! checkpoint waits for the copy to end). The one read transaction is what makes the
//! copy consistent *and* finish: without it each step starts a new read, sees the
//! writer's newer commits, and SQLite restarts the copy from the first page — under
//! continuous publishing, forever. The copy is written to `FILE.tmp`, checked with
//! `quick_check`, fsynced and renamed, so a failed backup never leaves a file named
//! `FILE`. `config.toml` is not in it: it holds the signing secret, and a database
//! backup is the file that travels off-site. Back it up separately, once (it changes
//! only by hand).
//!
//! **Restore.** Clients trust `(epoch, offset)`. A backup restored after the gateway
//! served more than it holds would let new notifications take offsets clients already
//! hold from the lost timeline: they would skip them. `lineage.rs` catches an older
//! copy at start by comparing it with `tocsin.db.lineage`, but that file may lag the
//! last second of commits and may be lost with the disk. `restore` runs with the old
//! database still at hand, so it decides itself: epochs are kept only when the old
//! database is readable and *provably the same history* — the same lineage (generation
//! and commit count: no batch committed since) and the same streams with the same
//! epochs and heads. Anything else (an older backup, a damaged or missing database, a
//! new machine) gives every stream a new epoch in the restored file and a generation
//! above anything seen, so clients are told `recovered: false` and rebuild, and the
//! start-up comparison finds nothing more to do.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::Context;
use chrono::{DateTime, Utc};
use rusqlite::backup::{Backup, StepResult};
use rusqlite::{Connection, OpenFlags, params};

use super::connection::BUSY_TIMEOUT;
use super::lineage::{self, Lineage};
use super::migrations;

/// Pages copied per step: 64 pages (256 KiB at SQLite's 4 KiB pages). The step holds
/// nothing the writer needs (WAL), so its length only paces the copy: measured on a
/// 145 MB database under continuous publishing (debug build, 2 shared cores), 554
/// steps in 3.2 s, the longest 106 ms when the kernel throttled the copy's writes;
/// publishes meanwhile p99 5.2 ms (5.5 ms at worst before), the slowest 96 ms.
pub const PAGES_PER_STEP: i32 = 64;

/// The pause between steps: caps the copy near 60 MB/s, so the kernel writes the
/// copy's pages back as they come instead of piling them up dirty for the writer's
/// next fsync to wait behind (ext4 commits its journal for every file). A 1 GB
/// database spends about 16 s in pauses.
pub const PAUSE: Duration = Duration::from_millis(4);

/// What a backup did, for the operator (and the measurements in the tests).
#[derive(Debug, Clone)]
pub struct BackupReport {
    /// The file written.
    pub file: PathBuf,
    /// Its size.
    pub bytes: u64,
    /// Steps of [`PAGES_PER_STEP`] pages.
    pub steps: u32,
    /// The longest step.
    pub max_step: Duration,
    /// The whole backup, checks and fsync included.
    pub elapsed: Duration,
}

/// Copies the database at `database` (served or not) to `file`.
pub fn backup(database: &Path, file: &Path, force: bool) -> anyhow::Result<BackupReport> {
    let started = Instant::now();
    anyhow::ensure!(
        database.is_file(),
        "there is no database at {}: check --data-dir (and `database` in config.toml)",
        database.display()
    );
    if same_file(database, file) {
        anyhow::bail!(
            "{} is the live database itself: name a file outside the data directory",
            file.display()
        );
    }
    if file.exists() && !force {
        anyhow::bail!(
            "{} already exists: name another file, or pass --force to replace it",
            file.display()
        );
    }
    let temp = with_suffix(file, ".tmp");
    remove_if_present(&temp)?;
    let result = copy_into(database, &temp);
    let (steps, max_step) = match result {
        Ok(measured) => measured,
        Err(err) => {
            // Never leave a half copy behind, even under its temporary name.
            let _ = std::fs::remove_file(&temp);
            return Err(err);
        }
    };
    sync_file(&temp)?;
    std::fs::rename(&temp, file)
        .with_context(|| format!("cannot rename {} to {}", temp.display(), file.display()))?;
    sync_parent(file)?;
    Ok(BackupReport {
        file: file.to_owned(),
        bytes: std::fs::metadata(file)?.len(),
        steps,
        max_step,
        elapsed: started.elapsed(),
    })
}

/// The copy itself, checked; returns the step count and the longest step.
fn copy_into(database: &Path, temp: &Path) -> anyhow::Result<(u32, Duration)> {
    let source = open_read_only(database)?;
    // The snapshot every step reads (see the module's doc).
    source
        .execute_batch("BEGIN; SELECT count(*) FROM sqlite_schema;")
        .with_context(|| format!("cannot read {}", database.display()))?;
    let mut target =
        Connection::open(temp).with_context(|| format!("cannot create {}", temp.display()))?;
    let (mut steps, mut max_step) = (0u32, Duration::ZERO);
    {
        let copy = Backup::new(&source, &mut target)?;
        loop {
            let step_started = Instant::now();
            let result = copy
                .step(PAGES_PER_STEP)
                .with_context(|| format!("the copy into {} failed", temp.display()))?;
            max_step = max_step.max(step_started.elapsed());
            steps += 1;
            match result {
                StepResult::Done => break,
                // Busy or locked: only another process on the *target* can cause it;
                // wait as for a page.
                _ => std::thread::sleep(PAUSE),
            }
        }
    }
    source.execute_batch("COMMIT")?;
    let findings = integrity_findings(&target, false)?;
    anyhow::ensure!(
        findings.is_empty(),
        "the copy in {} fails its check ({}); the database itself may be damaged: run \
         `tocsin-gateway doctor`",
        temp.display(),
        findings.join("; ")
    );
    Ok((steps, max_step))
}

/// A read-only connection (doctor, backup, restore's look at the old database).
pub fn open_read_only(path: &Path) -> anyhow::Result<Connection> {
    let flags = OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX;
    let conn = Connection::open_with_flags(path, flags)
        .with_context(|| format!("cannot open {}", path.display()))?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    Ok(conn)
}

/// `PRAGMA integrity_check` (`full`) or `quick_check` (no index cross-checks: about a
/// second per GB); what it found wrong, empty when the file is sound.
pub fn integrity_findings(conn: &Connection, full: bool) -> anyhow::Result<Vec<String>> {
    let pragma = if full {
        "PRAGMA integrity_check(10)"
    } else {
        "PRAGMA quick_check(10)"
    };
    let findings: Vec<String> = match conn.prepare(pragma).and_then(|mut statement| {
        statement
            .query_map([], |row| row.get(0))
            .and_then(|rows| rows.collect())
    }) {
        Ok(findings) => findings,
        // "file is not a database", "database disk image is malformed".
        Err(err) => return Ok(vec![err.to_string()]),
    };
    Ok(findings.into_iter().filter(|line| line != "ok").collect())
}

/// The newest schema this build knows.
pub fn latest_schema_version() -> i64 {
    migrations::latest_version()
}

/// The schema version (`user_version`) of a database.
pub fn schema_version(conn: &Connection) -> anyhow::Result<i64> {
    Ok(conn.pragma_query_value(None, "user_version", |row| row.get(0))?)
}

/// When the newest stored notification was created, if any.
pub fn newest_notification(conn: &Connection) -> anyhow::Result<Option<DateTime<Utc>>> {
    let micros: Option<i64> =
        conn.query_row("SELECT max(created_us) FROM notifications", [], |row| {
            row.get(0)
        })?;
    Ok(micros.and_then(DateTime::from_timestamp_micros))
}

/// What decides whether two databases are the same history.
#[derive(Debug, Clone, PartialEq, Eq)]
struct History {
    /// Generation and commit count.
    lineage: Lineage,
    /// Every stream's epoch and head.
    streams: BTreeMap<String, (String, i64)>,
}

fn history(conn: &Connection) -> anyhow::Result<History> {
    let lineage = lineage::read(conn)?;
    let streams = conn
        .prepare("SELECT name, epoch, head FROM streams")?
        .query_map([], |row| Ok((row.get(0)?, (row.get(1)?, row.get(2)?))))?
        .collect::<Result<_, _>>()?;
    Ok(History { lineage, streams })
}

/// Whether the restored database kept its epochs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Epochs {
    /// The old database was the same history: clients resume where they were.
    Kept,
    /// Every stream got a new epoch; clients rebuild. Why, for the operator.
    Renewed {
        /// How many streams.
        streams: usize,
        /// Why the history could not be proven the same.
        reason: String,
    },
}

/// What a restore did.
#[derive(Debug, Clone)]
pub struct RestoreReport {
    /// The old files, moved aside (empty when there was no database).
    pub aside: Vec<PathBuf>,
    /// What happened to the epochs.
    pub epochs: Epochs,
}

/// Puts `backup` in place of `database`. The caller holds the exclusive
/// [`super::serve_lock::ServeLock`]: no gateway serves the database.
pub fn restore(database: &Path, backup: &Path) -> anyhow::Result<RestoreReport> {
    anyhow::ensure!(
        backup.is_file(),
        "there is no backup file at {}",
        backup.display()
    );
    anyhow::ensure!(
        !same_file(database, backup),
        "{} is the live database itself: name the backup file",
        backup.display()
    );
    let restored = check_backup(backup)?;

    // Work on a copy beside the database: the operator's backup is never changed, and
    // the final rename is atomic on the same file system.
    let temp = with_suffix(database, ".restore.tmp");
    remove_if_present(&temp)?;
    std::fs::copy(backup, &temp)
        .with_context(|| format!("cannot copy {} to {}", backup.display(), temp.display()))?;
    let epochs = match decide(database, &restored) {
        Ok(()) => Epochs::Kept,
        Err(reason) => {
            let streams = renew_epochs(&temp, database, &restored)?;
            Epochs::Renewed { streams, reason }
        }
    };
    sync_file(&temp)?;

    let aside = move_aside(database)?;
    std::fs::rename(&temp, database).with_context(|| {
        format!(
            "cannot move {} to {}; the old database is in {}: move it back, or retry",
            temp.display(),
            database.display(),
            aside
                .first()
                .map_or_else(|| "(none)".to_owned(), |p| p.display().to_string())
        )
    })?;
    sync_parent(database)?;
    Ok(RestoreReport { aside, epochs })
}

/// A backup fit to restore: sound, a Tocsin database, not newer than this build.
fn check_backup(backup: &Path) -> anyhow::Result<History> {
    let conn = open_read_only(backup)?;
    let findings = integrity_findings(&conn, true)?;
    anyhow::ensure!(
        findings.is_empty(),
        "the backup {} is damaged ({}); nothing was changed. Restore an older backup",
        backup.display(),
        findings.join("; ")
    );
    let version = schema_version(&conn)?;
    let latest = migrations::latest_version();
    anyhow::ensure!(
        version <= latest,
        "the backup {} has schema version {version}, written by a newer tocsin-gateway \
         (this one knows up to {latest}); nothing was changed. Restore it with the newer \
         version",
        backup.display()
    );
    history(&conn).map_err(|err| {
        anyhow::anyhow!(
            "{} is not a Tocsin database ({err}); nothing was changed. Name a file made \
             by `tocsin-gateway backup`",
            backup.display()
        )
    })
}

/// `Ok` when the database now in place is provably the same history as the backup;
/// else why not.
fn decide(database: &Path, restored: &History) -> Result<(), String> {
    if !database.exists() {
        return Err("there was no database to compare with".into());
    }
    let current = open_read_only(database)
        .and_then(|conn| history(&conn))
        .map_err(|err| format!("the old database cannot be read ({err:#})"))?;
    if current.lineage != restored.lineage {
        return Err(format!(
            "the old database went on after the backup (generation {}, {} commits; the \
             backup has generation {}, {} commits)",
            current.lineage.generation,
            current.lineage.commits,
            restored.lineage.generation,
            restored.lineage.commits
        ));
    }
    if current.streams != restored.streams {
        return Err("the old database's streams differ from the backup's".into());
    }
    Ok(())
}

/// New epochs for every stream of `temp`, and a generation above the backup's, the
/// old database's and the lineage file's, so the next start sees nothing older.
fn renew_epochs(temp: &Path, database: &Path, restored: &History) -> anyhow::Result<usize> {
    let seen_in_file = lineage::read_file(&lineage::file_of(database))
        .ok()
        .flatten()
        .map_or(0, |seen| seen.generation);
    let seen_in_old = open_read_only(database)
        .and_then(|conn| Ok(lineage::read(&conn)?.generation))
        .unwrap_or(0);
    let generation = restored
        .lineage
        .generation
        .max(seen_in_file)
        .max(seen_in_old)
        + 1;
    let mut conn = Connection::open(temp)?;
    let tx = conn.transaction()?;
    let streams = lineage::rotate_epochs(&tx)?;
    tx.execute(
        "UPDATE meta SET value = ?1 WHERE key = 'generation'",
        params![generation],
    )?;
    tx.commit()?;
    // One file again, so the fsync and rename below carry everything.
    conn.query_row("PRAGMA wal_checkpoint(TRUNCATE)", [], |_| Ok(()))?;
    Ok(streams)
}

/// Moves `tocsin.db`, `-wal` and `-shm` to `tocsin.db.before-restore-<time>` (keeping
/// SQLite's names, so the set opens again as it was) and copies the lineage file
/// beside them. The lineage file itself stays: it is what the next start compares
/// the restored database with.
fn move_aside(database: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let stamp = Utc::now().format("%Y%m%dT%H%M%SZ");
    let aside = with_suffix(database, &format!(".before-restore-{stamp}"));
    let mut moved = Vec::new();
    for suffix in ["", "-wal", "-shm"] {
        let from = with_suffix(database, suffix);
        if !from.exists() {
            continue;
        }
        let to = with_suffix(&aside, suffix);
        std::fs::rename(&from, &to)
            .with_context(|| format!("cannot move {} to {}", from.display(), to.display()))?;
        moved.push(to);
    }
    let lineage_file = lineage::file_of(database);
    if lineage_file.exists() {
        let to = lineage::file_of(&aside);
        std::fs::copy(&lineage_file, &to)
            .with_context(|| format!("cannot copy {}", lineage_file.display()))?;
        moved.push(to);
    }
    Ok(moved)
}

fn with_suffix(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push(suffix);
    PathBuf::from(name)
}

fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => false,
    }
}

fn remove_if_present(path: &Path) -> anyhow::Result<()> {
    match std::fs::remove_file(path) {
        Ok(()) => Ok(()),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(err) => Err(anyhow::anyhow!("cannot remove {}: {err}", path.display())),
    }
}

fn sync_file(path: &Path) -> anyhow::Result<()> {
    std::fs::File::open(path)
        .and_then(|file| file.sync_all())
        .with_context(|| format!("cannot fsync {}", path.display()))
}

fn sync_parent(path: &Path) -> anyhow::Result<()> {
    if let Some(dir) = path.parent().filter(|dir| !dir.as_os_str().is_empty()) {
        std::fs::File::open(dir)
            .and_then(|dir| dir.sync_all())
            .with_context(|| format!("cannot fsync {}", dir.display()))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A migrated database with one stream at `head`, its lineage at `commits`.
    fn database(path: &Path, head: i64, commits: i64) {
        let mut conn = Connection::open(path).expect("opens");
        conn.pragma_update(None, "journal_mode", "WAL")
            .expect("wal");
        migrations::migrations()
            .to_latest(&mut conn)
            .expect("migrates");
        conn.execute(
            "INSERT INTO streams (name, epoch, head, first) VALUES ('user:a', 'e1', ?1, 1)",
            params![head],
        )
        .expect("a stream");
        conn.execute(
            "UPDATE meta SET value = ?1 WHERE key = 'commits'",
            params![commits],
        )
        .expect("commits");
    }

    fn epoch(path: &Path) -> String {
        open_read_only(path)
            .expect("opens")
            .query_row(
                "SELECT epoch FROM streams WHERE name = 'user:a'",
                [],
                |row| row.get(0),
            )
            .expect("reads")
    }

    #[test]
    fn a_backup_restored_onto_the_same_history_keeps_its_epochs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("tocsin.db");
        database(&live, 5, 7);
        let copy = dir.path().join("copy.db");
        let report = backup(&live, &copy, false).expect("backs up");
        assert!(report.steps >= 1 && report.bytes > 0, "{report:?}");
        let err = backup(&live, &copy, false).expect_err("no silent overwrite");
        assert!(err.to_string().contains("--force"), "{err}");
        backup(&live, &copy, true).expect("--force replaces it");
        assert!(!with_suffix(&copy, ".tmp").exists());

        let report = restore(&live, &copy).expect("restores");
        assert_eq!(report.epochs, Epochs::Kept);
        assert_eq!(epoch(&live), "e1");
        assert!(
            report.aside[0]
                .to_string_lossy()
                .contains(".before-restore-")
        );
        assert!(report.aside[0].exists(), "the old database is kept aside");
    }

    #[test]
    fn an_older_backup_renews_every_epoch_and_outranks_the_lineage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("tocsin.db");
        database(&live, 5, 7);
        let copy = dir.path().join("copy.db");
        backup(&live, &copy, false).expect("backs up");
        // The gateway served on: three more batches, one more notification.
        let conn = Connection::open(&live).expect("opens");
        conn.execute_batch(
            "UPDATE streams SET head = 6; UPDATE meta SET value = 10 WHERE key = 'commits';",
        )
        .expect("serves on");
        drop(conn);
        lineage::write_file(
            &lineage::file_of(&live),
            Lineage {
                generation: 4,
                commits: 10,
            },
        )
        .expect("the lineage file");

        let report = restore(&live, &copy).expect("restores");
        let Epochs::Renewed { streams, reason } = &report.epochs else {
            panic!("an older backup keeps no epoch: {report:?}");
        };
        assert_eq!(*streams, 1);
        assert!(reason.contains("went on after the backup"), "{reason}");
        assert_ne!(epoch(&live), "e1");
        let restored = lineage::read(&open_read_only(&live).expect("opens")).expect("reads");
        assert_eq!(restored.generation, 5, "above the lineage file's 4");
        assert!(!restored.is_behind(Lineage {
            generation: 4,
            commits: 10
        }));
    }

    #[test]
    fn a_damaged_or_foreign_backup_is_refused_and_nothing_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let live = dir.path().join("tocsin.db");
        database(&live, 5, 7);
        let junk = dir.path().join("junk.db");
        std::fs::write(&junk, vec![0x5a; 8192]).expect("writes");
        let err = restore(&live, &junk).expect_err("refused");
        assert!(
            err.to_string().contains("damaged") && err.to_string().contains("nothing was changed"),
            "{err}"
        );
        let foreign = dir.path().join("foreign.db");
        Connection::open(&foreign)
            .expect("opens")
            .execute_batch("CREATE TABLE t (x)")
            .expect("a table");
        let err = restore(&live, &foreign).expect_err("refused");
        assert!(err.to_string().contains("not a Tocsin database"), "{err}");
        assert_eq!(epoch(&live), "e1", "the live database is untouched");
    }

    #[test]
    fn a_restore_onto_no_database_renews_epochs() {
        let dir = tempfile::tempdir().expect("tempdir");
        let source = dir.path().join("source.db");
        database(&source, 5, 7);
        let copy = dir.path().join("copy.db");
        backup(&source, &copy, false).expect("backs up");
        let live = dir.path().join("new").join("tocsin.db");
        std::fs::create_dir_all(live.parent().expect("a parent")).expect("mkdir");
        let report = restore(&live, &copy).expect("restores");
        assert!(matches!(report.epochs, Epochs::Renewed { .. }));
        assert!(report.aside.is_empty());
        assert_ne!(epoch(&live), "e1");
    }
}
