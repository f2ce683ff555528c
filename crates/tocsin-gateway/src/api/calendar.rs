//! The per-user calendar feed: `GET /v1/calendar/{secret}.ics` serves a user's open
//! deadlines as iCalendar; `POST /v1/me/calendar` creates or rotates its secret and
//! `DELETE /v1/me/calendar` turns it off (signed-in user, bearer access token).
//!
//! - Calendar apps cannot send an Authorization header, so the secret in the URL is the
//!   credential: 32 random bytes in base64url, stored only as its SHA-256 digest (like
//!   refresh tokens and API keys). Rotating replaces the digest, so the old URL answers
//!   404 at once; so does a revoked one, and any URL of a disabled user.
//! - What the feed holds: the deadlines the user **owns** that are open, soonest due
//!   first, at most [`MAX_FEED`]. Not those the user is the backup of: the gateway
//!   involves a backup only when a critical reminder went unacknowledged, and a
//!   calendar would raise every one of the owner's reminders on the backup's screen
//!   too. (The store cannot filter on the backup either.)
//! - The gateway does not know the public URL it is reached at. `POST` answers the
//!   `path` always, and a `url` built from the request: the host of
//!   `X-Forwarded-Host`, else `Host`; the scheme of `X-Forwarded-Proto`, else `https`
//!   (`http` for a loopback host: the clients' own rule for plain http). Without a
//!   usable host, `url` is the path. An app that knows its server's URL should join it
//!   with `path`.
//! - The feed's route is mounted outside the request tracing (see `api::router`): its
//!   path is the secret.

use axum::Json;
use axum::extract::State;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE, HOST};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use tocsin_protocol::deadline::{DeadlineStatus, DeadlineView};

use super::extract::{ApiPath, SignedIn};
use crate::auth::hash_token;
use crate::deadlines::declare::firm_settings;
use crate::deadlines::ics;
use crate::deadlines::view::view;
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{DeadlineFilter, User};

/// The most deadlines one feed holds (soonest due first).
pub const MAX_FEED: u32 = 1000;
/// Length of a secret (`auth::secrets::new_secret`: 256 bits in base64url).
const SECRET_CHARS: usize = 43;
/// Where the feed is served; the secret and `.ics` follow.
const FEED_PREFIX: &str = "/v1/calendar/";
/// The feed's media type (RFC 5545 §8.1).
const ICS_TYPE: &str = "text/calendar; charset=utf-8";

/// The answer to `POST /v1/me/calendar`.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct FeedAddress {
    /// The URL to subscribe to: absolute when the request said which host it was sent
    /// to, else the same as `path`.
    pub url: String,
    /// `/v1/calendar/<secret>.ics`, to join with the gateway's public URL.
    pub path: String,
}

fn unknown_feed() -> AppError {
    AppError::not_found(
        "this calendar feed URL is unknown or was rotated; copy the new one from the \
         app's Preferences",
    )
}

/// `GET /v1/calendar/{secret}.ics`: the user's open deadlines as iCalendar.
#[utoipa::path(
    get,
    path = "/v1/calendar/{file}",
    tag = "read",
    params(("file" = String, Path, description = "`<secret>.ics` from POST /v1/me/calendar")),
    responses((status = 200, description = "The user's open deadlines as an iCalendar feed", content_type = "text/calendar"))
)]
pub async fn feed(State(state): State<AppState>, ApiPath(file): ApiPath<String>) -> Response {
    match feed_text(&state, &file).await {
        Ok(text) => (
            [
                (CONTENT_TYPE, HeaderValue::from_static(ICS_TYPE)),
                // The URL is a credential: no shared cache keeps the answer.
                (CACHE_CONTROL, HeaderValue::from_static("private, no-store")),
            ],
            text,
        )
            .into_response(),
        Err(error) => error.into_response(),
    }
}

async fn feed_text(state: &AppState, file: &str) -> Result<String, AppError> {
    // The router cannot match a suffix after a parameter: `.ics` is checked here, and
    // anything not shaped like a secret is refused before the store is asked.
    let secret = file
        .strip_suffix(".ics")
        .filter(|secret| is_secret(secret))
        .ok_or_else(unknown_feed)?;
    let user = state
        .store
        .calendar_feed_user(&hash_token(secret))
        .await?
        .filter(|user| !user.disabled)
        .ok_or_else(unknown_feed)?;
    let settings = firm_settings(state.store.as_ref(), &user.tenant).await?;
    let now = state.clock.now();
    let filter = DeadlineFilter {
        tenant: user.tenant.clone(),
        owner: Some(user.id.clone()),
        status: Some(DeadlineStatus::Open),
        limit: MAX_FEED,
        ..DeadlineFilter::default()
    };
    let deadlines: Vec<DeadlineView> = state
        .store
        .list_deadlines(filter)
        .await?
        .into_iter()
        .map(|found| view(found, &settings, now))
        .collect();
    if deadlines.len() >= MAX_FEED as usize {
        tracing::warn!(
            user = %user.id,
            max = MAX_FEED,
            "calendar feed at its maximum; deadlines due later may be left out"
        );
    }
    Ok(ics::render(
        &deadlines,
        &user.tenant,
        &calendar_name(&user),
        now,
    ))
}

