//! A real WebSocket client speaking `tocsin.v1`, with waits that always have a deadline.
//!
//! The client reads only when a test asks it to. That is deliberate: tungstenite answers
//! pings only while reading, and an unread socket fills up, so "stop calling the read
//! methods" is how a test plays a silent or slow peer.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tocsin_protocol::frames::Welcome;
use tocsin_protocol::{ClientFrame, Notification, Position, ServerFrame, StreamName};
use tokio::io::AsyncReadExt;
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::{Connector, MaybeTlsStream, WebSocketStream};

/// How a client authenticates and what it sends on the upgrade.
#[derive(Debug, Clone, Default)]
pub struct ConnectOptions {
    /// `Authorization: Bearer …` on the upgrade; `None` for first-frame auth.
    pub bearer: Option<String>,
    /// An `Origin` header, as a browser would send.
    pub origin: Option<String>,
    /// A tiny socket receive buffer, so an unread socket fills up after a few KiB.
    pub small_receive_buffer: bool,
    /// For `wss://`: the TLS client config (the roots it trusts).
    pub tls: Option<Arc<tokio_rustls::rustls::ClientConfig>>,
}

impl ConnectOptions {
    /// Header auth with `token`.
    pub fn bearer(token: &str) -> Self {
        ConnectOptions {
            bearer: Some(token.to_owned()),
            ..ConnectOptions::default()
        }
    }
}

/// Why an upgrade did not produce a WebSocket.
#[derive(Debug)]
pub enum ConnectFailure {
    /// The gateway answered with a non-101 HTTP status.
    Refused {
        /// The status.
        status: u16,
        /// The body, as text.
        body: String,
    },
    /// Anything else (socket, handshake, subprotocol).
    Other(WsError),
}

/// A stored notification as delivered on a stream.
#[derive(Debug, Clone, PartialEq)]
pub struct Delivered {
    /// Its stream.
    pub stream: StreamName,
    /// The stream's epoch.
    pub epoch: String,
    /// Its offset.
    pub offset: u64,
    /// Whether it was sent as replay.
    pub replay: bool,
    /// The notification.
    pub notification: Notification,
}

/// Something read from the socket.
// Events are matched and dropped at once; boxing the frame would only clutter matches.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum WsEvent {
    /// A JSON frame.
    Frame(ServerFrame),
    /// The connection ended.
    Closed(Closed),
}

/// How a connection ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Closed {
    /// The close code, `None` when the socket ended without a close frame.
    pub code: Option<u16>,
    /// The close reason, or the transport error.
    pub reason: String,
}

/// What [`WsClient::read_until_caught_up`] saw.
#[derive(Debug, Clone)]
pub struct CatchUp {
    /// The notifications before `caught_up`, in arrival order.
    pub notifications: Vec<Delivered>,
    /// The positions `caught_up` announced.
    pub positions: BTreeMap<StreamName, Position>,
}

/// One WebSocket connection to the gateway.
pub struct WsClient {
    /// The socket (plain for `ws://`, TLS for `wss://`).
    socket: WebSocketStream<MaybeTlsStream<TcpStream>>,
    /// The last position seen per stream (from `caught_up` and notifications), for
    /// reconnecting where this client left off.
    positions: BTreeMap<StreamName, Position>,
    /// WebSocket pings received so far.
    pings: usize,
    /// Frames read but not yet consumed by a `wait_for`.
    pending: Vec<ServerFrame>,
}

