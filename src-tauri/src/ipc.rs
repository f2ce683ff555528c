//! The IPC contract with the panel (docs/DESKTOP_IPC.md; mirrored in
//! ui/src/lib/ipc.ts): event names and every payload, and the conversions from the
//! engine's types. Change the three together.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveTime, Utc};
use serde::{Deserialize, Serialize};
use tocsin_client::events::ConnectionState;
use tocsin_client::policy::{Preferences, QuietHours};
use tocsin_client::store::{DeadlineAck, DeadlineRow, InboxItem, Tab};
use tocsin_protocol::notification::{DeadlineUrgency, Escalation, ProposalStatus};
use tocsin_protocol::{Kind, Notification, NotificationData, Urgency};

use crate::error::AppError;
use crate::i18n::{Language, Locale};

/// Event: the snapshot changed.
pub const EVENT_STATE: &str = "state";
/// Event: items were added or changed in some tabs.
pub const EVENT_ITEMS_CHANGED: &str = "items-changed";
/// Event: live notifications arrived (for the live region).
pub const EVENT_NEW_ITEMS: &str = "new-items";
/// Event: the gateway answered a proposal response, or refused an acknowledgement.
pub const EVENT_ACTION_RESULT: &str = "action-result";
/// Event: open the panel at a place.
pub const EVENT_NAVIGATE: &str = "navigate";

/// Who is signed in where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Account {
    /// The gateway.
    pub server: String,
    /// The user.
    pub email: String,
}

/// Whether OS notifications can be shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct NotificationsStatus {
    /// A notification service answered.
    pub available: bool,
    /// Why not, for the panel's notice.
    pub problem: Option<String>,
}

/// Where the sign-in token lives.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SecretStoreStatus {
    /// Kept across runs (OS keyring).
    pub persistent: bool,
    /// Why not, for the panel's notice.
    pub warning: Option<String>,
}

/// Everything the panel shows outside the item lists.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Snapshot {
    /// Grows with every snapshot built: the panel ignores one older than what it
    /// shows (a command's reply can arrive after newer `state` events).
    pub revision: u64,
    /// An account is signed in.
    pub signed_in: bool,
    /// Which.
    pub account: Option<Account>,
    /// The connection (displayed: see `Shared::displayed_connection`).
    pub connection: ConnectionState,
    /// Unread per tab, every tab present.
    pub unread: BTreeMap<Tab, u64>,
    /// Their sum (the badge).
    pub unread_total: u64,
    /// Actions waiting in the outbox.
    pub pending_actions: usize,
    /// OS notifications.
    pub notifications: NotificationsStatus,
    /// The secret store.
    pub secret_store: SecretStoreStatus,
    /// The language in force.
    pub locale: Locale,
    /// The pause in force.
    pub paused_until: Option<DateTime<Utc>>,
    /// A critical deadline nobody acknowledged exists (the tray's orange mark).
    pub critical_pending: bool,
    /// How many: the Deadlines tab's badge (the engine's
    /// `unacknowledged_critical_deadlines`).
    pub unacknowledged_critical: u64,
}

/// A proposal's details and status.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ProposalView {
    /// Its id (what accept/reject name).
    pub proposal_id: String,
    /// Pending, accepted, rejected, cancelled.
    pub status: ProposalStatus,
    /// Start.
    pub starts_at: String,
    /// End.
    pub ends_at: Option<String>,
    /// Who proposes.
    pub proposed_by: String,
    /// Where.
    pub location: Option<String>,
}

/// A deadline's details.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadlineView {
    /// When due (with its offset).
    pub due_at: String,
    /// How close.
    pub urgency: DeadlineUrgency,
    /// Whole days left.
    pub remaining_days: i64,
    /// Appeal, conclusions…
    pub deadline_type: String,
}

