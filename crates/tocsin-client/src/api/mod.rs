//! The gateway's HTTP API (docs/PROTOCOL.md §3 and §7): sign-in, token refresh,
//! sign-out, history, unread counts, publishing (for `tocsin send`), and the user's
//! calendar feed (`calendar.rs`).
//!
//! One [`ApiClient`] per gateway; it is cheap to clone (the connection pool is shared).
//! Every call returns an [`ApiError`] sorted by what to do about it. Nothing here
//! retries: a refresh must never be sent twice with the same token (the second one
//! looks like a stolen token and signs the device out), so retry policy belongs to the
//! caller, which knows what is safe to repeat.

mod calendar;
mod error;
mod pin;
mod url;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;
use std::time::Duration;

use reqwest::header::LOCATION;
use reqwest::{Method, RequestBuilder, StatusCode};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use tocsin_protocol::http::{
    HistoryResponse, LoginRequest, LogoutRequest, PublishRequest, PublishResponse, RefreshRequest,
    TokenResponse, UnreadResponse,
};
use tocsin_protocol::{Kind, StreamName};

pub use calendar::CalendarFeed;
pub use error::ApiError;
pub use pin::{CertFingerprint, CertificateChanged, FingerprintError, probe};
pub(crate) use pin::{CertProblem, cert_problem};
pub use url::{ServerUrl, ServerUrlError};

/// How long establishing a connection (TCP and TLS) may take.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a whole request may take, answer included.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest answer accepted (a full history page is a few MiB at most).
const MAX_RESPONSE_BYTES: usize = 16 * 1024 * 1024;
/// Sent as `User-Agent`.
const USER_AGENT: &str = concat!("tocsin-client/", env!("CARGO_PKG_VERSION"));

/// A client for one gateway's HTTP API.
#[derive(Debug, Clone)]
pub struct ApiClient {
    /// The gateway.
    server: ServerUrl,
    /// The connection pool (rustls, no redirects).
    http: reqwest::Client,
}

/// An answer with an HTTP status, before decoding.
struct Answer {
    /// The 2xx status.
    status: StatusCode,
    /// The whole body.
    body: Vec<u8>,
}

impl ApiClient {
    /// A client for `server`, with the default timeouts ([`CONNECT_TIMEOUT`],
    /// [`REQUEST_TIMEOUT`]).
    pub fn new(server: ServerUrl) -> Self {
        Self::with_timeouts(server, CONNECT_TIMEOUT, REQUEST_TIMEOUT)
    }

    /// A client with other timeouts (tests, slow links).
    pub fn with_timeouts(server: ServerUrl, connect: Duration, request: Duration) -> Self {
        let build = || {
            let builder = reqwest::Client::builder()
                .user_agent(USER_AGENT)
                .connect_timeout(connect)
                .timeout(request)
                // The API never redirects; following one could send a token elsewhere.
                .redirect(reqwest::redirect::Policy::none())
                .https_only(server.is_https());
            match server.pinned_tls() {
                Some(tls) => builder.use_preconfigured_tls((*tls).clone()).build(),
                None => builder.build(),
            }
        };
        // With rustls and these options building cannot fail (it fails only on TLS
        // options not used here); should it ever, the default client still works.
        let http = build().unwrap_or_else(|err| {
            tracing::error!(error = %err, "cannot configure the HTTP client; using defaults");
            reqwest::Client::default()
        });
        ApiClient { server, http }
    }

    /// The gateway this client talks to.
    pub fn server(&self) -> &ServerUrl {
        &self.server
    }

