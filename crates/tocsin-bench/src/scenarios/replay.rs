//! **replay**: a user misses N notifications (10k); how long from connect until the
//! last one is persisted by the real client engine.
//!
//! The client is `tocsin_client::engine` with its SQLite store in a temp dir, signed in
//! as a built-in user (password login → refresh token in a memory secret store), as
//! the desktop app runs it. Per run: the engine syncs once and stops; N notifications
//! are published to the user's stream (batch endpoint, 500 per request); the engine
//! starts again on the same store, and the clock runs from that start (which includes
//! its token refresh over HTTP and the WebSocket handshake) to the engine's
//! `Notification` event for the N-th one. The engine persists the replay 500 per
//! transaction as it arrives and emits the replayed events once `caught_up` came, each
//! after its transaction committed: so the figure is an upper bound of "persisted".

use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tocsin_client::api::{ApiClient, ServerUrl};
use tocsin_client::engine::{self, Command, EngineConfig, EngineHandle};
use tocsin_client::events::{ConnectionState, EngineEvent};
use tocsin_client::policy::Policy;
use tocsin_client::secrets::{MemoryStore, SecretStore};
use tocsin_harness::gateway::TenantSpec;
use tokio::sync::mpsc;

use super::Ctx;
use crate::fixture::{BenchGateway, TENANT};
use crate::publisher::{Publisher, dossier_update};
use crate::report::{Report, round};
use crate::stats::Spread;

/// Notifications per batch request (the endpoint's maximum).
const BATCH: usize = 500;
/// The secret store's account name.
const ACCOUNT: &str = "bench";
/// The longest wait for any one step before the run is declared failed.
const PATIENCE: Duration = Duration::from_secs(120);

/// One run's figures.
struct Run {
    /// Engine start → the N-th notification persisted.
    last_persisted_ms: f64,
    /// Engine start → the engine's `CatchUp` event (the whole replay handled).
    catch_up_ms: f64,
    /// Engine start → the first replayed notification's event (after `caught_up`).
    first_event_ms: f64,
}

/// Runs the scenario.
pub async fn run(ctx: &Ctx) -> Result<Report> {
    let missed = ctx.pick(100, 10_000);
    let mut report = Report::new("replay");
    report
        .param("missed", missed)
        .param("runs", ctx.runs)
        .param("publish_batch", BATCH);
    let bench = BenchGateway::start(ctx, |options| {
        options.tenants = vec![TenantSpec::new(TENANT, &["marie"])];
    })
    .await?;
    let marie = bench.gateway.user(TENANT, 0)?.clone();
    let server = ServerUrl::parse(&bench.base_url()).context("the gateway's URL")?;
    let tokens = ApiClient::new(server.clone())
        .login(&marie.email, &marie.password, "tocsin-bench")
        .await
        .map_err(|err| anyhow::anyhow!("login as {}: {err}", marie.email))?;
    let secrets = Arc::new(MemoryStore::new());
    secrets.set(ACCOUNT, &tokens.refresh_token)?;
    let home = tempfile::tempdir().context("a temp dir for the client's store")?;
    let config = EngineConfig::new(server, ACCOUNT.into(), home.path().to_path_buf());
    let publisher = Publisher::new(&bench.base_url(), &bench.key)?;

    // The first sync: the engine learns the stream and its position, then goes away.
    let mut client = Client::start(&config, &secrets)?;
    client.until_connected().await?;
    client.stop().await?;

    let mut runs = Vec::new();
    for run in 0..ctx.runs {
        for first in (0..missed).step_by(BATCH) {
            let items: Vec<_> = (first..(first + BATCH).min(missed))
                .map(|i| dossier_update(&marie.stream(), i as u64))
                .collect();
            publisher.publish_batch(&items).await?;
        }
        let started = Instant::now();
        let mut client = Client::start(&config, &secrets)?;
        let measured = client
            .until_replayed(missed, started)
            .await
            .with_context(|| format!("replay run {run}"))?;
        client.stop().await?;
        report.line(format!(
            "run {run}: {missed} missed, first replayed event at {} ms, last (all persisted) at {} ms, catch-up event at {} ms",
            round(measured.first_event_ms),
            round(measured.last_persisted_ms),
            round(measured.catch_up_ms)
        ));
        runs.push(measured);
    }
    let spread = |f: fn(&Run) -> f64| Spread::of(&runs.iter().map(f).collect::<Vec<_>>());
    let last = spread(|r| r.last_persisted_ms);
    report
        .metric("connect_to_last_persisted_ms", &last)
        .metric("connect_to_first_event_ms", spread(|r| r.first_event_ms))
        .metric("connect_to_catch_up_event_ms", spread(|r| r.catch_up_ms))
        .metric(
            "persisted_per_s",
            Spread::of(
                &runs
                    .iter()
                    .map(|r| missed as f64 * 1000.0 / r.last_persisted_ms)
                    .collect::<Vec<_>>(),
            ),
        );
    report.line(format!(
        "median: {missed} notifications persisted {} ms after connect ({} per second)",
        round(last.median),
        round(missed as f64 * 1000.0 / last.median)
    ));
    if missed == 10_000 {
        report.at_most(
            "connect → 10k-th missed notification persisted",
            last.median,
            1000.0,
            "ms",
        );
    }
    Ok(report)
}

