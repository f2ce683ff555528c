//! Request extractors: JSON bodies with our error shape, a signed-in user, a
//! publisher's API key.

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use crate::access::resolve_user;
use crate::auth::{Identity, parse_api_key, verify_secret};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{ApiKey, User};

/// A JSON body whose rejections answer with our `ErrorBody`.
#[derive(FromRequest)]
#[from_request(via(axum::Json), rejection(AppError))]
pub struct ApiJson<T>(pub T);

/// A query string whose rejections answer with our `ErrorBody` (axum's own answer is
/// plain text, which the OpenAPI document could not describe).
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(AppError))]
pub struct ApiQuery<T>(pub T);

/// Path parameters whose rejections answer with our `ErrorBody`.
#[derive(FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(AppError))]
pub struct ApiPath<T>(pub T);

/// The prefix of every API key.
pub const API_KEY_PREFIX: &str = "tsk_";

/// The bearer token of a request, if any.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, AppError> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let text = value
        .to_str()
        .map_err(|_| AppError::unauthorized("the Authorization header is not valid text"))?;
    let token = text
        .strip_prefix("Bearer ")
        .ok_or_else(|| AppError::unauthorized("use `Authorization: Bearer <token>`"))?;
    Ok(Some(token.trim()))
}

/// A signed-in user (own access token or external JWT).
pub struct SignedIn {
    /// What the token said.
    pub identity: Identity,
    /// The stored user.
    pub user: User,
}

impl FromRequestParts<AppState> for SignedIn {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer(&parts.headers)?.ok_or_else(|| {
            crate::metrics::auth_failed(crate::metrics::AuthFailure::MissingCredentials);
            AppError::unauthorized("sign in first: send `Authorization: Bearer <access token>`")
        })?;
        if token.starts_with(API_KEY_PREFIX) {
            crate::metrics::auth_failed(crate::metrics::AuthFailure::MissingCredentials);
            return Err(AppError::unauthorized(
                "this endpoint needs a user's access token, not an API key",
            ));
        }
        let identity = state.auth.verify(token).await?;
        let user = resolve_user(state.store.as_ref(), &identity).await?;
        Ok(SignedIn { identity, user })
    }
}

/// A publisher authenticated by API key.
pub struct Publisher {
    /// The key's record.
    pub key: ApiKey,
}

impl Publisher {
    /// Checks an API key from a bearer token. The key's record may come from the
    /// lookup cache, so a revocation takes effect within its TTL; the secret is checked
    /// on every request.
    pub async fn from_token(state: &AppState, token: &str) -> Result<Publisher, AppError> {
        let bad = || {
            crate::metrics::auth_failed(crate::metrics::AuthFailure::BadApiKey);
            AppError::unauthorized(
                "unknown or revoked API key; create one with `tocsin-gateway key create`",
            )
        };
        let (key_id, secret) = parse_api_key(token).ok_or_else(bad)?;
        let key = match state.lookups.keys.get(key_id) {
            Some(key) => key,
            None => {
                let key = state.store.api_key(key_id).await?.ok_or_else(bad)?;
                state.lookups.keys.insert(key_id, key.clone());
                key
            }
        };
        if key.revoked || !verify_secret(secret, &key.secret_hash) {
            return Err(bad());
        }
        Ok(Publisher { key })
    }
}

impl Publisher {
    /// Refuses a publishing key on a route for the firm's administrator (the audit
    /// trail, governing users): only a firm's admin key or a global key passes. `what`
    /// names what was refused, e.g. "reading the audit trail".
    pub fn require_admin(&self, what: &str) -> Result<(), AppError> {
        if !self.key.admin && self.key.tenant.is_some() {
            return Err(AppError::forbidden(format!(
                "{what} needs an admin key: tocsin-gateway key create --tenant <firm> --admin"
            )));
        }
        Ok(())
    }
}

impl FromRequestParts<AppState> for Publisher {
    type Rejection = AppError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, AppError> {
        let token = bearer(&parts.headers)?.ok_or_else(|| {
            crate::metrics::auth_failed(crate::metrics::AuthFailure::MissingCredentials);
            AppError::unauthorized("send `Authorization: Bearer <API key>`")
        })?;
        if !token.starts_with(API_KEY_PREFIX) {
            crate::metrics::auth_failed(crate::metrics::AuthFailure::MissingCredentials);
            return Err(AppError::unauthorized(
                "this endpoint needs an API key (tsk_…), not a user token",
            ));
        }
        Publisher::from_token(state, token).await
    }
}
