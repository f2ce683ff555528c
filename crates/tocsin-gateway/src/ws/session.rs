//! One WebSocket session, from authentication to close, in a single task.
//!
//! Phases: authenticate (header at the upgrade, or a first `auth` frame before the
//! deadline) → register with the hub (connection cap) → `hello` → subscribe, then
//! `welcome`, replay, `caught_up` → the live loop. The live loop selects over the
//! client's frames, the connection's queue, the heartbeat and the token's expiry.

use std::collections::HashMap;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use futures_util::StreamExt;
use futures_util::stream::SplitStream;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use tocsin_protocol::frames::{ClientFrame, client_features};
use tocsin_protocol::{CloseCode, StreamName};
use tokio::time::{Instant, sleep_until};

use super::delivery::Cursor;
use super::socket::{SocketWriter, Stop};
use crate::access::resolve_user;
use crate::auth::{Identity, TokenError};
use crate::error::AppError;
use crate::hub::{ConnHandle, Outbound, Receiver};
use crate::state::AppState;
use crate::store::User;

/// The most queued frames written before one flush.
const MAX_BURST: usize = 256;

/// How a session ends.
pub enum End {
    /// Close with this code and explanation.
    Close(CloseCode, String),
    /// The peer is gone; nothing more to send.
    Gone,
}

impl End {
    /// A protocol violation.
    pub fn violation(message: impl Into<String>) -> End {
        End::Close(CloseCode::ProtocolViolation, message.into())
    }
}

/// What one read from the client gave.
enum Incoming {
    Frame(ClientFrame),
    /// An action of a type this gateway does not know (a newer client's): answered
    /// `unsupported`, the connection stays.
    UnknownAction {
        id: String,
        kind: String,
    },
    Alive,
    End(End),
}

/// A live session's state.
pub struct Session {
    /// Shared gateway state.
    pub state: AppState,
    /// The signed-in user.
    pub user: User,
    /// The hub's side of this connection.
    pub handle: Arc<ConnHandle>,
    /// The sending half of the socket.
    pub writer: SocketWriter,
    /// Per subscribed stream: the next offset to send.
    pub cursors: HashMap<StreamName, Cursor>,
    /// When the access token expires.
    pub token_expiry: Instant,
    /// Client actions allowed.
    pub limiter: DefaultDirectRateLimiter,
    /// Consecutive rate-limited actions.
    pub strikes: u32,
    /// Cancelled when the hub kills this connection or the gateway shuts down.
    pub kill: tokio_util::sync::CancellationToken,
    /// The client listed the `retract` feature in `hello`: a retracted notification's
    /// slot is a `retracted` frame, not the content-free notice.
    pub retract_aware: bool,
}

/// A session past `caught_up`, ready for the live loop.
struct Opened {
    session: Session,
    reader: SplitStream<WebSocket>,
    queue: Receiver,
    /// Unregisters from the hub when the session ends, however it ends.
    unregister: Unregister,
}

/// Runs a session to its end.
///
/// An idle connection is, in memory, mostly this task's future, so its long-lived part
/// is kept small: the opening phase (authentication, hello, replay) runs in a boxed
/// future of its own that is freed once the connection is live, and the live loop
/// boxes its rare branches. An `async fn` would also keep its arguments (the
/// WebSocket, the identity) in its state for the connection's whole life.
pub fn run(
    state: AppState,
    socket: WebSocket,
    signed_in: Option<(Identity, User)>,
) -> impl Future<Output = ()> + Send {
    let opening = Box::pin(open(state, socket, signed_in));
    async move {
        let Some(opened) = opening.await else {
            return;
        };
        let Opened {
            mut session,
            mut reader,
            queue,
            unregister,
        } = opened;
        let end = session.live(&mut reader, queue).await;
        finish(session.writer, end, Some(&session.handle), &mut reader).await;
        drop(unregister);
    }
}

