//! A lean protocol client for thousands of connections in one process.
//!
//! It speaks the real protocol (docs/PROTOCOL.md §4): WebSocket upgrade with the
//! `tocsin.v1` subprotocol and a bearer token, `hello` with stored positions, replay up
//! to `caught_up`, then live frames; WebSocket Pings are answered by tungstenite while
//! reading. Unlike `tocsin-client` it stores nothing: it parses each frame's envelope
//! (type, stream, offset) and the body's publish stamp, checks that offsets are
//! consecutive per stream, and records latency — what a benchmark needs of 10k peers.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use serde::Deserialize;
use tokio::net::{TcpSocket, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::clock;
use crate::fixture::{Minter, user_id};
use crate::stats::Latencies;

/// Where clients connect and how they get tokens.
#[derive(Clone)]
pub struct Target {
    /// The gateway's `127.0.0.1:port`.
    pub addr: SocketAddr,
    /// Mints each user's access token.
    pub minter: Arc<Minter>,
}

/// Connections a scenario opens at once when it ramps up (below the gateway's accept
/// backlog of 4096, so no SYN is dropped).
pub const RAMP_CONCURRENCY: usize = 256;

/// Opens the sessions of users `0..count` ([`user_id`]), `concurrency` at a time,
/// yielding each one (with its index and handshake timings) as soon as it is live.
pub fn ramp(
    target: &Target,
    count: usize,
    concurrency: usize,
) -> impl futures_util::Stream<Item = Result<(usize, Session, Handshake)>> + '_ {
    futures_util::stream::iter(0..count)
        .map(move |index| async move {
            let user = user_id(index);
            let (session, handshake) =
                Session::open(target, &user, source_ip(index), Positions::default())
                    .await
                    .with_context(|| format!("connecting {user}"))?;
            Ok((index, session, handshake))
        })
        .buffer_unordered(concurrency)
}

/// The last offset held per stream, with its epoch: what `hello` sends.
pub type Positions = HashMap<String, (String, u64)>;

/// The source address for the `index`-th connection. Loopback has ~28k ephemeral ports
/// per source address; spreading over 127.0.0.1–8 allows 50k+ connections.
pub fn source_ip(index: usize) -> IpAddr {
    let last = u8::try_from(1 + index % 8).unwrap_or(1);
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, last))
}

/// How long each step of a connection took, in microseconds on [`clock::now_us`].
#[derive(Debug, Clone, Copy)]
pub struct Handshake {
    /// Before the TCP connect.
    pub started_us: u64,
    /// 101 Switching Protocols received.
    pub upgraded_us: u64,
    /// `caught_up` received: the client is live.
    pub caught_up_us: u64,
    /// Notifications replayed before `caught_up`.
    pub replayed: u64,
}

impl Handshake {
    /// TCP connect → 101.
    pub fn upgrade_micros(&self) -> u64 {
        self.upgraded_us.saturating_sub(self.started_us)
    }
    /// TCP connect → `caught_up`.
    pub fn ready_micros(&self) -> u64 {
        self.caught_up_us.saturating_sub(self.started_us)
    }
}

/// What the live clients of a scenario saw, shared by all of them.
#[derive(Default)]
pub struct Tally {
    inner: Mutex<TallyInner>,
}

#[derive(Default)]
struct TallyInner {
    latencies: Latencies,
    delivered: u64,
    out_of_order: u64,
    closed: u64,
    last_delivery_us: u64,
    frame_bytes: usize,
}

/// A copy of a [`Tally`]'s counters.
#[derive(Debug, Clone, Copy, Default)]
pub struct Counts {
    /// Notifications received live.
    pub delivered: u64,
    /// Notifications whose offset was not the previous one + 1 on their stream.
    pub out_of_order: u64,
    /// Connections that ended while they should have been live.
    pub closed: u64,
    /// When the latest delivery arrived ([`clock::now_us`]).
    pub last_delivery_us: u64,
}

impl Tally {
    fn lock(&self) -> std::sync::MutexGuard<'_, TallyInner> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The counters so far.
    pub fn counts(&self) -> Counts {
        let inner = self.lock();
        Counts {
            delivered: inner.delivered,
            out_of_order: inner.out_of_order,
            closed: inner.closed,
            last_delivery_us: inner.last_delivery_us,
        }
    }

    /// The size of the largest live `notification` text frame seen (payload bytes, without
    /// the WebSocket header): what a raw-socket baseline writes to compare like with like.
    pub fn frame_bytes(&self) -> usize {
        self.lock().frame_bytes
    }

