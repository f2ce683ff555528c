//! `/v1/deadlines` and `/v1/deadline-settings`: the firm's software declares deadlines
//! (API key) and reads what the gateway did about them — the receipts.
//!
//! Everything is looked up inside the key's firm (a global key names it with
//! `?tenant=`): another firm's deadline id is answered exactly like an unknown one.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tocsin_protocol::deadline::{
    CancelReason, DeadlineList, DeadlineRequest, DeadlineStatus, DeadlineView,
};

use super::extract::{ApiJson, ApiPath, ApiQuery, Publisher};
use crate::deadlines::declare::{declare, firm_settings};
use crate::deadlines::settings::FirmSettings;
use crate::deadlines::view::view;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::DeadlineFilter;

/// The most deadlines one list returns.
const MAX_LIST: u32 = 500;

/// `?tenant=` for global keys.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct FirmQuery {
    /// The firm, for a global key.
    pub tenant: Option<String>,
}

/// The one firm a request acts in: the key's, or the one a global key names.
pub(super) fn firm(publisher: &Publisher, named: Option<&str>) -> Result<String, AppError> {
    match (publisher.key.tenant.as_deref(), named) {
        (Some(own), None) => Ok(own.to_owned()),
        (Some(own), Some(named)) if named == own => Ok(own.to_owned()),
        (Some(_), Some(named)) => Err(AppError::forbidden(format!(
            "this key acts for another firm, not '{named}'"
        ))),
        (None, Some(named)) => Ok(named.to_owned()),
        (None, None) => Err(AppError::invalid(
            "a global key must name the firm: add ?tenant=<slug>",
        )),
    }
}

fn unknown(id: &str) -> AppError {
    AppError::not_found(format!(
        "no deadline '{id}' in your firm; declare it with PUT /v1/deadlines/{id}"
    ))
}

/// `PUT /v1/deadlines/{id}`: 201 when new, 200 when changed (or unchanged).
#[utoipa::path(
    put,
    path = "/v1/deadlines/{id}",
    tag = "deadlines",
    params(("id" = String, Path, description = "The firm's own id of the deadline"), FirmQuery),
    request_body = DeadlineRequest,
    security(("api_key" = [])),
    responses((status = 201, description = "Declared", body = DeadlineView),
        (status = 200, description = "Changed, or unchanged", body = DeadlineView))
)]
pub async fn put(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<FirmQuery>,
    ApiJson(request): ApiJson<DeadlineRequest>,
) -> Result<(StatusCode, Json<DeadlineView>), AppError> {
    let tenant = firm(&publisher, query.tenant.as_deref())?;
    let now = state.clock.now();
    let created = declare(state.store.as_ref(), &tenant, &id, request, now).await?;
    state.schedule_wake.notify_one();
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(load(&state, &tenant, &id).await?)))
}

/// `GET /v1/deadlines/{id}`.
#[utoipa::path(
    get,
    path = "/v1/deadlines/{id}",
    tag = "deadlines",
    params(("id" = String, Path, description = "The firm's own id of the deadline"), FirmQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "The deadline with its reminders and receipts", body = DeadlineView))
)]
pub async fn get(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<FirmQuery>,
) -> Result<Json<DeadlineView>, AppError> {
    let tenant = firm(&publisher, query.tenant.as_deref())?;
    Ok(Json(load(&state, &tenant, &id).await?))
}

/// Query of `DELETE /v1/deadlines/{id}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct CancelQuery {
    /// The firm, for a global key.
    tenant: Option<String>,
    /// `done` (the default) or `withdrawn`.
    #[serde(default)]
    #[param(inline)]
    reason: CancelReason,
}

/// `DELETE /v1/deadlines/{id}?reason=done|withdrawn`: nothing more is raised for it;
/// its record and receipts stay.
#[utoipa::path(
    delete,
    path = "/v1/deadlines/{id}",
    tag = "deadlines",
    params(("id" = String, Path, description = "The firm's own id of the deadline"), CancelQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "Closed: nothing more is raised for it", body = DeadlineView))
)]
pub async fn delete(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<CancelQuery>,
) -> Result<Json<DeadlineView>, AppError> {
    let tenant = firm(&publisher, query.tenant.as_deref())?;
    let status = match query.reason {
        CancelReason::Done => DeadlineStatus::Done,
        CancelReason::Withdrawn => DeadlineStatus::Withdrawn,
    };
    if !state.store.cancel_deadline(&tenant, &id, status).await? {
        return Err(unknown(&id));
    }
    let view = load(&state, &tenant, &id).await?;
    announce_closed(&state, &view);
    Ok(Json(view))
}

