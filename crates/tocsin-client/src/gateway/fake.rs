//! A gateway made of channels, for the engine's tests under `tokio::time::pause()`:
//! each `connect` hands the test a [`FakeConnection`] (the server's end of the
//! socket); refreshes are answered with numbered tokens and counted.

use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use futures_util::{Sink, Stream};
use tocsin_protocol::StreamName;
use tocsin_protocol::frames::{ClientFrame, Limits, ServerFrame, StreamStatus, Welcome};
use tocsin_protocol::http::{HistoryItem, HistoryResponse, TokenResponse, UserInfo};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use super::{ConnectError, Gateway};
use crate::api::ApiError;

/// The client's end of a fake socket.
pub(crate) struct ChannelSocket {
    incoming: mpsc::UnboundedReceiver<Result<Message, WsError>>,
    outgoing: mpsc::UnboundedSender<Message>,
}

impl Stream for ChannelSocket {
    type Item = Result<Message, WsError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.incoming.poll_recv(cx)
    }
}

impl Sink<Message> for ChannelSocket {
    type Error = WsError;

    fn poll_ready(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }

    fn start_send(self: Pin<&mut Self>, item: Message) -> Result<(), WsError> {
        self.outgoing
            .send(item)
            .map_err(|_| WsError::ConnectionClosed)
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), WsError>> {
        Poll::Ready(Ok(()))
    }
}

/// The server's end of one connection.
pub(crate) struct FakeConnection {
    /// When the client connected (paused time is exact).
    pub at: Instant,
    to_client: mpsc::UnboundedSender<Result<Message, WsError>>,
    from_client: mpsc::UnboundedReceiver<Message>,
}

impl FakeConnection {
    /// Sends a frame to the client.
    pub fn send(&self, frame: &ServerFrame) {
        let text = serde_json::to_string(frame).expect("a frame encodes");
        let _ = self.to_client.send(Ok(Message::Text(text.into())));
    }

    /// The next frame the client sends, answering its pings on the way (a live
    /// gateway); `None` when the client closed the socket.
    pub async fn next_frame(&mut self) -> Option<ClientFrame> {
        loop {
            match self.from_client.recv().await? {
                Message::Ping(payload) => {
                    let _ = self.to_client.send(Ok(Message::Pong(payload)));
                }
                Message::Text(text) => {
                    return Some(serde_json::from_str(text.as_str()).expect("a client frame"));
                }
                Message::Close(_) => return None,
                _ => {}
            }
        }
    }

    /// The next message as sent, pings included (for a gateway that stays silent).
    pub async fn next_message(&mut self) -> Option<Message> {
        self.from_client.recv().await
    }

    /// Reads `hello`, answers `welcome` for `streams` and `caught_up`: a session
    /// with nothing to replay.
    pub async fn accept(&mut self, streams: Vec<StreamStatus>) {
        self.accept_announcing(streams, |_| {}).await;
    }

    /// [`FakeConnection::accept`] with the limits `welcome` announces changed.
    pub async fn accept_announcing(
        &mut self,
        streams: Vec<StreamStatus>,
        change: impl FnOnce(&mut Limits),
    ) {
        self.accept_welcome(streams, |welcome| change(&mut welcome.limits))
            .await;
    }

    /// [`FakeConnection::accept`] with the `welcome` changed (an older gateway's).
    pub async fn accept_welcome(
        &mut self,
        streams: Vec<StreamStatus>,
        change: impl FnOnce(&mut Welcome),
    ) {
        match self.next_frame().await {
            Some(ClientFrame::Hello { .. }) => {}
            other => panic!("expected hello, got {other:?}"),
        }
        let mut frame = welcome(streams);
        if let ServerFrame::Welcome(welcome) = &mut frame {
            change(welcome);
        }
        self.send(&frame);
        self.send(&ServerFrame::CaughtUp {
            positions: Default::default(),
        });
    }
}

/// A stream the gateway holds nothing of yet, resumed as the client has it.
pub(crate) fn empty_stream(stream: StreamName) -> StreamStatus {
    StreamStatus {
        stream,
        epoch: "e1".into(),
        head: 0,
        first: 1,
        recovered: true,
    }
}

/// The `welcome` of user u1 of firm dupont.
pub(crate) fn welcome(streams: Vec<StreamStatus>) -> ServerFrame {
    ServerFrame::Welcome(Welcome {
        connection_id: "c1".into(),
        user: user(),
        streams,
        token_expires_at: chrono::Utc::now() + chrono::Duration::minutes(15),
        limits: Limits {
            heartbeat_interval_ms: 30_000,
            heartbeat_timeout_ms: 10_000,
            max_message_bytes: 1 << 20,
            actions_per_second: 10,
            actions_burst: 20,
        },
        features: tocsin_protocol::frames::features::ALL
            .iter()
            .map(|f| (*f).to_owned())
            .collect(),
    })
}

