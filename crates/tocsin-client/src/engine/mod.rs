//! The engine: one background task that owns the connection to the gateway and the
//! local store, and a cheap [`EngineHandle`] through which the app acts.
//!
//! The task loops: get an access token ([`tokens`]), run one WebSocket session
//! ([`crate::session`]), then decide from how it ended whether to reconnect (after a
//! backoff delay that a resume or a network change cuts short), refresh first, or
//! stop (signed out). Actions taken meanwhile are applied locally at once and queued
//! durably in the outbox ([`actions`]); each session sends the queue once caught up.
//!
//! The engine is generic over the [`Gateway`] it talks to, so that its timing is
//! tested under `tokio::time::pause()` with channels for sockets; [`start`] runs it
//! against the real one.

mod actions;
mod handle;
mod tokens;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use rand::SeedableRng;
use rand::rngs::StdRng;
use tokio::sync::mpsc;
use tokio::time::Instant;

pub use actions::{Applied, apply_locally};
pub use handle::{Command, EngineHandle};
pub(crate) use tokens::{RENEW_RETRY, SharedAccess, TokenFailure, Tokens};

use crate::api::ServerUrl;
use crate::backoff::{Backoff, BackoffConfig};
use crate::clock::{Clock, Jump, SystemClock, spawn_watch};
use crate::events::{ConnectionState, EngineEvent};
use crate::gateway::{Gateway, HttpGateway};
use crate::policy::Policy;
use crate::secrets::SecretStore;
use crate::session::{Session, SessionEnd, Stop};
use crate::store::LocalStore;

/// A wall clock ahead of the monotonic clock by more than this means the machine slept.
const CLOCK_JUMP_THRESHOLD: Duration = Duration::from_secs(5);

/// How the engine runs.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    /// The gateway.
    pub server: ServerUrl,
    /// The secret store account holding this device's refresh token.
    pub account: String,
    /// Where the local database lives (`client.db` inside).
    pub data_dir: PathBuf,
    /// Ping the gateway this often (30 s) until its `welcome` says otherwise.
    pub heartbeat_interval: Duration,
    /// A gateway silent this long after a ping is dead (10 s).
    pub heartbeat_timeout: Duration,
    /// Reconnect delays.
    pub backoff: BackoffConfig,
    /// How often the wall clock is compared with the monotonic one to detect a resume.
    pub clock_tick: Duration,
    /// Our name and version, sent in `hello`.
    pub client_name: String,
    /// Draw the reconnect delays' jitter from this seed (tests replay it); from the
    /// OS otherwise.
    pub jitter_seed: Option<u64>,
}

impl EngineConfig {
    /// The defaults of DESIGN.md for a server and account.
    pub fn new(server: ServerUrl, account: String, data_dir: PathBuf) -> EngineConfig {
        EngineConfig {
            server,
            account,
            data_dir,
            heartbeat_interval: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(10),
            backoff: BackoffConfig::default(),
            clock_tick: Duration::from_secs(2),
            client_name: format!("tocsin-client/{}", env!("CARGO_PKG_VERSION")),
            jitter_seed: None,
        }
    }
}

/// Everything the engine task owns.
pub struct Engine<G: Gateway> {
    /// Settings.
    pub(crate) config: EngineConfig,
    /// The gateway.
    pub(crate) gateway: G,
    /// Where the refresh token lives.
    pub(crate) secrets: Arc<dyn SecretStore>,
    /// Local inbox, positions, outbox.
    pub(crate) store: Arc<Mutex<LocalStore>>,
    /// Events out.
    pub(crate) events: mpsc::Sender<EngineEvent>,
    /// Commands in.
    pub(crate) commands: mpsc::Receiver<Command>,
    /// Resume detections.
    pub(crate) jumps: mpsc::Receiver<Jump>,
    /// Reconnect delays.
    pub(crate) backoff: Backoff,
    /// The jitter of those delays.
    rng: StdRng,
    /// What to toast.
    pub(crate) policy: Policy,
    /// The access token, and what is known of the refresh token.
    pub(crate) tokens: Tokens,
}

/// What [`start`] returns: the handle, the event stream, the engine task.
pub type Started = (
    EngineHandle,
    mpsc::Receiver<EngineEvent>,
    tokio::task::JoinHandle<()>,
);

/// Starts the engine. Fails only when the local store cannot be opened at all.
pub fn start(
    config: EngineConfig,
    secrets: Arc<dyn SecretStore>,
    policy: Policy,
) -> anyhow::Result<Started> {
    start_with_clock(config, secrets, policy, Arc::new(SystemClock))
}

