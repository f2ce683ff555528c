//! The gateway's configuration: `config.toml` in the data dir, then environment and
//! flags (applied by the binary, never read here: the library takes a `Config`).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::auth::ExternalJwtConfig;

mod database;
pub use database::{Database, DatabaseSetting, DatabaseTable};

/// The name of the configuration file inside the data dir.
pub const CONFIG_FILE: &str = "config.toml";

/// Everything the gateway needs to run.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Where to listen for HTTP and WebSocket.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// The SQLite file (relative to the data dir unless absolute), or a PostgreSQL
    /// URL / `[database]` table for several nodes (`config/database.rs`).
    #[serde(default)]
    pub database: DatabaseSetting,
    /// `human` (default) or `json` log lines on stderr.
    #[serde(default = "default_log_format")]
    pub log_format: String,
    /// How long notifications are kept (and can be replayed), in seconds.
    #[serde(default = "default_retention_secs")]
    pub retention_secs: u64,
    /// How often expired notifications are pruned, in seconds.
    #[serde(default = "default_prune_interval_secs")]
    pub prune_interval_secs: u64,
    /// SQLite durability: `full` (default, survives power loss) or `normal` (survives a
    /// crash of the gateway, may lose the last commits on power loss).
    #[serde(default = "default_synchronous")]
    pub sqlite_synchronous: String,
    /// Accounts and tokens.
    pub auth: AuthConfig,
    /// WebSocket limits and timers.
    #[serde(default)]
    pub websocket: WebSocketConfig,
    /// HTTP limits.
    #[serde(default)]
    pub http: HttpConfig,
    /// Login throttling and the cap on concurrent password checks.
    #[serde(default)]
    pub login: LoginConfig,
    /// The deadline scheduler.
    #[serde(default)]
    pub deadlines: DeadlinesConfig,
    /// Where Prometheus scrapes `/metrics`.
    #[serde(default)]
    pub metrics: MetricsConfig,
    /// Built-in HTTPS and WSS on `listen`; absent: plain HTTP (behind a TLS proxy).
    #[serde(default)]
    pub tls: Option<TlsConfig>,
}

/// `[tls]`: the certificate chain and its key, PEM files (certbot's `fullchain.pem`
/// and `privkey.pem`). Both are read again when they change, and on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TlsConfig {
    /// The certificate chain, leaf first; relative to the data dir unless absolute.
    pub cert: String,
    /// The leaf's private key (PKCS#8, SEC1 or PKCS#1); relative to the data dir
    /// unless absolute.
    pub key: String,
    /// How often the two files are checked for a change (modification time, size,
    /// inode), in seconds; 0 reloads on SIGHUP only (e.g. on a network filesystem).
    #[serde(default = "default_tls_reload_check_secs")]
    pub reload_check_secs: u64,
}

fn default_tls_reload_check_secs() -> u64 {
    5
}

impl TlsConfig {
    /// The certificate file's path.
    pub fn cert_path(&self, data_dir: &Path) -> PathBuf {
        in_data_dir(data_dir, &self.cert)
    }

    /// The key file's path.
    pub fn key_path(&self, data_dir: &Path) -> PathBuf {
        in_data_dir(data_dir, &self.key)
    }
}

/// `path` as given when absolute, else inside the data dir.
fn in_data_dir(data_dir: &Path, path: &str) -> PathBuf {
    let path = PathBuf::from(path);
    if path.is_absolute() {
        path
    } else {
        data_dir.join(path)
    }
}

/// `[metrics]`: `/metrics` is served on the main port to whoever presents `token`
/// (`Authorization: Bearer`), and, if `listen` is set, on that second address too,
/// without a token (bind it to localhost or a private network). With neither,
/// `/metrics` is off: it names the firms (`tenant` labels) and their activity, which
/// the open internet has no business reading. `init` writes a token.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MetricsConfig {
    /// The bearer token that reads `/metrics` on the main port.
    pub token: Option<String>,
    /// A second address serving only `/metrics`, without a token.
    pub listen: Option<SocketAddr>,
}

/// `[deadlines]`: the scheduler. A firm's policies (reminder hour, calendar, delays)
/// are per firm (`PUT /v1/deadline-settings`), not here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DeadlinesConfig {
    /// A step applied more than this after its time is marked late (the gateway was
    /// down, or its disk refused writes), and its alert says so.
    pub late_after_secs: u64,
}

impl Default for DeadlinesConfig {
    fn default() -> Self {
        DeadlinesConfig {
            late_after_secs: 60,
        }
    }
}