/// One notification in a panel list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Item {
    /// Id.
    pub id: String,
    /// Kind (`unknown` for a kind this build does not know: a newer gateway's).
    pub kind: Kind,
    /// The kind as written on the wire: the received name when `kind` is `unknown`
    /// (e.g. `deadline-escalated`), else the same as `kind`.
    pub kind_name: String,
    /// Tab.
    pub tab: Tab,
    /// One line.
    pub title: String,
    /// Details.
    pub body: String,
    /// Urgency.
    pub urgency: Urgency,
    /// When stored by the gateway.
    pub created_at: DateTime<Utc>,
    /// Read here or elsewhere.
    pub read: bool,
    /// The dossier, when the kind names one.
    pub dossier_number: Option<String>,
    /// The kind's data as on the wire; always an object (`{}` when what was received
    /// is not one, e.g. an unknown kind without data), so the panel can read fields.
    pub data: serde_json::Value,
    /// Where the notification leads in the firm's software, only when the link passes
    /// the protocol's `check_url`: the panel then offers "Open" (`open_link`, by id).
    pub url: Option<String>,
    /// Proposal details (proposal-created).
    pub proposal: Option<ProposalView>,
    /// Deadline details (deadline-alert).
    pub deadline: Option<DeadlineView>,
}

impl Item {
    /// The panel's view of a held notification; `proposal_status` is the locally
    /// known status of its proposal (pending when unknown).
    pub fn from_inbox(item: &InboxItem, proposal_status: Option<ProposalStatus>) -> Option<Item> {
        Item::from_notification(&item.notification, item.read, proposal_status)
    }

    /// The panel's view of a notification.
    pub fn from_notification(
        n: &Notification,
        read: bool,
        proposal_status: Option<ProposalStatus>,
    ) -> Option<Item> {
        let kind = n.kind();
        let tab = Tab::of(kind)?;
        let data = serde_json::to_value(&n.data)
            .ok()
            .and_then(|mut v| v.get_mut("data").map(serde_json::Value::take))
            .filter(serde_json::Value::is_object)
            .unwrap_or_else(|| serde_json::Value::Object(Default::default()));
        let (dossier_number, proposal, deadline) = match &n.data {
            NotificationData::EmailReceived(d) => (d.dossier_number.clone(), None, None),
            NotificationData::DossierUpdated(d) => (Some(d.dossier_number.clone()), None, None),
            NotificationData::DeadlineAlert(d) => (
                d.dossier_number.clone(),
                None,
                Some(DeadlineView {
                    due_at: d.due_at.to_rfc3339(),
                    urgency: d.urgency,
                    remaining_days: d.remaining_days,
                    deadline_type: d.deadline_type.clone(),
                }),
            ),
            NotificationData::ProposalCreated(p) => (
                p.dossier_number.clone(),
                Some(ProposalView {
                    proposal_id: p.proposal_id.clone(),
                    status: proposal_status.unwrap_or(ProposalStatus::Pending),
                    starts_at: p.starts_at.to_rfc3339(),
                    ends_at: p.ends_at.map(|t| t.to_rfc3339()),
                    proposed_by: p.proposed_by.clone(),
                    location: p.location.clone(),
                }),
                None,
            ),
            // Generic items: title, body, urgency and time say it all. `Unknown` is
            // listed to say so: a newer gateway's kind is shown, never dropped.
            NotificationData::SystemNotification(_)
            | NotificationData::ProposalStatusChanged(_)
            | NotificationData::ConversationMessage(_)
            | NotificationData::Unknown(_) => (None, None, None),
            // Ephemeral kinds have no tab: `Tab::of` returned above.
            NotificationData::TypingIndicator(_)
            | NotificationData::UserStatus(_)
            | NotificationData::MessageRead(_) => return None,
        };
        Some(Item {
            id: n.id.clone(),
            kind,
            kind_name: n.data.kind_name().to_owned(),
            tab,
            title: n.title.clone(),
            body: n.body.clone(),
            urgency: n.urgency,
            created_at: n.created_at,
            read,
            dossier_number,
            data,
            url: crate::link::openable(n).map(str::to_owned),
            proposal,
            deadline,
        })
    }
}