/// "Tocsin — échéances de Marie Dupont".
fn calendar_name(user: &User) -> String {
    let who = [&user.name, &user.email]
        .into_iter()
        .map(|text| text.trim())
        .find(|text| !text.is_empty());
    match who {
        Some(who) => format!("Tocsin — échéances de {who}"),
        None => "Tocsin — échéances".to_owned(),
    }
}

/// `POST /v1/me/calendar`: a new secret (the previous URL, if any, stops working).
#[utoipa::path(
    post,
    path = "/v1/me/calendar",
    tag = "read",
    security(("user_token" = [])),
    responses((status = 200, description = "A new feed address; the previous one stops working", body = FeedAddress))
)]
pub async fn rotate(
    State(state): State<AppState>,
    signed_in: SignedIn,
    headers: HeaderMap,
    uri: Uri,
) -> Result<Json<FeedAddress>, AppError> {
    let secret = crate::auth::secrets::new_secret();
    state
        .store
        .set_calendar_feed(&signed_in.user.id, &hash_token(&secret))
        .await?;
    let path = format!("{FEED_PREFIX}{secret}.ics");
    let url = public_url(&headers, &uri, &path).unwrap_or_else(|| path.clone());
    Ok(Json(FeedAddress { url, path }))
}

/// `DELETE /v1/me/calendar`: 204, or 404 when the user had no feed.
#[utoipa::path(
    delete,
    path = "/v1/me/calendar",
    tag = "read",
    security(("user_token" = [])),
    responses((status = 204, description = "The feed address no longer works"))
)]
pub async fn revoke(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<StatusCode, AppError> {
    if state.store.revoke_calendar_feed(&signed_in.user.id).await? {
        Ok(StatusCode::NO_CONTENT)
    } else {
        Err(AppError::not_found(
            "you have no calendar feed; create one with POST /v1/me/calendar",
        ))
    }
}

/// Whether `text` is shaped like a secret this gateway issues.
fn is_secret(text: &str) -> bool {
    text.len() == SECRET_CHARS
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The absolute URL of `path` as the caller reached the gateway, if the request says.
fn public_url(headers: &HeaderMap, uri: &Uri, path: &str) -> Option<String> {
    let first = |name: &str| {
        headers
            .get(name)
            .and_then(|value| value.to_str().ok())
            .and_then(|text| text.split(',').next())
            .map(str::trim)
            .filter(|text| !text.is_empty())
    };
    let host = first("x-forwarded-host")
        .or_else(|| first(HOST.as_str()))
        .or_else(|| uri.authority().map(|authority| authority.as_str()))
        .filter(|host| is_host(host))?;
    let scheme = match first("x-forwarded-proto").map(str::to_ascii_lowercase) {
        Some(proto) if proto == "http" || proto == "https" => proto,
        _ if is_loopback(host) => "http".to_owned(),
        _ => "https".to_owned(),
    };
    Some(format!("{scheme}://{host}{path}"))
}

/// A host with an optional port: names, IPv4, bracketed IPv6; nothing that could
/// change the URL's meaning (no `/`, `@`, `?`, `#`, spaces).
fn is_host(host: &str) -> bool {
    !host.is_empty()
        && host.len() <= 255
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':' | b'[' | b']'))
}

fn is_loopback(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or_default()
    } else {
        host.rsplit_once(':').map_or(host, |(name, _)| name)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn ics_secrets_are_43_base64url_characters() {
        let secret = crate::auth::secrets::new_secret();
        assert!(is_secret(&secret), "{secret}");
        assert_ne!(secret, crate::auth::secrets::new_secret());
        assert!(!is_secret(&secret[1..]));
        assert!(!is_secret(&format!("{}=", &secret[1..])));
        assert!(!is_secret("../../../../etc/passwd......................"));
    }

    #[test]
    fn ics_feed_url_follows_the_request() {
        let uri = Uri::from_static("/v1/me/calendar");
        let path = "/v1/calendar/s.ics";
        let url = |pairs| public_url(&headers(pairs), &uri, path);
        assert_eq!(
            url(&[("host", "tocsin.cabinet.fr")]).as_deref(),
            Some("https://tocsin.cabinet.fr/v1/calendar/s.ics")
        );
        assert_eq!(
            url(&[("host", "127.0.0.1:8080")]).as_deref(),
            Some("http://127.0.0.1:8080/v1/calendar/s.ics")
        );
        assert_eq!(
            url(&[("host", "[::1]:8080")]).as_deref(),
            Some("http://[::1]:8080/v1/calendar/s.ics")
        );
        assert_eq!(
            url(&[
                ("host", "127.0.0.1:8080"),
                ("x-forwarded-host", "tocsin.cabinet.fr"),
                ("x-forwarded-proto", "https"),
            ])
            .as_deref(),
            Some("https://tocsin.cabinet.fr/v1/calendar/s.ics")
        );
        assert_eq!(
            url(&[("host", "tocsin.lan:8080"), ("x-forwarded-proto", "http")]).as_deref(),
            Some("http://tocsin.lan:8080/v1/calendar/s.ics")
        );
        assert_eq!(url(&[]), None);
        assert_eq!(url(&[("host", "evil.example/x?")]), None);
        assert_eq!(url(&[("host", "user@evil.example")]), None);
    }
}
