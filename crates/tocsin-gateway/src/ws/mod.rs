//! The WebSocket endpoint `/v1/ws`: checks at the upgrade (Origin, subprotocol,
//! bearer token, buffer sizes), then one task per connection ([`session`]).

mod actions;
mod delivery;
mod membership;
mod session;
mod socket;

pub use socket::encode as encode_frame;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::header::{ORIGIN, SEC_WEBSOCKET_PROTOCOL};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use tocsin_protocol::{ErrorBody, ErrorCode, SUBPROTOCOL};

use crate::access::resolve_user;
use crate::api::extract::bearer;
use crate::error::AppError;
use crate::state::AppState;

/// Bytes tungstenite reads from the socket at a time, allocated up front for every
/// connection. Small on purpose: client frames are small and rare (an action is ~150
/// bytes, a `hello` up to a few hundred), and an idle connection's whole budget is
/// ~5 KB. A larger frame still arrives, in several reads, and the buffer then keeps
/// its size (tungstenite's default is 128 KiB).
const READ_BUFFER_BYTES: usize = 256;
/// Outgoing bytes gathered before a write; frames fed in a burst share a syscall.
const WRITE_BUFFER_BYTES: usize = 16 * 1024;
/// The most outgoing bytes buffered for a client that does not read.
const MAX_WRITE_BUFFER_BYTES: usize = 1024 * 1024;

/// `GET /v1/ws`: upgrades to a Tocsin v1 session.
#[utoipa::path(
    get,
    path = "/v1/ws",
    tag = "read",
    description = "The WebSocket endpoint (docs/PROTOCOL.md): offer the subprotocol \
        `tocsin.v1`; the access token goes in `Authorization: Bearer` or in the first \
        frame (`hello`).",
    security((), ("user_token" = [])),
    responses(
        (status = 101, description = "Switching to the WebSocket protocol"),
        (status = 426, description = "Not a WebSocket upgrade request", body = ErrorBody),
    )
)]
pub async fn upgrade(
    State(state): State<AppState>,
    headers: HeaderMap,
    upgrade: Result<WebSocketUpgrade, WebSocketUpgradeRejection>,
) -> Result<Response, AppError> {
    let upgrade = upgrade?;
    if let Some(origin) = headers.get(ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !state.config.websocket.allows_origin(origin) {
            tracing::warn!(origin, "WebSocket refused: origin not allowed");
            return Err(AppError::forbidden(format!(
                "origin '{origin}' is not allowed; add it to websocket.allowed_origins"
            )));
        }
    }
    let offered = headers
        .get_all(SEC_WEBSOCKET_PROTOCOL)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .any(|protocol| protocol.trim() == SUBPROTOCOL);
    if !offered {
        return Err(AppError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            format!("offer the subprotocol with `Sec-WebSocket-Protocol: {SUBPROTOCOL}`"),
        ));
    }
    let signed_in = match bearer(&headers)? {
        Some(token) => {
            let identity = state.auth.verify(token).await?;
            let user = resolve_user(state.store.as_ref(), &identity).await?;
            Some((identity, user))
        }
        None => None,
    };
    let limits = &state.config.websocket;
    let response = upgrade
        .protocols([SUBPROTOCOL])
        .read_buffer_size(READ_BUFFER_BYTES)
        .write_buffer_size(WRITE_BUFFER_BYTES)
        .max_write_buffer_size(MAX_WRITE_BUFFER_BYTES)
        .max_message_size(limits.max_message_bytes)
        .max_frame_size(limits.max_message_bytes)
        .on_failed_upgrade(|err| tracing::info!(error = %err, "WebSocket upgrade failed"))
        .on_upgrade(move |socket| {
            let sessions = state.sessions.clone();
            sessions.track_future(session::run(state, socket, signed_in))
        });
    Ok(response.into_response())
}
