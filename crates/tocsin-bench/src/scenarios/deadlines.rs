//! **deadlines**: the gateway's own scheduler under a firm's load (docs/DEADLINES.md).
//!
//! Each run starts a fresh gateway and provisions U users (unmeasured), then:
//!
//! 1. **Declaration.** N deadlines `bench-<n>` (owners round-robin over the users, due
//!    30–50 days ahead so nothing fires, the firm's default policy of four working-day
//!    reminders: 4N planned steps) are declared with `PUT /v1/deadlines/{id}`, closed
//!    loop, [`IN_FLIGHT`] requests at once over as many keep-alive connections:
//!    upserts/s, HTTP p50/p99, errors, gateway CPU per upsert. Then the first R are sent
//!    again unchanged (idempotent: 200, no re-plan) and their rate is reported too.
//! 2. **Idle scheduler.** The gateway's CPU (procfs) over an idle window with the 4N
//!    steps planned and nothing due, next to the same window measured before any
//!    deadline existed (what the rest of the gateway costs idle); and its RSS.
//! 3. **Burst.** B users connect (lean WebSocket sessions, one each) and B deadlines
//!    `burst-<n>` are declared, one per user, each with a single critical reminder at
//!    the same instant T (`due_at` = T + 60 s, `{"before":{"seconds":60}}`), T a few
//!    seconds after the last declaration. From T until every owner's connection has
//!    parsed its reminder: the total, and lateness p50/p99/max (receive time − T on the
//!    bench's one monotonic clock, T mapped onto it once from the wall clock). The fire
//!    lag is each reminder's `created_at` (the scheduler's time for its round, read
//!    back with `GET /v1/history` afterwards) − T; its distinct values are the rounds
//!    the scheduler took.
//!
//! Every deadline overrides the escalation (`first` after a day, no `second`): the
//! critical burst reminders plan an escalation step, which must not fire in the run.

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use chrono::{DateTime, SecondsFormat, Utc};
use futures_util::StreamExt;
use serde::Serialize;
use serde_json::{Value, json};
use tocsin_protocol::NotificationData;
use tocsin_protocol::http::HistoryResponse;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Ctx;
use crate::client::{Ended, RAMP_CONCURRENCY, Target, ramp};
use crate::clock;
use crate::fixture::{BenchGateway, provision, user_id};
use crate::procfs::{Sample, cpu_seconds};
use crate::report::{Report, round};
use crate::stats::{Latencies, Spread};

/// Declarations in flight (and keep-alive connections): enough to keep the gateway's
/// one core busy through the store's round trips, few enough that HTTP latency stays
/// the gateway's rather than a queue of ours.
const IN_FLIGHT: usize = 128;
/// Escalation delays of every benchmark deadline: nothing escalates within a run.
const ESCALATION: &str = r#"{"first":{"seconds":86400},"second":null}"#;
/// The burst's reminder: one critical step 60 s before `due_at`.
const BURST_POLICY: &str = r#"{"steps":[{"before":{"seconds":60},"urgency":"critical"}]}"#;
/// How far before `due_at` the burst's reminder goes.
const BURST_BEFORE_S: i64 = 60;
/// Far-future deadlines are due this many days ahead, plus a spread.
const FAR_DAYS: i64 = 30;
/// The target: idle CPU with 100k deadlines planned, % of a core.
const TARGET_IDLE_CPU_PERCENT: f64 = 0.5;
/// The target: all 10k reminders due at one instant delivered within this.
const TARGET_BURST_S: f64 = 5.0;
/// The longest the burst may take before the run gives up waiting for stragglers.
const BURST_PATIENCE: Duration = Duration::from_secs(60);
/// History reads in flight when the fire times are read back (after the measurement).
const HISTORY_IN_FLIGHT: usize = 32;

/// The sizes of a run.
#[derive(Debug, Clone, Copy, Serialize)]
struct Sizes {
    /// Users provisioned; the far deadlines' owners and the burst's.
    users: usize,
    /// Far-future deadlines declared.
    declared: usize,
    /// Of those, re-sent unchanged.
    resent: usize,
    /// Deadlines whose reminder falls due at the same instant.
    burst: usize,
    /// Idle window, seconds.
    idle_s: u64,
}