/// `[auth]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthConfig {
    /// The HS256 secret signing the gateway's own access tokens (`init` generates it).
    pub jwt_secret: String,
    /// Lifetime of an access token, in seconds.
    #[serde(default = "default_access_ttl")]
    pub access_token_ttl_secs: u64,
    /// Lifetime of a device session's refresh token, in seconds (renewed on each use).
    #[serde(default = "default_refresh_ttl")]
    pub refresh_token_ttl_secs: u64,
    /// How long after a rotation the token just rotated away may be presented once more
    /// and get the same successor (its answer was lost); 0 turns the grace off.
    #[serde(default = "default_refresh_grace")]
    pub refresh_grace_secs: u64,
    /// Optional verification of an external application's JWTs.
    #[serde(default)]
    pub external: Option<ExternalJwtConfig>,
}

/// `[websocket]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebSocketConfig {
    /// The gateway pings each client this often.
    pub heartbeat_interval_ms: u64,
    /// A client silent this long after a ping is dropped.
    pub heartbeat_timeout_ms: u64,
    /// How long a client may take to authenticate (first-frame auth) and say hello.
    pub auth_timeout_ms: u64,
    /// The largest message (and frame) accepted from a client.
    pub max_message_bytes: usize,
    /// Frames buffered per connection before it is closed as a slow consumer.
    pub queue_capacity: usize,
    /// Open connections allowed per user.
    pub max_connections_per_user: usize,
    /// Sustained client actions per second per connection.
    pub actions_per_second: u32,
    /// Burst of client actions per connection.
    pub actions_burst: u32,
    /// The web apps allowed to use this gateway from a browser, by origin (exact
    /// match, e.g. `https://app.cabinet-dupont.fr`): they may open a WebSocket, and
    /// call the user routes (sign-in, history, unread, calendar link) with `fetch`
    /// (CORS, `api/cors.rs`). Requests without `Origin`, i.e. native clients, are
    /// always allowed; publish and admin routes never answer CORS.
    pub allowed_origins: Vec<String>,
}

impl WebSocketConfig {
    /// True when a browser page of `origin` may use this gateway.
    pub fn allows_origin(&self, origin: &str) -> bool {
        self.allowed_origins.iter().any(|allowed| allowed == origin)
    }
}

impl Default for WebSocketConfig {
    fn default() -> Self {
        WebSocketConfig {
            heartbeat_interval_ms: 30_000,
            heartbeat_timeout_ms: 10_000,
            auth_timeout_ms: 5_000,
            max_message_bytes: 64 * 1024,
            queue_capacity: 1024,
            max_connections_per_user: 10,
            actions_per_second: 20,
            actions_burst: 40,
            allowed_origins: Vec::new(),
        }
    }
}

/// `[http]`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HttpConfig {
    /// The largest request body accepted.
    pub max_body_bytes: usize,
    /// Sustained publishes per second per API key (a batch counts each notification).
    pub publish_per_second: u32,
    /// Burst of publishes per API key.
    pub publish_burst: u32,
    /// Open TCP connections one source address may hold (IPv6: per /64); 0 for no
    /// cap. Behind a reverse proxy every connection comes from the proxy: raise it.
    pub max_connections_per_ip: usize,
    /// How long a new connection may take to send its first byte, then its request
    /// headers (the WebSocket upgrade included), before it is closed.
    pub handshake_timeout_ms: u64,
}

impl Default for HttpConfig {
    fn default() -> Self {
        HttpConfig {
            max_body_bytes: 1024 * 1024,
            publish_per_second: 5_000,
            publish_burst: 10_000,
            max_connections_per_ip: 4096,
            handshake_timeout_ms: 10_000,
        }
    }
}

/// `[login]`: throttling of `POST /v1/auth/login`, and the cap on password checks
/// running at once (argon2id needs 19 MiB each, so an unbounded number of them is a
/// memory exhaustion). Defaults: per source address 10/s (burst 20); per account
/// (email, case-insensitive) 5/min (burst 10), which a source that signed in to the
/// account within 30 days bypasses; after 5 failed attempts in a row for one account
/// from one source, each next attempt waits 1 s, 2 s, 4 s … up to 5 min; as many
/// password checks at once as the machine has cores, others waiting up to 2 s.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoginConfig {
    /// Sustained login attempts per second per source address (IPv6: per /64).
    pub per_ip_per_second: u32,
    /// Burst of login attempts per source address.
    pub per_ip_burst: u32,
    /// Sustained login attempts per minute per account.
    pub per_account_per_minute: u32,
    /// Burst of login attempts per account.
    pub per_account_burst: u32,
    /// Attempts in a row, for one account from one source, before delays start.
    pub failures_before_delay: u32,
    /// The first delay; each next one doubles.
    pub failure_delay_ms: u64,
    /// The longest delay.
    pub max_failure_delay_ms: u64,
    /// Password checks (argon2id) running at once; 0 = one per core.
    pub max_concurrent_hashes: usize,
    /// How long a login waits for a free check before 503 `unavailable`.
    pub hash_queue_wait_ms: u64,
}