/// Authenticates, registers, reads `hello`, sends `welcome`, the replay and
/// `caught_up`. `None` when the session already ended (and was closed).
async fn open(
    state: AppState,
    socket: WebSocket,
    signed_in: Option<(Identity, User)>,
) -> Option<Opened> {
    let limits = state.config.websocket.clone();
    let kill = state.shutdown.child_token();
    let write_timeout =
        Duration::from_millis(limits.heartbeat_interval_ms + limits.heartbeat_timeout_ms);
    let (sink, mut reader) = socket.split();
    let writer = SocketWriter::new(sink, kill.clone(), write_timeout);
    let deadline = Instant::now() + Duration::from_millis(limits.auth_timeout_ms);

    let (identity, user) = match signed_in {
        Some(signed_in) => signed_in,
        None => match first_frame_auth(&state, &mut reader, deadline, &kill).await {
            Ok(signed_in) => signed_in,
            Err(end) => {
                finish(writer, end, None, &mut reader).await;
                return None;
            }
        },
    };
    let registered = state.hub.register(
        &user.id,
        identity.session_id.as_deref(),
        limits.max_connections_per_user,
        limits.queue_capacity,
        kill.clone(),
    );
    let Ok((handle, queue)) = registered else {
        let message = format!(
            "you already have {} open connections; close one (or raise websocket.max_connections_per_user)",
            limits.max_connections_per_user
        );
        let end = End::Close(CloseCode::TooManyConnections, message);
        finish(writer, end, None, &mut reader).await;
        return None;
    };
    let unregister = Unregister {
        hub: state.hub.clone(),
        handle: handle.clone(),
        _open: crate::metrics::OpenConnection::new(&user.tenant),
    };
    // DEBUG, not INFO: one line per connect was 170k lines in one benchmark session;
    // `tocsin_connects_total` and `tocsin_connections_open` count them.
    tracing::debug!(conn = handle.id, user = %user.id, tenant = %user.tenant, "WebSocket connected");

    let hello = match next_handshake_frame(&mut reader, deadline, &kill).await {
        Incoming::Frame(ClientFrame::Hello {
            positions,
            features,
            ..
        }) => (positions, features),
        Incoming::Frame(_) | Incoming::UnknownAction { .. } | Incoming::Alive => {
            let end = End::violation("the first frame after auth must be hello");
            finish(writer, end, Some(&handle), &mut reader).await;
            return None;
        }
        Incoming::End(end) => {
            finish(writer, end, Some(&handle), &mut reader).await;
            return None;
        }
    };
    let per_second = NonZeroU32::new(limits.actions_per_second).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(limits.actions_burst).unwrap_or(NonZeroU32::MIN);
    // A connection has no use for the password hash; don't keep ~100 bytes of it (and
    // a copy of a secret) in memory for the connection's life.
    let mut user = user;
    user.password_hash = None;
    let mut session = Session {
        token_expiry: instant_of(identity.expires_at),
        state,
        user,
        handle: handle.clone(),
        writer,
        cursors: HashMap::new(),
        limiter: RateLimiter::direct(Quota::per_second(per_second).allow_burst(burst)),
        strikes: 0,
        kill,
        retract_aware: hello.1.iter().any(|f| f == client_features::RETRACT),
    };
    if let Err(end) = session.start(hello.0).await {
        finish(session.writer, end, Some(&handle), &mut reader).await;
        return None;
    }
    Some(Opened {
        session,
        reader,
        queue,
        unregister,
    })
}

/// Closes the socket as `end` says; a killed connection closes with its kill reason.
async fn finish(
    writer: SocketWriter,
    end: End,
    handle: Option<&Arc<ConnHandle>>,
    reader: &mut SplitStream<WebSocket>,
) {
    match &end {
        End::Close(code, _) => crate::metrics::disconnected(&code.code().to_string()),
        End::Gone => crate::metrics::disconnected("gone"),
    }
    match end {
        // Boxed: closing happens once; its future would otherwise be part of the live
        // task's state for the connection's whole life.
        End::Close(code, message) => {
            Box::pin(close_and_linger(writer, code, message, reader)).await
        }
        End::Gone => {
            if let Some(handle) = handle {
                // Counted in `tocsin_disconnects_total{code="gone"}`.
                tracing::debug!(conn = handle.id, "WebSocket peer gone");
            }
        }
    }
}

