//! The notification: a stable id, a kind with typed data, a time, an urgency, text.
//!
//! On the wire a notification is one JSON object; `kind` selects the shape of `data`:
//! ```json
//! {"id":"0193…","kind":"deadline-alert","created_at":"2026-11-21T09:00:00Z",
//!  "urgency":"critical","title":"Appel — RG 24/01234","body":"Expire demain",
//!  "data":{"deadline_id":"d-9","deadline_type":"appel","due_at":"2026-11-22T18:00:00+01:00",
//!          "time_zone":"Europe/Paris","urgency":"critical","remaining_days":1}}
//! ```

use chrono::{DateTime, FixedOffset, Utc};
use serde::{Deserialize, Serialize};

pub mod link;
pub mod wire;

/// Fields of a notification's `data` this build does not type: the firm's own
/// references, a newer publisher's fields. Kept and passed on exactly as sent.
pub type Extra = serde_json::Map<String, serde_json::Value>;

/// The longest title accepted, in bytes.
pub const MAX_TITLE_LEN: usize = 512;
/// The longest body accepted, in bytes.
pub const MAX_BODY_LEN: usize = 8 * 1024;

/// A stored notification as clients see it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Notification {
    /// Stable, globally unique id (a UUIDv7): clients de-duplicate by it.
    pub id: String,
    /// The kind and its typed data (`kind` + `data` on the wire).
    #[serde(flatten)]
    pub data: NotificationData,
    /// When the gateway stored it.
    pub created_at: DateTime<Utc>,
    /// How insistently a client should show it.
    pub urgency: Urgency,
    /// One line for the OS notification and the panel.
    pub title: String,
    /// Details; may be empty.
    #[serde(default)]
    pub body: String,
    /// Where the notification leads in the firm's software (a dossier's page, the
    /// mail): the panel and the toast's "Open" offer it. An absolute `https:`/`http:`
    /// URL or one of the firm's own application schemes (see PROTOCOL.md §4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
}

impl Notification {
    /// The notification's kind.
    pub fn kind(&self) -> Kind {
        self.data.kind()
    }
}

/// How insistently a client should show a notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Urgency {
    /// Badge and panel only.
    Low,
    /// An ordinary OS notification.
    Normal,
    /// An OS notification that should not be missed.
    High,
    /// Stays on screen until dismissed (critical deadlines, system errors).
    Critical,
}

/// Every notification kind. The first seven are stored and replayed; the last three
/// are ephemeral: delivered live only, never stored, never replayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// New mail, linked to a dossier when known.
    EmailReceived,
    /// A dossier was created, updated, changed status or got a document.
    DossierUpdated,
    /// A procedural deadline approaches.
    DeadlineAlert,
    /// A notice from the firm's systems or the gateway.
    SystemNotification,
    /// An appointment proposal was made.
    ProposalCreated,
    /// An appointment proposal was accepted, rejected or cancelled.
    ProposalStatusChanged,
    /// A message in a conversation.
    ConversationMessage,
    /// Someone is typing in a conversation (ephemeral).
    TypingIndicator,
    /// Someone's presence changed (ephemeral).
    UserStatus,
    /// A read receipt in a conversation (ephemeral).
    MessageRead,
    /// A kind this build does not know (a newer gateway's): shown as a generic item
    /// from its title, body and urgency. Never accepted from a publisher.
    #[serde(other)]
    Unknown,
}

impl Kind {
    /// Every kind, stored ones first.
    pub const ALL: [Kind; 10] = [
        Kind::EmailReceived,
        Kind::DossierUpdated,
        Kind::DeadlineAlert,
        Kind::SystemNotification,
        Kind::ProposalCreated,
        Kind::ProposalStatusChanged,
        Kind::ConversationMessage,
        Kind::TypingIndicator,
        Kind::UserStatus,
        Kind::MessageRead,
    ];

    /// True for kinds that are never stored nor replayed.
    pub fn is_ephemeral(self) -> bool {
        matches!(
            self,
            Kind::TypingIndicator | Kind::UserStatus | Kind::MessageRead
        )
    }

