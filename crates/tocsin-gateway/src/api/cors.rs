//! CORS for the user routes: a firm's web app on another origin calls the routes a
//! user's access token opens (sign-in, history, unread, the calendar link) with
//! `fetch`. The browser origins allowed are `websocket.allowed_origins`, the one list
//! of "web apps allowed to use this gateway" that already gates the WebSocket upgrade.
//!
//! The headers are tower-http's [`CorsLayer`]; what it lacks is a clear refusal (it
//! answers a preflight from another origin 200 without the headers, which a developer
//! reads as a browser bug), so [`refuse_unknown_origins`] runs first and answers such a
//! preflight 403 with the gateway's error body, counted like the WebSocket's refusal.
//! Publish and admin routes never get this layer: API keys must not live in browsers.

use std::sync::Arc;
use std::time::Duration;

use axum::extract::Request;
use axum::http::header::{
    ACCESS_CONTROL_REQUEST_METHOD, AUTHORIZATION, CONTENT_TYPE, ORIGIN, RETRY_AFTER,
};
use axum::http::{HeaderValue, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use tower_http::cors::{AllowOrigin, CorsLayer};

use crate::config::WebSocketConfig;
use crate::error::AppError;

/// How long a browser may reuse a preflight's answer.
pub const PREFLIGHT_MAX_AGE: Duration = Duration::from_secs(600);

/// The CORS headers for the user routes: the allowed origins (exact match), the
/// methods those routes use, a bearer token and a JSON body, no credentials (tokens,
/// not cookies), and `Retry-After` readable by the page (rate limits).
pub fn layer(websocket: &WebSocketConfig) -> CorsLayer {
    // Validation refused origins that are not header values; skipping one here can
    // only refuse more.
    let origins: Vec<HeaderValue> = websocket
        .allowed_origins
        .iter()
        .filter_map(|origin| HeaderValue::from_str(origin).ok())
        .collect();
    CorsLayer::new()
        .allow_origin(AllowOrigin::list(origins))
        .allow_methods([Method::GET, Method::POST, Method::DELETE])
        .allow_headers([AUTHORIZATION, CONTENT_TYPE])
        .expose_headers([RETRY_AFTER])
        .allow_credentials(false)
        .max_age(PREFLIGHT_MAX_AGE)
}

/// The allowed origins, shared by the refusal middleware's clones.
#[derive(Clone)]
pub struct Origins(Arc<WebSocketConfig>);

impl Origins {
    /// `websocket.allowed_origins`.
    pub fn new(websocket: &WebSocketConfig) -> Origins {
        Origins(Arc::new(websocket.clone()))
    }
}

/// Answers a CORS preflight from an origin not allowed with 403 `forbidden`, saying
/// which setting to change (and counted in `tocsin_refusals_total` by `AppError`);
/// everything else goes on to the [`CorsLayer`].
pub async fn refuse_unknown_origins(origins: Origins, request: Request, next: Next) -> Response {
    let preflight = request.method() == Method::OPTIONS
        && request
            .headers()
            .contains_key(ACCESS_CONTROL_REQUEST_METHOD);
    if preflight && let Some(origin) = request.headers().get(ORIGIN) {
        let origin = origin.to_str().unwrap_or_default();
        if !origins.0.allows_origin(origin) {
            tracing::warn!(
                origin,
                path = request.uri().path(),
                "CORS preflight refused: origin not allowed"
            );
            return AppError::forbidden(format!(
                "origin '{origin}' is not allowed; add it to websocket.allowed_origins"
            ))
            .into_response();
        }
    }
    next.run(request).await
}
