//! The desktop tray app, signed in as Marie from the command line: `tocsin-desktop
//! --home DIR --server URL --email E --password-stdin`, the password written to its
//! stdin and the pipe closed, its output in a log file. Its panel opens at start.
//!
//! The demo watches it through its local database (read-only, see [`super::inbox`]):
//! it is ready once it holds a position on every stream the gateway delivers to
//! Marie, and a notification reached it once its id is in the inbox table.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use tocsin_harness::process::{Pipes, Supervised};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::headless::Headless;
use super::inbox;

/// How long the app may take to start, sign in and connect.
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// How long the app may take to exit after SIGTERM before it is killed.
const STOP_GRACE: Duration = Duration::from_secs(10);
/// How often its database is looked at.
const POLL: Duration = Duration::from_millis(200);
/// What the app prints when the command line's sign-in fails.
const SIGN_IN_FAILED: &str = "sign-in failed";

/// The running app.
#[derive(Debug)]
pub struct Desktop {
    /// The process (and its WebKit helpers, in its process group).
    process: Supervised,
    /// Its `--home`.
    home: PathBuf,
    /// Its stdout and stderr.
    log: PathBuf,
}

impl Desktop {
    /// Starts the app signed in as `email`: in the private session when given, else
    /// on the developer's own display.
    pub async fn start(
        binary: &Path,
        home: &Path,
        log: &Path,
        server: &str,
        (email, password): (&str, &str),
        session: Option<&Headless>,
    ) -> Result<Desktop> {
        let mut command = match session {
            Some(session) => session.command(binary),
            None => Command::new(binary),
        };
        command
            .arg("--home")
            .arg(home)
            .args(["--server", server, "--email", email, "--password-stdin"])
            // The log is a file: no colour escapes in it.
            .env("NO_COLOR", "1");
        println!(
            "$ tocsin-desktop --home {} --server {server} --email {email} --password-stdin",
            home.display()
        );
        let mut process = Supervised::spawn(
            "tocsin-desktop",
            command,
            log,
            Pipes {
                stdin: true,
                stdout: false,
            },
        )?;
        let mut stdin = process.take_stdin()?;
        // A write error means the app exited without reading; waiting says why.
        let _ = stdin.write_all(format!("{password}\n").as_bytes()).await;
        drop(stdin);
        Ok(Desktop {
            process,
            home: home.to_owned(),
            log: log.to_owned(),
        })
    }

    /// Its local database.
    fn database(&self) -> PathBuf {
        self.home.join("data").join("client.db")
    }

    /// Waits until the app is connected: a position stored for each of `streams`.
    pub async fn wait_ready(&mut self, streams: usize) -> Result<()> {
        let database = self.database();
        self.poll("to sign in and connect", READY_TIMEOUT, move || {
            Ok(inbox::stream_count(&database)? >= streams)
        })
        .await
    }

    /// Waits until every id in `ids` is in the app's inbox.
    pub async fn wait_stored(&mut self, ids: &[String], timeout: Duration) -> Result<()> {
        let database = self.database();
        let wanted: HashSet<String> = ids.iter().cloned().collect();
        let what = format!("to store {} notification(s)", ids.len());
        self.poll(&what, timeout, move || {
            let stored = inbox::stored_ids(&database)?;
            Ok(wanted.is_subset(&stored))
        })
        .await
    }

    /// Waits until the app holds none of `ids` (the firm retracted them).
    pub async fn wait_removed(&mut self, ids: &[String], timeout: Duration) -> Result<()> {
        if ids.is_empty() {
            return Ok(());
        }
        let database = self.database();
        let gone: HashSet<String> = ids.iter().cloned().collect();
        let what = format!("to remove {} retracted notification(s)", ids.len());
        self.poll(&what, timeout, move || {
            let stored = inbox::stored_ids(&database)?;
            Ok(stored.is_disjoint(&gone))
        })
        .await
    }

    /// Polls `check` (a blocking database read) until it is true; fails when the app
    /// exits, says its sign-in failed, or `timeout` passes (with the last error seen).
    async fn poll<F>(&mut self, what: &str, timeout: Duration, check: F) -> Result<()>
    where
        F: Fn() -> Result<bool> + Clone + Send + 'static,
    {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let last_error = match tokio::task::spawn_blocking(check.clone()).await? {
                Ok(true) => return Ok(()),
                Ok(false) => None,
                Err(error) => Some(error),
            };
            if let Some(status) = self.process.try_exited()? {
                let hint = if status.success() {
                    " on its own: is another Tocsin desktop running in this session? A second \
                     one only opens the first one's panel and exits"
                } else {
                    ""
                };
                bail!("the desktop app exited ({status}) while waiting for it {what}{hint}");
            }
            if std::fs::read_to_string(&self.log).is_ok_and(|log| log.contains(SIGN_IN_FAILED)) {
                bail!("the desktop app could not sign in (see its log)");
            }
            if tokio::time::Instant::now() >= deadline {
                let detail = last_error.map_or_else(String::new, |e| format!(" (last: {e:#})"));
                bail!("the desktop app did not manage {what} within {timeout:?}{detail}");
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// SIGTERM, then SIGKILL after a grace period; says which it took.
    pub async fn stop(mut self) -> Result<()> {
        let (status, killed) = self.process.stop(STOP_GRACE).await?;
        if killed {
            println!("the desktop app ignored SIGTERM for {STOP_GRACE:?}; killed it");
        } else {
            println!("the desktop app stopped ({status})");
        }
        Ok(())
    }

    /// The log file.
    pub fn log(&self) -> &Path {
        &self.log
    }
}
