//! One step of the fanout scenario: publish tenant broadcasts at a pace, wait for every
//! live client to have them (or for progress to stop), and measure what arrived.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Result;
use futures_util::StreamExt;
use serde::Serialize;

use crate::client::Tally;
use crate::clock;
use crate::fixture::TENANT;
use crate::procfs::Sample;
use crate::publisher::{Publisher, dossier_update};
use crate::stats::{Latencies, LatencySummary};

/// Publishes in flight at once during a burst: enough to keep the store's writer
/// batching, few enough not to measure the HTTP server instead.
const BURST_CONCURRENCY: usize = 8;
/// A step waits for its deliveries until nothing arrived for this long.
const QUIET: Duration = Duration::from_secs(5);

/// How a step publishes.
#[derive(Debug, Clone, Copy)]
pub enum Pace {
    /// `per_second` broadcasts per second for `duration`, on a fixed schedule.
    Rate {
        /// Broadcasts per second.
        per_second: u32,
        /// How long.
        duration: Duration,
    },
    /// `count` broadcasts as fast as the gateway takes them.
    Burst {
        /// Broadcasts.
        count: usize,
    },
}

impl Pace {
    /// The step's name in the report: `rate5`, `burst`.
    pub fn name(&self) -> String {
        match self {
            Pace::Rate { per_second, .. } => format!("rate{per_second}"),
            Pace::Burst { .. } => "burst".to_owned(),
        }
    }
}

/// What one step measured.
#[derive(Debug, Clone, Serialize)]
pub struct Step {
    /// `rate5`, `burst`…
    pub name: String,
    /// Clients live when the step began.
    pub clients: u64,
    /// Broadcasts answered 2xx.
    pub published: u64,
    /// Broadcasts refused or failed.
    pub publish_errors: u64,
    /// Deliveries per second offered (rate × clients; `None` for the burst).
    pub offered_per_s: Option<f64>,
    /// Deliveries per second achieved: received over the time from the first publish
    /// to the last delivery (at least the step's duration).
    pub deliveries_per_s: f64,
    /// Publish → parsed by the client.
    pub latency: LatencySummary,
    /// Publish → HTTP answer (commit, fsync and the hand-over to every queue).
    pub publish: LatencySummary,
    /// Deliveries expected (published × clients) that never arrived.
    pub losses: u64,
    /// Deliveries whose offset did not follow the previous one.
    pub out_of_order: u64,
    /// Clients the gateway disconnected during the step.
    pub disconnected: u64,
    /// The gateway's CPU over the step, in cores.
    pub gateway_cpu: f64,
    /// The gateway's CPU per delivery, µs: unlike rates and latencies, barely moved by
    /// other work on the machine.
    pub gateway_cpu_us_per_delivery: f64,
    /// The load generator's CPU over the step, in cores (near 1.0: it may be the limit).
    pub load_cpu: f64,
}

/// Runs one step against `clients` live clients that report into `tally`; the
/// gateway's CPU is that of `gateways` (one process, or every node of a cluster).
pub async fn run(
    gateways: &[u32],
    publisher: &Publisher,
    tally: &Arc<Tally>,
    clients: u64,
    pace: Pace,
    sequence: &mut u64,
) -> Result<Step> {
    let before = tally.counts();
    let gateway_before = Sample::of_all(gateways)?;
    let load_before = Sample::of(std::process::id())?;
    let started_us = clock::now_us();
    let first = *sequence;
    let (results, duration) = match pace {
        Pace::Rate {
            per_second,
            duration,
        } => {
            let count = (f64::from(per_second) * duration.as_secs_f64()).round() as u64;
            *sequence += count;
            (paced(publisher, first, count, per_second).await, duration)
        }
        Pace::Burst { count } => {
            *sequence += count as u64;
            let results = futures_util::stream::iter(first..first + count as u64)
                .map(|seq| publish(publisher, seq))
                .buffer_unordered(BURST_CONCURRENCY)
                .collect::<Vec<Option<u64>>>()
                .await;
            (results, Duration::ZERO)
        }
    };
    let mut answered = Latencies::new();
    for micros in results.iter().flatten() {
        answered.record(*micros);
    }
    let published = answered.count();
    let expected = published * clients;
    drain(tally, before.delivered + expected).await;

    let after = tally.counts();
    let gateway_after = Sample::of_all(gateways)?;
    let load_after = Sample::of(std::process::id())?;
    let delivered = after.delivered - before.delivered;
    let span_us = after
        .last_delivery_us
        .saturating_sub(started_us)
        .max(duration.as_micros() as u64)
        .max(1);
    let offered_per_s = match pace {
        Pace::Rate { per_second, .. } => Some(f64::from(per_second) * clients as f64),
        Pace::Burst { .. } => None,
    };
    Ok(Step {
        name: pace.name(),
        clients,
        published,
        publish_errors: results.len() as u64 - published,
        offered_per_s,
        deliveries_per_s: delivered as f64 * 1e6 / span_us as f64,
        latency: tally.take_latencies().summary(),
        publish: answered.summary(),
        losses: expected.saturating_sub(delivered),
        out_of_order: after.out_of_order - before.out_of_order,
        disconnected: after.closed - before.closed,
        gateway_cpu: gateway_before.cpu_share_until(&gateway_after),
        gateway_cpu_us_per_delivery: (gateway_after.cpu_seconds - gateway_before.cpu_seconds) * 1e6
            / delivered.max(1) as f64,
        load_cpu: load_before.cpu_share_until(&load_after),
    })
}

/// Publishes `count` broadcasts `per_second`, each on its own schedule slot and task, so
/// a slow answer never delays the next publish (the offered rate stays the rate).
async fn paced(publisher: &Publisher, first: u64, count: u64, per_second: u32) -> Vec<Option<u64>> {
    let start = tokio::time::Instant::now();
    let interval = Duration::from_secs_f64(1.0 / f64::from(per_second.max(1)));
    let mut tasks = Vec::with_capacity(count as usize);
    for index in 0..count {
        tokio::time::sleep_until(start + interval.mul_f64(index as f64)).await;
        let publisher = publisher.clone();
        tasks.push(tokio::spawn(async move {
            publish(&publisher, first + index).await
        }));
    }
    let mut results = Vec::with_capacity(tasks.len());
    for task in tasks {
        results.push(task.await.unwrap_or(None));
    }
    results
}

/// One stamped broadcast to the firm: how long its answer took (µs), `None` (and a
/// line on stderr) if it failed.
async fn publish(publisher: &Publisher, sequence: u64) -> Option<u64> {
    let request = dossier_update(&format!("tenant:{TENANT}"), sequence);
    let started = clock::now_us();
    match publisher.publish(&request).await {
        Ok(_) => Some(clock::now_us().saturating_sub(started)),
        Err(error) => {
            eprintln!("tocsin-bench fanout: publish {sequence} failed: {error:#}");
            None
        }
    }
}

/// Waits until `target` deliveries were counted, or nothing arrived for [`QUIET`].
pub async fn drain(tally: &Tally, target: u64) {
    let mut last = tally.counts().delivered;
    let mut quiet_since = tokio::time::Instant::now();
    loop {
        let now = tally.counts().delivered;
        if now >= target {
            return;
        }
        if now != last {
            last = now;
            quiet_since = tokio::time::Instant::now();
        } else if quiet_since.elapsed() >= QUIET {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}