    /// The kind as written on the wire (`email-received`, …).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::EmailReceived => "email-received",
            Kind::DossierUpdated => "dossier-updated",
            Kind::DeadlineAlert => "deadline-alert",
            Kind::SystemNotification => "system-notification",
            Kind::ProposalCreated => "proposal-created",
            Kind::ProposalStatusChanged => "proposal-status-changed",
            Kind::ConversationMessage => "conversation-message",
            Kind::TypingIndicator => "typing-indicator",
            Kind::UserStatus => "user-status",
            Kind::MessageRead => "message-read",
            Kind::Unknown => "unknown",
        }
    }

    /// Parses the wire form; `None` for a kind this build does not know.
    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    /// Parses the wire form, mapping a kind this build does not know to
    /// [`Kind::Unknown`].
    pub fn parse_lenient(text: &str) -> Kind {
        Kind::parse(text).unwrap_or(Kind::Unknown)
    }
}

/// The kind of a notification together with its typed data: `kind` and `data` on the
/// wire. Reading is forward compatible (see [`wire`]): a kind this build does not
/// know, or data of a known kind it cannot type, becomes [`NotificationData::Unknown`]
/// and is written back exactly as read. Its TypeScript form is in `crate::ts`.
#[derive(Debug, Clone, PartialEq)]
pub enum NotificationData {
    /// See [`EmailReceived`].
    EmailReceived(EmailReceived),
    /// See [`DossierUpdated`].
    DossierUpdated(DossierUpdated),
    /// See [`DeadlineAlert`].
    DeadlineAlert(DeadlineAlert),
    /// See [`SystemNotification`].
    SystemNotification(SystemNotification),
    /// See [`ProposalCreated`].
    ProposalCreated(ProposalCreated),
    /// See [`ProposalStatusChanged`].
    ProposalStatusChanged(ProposalStatusChanged),
    /// See [`ConversationMessage`].
    ConversationMessage(ConversationMessage),
    /// See [`TypingIndicator`].
    TypingIndicator(TypingIndicator),
    /// See [`UserStatus`].
    UserStatus(UserStatus),
    /// See [`MessageRead`].
    MessageRead(MessageRead),
    /// A kind (or a shape of data) this build does not know, kept as received.
    Unknown(UnknownData),
}

/// A notification's kind and data as received, when this build cannot type them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownData {
    /// The kind as written on the wire.
    pub kind: String,
    /// The data as received (`null` when absent).
    pub data: serde_json::Value,
}

impl NotificationData {
    /// The kind of this data.
    pub fn kind(&self) -> Kind {
        match self {
            NotificationData::EmailReceived(_) => Kind::EmailReceived,
            NotificationData::DossierUpdated(_) => Kind::DossierUpdated,
            NotificationData::DeadlineAlert(_) => Kind::DeadlineAlert,
            NotificationData::SystemNotification(_) => Kind::SystemNotification,
            NotificationData::ProposalCreated(_) => Kind::ProposalCreated,
            NotificationData::ProposalStatusChanged(_) => Kind::ProposalStatusChanged,
            NotificationData::ConversationMessage(_) => Kind::ConversationMessage,
            NotificationData::TypingIndicator(_) => Kind::TypingIndicator,
            NotificationData::UserStatus(_) => Kind::UserStatus,
            NotificationData::MessageRead(_) => Kind::MessageRead,
            NotificationData::Unknown(_) => Kind::Unknown,
        }
    }

    /// The kind as written on the wire: the received name for an unknown kind.
    pub fn kind_name(&self) -> &str {
        match self {
            NotificationData::Unknown(unknown) => &unknown.kind,
            known => known.kind().as_str(),
        }
    }

