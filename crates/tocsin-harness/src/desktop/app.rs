//! The `tocsin-desktop` binary run inside a [`DesktopSession`]: how to start it
//! ([`AppOptions`]) and the running app ([`DesktopApp`]).
//!
//! CLI contract: `tocsin-desktop [--home DIR] [--hidden] [--server URL --email E
//! --password-stdin]` (the password is stdin's first line; it signs in at start
//! without the window). The UI language follows `LANG`.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::AsyncWriteExt;

use super::session::DesktopSession;
use super::tray::TrayItem;
use crate::process::{Pipes, Supervised};

/// The system tools every desktop session needs.
pub const SESSION_TOOLS: [&str; 2] = ["Xvfb", "dbus-daemon"];

/// Signs in at start (`--server --email --password-stdin`).
#[derive(Debug, Clone)]
pub struct SignIn {
    /// The gateway URL, e.g. `http://127.0.0.1:PORT`.
    pub server: String,
    /// The user's email.
    pub email: String,
    /// The password (written to stdin).
    pub password: String,
}

/// How to start the app.
#[derive(Debug, Clone)]
pub struct AppOptions {
    /// `--home`: its profile and local database.
    pub home: PathBuf,
    /// `--hidden`: no panel window at start.
    pub hidden: bool,
    /// Sign in at start.
    pub sign_in: Option<SignIn>,
    /// `LANG`, e.g. `en_US.UTF-8` or `fr_FR.UTF-8`.
    pub lang: String,
    /// Extra environment variables.
    pub env: Vec<(String, String)>,
    /// Extra arguments.
    pub args: Vec<String>,
}

impl AppOptions {
    /// Hidden, English, with `home`, not signed in.
    pub fn new(home: &Path) -> AppOptions {
        AppOptions {
            home: home.to_path_buf(),
            hidden: true,
            sign_in: None,
            lang: "en_US.UTF-8".to_owned(),
            env: Vec::new(),
            args: Vec::new(),
        }
    }

    /// Signs `email` in at start on `server`.
    pub fn signed_in(mut self, server: &str, email: &str, password: &str) -> AppOptions {
        self.sign_in = Some(SignIn {
            server: server.to_owned(),
            email: email.to_owned(),
            password: password.to_owned(),
        });
        self
    }

    /// With the panel window open at start.
    pub fn shown(mut self) -> AppOptions {
        self.hidden = false;
        self
    }

    /// In this `LANG`.
    pub fn lang(mut self, lang: &str) -> AppOptions {
        self.lang = lang.to_owned();
        self
    }

    /// The command-line arguments.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec!["--home".to_owned(), self.home.display().to_string()];
        if self.hidden {
            args.push("--hidden".to_owned());
        }
        if let Some(sign_in) = &self.sign_in {
            args.extend([
                "--server".to_owned(),
                sign_in.server.clone(),
                "--email".to_owned(),
                sign_in.email.clone(),
                "--password-stdin".to_owned(),
            ]);
        }
        args.extend(self.args.iter().cloned());
        args
    }

    /// The environment on top of the session's.
    pub fn env(&self) -> Vec<(String, String)> {
        let mut env = vec![
            ("LANG".to_owned(), self.lang.clone()),
            ("RUST_BACKTRACE".to_owned(), "1".to_owned()),
            ("NO_COLOR".to_owned(), "1".to_owned()),
        ];
        env.extend(self.env.iter().cloned());
        env
    }

    /// Variables removed so `LANG` decides the language and `--home` the profile.
    pub const REMOVED_ENV: [&'static str; 5] = [
        "LC_ALL",
        "LC_MESSAGES",
        "LANGUAGE",
        crate::env::DESKTOP_HOME,
        crate::env::CLIENT_HOME,
    ];
}

/// A running `tocsin-desktop` started directly (not through WebDriver).
pub struct DesktopApp {
    /// The process (its group holds WebKit's helpers).
    process: Supervised,
}

impl DesktopApp {
    /// Starts `binary` inside `session` with `options`; writes the password to stdin
    /// when signing in at start.
    pub async fn start(
        session: &DesktopSession,
        binary: &Path,
        options: &AppOptions,
    ) -> Result<DesktopApp> {
        let logs = session.logs_dir();
        let index = std::fs::read_dir(&logs)
            .map(|entries| entries.count())
            .unwrap_or(0);
        let log = logs.join(format!("tocsin-desktop-{index}.log"));
        let mut command = session.command(binary);
        for name in AppOptions::REMOVED_ENV {
            command.env_remove(name);
        }
        command.args(options.args()).envs(options.env());
        let mut process = Supervised::spawn(
            "tocsin-desktop",
            command,
            &log,
            Pipes {
                stdin: options.sign_in.is_some(),
                stdout: false,
            },
        )?;
        if let Some(sign_in) = &options.sign_in {
            let mut stdin = process
                .child_mut()
                .and_then(|child| child.stdin.take())
                .context("the app's stdin is piped")?;
            stdin
                .write_all(format!("{}\n", sign_in.password).as_bytes())
                .await
                .context("the password can be written to the app's stdin")?;
            drop(stdin);
        }
        Ok(DesktopApp { process })
    }

    /// Its process id.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// True while it runs.
    pub fn is_running(&mut self) -> bool {
        self.process.is_running()
    }

    /// Its log (stdout and stderr).
    pub fn log(&self) -> &Path {
        self.process.log()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// Waits for the app's tray item: the first one registered after `after`
    /// registrations (0 for a session's first app), failing at once if the app exits
    /// or panics first (with its log).
    pub async fn wait_tray(
        &mut self,
        session: &DesktopSession,
        after: usize,
        timeout: Duration,
    ) -> Result<TrayItem> {
        let watcher = session.tray()?;
        let log = self.log().to_path_buf();
        let panicked = async {
            // A panic on the GTK main thread can leave the process alive but stuck.
            loop {
                let text = std::fs::read_to_string(&log).unwrap_or_default();
                if text.contains("panicked at") {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        };
        tokio::select! {
            item = watcher.wait_item_after(after, timeout) => item,
            () = panicked => bail!(
                "tocsin-desktop panicked before registering its tray item; its log ({}):\n{}",
                self.log().display(),
                self.log_tail(60)
            ),
            status = self.process.exited() => {
                let status = status?;
                bail!(
                    "tocsin-desktop exited ({status}) before registering its tray item; its log ({}):\n{}",
                    self.log().display(),
                    self.log_tail(40)
                )
            }
        }
    }

    /// Waits for it to exit.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        self.process.wait_exit(timeout).await
    }

    /// SIGKILLs it and everything it started.
    pub async fn kill(&mut self) {
        self.process.kill_group().await;
    }
}

impl Drop for DesktopApp {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- tocsin-desktop log ({}), last lines:\n{}\n---",
                self.process.log().display(),
                self.process.log_tail(60)
            );
        }
    }
}
