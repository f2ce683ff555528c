//! One real `tocsin-gateway` process on 127.0.0.1:0 with its own data directory.
//!
//! [`Gateway::start`] runs the binary's own CLI (`init`, `tenant add`, `user add`,
//! `key create`), edits `config.toml`, then `serve`s and waits for the
//! `listening on http://…` (or `https://…`, with `[tls]`) line. The process's stderr goes to a log file in the data
//! directory; when a test panics, [`Drop`] prints where it is and its tail, and keeps the
//! directory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};

use crate::binary::gateway_binary;
use crate::http::Api;

/// How long `serve` may take to print its listening line (a debug build under load).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// How long one CLI command may take (argon2 in a debug build is slow).
const CLI_TIMEOUT: Duration = Duration::from_secs(60);
/// The password every fixture user gets.
pub const PASSWORD: &str = "correct horse battery staple";

/// What a test needs from its gateway: firms, users, keys and config overrides.
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
    /// `database`: a `postgres://` URL (e.g. of a [`tocsin_harness::postgres::PgCluster`])
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

/// A running (or stopped) gateway process and its data directory.
pub struct Gateway {
    /// The `serve` process, `None` once it was killed or exited.
    child: Option<Child>,
    /// `127.0.0.1:PORT` of the current process.
    addr: String,
    /// The temporary data directory; kept on disk when a test fails.
    data_dir: Option<tempfile::TempDir>,
    /// Its path, still valid after the directory was kept.
    data_path: PathBuf,
    /// One stderr log per `serve` run, oldest first.
    logs: Vec<PathBuf>,
    /// Firms by slug.
    tenants: BTreeMap<String, TenantFixture>,
    /// Serve from a small disk.
    small_disk: Option<SmallDisk>,
    /// The global key, when asked for.
    global_key: Option<String>,
    /// `taskset -c` list for `serve`, when pinned.
    pin_cpus: Option<String>,
    /// What `init` printed on stdout (the TLS fingerprint, with `--tls-self-signed`).
    init_output: String,
    /// `https` when the last `serve` announced TLS, else `http`.
    scheme: &'static str,
}

impl Gateway {
    /// Creates the data directory and fixtures, then serves on a free port.
    pub async fn start(options: GatewayOptions) -> Gateway {
        let data_dir = tempfile::Builder::new()
            .prefix("tocsin-e2e-")
            .tempdir()
            .expect("a temporary data directory can be created");
        let data_path = data_dir.path().to_path_buf();
        let mut gateway = Gateway {
            child: None,
            addr: String::new(),
            data_dir: Some(data_dir),
            data_path,
            logs: Vec::new(),
            tenants: BTreeMap::new(),
            global_key: None,
            small_disk: options.small_disk,
            pin_cpus: options.pin_cpus.clone(),
            init_output: String::new(),
            scheme: "http",
        };
        let mut init = vec!["init"];
        init.extend(options.init_args.iter().map(String::as_str));
        gateway.init_output = gateway.cli(&init, None).await;
        gateway.edit_config(&options);
        for spec in &options.tenants {
            let fixture = gateway.create_tenant(spec).await;
            gateway.tenants.insert(spec.slug.clone(), fixture);
        }
        if options.global_key {
            let out = gateway
                .cli(&["key", "create", "--global", "--name", "e2e-global"], None)
                .await;
            gateway.global_key = Some(last_line(&out, "key create --global"));
        }
        gateway.serve().await;
        gateway
    }

    /// Another node of the same cluster (a gateway on PostgreSQL): a data directory
    /// of its own holding a copy of this one's config.toml — the same secrets and
    /// database — serving on a free port, with the same fixtures.
    pub async fn another_node(&self) -> Gateway {
        self.another_node_on(None).await
    }

