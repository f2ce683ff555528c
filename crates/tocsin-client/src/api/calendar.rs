//! The signed-in user's calendar feed (the gateway's `api/calendar.rs`): `POST
//! /v1/me/calendar` makes a new secret feed URL (the previous one stops working) and
//! `DELETE /v1/me/calendar` turns the feed off. Both take the user's access token.
//!
//! The gateway does not know the public URL it is reached at: its `url` is absolute
//! only when the request said which host it was sent to, else it is the bare `path`.
//! [`CalendarFeed::address`] completes it with the server URL this client uses.

use reqwest::{Method, StatusCode};
use serde::Deserialize;

use super::{ApiClient, ApiError, ServerUrl};

/// The route of both calls.
const ROUTE: &str = "v1/me/calendar";

/// The answer to `POST /v1/me/calendar`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CalendarFeed {
    /// The URL to subscribe to, or the same as `path` when the gateway could not tell.
    pub url: String,
    /// `/v1/calendar/<secret>.ics`, relative to the gateway's root.
    pub path: String,
}

impl CalendarFeed {
    /// The URL a calendar app subscribes to: the gateway's `url` when it is absolute,
    /// else `path` joined to `server` (whose path prefix, if any, is kept).
    pub fn address(&self, server: &ServerUrl) -> String {
        let absolute = reqwest::Url::parse(&self.url)
            .is_ok_and(|url| matches!(url.scheme(), "https" | "http"));
        if absolute {
            return self.url.clone();
        }
        server.endpoint(&self.path).to_string()
    }
}

impl ApiClient {
    /// `POST /v1/me/calendar`: a new secret feed URL for the signed-in user; the
    /// previous URL, if any, stops working at once.
    pub async fn rotate_calendar_feed(&self, access_token: &str) -> Result<CalendarFeed, ApiError> {
        let request = self.request(Method::POST, ROUTE).bearer_auth(access_token);
        self.call_json(request, ROUTE).await
    }

    /// `DELETE /v1/me/calendar`: turns the feed off. `Ok(false)` when there was none
    /// (the gateway's 404): nothing was left to turn off, which is what was asked.
    pub async fn revoke_calendar_feed(&self, access_token: &str) -> Result<bool, ApiError> {
        let request = self
            .request(Method::DELETE, ROUTE)
            .bearer_auth(access_token);
        match self.call(request, ROUTE).await {
            Ok(_) => Ok(true),
            Err(ApiError::Server { status, .. }) if status == StatusCode::NOT_FOUND.as_u16() => {
                Ok(false)
            }
            Err(err) => Err(err),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use axum::Router;
    use axum::extract::State;
    use axum::http::{HeaderMap, StatusCode, header};
    use axum::response::{IntoResponse, Response};
    use axum::routing::post;
    use serde_json::json;

    use super::*;

    /// Whether a feed exists, as the fake gateway keeps it.
    type Feed = Arc<Mutex<bool>>;

    fn authorized(headers: &HeaderMap) -> bool {
        headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            == Some("Bearer at_1")
    }

    async fn rotate(State(feed): State<Feed>, headers: HeaderMap) -> Response {
        if !authorized(&headers) {
            let body = json!({"code": "unauthorized", "message": "expired token"});
            return (StatusCode::UNAUTHORIZED, axum::Json(body)).into_response();
        }
        *feed.lock().expect("lock") = true;
        // What the gateway answers without a usable Host: the path alone.
        let path = "/v1/calendar/s3cr3t.ics";
        axum::Json(json!({"url": path, "path": path})).into_response()
    }

    async fn revoke(State(feed): State<Feed>, headers: HeaderMap) -> Response {
        if !authorized(&headers) {
            return StatusCode::UNAUTHORIZED.into_response();
        }
        let had = std::mem::replace(&mut *feed.lock().expect("lock"), false);
        if had {
            StatusCode::NO_CONTENT.into_response()
        } else {
            let body = json!({"code": "not_found", "message": "no calendar feed"});
            (StatusCode::NOT_FOUND, axum::Json(body)).into_response()
        }
    }

    /// A fake gateway mounted under `/tocsin/`, as behind a reverse proxy.
    async fn serve() -> ServerUrl {
        let app = Router::new()
            .route("/tocsin/v1/me/calendar", post(rotate).delete(revoke))
            .with_state(Feed::default());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        ServerUrl::parse(&format!("http://{addr}/tocsin")).expect("url")
    }

    #[tokio::test]
    async fn rotate_then_revoke_once_with_the_path_joined_to_the_server() {
        let server = serve().await;
        let api = ApiClient::new(server.clone());
        let feed = api.rotate_calendar_feed("at_1").await.expect("rotated");
        assert_eq!(feed.path, "/v1/calendar/s3cr3t.ics");
        assert_eq!(
            feed.address(&server),
            format!("{}v1/calendar/s3cr3t.ics", server.as_str()),
            "the server's prefix is kept"
        );
        assert!(api.revoke_calendar_feed("at_1").await.expect("revoked"));
        assert!(
            !api.revoke_calendar_feed("at_1").await.expect("none left"),
            "a 404 is nothing left to turn off"
        );
        let refused = api.rotate_calendar_feed("stale").await;
        assert!(
            matches!(refused, Err(ApiError::Unauthorized(ref m)) if m == "expired token"),
            "{refused:?}"
        );
    }

    #[test]
    fn an_absolute_url_from_the_gateway_is_taken_as_it_is() {
        let server = ServerUrl::parse("https://tocsin.cabinet.fr/").expect("url");
        let feed = CalendarFeed {
            url: "https://public.cabinet.fr/v1/calendar/abc.ics".into(),
            path: "/v1/calendar/abc.ics".into(),
        };
        assert_eq!(
            feed.address(&server),
            "https://public.cabinet.fr/v1/calendar/abc.ics"
        );
        let bare = CalendarFeed {
            url: "/v1/calendar/abc.ics".into(),
            path: "/v1/calendar/abc.ics".into(),
        };
        assert_eq!(
            bare.address(&server),
            "https://tocsin.cabinet.fr/v1/calendar/abc.ics"
        );
    }
}
