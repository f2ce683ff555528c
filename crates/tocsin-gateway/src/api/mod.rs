//! The HTTP API under `/v1`, plus health checks and the WebSocket route.

mod audit;
mod auth;
pub mod cache;
mod calendar;
mod conversations;
mod cors;
mod deadlines;
pub mod extract;
mod health;
mod history;
pub mod login_guard;
pub mod metrics;
mod notifications;
mod openapi;
mod publish;
mod users;
mod webhook;

use axum::extract::DefaultBodyLimit;
use axum::{Extension, Router};
use tower_http::trace::TraceLayer;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::config::WebSocketConfig;
use crate::state::AppState;

pub use auth::user_info;

/// Every route of the gateway, each registered with its OpenAPI description
/// (`openapi.rs`): nothing here may call `.route(` (a test checks).
///
/// A `.layer` wraps the routes registered before it: the user routes come first, so
/// that CORS (`cors.rs`) wraps them and nothing else — publish and admin routes take
/// API keys, which must never live in a browser.
fn routes(max_body: usize, websocket: &WebSocketConfig) -> OpenApiRouter<AppState> {
    let origins = cors::Origins::new(websocket);
    OpenApiRouter::with_openapi(openapi::base())
        // The user routes: what a user's access token (or the sign-in itself) calls.
        .routes(routes!(auth::login))
        .routes(routes!(auth::refresh))
        .routes(routes!(auth::logout))
        .routes(routes!(history::history))
        .routes(routes!(history::unread))
        .routes(routes!(calendar::rotate, calendar::revoke))
        .layer(cors::layer(websocket))
        // Outside the CORS layer, so a refused preflight never reaches it.
        .layer(axum::middleware::from_fn(move |request, next| {
            cors::refuse_unknown_origins(origins.clone(), request, next)
        }))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(metrics::scrape))
        .routes(routes!(openapi::serve))
        .routes(routes!(publish::publish))
        .routes(routes!(publish::publish_batch))
        .routes(routes!(notifications::retract))
        .routes(routes!(audit::list))
        .routes(routes!(users::delete))
        .routes(routes!(users::disable))
        .routes(routes!(users::enable))
        .routes(routes!(deadlines::list))
        .routes(routes!(deadlines::put, deadlines::get, deadlines::delete))
        .routes(routes!(webhook::put, webhook::get, webhook::delete))
        .routes(routes!(deadlines::get_settings, deadlines::put_settings))
        .routes(routes!(conversations::put_members))
        // The WebSocket checks Origin against the same list itself (`ws/mod.rs`).
        .routes(routes!(crate::ws::upgrade))
        .layer(DefaultBodyLimit::max(max_body))
        .layer(TraceLayer::new_for_http())
        // After the trace layer, which does not wrap it: this path is a credential.
        .routes(routes!(calendar::feed))
}

/// The OpenAPI document the gateway serves at `/v1/openapi.json`.
pub fn openapi_document() -> utoipa::openapi::OpenApi {
    let (_, openapi) = routes(0, &WebSocketConfig::default()).split_for_parts();
    openapi::complete(openapi)
}

/// The gateway's HTTP router.
pub fn router(state: AppState) -> Router {
    let (router, openapi) =
        routes(state.config.http.max_body_bytes, &state.config.websocket).split_for_parts();
    let document = openapi::Document::render(&openapi::complete(openapi));
    router.layer(Extension(document)).with_state(state)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    /// Files allowed to build an axum router directly: a test's JWKS server, and the
    /// private `[metrics] listen` address (not the API; docs/OPERATIONS.md documents it).
    const OWN_ROUTERS: [&str; 2] = ["auth/external/jwks_tests.rs", "api/metrics.rs"];

    fn sources(dir: &Path, found: &mut Vec<std::path::PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("readable source dir") {
            let path = entry.expect("an entry").path();
            if path.is_dir() {
                sources(&path, found);
            } else if path.extension().is_some_and(|ext| ext == "rs") {
                found.push(path);
            }
        }
    }

    /// A route registered with axum's `.route(` would be served without appearing in
    /// the OpenAPI document; every route goes through `routes!` instead, which takes
    /// its path from the handler's `#[utoipa::path]`.
    #[test]
    fn every_route_is_registered_through_the_document() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
        let mut files = Vec::new();
        sources(&root, &mut files);
        let mut offenders = Vec::new();
        for file in files {
            let relative = file.strip_prefix(&root).expect("under src");
            let relative = relative.to_string_lossy().replace('\\', "/");
            if OWN_ROUTERS.contains(&relative.as_str()) {
                continue;
            }
            let text = std::fs::read_to_string(&file).expect("readable source");
            for (number, line) in text.lines().enumerate() {
                let code = line.split("//").next().unwrap_or_default();
                let registers = ["route", "route_service", "nest", "nest_service", "merge"]
                    .iter()
                    .any(|call| code.contains(&format!(".{call}(")));
                if registers {
                    offenders.push(format!("{relative}:{}: {}", number + 1, line.trim()));
                }
            }
        }
        assert!(
            offenders.is_empty(),
            "routes registered outside the OpenAPI document (use `routes!` with a \
             `#[utoipa::path]` handler):\n{}",
            offenders.join("\n")
        );
    }

    #[test]
    fn the_document_lists_the_websocket_and_the_calendar_feed_too() {
        let document = super::openapi_document();
        for path in [
            "/v1/ws",
            "/v1/calendar/{file}",
            "/v1/openapi.json",
            "/v1/publish",
        ] {
            assert!(document.paths.paths.contains_key(path), "{path} is missing");
        }
        let json = document.to_json().expect("renders");
        assert!(json.contains(r#""openapi":"3.1.0""#), "{}", &json[..80]);
    }
}