/// [`start`] with the clock used to detect a resume from sleep (tests simulate jumps).
pub fn start_with_clock(
    config: EngineConfig,
    secrets: Arc<dyn SecretStore>,
    policy: Policy,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Started> {
    let gateway = HttpGateway::new(config.server.clone());
    start_with(gateway, config, secrets, policy, clock)
}

/// [`start_with_clock`] against any [`Gateway`].
pub fn start_with<G: Gateway>(
    gateway: G,
    config: EngineConfig,
    secrets: Arc<dyn SecretStore>,
    policy: Policy,
    clock: Arc<dyn Clock>,
) -> anyhow::Result<Started> {
    let (store, recovered) = LocalStore::open(&config.data_dir.join("client.db"))?;
    let store = Arc::new(Mutex::new(store));
    let (events_tx, events) = mpsc::channel(1024);
    let (commands_tx, commands) = mpsc::channel(256);
    let (jumps_tx, jumps) = mpsc::channel(4);
    spawn_watch(clock, config.clock_tick, CLOCK_JUMP_THRESHOLD, jumps_tx);
    if let Some(recovered) = recovered {
        let _ = events_tx.try_send(EngineEvent::Warning(format!(
            "the local database was damaged and moved to {}; rebuilding from the server",
            recovered.moved_to.display()
        )));
    }
    let rng = match config.jitter_seed {
        Some(seed) => StdRng::seed_from_u64(seed),
        None => StdRng::from_os_rng(),
    };
    let tokens = Tokens::default();
    let access = tokens.shared();
    let engine = Engine {
        gateway,
        backoff: Backoff::new(config.backoff),
        rng,
        config,
        secrets,
        store: store.clone(),
        events: events_tx,
        commands,
        jumps,
        policy,
        tokens,
    };
    let task = tokio::spawn(engine.run());
    Ok((EngineHandle::new(commands_tx, store, access), events, task))
}

/// What the engine does after a session or a failed token renewal.
enum Next {
    /// Connect (again) now.
    Connect,
    /// The engine is done.
    Stop,
}

impl<G: Gateway> Engine<G> {
    /// The engine loop.
    async fn run(mut self) {
        loop {
            let next = match self.ensure_access().await {
                Ok(()) => self.one_session().await,
                Err(TokenFailure::SignedOut(reason)) => {
                    self.emit(EngineEvent::State(ConnectionState::SignedOut { reason }))
                        .await;
                    Next::Stop
                }
                Err(TokenFailure::Transient(reason)) => self.retry_later(None, &reason).await,
            };
            if let Next::Stop = next {
                return;
            }
        }
    }

    /// Runs one session and decides what follows it.
    async fn one_session(&mut self) -> Next {
        self.emit(EngineEvent::State(ConnectionState::Connecting {
            attempt: self.backoff.attempt() + 1,
            next_retry: None,
        }))
        .await;
        match Session::run(self).await {
            SessionEnd::Shutdown => Next::Stop,
            SessionEnd::ReconnectNow => Next::Connect,
            SessionEnd::RefreshThenReconnect => {
                self.tokens.forget_access();
                Next::Connect
            }
            SessionEnd::Reconnect { hint, reason } => self.retry_later(hint, &reason).await,
            SessionEnd::Stop(Stop::SignedOut(reason)) => {
                self.tokens.forget_access();
                let _ = self.secrets.delete(&self.config.account);
                self.emit(EngineEvent::State(ConnectionState::SignedOut { reason }))
                    .await;
                Next::Stop
            }
            SessionEnd::Stop(Stop::Other(reason)) => {
                // Never loop on a "do not reconnect" code: wait for the user or a
                // network change.
                self.emit(EngineEvent::State(ConnectionState::Offline {
                    since: Utc::now(),
                    reason,
                }))
                .await;
                self.wait_for_nudge().await
            }
        }
    }

    /// Waits the backoff delay (at least `hint`), reporting the next retry. Commands
    /// are still served meanwhile (offline actions); a resume or a network change ends
    /// the wait at once.
    async fn retry_later(&mut self, hint: Option<Duration>, reason: &str) -> Next {
        self.backoff.disconnected(Instant::now().into_std());
        let delay = self
            .backoff
            .next_delay_at_least(hint.unwrap_or_default(), &mut self.rng);
        let next_retry = Utc::now() + chrono::Duration::from_std(delay).unwrap_or_default();
        tracing::info!(
            reason,
            delay_ms = delay.as_millis() as u64,
            "reconnecting later"
        );
        self.emit(EngineEvent::State(ConnectionState::Offline {
            since: Utc::now(),
            reason: reason.to_owned(),
        }))
        .await;
        self.emit(EngineEvent::State(ConnectionState::Connecting {
            attempt: self.backoff.attempt(),
            next_retry: Some(next_retry),
        }))
        .await;
        self.serve_offline(Some(Instant::now() + delay)).await
    }

    /// After a "do not reconnect" close: wait for a network change or a resume.
    async fn wait_for_nudge(&mut self) -> Next {
        self.serve_offline(None).await
    }

    /// Serves commands offline until `deadline` (forever when `None`), a resume or a
    /// network change.
    async fn serve_offline(&mut self, deadline: Option<Instant>) -> Next {
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => return Next::Connect,
                Some(_) = self.jumps.recv() => return Next::Connect,
                command = self.commands.recv() => match command {
                    None | Some(Command::Shutdown) => return Next::Stop,
                    Some(Command::NetworkChanged) => return Next::Connect,
                    Some(command) => {
                        self.queue_action(command).await;
                    }
                },
            }
        }
    }

    /// Sends an event; a closed channel (the app quit) is not an error.
    pub(crate) async fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(event).await;
    }

    /// Runs `work` on the local store off the async workers.
    pub(crate) async fn with_store<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut LocalStore) -> anyhow::Result<R> + Send + 'static,
    ) -> anyhow::Result<R> {
        on_store(&self.store, work).await
    }
}

/// Runs `work` on the local store on a blocking thread: SQLite calls (and an fsync)
/// never hold an async worker. The engine, its desk and its handle all go through it.
pub(crate) async fn on_store<R: Send + 'static>(
    store: &Arc<Mutex<LocalStore>>,
    work: impl FnOnce(&mut LocalStore) -> anyhow::Result<R> + Send + 'static,
) -> anyhow::Result<R> {
    let store = store.clone();
    tokio::task::spawn_blocking(move || {
        let mut store = store
            .lock()
            .map_err(|_| anyhow::anyhow!("local store lock poisoned"))?;
        work(&mut store)
    })
    .await?
}

/// A deadline that never comes, for a disabled `select!` branch.
pub(crate) fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod tests;
