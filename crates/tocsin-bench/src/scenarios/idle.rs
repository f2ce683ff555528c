//! **idle**: ramp N authenticated, caught-up connections and hold them.
//!
//! Reports the connect rate, handshake latency (TCP connect → 101, and → `caught_up`),
//! the gateway's RSS growth per connection, and its CPU per idle connection per second
//! over one full heartbeat period (every connection is pinged once in it).

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::{Ctx, Scale};
use crate::client::{RAMP_CONCURRENCY, Tally, ramp};
use crate::fixture::{BenchGateway, provision};
use crate::report::{Report, round};
use crate::stats::{Latencies, Spread};

/// The gateway's default heartbeat period: the idle window covers one.
const HEARTBEAT: Duration = Duration::from_secs(30);

/// One run at one N.
struct Run {
    connect_rate: f64,
    upgrade_p50_ms: f64,
    upgrade_p99_ms: f64,
    ready_p50_ms: f64,
    ready_p99_ms: f64,
    bytes_per_connection: f64,
    cpu_us_per_connection_second: f64,
    rss_after_mb: f64,
}

/// Runs the scenario at every N of the scale.
pub async fn run(ctx: &Ctx) -> Result<Report> {
    let wanted: Vec<usize> = match ctx.scale {
        _ if !ctx.sizes.is_empty() => ctx.sizes.clone(),
        Scale::Smoke => vec![50],
        Scale::Normal => vec![1_000, 10_000],
        Scale::Full => vec![1_000, 10_000, 50_000],
    };
    // Each connection is one descriptor here and one in the gateway, under the same
    // limit; keep some for the gateway's database, logs and listener.
    let most = usize::try_from(ctx.fd_limit.saturating_sub(500)).unwrap_or(usize::MAX);
    let sizes: Vec<usize> = wanted.iter().map(|&n| n.min(most)).collect();
    let window = ctx.pick(Duration::from_secs(2), HEARTBEAT);
    let mut report = Report::new("idle");
    if sizes != wanted {
        report.line(format!(
            "asked for {wanted:?} connections, but the open-file limit is {} (ulimit -Hn; raising it needs CAP_SYS_RESOURCE): ran {sizes:?}",
            ctx.fd_limit
        ));
    }
    report
        .param("sizes", &sizes)
        .param("fd_limit", ctx.fd_limit)
        .param("runs", ctx.runs)
        .param("idle_window_s", window.as_secs())
        .param("ramp_concurrency", RAMP_CONCURRENCY);
    for &n in &sizes {
        let mut runs = Vec::new();
        for _ in 0..ctx.runs {
            runs.push(
                one_run(ctx, n, window)
                    .await
                    .with_context(|| format!("idle at {n}"))?,
            );
        }
        let spread = |f: fn(&Run) -> f64| Spread::of(&runs.iter().map(f).collect::<Vec<_>>());
        let bytes = spread(|r| r.bytes_per_connection);
        let rate = spread(|r| r.connect_rate);
        let ready_p99 = spread(|r| r.ready_p99_ms);
        let cpu = spread(|r| r.cpu_us_per_connection_second);
        let figures = serde_json::json!({
            "connections": n,
            "connect_rate_per_s": rate,
            "upgrade_p50_ms": spread(|r| r.upgrade_p50_ms),
            "upgrade_p99_ms": spread(|r| r.upgrade_p99_ms),
            "ready_p50_ms": spread(|r| r.ready_p50_ms),
            "ready_p99_ms": ready_p99,
            "bytes_per_connection": bytes,
            "cpu_us_per_connection_second": cpu,
            "gateway_rss_mb": spread(|r| r.rss_after_mb),
        });
        report.metric(&format!("n{n}"), figures);
        report.line(format!(
            "{n} connections: {} B each, {} connections/s, ready p50 {} ms / p99 {} ms, {} µs CPU per connection per s",
            round(bytes.median),
            round(rate.median),
            round(spread(|r| r.ready_p50_ms).median),
            round(ready_p99.median),
            round(cpu.median),
        ));
        if n == 10_000 {
            report
                .at_most(
                    "bytes per idle connection at 10k",
                    bytes.median,
                    5120.0,
                    "B",
                )
                .at_least("connections per second at 10k", rate.median, 5000.0, "/s");
        }
    }
    Ok(report)
}

async fn one_run(ctx: &Ctx, n: usize, window: Duration) -> Result<Run> {
    let bench = BenchGateway::start(ctx, |_| {}).await?;
    provision(&bench.target, n)
        .await
        .map_err(|error| bench.explain(error))?;
    // Let the provisioning connections' teardown finish before the baseline.
    settle(&bench).await?;
    let before = bench.sample()?;

    let tally = Arc::new(Tally::default());
    let stop = CancellationToken::new();
    let mut upgrade = Latencies::new();
    let mut ready = Latencies::new();
    let mut holders = Vec::with_capacity(n);
    let ramp_start = std::time::Instant::now();
    let mut opened = std::pin::pin!(ramp(&bench.target, n, RAMP_CONCURRENCY));
    while let Some(result) = opened.next().await {
        let (_, session, handshake) = result?;
        upgrade.record(handshake.upgrade_micros());
        ready.record(handshake.ready_micros());
        holders.push(tokio::spawn(session.receive(tally.clone(), stop.clone())));
    }
    let ramp = ramp_start.elapsed();

    settle(&bench).await?;
    let held = bench.sample()?;
    tokio::time::sleep(window).await;
    let after = bench.sample()?;
    let dropped = tally.counts().closed;
    anyhow::ensure!(
        dropped == 0,
        "{dropped} of {n} idle connections were closed by the gateway during the idle window"
    );

    stop.cancel();
    for holder in holders {
        if let Ok(Some(session)) = holder.await {
            drop(session);
        }
    }
    let n_f = n as f64;
    let cpu_share = held.cpu_share_until(&after);
    Ok(Run {
        connect_rate: n_f / ramp.as_secs_f64(),
        upgrade_p50_ms: upgrade.summary().p50_ms,
        upgrade_p99_ms: upgrade.summary().p99_ms,
        ready_p50_ms: ready.summary().p50_ms,
        ready_p99_ms: ready.summary().p99_ms,
        bytes_per_connection: (held.rss_bytes as f64 - before.rss_bytes as f64) / n_f,
        cpu_us_per_connection_second: cpu_share * 1e6 / n_f,
        rss_after_mb: held.rss_bytes as f64 / 1e6,
    })
}

/// Waits until the gateway's RSS stops moving (two equal readings 250 ms apart, at most
/// 5 s), so a sample measures a steady state rather than work in flight.
async fn settle(bench: &BenchGateway) -> Result<()> {
    let mut last = bench.sample()?.rss_bytes;
    for _ in 0..20 {
        tokio::time::sleep(Duration::from_millis(250)).await;
        let now = bench.sample()?.rss_bytes;
        if now == last {
            return Ok(());
        }
        last = now;
    }
    Ok(())
}