/// How long a closed connection keeps reading for the client's close reply.
const CLOSE_LINGER: Duration = Duration::from_secs(2);

/// Sends the close frame, then reads and drops what the client still sends until its
/// close reply (or [`CLOSE_LINGER`]). Dropping a TCP socket with unread bytes in its
/// receive buffer makes the kernel answer with a reset, and the client's kernel then
/// discards our close frame before the client reads it: under a frame flood, clients
/// saw 1006 instead of 4003 and its delay.
async fn close_and_linger(
    writer: SocketWriter,
    code: CloseCode,
    message: String,
    reader: &mut SplitStream<WebSocket>,
) {
    writer.close(code, &message).await;
    let drain = async { while let Some(Ok(_)) = reader.next().await {} };
    let _ = tokio::time::timeout(CLOSE_LINGER, drain).await;
}

/// Unregisters from the hub however the session ends (and the connection stops
/// counting as open).
struct Unregister {
    hub: Arc<crate::hub::Hub>,
    handle: Arc<ConnHandle>,
    // Held for its drop: the open-connections gauge goes down with the session.
    _open: crate::metrics::OpenConnection,
}

impl Drop for Unregister {
    fn drop(&mut self) {
        self.hub.unregister(&self.handle);
    }
}

/// Converts a wall-clock time to a tokio instant.
pub fn instant_of(at: chrono::DateTime<chrono::Utc>) -> Instant {
    let left = (at - chrono::Utc::now()).to_std().unwrap_or(Duration::ZERO);
    Instant::now() + left
}

/// Waits for `{"type":"auth"}` before the deadline and verifies it.
async fn first_frame_auth(
    state: &AppState,
    reader: &mut SplitStream<WebSocket>,
    deadline: Instant,
    kill: &tokio_util::sync::CancellationToken,
) -> Result<(Identity, User), End> {
    let token = match next_handshake_frame(reader, deadline, kill).await {
        Incoming::Frame(ClientFrame::Auth { token }) => token,
        Incoming::Frame(_) | Incoming::UnknownAction { .. } | Incoming::Alive => {
            return Err(End::violation(
                "authenticate first: send `Authorization: Bearer` at the upgrade or an auth frame",
            ));
        }
        Incoming::End(end) => return Err(end),
    };
    let identity = state.auth.verify(&token).await.map_err(token_end)?;
    let user = resolve_user(state.store.as_ref(), &identity)
        .await
        .map_err(app_end)?;
    Ok((identity, user))
}

/// The close for a refused token.
pub fn token_end(err: TokenError) -> End {
    match err {
        TokenError::Expired => End::Close(CloseCode::TokenExpired, err.to_string()),
        _ => End::Close(CloseCode::InvalidToken, err.to_string()),
    }
}

/// The close for an API-level refusal during the session.
pub fn app_end(err: AppError) -> End {
    let code = match err.status.as_u16() {
        401 => CloseCode::InvalidToken,
        403 | 404 => CloseCode::Forbidden,
        _ => CloseCode::ServerError,
    };
    End::Close(code, err.body.message)
}

/// The close for a failed write.
pub fn stop_end(stop: Stop, handle: &ConnHandle) -> End {
    match stop {
        Stop::Dead => End::Gone,
        Stop::Killed => match handle.kill_reason() {
            Some((code, message)) => End::Close(*code, message.clone()),
            None => End::Close(
                CloseCode::GoingAway,
                "the gateway is shutting down; reconnect and resume".into(),
            ),
        },
    }
}

/// Reads the next frame of the handshake (auth or hello) before the deadline.
/// WebSocket pings and pongs are answered by the library and skipped here; a
/// shutdown meanwhile ends the session with 4000.
async fn next_handshake_frame(
    reader: &mut SplitStream<WebSocket>,
    deadline: Instant,
    kill: &tokio_util::sync::CancellationToken,
) -> Incoming {
    loop {
        let item = tokio::select! {
            item = tokio::time::timeout_at(deadline, reader.next()) => match item {
                Ok(item) => item,
                Err(_) => {
                    return Incoming::End(End::Close(
                        CloseCode::AuthTimeout,
                        "no auth and hello in time after the upgrade; send them at once".into(),
                    ));
                }
            },
            () = kill.cancelled() => {
                return Incoming::End(End::Close(
                    CloseCode::GoingAway,
                    "the gateway is shutting down; reconnect and resume".into(),
                ));
            }
        };
        match classify(item) {
            Incoming::Alive => continue,
            other => return other,
        }
    }
}

