//! One error type for the HTTP API: a status and the protocol's `ErrorBody`.
//! Internal details are logged, never sent.

use axum::extract::rejection::{JsonRejection, PathRejection, QueryRejection};
use axum::extract::ws::rejection::WebSocketUpgradeRejection;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use tocsin_protocol::{ErrorBody, ErrorCode};

use crate::auth::TokenError;
use crate::store::StoreError;

/// How long a publisher refused with `store_busy` is told to wait: another process's
/// write (an admin command) takes milliseconds, a backup tool's lock a few seconds.
const STORE_BUSY_RETRY_MS: u64 = 1000;

/// An HTTP error answer.
#[derive(Debug)]
pub struct AppError {
    /// The status.
    pub status: StatusCode,
    /// The body.
    pub body: ErrorBody,
}

impl AppError {
    /// An error with a status, code and message.
    pub fn new(status: StatusCode, code: ErrorCode, message: impl Into<String>) -> AppError {
        AppError {
            status,
            body: ErrorBody::new(code, message),
        }
    }

    /// 400/422: the request is wrong.
    pub fn invalid(message: impl Into<String>) -> AppError {
        AppError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            ErrorCode::InvalidRequest,
            message,
        )
    }

    /// 401.
    pub fn unauthorized(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized, message)
    }

    /// 403.
    pub fn forbidden(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::FORBIDDEN, ErrorCode::Forbidden, message)
    }

    /// 404.
    pub fn not_found(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::NOT_FOUND, ErrorCode::NotFound, message)
    }

    /// 409: the state forbids it, or it changed meanwhile.
    pub fn conflict(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
    }

    /// 413.
    pub fn too_large(message: impl Into<String>) -> AppError {
        AppError::new(StatusCode::PAYLOAD_TOO_LARGE, ErrorCode::TooLarge, message)
    }

    /// 429 with a retry delay.
    pub fn rate_limited(retry_after_ms: u64, message: impl Into<String>) -> AppError {
        let mut error = AppError::new(
            StatusCode::TOO_MANY_REQUESTS,
            ErrorCode::RateLimited,
            message,
        );
        error.body.retry_after_ms = Some(retry_after_ms);
        error
    }

    /// 500, logging the cause.
    pub fn internal(cause: impl std::fmt::Display) -> AppError {
        tracing::error!(error = %cause, "internal error");
        AppError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            ErrorCode::Internal,
            "internal error; the gateway logged the details",
        )
    }
}

impl From<StoreError> for AppError {
    fn from(err: StoreError) -> AppError {
        match err {
            StoreError::NotFound(message) => AppError::not_found(message),
            StoreError::Conflict(message) => {
                AppError::new(StatusCode::CONFLICT, ErrorCode::Conflict, message)
            }
            StoreError::Forbidden(message) => AppError::forbidden(message),
            StoreError::Invalid(message) => AppError::invalid(message),
            StoreError::DiskFull => {
                tracing::error!("disk full: refusing writes");
                AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    err.to_string(),
                )
            }
            StoreError::Busy => {
                let mut error = AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::StoreBusy,
                    err.to_string(),
                );
                error.body.retry_after_ms = Some(STORE_BUSY_RETRY_MS);
                error
            }
            StoreError::Unreachable(message) => {
                let mut error = AppError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    ErrorCode::Unavailable,
                    message,
                );
                error.body.retry_after_ms = Some(STORE_BUSY_RETRY_MS);
                error
            }
            StoreError::Unusable(message) => AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                message,
            ),
            StoreError::Internal(_) => AppError::internal(err),
        }
    }
}

impl From<TokenError> for AppError {
    fn from(err: TokenError) -> AppError {
        AppError::unauthorized(err.to_string())
    }
}

impl From<JsonRejection> for AppError {
    fn from(rejection: JsonRejection) -> AppError {
        let status = rejection.status();
        let text = rejection.body_text();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            return AppError::too_large(format!(
                "{text}; send a smaller body (see http.max_body_bytes)"
            ));
        }
        AppError::new(
            status,
            ErrorCode::InvalidRequest,
            format!("{text}; see docs/PROTOCOL.md for the shape"),
        )
    }
}

impl From<QueryRejection> for AppError {
    fn from(rejection: QueryRejection) -> AppError {
        AppError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            rejection.body_text(),
        )
    }
}

impl From<PathRejection> for AppError {
    fn from(rejection: PathRejection) -> AppError {
        AppError::new(
            StatusCode::BAD_REQUEST,
            ErrorCode::InvalidRequest,
            rejection.body_text(),
        )
    }
}

/// A plain HTTP request to the WebSocket route (a browser, a scanner, a client that
/// dropped the `Upgrade` headers) gets the API's error shape, saying what to send.
impl From<WebSocketUpgradeRejection> for AppError {
    fn from(rejection: WebSocketUpgradeRejection) -> AppError {
        AppError::new(
            rejection.status(),
            ErrorCode::InvalidRequest,
            format!(
                "{}; this is the WebSocket endpoint: connect with a WebSocket client offering `Sec-WebSocket-Protocol: {}` (docs/PROTOCOL.md)",
                rejection.body_text(),
                tocsin_protocol::SUBPROTOCOL
            ),
        )
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        crate::metrics::refused(self.body.code.as_str(), crate::metrics::Surface::Http);
        if self.status.is_client_error() {
            tracing::info!(status = self.status.as_u16(), code = ?self.body.code, message = %self.body.message, "request refused");
        }
        let retry = self.body.retry_after_ms;
        let mut response = (self.status, axum::Json(self.body)).into_response();
        if let Some(ms) = retry {
            let secs = ms.div_ceil(1000).max(1);
            if let Ok(value) = HeaderValue::from_str(&secs.to_string()) {
                response.headers_mut().insert(header::RETRY_AFTER, value);
            }
        }
        response
    }
}