    /// The urgency a publisher gets when it does not say one: critical deadlines and
    /// system errors are critical, as the seed design asked.
    pub fn default_urgency(&self) -> Urgency {
        match self {
            NotificationData::DeadlineAlert(d) => match d.urgency {
                DeadlineUrgency::Critical => Urgency::Critical,
                DeadlineUrgency::Urgent => Urgency::High,
                DeadlineUrgency::Warning => Urgency::Normal,
                DeadlineUrgency::Info => Urgency::Low,
            },
            NotificationData::SystemNotification(s) => match s.level {
                SystemLevel::Error => Urgency::Critical,
                SystemLevel::Warning => Urgency::High,
                SystemLevel::Info | SystemLevel::Success => Urgency::Normal,
            },
            NotificationData::ProposalCreated(_) => Urgency::High,
            NotificationData::TypingIndicator(_)
            | NotificationData::UserStatus(_)
            | NotificationData::MessageRead(_) => Urgency::Low,
            NotificationData::EmailReceived(_)
            | NotificationData::DossierUpdated(_)
            | NotificationData::ProposalStatusChanged(_)
            | NotificationData::ConversationMessage(_)
            | NotificationData::Unknown(_) => Urgency::Normal,
        }
    }
}

impl NotificationData {
    /// The dossier a notification is about, when its kind says one (the audit trail
    /// is searched by it).
    pub fn dossier_number(&self) -> Option<&str> {
        match self {
            NotificationData::EmailReceived(d) => d.dossier_number.as_deref(),
            NotificationData::DossierUpdated(d) => Some(&d.dossier_number),
            NotificationData::DeadlineAlert(d) => d.dossier_number.as_deref(),
            NotificationData::ProposalCreated(d) => d.dossier_number.as_deref(),
            _ => None,
        }
    }

    /// The firm's deadline id of a `deadline-alert`.
    pub fn deadline_id(&self) -> Option<&str> {
        match self {
            NotificationData::DeadlineAlert(d) => Some(&d.deadline_id),
            _ => None,
        }
    }
}

/// `email-received`: new mail, linked to a dossier when the mail monitor knows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct EmailReceived {
    /// The mail's subject.
    pub subject: String,
    /// The sender as shown, e.g. `Maître Martin <martin@exemple.fr>`.
    pub from: String,
    /// The dossier (case file) number the mail is linked to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dossier_number: Option<String>,
    /// The mail system's message id, to open the mail.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// Whether the mail has attachments.
    #[serde(default)]
    pub has_attachments: bool,
    /// Fields not listed here, kept as sent (see [`Extra`]).
    #[serde(flatten)]
    #[cfg_attr(feature = "ts", ts(skip))]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: Extra,
}

/// What happened to a dossier.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DossierAction {
    /// The dossier was opened.
    Created,
    /// Its details changed.
    Updated,
    /// Its status changed (see `status` and `previous_status`).
    StatusChanged,
    /// A document was added (see `document_name`).
    DocumentAdded,
}

/// `dossier-updated`: a change to a case file.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DossierUpdated {
    /// The dossier number, e.g. `2026-0142`.
    pub dossier_number: String,
    /// What happened.
    pub action: DossierAction,
    /// The dossier's title, e.g. the parties.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dossier_title: Option<String>,
    /// The status now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
    /// The status before, with `status_changed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub previous_status: Option<String>,
    /// The document's name, with `document_added`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document_name: Option<String>,
    /// Fields not listed here, kept as sent (see [`Extra`]).
    #[serde(flatten)]
    #[cfg_attr(feature = "ts", ts(skip))]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: Extra,
}

/// How close a procedural deadline is (≤ 1 day critical, ≤ 2 urgent, ≤ 3 warning).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum DeadlineUrgency {
    /// More than three days left.
    Info,
    /// Three days or less.
    Warning,
    /// Two days or less.
    Urgent,
    /// One day or less.
    Critical,
}

