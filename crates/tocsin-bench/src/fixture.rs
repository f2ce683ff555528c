//! A fresh gateway per scenario: the release binary on a temp data dir, pinned to its
//! core, with one firm (`bench`), a publisher key, and `[auth.external]` so that the
//! benchmark can act as the firm's identity provider and mint a token for any of its
//! 10k–50k users (logging each one in would measure argon2, not the gateway).
//!
//! Users are created by the gateway itself on their first connection (shadow users of
//! external identities, as with single sign-on); [`provision`] does that once, outside
//! any measurement.

use std::net::SocketAddr;
use std::sync::Arc;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use tocsin_harness::gateway::{ExternalAuth, Gateway, GatewayOptions, TenantSpec};

use crate::client::{Target, ramp};
use crate::procfs::Sample;

/// The firm every scenario uses.
pub const TENANT: &str = "bench";
/// The external issuer the gateway trusts for the benchmark.
const ISSUER: &str = "https://idp.bench.invalid/";
/// The audience of minted tokens.
const AUDIENCE: &str = "tocsin";

/// Mints external-app tokens for the firm's users (HS256, valid for an hour).
pub struct Minter {
    secret: String,
}

impl Minter {
    /// A token for `user` of [`TENANT`].
    pub fn token(&self, user: &str) -> Result<String> {
        let claims = tocsin_harness::tokens::claims(user, TENANT, ISSUER, AUDIENCE);
        tocsin_harness::tokens::sign(&claims, &self.secret, jsonwebtoken::Algorithm::HS256)
    }

    /// The secret, issuer and audience: what a peer needs to check these tokens
    /// (the in-memory peer is given them on its command line).
    pub fn parts(&self) -> (&str, &str, &str) {
        (&self.secret, ISSUER, AUDIENCE)
    }
}

/// The id of the `index`-th benchmark user (also its stream: `user:<id>`).
pub fn user_id(index: usize) -> String {
    format!("u{index:05}")
}

/// A running gateway and what scenarios need of it.
pub struct BenchGateway {
    /// The process and its data dir.
    pub gateway: Gateway,
    /// Where clients connect.
    pub target: Target,
    /// The firm's publisher key (`tsk_…`).
    pub key: String,
}

impl BenchGateway {
    /// Starts a fresh gateway pinned to the run's gateway cores (unpinned without),
    /// on the run's database. `tweak` adjusts config overrides for the scenario.
    pub async fn start(
        ctx: &crate::scenarios::Ctx,
        tweak: impl FnOnce(&mut GatewayOptions),
    ) -> Result<BenchGateway> {
        Self::start_on(ctx, ctx.fresh_database()?, tweak).await
    }

    /// Like [`BenchGateway::start`], on `database` (`None`: SQLite in its data dir)
    /// whatever the run's database.
    pub async fn start_on(
        ctx: &crate::scenarios::Ctx,
        database: Option<String>,
        tweak: impl FnOnce(&mut GatewayOptions),
    ) -> Result<BenchGateway> {
        let cpus = ctx.gateway_cpus.as_deref();
        let secret = format!("bench-{}", uuid::Uuid::new_v4().simple());
        let mut options = GatewayOptions {
            tenants: vec![TenantSpec::new(TENANT, &[])],
            external_auth: Some(ExternalAuth {
                secret: secret.clone(),
                issuer: ISSUER.to_owned(),
                audience: AUDIENCE.to_owned(),
                leeway_secs: 30,
            }),
            // The per-key publish limit (5000/s by default) protects a gateway from a
            // runaway integration; the benchmark measures the gateway, not the limiter.
            publish_per_second: Some(1_000_000),
            publish_burst: Some(1_000_000),
            pin_cpus: cpus.map(str::to_owned),
            database,
            ..GatewayOptions::default()
        };
        tweak(&mut options);
        let gateway = Gateway::start(options).await?;
        let addr: SocketAddr = gateway
            .addr()
            .parse()
            .with_context(|| format!("the gateway's address {}", gateway.addr()))?;
        let key = gateway.tenant(TENANT)?.key.clone();
        let target = Target {
            addr,
            minter: Arc::new(Minter { secret }),
        };
        Ok(BenchGateway {
            gateway,
            target,
            key,
        })
    }

    /// Another node of this gateway's cluster (it must be on PostgreSQL): the same
    /// config, secrets and firm, on a port of its own.
    pub async fn another_node(&self) -> Result<BenchGateway> {
        let gateway = self.gateway.another_node().await?;
        let addr: SocketAddr = gateway
            .addr()
            .parse()
            .with_context(|| format!("the node's address {}", gateway.addr()))?;
        Ok(BenchGateway {
            gateway,
            target: Target {
                addr,
                minter: self.target.minter.clone(),
            },
            key: self.key.clone(),
        })
    }

    /// The gateway's process id.
    pub fn pid(&self) -> Result<u32> {
        self.gateway.pid()
    }

    /// The gateway's memory and CPU now.
    pub fn sample(&self) -> Result<Sample> {
        Sample::of(self.pid()?)
    }

    /// Adds the tail of the gateway's log to `error`: what the gateway said about it.
    pub fn explain(&self, error: anyhow::Error) -> anyhow::Error {
        let tail = self.gateway.log_tail(15);
        error.context(format!("the gateway's log ends with:\n{tail}"))
    }

    /// `http://127.0.0.1:port`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.target.addr)
    }
}

/// Creates `count` users by connecting each once (concurrently, unmeasured).
pub async fn provision(target: &Target, count: usize) -> Result<()> {
    // 64 at a time: each first connection creates a user through the store's writer,
    // which commits them in batches; more at once would only queue there.
    let mut opened = std::pin::pin!(ramp(target, count, 64));
    while let Some(result) = opened.next().await {
        let (_, session, _) = result.context("provisioning the benchmark's users")?;
        session.close().await;
    }
    Ok(())
}
