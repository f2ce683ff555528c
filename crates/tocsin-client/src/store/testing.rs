//! Builders shared by the store's unit tests.

use chrono::{DateTime, Duration, FixedOffset, Utc};
use tocsin_protocol::deadline::Acknowledgement;
use tocsin_protocol::notification::{
    ConversationMessage, DeadlineAlert, DeadlineUrgency, EmailReceived, ProposalCreated,
    ProposalStatus, ProposalStatusChanged, SystemLevel, SystemNotification,
};
use tocsin_protocol::{Notification, NotificationData, StreamName};

use super::Incoming;

/// A fixed base time, so `created_at` values are reproducible.
pub fn t(secs: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).expect("a valid time") + Duration::seconds(secs)
}

/// The user stream used by most tests.
pub fn user() -> StreamName {
    StreamName::User("u1".into())
}

/// A notification with the given id, data and creation time (seconds after [`t`]).
pub fn note(id: &str, data: NotificationData, at: i64) -> Notification {
    Notification {
        url: None,
        id: id.into(),
        urgency: data.default_urgency(),
        data,
        created_at: t(at),
        title: format!("title {id}"),
        body: String::new(),
    }
}

/// An `email-received` notification.
pub fn email(id: &str, at: i64) -> Notification {
    note(
        id,
        NotificationData::EmailReceived(EmailReceived {
            extra: Default::default(),
            subject: "s".into(),
            from: "f".into(),
            dossier_number: None,
            message_id: None,
            has_attachments: false,
        }),
        at,
    )
}

/// A `system-notification`.
pub fn system(id: &str, at: i64) -> Notification {
    note(
        id,
        NotificationData::SystemNotification(SystemNotification {
            extra: Default::default(),
            level: SystemLevel::Info,
            code: None,
        }),
        at,
    )
}

/// A `conversation-message`.
pub fn message(id: &str, at: i64) -> Notification {
    note(
        id,
        NotificationData::ConversationMessage(ConversationMessage {
            extra: Default::default(),
            conversation_id: "c1".into(),
            message_id: format!("m-{id}"),
            from: "f".into(),
            excerpt: String::new(),
        }),
        at,
    )
}

/// A critical `deadline-alert` of its own deadline (`d-<id>`), due `due_in_hours`
/// after [`t`]`(0)`.
pub fn deadline(id: &str, at: i64, due_in_hours: i64) -> Notification {
    alert(
        id,
        &format!("d-{id}"),
        at,
        DeadlineUrgency::Critical,
        due_in_hours,
    )
}

/// A `deadline-alert` of `deadline_id` raised at `at` (seconds after [`t`]) with
/// `urgency` (the notification's follows it), due `due_in_hours` after [`t`]`(0)`.
pub fn alert(
    id: &str,
    deadline_id: &str,
    at: i64,
    urgency: DeadlineUrgency,
    due_in_hours: i64,
) -> Notification {
    let paris = FixedOffset::east_opt(3600).expect("a valid offset");
    note(
        id,
        NotificationData::DeadlineAlert(DeadlineAlert {
            extra: Default::default(),
            deadline_id: deadline_id.into(),
            deadline_type: "appel".into(),
            due_at: (t(0) + Duration::hours(due_in_hours)).with_timezone(&paris),
            time_zone: "Europe/Paris".into(),
            urgency,
            remaining_days: 1,
            dossier_number: None,
            dossier_title: None,
            working_days_left: None,
            reminder: None,
            late: false,
            escalation: None,
        }),
        at,
    )
}

/// The gateway's record that `user_id` acknowledged `deadline_id` at `at` (seconds
/// after [`t`]) from `device`.
pub fn acknowledgement(deadline_id: &str, user_id: &str, device: &str, at: i64) -> Acknowledgement {
    Acknowledgement {
        deadline_id: deadline_id.into(),
        user_id: user_id.into(),
        user_name: format!("name of {user_id}"),
        device: Some(device.into()),
        at: t(at),
        notification_id: None,
    }
}

/// A `proposal-created` for `proposal_id`.
pub fn proposal(id: &str, proposal_id: &str, at: i64) -> Notification {
    note(
        id,
        NotificationData::ProposalCreated(ProposalCreated {
            extra: Default::default(),
            proposal_id: proposal_id.into(),
            starts_at: t(86_400).fixed_offset(),
            ends_at: None,
            proposed_by: "p".into(),
            location: None,
            conversation_id: None,
            dossier_number: None,
        }),
        at,
    )
}

/// A `proposal-status-changed` for `proposal_id`.
pub fn proposal_status(
    id: &str,
    proposal_id: &str,
    status: ProposalStatus,
    at: i64,
) -> Notification {
    note(
        id,
        NotificationData::ProposalStatusChanged(ProposalStatusChanged {
            extra: Default::default(),
            proposal_id: proposal_id.into(),
            status,
            responded_by: None,
            conversation_id: None,
        }),
        at,
    )
}

/// A live, unread [`Incoming`] at `(epoch, offset)` of `stream`.
pub fn incoming(
    stream: &StreamName,
    epoch: &str,
    offset: u64,
    notification: Notification,
) -> Incoming {
    Incoming {
        stream: stream.clone(),
        epoch: epoch.into(),
        offset,
        notification,
        replay: false,
        read: false,
    }
}
