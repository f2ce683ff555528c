//! `PUT /v1/conversations/{id}/members`: the firm's software (API key) or a firm
//! admin (access token) sets who belongs to a conversation.

use axum::Json;
use axum::extract::{FromRequestParts, State};
use axum::http::request::Parts;
use serde::Deserialize;
use tocsin_protocol::StreamName;
use tocsin_protocol::http::{MembersRequest, MembersResponse};
use tocsin_protocol::stream::is_valid_id;

use super::extract::{API_KEY_PREFIX, ApiJson, ApiPath, ApiQuery, Publisher, SignedIn, bearer};
use crate::error::AppError;
use crate::state::AppState;

/// The firm acting: from the API key, or from an admin's token.
pub struct FirmCaller {
    /// The firm slug, or `None` for a global key (which must name one).
    tenant: Option<String>,
}

impl FromRequestParts<AppState> for FirmCaller {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let is_key = bearer(&parts.headers)?.is_some_and(|token| token.starts_with(API_KEY_PREFIX));
        if is_key {
            let publisher = Publisher::from_request_parts(parts, state).await?;
            return Ok(FirmCaller {
                tenant: publisher.key.tenant,
            });
        }
        let signed_in = SignedIn::from_request_parts(parts, state).await?;
        if signed_in.user.role != "admin" {
            return Err(AppError::forbidden(
                "only a firm admin or an API key may change conversation members",
            ));
        }
        Ok(FirmCaller {
            tenant: Some(signed_in.user.tenant),
        })
    }
}

/// `?tenant=` for global keys.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MembersQuery {
    /// The firm, for a global key.
    tenant: Option<String>,
}

/// `PUT /v1/conversations/{id}/members`.
#[utoipa::path(
    put,
    path = "/v1/conversations/{id}/members",
    tag = "admin",
    params(("id" = String, Path, description = "The conversation's id"), MembersQuery),
    request_body = MembersRequest,
    security(("api_key" = []), ("user_token" = [])),
    responses((status = 200, description = "The whole member list as stored", body = MembersResponse))
)]
pub async fn put_members(
    State(state): State<AppState>,
    caller: FirmCaller,
    ApiPath(id): ApiPath<String>,
    ApiQuery(query): ApiQuery<MembersQuery>,
    ApiJson(request): ApiJson<MembersRequest>,
) -> Result<Json<MembersResponse>, AppError> {
    if !is_valid_id(&id) {
        return Err(AppError::invalid(
            "a conversation id is 1-128 letters, digits and -_.@+|:",
        ));
    }
    if request.members.len() > 1000 {
        return Err(AppError::too_large(
            "a conversation has at most 1000 members",
        ));
    }
    let tenant = match (caller.tenant, query.tenant) {
        (Some(own), Some(asked)) if own != asked => {
            return Err(AppError::forbidden("this key belongs to another firm"));
        }
        (Some(own), _) => own,
        (None, Some(asked)) => asked,
        (None, None) => {
            return Err(AppError::invalid(
                "a global key must say which firm: ?tenant=<slug>",
            ));
        }
    };
    let key = crate::access::conversation_key(&tenant, &id);
    let members = state
        .store
        .set_members(&key, &tenant, &request.members)
        .await?;
    // Open connections follow at once, not at their next reconnect: removed members
    // stop receiving the conversation and acting on it, added ones start.
    let stream = StreamName::Conversation(key);
    let now = state.store.stream_state(&stream).await?;
    let from = tocsin_protocol::Position {
        epoch: now.epoch,
        offset: now.head,
    };
    state.hub.members_changed(&stream, &members, &from);
    Ok(Json(MembersResponse {
        conversation_id: id,
        tenant,
        members,
    }))
}
