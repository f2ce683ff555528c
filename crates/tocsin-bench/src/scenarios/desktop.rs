//! **desktop**: the tray app's footprint and how fast a publish becomes an OS
//! notification.
//!
//! Each run starts one gateway, one private desktop session (the e2e harness: Xvfb,
//! a session bus, the fake `org.freedesktop.Notifications` server and tray watcher)
//! and one `tocsin-desktop` (`$TOCSIN_DESKTOP_BIN`), signed in and hidden, then goes
//! through the states in sequence — one app start per run, not per state, to keep a
//! run near 3.5 minutes at normal scale:
//!
//! 1. **never opened**: total RSS of the app and its descendants (the WebKit
//!    processes), and their CPU share over the idle window;
//! 2. **publish → Notify**: notifications published one at a time over the HTTP
//!    API, each timed from the request leaving to the `Notify` call reaching the fake
//!    server on the session bus (and to the HTTP answer, to split gateway from app);
//! 3. **open**: the panel opened from the tray menu ("Open Tocsin"), its inbox then
//!    holding the notifications of step 2, idle window;
//! 4. **opened then closed**: Esc in the panel (xdotool), idle window.
//!
//! Each idle window starts once the total RSS has stopped moving. The app, started by
//! this process, shares the load generator's core (the gateway has its own).
//!
//! The scenario skips, saying why in its report, when the desktop tools or
//! `$TOCSIN_DESKTOP_BIN` are missing — unless `TOCSIN_REQUIRE_DESKTOP=1`, as in the
//! desktop tests, when that is an error.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tocsin_harness::desktop::app::SESSION_TOOLS;
use tocsin_harness::desktop::wait::{poll, wait_live};
use tocsin_harness::desktop::{AppOptions, DesktopApp, DesktopSession, SessionOptions};
use tocsin_harness::env::{DESKTOP_BIN as DESKTOP_BIN_ENV, REQUIRE_DESKTOP as REQUIRE_DESKTOP_ENV};
use tocsin_harness::gateway::{TenantSpec, UserFixture};
use tocsin_harness::process::on_path;

use super::Ctx;
use crate::clock;
use crate::fixture::{BenchGateway, TENANT};
use crate::procfs;
use crate::publisher::{Publisher, dossier_update};
use crate::report::{Report, round};
use crate::stats::{Latencies, LatencySummary, Spread};

/// The idle window of each state at normal scale (what docs/BENCHMARKS.md used).
const WINDOW: Duration = Duration::from_secs(60);
/// The tray menu item that opens the panel (the app runs in English).
const OPEN_LABEL: &str = "Open Tocsin";
/// The panel window's title (what xdotool looks for).
const PANEL_TITLE: &str = "Tocsin";
/// How long starting, signing in, opening or closing may take.
const STEP: Duration = Duration::from_secs(60);
/// How long one notification may take to reach the notification server before the
/// run fails (far above any target: a lost toast, not a slow one).
const NOTIFY_TIMEOUT: Duration = Duration::from_secs(10);
/// The pause after each toast before the next publish: every notification arrives
/// alone, as a live one does, and is toasted on its own (a catch-up summary only
/// follows an outage, `tocsin_client::policy`), with the app's work for the previous
/// one (recount, tray update) finished.
const GAP: Duration = Duration::from_millis(250);
/// Idle CPU at most this share of one core counts as "≈ 0 %" (the heartbeat every
/// 30 s is the only regular work; docs/BENCHMARKS.md measured 0.016 %).
const IDLE_CPU_TARGET_PERCENT: f64 = 0.1;

/// The panel states measured, in the order a run goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum State {
    /// `--hidden`, the panel never opened.
    NeverOpened,
    /// The panel open.
    Open,
    /// The panel opened, then closed with Esc.
    Closed,
}

impl State {
    const ALL: [State; 3] = [State::NeverOpened, State::Open, State::Closed];

    /// The key in the JSON report.
    fn key(self) -> &'static str {
        match self {
            State::NeverOpened => "never_opened",
            State::Open => "open",
            State::Closed => "opened_then_closed",
        }
    }

    /// For people.
    fn describe(self) -> &'static str {
        match self {
            State::NeverOpened => "panel never opened",
            State::Open => "panel open",
            State::Closed => "panel opened then closed",
        }
    }
}

/// The footprint of the app's processes in one state.
#[derive(Debug, Clone, Default)]
struct Footprint {
    /// Total RSS of the app and every descendant, MB, at the window's start.
    total_mb: f64,
    /// The same split by process role (`app`, `web`, `network`, `other`), MB.
    by_role_mb: BTreeMap<&'static str, f64>,
    /// User + system CPU of the processes over the window, % of one core.
    cpu_percent: f64,
}

