//! **unicast**: publish to individual users at rising rates until p99 > 100 ms.
//!
//! Each rate is measured [`REPEATS`] times in a row and the ramp decides on the
//! median of them (by delivery p99): a single outlier — a checkpoint, the first
//! seconds of a fresh process — once ended the ramp after its first step.
//!
//! N live users (one connection each) receive `user:<id>` notifications published
//! round-robin with single `POST /v1/publish` requests over many keep-alive HTTP
//! connections, as a firm's software does. Each step offers a fixed rate open-loop:
//! request `i` is due at `start + i / rate`, and its body is stamped with that *due*
//! time, so a gateway (or generator) that falls behind shows up as latency instead of
//! silently lowering the rate (no coordinated omission). Per step: achieved 2xx/s,
//! deliveries/s, publish → delivery p50/p99/max, HTTP latency p50/p99, errors, and the
//! load generator's own CPU (one core: at ~100 % the figures measure us, not the
//! gateway). Then one closed-loop run of the batch endpoint for comparison.
//!
//! Each run first ramps the same users and rates against the in-memory peer
//! ([`crate::mempeer`]: same JSON, same frame, nothing stored), pinned to the same
//! core, so that Tocsin's figure is reported as a ratio of it measured on the same
//! machine in the same minutes (the goal: ≥ 2× the peer's sustained rate,
//! and p99 ≤ 20 ms at the peer's rate). A step is *sustained* when its median
//! repeat kept p99 ≤ 100 ms, 80 % of the offered rate and no errors; the ramp stops
//! at the first that is not.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use futures_util::StreamExt;
use serde_json::json;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::client::{Counts, Session, Tally, Target, source_ip};
use crate::clock;
use crate::fixture::{BenchGateway, provision, user_id};
use crate::mempeer::MemPeer;
use crate::procfs::{Sample, cpu_seconds};
use crate::publisher::{Publisher, dossier_update_text};
use crate::report::{Report, round};
use crate::stats::Latencies;

/// Requests in flight at most (and so keep-alive connections): enough for 60k/s at
/// 15 ms each, without which a slow answer would throttle the offered rate.
const IN_FLIGHT: usize = 1024;
/// Steps measured per rate; the median one is reported and decides.
const REPEATS: usize = 3;
/// The delivery p99 past which the ramp stops.
const STOP_P99_MS: f64 = 100.0;
/// The target from the benchmark issue.
const TARGET_RATE: f64 = 30_000.0;
/// … at this delivery p99.
const TARGET_P99_MS: f64 = 20.0;
/// Notifications per batch request in the batch comparison.
const BATCH_SIZE: usize = 100;
/// Batch requests in flight in the batch comparison.
const BATCH_IN_FLIGHT: usize = 8;

/// What one step measured.
#[derive(Debug, Clone, serde::Serialize)]
struct Step {
    offered_per_s: f64,
    achieved_per_s: f64,
    deliveries_per_s: f64,
    delivery_p50_ms: f64,
    delivery_p99_ms: f64,
    delivery_max_ms: f64,
    http_p50_ms: f64,
    http_p99_ms: f64,
    errors: u64,
    undelivered: u64,
    out_of_order: u64,
    gateway_cpu: f64,
    /// Gateway CPU time per publish (HTTP, store and delivery), robust to a shared
    /// machine where the gateway's core is not all its own.
    gateway_cpu_us_per_publish: f64,
    load_cpu: f64,
}

impl Step {
    /// Whether the server kept up with this step's rate: the ramp goes on past it.
    fn sustained(&self) -> bool {
        self.delivery_p99_ms <= STOP_P99_MS
            && self.achieved_per_s >= self.offered_per_s * 0.8
            && self.errors == 0
    }

    /// Whether it met the target latency.
    fn on_target(&self) -> bool {
        self.delivery_p99_ms <= TARGET_P99_MS && self.errors == 0
    }
}

/// The highest delivery rate among `steps` that `keep` accepts (0 when none does).
fn best(steps: &[Step], keep: impl Fn(&Step) -> bool) -> f64 {
    steps
        .iter()
        .filter(|step| keep(step))
        .map(|step| step.deliveries_per_s)
        .fold(0.0, f64::max)
}

