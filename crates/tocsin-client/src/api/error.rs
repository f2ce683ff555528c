//! What can go wrong talking to the gateway's HTTP API, sorted by what the caller
//! does about it: retry later, fix the certificate, sign in again, slow down, report.

use std::time::Duration;

use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};
use serde::Deserialize;
use tocsin_protocol::{ErrorBody, ErrorCode};

/// A failed API call.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The gateway could not be reached, or did not answer in time: retry later.
    #[error("cannot reach {url}: {reason}")]
    Unreachable {
        /// The endpoint called (without its query).
        url: String,
        /// What the network layer said.
        reason: String,
        /// False when the request certainly never left (the connection failed); true
        /// when it may have arrived and been acted on (timeout, connection lost while
        /// waiting). A refresh that may have arrived may have rotated the token.
        maybe_delivered: bool,
    },
    /// The TLS handshake failed: an untrusted or invalid certificate, or a server that
    /// does not speak TLS. Retrying will not help; the user or admin must act.
    #[error("TLS failure with {url}: {reason}")]
    Tls {
        /// The endpoint called (without its query).
        url: String,
        /// What the TLS layer said.
        reason: String,
    },
    /// The certificate is not one this machine trusts (self-signed, unknown
    /// issuer): `fingerprint` is the one presented, for the user to compare with the
    /// one their IT person gave before pinning it ([`super::ServerUrl::with_pin`]).
    #[error(
        "the certificate of {url} is not trusted by this computer ({reason}); its SHA-256 \
         fingerprint is {fingerprint}"
    )]
    UntrustedCertificate {
        /// The endpoint called (without its query).
        url: String,
        /// What the verification said.
        reason: String,
        /// The SHA-256 fingerprint of the certificate presented.
        fingerprint: super::CertFingerprint,
    },
    /// A pinned gateway presented another certificate: refused, and the user must
    /// confirm the new one (never accepted silently).
    #[error("{0}")]
    CertificateChanged(super::CertificateChanged),
    /// HTTP 401: bad, expired or revoked credentials. A refused refresh means
    /// "signed out".
    #[error("unauthorized: {0}")]
    Unauthorized(String),
    /// HTTP 429: wait this long before trying again.
    #[error("rate limited: retry after {} ms", retry_after.as_millis())]
    RateLimited {
        /// From `retry_after_ms`, else `Retry-After`, else one second.
        retry_after: Duration,
    },
    /// Any other error status, with the gateway's `ErrorBody` (synthesised from the
    /// status when the answer had none, e.g. from a proxy).
    #[error("the server answered {status}: {}", body.message)]
    Server {
        /// The HTTP status.
        status: u16,
        /// The gateway's error (unknown codes read as `internal`).
        body: ErrorBody,
    },
    /// A success status with a body that is not what the protocol says, or an answer
    /// no gateway gives (a redirect, a huge body).
    #[error("unexpected answer from the server: {0}")]
    Protocol(String),
}

impl ApiError {
    /// True when trying again later may succeed (network trouble, rate limit, 5xx).
    pub fn is_transient(&self) -> bool {
        match self {
            ApiError::Unreachable { .. } | ApiError::RateLimited { .. } => true,
            ApiError::Server { status, .. } => *status >= 500,
            ApiError::Tls { .. }
            | ApiError::UntrustedCertificate { .. }
            | ApiError::CertificateChanged(_)
            | ApiError::Unauthorized(_)
            | ApiError::Protocol(_) => false,
        }
    }
}

/// `ErrorBody` as sent, with the code kept as text so a new code still parses.
#[derive(Deserialize)]
struct LenientErrorBody {
    code: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    retry_after_ms: Option<u64>,
}

/// The gateway's `ErrorBody` from an error answer; unknown codes become `internal`,
/// and an answer without one gets a code from its status.
pub(crate) fn error_body(status: StatusCode, body: &[u8]) -> ErrorBody {
    if let Ok(lenient) = serde_json::from_slice::<LenientErrorBody>(body) {
        let code = serde_json::from_value(serde_json::Value::String(lenient.code))
            .ok()
            .filter(|code| *code != ErrorCode::Unknown)
            .unwrap_or(ErrorCode::Internal);
        let message = if lenient.message.is_empty() {
            status.to_string()
        } else {
            lenient.message
        };
        return ErrorBody {
            code,
            message,
            retry_after_ms: lenient.retry_after_ms,
        };
    }
    let code = match status.as_u16() {
        400 | 415 | 422 => ErrorCode::InvalidRequest,
        401 => ErrorCode::Unauthorized,
        403 => ErrorCode::Forbidden,
        404 => ErrorCode::NotFound,
        409 => ErrorCode::Conflict,
        413 => ErrorCode::TooLarge,
        429 => ErrorCode::RateLimited,
        503 => ErrorCode::Unavailable,
        _ => ErrorCode::Internal,
    };
    let text = String::from_utf8_lossy(body);
    let text = text.trim();
    let message = if text.is_empty() {
        format!("HTTP {status}")
    } else {
        let snippet: String = text.chars().take(200).collect();
        format!("HTTP {status}: {snippet}")
    };
    ErrorBody::new(code, message)
}

