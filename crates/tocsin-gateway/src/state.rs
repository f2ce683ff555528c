//! The state shared by every request and connection.

use std::num::NonZeroU32;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::api::cache::Lookups;
use crate::api::login_guard::LoginGuard;
use crate::audit::{AuditSink, AuditWriter};
use crate::auth::Authenticator;
use crate::auth::password::HashGate;
use crate::clock::Clock;
use crate::config::Config;
use crate::hub::Hub;
use crate::store::Store;

/// Cheap to clone: everything is behind `Arc`s.
#[derive(Clone)]
pub struct AppState {
    /// The configuration in force.
    pub config: Arc<Config>,
    /// Durable storage.
    pub store: Arc<dyn Store>,
    /// Connections and fan-out.
    pub hub: Arc<Hub>,
    /// Bearer-token verification and issuing.
    pub auth: Arc<Authenticator>,
    /// Publishes per API key.
    pub publish_limiter: Arc<DefaultKeyedRateLimiter<String>>,
    /// API keys and publish targets recently read from the store (a short TTL).
    pub lookups: Arc<Lookups>,
    /// Cancelled when the gateway shuts down.
    pub shutdown: CancellationToken,
    /// Every WebSocket session task, so shutdown can wait for their close frames.
    pub sessions: TaskTracker,
    /// Login throttling per source, account and (account, source) failures.
    pub login_guard: Arc<LoginGuard>,
    /// The cap on password checks (argon2id) running at once.
    pub hash_gate: Arc<HashGate>,
    /// The clock of the scheduler and of deadline decisions.
    pub clock: Clock,
    /// Wakes the scheduler when a step was planned (it may be due before the one it
    /// sleeps towards).
    pub schedule_wake: Arc<Notify>,
    /// Wakes the webhook deliverer when an event was queued.
    pub webhook_wake: Arc<Notify>,
    /// Where connections report deliveries for the audit trail.
    pub audit: AuditSink,
    /// The task emptying `audit`, taken by `server::serve` to run it.
    pub audit_writer: Arc<Mutex<Option<AuditWriter>>>,
    /// The TLS acceptor and its certificate, with `[tls]` (set by `server::open`);
    /// `/readyz` reports its expiry warning.
    pub tls: Option<Arc<crate::listener::Tls>>,
    /// Renders `/metrics` (the process's one recorder).
    pub metrics: metrics_exporter_prometheus::PrometheusHandle,
    /// The `[metrics] listen` socket, bound by `server::open` (so a port in use stops
    /// the start before "listening on" is printed), taken by `server::serve`.
    pub metrics_listener: Arc<Mutex<Option<std::net::TcpListener>>>,
}

impl AppState {
    /// Assembles the state.
    pub fn new(
        config: Arc<Config>,
        store: Arc<dyn Store>,
        hub: Arc<Hub>,
        auth: Arc<Authenticator>,
        shutdown: CancellationToken,
    ) -> AppState {
        let per_second = NonZeroU32::new(config.http.publish_per_second).unwrap_or(NonZeroU32::MIN);
        let burst = NonZeroU32::new(config.http.publish_burst).unwrap_or(NonZeroU32::MIN);
        let quota = Quota::per_second(per_second).allow_burst(burst);
        let login = &config.login;
        let hash_gate = HashGate::new(
            login.max_concurrent_hashes,
            Duration::from_millis(login.hash_queue_wait_ms),
        );
        let login_guard = Arc::new(LoginGuard::new(login));
        let (audit, audit_writer) = crate::audit::channel(store.clone());
        AppState {
            config,
            store,
            hub,
            auth,
            publish_limiter: Arc::new(RateLimiter::keyed(quota)),
            lookups: Arc::new(Lookups::new()),
            shutdown,
            sessions: TaskTracker::new(),
            login_guard,
            hash_gate: Arc::new(hash_gate),
            clock: Clock::system(),
            schedule_wake: Arc::new(Notify::new()),
            webhook_wake: Arc::new(Notify::new()),
            audit,
            audit_writer: Arc::new(Mutex::new(Some(audit_writer))),
            tls: None,
            metrics: crate::metrics::install(),
            metrics_listener: Arc::new(Mutex::new(None)),
        }
    }
}
