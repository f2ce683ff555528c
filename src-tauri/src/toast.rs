//! What an OS notification says and how insistent it is, per kind: pure functions
//! from a notification (or a catch-up summary) to a [`ToastContent`], so the wording
//! is unit-tested without a notification server. [`crate::notifier`] shows them.

use std::collections::BTreeMap;

use tocsin_client::store::Tab;
use tocsin_protocol::notification::SystemLevel;
use tocsin_protocol::{Kind, Notification, NotificationData, Urgency};

use crate::i18n::Locale;

/// The action key of a click on the notification itself (freedesktop convention).
pub const ACTION_DEFAULT: &str = "default";
/// The action key of "Mark as read".
pub const ACTION_MARK_READ: &str = "mark-read";
/// The action key of "Acknowledge" ("Pris en compte"), on critical deadline alerts.
pub const ACTION_ACKNOWLEDGE: &str = "acknowledge";

/// One OS notification, ready to show.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToastContent {
    /// The notification it stands for (`None` for a summary).
    pub notification_id: Option<String>,
    /// The firm's deadline it is an alert of (`deadline-alert` only): once the
    /// deadline is acknowledged, the toast has nothing left to ask.
    pub deadline_id: Option<String>,
    /// The tab to open on click.
    pub tab: Option<Tab>,
    /// First line.
    pub summary: String,
    /// Details.
    pub body: String,
    /// A freedesktop icon name.
    pub icon: &'static str,
    /// A freedesktop category (`x-tocsin.*` for ours).
    pub category: &'static str,
    /// Critical urgency, never times out.
    pub critical: bool,
    /// `(key, label)` pairs, default action first.
    pub actions: Vec<(&'static str, &'static str)>,
    /// Toasts with the same key replace each other on screen (a deadline's rising
    /// alerts: the critical one takes the warning's place instead of piling up).
    pub replaces: Option<String>,
}

/// The icon for a notification: freedesktop names every desktop theme has.
fn icon(notification: &Notification) -> &'static str {
    match &notification.data {
        NotificationData::EmailReceived(_) => "mail-unread",
        NotificationData::ConversationMessage(_) => "mail-message-new",
        NotificationData::DossierUpdated(_) => "folder-documents",
        NotificationData::DeadlineAlert(_) if notification.urgency == Urgency::Critical => {
            "dialog-warning"
        }
        NotificationData::DeadlineAlert(_) => "appointment-soon",
        NotificationData::ProposalCreated(_) | NotificationData::ProposalStatusChanged(_) => {
            "appointment-new"
        }
        NotificationData::SystemNotification(s) => match s.level {
            SystemLevel::Error => "dialog-error",
            SystemLevel::Warning => "dialog-warning",
            SystemLevel::Success | SystemLevel::Info => "dialog-information",
        },
        // A newer gateway's kind is a system notice whose level is its urgency.
        NotificationData::Unknown(_) => match notification.urgency {
            Urgency::Critical => "dialog-error",
            Urgency::High => "dialog-warning",
            Urgency::Normal | Urgency::Low => "dialog-information",
        },
        _ => "dialog-information",
    }
}

/// The freedesktop category.
fn category(kind: Kind) -> &'static str {
    match kind {
        Kind::EmailReceived => "email.arrived",
        Kind::ConversationMessage => "im.received",
        Kind::DossierUpdated => "x-tocsin.dossier",
        Kind::DeadlineAlert => "x-tocsin.deadline",
        Kind::ProposalCreated | Kind::ProposalStatusChanged => "x-tocsin.proposal",
        // `Unknown` included: a newer gateway's kinds are shown as system notices.
        _ => "x-tocsin.system",
    }
}

/// The toast for one notification.
pub fn for_notification(notification: &Notification, locale: Locale) -> ToastContent {
    let s = locale.strings();
    let critical = notification.urgency == Urgency::Critical;
    let mut lines = Vec::new();
    if !notification.body.is_empty() {
        lines.push(notification.body.clone());
    }
    match &notification.data {
        NotificationData::DeadlineAlert(d) => {
            lines.push(format!("{} {}", s.due, d.due_at.format("%d/%m/%Y %H:%M")));
            if let Some(number) = &d.dossier_number {
                lines.push(format!("{} {number}", s.dossier));
            }
            // Someone else's deadline: say why it reached this user.
            if let Some(escalation) = &d.escalation {
                lines.push(escalation_line(&escalation.owner_name, locale));
            }
        }
        NotificationData::EmailReceived(e) => {
            if !notification.body.contains(&e.from) {
                lines.push(e.from.clone());
            }
            if let Some(number) = &e.dossier_number {
                lines.push(format!("{} {number}", s.dossier));
            }
        }
        NotificationData::DossierUpdated(d) if !notification.title.contains(&d.dossier_number) => {
            lines.push(format!("{} {}", s.dossier, d.dossier_number));
        }
        NotificationData::ProposalCreated(p) => {
            lines.push(format!(
                "{} — {}",
                p.starts_at.format("%d/%m/%Y %H:%M"),
                p.proposed_by
            ));
        }
        _ => {}
    }
    let deadline_id = match &notification.data {
        NotificationData::DeadlineAlert(d) => Some(d.deadline_id.clone()),
        _ => None,
    };
    // Servers show two or three buttons: a critical deadline asks to be taken in
    // first; "Mark as read" stays for what is only to be read.
    let mut actions = vec![(ACTION_DEFAULT, s.action_open)];
    if critical && deadline_id.is_some() {
        actions.push((ACTION_ACKNOWLEDGE, s.action_acknowledge));
    }
    if critical {
        actions.push((ACTION_MARK_READ, s.action_mark_read));
    }
    ToastContent {
        notification_id: Some(notification.id.clone()),
        deadline_id,
        tab: Tab::of(notification.kind()),
        summary: notification.title.clone(),
        body: lines.join("\n"),
        icon: icon(notification),
        category: category(notification.kind()),
        critical,
        actions,
        replaces: match &notification.data {
            NotificationData::DeadlineAlert(d) => Some(deadline_key(&d.deadline_id)),
            _ => None,
        },
    }
}

