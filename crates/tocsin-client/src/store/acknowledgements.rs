//! Deadline acknowledgements ("Pris en compte"): per deadline (the firm's
//! `deadline_id`, shared by all its alerts), not per notification, and distinct from
//! read. Acknowledging any alert of a deadline acknowledges the deadline for everyone.
//!
//! The user's own acknowledgement is applied at once ([`LocalStore::acknowledge_locally`],
//! from the queued `acknowledge` frame): a row by "this device's user" (`user_id = ''`)
//! marked with the action id while the gateway has not answered. The gateway's answer
//! settles it ([`LocalStore::settle_acknowledge`]: kept, or undone for the deadlines
//! it did not acknowledge), and its `acknowledged` frames
//! ([`LocalStore::apply_acknowledged`], idempotent: the same frame is sent after
//! every `caught_up`) say who, from which device and when, replacing the local row.

use chrono::{DateTime, Utc};
use rusqlite::{Transaction, params};
use serde::{Deserialize, Serialize};
use tocsin_protocol::deadline::Acknowledgement;

use super::error::StoreError;
use super::{LocalStore, from_us};

/// The `user_id` of this device's own acknowledgement until the gateway names the user.
const OWN: &str = "";

/// Who took a deadline in, as shown in its row.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DeadlineAck {
    /// The user's id; `None` for this device's own acknowledgement until the gateway
    /// reports it (then it is replaced by the gateway's row).
    pub user_id: Option<String>,
    /// The user's name (`""` while `user_id` is `None`: show "you").
    pub user_name: String,
    /// The device it was given from, when known.
    pub device: Option<String>,
    /// When (the gateway's time; this device's clock while pending).
    pub at: DateTime<Utc>,
    /// True while the gateway has not answered this device's acknowledgement (it is
    /// undone if the gateway refuses it).
    pub pending: bool,
}

