//! One WebSocket session with the gateway: connect, `hello` with the stored positions,
//! rebuild streams the gateway could not resume, persist replayed and live
//! notifications (advancing positions only with them), send the outbox once caught up,
//! keep the connection alive, and say how it ended.
//!
//! A stream whose history diverged (the gateway sends another notification at a
//! position we hold, e.g. after its data was restored from an older copy) is rewound
//! in the store and the session reconnects after the backoff delay: the next `hello` resumes it from
//! just before the divergence, the history up to there is re-checked (the pending
//! rebuild) and the gateway replays its current timeline after it
//! (`Engine::diverged`).

use std::collections::HashMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tocsin_protocol::frames::{ClientFrame, ServerFrame, Welcome};
use tocsin_protocol::notification::ProposalStatus;
use tocsin_protocol::{SUBPROTOCOL, StreamName};
use tokio::time::{Instant, sleep_until};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::backoff::{Reconnect, StopReason, decide};
use crate::engine::{Command, Engine};
use crate::events::{ConnectionState, EngineEvent};
use crate::store::{Divergence, Incoming, LocalStore, StoreError};

/// Notifications persisted per transaction while catching up.
const REPLAY_BATCH: usize = 500;
/// How long connecting (TCP + TLS + upgrade) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// How long the gateway may take to answer `hello`.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(15);
/// History page size when rebuilding a stream.
const HISTORY_PAGE: u32 = 500;
/// The most history items fetched per stream when rebuilding it: older ones stay on
/// the server (history API), the inbox shows the recent past.
const MAX_BACKFILL: u64 = 2000;

/// How a session ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// Reconnect after the backoff delay (at least `hint`).
    Reconnect {
        /// A minimum delay asked by the server.
        hint: Option<Duration>,
        /// Why, for the user.
        reason: String,
    },
    /// Reconnect at once: the machine woke up or changed network, so the old link is
    /// dead and waiting would only delay what the user must see. Never used for
    /// anything the gateway did (a hole, a divergence): those wait the backoff delay.
    ReconnectNow,
    /// Get a new access token, then reconnect.
    RefreshThenReconnect,
    /// Do not reconnect.
    Stop(Stop),
    /// The app asked the engine to stop.
    Shutdown,
}

/// Why the engine stops reconnecting.
#[derive(Debug)]
pub enum Stop {
    /// Credentials refused: sign in again.
    SignedOut(String),
    /// Anything else that retrying will not fix.
    Other(String),
}

type Socket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

/// Per stream: the epoch and the next offset expected.
struct Cursor {
    epoch: String,
    next: u64,
}

impl Engine {
    /// Runs one session.
    pub async fn session(&mut self) -> SessionEnd {
        let mut socket = match self.connect().await {
            Ok(socket) => socket,
            Err(end) => return end,
        };
        let positions = match self.with_store(|store| Ok(store.positions()?)).await {
            Ok(positions) => positions,
            Err(err) => {
                return SessionEnd::Stop(Stop::Other(format!("the local database failed: {err}")));
            }
        };
        let hello = ClientFrame::Hello {
            positions: positions.clone(),
            client: Some(self.config.client_name.clone()),
        };
        if let Err(end) = send(&mut socket, &hello).await {
            return end;
        }
        let welcome = match read_welcome(&mut socket).await {
            Ok(welcome) => welcome,
            Err(refused) => return self.closed(refused.code, &refused.reason),
        };
        let unfinished = match self
            .with_store(|store| Ok(store.pending_backfills()?))
            .await
        {
            Ok(unfinished) => unfinished,
            Err(err) => return local_failure(err),
        };
        let mut cursors = HashMap::new();
        for status in &welcome.streams {
            let usable = status.recovered
                && positions
                    .get(&status.stream)
                    .is_some_and(|p| p.epoch == status.epoch);
            let next = if usable {
                let offset = positions.get(&status.stream).map_or(0, |p| p.offset);
                // A rebuild cut short (crash, lost connection) is finished first.
                if unfinished.contains_key(&status.stream)
                    && let Err(end) = self
                        .backfill(&status.stream, &status.epoch, status.first, offset)
                        .await
                {
                    return end;
                }
                offset + 1
            } else {
                if let Err(end) = self
                    .rebuild(&status.stream, &status.epoch, status.first, status.head)
                    .await
                {
                    return end;
                }
                status.head + 1
            };
            let epoch = status.epoch.clone();
            cursors.insert(status.stream.clone(), Cursor { epoch, next });
        }
        self.live(socket, cursors, welcome).await
    }

