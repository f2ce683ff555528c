//! **cluster**: three gateway nodes on one PostgreSQL database, N clients spread over
//! them (client `i` on node `i % 3`), tenant broadcasts published on node 0 only, so
//! two thirds of every delivery crosses nodes (NOTIFY, then the row read from the
//! log). In the same run, the same steps on one SQLite node first, for the ratio:
//! a warm-up broadcast, 5 broadcasts/s, then a burst ([`super::fanout::step`]).
//!
//! Then **failover**: broadcasts at 5/s go on while node 2 is SIGKILLed. Its clients
//! reconnect to the two others (alternately), with `tocsin-client`'s real backoff
//! (full jitter from 1 s) and the positions they held. Reported: time from the kill
//! to each of them back and caught up (its new session's `caught_up`, which follows
//! the replay of everything committed meanwhile), p50 and max; and, after publishing
//! stops, whether every client of every node holds every broadcast, in order.
//!
//! On this 2-core machine the three nodes, PostgreSQL and the load generator share the
//! cores: the figures say what crossing nodes costs, not what more machines would
//! gain.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tocsin_client::backoff::{Backoff, BackoffConfig};
use tokio_util::sync::CancellationToken;

use super::Ctx;
use super::fanout::describe;
use super::fanout::step::{self, Pace, Step};
use crate::client::{Ended, Positions, Session, Tally, Target, source_ip};
use crate::fixture::{BenchGateway, TENANT, provision, user_id};
use crate::publisher::{Publisher, dossier_update};
use crate::report::{Report, round};
use crate::stats::{Latencies, Spread};

/// Nodes of the cluster.
const NODES: usize = 3;
/// The node that is killed in the failover.
const VICTIM: usize = 2;
/// Broadcasts per second during the paced step and the failover.
const RATE: u32 = 5;
/// How long the failover publishes before the kill.
const BEFORE_KILL: Duration = Duration::from_secs(2);
/// How long it waits for the killed node's clients to be back.
const BACK_DEADLINE: Duration = Duration::from_secs(60);
/// How long it publishes once every client is back.
const AFTER_BACK: Duration = Duration::from_secs(2);

/// What one run measured.
struct Run {
    single: Vec<Step>,
    cluster: Vec<Step>,
    failover: Failover,
}

