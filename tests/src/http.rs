//! The gateway's HTTP API as a test sees it: every call returns the status and the
//! body, and the `_ok` variants assert the documented success status.

use std::time::Duration;

use reqwest::StatusCode;
use serde::de::DeserializeOwned;
use tocsin_protocol::ErrorBody;
use tocsin_protocol::deadline::{DeadlineRequest, DeadlineView};
use tocsin_protocol::http::{
    BatchPublishRequest, BatchPublishResponse, HistoryResponse, LoginRequest, MembersRequest,
    PublishRequest, PublishResponse, TokenResponse, UnreadResponse,
};

use crate::gateway::UserFixture;

/// How long one HTTP request may take before the test fails.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// An HTTP client bound to one gateway address.
#[derive(Debug, Clone)]
pub struct Api {
    /// A pooled client.
    client: reqwest::Client,
    /// `http://127.0.0.1:PORT`.
    base: String,
}

/// A response: its status and its body (JSON when it parses, else a string).
#[derive(Debug, Clone)]
pub struct Reply {
    /// The HTTP status.
    pub status: StatusCode,
    /// The body; `Null` when empty.
    pub body: serde_json::Value,
    /// The response headers (`Retry-After` and the like).
    pub headers: reqwest::header::HeaderMap,
}

impl Reply {
    /// The body as `T`, panicking with the body when it does not fit.
    pub fn json<T: DeserializeOwned>(&self) -> T {
        serde_json::from_value(self.body.clone()).unwrap_or_else(|e| {
            panic!(
                "the {} body does not parse as {}: {e}\n{}",
                self.status,
                std::any::type_name::<T>(),
                self.body
            )
        })
    }

    /// The body as the documented error shape.
    pub fn error(&self) -> ErrorBody {
        self.json()
    }

    /// Panics unless the status is `expected`.
    pub fn expect_status(&self, expected: u16, what: &str) -> &Self {
        assert_eq!(
            self.status.as_u16(),
            expected,
            "{what}: expected HTTP {expected}, got {} with body {}",
            self.status,
            self.body
        );
        self
    }
}

impl Api {
    /// A client for `base` (`http://host:port`).
    pub fn new(base: String) -> Api {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .build()
            .expect("a reqwest client can be built");
        Api { client, base }
    }

    /// A client for `base` built by the caller (one that trusts a test's own
    /// certificate, for `https://`).
    pub fn with_client(client: reqwest::Client, base: String) -> Api {
        Api { client, base }
    }

    /// Sends a request and reads the whole reply; a transport error is returned, not a
    /// panic, so publishers can notice that the gateway died.
    pub async fn send(&self, request: reqwest::RequestBuilder) -> reqwest::Result<Reply> {
        let response = request.send().await?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        Ok(Reply {
            status,
            body,
            headers,
        })
    }