/// A well-formed action of a type this build does not know: a JSON object whose
/// `type` is none of ours and whose `id` is a valid action id. Anything else that
/// fails to parse stays a protocol violation.
fn unknown_action(text: &str) -> Option<Incoming> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        #[serde(rename = "type")]
        kind: String,
        id: String,
    }
    let envelope: Envelope = serde_json::from_str(text).ok()?;
    let known = serde_json::from_value::<ClientFrame>(serde_json::json!({ "type": envelope.kind }))
        .map_err(|err| err.to_string())
        .err()
        .is_none_or(|err| !err.starts_with("unknown variant"));
    let id_ok =
        !envelope.id.is_empty() && envelope.id.len() <= tocsin_protocol::frames::MAX_ACTION_ID_LEN;
    (!known && id_ok).then_some(Incoming::UnknownAction {
        id: envelope.id,
        kind: envelope.kind,
    })
}

/// Turns a socket read into what the session does with it.
fn classify(item: Option<Result<Message, axum::Error>>) -> Incoming {
    match item {
        None | Some(Ok(Message::Close(_))) => Incoming::End(End::Gone),
        Some(Ok(Message::Ping(_) | Message::Pong(_))) => Incoming::Alive,
        Some(Ok(Message::Binary(_))) => Incoming::End(End::violation(
            "binary frames are not part of tocsin.v1; send JSON text frames",
        )),
        Some(Ok(Message::Text(text))) => match serde_json::from_str::<ClientFrame>(text.as_str()) {
            Ok(frame) => Incoming::Frame(frame),
            Err(err) => unknown_action(text.as_str()).unwrap_or_else(|| {
                Incoming::End(End::violation(format!(
                    "frame is not a valid tocsin.v1 client frame ({err}); see docs/PROTOCOL.md"
                )))
            }),
        },
        Some(Err(err)) => match err.into_inner().downcast::<tungstenite::Error>() {
            Ok(err) if matches!(*err, tungstenite::Error::Utf8(_)) => Incoming::End(End::Close(
                CloseCode::InvalidPayload,
                format!("a text frame was not valid UTF-8 ({err}); send JSON text in UTF-8"),
            )),
            Ok(err) if matches!(*err, tungstenite::Error::Capacity(_)) => {
                Incoming::End(End::Close(
                    CloseCode::MessageTooLarge,
                    format!("{err}; keep messages under welcome.limits.max_message_bytes"),
                ))
            }
            // A peer that vanished (killed, network cut) did nothing wrong: it is gone.
            Ok(err)
                if matches!(
                    *err,
                    tungstenite::Error::Protocol(
                        tungstenite::error::ProtocolError::ResetWithoutClosingHandshake
                    )
                ) =>
            {
                Incoming::End(End::Gone)
            }
            Ok(err) if matches!(*err, tungstenite::Error::Protocol(_)) => {
                Incoming::End(End::violation(format!("WebSocket protocol error: {err}")))
            }
            _ => Incoming::End(End::Gone),
        },
    }
}

