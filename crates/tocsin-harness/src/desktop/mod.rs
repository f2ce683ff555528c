//! The desktop tray app (`tocsin-desktop`, Tauri 2) run for real in a private desktop
//! session, observed the way the desktop shell and the user see it: what the end-to-end
//! desktop tests and the desktop benchmark share.
//!
//! # Layout
//! - [`session`]: [`crate::session`]'s private X/D-Bus session plus the fake
//!   notification server and tray watcher, a bus connection of the caller's own,
//!   screenshots, key presses, the app's WebKit processes.
//! - [`notifications`]: a fake `org.freedesktop.Notifications` server that records
//!   every `Notify` call and plays the user (invoke an action, dismiss).
//! - [`tray`]: a fake `org.kde.StatusNotifierWatcher`, and the registered tray item's
//!   properties, icon pixels and dbusmenu menu (clickable).
//! - [`app`]: how to start the app in a session, and the running app.
//! - [`wait`]: the tray's status line (live or not) and a poll under a deadline.

pub mod app;
pub mod notifications;
pub mod session;
pub mod tray;
pub mod wait;

pub use app::{AppOptions, DesktopApp};
pub use session::{DesktopSession, NotificationDaemon, SessionOptions};