impl Default for LoginConfig {
    fn default() -> Self {
        LoginConfig {
            per_ip_per_second: 10,
            per_ip_burst: 20,
            per_account_per_minute: 5,
            per_account_burst: 10,
            failures_before_delay: 5,
            failure_delay_ms: 1_000,
            max_failure_delay_ms: 300_000,
            max_concurrent_hashes: 0,
            hash_queue_wait_ms: 2_000,
        }
    }
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 7850))
}
fn default_log_format() -> String {
    "human".to_owned()
}
fn default_retention_secs() -> u64 {
    30 * 24 * 3600
}
fn default_prune_interval_secs() -> u64 {
    60
}
fn default_synchronous() -> String {
    "full".to_owned()
}
fn default_access_ttl() -> u64 {
    900
}
fn default_refresh_ttl() -> u64 {
    90 * 24 * 3600
}

fn default_refresh_grace() -> u64 {
    60
}

impl Config {
    /// A configuration with every default and the given secret.
    pub fn with_secret(jwt_secret: String) -> Config {
        let text = format!("[auth]\njwt_secret = {jwt_secret:?}\n");
        // The defaults above are the single source of truth; parsing a minimal file
        // applies them all.
        toml::from_str(&text).expect("a minimal config always parses")
    }

    /// Reads `config.toml` from the data dir.
    pub fn load(data_dir: &Path) -> anyhow::Result<Config> {
        let path = data_dir.join(CONFIG_FILE);
        let text = std::fs::read_to_string(&path).map_err(|err| {
            anyhow::anyhow!(
                "cannot read {}: {err}. Run `tocsin-gateway --data-dir {} init` first.",
                path.display(),
                data_dir.display()
            )
        })?;
        let config: Config = toml::from_str(&text)
            .map_err(|err| anyhow::anyhow!("{} is not valid: {err}", path.display()))?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values that parse but cannot work.
    pub fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.auth.jwt_secret.len() >= 32,
            "auth.jwt_secret must be at least 32 characters (run `tocsin-gateway init` to generate one)"
        );
        anyhow::ensure!(
            matches!(self.log_format.as_str(), "human" | "json"),
            "log_format must be \"human\" or \"json\", not {:?}",
            self.log_format
        );
        self.database.validate()?;
        anyhow::ensure!(
            matches!(self.sqlite_synchronous.as_str(), "full" | "normal"),
            "sqlite_synchronous must be \"full\" or \"normal\""
        );
        let ws = &self.websocket;
        anyhow::ensure!(
            ws.queue_capacity >= 1,
            "websocket.queue_capacity must be at least 1"
        );
        anyhow::ensure!(
            ws.heartbeat_interval_ms >= 10,
            "websocket.heartbeat_interval_ms is too small"
        );
        anyhow::ensure!(
            ws.max_message_bytes >= 1024,
            "websocket.max_message_bytes must be at least 1024"
        );
        anyhow::ensure!(
            ws.actions_per_second >= 1 && ws.actions_burst >= 1,
            "websocket action rate limits must be at least 1"
        );
        for origin in &ws.allowed_origins {
            // An origin is `scheme://host[:port]`: a trailing slash or a path never
            // matches what a browser sends, and a header value is all CORS can echo.
            anyhow::ensure!(
                origin.contains("://")
                    && !origin.ends_with('/')
                    && axum::http::HeaderValue::from_str(origin).is_ok(),
                "websocket.allowed_origins: {origin:?} is not an origin like \
                 \"https://app.example.fr\" (scheme, host, optional port; no path, no \
                 trailing slash)"
            );
        }
        anyhow::ensure!(
            self.http.publish_per_second >= 1 && self.http.publish_burst >= 1,
            "http publish rate limits must be at least 1"
        );
        self.login.validate()?;
        if let Some(token) = &self.metrics.token {
            anyhow::ensure!(
                token.len() >= 16,
                "metrics.token must be at least 16 characters (a random one: `openssl rand -hex 24`)"
            );
        }
        if let Some(tls) = &self.tls {
            anyhow::ensure!(
                !tls.cert.is_empty() && !tls.key.is_empty(),
                "[tls] needs both cert and key (PEM files; `tocsin-gateway init --tls-self-signed HOST` makes a pair)"
            );
        }
        if let Some(external) = &self.auth.external {
            crate::auth::ExternalVerifier::new(external.clone())
                .map(|_| ())
                .map_err(anyhow::Error::msg)?;
        }
        Ok(())
    }

    /// The database this gateway serves.
    pub fn database(&self, data_dir: &Path) -> Database {
        self.database.resolve(data_dir)
    }

    /// The SQLite file, or an error naming `command` when the database is PostgreSQL.
    pub fn database_path(&self, data_dir: &Path, command: &str) -> anyhow::Result<PathBuf> {
        self.database(data_dir).sqlite_file(command)
    }

    /// Retention as a duration.
    pub fn retention(&self) -> Duration {
        Duration::from_secs(self.retention_secs)
    }
}

