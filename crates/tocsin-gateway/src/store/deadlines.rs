//! The values the store takes and returns for deadlines and the schedule.
//!
//! The store does not plan: the `deadlines` module computes the steps (working days,
//! the firm's calendar) and the notifications each step raises; the store keeps them
//! and applies each step at most once, its notifications and its "sent" mark in one
//! transaction.

use chrono::{DateTime, FixedOffset, Utc};
use tocsin_protocol::deadline::{Acknowledgement, DeadlineStatus, StepState};
use tocsin_protocol::notification::DeadlineUrgency;

use super::AppendRequest;

/// A deadline as stored (the firm's declaration, and where it stands).
#[derive(Debug, Clone, PartialEq)]
pub struct DeadlineRecord {
    /// The firm.
    pub tenant: String,
    /// The firm's own id.
    pub external_id: String,
    /// Free text ("Délai d'appel").
    pub deadline_type: String,
    /// When it falls due.
    pub due_at: DateTime<FixedOffset>,
    /// Its IANA zone.
    pub time_zone: String,
    /// The owner's user id.
    pub owner: String,
    /// The backup's user id.
    pub backup: Option<String>,
    /// The dossier's number.
    pub dossier_number: Option<String>,
    /// The dossier's title.
    pub dossier_title: Option<String>,
    /// Its link.
    pub url: Option<String>,
    /// Its own reminder policy (JSON), else the firm's.
    pub policy: Option<String>,
    /// Its own escalation delays (JSON), else the firm's.
    pub escalation: Option<String>,
    /// Open, done or withdrawn.
    pub status: DeadlineStatus,
    /// Bumped each time the reminders are planned again.
    pub revision: i64,
    /// First declared.
    pub created_at: DateTime<Utc>,
    /// Last changed.
    pub updated_at: DateTime<Utc>,
}

/// What a schedule step does when it falls due.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepKind {
    /// A reminder to the deadline's owner.
    Reminder,
    /// An escalation to the backup or the partners.
    Escalation,
    /// A publish with `deliver_at`.
    Publish,
}

impl StepKind {
    /// The storage spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            StepKind::Reminder => "reminder",
            StepKind::Escalation => "escalation",
            StepKind::Publish => "publish",
        }
    }

    /// Parses [`StepKind::as_str`].
    pub fn parse(text: &str) -> Option<StepKind> {
        [StepKind::Reminder, StepKind::Escalation, StepKind::Publish]
            .into_iter()
            .find(|kind| kind.as_str() == text)
    }
}

/// A step to add to the schedule.
#[derive(Debug, Clone, PartialEq)]
pub struct NewStep {
    /// When it is due.
    pub at: DateTime<Utc>,
    /// What it does.
    pub kind: StepKind,
    /// The policy step's index (reminders) or the escalation step (1, 2).
    pub step: u32,
    /// `J-3`, `T-30s` (reminders).
    pub label: Option<String>,
    /// The reminder's urgency.
    pub urgency: Option<DeadlineUrgency>,
    /// `Planned`, or `Superseded` for a past step recorded as not sent.
    pub state: StepState,
}

/// A step of the schedule as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct ScheduleStep {
    /// Its id.
    pub id: i64,
    /// When it is due.
    pub at: DateTime<Utc>,
    /// What it does.
    pub kind: StepKind,
    /// Where it stands.
    pub state: StepState,
    /// The firm (none for a publish to `all`).
    pub tenant: Option<String>,
    /// The deadline's firm id (reminders and escalations).
    pub deadline_id: Option<String>,
    /// The deadline's revision it was planned for.
    pub revision: i64,
    /// Policy step index, or escalation step.
    pub step: u32,
    /// The reminder's label.
    pub label: Option<String>,
    /// The reminder's urgency.
    pub urgency: Option<DeadlineUrgency>,
    /// When it was applied.
    pub fired_at: Option<DateTime<Utc>>,
    /// Applied after its time.
    pub late: bool,
    /// Who it was sent to.
    pub recipients: Vec<String>,
    /// What it raised.
    pub notification_ids: Vec<String>,
    /// A scheduled publish: the notification to store (JSON of `AppendRequest`'s parts).
    pub payload: Option<String>,
}

/// A deadline with its schedule and acknowledgements.
#[derive(Debug, Clone, PartialEq)]
pub struct DeadlineState {
    /// The declaration.
    pub record: DeadlineRecord,
    /// Its reminders and escalations, by time.
    pub steps: Vec<ScheduleStep>,
    /// Who took it in, first one first.
    pub acknowledgements: Vec<Acknowledgement>,
}