    /// `POST /v1/auth/login`: signs in with a built-in account and creates a device
    /// session. A wrong email or password is [`ApiError::Unauthorized`].
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        device_name: &str,
    ) -> Result<TokenResponse, ApiError> {
        let body = LoginRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            device_name: device_name.to_owned(),
        };
        let request = self.request(Method::POST, "v1/auth/login").json(&body);
        self.call_json(request, "v1/auth/login").await
    }

    /// `POST /v1/auth/refresh`: trades the refresh token for a new pair. The token
    /// given is dead once the gateway answers: store the new one before anything else.
    /// [`ApiError::Unauthorized`] means "signed out". After
    /// [`ApiError::Unreachable`] with `maybe_delivered`, the token may already have
    /// been rotated: sending it again would revoke the session.
    pub async fn refresh(&self, refresh_token: &str) -> Result<TokenResponse, ApiError> {
        let body = RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        let request = self.request(Method::POST, "v1/auth/refresh").json(&body);
        self.call_json(request, "v1/auth/refresh").await
    }

    /// `POST /v1/auth/logout`: ends the device session (idempotent).
    pub async fn logout(&self, refresh_token: &str) -> Result<(), ApiError> {
        let body = LogoutRequest {
            refresh_token: refresh_token.to_owned(),
        };
        let request = self.request(Method::POST, "v1/auth/logout").json(&body);
        self.call(request, "v1/auth/logout").await.map(drop)
    }

    /// `GET /v1/history`: up to `limit` (1–500) notifications of `stream` after offset
    /// `after`, oldest first, with the caller's read flags; only unread ones when
    /// `unread_only` (a gateway older than that filter sends all, which is safe).
    pub async fn history(
        &self,
        access_token: &str,
        stream: &StreamName,
        after: u64,
        limit: u32,
        unread_only: bool,
    ) -> Result<HistoryResponse, ApiError> {
        let mut query = vec![
            ("stream", stream.to_string()),
            ("after", after.to_string()),
            ("limit", limit.to_string()),
        ];
        if unread_only {
            query.push(("unread", "true".into()));
        }
        let request = self
            .request(Method::GET, "v1/history")
            .bearer_auth(access_token)
            .query(&query);
        self.call_json(request, "v1/history").await
    }

    /// `GET /v1/unread`: unread counts over every readable stream. Kinds this client
    /// does not know are counted together under [`Kind::Unknown`].
    pub async fn unread(&self, access_token: &str) -> Result<UnreadResponse, ApiError> {
        /// `UnreadResponse` with kinds as text, so that two kinds this build does not
        /// know add up instead of one replacing the other.
        #[derive(Deserialize)]
        struct LenientUnread {
            total: u64,
            #[serde(default)]
            by_kind: BTreeMap<String, u64>,
        }
        let request = self
            .request(Method::GET, "v1/unread")
            .bearer_auth(access_token);
        let lenient: LenientUnread = self.call_json(request, "v1/unread").await?;
        let mut by_kind = BTreeMap::new();
        for (kind, count) in lenient.by_kind {
            *by_kind.entry(Kind::parse_lenient(&kind)).or_default() += count;
        }
        Ok(UnreadResponse {
            total: lenient.total,
            by_kind,
        })
    }

    /// `POST /v1/publish` with an API key (`tsk_…`). `duplicate` in the answer says
    /// the idempotency key had been seen and nothing new was stored.
    pub async fn publish(
        &self,
        api_key: &str,
        notification: &PublishRequest,
    ) -> Result<PublishResponse, ApiError> {
        let request = self
            .request(Method::POST, "v1/publish")
            .bearer_auth(api_key)
            .json(notification);
        self.call_json(request, "v1/publish").await
    }

    fn request(&self, method: Method, route: &str) -> RequestBuilder {
        self.http.request(method, self.server.endpoint(route))
    }

    /// Sends, then decodes a 2xx JSON answer into `T`.
    async fn call_json<T: DeserializeOwned>(
        &self,
        request: RequestBuilder,
        route: &str,
    ) -> Result<T, ApiError> {
        let answer = self.call(request, route).await?;
        serde_json::from_slice(&answer.body).map_err(|err| {
            ApiError::Protocol(format!(
                "{route}: HTTP {} with a body that does not match the protocol: {err}",
                answer.status
            ))
        })
    }

    /// Sorts a failed send; a certificate the usual roots refuse is probed for its
    /// fingerprint, so the app can ask the user to confirm it.
    async fn send_failed(&self, err: &reqwest::Error, url: &str) -> ApiError {
        match pin::cert_problem(err) {
            Some(pin::CertProblem::Changed(changed)) => ApiError::CertificateChanged(changed),
            Some(pin::CertProblem::Refused(reason)) if self.server.pin().is_none() => {
                match probe(&self.server, CONNECT_TIMEOUT).await {
                    Ok(fingerprint) => ApiError::UntrustedCertificate {
                        url: url.to_owned(),
                        reason,
                        fingerprint,
                    },
                    Err(_) => error::from_transport(err, url, self.server.is_https()),
                }
            }
            _ => error::from_transport(err, url, self.server.is_https()),
        }
    }

    /// Sends and reads the answer; any status but 2xx becomes an [`ApiError`].
    async fn call(&self, request: RequestBuilder, route: &str) -> Result<Answer, ApiError> {
        let url = self.server.endpoint(route);
        let transport =
            |err: reqwest::Error| error::from_transport(&err, url.as_str(), self.server.is_https());
        let mut response = match request.send().await {
            Ok(response) => response,
            Err(err) => return Err(self.send_failed(&err, url.as_str()).await),
        };
        let status = response.status();
        let headers = response.headers().clone();
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(transport)? {
            if body.len() + chunk.len() > MAX_RESPONSE_BYTES {
                return Err(ApiError::Protocol(format!(
                    "{route}: answer larger than {MAX_RESPONSE_BYTES} bytes"
                )));
            }
            body.extend_from_slice(&chunk);
        }
        if status.is_success() {
            return Ok(Answer { status, body });
        }
        if status.is_redirection() {
            let location = headers
                .get(LOCATION)
                .and_then(|value| value.to_str().ok())
                .unwrap_or("nowhere");
            return Err(ApiError::Protocol(format!(
                "{route}: redirected (HTTP {status}) to {location}; is the server URL right?"
            )));
        }
        if status.is_informational() {
            return Err(ApiError::Protocol(format!("{route}: HTTP {status}")));
        }
        Err(error::from_status(status, &headers, &body))
    }
}
