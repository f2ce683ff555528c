//! `/v1/auth/*`: login (throttled, see `login_guard.rs`), refresh (rotating), logout.

use std::net::SocketAddr;

use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::StatusCode;
use chrono::Utc;
use tocsin_protocol::http::{LoginRequest, LogoutRequest, RefreshRequest, TokenResponse, UserInfo};
use tocsin_protocol::{CloseCode, ErrorBody, ErrorCode};

use super::extract::ApiJson;
use super::login_guard::Attempt;
use crate::auth::password::GateError;
use crate::auth::{
    dummy_verify, hash_token, new_refresh_token, successor_refresh_token, verify_password,
};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{NewSession, RotateOutcome, User};

const BAD_CREDENTIALS: &str = "wrong email or password";

/// `POST /v1/auth/login`: throttled by [`LoginGuard`], then one password check
/// through the [`HashGate`].
///
/// [`LoginGuard`]: super::login_guard::LoginGuard
/// [`HashGate`]: crate::auth::password::HashGate
#[utoipa::path(
    post,
    path = "/v1/auth/login",
    tag = "auth",
    request_body = LoginRequest,
    responses((status = 200, description = "Signed in: a token pair for this device", body = TokenResponse),
        (status = 401, description = "Wrong email or password, or a disabled account", body = ErrorBody))
)]
pub async fn login(
    State(state): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    ApiJson(request): ApiJson<LoginRequest>,
) -> Result<Json<TokenResponse>, AppError> {
    let device = request.device_name.trim();
    if device.is_empty() || device.len() > 128 {
        return Err(AppError::invalid(
            "device_name must be 1-128 characters, e.g. \"Laptop — Marie\"",
        ));
    }
    let attempt = Attempt::new(&request.email, peer);
    state.login_guard.admit(&attempt)?;
    let user = match check_password(&state, &request.email, request.password).await {
        Ok(user) => user,
        Err(err) => {
            state.login_guard.not_checked(&attempt);
            return Err(err);
        }
    };
    let user = match user {
        Checked::Right(user) => user,
        Checked::Wrong => {
            crate::metrics::auth_failed(crate::metrics::AuthFailure::BadPassword);
            return Err(AppError::unauthorized(BAD_CREDENTIALS));
        }
        Checked::Disabled => {
            // Told only to whoever knows the password: it reveals no more than a
            // sign-in would, and the user learns whom to ask instead of retrying.
            state.login_guard.succeeded(&attempt);
            crate::metrics::auth_failed(crate::metrics::AuthFailure::DisabledAccount);
            return Err(AppError::forbidden(crate::access::DISABLED_ACCOUNT));
        }
    };
    state.login_guard.succeeded(&attempt);
    let refresh_token = new_refresh_token();
    let session_id = uuid::Uuid::now_v7().to_string();
    state
        .store
        .create_session(NewSession {
            id: session_id.clone(),
            user_id: user.id.clone(),
            device_name: device.to_owned(),
            refresh_hash: hash_token(&refresh_token),
            expires_at: refresh_expiry(&state),
        })
        .await?;
    tracing::info!(user = %user.id, device, "signed in");
    tokens(&state, &user, &session_id, refresh_token).map(Json)
}

/// What a password check found.
enum Checked {
    /// The password is the user's, and the account is enabled.
    Right(User),
    /// Unknown email, wrong password, or an account without a password.
    Wrong,
    /// The password is right, but the firm disabled the account.
    Disabled,
}

/// Whether `password` is the password of the user `email` names.
async fn check_password(
    state: &AppState,
    email: &str,
    password: String,
) -> Result<Checked, AppError> {
    let user = state.store.user_by_email(email.trim()).await?;
    // Argon2 is deliberately slow and big: off the async workers, a few at a time.
    state
        .hash_gate
        .run(move || match user {
            Some(user) => match &user.password_hash {
                Some(hash) if verify_password(&password, hash) => {
                    if user.disabled {
                        Checked::Disabled
                    } else {
                        Checked::Right(user)
                    }
                }
                _ => Checked::Wrong,
            },
            None => {
                dummy_verify();
                Checked::Wrong
            }
        })
        .await
        .map_err(gate_error)
}