/// `deadline-alert`: a procedural deadline approaches.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct DeadlineAlert {
    /// The firm's own id of the deadline.
    pub deadline_id: String,
    /// The type of deadline, e.g. `appel`, `conclusions`, `prescription`.
    pub deadline_type: String,
    /// When it falls due, with the offset in force there.
    pub due_at: DateTime<FixedOffset>,
    /// The IANA time zone the deadline is defined in, e.g. `Europe/Paris`.
    pub time_zone: String,
    /// How close it is.
    pub urgency: DeadlineUrgency,
    /// Whole days left (0 = due today; negative = overdue).
    pub remaining_days: i64,
    /// The dossier it belongs to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dossier_number: Option<String>,
    /// The dossier's title (gateway-raised reminders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dossier_title: Option<String>,
    /// Working days left in the firm's calendar (gateway-raised reminders; 0 = due
    /// today).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub working_days_left: Option<i64>,
    /// Which reminder of the policy this is (`J-3`, `J-0`, `T-30s`), for a reminder
    /// the gateway raised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reminder: Option<String>,
    /// Sent after its planned time (the gateway was down then).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    // Left out when false: see `ClientFrame::Hello`'s `features` for why the type.
    #[cfg_attr(feature = "ts", ts(type = "boolean"))]
    pub late: bool,
    /// For an escalation: who has not acknowledged it (the owner) and which step
    /// (1: the backup, 2: the partners).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub escalation: Option<Escalation>,
    /// Fields not listed here, kept as sent (see [`Extra`]).
    #[serde(flatten)]
    #[cfg_attr(feature = "ts", ts(skip))]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: Extra,
}

/// The escalation part of a `deadline-alert` sent to someone other than the owner.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Escalation {
    /// 1: to the backup (else the partners); 2: to the partners.
    pub step: u32,
    /// The owner who did not acknowledge: user id.
    pub owner: String,
    /// The owner's name.
    pub owner_name: String,
}

/// The level of a system notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum SystemLevel {
    /// For information.
    Info,
    /// Something finished well.
    Success,
    /// Something needs attention.
    Warning,
    /// Something failed; shown until dismissed.
    Error,
}

/// `system-notification`: a notice from the firm's systems or the gateway.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct SystemNotification {
    /// Its level.
    pub level: SystemLevel,
    /// An optional machine-readable code from the emitter.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Fields not listed here, kept as sent (see [`Extra`]).
    #[serde(flatten)]
    #[cfg_attr(feature = "ts", ts(skip))]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: Extra,
}

/// `proposal-created`: an appointment proposal a lawyer can accept or reject.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposalCreated {
    /// The proposal's id (unique per firm); `proposal_respond` names it.
    pub proposal_id: String,
    /// When the appointment would start.
    pub starts_at: DateTime<FixedOffset>,
    /// When it would end.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ends_at: Option<DateTime<FixedOffset>>,
    /// Who proposes it, as shown.
    pub proposed_by: String,
    /// Where.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    /// The conversation it belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// The dossier it belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dossier_number: Option<String>,
    /// Fields not listed here, kept as sent (see [`Extra`]).
    #[serde(flatten)]
    #[cfg_attr(feature = "ts", ts(skip))]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: Extra,
}

/// The state of a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum ProposalStatus {
    /// Not answered yet.
    Pending,
    /// Accepted.
    Accepted,
    /// Rejected.
    Rejected,
    /// Withdrawn by the proposer.
    Cancelled,
}

impl ProposalStatus {
    /// Every status.
    pub const ALL: [ProposalStatus; 4] = [
        ProposalStatus::Pending,
        ProposalStatus::Accepted,
        ProposalStatus::Rejected,
        ProposalStatus::Cancelled,
    ];

    /// The status as written on the wire (and in both sides' databases).
    pub fn as_str(self) -> &'static str {
        match self {
            ProposalStatus::Pending => "pending",
            ProposalStatus::Accepted => "accepted",
            ProposalStatus::Rejected => "rejected",
            ProposalStatus::Cancelled => "cancelled",
        }
    }

    /// Parses the wire form.
    pub fn parse(text: &str) -> Option<ProposalStatus> {
        ProposalStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

/// `proposal-status-changed`: a proposal was answered or withdrawn.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ProposalStatusChanged {
    /// The proposal's id.
    pub proposal_id: String,
    /// Its new status.
    pub status: ProposalStatus,
    /// The user id of whoever answered, when a Tocsin user did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub responded_by: Option<String>,
    /// The conversation it belongs to, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// Fields not listed here, kept as sent (see [`Extra`]).
    #[serde(flatten)]
    #[cfg_attr(feature = "ts", ts(skip))]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: Extra,
}