/// One run's figures.
struct Run {
    footprints: BTreeMap<State, Footprint>,
    /// Request sent → `Notify` received.
    notify: Latencies,
    /// Request sent → 2xx answer (the gateway's part).
    publish_ack: Latencies,
}

/// Runs the scenario (or reports why it was skipped).
pub async fn run(ctx: &Ctx) -> Result<Report> {
    let mut report = Report::new("desktop");
    let window = ctx.pick(Duration::from_secs(3), WINDOW);
    let count = ctx.pick(5, 50);
    report
        .param("runs", ctx.runs)
        .param("idle_window_s", window.as_secs())
        .param("notifications_per_run", count)
        .param("gap_ms", GAP.as_millis());
    let binary = match desktop_binary()? {
        Ok(binary) => binary,
        Err(reason) => {
            report
                .metric("skipped", &reason)
                .line(format!("SKIPPED: {reason}"));
            return Ok(report);
        }
    };
    report.param("binary", binary.display().to_string());
    let close_with_escape = on_path("xdotool");
    if !close_with_escape {
        report.line("xdotool is missing: the 'opened then closed' state is not measured");
    }

    let mut runs = Vec::new();
    for index in 0..ctx.runs {
        eprintln!("tocsin-bench: desktop run {} of {}…", index + 1, ctx.runs);
        runs.push(
            one_run(ctx, &binary, window, count, close_with_escape)
                .await
                .with_context(|| format!("desktop run {}", index + 1))?,
        );
    }

    for state in State::ALL {
        let footprints: Vec<&Footprint> = runs
            .iter()
            .filter_map(|r| r.footprints.get(&state))
            .collect();
        if footprints.is_empty() {
            continue;
        }
        let total = Spread::of(&footprints.iter().map(|f| f.total_mb).collect::<Vec<_>>());
        let cpu = Spread::of(&footprints.iter().map(|f| f.cpu_percent).collect::<Vec<_>>());
        let mut roles = BTreeMap::new();
        for footprint in &footprints {
            for (role, mb) in &footprint.by_role_mb {
                roles.entry(*role).or_insert_with(Vec::new).push(*mb);
            }
        }
        // A role absent from a run (no web process once closed) weighs 0 MB there.
        let roles: BTreeMap<&str, f64> = roles
            .into_iter()
            .map(|(role, mut mbs)| {
                mbs.resize(footprints.len(), 0.0);
                (role, Spread::of(&mbs).median)
            })
            .collect();
        let split = roles
            .iter()
            .map(|(role, mb)| format!("{role} {}", round(*mb)))
            .collect::<Vec<_>>()
            .join(", ");
        report.line(format!(
            "{}: {} MB total RSS ({split}), {} % CPU over {} s idle",
            state.describe(),
            round(total.median),
            round(cpu.median),
            window.as_secs()
        ));
        report.metric(
            state.key(),
            serde_json::json!({
                "rss_total_mb": total,
                "rss_by_process_mb": roles,
                "cpu_percent_of_a_core": cpu,
            }),
        );
        match state {
            State::NeverOpened => {
                report
                    .at_most("desktop RSS, panel never opened", total.median, 120.0, "MB")
                    .at_most(
                        "desktop idle CPU, panel never opened",
                        cpu.median,
                        IDLE_CPU_TARGET_PERCENT,
                        "% of a core",
                    );
            }
            // The target speaks of "the panel closed": after use it is closed too.
            State::Closed => {
                report
                    .at_most(
                        "desktop RSS, panel opened then closed",
                        total.median,
                        120.0,
                        "MB",
                    )
                    .at_most(
                        "desktop idle CPU, panel opened then closed",
                        cpu.median,
                        IDLE_CPU_TARGET_PERCENT,
                        "% of a core",
                    );
            }
            State::Open => {}
        }
    }

    let mut notify = Latencies::new();
    let mut ack = Latencies::new();
    for run in &runs {
        notify.merge(&run.notify);
        ack.merge(&run.publish_ack);
    }
    let notify = notify.summary();
    let ack = ack.summary();
    let per_run: Vec<LatencySummary> = runs.iter().map(|r| r.notify.summary()).collect();
    report
        .metric("publish_to_notify_ms", notify)
        .metric("publish_to_notify_per_run_ms", per_run)
        .metric("publish_to_http_answer_ms", ack);
    report.line(format!(
        "publish → Notify on the session bus ({} toasts): p50 {} ms, p99 {} ms, max {} ms (of which publish → HTTP answer p50 {} ms, p99 {} ms)",
        notify.count,
        round(notify.p50_ms),
        round(notify.p99_ms),
        round(notify.max_ms),
        round(ack.p50_ms),
        round(ack.p99_ms),
    ));
    report.at_most(
        "publish → OS notification p99 (loopback)",
        notify.p99_ms,
        100.0,
        "ms",
    );
    Ok(report)
}

