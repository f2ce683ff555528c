//! The desktop harness: `tocsin-desktop` (Tauri 2 tray app) run for real in a private
//! desktop session, observed the way the desktop shell and the user see it.
//!
//! # Layout
//! The session, the fake notification server and tray watcher, and starting the app
//! are [`tocsin_harness::desktop`]'s (the desktop benchmark drives them too); these
//! modules re-export them under the names the tests use.
//! - [`session`]: a private X/D-Bus session with the fakes, a bus connection of the
//!   test's own, screenshots and key presses.
//! - [`notifications`]: the fake `org.freedesktop.Notifications` server, checked here
//!   against libnotify.
//! - [`tray`]: the fake `org.kde.StatusNotifierWatcher` and the tray item's view.
//! - [`webdriver`]: tauri-driver + WebKitWebDriver launching the app, driven by the
//!   W3C client of [`crate::webdriver`].
//! - [`app`]: where the binary is and when tests skip; starting it (re-exported).
//! - [`artifacts`]: where screenshots go.
//! - [`fixtures`]: notifications the desktop tests publish.
//! - [`opener`]: a fake `xdg-open` that records the links the app opens.
//! - [`system_bus`]: a stand-in system bus with a fake logind (resume from sleep).
//! - [`steps`]: steps the desktop tests share (start signed in, wait until live).
//!
//! Helper processes are [`tocsin_harness::process::Supervised`]: killed with their
//! whole process group.
//!
//! Every wait is "for the event, with a timeout", or a poll of a condition under an
//! overall deadline when there is no event to wait for (D-Bus properties, the DOM).

pub mod app;
pub mod artifacts;
pub mod fixtures;
pub mod notifications;
pub mod opener;
pub mod session;
pub mod steps;
pub mod system_bus;
pub mod tray;
pub mod webdriver;

use std::future::Future;
use std::time::Duration;

pub use app::{AppOptions, DesktopApp, desktop_binary, require_desktop, skip_without_tools};
pub use session::{DesktopSession, NotificationDaemon, SessionOptions};

/// Runs a test's body under an overall `limit`, panicking with the error (and its
/// context chain) when it fails or times out. Declare the session, the app and the
/// gateway *outside* the body: they are then dropped while the panic unwinds, which
/// keeps their directories and prints their logs.
pub async fn within(limit: Duration, body: impl Future<Output = anyhow::Result<()>>) {
    match tokio::time::timeout(limit, body).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => panic!("{err:?}"),
        Err(_) => panic!("the test did not finish within its overall limit of {limit:?}"),
    }
}
