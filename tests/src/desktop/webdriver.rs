//! The panel's webview driven over W3C WebDriver: `tauri-driver` (with Debian's
//! `WebKitWebDriver` as the native driver) launches the app; the commands (elements
//! by CSS, clicks, text, typing, scripts, screenshots of the X screen) are the
//! driver-independent client's, [`crate::webdriver`], reached through `Deref`.
//!
//! How the app is launched (read from tauri-driver 2.1's source): `tauri:options`
//! `{application, args}` becomes `webkitgtk:browserOptions {binary, args}`, and
//! WebKitWebDriver starts `binary args…` with **its own environment** — which is
//! tauri-driver's. So the app's environment (`LANG`, the session's `DISPLAY` and bus)
//! is set on tauri-driver, one tauri-driver per app; its stdin is not the test's
//! (no `--password-stdin` here: sign in through the form). tauri-driver, the native
//! driver, the app and WebKit's processes share one process group, killed together.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use super::app::{AppOptions, desktop_required, require_desktop};
use super::session::DesktopSession;
use crate::webdriver::{Screenshots, Session, driver_client, open_session, wait_ready};
use tocsin_harness::process::{Pipes, Supervised, free_port, on_path};

// The names the desktop tests import from here.
pub use crate::webdriver::{ELEMENT_KEY, Element, WebDriverError, is_webdriver_error, testid};

/// Debian's WebKitGTK WebDriver.
pub const NATIVE_DRIVER: &str = "/usr/bin/WebKitWebDriver";
/// How long creating a session (starting the app and its webview) may take.
const SESSION_TIMEOUT: Duration = Duration::from_secs(90);

/// The `tauri-driver` binary: on `PATH`, else `~/.cargo/bin/tauri-driver`.
pub fn tauri_driver_binary() -> Option<PathBuf> {
    if on_path("tauri-driver") {
        return Some(PathBuf::from("tauri-driver"));
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))?;
    let path = home.join("bin").join("tauri-driver");
    path.is_file().then_some(path)
}

/// The desktop binary for a WebDriver test, or `None` after printing why it is
/// skipped (no binary, no tauri-driver, no WebKitWebDriver); panics instead when
/// `TOCSIN_REQUIRE_DESKTOP=1`.
pub fn require_webdriver(test: &str) -> Option<PathBuf> {
    let binary = require_desktop(test, &[NATIVE_DRIVER])?;
    if tauri_driver_binary().is_some() {
        return Some(binary);
    }
    let reason = "tauri-driver is not installed (cargo install tauri-driver --locked)";
    assert!(
        !desktop_required(),
        "{test}: TOCSIN_REQUIRE_DESKTOP=1 but {reason}"
    );
    eprintln!("SKIPPED {test}: {reason} (set TOCSIN_REQUIRE_DESKTOP=1 to fail instead)");
    None
}

/// The app, launched by tauri-driver, and a WebDriver session on its webview; the
/// session's commands are [`Session`]'s.
pub struct WebDriver {
    /// tauri-driver (its group holds WebKitWebDriver, the app and WebKit).
    driver: Supervised,
    /// The session on the panel's webview.
    session: Session,
    /// `http://127.0.0.1:PORT`.
    base: String,
}

impl std::ops::Deref for WebDriver {
    type Target = Session;

    fn deref(&self) -> &Session {
        &self.session
    }
}

impl WebDriver {
    /// Starts tauri-driver inside `session` with the app's environment and opens a
    /// session on `binary` launched with `options`' arguments (the app must show its
    /// panel at start: not `--hidden`).
    pub async fn launch(
        session: &DesktopSession,
        binary: &Path,
        options: &AppOptions,
    ) -> Result<WebDriver> {
        let tauri_driver = tauri_driver_binary()
            .context("tauri-driver is not installed (cargo install tauri-driver --locked)")?;
        let application = std::fs::canonicalize(binary)
            .with_context(|| format!("{} does not exist", binary.display()))?;
        let logs = session.logs_dir();
        let index = std::fs::read_dir(&logs)
            .map(|entries| entries.count())
            .unwrap_or(0);
        let log = logs.join(format!("tauri-driver-{index}.log"));
        let http = driver_client()?;

        // Free ports can be taken between the probe and the bind: try a few pairs.
        let mut last_error = None;
        for _attempt in 0..3 {
            let port = free_port()?;
            let native_port = free_port()?;
            let mut command = session.command(&tauri_driver);
            for name in AppOptions::REMOVED_ENV {
                command.env_remove(name);
            }
            command
                .args(["--port", &port.to_string()])
                .args(["--native-port", &native_port.to_string()])
                .args(["--native-driver", NATIVE_DRIVER])
                .envs(options.env());
            let mut driver = Supervised::spawn("tauri-driver", command, &log, Pipes::default())?;
            let base = format!("http://127.0.0.1:{port}");
            match wait_ready(&http, &base, &mut driver, "tauri-driver").await {
                Ok(()) => {
                    let capabilities = json!({
                        "alwaysMatch": {
                            "tauri:options": {
                                "application": application,
                                "args": options.args(),
                            }
                        }
                    });
                    let screenshots = Screenshots::XScreen {
                        display: session.display().to_owned(),
                    };
                    let webview = open_session(
                        &http,
                        &base,
                        capabilities,
                        SESSION_TIMEOUT,
                        screenshots,
                        || {
                            format!(
                                "opening a WebDriver session on {} (is the panel shown at \
                                 start, and the UI embedded in the binary?); tauri-driver \
                                 log:\n{}",
                                application.display(),
                                driver.log_tail(40)
                            )
                        },
                    )
                    .await?;
                    return Ok(WebDriver {
                        driver,
                        session: webview,
                        base,
                    });
                }
                Err(err) => {
                    driver.kill_group().await;
                    last_error = Some(err);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("tauri-driver never started")))
    }

    /// tauri-driver's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// tauri-driver's log (the app's and WebKit's output go there too).
    pub fn log(&self) -> &Path {
        self.driver.log()
    }

    /// The last `lines` lines of that log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.driver.log_tail(lines)
    }

    /// Ends the WebDriver session, then kills tauri-driver and everything it started.
    pub async fn quit(mut self) -> Result<()> {
        let result = self.session.delete().await;
        self.driver.kill_group().await;
        result
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- tauri-driver + app log ({}), last lines:\n{}\n---",
                self.driver.log().display(),
                self.driver.log_tail(60)
            );
        }
    }
}