impl LoginConfig {
    /// Checks the `[login]` values.
    fn validate(&self) -> anyhow::Result<()> {
        anyhow::ensure!(
            self.per_ip_per_second >= 1
                && self.per_ip_burst >= 1
                && self.per_account_per_minute >= 1
                && self.per_account_burst >= 1,
            "login rate limits must be at least 1"
        );
        anyhow::ensure!(
            self.failure_delay_ms >= 1 && self.max_failure_delay_ms >= self.failure_delay_ms,
            "login.failure_delay_ms must be at least 1 and at most login.max_failure_delay_ms"
        );
        anyhow::ensure!(
            self.max_failure_delay_ms <= 24 * 3600 * 1000,
            "login.max_failure_delay_ms must be at most a day (86400000)"
        );
        anyhow::ensure!(
            self.hash_queue_wait_ms <= 60_000,
            "login.hash_queue_wait_ms must be at most 60000: a login waiting longer has \
             been given up by its client"
        );
        Ok(())
    }
}

/// The text `init` writes: every setting, commented, with a fresh secret.
pub fn initial_config_text(jwt_secret: &str) -> String {
    format!(
        r#"# Tocsin gateway configuration. Environment (TOCSIN_LISTEN, TOCSIN_LOG_FORMAT) and
# flags override these values. See README.md for every setting.
listen = "127.0.0.1:7850"
database = "tocsin.db"        # SQLite file, relative to this directory; for several
                              # nodes a PostgreSQL URL: "postgres://user:pw@host/db"
log_format = "human"          # or "json"
retention_secs = 2592000      # 30 days of replayable history
prune_interval_secs = 60
sqlite_synchronous = "full"   # "normal" trades power-loss durability for speed

[auth]
jwt_secret = "{jwt_secret}"
access_token_ttl_secs = 900
refresh_token_ttl_secs = 7776000
refresh_grace_secs = 60       # a refresh answer lost in transit may be asked for once more

# Verify JWTs issued by the firm's own application (optional):
# [auth.external]
# algorithm = "RS256"         # pinned: HS256, RS256 or ES256
# jwks_url = "https://app.example/.well-known/jwks.json"   # or public_key_pem / secret
# issuer = "https://app.example"
# audience = "tocsin"
# leeway_secs = 30
# user_claim = "sub"
# tenant_claim = "tenant"

[websocket]
heartbeat_interval_ms = 30000
heartbeat_timeout_ms = 10000
auth_timeout_ms = 5000
max_message_bytes = 65536
queue_capacity = 1024
max_connections_per_user = 10
actions_per_second = 20
actions_burst = 40
allowed_origins = []          # web apps allowed from a browser, e.g. ["https://app.cabinet.fr"]:
                              # their pages may open WebSockets and call the user routes
                              # (sign-in, history, unread) with fetch (CORS)

[http]
max_body_bytes = 1048576
publish_per_second = 5000
publish_burst = 10000
max_connections_per_ip = 4096  # per source address (IPv6: per /64); 0 = no cap; raise it behind a proxy
handshake_timeout_ms = 10000   # first byte, then request headers, within this

# Login throttling (the source address is the TCP peer: behind a reverse proxy, the
# proxy's address). A refused login gets 429 rate_limited, or 503 unavailable when
# too many password checks are already running.
[login]
per_ip_per_second = 10
per_ip_burst = 20
per_account_per_minute = 5    # a source that signed in to the account before skips it
per_account_burst = 10
failures_before_delay = 5     # then 1 s, 2 s, 4 s ... per account and source
failure_delay_ms = 1000
max_failure_delay_ms = 300000
max_concurrent_hashes = 0     # 0 = one per core; each needs 19 MiB
hash_queue_wait_ms = 2000

# Built-in HTTPS and WSS (docs/OPERATIONS.md, "TLS"); `init --tls-self-signed HOST`
# writes this section with a self-signed pair. Certbot's files, for example:
# [tls]
# cert = "/etc/letsencrypt/live/gateway.example/fullchain.pem"
# key = "/etc/letsencrypt/live/gateway.example/privkey.pem"
"#
    )
}