    /// Like [`Gateway::another_node`], reaching the database at `database` instead
    /// (the same database through a proxy that can cut the link).
    pub async fn another_node_on(&self, database: Option<&str>) -> Gateway {
        let data_dir = tempfile::Builder::new()
            .prefix("tocsin-e2e-node-")
            .tempdir()
            .expect("a temporary data directory can be created");
        let data_path = data_dir.path().to_path_buf();
        std::fs::copy(
            self.data_path.join("config.toml"),
            data_path.join("config.toml"),
        )
        .expect("the first node's config.toml can be copied");
        if let Some(url) = database {
            let path = data_path.join("config.toml");
            let text = std::fs::read_to_string(&path).expect("the copy reads");
            let mut config: toml::Table = text.parse().expect("config.toml parses");
            config.insert("database".into(), toml::Value::String(url.to_owned()));
            std::fs::write(&path, toml::to_string(&config).expect("serialises"))
                .expect("the node's config.toml is written");
        }
        let mut node = Gateway {
            child: None,
            addr: String::new(),
            data_dir: Some(data_dir),
            data_path,
            logs: Vec::new(),
            tenants: self.tenants.clone(),
            global_key: self.global_key.clone(),
            small_disk: None,
            pin_cpus: self.pin_cpus.clone(),
            init_output: String::new(),
            scheme: "http",
        };
        node.serve().await;
        node
    }

    /// The firm created for `slug`.
    pub fn tenant(&self, slug: &str) -> &TenantFixture {
        self.tenants
            .get(slug)
            .unwrap_or_else(|| panic!("no tenant '{slug}' in this test's GatewayOptions"))
    }

    /// The `index`th user of `slug`.
    pub fn user(&self, slug: &str, index: usize) -> &UserFixture {
        self.tenant(slug)
            .users
            .get(index)
            .unwrap_or_else(|| panic!("tenant '{slug}' has no user #{index}"))
    }

    /// The API key of `slug`.
    pub fn key(&self, slug: &str) -> &str {
        &self.tenant(slug).key
    }

    /// The global API key (requires `global_key: true`).
    pub fn global_key(&self) -> &str {
        self.global_key
            .as_deref()
            .expect("GatewayOptions.global_key was set")
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        &self.addr
    }

    /// `ws://127.0.0.1:PORT/v1/ws` (`wss://` with TLS).
    pub fn ws_url(&self) -> String {
        let scheme = if self.scheme == "https" { "wss" } else { "ws" };
        format!("{scheme}://{}{}", self.addr, tocsin_protocol::WS_PATH)
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// An HTTP client for the current process (with TLS, one that trusts no
    /// self-signed certificate: see `Api::with_client`).
    pub fn api(&self) -> Api {
        Api::new(self.base_url())
    }

    /// What `init` printed on stdout.
    pub fn init_output(&self) -> &str {
        &self.init_output
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_path
    }

    /// The OS process id of the current `serve`.
    pub fn pid(&self) -> u32 {
        self.child
            .as_ref()
            .and_then(Child::id)
            .expect("the gateway is running")
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub async fn kill_hard(&mut self) {
        let mut child = self.child.take().expect("the gateway is running");
        child.kill().await.expect("the gateway can be SIGKILLed");
    }

    /// SIGTERM: asks for a graceful shutdown; see [`Gateway::wait_exit`].
    pub fn terminate(&self) {
        let status = std::process::Command::new("kill")
            .args(["-TERM", &self.pid().to_string()])
            .status()
            .expect("kill(1) can be run");
        assert!(status.success(), "kill -TERM failed");
    }

    /// Waits for the process to exit, failing after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let child = self.child.as_mut().expect("the gateway was started");
        let status = tokio::time::timeout(timeout, child.wait())
            .await
            .unwrap_or_else(|_| panic!("the gateway did not exit within {timeout:?}"))
            .expect("waiting for the gateway works");
        self.child = None;
        status
    }

    /// Serves again on the same data directory and the same port, as a restarted
    /// service would, so clients configured with its URL find it again.
    pub async fn restart_on_same_port(&mut self) {
        assert!(
            self.child.is_none(),
            "stop the gateway before restarting it"
        );
        let listen = self.addr.clone();
        self.serve_on(&listen).await;
    }

    /// Serves again on the same data directory (a new port); the old process must be gone.
    pub async fn restart(&mut self) {
        assert!(
            self.child.is_none(),
            "stop the gateway before restarting it"
        );
        self.serve().await;
    }

    async fn serve(&mut self) {
        self.serve_on("127.0.0.1:0").await;
    }

    /// Runs `serve` expecting it to refuse to start: asserts it exits non-zero without
    /// listening, and returns what it logged (why it refused).
    pub async fn serve_expecting_refusal(&mut self) -> String {
        assert!(self.child.is_none(), "stop the gateway first");
        let output = self
            .command()
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(START_TIMEOUT, output)
            .await
            .expect("a refused start exits at once")
            .expect("tocsin-gateway serve can be run");
        let log_path = self
            .data_path
            .join(format!("gateway-{}.log", self.logs.len() + 1));
        std::fs::write(&log_path, &output.stderr).expect("the log file can be written");
        self.logs.push(log_path);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(
            !output.status.success() && !stdout.contains("listening on"),
            "the gateway started ({:?}, stdout {stdout:?}); log:\n{}",
            output.status,
            self.log_tail(30)
        );
        self.log_tail(30)
    }

    /// The database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_path.join("tocsin.db")
    }