/// The desktop binary to measure: `Ok(Err(reason))` to skip, `Err` when
/// `TOCSIN_REQUIRE_DESKTOP=1` forbids skipping or the binary named does not exist.
///
/// Unlike the desktop tests, no fallback to `target/debug`: a benchmark must measure
/// the build it was given (`cargo xtask bench` passes the release one).
fn desktop_binary() -> Result<std::result::Result<PathBuf, String>> {
    let required = std::env::var(REQUIRE_DESKTOP_ENV).is_ok_and(|v| v == "1");
    let missing: Vec<&str> = SESSION_TOOLS
        .iter()
        .copied()
        .filter(|tool| !on_path(tool))
        .collect();
    let reason = match std::env::var_os(DESKTOP_BIN_ENV).filter(|p| !p.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            // A binary named but absent is a mistake, never a reason to skip.
            if !path.is_file() {
                bail!("{DESKTOP_BIN_ENV}={} is not a file", path.display());
            }
            if missing.is_empty() {
                return Ok(Ok(path));
            }
            format!("missing system tools {missing:?}")
        }
        None => format!("{DESKTOP_BIN_ENV} is unset (cargo xtask bench sets it)"),
    };
    if required {
        bail!("{REQUIRE_DESKTOP_ENV}=1 but {reason}");
    }
    Ok(Err(format!(
        "{reason}; set {REQUIRE_DESKTOP_ENV}=1 to fail instead"
    )))
}

/// One app start going through every state: a fresh gateway, session and app.
async fn one_run(
    ctx: &Ctx,
    binary: &std::path::Path,
    window: Duration,
    count: usize,
    close_with_escape: bool,
) -> Result<Run> {
    let bench = BenchGateway::start(ctx, |options| {
        // A built-in user with a password: the app signs in as a user would.
        options.tenants = vec![TenantSpec::new(TENANT, &["marie"])];
    })
    .await?;
    let marie: UserFixture = bench.gateway.user(TENANT, 0)?.clone();
    let session = DesktopSession::start(SessionOptions::default()).await?;
    let home = session.dir("home")?;
    let options =
        AppOptions::new(&home).signed_in(&bench.gateway.base_url(), &marie.email, &marie.password);
    let mut app = DesktopApp::start(&session, binary, &options).await?;
    let result = measure(
        &bench,
        &session,
        &mut app,
        &marie,
        window,
        count,
        close_with_escape,
    )
    .await;
    if result.is_err() {
        eprintln!(
            "--- tocsin-desktop log ({}), last lines:\n{}\n---",
            app.log().display(),
            app.log_tail(40)
        );
    }
    app.kill().await;
    session.stop().await;
    result
}

/// The states in sequence, on a started app.
async fn measure(
    bench: &BenchGateway,
    session: &DesktopSession,
    app: &mut DesktopApp,
    marie: &UserFixture,
    window: Duration,
    count: usize,
    close_with_escape: bool,
) -> Result<Run> {
    let pid = app.pid().context("the app has a process id")?;
    let tray = app.wait_tray(session, 0, STEP).await?;
    wait_live(&tray, STEP).await?;
    let mut footprints = BTreeMap::new();

    settle(pid).await?;
    footprints.insert(State::NeverOpened, idle(pid, session, window).await?);

    let (notify, publish_ack) = latencies(bench, session, marie, count).await?;

    tray.click_label(OPEN_LABEL).await?;
    poll("the panel's web process", STEP, async || {
        Ok(session.has_web_process().then_some(()))
    })
    .await?;
    settle(pid).await?;
    footprints.insert(State::Open, idle(pid, session, window).await?);

    if close_with_escape {
        close_panel(session).await?;
        settle(pid).await?;
        footprints.insert(State::Closed, idle(pid, session, window).await?);
    }
    Ok(Run {
        footprints,
        notify,
        publish_ack,
    })
}

/// Presses Esc in the panel until its web process exits, for up to [`STEP`]. xdotool
/// looks the window up by title first, and that lookup can come up empty (exit status
/// 1, nothing on stderr: the window is not viewable at that instant) or find a window
/// X has already replaced (BadWindow). Neither is the app failing, so the press is
/// tried again, at the poll's pace, until the web process is gone; the last error is
/// reported if it never goes.
async fn close_panel(session: &DesktopSession) -> Result<()> {
    poll(
        "Esc to close the panel (its web process to exit)",
        STEP,
        async || {
            if !session.has_web_process() {
                return Ok(Some(()));
            }
            session.press_key(PANEL_TITLE, "Escape").await?;
            // Give this press time to take effect before pressing again.
            let exited = poll("the panel's web process to exit", STEP / 12, async || {
                Ok((!session.has_web_process()).then_some(()))
            })
            .await;
            Ok(exited.ok())
        },
    )
    .await
}

