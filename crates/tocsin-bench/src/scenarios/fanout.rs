//! **fanout**: N live clients of one firm; tenant broadcasts (`tenant:bench`) at rising
//! rates, then a burst published as fast as the gateway takes it.
//!
//! Each step reports deliveries per second, publish → parsed latency (p50/p99/max),
//! losses and out-of-order deliveries (both must be 0) and clients disconnected; the
//! rates stop rising after a step that loses or whose p99 explodes. In the same run, a
//! raw-socket writer pinned to the gateway's core ([`crate::rawsocket`]) writes frames
//! of the same size to as many loopback sockets, one `write()` each: the burst's figure
//! is reported as a fraction of that ceiling.

pub mod step;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::client::{RAMP_CONCURRENCY, Session, Tally, ramp};
use crate::fixture::{BenchGateway, provision};
use crate::publisher::Publisher;
use crate::rawsocket;
use crate::report::{Report, round};
use crate::stats::Spread;
use step::{Pace, Step};

/// Broadcasts per second of the rising steps.
const RATES: &[u32] = &[1, 5, 10, 15, 20, 30];
/// A step whose p99 is beyond this has left the regime worth measuring.
const P99_EXPLODED_MS: f64 = 1000.0;
/// Rounds of the raw-socket baseline written to idle readers, as one broadcast is.
const PACED_ROUNDS: usize = 5;
/// The targets (normal scale, 10k clients).
const TARGET_DELIVERIES_PER_S: f64 = 150_000.0;
const TARGET_P99_MS_AT_5: f64 = 80.0;