/// One deadline in the Deadlines tab (`list_deadlines`): the engine's
/// [`DeadlineRow`] with what the panel shows of its latest alert.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct DeadlineRowView {
    /// The firm's id of the deadline (what `acknowledge` names).
    pub deadline_id: String,
    /// "Délai d'appel".
    pub deadline_type: String,
    /// The dossier's number, when known.
    pub dossier_number: Option<String>,
    /// The dossier's title, when known.
    pub dossier_title: Option<String>,
    /// When due, RFC 3339 with the deadline's own offset.
    pub due_at: String,
    /// The deadline's IANA zone.
    pub time_zone: String,
    /// Working days left as of `as_of` (`None`: the alert did not say).
    pub working_days_left: Option<i64>,
    /// Calendar days left as of `as_of`.
    pub remaining_days: i64,
    /// When the latest alert was raised.
    pub as_of: DateTime<Utc>,
    /// The most urgent of its alerts.
    pub urgency: DeadlineUrgency,
    /// One of its alerts is critical.
    pub critical: bool,
    /// The latest alert's reminder label (`J-1`).
    pub reminder: Option<String>,
    /// One of its alerts is unread.
    pub unread: bool,
    /// Its alerts, newest first (a navigation to any of them lands on this row).
    pub alert_ids: Vec<String>,
    /// The newest alert: what "Open" opens.
    pub latest_alert_id: String,
    /// The latest alert's title.
    pub title: String,
    /// The latest alert's body.
    pub body: String,
    /// The latest alert's link, only when the shell would open it (`open_link` with
    /// `latest_alert_id`).
    pub url: Option<String>,
    /// The first acknowledgement, if any (`user_id: null`: this device's own, not yet
    /// confirmed by the gateway).
    pub acknowledged: Option<DeadlineAck>,
    /// Every acknowledgement, first first.
    pub acknowledgements: Vec<DeadlineAck>,
    /// Set when the user received it as an escalation of someone else's deadline.
    pub escalation: Option<Escalation>,
}

impl DeadlineRowView {
    /// The panel's row of `row`, with its latest alert when the engine still holds it.
    pub fn new(row: DeadlineRow, latest: Option<&Notification>) -> Self {
        DeadlineRowView {
            title: latest.map_or_else(|| row.deadline_type.clone(), |n| n.title.clone()),
            body: latest.map(|n| n.body.clone()).unwrap_or_default(),
            url: latest.and_then(crate::link::openable).map(str::to_owned),
            deadline_id: row.deadline_id,
            deadline_type: row.deadline_type,
            dossier_number: row.dossier_number,
            dossier_title: row.dossier_title,
            due_at: row.due_at.to_rfc3339(),
            time_zone: row.time_zone,
            working_days_left: row.working_days_left,
            remaining_days: row.remaining_days,
            as_of: row.as_of,
            urgency: row.urgency,
            critical: row.critical,
            reminder: row.reminder,
            unread: row.unread,
            alert_ids: row.alert_ids,
            latest_alert_id: row.latest_alert_id,
            acknowledged: row.acknowledged,
            acknowledgements: row.acknowledgements,
            escalation: row.escalation,
        }
    }
}

/// `rotate_calendar_feed`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalendarFeedView {
    /// The URL to subscribe to in a calendar app (absolute).
    pub url: String,
}

/// `revoke_calendar_feed`'s answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CalendarRevoked {
    /// False when there was no feed to turn off.
    pub revoked: bool,
}

/// A daily quiet window as the panel edits it ("22:00").
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHoursView {
    /// Start, "HH:MM".
    pub start: String,
    /// End, "HH:MM".
    pub end: String,
}

/// The preferences as the panel edits them.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PreferencesView {
    /// Per kind; absent = on.
    pub enabled_kinds: BTreeMap<Kind, bool>,
    /// Quiet hours.
    pub quiet_hours: Option<QuietHoursView>,
    /// Critical notifications still show during quiet hours.
    pub critical_breaks_through_quiet_hours: bool,
    /// Start at login.
    pub autostart: bool,
    /// Language.
    pub language: Language,
}

