//! The offline action queue: actions the user took while offline (or not yet
//! answered), kept durably in order until the gateway answers them.
//!
//! The engine applies an action locally at once, [`LocalStore::enqueue`]s it, sends
//! [`LocalStore::pending`] in order after `caught_up` (resending the same id until a
//! `result` arrives; the gateway applies each id at most once), and
//! [`LocalStore::complete`]s it on its `result`.

use rusqlite::{OptionalExtension, params};
use tocsin_protocol::ClientFrame;
use tocsin_protocol::frames::MAX_ACTION_ID_LEN;

use super::error::StoreError;
use super::{LocalStore, now_us};

/// The most actions the queue holds; beyond, [`StoreError::OutboxFull`]. Far above
/// what a user does offline, low enough that replaying it stays quick.
pub const MAX_OUTBOX: usize = 10_000;

/// The `type` of a frame that may not be queued, for the error message; `None` for
/// the queueable ones.
fn refused_type(frame: &ClientFrame) -> Option<&'static str> {
    // Exhaustive on purpose: a new action (e.g. a future `dismiss`) must be decided here.
    match frame {
        ClientFrame::MarkRead { .. }
        | ClientFrame::MarkAllRead { .. }
        | ClientFrame::ProposalRespond { .. }
        | ClientFrame::Acknowledge { .. }
        | ClientFrame::Shown { .. } => None,
        ClientFrame::Auth { .. } => Some("auth"),
        ClientFrame::Hello { .. } => Some("hello"),
        ClientFrame::Join { .. } => Some("join"),
        ClientFrame::Leave { .. } => Some("leave"),
        ClientFrame::Typing { .. } => Some("typing"),
        ClientFrame::Presence { .. } => Some("presence"),
        ClientFrame::Refresh { .. } => Some("refresh"),
        ClientFrame::Ping {} => Some("ping"),
    }
}

impl LocalStore {
    /// Queues an action durably, after those already queued. Only `mark_read`,
    /// `mark_all_read`, `proposal_respond` and `acknowledge` are accepted (the gateway
    /// applies them at most once per id); the frame's `id` is the action id (make it a UUIDv7) and
    /// must be 1-64 bytes and not already queued. At [`MAX_OUTBOX`] actions,
    /// [`StoreError::OutboxFull`].
    pub fn enqueue(&mut self, action: &ClientFrame) -> Result<(), StoreError> {
        if let Some(frame) = refused_type(action) {
            return Err(StoreError::NotQueueable { frame });
        }
        let id = action.action_id().unwrap_or_default();
        if id.is_empty() || id.len() > MAX_ACTION_ID_LEN {
            return Err(StoreError::InvalidActionId(id.to_owned()));
        }
        let frame = serde_json::to_string(action)?;
        let tx = self.conn.transaction()?;
        let queued: i64 = tx
            .prepare_cached("SELECT COUNT(*) FROM outbox")?
            .query_row([], |row| row.get(0))?;
        if usize::try_from(queued).unwrap_or(usize::MAX) >= MAX_OUTBOX {
            return Err(StoreError::OutboxFull { max: MAX_OUTBOX });
        }
        let exists = tx
            .prepare_cached("SELECT 1 FROM outbox WHERE action_id = ?1")?
            .query_row([id], |_| Ok(()))
            .optional()?
            .is_some();
        if exists {
            return Err(StoreError::DuplicateAction(id.to_owned()));
        }
        tx.prepare_cached("INSERT INTO outbox (action_id, frame, queued_us) VALUES (?1, ?2, ?3)")?
            .execute(params![id, frame, now_us()])?;
        tx.commit()?;
        Ok(())
    }