/// A batch of `PUT /v1/deadlines/{id}`, closed loop.
#[derive(Debug, Clone, Serialize)]
struct Declared {
    requests: u64,
    /// Answered 201 (new).
    created: u64,
    /// Answered 200 (changed, or already so).
    unchanged: u64,
    /// Anything else, or no answer.
    errors: u64,
    elapsed_s: f64,
    /// 2xx answers per second.
    per_s: f64,
    http_p50_ms: f64,
    http_p99_ms: f64,
    http_max_ms: f64,
    /// Gateway CPU share of one core during the batch.
    gateway_cpu: f64,
    /// Gateway CPU time per answered request (HTTP, reads, the writer, the scheduler's
    /// wake-ups).
    gateway_cpu_us_per_upsert: f64,
    /// The load generator's CPU share (at ~100 % it measures us, not the gateway).
    load_cpu: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_error: Option<String>,
}

/// The gateway over an idle window.
#[derive(Debug, Clone, Serialize)]
struct Quiet {
    window_s: f64,
    cpu_percent: f64,
    cpu_us_per_s: f64,
    rss_mb: f64,
}

/// The burst of reminders due at one instant.
#[derive(Debug, Clone, Serialize)]
struct Burst {
    reminders: usize,
    owners: usize,
    /// How fast the owners connected, with the far deadlines already declared (the
    /// gateway looks up each user's deadlines when they connect).
    connect_per_s: f64,
    declared: Declared,
    /// T − the last declaration's answer: how far ahead the reminders were planned.
    lead_s: f64,
    /// Reminders parsed by their owner's connection.
    delivered: u64,
    /// T → the last reminder parsed.
    all_delivered_s: f64,
    lateness_p50_ms: f64,
    lateness_p99_ms: f64,
    lateness_max_ms: f64,
    /// T → the first reminder parsed.
    first_delivered_ms: f64,
    /// Reminders received before T (would mean a clock or plan error).
    early: u64,
    /// Connections that got more than their one reminder.
    duplicated: u64,
    /// Connections the gateway closed during the burst.
    closed: u64,
    /// `created_at` − T over the reminders read back.
    fire_lag_p50_ms: f64,
    fire_lag_max_ms: f64,
    fire_lag_min_ms: f64,
    /// Distinct `created_at` values: the scheduler's rounds.
    rounds: usize,
    /// Reminders found in the owners' histories.
    stored: usize,
    /// Gateway CPU from just before T to the last delivery.
    gateway_cpu_s: f64,
    gateway_cpu_us_per_reminder: f64,
}