impl Session {
    /// The live loop.
    async fn live(&mut self, reader: &mut SplitStream<WebSocket>, mut queue: Receiver) -> End {
        let limits = &self.state.config.websocket;
        let interval = Duration::from_millis(limits.heartbeat_interval_ms);
        let timeout = Duration::from_millis(limits.heartbeat_timeout_ms);
        let mut next_ping = Instant::now() + interval;
        let mut silent_since_ping: Option<Instant> = None;
        let kill = self.kill.clone();
        // Made once, not per turn of the loop: a fan-out wakes every connection, and
        // re-registering a kill waiter and a timer at each wake-up is a lock and a
        // timer-wheel insert and removal per delivery (~4% of a fan-out's CPU).
        let killed = kill.cancelled();
        tokio::pin!(killed);
        // One timer for the three deadlines (next ping, pong, token expiry): each
        // would otherwise be a ~110-byte `Sleep` in every idle connection's task.
        let timer = sleep_until(next_ping.min(self.token_expiry));
        tokio::pin!(timer);
        loop {
            let pong_deadline = silent_since_ping.map(|sent| sent + timeout);
            // A ping, a read or a `refresh` action moves the earliest deadline.
            let wake = [Some(next_ping), pong_deadline, Some(self.token_expiry)]
                .into_iter()
                .flatten()
                .min()
                .unwrap_or(next_ping);
            if timer.deadline() != wake {
                timer.as_mut().reset(wake);
            }
            let step: Result<(), End> = tokio::select! {
                biased;
                () = &mut killed => Err(self.stop(Stop::Killed)),
                item = reader.next() => {
                    silent_since_ping = None;
                    match classify(item) {
                        // Boxed: actions are rare, and their futures (store calls)
                        // would otherwise sit in every idle connection's task.
                        Incoming::Frame(frame) => Box::pin(self.handle_frame(frame)).await,
                        Incoming::UnknownAction { id, kind } => {
                            Box::pin(self.refuse_unknown(id, kind)).await
                        }
                        Incoming::Alive => Ok(()),
                        Incoming::End(end) => Err(end),
                    }
                }
                item = queue.recv() => match item {
                    // Boxed with the ping below: their socket-write futures would
                    // otherwise sit in every idle connection's task (~700 bytes).
                    Some(item) => Box::pin(self.deliver_burst(item, &mut queue)).await,
                    None => Err(End::Gone),
                },
                () = &mut timer => {
                    let now = Instant::now();
                    if now >= self.token_expiry {
                        Err(End::Close(
                            CloseCode::TokenExpired,
                            "the access token expired; refresh it, then reconnect (or send refresh before expiry)".into(),
                        ))
                    } else if pong_deadline.is_some_and(|deadline| now >= deadline) {
                        Err(End::Close(
                            CloseCode::HeartbeatTimeout,
                            format!("nothing received for {} ms after a ping; reconnect", timeout.as_millis()),
                        ))
                    } else if now >= next_ping {
                        // The next ping is an interval after this one, however late
                        // this one was (no catching up on missed pings).
                        next_ping = now + interval;
                        if silent_since_ping.is_none() {
                            silent_since_ping = Some(now);
                        }
                        Box::pin(self.writer.ping()).await.map_err(|stop| self.stop(stop))
                    } else {
                        Ok(())
                    }
                }
            };
            if let Err(end) = step {
                return end;
            }
        }
    }

    /// The end for a failed write.
    pub fn stop(&self, stop: Stop) -> End {
        stop_end(stop, &self.handle)
    }

    /// Delivers one queued item and whatever else is waiting, then flushes once.
    async fn deliver_burst(&mut self, first: Outbound, queue: &mut Receiver) -> Result<(), End> {
        self.deliver(first).await?;
        for _ in 1..MAX_BURST {
            match queue.try_recv() {
                Ok(item) => self.deliver(item).await?,
                Err(_) => break,
            }
        }
        self.writer.flush().await.map_err(|stop| self.stop(stop))
    }
}

#[cfg(test)]
mod tests {
    /// The size of the future an async fn of three arguments returns.
    fn future_size<A, B, C, F: Future>(_: fn(A, B, C) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every idle connection is mostly this future: 10k of them must fit the budget
    /// of docs/BENCHMARKS.md (≤ 5 KB per idle connection, everything included). It
    /// was 4 KB before the opening phase and the rare branches were boxed.
    #[test]
    fn a_live_connection_task_stays_small() {
        let size = future_size(super::run as fn(_, _, _) -> _);
        assert!(
            size <= 2048,
            "the connection task's future grew to {size} bytes; box rarely taken awaits (see run)"
        );
    }
}
