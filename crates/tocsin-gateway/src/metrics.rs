//! Prometheus metrics: every name the gateway exports, with its help text and labels,
//! lives here, so `/metrics` is documented in one place (docs/OPERATIONS.md lists the
//! same). Call sites use the small functions below, never a metric name.
//!
//! The `metrics` facade with one process-wide recorder (`metrics-exporter-prometheus`,
//! rendered in the classic text format): a gateway is one process, and the writer
//! thread, the scheduler and the sessions all record without a handle passed around.
//! A recorder installed twice (tests opening several gateways in one process) keeps the
//! first; recording before installation is a no-op.

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{
    Counter, Histogram, Unit, counter, describe_counter, describe_gauge, describe_histogram, gauge,
    histogram,
};
use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

const CONNECTIONS_OPEN: &str = "tocsin_connections_open";
const CONNECTS: &str = "tocsin_connects_total";
const DISCONNECTS: &str = "tocsin_disconnects_total";
const RESUMES: &str = "tocsin_resumes_total";
const PUBLISHES: &str = "tocsin_publishes_total";
const RETRACTIONS: &str = "tocsin_retractions_total";
const DELIVERIES: &str = "tocsin_deliveries_total";
const DELIVERY_LATENCY: &str = "tocsin_delivery_latency_seconds";
const WRITER_BATCH: &str = "tocsin_writer_batch_commands";
const WRITER_COMMIT: &str = "tocsin_writer_commit_seconds";
const SLOW_CONSUMERS: &str = "tocsin_slow_consumer_disconnects_total";
const REFUSALS: &str = "tocsin_refusals_total";
const AUTH_FAILURES: &str = "tocsin_auth_failures_total";
const SCHEDULER_LAG: &str = "tocsin_scheduler_lag_seconds";
const SCHEDULER_STEPS: &str = "tocsin_scheduler_steps_total";
const WEBHOOK_PENDING: &str = "tocsin_webhook_outbox_pending";
const WEBHOOK_ATTEMPTS: &str = "tocsin_webhook_attempts_total";
const STORE_WRITABLE: &str = "tocsin_store_writable";
const BUILD_INFO: &str = "tocsin_build_info";
const CLUSTER_LISTENING: &str = "tocsin_cluster_listening";
const CLUSTER_EVENTS: &str = "tocsin_cluster_events_total";
const CLUSTER_CATCH_UPS: &str = "tocsin_cluster_catch_ups_total";

/// Upper bounds of the latency histograms, in seconds: a LAN delivery takes ~1 ms, a
/// commit with fsync 1–10 ms; the tail is what an alert looks at.
const LATENCY_BUCKETS: &[f64] = &[
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0,
];
/// Commands per writer commit (one commit takes up to 256).
const BATCH_BUCKETS: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0];
/// How late a scheduled step is applied: normally within a second; minutes after a
/// restart or a full disk.
const LAG_BUCKETS: &[f64] = &[0.1, 0.5, 1.0, 5.0, 30.0, 60.0, 300.0, 3600.0];

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The handles of what is recorded once per delivery, looked up once: the macros hash
/// the name and labels and search the registry on every call, and a fan-out delivery
/// costs only ~2 µs in all (docs/BENCHMARKS.md).
struct Hot {
    deliveries_live: Counter,
    deliveries_store: Counter,
    latency: Histogram,
}

static HOT: OnceLock<Hot> = OnceLock::new();

/// Installs the process's recorder (once) and returns what renders it.
pub fn install() -> PrometheusHandle {
    HANDLE
        .get_or_init(|| {
            let builder = build().unwrap_or_else(|_| PrometheusBuilder::new());
            // Refused only when another recorder is installed already: then this
            // handle renders nothing, and the log says why.
            let handle = builder.install_recorder().unwrap_or_else(|err| {
                tracing::warn!(error = %err, "metrics recorder not installed");
                PrometheusBuilder::new().build_recorder().handle()
            });
            describe();
            gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
            let _ = HOT.set(Hot {
                deliveries_live: counter!(DELIVERIES, "source" => "live"),
                deliveries_store: counter!(DELIVERIES, "source" => "store"),
                latency: histogram!(DELIVERY_LATENCY),
            });
            handle
        })
        .clone()
}

/// The recorder's buckets (an error only for an empty list, and none is empty).
fn build() -> Result<PrometheusBuilder, BuildError> {
    PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Full(DELIVERY_LATENCY.into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(WRITER_COMMIT.into()), LATENCY_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(WRITER_BATCH.into()), BATCH_BUCKETS)?
        .set_buckets_for_metric(Matcher::Full(SCHEDULER_LAG.into()), LAG_BUCKETS)
}