    /// Connects with the access token; an HTTP 401 at the upgrade means refresh.
    async fn connect(&mut self) -> Result<Socket, SessionEnd> {
        let Some((token, _)) = self.access.clone() else {
            return Err(SessionEnd::RefreshThenReconnect);
        };
        let mut request = match self
            .config
            .server
            .websocket_url()
            .as_str()
            .into_client_request()
        {
            Ok(request) => request,
            Err(err) => {
                return Err(SessionEnd::Stop(Stop::Other(format!(
                    "bad gateway URL: {err}"
                ))));
            }
        };
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {token}")) {
            headers.insert("Authorization", value);
        }
        let config = WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .max_message_size(Some(1024 * 1024))
            .max_frame_size(Some(1024 * 1024));
        let connecting = tokio_tungstenite::connect_async_with_config(request, Some(config), true);
        match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok((socket, _))) => Ok(socket),
            Ok(Err(WsError::Http(response))) if response.status().as_u16() == 401 => {
                Err(SessionEnd::RefreshThenReconnect)
            }
            Ok(Err(WsError::Http(response))) if response.status().is_client_error() => {
                let body = response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default()
                    .into_owned();
                Err(SessionEnd::Stop(Stop::Other(format!(
                    "the gateway refused the connection ({}): {body}",
                    response.status()
                ))))
            }
            Ok(Err(err)) => Err(SessionEnd::Reconnect {
                hint: None,
                reason: format!("cannot connect: {err}"),
            }),
            Err(_) => Err(SessionEnd::Reconnect {
                hint: None,
                reason: "connecting timed out".into(),
            }),
        }
    }

    /// Rebuilds a stream the gateway could not resume: reset its position to the head
    /// (live delivery continues after it), then fetch the recent past.
    async fn rebuild(
        &mut self,
        stream: &StreamName,
        epoch: &str,
        first: u64,
        head: u64,
    ) -> Result<(), SessionEnd> {
        let (stream_owned, epoch_owned) = (stream.clone(), epoch.to_owned());
        self.with_store(move |store| Ok(store.reset_stream(&stream_owned, &epoch_owned, head)?))
            .await
            .map_err(local_failure)?;
        self.backfill(stream, epoch, first, head).await
    }

    /// Fetches history up to `up_to` (at most [`MAX_BACKFILL`] items back) into the
    /// inbox, then clears the stream's "needs a rebuild" mark. Persisting older
    /// offsets never moves the stream's position backwards.
    async fn backfill(
        &mut self,
        stream: &StreamName,
        epoch: &str,
        first: u64,
        up_to: u64,
    ) -> Result<(), SessionEnd> {
        let Some((token, _)) = self.access.clone() else {
            return Err(SessionEnd::RefreshThenReconnect);
        };
        let mut after = first
            .saturating_sub(1)
            .max(up_to.saturating_sub(MAX_BACKFILL));
        while after < up_to {
            let page = match self.api.history(&token, stream, after, HISTORY_PAGE).await {
                Ok(page) => page,
                Err(err) => {
                    return Err(SessionEnd::Reconnect {
                        hint: None,
                        reason: format!("history failed: {err}"),
                    });
                }
            };
            if page.epoch != epoch {
                // The stream changed epoch meanwhile: the next hello sorts it out.
                return Err(SessionEnd::Reconnect {
                    hint: None,
                    reason: format!("{stream} changed epoch while it was rebuilt"),
                });
            }
            let items: Vec<Incoming> = page
                .notifications
                .iter()
                .filter(|item| item.offset <= up_to)
                .map(|item| Incoming {
                    stream: stream.clone(),
                    epoch: epoch.to_owned(),
                    offset: item.offset,
                    notification: item.notification.clone(),
                    replay: true,
                    read: item.read,
                })
                .collect();
            self.persist(items).await?;
            match page.next_after {
                Some(next) if next < up_to => after = next,
                _ => break,
            }
        }
        let done = stream.clone();
        self.with_store(move |store| Ok(store.backfill_done(&done)?))
            .await
            .map_err(local_failure)?;
        self.emit(EngineEvent::Warning(format!(
            "{stream} was rebuilt from the server's history"
        )))
        .await;
        Ok(())
    }

    /// The live phase: replay until `caught_up`, then live, until the session ends.
    async fn live(
        &mut self,
        mut socket: Socket,
        mut cursors: HashMap<StreamName, Cursor>,
        welcome: Welcome,
    ) -> SessionEnd {
        let interval = self.config.heartbeat_interval;
        let timeout = self.config.heartbeat_timeout;
        let mut heartbeat = tokio::time::interval_at(Instant::now() + interval, interval);
        let mut silent_since: Option<Instant> = None;
        let mut replaying = true;
        let mut replay_batch: Vec<Incoming> = Vec::new();
        let mut missed = Vec::new();
        let mut last_error = String::new();
        let refresh_at = self
            .access
            .as_ref()
            .map(|(_, expires)| *expires - Duration::from_secs(60));
        let mut refresh_at =
            refresh_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
        loop {
            let deadline = silent_since.map(|at| at + timeout);
            tokio::select! {
                message = socket.next() => {
                    silent_since = None;
                    let frame = match message {
                        Some(Ok(Message::Text(text))) => match serde_json::from_str::<ServerFrame>(text.as_str()) {
                            Ok(frame) => frame,
                            // A frame type from a newer gateway: ignore it (forward compatible).
                            Err(err) => {
                                tracing::debug!(error = %err, "ignoring an unknown frame");
                                continue;
                            }
                        },
                        Some(Ok(Message::Close(close))) => {
                            let (code, reason) = close.map_or((None, String::new()), |c| (Some(u16::from(c.code)), c.reason.to_string()));
                            let reason = if last_error.is_empty() { reason } else { last_error.clone() };
                            return self.closed(code, &reason);
                        }
                        Some(Ok(_)) => continue,
                        Some(Err(err)) => return self.closed(None, &format!("connection lost: {err}")),
                        None => return self.closed(None, "connection lost"),
                    };
                    match frame {
                        ServerFrame::Notification { stream, epoch, offset, replay, notification } => {
                            let Some(cursor) = cursors.get_mut(&stream) else { continue };
                            if epoch != cursor.epoch || offset > cursor.next {
                                // The gateway never skips; a hole means something is off:
                                // resume from what is stored, after the backoff delay
                                // (a gateway that keeps doing it must not be hammered).
                                return SessionEnd::Reconnect { hint: None, reason: format!("{stream}: expected offset {} of epoch {}, got {offset} of {epoch}", cursor.next, cursor.epoch) };
                            }
                            if offset < cursor.next {
                                continue;
                            }
                            cursor.next = offset + 1;
                            let incoming = Incoming { stream, epoch, offset, notification, replay, read: false };
                            if replaying {
                                replay_batch.push(incoming);
                                if replay_batch.len() >= REPLAY_BATCH {
                                    match self.persist(std::mem::take(&mut replay_batch)).await {
                                        Ok(fresh) => missed.extend(fresh),
                                        Err(end) => return end,
                                    }
                                }
                            } else {
                                match self.persist(vec![incoming]).await {
                                    Ok(fresh) => {
                                        for item in fresh {
                                            let toast = self.policy.decide_live(&item.notification, &chrono::Local::now());
                                            self.emit(EngineEvent::Notification { stream: item.stream, notification: Box::new(item.notification), replay: false, toast: Some(toast) }).await;
                                        }
                                        self.emit_unread().await;
                                    }
                                    Err(end) => return end,
                                }
                            }
                        }
                        ServerFrame::CaughtUp { .. } => {
                            if !replay_batch.is_empty() {
                                match self.persist(std::mem::take(&mut replay_batch)).await {
                                    Ok(fresh) => missed.extend(fresh),
                                    Err(end) => return end,
                                }
                            }
                            replaying = false;
                            let notifications: Vec<_> = missed.iter().map(|item: &Incoming| item.notification.clone()).collect();
                            let toasts = self.policy.decide_catch_up(&notifications, &chrono::Local::now());
                            for item in std::mem::take(&mut missed) {
                                self.emit(EngineEvent::Notification { stream: item.stream, notification: Box::new(item.notification), replay: true, toast: None }).await;
                            }
                            self.emit(EngineEvent::CatchUp { missed: notifications.len(), toasts }).await;
                            self.emit_unread().await;
                            self.backoff.connected(std::time::Instant::now());
                            self.invalid_token_strikes = 0;
                            self.emit(EngineEvent::State(ConnectionState::Connected { since: chrono::Utc::now(), tenant: welcome.user.tenant_name.clone().unwrap_or_else(|| welcome.user.tenant.clone()) })).await;
                            if let Err(end) = self.flush_outbox(&mut socket).await {
                                return end;
                            }
                        }
                        ServerFrame::Read { notification_ids } => {
                            let _ = self.with_store(move |store| Ok(store.apply_read(&notification_ids)?)).await;
                            self.emit_unread().await;
                        }
                        ServerFrame::ReadAll { kind, before } => {
                            let _ = self.with_store(move |store| Ok(store.apply_read_all(kind, before)?)).await;
                            self.emit_unread().await;
                        }
                        ServerFrame::Result { id, ok, error, .. } => {
                            let done = id.clone();
                            let action = self.with_store(move |store| {
                                let answered = store.pending()?.into_iter().find(|frame| frame.action_id() == Some(done.as_str()));
                                // A refused answer to a proposal (answered elsewhere) undoes
                                // the optimistic local status.
                                if !ok && let Some(ClientFrame::ProposalRespond { proposal_id, .. }) = &answered {
                                    store.recompute_proposal_status(proposal_id)?;
                                }
                                store.complete(&done)?;
                                Ok(answered)
                            }).await.ok().flatten();
                            if !ok {
                                tracing::warn!(action = %id, error = ?error, "action refused by the gateway");
                            }
                            self.emit(EngineEvent::ActionResult { id, action: action.map(Box::new), error: if ok { None } else { error } }).await;
                        }
                        ServerFrame::Error { error } => last_error = error.message,
                        ServerFrame::Welcome(_)
                        | ServerFrame::Ephemeral { .. }
                        | ServerFrame::Pong {}
                        | ServerFrame::Subscribed { .. }
                        | ServerFrame::Unsubscribed { .. }
                        | ServerFrame::Unknown => {}
                    }
                }
                _ = heartbeat.tick() => {
                    if silent_since.is_none() {
                        silent_since = Some(Instant::now());
                    }
                    if socket.send(Message::Ping(Default::default())).await.is_err() {
                        return self.closed(None, "connection lost while pinging");
                    }
                }
                () = sleep_until(deadline.unwrap_or_else(far_future)), if deadline.is_some() => {
                    return SessionEnd::Reconnect { hint: None, reason: format!("the gateway did not answer for {} s", timeout.as_secs()) };
                }
                Some(_) = self.jumps.recv() => {
                    tracing::info!("wall clock jumped (resume from sleep?): reconnecting now");
                    return SessionEnd::ReconnectNow;
                }
                () = sleep_until(refresh_at) => {
                    match self.refresh_in_band(&mut socket).await {
                        Ok(next) => refresh_at = next,
                        Err(end) => return end,
                    }
                }
                command = self.commands.recv() => match command {
                    None | Some(Command::Shutdown) => {
                        let _ = socket.close(None).await;
                        return SessionEnd::Shutdown;
                    }
                    Some(Command::NetworkChanged) => return SessionEnd::ReconnectNow,
                    Some(command) => {
                        if let Some(frame) = self.queue_action(command).await
                            && !replaying
                            && let Err(end) = send(&mut socket, &frame).await
                        {
                            return end;
                        }
                    }
                },
            }
        }
    }

    /// Persists notifications (positions advance in the same transaction) and returns
    /// those that were new. A divergence ends the session through `Engine::diverged`.
    async fn persist(&mut self, batch: Vec<Incoming>) -> Result<Vec<Incoming>, SessionEnd> {
        let outcome = self
            .with_store(move |store| {
                // The store also keeps proposal statuses in step with these.
                match store.persist(&batch) {
                    Ok(fresh) => Ok(Ok(batch
                        .into_iter()
                        .zip(fresh)
                        .filter(|(_, new)| *new)
                        .map(|(item, _)| item)
                        .collect())),
                    Err(StoreError::Diverged(divergence)) => Ok(Err(divergence)),
                    Err(err) => Err(err.into()),
                }
            })
            .await
            .map_err(local_failure)?;
        match outcome {
            Ok(fresh) => Ok(fresh),
            Err(divergence) => Err(self.diverged(*divergence).await),
        }
    }

    /// The gateway's history of a stream is not the one stored (nothing of the batch
    /// was): keep what the user received from there on, rewind the stream to just
    /// before it with a rebuild pending, say so, and reconnect now so that `hello`
    /// re-syncs it. Each rewind moves at least the conflicting row off the stream's
    /// timeline, so this cannot loop; if none moved (the gateway sent two ids at one
    /// offset in one batch), reconnect after the backoff delay instead.
    async fn diverged(&mut self, divergence: Divergence) -> SessionEnd {
        let rewind = divergence.clone();
        let moved = match self
            .with_store(move |store| Ok(store.rewind_diverged(&rewind)?))
            .await
        {
            Ok(moved) => moved,
            Err(err) => return local_failure(err),
        };
        let Divergence {
            stream,
            epoch,
            offset,
            held_id,
            received_id,
        } = &divergence;
        tracing::warn!(
            %stream, epoch, offset, held_id, received_id, kept = moved,
            "stream history diverged: kept what was received from this offset on, rewound the stream and re-syncing it from the gateway"
        );
        self.emit(EngineEvent::Warning(format!(
            "{stream} diverged: the server's history changed at offset {offset} (restored from an older copy?); the {moved} notification(s) received from there on are kept, and {stream} is re-synced from the server"
        )))
        .await;
        if moved == 0 {
            return SessionEnd::Reconnect {
                hint: None,
                reason: format!("{divergence}; the gateway sent two notifications at one offset"),
            };
        }
        SessionEnd::Reconnect {
            hint: None,
            reason: format!("{stream} diverged; re-syncing it"),
        }
    }

    /// Sends every queued action, in order.
    async fn flush_outbox(&mut self, socket: &mut Socket) -> Result<(), SessionEnd> {
        let pending = self
            .with_store(|store| Ok(store.pending()?))
            .await
            .map_err(|err| {
                SessionEnd::Stop(Stop::Other(format!("the local database failed: {err}")))
            })?;
        for frame in pending {
            send(socket, &frame).await?;
        }
        Ok(())
    }

    /// Gets a new access token over HTTP and hands it to the open connection.
    async fn refresh_in_band(&mut self, socket: &mut Socket) -> Result<Instant, SessionEnd> {
        if let Err(failure) = self.refresh_access().await {
            return Err(match failure {
                crate::engine::TokenFailure::SignedOut(reason) => {
                    SessionEnd::Stop(Stop::SignedOut(reason))
                }
                crate::engine::TokenFailure::Transient(reason) => {
                    SessionEnd::Reconnect { hint: None, reason }
                }
            });
        }
        let Some((token, expires)) = self.access.clone() else {
            return Err(SessionEnd::RefreshThenReconnect);
        };
        let frame = ClientFrame::Refresh {
            id: uuid::Uuid::now_v7().to_string(),
            access_token: token,
        };
        send(socket, &frame).await?;
        Ok(expires - Duration::from_secs(60))
    }

    /// Maps a close to what the engine does next.
    fn closed(&mut self, code: Option<u16>, reason: &str) -> SessionEnd {
        match decide(code, reason) {
            Reconnect::After(hint) => SessionEnd::Reconnect {
                hint,
                reason: describe(code, reason),
            },
            Reconnect::RefreshThenReconnect => SessionEnd::RefreshThenReconnect,
            Reconnect::Stop(StopReason::InvalidToken) => self.invalid_token(describe(code, reason)),
            Reconnect::Stop(_) => SessionEnd::Stop(Stop::Other(describe(code, reason))),
        }
    }

    /// 4100: try exactly one refresh (the gateway's key may have changed); a second
    /// 4100 in a row, or a refused refresh, means the user must sign in again.
    fn invalid_token(&mut self, reason: String) -> SessionEnd {
        self.invalid_token_strikes += 1;
        if self.invalid_token_strikes > 1 {
            return SessionEnd::Stop(Stop::SignedOut(reason));
        }
        SessionEnd::RefreshThenReconnect
    }

    /// Emits the current unread counts per tab.
    async fn emit_unread(&mut self) {
        if let Ok(unread) = self.with_store(|store| Ok(store.unread_by_tab()?)).await {
            self.emit(EngineEvent::Unread(unread)).await;
        }
    }

    /// Runs `work` on the local store off the async workers.
    pub async fn with_store<R: Send + 'static>(
        &self,
        work: impl FnOnce(&mut LocalStore) -> anyhow::Result<R> + Send + 'static,
    ) -> anyhow::Result<R> {
        let store = self.store.clone();
        tokio::task::spawn_blocking(move || {
            let mut store = store
                .lock()
                .map_err(|_| anyhow::anyhow!("local store lock poisoned"))?;
            work(&mut store)
        })
        .await?
    }
}

