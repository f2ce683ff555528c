//! The end-to-end harness: the real `tocsin-gateway` binary on real sockets, with real
//! SQLite files in a temporary data directory per gateway. Processes, sessions and
//! the gateway itself are started by `tocsin-harness` (shared with the benchmarks and
//! the demo); this crate wraps them in the panicking API the tests are written
//! against and adds the protocol clients.
//!
//! # Layout
//! - [`binary`]: the gateway and client binaries (the harness finds or builds them).
//! - [`gateway`]: one gateway process (the harness's), panicking on its errors.
//! - [`http`]: the HTTP API (login, publish, history, unread, members).
//! - [`ws`]: a `tocsin.v1` WebSocket client whose every wait has a deadline.
//! - [`proxy`]: a TCP proxy that black-holes its link on demand.
//! - [`http_fault`]: an HTTP proxy that loses exactly the answer to one path.
//! - [`publisher`]: notifications to publish and a continuous publisher task.
//! - [`newer_kind`]: a stored notification rewritten as a newer gateway's kind.
//! - [`tokens`]: external-app JWTs, good and bad.
//! - [`desktop`]: the desktop tray app in a private X session, over D-Bus and WebDriver.
//! - [`webdriver`]: a minimal W3C WebDriver client, whichever driver is behind it.
//! - [`browser`]: headless Chromium through chromedriver, and a static page server,
//!   for web apps on another origin.
//!
//! Tests never sleep to dodge a race: they wait for an event with a timeout, or poll
//! an HTTP endpoint in a loop bounded by a deadline ([`poll_until`]).

pub mod binary;
pub mod browser;
pub mod client;
pub mod desktop;
pub mod gateway;
pub mod http;
pub mod http_fault;
pub mod newer_kind;
pub mod proxy;
pub mod publisher;
pub mod tokens;
pub mod webdriver;
pub mod ws;

use std::collections::BTreeMap;
use std::future::Future;
use std::time::Duration;

use tocsin_protocol::{Position, StreamName};

pub use gateway::{Gateway, GatewayOptions, SmallDisk, TenantSpec, UserFixture};
pub use ws::{ConnectOptions, Delivered, STEP, WsClient};

/// How often [`poll_until`] asks again.
pub const POLL_INTERVAL: Duration = Duration::from_millis(50);

/// Calls `probe` every [`POLL_INTERVAL`] until it returns `Some`, panicking with `what`
/// after `timeout`.
pub async fn poll_until<T, F, Fut>(timeout: Duration, what: &str, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: still not true after {timeout:?}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// A positions map with one stream.
pub fn position(stream: &str, epoch: &str, offset: u64) -> BTreeMap<StreamName, Position> {
    let name: StreamName = stream.parse().expect("a valid stream name");
    BTreeMap::from([(
        name,
        Position {
            epoch: epoch.to_owned(),
            offset,
        },
    )])
}

/// Parses a stream name, panicking on a typo in a test.
pub fn stream(name: &str) -> StreamName {
    name.parse().expect("a valid stream name")
}

/// Asserts `offsets` are exactly `first..=last`, one each, in order.
pub fn assert_consecutive(offsets: &[u64], first: u64, what: &str) {
    for (index, offset) in offsets.iter().enumerate() {
        let expected = first + index as u64;
        assert_eq!(
            *offset,
            expected,
            "{what}: offset #{index} is {offset}, expected {expected} (a gap or a duplicate); around it: {:?}",
            &offsets[index.saturating_sub(3)..(index + 3).min(offsets.len())]
        );
    }
}