/// Runs the ramp (once per run; the best rate meeting the target is reported).
pub async fn run(ctx: &Ctx) -> Result<Report> {
    let users = ctx.pick(10, 1_000);
    let rates: Vec<f64> = ctx.pick(
        vec![200.0, 500.0],
        vec![
            5_000.0, 10_000.0, 20_000.0, 30_000.0, 40_000.0, 50_000.0, 60_000.0, 80_000.0,
        ],
    );
    let step_len = ctx.pick(Duration::from_secs(1), Duration::from_secs(4));
    let mut report = Report::new("unicast");
    report
        .param("users", users)
        .param("rates", &rates)
        .param("step_s", step_len.as_secs())
        .param("repeats_per_rate", REPEATS)
        .param("in_flight", IN_FLIGHT)
        .param("runs", ctx.runs)
        .param("synchronous", "full");
    let (mut on_target, mut sustained, mut peer_sustained) = (Vec::new(), Vec::new(), Vec::new());
    let (mut ratio, mut ratio_on_target) = (Vec::new(), Vec::new());
    for run in 0..ctx.runs {
        let steps = one_run(ctx, users, &rates, step_len)
            .await
            .with_context(|| format!("unicast run {run}"))?;
        let gateway = best(&steps.gateway, Step::sustained);
        let peer = best(&steps.peer, Step::sustained);
        on_target.push(best(&steps.gateway, Step::on_target));
        sustained.push(gateway);
        peer_sustained.push(peer);
        // Ratios within a run: both servers saw the same machine.
        ratio.push(ratio_of(gateway, peer));
        ratio_on_target.push(ratio_of(best(&steps.gateway, Step::on_target), peer));
        describe_steps(&mut report, run, "gateway", &steps.gateway);
        describe_steps(&mut report, run, "in-memory peer", &steps.peer);
        let batch = &steps.batch;
        report.line(format!(
            "run {run} batch endpoint ({BATCH_SIZE} per request, {BATCH_IN_FLIGHT} in flight): {} notifications/s, delivery p99 {} ms, {} µs gateway CPU per notification",
            round(batch.achieved_per_s),
            round(batch.delivery_p99_ms),
            round(batch.gateway_cpu_us_per_publish)
        ));
        report.line(format!(
            "run {run}: gateway {} deliveries/s sustained ({} at p99 ≤ 20 ms), in-memory peer {}: {}× the peer",
            round(gateway),
            round(best(&steps.gateway, Step::on_target)),
            round(peer),
            round_ratio(ratio_of(gateway, peer)),
        ));
        report.metric(&format!("run{run}_steps"), &steps.gateway);
        report.metric(&format!("run{run}_peer_steps"), &steps.peer);
        report.metric(&format!("run{run}_batch"), &steps.batch);
    }
    let spread = crate::stats::Spread::of(&on_target);
    report.metric("sustained_per_s_at_p99_20ms", &spread);
    report.metric("sustained_per_s", crate::stats::Spread::of(&sustained));
    report.metric(
        "peer_sustained_per_s",
        crate::stats::Spread::of(&peer_sustained),
    );
    let ratio = crate::stats::Spread::of(&ratio);
    let ratio_on_target = crate::stats::Spread::of(&ratio_on_target);
    report.metric("ratio_to_peer", &ratio);
    report.metric("ratio_to_peer_at_p99_20ms", &ratio_on_target);
    report.at_least(
        "durable unicast deliveries/s with delivery p99 ≤ 20 ms",
        spread.median,
        TARGET_RATE,
        "/s",
    );
    report.at_least(
        "sustained durable deliveries/s ÷ the in-memory peer's",
        ratio.median,
        2.0,
        "×",
    );
    report.at_least(
        "deliveries/s at p99 ≤ 20 ms ÷ the in-memory peer's sustained",
        ratio_on_target.median,
        1.0,
        "×",
    );
    Ok(report)
}

/// `ours ÷ peer`; undefined (NaN, never "met") when the peer sustained no step: a
/// disturbed run says nothing about the ratio.
fn ratio_of(ours: f64, peer: f64) -> f64 {
    if peer > 0.0 { ours / peer } else { f64::NAN }
}