/// Applies an action to the local store before the gateway confirms it (optimistic).
pub fn apply_locally(store: &mut LocalStore, frame: &ClientFrame) -> anyhow::Result<()> {
    match frame {
        ClientFrame::MarkRead {
            notification_ids, ..
        } => {
            store.apply_read(notification_ids)?;
        }
        ClientFrame::MarkAllRead { kind, .. } => {
            store.apply_read_all(*kind, chrono::Utc::now())?;
        }
        ClientFrame::ProposalRespond {
            proposal_id,
            response,
            ..
        } => {
            let status = match response {
                tocsin_protocol::frames::ProposalResponse::Accept => ProposalStatus::Accepted,
                tocsin_protocol::frames::ProposalResponse::Reject => ProposalStatus::Rejected,
            };
            store.set_proposal_status(proposal_id, status)?;
        }
        _ => {}
    }
    Ok(())
}

async fn send(socket: &mut Socket, frame: &ClientFrame) -> Result<(), SessionEnd> {
    let text = serde_json::to_string(frame)
        .map_err(|err| SessionEnd::Stop(Stop::Other(format!("cannot encode a frame: {err}"))))?;
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|err| SessionEnd::Reconnect {
            hint: None,
            reason: format!("connection lost: {err}"),
        })
}

/// How the gateway ended a session before `welcome`.
struct Refused {
    code: Option<u16>,
    reason: String,
}

