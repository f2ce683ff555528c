//! The user's calendar (ICS) feed, from Preferences: a new secret URL to subscribe to
//! in a calendar app (the previous one stops working), or the feed turned off. The
//! gateway's `POST`/`DELETE /v1/me/calendar`, called with the engine's current access
//! token ([`tocsin_client::engine::EngineHandle::access_token`]): the desktop never
//! refreshes a token of its own, since the refresh token is single-use and the
//! engine's. Offline there is no token to call with, and the panel says so.
//!
//! The URL is a credential: it is shown to the panel and never written to disk.

use tauri::{AppHandle, Manager};
use tocsin_client::api::{ApiClient, ApiError};

use crate::error::AppError;
use crate::i18n::Locale;
use crate::ipc::{CalendarFeedView, CalendarRevoked};
use crate::state::AppState;

/// `rotate_calendar_feed`: a new feed URL, absolute.
pub async fn rotate(app: &AppHandle) -> Result<CalendarFeedView, AppError> {
    let (api, token, locale) = client(app)?;
    let feed = api
        .rotate_calendar_feed(&token)
        .await
        .map_err(|err| from_api(&err, locale))?;
    tracing::info!("calendar feed rotated");
    Ok(CalendarFeedView {
        url: feed.address(api.server()),
    })
}

/// `revoke_calendar_feed`: the feed turned off (`revoked: false` when there was none).
pub async fn revoke(app: &AppHandle) -> Result<CalendarRevoked, AppError> {
    let (api, token, locale) = client(app)?;
    let revoked = api
        .revoke_calendar_feed(&token)
        .await
        .map_err(|err| from_api(&err, locale))?;
    tracing::info!(revoked, "calendar feed turned off");
    Ok(CalendarRevoked { revoked })
}

/// The signed-in account's API client and the engine's access token.
fn client(app: &AppHandle) -> Result<(ApiClient, String, Locale), AppError> {
    let state = app.state::<AppState>();
    let locale = state.locale();
    let (server, engine) = {
        let shared = state.lock();
        let session = shared
            .session
            .as_ref()
            .ok_or_else(|| AppError::not_signed_in(locale))?;
        (session.account.profile.server_url(), session.engine.clone())
    };
    let server = server.map_err(|err| AppError::from_url(&err, locale))?;
    let token = engine
        .access_token()
        .ok_or_else(|| AppError::new("offline", locale.strings().err_calendar_offline))?;
    Ok((ApiClient::new(server), token, locale))
}

/// The API's errors as the panel words them. Not the sign-in mapping: a refused token
/// here is not a wrong password.
fn from_api(err: &ApiError, locale: Locale) -> AppError {
    let s = locale.strings();
    match err {
        ApiError::Unauthorized(_) => AppError::new(
            "token_refused",
            format!("{} ({err})", s.err_calendar_refused),
        ),
        ApiError::Server { status: 404, .. } => AppError::new(
            "not_supported",
            format!("{} ({err})", s.err_calendar_unsupported),
        ),
        other => AppError::from_api(other, locale),
    }
}

#[cfg(test)]
mod tests {
    use tocsin_protocol::{ErrorBody, ErrorCode};

    use super::*;

    #[test]
    fn a_refused_token_is_not_worded_as_a_wrong_password() {
        let refused = from_api(&ApiError::Unauthorized("expired".into()), Locale::En);
        assert_eq!(refused.code, "token_refused");
        assert!(
            refused.message.starts_with("The gateway refused"),
            "{}",
            refused.message
        );
        let old = from_api(
            &ApiError::Server {
                status: 404,
                body: ErrorBody::new(ErrorCode::NotFound, "no route"),
            },
            Locale::Fr,
        );
        assert_eq!(old.code, "not_supported");
        let down = from_api(
            &ApiError::Unreachable {
                url: "http://127.0.0.1:9/v1/me/calendar".into(),
                reason: "connection refused".into(),
                maybe_delivered: false,
            },
            Locale::En,
        );
        assert_eq!(down.code, "unreachable");
    }
}