/// The failover's figures.
struct Failover {
    /// Clients the killed node held.
    moved: usize,
    /// Kill → back and caught up, per moved client.
    back: Latencies,
    /// Broadcasts acknowledged during the failover.
    published: u64,
    /// Publishes that failed (none should: node 0 stays up).
    publish_errors: u64,
    /// Deliveries missing at the end, over every client.
    losses: u64,
    /// Deliveries out of order, over every client.
    out_of_order: u64,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> Result<Report> {
    let clients = ctx.pick(30, 10_000);
    let step_duration = ctx.pick(Duration::from_secs(1), Duration::from_secs(4));
    let burst = ctx.pick(10, 100);
    let mut report = Report::new("cluster");
    report
        .param("clients", clients)
        .param("nodes", NODES)
        .param("rate_per_s", RATE)
        .param("step_s", step_duration.as_secs_f64())
        .param("burst_broadcasts", burst)
        .param("runs", ctx.runs);
    // The cluster's database: the run's (`--database postgres`) or one of its own.
    let cluster = match &ctx.postgres {
        Some(cluster) => cluster.clone(),
        None => Arc::new(
            tocsin_harness::postgres::PgCluster::start()
                .context("the cluster scenario needs PostgreSQL (cargo xtask setup installs it)")?,
        ),
    };
    let mut runs = Vec::new();
    for run in 0..ctx.runs {
        let url = cluster.create_database(&format!("bench_cluster_{run}"))?;
        runs.push(
            one_run(ctx, &url, clients, step_duration, burst)
                .await
                .with_context(|| format!("cluster at {clients} clients"))?,
        );
    }
    summarise(&mut report, &runs);
    Ok(report)
}

async fn one_run(
    ctx: &Ctx,
    database: &str,
    clients: usize,
    step_duration: Duration,
    burst: usize,
) -> Result<Run> {
    let single = {
        let bench = BenchGateway::start_on(ctx, None, |_| {}).await?;
        steps(
            "single SQLite node",
            &[&bench],
            clients,
            step_duration,
            burst,
        )
        .await
        .map_err(|e| bench.explain(e))?
    };
    let first = BenchGateway::start_on(ctx, Some(database.to_owned()), |_| {}).await?;
    let mut nodes = vec![first];
    for _ in 1..NODES {
        let node = nodes[0].another_node().await?;
        nodes.push(node);
    }
    let cluster = steps(
        "cluster",
        &nodes.iter().collect::<Vec<_>>(),
        clients,
        step_duration,
        burst,
    )
    .await
    .map_err(|e| nodes[0].explain(e))?;
    let failover = failover(&mut nodes, clients)
        .await
        .map_err(|e| nodes[0].explain(e))?;
    eprintln!(
        "  cluster failover: {} clients of the killed node back and caught up p50 {} / max {} ms; {} published, {} lost, {} out of order",
        failover.moved,
        round(failover.back.summary().p50_ms),
        round(failover.back.summary().max_ms),
        failover.published,
        failover.losses,
        failover.out_of_order,
    );
    Ok(Run {
        single,
        cluster,
        failover,
    })
}

/// Opens `clients` sessions spread over `nodes`, publishes on the first node: one
/// warm-up broadcast, [`RATE`]/s for `duration`, then `burst` as fast as it takes them.
/// The sessions are closed at the end.
async fn steps(
    label: &str,
    nodes: &[&BenchGateway],
    clients: usize,
    duration: Duration,
    burst: usize,
) -> Result<Vec<Step>> {
    let targets: Vec<Target> = nodes.iter().map(|n| n.target.clone()).collect();
    let pids: Vec<u32> = nodes.iter().map(|n| n.pid()).collect::<Result<_>>()?;
    provision(&targets[0], clients).await?;
    let tally = Arc::new(Tally::default());
    let stop = CancellationToken::new();
    let mut holders = Vec::with_capacity(clients);
    for session in open_spread(&targets, clients).await? {
        holders.push(tokio::spawn(session.receive(tally.clone(), stop.clone())));
    }
    let publisher = Publisher::new(&nodes[0].base_url(), &nodes[0].key)?;
    let mut sequence = 0;
    let mut steps = Vec::new();
    let paces = [
        Pace::Burst { count: 1 },
        Pace::Rate {
            per_second: RATE,
            duration,
        },
        Pace::Burst { count: burst },
    ];
    for (index, pace) in paces.into_iter().enumerate() {
        let live = clients as u64 - tally.counts().closed;
        let mut step = step::run(&pids, &publisher, &tally, live, pace, &mut sequence).await?;
        if index == 0 {
            step.name = "warm".into();
        }
        eprintln!("  cluster, {label}: {}", describe(&step));
        if step.losses > 0 || step.disconnected > 0 {
            bail!("{label}: the {} step lost deliveries: {step:?}", step.name);
        }
        steps.push(step);
    }
    stop.cancel();
    for holder in holders {
        if let Ok(Some(session)) = holder.await {
            session.close().await;
        }
    }
    Ok(steps)
}

/// Opens the sessions of users `0..clients`, user `i` on `targets[i % len]`, 256 at
/// a time; returns them in user order.
async fn open_spread(targets: &[Target], clients: usize) -> Result<Vec<Session>> {
    use futures_util::StreamExt;
    let mut opened: Vec<(usize, Session)> = futures_util::stream::iter(0..clients)
        .map(|index| async move {
            let target = &targets[index % targets.len()];
            let user = user_id(index);
            let (session, _) = Session::open(target, &user, source_ip(index), Positions::default())
                .await
                .with_context(|| format!("connecting {user} to {}", target.addr))?;
            Ok::<_, anyhow::Error>((index, session))
        })
        .buffer_unordered(crate::client::RAMP_CONCURRENCY)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .collect::<Result<_>>()?;
    opened.sort_by_key(|(index, _)| *index);
    Ok(opened.into_iter().map(|(_, session)| session).collect())
}

/// What the failover's clients share.
struct Shared {
    /// Each client's last offset of `tenant:bench`.
    offsets: Vec<AtomicU64>,
    /// Clients back on another node after the kill.
    back: AtomicUsize,
}

/// SIGKILLs node [`VICTIM`] under a steady publisher; see the module's doc.
async fn failover(nodes: &mut [BenchGateway], clients: usize) -> Result<Failover> {
    let targets: Vec<Target> = nodes.iter().map(|n| n.target.clone()).collect();
    let survivors: Vec<Target> = (0..NODES)
        .filter(|&n| n != VICTIM)
        .map(|n| targets[n].clone())
        .collect();
    let sessions = open_spread(&targets, clients).await?;
    let stream = format!("tenant:{TENANT}");
    let shared = Arc::new(Shared {
        offsets: sessions
            .iter()
            .map(|s| AtomicU64::new(s.positions.get(&stream).map_or(0, |(_, o)| *o)))
            .collect(),
        back: AtomicUsize::new(0),
    });
    let stop = CancellationToken::new();
    let killed_at = Arc::new(std::sync::OnceLock::<Instant>::new());
    let mut followers = Vec::with_capacity(clients);
    for (index, session) in sessions.into_iter().enumerate() {
        let follower = Follower {
            index,
            user: user_id(index),
            source: source_ip(index),
            survivors: survivors.clone(),
            stream: stream.clone(),
            shared: shared.clone(),
            killed_at: killed_at.clone(),
        };
        followers.push(tokio::spawn(follower.run(session, stop.clone())));
    }
    let publisher = Publisher::new(&nodes[0].base_url(), &nodes[0].key)?;
    let publishing = CancellationToken::new();
    let paced = tokio::spawn(publish_until(publisher, publishing.clone()));
    tokio::time::sleep(BEFORE_KILL).await;
    let moved = (0..clients).filter(|i| i % NODES == VICTIM).count();
    killed_at.get_or_init(Instant::now);
    nodes[VICTIM].gateway.kill_hard().await?;
    // Publishing goes on until every moved client is back, and a little longer.
    let deadline = Instant::now() + BACK_DEADLINE;
    while shared.back.load(Ordering::SeqCst) < moved && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    tokio::time::sleep(AFTER_BACK).await;
    publishing.cancel();
    let (published, publish_errors, last) = paced.await.context("the publisher task")?;
    // Everyone should now hold `last`: wait for the stragglers' live frames.
    let settled = Instant::now() + Duration::from_secs(10);
    while shared
        .offsets
        .iter()
        .any(|o| o.load(Ordering::SeqCst) < last)
        && Instant::now() < settled
    {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.cancel();
    let mut back = Latencies::new();
    let mut out_of_order = 0;
    for follower in followers {
        let outcome = follower.await.context("a failover client")?;
        out_of_order += outcome.out_of_order;
        if let Some(micros) = outcome.back_after_kill_us {
            back.record(micros);
        }
    }
    let losses = shared
        .offsets
        .iter()
        .map(|o| last.saturating_sub(o.load(Ordering::SeqCst)))
        .sum();
    if back.count() < moved as u64 {
        bail!(
            "only {} of the killed node's {moved} clients were back within {BACK_DEADLINE:?}",
            back.count()
        );
    }
    Ok(Failover {
        moved,
        back,
        published,
        publish_errors,
        losses,
        out_of_order,
    })
}

/// What one failover client went through.
struct Outcome {
    /// Kill → its new session's `caught_up`, for a client of the killed node.
    back_after_kill_us: Option<u64>,
    /// Deliveries out of order over all its sessions.
    out_of_order: u64,
}

/// One client during the failover: follows its session; when the connection is lost
/// (its node was killed), reconnects to a survivor as `tocsin-client` would.
struct Follower {
    index: usize,
    user: String,
    source: IpAddr,
    survivors: Vec<Target>,
    stream: String,
    shared: Arc<Shared>,
    killed_at: Arc<std::sync::OnceLock<Instant>>,
}

impl Follower {
    async fn run(self, mut session: Session, stop: CancellationToken) -> Outcome {
        let mut backoff = Backoff::new(BackoffConfig::default());
        backoff.connected(Instant::now());
        let mut outcome = Outcome {
            back_after_kill_us: None,
            out_of_order: 0,
        };
        let mut attempt = self.index;
        loop {
            let ended = session
                .follow(&stop, |positions| self.record(positions))
                .await;
            outcome.out_of_order += session.out_of_order;
            if ended == Ended::Stopped {
                return outcome;
            }
            let positions = session.positions.clone();
            backoff.disconnected(Instant::now());
            let next = loop {
                let delay = backoff.next_delay(&mut rand::rng());
                tokio::select! {
                    () = stop.cancelled() => return outcome,
                    () = tokio::time::sleep(delay) => {}
                }
                attempt += 1;
                let target = &self.survivors[attempt % self.survivors.len()];
                if let Ok((session, _)) =
                    Session::open(target, &self.user, self.source, positions.clone()).await
                {
                    break session;
                }
            };
            session = next;
            backoff.connected(Instant::now());
            self.record(&session.positions);
            if let Some(killed) = self.killed_at.get() {
                outcome.back_after_kill_us =
                    Some(u64::try_from(killed.elapsed().as_micros()).unwrap_or(u64::MAX));
            }
            self.shared.back.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Publishes this client's offset of the firm's stream.
    fn record(&self, positions: &Positions) {
        if let Some((_, offset)) = positions.get(&self.stream) {
            self.shared.offsets[self.index].fetch_max(*offset, Ordering::SeqCst);
        }
    }
}

/// Publishes [`RATE`] broadcasts per second on a fixed schedule until `stop`; returns
/// how many were acknowledged, how many failed, and the last acknowledged offset.
async fn publish_until(publisher: Publisher, stop: CancellationToken) -> (u64, u64, u64) {
    let interval = Duration::from_secs_f64(1.0 / f64::from(RATE));
    let mut ticks = tokio::time::interval(interval);
    let (mut published, mut errors, mut last) = (0, 0, 0);
    let mut sequence = 1_000_000;
    loop {
        tokio::select! {
            () = stop.cancelled() => return (published, errors, last),
            _ = ticks.tick() => {}
        }
        sequence += 1;
        match publisher
            .publish(&dossier_update(&format!("tenant:{TENANT}"), sequence))
            .await
        {
            Ok(reply) => {
                published += 1;
                last = last.max(reply.offset);
            }
            Err(error) => {
                errors += 1;
                eprintln!("tocsin-bench cluster: publish {sequence} failed: {error:#}");
            }
        }
    }
}

/// Medians over the runs: each step single vs cluster (and their ratio), the
/// failover, and the no-loss checks.
fn summarise(report: &mut Report, runs: &[Run]) {
    let names: Vec<String> = runs
        .first()
        .map(|r| r.single.iter().map(|s| s.name.clone()).collect())
        .unwrap_or_default();
    for name in &names {
        let of = |steps: fn(&Run) -> &Vec<Step>, f: fn(&Step) -> f64| {
            Spread::of(
                &runs
                    .iter()
                    .filter_map(|r| steps(r).iter().find(|s| &s.name == name).map(f))
                    .collect::<Vec<_>>(),
            )
        };
        fn single(run: &Run) -> &Vec<Step> {
            &run.single
        }
        fn cluster(run: &Run) -> &Vec<Step> {
            &run.cluster
        }
        let rate = (
            of(single, |s| s.deliveries_per_s),
            of(cluster, |s| s.deliveries_per_s),
        );
        let p50 = (
            of(single, |s| s.latency.p50_ms),
            of(cluster, |s| s.latency.p50_ms),
        );
        let p99 = (
            of(single, |s| s.latency.p99_ms),
            of(cluster, |s| s.latency.p99_ms),
        );
        report.metric(
            name,
            serde_json::json!({
                "single_sqlite": {"deliveries_per_s": rate.0, "p50_ms": p50.0, "p99_ms": p99.0},
                "cluster": {"deliveries_per_s": rate.1, "p50_ms": p50.1, "p99_ms": p99.1},
                "cluster_over_single_deliveries": rate.1.median / rate.0.median.max(1e-9),
                "cluster_over_single_p99": p99.1.median / p99.0.median.max(1e-9),
            }),
        );
        report.line(format!(
            "{name}: single SQLite node {} deliveries/s, p50 {} / p99 {} ms; {NODES} nodes on PostgreSQL {} deliveries/s, p50 {} / p99 {} ms (×{} rate, ×{} p99)",
            round(rate.0.median),
            round(p50.0.median),
            round(p99.0.median),
            round(rate.1.median),
            round(p50.1.median),
            round(p99.1.median),
            round(rate.1.median / rate.0.median.max(1e-9)),
            round(p99.1.median / p99.0.median.max(1e-9)),
        ));
    }
    let back_p50 = Spread::of(
        &runs
            .iter()
            .map(|r| r.failover.back.summary().p50_ms)
            .collect::<Vec<_>>(),
    );
    let back_max = Spread::of(
        &runs
            .iter()
            .map(|r| r.failover.back.summary().max_ms)
            .collect::<Vec<_>>(),
    );
    let losses = runs.iter().map(|r| r.failover.losses).max().unwrap_or(0);
    let out_of_order = runs
        .iter()
        .map(|r| r.failover.out_of_order)
        .max()
        .unwrap_or(0);
    let publish_errors = runs
        .iter()
        .map(|r| r.failover.publish_errors)
        .max()
        .unwrap_or(0);
    let moved = runs.first().map_or(0, |r| r.failover.moved);
    report
        .metric(
            "failover",
            serde_json::json!({
                "moved_clients": moved,
                "back_p50_ms": back_p50,
                "back_max_ms": back_max,
                "published": runs.iter().map(|r| r.failover.published).collect::<Vec<_>>(),
                "publish_errors_worst": publish_errors,
                "losses_worst": losses,
                "out_of_order_worst": out_of_order,
            }),
        )
        .line(format!(
            "failover: node {VICTIM} SIGKILLed under {RATE} broadcasts/s; its {moved} clients back on the others and caught up p50 {} / max {} ms after the kill (client backoff from 1 s, full jitter)",
            round(back_p50.median),
            round(back_max.median),
        ))
        .at_most("failover losses", losses as f64, 0.0, "")
        .at_most("failover out-of-order deliveries", out_of_order as f64, 0.0, "")
        .at_most("failover publish errors (node 0 stays up)", publish_errors as f64, 0.0, "");
}