/// The [`ToastContent::replaces`] key of a deadline's alerts: one toast per deadline
/// on screen, and the one to close once the deadline is acknowledged.
pub fn deadline_key(deadline_id: &str) -> String {
    format!("deadline:{deadline_id}")
}

/// "Marie Dupont n'a pas pris en compte ce délai".
fn escalation_line(owner_name: &str, locale: Locale) -> String {
    let s = locale.strings();
    let owner = owner_name.trim();
    if owner.is_empty() {
        s.escalated_anonymous.to_owned()
    } else {
        s.escalated_from.replace("{owner}", owner)
    }
}

/// The one toast standing for many ordinary notifications missed while offline.
pub fn for_summary(count: usize, by_kind: &BTreeMap<Kind, usize>, locale: Locale) -> ToastContent {
    let s = locale.strings();
    let mut by_tab: BTreeMap<Tab, usize> = BTreeMap::new();
    for (kind, n) in by_kind {
        if let Some(tab) = Tab::of(*kind) {
            *by_tab.entry(tab).or_default() += n;
        }
    }
    let body = by_tab
        .iter()
        .map(|(tab, n)| format!("{n} {}", tab_name(*tab, locale)))
        .collect::<Vec<_>>()
        .join(", ");
    ToastContent {
        notification_id: None,
        deadline_id: None,
        tab: (by_tab.len() == 1)
            .then(|| by_tab.keys().next().copied())
            .flatten(),
        summary: format!("{count} {}", s.summary_title),
        body,
        icon: "mail-unread",
        category: "x-tocsin.summary",
        critical: false,
        actions: vec![(ACTION_DEFAULT, s.action_open)],
        // A newer summary replaces an older one still on screen.
        replaces: Some("summary".to_owned()),
    }
}