/// A running engine and its event stream.
struct Client {
    handle: EngineHandle,
    events: mpsc::Receiver<EngineEvent>,
    task: tokio::task::JoinHandle<()>,
}

impl Client {
    fn start(config: &EngineConfig, secrets: &Arc<MemoryStore>) -> Result<Client> {
        let (handle, events, task) =
            engine::start(config.clone(), secrets.clone(), Policy::default())?;
        Ok(Client {
            handle,
            events,
            task,
        })
    }

    async fn next(&mut self) -> Result<EngineEvent> {
        match tokio::time::timeout(PATIENCE, self.events.recv()).await {
            Ok(Some(event)) => Ok(event),
            Ok(None) => bail!("the client engine stopped"),
            Err(_) => bail!("the client engine said nothing for {PATIENCE:?}"),
        }
    }

    async fn until_connected(&mut self) -> Result<()> {
        loop {
            match self.next().await? {
                EngineEvent::State(ConnectionState::Connected { .. }) => return Ok(()),
                EngineEvent::State(ConnectionState::SignedOut { reason }) => {
                    bail!("the client was signed out: {reason}")
                }
                _ => {}
            }
        }
    }

    /// Counts replayed notifications until `missed` were persisted and the catch-up
    /// was reported.
    async fn until_replayed(&mut self, missed: usize, started: Instant) -> Result<Run> {
        let ms = |at: Instant| at.duration_since(started).as_secs_f64() * 1000.0;
        let (mut seen, mut first, mut last, mut catch_up) = (0, None, None, None);
        while last.is_none() || catch_up.is_none() {
            match self.next().await? {
                EngineEvent::Notification { .. } => {
                    seen += 1;
                    let now = Instant::now();
                    first.get_or_insert(now);
                    if seen == missed {
                        last = Some(now);
                    }
                }
                EngineEvent::CatchUp {
                    missed: reported, ..
                } => {
                    catch_up = Some(Instant::now());
                    if reported != missed {
                        bail!("the client reported {reported} missed, {missed} were published");
                    }
                }
                EngineEvent::State(ConnectionState::SignedOut { reason }) => {
                    bail!("the client was signed out: {reason}")
                }
                _ => {}
            }
        }
        let (Some(first), Some(last), Some(catch_up)) = (first, last, catch_up) else {
            bail!("the replay did not complete");
        };
        Ok(Run {
            last_persisted_ms: ms(last),
            catch_up_ms: ms(catch_up),
            first_event_ms: ms(first),
        })
    }

    async fn stop(self) -> Result<()> {
        self.handle.send(Command::Shutdown).await;
        drop(self.events);
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .context("the client engine did not stop")?
            .context("the client engine task failed")
    }
}
