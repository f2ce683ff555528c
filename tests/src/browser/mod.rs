//! A real browser for the web tests: Debian's Chromium, driven over W3C WebDriver by
//! Debian's chromedriver, with the client of [`crate::webdriver`] (reached through
//! `Deref`), and the harness's static page server ([`PageServer`]) that gives test
//! pages an origin.
//!
//! - [`Chromium::launch`]: chromedriver on a free port as a
//!   [`Supervised`](tocsin_harness::process::Supervised) child (killed with its
//!   group: chromedriver, Chromium and its helpers), a session with a fresh profile
//!   in a temporary directory, headless unless asked otherwise.
//! - [`ChromiumOptions::in_session`]: Chromium inside the harness's private X/D-Bus
//!   session (`DISPLAY`, `DBUS_SESSION_BUS_ADDRESS` on chromedriver, whose
//!   environment Chromium inherits), e.g. for web notifications reaching
//!   `org.freedesktop.Notifications`.
//!
//! A missing `chromium` or `chromedriver` fails the test and says to run `cargo xtask
//! setup`: a browser test that silently skips proves nothing.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::{Value, json};
use tocsin_harness::process::{Pipes, Supervised, free_port};
use tocsin_harness::session::REMOVED_ENV;

use crate::webdriver::{Screenshots, Session, driver_client, open_session, wait_ready};

pub use tocsin_harness::pages::{PageServer, PageServerBuilder};

/// Debian's Chromium (package `chromium`).
pub const CHROMIUM: &str = "/usr/bin/chromium";
/// Debian's chromedriver (package `chromium-driver`), of the same version.
pub const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// How long opening a session (starting Chromium) may take.
const SESSION_TIMEOUT: Duration = Duration::from_secs(60);

/// Chromium's flags, whatever the mode. The closed network here makes Chromium's
/// background services (component updates, sync, safe browsing lists, field trials)
/// retry refused connections forever; these turn them off.
const BASE_ARGS: &[&str] = &[
    // Root in a container has no user namespace for the sandbox.
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-dev-shm-usage",
    // Without a keyring prompt (the harness's session may have none).
    "--password-store=basic",
    "--window-size=1280,800",
];

/// How Chromium is launched.
#[derive(Clone, Debug)]
pub struct ChromiumOptions {
    /// `--headless=new` (the default); `false` needs a `DISPLAY` ([`Self::in_session`]).
    pub headless: bool,
    /// Environment for chromedriver, inherited by Chromium.
    pub env: Vec<(String, OsString)>,
    /// More Chromium flags.
    pub args: Vec<String>,
}

impl Default for ChromiumOptions {
    fn default() -> Self {
        ChromiumOptions {
            headless: true,
            env: Vec::new(),
            args: Vec::new(),
        }
    }
}

impl ChromiumOptions {
    /// Headless Chromium, alone.
    pub fn headless() -> ChromiumOptions {
        ChromiumOptions::default()
    }

