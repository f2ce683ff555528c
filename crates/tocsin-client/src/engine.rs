//! The engine: one background task that owns the connection to the gateway and the
//! local store, and a cheap [`EngineHandle`] through which the app acts.
//!
//! The task loops: get an access token (refreshing with the refresh token from the
//! secret store), run one WebSocket session ([`crate::connection`]), then decide from
//! how it ended whether to reconnect (after a backoff delay that a resume or a
//! network change cuts short), refresh first, or stop (signed out). Actions taken
//! meanwhile are applied locally at once and queued durably in the outbox; each
//! session sends the queue in order once caught up.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::Utc;
use tocsin_protocol::Kind;
use tocsin_protocol::frames::{ClientFrame, ProposalResponse};
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::api::{ApiClient, ApiError, ServerUrl};
use crate::backoff::{Backoff, BackoffConfig};
use crate::clock::{Clock, Jump, SystemClock, spawn_watch};
use crate::connection::{SessionEnd, Stop};
use crate::events::{ConnectionState, EngineEvent};
use crate::policy::Policy;
use crate::secrets::SecretStore;
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
    /// Ping the gateway this often (30 s).
    pub heartbeat_interval: Duration,
    /// A gateway silent this long after a ping is dead (10 s).
    pub heartbeat_timeout: Duration,
    /// Reconnect delays.
    pub backoff: BackoffConfig,
    /// How often the wall clock is compared with the monotonic one to detect a resume.
    pub clock_tick: Duration,
    /// Our name and version, sent in `hello`.
    pub client_name: String,
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
        }
    }
}

/// What the app asks of the engine.
#[derive(Debug)]
pub enum Command {
    /// Mark notifications read (on every device).
    MarkRead(Vec<String>),
    /// Mark everything (of a kind) read.
    MarkAllRead(Option<Kind>),
    /// Accept or reject a proposal.
    Respond {
        /// The proposal.
        proposal_id: String,
        /// The answer.
        response: ProposalResponse,
    },
    /// The user edited their notification preferences: decide later toasts with these.
    SetPreferences(Box<crate::policy::Preferences>),
    /// The network changed (new Wi-Fi, VPN up): reconnect now.
    NetworkChanged,
    /// Stop the engine.
    Shutdown,
}

/// The app's side of a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    /// Commands to the engine task.
    commands: mpsc::Sender<Command>,
    /// The local store, for the app's queries (inbox lists, counts).
    pub store: Arc<Mutex<LocalStore>>,
}

impl EngineHandle {
    /// Sends a command; false when the engine has stopped.
    pub async fn send(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }
}

/// Everything the engine task owns.
pub struct Engine {
    /// Settings.
    pub config: EngineConfig,
    /// HTTP API.
    pub api: ApiClient,
    /// Where the refresh token lives.
    pub secrets: Arc<dyn SecretStore>,
    /// Local inbox, positions, outbox.
    pub store: Arc<Mutex<LocalStore>>,
    /// Events out.
    pub events: mpsc::Sender<EngineEvent>,
    /// Commands in.
    pub commands: mpsc::Receiver<Command>,
    /// Resume detections.
    pub jumps: mpsc::Receiver<Jump>,
    /// Reconnect delays.
    pub backoff: Backoff,
    /// What to toast.
    pub policy: Policy,
    /// The current access token and when it expires.
    pub access: Option<(String, Instant)>,
    /// 4100 closes since the last good session: one refresh is tried, not more.
    pub invalid_token_strikes: u32,
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
    let engine = Engine {
        api: ApiClient::new(config.server.clone()),
        backoff: Backoff::new(config.backoff),
        config,
        secrets,
        store: store.clone(),
        events: events_tx,
        commands,
        jumps,
        policy,
        access: None,
        invalid_token_strikes: 0,
    };
    let task = tokio::spawn(engine.run());
    Ok((
        EngineHandle {
            commands: commands_tx,
            store,
        },
        events,
        task,
    ))
}

/// Why there is no access token.
pub(crate) enum TokenFailure {
    /// The refresh was refused: sign in again.
    SignedOut(String),
    /// The gateway could not be reached or failed: retry later.
    Transient(String),
}

impl Engine {
    /// The engine loop.
    async fn run(mut self) {
        loop {
            if let Err(failure) = self.ensure_access().await {
                match failure {
                    TokenFailure::SignedOut(reason) => {
                        self.emit(EngineEvent::State(ConnectionState::SignedOut { reason }))
                            .await;
                        return;
                    }
                    TokenFailure::Transient(reason) => {
                        if !self.wait_before_retry(None, &reason).await {
                            return;
                        }
                        continue;
                    }
                }
            }
            self.emit(EngineEvent::State(ConnectionState::Connecting {
                attempt: self.backoff.attempt() + 1,
                next_retry: None,
            }))
            .await;
            match self.session().await {
                SessionEnd::Shutdown => return,
                SessionEnd::ReconnectNow => continue,
                SessionEnd::RefreshThenReconnect => {
                    self.access = None;
                    continue;
                }
                SessionEnd::Reconnect { hint, reason } => {
                    if !self.wait_before_retry(hint, &reason).await {
                        return;
                    }
                }
                SessionEnd::Stop(Stop::SignedOut(reason)) => {
                    self.access = None;
                    let _ = self.secrets.delete(&self.config.account);
                    self.emit(EngineEvent::State(ConnectionState::SignedOut { reason }))
                        .await;
                    return;
                }
                SessionEnd::Stop(Stop::Other(reason)) => {
                    // Never loop on a "do not reconnect" code: wait for the user or a
                    // network change.
                    self.emit(EngineEvent::State(ConnectionState::Offline {
                        since: Utc::now(),
                        reason,
                    }))
                    .await;
                    if !self.wait_for_nudge().await {
                        return;
                    }
                }
            }
        }
    }