fn describe() {
    describe_gauge!(
        CONNECTIONS_OPEN,
        "Open WebSocket connections, by firm (tenant)."
    );
    describe_counter!(CONNECTS, "WebSocket connections signed in and registered.");
    describe_counter!(
        RETRACTIONS,
        "Notifications retracted by their firm, by result: retracted (stored, clients told), withdrawn (a scheduled publish never sent), already (a repeated call)."
    );
    describe_counter!(
        DISCONNECTS,
        "WebSocket connections ended, by close code (gone: the peer vanished without a close)."
    );
    describe_counter!(
        RESUMES,
        "Reconnects that sent positions: recovered=false means a stream's position was lost and the client rebuilds it."
    );
    describe_counter!(
        PUBLISHES,
        "Notifications published through the API, by kind and result (stored, duplicate, scheduled); refusals are in tocsin_refusals_total."
    );
    describe_counter!(
        DELIVERIES,
        "Notifications written to a WebSocket, by source (live, or store: replays and gaps)."
    );
    describe_histogram!(
        DELIVERY_LATENCY,
        Unit::Seconds,
        "From a live notification's commit to its write on a socket."
    );
    describe_histogram!(
        WRITER_BATCH,
        Unit::Count,
        "Commands applied per storage commit."
    );
    describe_histogram!(
        WRITER_COMMIT,
        Unit::Seconds,
        "Duration of a storage commit (fsync included)."
    );
    describe_counter!(
        SLOW_CONSUMERS,
        "Connections closed with 4001 because they did not read their queue."
    );
    describe_counter!(
        REFUSALS,
        "Requests, actions and connections refused, by error code (rate_limited, too_large, unauthorized, …; for connections: too_many_connections, handshake_timeout, tls_handshake_failed, plain_http_on_tls) and surface (http, websocket, connection)."
    );
    describe_counter!(
        AUTH_FAILURES,
        "Failed authentications, by reason (expired_token, invalid_token, bad_api_key, bad_password, bad_refresh_token, missing_credentials, disabled_account)."
    );
    describe_histogram!(
        SCHEDULER_LAG,
        Unit::Seconds,
        "How late the scheduler applied a planned step (reminder, escalation, delayed publish)."
    );
    describe_counter!(
        SCHEDULER_STEPS,
        "Scheduled steps that fell due and were applied, by kind (reminder, escalation, publish)."
    );
    describe_gauge!(
        WEBHOOK_PENDING,
        "Webhook events waiting to be delivered to the firms' endpoints."
    );
    describe_counter!(
        WEBHOOK_ATTEMPTS,
        "Webhook delivery attempts, by result (delivered, failed)."
    );
    describe_gauge!(
        STORE_WRITABLE,
        "1 while the database accepts writes; 0 when the disk is full, another process holds the lock, or the files vanished."
    );
    describe_gauge!(BUILD_INFO, "The gateway's version, as a label; always 1.");
    describe_gauge!(
        CLUSTER_LISTENING,
        "PostgreSQL only: 1 while this node hears the other nodes (its LISTEN connection is up), 0 while it is deaf and reconnecting."
    );
    describe_counter!(
        CLUSTER_EVENTS,
        "PostgreSQL only: announcements between nodes, by direction (heard: another node's notifications or hub events applied here; relay_failed: a hub event this node could not send)."
    );
    describe_counter!(
        CLUSTER_CATCH_UPS,
        "PostgreSQL only: times this node's listener (re)connected and caught up every subscribed stream from the log."
    );
}

/// Whether this node's listener hears the other nodes now.
pub fn cluster_listening(listening: bool) {
    gauge!(CLUSTER_LISTENING).set(if listening { 1.0 } else { 0.0 });
}

/// An announcement crossed between nodes (`heard`, `relay_failed`).
pub fn cluster_event(direction: &'static str) {
    counter!(CLUSTER_EVENTS, "direction" => direction).increment(1);
}

/// The listener (re)connected and caught up.
pub fn cluster_caught_up() {
    counter!(CLUSTER_CATCH_UPS).increment(1);
}

/// An open WebSocket connection of a firm, counted while this lives.
pub struct OpenConnection {
    tenant: String,
}

impl OpenConnection {
    /// Counts a connection of `tenant` as open (and one more connect).
    pub fn new(tenant: &str) -> OpenConnection {
        counter!(CONNECTS).increment(1);
        gauge!(CONNECTIONS_OPEN, "tenant" => tenant.to_owned()).increment(1.0);
        OpenConnection {
            tenant: tenant.to_owned(),
        }
    }
}

impl Drop for OpenConnection {
    fn drop(&mut self) {
        gauge!(CONNECTIONS_OPEN, "tenant" => std::mem::take(&mut self.tenant)).decrement(1.0);
    }
}

