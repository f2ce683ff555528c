//! Deadlines the gateway owns: the bodies of `/v1/deadlines` and the acknowledgement
//! a client sends and receives (docs/DEADLINES.md is the prose version).
//!
//! The firm's software declares a deadline once, by its own id; the gateway plans the
//! reminders in working days, raises them as `deadline-alert` notifications to the
//! owner, escalates when nobody acknowledged a critical one, and keeps who was told
//! what and when. Reminder policies and escalation delays stay JSON here: the gateway
//! validates them (and says what to fix), and a newer gateway may accept more shapes.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::notification::DeadlineUrgency;

/// `PUT /v1/deadlines/{id}`: declare or change a deadline (idempotent upsert by the
/// firm's own id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadlineRequest {
    /// The type of deadline, free text ("Délai d'appel").
    pub deadline_type: String,
    /// When it falls due (RFC 3339 with an offset; must be in the future).
    pub due_at: DateTime<chrono::FixedOffset>,
    /// The IANA zone the deadline is defined in (`Europe/Paris`); the firm's zone when
    /// left out. Its local date decides the working days counted before it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_zone: Option<String>,
    /// Who must act: a user of the firm, by id or email.
    pub owner: String,
    /// Who is told when the owner did not acknowledge a critical reminder (another
    /// user of the firm); without one, the firm's partners.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// The dossier's number in the firm's software.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dossier_number: Option<String>,
    /// The dossier's title ("Dupont c/ Martin").
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dossier_title: Option<String>,
    /// Where the deadline leads in the firm's software (same rule as a notification's
    /// `url`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// This deadline's reminder policy, instead of the firm's (see docs/DEADLINES.md).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<serde_json::Value>,
    /// This deadline's escalation delays, instead of the firm's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<serde_json::Value>,
}

/// Where a deadline stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeadlineStatus {
    /// Declared, reminders planned or running.
    Open,
    /// Cancelled because the act was done.
    Done,
    /// Cancelled because the deadline no longer applies.
    Withdrawn,
}

impl DeadlineStatus {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            DeadlineStatus::Open => "open",
            DeadlineStatus::Done => "done",
            DeadlineStatus::Withdrawn => "withdrawn",
        }
    }

    /// Parses the spelling of [`DeadlineStatus::as_str`].
    pub fn parse(text: &str) -> Option<DeadlineStatus> {
        [
            DeadlineStatus::Open,
            DeadlineStatus::Done,
            DeadlineStatus::Withdrawn,
        ]
        .into_iter()
        .find(|status| status.as_str() == text)
    }
}

/// What became of one planned step (a reminder or an escalation).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    /// Not due yet.
    Planned,
    /// Sent (see `sent_at`, `late`, `notification_ids`).
    Sent,
    /// Not sent: a later, more urgent step was due at the same time (the deadline was
    /// declared late, or the gateway was down across both).
    Superseded,
    /// Not sent: the deadline changed (re-planned), was cancelled, or was
    /// acknowledged (escalations).
    Cancelled,
}

impl StepState {
    /// The wire and storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StepState::Planned => "planned",
            StepState::Sent => "sent",
            StepState::Superseded => "superseded",
            StepState::Cancelled => "cancelled",
        }
    }

    /// Parses the spelling of [`StepState::as_str`].
    pub fn parse(text: &str) -> Option<StepState> {
        [
            StepState::Planned,
            StepState::Sent,
            StepState::Superseded,
            StepState::Cancelled,
        ]
        .into_iter()
        .find(|state| state.as_str() == text)
    }
}

/// A reminder of a deadline, planned or sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ReminderView {
    /// `J-3`, `J-0`, `T-30s`: which step of the policy.
    pub label: String,
    /// When it is (or was) due.
    pub at: DateTime<Utc>,
    /// Its urgency.
    pub urgency: DeadlineUrgency,
    /// What became of it.
    pub state: StepState,
    /// When it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    /// Sent after its time (the gateway was down then).
    #[serde(default)]
    pub late: bool,
    /// The notifications it raised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notification_ids: Vec<String>,
}

/// An escalation step of a deadline, planned or sent.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EscalationView {
    /// 1: the backup (else the partners); 2: the partners.
    pub step: u32,
    /// When it is (or was) due.
    pub at: DateTime<Utc>,
    /// What became of it.
    pub state: StepState,
    /// When it was sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sent_at: Option<DateTime<Utc>>,
    /// The users it was sent to.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub recipients: Vec<String>,
    /// The notifications it raised.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notification_ids: Vec<String>,
}

/// Who took a deadline in, when, from which device.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Acknowledgement {
    /// The firm's id of the deadline (`deadline_id` of its alerts).
    pub deadline_id: String,
    /// The user's id.
    pub user_id: String,
    /// The user's name.
    pub user_name: String,
    /// The device session's name ("Laptop — Marie"), when known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device: Option<String>,
    /// When.
    pub at: DateTime<Utc>,
    /// The alert it was acknowledged from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub notification_id: Option<String>,
}

/// A deadline and everything the gateway did about it: `GET /v1/deadlines/{id}`, and
/// the answer to `PUT`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadlineView {
    /// The firm's own id.
    pub id: String,
    /// The type ("Délai d'appel").
    pub deadline_type: String,
    /// When it falls due, in its zone's offset.
    pub due_at: DateTime<chrono::FixedOffset>,
    /// Its zone.
    pub time_zone: String,
    /// The owner's user id.
    pub owner: String,
    /// The backup's user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub backup: Option<String>,
    /// The dossier's number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dossier_number: Option<String>,
    /// The dossier's title.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dossier_title: Option<String>,
    /// Its link.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// Open, done or withdrawn.
    pub status: DeadlineStatus,
    /// Working days left as of now in the firm's calendar (0 = due today).
    pub working_days_left: i64,
    /// The urgency of the last reminder sent (`info` before the first).
    pub urgency: DeadlineUrgency,
    /// Every reminder of the current plan, oldest first (and those of earlier plans
    /// that were sent).
    pub reminders: Vec<ReminderView>,
    /// Escalation steps, planned or sent.
    pub escalations: Vec<EscalationView>,
    /// The first acknowledgement, which stopped the escalation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub acknowledged: Option<Acknowledgement>,
    /// Every acknowledgement (one per user who gave one).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub acknowledgements: Vec<Acknowledgement>,
    /// When it was first declared.
    pub created_at: DateTime<Utc>,
    /// When it last changed.
    pub updated_at: DateTime<Utc>,
}

/// `GET /v1/deadlines`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadlineList {
    /// Matching deadlines, soonest due first.
    pub deadlines: Vec<DeadlineView>,
}

/// Why a deadline is cancelled (`DELETE /v1/deadlines/{id}?reason=…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, Default)]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum CancelReason {
    /// The act was done (the default).
    #[default]
    Done,
    /// The deadline no longer applies.
    Withdrawn,
}

/// A deadline that was closed (`DELETE /v1/deadlines/{id}`): nothing more is raised for
/// it, and nobody needs to acknowledge it any more.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ClosedDeadline {
    /// The firm's id (`deadline_id` of its alerts).
    pub deadline_id: String,
    /// `done` or `withdrawn`.
    pub status: DeadlineStatus,
    /// When it was closed.
    pub at: DateTime<Utc>,
}