async fn read_welcome(socket: &mut Socket) -> Result<Welcome, Refused> {
    let deadline = Instant::now() + WELCOME_TIMEOUT;
    loop {
        let message = match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(err))) => {
                return Err(Refused {
                    code: None,
                    reason: format!("connection lost: {err}"),
                });
            }
            Ok(None) => {
                return Err(Refused {
                    code: None,
                    reason: "connection lost before welcome".into(),
                });
            }
            Err(_) => {
                return Err(Refused {
                    code: None,
                    reason: "no welcome from the gateway".into(),
                });
            }
        };
        match message {
            Message::Text(text) => match serde_json::from_str::<ServerFrame>(text.as_str()) {
                Ok(ServerFrame::Welcome(welcome)) => return Ok(welcome),
                Ok(ServerFrame::Error { error }) => {
                    // The close follows; read it to decide.
                    let close = socket.next().await;
                    let code = match close {
                        Some(Ok(Message::Close(Some(frame)))) => Some(u16::from(frame.code)),
                        _ => None,
                    };
                    return Err(Refused {
                        code,
                        reason: error.message,
                    });
                }
                _ => continue,
            },
            Message::Close(frame) => {
                let code = frame.as_ref().map(|f| u16::from(f.code));
                let reason = frame.map(|f| f.reason.to_string()).unwrap_or_default();
                return Err(Refused { code, reason });
            }
            _ => continue,
        }
    }
}

fn local_failure(err: anyhow::Error) -> SessionEnd {
    SessionEnd::Stop(Stop::Other(format!("the local database failed: {err}")))
}

fn describe(code: Option<u16>, reason: &str) -> String {
    match code {
        Some(code) if reason.is_empty() => format!("closed by the gateway ({code})"),
        Some(code) => format!("closed by the gateway ({code}): {reason}"),
        None => reason.to_owned(),
    }
}

fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(86_400 * 365)
}

#[cfg(test)]
mod tests;
