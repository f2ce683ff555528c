//! `/v1/webhook`: a firm's receipts endpoint (API key). Setting it without a secret
//! makes the gateway generate one and show it once; afterwards only whether one is
//! set, and how many events wait for delivery, are shown.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde::{Deserialize, Serialize};

use super::deadlines::{FirmQuery, firm};
use super::extract::{ApiJson, ApiQuery, Publisher};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::Webhook;

/// The shortest secret accepted.
const MIN_SECRET: usize = 16;

/// `PUT /v1/webhook`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookRequest {
    /// Where events are posted (`https://`; `http://` only to loopback).
    url: String,
    /// The signing secret; generated when left out.
    secret: Option<String>,
}

/// What `GET`/`PUT /v1/webhook` answer.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct WebhookView {
    /// The endpoint.
    url: String,
    /// The secret, only in the answer to a `PUT` that generated it.
    #[serde(skip_serializing_if = "Option::is_none")]
    secret: Option<String>,
    /// Events not delivered yet.
    pending: u64,
}

/// `PUT /v1/webhook`: sets the endpoint (and secret).
#[utoipa::path(
    put,
    path = "/v1/webhook",
    tag = "deadlines",
    params(FirmQuery),
    request_body = WebhookRequest,
    security(("api_key" = [])),
    responses((status = 200, description = "Set; a generated secret is shown this once", body = WebhookView))
)]
pub async fn put(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiQuery(query): ApiQuery<FirmQuery>,
    ApiJson(request): ApiJson<WebhookRequest>,
) -> Result<Json<WebhookView>, AppError> {
    let tenant = firm(&publisher, query.tenant.as_deref())?;
    crate::webhooks::check_url(&request.url).map_err(AppError::invalid)?;
    let generated = request.secret.is_none();
    let secret = match request.secret {
        Some(secret) if secret.len() < MIN_SECRET => {
            return Err(AppError::invalid(format!(
                "secret: at least {MIN_SECRET} characters; or leave it out and the gateway generates one"
            )));
        }
        Some(secret) => secret,
        None => {
            use base64::Engine as _;
            base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
        }
    };
    let webhook = Webhook {
        url: request.url.clone(),
        secret: secret.clone(),
    };
    state.store.set_webhook(&tenant, Some(webhook)).await?;
    // Events that waited for an endpoint go now.
    state.webhook_wake.notify_one();
    Ok(Json(WebhookView {
        url: request.url,
        secret: generated.then_some(secret),
        pending: state.store.pending_webhook_events(Some(&tenant)).await?,
    }))
}

/// `GET /v1/webhook`.
#[utoipa::path(
    get,
    path = "/v1/webhook",
    tag = "deadlines",
    params(FirmQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "The endpoint and the events waiting for it", body = WebhookView))
)]
pub async fn get(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiQuery(query): ApiQuery<FirmQuery>,
) -> Result<Json<WebhookView>, AppError> {
    let tenant = firm(&publisher, query.tenant.as_deref())?;
    let webhook = state.store.webhook(&tenant).await?.ok_or_else(|| {
        AppError::not_found("no webhook is set for your firm; set one with PUT /v1/webhook")
    })?;
    Ok(Json(WebhookView {
        url: webhook.url,
        secret: None,
        pending: state.store.pending_webhook_events(Some(&tenant)).await?,
    }))
}

/// `DELETE /v1/webhook`: no more events are queued; queued ones wait for a new one.
#[utoipa::path(
    delete,
    path = "/v1/webhook",
    tag = "deadlines",
    params(FirmQuery),
    security(("api_key" = [])),
    responses((status = 204, description = "Removed"))
)]
pub async fn delete(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiQuery(query): ApiQuery<FirmQuery>,
) -> Result<StatusCode, AppError> {
    let tenant = firm(&publisher, query.tenant.as_deref())?;
    state.store.set_webhook(&tenant, None).await?;
    Ok(StatusCode::NO_CONTENT)
}
