//! WebSocket close codes, in two ranges a client can act on without knowing each code.
//!
//! - 4000–4099: **reconnect and resume** (with backoff; some codes add a condition).
//! - 4100–4199: **do not reconnect** until the user or the configuration changes.

/// A close code the gateway sends, with its documented meaning.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[repr(u16)]
pub enum CloseCode {
    /// RFC 6455's own code: a text frame was not valid UTF-8. Fix the client; do not
    /// reconnect to send it again.
    InvalidPayload = 1007,
    /// The gateway is shutting down or draining: reconnect (to any node) and resume.
    GoingAway = 4000,
    /// The client did not read fast enough and its queue overflowed: reconnect and resume.
    SlowConsumer = 4001,
    /// The access token expired: refresh it over HTTP first, then reconnect.
    TokenExpired = 4002,
    /// Too many client events: reconnect after the delay given in the close reason
    /// (`retry_after_ms=<n>`).
    RateLimited = 4003,
    /// No frame arrived within the deadline after a ping: reconnect.
    HeartbeatTimeout = 4004,
    /// An internal error on the gateway: reconnect with backoff.
    ServerError = 4005,
    /// The token is invalid (bad signature, wrong issuer/audience, revoked): sign in again.
    InvalidToken = 4100,
    /// Authenticated, but not allowed (unknown or disabled user or firm).
    Forbidden = 4101,
    /// The client broke the protocol (malformed JSON, unknown frame type, binary frame,
    /// a frame before `hello`): fix the client.
    ProtocolViolation = 4102,
    /// A message exceeded the size limit announced in `welcome.limits`.
    MessageTooLarge = 4103,
    /// The user already has the maximum number of open connections.
    TooManyConnections = 4104,
    /// No authentication arrived within the deadline after the upgrade.
    AuthTimeout = 4105,
}

impl CloseCode {
    /// Every code, in numeric order (for docs and tests).
    pub const ALL: [CloseCode; 13] = [
        CloseCode::InvalidPayload,
        CloseCode::GoingAway,
        CloseCode::SlowConsumer,
        CloseCode::TokenExpired,
        CloseCode::RateLimited,
        CloseCode::HeartbeatTimeout,
        CloseCode::ServerError,
        CloseCode::InvalidToken,
        CloseCode::Forbidden,
        CloseCode::ProtocolViolation,
        CloseCode::MessageTooLarge,
        CloseCode::TooManyConnections,
        CloseCode::AuthTimeout,
    ];

    /// The numeric code on the wire.
    pub fn code(self) -> u16 {
        self as u16
    }

    /// Looks a numeric code up.
    pub fn from_code(code: u16) -> Option<CloseCode> {
        CloseCode::ALL.into_iter().find(|c| c.code() == code)
    }

    /// True when a client should reconnect (after backoff) and resume.
    pub fn should_reconnect(self) -> bool {
        should_reconnect(self.code())
    }

    /// The short snake_case name used in logs and close reasons.
    pub fn name(self) -> &'static str {
        match self {
            CloseCode::InvalidPayload => "invalid_payload",
            CloseCode::GoingAway => "going_away",
            CloseCode::SlowConsumer => "slow_consumer",
            CloseCode::TokenExpired => "token_expired",
            CloseCode::RateLimited => "rate_limited",
            CloseCode::HeartbeatTimeout => "heartbeat_timeout",
            CloseCode::ServerError => "server_error",
            CloseCode::InvalidToken => "invalid_token",
            CloseCode::Forbidden => "forbidden",
            CloseCode::ProtocolViolation => "protocol_violation",
            CloseCode::MessageTooLarge => "message_too_large",
            CloseCode::TooManyConnections => "too_many_connections",
            CloseCode::AuthTimeout => "auth_timeout",
        }
    }
}

/// The range rule for any numeric code, known or not: 4000–4099 and the standard
/// transient codes (1001 going away, 1006 abnormal, 1011–1014 server trouble) mean
/// reconnect; everything else means stop.
pub fn should_reconnect(code: u16) -> bool {
    matches!(code, 4000..=4099 | 1001 | 1006 | 1011..=1014)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_fall_in_their_documented_ranges() {
        for code in CloseCode::ALL {
            assert_eq!(CloseCode::from_code(code.code()), Some(code));
            let in_reconnect_range = (4000..4100).contains(&code.code());
            // 1007 is RFC 6455's, outside our ranges: a client must not resend it.
            assert_eq!(code.should_reconnect(), in_reconnect_range, "{code:?}");
        }
        assert!(!should_reconnect(4100));
        assert!(should_reconnect(4050), "unknown codes follow their range");
        assert!(!should_reconnect(1008));
    }
}
