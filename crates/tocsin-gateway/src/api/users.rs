//! Governing a firm's users, for its administrator (an admin API key, as for the audit
//! trail): `POST /v1/users/{user}/disable`, `POST /v1/users/{user}/enable` and
//! `DELETE /v1/users/{user}?erase=true` (GDPR). `{user}` is an id or an email, looked
//! up inside the key's firm only: another firm's user is answered like an unknown one.
//!
//! These routes are the one path that acts on a *running* gateway: it revokes the
//! sessions in the store and closes the user's open sockets at once, which the admin
//! CLI, working on the database file, could not do (`cli/users.rs`).

use axum::Json;
use axum::extract::State;
use serde::{Deserialize, Serialize};
use tocsin_protocol::CloseCode;

use super::deadlines::firm;
use super::extract::{ApiPath, ApiQuery, Publisher};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::User;

/// Query of every route here.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UserQuery {
    /// The firm, for a global key.
    tenant: Option<String>,
    /// `DELETE` only: must be `true`, saying that the personal data goes for good.
    #[serde(default)]
    erase: bool,
}

/// The answer to disable and enable.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct UserState {
    /// The user's id.
    pub id: String,
    /// Their email.
    pub email: String,
    /// Their firm.
    pub tenant: String,
    /// Whether they are disabled now.
    pub disabled: bool,
    /// Device sessions signed out by this request (0 when enabling).
    pub sessions_revoked: u64,
}

/// The answer to an erasure.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct Erased {
    /// The id the user had.
    pub id: String,
    /// The id their audit records and acknowledgements name from now on.
    pub anonymised_id: String,
}

/// The user `who` (id or email) of the key's firm, for an admin key only.
async fn governed_user(
    state: &AppState,
    publisher: &Publisher,
    query: &UserQuery,
    who: &str,
) -> Result<User, AppError> {
    publisher.require_admin("governing users")?;
    let tenant = firm(publisher, query.tenant.as_deref())?;
    state.store.firm_user(&tenant, who).await?.ok_or_else(|| {
        AppError::not_found(format!(
            "no user '{who}' in firm '{tenant}'; check the email or id (tocsin-gateway user list --tenant {tenant})"
        ))
    })
}

/// `POST /v1/users/{user}/disable`: every device session revoked and every open
/// socket closed with 4101 at once; sign-in refused until enabled.
#[utoipa::path(
    post,
    path = "/v1/users/{user}/disable",
    tag = "admin",
    params(("user" = String, Path, description = "The user's id or email"), UserQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "Disabled: sessions revoked, sockets closed", body = UserState))
)]
pub async fn disable(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiPath(who): ApiPath<String>,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<UserState>, AppError> {
    let user = governed_user(&state, &publisher, &query, &who).await?;
    let sessions_revoked = state.store.set_user_disabled(&user.id, true).await?;
    state.hub.close_user(
        &user.id,
        CloseCode::Forbidden,
        crate::access::DISABLED_ACCOUNT,
    );
    tracing::info!(user = %user.id, tenant = %user.tenant, sessions_revoked, "user disabled");
    Ok(Json(UserState {
        id: user.id,
        email: user.email,
        tenant: user.tenant,
        disabled: true,
        sessions_revoked,
    }))
}

/// `POST /v1/users/{user}/enable`: sign-in works again (old sessions stay revoked).
#[utoipa::path(
    post,
    path = "/v1/users/{user}/enable",
    tag = "admin",
    params(("user" = String, Path, description = "The user's id or email"), UserQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "Enabled: the user may sign in again", body = UserState))
)]
pub async fn enable(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiPath(who): ApiPath<String>,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<UserState>, AppError> {
    let user = governed_user(&state, &publisher, &query, &who).await?;
    state.store.set_user_disabled(&user.id, false).await?;
    tracing::info!(user = %user.id, tenant = %user.tenant, "user enabled");
    Ok(Json(UserState {
        id: user.id,
        email: user.email,
        tenant: user.tenant,
        disabled: false,
        sessions_revoked: 0,
    }))
}

/// `DELETE /v1/users/{user}?erase=true`: the user's personal data erased (see
/// `store/sqlite/governance.rs` for what goes and what the firm keeps); their open
/// sockets closed with 4100 at once.
#[utoipa::path(
    delete,
    path = "/v1/users/{user}",
    tag = "admin",
    params(("user" = String, Path, description = "The user's id or email"), UserQuery),
    security(("api_key" = [])),
    responses((status = 200, description = "Erased; the audit trail names the anonymised id", body = Erased))
)]
pub async fn delete(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiPath(who): ApiPath<String>,
    ApiQuery(query): ApiQuery<UserQuery>,
) -> Result<Json<Erased>, AppError> {
    let user = governed_user(&state, &publisher, &query, &who).await?;
    if !query.erase {
        return Err(AppError::invalid(
            "deleting a user erases their personal data for good (account, sessions, read state, personal stream; the audit trail keeps an anonymised id): add ?erase=true, or disable them instead with POST /v1/users/{user}/disable",
        ));
    }
    let anonymised_id = state.store.erase_user(&user.id).await?;
    state.hub.close_user(
        &user.id,
        CloseCode::InvalidToken,
        "this account no longer exists",
    );
    tracing::info!(user = %user.id, tenant = %user.tenant, %anonymised_id, "user erased");
    Ok(Json(Erased {
        id: user.id,
        anonymised_id,
    }))
}