    /// Takes the latencies recorded so far, leaving an empty histogram.
    pub fn take_latencies(&self) -> Latencies {
        std::mem::take(&mut self.lock().latencies)
    }

    fn record(&self, latency_us: Option<u64>, in_order: bool, now_us: u64, frame_bytes: usize) {
        let mut inner = self.lock();
        inner.delivered += 1;
        inner.frame_bytes = inner.frame_bytes.max(frame_bytes);
        inner.last_delivery_us = now_us;
        if !in_order {
            inner.out_of_order += 1;
        }
        if let Some(latency) = latency_us {
            inner.latencies.record(latency);
        }
    }

    fn closed(&self) {
        self.lock().closed += 1;
    }
}

/// An open, live session.
pub struct Session {
    ws: WebSocketStream<TcpStream>,
    /// Where each stream stands.
    pub positions: Positions,
    /// Notifications whose offset did not follow the stream's previous one.
    pub out_of_order: u64,
}

/// How [`Session::follow`] ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ended {
    /// The caller's stop token fired; the session is still open.
    Stopped,
    /// The connection ended: with the close frame's code, or `None` when the transport
    /// was lost without one (a killed gateway).
    Closed(Option<u16>),
}

/// The frame envelope: enough to check order and read the stamp, nothing more.
#[derive(Deserialize)]
struct Envelope<'a> {
    #[serde(rename = "type", borrow)]
    kind: &'a str,
    #[serde(default, borrow)]
    stream: Option<&'a str>,
    #[serde(default, borrow)]
    epoch: Option<&'a str>,
    #[serde(default)]
    offset: Option<u64>,
    #[serde(default, borrow)]
    notification: Option<Body<'a>>,
    #[serde(default, borrow)]
    error: Option<ErrorBody<'a>>,
}

#[derive(Deserialize)]
struct Body<'a> {
    #[serde(default, borrow)]
    body: std::borrow::Cow<'a, str>,
}

#[derive(Deserialize)]
struct ErrorBody<'a> {
    #[serde(default, borrow)]
    message: std::borrow::Cow<'a, str>,
}

/// One notification as the client saw it.
struct Seen {
    latency_us: Option<u64>,
    in_order: bool,
}