    async fn serve_on(&mut self, listen: &str) {
        let log_path = self
            .data_path
            .join(format!("gateway-{}.log", self.logs.len() + 1));
        let log = std::fs::File::create(&log_path).expect("the log file can be created");
        self.logs.push(log_path);
        let mut command = match self.small_disk {
            Some(disk) => self.small_disk_command(disk),
            None => {
                let mut command = match &self.pin_cpus {
                    // taskset execs the gateway: the child's pid stays the gateway's.
                    Some(cpus) => {
                        let mut pinned = Command::new("taskset");
                        pinned.args(["-c", cpus]).arg(gateway_binary());
                        self.gateway_args(&mut pinned);
                        pinned
                    }
                    None => self.command(),
                };
                command.args(["serve", "--listen", listen]);
                command
            }
        };
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true)
            .spawn()
            .expect("tocsin-gateway serve can be started");
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let wait_for_listening = async {
            while let Some(line) = lines.next_line().await.expect("stdout is readable") {
                let Some(url) = line.trim().strip_prefix("listening on ") else {
                    continue;
                };
                for scheme in ["http", "https"] {
                    if let Some(addr) = url.strip_prefix(&format!("{scheme}://")) {
                        return Some((scheme, addr.trim_end_matches('/').to_owned()));
                    }
                }
            }
            None
        };
        let (scheme, addr) = match tokio::time::timeout(START_TIMEOUT, wait_for_listening).await {
            Ok(Some(found)) => found,
            Ok(None) => panic!(
                "tocsin-gateway serve exited before listening ({:?}); log:\n{}",
                child.try_wait(),
                self.log_tail(60)
            ),
            Err(_) => panic!(
                "tocsin-gateway serve printed no 'listening on http://' line within {START_TIMEOUT:?}; log:\n{}",
                self.log_tail(60)
            ),
        };
        // Keep draining stdout so the gateway never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        self.addr = addr;
        self.scheme = scheme;
        self.child = Some(child);
        if self.small_disk.is_some() {
            // The copy inside the namespace is done once the gateway listens.
            let staging = format!("{}-staging", self.data_path.display());
            std::fs::remove_dir_all(&staging).expect("the staging copy can be removed");
        }
    }

    fn command(&self) -> Command {
        let mut command = Command::new(gateway_binary());
        self.gateway_args(&mut command);
        command
    }

    /// The data dir and a clean environment, whatever runs the binary.
    fn gateway_args(&self, command: &mut Command) {
        command
            .arg("--data-dir")
            .arg(&self.data_path)
            .env_remove("TOCSIN_DATA_DIR")
            .env_remove("TOCSIN_LISTEN")
            .env_remove("TOCSIN_LOG_FORMAT")
            .env_remove("TOCSIN_DATABASE")
            .env("NO_COLOR", "1");
    }

    /// `serve` inside a private mount namespace where a tmpfs of the disk's size is
    /// mounted over the data directory, with the directory's contents copied in and a
    /// filler file added.
    fn small_disk_command(&self, disk: SmallDisk) -> Command {
        let data = self.data_path.display().to_string();
        let staging = format!("{data}-staging");
        let copy = std::process::Command::new("cp")
            .args(["-a", &format!("{data}/."), &staging])
            .status()
            .expect("cp can be run");
        assert!(copy.success(), "the data directory can be staged");
        let script = format!(
            "set -e; mount -t tmpfs -o size={size} tmpfs '{data}'; cp -a '{staging}/.' '{data}/'; \
             rm -f '{data}'/gateway-*.log; \
             head -c {filler} /dev/zero > '{data}/filler'; \
             exec '{binary}' --data-dir '{data}' serve --listen 127.0.0.1:0",
            size = disk.size_bytes,
            filler = disk.filler_bytes,
            binary = gateway_binary().display(),
        );
        let mut command = Command::new("unshare");
        command
            .args(["--user", "--map-root-user", "--mount", "sh", "-c", &script])
            .env_remove("TOCSIN_DATA_DIR")
            .env_remove("TOCSIN_LISTEN")
            .env_remove("TOCSIN_LOG_FORMAT")
            .env_remove("TOCSIN_DATABASE")
            .env("NO_COLOR", "1");
        command
    }

    /// Deletes the small disk's filler file, as an operator freeing space would. The
    /// tmpfs is only visible inside the gateway's mount namespace, reached through
    /// `/proc/<pid>/root`.
    pub fn free_filler(&self) {
        let inside = format!(
            "/proc/{}/root{}/filler",
            self.pid(),
            self.data_path.display()
        );
        std::fs::remove_file(&inside).unwrap_or_else(|e| panic!("{inside} can be removed: {e}"));
    }

    /// Runs an admin command (`key revoke …`, `user …`) on this gateway's data dir, as
    /// an operator would while it serves; returns its stdout.
    pub async fn admin(&self, args: &[&str]) -> String {
        self.cli(args, None).await
    }

    /// Creates an API key of `tenant` with the CLI (while it serves, as an operator
    /// would): an admin key (`--admin`: users, audit, any retraction) or a publishing
    /// one; returns the key (the last line `key create` prints).
    pub async fn create_key(&self, tenant: &str, admin: bool) -> String {
        let mut args = vec!["key", "create", "--tenant", tenant];
        if admin {
            args.push("--admin");
        }
        let printed = self.admin(&args).await;
        printed
            .trim()
            .lines()
            .last()
            .unwrap_or_else(|| panic!("key create printed no key: {printed:?}"))
            .trim()
            .to_owned()
    }

    /// Runs one CLI command to completion and returns its stdout; panics with stderr
    /// when it fails.
    async fn cli(&self, args: &[&str], stdin: Option<&str>) -> String {
        let mut child = self
            .command()
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("tocsin-gateway {args:?} can be started: {e}"));
        if let Some(text) = stdin {
            let mut pipe = child.stdin.take().expect("stdin is piped");
            pipe.write_all(text.as_bytes())
                .await
                .expect("stdin is writable");
            drop(pipe);
        }
        let output = tokio::time::timeout(CLI_TIMEOUT, child.wait_with_output())
            .await
            .unwrap_or_else(|_| panic!("tocsin-gateway {args:?} took over {CLI_TIMEOUT:?}"))
            .expect("the CLI's output can be read");
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        assert!(
            output.status.success(),
            "tocsin-gateway {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
        stdout
    }

    async fn create_tenant(&self, spec: &TenantSpec) -> TenantFixture {
        let name = format!("Cabinet {}", spec.slug);
        self.cli(&["tenant", "add", &spec.slug, "--name", &name], None)
            .await;
        let mut users = Vec::new();
        for spec_user in &spec.users {
            let (local, role) = spec_user.split_once(':').unwrap_or((spec_user, "lawyer"));
            let email = format!("{local}@{}.example", spec.slug);
            let out = self
                .cli(
                    &[
                        "user",
                        "add",
                        "--tenant",
                        &spec.slug,
                        "--email",
                        &email,
                        "--name",
                        local,
                        "--role",
                        role,
                        "--password-stdin",
                    ],
                    Some(&format!("{PASSWORD}\n")),
                )
                .await;
            users.push(UserFixture {
                id: last_line(&out, "user add"),
                email,
                password: PASSWORD.to_owned(),
                tenant: spec.slug.clone(),
            });
        }
        let out = self
            .cli(
                &["key", "create", "--tenant", &spec.slug, "--name", "e2e"],
                None,
            )
            .await;
        TenantFixture {
            slug: spec.slug.clone(),
            key: last_line(&out, "key create"),
            users,
        }
    }

    fn edit_config(&self, options: &GatewayOptions) {
        let path = self.data_path.join("config.toml");
        let text = std::fs::read_to_string(&path)
            .unwrap_or_else(|e| panic!("init wrote {}: {e}", path.display()));
        let mut config: toml::Table = text.parse().expect("init's config.toml parses");
        let int = |v: u64| toml::Value::Integer(i64::try_from(v).expect("fits in i64"));
        let set = |config: &mut toml::Table, table: Option<&str>, key: &str, value| {
            let target = match table {
                None => config,
                Some(name) => config
                    .entry(name)
                    .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                    .as_table_mut()
                    .unwrap_or_else(|| panic!("[{name}] is a table")),
            };
            target.insert(key.to_owned(), value);
        };
        let top = [
            ("retention_secs", options.retention_secs),
            ("prune_interval_secs", options.prune_interval_secs),
        ];
        for (key, value) in top {
            if let Some(v) = value {
                set(&mut config, None, key, int(v));
            }
        }
        if let Some(database) = &options.database {
            set(
                &mut config,
                None,
                "database",
                toml::Value::String(database.clone()),
            );
        }
        let websocket = [
            ("heartbeat_interval_ms", options.heartbeat_interval_ms),
            ("heartbeat_timeout_ms", options.heartbeat_timeout_ms),
            ("auth_timeout_ms", options.auth_timeout_ms),
            ("max_message_bytes", options.max_message_bytes),
            ("queue_capacity", options.queue_capacity),
            ("max_connections_per_user", options.max_connections_per_user),
            ("actions_per_second", options.actions_per_second),
            ("actions_burst", options.actions_burst),
        ];
        for (key, value) in websocket {
            if let Some(v) = value {
                set(&mut config, Some("websocket"), key, int(v));
            }
        }
        if let Some(origins) = &options.allowed_origins {
            let list = origins.iter().cloned().map(toml::Value::String).collect();
            set(
                &mut config,
                Some("websocket"),
                "allowed_origins",
                toml::Value::Array(list),
            );
        }
        let http = [
            ("publish_per_second", options.publish_per_second),
            ("publish_burst", options.publish_burst),
            ("max_connections_per_ip", options.max_connections_per_ip),
            ("handshake_timeout_ms", options.handshake_timeout_ms),
        ];
        for (key, value) in http {
            if let Some(v) = value {
                set(&mut config, Some("http"), key, int(v));
            }
        }
        let login = [
            ("per_ip_per_second", options.login_per_ip_per_second),
            ("per_ip_burst", options.login_per_ip_burst),
            ("max_concurrent_hashes", options.login_max_concurrent_hashes),
            ("hash_queue_wait_ms", options.login_hash_queue_wait_ms),
        ];
        for (key, value) in login {
            if let Some(v) = value {
                set(&mut config, Some("login"), key, int(v));
            }
        }
        if let Some(late) = options.late_after_secs {
            set(&mut config, Some("deadlines"), "late_after_secs", int(late));
        }
        if let Some(grace) = options.refresh_grace_secs {
            set(&mut config, Some("auth"), "refresh_grace_secs", int(grace));
        }
        if let Some(ttl) = options.access_token_ttl_secs {
            set(&mut config, Some("auth"), "access_token_ttl_secs", int(ttl));
        }
        if let Some(external) = &options.external_auth {
            let mut table = toml::Table::new();
            table.insert("algorithm".into(), "HS256".into());
            table.insert("secret".into(), external.secret.clone().into());
            table.insert("issuer".into(), external.issuer.clone().into());
            table.insert("audience".into(), external.audience.clone().into());
            table.insert("leeway_secs".into(), int(external.leeway_secs));
            table.insert("user_claim".into(), "sub".into());
            table.insert("tenant_claim".into(), "tenant".into());
            let auth = config
                .entry("auth")
                .or_insert_with(|| toml::Value::Table(toml::Table::new()))
                .as_table_mut()
                .expect("[auth] is a table");
            auth.insert("external".into(), toml::Value::Table(table));
        }
        let text = toml::to_string(&config).expect("the config serialises");
        std::fs::write(&path, text).expect("config.toml can be written");
    }

    /// The last `lines` lines of the latest stderr log.
    pub fn log_tail(&self, lines: usize) -> String {
        let Some(path) = self.logs.last() else {
            return String::from("(no log yet)");
        };
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        // Keep the directory (database, config, logs) for a post-mortem.
        if let Some(dir) = self.data_dir.take() {
            let _kept = dir.keep();
        }
        eprintln!(
            "--- tocsin-gateway data dir kept at {} (logs: {:?}); tail of the latest log:\n{}\n---",
            self.data_path.display(),
            self.logs,
            self.log_tail(40)
        );
    }
}

/// The last non-empty stdout line of a CLI command (its documented result).
fn last_line(stdout: &str, what: &str) -> String {
    stdout
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .unwrap_or_else(|| panic!("`{what}` printed nothing on stdout"))
        .to_owned()
}