/// One run.
#[derive(Debug, Clone, Serialize)]
struct Run {
    declared: Declared,
    resent: Declared,
    baseline: Quiet,
    planned: Quiet,
    burst: Burst,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> Result<Report> {
    let sizes = Sizes {
        users: ctx.pick(10, 10_000),
        declared: ctx.pick(200, 100_000),
        resent: ctx.pick(20, 1_000),
        burst: ctx.pick(10, 10_000),
        idle_s: ctx.pick(2, 30),
    };
    // The burst holds one connection per owner here and one in the gateway, under the
    // same open-file limit; keep some for the HTTP connections and the gateway's files.
    let most =
        usize::try_from(ctx.fd_limit.saturating_sub(IN_FLIGHT as u64 + 500)).unwrap_or(usize::MAX);
    anyhow::ensure!(
        sizes.burst <= most && sizes.burst <= sizes.users,
        "the burst needs {} connections but the open-file limit is {}",
        sizes.burst,
        ctx.fd_limit
    );
    let mut report = Report::new("deadlines");
    report
        .param("users", sizes.users)
        .param("declared", sizes.declared)
        .param("resent", sizes.resent)
        .param("burst", sizes.burst)
        .param(
            "burst_owners",
            "one deadline per user, each user connected once",
        )
        .param("idle_window_s", sizes.idle_s)
        .param("in_flight", IN_FLIGHT)
        .param("far_policy", "the firm's default (4 working-day reminders)")
        .param("burst_policy", BURST_POLICY)
        .param("escalation", ESCALATION)
        .param("runs", ctx.runs);
    let mut runs = Vec::new();
    for index in 0..ctx.runs {
        let run = one_run(ctx, sizes)
            .await
            .with_context(|| format!("deadlines run {index}"))?;
        describe(&mut report, index, &run);
        report.metric(&format!("run{index}"), &run);
        runs.push(run);
    }
    let spread = |f: fn(&Run) -> f64| Spread::of(&runs.iter().map(f).collect::<Vec<_>>());
    let declare_rate = spread(|r| r.declared.per_s);
    let idle_cpu = spread(|r| r.planned.cpu_percent);
    let burst_s = spread(|r| r.burst.all_delivered_s);
    let errors = runs
        .iter()
        .map(|r| r.declared.errors + r.resent.errors + r.burst.declared.errors)
        .sum::<u64>();
    let undelivered = runs
        .iter()
        .map(|r| r.burst.reminders as u64 - r.burst.delivered.min(r.burst.reminders as u64))
        .sum::<u64>();
    report
        .metric("declare_per_s", &declare_rate)
        .metric("declare_http_p50_ms", spread(|r| r.declared.http_p50_ms))
        .metric("declare_http_p99_ms", spread(|r| r.declared.http_p99_ms))
        .metric(
            "declare_gateway_cpu_us_per_upsert",
            spread(|r| r.declared.gateway_cpu_us_per_upsert),
        )
        .metric("resend_per_s", spread(|r| r.resent.per_s))
        .metric("resend_http_p99_ms", spread(|r| r.resent.http_p99_ms))
        .metric(
            "idle_baseline_cpu_percent",
            spread(|r| r.baseline.cpu_percent),
        )
        .metric("idle_planned_cpu_percent", &idle_cpu)
        .metric(
            "idle_planned_cpu_us_per_s",
            spread(|r| r.planned.cpu_us_per_s),
        )
        .metric("idle_baseline_rss_mb", spread(|r| r.baseline.rss_mb))
        .metric("idle_planned_rss_mb", spread(|r| r.planned.rss_mb))
        .metric("burst_all_delivered_s", &burst_s)
        .metric("burst_lateness_p50_ms", spread(|r| r.burst.lateness_p50_ms))
        .metric("burst_lateness_p99_ms", spread(|r| r.burst.lateness_p99_ms))
        .metric("burst_lateness_max_ms", spread(|r| r.burst.lateness_max_ms))
        .metric("burst_fire_lag_p50_ms", spread(|r| r.burst.fire_lag_p50_ms))
        .metric("burst_fire_lag_max_ms", spread(|r| r.burst.fire_lag_max_ms))
        .metric("burst_rounds", spread(|r| r.burst.rounds as f64))
        .metric(
            "burst_owners_connect_per_s",
            spread(|r| r.burst.connect_per_s),
        )
        .metric(
            "burst_gateway_cpu_us_per_reminder",
            spread(|r| r.burst.gateway_cpu_us_per_reminder),
        );
    report.line(format!(
        "median of {} run(s): {} declarations/s, idle {} % of a core with {} deadlines planned, {} reminders due at once all delivered in {} s",
        ctx.runs,
        round(declare_rate.median),
        round(idle_cpu.median),
        sizes.declared,
        sizes.burst,
        round(burst_s.median),
    ));
    report
        .at_most(
            "declaration errors (all runs)",
            errors as f64,
            0.0,
            "errors",
        )
        .at_most(
            &format!("gateway CPU idle with {} deadlines planned", sizes.declared),
            idle_cpu.median,
            TARGET_IDLE_CPU_PERCENT,
            "%",
        )
        .at_most(
            &format!("{} reminders due at once, T → all delivered", sizes.burst),
            burst_s.median,
            TARGET_BURST_S,
            "s",
        )
        .at_most(
            "reminders never delivered (all runs)",
            undelivered as f64,
            0.0,
            "reminders",
        );
    Ok(report)
}

/// The human lines of one run.
fn describe(report: &mut Report, index: usize, run: &Run) {
    let d = &run.declared;
    report.line(format!(
        "run {index} declare {}: {} upserts/s, HTTP p50 {} / p99 {} / max {} ms, {} errors, gateway CPU {} % ({} µs per upsert), load CPU {} %",
        d.requests,
        round(d.per_s),
        round(d.http_p50_ms),
        round(d.http_p99_ms),
        round(d.http_max_ms),
        d.errors,
        round(d.gateway_cpu * 100.0),
        round(d.gateway_cpu_us_per_upsert),
        round(d.load_cpu * 100.0),
    ));
    if let Some(error) = &d.first_error {
        report.line(format!("  ↳ first error: {error}"));
    }
    if d.load_cpu > 0.9 {
        report.line(format!(
            "  ↳ the load generator used {} % of its core: this may measure it, not the gateway",
            round(d.load_cpu * 100.0)
        ));
    }
    let r = &run.resent;
    report.line(format!(
        "run {index} re-send {} unchanged: {} /s ({} answered 200, {} 201, {} errors), HTTP p50 {} / p99 {} ms, {} µs gateway CPU each",
        r.requests,
        round(r.per_s),
        r.unchanged,
        r.created,
        r.errors,
        round(r.http_p50_ms),
        round(r.http_p99_ms),
        round(r.gateway_cpu_us_per_upsert),
    ));
    report.line(format!(
        "run {index} idle {} s: {} % of a core ({} µs/s), RSS {} MB with {} planned; before any deadline {} % ({} µs/s), RSS {} MB",
        round(run.planned.window_s),
        round(run.planned.cpu_percent),
        round(run.planned.cpu_us_per_s),
        round(run.planned.rss_mb),
        d.created,
        round(run.baseline.cpu_percent),
        round(run.baseline.cpu_us_per_s),
        round(run.baseline.rss_mb),
    ));
    let b = &run.burst;
    report.line(format!(
        "run {index} burst of {} (owners connected at {} /s, declared at {} /s, T {} s after the last): {} delivered, all within {} s of T; lateness p50 {} / p99 {} / max {} ms (first {} ms); fire lag p50 {} / max {} ms over {} rounds; gateway {} µs CPU per reminder",
        b.reminders,
        round(b.connect_per_s),
        round(b.declared.per_s),
        round(b.lead_s),
        b.delivered,
        round(b.all_delivered_s),
        round(b.lateness_p50_ms),
        round(b.lateness_p99_ms),
        round(b.lateness_max_ms),
        round(b.first_delivered_ms),
        round(b.fire_lag_p50_ms),
        round(b.fire_lag_max_ms),
        b.rounds,
        round(b.gateway_cpu_us_per_reminder),
    ));
    if b.early + b.duplicated + b.closed > 0 || b.stored != b.reminders {
        report.line(format!(
            "  ↳ {} early, {} connections with duplicates, {} closed, {} of {} found in the histories",
            b.early, b.duplicated, b.closed, b.stored, b.reminders
        ));
    }
}

async fn one_run(ctx: &Ctx, sizes: Sizes) -> Result<Run> {
    let bench = BenchGateway::start(ctx, |_| {}).await?;
    let run = measure(&bench, sizes).await;
    run.map_err(|error| bench.explain(error))
}

async fn measure(bench: &BenchGateway, sizes: Sizes) -> Result<Run> {
    provision(&bench.target, sizes.users).await?;
    let api = Api::new(bench)?;
    let idle = Duration::from_secs(sizes.idle_s);
    let baseline = quiet(bench, idle).await?;

    // Fixed once, so that the re-send below sends byte-for-byte the same deadlines.
    let base = Utc::now() + chrono::Duration::days(FAR_DAYS);
    let users = sizes.users;
    let far: Body = Arc::new(move |n| (format!("bench-{n}"), far_body(n, users, base)));
    let declared = declare_all(bench, &api, sizes.declared, far.clone()).await?;
    let resent = declare_all(bench, &api, sizes.resent, far).await?;
    let planned = quiet(bench, idle).await?;
    let burst = burst(bench, &api, sizes, declared.per_s).await?;
    Ok(Run {
        declared,
        resent,
        baseline,
        planned,
        burst,
    })
}

/// Makes deadline `n`'s id and body.
type Body = Arc<dyn Fn(usize) -> (String, String) + Send + Sync>;

/// A far-future deadline: owners round-robin, due dates spread over 20 days and over
/// the working hours so that the planned steps are not all at one instant.
fn far_body(n: usize, users: usize, base: DateTime<Utc>) -> String {
    let due = base
        + chrono::Duration::days((n % 20) as i64)
        + chrono::Duration::minutes((n % 480) as i64);
    let mut body = deadline(n, &user_id(n % users), due);
    body["dossier_title"] = json!(format!("Dupont c/ Martin {n}"));
    body.to_string()
}

/// The fields every benchmark deadline has.
fn deadline(n: usize, owner: &str, due: DateTime<Utc>) -> Value {
    json!({
        "deadline_type": "Délai d'appel",
        "due_at": due.to_rfc3339_opts(SecondsFormat::Micros, true),
        "owner": owner,
        "dossier_number": format!("2026-{n:06}"),
        "escalation": serde_json::from_str::<Value>(ESCALATION).unwrap_or(Value::Null),
    })
}

/// `PUT /v1/deadlines/{id}` and `GET /v1/history` over keep-alive connections.
#[derive(Clone)]
struct Api {
    http: reqwest::Client,
    base: String,
    bearer: String,
}

impl Api {
    fn new(bench: &BenchGateway) -> Result<Api> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(IN_FLIGHT)
            .tcp_nodelay(true)
            .timeout(Duration::from_secs(30))
            .build()
            .context("building the HTTP client")?;
        Ok(Api {
            http,
            base: bench.base_url(),
            bearer: format!("Bearer {}", bench.key),
        })
    }

