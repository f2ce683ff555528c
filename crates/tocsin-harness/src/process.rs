//! Supervised child processes: each leads a process group of its own, so stopping it
//! also stops what it started (WebKitWebDriver and the app under tauri-driver,
//! WebKit's helper processes under the app), and a Ctrl-C in the terminal reaches the
//! parent only. Dropping a [`Supervised`] SIGKILLs the whole group, so an error or a
//! panic in a test, a benchmark or the demo never leaves a process behind. Output goes
//! to a log file whose tail errors quote.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

/// How many log lines an error message quotes.
const TAIL_LINES: usize = 30;

/// Which standard streams [`Supervised::spawn`] pipes to the caller; the others go to
/// the log file, stdin to `/dev/null`.
#[derive(Debug, Clone, Copy, Default)]
pub struct Pipes {
    /// Pipe stdin, to write a password (gnome-keyring) or a token (the desktop app).
    pub stdin: bool,
    /// Pipe stdout, to read what the process announces (a display number, a bus
    /// address, the address a gateway listens on).
    pub stdout: bool,
}

/// A child process leading its own process group, its stderr (and stdout, unless
/// piped) appended to a log file.
#[derive(Debug)]
pub struct Supervised {
    /// What it is, for messages (`Xvfb`, `dunst`, `tocsin-gateway`).
    name: String,
    /// The process; `None` once it was reaped by [`Supervised::kill_group`] or
    /// [`Supervised::wait_exit`].
    child: Option<Child>,
    /// Its process group (its pid at start); `None` once the group was killed, so a
    /// recycled group id is never signalled.
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
        let stdin = if pipes.stdin {
            Stdio::piped()
        } else {
            Stdio::null()
        };
        command
            .stdin(stdin)
            .stdout(stdout)
            .stderr(Stdio::from(file))
            .process_group(0)
            .kill_on_drop(true);
        let program = command
            .as_std()
            .get_program()
            .to_string_lossy()
            .into_owned();
        let child = command.spawn().with_context(|| {
            format!("cannot start {name} (`{program}`): is it installed? `cargo xtask setup` installs what the harness runs")
        })?;
        let pgid = child.id().and_then(|pid| i32::try_from(pid).ok());
        Ok(Supervised {
            name: name.to_owned(),
            child: Some(child),
            pgid,
            log: log.to_path_buf(),
        })
    }

    /// The name given at [`spawn`](Self::spawn).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its OS process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.as_ref().and_then(Child::id)
    }

    /// The child itself, while it was not reaped.
    pub fn child_mut(&mut self) -> Option<&mut Child> {
        self.child.as_mut()
    }

    /// Takes the piped stdin (once; see [`Pipes`]).
    pub fn take_stdin(&mut self) -> Result<ChildStdin> {
        self.child
            .as_mut()
            .and_then(|child| child.stdin.take())
            .with_context(|| format!("{}'s stdin is not piped (or was taken)", self.name))
    }

    /// Takes the piped stdout (once; see [`Pipes`]).
    pub fn take_stdout(&mut self) -> Result<ChildStdout> {
        self.child
            .as_mut()
            .and_then(|child| child.stdout.take())
            .with_context(|| format!("{}'s stdout is not piped (or was taken)", self.name))
    }

    /// Reads the piped stdout until a line `pick` accepts, within `timeout`; see
    /// [`read_line_until`].
    pub async fn read_line<T>(
        &mut self,
        what: &str,
        timeout: Duration,
        pick: impl FnMut(&str) -> Option<T>,
    ) -> Result<T> {
        let stdout = self.take_stdout()?;
        let what = format!("{} ({what})", self.name);
        read_line_until(stdout, timeout, &what, &self.log, pick).await
    }

    /// Where its output goes.
    pub fn log(&self) -> &Path {
        &self.log
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        log_tail(&self.log, lines)
    }

    /// The last lines of its log as a block to append to an error message.
    pub fn tail(&self) -> String {
        format!(
            "\n--- last lines of {} ({}) ---\n{}",
            self.name,
            self.log.display(),
            self.log_tail(TAIL_LINES)
        )
    }

    /// True while the process has not exited.
    pub fn is_running(&mut self) -> bool {
        matches!(self.try_exited(), Ok(None))
    }

    /// The process, while it was not reaped.
    fn live_child(&mut self) -> Result<&mut Child> {
        let name = &self.name;
        self.child
            .as_mut()
            .with_context(|| format!("{name} was already reaped"))
    }

    /// `Some(status)` once the process has exited (without waiting).
    pub fn try_exited(&mut self) -> Result<Option<ExitStatus>> {
        let name = self.name.clone();
        let child = self.live_child()?;
        child
            .try_wait()
            .with_context(|| format!("cannot ask whether {name} exited"))
    }

    /// Waits for the process to exit, failing after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let name = self.name.clone();
        let child = self.live_child()?;
        let status = tokio::time::timeout(timeout, child.wait())
            .await
            .with_context(|| format!("{name} did not exit within {timeout:?}"))?
            .with_context(|| format!("cannot wait for {name}"))?;
        self.child = None;
        Ok(status)
    }

    /// Waits (without a limit: race it against something else) for the process to
    /// exit; at once when it already did.
    pub async fn exited(&mut self) -> Result<ExitStatus> {
        let name = self.name.clone();
        let child = self.live_child()?;
        child
            .wait()
            .await
            .with_context(|| format!("cannot wait for {name}"))
    }

    /// Sends `signal` to the process only, not its group (the gateway's SIGHUP, a
    /// SIGKILL that must leave the group's other members alone).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        let Some(pid) = self.pid().and_then(|pid| i32::try_from(pid).ok()) else {
            bail!("{} is not running", self.name);
        };
        kill(Pid::from_raw(pid), signal)
            .with_context(|| format!("cannot send {signal} to {}", self.name))
    }

    /// SIGTERM to the group, then SIGKILL when the leader has not exited within
    /// `grace`. Returns its exit status and whether it had to be killed; whatever the
    /// group still holds afterwards is killed too.
    pub async fn stop(&mut self, grace: Duration) -> Result<(ExitStatus, bool)> {
        let name = self.name.clone();
        let Some(child) = self.child.as_mut() else {
            bail!("{name} was already reaped");
        };
        let outcome = match child.try_wait() {
            Ok(Some(status)) => Ok((status, false)),
            Ok(None) => {
                if let Some(pgid) = self.pgid {
                    // ESRCH (the group is gone) is fine: the wait collects the status.
                    let _ = killpg(Pid::from_raw(pgid), Signal::SIGTERM);
                }
                match tokio::time::timeout(grace, child.wait()).await {
                    Ok(status) => status
                        .map(|status| (status, false))
                        .with_context(|| format!("cannot wait for {name}")),
                    Err(_) => {
                        let _ = child.start_kill();
                        child
                            .wait()
                            .await
                            .map(|status| (status, true))
                            .with_context(|| format!("cannot wait for {name} after SIGKILL"))
                    }
                }
            }
            Err(err) => Err(err).with_context(|| format!("cannot ask whether {name} exited")),
        };
        self.kill_group_now();
        self.child = None;
        outcome
    }

    /// SIGKILLs the whole process group and reaps the leader.
    pub async fn kill_group(&mut self) {
        self.kill_group_now();
        if let Some(mut child) = self.child.take() {
            // A kill cannot fail in a way worth reporting here: the process is gone.
            let _ = child.wait().await;
        }
    }

    /// SIGKILLs the whole group without waiting (what [`Drop`] does).
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
        // The group may outlive its leader (WebKit's helpers): kill the group, not
        // only the child (which `kill_on_drop` kills anyway).
        self.kill_group_now();
    }
}

