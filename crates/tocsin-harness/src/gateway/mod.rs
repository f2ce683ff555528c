//! One real `tocsin-gateway` process on 127.0.0.1 with its own data directory.
//!
//! [`Gateway::start`] runs the binary's own CLI (`init`, `tenant add`, `user add`,
//! `key create`), edits `config.toml`, then `serve`s on a free port and waits for the
//! `listening on http://…` (or `https://…`, with `[tls]`) line. Its stderr goes to a
//! log file in the data directory, one per `serve` run. It can be SIGKILLed,
//! SIGTERMed, restarted (on the same port, as a restarted service), and joined by
//! another node on the same PostgreSQL database. When the thread panics (a failed
//! test), [`Drop`] keeps the directory and prints where it is and the log's tail.
//!
//! # Layout
//! - [`options`]: what a gateway is started with, and the fixtures it then has.
//! - [`config`]: `config.toml` edited with the options' overrides.
//! - [`cli`]: the admin CLI run to completion, and the fixtures made with it.

pub mod cli;
pub mod config;
pub mod options;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use nix::sys::signal::Signal;
use tokio::process::Command;

use crate::binary::gateway_binary;
use crate::process::{Pipes, Supervised, log_tail};
pub use options::{
    ExternalAuth, GatewayOptions, PASSWORD, SmallDisk, TenantFixture, TenantSpec, UserFixture,
};

/// How long `serve` may take to print its listening line (a debug build under load).
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// What `serve` prints on stdout once bound, before its URL.
const LISTENING_PREFIX: &str = "listening on ";

/// A running (or stopped) gateway process and its data directory.
pub struct Gateway {
    /// The binary every command runs.
    binary: PathBuf,
    /// The `serve` process, `None` once it was killed or exited.
    child: Option<Supervised>,
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
    pub async fn start(options: GatewayOptions) -> Result<Gateway> {
        let mut gateway = Gateway::unstarted("tocsin-e2e-", &options)?;
        let mut init = vec!["init"];
        init.extend(options.init_args.iter().map(String::as_str));
        gateway.init_output = gateway.cli(&init, None).await?;
        config::apply(&gateway.data_path.join("config.toml"), &options)?;
        for spec in &options.tenants {
            let fixture = cli::create_tenant(&gateway.binary, &gateway.data_path, spec).await?;
            gateway.tenants.insert(spec.slug.clone(), fixture);
        }
        if options.global_key {
            let out = gateway
                .cli(&["key", "create", "--global", "--name", "e2e-global"], None)
                .await?;
            gateway.global_key = Some(cli::last_line(&out, "key create --global")?);
        }
        gateway.serve().await?;
        Ok(gateway)
    }

    /// A gateway with its data directory and nothing in it yet.
    fn unstarted(prefix: &str, options: &GatewayOptions) -> Result<Gateway> {
        let data_dir = tempfile::Builder::new()
            .prefix(prefix)
            .tempdir()
            .context("cannot create a temporary data directory")?;
        Ok(Gateway {
            binary: gateway_binary()?,
            child: None,
            addr: String::new(),
            data_path: data_dir.path().to_path_buf(),
            data_dir: Some(data_dir),
            logs: Vec::new(),
            tenants: BTreeMap::new(),
            global_key: None,
            small_disk: options.small_disk,
            pin_cpus: options.pin_cpus.clone(),
            init_output: String::new(),
            scheme: "http",
        })
    }

    /// Another node of the same cluster (a gateway on PostgreSQL): a data directory
    /// of its own holding a copy of this one's config.toml — the same secrets and
    /// database — serving on a free port, with the same fixtures.
    pub async fn another_node(&self) -> Result<Gateway> {
        self.another_node_on(None).await
    }

    /// Like [`Gateway::another_node`], reaching the database at `database` instead
    /// (the same database through a proxy that can cut the link).
    pub async fn another_node_on(&self, database: Option<&str>) -> Result<Gateway> {
        let options = GatewayOptions {
            pin_cpus: self.pin_cpus.clone(),
            ..GatewayOptions::default()
        };
        let mut node = Gateway::unstarted("tocsin-e2e-node-", &options)?;
        let config = node.data_path.join("config.toml");
        std::fs::copy(self.data_path.join("config.toml"), &config)
            .context("cannot copy the first node's config.toml")?;
        if let Some(url) = database {
            config::set_database(&config, url)?;
        }
        node.tenants = self.tenants.clone();
        node.global_key = self.global_key.clone();
        node.serve().await?;
        Ok(node)
    }

