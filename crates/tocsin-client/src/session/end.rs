//! How a session ends, and what the close code of the gateway means for what follows.

use std::time::Duration;

use crate::backoff::{Reconnect, StopReason, decide};

/// How a session ended.
#[derive(Debug)]
pub enum SessionEnd {
    /// Reconnect after the backoff delay (at least `hint`).
    Reconnect {
        /// A minimum delay asked by the server.
        hint: Option<Duration>,
        /// Why, for the user.
        reason: String,
    },
    /// Reconnect at once: the machine woke up or changed network, so the old link is
    /// dead and waiting would only delay what the user must see. Never used for
    /// anything the gateway did (a hole, a divergence): those wait the backoff delay.
    ReconnectNow,
    /// Get a new access token, then reconnect.
    RefreshThenReconnect,
    /// Do not reconnect.
    Stop(Stop),
    /// The app asked the engine to stop.
    Shutdown,
}

/// Why the engine stops reconnecting.
#[derive(Debug)]
pub enum Stop {
    /// Credentials refused: sign in again.
    SignedOut(String),
    /// Anything else that retrying will not fix.
    Other(String),
}

impl SessionEnd {
    /// The link failed: reconnect after the backoff delay.
    pub(crate) fn lost(reason: impl Into<String>) -> SessionEnd {
        SessionEnd::Reconnect {
            hint: None,
            reason: reason.into(),
        }
    }

    /// The local database failed: retrying will not fix it.
    pub(crate) fn local_failure(err: anyhow::Error) -> SessionEnd {
        SessionEnd::Stop(Stop::Other(format!("the local database failed: {err}")))
    }

    /// Maps a close (code and reason) to what the engine does next. 4100 tries
    /// exactly one refresh (the gateway's key may have changed); a second 4100 in a
    /// row means the user must sign in again (`first_invalid_token` counts them).
    pub(crate) fn closed(
        code: Option<u16>,
        reason: &str,
        first_invalid_token: impl FnOnce() -> bool,
    ) -> SessionEnd {
        let described = describe(code, reason);
        match decide(code, reason) {
            Reconnect::After(hint) => SessionEnd::Reconnect {
                hint,
                reason: described,
            },
            Reconnect::RefreshThenReconnect => SessionEnd::RefreshThenReconnect,
            Reconnect::Stop(StopReason::InvalidToken) if first_invalid_token() => {
                SessionEnd::RefreshThenReconnect
            }
            Reconnect::Stop(StopReason::InvalidToken) => {
                SessionEnd::Stop(Stop::SignedOut(described))
            }
            Reconnect::Stop(_) => SessionEnd::Stop(Stop::Other(described)),
        }
    }
}

fn describe(code: Option<u16>, reason: &str) -> String {
    match code {
        Some(code) if reason.is_empty() => format!("closed by the gateway ({code})"),
        Some(code) => format!("closed by the gateway ({code}): {reason}"),
        None => reason.to_owned(),
    }
}
