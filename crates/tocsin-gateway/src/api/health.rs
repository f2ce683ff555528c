//! `/healthz` (the process answers) and `/readyz` (the store answers too).

use axum::extract::State;
use axum::http::StatusCode;

use crate::state::AppState;

/// `GET /healthz`.
#[utoipa::path(
    get,
    path = "/healthz",
    tag = "operations",
    responses((status = 200, description = "The process answers", content_type = "text/plain", body = String))
)]
pub async fn healthz() -> &'static str {
    "ok"
}

/// `GET /readyz`: 503 while shutting down or when the database does not answer; a
/// TLS certificate near its expiry is named in the 200's body (monitoring that greps
/// for "warning" sees it before clients do).
#[utoipa::path(
    get,
    path = "/readyz",
    tag = "operations",
    responses((status = 200, description = "Ready; a warning follows `ready` when the TLS certificate expires soon", content_type = "text/plain", body = String),
        (status = 503, description = "Not ready, and why (shutting down, the store cannot write)", content_type = "text/plain", body = String))
)]
pub async fn readyz(State(state): State<AppState>) -> (StatusCode, String) {
    if state.shutdown.is_cancelled() {
        return (StatusCode::SERVICE_UNAVAILABLE, "shutting down".into());
    }
    match state.store.ping().await {
        Ok(()) => match state.tls.as_ref().and_then(|tls| tls.expiry_warning()) {
            Some(warning) => (StatusCode::OK, format!("ready (warning: {warning})")),
            None => (StatusCode::OK, "ready".into()),
        },
        Err(err) => {
            tracing::error!(error = %err, "readiness check failed");
            (
                StatusCode::SERVICE_UNAVAILABLE,
                format!("storage unavailable: {err}"),
            )
        }
    }
}
