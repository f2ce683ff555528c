//! Who a verified token speaks for, and why a token was refused.
//!
//! Both kinds of bearer token (the gateway's own access tokens and an external app's
//! JWTs) verify to the same [`Identity`], so the rest of the gateway never cares which
//! one a client presented.

use chrono::{DateTime, Utc};

/// The caller a token was verified for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Stable user id: the `sub` of an own token, or the configured user claim of an
    /// external one. Streams and sessions are keyed by it.
    pub user_id: String,
    /// Tenant slug: every read and write is scoped to it, so it is never optional.
    pub tenant: String,
    /// Email, when the token carries one; shown to operators, never used as a key.
    pub email: Option<String>,
    /// Role name used for authorisation decisions.
    pub role: String,
    /// Device session the token was issued for (own tokens only), so that revoking a
    /// session can also refuse its still-unexpired access tokens.
    pub session_id: Option<String>,
    /// When the token stops being valid; a WebSocket session ends or asks for a new
    /// token at that time.
    pub expires_at: DateTime<Utc>,
    /// True when an external identity provider issued the token: such users have no
    /// password or refresh token at the gateway.
    pub external: bool,
}

/// Why a bearer token was refused. The messages are meant for the client's developer.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TokenError {
    /// The token was genuine but its `exp` has passed: clients refresh on this variant
    /// and only on this one.
    #[error("the token has expired; obtain a new one (refresh) and retry")]
    Expired,
    /// The token will never be accepted; the text says what was wrong.
    #[error("the token is invalid: {0}; do not retry it, obtain a new token")]
    Invalid(String),
    /// The token is longer than [`MAX_TOKEN_BYTES`](super::MAX_TOKEN_BYTES); refused
    /// before parsing so oversized input costs nothing.
    #[error(
        "the token is larger than {} bytes; send the token itself, nothing else",
        super::MAX_TOKEN_BYTES
    )]
    TooLarge,
}

impl TokenError {
    /// Shorthand for [`TokenError::Invalid`] from anything printable.
    pub(crate) fn invalid(reason: impl Into<String>) -> Self {
        Self::Invalid(reason.into())
    }
}
