//! `GET /v1/audit`: the firm's audit trail, for its administrator (an admin API key:
//! `tocsin-gateway key create --admin`). It names who read what and when, so a
//! publishing key (the mail monitor's) may not read it.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use tocsin_protocol::audit::AuditPage;

use super::deadlines::firm;
use super::extract::{ApiQuery, Publisher};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::AuditFilter;

/// The most records one page holds.
pub const MAX_PAGE: u32 = 1000;

/// Query of `GET /v1/audit`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// The firm, for a global key.
    tenant: Option<String>,
    /// Only this dossier's (its number).
    dossier: Option<String>,
    /// Only this user's (id or email).
    user: Option<String>,
    /// Only this deadline's (the firm's id).
    deadline: Option<String>,
    /// At or after.
    from: Option<DateTime<Utc>>,
    /// Before.
    to: Option<DateTime<Utc>>,
    /// Records after this id (the previous page's `next_after`).
    after: Option<i64>,
    /// At most this many (default 200, at most 1000).
    limit: Option<u32>,
}

/// `GET /v1/audit?dossier=…|user=…|deadline=…&from=&to=&after=&limit=`.
#[utoipa::path(
    get,
    path = "/v1/audit",
    tag = "admin",
    params(AuditQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "A page of the firm's audit trail, oldest first", body = AuditPage))
)]
pub async fn list(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiQuery(query): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, AppError> {
    publisher.require_admin("reading the audit trail")?;
    let tenant = firm(&publisher, query.tenant.as_deref())?;
    let user_id = match &query.user {
        Some(who) => Some(
            state
                .store
                .firm_user(&tenant, who)
                .await?
                .map(|user| user.id)
                .ok_or_else(|| AppError::not_found(format!("no user '{who}' in your firm")))?,
        ),
        None => None,
    };
    let limit = query.limit.unwrap_or(200).clamp(1, MAX_PAGE);
    let filter = AuditFilter {
        tenant,
        dossier: query.dossier,
        user_id,
        deadline_id: query.deadline,
        from: query.from,
        to: query.to,
        after: query.after,
        limit,
    };
    let records = state.store.audit(filter).await?;
    let next_after = (records.len() == limit as usize)
        .then(|| records.last().map(|r| r.id))
        .flatten();
    Ok(Json(AuditPage {
        records,
        next_after,
    }))
}
