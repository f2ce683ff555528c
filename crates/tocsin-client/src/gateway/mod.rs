//! The gateway as the engine sees it: open a WebSocket, renew tokens, read history.
//!
//! The engine and its sessions are generic over [`Gateway`] so that the same code
//! runs against the real gateway ([`HttpGateway`]: tokio-tungstenite and the HTTP
//! API) and, in unit tests, against channels under `tokio::time::pause()`, where
//! heartbeats, backoff, token renewal and resume detection are checked to the
//! millisecond instead of raced against a loaded machine.

use std::future::Future;
use std::time::Duration;

use futures_util::{Sink, Stream};
use tocsin_protocol::http::{HistoryResponse, TokenResponse};
use tocsin_protocol::{SUBPROTOCOL, StreamName};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;
use tokio_tungstenite::tungstenite::http::HeaderValue;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_tungstenite::tungstenite::{Error as WsError, Message};

use crate::api::{ApiClient, ApiError, CertProblem, ServerUrl};

/// How long connecting (TCP + TLS + upgrade) may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
/// The largest frame accepted from the gateway (its own limit is far lower).
const MAX_MESSAGE: usize = 1024 * 1024;

/// A WebSocket as a session uses it: a sink and a stream of messages.
pub trait FrameSocket:
    Sink<Message, Error = WsError> + Stream<Item = Result<Message, WsError>> + Unpin + Send
{
}

impl<T> FrameSocket for T where
    T: Sink<Message, Error = WsError> + Stream<Item = Result<Message, WsError>> + Unpin + Send
{
}

/// Why no socket was opened.
#[derive(Debug)]
pub enum ConnectError {
    /// HTTP 401 at the upgrade: the access token is no longer good.
    Unauthorized,
    /// Another 4xx at the upgrade: retrying will not help.
    Refused(String),
    /// The network or the gateway failed: retry later.
    Failed(String),
}

/// What the engine needs of a gateway.
pub trait Gateway: Send + Sync + 'static {
    /// The socket a connection gives.
    type Socket: FrameSocket;

    /// Opens the WebSocket with an access token.
    fn connect(
        &self,
        access_token: &str,
    ) -> impl Future<Output = Result<Self::Socket, ConnectError>> + Send;

    /// Trades a refresh token for a new pair.
    fn refresh(
        &self,
        refresh_token: &str,
    ) -> impl Future<Output = Result<TokenResponse, ApiError>> + Send;

    /// One page of a stream's history after `after` (only unread items when
    /// `unread_only`).
    fn history(
        &self,
        access_token: &str,
        stream: &StreamName,
        after: u64,
        limit: u32,
        unread_only: bool,
    ) -> impl Future<Output = Result<HistoryResponse, ApiError>> + Send;
}

/// The real gateway: WebSocket over tokio-tungstenite, HTTP over reqwest.
pub struct HttpGateway {
    api: ApiClient,
    server: ServerUrl,
}

impl HttpGateway {
    /// The gateway at `server`.
    pub fn new(server: ServerUrl) -> HttpGateway {
        HttpGateway {
            api: ApiClient::new(server.clone()),
            server,
        }
    }
}

/// The socket [`HttpGateway`] opens.
pub type WebSocket =
    tokio_tungstenite::WebSocketStream<tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>>;

impl Gateway for HttpGateway {
    type Socket = WebSocket;

    async fn connect(&self, access_token: &str) -> Result<WebSocket, ConnectError> {
        let mut request = self
            .server
            .websocket_url()
            .as_str()
            .into_client_request()
            .map_err(|err| ConnectError::Refused(format!("bad gateway URL: {err}")))?;
        let headers = request.headers_mut();
        headers.insert(
            "Sec-WebSocket-Protocol",
            HeaderValue::from_static(SUBPROTOCOL),
        );
        if let Ok(value) = HeaderValue::from_str(&format!("Bearer {access_token}")) {
            headers.insert("Authorization", value);
        }
        let config = WebSocketConfig::default()
            .read_buffer_size(16 * 1024)
            .max_message_size(Some(MAX_MESSAGE))
            .max_frame_size(Some(MAX_MESSAGE));
        // A pinned gateway gets the verifier that accepts its one certificate; else
        // tungstenite's usual roots.
        let connector = self
            .server
            .pinned_tls()
            .map(tokio_tungstenite::Connector::Rustls);
        let connecting = tokio_tungstenite::connect_async_tls_with_config(
            request,
            Some(config),
            true,
            connector,
        );
        match tokio::time::timeout(CONNECT_TIMEOUT, connecting).await {
            Ok(Ok((socket, _))) => Ok(socket),
            Ok(Err(WsError::Http(response))) if response.status().as_u16() == 401 => {
                Err(ConnectError::Unauthorized)
            }
            Ok(Err(WsError::Http(response))) if response.status().is_client_error() => {
                let body = response
                    .body()
                    .as_deref()
                    .map(String::from_utf8_lossy)
                    .unwrap_or_default()
                    .into_owned();
                Err(ConnectError::Refused(format!(
                    "the gateway refused the connection ({}): {body}",
                    response.status()
                )))
            }
            Ok(Err(err)) => Err(failed(&err)),
            Err(_) => Err(ConnectError::Failed("connecting timed out".into())),
        }
    }

    async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, ApiError> {
        self.api.refresh(refresh_token).await
    }

    async fn history(
        &self,
        access_token: &str,
        stream: &StreamName,
        after: u64,
        limit: u32,
        unread_only: bool,
    ) -> Result<HistoryResponse, ApiError> {
        self.api
            .history(access_token, stream, after, limit, unread_only)
            .await
    }
}

/// A failed connection; a certificate problem is not retried (it needs the user:
/// a changed certificate must be confirmed anew), anything else is.
fn failed(err: &WsError) -> ConnectError {
    match crate::api::cert_problem(err) {
        Some(CertProblem::Changed(changed)) => ConnectError::Refused(changed.to_string()),
        Some(CertProblem::Refused(reason)) => ConnectError::Refused(format!(
            "the gateway's certificate is not trusted ({reason}): sign in again to \
             compare its fingerprint with the one your IT person gave you"
        )),
        None => ConnectError::Failed(format!("cannot connect: {err}")),
    }
}

#[cfg(test)]
pub(crate) mod fake;
