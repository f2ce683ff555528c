//! The Deadlines panel's rows: one per deadline (grouped by `deadline_id`), built
//! from the `deadline-alert`s held and the deadline's acknowledgements.
//!
//! A deadline raises several alerts (J-3, J-1, J-0, an escalation); the lawyer acts
//! on the deadline, not on each alert, so the panel shows one row that knows all its
//! alert ids (to mark them read) and its latest one (to open its link).

use chrono::{DateTime, FixedOffset, Utc};
use rusqlite::types::Value;
use serde::{Deserialize, Serialize};
use tocsin_protocol::notification::{DeadlineAlert, DeadlineUrgency, Escalation};
use tocsin_protocol::{NotificationData, Urgency};

use super::LocalStore;
use super::acknowledgements::DeadlineAck;
use super::error::StoreError;
use super::inbox::{COLUMNS, InboxItem, sql_limit};

/// One deadline as the panel shows it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DeadlineRow {
    /// The firm's id of the deadline (what [`crate::engine::Command::Acknowledge`]
    /// takes).
    pub deadline_id: String,
    /// "Délai d'appel".
    pub deadline_type: String,
    /// The dossier's number, when the alerts carry it.
    pub dossier_number: Option<String>,
    /// The dossier's title, when the alerts carry it.
    pub dossier_title: Option<String>,
    /// When it falls due (the latest alert's: a re-planned deadline moves).
    pub due_at: DateTime<FixedOffset>,
    /// Its IANA zone.
    pub time_zone: String,
    /// Working days left as of the latest alert (see `as_of`), not as of now; `None`
    /// when the alert did not say (alerts the firm publishes itself).
    pub working_days_left: Option<i64>,
    /// Calendar days left as of the latest alert (0 = due that day).
    pub remaining_days: i64,
    /// When the latest alert was raised: what the two counts above are as of.
    pub as_of: DateTime<Utc>,
    /// The most urgent of its alerts held (so a row and the tray's mark agree; a
    /// re-planned deadline keeps it while its older alerts are held).
    pub urgency: DeadlineUrgency,
    /// Whether one of its alerts is critical (the notification's urgency, as toasts
    /// and [`super::Counts::unacknowledged_critical_deadlines`] count it).
    pub critical: bool,
    /// The latest alert's reminder label (`J-1`), if it has one.
    pub reminder: Option<String>,
    /// Whether any of its alerts is unread.
    pub unread: bool,
    /// Its alerts held, newest first.
    pub alert_ids: Vec<String>,
    /// The newest of them (to open its link).
    pub latest_alert_id: String,
    /// The first acknowledgement (the one that stopped the escalation), if any.
    pub acknowledged: Option<DeadlineAck>,
    /// Everyone who acknowledged it, first one first; this device's own last while
    /// the gateway has not reported it.
    pub acknowledgements: Vec<DeadlineAck>,
    /// Set when the user received it as an escalation (someone else's deadline):
    /// the highest step received, with the owner's name.
    pub escalation: Option<Escalation>,
}

/// Picks the `limit` deadlines due first, by their latest alert's due time.
const DUE_FIRST: &str = "
SELECT deadline_id FROM (
    SELECT deadline_id, due_us,
           ROW_NUMBER() OVER (PARTITION BY deadline_id ORDER BY created_us DESC, id DESC) AS nth
    FROM inbox WHERE deadline_id IS NOT NULL)
WHERE nth = 1 ORDER BY due_us, deadline_id LIMIT ?1";

