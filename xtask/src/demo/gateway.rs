//! The demo's gateway process: admin subcommands (run by the harness's
//! [`cli`], echoed here as shell lines), then `serve` as a child.
//!
//! The child is a [`Supervised`] process: in its own process group so that Ctrl-C
//! reaches only xtask, which then stops the gateway itself (SIGTERM, a graceful drain)
//! in a known order, and killed on drop, so an error or a panic in xtask never leaves
//! it behind.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{Result, bail};
use tocsin_harness::gateway::cli;
use tocsin_harness::process::{Pipes, Supervised};

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
        let stdout = cli::run(&self.binary, &self.data_dir, args, stdin).await?;
        // Some commands print nothing on stdout (their news is on stderr): "" then.
        let last_line = stdout.lines().map(str::trim).rfind(|line| !line.is_empty());
        Ok(last_line.unwrap_or_default().to_owned())
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
        // Without the gateway's own variables, and no colour escapes in the log file.
        let mut command = cli::command(&self.binary, &self.data_dir);
        command.args(["serve", "--listen", listen]);
        let pipes = Pipes {
            stdin: false,
            stdout: true,
        };
        let mut child = Supervised::spawn("tocsin-gateway", command, log_path, pipes)?;
        let what = format!("its `{LISTENING_PREFIX}URL` line");
        let url = child
            .read_line(&what, START_TIMEOUT, |line| {
                line.strip_prefix(LISTENING_PREFIX)
                    .map(|url| url.trim_end_matches('/').to_owned())
            })
            .await?;
        Ok(RunningGateway { child, url })
    }
}

/// A `serve` child that announced its URL.
#[derive(Debug)]
pub struct RunningGateway {
    /// The process, in a process group of its own so that Ctrl-C reaches only xtask;
    /// killed if this is dropped without [`RunningGateway::stop`].
    child: Supervised,
    /// The base URL it printed, e.g. `http://127.0.0.1:7850`.
    pub url: String,
}

impl RunningGateway {
    /// Asks the gateway to shut down gracefully (SIGTERM, the signal it drains on)
    /// and waits for it; kills it if it does not exit in time.
    pub async fn stop(mut self) -> Result<ExitStatus> {
        let (status, killed) = self.child.stop(STOP_TIMEOUT).await?;
        if killed {
            bail!("the gateway did not exit within {STOP_TIMEOUT:?} of SIGTERM; killed it");
        }
        Ok(status)
    }
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
