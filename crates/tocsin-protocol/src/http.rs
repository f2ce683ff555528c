//! Bodies of the HTTP API under `/v1` (see docs/PROTOCOL.md for routes and statuses).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::notification::{Kind, Notification, NotificationData, Urgency};
use crate::stream::StreamName;

/// The most notifications one batch publish may carry.
pub const MAX_BATCH: usize = 500;
/// The most history items one page returns.
pub const MAX_HISTORY_LIMIT: u32 = 500;

/// A user as the API shows them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserInfo {
    /// The user's id (`user:<id>` is their stream).
    pub id: String,
    /// Their email.
    pub email: String,
    /// Their firm's slug (`tenant:<slug>` is its stream).
    pub tenant: String,
    /// Their firm's display name ("Cabinet Dupont"), for status lines. Sent in
    /// `welcome`; absent from older gateways and from token responses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant_name: Option<String>,
    /// Their role: `admin`, `partner`, `lawyer` or `staff`.
    pub role: String,
}

/// `POST /v1/auth/login`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LoginRequest {
    /// The account's email.
    pub email: String,
    /// The account's password.
    pub password: String,
    /// A name for this device, shown in session lists (e.g. `Laptop — Marie`).
    pub device_name: String,
}

/// `POST /v1/auth/refresh`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RefreshRequest {
    /// The current refresh token; it is replaced by the one in the answer.
    pub refresh_token: String,
}

/// `POST /v1/auth/logout`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct LogoutRequest {
    /// The refresh token of the device session to end.
    pub refresh_token: String,
}

/// The answer to login and refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TokenResponse {
    /// A short-lived JWT for `Authorization: Bearer`.
    pub access_token: String,
    /// A long-lived, single-use token to get the next pair; keep it in a secret store.
    pub refresh_token: String,
    /// Seconds until the access token expires.
    pub expires_in: u64,
    /// Who signed in.
    pub user: UserInfo,
}

/// `POST /v1/publish`: one notification.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishRequest {
    /// `user:<id or email>`, `tenant:<slug>`, `conversation:<id>` or `all`.
    pub to: String,
    /// The firm a `user:` or `conversation:` target belongs to. Required with a
    /// global key (ids and emails are only ever looked up inside one firm); a firm's
    /// key may leave it out, or must name its own firm.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tenant: Option<String>,
    /// The kind and its typed data.
    #[serde(flatten)]
    pub data: NotificationData,
    /// One line.
    pub title: String,
    /// Details.
    #[serde(default)]
    pub body: String,
    /// Defaults from the kind (critical deadlines and system errors are critical).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub urgency: Option<Urgency>,
    /// Where the notification leads in the firm's software (see
    /// [`crate::Notification::url`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// A retry with the same key (per API key) returns the first result and stores
    /// nothing new. Keys are kept as long as the notification is retained.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub idempotency_key: Option<String>,
    /// Store and send it at this time rather than now (a scheduled publish, at most
    /// a year ahead); the gateway's scheduler stores it then, exactly once, even
    /// across restarts. A time already past sends it now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The answer to a publish.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct PublishResponse {
    /// The notification's id.
    pub id: String,
    /// The stream it was stored in.
    pub stream: StreamName,
    /// The stream's epoch.
    pub epoch: String,
    /// Its offset.
    pub offset: u64,
    /// True when the idempotency key had been seen: nothing new was stored.
    pub duplicate: bool,
    /// For a scheduled publish (`deliver_at` in the future): when it will be stored
    /// and sent. `epoch` is then empty and `offset` 0 — the notification has no
    /// position until it is stored.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deliver_at: Option<chrono::DateTime<chrono::Utc>>,
}

/// The answer to `DELETE /v1/notifications/{id}` (the same for a repeated call).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct RetractResponse {
    /// The notification's id.
    pub id: String,
    /// The stream it had been stored in; absent for a scheduled publish withdrawn
    /// before it was stored (nobody ever received it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<StreamName>,
    /// When it was retracted (the first time, for a repeated call).
    pub retracted_at: chrono::DateTime<chrono::Utc>,
    /// True when it was already retracted: nothing changed now.
    pub already: bool,
}

/// `POST /v1/publish/batch`: stored all together or not at all.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchPublishRequest {
    /// At most [`MAX_BATCH`] notifications.
    pub notifications: Vec<PublishRequest>,
}

/// The answer to a batch publish, one result per notification, in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct BatchPublishResponse {
    /// The results, in request order.
    pub results: Vec<PublishResponse>,
}

/// One item of `GET /v1/history`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryItem {
    /// Its offset in the stream.
    pub offset: u64,
    /// Whether the caller has read it.
    pub read: bool,
    /// The notification.
    pub notification: Notification,
}

/// The answer to `GET /v1/history?stream=…&after=…&limit=…`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct HistoryResponse {
    /// The stream.
    pub stream: StreamName,
    /// Its current epoch.
    pub epoch: String,
    /// The oldest retained offset.
    pub first: u64,
    /// The latest offset.
    pub head: u64,
    /// Items after `after`, oldest first.
    pub notifications: Vec<HistoryItem>,
    /// Pass as `after` to get the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<u64>,
}

/// The answer to `GET /v1/unread`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UnreadResponse {
    /// All unread notifications.
    pub total: u64,
    /// Unread per kind (kinds with none are left out).
    pub by_kind: BTreeMap<Kind, u64>,
}

/// `PUT /v1/conversations/{id}/members`: the whole member list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MembersRequest {
    /// User ids or emails, all of the conversation's firm.
    pub members: Vec<String>,
}

/// The answer to a members update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MembersResponse {
    /// The conversation's id.
    pub conversation_id: String,
    /// Its firm.
    pub tenant: String,
    /// Member user ids.
    pub members: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn publish_request_reads_the_documented_shape() {
        let text = r#"{"to":"user:marie@dupont.fr","kind":"email-received","title":"Nouveau mail",
            "data":{"subject":"Conclusions","from":"Me Martin","dossier_number":"2026-0142"},
            "idempotency_key":"mail-77"}"#;
        let req: PublishRequest = serde_json::from_str(text).expect("parses");
        assert_eq!(req.data.kind(), Kind::EmailReceived);
        assert_eq!(req.idempotency_key.as_deref(), Some("mail-77"));
        assert_eq!(req.urgency, None);
    }
}
