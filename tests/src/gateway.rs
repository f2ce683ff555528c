//! One real `tocsin-gateway` process on 127.0.0.1:0 with its own data directory: the
//! harness's [`tocsin_harness::gateway::Gateway`] behind the panicking API the
//! end-to-end tests are written against (a test fails with the harness's error, its
//! context chain included). When a test panics, the harness keeps the data directory
//! and prints where it is and the log's tail.

use std::path::{Path, PathBuf};
use std::process::ExitStatus;
use std::time::Duration;

use tocsin_harness::gateway as harness;
pub use tocsin_harness::gateway::{
    ExternalAuth, GatewayOptions, PASSWORD, SmallDisk, TenantFixture, TenantSpec, UserFixture,
};

use crate::http::Api;

/// A running (or stopped) gateway process and its data directory.
pub struct Gateway {
    /// The harness's gateway, whose errors this wrapper turns into panics.
    inner: harness::Gateway,
}

impl Gateway {
    /// Creates the data directory and fixtures, then serves on a free port.
    pub async fn start(options: GatewayOptions) -> Gateway {
        let inner = harness::Gateway::start(options)
            .await
            .unwrap_or_else(|err| panic!("the gateway did not start: {err:?}"));
        Gateway { inner }
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
        let inner = self
            .inner
            .another_node_on(database)
            .await
            .unwrap_or_else(|err| panic!("another node did not start: {err:?}"));
        Gateway { inner }
    }

    /// The harness's gateway itself (errors instead of panics).
    pub fn harness(&self) -> &harness::Gateway {
        &self.inner
    }

    /// The firm created for `slug`.
    pub fn tenant(&self, slug: &str) -> &TenantFixture {
        self.inner
            .tenant(slug)
            .unwrap_or_else(|err| panic!("{err:?}"))
    }

    /// The `index`th user of `slug`.
    pub fn user(&self, slug: &str, index: usize) -> &UserFixture {
        self.inner
            .user(slug, index)
            .unwrap_or_else(|err| panic!("{err:?}"))
    }

    /// `GET /metrics` with the token `init` wrote into config.toml; `None` when the
    /// gateway does not answer (a killed node).
    pub async fn try_scrape_metrics(&self) -> Option<String> {
        let text = std::fs::read_to_string(self.data_dir().join("config.toml")).ok()?;
        let config: toml::Table = text.parse().ok()?;
        let token = config.get("metrics")?.get("token")?.as_str()?.to_owned();
        let response = reqwest::Client::new()
            .get(format!("{}/metrics", self.base_url()))
            .bearer_auth(token)
            .send()
            .await
            .ok()?;
        response.text().await.ok()
    }

    /// `GET /metrics`, panicking when the gateway does not answer.
    pub async fn scrape_metrics(&self) -> String {
        self.try_scrape_metrics()
            .await
            .expect("the gateway answers /metrics with its token")
    }

    /// The sum of every series of metric `name` (all labels), 0 when the gateway does
    /// not answer or has no such series.
    pub async fn metric_total(&self, name: &str) -> f64 {
        let text = self.try_scrape_metrics().await.unwrap_or_default();
        text.lines()
            .filter(|line| {
                line.strip_prefix(name)
                    .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
            })
            .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
            .sum()
    }

    /// The API key of `slug`.
    pub fn key(&self, slug: &str) -> &str {
        &self.tenant(slug).key
    }

    /// The global API key (requires `global_key: true`).
    pub fn global_key(&self) -> &str {
        self.inner
            .global_key()
            .unwrap_or_else(|err| panic!("{err:?}"))
    }

    /// `127.0.0.1:PORT`.
    pub fn addr(&self) -> &str {
        self.inner.addr()
    }

    /// `ws://127.0.0.1:PORT/v1/ws` (`wss://` with TLS).
    pub fn ws_url(&self) -> String {
        self.inner.ws_url()
    }

    /// `http://127.0.0.1:PORT` (`https://` with TLS).
    pub fn base_url(&self) -> String {
        self.inner.base_url()
    }

    /// An HTTP client for the current process (with TLS, one that trusts no
    /// self-signed certificate: see `Api::with_client`).
    pub fn api(&self) -> Api {
        Api::new(self.base_url())
    }

    /// What `init` printed on stdout.
    pub fn init_output(&self) -> &str {
        self.inner.init_output()
    }

    /// The data directory.
    pub fn data_dir(&self) -> &Path {
        self.inner.data_dir()
    }

    /// The OS process id of the current `serve`.
    pub fn pid(&self) -> u32 {
        self.inner.pid().unwrap_or_else(|err| panic!("{err:?}"))
    }

    /// SIGKILL: no chance to flush or say goodbye.
    pub async fn kill_hard(&mut self) {
        self.inner
            .kill_hard()
            .await
            .unwrap_or_else(|err| panic!("{err:?}"));
    }

    /// SIGTERM: asks for a graceful shutdown; see [`Gateway::wait_exit`].
    pub fn terminate(&self) {
        self.inner
            .terminate()
            .unwrap_or_else(|err| panic!("{err:?}"));
    }

    /// Waits for the process to exit, failing after `timeout`.
    pub async fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.inner
            .wait_exit(timeout)
            .await
            .unwrap_or_else(|err| panic!("{err:?}"))
    }

    /// Serves again on the same data directory and the same port, as a restarted
    /// service would, so clients configured with its URL find it again.
    pub async fn restart_on_same_port(&mut self) {
        self.inner
            .restart_on_same_port()
            .await
            .unwrap_or_else(|err| panic!("the gateway did not restart: {err:?}"));
    }

    /// Serves again on the same data directory (a new port); the old process must be gone.
    pub async fn restart(&mut self) {
        self.inner
            .restart()
            .await
            .unwrap_or_else(|err| panic!("the gateway did not restart: {err:?}"));
    }

    /// Runs `serve` expecting it to refuse to start: asserts it exits non-zero without
    /// listening, and returns what it logged (why it refused).
    pub async fn serve_expecting_refusal(&mut self) -> String {
        self.inner
            .serve_expecting_refusal()
            .await
            .unwrap_or_else(|err| panic!("{err:?}"))
    }

    /// The database file.
    pub fn database_path(&self) -> PathBuf {
        self.inner.database_path()
    }

    /// Deletes the small disk's filler file, as an operator freeing space would.
    pub fn free_filler(&self) {
        self.inner
            .free_filler()
            .unwrap_or_else(|err| panic!("{err:?}"));
    }

    /// Runs an admin command (`key revoke …`, `user …`) on this gateway's data dir, as
    /// an operator would while it serves; returns its stdout.
    pub async fn admin(&self, args: &[&str]) -> String {
        self.inner
            .admin(args)
            .await
            .unwrap_or_else(|err| panic!("{err:?}"))
    }

    /// Creates an API key of `tenant` with the CLI (while it serves, as an operator
    /// would): an admin key or a publishing one; returns the key.
    pub async fn create_key(&self, tenant: &str, admin: bool) -> String {
        self.inner
            .create_key(tenant, admin)
            .await
            .unwrap_or_else(|err| panic!("{err:?}"))
    }

    /// The last `lines` lines of the latest stderr log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.inner.log_tail(lines)
    }
}