impl Session {
    /// Connects `user` from `source` and resumes from `positions` (empty: live only).
    /// Returns once `caught_up` arrived.
    pub async fn open(
        target: &Target,
        user: &str,
        source: IpAddr,
        positions: Positions,
    ) -> Result<(Session, Handshake)> {
        let started_us = clock::now_us();
        let socket = TcpSocket::new_v4().context("creating a socket (out of file descriptors?)")?;
        socket
            .bind(SocketAddr::new(source, 0))
            .with_context(|| format!("binding to {source} (out of ephemeral ports?)"))?;
        let stream = socket
            .connect(target.addr)
            .await
            .with_context(|| format!("connecting to {}", target.addr))?;
        stream.set_nodelay(true)?;
        let mut request = format!("ws://{}/v1/ws", target.addr).into_client_request()?;
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static("tocsin.v1"),
        );
        let bearer = format!("Bearer {}", target.minter.token(user)?);
        headers.insert("Authorization", HeaderValue::from_str(&bearer)?);
        let config = WebSocketConfig::default()
            .read_buffer_size(4096)
            .write_buffer_size(0);
        let (ws, _) = tokio_tungstenite::client_async_with_config(request, stream, Some(config))
            .await
            .with_context(|| format!("WebSocket upgrade for {user}"))?;
        let upgraded_us = clock::now_us();
        let mut session = Session {
            ws,
            positions,
            out_of_order: 0,
        };
        session.send_hello().await?;
        let replayed = session.until_caught_up(user).await?;
        let handshake = Handshake {
            started_us,
            upgraded_us,
            caught_up_us: clock::now_us(),
            replayed,
        };
        Ok((session, handshake))
    }

    async fn send_hello(&mut self) -> Result<()> {
        let positions: serde_json::Map<String, serde_json::Value> = self
            .positions
            .iter()
            .map(|(stream, (epoch, offset))| {
                let position = serde_json::json!({"epoch": epoch, "offset": offset});
                (stream.clone(), position)
            })
            .collect();
        let hello = serde_json::json!({
            "type": "hello",
            "positions": positions,
            "client": concat!("tocsin-bench/", env!("CARGO_PKG_VERSION")),
        });
        self.ws.send(Message::text(hello.to_string())).await?;
        Ok(())
    }

    /// Reads `welcome`, the replay and `caught_up`; returns how many were replayed.
    async fn until_caught_up(&mut self, user: &str) -> Result<u64> {
        let mut replayed = 0;
        loop {
            let Some(message) = self.ws.next().await else {
                bail!("the gateway closed {user}'s connection before caught_up");
            };
            let Message::Text(text) = message? else {
                continue;
            };
            let envelope: Envelope<'_> = serde_json::from_str(&text)
                .with_context(|| format!("unparsable frame for {user}: {text}"))?;
            match envelope.kind {
                "welcome" => self.adopt_welcome(&text)?,
                "notification" => {
                    self.apply(&envelope);
                    replayed += 1;
                }
                "caught_up" => return Ok(replayed),
                "error" => bail!(
                    "the gateway refused {user}: {}",
                    envelope
                        .error
                        .map(|e| e.message.into_owned())
                        .unwrap_or_default()
                ),
                _ => {}
            }
        }
    }

    /// Streams whose epoch changed (or that are new) restart from the welcome's head.
    fn adopt_welcome(&mut self, text: &str) -> Result<()> {
        let welcome: tocsin_protocol::frames::Welcome = match serde_json::from_str(text)? {
            tocsin_protocol::frames::ServerFrame::Welcome(welcome) => welcome,
            _ => bail!("expected welcome"),
        };
        for stream in welcome.streams {
            let name = stream.stream.to_string();
            let resumes = stream.recovered
                && self
                    .positions
                    .get(&name)
                    .is_some_and(|(epoch, _)| *epoch == stream.epoch);
            if !resumes {
                self.positions.insert(name, (stream.epoch, stream.head));
            }
        }
        Ok(())
    }

    /// Advances the stream's position; reports whether the offset was the next one.
    fn apply(&mut self, envelope: &Envelope<'_>) -> Seen {
        let now = clock::now_us();
        let latency_us = envelope
            .notification
            .as_ref()
            .and_then(|n| clock::read_stamp(&n.body))
            .map(|stamp| now.saturating_sub(stamp));
        let (Some(stream), Some(offset)) = (envelope.stream, envelope.offset) else {
            return Seen {
                latency_us,
                in_order: false,
            };
        };
        let epoch = envelope.epoch.unwrap_or_default();
        let entry = self
            .positions
            .entry(stream.to_owned())
            .or_insert_with(|| (epoch.to_owned(), offset.saturating_sub(1)));
        let in_order = entry.1 + 1 == offset;
        self.out_of_order += u64::from(!in_order);
        if offset > entry.1 {
            entry.1 = offset;
        }
        Seen {
            latency_us,
            in_order,
        }
    }

    /// Receives live frames into `tally` until `stop` fires or the connection ends.
    /// Returns the session when stopped, `None` when the gateway ended it.
    pub async fn receive(mut self, tally: Arc<Tally>, stop: CancellationToken) -> Option<Session> {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return Some(self),
                message = self.ws.next() => message,
            };
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => {
                    tally.closed();
                    return None;
                }
            };
            let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(&text) else {
                continue;
            };
            if envelope.kind == "notification" {
                let seen = self.apply(&envelope);
                tally.record(seen.latency_us, seen.in_order, clock::now_us(), text.len());
            }
        }
    }

    /// Like [`Session::receive`], but borrowing the session so that its positions
    /// survive the connection (for a resume), reporting the close code, and calling
    /// `progress` with the positions after each notification.
    pub async fn follow(
        &mut self,
        stop: &CancellationToken,
        mut progress: impl FnMut(&Positions),
    ) -> Ended {
        loop {
            let message = tokio::select! {
                () = stop.cancelled() => return Ended::Stopped,
                message = self.ws.next() => message,
            };
            let text = match message {
                Some(Ok(Message::Text(text))) => text,
                Some(Ok(Message::Close(frame))) => {
                    return Ended::Closed(frame.map(|frame| u16::from(frame.code)));
                }
                Some(Ok(_)) => continue,
                Some(Err(_)) | None => return Ended::Closed(None),
            };
            let Ok(envelope) = serde_json::from_str::<Envelope<'_>>(&text) else {
                continue;
            };
            if envelope.kind == "notification" {
                self.apply(&envelope);
                progress(&self.positions);
            }
        }
    }

    /// Closes politely (a WebSocket close, then the socket).
    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}