    /// Every queued action, in enqueue order. A row that cannot be decoded (written
    /// by an incompatible version) is skipped with a warning and left in place.
    pub fn pending(&self) -> Result<Vec<ClientFrame>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT action_id, frame FROM outbox ORDER BY seq")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, String>(1)?))
        })?;
        let mut frames = Vec::new();
        for row in rows {
            let (id, frame) = row?;
            match serde_json::from_str::<ClientFrame>(&frame) {
                Ok(frame) => frames.push(frame),
                Err(err) => tracing::warn!(id, %err, "skipping an unreadable queued action"),
            }
        }
        Ok(frames)
    }

    /// Removes an answered action; returns whether it was queued.
    pub fn complete(&mut self, action_id: &str) -> Result<bool, StoreError> {
        let removed = self
            .conn
            .prepare_cached("DELETE FROM outbox WHERE action_id = ?1")?
            .execute([action_id])?;
        Ok(removed == 1)
    }

    /// How many actions are queued.
    pub fn outbox_len(&self) -> Result<usize, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM outbox")?
            .query_row([], |row| row.get(0))?;
        Ok(usize::try_from(n).unwrap_or(0))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_protocol::Kind;
    use tocsin_protocol::frames::ProposalResponse;

    fn mark_read(id: &str) -> ClientFrame {
        ClientFrame::MarkRead {
            id: id.into(),
            notification_ids: vec![format!("n-{id}")],
        }
    }

    #[test]
    fn actions_persist_in_order_across_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        let actions = vec![
            mark_read("a1"),
            ClientFrame::MarkAllRead {
                id: "a2".into(),
                kind: Some(Kind::DeadlineAlert),
                up_to: None,
            },
            ClientFrame::ProposalRespond {
                id: "a3".into(),
                proposal_id: "prop-1".into(),
                response: ProposalResponse::Reject,
            },
            mark_read("a4"),
        ];
        {
            let (mut store, _) = LocalStore::open(&path).expect("opens");
            for action in &actions {
                store.enqueue(action).expect("queued");
            }
        }
        let (mut store, _) = LocalStore::open(&path).expect("reopens");
        assert_eq!(store.pending().expect("pending"), actions);
        assert!(store.complete("a2").expect("complete"));
        assert!(!store.complete("a2").expect("complete twice"));
        store.enqueue(&mark_read("a5")).expect("queued");
        let ids: Vec<String> = store
            .pending()
            .expect("pending")
            .iter()
            .filter_map(|f| f.action_id().map(str::to_owned))
            .collect();
        assert_eq!(ids, ["a1", "a3", "a4", "a5"]);
    }

    #[test]
    fn the_queue_is_bounded() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        for i in 0..MAX_OUTBOX {
            store.enqueue(&mark_read(&format!("a{i}"))).expect("queued");
        }
        let err = store.enqueue(&mark_read("one-more")).expect_err("full");
        assert!(
            matches!(err, StoreError::OutboxFull { max: MAX_OUTBOX }),
            "{err}"
        );
        assert!(err.to_string().contains("10000"), "{err}");
        assert_eq!(store.outbox_len().expect("len"), MAX_OUTBOX);
        assert!(store.complete("a0").expect("complete"));
        store.enqueue(&mark_read("one-more")).expect("room again");
    }

    #[test]
    fn only_at_most_once_actions_with_valid_unique_ids_are_queued() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        let typing = ClientFrame::Typing {
            id: "t1".into(),
            conversation_id: "c1".into(),
            active: true,
        };
        let err = store.enqueue(&typing).expect_err("not queueable");
        assert!(err.to_string().contains("'typing'"), "{err}");
        assert!(matches!(
            store.enqueue(&ClientFrame::Ping {}),
            Err(StoreError::NotQueueable { frame: "ping" })
        ));
        assert!(matches!(
            store.enqueue(&mark_read("")),
            Err(StoreError::InvalidActionId(_))
        ));
        assert!(matches!(
            store.enqueue(&mark_read(&"x".repeat(65))),
            Err(StoreError::InvalidActionId(_))
        ));
        store.enqueue(&mark_read("same")).expect("queued");
        assert!(matches!(
            store.enqueue(&mark_read("same")),
            Err(StoreError::DuplicateAction(_))
        ));
        assert_eq!(store.outbox_len().expect("len"), 1);
    }
}
