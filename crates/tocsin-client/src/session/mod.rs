//! One WebSocket session with the gateway: connect, `hello` with the stored positions
//! ([`open`]), rebuild streams the gateway could not resume ([`rebuild`]), persist
//! replayed and live notifications, advancing positions only with them ([`frames`],
//! [`persist`]), send the outbox once caught up, keep the connection alive
//! ([`heartbeat`]), renew the access token in band, and say how it ended ([`end`]).
//!
//! [`Session`] is generic over the engine's [`Gateway`] and thus over its socket: the
//! live loop waits for whichever comes first — a message, a ping due, a silent peer,
//! a resume, the token's renewal, a command — and hands it to one small handler.
//!
//! A stream whose history diverged (the gateway sends another notification at a
//! position we hold, e.g. after its data was restored from an older copy) is rewound
//! in the store and the session reconnects after the backoff delay: the next `hello`
//! resumes it from just before the divergence, the history up to there is re-checked
//! (the pending rebuild) and the gateway replays its current timeline after it.

mod end;
mod frames;
mod heartbeat;
mod open;
mod outbox;
mod persist;
mod rebuild;

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tocsin_protocol::StreamName;
use tocsin_protocol::frames::{ClientFrame, ServerFrame};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

pub use end::{SessionEnd, Stop};
use heartbeat::Heartbeat;
use open::send;
use outbox::Outbox;

use crate::engine::{Command, Engine, RENEW_RETRY, TokenFailure, far_future};
use crate::events::EngineEvent;
use crate::gateway::Gateway;
use crate::store::Incoming;

/// Notifications persisted per transaction while catching up.
const REPLAY_BATCH: usize = 500;

/// Per stream: the epoch and the next offset expected.
pub(crate) struct Cursor {
    epoch: String,
    next: u64,
}

/// What the session gathers while the gateway replays what was missed.
#[derive(Default)]
struct Replay {
    /// True until `caught_up`.
    active: bool,
    /// Replayed notifications not persisted yet.
    batch: Vec<Incoming>,
    /// Replayed notifications that were new, for the catch-up summary.
    missed: Vec<Incoming>,
}

/// One session: the engine it runs for, its socket and what it tracks.
pub struct Session<'e, G: Gateway> {
    engine: &'e mut Engine<G>,
    socket: G::Socket,
    cursors: HashMap<StreamName, Cursor>,
    replay: Replay,
    heartbeat: Heartbeat,
    /// When the access token is renewed in band.
    renew_at: Instant,
    /// The full text of the gateway's last `error` frame, for the close that follows.
    last_error: Option<String>,
    /// The firm's name, for the status line.
    tenant: String,
    /// The signed-in user's id: their acknowledgements, reported by the gateway,
    /// replace this device's local ones.
    user_id: String,
    /// Actions to send, paced, until the gateway answers them for good.
    outbox: Outbox,
    /// The actions added after the first v1 that this gateway applies
    /// (`welcome.features`); others wait in the store for one that does.
    features: Vec<String>,
}

/// What woke the live loop.
enum Wake {
    Message(Option<Result<Message, WsError>>),
    PingDue,
    Silent,
    Resumed,
    RenewDue,
    OutboxDue,
    Command(Option<Command>),
}

/// The gateway's heartbeat interval is followed unless ours is shorter (tests); a
/// broken announcement of 0 cannot make the client ping in a loop.
const MIN_HEARTBEAT: Duration = Duration::from_millis(100);