impl WsClient {
    /// Opens a WebSocket, returning why when the gateway refuses the upgrade.
    pub async fn try_connect(
        url: &str,
        options: &ConnectOptions,
    ) -> Result<WsClient, ConnectFailure> {
        let mut request = url.into_client_request().map_err(ConnectFailure::Other)?;
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(tocsin_protocol::SUBPROTOCOL),
        );
        if let Some(token) = &options.bearer {
            let value = HeaderValue::from_str(&format!("Bearer {token}"))
                .expect("a token is a valid header value");
            headers.insert("Authorization", value);
        }
        if let Some(origin) = &options.origin {
            let value = HeaderValue::from_str(origin).expect("an origin is a valid header value");
            headers.insert("Origin", value);
        }
        let host = url
            .strip_prefix("ws://")
            .or_else(|| url.strip_prefix("wss://"))
            .and_then(|rest| rest.split('/').next())
            .expect("a ws:// or wss:// url");
        let addr = host.parse().expect("the gateway address is ip:port");
        let socket = TcpSocket::new_v4().expect("a TCP socket can be created");
        if options.small_receive_buffer {
            socket
                .set_recv_buffer_size(4096)
                .expect("the receive buffer can be shrunk");
        }
        let stream = socket
            .connect(addr)
            .await
            .map_err(|e| ConnectFailure::Other(WsError::Io(e)))?;
        let connector = options.tls.clone().map(Connector::Rustls);
        match tokio_tungstenite::client_async_tls_with_config(request, stream, None, connector)
            .await
        {
            Ok((socket, _response)) => Ok(WsClient {
                socket,
                positions: BTreeMap::new(),
                pings: 0,
                pending: Vec::new(),
            }),
            Err(WsError::Http(response)) => Err(ConnectFailure::Refused {
                status: response.status().as_u16(),
                body: response
                    .body()
                    .as_deref()
                    .map(|b| String::from_utf8_lossy(b).into_owned())
                    .unwrap_or_default(),
            }),
            Err(other) => Err(ConnectFailure::Other(other)),
        }
    }

    /// Opens a WebSocket, panicking when the gateway refuses.
    pub async fn connect(url: &str, options: &ConnectOptions) -> WsClient {
        match Self::try_connect(url, options).await {
            Ok(client) => client,
            Err(failure) => panic!("the WebSocket upgrade to {url} failed: {failure:?}"),
        }
    }

    /// Connects with a Bearer header, says hello and reads until `caught_up`.
    pub async fn connect_ready(
        url: &str,
        token: &str,
        positions: BTreeMap<StreamName, Position>,
    ) -> (WsClient, Welcome, CatchUp) {
        let mut client = Self::connect(url, &ConnectOptions::bearer(token)).await;
        let welcome = client.hello(positions).await;
        let catch_up = client.read_until_caught_up(STEP).await;
        (client, welcome, catch_up)
    }

    /// Sends a frame.
    pub async fn send(&mut self, frame: &ClientFrame) {
        let text = serde_json::to_string(frame).expect("a client frame serialises");
        self.send_raw(Message::text(text)).await;
    }

    /// Sends any WebSocket message, panicking if the socket is already broken.
    pub async fn send_raw(&mut self, message: Message) {
        self.socket
            .send(message)
            .await
            .expect("the WebSocket accepts the message");
    }

    /// Sends a message, returning the error instead of panicking (the gateway may have
    /// closed first).
    pub async fn try_send_raw(&mut self, message: Message) -> Result<(), WsError> {
        self.socket.send(message).await
    }

    /// Sends `hello` as a current client (every client feature) and returns `welcome`.
    pub async fn hello(&mut self, positions: BTreeMap<StreamName, Position>) -> Welcome {
        let features = vec![tocsin_protocol::frames::client_features::RETRACT.to_owned()];
        self.hello_with(positions, features).await
    }

    /// Sends `hello` listing exactly `features` (none: a client older than them) and
    /// returns `welcome`.
    pub async fn hello_with(
        &mut self,
        positions: BTreeMap<StreamName, Position>,
        features: Vec<String>,
    ) -> Welcome {
        self.send(&ClientFrame::Hello {
            positions,
            client: Some("tocsin-e2e".to_owned()),
            features,
        })
        .await;
        match self.next_frame(STEP).await {
            ServerFrame::Welcome(welcome) => welcome,
            other => panic!("expected welcome after hello, got {other:?}"),
        }
    }

    /// The next event, skipping pings and pongs; panics after `timeout`.
    pub async fn next_event(&mut self, timeout: Duration) -> WsEvent {
        if !self.pending.is_empty() {
            return WsEvent::Frame(self.pending.remove(0));
        }
        match self.try_next_event(timeout).await {
            Some(event) => event,
            None => panic!("nothing arrived on the WebSocket within {timeout:?}"),
        }
    }

    /// The next event, or `None` when nothing arrived within `timeout`.
    pub async fn try_next_event(&mut self, timeout: Duration) -> Option<WsEvent> {
        if !self.pending.is_empty() {
            return Some(WsEvent::Frame(self.pending.remove(0)));
        }
        let deadline = Instant::now() + timeout;
        loop {
            let read = tokio::time::timeout_at(deadline, self.socket.next()).await;
            let message = match read {
                Err(_) => return None,
                Ok(None) => {
                    return Some(WsEvent::Closed(Closed {
                        code: None,
                        reason: "the stream ended without a close frame".to_owned(),
                    }));
                }
                Ok(Some(Err(error))) => {
                    return Some(WsEvent::Closed(Closed {
                        code: None,
                        reason: format!("transport error: {error}"),
                    }));
                }
                Ok(Some(Ok(message))) => message,
            };
            match message {
                Message::Text(text) => {
                    let frame: ServerFrame =
                        serde_json::from_str(text.as_str()).unwrap_or_else(|e| {
                            panic!(
                                "the gateway sent a frame that is not a ServerFrame ({e}): {text}"
                            )
                        });
                    self.track(&frame);
                    return Some(WsEvent::Frame(frame));
                }
                Message::Close(frame) => {
                    return Some(WsEvent::Closed(Closed {
                        code: frame.as_ref().map(|f| u16::from(f.code)),
                        reason: frame.map(|f| f.reason.to_string()).unwrap_or_default(),
                    }));
                }
                Message::Ping(_) => self.pings += 1,
                Message::Pong(_) | Message::Frame(_) => {}
                Message::Binary(data) => {
                    panic!("the gateway sent a binary message of {} bytes", data.len())
                }
            }
        }
    }

    /// The next frame; panics on close or after `timeout`.
    pub async fn next_frame(&mut self, timeout: Duration) -> ServerFrame {
        match self.next_event(timeout).await {
            WsEvent::Frame(frame) => frame,
            WsEvent::Closed(closed) => {
                panic!("expected a frame, the connection closed: {closed:?}")
            }
        }
    }

    /// Reads frames until one matches, keeping the others for later reads; panics on
    /// close or after `timeout`.
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut select: impl FnMut(&ServerFrame) -> Option<T>,
    ) -> T {
        if let Some(index) = self.pending.iter().position(|f| select(f).is_some()) {
            let frame = self.pending.remove(index);
            return select(&frame).expect("matched just above");
        }
        let deadline = Instant::now() + timeout;
        let mut skipped = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let event = self.try_next_event(left).await;
            match event {
                Some(WsEvent::Frame(frame)) => {
                    if let Some(found) = select(&frame) {
                        self.pending.extend(skipped);
                        return found;
                    }
                    skipped.push(frame);
                }
                Some(WsEvent::Closed(closed)) => {
                    panic!(
                        "waiting for {what}, the connection closed: {closed:?}; frames before: {skipped:?}"
                    )
                }
                None => panic!("no {what} within {timeout:?}; other frames: {skipped:?}"),
            }
        }
    }

    /// Waits for the `result` of action `id`.
    pub async fn wait_result(&mut self, id: &str) -> ServerFrame {
        self.wait_for(STEP, &format!("result {id}"), |frame| match frame {
            ServerFrame::Result { id: got, .. } if got == id => Some(frame.clone()),
            _ => None,
        })
        .await
    }

    /// Reads until the connection closes, returning how, and the frames before it.
    pub async fn expect_close(&mut self, timeout: Duration) -> (Closed, Vec<ServerFrame>) {
        let deadline = Instant::now() + timeout;
        let mut frames = std::mem::take(&mut self.pending);
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.try_next_event(left).await {
                Some(WsEvent::Frame(frame)) => frames.push(frame),
                Some(WsEvent::Closed(closed)) => return (closed, frames),
                None => panic!(
                    "the connection was not closed within {timeout:?}; frames: {}",
                    summarize(&frames)
                ),
            }
        }
    }

    /// Reads notifications until `caught_up`, asserting nothing else comes first.
    pub async fn read_until_caught_up(&mut self, timeout: Duration) -> CatchUp {
        let deadline = Instant::now() + timeout;
        let mut notifications = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            let Some(event) = self.try_next_event(left).await else {
                panic!(
                    "no caught_up within {timeout:?} ({} notifications before)",
                    notifications.len()
                )
            };
            match event {
                WsEvent::Frame(ServerFrame::CaughtUp { positions }) => {
                    return CatchUp {
                        notifications,
                        positions,
                    };
                }
                WsEvent::Frame(frame) => match as_delivered(&frame) {
                    Some(delivered) => notifications.push(delivered),
                    None => panic!("expected notifications then caught_up, got {frame:?}"),
                },
                WsEvent::Closed(closed) => panic!(
                    "closed before caught_up ({} notifications before): {closed:?}",
                    notifications.len()
                ),
            }
        }
    }

    /// Reads until `count` notifications arrived (skipping other frames), or panics
    /// after `timeout` saying how many came.
    pub async fn recv_notifications(&mut self, count: usize, timeout: Duration) -> Vec<Delivered> {
        let deadline = Instant::now() + timeout;
        let mut out = Vec::with_capacity(count);
        let pending = std::mem::take(&mut self.pending);
        let mut kept = Vec::new();
        for frame in pending {
            match as_delivered(&frame) {
                Some(d) if out.len() < count => out.push(d),
                _ => kept.push(frame),
            }
        }
        while out.len() < count {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.try_next_event(left).await {
                Some(WsEvent::Frame(frame)) => match as_delivered(&frame) {
                    Some(d) => out.push(d),
                    None => kept.push(frame),
                },
                Some(WsEvent::Closed(closed)) => panic!(
                    "closed after {} of {count} notifications: {closed:?}",
                    out.len()
                ),
                None => panic!(
                    "only {} of {count} notifications within {timeout:?} (last: {:?})",
                    out.len(),
                    out.last().map(|d| (&d.stream, d.offset))
                ),
            }
        }
        self.pending = kept;
        out
    }

    /// Waits for the notification with this id, skipping (and returning) any before it.
    pub async fn wait_notification(&mut self, id: &str, timeout: Duration) -> Delivered {
        self.wait_for(timeout, &format!("notification {id}"), |frame| {
            as_delivered(frame).filter(|d| d.notification.id == id)
        })
        .await
    }

    /// The last position seen per stream, to reconnect where this client left off.
    pub fn positions(&self) -> BTreeMap<StreamName, Position> {
        self.positions.clone()
    }

    /// WebSocket pings received so far.
    pub fn pings(&self) -> usize {
        self.pings
    }

    /// Reads what is left on the socket without ever writing (tungstenite would answer
    /// the buffered pings while reading, and those writes fail once the gateway has
    /// closed), and returns the close frame found there.
    ///
    /// For a client that went silent with nothing in flight: bytes tungstenite had
    /// already buffered are not seen.
    pub async fn drain_silently(self, timeout: Duration) -> Closed {
        let mut stream = self.socket.into_inner();
        let mut bytes = Vec::new();
        let read = tokio::time::timeout(timeout, async {
            let mut chunk = [0u8; 16 * 1024];
            loop {
                match stream.read(&mut chunk).await {
                    Ok(0) => return Ok(()),
                    Ok(n) => bytes.extend_from_slice(&chunk[..n]),
                    Err(error) => return Err(error),
                }
            }
        })
        .await;
        let ended = match read {
            Err(_) => format!("the socket was still open after {timeout:?}"),
            Ok(Err(error)) => format!("transport error: {error}"),
            Ok(Ok(())) => "the stream ended without a close frame".to_owned(),
        };
        first_close_frame(&bytes).unwrap_or(Closed {
            code: None,
            reason: ended,
        })
    }

    /// Closes politely (errors ignored: the gateway may be gone).
    pub async fn close(mut self) {
        let _ignored = self.socket.close(None).await;
    }

    fn track(&mut self, frame: &ServerFrame) {
        match frame {
            ServerFrame::Notification {
                stream,
                epoch,
                offset,
                ..
            } => {
                self.positions.insert(
                    stream.clone(),
                    Position {
                        epoch: epoch.clone(),
                        offset: *offset,
                    },
                );
            }
            ServerFrame::CaughtUp { positions } => {
                self.positions.extend(positions.clone());
            }
            _ => {}
        }
    }
}