/// Query of `GET /v1/deadlines`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// The firm, for a global key.
    tenant: Option<String>,
    /// Only this owner's (id or email).
    owner: Option<String>,
    /// Only this dossier's (its number).
    dossier: Option<String>,
    /// Due at or after.
    due_from: Option<DateTime<Utc>>,
    /// Due before.
    due_to: Option<DateTime<Utc>>,
    /// `open`, `done` or `withdrawn`.
    #[param(inline)]
    status: Option<DeadlineStatus>,
    /// At most this many (default 100, at most 500).
    limit: Option<u32>,
}

/// `GET /v1/deadlines?owner=&dossier=&due_from=&due_to=&status=&limit=`.
#[utoipa::path(
    get,
    path = "/v1/deadlines",
    tag = "deadlines",
    params(ListQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "The firm's deadlines, soonest due first", body = DeadlineList))
)]
pub async fn list(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Json<DeadlineList>, AppError> {
    let tenant = firm(&publisher, query.tenant.as_deref())?;
    let owner = match &query.owner {
        Some(who) => match state.store.firm_user(&tenant, who).await? {
            Some(user) => Some(user.id),
            // Someone who is not of the firm owns nothing here: an empty list, like
            // any filter that matches nothing (another firm's users stay unknown).
            None => {
                return Ok(Json(DeadlineList {
                    deadlines: Vec::new(),
                }));
            }
        },
        None => None,
    };
    let filter = DeadlineFilter {
        tenant: tenant.clone(),
        owner,
        dossier: query.dossier,
        due_from: query.due_from,
        due_to: query.due_to,
        status: query.status,
        limit: query.limit.unwrap_or(100).clamp(1, MAX_LIST),
    };
    let settings = firm_settings(state.store.as_ref(), &tenant).await?;
    let now = state.clock.now();
    let deadlines = state
        .store
        .list_deadlines(filter)
        .await?
        .into_iter()
        .map(|found| view(found, &settings, now))
        .collect();
    Ok(Json(DeadlineList { deadlines }))
}

/// Tells every device of everyone involved that the deadline no longer waits for an
/// acknowledgement.
fn announce_closed(state: &AppState, view: &DeadlineView) {
    let frame = crate::ws::encode_frame(&tocsin_protocol::ServerFrame::DeadlinesClosed {
        deadlines: vec![tocsin_protocol::deadline::ClosedDeadline {
            deadline_id: view.id.clone(),
            status: view.status,
            at: view.updated_at,
        }],
    });
    let mut users: Vec<&String> = std::iter::once(&view.owner)
        .chain(view.backup.as_ref())
        .chain(view.escalations.iter().flat_map(|e| e.recipients.iter()))
        .collect();
    users.sort();
    users.dedup();
    for user in users {
        state.hub.send_to_user(user, frame.clone());
    }
}

async fn load(state: &AppState, tenant: &str, id: &str) -> Result<DeadlineView, AppError> {
    let found = state
        .store
        .deadline(tenant, id)
        .await?
        .ok_or_else(|| unknown(id))?;
    let settings = firm_settings(state.store.as_ref(), tenant).await?;
    Ok(view(found, &settings, state.clock.now()))
}

/// `GET /v1/deadline-settings`: the firm's settings, defaults filled in.
#[utoipa::path(
    get,
    path = "/v1/deadline-settings",
    tag = "deadlines",
    params(FirmQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "The firm's deadline settings", body = FirmSettings))
)]
pub async fn get_settings(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiQuery(query): ApiQuery<FirmQuery>,
) -> Result<Json<FirmSettings>, AppError> {
    let tenant = firm(&publisher, query.tenant.as_deref())?;
    Ok(Json(
        firm_settings(state.store.as_ref(), &tenant).await?.settings,
    ))
}

/// `PUT /v1/deadline-settings`: replaces the firm's settings (fields left out take
/// their defaults). Deadlines already declared keep their plan until they change.
#[utoipa::path(
    put,
    path = "/v1/deadline-settings",
    tag = "deadlines",
    params(FirmQuery),
    request_body = FirmSettings,
    security(("api_key" = [])),
    responses((status = 200, description = "Saved; open deadlines are re-planned", body = FirmSettings))
)]
pub async fn put_settings(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiQuery(query): ApiQuery<FirmQuery>,
    ApiJson(settings): ApiJson<FirmSettings>,
) -> Result<Json<FirmSettings>, AppError> {
    let tenant = firm(&publisher, query.tenant.as_deref())?;
    if state.store.tenant(&tenant).await?.is_none() {
        return Err(AppError::not_found(format!("no firm '{tenant}'")));
    }
    let resolved = settings.resolve().map_err(AppError::invalid)?;
    let text = serde_json::to_string(&resolved.settings).map_err(AppError::internal)?;
    state.store.set_deadline_settings(&tenant, text).await?;
    Ok(Json(resolved.settings))
}