/// `conversation-message`: a message in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct ConversationMessage {
    /// The conversation.
    pub conversation_id: String,
    /// The emitter's id of the message.
    pub message_id: String,
    /// The sender as shown.
    pub from: String,
    /// The beginning of the message.
    #[serde(default)]
    pub excerpt: String,
    /// Fields not listed here, kept as sent (see [`Extra`]).
    #[serde(flatten)]
    #[cfg_attr(feature = "ts", ts(skip))]
    #[cfg_attr(feature = "openapi", schema(ignore))]
    pub extra: Extra,
}

/// `typing-indicator` (ephemeral): someone is typing in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct TypingIndicator {
    /// The conversation.
    pub conversation_id: String,
    /// Who is typing.
    pub user_id: String,
    /// True when typing started, false when it stopped.
    pub active: bool,
}

/// A presence state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
#[serde(rename_all = "snake_case")]
pub enum Presence {
    /// At the desk.
    Online,
    /// Idle.
    Away,
    /// Do not disturb.
    Busy,
    /// Gone.
    Offline,
}

/// `user-status` (ephemeral): someone's presence changed; sent to their firm.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct UserStatus {
    /// Whose presence.
    pub user_id: String,
    /// The new presence.
    pub status: Presence,
}

/// `message-read` (ephemeral): a read receipt in a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct MessageRead {
    /// The conversation.
    pub conversation_id: String,
    /// Who read.
    pub user_id: String,
    /// The notification ids read.
    pub notification_ids: Vec<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn notification_json_has_kind_and_typed_data() {
        let text = r#"{"id":"n1","kind":"deadline-alert","created_at":"2026-11-21T09:00:00Z",
            "urgency":"critical","title":"Appel","body":"",
            "data":{"deadline_id":"d-9","deadline_type":"appel","due_at":"2026-11-22T18:00:00+01:00",
                    "time_zone":"Europe/Paris","urgency":"critical","remaining_days":1}}"#;
        let n: Notification = serde_json::from_str(text).expect("parses");
        assert_eq!(n.kind(), Kind::DeadlineAlert);
        let NotificationData::DeadlineAlert(d) = &n.data else {
            panic!("typed data")
        };
        assert_eq!(d.remaining_days, 1);
        assert_eq!(d.due_at.offset().local_minus_utc(), 3600);
        let back = serde_json::to_value(&n).expect("serialises");
        assert_eq!(back["kind"], "deadline-alert");
        assert_eq!(back["data"]["time_zone"], "Europe/Paris");
    }

    #[test]
    fn data_of_the_wrong_shape_is_not_publishable() {
        let text = r#"{"kind":"email-received","data":{"subject":"x"}}"#;
        let data = serde_json::from_str::<NotificationData>(text).expect("kept as received");
        let err = data.check_typed().expect_err("missing from");
        assert!(err.contains("from"), "{err}");
    }

    #[test]
    fn kinds_round_trip_and_know_what_is_ephemeral() {
        for kind in Kind::ALL {
            assert_eq!(Kind::parse(kind.as_str()), Some(kind));
            let json = serde_json::to_string(&kind).expect("serialises");
            assert_eq!(json, format!("\"{}\"", kind.as_str()));
        }
        assert_eq!(Kind::ALL.iter().filter(|k| k.is_ephemeral()).count(), 3);
        let newer: Kind = serde_json::from_str("\"deadline-escalated\"").expect("lenient");
        assert_eq!(newer, Kind::Unknown);
        assert_eq!(Kind::parse("unknown"), None, "never a kind to publish");
    }
}
