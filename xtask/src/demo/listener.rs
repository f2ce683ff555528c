//! The demo's terminal client: signs in, opens the WebSocket, prints what arrives.
//!
//! It is deliberately small (no reconnect, no stored positions): the real client
//! engine is `tocsin-client`. It does keep its access token fresh, so a demo left
//! running for an afternoon is not cut off when the first token expires.

use std::collections::BTreeMap;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use futures_util::{SinkExt, StreamExt};
use tocsin_protocol::frames::Welcome;
use tocsin_protocol::http::{LoginRequest, RefreshRequest, TokenResponse};
use tocsin_protocol::{ClientFrame, CloseCode, SUBPROTOCOL, ServerFrame, WS_PATH};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame;
use tokio_tungstenite::tungstenite::{Bytes, Message};
use tokio_tungstenite::{MaybeTlsStream, WebSocketStream};

use super::display;
use super::http::{describe_error, send_json};

/// The largest message the demo accepts; the gateway's default limit is 64 KiB.
const MAX_MESSAGE_BYTES: usize = 1024 * 1024;
/// How long the gateway may take to answer `hello` with `welcome`.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(10);
/// How long before the access token expires it is refreshed.
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// The WebSocket over plain TCP (the demo's gateway listens on loopback).
type Socket = WebSocketStream<MaybeTlsStream<TcpStream>>;

/// What the listener reports to the demo besides printing.
#[derive(Debug)]
pub enum ListenerEvent {
    /// A notification arrived, with its id.
    Notification(String),
}

/// A signed-in, welcomed connection.
pub struct Listener {
    /// The open socket.
    socket: Socket,
    /// For refreshing the access token over HTTP.
    http: reqwest::Client,
    /// The gateway's base URL.
    base_url: String,
    /// The current refresh token (single use: each refresh returns the next one).
    refresh_token: String,
    /// When to refresh the access token next.
    refresh_at: Instant,
}

/// `POST /v1/auth/login`.
pub async fn login(
    http: &reqwest::Client,
    base_url: &str,
    email: &str,
    password: &str,
) -> Result<TokenResponse> {
    let request = LoginRequest {
        email: email.into(),
        password: password.into(),
        device_name: "cargo xtask demo".into(),
    };
    let url = format!("{base_url}/v1/auth/login");
    send_json(http.post(url).json(&request), "POST /v1/auth/login").await
}

impl Listener {
    /// Opens `/v1/ws` with the access token, sends `hello` without positions (live
    /// from now) and waits for `welcome`.
    pub async fn connect(
        http: reqwest::Client,
        base_url: &str,
        tokens: TokenResponse,
    ) -> Result<(Listener, Welcome)> {
        let ws_url = websocket_url(base_url)?;
        let mut request = ws_url.as_str().into_client_request()?;
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        headers.insert(
            "Authorization",
            HeaderValue::from_str(&format!("Bearer {}", tokens.access_token))?,
        );
        // Explicit limits rather than tungstenite's defaults (see STYLE.md).
        let config = WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .write_buffer_size(16 * 1024)
            .max_message_size(Some(MAX_MESSAGE_BYTES))
            .max_frame_size(Some(MAX_MESSAGE_BYTES));
        let (mut socket, _response) =
            tokio_tungstenite::connect_async_with_config(request, Some(config), false)
                .await
                .with_context(|| format!("opening {ws_url}"))?;
        let hello = ClientFrame::Hello {
            positions: BTreeMap::new(),
            client: Some(concat!("cargo-xtask-demo/", env!("CARGO_PKG_VERSION")).into()),
            // Retractions come as `retracted` frames (printed), not as the neutral notice.
            features: vec![tocsin_protocol::frames::client_features::RETRACT.into()],
        };
        socket
            .send(Message::text(serde_json::to_string(&hello)?))
            .await?;
        let welcome = tokio::time::timeout(WELCOME_TIMEOUT, next_frame(&mut socket))
            .await
            .context("no welcome in time")??;
        let ServerFrame::Welcome(welcome) = welcome else {
            bail!("expected welcome, got {welcome:?}");
        };
        let listener = Listener {
            socket,
            http,
            base_url: base_url.to_owned(),
            refresh_token: tokens.refresh_token,
            refresh_at: refresh_deadline(tokens.expires_in),
        };
        Ok((listener, welcome))
    }

