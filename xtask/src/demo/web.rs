//! The web SDK's examples, served as the firm's own web app would serve them: the
//! pages of `sdk/web/examples` at `/`, the built SDK at `/sdk/`, `config.json` naming
//! the demo gateway and the conversation, and `/token`, the firm's backend handing
//! the page a Tocsin token for Marie. A real firm signs that token itself
//! (`[auth.external]`, see sdk/web/README.md); the demo has no such backend, so it
//! signs Marie in to the gateway once and renews her token with the refresh token, as
//! a backend keeping her session would.
//!
//! The server binds before the gateway serves: its origin goes into the gateway's
//! `websocket.allowed_origins`.

use std::sync::Arc;

use anyhow::{Context, Result, bail};
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::{Json, Router, routing::get};
use serde::Deserialize;
use tocsin_harness::pages::PageServer;
use tocsin_protocol::http::{LoginRequest, RefreshRequest, TokenResponse};
use tokio::sync::{Mutex, OnceCell};

use super::http::send_json;
use super::scenario::{CONVERSATION, MARIE, PASSWORD};
use crate::process::repo_root;

/// The port a newcomer can remember (the gateway's, plus one); any free one when taken.
const PREFERRED: &str = "127.0.0.1:7851";

/// Marie's session with the gateway, as the firm's backend would hold it.
struct Session {
    http: reqwest::Client,
    gateway: String,
    tokens: Mutex<Option<TokenResponse>>,
}

impl std::fmt::Debug for Session {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the tokens.
        f.debug_struct("Session")
            .field("gateway", &self.gateway)
            .finish_non_exhaustive()
    }
}

/// What `/token` needs, set once the gateway serves.
type Backend = Arc<OnceCell<Session>>;

/// The examples' web server.
#[derive(Debug)]
pub struct WebApp {
    server: PageServer,
    backend: Backend,
}

/// `?reason=` of `/token` (the SDK's `TokenReason`).
#[derive(Debug, Deserialize)]
struct TokenQuery {
    #[serde(default)]
    reason: String,
}

impl WebApp {
    /// Binds the server; fails when the SDK is not built (`npm run build` in sdk/web,
    /// which the demo runs first).
    pub async fn bind() -> Result<WebApp> {
        let sdk = repo_root().join("sdk/web");
        let examples = sdk.join("examples");
        let dist = sdk.join("dist");
        for built in [
            dist.join("index.min.js"),
            examples.join("build/conversation.js"),
        ] {
            if !built.is_file() {
                bail!(
                    "{} is missing: build the web SDK (cd sdk/web && npm ci && npm run build)",
                    built.display()
                );
            }
        }
        let backend: Backend = Arc::new(OnceCell::new());
        let routes = Router::new()
            .route("/token", get(token))
            .with_state(backend.clone());
        let server = PageServer::builder()
            .dir(examples)
            .mount("/sdk", dist)
            .routes(routes)
            .listen_preferring(PREFERRED)
            .start()
            .await?;
        Ok(WebApp { server, backend })
    }

    /// The origin the gateway must allow (`http://127.0.0.1:7851`).
    pub fn origin(&self) -> &str {
        self.server.origin()
    }

    /// Points the pages at the running gateway and signs Marie in for them.
    pub async fn serve_for(&self, gateway: &str, people: &[(String, &str)]) -> Result<()> {
        let http = reqwest::Client::new();
        let tokens = login(&http, gateway).await?;
        let config = serde_json::json!({
            "gateway": gateway,
            "token": "/token",
            "scope": MARIE,
            "conversation": CONVERSATION,
            "people": people.iter().map(|(id, name)| (id.clone(), serde_json::Value::from(*name))).collect::<serde_json::Map<_, _>>(),
        });
        self.server.set_file("/config.json", config.to_string());
        let session = Session {
            http,
            gateway: gateway.to_owned(),
            tokens: Mutex::new(Some(tokens)),
        };
        if self.backend.set(session).is_err() {
            bail!("the web examples were already pointed at a gateway");
        }
        Ok(())
    }

    /// The page's URL.
    pub fn url(&self, page: &str) -> String {
        self.server.url(page)
    }

    /// Checks, as a browser would, that the pages are served and that the token they
    /// get opens the gateway from this origin (CORS included): `--once`'s proof that
    /// the printed URLs work. The SDK itself is proven in Chromium by tests/src/web_sdk.rs.
    pub async fn check(&self, gateway: &str) -> Result<()> {
        let http = reqwest::Client::new();
        for page in [
            "/bell.html",
            "/conversation.html",
            "/sdk/index.min.js",
            "/build/conversation.js",
            "/config.json",
        ] {
            let response = http.get(self.url(page)).send().await?;
            if !response.status().is_success() {
                bail!(
                    "the web examples' server answered {} for {page}",
                    response.status()
                );
            }
        }
        let token: serde_json::Value = http
            .get(self.url("/token?reason=connect"))
            .send()
            .await?
            .json()
            .await?;
        let token = token["token"]
            .as_str()
            .context("/token answered no token")?;
        let response = http
            .get(format!("{gateway}/v1/unread"))
            .bearer_auth(token)
            .header("Origin", self.origin())
            .send()
            .await?;
        let allowed = response
            .headers()
            .get("access-control-allow-origin")
            .and_then(|value| value.to_str().ok())
            == Some(self.origin());
        if !response.status().is_success() || !allowed {
            bail!(
                "the gateway does not serve the web examples' origin {}: {} (CORS allowed: {allowed})",
                self.origin(),
                response.status()
            );
        }
        Ok(())
    }
}

/// `GET /token?reason=…`: the current access token, or a renewed one when the SDK says
/// it needs a new one (`refresh`, `expired`, `rejected`).
async fn token(State(backend): State<Backend>, Query(query): Query<TokenQuery>) -> Response {
    let Some(session) = backend.get() else {
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            "the demo gateway is not up yet",
        )
            .into_response();
    };
    let mut tokens = session.tokens.lock().await;
    if query.reason != "connect" || tokens.is_none() {
        let renewed = match tokens.as_ref() {
            Some(current) => refresh(&session.http, &session.gateway, &current.refresh_token).await,
            None => login(&session.http, &session.gateway).await,
        };
        match renewed {
            Ok(renewed) => *tokens = Some(renewed),
            Err(err) => {
                *tokens = None;
                return (StatusCode::BAD_GATEWAY, format!("{err:#}")).into_response();
            }
        }
    }
    let access = tokens
        .as_ref()
        .map(|t| t.access_token.clone())
        .unwrap_or_default();
    Json(serde_json::json!({ "token": access })).into_response()
}

async fn login(http: &reqwest::Client, gateway: &str) -> Result<TokenResponse> {
    let body = LoginRequest {
        email: MARIE.into(),
        password: PASSWORD.into(),
        device_name: "Web — démo".into(),
    };
    let call = http.post(format!("{gateway}/v1/auth/login")).json(&body);
    send_json(call, "POST /v1/auth/login (the web examples' backend)").await
}

async fn refresh(
    http: &reqwest::Client,
    gateway: &str,
    refresh_token: &str,
) -> Result<TokenResponse> {
    let body = RefreshRequest {
        refresh_token: refresh_token.to_owned(),
    };
    let call = http.post(format!("{gateway}/v1/auth/refresh")).json(&body);
    send_json(call, "POST /v1/auth/refresh (the web examples' backend)").await
}
