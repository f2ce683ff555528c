//! The demo's gateway process: admin subcommands, then `serve` as a child.
//!
//! The child is started in its own process group so that Ctrl-C reaches only xtask,
//! which then stops the gateway itself (SIGTERM, a graceful drain) in a known order.
//! It is also `kill_on_drop`, so an error or a panic in xtask never leaves it behind.

use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

/// The port a newcomer can remember; another is used when it is taken.
const PREFERRED_LISTEN: &str = "127.0.0.1:7850";
/// How long the gateway may take to bind and announce its URL.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long the gateway may take to drain after SIGTERM before it is killed.
const STOP_TIMEOUT: Duration = Duration::from_secs(10);
/// What `serve` prints on stdout once bound, before the URL.
const LISTENING_PREFIX: &str = "listening on ";

/// The `tocsin-gateway` binary pointed at one data directory.
#[derive(Debug, Clone)]
pub struct GatewayCli {
    /// The built binary.
    binary: PathBuf,
    /// The throwaway data directory (config, SQLite file, log).
    data_dir: PathBuf,
}

impl GatewayCli {
    /// The binary, run with `--data-dir data_dir`.
    pub fn new(binary: PathBuf, data_dir: PathBuf) -> Self {
        GatewayCli { binary, data_dir }
    }

    /// Runs an admin subcommand, echoing it as a shell line so a newcomer learns the
    /// CLI, and returns the last line of its stdout (where ids and keys are printed).
    pub async fn admin(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        println!("$ tocsin-gateway {}", shell_words(args));
        let mut child = self
            .command()
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .with_context(|| format!("could not start {}", self.binary.display()))?;
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            // A write error means the command exited without reading; its exit status
            // and stderr, checked below, say why better than "broken pipe" would.
            let _ = pipe.write_all(text.as_bytes()).await;
            // Dropping the pipe closes it, ending the gateway's read.
        }
        let output = child.wait_with_output().await?;
        if !output.status.success() {
            bail!(
                "`tocsin-gateway {}` failed ({}):\n{}",
                shell_words(args),
                output.status,
                String::from_utf8_lossy(&output.stderr).trim_end()
            );
        }
        let stdout = String::from_utf8_lossy(&output.stdout);
        let last_line = stdout.lines().rev().find(|line| !line.trim().is_empty());
        Ok(last_line.unwrap_or_default().trim().to_owned())
    }

    /// Starts `serve` on the preferred port, or on any free one when it is taken, and
    /// waits for its `listening on URL` line. The gateway's logs go to `log_path`.
    pub async fn serve(&self, log_path: &Path) -> Result<RunningGateway> {
        let listen = if std::net::TcpListener::bind(PREFERRED_LISTEN).is_ok() {
            PREFERRED_LISTEN
        } else {
            println!("{PREFERRED_LISTEN} is busy; the gateway takes any free port");
            "127.0.0.1:0"
        };
        println!("$ tocsin-gateway serve --listen {listen}");
        let log = std::fs::File::create(log_path)
            .with_context(|| format!("creating {}", log_path.display()))?;
        let mut command = self.command();
        command
            .args(["serve", "--listen", listen])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            // The log is a file: no colour escapes in it.
            .env("NO_COLOR", "1")
            .kill_on_drop(true);
        #[cfg(unix)]
        command.process_group(0);
        let mut child = command
            .spawn()
            .with_context(|| format!("could not start {}", self.binary.display()))?;
        let url = tokio::time::timeout(START_TIMEOUT, read_listening_url(&mut child))
            .await
            .with_context(|| {
                format!(
                    "the gateway did not print `{LISTENING_PREFIX}URL` within {START_TIMEOUT:?}"
                )
            })??;
        Ok(RunningGateway { child, url })
    }

    /// A command for the binary with the data directory set.
    fn command(&self) -> Command {
        let mut command = Command::new(&self.binary);
        command.arg("--data-dir").arg(&self.data_dir);
        command
    }
}

/// A `serve` child that announced its URL.
#[derive(Debug)]
pub struct RunningGateway {
    /// The process; killed if this is dropped without [`RunningGateway::stop`].
    child: Child,
    /// The base URL it printed, e.g. `http://127.0.0.1:7850`.
    pub url: String,
}

impl RunningGateway {
    /// Asks the gateway to shut down gracefully and waits for it; kills it if it does
    /// not exit in time.
    pub async fn stop(mut self) -> Result<ExitStatus> {
        request_shutdown(&mut self.child)?;
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(status) => Ok(status?),
            Err(_) => {
                self.child.kill().await?;
                bail!("the gateway did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed it");
            }
        }
    }
}

/// Sends SIGTERM, the signal the gateway drains on.
#[cfg(unix)]
fn request_shutdown(child: &mut Child) -> Result<()> {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;

    let Some(pid) = child.id() else {
        return Ok(()); // Already exited and reaped.
    };
    let pid = Pid::from_raw(i32::try_from(pid)?);
    // ESRCH (already gone) is fine: the wait that follows collects its status.
    let _ = kill(pid, Signal::SIGTERM);
    Ok(())
}

/// Without Unix signals, the only way to stop the child is to kill it.
#[cfg(not(unix))]
fn request_shutdown(child: &mut Child) -> Result<()> {
    Ok(child.start_kill()?)
}

/// Reads the child's stdout up to the `listening on URL` line, then keeps draining
/// it in the background so a chatty gateway can never block on a full pipe.
async fn read_listening_url(child: &mut Child) -> Result<String> {
    let stdout = child
        .stdout
        .take()
        .context("the gateway's stdout is piped")?;
    let mut lines = BufReader::new(stdout).lines();
    while let Some(line) = lines.next_line().await? {
        if let Some(url) = line.trim().strip_prefix(LISTENING_PREFIX) {
            let url = url.trim_end_matches('/').to_owned();
            tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
            return Ok(url);
        }
    }
    let status = child.wait().await?;
    bail!("the gateway exited ({status}) before printing `{LISTENING_PREFIX}URL`");
}

/// The last `count` lines of a log file, for an error report.
pub fn log_tail(path: &Path, count: usize) -> String {
    let Ok(text) = std::fs::read_to_string(path) else {
        return String::new();
    };
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(count)..].join("\n")
}

/// Arguments joined for display, quoting those a shell would split.
pub fn shell_words(args: &[&str]) -> String {
    args.iter()
        .map(|arg| {
            if arg.is_empty() || arg.contains(|c: char| c.is_whitespace() || "'\"$\\".contains(c)) {
                format!("'{}'", arg.replace('\'', r"'\''"))
            } else {
                (*arg).to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_quotes_what_a_shell_would_split() {
        assert_eq!(
            shell_words(&["tenant", "add", "dupont", "--name", "Cabinet Dupont"]),
            "tenant add dupont --name 'Cabinet Dupont'"
        );
        assert_eq!(shell_words(&["it's"]), r"'it'\''s'");
    }
}