/// `PUT /v1/deadlines/{id}` as the store applies it.
#[derive(Debug, Clone)]
pub struct DeadlineUpsert {
    /// The new declaration (`revision` is set by the store).
    pub record: DeadlineRecord,
    /// The revision the caller based its decision on (`None`: the deadline must be
    /// new). Another change in between is a conflict: read again and decide again.
    pub expected_revision: Option<i64>,
    /// New steps replacing every planned one, or `None` to keep the plan (only
    /// descriptive fields changed).
    pub plan: Option<Vec<NewStep>>,
}

/// Which deadlines to list.
#[derive(Debug, Clone, Default)]
pub struct DeadlineFilter {
    /// The firm.
    pub tenant: String,
    /// Only this owner's (user id).
    pub owner: Option<String>,
    /// Only this dossier's.
    pub dossier: Option<String>,
    /// Due at or after.
    pub due_from: Option<DateTime<Utc>>,
    /// Due before.
    pub due_to: Option<DateTime<Utc>>,
    /// Only these.
    pub status: Option<DeadlineStatus>,
    /// At most this many.
    pub limit: u32,
}

/// A due step with what deciding about it needs.
#[derive(Debug, Clone)]
pub struct DueStep {
    /// The step.
    pub step: ScheduleStep,
    /// Its deadline, for reminders and escalations.
    pub deadline: Option<DeadlineRecord>,
    /// Whether anyone acknowledged the deadline.
    pub acknowledged: bool,
    /// Whether an escalation of the step's revision is already planned or sent (a
    /// second critical reminder does not start another one).
    pub escalated: bool,
}

/// What to do with one due step, applied at most once: only a step still `Planned`
/// is changed; one that was meanwhile cancelled or applied is left alone.
#[derive(Debug, Clone)]
pub struct Firing {
    /// The step.
    pub step_id: i64,
    /// `Sent`, `Superseded` or `Cancelled`.
    pub outcome: StepState,
    /// Applied after its time.
    pub late: bool,
    /// The notifications it raises (stored in the same transaction).
    pub appends: Vec<AppendRequest>,
    /// Who they go to.
    pub recipients: Vec<String>,
    /// Steps it plans next for the same deadline (the escalation after a critical
    /// reminder, the second escalation after the first).
    pub follow_ups: Vec<NewStep>,
}

/// A firm's webhook: where its events go and the secret that signs them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Webhook {
    /// An `https://` URL (plain `http://` only to a loopback address).
    pub url: String,
    /// The HMAC-SHA256 key the signature is made with.
    pub secret: String,
}

/// A queued webhook event, with its firm's endpoint.
#[derive(Debug, Clone)]
pub struct WebhookEvent {
    /// Its row.
    pub id: i64,
    /// The id receivers deduplicate by (also in the body and a header).
    pub event_id: String,
    /// The firm.
    pub tenant: String,
    /// `deadline.reminded`, `deadline.escalated`, `deadline.acknowledged`.
    pub kind: String,
    /// The JSON body, signed as is.
    pub body: String,
    /// Attempts so far.
    pub attempts: u32,
    /// The firm's endpoint now.
    pub url: String,
    /// The firm's secret now.
    pub secret: String,
}

/// How one delivery attempt went.
#[derive(Debug, Clone)]
pub enum WebhookAttempt {
    /// The endpoint answered 2xx.
    Delivered {
        /// When.
        at: DateTime<Utc>,
    },
    /// It did not: try again then.
    Failed {
        /// The next attempt.
        retry_at: DateTime<Utc>,
        /// What went wrong, for operators.
        error: String,
    },
}

/// One step of a notification's life for the audit trail (`store/sqlite/audit.rs`
/// writes those the store sees itself: published, read, acknowledged; the connections
/// report deliveries and the devices what they showed).
#[derive(Debug, Clone, PartialEq)]
pub struct AuditEntry {
    /// The firm.
    pub tenant: String,
    /// When.
    pub at: DateTime<Utc>,
    /// What.
    pub event: tocsin_protocol::audit::AuditEvent,
    /// The notification.
    pub notification_id: Option<String>,
    /// Its deadline.
    pub deadline_id: Option<String>,
    /// Its dossier.
    pub dossier: Option<String>,
    /// For whom, or who.
    pub user_id: Option<String>,
    /// The device session's name (else looked up from `session_id`).
    pub device: Option<String>,
    /// The device session.
    pub session_id: Option<String>,
}

/// Which audit records to read.
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    /// The firm.
    pub tenant: String,
    /// Only this dossier's.
    pub dossier: Option<String>,
    /// Only this user's.
    pub user_id: Option<String>,
    /// Only this deadline's.
    pub deadline_id: Option<String>,
    /// At or after.
    pub from: Option<DateTime<Utc>>,
    /// Before.
    pub to: Option<DateTime<Utc>>,
    /// Records with a larger id (paging).
    pub after: Option<i64>,
    /// At most this many.
    pub limit: u32,
}
