//! The audit trail as `GET /v1/audit` shows it: one record per step of a
//! notification's life — published, delivered to a device, shown, read, acknowledged.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// What happened.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum AuditEvent {
    /// Stored: by an API key (`actor: key:<id>`), the scheduler (`scheduler`), or a
    /// user's action (`user:<id>`, a proposal answer).
    Published,
    /// Written to a device's socket (deadline alerts).
    Delivered,
    /// Shown as an OS notification on a device, as the device reported it (deadline
    /// alerts).
    Shown,
    /// Marked read by the user.
    Read,
    /// The deadline was acknowledged from this alert.
    Acknowledged,
    /// Retracted by the publishing firm (`actor: key:<id>`): its content is gone from
    /// the streams; this record and the `published` one keep what it was.
    Retracted,
}

impl AuditEvent {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            AuditEvent::Published => "published",
            AuditEvent::Delivered => "delivered",
            AuditEvent::Shown => "shown",
            AuditEvent::Read => "read",
            AuditEvent::Acknowledged => "acknowledged",
            AuditEvent::Retracted => "retracted",
        }
    }

    /// Parses [`AuditEvent::as_str`].
    pub fn parse(text: &str) -> Option<AuditEvent> {
        [
            AuditEvent::Published,
            AuditEvent::Delivered,
            AuditEvent::Shown,
            AuditEvent::Read,
            AuditEvent::Acknowledged,
            AuditEvent::Retracted,
        ]
        .into_iter()
        .find(|event| event.as_str() == text)
    }
}

/// One step.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditRecord {
    /// Increasing: page with `after=<id>`.
    pub id: i64,
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub event: AuditEvent,
    /// The notification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_id: Option<String>,
    /// Its deadline (deadline alerts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline_id: Option<String>,
    /// Its dossier.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dossier: Option<String>,
    /// The user it was for (published, delivered, shown) or who acted (read,
    /// acknowledged).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// The device session's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// Who published: `key:<id>`, `scheduler`, `user:<id>`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub actor: Option<String>,
    /// The notification's kind, title, urgency and stream (published).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<serde_json::Value>,
}

/// `GET /v1/audit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct AuditPage {
    /// Oldest first.
    pub records: Vec<AuditRecord>,
    /// Pass as `after` for the next page; absent on the last page.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub next_after: Option<i64>,
}