/// A WebSocket connection ended with `code` (`"gone"` when the peer vanished).
pub fn disconnected(code: &str) {
    counter!(DISCONNECTS, "code" => code.to_owned()).increment(1);
}

/// A client reconnected with positions: whether all of them were still valid.
pub fn resumed(recovered: bool) {
    let recovered = if recovered { "true" } else { "false" };
    counter!(RESUMES, "recovered" => recovered).increment(1);
}

/// A notification of `kind` was published, with `result`.
pub fn published(kind: &'static str, result: &'static str) {
    counter!(PUBLISHES, "kind" => kind, "result" => result).increment(1);
}

/// A `DELETE /v1/notifications/{id}` that succeeded; `result` is `retracted`,
/// `withdrawn` or `already`.
pub fn retracted(result: &'static str) {
    counter!(RETRACTIONS, "result" => result).increment(1);
}

/// A live notification, handed over by the writer at `committed`, was written to a
/// socket now.
pub fn delivered_live(committed: std::time::Instant) {
    if let Some(hot) = HOT.get() {
        hot.deliveries_live.increment(1);
        hot.latency.record(committed.elapsed().as_secs_f64());
    }
}

/// A stored notification was written to a socket from the store (a replay at resume,
/// or a gap filled): counted, but not in the latency (it may be days old).
pub fn delivered_from_store() {
    if let Some(hot) = HOT.get() {
        hot.deliveries_store.increment(1);
    }
}

/// The writer committed `commands` in `took`.
pub fn committed(commands: usize, took: Duration) {
    histogram!(WRITER_BATCH).record(commands as f64);
    histogram!(WRITER_COMMIT).record(took.as_secs_f64());
}

/// Whether the database accepts writes now.
pub fn store_writable(writable: bool) {
    gauge!(STORE_WRITABLE).set(if writable { 1.0 } else { 0.0 });
}

/// A connection was closed because its queue overflowed.
pub fn slow_consumer() {
    counter!(SLOW_CONSUMERS).increment(1);
}

/// Where a refusal was answered.
#[derive(Clone, Copy)]
pub enum Surface {
    /// An HTTP error response.
    Http,
    /// A WebSocket action's error result or close.
    WebSocket,
    /// The accept loop, before any HTTP: the per-address cap, the handshake deadline,
    /// TLS.
    Connection,
}

/// A request or action was refused with error `code` (its wire name).
pub fn refused(code: &str, surface: Surface) {
    let surface = match surface {
        Surface::Http => "http",
        Surface::WebSocket => "websocket",
        Surface::Connection => "connection",
    };
    counter!(REFUSALS, "code" => code.to_owned(), "surface" => surface).increment(1);
}

/// Why an authentication failed (the label's values).
#[derive(Clone, Copy)]
pub enum AuthFailure {
    /// A genuine token past its `exp`.
    ExpiredToken,
    /// A token that will never be accepted (bad signature, claims, size).
    InvalidToken,
    /// An unknown, revoked or wrong API key.
    BadApiKey,
    /// A wrong email or password at login.
    BadPassword,
    /// A refresh token unknown, expired, revoked or reused.
    BadRefreshToken,
    /// No credentials, or the wrong kind for the route.
    MissingCredentials,
    /// The right password (or a valid token) of an account its firm disabled.
    DisabledAccount,
}

/// An authentication failed for `reason`.
pub fn auth_failed(reason: AuthFailure) {
    let reason = match reason {
        AuthFailure::ExpiredToken => "expired_token",
        AuthFailure::InvalidToken => "invalid_token",
        AuthFailure::BadApiKey => "bad_api_key",
        AuthFailure::BadPassword => "bad_password",
        AuthFailure::BadRefreshToken => "bad_refresh_token",
        AuthFailure::MissingCredentials => "missing_credentials",
        AuthFailure::DisabledAccount => "disabled_account",
    };
    counter!(AUTH_FAILURES, "reason" => reason).increment(1);
}

/// A scheduled step of `kind` fell due and was applied (sent, or skipped when its
/// deadline was acknowledged or re-planned meanwhile), `lag` after its time.
pub fn step_applied(kind: &'static str, lag: Duration) {
    counter!(SCHEDULER_STEPS, "kind" => kind).increment(1);
    histogram!(SCHEDULER_LAG).record(lag.as_secs_f64());
}

/// Webhook events not yet delivered, across firms.
pub fn webhook_pending(count: u64) {
    gauge!(WEBHOOK_PENDING).set(count as f64);
}

/// A webhook delivery attempt ended.
pub fn webhook_attempt(delivered: bool) {
    let result = if delivered { "delivered" } else { "failed" };
    counter!(WEBHOOK_ATTEMPTS, "result" => result).increment(1);
}