impl LocalStore {
    /// Per deadline among `deadline_ids`, the ids of the alerts held for it, newest
    /// first; deadlines without any alert held are left out (in the order given).
    pub fn alert_ids_by_deadline(
        &self,
        deadline_ids: &[String],
    ) -> Result<Vec<(String, Vec<String>)>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT id FROM inbox WHERE deadline_id = ?1 ORDER BY created_us DESC, id DESC",
        )?;
        let mut found = Vec::new();
        for deadline_id in deadline_ids {
            let ids = stmt
                .query_map([deadline_id], |row| row.get::<_, String>(0))?
                .collect::<Result<Vec<_>, _>>()?;
            if !ids.is_empty() && !found.iter().any(|(d, _)| d == deadline_id) {
                found.push((deadline_id.clone(), ids));
            }
        }
        Ok(found)
    }

    /// The user's own `acknowledge` action, applied before the gateway answers: the
    /// deadlines of the held alerts among `notification_ids` are acknowledged by this
    /// device's user, pending `action_id`. Returns those deadlines.
    pub fn acknowledge_locally(
        &mut self,
        action_id: &str,
        notification_ids: &[String],
        at: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let ids = serde_json::to_string(notification_ids)?;
        let tx = self.conn.transaction()?;
        let deadlines = tx
            .prepare_cached(
                "SELECT DISTINCT deadline_id FROM inbox WHERE deadline_id IS NOT NULL
                 AND id IN (SELECT value FROM json_each(?1)) ORDER BY deadline_id",
            )?
            .query_map([ids], |row| row.get::<_, String>(0))?
            .collect::<Result<Vec<_>, _>>()?;
        {
            let mut own = tx.prepare_cached(
                "INSERT INTO acknowledgements
                     (deadline_id, user_id, user_name, device, at_us, notification_id, action_id)
                 VALUES (?1, ?2, '', NULL, ?3, NULL, ?4)
                 ON CONFLICT (deadline_id, user_id) DO UPDATE SET
                     at_us = excluded.at_us, action_id = excluded.action_id",
            )?;
            for deadline_id in &deadlines {
                own.execute(params![deadline_id, OWN, at.timestamp_micros(), action_id])?;
            }
        }
        tx.commit()?;
        Ok(deadlines)
    }

    /// The gateway's final answer to an `acknowledge` action: this device's
    /// acknowledgements pending `action_id` are kept for the deadlines in
    /// `acknowledged` and undone for the others (`Some(&[])` for a refused action;
    /// `None` when the gateway accepted it without saying which: all kept). Returns
    /// the deadlines undone.
    pub fn settle_acknowledge(
        &mut self,
        action_id: &str,
        acknowledged: Option<&[String]>,
    ) -> Result<Vec<String>, StoreError> {
        let tx = self.conn.transaction()?;
        let undone = match acknowledged {
            Some(kept) => undo_all_but(&tx, action_id, kept)?,
            None => Vec::new(),
        };
        tx.execute(
            "UPDATE acknowledgements SET action_id = NULL WHERE action_id = ?1",
            [action_id],
        )?;
        tx.commit()?;
        Ok(undone)
    }

    /// Applies an `acknowledged` frame; idempotent. `me` is the signed-in user's id:
    /// their acknowledgement replaces this device's local one. Returns the deadlines
    /// whose acknowledgements changed (nothing for a frame already applied).
    pub fn apply_acknowledged(
        &mut self,
        acknowledgements: &[Acknowledgement],
        me: Option<&str>,
    ) -> Result<Vec<String>, StoreError> {
        let tx = self.conn.transaction()?;
        let mut changed: Vec<String> = Vec::new();
        for ack in acknowledgements.iter().filter(|a| a.user_id != OWN) {
            let mut touched = upsert(&tx, ack)?;
            if me == Some(ack.user_id.as_str()) {
                touched |= tx.execute(
                    "DELETE FROM acknowledgements WHERE deadline_id = ?1 AND user_id = ?2",
                    params![ack.deadline_id, OWN],
                )? > 0;
            }
            if touched && !changed.contains(&ack.deadline_id) {
                changed.push(ack.deadline_id.clone());
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Who took a deadline in: the gateway's acknowledgements first one first, then
    /// this device's own if the gateway has not reported it yet.
    pub fn acknowledgements_of(&self, deadline_id: &str) -> Result<Vec<DeadlineAck>, StoreError> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT user_id, user_name, device, at_us, action_id IS NOT NULL
             FROM acknowledgements WHERE deadline_id = ?1
             ORDER BY user_id = '', at_us, user_id",
        )?;
        let acks = stmt
            .query_map([deadline_id], |row| {
                let user_id: String = row.get(0)?;
                Ok(DeadlineAck {
                    user_id: (user_id != OWN).then_some(user_id),
                    user_name: row.get(1)?,
                    device: row.get(2)?,
                    at: from_us(row.get(3)?),
                    pending: row.get(4)?,
                })
            })?
            .collect::<Result<Vec<_>, _>>()?;
        Ok(acks)
    }

    /// Whether anyone (this device's user included, pending or not) acknowledged a
    /// deadline.
    pub fn is_acknowledged(&self, deadline_id: &str) -> Result<bool, StoreError> {
        let found: bool = self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM acknowledgements WHERE deadline_id = ?1)",
            )?
            .query_row([deadline_id], |row| row.get(0))?;
        Ok(found)
    }

    /// Records deadlines the firm closed; returns those not known closed before.
    pub fn apply_closed(
        &mut self,
        closed: &[tocsin_protocol::deadline::ClosedDeadline],
    ) -> Result<Vec<String>, StoreError> {
        let mut insert = self.conn.prepare_cached(
            "INSERT OR IGNORE INTO deadline_closures (deadline_id, status, at_us) VALUES (?1, ?2, ?3)",
        )?;
        let mut newly = Vec::new();
        for deadline in closed {
            let changed = insert.execute(rusqlite::params![
                deadline.deadline_id,
                deadline.status.as_str(),
                deadline.at.timestamp_micros()
            ])?;
            if changed > 0 {
                newly.push(deadline.deadline_id.clone());
            }
        }
        Ok(newly)
    }

    /// Whether the firm closed this deadline (done or withdrawn).
    pub fn is_closed(&self, deadline_id: &str) -> Result<bool, StoreError> {
        Ok(self
            .conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM deadline_closures WHERE deadline_id = ?1)",
            )?
            .query_row([deadline_id], |row| row.get(0))?)
    }

    /// How many distinct deadlines have a critical alert held (the notification's
    /// urgency, as for toasts) and nobody's acknowledgement: the tray's orange mark.
    /// Read or not does not matter: reading an alert is not taking the deadline in.
    pub fn unacknowledged_critical_deadlines(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT COUNT(DISTINCT deadline_id) FROM inbox i
                 WHERE deadline_id IS NOT NULL AND json_extract(body, '$.urgency') = 'critical'
                 AND NOT EXISTS (SELECT 1 FROM acknowledgements a WHERE a.deadline_id = i.deadline_id)
                 AND NOT EXISTS (SELECT 1 FROM deadline_closures c WHERE c.deadline_id = i.deadline_id)",
            )?
            .query_row([], |row| row.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }
}