/// The `[metrics]` section `init` appends: Prometheus reads `/metrics` with this token.
pub fn metrics_config_text(token: &str) -> String {
    format!(
        r#"
# Prometheus scrapes /metrics with `Authorization: Bearer <token>` (docs/OPERATIONS.md);
# `listen` adds a second address serving /metrics without a token (keep it private).
[metrics]
token = "{token}"
# listen = "127.0.0.1:9851"
"#
    )
}

/// The `[tls]` section `init --tls-self-signed` appends.
pub fn tls_config_text(cert: &str, key: &str) -> String {
    format!(
        r#"
# HTTPS and WSS on `listen` (docs/OPERATIONS.md, "TLS"). The files are read again when
# they change (certbot renewals) and on SIGHUP. Without [tls] the gateway speaks plain
# HTTP, for a TLS proxy in front of it.
[tls]
cert = {cert:?}
key = {key:?}
reload_check_secs = 5         # 0: reload on SIGHUP only
"#
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_initial_config_parses_to_the_defaults() {
        let secret = "x".repeat(40);
        let text = initial_config_text(&secret) + &metrics_config_text(&"m".repeat(32));
        let config: Config = toml::from_str(&text).expect("parses");
        config.validate().expect("valid");
        let defaults = Config::with_secret(secret);
        assert_eq!(config.listen, defaults.listen);
        assert_eq!(
            config.websocket.queue_capacity,
            defaults.websocket.queue_capacity
        );
        assert_eq!(config.retention_secs, 30 * 24 * 3600);
        assert_eq!(config.login, defaults.login);
        assert_eq!(config.metrics.token, Some("m".repeat(32)));
    }

    /// An origin is compared exactly with what a browser sends: a spelling that can
    /// never match is refused at start rather than silently allowing nobody.
    #[test]
    fn allowed_origins_must_be_origins() {
        let with = |origin: &str| {
            let mut config = Config::with_secret("x".repeat(40));
            config.websocket.allowed_origins = vec![origin.to_owned()];
            config.validate()
        };
        for good in ["https://app.cabinet.fr", "http://127.0.0.1:8080"] {
            with(good).unwrap_or_else(|err| panic!("{good}: {err:#}"));
        }
        for bad in [
            "https://app.cabinet.fr/",
            "app.cabinet.fr",
            "https://a.fr\n",
        ] {
            let err = with(bad).expect_err(bad);
            assert!(
                err.to_string().contains("websocket.allowed_origins"),
                "{bad}: {err:#}"
            );
        }
        assert!(
            !Config::with_secret("x".repeat(40))
                .websocket
                .allows_origin("")
        );
    }

    #[test]
    fn tls_paths_are_relative_to_the_data_dir_unless_absolute() {
        let text = initial_config_text(&"x".repeat(40))
            + &tls_config_text("tls/cert.pem", "/etc/tocsin/key.pem");
        let config: Config = toml::from_str(&text).expect("parses");
        config.validate().expect("valid");
        let tls = config.tls.expect("[tls] is set");
        let data_dir = Path::new("/var/lib/tocsin");
        assert_eq!(
            tls.cert_path(data_dir),
            Path::new("/var/lib/tocsin/tls/cert.pem")
        );
        assert_eq!(tls.key_path(data_dir), Path::new("/etc/tocsin/key.pem"));
        assert_eq!(tls.reload_check_secs, 5);
        assert!(Config::with_secret("x".repeat(40)).tls.is_none());
    }

    #[test]
    fn login_delays_must_be_ordered() {
        let mut config = Config::with_secret("x".repeat(40));
        config.login.max_failure_delay_ms = config.login.failure_delay_ms - 1;
        let err = config.validate().expect_err("max below the first delay");
        assert!(err.to_string().contains("login.failure_delay_ms"), "{err}");
    }

    #[test]
    fn a_misspelt_key_is_refused_by_name() {
        let text = "[auth]\njwt_secret = \"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"\n[websocket]\nheartbeat_interval = 5\n";
        let err = toml::from_str::<Config>(text).expect_err("unknown field");
        assert!(err.to_string().contains("heartbeat_interval"), "{err}");
    }
}