fn gate_error(err: GateError) -> AppError {
    match err {
        GateError::Busy { retry_after } => {
            let retry_after_ms = u64::try_from(retry_after.as_millis()).unwrap_or(u64::MAX);
            tracing::warn!(
                retry_after_ms,
                "login turned away: every password check stayed busy for login.hash_queue_wait_ms"
            );
            let mut error = AppError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                ErrorCode::Unavailable,
                "the gateway is busy verifying passwords; retry after the delay",
            );
            // Sets `Retry-After` too, as for 429.
            error.body.retry_after_ms = Some(retry_after_ms);
            error
        }
        GateError::Failed(cause) => AppError::internal(cause),
    }
}

/// `POST /v1/auth/refresh`.
#[utoipa::path(
    post,
    path = "/v1/auth/refresh",
    tag = "auth",
    request_body = RefreshRequest,
    responses((status = 200, description = "The next token pair", body = TokenResponse),
        (status = 401, description = "Unknown, expired or revoked refresh token: sign in again", body = ErrorBody))
)]
pub async fn refresh(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<RefreshRequest>,
) -> Result<Json<TokenResponse>, AppError> {
    // Derived from the presented token, so a retry within the grace window (the first
    // answer was lost) gets the very token the store already holds the hash of.
    let next = successor_refresh_token(
        state.config.auth.jwt_secret.as_bytes(),
        &request.refresh_token,
    );
    let grace = std::time::Duration::from_secs(state.config.auth.refresh_grace_secs);
    let outcome = state
        .store
        .rotate_session(
            &hash_token(&request.refresh_token),
            &hash_token(&next),
            refresh_expiry(&state),
            grace,
        )
        .await?;
    match outcome {
        RotateOutcome::Rotated {
            session_id,
            user_id,
        } => {
            let user = state
                .store
                .user_by_id(&user_id)
                .await?
                .filter(|user| !user.disabled)
                .ok_or_else(|| {
                    AppError::unauthorized("this account no longer exists or is disabled")
                })?;
            tokens(&state, &user, &session_id, next).map(Json)
        }
        RotateOutcome::Reused { session_id } => {
            state.hub.close_session(
                &session_id,
                CloseCode::InvalidToken,
                "this device's session was revoked (its refresh token was used twice); sign in again",
            );
            tracing::warn!("a rotated refresh token was presented again; its session is revoked");
            crate::metrics::auth_failed(crate::metrics::AuthFailure::BadRefreshToken);
            Err(AppError::unauthorized(
                "this refresh token was already used, so the session was revoked for safety; sign in again",
            ))
        }
        RotateOutcome::Invalid => {
            crate::metrics::auth_failed(crate::metrics::AuthFailure::BadRefreshToken);
            Err(AppError::unauthorized(
                "unknown, expired or revoked refresh token; sign in again",
            ))
        }
    }
}

/// `POST /v1/auth/logout`: ends the device session. Idempotent.
#[utoipa::path(
    post,
    path = "/v1/auth/logout",
    tag = "auth",
    request_body = LogoutRequest,
    responses((status = 204, description = "The device session is over (also when it already was)"))
)]
pub async fn logout(
    State(state): State<AppState>,
    ApiJson(request): ApiJson<LogoutRequest>,
) -> Result<StatusCode, AppError> {
    let revoked = state
        .store
        .revoke_session(&hash_token(&request.refresh_token))
        .await?;
    if let Some(session_id) = revoked {
        state.hub.close_session(
            &session_id,
            CloseCode::InvalidToken,
            "this device signed out; sign in again",
        );
    }
    Ok(StatusCode::NO_CONTENT)
}

fn refresh_expiry(state: &AppState) -> chrono::DateTime<Utc> {
    let ttl = chrono::Duration::seconds(
        state
            .config
            .auth
            .refresh_token_ttl_secs
            .min(i64::MAX as u64) as i64,
    );
    Utc::now() + ttl
}

fn tokens(
    state: &AppState,
    user: &User,
    session_id: &str,
    refresh_token: String,
) -> Result<TokenResponse, AppError> {
    let email = (!user.email.is_empty()).then_some(user.email.as_str());
    let (access_token, _expires_at) = state
        .auth
        .access()
        .issue(&user.id, &user.tenant, email, &user.role, session_id)
        .map_err(AppError::internal)?;
    Ok(TokenResponse {
        access_token,
        refresh_token,
        expires_in: state.auth.access().ttl().as_secs(),
        user: user_info(user),
    })
}

/// A user as the API shows them.
pub fn user_info(user: &User) -> UserInfo {
    UserInfo {
        id: user.id.clone(),
        email: user.email.clone(),
        tenant: user.tenant.clone(),
        tenant_name: None,
        role: user.role.clone(),
    }
}