/// One run: every step it got to, and the baseline measured after it.
struct Run {
    steps: Vec<Step>,
    raw: rawsocket::Baseline,
    frame_bytes: usize,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> Result<Report> {
    let clients = ctx.pick(20, 10_000);
    let step_duration = ctx.pick(Duration::from_secs(1), Duration::from_secs(4));
    let burst = ctx.pick(20, 100);
    let mut report = Report::new("fanout");
    report
        .param("clients", clients)
        .param("rates_per_s", RATES)
        .param("step_s", step_duration.as_secs_f64())
        .param("burst_broadcasts", burst)
        .param("runs", ctx.runs);
    let mut runs = Vec::new();
    for _ in 0..ctx.runs {
        runs.push(
            one_run(ctx, clients, step_duration, burst)
                .await
                .with_context(|| format!("fanout at {clients} clients"))?,
        );
    }
    summarise(&mut report, &runs, clients);
    Ok(report)
}

async fn one_run(ctx: &Ctx, clients: usize, step_duration: Duration, burst: usize) -> Result<Run> {
    let bench = BenchGateway::start(ctx, |_| {}).await?;
    let log = |error: anyhow::Error| {
        let log = bench.gateway.log_tail(usize::MAX);
        let problems: Vec<&str> = log
            .lines()
            .filter(|line| line.contains("ERROR") || line.contains("WARN"))
            .take(10)
            .collect();
        error.context(format!(
            "the gateway's first warnings:\n{}",
            problems.join("\n")
        ))
    };
    provision(&bench.target, clients).await.map_err(log)?;
    let tally = Arc::new(Tally::default());
    let stop = CancellationToken::new();
    let holders = open_all(&bench, clients, &tally, &stop)
        .await
        .map_err(log)?;
    let publisher = Publisher::new(&bench.base_url(), &bench.key)?;
    let mut sequence = 0;

    // One broadcast first: every client proves live, and its frame gives the size the
    // raw-socket baseline writes.
    let live = clients as u64;
    let pids = [bench.pid()?];
    let warm = step::run(
        &pids,
        &publisher,
        &tally,
        live,
        Pace::Burst { count: 1 },
        &mut sequence,
    )
    .await?;
    anyhow::ensure!(
        warm.losses == 0 && warm.disconnected == 0,
        "the warm-up broadcast did not reach every client: {warm:?}"
    );
    let frame_bytes = tally.frame_bytes();

    let mut steps = Vec::new();
    for &per_second in RATES {
        let live = live - tally.counts().closed;
        let pace = Pace::Rate {
            per_second,
            duration: step_duration,
        };
        let step = step::run(&pids, &publisher, &tally, live, pace, &mut sequence).await?;
        eprintln!("  fanout {}", describe(&step));
        let broke =
            step.losses > 0 || step.disconnected > 0 || step.latency.p99_ms > P99_EXPLODED_MS;
        steps.push(step);
        if broke {
            break;
        }
    }
    let live = live - tally.counts().closed;
    let step = step::run(
        &pids,
        &publisher,
        &tally,
        live,
        Pace::Burst { count: burst },
        &mut sequence,
    )
    .await?;
    eprintln!("  fanout {}", describe(&step));
    steps.push(step);

    // Free the descriptors (the baseline needs as many again) before measuring it.
    stop.cancel();
    for holder in holders {
        let _ = holder.await;
    }
    drop(bench);
    let raw = rawsocket::baseline(
        ctx.gateway_cpus.as_deref(),
        clients,
        frame_bytes,
        PACED_ROUNDS,
        burst,
    )
    .await?;
    eprintln!(
        "  fanout raw-socket baseline: {} deliveries/s ({} B frames; writer alone {} /s, {} µs CPU per write); one round to idle readers {} ms ({} µs CPU per write)",
        round(raw.deliveries_per_s),
        raw.wire_bytes,
        round(raw.writer_per_s),
        round(raw.burst_cpu_us),
        round(raw.paced_round_ms),
        round(raw.paced_cpu_us),
    );
    Ok(Run {
        steps,
        raw,
        frame_bytes,
    })
}

/// Opens `clients` live sessions, each receiving into `tally` until `stop`.
async fn open_all(
    bench: &BenchGateway,
    clients: usize,
    tally: &Arc<Tally>,
    stop: &CancellationToken,
) -> Result<Vec<tokio::task::JoinHandle<Option<Session>>>> {
    let mut holders = Vec::with_capacity(clients);
    let mut opened = std::pin::pin!(ramp(&bench.target, clients, RAMP_CONCURRENCY));
    while let Some(result) = opened.next().await {
        let (_, session, _) = result?;
        holders.push(tokio::spawn(session.receive(tally.clone(), stop.clone())));
    }
    Ok(holders)
}

/// One human line for a step.
pub fn describe(step: &Step) -> String {
    let offered = step.offered_per_s.map_or(String::new(), |offered| {
        format!(" (offered {})", round(offered))
    });
    format!(
        "{}: {} deliveries/s{offered}, p50 {} / p99 {} / max {} ms, {} lost, {} out of order, {} disconnected, CPU gateway {} ({} µs per delivery) load {}, publish answered p50 {} ms",
        step.name,
        round(step.deliveries_per_s),
        round(step.latency.p50_ms),
        round(step.latency.p99_ms),
        round(step.latency.max_ms),
        step.losses,
        step.out_of_order,
        step.disconnected,
        round(step.gateway_cpu),
        round(step.gateway_cpu_us_per_delivery),
        round(step.load_cpu),
        round(step.publish.p50_ms),
    )
}

/// Medians over the runs, per step, and the targets.
fn summarise(report: &mut Report, runs: &[Run], clients: usize) {
    let mut by_step: BTreeMap<String, Vec<&Step>> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    for run in runs {
        for step in &run.steps {
            if !by_step.contains_key(&step.name) {
                order.push(step.name.clone());
            }
            by_step.entry(step.name.clone()).or_default().push(step);
        }
    }
    let mut worst_losses = 0u64;
    let mut worst_out_of_order = 0u64;
    for name in &order {
        let steps = &by_step[name];
        let spread =
            |f: fn(&Step) -> f64| Spread::of(&steps.iter().map(|s| f(s)).collect::<Vec<_>>());
        let losses = steps.iter().map(|s| s.losses).max().unwrap_or(0);
        let out_of_order = steps.iter().map(|s| s.out_of_order).max().unwrap_or(0);
        let disconnected = steps.iter().map(|s| s.disconnected).max().unwrap_or(0);
        worst_losses = worst_losses.max(losses);
        worst_out_of_order = worst_out_of_order.max(out_of_order);
        let rate = spread(|s| s.deliveries_per_s);
        let p50 = spread(|s| s.latency.p50_ms);
        let p99 = spread(|s| s.latency.p99_ms);
        let max = spread(|s| s.latency.max_ms);
        report.metric(
            name,
            serde_json::json!({
                "runs": steps.len(),
                "offered_per_s": steps[0].offered_per_s,
                "deliveries_per_s": rate,
                "p50_ms": p50,
                "p99_ms": p99,
                "max_ms": max,
                "losses_worst": losses,
                "out_of_order_worst": out_of_order,
                "disconnected_worst": disconnected,
                "gateway_cpu": spread(|s| s.gateway_cpu),
                "gateway_cpu_us_per_delivery": spread(|s| s.gateway_cpu_us_per_delivery),
                "load_cpu": spread(|s| s.load_cpu),
                "publish_answered_p50_ms": spread(|s| s.publish.p50_ms),
            }),
        );
        let offered = steps[0].offered_per_s.map_or(String::new(), |offered| {
            format!(" (offered {})", round(offered))
        });
        report.line(format!(
            "{name}: {} deliveries/s{offered}, p50 {} / p99 {} / max {} ms, lost {losses}, out of order {out_of_order}, disconnected {disconnected}",
            round(rate.median),
            round(p50.median),
            round(p99.median),
            round(max.median),
        ));
    }
    let raw = Spread::of(
        &runs
            .iter()
            .map(|r| r.raw.deliveries_per_s)
            .collect::<Vec<_>>(),
    );
    let burst_rate = |run: &Run| {
        run.steps
            .iter()
            .find(|s| s.name == "burst")
            .map_or(0.0, |s| s.deliveries_per_s)
    };
    let gateway = Spread::of(&runs.iter().map(burst_rate).collect::<Vec<_>>());
    let fraction = Spread::of(
        &runs
            .iter()
            .map(|r| burst_rate(r) / r.raw.deliveries_per_s.max(1.0))
            .collect::<Vec<_>>(),
    );
    let frame_bytes = runs.first().map_or(0, |r| r.frame_bytes);
    let raw_round = Spread::of(
        &runs
            .iter()
            .map(|r| r.raw.paced_round_ms)
            .collect::<Vec<_>>(),
    );
    report
        .metric("raw_socket_deliveries_per_s", &raw)
        .metric("raw_socket_one_round_ms", &raw_round)
        .metric(
            "raw_socket_cpu_us_per_write_burst",
            Spread::of(&runs.iter().map(|r| r.raw.burst_cpu_us).collect::<Vec<_>>()),
        )
        .metric(
            "raw_socket_cpu_us_per_write_paced",
            Spread::of(&runs.iter().map(|r| r.raw.paced_cpu_us).collect::<Vec<_>>()),
        )
        .metric("burst_fraction_of_raw", &fraction)
        .metric("frame_bytes", frame_bytes)
        .line(format!(
            "raw-socket baseline (one write() per delivery, {frame_bytes} B frames, same core): {} deliveries/s; the gateway's burst is {}% of it",
            round(raw.median),
            round(fraction.median * 100.0),
        ))
        .line(format!(
            "raw-socket baseline, one frame to each of {clients} idle readers (one broadcast's floor): {} ms",
            round(raw_round.median),
        ))
        .at_most("losses", worst_losses as f64, 0.0, "")
        .at_most("out-of-order deliveries", worst_out_of_order as f64, 0.0, "");
    if clients >= 10_000 {
        report.at_least(
            &format!("fan-out deliveries/s at {clients} clients (burst)"),
            gateway.median,
            TARGET_DELIVERIES_PER_S,
            "/s",
        );
        match by_step.get("rate5") {
            Some(steps) => {
                let p99 = Spread::of(&steps.iter().map(|s| s.latency.p99_ms).collect::<Vec<_>>());
                report.at_most(
                    "p99 at 5 broadcasts/s",
                    p99.median,
                    TARGET_P99_MS_AT_5,
                    "ms",
                );
            }
            None => {
                report.at_most(
                    "p99 at 5 broadcasts/s (never reached)",
                    f64::INFINITY,
                    TARGET_P99_MS_AT_5,
                    "ms",
                );
            }
        }
    }
}