/// Two decimals: enough for a ratio.
fn round_ratio(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

/// One line per step of a ramp of `server`.
fn describe_steps(report: &mut Report, run: usize, server: &str, steps: &[Step]) {
    for step in steps {
        report.line(format!(
            "run {run} {server} offered {}/s: {} publishes/s, {} deliveries/s, delivery p50 {} / p99 {} / max {} ms, HTTP p50 {} / p99 {} ms, {} errors, server CPU {} % ({} µs per publish), load CPU {} %",
            round(step.offered_per_s),
            round(step.achieved_per_s),
            round(step.deliveries_per_s),
            round(step.delivery_p50_ms),
            round(step.delivery_p99_ms),
            round(step.delivery_max_ms),
            round(step.http_p50_ms),
            round(step.http_p99_ms),
            step.errors,
            round(step.gateway_cpu * 100.0),
            round(step.gateway_cpu_us_per_publish),
            round(step.load_cpu * 100.0),
        ));
        if step.load_cpu > 0.9 {
            report.line(format!(
                "  ↳ the load generator used {} % of its core: this step may measure it, not the server",
                round(step.load_cpu * 100.0)
            ));
        }
    }
}

/// What one run measured: the gateway's ramp and batch run, the peer's ramp.
struct RunSteps {
    gateway: Vec<Step>,
    batch: Step,
    peer: Vec<Step>,
}

/// The in-memory peer's ramp, then a fresh gateway's ramp and batch run, each
/// server pinned to the same core.
async fn one_run(ctx: &Ctx, users: usize, rates: &[f64], step_len: Duration) -> Result<RunSteps> {
    let bench = BenchGateway::start(ctx, |_| {}).await?;
    let peer = {
        let peer = MemPeer::start(
            ctx.gateway_cpus.as_deref(),
            &bench.key,
            &bench.target.minter,
        )
        .await?;
        let target = Target {
            addr: peer.addr,
            minter: bench.target.minter.clone(),
        };
        let server = Server::new(peer.pid()?, target, &bench.key)?;
        let (steps, _) = server.ramp(users, rates, step_len, false).await?;
        steps
    };
    provision(&bench.target, users).await?;
    let server = Server::new(bench.pid()?, bench.target.clone(), &bench.key)?;
    let (gateway, batch) = server.ramp(users, rates, step_len, true).await?;
    Ok(RunSteps {
        gateway,
        batch: batch.context("the batch run")?,
        peer,
    })
}

/// A server under test: the gateway or the in-memory peer.
struct Server {
    pid: u32,
    target: Target,
    publisher: Publisher,
}

impl Server {
    fn new(pid: u32, target: Target, key: &str) -> Result<Server> {
        let publisher = Publisher::new(&format!("http://{}", target.addr), key)?;
        Ok(Server {
            pid,
            target,
            publisher,
        })
    }

    /// Its memory and CPU now.
    fn sample(&self) -> Result<Sample> {
        Sample::of(self.pid)
    }

    /// Connects the users, then steps through `rates` until one is not sustained;
    /// with `batch`, ends with the batch endpoint's closed loop.
    async fn ramp(
        &self,
        users: usize,
        rates: &[f64],
        step_len: Duration,
        batch: bool,
    ) -> Result<(Vec<Step>, Option<Step>)> {
        let tally = Arc::new(Tally::default());
        let stop = CancellationToken::new();
        let mut holders = Vec::with_capacity(users);
        for index in 0..users {
            let (session, _) = Session::open(
                &self.target,
                &user_id(index),
                source_ip(index),
                Default::default(),
            )
            .await?;
            holders.push(tokio::spawn(session.receive(tally.clone(), stop.clone())));
        }
        let streams: Arc<Vec<String>> =
            Arc::new((0..users).map(|i| format!("user:{}", user_id(i))).collect());
        // Open the keep-alive connections before the first step, outside any measurement.
        warm_up(&self.publisher, &streams, &tally).await?;

        let mut steps = Vec::new();
        for &rate in rates {
            let mut repeats = Vec::with_capacity(REPEATS);
            for _ in 0..REPEATS {
                repeats.push(one_step(self, &streams, &tally, rate, step_len).await?);
            }
            let step = median_step(repeats);
            let sustained = step.sustained();
            steps.push(step);
            if !sustained {
                break;
            }
        }
        let batch = match batch {
            true => Some(batch_step(self, &streams, &tally, step_len).await?),
            false => None,
        };
        let closed = tally.counts().closed;
        anyhow::ensure!(
            closed == 0,
            "{closed} receiving connections were closed by the server"
        );
        stop.cancel();
        for holder in holders {
            let _ = holder.await;
        }
        Ok((steps, batch))
    }
}

/// The median of a rate's repeated steps, by delivery p99.
fn median_step(mut repeats: Vec<Step>) -> Step {
    repeats.sort_by(|a, b| a.delivery_p99_ms.total_cmp(&b.delivery_p99_ms));
    let middle = repeats.len() / 2;
    repeats.swap_remove(middle)
}

/// Sends `IN_FLIGHT` publishes at once so that the pool holds its connections.
async fn warm_up(publisher: &Publisher, streams: &Arc<Vec<String>>, tally: &Tally) -> Result<()> {
    let sent = IN_FLIGHT as u64;
    let results: Vec<Result<reqwest::StatusCode>> = futures_util::stream::iter(0..IN_FLIGHT)
        .map(|i| {
            let body = dossier_update_text(&streams[i % streams.len()], i as u64, clock::now_us());
            publisher.publish_text(body)
        })
        .buffer_unordered(IN_FLIGHT)
        .collect()
        .await;
    for result in results {
        let status = result?;
        anyhow::ensure!(status.is_success(), "warm-up publish answered {status}");
    }
    drain(tally, sent, Duration::from_secs(10)).await;
    tally.take_latencies();
    Ok(())
}

/// Waits until `expected` deliveries in total were seen (or `within` passed).
async fn drain(tally: &Tally, expected: u64, within: Duration) {
    let deadline = Instant::now() + within;
    while tally.counts().delivered < expected && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Counters shared by a step's senders.
#[derive(Default)]
struct Sent {
    ok: AtomicU64,
    errors: AtomicU64,
    http: std::sync::Mutex<Latencies>,
}

async fn one_step(
    server: &Server,
    streams: &Arc<Vec<String>>,
    tally: &Tally,
    rate: f64,
    step_len: Duration,
) -> Result<Step> {
    let total = (rate * step_len.as_secs_f64()) as u64;
    let window = Window::open(server, tally)?;
    let (start, start_us) = (window.start, window.start_us);
    let sent = Arc::new(Sent::default());
    let next = Arc::new(AtomicU64::new(0));
    let interval_ns = 1e9 / rate;
    let mut senders = Vec::with_capacity(IN_FLIGHT);
    for _ in 0..IN_FLIGHT {
        let (publisher, streams, sent, next) = (
            server.publisher.clone(),
            streams.clone(),
            sent.clone(),
            next.clone(),
        );
        senders.push(tokio::spawn(async move {
            let mut local = Latencies::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= total {
                    break;
                }
                let due_ns = (i as f64 * interval_ns) as u64;
                tokio::time::sleep_until(start + Duration::from_nanos(due_ns)).await;
                let due_us = start_us + due_ns / 1000;
                let body = dossier_update_text(&streams[i as usize % streams.len()], i, due_us);
                let sent_at = clock::now_us();
                match publisher.publish_text(body).await {
                    Ok(status) if status.is_success() => {
                        local.record(clock::now_us().saturating_sub(sent_at));
                        sent.ok.fetch_add(1, Ordering::Relaxed);
                    }
                    _ => {
                        sent.errors.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            if let Ok(mut http) = sent.http.lock() {
                http.merge(&local);
            }
        }));
    }
    for sender in senders {
        sender.await.context("a publishing task failed")?;
    }
    let http = sent
        .http
        .lock()
        .map(|mut h| std::mem::take(&mut *h))
        .unwrap_or_default();
    let (ok, errors) = (
        sent.ok.load(Ordering::Relaxed),
        sent.errors.load(Ordering::Relaxed),
    );
    window.close(server, tally, rate, ok, errors, &http).await
}

/// Closed loop on `POST /v1/publish/batch`: `BATCH_IN_FLIGHT` requests of
/// `BATCH_SIZE` round-robin notifications, for `step_len`.
async fn batch_step(
    server: &Server,
    streams: &Arc<Vec<String>>,
    tally: &Tally,
    step_len: Duration,
) -> Result<Step> {
    let window = Window::open(server, tally)?;
    let start = window.start;
    let sequence = Arc::new(AtomicU64::new(0));
    let mut senders = Vec::new();
    for _ in 0..BATCH_IN_FLIGHT {
        let (publisher, streams, sequence) =
            (server.publisher.clone(), streams.clone(), sequence.clone());
        senders.push(tokio::spawn(async move {
            let (mut ok, mut errors, mut http) = (0_u64, 0_u64, Latencies::new());
            while start.elapsed() < step_len {
                let first = sequence.fetch_add(BATCH_SIZE as u64, Ordering::Relaxed);
                let now = clock::now_us();
                let items: Vec<serde_json::Value> = (first..first + BATCH_SIZE as u64)
                    .map(|i| {
                        let mut item = crate::publisher::dossier_update(
                            &streams[i as usize % streams.len()],
                            i,
                        );
                        item["body"] = json!(clock::stamp(now));
                        item
                    })
                    .collect();
                match publisher.publish_batch(&items).await {
                    Ok(results) => {
                        http.record(clock::now_us().saturating_sub(now));
                        ok += results.len() as u64;
                    }
                    Err(_) => errors += 1,
                }
            }
            (ok, errors, http)
        }));
    }
    let (mut ok, mut errors, mut http) = (0, 0, Latencies::new());
    for sender in senders {
        let (o, e, h) = sender.await.context("a batch publishing task failed")?;
        ok += o;
        errors += e;
        http.merge(&h);
    }
    window
        .close(server, tally, f64::NAN, ok, errors, &http)
        .await
}

/// A step's measuring window: the counters and clocks at its start.
struct Window {
    before: Counts,
    gateway: Sample,
    load_cpu_s: f64,
    start: Instant,
    start_us: u64,
}

impl Window {
    /// Starts measuring.
    fn open(server: &Server, tally: &Tally) -> Result<Window> {
        Ok(Window {
            before: tally.counts(),
            gateway: server.sample()?,
            load_cpu_s: cpu_seconds(std::process::id())?,
            start: Instant::now(),
            start_us: clock::now_us(),
        })
    }

    /// Called once the step's senders are done (`ok` publishes answered 2xx, `errors`
    /// failed, `http` their answer times): waits for the deliveries, then turns the
    /// window into a [`Step`]. `offered_per_s` is NaN for the closed-loop batch run.
    async fn close(
        self,
        server: &Server,
        tally: &Tally,
        offered_per_s: f64,
        ok: u64,
        errors: u64,
        http: &Latencies,
    ) -> Result<Step> {
        let send_elapsed = self.start.elapsed().as_secs_f64();
        drain(tally, self.before.delivered + ok, Duration::from_secs(10)).await;
        let after = tally.counts();
        let gateway_after = server.sample()?;
        let load_after = cpu_seconds(std::process::id())?;
        let delivered = after.delivered - self.before.delivered;
        let delivery_span_s = (after.last_delivery_us.saturating_sub(self.start_us)) as f64 / 1e6;
        let deliveries = tally.take_latencies().summary();
        let http = http.summary();
        let wall = self.gateway.at.elapsed().as_secs_f64();
        Ok(Step {
            offered_per_s,
            achieved_per_s: ok as f64 / send_elapsed,
            deliveries_per_s: delivered as f64 / delivery_span_s.max(send_elapsed),
            delivery_p50_ms: deliveries.p50_ms,
            delivery_p99_ms: deliveries.p99_ms,
            delivery_max_ms: deliveries.max_ms,
            http_p50_ms: http.p50_ms,
            http_p99_ms: http.p99_ms,
            errors,
            undelivered: ok.saturating_sub(delivered),
            out_of_order: after.out_of_order - self.before.out_of_order,
            gateway_cpu: self.gateway.cpu_share_until(&gateway_after),
            gateway_cpu_us_per_publish: (gateway_after.cpu_seconds - self.gateway.cpu_seconds)
                * 1e6
                / (ok.max(1) as f64),
            load_cpu: (load_after - self.load_cpu_s) / wall,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Step, median_step};

    fn step(p99: f64) -> Step {
        Step {
            offered_per_s: 5_000.0,
            achieved_per_s: 5_000.0,
            deliveries_per_s: 5_000.0,
            delivery_p50_ms: 2.0,
            delivery_p99_ms: p99,
            delivery_max_ms: p99,
            http_p50_ms: 1.0,
            http_p99_ms: p99,
            errors: 0,
            undelivered: 0,
            out_of_order: 0,
            gateway_cpu: 0.5,
            gateway_cpu_us_per_publish: 100.0,
            load_cpu: 0.3,
        }
    }

    #[test]
    fn no_ratio_is_claimed_when_the_peer_sustained_nothing() {
        assert!(super::ratio_of(4_976.0, 0.0).is_nan());
        assert_eq!(super::ratio_of(10_000.0, 5_000.0), 2.0);
    }

    #[test]
    fn one_outlier_among_the_repeats_does_not_decide() {
        let median = median_step(vec![step(159.0), step(7.0), step(10.0)]);
        assert_eq!(median.delivery_p99_ms, 10.0);
    }
}
