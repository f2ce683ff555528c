//! Notifications the desktop tests publish, on top of [`crate::publisher`]'s.

use chrono::{Duration as ChronoDuration, Utc};
use tocsin_protocol::NotificationData;
use tocsin_protocol::http::PublishRequest;
use tocsin_protocol::notification::{
    DeadlineAlert, DeadlineUrgency, SystemLevel, SystemNotification,
};

/// A link into the firm's document software, with the characters a link carries (query,
/// `&`, fragment) that must reach the system's opener unchanged.
pub const DOSSIER_LINK: &str =
    "https://ged.cabinet.fr/dossiers/2026-0142?onglet=pieces&vue=liste#courrier-4217";

/// A link in the firm's own application scheme (the desktop registers no handler for
/// it; the system's opener dispatches it).
pub const APP_LINK: &str = "secib://dossier/2026-0142";

/// A `deadline-alert` to `to` whose urgency is `urgency` (the gateway derives the
/// notification's urgency from it: `critical` → critical).
pub fn deadline(to: &str, title: &str, body: &str, urgency: DeadlineUrgency) -> PublishRequest {
    let remaining_days = match urgency {
        DeadlineUrgency::Critical => 1,
        DeadlineUrgency::Urgent => 2,
        DeadlineUrgency::Warning => 3,
        DeadlineUrgency::Info => 10,
    };
    let due_at = (Utc::now() + ChronoDuration::days(remaining_days)).fixed_offset();
    PublishRequest {
        url: None,
        to: to.to_owned(),
        tenant: None,
        data: NotificationData::DeadlineAlert(DeadlineAlert {
            extra: Default::default(),
            deadline_id: format!("dl-{}", uuid::Uuid::new_v4().simple()),
            deadline_type: "conclusions".to_owned(),
            due_at,
            time_zone: "Europe/Paris".to_owned(),
            urgency,
            remaining_days,
            dossier_number: Some("2026-0142".to_owned()),
            dossier_title: None,
            working_days_left: None,
            reminder: None,
            late: false,
            escalation: None,
        }),
        title: title.to_owned(),
        body: body.to_owned(),
        urgency: None,
        idempotency_key: None,
        deliver_at: None,
    }
}

/// A critical `deadline-alert` to `to`.
pub fn critical_deadline(to: &str, title: &str) -> PublishRequest {
    deadline(
        to,
        title,
        "Conclusions à déposer avant demain 12:00",
        DeadlineUrgency::Critical,
    )
}

/// A `system-notification` of `level` to `to`.
pub fn system(to: &str, title: &str, level: SystemLevel) -> PublishRequest {
    PublishRequest {
        url: None,
        to: to.to_owned(),
        tenant: None,
        data: NotificationData::SystemNotification(SystemNotification {
            extra: Default::default(),
            level,
            code: None,
        }),
        title: title.to_owned(),
        body: String::new(),
        urgency: None,
        idempotency_key: None,
        deliver_at: None,
    }
}