/// Finds the first close frame in raw server-to-client WebSocket bytes (RFC 6455 §5.2;
/// server frames are not masked, but a mask is skipped if present).
fn first_close_frame(mut bytes: &[u8]) -> Option<Closed> {
    while bytes.len() >= 2 {
        let opcode = bytes[0] & 0x0f;
        let masked = bytes[1] & 0x80 != 0;
        let (length, mut header) = match bytes[1] & 0x7f {
            126 => (
                usize::from(u16::from_be_bytes([*bytes.get(2)?, *bytes.get(3)?])),
                4,
            ),
            127 => {
                let raw: [u8; 8] = bytes.get(2..10)?.try_into().ok()?;
                (usize::try_from(u64::from_be_bytes(raw)).ok()?, 10)
            }
            short => (usize::from(short), 2),
        };
        if masked {
            header += 4;
        }
        let payload = bytes.get(header..header + length)?;
        if opcode == 0x8 {
            let code = payload.get(..2).map(|c| u16::from_be_bytes([c[0], c[1]]));
            let reason = payload
                .get(2..)
                .map(|r| String::from_utf8_lossy(r).into_owned())
                .unwrap_or_default();
            return Some(Closed { code, reason });
        }
        bytes = &bytes[header + length..];
    }
    None
}

/// The default deadline for one protocol step (generous: debug builds, parallel tests).
pub const STEP: Duration = Duration::from_secs(10);

/// A `notification` frame as a [`Delivered`].
pub fn as_delivered(frame: &ServerFrame) -> Option<Delivered> {
    match frame {
        ServerFrame::Notification {
            stream,
            epoch,
            offset,
            replay,
            notification,
        } => Some(Delivered {
            stream: stream.clone(),
            epoch: epoch.clone(),
            offset: *offset,
            replay: *replay,
            notification: notification.clone(),
        }),
        _ => None,
    }
}

/// A short description of frames for failure messages.
pub fn summarize(frames: &[ServerFrame]) -> String {
    let names: Vec<String> = frames
        .iter()
        .map(|frame| match frame {
            ServerFrame::Notification { stream, offset, .. } => {
                format!("notification {stream}#{offset}")
            }
            other => {
                let json = serde_json::to_value(other).unwrap_or_default();
                format!("{}", json["type"])
            }
        })
        .collect();
    format!("{} frames: [{}]", frames.len(), names.join(", "))
}
