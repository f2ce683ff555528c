//! Opening a session: the WebSocket upgrade, `hello` with the stored positions, and
//! the gateway's `welcome` (or its refusal, read from the close that follows).

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tocsin_protocol::frames::{ClientFrame, ServerFrame, Welcome, client_features};
use tocsin_protocol::{Position, StreamName};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::end::{SessionEnd, Stop};
use crate::engine::Engine;
use crate::gateway::{ConnectError, FrameSocket, Gateway};

/// How long the gateway may take to answer `hello`.
const WELCOME_TIMEOUT: Duration = Duration::from_secs(15);

/// A session that got its `welcome`.
pub(super) struct Opened<S> {
    pub socket: S,
    pub welcome: Welcome,
    /// The positions `hello` carried.
    pub positions: BTreeMap<StreamName, Position>,
}

/// Connects with the access token, says `hello` and reads `welcome`.
pub(super) async fn open<G: Gateway>(
    engine: &mut Engine<G>,
) -> Result<Opened<G::Socket>, SessionEnd> {
    let Some(token) = engine.tokens.access().map(str::to_owned) else {
        return Err(SessionEnd::RefreshThenReconnect);
    };
    let (gateway, mut desk) = engine.split();
    let mut socket = desk
        .serve_until(gateway.connect(&token))
        .await?
        .map_err(|err| match err {
            ConnectError::Unauthorized => SessionEnd::RefreshThenReconnect,
            ConnectError::Refused(reason) => SessionEnd::Stop(Stop::Other(reason)),
            ConnectError::Failed(reason) => SessionEnd::lost(reason),
        })?;
    let positions = engine
        .with_store(|store| Ok(store.positions()?))
        .await
        .map_err(SessionEnd::local_failure)?;
    let hello = ClientFrame::Hello {
        positions: positions.clone(),
        client: Some(engine.config.client_name.clone()),
        features: vec![client_features::RETRACT.to_owned()],
    };
    send(&mut socket, &hello).await?;
    let welcome = engine
        .split()
        .1
        .serve_until(read_welcome(&mut socket))
        .await?;
    match welcome {
        Ok(welcome) => Ok(Opened {
            socket,
            welcome,
            positions,
        }),
        Err(refused) => Err(SessionEnd::closed(refused.code, &refused.reason, || {
            engine.tokens.first_invalid_token()
        })),
    }
}

/// Sends one frame; a failure means the link is gone.
pub(super) async fn send<S: FrameSocket>(
    socket: &mut S,
    frame: &ClientFrame,
) -> Result<(), SessionEnd> {
    let text = serde_json::to_string(frame)
        .map_err(|err| SessionEnd::Stop(Stop::Other(format!("cannot encode a frame: {err}"))))?;
    socket
        .send(Message::Text(text.into()))
        .await
        .map_err(|err| SessionEnd::lost(format!("connection lost: {err}")))
}

/// How the gateway ended a session before `welcome`.
struct Refused {
    code: Option<u16>,
    reason: String,
}

impl Refused {
    fn lost(reason: impl Into<String>) -> Refused {
        Refused {
            code: None,
            reason: reason.into(),
        }
    }
}

async fn read_welcome<S: FrameSocket>(socket: &mut S) -> Result<Welcome, Refused> {
    let deadline = Instant::now() + WELCOME_TIMEOUT;
    loop {
        let message = match tokio::time::timeout_at(deadline, socket.next()).await {
            Ok(Some(Ok(message))) => message,
            Ok(Some(Err(err))) => return Err(Refused::lost(format!("connection lost: {err}"))),
            Ok(None) => return Err(Refused::lost("connection lost before welcome")),
            Err(_) => return Err(Refused::lost("no welcome from the gateway")),
        };
        match message {
            Message::Text(text) => match serde_json::from_str::<ServerFrame>(text.as_str()) {
                Ok(ServerFrame::Welcome(welcome)) => return Ok(welcome),
                Ok(ServerFrame::Error { error }) => {
                    // The close follows; read it to decide.
                    let code = match socket.next().await {
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