impl LocalStore {
    /// Up to `limit` deadlines, one row each, soonest due first (past ones first).
    pub fn deadline_rows(&self, limit: usize) -> Result<Vec<DeadlineRow>, StoreError> {
        let ids = self
            .conn
            .prepare_cached(DUE_FIRST)?
            .query_map([sql_limit(limit)], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        let mut rows = Vec::with_capacity(ids.len());
        for deadline_id in ids {
            let sql = format!(
                "SELECT {COLUMNS} FROM inbox WHERE deadline_id = ?1
                 ORDER BY created_us DESC, id DESC"
            );
            let alerts = self.query_items(&sql, vec![Value::Text(deadline_id.clone())])?;
            let acknowledgements = self.acknowledgements_of(&deadline_id)?;
            if let Some(row) = row_of(deadline_id, &alerts, acknowledgements) {
                rows.push(row);
            }
        }
        Ok(rows)
    }
}

/// A deadline's row from its alerts (newest first); `None` when none of them reads as
/// a `deadline-alert`.
fn row_of(
    deadline_id: String,
    alerts: &[InboxItem],
    acknowledgements: Vec<DeadlineAck>,
) -> Option<DeadlineRow> {
    let typed: Vec<(&InboxItem, &DeadlineAlert)> = alerts
        .iter()
        .filter_map(|item| match &item.notification.data {
            NotificationData::DeadlineAlert(alert) => Some((item, alert)),
            _ => None,
        })
        .collect();
    let (latest, alert) = *typed.first()?;
    Some(DeadlineRow {
        deadline_id,
        deadline_type: alert.deadline_type.clone(),
        dossier_number: typed.iter().find_map(|(_, a)| a.dossier_number.clone()),
        dossier_title: typed.iter().find_map(|(_, a)| a.dossier_title.clone()),
        due_at: alert.due_at,
        time_zone: alert.time_zone.clone(),
        working_days_left: alert.working_days_left,
        remaining_days: alert.remaining_days,
        as_of: latest.notification.created_at,
        urgency: typed
            .iter()
            .map(|(_, a)| a.urgency)
            .max()
            .unwrap_or(alert.urgency),
        critical: typed
            .iter()
            .any(|(item, _)| item.notification.urgency == Urgency::Critical),
        reminder: alert.reminder.clone(),
        unread: typed.iter().any(|(item, _)| !item.read),
        alert_ids: typed
            .iter()
            .map(|(item, _)| item.notification.id.clone())
            .collect(),
        latest_alert_id: latest.notification.id.clone(),
        acknowledged: acknowledgements.first().cloned(),
        acknowledgements,
        escalation: typed
            .iter()
            .filter_map(|(_, a)| a.escalation.clone())
            .max_by_key(|e| e.step),
    })
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use tocsin_protocol::notification::DeadlineUrgency;

    /// D1 due in 48 h: a warning, then a critical J-1 reminder; D2 due in 5 h: one
    /// urgent alert; D3 in 72 h: an escalation of someone else's deadline.
    fn sample() -> LocalStore {
        let mut store = LocalStore::open_in_memory().expect("opens");
        let mut j1 = alert("d1-c", "D1", 20, DeadlineUrgency::Critical, 48);
        if let NotificationData::DeadlineAlert(data) = &mut j1.data {
            data.reminder = Some("J-1".into());
            data.working_days_left = Some(1);
            data.dossier_title = Some("Dupont c/ Martin".into());
        }
        let mut escalated = alert("d3-e", "D3", 40, DeadlineUrgency::Critical, 72);
        if let NotificationData::DeadlineAlert(data) = &mut escalated.data {
            data.escalation = Some(Escalation {
                step: 1,
                owner: "u9".into(),
                owner_name: "Paul".into(),
            });
        }
        store
            .persist(&[
                incoming(
                    &user(),
                    "e1",
                    1,
                    alert("d1-w", "D1", 10, DeadlineUrgency::Warning, 48),
                ),
                incoming(&user(), "e1", 2, j1),
                incoming(
                    &user(),
                    "e1",
                    3,
                    alert("d2-u", "D2", 30, DeadlineUrgency::Urgent, 5),
                ),
                incoming(&user(), "e1", 4, escalated),
                incoming(&user(), "e1", 5, email("mail", 50)),
            ])
            .expect("persists");
        store
    }

    #[test]
    fn alerts_make_one_row_per_deadline_soonest_due_first() {
        let store = sample();
        let rows = store.deadline_rows(10).expect("rows");
        let order: Vec<&str> = rows.iter().map(|r| r.deadline_id.as_str()).collect();
        assert_eq!(order, ["D2", "D1", "D3"]);
        let d1 = &rows[1];
        assert_eq!(d1.alert_ids, ["d1-c", "d1-w"]);
        assert_eq!(d1.latest_alert_id, "d1-c");
        assert_eq!(d1.urgency, DeadlineUrgency::Critical);
        assert!(d1.critical && d1.unread);
        assert_eq!(d1.reminder.as_deref(), Some("J-1"));
        assert_eq!(d1.working_days_left, Some(1));
        assert_eq!(d1.as_of, t(20));
        assert_eq!(d1.dossier_title.as_deref(), Some("Dupont c/ Martin"));
        assert!(d1.acknowledged.is_none() && d1.escalation.is_none());
        assert!(!rows[0].critical, "urgent is not critical");
        let escalation = rows[2]
            .escalation
            .as_ref()
            .expect("received as an escalation");
        assert_eq!(escalation.owner_name, "Paul");
        assert_eq!(store.deadline_rows(1).expect("rows").len(), 1);
    }

    #[test]
    fn a_row_follows_read_state_and_acknowledgements() {
        let mut store = sample();
        store
            .apply_read(&["d1-w".to_owned(), "d1-c".to_owned()])
            .expect("reads");
        store
            .apply_acknowledged(&[acknowledgement("D1", "u2", "Bureau", 60)], Some("u1"))
            .expect("applies");
        let rows = store.deadline_rows(10).expect("rows");
        let d1 = rows.iter().find(|r| r.deadline_id == "D1").expect("D1");
        assert!(!d1.unread);
        let by = d1.acknowledged.as_ref().expect("acknowledged");
        assert_eq!(by.user_name, "name of u2");
        assert_eq!(by.device.as_deref(), Some("Bureau"));
        let json = serde_json::to_value(d1).expect("serialises");
        assert_eq!(json["acknowledged"]["device"], "Bureau");
        assert_eq!(json["urgency"], "critical");
    }
}
