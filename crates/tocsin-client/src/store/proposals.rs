//! Local status of appointment proposals, for the Proposals tab's buttons.
//!
//! [`LocalStore::persist`] keeps it in step with stored notifications: a
//! `proposal-created` sets `pending`, a `proposal-status-changed` sets its status,
//! and the newest `created_at` wins, so a replayed or backfilled older notification
//! never overrides a newer state. The engine calls
//! [`LocalStore::set_proposal_status`] for an optimistic answer, and
//! [`LocalStore::recompute_proposal_status`] to undo it after a `conflict` (the
//! proposal was answered elsewhere) or another refusal.

use rusqlite::{Connection, OptionalExtension, params};
use tocsin_protocol::notification::ProposalStatus;
use tocsin_protocol::{Kind, Notification, NotificationData};

use super::error::StoreError;
use super::{LocalStore, now_us};

/// Records the proposal state carried by a newly stored notification (newest wins;
/// on equal times a status change beats a creation).
pub(super) fn note(conn: &Connection, n: &Notification) -> Result<(), StoreError> {
    let (proposal_id, status, is_change) = match &n.data {
        NotificationData::ProposalCreated(p) => (&p.proposal_id, ProposalStatus::Pending, false),
        NotificationData::ProposalStatusChanged(p) => (&p.proposal_id, p.status, true),
        _ => return Ok(()),
    };
    conn.prepare_cached(
        "INSERT INTO proposals (proposal_id, status, as_of_us) VALUES (?1, ?2, ?3)
         ON CONFLICT (proposal_id) DO UPDATE SET
             status = excluded.status, as_of_us = excluded.as_of_us
         WHERE excluded.as_of_us > proposals.as_of_us
            OR (?4 AND excluded.as_of_us = proposals.as_of_us)",
    )?
    .execute(params![
        proposal_id,
        status.as_str(),
        n.created_at.timestamp_micros(),
        is_change
    ])?;
    Ok(())
}

/// A stored name back to a status.
fn parse_status(name: &str) -> Result<ProposalStatus, StoreError> {
    ProposalStatus::parse(name)
        .ok_or_else(|| StoreError::Decode(format!("unknown proposal status '{name}'")))
}

impl LocalStore {
    /// Sets a proposal's status now, whatever it was (an optimistic answer). A later
    /// `proposal-status-changed` from the gateway replaces it.
    pub fn set_proposal_status(
        &mut self,
        proposal_id: &str,
        status: ProposalStatus,
    ) -> Result<(), StoreError> {
        self.conn
            .prepare_cached(
                "INSERT INTO proposals (proposal_id, status, as_of_us) VALUES (?1, ?2, ?3)
                 ON CONFLICT (proposal_id) DO UPDATE SET
                     status = excluded.status, as_of_us = excluded.as_of_us",
            )?
            .execute(params![proposal_id, status.as_str(), now_us()])?;
        Ok(())
    }

    /// A proposal's local status; `None` if nothing is known about it.
    pub fn proposal_status(&self, proposal_id: &str) -> Result<Option<ProposalStatus>, StoreError> {
        let name: Option<String> = self
            .conn
            .prepare_cached("SELECT status FROM proposals WHERE proposal_id = ?1")?
            .query_row([proposal_id], |row| row.get(0))
            .optional()?;
        name.as_deref().map(parse_status).transpose()
    }

    /// Forgets any optimistic status and derives it again from the stored
    /// notifications (the newest one about the proposal); returns it, or `None` (and
    /// forgets the proposal) when none is held.
    pub fn recompute_proposal_status(
        &mut self,
        proposal_id: &str,
    ) -> Result<Option<ProposalStatus>, StoreError> {
        let tx = self.conn.transaction()?;
        let newest: Option<(String, i64)> = tx
            .prepare_cached(
                "SELECT body, created_us FROM inbox WHERE proposal_id = ?1
                 ORDER BY created_us DESC, (kind = ?2) DESC LIMIT 1",
            )?
            .query_row(
                params![proposal_id, Kind::ProposalStatusChanged.as_str()],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        let status = match newest {
            None => {
                tx.execute(
                    "DELETE FROM proposals WHERE proposal_id = ?1",
                    [proposal_id],
                )?;
                None
            }
            Some((body, created_us)) => {
                let n: Notification = serde_json::from_str(&body)
                    .map_err(|err| StoreError::Decode(format!("notification: {err}")))?;
                let status = match n.data {
                    NotificationData::ProposalStatusChanged(p) => p.status,
                    _ => ProposalStatus::Pending,
                };
                tx.execute(
                    "INSERT INTO proposals (proposal_id, status, as_of_us) VALUES (?1, ?2, ?3)
                     ON CONFLICT (proposal_id) DO UPDATE SET
                         status = excluded.status, as_of_us = excluded.as_of_us",
                    params![proposal_id, status.as_str(), created_us],
                )?;
                Some(status)
            }
        };
        tx.commit()?;
        Ok(status)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;

    #[test]
    fn notifications_drive_the_status_newest_first() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        assert_eq!(store.proposal_status("prop-1").expect("status"), None);
        store
            .persist(&[incoming(&user(), "e1", 1, proposal("p1", "prop-1", 10))])
            .expect("persists");
        assert_eq!(
            store.proposal_status("prop-1").expect("status"),
            Some(ProposalStatus::Pending)
        );
        store
            .persist(&[incoming(
                &user(),
                "e1",
                3,
                proposal_status("p3", "prop-1", ProposalStatus::Cancelled, 30),
            )])
            .expect("persists");
        // An older answer backfilled later does not override the newer cancellation.
        store
            .persist(&[incoming(
                &user(),
                "e1",
                2,
                proposal_status("p2", "prop-1", ProposalStatus::Accepted, 20),
            )])
            .expect("persists");
        assert_eq!(
            store.proposal_status("prop-1").expect("status"),
            Some(ProposalStatus::Cancelled)
        );
    }

    #[test]
    fn an_optimistic_answer_can_be_undone() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        store
            .persist(&[incoming(&user(), "e1", 1, proposal("p1", "prop-1", 10))])
            .expect("persists");
        store
            .set_proposal_status("prop-1", ProposalStatus::Accepted)
            .expect("set");
        assert_eq!(
            store.proposal_status("prop-1").expect("status"),
            Some(ProposalStatus::Accepted)
        );
        // The gateway answers `conflict`: it was rejected elsewhere, and that
        // notification is already here.
        store
            .persist(&[incoming(
                &user(),
                "e1",
                2,
                proposal_status("p2", "prop-1", ProposalStatus::Rejected, 20),
            )])
            .expect("persists");
        assert_eq!(
            store
                .recompute_proposal_status("prop-1")
                .expect("recompute"),
            Some(ProposalStatus::Rejected)
        );
        assert_eq!(
            store.proposal_status("prop-1").expect("status"),
            Some(ProposalStatus::Rejected)
        );
        assert_eq!(
            store
                .recompute_proposal_status("unknown")
                .expect("recompute"),
            None
        );
    }
}
