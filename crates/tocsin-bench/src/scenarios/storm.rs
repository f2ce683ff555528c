//! **storm**: N clients (10k) dropped at once by a gateway restart; how long until all
//! are back and caught up, reconnecting with the client's real backoff. Measured for
//! both ways a gateway goes down: SIGKILL (a crash) and SIGTERM (a service restart).
//!
//! Every lean [`Session`] reconnects as `tocsin-client` does: `backoff::decide` on the
//! close (a killed gateway sends none: reconnect), then `Backoff::next_delay` with the
//! client's default `BackoffConfig` (full jitter, base 1 s, doubling per failed attempt,
//! capped), resuming from the positions it held. The gateway is SIGKILLed (no close
//! frame, no drain) or SIGTERMed (every client gets close 4000 and the gateway exits
//! once drained), and restarted at once on the same port; as soon as
//! it listens, one notification is published to every user (batch endpoint), so a
//! client is "caught up" when it holds that offset, by replay or live. Reported: time
//! from listening to all back and to all caught up, per-client reconnect time
//! (connection lost → `caught_up` again) p50/p99/max, failed attempts, the cap.

use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use futures_util::StreamExt;
use tocsin_client::backoff::{Backoff, BackoffConfig, Reconnect, decide};
use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::client::{Ended, RAMP_CONCURRENCY, Session, Target, ramp, source_ip};
use crate::fixture::{BenchGateway, provision, user_id};
use crate::publisher::{Publisher, dossier_update};
use crate::report::{Report, round};
use crate::stats::{Latencies, Spread};

/// Notifications per batch request when publishing after the restart.
const BATCH: usize = 500;
/// Beyond the cap, how long to wait for stragglers before declaring the run failed.
const GRACE: Duration = Duration::from_secs(30);

/// What one client went through.
#[derive(Debug, Clone, Default)]
struct Outcome {
    /// When it noticed the connection was gone.
    lost_at: Option<Instant>,
    /// When its new session reached `caught_up`.
    back_at: Option<Instant>,
    /// When it held the notification published after the restart.
    caught_up_at: Option<Instant>,
    /// Connection attempts that failed.
    failed_attempts: u32,
    /// Whether a stop code ended it (it then never came back).
    stopped_by_code: Option<u16>,
    /// Notifications replayed on reconnecting.
    replayed: u64,
}

