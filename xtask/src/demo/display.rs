//! How the demo shows what the gateway sends: one readable line per frame.
//!
//! Plain text, no colours: the lines must read the same in a terminal, a CI log and
//! a bug report.

use chrono::Local;
use tocsin_protocol::frames::Welcome;
use tocsin_protocol::{Notification, Urgency};

/// One line for an arriving notification: local time, kind, urgency, title.
pub fn notification_line(notification: &Notification) -> String {
    let time = notification
        .created_at
        .with_timezone(&Local)
        .format("%H:%M:%S");
    format!(
        "← {time}  {:<20} {:<8} {}",
        notification.kind().as_str(),
        urgency_name(notification.urgency),
        notification.title
    )
}

/// One line for `welcome`: who is signed in and which streams are delivered.
pub fn welcome_line(welcome: &Welcome) -> String {
    let streams: Vec<String> = welcome
        .streams
        .iter()
        .map(|status| status.stream.to_string())
        .collect();
    format!(
        "← welcome: {} ({}, firm {}), streams {}",
        welcome.user.email,
        welcome.user.role,
        welcome.user.tenant,
        streams.join(", ")
    )
}

/// The urgency as written on the wire.
fn urgency_name(urgency: Urgency) -> &'static str {
    match urgency {
        Urgency::Low => "low",
        Urgency::Normal => "normal",
        Urgency::High => "high",
        Urgency::Critical => "critical",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_notification_is_one_line_with_kind_urgency_and_title() {
        let text = r#"{"id":"n1","kind":"system-notification","created_at":"2026-11-21T09:00:00Z",
            "urgency":"critical","title":"Sauvegarde échouée","data":{"level":"error"}}"#;
        let notification: Notification = serde_json::from_str(text).expect("parses");
        let line = notification_line(&notification);
        assert!(!line.contains('\n'));
        assert!(line.contains("system-notification"), "{line}");
        assert!(line.contains("critical"), "{line}");
        assert!(line.ends_with("Sauvegarde échouée"), "{line}");
    }
}
