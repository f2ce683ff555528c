//! The in-memory peer: the baseline the unicast scenario measures Tocsin against.
//!
//! What the system Tocsin replaces does per publish, and nothing more: an HTTP
//! endpoint that checks the key, parses the same `PublishRequest` JSON, builds the
//! same `notification` frame and writes it to the user's socket — no store, no fsync,
//! no replay, no limits. It speaks just enough of the protocol for the bench's own
//! client ([`crate::client::Session`]): a verified bearer token on the upgrade,
//! `welcome` and `caught_up` after `hello`, then live frames with consecutive offsets.
//!
//! Built with the gateway's own stack (axum, hyper, tungstenite, serde_json) so that
//! the ratio measures what durability and the gateway's checks cost, not a difference
//! of libraries. It runs as a hidden subcommand of this binary ([`peer_main`]),
//! pinned to the gateway's core like the gateway, in the same run.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use tocsin_protocol::frames::{Limits, ServerFrame, StreamStatus, Welcome};
use tocsin_protocol::http::{PublishRequest, PublishResponse, UserInfo};
use tocsin_protocol::{Notification, Position, StreamName};
use tokio::io::AsyncBufReadExt;
use tokio::sync::mpsc;

/// The hidden subcommand: `tocsin-bench mem-peer <publisher key> <token secret>
/// <issuer> <audience>`; prints `listening <port>` and serves until stdin closes.
pub const PEER_COMMAND: &str = "mem-peer";

/// Every stream's epoch: the peer never loses a stream's history (it has none).
const EPOCH: &str = "mem";

/// Who may publish and how tokens are checked.
struct Peer {
    bearer: String,
    decoding: jsonwebtoken::DecodingKey,
    validation: jsonwebtoken::Validation,
    users: Mutex<HashMap<String, User>>,
}

/// One user's live sockets and the offset of their stream.
#[derive(Default)]
struct User {
    offset: u64,
    sockets: Vec<mpsc::UnboundedSender<String>>,
}

/// The claims the peer reads of a token.
#[derive(serde::Deserialize)]
struct Claims {
    sub: String,
    tenant: String,
}

/// The peer process (run by [`start`]).
pub fn peer_main(args: &[String]) -> Result<()> {
    let [key, secret, issuer, audience] = args else {
        bail!("mem-peer: expected <publisher key> <token secret> <issuer> <audience>");
    };
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::HS256);
    validation.set_issuer(&[issuer]);
    validation.set_audience(&[audience]);
    let peer = Arc::new(Peer {
        bearer: format!("Bearer {key}"),
        decoding: jsonwebtoken::DecodingKey::from_secret(secret.as_bytes()),
        validation,
        users: Mutex::default(),
    });
    // As the gateway's: a multi-threaded runtime, as many workers as the cores it is
    // pinned to.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("mem-peer: starting its runtime")?;
    runtime.block_on(serve(peer))
}

async fn serve(peer: Arc<Peer>) -> Result<()> {
    let app = axum::Router::new()
        .route("/v1/publish", post(publish))
        .route("/v1/ws", get(upgrade))
        .with_state(peer);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("mem-peer: binding")?;
    println!("listening {}", listener.local_addr()?.port());
    // Until the load side closes our stdin (or dies).
    let stdin_closed = async {
        let mut lines = tokio::io::BufReader::new(tokio::io::stdin()).lines();
        while let Ok(Some(_)) = lines.next_line().await {}
    };
    axum::serve(listener, app)
        .with_graceful_shutdown(stdin_closed)
        .await
        .context("mem-peer: serving")
}

/// `POST /v1/publish`: parse, frame, write to the user's sockets, answer 201.
async fn publish(State(peer): State<Arc<Peer>>, headers: HeaderMap, body: String) -> Response {
    let authorized = headers
        .get(header::AUTHORIZATION)
        .is_some_and(|value| value.as_bytes() == peer.bearer.as_bytes());
    if !authorized {
        return StatusCode::UNAUTHORIZED.into_response();
    }
    let request: PublishRequest = match serde_json::from_str(&body) {
        Ok(request) => request,
        Err(error) => return (StatusCode::BAD_REQUEST, error.to_string()).into_response(),
    };
    let Ok(stream) = request.to.parse::<StreamName>() else {
        return (StatusCode::BAD_REQUEST, "bad target").into_response();
    };
    let StreamName::User(user) = &stream else {
        return (StatusCode::BAD_REQUEST, "the peer only has user streams").into_response();
    };
    let id = uuid::Uuid::now_v7().to_string();
    let urgency = request
        .urgency
        .unwrap_or_else(|| request.data.default_urgency());
    let notification = Notification {
        id: id.clone(),
        data: request.data,
        created_at: chrono::Utc::now(),
        urgency,
        title: request.title,
        body: request.body,
        url: request.url,
    };
    let offset = {
        let mut users = peer.users.lock().unwrap_or_else(|p| p.into_inner());
        let entry = users.entry(user.clone()).or_default();
        entry.offset += 1;
        let frame = ServerFrame::Notification {
            stream: stream.clone(),
            epoch: EPOCH.to_owned(),
            offset: entry.offset,
            replay: false,
            notification,
        };
        let text = serde_json::to_string(&frame).unwrap_or_default();
        entry
            .sockets
            .retain(|socket| socket.send(text.clone()).is_ok());
        entry.offset
    };
    let answer = PublishResponse {
        id,
        stream,
        epoch: EPOCH.to_owned(),
        offset,
        duplicate: false,
        deliver_at: None,
    };
    (StatusCode::CREATED, axum::Json(answer)).into_response()
}