    /// Declares one deadline; the status, and the answer's text when it is not 2xx.
    async fn put(&self, id: &str, body: String) -> Result<(reqwest::StatusCode, Option<String>)> {
        let response = self
            .http
            .put(format!("{}/v1/deadlines/{id}", self.base))
            .header("Authorization", &self.bearer)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .context("PUT /v1/deadlines")?;
        let status = response.status();
        if status.is_success() {
            // Read to the end so that the connection goes back to the pool.
            response.bytes().await.context("reading the answer")?;
            return Ok((status, None));
        }
        Ok((status, Some(response.text().await.unwrap_or_default())))
    }

    /// `user`'s stream as that user sees it (a minted access token).
    async fn history(&self, target: &Target, user: &str) -> Result<HistoryResponse> {
        let response = self
            .http
            .get(format!("{}/v1/history", self.base))
            .query(&[("stream", format!("user:{user}")), ("limit", "100".into())])
            .header(
                "Authorization",
                format!("Bearer {}", target.minter.token(user)?),
            )
            .send()
            .await
            .context("GET /v1/history")?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            bail!("GET /v1/history for {user} answered {status}: {text}");
        }
        response.json().await.context("reading the history")
    }
}

/// One declaring task's tally.
#[derive(Default)]
struct Part {
    created: u64,
    unchanged: u64,
    errors: u64,
    http: Latencies,
    first_error: Option<String>,
}

