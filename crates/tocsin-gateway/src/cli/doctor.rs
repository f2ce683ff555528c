//! `doctor`: one line per check of a data directory — `ok`, `warn` (works, but look
//! at it) or `FAIL` (needs doing), each with what to do — and exit code 1 when
//! anything failed, so a cron job or a monitoring probe can run it. It only reads:
//! safe beside a serving gateway.

use std::fmt;
use std::path::Path;

use chrono::{DateTime, Utc};

use crate::clock::Clock;
use crate::config::{CONFIG_FILE, Config};
use crate::listener::Tls;
use crate::store::sqlite::backup;
use crate::store::sqlite::serve_lock::{self, Holder};

/// Full `integrity_check` below this size; `quick_check` (no index cross-checks,
/// about a second per GB) above, so doctor stays quick on a large database.
const FULL_CHECK_BELOW_BYTES: u64 = 256 * 1024 * 1024;

/// A clock this far behind the newest stored notification is suspect (an unset RTC,
/// NTP not running): deadlines would fire late.
const CLOCK_BEHIND_WARNING: chrono::Duration = chrono::Duration::minutes(5);

/// How a check came out.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Nothing to do.
    Ok,
    /// Works, but should be looked at.
    Warn,
    /// Needs doing: exit code 1.
    Fail,
}

/// One check's line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    /// How it came out.
    pub level: Level,
    /// What was checked, one word.
    pub check: &'static str,
    /// What was found, and what to do.
    pub message: String,
}

impl Finding {
    fn new(level: Level, check: &'static str, message: impl Into<String>) -> Finding {
        Finding {
            level,
            check,
            message: message.into(),
        }
    }
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.level {
            Level::Ok => "ok",
            Level::Warn => "warn",
            Level::Fail => "FAIL",
        };
        write!(f, "{level:<4}  {:<11} {}", self.check, self.message)
    }
}

/// Runs every check, prints one line each; an error (exit 1) when one failed.
pub fn run(data_dir: &Path) -> anyhow::Result<()> {
    let findings = check_all(data_dir, Utc::now());
    for finding in &findings {
        println!("{finding}");
    }
    let failed: Vec<&str> = findings
        .iter()
        .filter(|finding| finding.level == Level::Fail)
        .map(|finding| finding.check)
        .collect();
    anyhow::ensure!(
        failed.is_empty(),
        "{} check(s) failed: {}",
        failed.len(),
        failed.join(", ")
    );
    Ok(())
}

/// Every check of `data_dir`, in the order printed.
pub fn check_all(data_dir: &Path, now: DateTime<Utc>) -> Vec<Finding> {
    let mut findings = Vec::new();
    let config = match Config::load(data_dir).and_then(|config| {
        config.validate()?;
        Ok(config)
    }) {
        Ok(config) => {
            findings.push(Finding::new(
                Level::Ok,
                "config",
                format!(
                    "{} parses and validates",
                    data_dir.join(CONFIG_FILE).display()
                ),
            ));
            Some(config)
        }
        Err(err) => {
            findings.push(Finding::new(
                Level::Fail,
                "config",
                format!("{err:#}; fix {} and run doctor again", CONFIG_FILE),
            ));
            None
        }
    };
    findings.extend(permissions(data_dir));
    let database = config.as_ref().map_or_else(
        || crate::config::Database::Sqlite(data_dir.join("tocsin.db")),
        |config| config.database(data_dir),
    );
    match &database {
        crate::config::Database::Sqlite(database) => {
            findings.extend(database_checks(database, now));
            findings.push(disk(database));
        }
        // The server's health is PostgreSQL's own tools' business; /readyz of each
        // node says whether it reaches it.
        crate::config::Database::Postgres { .. } => findings.push(Finding::new(
            Level::Ok,
            "database",
            format!(
                "PostgreSQL ({}): not checked here; check each node's /readyz, and the server with pg_amcheck",
                database.describe()
            ),
        )),
    }
    if let Some(tls) = config.as_ref().and_then(|config| config.tls.as_ref()) {
        findings.push(
            match Tls::from_config(tls, data_dir, Clock::system()) {
                Ok(loaded) => match loaded.expiry_warning() {
                    Some(warning) => Finding::new(
                        Level::Warn,
                        "tls",
                        format!("{warning}: renew it (certbot renew, or a new pair), the gateway reloads it by itself"),
                    ),
                    None => Finding::new(
                        Level::Ok,
                        "tls",
                        format!("{} is valid for more than {} days", loaded.cert_path().display(), crate::listener::tls::EXPIRY_WARNING_DAYS),
                    ),
                },
                Err(err) => Finding::new(Level::Fail, "tls", format!("{err}")),
            },
        );
    }
    if let crate::config::Database::Sqlite(database) = &database {
        findings.push(match serve_lock::holder(database) {
            Ok(Holder::Nobody) => Finding::new(
                Level::Ok,
                "serving",
                "no gateway serves this data directory now",
            ),
            Ok(Holder::Serving(pid)) => Finding::new(
                Level::Ok,
                "serving",
                match pid {
                    Some(pid) => format!("a gateway serves this data directory (pid {pid})"),
                    None => "a gateway serves this data directory".to_owned(),
                },
            ),
            Ok(Holder::Restoring) => Finding::new(
                Level::Warn,
                "serving",
                "a restore is in progress; run doctor again once it is done",
            ),
            Err(err) => Finding::new(
                Level::Warn,
                "serving",
                format!("cannot tell whether a gateway serves it ({err:#})"),
            ),
        });
    }
    findings
}