/// `GET /v1/ws`: a verified token, then the socket.
async fn upgrade(
    State(peer): State<Arc<Peer>>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Response {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.strip_prefix("Bearer "));
    let claims = token.and_then(|token| {
        jsonwebtoken::decode::<Claims>(token, &peer.decoding, &peer.validation).ok()
    });
    let Some(claims) = claims else {
        return StatusCode::UNAUTHORIZED.into_response();
    };
    // The gateway's buffer sizes (`tocsin-gateway/src/ws/mod.rs`): tungstenite's default
    // 128 KiB read buffer is zeroed on every read, which made the peer spend ~3 % of
    // its core in memset — a handicap the gateway does not have.
    ws.protocols(["tocsin.v1"])
        .read_buffer_size(256)
        .write_buffer_size(16 * 1024)
        .max_write_buffer_size(1024 * 1024)
        .on_upgrade(move |socket| session(peer, claims.claims, socket))
}

/// One connection: `hello` → `welcome` + `caught_up`, then live frames.
async fn session(peer: Arc<Peer>, claims: Claims, mut socket: WebSocket) {
    // The client speaks first; its positions are not needed (nothing is replayed).
    if !matches!(socket.recv().await, Some(Ok(Message::Text(_)))) {
        return;
    }
    let (sender, mut frames) = mpsc::unbounded_channel();
    let head = {
        let mut users = peer.users.lock().unwrap_or_else(|p| p.into_inner());
        let user = users.entry(claims.sub.clone()).or_default();
        user.sockets.push(sender);
        user.offset
    };
    for frame in opening(&claims, head) {
        let text = serde_json::to_string(&frame).unwrap_or_default();
        if socket.send(Message::Text(text.into())).await.is_err() {
            return;
        }
    }
    loop {
        tokio::select! {
            frame = frames.recv() => {
                let Some(text) = frame else { return };
                if socket.send(Message::Text(text.into())).await.is_err() {
                    return;
                }
            }
            // Pings are answered by tungstenite while reading; a close ends it.
            message = socket.recv() => {
                if !matches!(message, Some(Ok(_))) {
                    return;
                }
            }
        }
    }
}

/// `welcome` and `caught_up` for a user whose stream stands at `head`.
fn opening(claims: &Claims, head: u64) -> [ServerFrame; 2] {
    let stream = StreamName::User(claims.sub.clone());
    let welcome = Welcome {
        connection_id: uuid::Uuid::new_v4().to_string(),
        user: UserInfo {
            id: claims.sub.clone(),
            email: format!("{}@bench.invalid", claims.sub),
            tenant: claims.tenant.clone(),
            tenant_name: None,
            role: "lawyer".to_owned(),
        },
        streams: vec![StreamStatus {
            stream: stream.clone(),
            epoch: EPOCH.to_owned(),
            head,
            first: head + 1,
            recovered: true,
        }],
        token_expires_at: chrono::Utc::now() + chrono::Duration::hours(1),
        limits: Limits {
            heartbeat_interval_ms: 30_000,
            heartbeat_timeout_ms: 10_000,
            max_message_bytes: 64 * 1024,
            actions_per_second: 10,
            actions_burst: 20,
        },
        features: Vec::new(),
    };
    let position = Position {
        epoch: EPOCH.to_owned(),
        offset: head,
    };
    [
        ServerFrame::Welcome(welcome),
        ServerFrame::CaughtUp {
            positions: [(stream, position)].into_iter().collect(),
        },
    ]
}

/// A running peer, stopped when dropped.
pub struct MemPeer {
    child: tokio::process::Child,
    /// Keeps the peer alive; closing it stops the peer.
    _stdin: tokio::process::ChildStdin,
    /// Where it listens.
    pub addr: SocketAddr,
}

impl MemPeer {
    /// Starts the peer pinned to `cpus` (unpinned without), accepting `key` for
    /// publishes and tokens signed as `minter` signs them.
    pub async fn start(
        cpus: Option<&str>,
        key: &str,
        minter: &crate::fixture::Minter,
    ) -> Result<MemPeer> {
        let (secret, issuer, audience) = minter.parts();
        let mut child = crate::rawsocket::this_binary(cpus)
            .args([PEER_COMMAND, key, secret, issuer, audience])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting the in-memory peer")?;
        let stdin = child.stdin.take().context("the peer's stdin")?;
        let stdout = child.stdout.take().context("the peer's stdout")?;
        let mut lines = tokio::io::BufReader::new(stdout).lines();
        let line = tokio::time::timeout(Duration::from_secs(30), lines.next_line())
            .await
            .context("the in-memory peer did not say where it listens in time")??
            .context("the in-memory peer exited before listening")?;
        let port: u16 = line
            .strip_prefix("listening ")
            .and_then(|port| port.trim().parse().ok())
            .with_context(|| {
                format!("the in-memory peer said '{line}', expected 'listening <port>'")
            })?;
        Ok(MemPeer {
            child,
            _stdin: stdin,
            addr: SocketAddr::from(([127, 0, 0, 1], port)),
        })
    }

    /// The peer's process id.
    pub fn pid(&self) -> Result<u32> {
        self.child.id().context("the in-memory peer has exited")
    }
}