/// Deletes the acknowledgements pending `action_id` except those of `kept`; returns
/// their deadlines.
fn undo_all_but(
    tx: &Transaction<'_>,
    action_id: &str,
    kept: &[String],
) -> Result<Vec<String>, StoreError> {
    let kept = serde_json::to_string(kept)?;
    let undone = tx
        .prepare_cached(
            "DELETE FROM acknowledgements WHERE action_id = ?1
             AND deadline_id NOT IN (SELECT value FROM json_each(?2)) RETURNING deadline_id",
        )?
        .query_map(params![action_id, kept], |row| row.get::<_, String>(0))?
        .collect::<Result<Vec<_>, _>>()?;
    Ok(undone)
}

/// Stores one of the gateway's acknowledgements; true when it was new or differed.
fn upsert(tx: &Transaction<'_>, ack: &Acknowledgement) -> Result<bool, StoreError> {
    let changed = tx
        .prepare_cached(
            "INSERT INTO acknowledgements
                 (deadline_id, user_id, user_name, device, at_us, notification_id, action_id)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, NULL)
             ON CONFLICT (deadline_id, user_id) DO UPDATE SET
                 user_name = excluded.user_name, device = excluded.device,
                 at_us = excluded.at_us, notification_id = excluded.notification_id
             WHERE user_name IS NOT excluded.user_name OR device IS NOT excluded.device
                OR at_us IS NOT excluded.at_us OR notification_id IS NOT excluded.notification_id",
        )?
        .execute(params![
            ack.deadline_id,
            ack.user_id,
            ack.user_name,
            ack.device,
            ack.at.timestamp_micros(),
            ack.notification_id,
        ])?;
    Ok(changed > 0)
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use tocsin_protocol::notification::DeadlineUrgency;

    /// Deadline D1 (a warning, then a critical alert) and D2 (one critical alert).
    fn two_deadlines() -> LocalStore {
        let mut store = LocalStore::open_in_memory().expect("opens");
        store
            .persist(&[
                incoming(
                    &user(),
                    "e1",
                    1,
                    alert("d1-w", "D1", 10, DeadlineUrgency::Warning, 48),
                ),
                incoming(
                    &user(),
                    "e1",
                    2,
                    alert("d1-c", "D1", 20, DeadlineUrgency::Critical, 48),
                ),
                incoming(
                    &user(),
                    "e1",
                    3,
                    alert("d2-c", "D2", 30, DeadlineUrgency::Critical, 24),
                ),
                incoming(&user(), "e1", 4, email("mail", 40)),
            ])
            .expect("persists");
        store
    }

    fn ids(list: &[&str]) -> Vec<String> {
        list.iter().map(|id| (*id).to_owned()).collect()
    }

    #[test]
    fn a_closed_deadline_leaves_the_mark_once() {
        let mut store = two_deadlines();
        assert_eq!(store.unacknowledged_critical_deadlines().expect("count"), 2);
        let closed = tocsin_protocol::deadline::ClosedDeadline {
            deadline_id: "D2".into(),
            status: tocsin_protocol::deadline::DeadlineStatus::Done,
            at: t(60),
        };
        let newly = store
            .apply_closed(std::slice::from_ref(&closed))
            .expect("applies");
        assert_eq!(newly, ["D2"]);
        assert!(store.is_closed("D2").expect("query"));
        assert!(
            !store.is_acknowledged("D2").expect("query"),
            "closed is not acknowledged"
        );
        assert_eq!(store.unacknowledged_critical_deadlines().expect("count"), 1);
        let again = store.apply_closed(&[closed]).expect("applies");
        assert!(
            again.is_empty(),
            "told again after every caught_up: nothing new"
        );
    }

    #[test]
    fn acknowledging_any_alert_acknowledges_its_deadline_not_read_state() {
        let mut store = two_deadlines();
        assert_eq!(store.unacknowledged_critical_deadlines().expect("count"), 2);
        // The warning alert, though only D1's other alert is critical.
        let acked = store
            .acknowledge_locally("act-1", &ids(&["d1-w", "mail", "unknown"]), t(50))
            .expect("applies");
        assert_eq!(acked, ["D1"]);
        assert!(store.is_acknowledged("D1").expect("query"));
        assert!(!store.is_acknowledged("D2").expect("query"));
        assert_eq!(store.unacknowledged_critical_deadlines().expect("count"), 1);
        assert_eq!(
            store.unread_critical_deadlines().expect("count"),
            2,
            "acknowledged is not read"
        );
        let own = store.acknowledgements_of("D1").expect("query");
        assert_eq!(
            own,
            [DeadlineAck {
                user_id: None,
                user_name: String::new(),
                device: None,
                at: t(50),
                pending: true,
            }]
        );
        // Reading every alert does not take the deadline in either.
        store.apply_read(&ids(&["d2-c"])).expect("reads");
        assert_eq!(store.unacknowledged_critical_deadlines().expect("count"), 1);
    }

    #[test]
    fn the_gateways_acknowledgements_apply_once_and_replace_this_devices_own() {
        let mut store = two_deadlines();
        store
            .acknowledge_locally("act-1", &ids(&["d1-c"]), t(50))
            .expect("applies");
        let mine = acknowledgement("D1", "u1", "Laptop — Marie", 51);
        let changed = store
            .apply_acknowledged(std::slice::from_ref(&mine), Some("u1"))
            .expect("applies");
        assert_eq!(changed, ["D1"]);
        let acks = store.acknowledgements_of("D1").expect("query");
        assert_eq!(acks.len(), 1, "the local row is replaced: {acks:?}");
        assert_eq!(acks[0].user_id.as_deref(), Some("u1"));
        assert_eq!(acks[0].device.as_deref(), Some("Laptop — Marie"));
        assert!(!acks[0].pending);
        // The same frame after the next `caught_up`: nothing changes, nothing to tell.
        let again = store
            .apply_acknowledged(std::slice::from_ref(&mine), Some("u1"))
            .expect("applies");
        assert!(again.is_empty());
        // A colleague's, earlier, comes first; a deadline not held is kept for later.
        let colleague = acknowledgement("D1", "u2", "Bureau", 40);
        let unheld = acknowledgement("D9", "u2", "Bureau", 40);
        let changed = store
            .apply_acknowledged(&[colleague, unheld, mine], Some("u1"))
            .expect("applies");
        assert_eq!(changed, ["D1", "D9"]);
        let by: Vec<Option<String>> = store
            .acknowledgements_of("D1")
            .expect("query")
            .into_iter()
            .map(|ack| ack.user_id)
            .collect();
        assert_eq!(by, [Some("u2".to_owned()), Some("u1".to_owned())]);
        assert_eq!(store.unacknowledged_critical_deadlines().expect("count"), 1);
    }

    #[test]
    fn an_answer_keeps_what_the_gateway_acknowledged_and_undoes_the_rest() {
        let mut store = two_deadlines();
        store
            .acknowledge_locally("act-1", &ids(&["d1-c", "d2-c"]), t(50))
            .expect("applies");
        assert_eq!(store.unacknowledged_critical_deadlines().expect("count"), 0);
        let undone = store
            .settle_acknowledge("act-1", Some(&ids(&["D1"])))
            .expect("settles");
        assert_eq!(undone, ["D2"]);
        assert!(!store.is_acknowledged("D2").expect("query"));
        let d1 = store.acknowledgements_of("D1").expect("query");
        assert!(!d1[0].pending, "confirmed, awaiting who and where");
        assert_eq!(store.unacknowledged_critical_deadlines().expect("count"), 1);
        // Refused outright; and an answer that does not say keeps everything.
        store
            .acknowledge_locally("act-2", &ids(&["d2-c"]), t(60))
            .expect("applies");
        assert_eq!(
            store
                .settle_acknowledge("act-2", Some(&[]))
                .expect("settles"),
            ["D2"]
        );
        store
            .acknowledge_locally("act-3", &ids(&["d2-c"]), t(70))
            .expect("applies");
        assert!(
            store
                .settle_acknowledge("act-3", None)
                .expect("settles")
                .is_empty()
        );
        assert!(store.is_acknowledged("D2").expect("query"));
    }

    #[test]
    fn acknowledgements_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        {
            let (mut store, _) = LocalStore::open(&path).expect("opens");
            store
                .persist(&[incoming(
                    &user(),
                    "e1",
                    1,
                    alert("a", "D1", 1, DeadlineUrgency::Critical, 5),
                )])
                .expect("persists");
            store
                .acknowledge_locally("act-1", &ids(&["a"]), t(2))
                .expect("applies");
        }
        let (mut store, _) = LocalStore::open(&path).expect("reopens");
        assert_eq!(store.unacknowledged_critical_deadlines().expect("count"), 0);
        assert!(store.acknowledgements_of("D1").expect("query")[0].pending);
        assert_eq!(
            store
                .alert_ids_by_deadline(&ids(&["D1", "D2", "D1"]))
                .expect("query"),
            [("D1".to_owned(), ids(&["a"]))]
        );
        assert!(
            store
                .settle_acknowledge("act-1", None)
                .expect("settles")
                .is_empty()
        );
    }
}