impl PreferencesView {
    /// The view of these settings.
    pub fn new(prefs: &Preferences, autostart: bool, language: Language) -> Self {
        PreferencesView {
            // `Unknown` follows the system notices' toggle: it has none of its own.
            enabled_kinds: prefs
                .enabled_kinds
                .iter()
                .filter(|(kind, _)| **kind != Kind::Unknown)
                .map(|(kind, enabled)| (*kind, *enabled))
                .collect(),
            quiet_hours: prefs.quiet_hours.map(|q| QuietHoursView {
                start: q.start.format("%H:%M").to_string(),
                end: q.end.format("%H:%M").to_string(),
            }),
            critical_breaks_through_quiet_hours: prefs.critical_breaks_through_quiet_hours,
            autostart,
            language,
        }
    }

    /// Applies the edited fields onto `prefs` (pause and summary threshold are kept).
    pub fn apply(&self, prefs: &mut Preferences) -> Result<(), AppError> {
        let quiet_hours = match &self.quiet_hours {
            None => None,
            Some(q) => Some(QuietHours {
                start: parse_time(&q.start)?,
                end: parse_time(&q.end)?,
            }),
        };
        if let Some(kind) = self.enabled_kinds.keys().find(|k| k.is_ephemeral()) {
            return Err(AppError::new(
                "invalid_input",
                format!("{} is never shown: it cannot be toggled", kind.as_str()),
            ));
        }
        prefs.enabled_kinds = self.enabled_kinds.clone();
        // Any key this build does not know reads as `Unknown`: set by the rule, not by
        // the panel.
        prefs.enabled_kinds.remove(&Kind::Unknown);
        crate::settings::unknown_kinds_follow_system(prefs);
        prefs.quiet_hours = quiet_hours;
        prefs.critical_breaks_through_quiet_hours = self.critical_breaks_through_quiet_hours;
        Ok(())
    }
}

/// Parses "HH:MM" (or "HH:MM:SS").
fn parse_time(text: &str) -> Result<NaiveTime, AppError> {
    NaiveTime::parse_from_str(text, "%H:%M")
        .or_else(|_| NaiveTime::parse_from_str(text, "%H:%M:%S"))
        .map_err(|_| {
            AppError::new(
                "invalid_input",
                format!("{text:?} is not a time of day: use HH:MM, e.g. 22:00"),
            )
        })
}

/// Which view of the panel to show.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum View {
    /// The tabs.
    Inbox,
    /// Preferences.
    Preferences,
    /// The sign-in form.
    Signin,
}

/// Open the panel at a place.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Navigate {
    /// The view.
    pub view: View,
    /// The tab, for the inbox.
    pub tab: Option<Tab>,
    /// The item to focus.
    pub item_id: Option<String>,
}

/// `items-changed` payload.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ItemsChanged {
    /// The tabs whose lists changed.
    pub tabs: Vec<Tab>,
}

/// `new-items` payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct NewItems {
    /// The items.
    pub items: Vec<Item>,
}

/// Which action an `action-result` is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    /// A proposal response (`respond_proposal`).
    Proposal,
    /// An acknowledgement (`acknowledge`, a toast's Acknowledge).
    Acknowledge,
}