/// Declares deadlines `0..count`, [`IN_FLIGHT`] at a time, closed loop.
async fn declare_all(
    bench: &BenchGateway,
    api: &Api,
    count: usize,
    body: Body,
) -> Result<Declared> {
    let gateway_before = bench.sample()?;
    let load_before = cpu_seconds(std::process::id())?;
    let next = Arc::new(AtomicUsize::new(0));
    let start = Instant::now();
    let mut workers = Vec::with_capacity(IN_FLIGHT);
    for _ in 0..IN_FLIGHT.min(count.max(1)) {
        let (api, body, next) = (api.clone(), body.clone(), next.clone());
        workers.push(tokio::spawn(async move {
            let mut part = Part::default();
            loop {
                let n = next.fetch_add(1, Ordering::Relaxed);
                if n >= count {
                    break;
                }
                let (id, text) = body(n);
                let sent_at = clock::now_us();
                match api.put(&id, text).await {
                    Ok((status, None)) => {
                        part.http.record(clock::now_us().saturating_sub(sent_at));
                        if status == reqwest::StatusCode::CREATED {
                            part.created += 1;
                        } else {
                            part.unchanged += 1;
                        }
                    }
                    Ok((status, Some(text))) => {
                        part.errors += 1;
                        part.first_error
                            .get_or_insert_with(|| format!("{id}: {status} {text}"));
                    }
                    Err(error) => {
                        part.errors += 1;
                        part.first_error
                            .get_or_insert_with(|| format!("{id}: {error:#}"));
                    }
                }
            }
            part
        }));
    }
    let mut total = Part::default();
    for worker in workers {
        let part = worker.await.context("a declaring task failed")?;
        total.created += part.created;
        total.unchanged += part.unchanged;
        total.errors += part.errors;
        total.http.merge(&part.http);
        if total.first_error.is_none() {
            total.first_error = part.first_error;
        }
    }
    let elapsed = start.elapsed().as_secs_f64();
    let gateway_after = bench.sample()?;
    let load_after = cpu_seconds(std::process::id())?;
    let ok = total.created + total.unchanged;
    let http = total.http.summary();
    Ok(Declared {
        requests: count as u64,
        created: total.created,
        unchanged: total.unchanged,
        errors: total.errors,
        elapsed_s: elapsed,
        per_s: ok as f64 / elapsed.max(1e-9),
        http_p50_ms: http.p50_ms,
        http_p99_ms: http.p99_ms,
        http_max_ms: http.max_ms,
        gateway_cpu: gateway_before.cpu_share_until(&gateway_after),
        gateway_cpu_us_per_upsert: (gateway_after.cpu_seconds - gateway_before.cpu_seconds) * 1e6
            / ok.max(1) as f64,
        load_cpu: (load_after - load_before) / gateway_before.at.elapsed().as_secs_f64(),
        first_error: total.first_error,
    })
}

