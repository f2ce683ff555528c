//! Notifications the publishing firm retracted (a `retracted` frame): they leave the
//! inbox, and their ids are kept so they are never stored again.
//!
//! In a replay a `retracted` entry fills the retracted notification's slot: the
//! stream's position moves over it in the same transaction (the gateway would
//! otherwise replay that slot at every connection).

use rusqlite::{TransactionBehavior, params};
use tocsin_protocol::frames::Retraction;

use super::error::StoreError;
use super::{LocalStore, offset_to_sql};

impl LocalStore {
    /// Deletes the retracted notifications and remembers their ids; the entries in
    /// `slots` also advance their stream's position to their offset (forward only,
    /// same epoch, as [`LocalStore::persist`] does). Returns the ids that were held
    /// (their OS notifications are to be closed).
    pub fn apply_retracted(
        &mut self,
        retractions: &[Retraction],
        slots: &[Retraction],
    ) -> Result<Vec<String>, StoreError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut removed = Vec::new();
        {
            let mut delete = tx.prepare_cached("DELETE FROM inbox WHERE id = ?1")?;
            let mut remember =
                tx.prepare_cached("INSERT OR IGNORE INTO retracted (id, at_us) VALUES (?1, ?2)")?;
            let mut advance = tx.prepare_cached(super::inbox::ADVANCE)?;
            for retraction in retractions.iter().chain(slots) {
                if delete.execute([&retraction.notification_id])? > 0 {
                    removed.push(retraction.notification_id.clone());
                }
                remember.execute(params![
                    retraction.notification_id,
                    retraction.at.timestamp_micros()
                ])?;
            }
            for slot in slots {
                let offset = offset_to_sql(slot.offset)?;
                advance.execute(params![slot.stream.to_string(), slot.epoch, offset])?;
            }
        }
        tx.commit()?;
        removed.sort();
        removed.dedup();
        Ok(removed)
    }
}

#[cfg(test)]
mod tests {
    use chrono::Utc;

    use super::*;
    use crate::store::testing::{email, incoming, user};

    fn retraction(id: &str, offset: u64) -> Retraction {
        Retraction {
            notification_id: id.into(),
            stream: user(),
            epoch: "e1".into(),
            offset,
            at: Utc::now(),
        }
    }

    #[test]
    fn a_retracted_notification_leaves_the_inbox_and_never_comes_back() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        store
            .persist(&[
                incoming(&user(), "e1", 1, email("n1", 1)),
                incoming(&user(), "e1", 2, email("n2", 2)),
            ])
            .expect("stored");
        let removed = store
            .apply_retracted(&[retraction("n1", 1), retraction("unknown", 9)], &[])
            .expect("applied");
        assert_eq!(removed, ["n1"], "only what was held is reported");
        assert!(store.get("n1").expect("get").is_none());
        assert!(store.get("n2").expect("get").is_some());
        // The same notification again (a live frame that raced the retraction).
        let fresh = store
            .persist(&[incoming(&user(), "e1", 1, email("n1", 1))])
            .expect("no divergence: the slot is free");
        assert_eq!(fresh, [false]);
        assert!(store.get("n1").expect("get").is_none());
    }

    #[test]
    fn a_retracted_slot_in_a_replay_moves_the_position_over_it() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        store
            .persist(&[incoming(&user(), "e1", 1, email("n1", 1))])
            .expect("stored");
        store
            .apply_retracted(&[], &[retraction("n2", 2)])
            .expect("applied");
        let positions = store.positions().expect("positions");
        assert_eq!(positions[&user()].offset, 2);
        // Never backwards: an older slot does not move it back.
        store
            .apply_retracted(&[], &[retraction("n0", 1)])
            .expect("applied");
        assert_eq!(store.positions().expect("positions")[&user()].offset, 2);
    }
}
