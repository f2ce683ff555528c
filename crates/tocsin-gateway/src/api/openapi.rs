//! The OpenAPI 3.1 document of the HTTP API, served at `GET /v1/openapi.json`.
//!
//! It is not written by hand: every route is registered through utoipa-axum's
//! `routes!` from its handler's `#[utoipa::path]` (so the path the router serves is the
//! path the document shows), bodies take their schemas from the types serde reads and
//! writes, and `ErrorResponses` adds the error answers every operation shares. The
//! test `every_route_is_registered_through_the_document` keeps `.route(` out of the
//! router, so a route cannot be served without being described.

use std::sync::Arc;

use axum::Extension;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use tocsin_protocol::ErrorBody;
use utoipa::Modify;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{ContentBuilder, OpenApi, Ref, RefOr, Response as ApiResponse};
use utoipa::openapi::{ResponseBuilder, path::Operation};

/// The security scheme of the firm's software: an API key (`tsk_…`,
/// `tocsin-gateway key create`).
pub const API_KEY: &str = "api_key";
/// The security scheme of a signed-in user: an access token from `/v1/auth/login`, or
/// a JWT of the firm's own identity provider (`[auth.external]`).
pub const USER_TOKEN: &str = "user_token";
/// The security scheme of `/metrics`: `[metrics] token` from `config.toml`.
pub const METRICS_TOKEN: &str = "metrics_token";

/// The document's fixed parts; the paths come from the router.
#[derive(utoipa::OpenApi)]
#[openapi(
    info(
        title = "Tocsin gateway",
        description = "The HTTP API of a Tocsin gateway: the firm's software publishes \
            notifications and declares deadlines (API key); the firm's apps read history \
            and unread counts (user token); administrators read the audit trail and govern \
            users (admin API key). The WebSocket protocol on /v1/ws is described in \
            docs/PROTOCOL.md. Every error answer is an ErrorBody: a stable `code` and a \
            `message` saying what to do.",
        license(name = "AGPL-3.0-or-later", identifier = "AGPL-3.0-or-later"),
    ),
    modifiers(&SecuritySchemes),
    components(schemas(ErrorBody)),
    tags(
        (name = "publish", description = "Notifications from the firm's software"),
        (name = "deadlines", description = "Deadlines the gateway owns: reminders, escalation, receipts"),
        (name = "read", description = "What a signed-in user may read"),
        (name = "auth", description = "Device sign-in"),
        (name = "admin", description = "The firm's administrator: audit trail, users, conversations"),
        (name = "operations", description = "Health, readiness, metrics, this document"),
    )
)]
pub struct ApiDoc;

/// Declares the three bearer schemes.
struct SecuritySchemes;

impl Modify for SecuritySchemes {
    fn modify(&self, openapi: &mut OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        let bearer = |format: &str, description: &str| {
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format(format)
                    .description(Some(description))
                    .build(),
            )
        };
        components.add_security_scheme(
            API_KEY,
            bearer(
                "tsk_<key id>_<secret>",
                "An API key of the firm's software: `tocsin-gateway key create` (admin \
                 routes need `--admin`).",
            ),
        );
        components.add_security_scheme(
            USER_TOKEN,
            bearer(
                "JWT",
                "A user's access token from POST /v1/auth/login (or /v1/auth/refresh), or \
                 a JWT of the firm's identity provider when [auth.external] is set.",
            ),
        );
        components.add_security_scheme(
            METRICS_TOKEN,
            bearer("opaque", "[metrics] token from the gateway's config.toml."),
        );
    }
}

/// The fixed parts the router's routes are added to.
pub fn base() -> OpenApi {
    <ApiDoc as utoipa::OpenApi>::openapi()
}

/// The router's document with the error answers its operations share.
pub fn complete(mut openapi: OpenApi) -> OpenApi {
    ErrorResponses.modify(&mut openapi);
    openapi
}

/// Adds to every operation the error answers it can give besides its own: a request
/// the router could not read, a refused credential, a firm's limits, a store that
/// cannot write now. Each is an [`ErrorBody`].
struct ErrorResponses;

/// Status, and when it applies.
const SHARED_ERRORS: [(&str, &str); 6] = [
    (
        "400",
        "The query, path or body could not be read; `message` says which part.",
    ),
    (
        "422",
        "A value is refused (a malformed stream name, a bad date, a body of the wrong shape); `message` says which.",
    ),
    (
        "403",
        "The credential may not do this (another firm's, not an admin key).",
    ),
    (
        "404",
        "Nothing of that id in the caller's firm (another firm's ids answer the same).",
    ),
    (
        "429",
        "Too many requests; retry after `Retry-After` seconds (`retry_after_ms`).",
    ),
    (
        "503",
        "The store cannot write now (disk full, busy, shutting down); retry later.",
    ),
];

/// Answers only operations with a JSON body give.
const BODY_ERRORS: [(&str, &str); 2] = [
    (
        "413",
        "The body is larger than http.max_body_bytes (or a batch than its limit).",
    ),
    (
        "415",
        "The body is not sent as `Content-Type: application/json`.",
    ),
];

fn error_response(description: &str) -> RefOr<ApiResponse> {
    ResponseBuilder::new()
        .description(description)
        .content(
            "application/json",
            ContentBuilder::new()
                .schema(Some(Ref::from_schema_name("ErrorBody")))
                .build(),
        )
        .build()
        .into()
}

impl ErrorResponses {
    fn add(operation: &mut Operation) {
        let responses = &mut operation.responses.responses;
        let mut add = |status: &str, description: &str| {
            responses
                .entry(status.to_owned())
                .or_insert_with(|| error_response(description));
        };
        let secured = operation.security.as_ref().is_some_and(|s| !s.is_empty());
        if secured {
            add(
                "401",
                "No credential, or one that is unknown, expired or revoked.",
            );
        }
        for (status, description) in SHARED_ERRORS {
            add(status, description);
        }
        if operation.request_body.is_some() {
            for (status, description) in BODY_ERRORS {
                add(status, description);
            }
        }
    }
}

impl Modify for ErrorResponses {
    fn modify(&self, openapi: &mut OpenApi) {
        for item in openapi.paths.paths.values_mut() {
            for operation in [
                &mut item.get,
                &mut item.put,
                &mut item.post,
                &mut item.delete,
            ]
            .into_iter()
            .flatten()
            {
                ErrorResponses::add(operation);
            }
        }
    }
}

/// The document as served, rendered once at start.
#[derive(Clone)]
pub struct Document(pub Arc<str>);

impl Document {
    /// Renders the document the router was built with.
    pub fn render(openapi: &OpenApi) -> Document {
        let text = openapi
            .to_pretty_json()
            .unwrap_or_else(|err| format!("{{\"error\":\"cannot render: {err}\"}}"));
        Document(text.into())
    }
}

/// `GET /v1/openapi.json`.
#[utoipa::path(
    get,
    path = "/v1/openapi.json",
    tag = "operations",
    responses((status = 200, description = "This document (OpenAPI 3.1)", content_type = "application/json"))
)]
pub async fn serve(Extension(document): Extension<Document>) -> Response {
    ([(CONTENT_TYPE, "application/json")], document.0.to_string()).into_response()
}