    /// The firm created for `slug`.
    pub fn tenant(&self, slug: &str) -> Result<&TenantFixture> {
        self.tenants
            .get(slug)
            .with_context(|| format!("no tenant '{slug}' in this gateway's GatewayOptions"))
    }

    /// The `index`th user of `slug`.
    pub fn user(&self, slug: &str, index: usize) -> Result<&UserFixture> {
        self.tenant(slug)?
            .users
            .get(index)
            .with_context(|| format!("tenant '{slug}' has no user #{index}"))
    }

    /// The global API key (requires `global_key: true`).
    pub fn global_key(&self) -> Result<&str> {
        self.global_key
            .as_deref()
            .context("this gateway has no global key: set GatewayOptions.global_key")
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

    /// What `init` printed on stdout.
    pub fn init_output(&self) -> &str {
        &self.init_output
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        &self.data_path
    }

    /// The SQLite database file.
    pub fn database_path(&self) -> PathBuf {
        self.data_path.join("tocsin.db")
    }

    /// The OS process id of the current `serve`.
    pub fn pid(&self) -> Result<u32> {
        self.child
            .as_ref()
            .and_then(Supervised::pid)
            .context("the gateway is not running")
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub async fn kill_hard(&mut self) -> Result<()> {
        let mut child = self.child.take().context("the gateway is not running")?;
        child.kill_group().await;
        Ok(())
    }

    /// SIGTERM: asks for a graceful shutdown; see [`Gateway::wait_exit`].
    pub fn terminate(&self) -> Result<()> {
        self.child
            .as_ref()
            .context("the gateway is not running")?
            .signal(Signal::SIGTERM)
    }

    /// Sends `signal` to the gateway (SIGHUP: reload its certificate).
    pub fn signal(&self, signal: Signal) -> Result<()> {
        self.child
            .as_ref()
            .context("the gateway is not running")?
            .signal(signal)
    }

    /// Waits for the process to exit, failing after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> Result<ExitStatus> {
        let child = self.child.as_mut().context("the gateway was not started")?;
        let status = child.wait_exit(timeout).await?;
        self.child = None;
        Ok(status)
    }

    /// Serves again on the same data directory and the same port, as a restarted
    /// service would, so clients configured with its URL find it again.
    pub async fn restart_on_same_port(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("stop the gateway before restarting it");
        }
        let listen = self.addr.clone();
        self.serve_on(&listen).await
    }

    /// Serves again on the same data directory (a new port); the old process must be
    /// gone.
    pub async fn restart(&mut self) -> Result<()> {
        if self.child.is_some() {
            bail!("stop the gateway before restarting it");
        }
        self.serve().await
    }

    async fn serve(&mut self) -> Result<()> {
        self.serve_on("127.0.0.1:0").await
    }