    /// Prints every frame until `stop` fires (then closes the socket politely) or the
    /// connection ends (an error saying why). Each notification's id goes to `events`.
    pub async fn run(
        mut self,
        mut stop: oneshot::Receiver<()>,
        events: mpsc::UnboundedSender<ListenerEvent>,
    ) -> Result<()> {
        let mut refreshes = 0_u64;
        loop {
            tokio::select! {
                _ = &mut stop => {
                    self.socket.close(None).await.ok();
                    return Ok(());
                }
                () = tokio::time::sleep_until(self.refresh_at) => {
                    refreshes += 1;
                    self.refresh(format!("refresh-{refreshes}")).await?;
                }
                frame = next_frame(&mut self.socket) => {
                    if let ServerFrame::Notification { notification, .. } = &frame? {
                        println!("{}", display::notification_line(notification));
                        // The demo may have stopped counting; printing is what matters.
                        let _ = events.send(ListenerEvent::Notification(notification.id.clone()));
                    }
                }
            }
        }
    }

    /// Gets a new token pair over HTTP and hands the access token to the connection.
    async fn refresh(&mut self, action_id: String) -> Result<()> {
        let request = RefreshRequest {
            refresh_token: self.refresh_token.clone(),
        };
        let url = format!("{}/v1/auth/refresh", self.base_url);
        let tokens: TokenResponse =
            send_json(self.http.post(url).json(&request), "POST /v1/auth/refresh").await?;
        let frame = ClientFrame::Refresh {
            id: action_id,
            access_token: tokens.access_token,
        };
        self.socket
            .send(Message::text(serde_json::to_string(&frame)?))
            .await?;
        self.refresh_token = tokens.refresh_token;
        self.refresh_at = refresh_deadline(tokens.expires_in);
        Ok(())
    }
}

/// Reads the next gateway frame, printing the ones that are not notifications, and
/// turns the end of the connection into an error saying why.
async fn next_frame(socket: &mut Socket) -> Result<ServerFrame> {
    loop {
        let message = socket
            .next()
            .await
            .context("the gateway ended the connection without a close frame")??;
        let text = match message {
            Message::Text(text) => text,
            Message::Close(frame) => {
                bail!("the gateway closed the connection: {}", close_reason(frame))
            }
            Message::Binary(bytes) => {
                bail!("unexpected binary frame of {} bytes", Bytes::len(&bytes))
            }
            // tungstenite answers pings itself; nothing else needs attention.
            Message::Ping(_) | Message::Pong(_) | Message::Frame(_) => continue,
        };
        let frame: ServerFrame = serde_json::from_str(text.as_str()).with_context(|| {
            format!("the gateway sent a frame the protocol does not know: {text}")
        })?;
        match &frame {
            ServerFrame::Notification { .. } | ServerFrame::Welcome(_) => {}
            ServerFrame::CaughtUp { .. } => println!("← caught up: live from now"),
            ServerFrame::Retracted { retractions } => {
                for retraction in retractions {
                    println!("← retracted by the firm: {}", retraction.notification_id);
                }
            }
            ServerFrame::Result {
                id,
                ok: false,
                error,
                ..
            } => {
                println!("← action {id} failed: {}", describe_error(error.as_ref()));
            }
            ServerFrame::Error { error } => println!("← error: {}", describe_error(Some(error))),
            other => println!("← {}", serde_json::to_string(other)?),
        }
        return Ok(frame);
    }
}

/// A close frame as `4000 going_away (reason)`.
fn close_reason(frame: Option<CloseFrame>) -> String {
    let Some(frame) = frame else {
        return "no close code".into();
    };
    let code = u16::from(frame.code);
    let name = CloseCode::from_code(code).map_or("", CloseCode::name);
    format!("{code} {name} {}", frame.reason.as_str())
        .trim_end()
        .to_owned()
}

/// `http://host:port` → `ws://host:port/v1/ws` (and https → wss).
fn websocket_url(base_url: &str) -> Result<String> {
    if let Some(rest) = base_url.strip_prefix("http://") {
        return Ok(format!("ws://{rest}{WS_PATH}"));
    }
    if let Some(rest) = base_url.strip_prefix("https://") {
        return Ok(format!("wss://{rest}{WS_PATH}"));
    }
    bail!("the gateway's URL is neither http nor https: {base_url}");
}

/// When to refresh a token that expires in `expires_in_secs`.
fn refresh_deadline(expires_in_secs: u64) -> Instant {
    let lifetime = Duration::from_secs(expires_in_secs);
    let wait = lifetime
        .checked_sub(REFRESH_MARGIN)
        .unwrap_or(lifetime / 2)
        .max(Duration::from_secs(1));
    Instant::now() + wait
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn websocket_url_follows_the_http_scheme() {
        let url = websocket_url("http://127.0.0.1:7850").expect("http");
        assert_eq!(url, "ws://127.0.0.1:7850/v1/ws");
        let url = websocket_url("https://tocsin.example").expect("https");
        assert_eq!(url, "wss://tocsin.example/v1/ws");
        assert!(websocket_url("ftp://x").is_err());
    }
}