/// Publishes `count` notifications to Marie one at a time; each is timed from the
/// request leaving to its `Notify` call, and to the HTTP answer.
async fn latencies(
    bench: &BenchGateway,
    session: &DesktopSession,
    marie: &UserFixture,
    count: usize,
) -> Result<(Latencies, Latencies)> {
    let server = session.notifications()?;
    let publisher = Publisher::new(&bench.base_url(), &bench.key)?;
    let to = format!("user:{}", marie.id);
    let mut notify = Latencies::new();
    let mut ack = Latencies::new();
    for sequence in 0..count {
        let request = dossier_update(&to, sequence as u64);
        // The body's stamp is unique per publish: it finds this one's toast.
        let stamp = request["body"]
            .as_str()
            .and_then(clock::read_stamp)
            .context("the published body carries a stamp")?;
        let sent = Instant::now();
        publisher.publish(&request).await?;
        ack.record(micros(sent.elapsed()));
        let (shown, received) = server
            .wait_for_timed(
                &format!("notification #{}", sequence + 1),
                NOTIFY_TIMEOUT,
                |n| clock::read_stamp(&n.body) == Some(stamp),
            )
            .await?;
        notify.record(micros(received.saturating_duration_since(sent)));
        // As a user dismissing it: the app stops waiting for a click on it.
        server.close(shown.id).await?;
        tokio::time::sleep(GAP).await;
    }
    Ok((notify, ack))
}

/// A duration in whole microseconds, for [`Latencies`].
fn micros(duration: Duration) -> u64 {
    u64::try_from(duration.as_micros()).unwrap_or(u64::MAX)
}

/// The app's processes with their role: its tree (WebKit's processes are its
/// children) and, in case one was reparented, every WebKit process of the session.
fn processes(pid: u32, session: &DesktopSession) -> Vec<(u32, &'static str)> {
    let mut pids = procfs::process_tree(pid);
    for (webkit, _) in session.webkit_processes() {
        if !pids.contains(&webkit) {
            pids.push(webkit);
        }
    }
    pids.into_iter()
        .map(|p| {
            // `comm` is cut at 15 characters: WebKitWebProces, WebKitNetworkPr.
            let comm = std::fs::read_to_string(format!("/proc/{p}/comm")).unwrap_or_default();
            let role = if p == pid {
                "app"
            } else if comm.starts_with("WebKitWeb") {
                "web"
            } else if comm.starts_with("WebKitNetwork") {
                "network"
            } else {
                "other"
            };
            (p, role)
        })
        .collect()
}

/// One reading of every process of the app: (role, RSS bytes, CPU seconds) by pid.
fn reading(pid: u32, session: &DesktopSession) -> Result<BTreeMap<u32, (&'static str, u64, f64)>> {
    let mut readings = BTreeMap::new();
    for (p, role) in processes(pid, session) {
        match (procfs::rss_bytes(p), procfs::cpu_seconds(p)) {
            (Ok(rss), Ok(cpu)) => {
                readings.insert(p, (role, rss, cpu));
            }
            // The app itself gone is a failure; a helper that just exited is not.
            _ if p == pid => bail!("the app (pid {pid}) exited"),
            _ => {}
        }
    }
    Ok(readings)
}

/// RSS at the start of an idle `window`, and the CPU used over it.
async fn idle(pid: u32, session: &DesktopSession, window: Duration) -> Result<Footprint> {
    let start_at = Instant::now();
    let start = reading(pid, session)?;
    tokio::time::sleep(window).await;
    let end = reading(pid, session)?;
    let wall = start_at.elapsed().as_secs_f64();
    let mut footprint = Footprint::default();
    for (role, rss, _) in start.values() {
        footprint.total_mb += *rss as f64 / 1e6;
        *footprint.by_role_mb.entry(role).or_default() += *rss as f64 / 1e6;
    }
    // CPU of processes present at both ends (one that came or went in between did
    // so because something happened, which an idle window is not about).
    let cpu: f64 = start
        .iter()
        .filter_map(|(p, (_, _, before))| end.get(p).map(|(_, _, after)| after - before))
        .sum();
    footprint.cpu_percent = cpu / wall * 100.0;
    Ok(footprint)
}

/// Waits until the app's total RSS (its process tree) stops moving — less than 1 MB
/// in 1 s, at most 30 s —, so an idle window measures a steady state, not the page
/// still loading.
async fn settle(pid: u32) -> Result<()> {
    let total = || -> Result<i64> {
        Ok(i64::try_from(procfs::Sample::of_tree(pid)?.rss_bytes).unwrap_or(i64::MAX))
    };
    let mut last = total()?;
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = total()?;
        if (now - last).abs() < 1_000_000 {
            return Ok(());
        }
        last = now;
    }
    Ok(())
}