    /// Makes sure an access token valid for at least a minute is held.
    async fn ensure_access(&mut self) -> Result<(), TokenFailure> {
        if let Some((_, expires)) = &self.access
            && *expires > Instant::now() + Duration::from_secs(60)
        {
            return Ok(());
        }
        self.refresh_access().await
    }

    /// Trades the stored refresh token for a new pair, storing the rotated token first.
    pub(crate) async fn refresh_access(&mut self) -> Result<(), TokenFailure> {
        let stored = self
            .secrets
            .get(&self.config.account)
            .map_err(|err| TokenFailure::SignedOut(format!("the secret store failed: {err}")))?;
        let Some(refresh_token) = stored else {
            return Err(TokenFailure::SignedOut(
                "not signed in on this device".into(),
            ));
        };
        match self.api.refresh(&refresh_token).await {
            Ok(tokens) => {
                if let Err(err) = self
                    .secrets
                    .set(&self.config.account, &tokens.refresh_token)
                {
                    self.emit(EngineEvent::Warning(format!(
                        "could not save the renewed sign-in ({err}); you may have to sign in again after a restart"
                    )))
                    .await;
                }
                let expires = Instant::now() + Duration::from_secs(tokens.expires_in);
                self.access = Some((tokens.access_token, expires));
                Ok(())
            }
            Err(ApiError::Unauthorized(message)) => Err(TokenFailure::SignedOut(message)),
            Err(err) => Err(TokenFailure::Transient(err.to_string())),
        }
    }

    /// Waits the backoff delay (at least `hint`), reporting the next retry. Commands
    /// are still served meanwhile (offline actions); a resume or a network change ends
    /// the wait at once. False when the engine must stop.
    async fn wait_before_retry(&mut self, hint: Option<Duration>, reason: &str) -> bool {
        self.backoff.disconnected(std::time::Instant::now());
        let delay = self
            .backoff
            .next_delay_at_least(hint.unwrap_or_default(), &mut rand::rng());
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
        let deadline = Instant::now() + delay;
        loop {
            tokio::select! {
                () = tokio::time::sleep_until(deadline) => return true,
                Some(_) = self.jumps.recv() => return true,
                command = self.commands.recv() => match command {
                    None | Some(Command::Shutdown) => return false,
                    Some(Command::NetworkChanged) => return true,
                    Some(command) => self.apply_offline(command).await,
                },
            }
        }
    }

    /// After a "do not reconnect" close: wait for a network change or a resume.
    async fn wait_for_nudge(&mut self) -> bool {
        loop {
            tokio::select! {
                Some(_) = self.jumps.recv() => return true,
                command = self.commands.recv() => match command {
                    None | Some(Command::Shutdown) => return false,
                    Some(Command::NetworkChanged) => return true,
                    Some(command) => self.apply_offline(command).await,
                },
            }
        }
    }

    /// Applies an action locally and queues it for the gateway; returns the frame to
    /// send now when connected.
    pub async fn apply_offline(&mut self, command: Command) {
        if let Some(frame) = self.queue_action(command).await {
            tracing::debug!(action = ?frame.action_id(), "queued while offline");
        }
    }

    /// Applies an action locally (optimistic UI) and stores it in the outbox.
    pub async fn queue_action(&mut self, command: Command) -> Option<ClientFrame> {
        let id = uuid::Uuid::now_v7().to_string();
        let frame = match command {
            Command::MarkRead(notification_ids) => ClientFrame::MarkRead {
                id,
                notification_ids,
            },
            Command::MarkAllRead(kind) => ClientFrame::MarkAllRead { id, kind },
            Command::Respond {
                proposal_id,
                response,
            } => ClientFrame::ProposalRespond {
                id,
                proposal_id,
                response,
            },
            Command::SetPreferences(prefs) => {
                // Not an action for the gateway: preferences are this device's own.
                self.policy.prefs = *prefs;
                return None;
            }
            Command::NetworkChanged | Command::Shutdown => return None,
        };
        let store = self.store.clone();
        let queued = frame.clone();
        let result = tokio::task::spawn_blocking(move || {
            let mut store = store
                .lock()
                .map_err(|_| anyhow::anyhow!("local store lock poisoned"))?;
            crate::connection::apply_locally(&mut store, &queued)?;
            store.enqueue(&queued)?;
            anyhow::Ok(store.unread_by_tab()?)
        })
        .await;
        match result {
            Ok(Ok(unread)) => {
                self.emit(EngineEvent::Unread(unread)).await;
                Some(frame)
            }
            Ok(Err(err)) => {
                self.emit(EngineEvent::Warning(format!(
                    "the action could not be saved: {err}"
                )))
                .await;
                None
            }
            Err(err) => {
                self.emit(EngineEvent::Warning(format!(
                    "the action could not be saved: {err}"
                )))
                .await;
                None
            }
        }
    }

    /// Sends an event; a closed channel (the app quit) is not an error.
    pub async fn emit(&self, event: EngineEvent) {
        let _ = self.events.send(event).await;
    }
}
