//! tocsin-client: the one implementation of Tocsin's client side. The desktop app and
//! the end-to-end tests both run it; `tocsin` (src/bin) is its terminal front end.
//!
//! # Layout
//! - [`account`]: signing a device in and out, and the account it is signed in with.
//! - [`engine`]: the background task and the app's handle to it.
//! - [`session`]: one WebSocket session (hello, replay, live, heartbeat, close).
//! - [`gateway`]: the gateway as the engine sees it (real, or channels in tests).
//! - [`events`]: what the engine tells the app (one typed stream).
//! - [`store`]: the local SQLite inbox, positions and outbox.
//! - [`api`]: the gateway's HTTP API (sign-in, refresh, history, publish).
//! - [`secrets`]: where the refresh token lives (OS secret store, 0600 file, memory).
//! - [`backoff`]: reconnect delays and what each close code means.
//! - [`clock`]: resume-from-sleep detection (wall clock vs monotonic clock).
//! - [`policy`]: which notifications deserve an OS toast.
//! - [`profile`]: where the client keeps its files, and who is signed in where.
//! - [`system_signals`]: network-change and sleep/resume nudges from the system bus.

pub mod account;
pub mod api;
pub mod backoff;
pub mod clock;
pub mod engine;
pub mod events;
pub mod gateway;
pub mod policy;
pub mod profile;
pub mod secrets;
pub mod session;
pub mod store;
pub mod system_signals;
