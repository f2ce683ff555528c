//! Helper processes (Xvfb, dbus-daemon, dunst, gnome-keyring, tauri-driver, the app)
//! each in a process group of its own, so that [`Drop`] kills the process *and
//! everything it started* (WebKitWebDriver, the app it launched, WebKit's helper
//! processes) with one `SIGKILL` to the group.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdout, Command};

/// Which standard streams [`Supervised::spawn`] pipes to the test (the others go to
/// the log file, stdin to `/dev/null`).
#[derive(Debug, Clone, Copy, Default)]
pub struct Pipes {
    /// Pipe stdin (e.g. to write a password).
    pub stdin: bool,
    /// Pipe stdout (e.g. to read a display number or a bus address).
    pub stdout: bool,
}

/// A child process leading its own process group, whose stderr (and stdout, unless
/// the caller pipes it) goes to a log file.
pub struct Supervised {
    /// What it is, for messages.
    name: String,
    /// The process; `None` once it was reaped.
    child: Option<Child>,
    /// Its process group (its own pid).
    pgid: Option<i32>,
    /// Where its output goes.
    log: PathBuf,
}

impl Supervised {
    /// Starts `command` as the leader of a new process group, its stderr appended to
    /// `log` (and its stdout too, unless piped).
    pub fn spawn(name: &str, mut command: Command, log: &Path, pipes: Pipes) -> Result<Supervised> {
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .with_context(|| format!("cannot create the log file {}", log.display()))?;
        let stdout = if pipes.stdout {
            Stdio::piped()
        } else {
            Stdio::from(file.try_clone().context("cannot duplicate a log file")?)
        };
        command
            .stdout(stdout)
            .stderr(Stdio::from(file))
            .process_group(0)
            .kill_on_drop(true);
        command.stdin(if pipes.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        });
        let child = command
            .spawn()
            .with_context(|| format!("cannot start {name} ({:?})", command.as_std()))?;
        let pgid = child.id().and_then(|pid| i32::try_from(pid).ok());
        Ok(Supervised {
            name: name.to_owned(),
            child: Some(child),
            pgid,
            log: log.to_path_buf(),
        })
    }

    /// The process's name given at [`spawn`](Self::spawn).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its OS process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The child, e.g. to take its stdin.
    pub fn child_mut(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// Takes the piped stdout (see [`spawn`](Self::spawn)).
    pub fn take_stdout(&mut self) -> Result<ChildStdout> {
        self.child
            .as_mut()
            .and_then(|child| child.stdout.take())
            .with_context(|| format!("{}'s stdout is not piped (or was taken)", self.name))
    }

    /// Where its output goes.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        match self.child.as_mut() {
            Some(child) => matches!(child.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// Waits for the process to exit, failing after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<std::process::ExitStatus> {
        let child = self
            .child
            .as_mut()
            .with_context(|| format!("{} was already reaped", self.name))?;
        let status = tokio::time::timeout(timeout, child.wait())
            .await
            .with_context(|| format!("{} did not exit within {timeout:?}", self.name))?
            .with_context(|| format!("cannot wait for {}", self.name))?;
        self.child = None;
        Ok(status)
    }

    /// Waits (without a limit: race it against something else) for the process to
    /// exit; immediately when it already did.
    pub async fn exited(&mut self) -> Result<std::process::ExitStatus> {
        let child = self
            .child
            .as_mut()
            .with_context(|| format!("{} was already reaped", self.name))?;
        child
            .wait()
            .await
            .with_context(|| format!("cannot wait for {}", self.name))
    }

    /// Sends `signal` to the process only (not its group).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let Some(pid) = self.pid().and_then(|pid| i32::try_from(pid).ok()) else {
            bail!("{} is not running", self.name);
        };
        nix::sys::signal::kill(Pid::from_raw(pid), signal)
            .with_context(|| format!("cannot send {signal} to {}", self.name))
    }

    /// SIGKILLs the whole process group and reaps the leader.
    pub async fn kill_group(&mut self) {
        self.kill_group_now();
        if let Some(mut child) = self.child.take() {
            let _ = child.wait().await;
        }
    }

    /// SIGKILLs the whole group without waiting (for [`Drop`]).
    fn kill_group_now(&mut self) {
        if let Some(pgid) = self.pgid.take() {
            // The group may already be gone: nothing to report then.
            let _ = killpg(Pid::from_raw(pgid), Signal::SIGKILL);
        }
        if let Some(child) = self.child.as_mut() {
            let _ = child.start_kill();
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        self.kill_group_now();
    }
}

/// Reads `stdout` until a line for which `pick` returns `Some`, within `timeout`; the
/// rest of the output is then drained in the background so the process never blocks
/// on a full pipe. `what` names the wait in errors, `log` is shown when it fails.
pub async fn read_line_until<T>(
    stdout: ChildStdout,
    timeout: Duration,
    what: &str,
    log: &Path,
    mut pick: impl FnMut(&str) -> Option<T>,
) -> Result<T> {
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(timeout, async {
        while let Some(line) = lines.next_line().await? {
            if let Some(value) = pick(line.trim()) {
                return Ok::<_, std::io::Error>(Some(value));
            }
        }
        Ok(None)
    })
    .await;
    let value = match found {
        Ok(Ok(Some(value))) => value,
        Ok(Ok(None)) => bail!(
            "{what}: the process closed its output first; its log ({}):\n{}",
            log.display(),
            log_tail(log, 30)
        ),
        Ok(Err(err)) => return Err(err).with_context(|| format!("{what}: reading its output")),
        Err(_) => bail!(
            "{what}: nothing within {timeout:?}; its log ({}):\n{}",
            log.display(),
            log_tail(log, 30)
        ),
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(value)
}

/// The last `lines` lines of a file, or a note that it cannot be read.
pub fn log_tail(path: &Path, lines: usize) -> String {
    match std::fs::read(path) {
        Ok(bytes) => {
            let text = String::from_utf8_lossy(&bytes);
            let all: Vec<&str> = text.lines().collect();
            all[all.len().saturating_sub(lines)..].join("\n")
        }
        Err(err) => format!("({} cannot be read: {err})", path.display()),
    }
}

/// True when `program` is found in `PATH` (or is a path to a file).
pub fn on_path(program: &str) -> bool {
    if program.contains('/') {
        return Path::new(program).is_file();
    }
    std::env::var_os("PATH")
        .map(|path| std::env::split_paths(&path).any(|dir| dir.join(program).is_file()))
        .unwrap_or(false)
}

/// A TCP port that was free a moment ago on 127.0.0.1.
pub fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot bind 127.0.0.1:0")?;
    Ok(listener.local_addr().context("no local address")?.port())
}
