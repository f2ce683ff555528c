//! The HTTP API under `/v1`, plus health checks and the WebSocket route.

mod audit;
mod auth;
pub mod cache;
mod calendar;
mod conversations;
mod deadlines;
pub mod extract;
mod health;
mod history;
pub mod login_guard;
pub mod metrics;
mod publish;
mod users;
mod webhook;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use tower_http::trace::TraceLayer;

use crate::state::AppState;

pub use auth::user_info;

/// Every route of the gateway.
pub fn router(state: AppState) -> Router {
    let max_body = state.config.http.max_body_bytes;
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/metrics", get(metrics::scrape))
        .route("/v1/auth/login", post(auth::login))
        .route("/v1/auth/refresh", post(auth::refresh))
        .route("/v1/auth/logout", post(auth::logout))
        .route("/v1/publish", post(publish::publish))
        .route("/v1/publish/batch", post(publish::publish_batch))
        .route("/v1/history", get(history::history))
        .route("/v1/unread", get(history::unread))
        .route("/v1/audit", get(audit::list))
        .route("/v1/users/{user}", delete(users::delete))
        .route("/v1/users/{user}/disable", post(users::disable))
        .route("/v1/users/{user}/enable", post(users::enable))
        .route("/v1/deadlines", get(deadlines::list))
        .route(
            "/v1/deadlines/{id}",
            put(deadlines::put)
                .get(deadlines::get)
                .delete(deadlines::delete),
        )
        .route(
            "/v1/webhook",
            put(webhook::put).get(webhook::get).delete(webhook::delete),
        )
        .route(
            "/v1/deadline-settings",
            get(deadlines::get_settings).put(deadlines::put_settings),
        )
        .route(
            "/v1/conversations/{id}/members",
            put(conversations::put_members),
        )
        .route(
            "/v1/me/calendar",
            post(calendar::rotate).delete(calendar::revoke),
        )
        .route(tocsin_protocol::WS_PATH, get(crate::ws::upgrade))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(TraceLayer::new_for_http())
        // After the trace layer, which does not wrap it: this path is a credential.
        .route("/v1/calendar/{file}", get(calendar::feed))
        .with_state(state)
}