impl<'e, G: Gateway> Session<'e, G> {
    /// Runs one session to its end.
    pub async fn run(engine: &'e mut Engine<G>) -> SessionEnd {
        let opened = match open::open(engine).await {
            Ok(opened) => opened,
            Err(end) => return end,
        };
        let welcome = opened.welcome;
        let announced = Duration::from_millis(welcome.limits.heartbeat_interval_ms);
        let interval = engine
            .config
            .heartbeat_interval
            .min(announced.max(MIN_HEARTBEAT));
        let timeout = engine.config.heartbeat_timeout;
        let renew_at = engine
            .tokens
            .renew_at()
            .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        let mut session = Session {
            engine,
            socket: opened.socket,
            cursors: HashMap::new(),
            replay: Replay {
                active: true,
                ..Replay::default()
            },
            heartbeat: Heartbeat::new(interval, timeout),
            renew_at,
            last_error: None,
            tenant: welcome
                .user
                .tenant_name
                .clone()
                .unwrap_or_else(|| welcome.user.tenant.clone()),
            user_id: welcome.user.id.clone(),
            outbox: Outbox::new(&welcome.limits),
            features: welcome.features.clone(),
        };
        match session
            .sync_streams(&welcome.streams, &opened.positions)
            .await
        {
            Ok(cursors) => session.cursors = cursors,
            Err(end) => return end,
        }
        session.live().await
    }

    /// The live phase: replay until `caught_up`, then live, until the session ends.
    async fn live(&mut self) -> SessionEnd {
        loop {
            let wake = self.next_wake().await;
            if let Err(end) = self.on_wake(wake).await {
                return end;
            }
        }
    }

    /// Waits for whatever comes first.
    async fn next_wake(&mut self) -> Wake {
        let dead_at = self.heartbeat.dead_at();
        let outbox_due = self.outbox.next_due();
        tokio::select! {
            message = self.socket.next() => Wake::Message(message),
            () = self.heartbeat.ping_due() => Wake::PingDue,
            () = sleep_until(dead_at.unwrap_or_else(far_future)), if dead_at.is_some() => Wake::Silent,
            Some(_) = self.engine.jumps.recv() => Wake::Resumed,
            () = sleep_until(self.renew_at) => Wake::RenewDue,
            () = sleep_until(outbox_due.unwrap_or_else(far_future)), if outbox_due.is_some() => Wake::OutboxDue,
            command = self.engine.commands.recv() => Wake::Command(command),
        }
    }

    async fn on_wake(&mut self, wake: Wake) -> Result<(), SessionEnd> {
        match wake {
            Wake::Message(message) => self.on_message(message).await,
            Wake::PingDue => self.on_ping_due().await,
            Wake::Silent => Err(SessionEnd::lost(format!(
                "the gateway did not answer for {} s",
                self.heartbeat.timeout().as_secs()
            ))),
            Wake::Resumed => {
                tracing::info!("wall clock jumped (resume from sleep?): reconnecting now");
                Err(SessionEnd::ReconnectNow)
            }
            Wake::RenewDue => self.on_renew_due().await,
            Wake::OutboxDue => self.send_due().await,
            Wake::Command(command) => self.on_command(command).await,
        }
    }

    /// A message from the gateway (or the end of the socket).
    async fn on_message(
        &mut self,
        message: Option<Result<Message, WsError>>,
    ) -> Result<(), SessionEnd> {
        self.heartbeat.heard();
        match message {
            Some(Ok(Message::Text(text))) => {
                match serde_json::from_str::<ServerFrame>(text.as_str()) {
                    Ok(frame) => self.on_frame(frame).await,
                    // Frames of a newer gateway parse as `Unknown`; this one is broken.
                    Err(err) => {
                        tracing::warn!(error = %err, "ignoring a frame that does not parse");
                        Ok(())
                    }
                }
            }
            Some(Ok(Message::Close(close))) => {
                let (code, reason) = close.map_or((None, String::new()), |c| {
                    (Some(u16::from(c.code)), c.reason.to_string())
                });
                let reason = self.last_error.take().unwrap_or(reason);
                Err(self.closed(code, &reason))
            }
            Some(Ok(_)) => Ok(()),
            Some(Err(err)) => Err(self.closed(None, &format!("connection lost: {err}"))),
            None => Err(self.closed(None, "connection lost")),
        }
    }

    /// Time to ping; the heartbeat starts counting the silence.
    async fn on_ping_due(&mut self) -> Result<(), SessionEnd> {
        self.heartbeat.pinged();
        if self
            .socket
            .send(Message::Ping(Default::default()))
            .await
            .is_err()
        {
            return Err(self.closed(None, "connection lost while pinging"));
        }
        Ok(())
    }

