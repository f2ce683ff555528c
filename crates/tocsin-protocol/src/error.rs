//! Stable error codes, shared by HTTP error bodies and WebSocket action results.

use serde::{Deserialize, Serialize};

/// A machine-readable error code. New codes may be added; clients treat an unknown
/// code like `internal`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed or a field is invalid (HTTP 400/422).
    InvalidRequest,
    /// No or bad credentials (HTTP 401).
    Unauthorized,
    /// Authenticated but not allowed, e.g. another firm's ids (HTTP 403).
    Forbidden,
    /// The thing does not exist, or is not visible to the caller (HTTP 404).
    NotFound,
    /// The state forbids it, e.g. a proposal already answered (HTTP 409).
    Conflict,
    /// The body or message is too large (HTTP 413).
    TooLarge,
    /// Slow down; `retry_after_ms` says for how long (HTTP 429).
    RateLimited,
    /// The gateway cannot serve now, e.g. its disk is full (HTTP 503).
    Unavailable,
    /// Another process (an admin command, a backup tool) holds the database's write
    /// lock; `retry_after_ms` says when to try again (HTTP 503).
    StoreBusy,
    /// An unexpected error; the gateway logged the details (HTTP 500).
    Internal,
    /// The gateway does not know this action (it is older than the client): not
    /// applied, and sending it again will not help until the gateway is upgraded.
    Unsupported,
    /// A code this build does not know (sent by a newer gateway): handled like
    /// `internal`, instead of failing to read the whole error or frame.
    /// Not in TypeScript: the gateway never sends it (the SDK handles unknown codes).
    #[serde(other)]
    #[cfg_attr(feature = "ts", ts(skip))]
    Unknown,
}

impl ErrorCode {
    /// The code as it is on the wire (`rate_limited`), e.g. for a metric's label.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::InvalidRequest => "invalid_request",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Conflict => "conflict",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::Unavailable => "unavailable",
            ErrorCode::StoreBusy => "store_busy",
            ErrorCode::Internal => "internal",
            ErrorCode::Unsupported => "unsupported",
            ErrorCode::Unknown => "unknown",
        }
    }
}

/// The body of every HTTP error and the `error` of a failed action result.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ErrorBody {
    /// The stable code.
    pub code: ErrorCode,
    /// What was wrong and what to do, for a human.
    pub message: String,
    /// With `rate_limited`: how long to wait before trying again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry_after_ms: Option<u64>,
}

impl ErrorBody {
    /// An error with a code and a message.
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        ErrorBody {
            code,
            message: message.into(),
            retry_after_ms: None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::ErrorCode;

    /// Metrics label errors with `as_str`: it must be the wire name, or a dashboard's
    /// `code="rate_limited"` would match nothing.
    #[test]
    fn as_str_is_the_wire_name() {
        use ErrorCode::*;
        for code in [
            InvalidRequest,
            Unauthorized,
            Forbidden,
            NotFound,
            Conflict,
            TooLarge,
            RateLimited,
            Unavailable,
            StoreBusy,
            Internal,
            Unsupported,
            Unknown,
        ] {
            let wire = serde_json::to_string(&code).expect("serialises");
            assert_eq!(wire, format!("\"{}\"", code.as_str()));
        }
    }
}