/// A tab's name in the summary ("3 courriels").
fn tab_name(tab: Tab, locale: Locale) -> &'static str {
    match (tab, locale) {
        (Tab::Emails, Locale::Fr) => "courriels",
        (Tab::Emails, Locale::En) => "emails",
        (Tab::Dossiers, _) => "dossiers",
        (Tab::Deadlines, Locale::Fr) => "échéances",
        (Tab::Deadlines, Locale::En) => "deadlines",
        (Tab::Proposals, Locale::Fr) => "propositions",
        (Tab::Proposals, Locale::En) => "proposals",
        (Tab::System, Locale::Fr) => "avis système",
        (Tab::System, Locale::En) => "system notices",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_client::store::testing;
    use tocsin_protocol::notification::DeadlineUrgency;

    #[test]
    fn a_critical_deadline_is_critical_with_open_acknowledge_and_mark_read() {
        let mut n = testing::deadline("n1", 0, 20);
        n.urgency = Urgency::Critical;
        n.title = "Appel — RG 24/01234".into();
        let toast = for_notification(&n, Locale::En);
        assert!(toast.critical);
        assert_eq!(toast.summary, "Appel — RG 24/01234");
        assert_eq!(
            toast.actions,
            vec![
                ("default", "Open"),
                ("acknowledge", "Acknowledge"),
                ("mark-read", "Mark as read")
            ]
        );
        assert_eq!(toast.deadline_id.as_deref(), Some("d-n1"));
        assert_eq!(toast.replaces, Some(deadline_key("d-n1")));
        assert_eq!(
            for_notification(&n, Locale::Fr).actions,
            vec![
                ("default", "Ouvrir"),
                ("acknowledge", "Pris en compte"),
                ("mark-read", "Marquer comme lu")
            ]
        );
        assert_eq!(toast.category, "x-tocsin.deadline");
        assert_eq!(toast.icon, "dialog-warning");
        assert!(toast.body.contains("Due: "), "{}", toast.body);
        assert_eq!(toast.tab, Some(Tab::Deadlines));
        let mut escalated = testing::deadline("n9", 10, 2);
        if let NotificationData::DeadlineAlert(d) = &mut escalated.data {
            d.deadline_id = "d-n1".into();
        }
        let escalated = for_notification(&escalated, Locale::En);
        assert_eq!(
            escalated.replaces, toast.replaces,
            "alerts of one deadline replace each other"
        );
        let other = for_notification(&testing::deadline("n7", 10, 2), Locale::En);
        assert_ne!(other.replaces, toast.replaces, "other deadlines do not");
    }

    #[test]
    fn an_ordinary_deadline_alert_offers_open_only_and_an_escalation_says_whose_it_was() {
        let warning = testing::alert("n4", "d-n4", 0, DeadlineUrgency::Warning, 72);
        assert_ne!(warning.urgency, Urgency::Critical);
        let warning = for_notification(&warning, Locale::Fr);
        assert!(!warning.critical);
        assert_eq!(warning.actions, vec![("default", "Ouvrir")]);
        assert_eq!(warning.deadline_id.as_deref(), Some("d-n4"));

        let mut escalated = testing::deadline("n5", 0, 1);
        assert_eq!(escalated.urgency, Urgency::Critical);
        if let NotificationData::DeadlineAlert(d) = &mut escalated.data {
            d.escalation = Some(tocsin_protocol::notification::Escalation {
                step: 1,
                owner: "u-marie".into(),
                owner_name: "Marie".into(),
            });
        }
        let fr = for_notification(&escalated, Locale::Fr);
        assert!(
            fr.body.ends_with("Marie n'a pas pris en compte ce délai"),
            "{}",
            fr.body
        );
        let en = for_notification(&escalated, Locale::En);
        assert!(
            en.body
                .ends_with("Marie has not acknowledged this deadline"),
            "{}",
            en.body
        );
        assert_eq!(en.actions[1], ("acknowledge", "Acknowledge"));
        if let NotificationData::DeadlineAlert(d) = &mut escalated.data
            && let Some(e) = &mut d.escalation
        {
            e.owner_name = " ".into();
        }
        assert!(
            for_notification(&escalated, Locale::Fr)
                .body
                .ends_with("Le responsable n'a pas pris en compte ce délai")
        );
    }

    #[test]
    fn an_email_is_ordinary_and_names_its_sender_and_dossier() {
        let n = testing::email("n2", 0);
        let toast = for_notification(&n, Locale::Fr);
        assert!(!toast.critical);
        assert_eq!(toast.deadline_id, None);
        assert_eq!(toast.actions, vec![("default", "Ouvrir")]);
        assert_eq!(toast.icon, "mail-unread");
        assert_eq!(toast.category, "email.arrived");
        assert_eq!(toast.tab, Some(Tab::Emails));
    }

    #[test]
    fn an_unknown_kind_toasts_like_a_system_notice_of_its_urgency() {
        let mut n = testing::note(
            "n3",
            NotificationData::from_parts(
                "deadline-escalated".into(),
                serde_json::json!({"level": 2}),
            ),
            0,
        );
        n.title = "Délai d'appel escaladé".into();
        n.body = "Confié à Maître Roux".into();
        n.urgency = Urgency::Critical;
        let toast = for_notification(&n, Locale::En);
        assert_eq!(toast.summary, "Délai d'appel escaladé");
        assert_eq!(toast.body, "Confié à Maître Roux");
        assert!(toast.critical, "a critical one stays on screen");
        assert_eq!(
            toast.actions,
            vec![("default", "Open"), ("mark-read", "Mark as read")]
        );
        assert_eq!(toast.icon, "dialog-error");
        assert_eq!(toast.category, "x-tocsin.system");
        assert_eq!(toast.tab, Some(Tab::System));
        n.urgency = Urgency::High;
        let high = for_notification(&n, Locale::Fr);
        assert!(!high.critical);
        assert_eq!(high.icon, "dialog-warning");
        assert_eq!(high.actions, vec![("default", "Ouvrir")]);
        n.urgency = Urgency::Normal;
        assert_eq!(for_notification(&n, Locale::En).icon, "dialog-information");
    }

    #[test]
    fn the_summary_counts_by_tab_in_the_user_language() {
        let by_kind = BTreeMap::from([
            (Kind::EmailReceived, 5),
            (Kind::ConversationMessage, 1),
            (Kind::DossierUpdated, 4),
        ]);
        let toast = for_summary(10, &by_kind, Locale::Fr);
        assert_eq!(
            toast.summary,
            "10 nouvelles notifications pendant votre absence"
        );
        assert_eq!(toast.body, "6 courriels, 4 dossiers");
        assert_eq!(toast.tab, None, "several tabs: open the panel where it was");
        let one = for_summary(4, &BTreeMap::from([(Kind::DossierUpdated, 4)]), Locale::En);
        assert_eq!(one.tab, Some(Tab::Dossiers));
    }
}