/// The data dir should be 0700 and config.toml 0600, as `init` makes them.
fn permissions(data_dir: &Path) -> Vec<Finding> {
    let mut findings = Vec::new();
    if let Some(mode) = mode_of(data_dir) {
        findings.push(permission_finding("data dir", data_dir, mode, Level::Warn));
    }
    let config = data_dir.join(CONFIG_FILE);
    if let Some(mode) = mode_of(&config) {
        // It holds the token-signing secret: whoever reads it can sign in as anyone.
        findings.push(permission_finding(CONFIG_FILE, &config, mode, Level::Fail));
    }
    findings
}

/// `ok` when neither group nor others have any access, else `open` with the fix.
fn permission_finding(what: &str, path: &Path, mode: u32, open: Level) -> Finding {
    let mode = mode & 0o777;
    if mode & 0o077 == 0 {
        return Finding::new(
            Level::Ok,
            "permissions",
            format!("{what} {} is {mode:04o}", path.display()),
        );
    }
    let wanted = if path.is_dir() { "700" } else { "600" };
    Finding::new(
        open,
        "permissions",
        format!(
            "{what} {} is {mode:04o}: other users can read it, and it holds secrets; run \
             `chmod {wanted} {}`",
            path.display(),
            path.display()
        ),
    )
}

#[cfg(unix)]
fn mode_of(path: &Path) -> Option<u32> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .ok()
        .map(|meta| meta.permissions().mode())
}

#[cfg(not(unix))]
fn mode_of(_: &Path) -> Option<u32> {
    None
}

/// Integrity, schema version, lineage and the clock against the newest data.
fn database_checks(database: &Path, now: DateTime<Utc>) -> Vec<Finding> {
    let size = match std::fs::metadata(database) {
        Ok(meta) => meta.len(),
        Err(_) => {
            return vec![Finding::new(
                Level::Fail,
                "database",
                format!(
                    "{} does not exist: run `tocsin-gateway init`, or restore a backup \
                     (`tocsin-gateway restore FILE`)",
                    database.display()
                ),
            )];
        }
    };
    let conn = match backup::open_read_only(database) {
        Ok(conn) => conn,
        Err(err) => return vec![Finding::new(Level::Fail, "database", format!("{err:#}"))],
    };
    let mut findings = Vec::new();
    let full = size < FULL_CHECK_BELOW_BYTES;
    let pragma = if full {
        "integrity_check"
    } else {
        "quick_check"
    };
    findings.push(match backup::integrity_findings(&conn, full) {
        Ok(found) if found.is_empty() => Finding::new(
            Level::Ok,
            "integrity",
            format!("{} passes {pragma} ({size} bytes)", database.display()),
        ),
        Ok(found) => Finding::new(
            Level::Fail,
            "integrity",
            format!(
                "{} is damaged ({}): stop the gateway and restore your latest backup \
                 (`tocsin-gateway restore FILE`); keep the damaged file, `sqlite3 FILE \
                 .recover` may save what the backup lacks",
                database.display(),
                found.join("; ")
            ),
        ),
        Err(err) => Finding::new(Level::Fail, "integrity", format!("{err:#}")),
    });
    if findings[0].level == Level::Fail {
        // Nothing else a damaged file says can be trusted.
        return findings;
    }
    findings.push(schema(&conn));
    findings.push(clock(
        now,
        backup::newest_notification(&conn).ok().flatten(),
    ));
    findings
}