/// Reads `stdout` until a line for which `pick` returns `Some`, within `timeout`; the
/// rest of the output is then drained in the background so the process never blocks
/// on a full pipe. `what` names the wait in errors, whose text quotes `log`'s tail.
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
            log_tail(log, TAIL_LINES)
        ),
        Ok(Err(err)) => return Err(err).with_context(|| format!("{what}: reading its output")),
        Err(_) => bail!(
            "{what}: nothing within {timeout:?}; its log ({}):\n{}",
            log.display(),
            log_tail(log, TAIL_LINES)
        ),
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    Ok(value)
}

/// The last `lines` lines of a file, or a note saying why it cannot be read (this
/// goes into error messages, which must not fail themselves).
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_log_tail_keeps_the_last_lines_and_never_fails() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("log");
        std::fs::write(&path, "one\ntwo\nthree\n")?;
        assert_eq!(log_tail(&path, 2), "two\nthree");
        assert_eq!(log_tail(&path, 10), "one\ntwo\nthree");
        assert!(log_tail(&dir.path().join("missing"), 2).contains("cannot be read"));
        Ok(())
    }

    #[tokio::test]
    async fn a_group_is_stopped_gracefully_and_its_announcement_read() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let mut command = Command::new("sh");
        command.args(["-c", "echo ready 42; exec sleep 30"]);
        let mut child = Supervised::spawn(
            "sh",
            command,
            &dir.path().join("sh.log"),
            Pipes {
                stdin: false,
                stdout: true,
            },
        )?;
        let number = child
            .read_line("its number", Duration::from_secs(10), |line| {
                line.strip_prefix("ready ")?.parse::<u32>().ok()
            })
            .await?;
        assert_eq!(number, 42);
        assert!(child.is_running());
        let (_status, killed) = child.stop(Duration::from_secs(10)).await?;
        assert!(!killed, "sleep stops on SIGTERM");
        Ok(())
    }

    #[tokio::test]
    async fn a_missing_program_is_an_error_naming_the_setup() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let command = Command::new("tocsin-no-such-program");
        let Err(err) = Supervised::spawn(
            "nothing",
            command,
            &dir.path().join("x.log"),
            Pipes::default(),
        ) else {
            bail!("a missing program started");
        };
        assert!(format!("{err:#}").contains("cargo xtask setup"));
        Ok(())
    }
}