fn user() -> UserInfo {
    UserInfo {
        id: "u1".into(),
        email: "marie@dupont.fr".into(),
        tenant: "dupont".into(),
        tenant_name: None,
        role: "lawyer".into(),
    }
}

/// The history of the one stream the fake gateway serves, and the requests seen.
#[derive(Default)]
pub(crate) struct FakeHistory {
    /// Offsets 1.. in order.
    pub items: Vec<HistoryItem>,
    /// `(after, unread_only)` of each request.
    pub requests: Vec<(u64, bool)>,
    /// Requests beyond this many fail (the link drops mid-rebuild).
    pub fail_after: Option<usize>,
}

/// A gateway the test drives through channels.
#[derive(Clone)]
pub(crate) struct FakeGateway {
    connections: mpsc::UnboundedSender<FakeConnection>,
    refreshes: Arc<Mutex<Vec<String>>>,
    /// How many of the next refreshes are lost on the way back (the gateway rotated
    /// the token, the client saw a timeout).
    lose_answers: Arc<Mutex<u32>>,
    /// Connection attempts never complete (a black-holed network).
    pub hang_connects: bool,
    /// What `GET /v1/history` serves (one stream, epoch `e1`).
    pub history: Arc<Mutex<FakeHistory>>,
    /// Lifetime of the access tokens handed out.
    pub expires_in: Duration,
}

impl FakeGateway {
    /// The gateway, and where the test receives each connection.
    pub fn new() -> (FakeGateway, mpsc::UnboundedReceiver<FakeConnection>) {
        let (connections, accepted) = mpsc::unbounded_channel();
        let gateway = FakeGateway {
            connections,
            refreshes: Arc::default(),
            lose_answers: Arc::default(),
            hang_connects: false,
            history: Arc::default(),
            expires_in: Duration::from_secs(900),
        };
        (gateway, accepted)
    }

    /// Loses the answers of the next `count` refreshes.
    pub fn lose_refresh_answers(&self, count: u32) {
        *self.lose_answers.lock().expect("lock") = count;
    }

    /// The refresh tokens presented so far, in order.
    pub fn refreshes(&self) -> Vec<String> {
        self.refreshes.lock().expect("lock").clone()
    }
}

impl Gateway for FakeGateway {
    type Socket = ChannelSocket;

    async fn connect(&self, _access_token: &str) -> Result<ChannelSocket, ConnectError> {
        if self.hang_connects {
            std::future::pending::<()>().await;
        }
        let (to_client, incoming) = mpsc::unbounded_channel();
        let (outgoing, from_client) = mpsc::unbounded_channel();
        let connection = FakeConnection {
            at: Instant::now(),
            to_client,
            from_client,
        };
        self.connections
            .send(connection)
            .map_err(|_| ConnectError::Failed("the test ended".into()))?;
        Ok(ChannelSocket { incoming, outgoing })
    }

    async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, ApiError> {
        let n = {
            let mut seen = self.refreshes.lock().expect("lock");
            seen.push(refresh_token.to_owned());
            seen.len()
        };
        let mut lose = self.lose_answers.lock().expect("lock");
        if *lose > 0 {
            *lose -= 1;
            return Err(ApiError::Unreachable {
                url: "v1/auth/refresh".into(),
                reason: "timed out".into(),
                maybe_delivered: true,
            });
        }
        Ok(TokenResponse {
            access_token: format!("at_{n}"),
            refresh_token: format!("tsr_{n}"),
            expires_in: self.expires_in.as_secs(),
            user: user(),
        })
    }

    async fn history(
        &self,
        _access_token: &str,
        stream: &StreamName,
        after: u64,
        limit: u32,
        unread_only: bool,
    ) -> Result<HistoryResponse, ApiError> {
        let mut history = self.history.lock().expect("lock");
        history.requests.push((after, unread_only));
        if history
            .fail_after
            .is_some_and(|n| history.requests.len() > n)
        {
            return Err(ApiError::Unreachable {
                url: "v1/history".into(),
                reason: "connection reset".into(),
                maybe_delivered: false,
            });
        }
        let notifications: Vec<HistoryItem> = history
            .items
            .iter()
            .filter(|item| item.offset > after && !(unread_only && item.read))
            .take(limit as usize)
            .cloned()
            .collect();
        let head = history.items.last().map_or(0, |item| item.offset);
        let next_after = notifications
            .last()
            .filter(|_| notifications.len() == limit as usize)
            .map(|item| item.offset)
            .filter(|last| *last < head);
        Ok(HistoryResponse {
            stream: stream.clone(),
            epoch: "e1".into(),
            first: 1,
            head,
            notifications,
            next_after,
        })
    }
}