/// The gateway's CPU and RSS over `window` once it has settled.
async fn quiet(bench: &BenchGateway, window: Duration) -> Result<Quiet> {
    settle(bench).await?;
    let before = bench.sample()?;
    tokio::time::sleep(window).await;
    let after = bench.sample()?;
    let share = before.cpu_share_until(&after);
    Ok(Quiet {
        window_s: after.at.duration_since(before.at).as_secs_f64(),
        cpu_percent: share * 100.0,
        cpu_us_per_s: share * 1e6,
        rss_mb: after.rss_bytes as f64 / 1e6,
    })
}

/// Waits (at most 20 s) until the gateway used at most one 10 ms tick over a second:
/// the last commits, checkpoint and connection teardowns of the previous phase are
/// over, so the idle window measures idleness rather than their tail.
async fn settle(bench: &BenchGateway) -> Result<()> {
    for _ in 0..20 {
        let before = bench.sample()?;
        tokio::time::sleep(Duration::from_secs(1)).await;
        if before.cpu_share_until(&bench.sample()?) <= 0.011 {
            return Ok(());
        }
    }
    Ok(())
}

/// What one owner's connection saw.
struct Owner {
    ended: Ended,
    received_us: Vec<u64>,
}

/// Phase 3: `sizes.burst` reminders due at one instant, each to its own connected
/// owner.
async fn burst(bench: &BenchGateway, api: &Api, sizes: Sizes, declare_rate: f64) -> Result<Burst> {
    let owners = sizes.burst;
    let received = Arc::new(AtomicU64::new(0));
    let stop = CancellationToken::new();
    let mut holders = Vec::with_capacity(owners);
    let ramp_start = Instant::now();
    let mut opened = std::pin::pin!(ramp(&bench.target, owners, RAMP_CONCURRENCY));
    while let Some(result) = opened.next().await {
        let (_, mut session, _) = result?;
        let (received, stop) = (received.clone(), stop.clone());
        holders.push(tokio::spawn(async move {
            let mut received_us = Vec::new();
            // Only the burst's reminders reach these streams now: every notification
            // seen is one, timed as soon as its frame is parsed.
            let ended = session
                .follow(&stop, |_| {
                    received_us.push(clock::now_us());
                    received.fetch_add(1, Ordering::Relaxed);
                })
                .await;
            Owner { ended, received_us }
        }));
    }

    let connect_per_s = owners as f64 / ramp_start.elapsed().as_secs_f64();

    // T leaves room for the declarations at half the rate phase 1 measured, plus a
    // margin: the reminders must be planned before they fall due, or they would be
    // sent "at once" as declared late and this would measure something else.
    let estimate = sizes.burst as f64 / declare_rate.max(100.0);
    let lead = chrono::Duration::milliseconds(((2.0 * estimate).max(3.0) * 1000.0) as i64 + 2000);
    let t = Utc::now() + lead;
    let due = t + chrono::Duration::seconds(BURST_BEFORE_S);
    let policy: Value = serde_json::from_str(BURST_POLICY).context("the burst policy")?;
    let body: Body = Arc::new(move |n| {
        let mut body = deadline(n, &user_id(n % owners), due);
        body["policy"] = policy.clone();
        (format!("burst-{n}"), body.to_string())
    });
    let declared = declare_all(bench, api, sizes.burst, body).await?;
    let left = t - Utc::now();
    if left <= chrono::Duration::zero() {
        bail!(
            "declaring the burst's {} deadlines ended {} ms after T: the reminders were declared late",
            sizes.burst,
            -left.num_milliseconds()
        );
    }
    // T on the bench's monotonic clock, mapped once.
    let t_us = clock::now_us() as i64 + (t - Utc::now()).num_microseconds().unwrap_or(0);
    let t_us = u64::try_from(t_us).unwrap_or(0);
    let until_t =
        |margin_us: u64| Duration::from_micros(t_us.saturating_sub(clock::now_us() + margin_us));
    tokio::time::sleep(until_t(300_000)).await;
    let gateway_before: Sample = bench.sample()?;
    let give_up = Instant::now() + until_t(0) + BURST_PATIENCE;
    while received.load(Ordering::Relaxed) < owners as u64 && Instant::now() < give_up {
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let gateway_after = bench.sample()?;
    // Stragglers past the patience count as undelivered; nothing more is awaited.
    stop.cancel();
    let mut lateness = Latencies::new();
    let (mut delivered, mut early, mut duplicated, mut closed) = (0_u64, 0_u64, 0_u64, 0_u64);
    let (mut first, mut last) = (u64::MAX, 0_u64);
    for holder in holders {
        let owner = holder.await.context("an owner's task failed")?;
        if owner.ended != Ended::Stopped {
            closed += 1;
        }
        if owner.received_us.len() > 1 {
            duplicated += 1;
        }
        for at in owner.received_us {
            delivered += 1;
            if at < t_us {
                early += 1;
            }
            lateness.record(at.saturating_sub(t_us));
            first = first.min(at);
            last = last.max(at);
        }
    }
    let fired = fire_times(bench, api, owners, t).await?;
    let lateness = lateness.summary();
    let gateway_cpu_s = gateway_after.cpu_seconds - gateway_before.cpu_seconds;
    let ms = |at: u64| at.saturating_sub(t_us) as f64 / 1000.0;
    Ok(Burst {
        reminders: sizes.burst,
        owners,
        connect_per_s,
        lead_s: left.num_milliseconds() as f64 / 1000.0,
        declared,
        delivered,
        all_delivered_s: if delivered == 0 {
            f64::NAN
        } else {
            ms(last) / 1000.0
        },
        lateness_p50_ms: lateness.p50_ms,
        lateness_p99_ms: lateness.p99_ms,
        lateness_max_ms: lateness.max_ms,
        first_delivered_ms: if delivered == 0 { f64::NAN } else { ms(first) },
        early,
        duplicated,
        closed,
        fire_lag_p50_ms: fired.lag.p50_ms,
        fire_lag_max_ms: fired.lag.max_ms,
        fire_lag_min_ms: fired.min_ms,
        rounds: fired.rounds,
        stored: fired.stored,
        gateway_cpu_s,
        gateway_cpu_us_per_reminder: gateway_cpu_s * 1e6 / delivered.max(1) as f64,
    })
}

/// The burst's reminders as stored, read back from each owner's history.
struct Fired {
    lag: crate::stats::LatencySummary,
    min_ms: f64,
    rounds: usize,
    stored: usize,
}

/// Reads every owner's history (after the measurement) for the burst's reminders:
/// `created_at` is the time the scheduler gave its round.
async fn fire_times(
    bench: &BenchGateway,
    api: &Api,
    owners: usize,
    t: DateTime<Utc>,
) -> Result<Fired> {
    let histories: Vec<Result<HistoryResponse>> = futures_util::stream::iter(0..owners)
        .map(|index| {
            let user = user_id(index);
            async move { api.history(&bench.target, &user).await }
        })
        .buffer_unordered(HISTORY_IN_FLIGHT)
        .collect()
        .await;
    let mut lag = Latencies::new();
    let mut rounds = HashSet::new();
    let (mut stored, mut min_us) = (0_usize, i64::MAX);
    for history in histories {
        for item in history?.notifications {
            let NotificationData::DeadlineAlert(alert) = &item.notification.data else {
                continue;
            };
            if !alert.deadline_id.starts_with("burst-") {
                continue;
            }
            let created = item.notification.created_at;
            let lag_us = (created - t).num_microseconds().unwrap_or(i64::MAX);
            stored += 1;
            min_us = min_us.min(lag_us);
            lag.record(u64::try_from(lag_us).unwrap_or(0));
            rounds.insert(created);
        }
    }
    Ok(Fired {
        lag: lag.summary(),
        min_ms: if stored == 0 {
            f64::NAN
        } else {
            min_us as f64 / 1000.0
        },
        rounds: rounds.len(),
        stored,
    })
}
