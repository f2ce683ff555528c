//! The scenarios of `cargo xtask bench`, each bounded in time and reporting one
//! [`Report`]. Every scenario starts its own fresh gateway.

pub mod cluster;
pub mod deadlines;
pub mod desktop;
pub mod fanout;
pub mod idle;
pub mod replay;
pub mod storm;
pub mod unicast;

use anyhow::Result;

use crate::report::Report;

/// How big a run is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Scale {
    /// Tiny N, one run: proves the tool works (CI). Figures mean nothing.
    Smoke,
    /// The sizes the targets are stated at (1k and 10k clients).
    Normal,
    /// Also 50k idle connections.
    Full,
}

/// What every scenario gets.
#[derive(Debug, Clone)]
pub struct Ctx {
    /// Smoke, normal or full.
    pub scale: Scale,
    /// Runs per measurement, for medians.
    pub runs: usize,
    /// `taskset -c` list for the gateway (`None`: not pinned).
    pub gateway_cpus: Option<String>,
    /// Idle connection counts asked for on the command line (empty: the scale's).
    pub sizes: Vec<usize>,
    /// The open-file limit of this process and the gateway (they share it).
    pub fd_limit: u64,
    /// With `--database postgres`: the cluster every gateway of the run stores in.
    pub postgres: Option<std::sync::Arc<tocsin_harness::postgres::PgCluster>>,
    /// Databases created on it so far (each gateway gets a fresh one).
    pub databases: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl Ctx {
    /// `sqlite` or `postgres`, for the reports.
    pub fn database_name(&self) -> &'static str {
        if self.postgres.is_some() {
            "postgres"
        } else {
            "sqlite"
        }
    }

    /// A fresh PostgreSQL database for the next gateway, with `--database postgres`.
    pub fn fresh_database(&self) -> anyhow::Result<Option<String>> {
        let Some(cluster) = &self.postgres else {
            return Ok(None);
        };
        let n = self
            .databases
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        Ok(Some(cluster.create_database(&format!("bench_{n}"))?))
    }

    /// `normal` unless this is a smoke run.
    pub fn pick<T>(&self, smoke: T, normal: T) -> T {
        match self.scale {
            Scale::Smoke => smoke,
            Scale::Normal | Scale::Full => normal,
        }
    }
}

/// Every scenario, in the order they run.
pub const ALL: &[&str] = &[
    "idle",
    "fanout",
    "unicast",
    "replay",
    "storm",
    "cluster",
    "desktop",
    "deadlines",
];

/// Runs one scenario by name.
pub async fn run(name: &str, ctx: &Ctx) -> Result<Report> {
    match name {
        "idle" => idle::run(ctx).await,
        "fanout" => fanout::run(ctx).await,
        "unicast" => unicast::run(ctx).await,
        "replay" => replay::run(ctx).await,
        "storm" => storm::run(ctx).await,
        "cluster" => cluster::run(ctx).await,
        "desktop" => desktop::run(ctx).await,
        "deadlines" => deadlines::run(ctx).await,
        other => anyhow::bail!(
            "unknown scenario '{other}'; the scenarios are: {}",
            ALL.join(", ")
        ),
    }
}
