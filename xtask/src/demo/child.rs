//! Helper processes of the demo (Xvfb, the session bus, the keyring, dunst, the app),
//! each leading a process group of its own, so that stopping one also stops what it
//! started (WebKit's helper processes under the app) and a Ctrl-C in the terminal
//! reaches xtask only. Dropping a [`Supervised`] kills its whole group: an error or a
//! panic in xtask never leaves one behind.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::gateway::log_tail;

/// A child process leading its own process group, its output in a log file.
#[derive(Debug)]
pub struct Supervised {
    /// What it is, for messages (`Xvfb`, `dunst`, `tocsin-desktop`).
    name: &'static str,
    /// The process.
    child: Child,
    /// Its process group (its pid at start); `None` once the group was killed.
    pgid: Option<i32>,
    /// Where its stderr (and stdout, unless piped) goes.
    log: PathBuf,
}

impl Supervised {
    /// Starts `command` in a new process group with stdin closed (or piped when
    /// `stdin`), stdout piped when `stdout` (else to the log), stderr to `log`.
    pub fn spawn(
        name: &'static str,
        mut command: Command,
        log: &Path,
        stdin: bool,
        stdout: bool,
    ) -> Result<Supervised> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("creating {}", log.display()))?;
        let out = if stdout {
            Stdio::piped()
        } else {
            Stdio::from(file.try_clone().context("duplicating a log file")?)
        };
        command
            .stdin(if stdin { Stdio::piped() } else { Stdio::null() })
            .stdout(out)
            .stderr(file)
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let program = command
            .as_std()
            .get_program()
            .to_string_lossy()
            .into_owned();
        let child = command.spawn().with_context(|| {
            format!("could not start `{program}` ({name}); `cargo xtask setup` installs it")
        })?;
        let pgid = child.id().and_then(|pid| i32::try_from(pid).ok());
        Ok(Supervised {
            name,
            child,
            pgid,
            log: log.to_owned(),
        })
    }

    /// Its piped stdin (once).
    pub fn take_stdin(&mut self) -> Result<ChildStdin> {
        let name = self.name;
        self.child
            .stdin
            .take()
            .with_context(|| format!("{name}'s stdin is not piped"))
    }

    /// Reads its piped stdout until a line `parse` accepts, within `timeout`; fails
    /// with the log's tail when the process exits or stays silent. The rest of the
    /// output is drained in the background, so the process never blocks on a pipe.
    pub async fn read_line<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        parse: impl Fn(&str) -> Option<T>,
    ) -> Result<T> {
        let stdout: ChildStdout = self
            .child
            .stdout
            .take()
            .with_context(|| format!("{}'s stdout is not piped", self.name))?;
        let mut lines = BufReader::new(stdout).lines();
        let read = async {
            while let Some(line) = lines.next_line().await? {
                if let Some(value) = parse(line.trim()) {
                    return Ok(Some(value));
                }
            }
            anyhow::Ok(None)
        };
        let found = tokio::time::timeout(timeout, read).await;
        match found {
            Ok(Ok(Some(value))) => {
                tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
                Ok(value)
            }
            Ok(Ok(None)) => bail!("{} exited before printing {what}{}", self.name, self.tail()),
            Ok(Err(error)) => Err(error.context(format!("reading {what} from {}", self.name))),
            Err(_) => bail!(
                "{} did not print {what} within {timeout:?}{}",
                self.name,
                self.tail()
            ),
        }
    }

    /// `Some(status)` once the process has exited.
    pub fn exited(&mut self) -> Result<Option<ExitStatus>> {
        Ok(self.child.try_wait()?)
    }

    /// The last lines of its log, as a block to append to an error message.
    pub fn tail(&self) -> String {
        format!(
            "\n--- last lines of {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            log_tail(&self.log, 30)
        )
    }

    /// SIGTERM to the group, then SIGKILL when the process has not exited within
    /// `grace`. Returns its exit status and whether it had to be killed.
    pub async fn stop(&mut self, grace: Duration) -> Result<(ExitStatus, bool)> {
        let outcome = match self.child.try_wait()? {
            Some(status) => Ok((status, false)),
            None => {
                self.signal(Signal::Term);
                match tokio::time::timeout(grace, self.child.wait()).await {
                    Ok(status) => Ok((status?, false)),
                    Err(_) => {
                        self.signal(Signal::Kill);
                        Ok((self.child.wait().await?, true))
                    }
                }
            }
        };
        // Whatever it started and left behind (WebKit's helpers) goes too.
        self.signal(Signal::Kill);
        self.pgid = None;
        outcome
    }

    /// Sends `signal` to the process group.
    fn signal(&mut self, signal: Signal) {
        match self.pgid {
            Some(pgid) => signal_group(pgid, signal),
            None => {
                let _ = self.child.start_kill();
            }
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        // The group may outlive its leader (WebKit's helpers): signal the group, not
        // only the child (which `kill_on_drop` kills anyway).
        if let Some(pgid) = self.pgid.take() {
            signal_group(pgid, Signal::Kill);
        }
    }
}

/// The signals the demo sends.
#[derive(Debug, Clone, Copy)]
enum Signal {
    /// Please stop.
    Term,
    /// Stop now.
    Kill,
}

/// Sends `signal` to a process group; ESRCH (the group is gone) is fine.
#[cfg(unix)]
fn signal_group(pgid: i32, signal: Signal) {
    use nix::sys::signal::{Signal as Nix, killpg};
    use nix::unistd::Pid;

    let signal = match signal {
        Signal::Term => Nix::SIGTERM,
        Signal::Kill => Nix::SIGKILL,
    };
    let _ = killpg(Pid::from_raw(pgid), signal);
}

/// Without process groups there is nothing more to signal than the child, which
/// `kill_on_drop` kills.
#[cfg(not(unix))]
fn signal_group(_pgid: i32, _signal: Signal) {}