    /// Chromium inside a private session, given its `envs()` (a
    /// [`PrivateSession`](tocsin_harness::session::PrivateSession)'s or a
    /// `DesktopSession`'s): its X display, session bus and runtime directory. Still
    /// headless unless [`Self::headful`].
    pub fn in_session(envs: Vec<(&'static str, OsString)>) -> ChromiumOptions {
        ChromiumOptions {
            env: envs
                .into_iter()
                .map(|(name, value)| (name.to_owned(), value))
                .collect(),
            ..ChromiumOptions::default()
        }
    }

    /// Shown on the session's X display instead of headless.
    pub fn headful(mut self) -> ChromiumOptions {
        self.headless = false;
        self
    }

    /// One more Chromium flag.
    pub fn arg(mut self, arg: impl Into<String>) -> ChromiumOptions {
        self.args.push(arg.into());
        self
    }

    /// Chromium's full argument list for a profile in `profile`.
    fn chromium_args(&self, profile: &Path) -> Vec<String> {
        let mut args: Vec<String> = BASE_ARGS.iter().map(|arg| (*arg).to_owned()).collect();
        if self.headless {
            args.push("--headless=new".to_owned());
        }
        args.push(format!("--user-data-dir={}", profile.display()));
        args.extend(self.args.iter().cloned());
        args
    }
}

/// `chromium` and `chromedriver`, or an error saying how to install them.
pub fn require_chromium() -> Result<()> {
    for (binary, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        anyhow::ensure!(
            Path::new(binary).is_file(),
            "{binary} is missing: run `cargo xtask setup` (it installs Debian's {package})"
        );
    }
    Ok(())
}

/// Chromium under chromedriver, with one WebDriver session; the session's commands
/// are [`Session`]'s. Everything stops when it is dropped (or [`Chromium::quit`]).
pub struct Chromium {
    /// chromedriver (its group holds Chromium and its helpers).
    driver: Supervised,
    /// The session.
    session: Session,
    /// The profile and chromedriver's log (kept when a test panics).
    dir: Option<tempfile::TempDir>,
    /// `http://127.0.0.1:PORT`.
    base: String,
}

impl std::ops::Deref for Chromium {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl Chromium {
    /// Starts chromedriver and opens a session (one tab on `about:blank`).
    pub async fn launch(options: &ChromiumOptions) -> Result<Chromium> {
        require_chromium()?;
        let dir = tempfile::Builder::new()
            .prefix("tocsin-chromium-")
            .tempdir()
            .context("a temporary directory for Chromium")?;
        let profile = dir.path().join("profile");
        std::fs::create_dir(&profile).context("Chromium's profile directory")?;
        let log = dir.path().join("chromedriver.log");
        let http = driver_client()?;

        // Free ports can be taken between the probe and the bind: try a few.
        let mut last_error = None;
        for _attempt in 0..3 {
            let port = free_port()?;
            let mut command = tokio::process::Command::new(CHROMEDRIVER);
            // Never the machine's own display, bus or keyring: only a session's,
            // when given.
            for name in REMOVED_ENV
                .iter()
                .chain(&["DISPLAY", "DBUS_SESSION_BUS_ADDRESS"])
            {
                command.env_remove(name);
            }
            command
                .arg(format!("--port={port}"))
                // Chromium's own stderr into the log too: what it says when a page,
                // the GPU or D-Bus fails.
                .arg("--enable-chrome-logs")
                .envs(options.env.iter().map(|(name, value)| (name, value)));
            let mut driver = Supervised::spawn("chromedriver", command, &log, Pipes::default())?;
            let base = format!("http://127.0.0.1:{port}");
            match wait_ready(&http, &base, &mut driver, "chromedriver").await {
                Ok(()) => {
                    let capabilities = json!({
                        "alwaysMatch": {
                            "browserName": "chrome",
                            "goog:chromeOptions": {
                                "binary": CHROMIUM,
                                "args": options.chromium_args(&profile),
                            },
                            "goog:loggingPrefs": {"browser": "ALL"},
                        }
                    });
                    let session = open_session(
                        &http,
                        &base,
                        capabilities,
                        SESSION_TIMEOUT,
                        Screenshots::WebDriver,
                        || {
                            format!(
                                "starting Chromium; chromedriver log:\n{}",
                                driver.log_tail(40)
                            )
                        },
                    )
                    .await?;
                    return Ok(Chromium {
                        driver,
                        session,
                        dir: Some(dir),
                        base,
                    });
                }
                Err(err) => {
                    driver.kill_group().await;
                    last_error = Some(err);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("chromedriver never started")))
    }

    /// chromedriver's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// chromedriver's log (with Chromium's stderr).
    pub fn log(&self) -> &Path {
        self.driver.log()
    }

    /// The last `lines` lines of that log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.driver.log_tail(lines)
    }

    /// The browser's version, as chromedriver reported it.
    pub fn version(&self) -> String {
        self.session.capabilities()["browserVersion"]
            .as_str()
            .unwrap_or_default()
            .to_owned()
    }

    /// Loads `url`, then runs `script` there (see [`Session::execute`]: a promise it
    /// returns is awaited) and returns its result; on an error, the console's
    /// messages are added to it.
    pub async fn run_on(&self, url: &str, script: &str, args: Vec<Value>) -> Result<Value> {
        self.navigate(url).await?;
        self.run(script, args).await
    }

    /// [`Session::execute`], with the console's messages added to an error.
    pub async fn run(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        match self.execute(script, args).await {
            Ok(value) => Ok(value),
            Err(err) => {
                let console = match self.console_log().await {
                    Ok(lines) => lines.join("\n"),
                    Err(log_err) => format!("(no console log: {log_err:#})"),
                };
                Err(err.context(format!("the browser console:\n{console}")))
            }
        }
    }

    /// Ends the session, then kills chromedriver and Chromium.
    pub async fn quit(mut self) -> Result<()> {
        let result = self.session.delete().await;
        self.driver.kill_group().await;
        result
    }

    /// The temporary directory (profile, log), while it exists.
    pub fn dir(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|dir| dir.path().to_owned())
    }
}

impl Drop for Chromium {
    fn drop(&mut self) {
        if std::thread::panicking() {
            let kept = self.dir.take().map(tempfile::TempDir::keep);
            eprintln!(
                "--- chromedriver + Chromium log ({}; directory kept: {kept:?}), last lines:\n{}\n---",
                self.driver.log().display(),
                self.driver.log_tail(60)
            );
        }
    }
}