/// `action-result` payload.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ActionResult {
    /// What was answered.
    pub action: ActionKind,
    /// The proposal answered, when the action was a proposal response.
    pub proposal_id: Option<String>,
    /// The deadlines of a refused acknowledgement (undone here); empty otherwise.
    pub deadline_ids: Vec<String>,
    /// Accepted by the gateway.
    pub ok: bool,
    /// Why not.
    pub error: Option<AppError>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tocsin_client::store::testing;

    #[test]
    fn preferences_round_trip_through_the_view() {
        let mut prefs = Preferences::default();
        let view = PreferencesView {
            enabled_kinds: BTreeMap::from([(Kind::DossierUpdated, false)]),
            quiet_hours: Some(QuietHoursView {
                start: "22:00".into(),
                end: "07:30".into(),
            }),
            critical_breaks_through_quiet_hours: false,
            autostart: true,
            language: Language::Fr,
        };
        view.apply(&mut prefs).expect("valid");
        assert!(!prefs.kind_enabled(Kind::DossierUpdated));
        assert!(prefs.kind_enabled(Kind::EmailReceived));
        assert_eq!(PreferencesView::new(&prefs, true, Language::Fr), view);
    }

    #[test]
    fn a_bad_time_is_refused_with_the_expected_format() {
        let view = PreferencesView {
            enabled_kinds: BTreeMap::new(),
            quiet_hours: Some(QuietHoursView {
                start: "25:00".into(),
                end: "07:00".into(),
            }),
            critical_breaks_through_quiet_hours: true,
            autostart: false,
            language: Language::System,
        };
        let err = view
            .apply(&mut Preferences::default())
            .expect_err("refused");
        assert_eq!(err.code, "invalid_input");
        assert!(err.message.contains("HH:MM"), "{}", err.message);
    }

    /// What a newer gateway sends for a kind this build does not know.
    fn newer_kind(id: &str, data: serde_json::Value) -> Notification {
        let mut n = testing::note(
            id,
            NotificationData::from_parts("deadline-escalated".into(), data),
            0,
        );
        n.title = "Délai d'appel escaladé".into();
        n.body = "Confié à Maître Roux".into();
        n.urgency = Urgency::High;
        n
    }

    #[test]
    fn an_unknown_kind_is_a_generic_item_in_the_system_tab() {
        let n = newer_kind("n1", json!({"escalated_to": "u-2", "level": 2}));
        let item = Item::from_notification(&n, false, None).expect("shown, not dropped");
        assert_eq!(item.kind, Kind::Unknown);
        assert_eq!(item.kind_name, "deadline-escalated");
        assert_eq!(item.tab, Tab::System);
        assert_eq!(item.title, "Délai d'appel escaladé");
        assert_eq!(item.body, "Confié à Maître Roux");
        assert_eq!(item.urgency, Urgency::High);
        assert_eq!(item.data["escalated_to"], "u-2", "its data is passed on");
        assert_eq!(
            (item.dossier_number, item.proposal, item.deadline),
            (None, None, None)
        );
        let json = serde_json::to_value(Item::from_notification(&n, true, None)).expect("json");
        assert_eq!(json["kind"], "unknown");
        assert_eq!(json["kind_name"], "deadline-escalated");
        assert_eq!(json["tab"], "system");
        assert_eq!(json["read"], true);
    }

    #[test]
    fn data_that_is_not_an_object_reaches_the_panel_as_an_empty_one() {
        for data in [serde_json::Value::Null, json!([1, 2]), json!("text")] {
            let item = Item::from_notification(&newer_kind("n1", data.clone()), false, None)
                .expect("shown");
            assert_eq!(item.data, json!({}), "{data}");
        }
    }

    #[test]
    fn known_kinds_keep_their_name_and_ephemeral_ones_have_no_item() {
        let item = Item::from_notification(&testing::email("n1", 0), false, None).expect("item");
        assert_eq!(item.kind_name, "email-received");
        assert_eq!(item.tab, Tab::Emails);
        let typing = testing::note(
            "n2",
            NotificationData::from_parts(
                "typing-indicator".into(),
                json!({"conversation_id": "c1", "user_id": "u1", "active": true}),
            ),
            0,
        );
        assert_eq!(typing.kind(), Kind::TypingIndicator);
        assert_eq!(Item::from_notification(&typing, false, None), None);
    }

    #[test]
    fn only_a_link_that_passes_the_protocol_rule_reaches_the_panel() {
        let mut n = testing::email("n1", 0);
        let url = |n: &Notification| Item::from_notification(n, false, None).and_then(|i| i.url);
        assert_eq!(url(&n), None);
        n.url = Some("https://ged.cabinet.fr/dossiers/2026-0142".into());
        assert_eq!(url(&n).as_deref(), n.url.as_deref());
        n.url = Some("secib://dossier/2026-0142".into());
        assert_eq!(url(&n).as_deref(), Some("secib://dossier/2026-0142"));
        for bad in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "dossiers/2026-0142",
        ] {
            n.url = Some(bad.into());
            assert_eq!(url(&n), None, "{bad}");
        }
    }

    #[test]
    fn unknown_kinds_follow_the_system_toggle_and_have_none_in_the_view() {
        let mut prefs = Preferences::default();
        let mut view = PreferencesView::new(&prefs, false, Language::En);
        view.enabled_kinds.insert(Kind::SystemNotification, false);
        // What a panel sending a key this build does not know amounts to.
        view.enabled_kinds.insert(Kind::Unknown, true);
        view.apply(&mut prefs).expect("valid");
        assert!(!prefs.kind_enabled(Kind::SystemNotification));
        assert!(!prefs.kind_enabled(Kind::Unknown), "follows system notices");
        let shown = PreferencesView::new(&prefs, false, Language::En);
        assert!(!shown.enabled_kinds.contains_key(&Kind::Unknown));
        view.enabled_kinds.insert(Kind::SystemNotification, true);
        view.apply(&mut prefs).expect("valid");
        assert!(prefs.kind_enabled(Kind::Unknown));
    }

    /// D1 as the engine lists it: two alerts, this device's own acknowledgement
    /// waiting for the gateway, received as an escalation of Marie's deadline.
    fn row() -> DeadlineRow {
        let due_at =
            chrono::DateTime::parse_from_rfc3339("2026-12-14T23:59:00+01:00").expect("a date");
        DeadlineRow {
            deadline_id: "D1".into(),
            deadline_type: "Délai d'appel".into(),
            dossier_number: Some("2026-0142".into()),
            dossier_title: Some("Dupont c/ Martin".into()),
            due_at,
            time_zone: "Europe/Paris".into(),
            working_days_left: Some(2),
            remaining_days: 3,
            as_of: testing::t(0),
            urgency: DeadlineUrgency::Critical,
            critical: true,
            reminder: Some("J-2".into()),
            unread: true,
            alert_ids: vec!["n2".into(), "n1".into()],
            latest_alert_id: "n2".into(),
            acknowledged: Some(DeadlineAck {
                user_id: None,
                user_name: String::new(),
                device: None,
                at: testing::t(60),
                pending: true,
            }),
            acknowledgements: Vec::new(),
            escalation: Some(Escalation {
                step: 1,
                owner: "u-marie".into(),
                owner_name: "Marie".into(),
            }),
        }
    }

    #[test]
    fn a_deadline_row_carries_its_latest_alerts_words_and_checked_link() {
        let mut latest = testing::deadline("n2", 10, 20);
        latest.title = "Délai d'appel — 2026-0142".into();
        latest.body = "J-2 ouvrés".into();
        latest.url = Some("https://dms.dupont.fr/dossiers/2026-0142".into());
        let view = DeadlineRowView::new(row(), Some(&latest));
        assert_eq!(view.title, latest.title);
        assert_eq!(view.body, "J-2 ouvrés");
        assert_eq!(view.url.as_deref(), latest.url.as_deref());
        let json = serde_json::to_value(&view).expect("json");
        assert_eq!(
            json["due_at"], "2026-12-14T23:59:00+01:00",
            "its own offset"
        );
        assert_eq!(json["working_days_left"], 2);
        assert_eq!(json["urgency"], "critical");
        assert_eq!(json["alert_ids"], json!(["n2", "n1"]));
        assert_eq!(json["acknowledged"]["user_id"], serde_json::Value::Null);
        assert_eq!(json["acknowledged"]["pending"], true);
        assert_eq!(json["escalation"]["owner_name"], "Marie");
        assert_eq!(json["escalation"]["step"], 1);

        latest.url = Some("javascript:alert(1)".into());
        assert_eq!(DeadlineRowView::new(row(), Some(&latest)).url, None);
        // Its latest alert no longer held (retention): the deadline still shows.
        let bare = DeadlineRowView::new(row(), None);
        assert_eq!(
            (bare.title.as_str(), bare.body.as_str(), bare.url),
            ("Délai d'appel", "", None)
        );
    }

    #[test]
    fn the_connection_serialises_as_the_panel_expects() {
        let json = serde_json::to_value(ConnectionState::SignedOut {
            reason: "revoked".into(),
        })
        .expect("json");
        assert_eq!(json["state"], "signed_out");
        assert_eq!(json["reason"], "revoked");
    }
}
