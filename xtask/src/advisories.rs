//! The advisory check of Cargo.lock: cargo-deny, offline, against a snapshot of the
//! RustSec advisory database kept outside the repository (`deny.toml` says how).
//!
//! The snapshot is data brought in from outside the package registries, which this
//! project's rules keep out of its own repository: it lives in the shared folder beside
//! the repository (`../shared/advisory-db`), or wherever `TOCSIN_ADVISORY_DB` points.
//! Without it the step says loudly that it did not run, and setup does not spend the
//! seven minutes cargo-deny takes to build.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use chrono::{DateTime, FixedOffset, Utc};
use serde::Deserialize;

use crate::process::{cargo, header, repo_root, run_step};

/// A folder holding a RustSec advisory database snapshot (`crates/`, `snapshot.json`),
/// instead of `advisory-db/` in the shared folder beside the repository.
pub const ADVISORY_DB_ENV: &str = tocsin_harness::env::ADVISORY_DB;

/// Whether a snapshot is there to check against (setup installs cargo-deny only then).
pub fn snapshot_present() -> bool {
    advisory_db_source().join("crates").is_dir()
}

/// Where cargo-deny looks for the database that `deny.toml` names, from the repository
/// root: its `db-path`, then the URL's last segment and cargo-deny's hash of the URL
/// (`url_to_db_path` in cargo-deny 0.20). Change it with the URL; cargo-deny's error
/// names the directory it looked for.
const DENY_DB_DIR: &str = "target/advisory-dbs/advisory-db-3157b0e258782691";

/// A snapshot older than this gets a warning: the RustSec database grows every week.
const ADVISORY_DB_MAX_AGE_DAYS: i64 = 90;

/// `snapshot.json` beside the snapshot's `crates/`: which commit of the database it is.
#[derive(Debug, Deserialize)]
struct Snapshot {
    /// The advisory database's commit.
    commit: String,
    /// That commit's date.
    date: DateTime<FixedOffset>,
}

/// Checks Cargo.lock against the RustSec snapshot with cargo-deny, without network
/// access to the database; fails on any advisory that `deny.toml` does not accept.
/// Without a snapshot it says so and passes: the snapshot is data kept outside the
/// repository (see `deny.toml`).
pub fn check() -> Result<()> {
    let source = advisory_db_source();
    let Some(snapshot) = read_snapshot(&source)? else {
        header("advisories: NOT RUN");
        println!(
            "no RustSec advisory database at {} (crates/ and snapshot.json); set {ADVISORY_DB_ENV} to one",
            source.display()
        );
        return Ok(());
    };
    header("advisories: database");
    let age = Utc::now().signed_duration_since(snapshot.date).num_days();
    println!(
        "RustSec snapshot {} of {} ({age} days old), from {}",
        snapshot.commit,
        snapshot.date,
        source.display()
    );
    if age > ADVISORY_DB_MAX_AGE_DAYS {
        println!(
            "warning: the advisory snapshot is over {ADVISORY_DB_MAX_AGE_DAYS} days old; refresh it (its README says how)"
        );
    }
    install_advisory_db(&source.join("crates"), &repo_root().join(DENY_DB_DIR))?;
    // cargo-deny reads the manifests of every platform's crates; a build fetches only
    // this platform's, and --offline would then fail on the others.
    run_step(
        "advisories: fetch every platform's crates",
        &mut cargo(["fetch", "--locked"]),
    )?;
    run_step(
        "advisories",
        &mut cargo(["deny", "--offline", "--locked", "check", "advisories"]),
    )
}

/// `$TOCSIN_ADVISORY_DB`, else `advisory-db/` in the shared folder beside the repository.
fn advisory_db_source() -> PathBuf {
    match std::env::var_os(ADVISORY_DB_ENV) {
        Some(path) if !path.is_empty() => PathBuf::from(path),
        _ => repo_root().join("../shared/advisory-db"),
    }
}

/// The snapshot's `snapshot.json`, or `None` when there is no snapshot there at all.
fn read_snapshot(source: &Path) -> Result<Option<Snapshot>> {
    let path = source.join("snapshot.json");
    if !path.exists() && !source.join("crates").exists() {
        return Ok(None);
    }
    let text =
        std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
    let snapshot =
        serde_json::from_str(&text).with_context(|| format!("reading {}", path.display()))?;
    Ok(Some(snapshot))
}

/// Lays the advisories out as cargo-deny expects a database it may not fetch: `crates/`
/// and a `.git/FETCH_HEAD` whose time (now) it takes as the last fetch. The copy is
/// made anew each run (about 1,200 small files), so it never lags the snapshot.
fn install_advisory_db(crates: &Path, db_dir: &Path) -> Result<()> {
    if db_dir.exists() {
        std::fs::remove_dir_all(db_dir)
            .with_context(|| format!("removing the old copy {}", db_dir.display()))?;
    }
    copy_dir(crates, &db_dir.join("crates"))?;
    let git_dir = db_dir.join(".git");
    std::fs::create_dir_all(&git_dir).with_context(|| format!("creating {}", git_dir.display()))?;
    std::fs::write(git_dir.join("FETCH_HEAD"), "")
        .with_context(|| format!("writing {}", git_dir.join("FETCH_HEAD").display()))
}

/// Copies a directory tree of plain files and directories.
fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    std::fs::create_dir_all(to).with_context(|| format!("creating {}", to.display()))?;
    let entries = std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))?;
    for entry in entries {
        let entry = entry.with_context(|| format!("reading {}", from.display()))?;
        let target = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &target)?;
        } else {
            std::fs::copy(entry.path(), &target)
                .with_context(|| format!("copying {}", entry.path().display()))?;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deny_toml_names_the_database_directory_xtask_fills() {
        let config = std::fs::read_to_string(repo_root().join("deny.toml")).expect("deny.toml");
        let (db_path, name) = DENY_DB_DIR.rsplit_once('/').expect("a path");
        assert!(
            config.contains(&format!("db-path = \"{db_path}\"")),
            "db-path"
        );
        // The hash in the name is of this exact URL (lower-cased).
        assert!(config.contains(r#"db-urls = ["https://github.com/rustsec/advisory-db"]"#));
        assert!(name.starts_with("advisory-db-"), "{name}");
    }

    #[test]
    fn snapshot_json_as_the_readme_writes_it() {
        let text = r#"{"commit":"bf5c0d245a92671908518d7e765914d437954ed6","date":"2026-08-21T08:28:40+02:00"}"#;
        let snapshot: Snapshot = serde_json::from_str(text).expect("parses");
        assert_eq!(snapshot.commit.len(), 40);
        assert_eq!(snapshot.date.to_rfc3339(), "2026-08-21T08:28:40+02:00");
    }
}
