//! What a gateway is started with ([`GatewayOptions`]: firms, users, keys, config
//! overrides, where it serves from) and what its fixtures are once created.

/// The password every fixture user gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// What a test or a benchmark needs from its gateway: firms, users, keys and config overrides.
/// Fields left `None` keep the value `init` wrote.
#[derive(Debug, Clone, Default)]
pub struct GatewayOptions {
    /// Firms to create, each with an API key and its users.
    pub tenants: Vec<TenantSpec>,
    /// Also create a global API key (may publish to `all`).
    pub global_key: bool,
    /// `retention_secs`.
    pub retention_secs: Option<u64>,
    /// `prune_interval_secs`.
    pub prune_interval_secs: Option<u64>,
    /// `websocket.heartbeat_interval_ms`.
    pub heartbeat_interval_ms: Option<u64>,
    /// `websocket.heartbeat_timeout_ms`.
    pub heartbeat_timeout_ms: Option<u64>,
    /// `websocket.auth_timeout_ms`.
    pub auth_timeout_ms: Option<u64>,
    /// `websocket.max_message_bytes`.
    pub max_message_bytes: Option<u64>,
    /// `websocket.queue_capacity`.
    pub queue_capacity: Option<u64>,
    /// `websocket.max_connections_per_user`.
    pub max_connections_per_user: Option<u64>,
    /// `websocket.actions_per_second`.
    pub actions_per_second: Option<u64>,
    /// `websocket.actions_burst`.
    pub actions_burst: Option<u64>,
    /// `websocket.allowed_origins`.
    pub allowed_origins: Option<Vec<String>>,
    /// `http.publish_per_second`.
    pub publish_per_second: Option<u64>,
    /// `http.publish_burst`.
    pub publish_burst: Option<u64>,
    /// `http.max_connections_per_ip`.
    pub max_connections_per_ip: Option<u64>,
    /// `http.handshake_timeout_ms`.
    pub handshake_timeout_ms: Option<u64>,
    /// `[auth.external]`, verbatim.
    pub external_auth: Option<ExternalAuth>,
    /// `auth.access_token_ttl_secs`.
    pub access_token_ttl_secs: Option<u64>,
    /// `auth.refresh_grace_secs`.
    pub refresh_grace_secs: Option<u64>,
    /// `deadlines.late_after_secs`.
    pub late_after_secs: Option<u64>,
    /// Serve from a small disk of its own (see [`SmallDisk`]).
    pub small_disk: Option<SmallDisk>,
    /// Run `serve` under `taskset -c <cpus>` (the benchmarks pin the gateway to one
    /// core, so its runtime sizes itself to it and figures are comparable).
    pub pin_cpus: Option<String>,
    /// `login.per_ip_per_second`.
    pub login_per_ip_per_second: Option<u64>,
    /// `login.per_ip_burst`.
    pub login_per_ip_burst: Option<u64>,
    /// `login.max_concurrent_hashes`.
    pub login_max_concurrent_hashes: Option<u64>,
    /// `login.hash_queue_wait_ms`.
    pub login_hash_queue_wait_ms: Option<u64>,
    /// More arguments for `init` (`--tls-self-signed 127.0.0.1` serves HTTPS).
    pub init_args: Vec<String>,
    /// `database`: a `postgres://` URL (e.g. of a [`crate::postgres::PgCluster`])
    /// instead of the SQLite file.
    pub database: Option<String>,
}

/// A data directory on a tmpfs of `size_bytes`, holding a `filler` file of
/// `filler_bytes` that a test can delete to free space ([`Gateway::free_filler`]).
/// The tmpfs is mounted over the data directory in a private mount namespace
/// (`unshare --user --map-root-user --mount`), so no root and no cleanup are needed:
/// it disappears with the process.
#[derive(Debug, Clone, Copy)]
pub struct SmallDisk {
    /// The tmpfs size.
    pub size_bytes: u64,
    /// The filler file's size.
    pub filler_bytes: u64,
}

impl GatewayOptions {
    /// Options with one firm per `(slug, user names)` pair.
    pub fn with_tenants(tenants: &[(&str, &[&str])]) -> Self {
        GatewayOptions {
            tenants: tenants
                .iter()
                .map(|(slug, users)| TenantSpec::new(slug, users))
                .collect(),
            ..GatewayOptions::default()
        }
    }
}

/// A firm to create.
#[derive(Debug, Clone)]
pub struct TenantSpec {
    /// Its slug (`tenant:<slug>`).
    pub slug: String,
    /// Local parts of its users' emails; each becomes `<name>@<slug>.example`. A
    /// `:role` suffix gives the role (`paul:partner`); the default is `lawyer`.
    pub users: Vec<String>,
}

impl TenantSpec {
    /// A firm with these users.
    pub fn new(slug: &str, users: &[&str]) -> Self {
        TenantSpec {
            slug: slug.to_owned(),
            users: users.iter().map(|u| (*u).to_owned()).collect(),
        }
    }
}

/// The `[auth.external]` table: an external app's HS256 JWTs.
#[derive(Debug, Clone)]
pub struct ExternalAuth {
    /// The shared HS256 secret.
    pub secret: String,
    /// The required `iss`.
    pub issuer: String,
    /// The required `aud`.
    pub audience: String,
    /// Clock leeway for `exp`.
    pub leeway_secs: u64,
}

/// A firm as created: its key and its users.
#[derive(Debug, Clone)]
pub struct TenantFixture {
    /// Its slug.
    pub slug: String,
    /// Its API key (`tsk_…`).
    pub key: String,
    /// Its users, in [`TenantSpec::users`] order.
    pub users: Vec<UserFixture>,
}

/// A user as created.
#[derive(Debug, Clone)]
pub struct UserFixture {
    /// The id the CLI printed.
    pub id: String,
    /// The email.
    pub email: String,
    /// The password ([`PASSWORD`]).
    pub password: String,
    /// The firm's slug.
    pub tenant: String,
}

impl UserFixture {
    /// `user:<id>`.
    pub fn stream(&self) -> String {
        format!("user:{}", self.id)
    }
}
