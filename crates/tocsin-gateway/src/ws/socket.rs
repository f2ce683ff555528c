//! The sending half of a client's socket. Every write races the connection's kill
//! token and a deadline, so a client that stops reading can block only its own task,
//! and only until it is declared dead.

use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, Utf8Bytes, WebSocket};
use futures_util::stream::SplitSink;
use futures_util::{FutureExt, SinkExt};
use tocsin_protocol::frames::ServerFrame;
use tocsin_protocol::{CloseCode, ErrorBody, ErrorCode};
use tokio_util::sync::CancellationToken;

/// Why writing stopped.
#[derive(Debug)]
pub enum Stop {
    /// The connection was asked to close (slow consumer, shutdown).
    Killed,
    /// The peer is gone or stopped reading for too long.
    Dead,
}

/// The sending half, with its kill token.
pub struct SocketWriter {
    /// The socket's sink.
    sink: SplitSink<WebSocket, Message>,
    /// Cancelled to make pending writes give up.
    kill: CancellationToken,
    /// A write blocked this long means the peer is not reading.
    write_timeout: Duration,
}

impl SocketWriter {
    /// Wraps a sink.
    pub fn new(
        sink: SplitSink<WebSocket, Message>,
        kill: CancellationToken,
        write_timeout: Duration,
    ) -> Self {
        SocketWriter {
            sink,
            kill,
            write_timeout,
        }
    }

    /// Buffers a text frame (written at the next flush or when the buffer is full).
    pub async fn feed(&mut self, text: Utf8Bytes) -> Result<(), Stop> {
        self.guard(Message::Text(text), false).await
    }

    /// Sends a frame now.
    pub async fn send(&mut self, frame: &ServerFrame) -> Result<(), Stop> {
        self.guard(Message::Text(encode(frame)), true).await
    }

    /// Sends a WebSocket ping.
    pub async fn ping(&mut self) -> Result<(), Stop> {
        self.guard(Message::Ping(Default::default()), true).await
    }

    /// Writes out everything buffered.
    pub async fn flush(&mut self) -> Result<(), Stop> {
        let write = self.sink.flush();
        race(write, &self.kill, self.write_timeout).await
    }

    async fn guard(&mut self, message: Message, flush: bool) -> Result<(), Stop> {
        let sink = &mut self.sink;
        let write = async move {
            if flush {
                sink.send(message).await
            } else {
                sink.feed(message).await
            }
        };
        race(write, &self.kill, self.write_timeout).await
    }

    /// Says why in an `error` frame, then closes with `code`. Bounded in time: a peer
    /// that does not read gets its TCP connection dropped instead.
    pub async fn close(mut self, code: CloseCode, message: &str) {
        // An ordinary close (going away, a heartbeat missed, a slow consumer) is one
        // line per connection at DEBUG, counted in `tocsin_disconnects_total{code}`; a
        // refusal the client will not retry is worth a WARN.
        if code.should_reconnect() {
            tracing::debug!(
                code = code.code(),
                reason = code.name(),
                message,
                "closing WebSocket"
            );
        } else {
            tracing::warn!(
                code = code.code(),
                reason = code.name(),
                message,
                "closing WebSocket"
            );
        }
        let error = ServerFrame::Error {
            error: ErrorBody::new(error_code(code), message),
        };
        let reason = short_reason(code, message);
        let close = Message::Close(Some(CloseFrame {
            code: code.code(),
            reason: reason.into(),
        }));
        let frames = async {
            // A client that read slowly has a backlog in tungstenite's write buffer,
            // which refuses a frame that does not fit — and a refused close frame is
            // lost for good (the state already says closed). Write the backlog first.
            self.sink.flush().await?;
            self.sink.feed(Message::Text(encode(&error))).await?;
            self.sink.send(close).await
        };
        let _ = tokio::time::timeout(self.write_timeout, frames).await;
    }
}

/// Runs a write against the kill token and a deadline. Nearly every write completes
/// at its first poll (room in the buffer or the socket), so that poll comes first, and
/// the deadline's timer and the kill waiter are armed only for a write that has to
/// wait: a fan-out makes one write per connection, and arming both for each was a
/// timer-wheel insert, a removal and a lock per delivery.
async fn race<F>(write: F, kill: &CancellationToken, timeout: Duration) -> Result<(), Stop>
where
    F: Future<Output = Result<(), axum::Error>>,
{
    let mut write = std::pin::pin!(write);
    if let Some(result) = (&mut write).now_or_never() {
        return result.map_err(|_| Stop::Dead);
    }
    tokio::select! {
        result = write => result.map_err(|_| Stop::Dead),
        () = kill.cancelled() => Err(Stop::Killed),
        () = tokio::time::sleep(timeout) => Err(Stop::Dead),
    }
}

/// Serialises a frame. Our frames always serialise; a failure would be a bug, so it
/// degrades to an `error` frame rather than a panic.
pub fn encode(frame: &ServerFrame) -> Utf8Bytes {
    match serde_json::to_string(frame) {
        Ok(text) => Utf8Bytes::from(text),
        Err(err) => {
            tracing::error!(error = %err, "frame failed to serialise");
            Utf8Bytes::from_static(
                r#"{"type":"error","error":{"code":"internal","message":"frame encoding failed"}}"#,
            )
        }
    }
}

fn error_code(code: CloseCode) -> ErrorCode {
    match code {
        CloseCode::InvalidToken | CloseCode::TokenExpired | CloseCode::AuthTimeout => {
            ErrorCode::Unauthorized
        }
        CloseCode::Forbidden => ErrorCode::Forbidden,
        CloseCode::ProtocolViolation | CloseCode::InvalidPayload => ErrorCode::InvalidRequest,
        CloseCode::MessageTooLarge => ErrorCode::TooLarge,
        CloseCode::RateLimited => ErrorCode::RateLimited,
        CloseCode::TooManyConnections => ErrorCode::Forbidden,
        CloseCode::GoingAway | CloseCode::SlowConsumer | CloseCode::HeartbeatTimeout => {
            ErrorCode::Unavailable
        }
        CloseCode::ServerError => ErrorCode::Internal,
    }
}

/// A close reason fits in 123 bytes: the code's name, or the message when it fits
/// (the rate-limit delay travels here).
fn short_reason(code: CloseCode, message: &str) -> String {
    if message.len() <= 123 && code == CloseCode::RateLimited {
        return message.to_owned();
    }
    code.name().to_owned()
}