/// Sorts an error answer (status ≥ 400) into an [`ApiError`].
pub(crate) fn from_status(status: StatusCode, headers: &HeaderMap, body: &[u8]) -> ApiError {
    let body = error_body(status, body);
    match status {
        StatusCode::UNAUTHORIZED => ApiError::Unauthorized(body.message),
        StatusCode::TOO_MANY_REQUESTS => {
            let from_header = headers
                .get(RETRY_AFTER)
                .and_then(|value| value.to_str().ok())
                .and_then(|value| value.trim().parse::<u64>().ok())
                .map(Duration::from_secs);
            let retry_after = body
                .retry_after_ms
                .map(Duration::from_millis)
                .or(from_header)
                .unwrap_or(Duration::from_secs(1));
            ApiError::RateLimited { retry_after }
        }
        _ => ApiError::Server {
            status: status.as_u16(),
            body,
        },
    }
}

/// Words that TLS failures (rustls, through hyper) put in their messages.
const TLS_MARKERS: [&str; 8] = [
    "certificate",
    "tls",
    "ssl",
    "handshake",
    "corrupt message",
    "peer misbehaved",
    "peer is incompatible",
    "alert",
];

/// Sorts a transport error (no HTTP answer) into [`ApiError::Tls`] or
/// [`ApiError::Unreachable`].
pub(crate) fn from_transport(err: &reqwest::Error, url: &str, https: bool) -> ApiError {
    let reason = source_chain(err);
    let lower = reason.to_ascii_lowercase();
    if https && TLS_MARKERS.iter().any(|marker| lower.contains(marker)) {
        return ApiError::Tls {
            url: url.to_owned(),
            reason,
        };
    }
    let reason = if err.is_timeout() && !lower.contains("timed out") {
        format!("timed out ({reason})")
    } else {
        reason
    };
    ApiError::Unreachable {
        url: url.to_owned(),
        reason,
        maybe_delivered: !err.is_connect(),
    }
}

/// The messages of the error's causes, innermost last, without repeats (reqwest's own
/// top message is generic and carries the URL, which the caller gives separately).
fn source_chain(err: &reqwest::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut source = std::error::Error::source(err);
    while let Some(cause) = source {
        let text = cause.to_string();
        if !text.is_empty() && !parts.iter().any(|part| part.contains(&text)) {
            parts.push(text);
        }
        source = cause.source();
    }
    if parts.is_empty() {
        parts.push(err.to_string());
    }
    parts.join(": ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_read_leniently() {
        let body = error_body(
            StatusCode::FORBIDDEN,
            br#"{"code":"forbidden","message":"another firm","extra":1}"#,
        );
        assert_eq!(body, ErrorBody::new(ErrorCode::Forbidden, "another firm"));
        let body = error_body(
            StatusCode::BAD_REQUEST,
            br#"{"code":"brand_new_code","message":"new"}"#,
        );
        assert_eq!(
            body.code,
            ErrorCode::Internal,
            "unknown codes read as internal"
        );
        let body = error_body(StatusCode::BAD_GATEWAY, b"<html>Bad Gateway</html>");
        assert_eq!(body.code, ErrorCode::Internal);
        assert!(body.message.contains("502"), "{}", body.message);
        assert!(
            body.message.contains("Bad Gateway</html>"),
            "{}",
            body.message
        );
        let body = error_body(StatusCode::NOT_FOUND, b"");
        assert_eq!(body.code, ErrorCode::NotFound);
    }

    #[test]
    fn rate_limits_prefer_the_body_then_the_header() {
        let mut headers = HeaderMap::new();
        headers.insert(RETRY_AFTER, "3".parse().expect("header"));
        let body = br#"{"code":"rate_limited","message":"slow","retry_after_ms":120}"#;
        assert!(matches!(
            from_status(StatusCode::TOO_MANY_REQUESTS, &headers, body),
            ApiError::RateLimited { retry_after } if retry_after == Duration::from_millis(120)
        ));
        assert!(matches!(
            from_status(StatusCode::TOO_MANY_REQUESTS, &headers, b""),
            ApiError::RateLimited { retry_after } if retry_after == Duration::from_secs(3)
        ));
        assert!(matches!(
            from_status(StatusCode::TOO_MANY_REQUESTS, &HeaderMap::new(), b""),
            ApiError::RateLimited { retry_after } if retry_after == Duration::from_secs(1)
        ));
    }

    #[test]
    fn transience() {
        let server = |status| ApiError::Server {
            status,
            body: ErrorBody::new(ErrorCode::Internal, "x"),
        };
        assert!(server(503).is_transient());
        assert!(!server(403).is_transient());
        assert!(!ApiError::Unauthorized("x".into()).is_transient());
        assert!(
            ApiError::RateLimited {
                retry_after: Duration::from_secs(1)
            }
            .is_transient()
        );
    }
}