impl Outcome {
    /// Records the first time the client held the notification published after the
    /// restart.
    fn caught_up(&mut self, at: Instant, shared: &Shared) {
        if self.caught_up_at.is_none() {
            self.caught_up_at = Some(at);
            shared.caught_up.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Shared between the clients and the scenario.
struct Shared {
    caught_up: AtomicUsize,
    outcomes: Mutex<Vec<Outcome>>,
}

/// How the gateway is taken down.
#[derive(Debug, Clone, Copy)]
enum Stop {
    /// SIGKILL: a crash. Clients see the TCP connection reset, with no close code.
    Kill,
    /// SIGTERM: a graceful restart. Clients get close 4000 ("going away").
    Term,
}

impl Stop {
    /// Prefix of this kind's metric names (SIGKILL keeps the plain names).
    fn prefix(self) -> &'static str {
        match self {
            Stop::Kill => "",
            Stop::Term => "sigterm_",
        }
    }

    fn signal(self) -> &'static str {
        match self {
            Stop::Kill => "SIGKILL",
            Stop::Term => "SIGTERM",
        }
    }
}

/// How long a SIGTERMed gateway may take to drain and exit.
const DRAIN_LIMIT: Duration = Duration::from_secs(60);

/// One run's figures.
struct Run {
    downtime_ms: f64,
    all_back_ms: f64,
    all_caught_up_ms: f64,
    reconnect_p50_ms: f64,
    reconnect_p99_ms: f64,
    reconnect_max_ms: f64,
    failed_attempts: u64,
    max_failed_attempts: u32,
    replayed_share: f64,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> Result<Report> {
    let clients = ctx.pick(20, 10_000);
    let config = BackoffConfig::default();
    let mut report = Report::new("storm");
    report
        .param("clients", clients)
        .param("runs", ctx.runs)
        .param(
            "stop",
            "SIGKILL, then SIGTERM (metrics prefixed sigterm_); restarted at once on the same port",
        )
        .param("backoff_base_s", config.base.as_secs_f64())
        .param("backoff_cap_s", config.cap.as_secs_f64());
    let cap_ms = config.cap.as_secs_f64() * 1000.0;
    for stop in [Stop::Kill, Stop::Term] {
        let mut runs = Vec::new();
        for run in 0..ctx.runs {
            let measured = one_run(ctx, clients, config, stop)
                .await
                .with_context(|| format!("storm run {run} ({})", stop.signal()))?;
            report.line(format!(
                "{} run {run}: {clients} clients, gateway down {} ms; all back {} ms and all caught up {} ms after it listened; per-client reconnect p50 {} / p99 {} / max {} ms; {} failed attempts (at most {} for one client); {} % got the new notification by replay",
                stop.signal(),
                round(measured.downtime_ms),
                round(measured.all_back_ms),
                round(measured.all_caught_up_ms),
                round(measured.reconnect_p50_ms),
                round(measured.reconnect_p99_ms),
                round(measured.reconnect_max_ms),
                measured.failed_attempts,
                measured.max_failed_attempts,
                round(measured.replayed_share * 100.0),
            ));
            runs.push(measured);
        }
        let spread = |f: fn(&Run) -> f64| Spread::of(&runs.iter().map(f).collect::<Vec<_>>());
        let name = |metric: &str| format!("{}{metric}", stop.prefix());
        report
            .metric(&name("downtime_ms"), spread(|r| r.downtime_ms))
            .metric(&name("all_back_ms"), spread(|r| r.all_back_ms))
            .metric(&name("all_caught_up_ms"), spread(|r| r.all_caught_up_ms))
            .metric(&name("reconnect_p50_ms"), spread(|r| r.reconnect_p50_ms))
            .metric(&name("reconnect_p99_ms"), spread(|r| r.reconnect_p99_ms))
            .metric(&name("reconnect_max_ms"), spread(|r| r.reconnect_max_ms))
            .metric(
                &name("failed_attempts"),
                spread(|r| r.failed_attempts as f64),
            )
            .metric(
                &name("max_failed_attempts_per_client"),
                spread(|r| f64::from(r.max_failed_attempts)),
            );
        report.at_most(
            &format!(
                "all clients back after a restart by {} (backoff cap + 5 s)",
                stop.signal()
            ),
            spread(|r| r.all_caught_up_ms).median,
            cap_ms + 5000.0,
            "ms",
        );
    }
    Ok(report)
}

async fn one_run(ctx: &Ctx, clients: usize, config: BackoffConfig, how: Stop) -> Result<Run> {
    let mut bench = BenchGateway::start(ctx, |_| {}).await?;
    provision(&bench.target, clients).await?;
    let shared = Arc::new(Shared {
        caught_up: AtomicUsize::new(0),
        outcomes: Mutex::new(Vec::with_capacity(clients)),
    });
    let stop = CancellationToken::new();
    // Boxed, to be dropped before the gateway is killed (it borrows its target).
    let mut opened = Box::pin(ramp(&bench.target, clients, RAMP_CONCURRENCY));
    let mut tasks = Vec::with_capacity(clients);
    while let Some(result) = opened.next().await {
        let (index, session, _) = result?;
        let client = Client {
            target: bench.target.clone(),
            user: user_id(index),
            source: source_ip(index),
            backoff: Backoff::new(config),
        };
        tasks.push(tokio::spawn(client.run(
            session,
            stop.clone(),
            shared.clone(),
        )));
    }
    drop(opened);

    let killed_at = Instant::now();
    match how {
        Stop::Kill => bench.gateway.kill_hard().await?,
        Stop::Term => {
            bench.gateway.terminate()?;
            let status = bench.gateway.wait_exit(DRAIN_LIMIT).await?;
            anyhow::ensure!(
                status.success(),
                "the gateway exited with {status} after SIGTERM"
            );
        }
    }
    bench.gateway.restart_on_same_port().await?;
    let listening_at = Instant::now();
    // One new notification per user: "caught up" means holding it.
    let publisher = Publisher::new(&bench.base_url(), &bench.key)?;
    for first in (0..clients).step_by(BATCH) {
        let items: Vec<_> = (first..(first + BATCH).min(clients))
            .map(|i| dossier_update(&format!("user:{}", user_id(i)), i as u64))
            .collect();
        publisher
            .publish_batch(&items)
            .await
            .context("publishing after the restart")?;
    }

    let deadline = Instant::now() + config.cap + GRACE;
    while shared.caught_up.load(Ordering::Relaxed) < clients && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stop.cancel();
    for task in tasks {
        task.await.context("a client task failed")?;
    }
    let outcomes = std::mem::take(
        &mut *shared
            .outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner),
    );
    summarise(&outcomes, clients, killed_at, listening_at)
}

fn summarise(
    outcomes: &[Outcome],
    clients: usize,
    killed_at: Instant,
    listening_at: Instant,
) -> Result<Run> {
    let stopped: Vec<u16> = outcomes.iter().filter_map(|o| o.stopped_by_code).collect();
    anyhow::ensure!(
        stopped.is_empty(),
        "{} clients were told not to reconnect (close codes {stopped:?})",
        stopped.len()
    );
    let back: Vec<Instant> = outcomes.iter().filter_map(|o| o.back_at).collect();
    let caught_up: Vec<Instant> = outcomes.iter().filter_map(|o| o.caught_up_at).collect();
    anyhow::ensure!(
        back.len() == clients && caught_up.len() == clients,
        "only {} of {clients} clients came back and {} caught up",
        back.len(),
        caught_up.len()
    );
    let after_listening =
        |at: &Instant| at.saturating_duration_since(listening_at).as_secs_f64() * 1000.0;
    let mut reconnect = Latencies::new();
    for outcome in outcomes {
        if let (Some(lost), Some(back)) = (outcome.lost_at, outcome.back_at) {
            reconnect.record(micros(back.saturating_duration_since(lost)));
        }
    }
    let reconnect = reconnect.summary();
    Ok(Run {
        downtime_ms: listening_at.duration_since(killed_at).as_secs_f64() * 1000.0,
        all_back_ms: back.iter().map(after_listening).fold(0.0, f64::max),
        all_caught_up_ms: caught_up.iter().map(after_listening).fold(0.0, f64::max),
        reconnect_p50_ms: reconnect.p50_ms,
        reconnect_p99_ms: reconnect.p99_ms,
        reconnect_max_ms: reconnect.max_ms,
        failed_attempts: outcomes.iter().map(|o| u64::from(o.failed_attempts)).sum(),
        max_failed_attempts: outcomes
            .iter()
            .map(|o| o.failed_attempts)
            .max()
            .unwrap_or(0),
        replayed_share: outcomes.iter().filter(|o| o.replayed > 0).count() as f64 / clients as f64,
    })
}

fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// One client's reconnect loop.
struct Client {
    target: Target,
    user: String,
    source: IpAddr,
    backoff: Backoff,
}

impl Client {
    /// Follows `session`, reconnecting as `tocsin-client` does, until `stop`.
    async fn run(mut self, mut session: Session, stop: CancellationToken, shared: Arc<Shared>) {
        let stream = format!("user:{}", self.user);
        let mut outcome = Outcome::default();
        self.backoff.connected(Instant::now());
        loop {
            let mut progressed = None;
            let ended = session
                .follow(&stop, |positions| {
                    let holds = positions
                        .get(&stream)
                        .is_some_and(|(_, offset)| *offset >= 1);
                    if holds && progressed.is_none() {
                        progressed = Some(Instant::now());
                    }
                })
                .await;
            if let Some(at) = progressed {
                outcome.caught_up(at, &shared);
            }
            let code = match ended {
                Ended::Stopped => break,
                Ended::Closed(code) => code,
            };
            let lost = Instant::now();
            outcome.lost_at.get_or_insert(lost);
            self.backoff.disconnected(lost);
            let floor = match decide(code, "") {
                Reconnect::After(floor) => floor.unwrap_or_default(),
                // Our tokens are minted per connection: a refresh is a reconnect.
                Reconnect::RefreshThenReconnect => Duration::ZERO,
                Reconnect::Stop(_) => {
                    outcome.stopped_by_code = code;
                    break;
                }
            };
            let positions = session.positions.clone();
            drop(session);
            let Some((next, replayed)) =
                self.reconnect(positions, floor, &stop, &mut outcome).await
            else {
                break;
            };
            session = next;
            let now = Instant::now();
            outcome.back_at = Some(now);
            outcome.replayed += replayed;
            self.backoff.connected(now);
            if session
                .positions
                .get(&stream)
                .is_some_and(|(_, offset)| *offset >= 1)
            {
                outcome.caught_up(now, &shared);
            }
        }
        shared
            .outcomes
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .push(outcome);
    }

    /// Waits out the backoff and retries until a session is live (or `stop`).
    async fn reconnect(
        &mut self,
        positions: crate::client::Positions,
        mut floor: Duration,
        stop: &CancellationToken,
        outcome: &mut Outcome,
    ) -> Option<(Session, u64)> {
        loop {
            let delay = self.backoff.next_delay_at_least(floor, &mut rand::rng());
            floor = Duration::ZERO;
            tokio::select! {
                () = stop.cancelled() => return None,
                () = tokio::time::sleep(delay) => {}
            }
            match Session::open(&self.target, &self.user, self.source, positions.clone()).await {
                Ok((session, handshake)) => return Some((session, handshake.replayed)),
                Err(_) => outcome.failed_attempts += 1,
            }
        }
    }
}