    /// Runs `serve` expecting it to refuse to start: fails when it listens or exits
    /// zero, and returns what it logged (why it refused).
    pub async fn serve_expecting_refusal(&mut self) -> Result<String> {
        if self.child.is_some() {
            bail!("stop the gateway first");
        }
        let output = cli::command(&self.binary, &self.data_path)
            .args(["serve", "--listen", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(START_TIMEOUT, output)
            .await
            .with_context(|| format!("a refused start did not exit within {START_TIMEOUT:?}"))?
            .context("cannot run tocsin-gateway serve")?;
        let log_path = self.next_log_path();
        std::fs::write(&log_path, &output.stderr)
            .with_context(|| format!("cannot write {}", log_path.display()))?;
        self.logs.push(log_path);
        let stdout = String::from_utf8_lossy(&output.stdout);
        if output.status.success() || stdout.contains(LISTENING_PREFIX) {
            bail!(
                "the gateway started ({:?}, stdout {stdout:?}); log:\n{}",
                output.status,
                self.log_tail(30)
            );
        }
        Ok(self.log_tail(30))
    }

    fn next_log_path(&self) -> PathBuf {
        self.data_path
            .join(format!("gateway-{}.log", self.logs.len() + 1))
    }

    async fn serve_on(&mut self, listen: &str) -> Result<()> {
        let log_path = self.next_log_path();
        self.logs.push(log_path.clone());
        let command = match self.small_disk {
            Some(disk) => self.small_disk_command(disk)?,
            None => {
                let mut command = match &self.pin_cpus {
                    // taskset execs the gateway: the child's pid stays the gateway's.
                    Some(cpus) => {
                        let mut pinned = Command::new("taskset");
                        pinned.args(["-c", cpus]).arg(&self.binary);
                        cli::gateway_args(&mut pinned, &self.data_path);
                        pinned
                    }
                    None => cli::command(&self.binary, &self.data_path),
                };
                command.args(["serve", "--listen", listen]);
                command
            }
        };
        let pipes = Pipes {
            stdin: false,
            stdout: true,
        };
        let mut child = Supervised::spawn("tocsin-gateway serve", command, &log_path, pipes)?;
        let (scheme, addr) = child
            .read_line("its `listening on URL` line", START_TIMEOUT, |line| {
                let url = line.strip_prefix(LISTENING_PREFIX)?;
                ["http", "https"].into_iter().find_map(|scheme| {
                    let addr = url.strip_prefix(scheme)?.strip_prefix("://")?;
                    Some((scheme, addr.trim_end_matches('/').to_owned()))
                })
            })
            .await?;
        self.addr = addr;
        self.scheme = scheme;
        self.child = Some(child);
        if self.small_disk.is_some() {
            // The copy inside the namespace is done once the gateway listens.
            let staging = format!("{}-staging", self.data_path.display());
            std::fs::remove_dir_all(&staging)
                .with_context(|| format!("cannot remove the staging copy {staging}"))?;
        }
        Ok(())
    }

    /// `serve` inside a private mount namespace where a tmpfs of the disk's size is
    /// mounted over the data directory (`unshare --user --map-root-user --mount`, so
    /// no root and no cleanup), with the directory's contents copied in and a filler
    /// file added.
    fn small_disk_command(&self, disk: SmallDisk) -> Result<Command> {
        let data = self.data_path.display().to_string();
        let staging = format!("{data}-staging");
        let copy = std::process::Command::new("cp")
            .args(["-a", &format!("{data}/."), &staging])
            .status()
            .context("cannot run cp to stage the data directory")?;
        if !copy.success() {
            bail!("cp -a {data}/. {staging} failed ({copy})");
        }
        let script = format!(
            "set -e; mount -t tmpfs -o size={size} tmpfs '{data}'; cp -a '{staging}/.' '{data}/'; \
             rm -f '{data}'/gateway-*.log; \
             head -c {filler} /dev/zero > '{data}/filler'; \
             exec '{binary}' --data-dir '{data}' serve --listen 127.0.0.1:0",
            size = disk.size_bytes,
            filler = disk.filler_bytes,
            binary = self.binary.display(),
        );
        let mut command = Command::new("unshare");
        command.args(["--user", "--map-root-user", "--mount", "sh", "-c", &script]);
        cli::clean_env(&mut command);
        Ok(command)
    }

    /// Deletes the small disk's filler file, as an operator freeing space would. The
    /// tmpfs is only visible inside the gateway's mount namespace, reached through
    /// `/proc/<pid>/root`.
    pub fn free_filler(&self) -> Result<()> {
        let inside = format!(
            "/proc/{}/root{}/filler",
            self.pid()?,
            self.data_path.display()
        );
        std::fs::remove_file(&inside).with_context(|| format!("cannot remove {inside}"))
    }

    /// Runs an admin command (`key revoke …`, `user …`) on this gateway's data dir, as
    /// an operator would while it serves; returns its stdout.
    pub async fn admin(&self, args: &[&str]) -> Result<String> {
        self.cli(args, None).await
    }

    /// Creates an API key of `tenant` with the CLI (while it serves, as an operator
    /// would): an admin key (`--admin`: users, audit, any retraction) or a publishing
    /// one; returns the key (the last line `key create` prints).
    pub async fn create_key(&self, tenant: &str, admin: bool) -> Result<String> {
        let mut args = vec!["key", "create", "--tenant", tenant];
        if admin {
            args.push("--admin");
        }
        let printed = self.admin(&args).await?;
        cli::last_line(&printed, "key create")
    }

    async fn cli(&self, args: &[&str], stdin: Option<&str>) -> Result<String> {
        cli::run(&self.binary, &self.data_path, args, stdin).await
    }

    /// The last `lines` lines of the latest stderr log.
    pub fn log_tail(&self, lines: usize) -> String {
        match self.logs.last() {
            Some(path) => log_tail(path, lines),
            None => String::from("(no log yet)"),
        }
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