    /// The access token is about to expire: renew it over HTTP and hand the new one
    /// to the open connection. A transient failure (a lost answer, a gateway
    /// restarting) is retried a little later while the token is still good.
    async fn on_renew_due(&mut self) -> Result<(), SessionEnd> {
        match self.engine.refresh_access().await {
            Ok(()) => {}
            Err(TokenFailure::SignedOut(reason)) => {
                return Err(SessionEnd::Stop(Stop::SignedOut(reason)));
            }
            Err(TokenFailure::Transient(reason)) => {
                let retry = Instant::now() + RENEW_RETRY;
                return match self.engine.tokens.expires_at() {
                    Some(expires) if retry < expires => {
                        tracing::info!(reason, "renewing the access token failed; retrying");
                        self.renew_at = retry;
                        Ok(())
                    }
                    _ => Err(SessionEnd::lost(reason)),
                };
            }
        }
        let (Some(token), Some(renew_at)) =
            (self.engine.tokens.access(), self.engine.tokens.renew_at())
        else {
            return Err(SessionEnd::RefreshThenReconnect);
        };
        let frame = ClientFrame::Refresh {
            id: uuid::Uuid::now_v7().to_string(),
            access_token: token.to_owned(),
        };
        self.renew_at = renew_at;
        send(&mut self.socket, &frame).await
    }

    /// A command from the app: actions are queued (and sent when live).
    async fn on_command(&mut self, command: Option<Command>) -> Result<(), SessionEnd> {
        match command {
            None | Some(Command::Shutdown) => {
                let _ = self.socket.close().await;
                Err(SessionEnd::Shutdown)
            }
            Some(Command::NetworkChanged) => Err(SessionEnd::ReconnectNow),
            Some(command) => {
                let frames = self.engine.queue_action(command).await;
                // While replaying, the actions wait in the store for `caught_up`.
                if self.replay.active || frames.is_empty() {
                    return Ok(());
                }
                for frame in frames {
                    self.push_if_supported(frame);
                }
                self.send_due().await
            }
        }
    }

    /// Caught up: every action queued in the store goes out, in order, paced.
    async fn flush_outbox(&mut self) -> Result<(), SessionEnd> {
        let pending = self
            .engine
            .with_store(|store| Ok(store.pending()?))
            .await
            .map_err(SessionEnd::local_failure)?;
        for frame in pending {
            self.push_if_supported(frame);
        }
        self.send_due().await
    }

    /// Hands an action to the outbox, unless this gateway does not apply it (an older
    /// one closes on an action it does not know): then it stays in the store, applied
    /// locally, and goes out from the first session with a gateway that does.
    fn push_if_supported(&mut self, frame: ClientFrame) {
        match outbox::feature_of(&frame) {
            Some(feature) if !self.features.iter().any(|f| f == feature) => {
                tracing::warn!(
                    feature,
                    "the gateway does not apply this action yet (it is older than this app); it stays queued until the gateway is upgraded"
                );
            }
            _ => self.outbox.push(frame),
        }
    }

    /// Sends what the pace allows now; the rest waits for [`Wake::OutboxDue`].
    async fn send_due(&mut self) -> Result<(), SessionEnd> {
        while let Some(frame) = self.outbox.next_to_send() {
            send(&mut self.socket, &frame).await?;
        }
        Ok(())
    }

    /// Maps a close to what the engine does next.
    fn closed(&mut self, code: Option<u16>, reason: &str) -> SessionEnd {
        let tokens = &mut self.engine.tokens;
        SessionEnd::closed(code, reason, || tokens.first_invalid_token())
    }

    /// Emits what the badge, the tray and the status line show.
    async fn emit_counts(&mut self) {
        match self.engine.with_store(|store| Ok(store.counts()?)).await {
            Ok(counts) => self.engine.emit(EngineEvent::Counts(counts)).await,
            Err(err) => tracing::warn!(%err, "cannot count unread notifications"),
        }
    }
}

#[cfg(test)]
mod real_socket_tests;
