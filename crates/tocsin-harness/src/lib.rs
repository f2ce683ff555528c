//! The real parts the tests, the benchmarks and the demo start. Everything here
//! returns errors instead of panicking, so a benchmark or the demo can explain what
//! is missing, and the end-to-end tests turn the error into their failure message.
//!
//! Tests that need a part call it and fail when it cannot start: a missing
//! PostgreSQL, Xvfb or dbus-daemon is never a silent skip (`cargo xtask setup`
//! installs them).
//!
//! # Layout
//! - [`env`]: every environment variable and default path the callers read.
//! - [`process`]: supervised child processes (own process group, killed on drop,
//!   graceful stop, log file and its tail, announcements read from stdout).
//! - [`session`]: the private X/D-Bus session (Xvfb, a bus without activation,
//!   optionally gnome-keyring and dunst).
//! - [`desktop`]: the desktop app in a [`session`], with the fake notification
//!   server and tray watcher, as the tests and the desktop benchmark drive it.
//! - [`tokens`]: external-app JWTs, as the firm's identity provider mints them.
//! - [`binary`]: where the workspace's binaries are (the gateway built when stale).
//! - [`gateway`]: one gateway process: CLI fixtures, config, serve, kill, restart,
//!   another node on the same database, log tails.
//! - [`postgres`]: a throwaway PostgreSQL cluster.
//! - [`haproxy`]: Debian's HAProxy in front of gateway nodes, as OPERATIONS.md
//!   configures it.
//! - [`pages`]: a static page server, the origin of a web app (the browser tests'
//!   pages, the demo's web SDK examples).

pub mod binary;
pub mod desktop;
pub mod env;
pub mod gateway;
pub mod haproxy;
pub mod pages;
pub mod postgres;
pub mod process;
pub mod session;
pub mod tokens;