fn schema(conn: &rusqlite::Connection) -> Finding {
    let latest = backup::latest_schema_version();
    match backup::schema_version(conn) {
        Ok(version) if version == latest => Finding::new(
            Level::Ok,
            "schema",
            format!("version {version}, this build's"),
        ),
        Ok(version) if version < latest => Finding::new(
            Level::Ok,
            "schema",
            format!(
                "version {version}; the next start migrates it to {latest} (take a backup first)"
            ),
        ),
        Ok(version) => Finding::new(
            Level::Fail,
            "schema",
            format!(
                "version {version} was written by a newer tocsin-gateway (this one knows up \
                 to {latest}): run the newer version"
            ),
        ),
        Err(err) => Finding::new(Level::Fail, "schema", format!("{err:#}")),
    }
}

/// The system clock against the newest stored notification.
fn clock(now: DateTime<Utc>, newest: Option<DateTime<Utc>>) -> Finding {
    match newest {
        Some(newest) if newest - now > CLOCK_BEHIND_WARNING => Finding::new(
            Level::Warn,
            "clock",
            format!(
                "the system clock ({}) is behind the newest stored notification ({}): \
                 check NTP (`timedatectl`); deadlines fire by this clock",
                now.format("%Y-%m-%d %H:%M:%S UTC"),
                newest.format("%Y-%m-%d %H:%M:%S UTC")
            ),
        ),
        Some(_) => Finding::new(
            Level::Ok,
            "clock",
            "the system clock is not behind the stored data",
        ),
        None => Finding::new(
            Level::Ok,
            "clock",
            "no notification stored yet to compare the clock with",
        ),
    }
}

/// At least twice the database's size free: a migration or a backup on the same disk
/// may need a whole copy.
fn disk(database: &Path) -> Finding {
    let used = ["", "-wal"]
        .iter()
        .filter_map(|suffix| {
            let mut name = database.as_os_str().to_owned();
            name.push(suffix);
            std::fs::metadata(Path::new(&name))
                .ok()
                .map(|meta| meta.len())
        })
        .sum::<u64>();
    match free_bytes(database) {
        Some(free) => disk_finding(free, used),
        None => Finding::new(
            Level::Warn,
            "disk",
            "cannot read the free space of the data directory",
        ),
    }
}

fn disk_finding(free: u64, used: u64) -> Finding {
    let mib = |bytes: u64| bytes / (1024 * 1024);
    if free < used.saturating_mul(2) {
        Finding::new(
            Level::Warn,
            "disk",
            format!(
                "{} MiB free for a {} MiB database: a migration or a backup on this disk \
                 needs up to twice its size; free some space",
                mib(free),
                mib(used)
            ),
        )
    } else {
        Finding::new(
            Level::Ok,
            "disk",
            format!("{} MiB free for a {} MiB database", mib(free), mib(used)),
        )
    }
}

#[cfg(unix)]
fn free_bytes(database: &Path) -> Option<u64> {
    let dir = database
        .parent()
        .filter(|dir| !dir.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let stat = nix::sys::statvfs::statvfs(dir).ok()?;
    Some(stat.blocks_available().saturating_mul(stat.fragment_size()))
}

#[cfg(not(unix))]
fn free_bytes(_: &Path) -> Option<u64> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_readable_config_fails_and_a_readable_dir_warns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("config.toml");
        std::fs::write(&file, "").expect("writes");
        assert_eq!(
            permission_finding("config.toml", &file, 0o100600, Level::Fail).level,
            Level::Ok
        );
        let open = permission_finding("config.toml", &file, 0o100644, Level::Fail);
        assert_eq!(open.level, Level::Fail);
        assert!(
            open.message.contains("0644") && open.message.contains("chmod 600"),
            "{open}"
        );
        let dir_open = permission_finding("data dir", dir.path(), 0o40755, Level::Warn);
        assert_eq!(dir_open.level, Level::Warn);
        assert!(dir_open.message.contains("chmod 700"), "{dir_open}");
    }

    #[test]
    fn less_than_twice_the_database_free_warns() {
        let gib = 1024 * 1024 * 1024;
        assert_eq!(disk_finding(3 * gib, gib).level, Level::Ok);
        assert_eq!(disk_finding(gib, gib).level, Level::Warn);
    }

    #[test]
    fn a_clock_far_behind_the_data_warns() {
        let now = Utc::now();
        assert_eq!(clock(now, None).level, Level::Ok);
        assert_eq!(
            clock(now, Some(now + chrono::Duration::minutes(1))).level,
            Level::Ok
        );
        let behind = clock(now, Some(now + chrono::Duration::days(2)));
        assert_eq!(behind.level, Level::Warn);
        assert!(behind.message.contains("NTP"), "{behind}");
    }

    #[test]
    fn each_line_starts_with_its_level() {
        let line = Finding::new(Level::Fail, "integrity", "damaged").to_string();
        assert!(line.starts_with("FAIL  integrity"), "{line}");
    }
}