    async fn call(&self, request: reqwest::RequestBuilder, what: &str) -> Reply {
        self.send(request)
            .await
            .unwrap_or_else(|e| panic!("{what}: the request failed: {e}"))
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// `GET path` without credentials.
    pub async fn get(&self, path: &str) -> Reply {
        self.call(self.client.get(self.url(path)), path).await
    }

    /// `POST /v1/auth/login`.
    pub async fn login_raw(&self, email: &str, password: &str) -> Reply {
        let body = LoginRequest {
            email: email.to_owned(),
            password: password.to_owned(),
            device_name: "tocsin-e2e".to_owned(),
        };
        self.call(
            self.client.post(self.url("/v1/auth/login")).json(&body),
            "login",
        )
        .await
    }

    /// `POST /v1/auth/refresh`.
    pub async fn refresh(&self, refresh_token: &str) -> Reply {
        let body = tocsin_protocol::http::RefreshRequest {
            refresh_token: refresh_token.to_owned(),
        };
        let request = self.client.post(self.url("/v1/auth/refresh")).json(&body);
        self.call(request, "refresh").await
    }

    /// `POST /v1/auth/logout`.
    pub async fn logout(&self, refresh_token: &str) -> Reply {
        let body = tocsin_protocol::http::LogoutRequest {
            refresh_token: refresh_token.to_owned(),
        };
        let request = self.client.post(self.url("/v1/auth/logout")).json(&body);
        self.call(request, "logout").await
    }

    /// Logs a fixture user in, asserting 200.
    pub async fn login(&self, user: &UserFixture) -> TokenResponse {
        self.login_raw(&user.email, &user.password)
            .await
            .expect_status(200, "login")
            .json()
    }

    /// `POST /v1/publish` as a raw request (for error statuses).
    pub fn publish_request(&self, key: &str, request: &PublishRequest) -> reqwest::RequestBuilder {
        self.client
            .post(self.url("/v1/publish"))
            .bearer_auth(key)
            .json(request)
    }

    /// `POST /v1/publish`.
    pub async fn publish(&self, key: &str, request: &PublishRequest) -> Reply {
        self.call(self.publish_request(key, request), "publish")
            .await
    }

    /// `POST /v1/publish`; `None` when the gateway cannot be reached or does not
    /// acknowledge (a publisher then retries with the same idempotency key).
    pub async fn try_publish(
        &self,
        key: &str,
        request: &PublishRequest,
    ) -> Option<PublishResponse> {
        let response = self.publish_request(key, request).send().await.ok()?;
        if !response.status().is_success() {
            return None;
        }
        response.json().await.ok()
    }

    /// `POST /v1/publish`, asserting 201.
    pub async fn publish_ok(&self, key: &str, request: &PublishRequest) -> PublishResponse {
        self.publish(key, request)
            .await
            .expect_status(201, "publish")
            .json()
    }

    /// `POST /v1/publish/batch`.
    pub async fn publish_batch(&self, key: &str, notifications: Vec<PublishRequest>) -> Reply {
        let body = BatchPublishRequest { notifications };
        let request = self
            .client
            .post(self.url("/v1/publish/batch"))
            .bearer_auth(key)
            .json(&body);
        self.call(request, "batch publish").await
    }

    /// `POST /v1/publish/batch`, asserting 201.
    pub async fn publish_batch_ok(
        &self,
        key: &str,
        notifications: Vec<PublishRequest>,
    ) -> Vec<PublishResponse> {
        let count = notifications.len();
        let reply: BatchPublishResponse = self
            .publish_batch(key, notifications)
            .await
            .expect_status(201, "batch publish")
            .json();
        assert_eq!(reply.results.len(), count, "one result per notification");
        reply.results
    }

    /// `GET /v1/history`.
    pub async fn history(
        &self,
        token: &str,
        stream: &str,
        after: Option<u64>,
        limit: Option<u32>,
    ) -> Reply {
        let mut query = vec![("stream", stream.to_owned())];
        if let Some(after) = after {
            query.push(("after", after.to_string()));
        }
        if let Some(limit) = limit {
            query.push(("limit", limit.to_string()));
        }
        let request = self
            .client
            .get(self.url("/v1/history"))
            .bearer_auth(token)
            .query(&query);
        self.call(request, "history").await
    }

    /// `GET /v1/history`, asserting 200.
    pub async fn history_ok(
        &self,
        token: &str,
        stream: &str,
        after: Option<u64>,
        limit: Option<u32>,
    ) -> HistoryResponse {
        self.history(token, stream, after, limit)
            .await
            .expect_status(200, "history")
            .json()
    }

    /// `GET /v1/unread`, asserting 200.
    pub async fn unread(&self, token: &str) -> UnreadResponse {
        let request = self.client.get(self.url("/v1/unread")).bearer_auth(token);
        self.call(request, "unread")
            .await
            .expect_status(200, "unread")
            .json()
    }

    /// `PUT /v1/conversations/{id}/members`.
    pub async fn set_members(
        &self,
        credential: &str,
        conversation: &str,
        members: &[&str],
    ) -> Reply {
        let body = MembersRequest {
            members: members.iter().map(|m| (*m).to_owned()).collect(),
        };
        let request = self
            .client
            .put(self.url(&format!("/v1/conversations/{conversation}/members")))
            .bearer_auth(credential)
            .json(&body);
        self.call(request, "set members").await
    }

    /// `PUT /v1/deadlines/{id}`.
    pub async fn put_deadline(&self, key: &str, id: &str, body: &DeadlineRequest) -> Reply {
        let request = self
            .client
            .put(self.url(&format!("/v1/deadlines/{id}")))
            .bearer_auth(key)
            .json(body);
        self.call(request, "put deadline").await
    }

    /// `GET /v1/deadlines/{id}`.
    pub async fn deadline(&self, key: &str, id: &str) -> Reply {
        let request = self
            .client
            .get(self.url(&format!("/v1/deadlines/{id}")))
            .bearer_auth(key);
        self.call(request, "get deadline").await
    }

    /// `GET /v1/deadlines/{id}`, expecting it to exist.
    pub async fn deadline_ok(&self, key: &str, id: &str) -> DeadlineView {
        self.deadline(key, id)
            .await
            .expect_status(200, "get deadline")
            .json()
    }

    /// `DELETE /v1/deadlines/{id}?reason=…`.
    pub async fn cancel_deadline(&self, key: &str, id: &str, reason: &str) -> Reply {
        let request = self
            .client
            .delete(self.url(&format!("/v1/deadlines/{id}?reason={reason}")))
            .bearer_auth(key);
        self.call(request, "cancel deadline").await
    }

    /// `DELETE /v1/notifications/{id}`: the firm retracts a notification.
    pub async fn retract(&self, key: &str, id: &str) -> Reply {
        let request = self
            .client
            .delete(self.url(&format!("/v1/notifications/{id}")))
            .bearer_auth(key);
        self.call(request, "retract").await
    }

    /// `GET /v1/deadlines?{query}`.
    pub async fn deadlines(&self, key: &str, query: &str) -> Reply {
        let request = self
            .client
            .get(self.url(&format!("/v1/deadlines?{query}")))
            .bearer_auth(key);
        self.call(request, "list deadlines").await
    }

    /// `PUT /v1/deadline-settings`.
    pub async fn put_deadline_settings(&self, key: &str, settings: &serde_json::Value) -> Reply {
        let request = self
            .client
            .put(self.url("/v1/deadline-settings"))
            .bearer_auth(key)
            .json(settings);
        self.call(request, "put deadline settings").await
    }
}
