//! `GET /metrics`: the Prometheus scrape. On the main port it needs `[metrics] token`
//! (`Authorization: Bearer`); on the optional `[metrics] listen` address it needs
//! nothing (that address is meant to be private). Gauges that are cheaper to read than
//! to keep current (webhook outbox depth, store writability) are read at each scrape.

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use subtle::ConstantTimeEq;
use tocsin_protocol::ErrorCode;

use crate::error::AppError;
use crate::state::AppState;

/// The content type of the classic Prometheus text format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// `GET /metrics` on the main port.
#[utoipa::path(
    get,
    path = "/metrics",
    tag = "operations",
    security(("metrics_token" = [])),
    responses((status = 200, description = "Prometheus text format 0.0.4", content_type = "text/plain; version=0.0.4; charset=utf-8", body = String))
)]
pub async fn scrape(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, AppError> {
    let Some(expected) = &state.config.metrics.token else {
        return Err(AppError::new(
            StatusCode::NOT_FOUND,
            ErrorCode::NotFound,
            "metrics are off on this port: set [metrics] token (or [metrics] listen) in config.toml and restart",
        ));
    };
    let presented = super::extract::bearer(&headers)?.unwrap_or_default();
    if !bool::from(presented.as_bytes().ct_eq(expected.as_bytes())) {
        crate::metrics::auth_failed(crate::metrics::AuthFailure::InvalidToken);
        return Err(AppError::unauthorized(
            "send `Authorization: Bearer <[metrics] token from config.toml>`",
        ));
    }
    Ok(render(&state).await)
}

/// The router of the `[metrics] listen` address: `/metrics` without a token.
pub fn private_router(state: AppState) -> Router {
    Router::new()
        .route(
            "/metrics",
            get(|State(state): State<AppState>| async move { render(&state).await }),
        )
        .with_state(state)
}

async fn render(state: &AppState) -> Response {
    crate::metrics::store_writable(state.store.ping().await.is_ok());
    match state.store.pending_webhook_events(None).await {
        Ok(pending) => crate::metrics::webhook_pending(pending),
        Err(err) => tracing::warn!(error = %err, "cannot count the webhook outbox for /metrics"),
    }
    (
        [(header::CONTENT_TYPE, CONTENT_TYPE)],
        state.metrics.render(),
    )
        .into_response()
}
