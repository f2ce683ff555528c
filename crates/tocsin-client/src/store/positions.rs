//! Positions: the last `(epoch, offset)` held per stream, sent in `hello`/`join`.
//!
//! [`LocalStore::persist`] advances them; this module reads them and handles a
//! stream that cannot be resumed (`recovered: false`, PROTOCOL.md §2): the position
//! jumps to the gateway's `(epoch, head)` and the stream is flagged for a history
//! rebuild until the engine says the rebuild is done, so a rebuild interrupted by a
//! restart is resumed rather than forgotten.
//!
//! A stream whose history diverged (the gateway sent another notification at a
//! position held, [`super::StoreError::Diverged`]) is rewound by
//! [`LocalStore::rewind_diverged`]: what was received from that offset on is kept but
//! moved off the stream's timeline, and the position goes back to just before it,
//! flagged for a rebuild, so the gateway's history is fetched again from there.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use tocsin_protocol::{Position, StreamName};

use super::error::{Divergence, StoreError};
use super::{LocalStore, offset_from_sql, offset_to_sql};

/// The two passes of a stream's history rebuild: what the user has not read comes
/// first, so that a long history cannot push an unread deadline behind thousands of
/// read mails; then everything else retained.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BackfillPass {
    /// Only the unread notifications.
    Unread,
    /// All of them.
    All,
}

/// Sets a stream's position, whatever it was, and flags it for a history rebuild.
const RESET: &str = "
INSERT INTO positions (stream, epoch, last_offset, backfill) VALUES (?1, ?2, ?3, 1)
ON CONFLICT (stream) DO UPDATE SET
    epoch = excluded.epoch, last_offset = excluded.last_offset, backfill = 1,
    backfill_pass = 0, backfill_after = 0";

/// Moves a stream's rows from an offset on to another epoch label: they stay in the
/// inbox (same ids, read state, panel order) but no longer hold the positions.
const DETACH: &str = "
UPDATE inbox SET epoch = ?1 WHERE stream = ?2 AND epoch = ?3 AND stream_offset >= ?4";

impl LocalStore {
    /// Every stream's position, to send in `hello`.
    pub fn positions(&self) -> Result<BTreeMap<StreamName, Position>, StoreError> {
        self.positions_where("1")
    }

    /// One stream's position, if held.
    pub fn position(&self, stream: &StreamName) -> Result<Option<Position>, StoreError> {
        let found = self
            .conn
            .prepare_cached("SELECT epoch, last_offset FROM positions WHERE stream = ?1")?
            .query_row([stream.to_string()], |row| {
                Ok(Position {
                    epoch: row.get(0)?,
                    offset: offset_from_sql(row.get(1)?),
                })
            })
            .optional()?;
        Ok(found)
    }

    /// After `recovered: false` (or an epoch change): sets the stream's position to
    /// `(epoch, head)` from the `welcome`/`join` entry, whatever it was, and flags the
    /// stream for a history rebuild. Backfilled items of the same epoch at offsets up
    /// to `head` are then stored by [`LocalStore::persist`] without moving the
    /// position back; live ones after `head` advance it as usual.
    pub fn reset_stream(
        &mut self,
        stream: &StreamName,
        epoch: &str,
        head: u64,
    ) -> Result<(), StoreError> {
        self.conn.prepare_cached(RESET)?.execute(params![
            stream.to_string(),
            epoch,
            offset_to_sql(head)?
        ])?;
        Ok(())
    }

    /// After [`StoreError::Diverged`]: in one transaction, keeps every notification of
    /// the stream held at `divergence.offset` or later (the lost timeline: the user
    /// may have seen them, unread ones stay unread) under a fresh epoch label
    /// `<epoch>~diverged-<uuid v7>`, which frees those positions for the gateway's
    /// current history, and resets the position to `offset - 1`, flagged for a
    /// rebuild like [`LocalStore::reset_stream`]. The next `hello` then resumes from
    /// there: the engine re-checks the history up to it and the gateway replays the
    /// new timeline after it. Returns how many notifications were moved aside.
    ///
    /// Every offset from the divergence on is detached, not just the conflicting one:
    /// the old timeline's later items would clash one by one otherwise. Items of the
    /// new timeline among them come again and are dropped as duplicates by id.
    pub fn rewind_diverged(&mut self, divergence: &Divergence) -> Result<usize, StoreError> {
        let stream = divergence.stream.to_string();
        let lost = format!("{}~diverged-{}", divergence.epoch, uuid::Uuid::now_v7());
        let offset = offset_to_sql(divergence.offset)?;
        let back_to = offset_to_sql(divergence.offset.saturating_sub(1))?;
        let tx = self.conn.transaction()?;
        let moved =
            tx.prepare_cached(DETACH)?
                .execute(params![lost, stream, divergence.epoch, offset])?;
        tx.prepare_cached(RESET)?
            .execute(params![stream, divergence.epoch, back_to])?;
        tx.commit()?;
        Ok(moved)
    }

    /// Where the rebuild of `stream` stands: the pass and the offset reached.
    pub fn backfill_progress(
        &self,
        stream: &StreamName,
    ) -> Result<(BackfillPass, u64), StoreError> {
        let found: Option<(i64, i64)> = self
            .conn
            .prepare_cached(
                "SELECT backfill_pass, backfill_after FROM positions WHERE stream = ?1",
            )?
            .query_row([stream.to_string()], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()?;
        let (pass, after) = found.unwrap_or((0, 0));
        let pass = if pass == 0 {
            BackfillPass::Unread
        } else {
            BackfillPass::All
        };
        Ok((pass, offset_from_sql(after)))
    }

    /// Records how far the rebuild of `stream` got (after each page it stored).
    pub fn note_backfill_progress(
        &mut self,
        stream: &StreamName,
        pass: BackfillPass,
        after: u64,
    ) -> Result<(), StoreError> {
        let pass = match pass {
            BackfillPass::Unread => 0,
            BackfillPass::All => 1,
        };
        self.conn
            .prepare_cached(
                "UPDATE positions SET backfill_pass = ?2, backfill_after = ?3 WHERE stream = ?1",
            )?
            .execute(params![stream.to_string(), pass, offset_to_sql(after)?])?;
        Ok(())
    }

    /// The history rebuild of `stream` is complete: clears its flag.
    pub fn backfill_done(&mut self, stream: &StreamName) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("UPDATE positions SET backfill = 0 WHERE stream = ?1")?
            .execute([stream.to_string()])?;
        Ok(())
    }

    /// Streams reset by [`LocalStore::reset_stream`] whose rebuild is not done yet
    /// (e.g. interrupted by a restart), with their positions: rebuild them again.
    pub fn pending_backfills(&self) -> Result<BTreeMap<StreamName, Position>, StoreError> {
        self.positions_where("backfill = 1")
    }

    /// Drops a stream's position (the stream is no longer readable: absent from
    /// `welcome`). Its notifications stay in the inbox.
    pub fn forget_stream(&mut self, stream: &StreamName) -> Result<(), StoreError> {
        self.conn
            .prepare_cached("DELETE FROM positions WHERE stream = ?1")?
            .execute([stream.to_string()])?;
        Ok(())
    }

    /// Positions of the rows matching a fixed SQL condition.
    fn positions_where(
        &self,
        condition: &str,
    ) -> Result<BTreeMap<StreamName, Position>, StoreError> {
        let sql = format!("SELECT stream, epoch, last_offset FROM positions WHERE {condition}");
        let mut stmt = self.conn.prepare_cached(&sql)?;
        let rows = stmt.query_map([], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, i64>(2)?,
            ))
        })?;
        let mut positions = BTreeMap::new();
        for row in rows {
            let (stream, epoch, offset) = row?;
            match stream.parse::<StreamName>() {
                Ok(name) => {
                    positions.insert(
                        name,
                        Position {
                            epoch,
                            offset: offset_from_sql(offset),
                        },
                    );
                }
                Err(err) => tracing::warn!(stream, %err, "skipping an unreadable stream position"),
            }
        }
        Ok(positions)
    }
}

#[cfg(test)]
mod tests {
    use super::super::Incoming;
    use super::super::testing::*;
    use super::*;

    fn pos(epoch: &str, offset: u64) -> Position {
        Position {
            epoch: epoch.into(),
            offset,
        }
    }

    #[test]
    fn reset_stream_then_backfill_keeps_the_new_position() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        let (mut store, _) = LocalStore::open(&path).expect("opens");
        store
            .persist(&[incoming(&user(), "old", 40, email("o40", 1))])
            .expect("persists");

        store.reset_stream(&user(), "new", 20).expect("reset");
        assert_eq!(store.position(&user()).expect("pos"), Some(pos("new", 20)));
        assert_eq!(
            store.pending_backfills().expect("pending").get(&user()),
            Some(&pos("new", 20))
        );

        // A live frame after head arrives during the rebuild: it advances.
        store
            .persist(&[incoming(&user(), "new", 21, email("n21", 21))])
            .expect("persists");
        // History pages from the start of the new epoch: stored, position kept.
        let history: Vec<Incoming> = (1..=20)
            .map(|i| incoming(&user(), "new", i, email(&format!("n{i}"), i as i64)))
            .collect();
        let new = store.persist(&history).expect("backfills");
        assert!(new.iter().all(|n| *n));
        assert_eq!(store.position(&user()).expect("pos"), Some(pos("new", 21)));
        store.backfill_done(&user()).expect("done");
        assert!(store.pending_backfills().expect("pending").is_empty());
        drop(store);

        let (store, _) = LocalStore::open(&path).expect("reopens");
        assert_eq!(store.position(&user()).expect("pos"), Some(pos("new", 21)));
        assert_eq!(store.count().expect("count"), 22);
    }

    #[test]
    fn a_diverged_stream_keeps_what_was_received_and_takes_the_new_timeline() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        let tenant = StreamName::Tenant("dupont".into());
        let old: Vec<Incoming> = (1..=10)
            .map(|i| incoming(&tenant, "e1", i, email(&format!("a{i}"), i as i64)))
            .collect();
        store.persist(&old).expect("persists");
        store.apply_read(&["a7".into()]).expect("read");
        // The gateway, restored to head 5 with the same epoch, numbered 8 new ones 6..13.
        let new: Vec<Incoming> = (1..=5)
            .map(|i| incoming(&tenant, "e1", i, email(&format!("a{i}"), i as i64)))
            .chain((6..=13).map(|i| incoming(&tenant, "e1", i, email(&format!("b{i}"), 100))))
            .collect();
        let Err(StoreError::Diverged(divergence)) = store.persist(&new[5..]) else {
            panic!("not reported as a divergence");
        };

        assert_eq!(store.rewind_diverged(&divergence).expect("rewinds"), 5);
        assert_eq!(store.position(&tenant).expect("pos"), Some(pos("e1", 5)));
        assert_eq!(
            store.pending_backfills().expect("pending").get(&tenant),
            Some(&pos("e1", 5))
        );
        // The rebuild re-checks 1..5, then the replay brings 6..13.
        assert_eq!(store.persist(&new[..5]).expect("backfills"), vec![false; 5]);
        assert_eq!(store.persist(&new[5..]).expect("replays"), vec![true; 8]);
        assert_eq!(store.position(&tenant).expect("pos"), Some(pos("e1", 13)));
        // Nothing the user received is gone, and its read state is as it was.
        assert_eq!(store.count().expect("count"), 18);
        let a6 = store.get("a6").expect("get").expect("kept");
        assert_eq!(a6.offset, 6);
        assert!(a6.epoch.starts_with("e1~diverged-"), "{}", a6.epoch);
        assert_eq!(store.is_read("a7").expect("read"), Some(true));
        assert_eq!(store.is_read("a8").expect("read"), Some(false));
        assert_eq!(store.get("b6").expect("get").expect("stored").epoch, "e1");
    }

    #[test]
    fn a_second_divergence_of_the_same_stream_rewinds_again() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        let first = (1..=4).map(|i| incoming(&user(), "e1", i, email(&format!("a{i}"), 1)));
        store.persist(&first.collect::<Vec<_>>()).expect("persists");
        for (round, at) in [(1, 3), (2, 2)] {
            let clash = incoming(&user(), "e1", at, email(&format!("r{round}-{at}"), 1));
            let Err(StoreError::Diverged(d)) = store.persist(&[clash]) else {
                panic!("round {round}: not a divergence");
            };
            assert!(store.rewind_diverged(&d).expect("rewinds") >= 1);
            assert_eq!(
                store.position(&user()).expect("pos"),
                Some(pos("e1", at - 1))
            );
        }
        assert_eq!(store.count().expect("count"), 4, "every old row is kept");
    }

    #[test]
    fn an_interrupted_rebuild_is_still_pending_after_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        {
            let (mut store, _) = LocalStore::open(&path).expect("opens");
            store.reset_stream(&user(), "e9", 5).expect("reset");
        }
        let (store, _) = LocalStore::open(&path).expect("reopens");
        let pending = store.pending_backfills().expect("pending");
        assert_eq!(pending.get(&user()), Some(&pos("e9", 5)));
    }

    #[test]
    fn forgetting_a_stream_drops_only_its_position() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        let conv = StreamName::Conversation("c1".into());
        store
            .persist(&[
                incoming(&conv, "c", 1, message("m1", 1)),
                incoming(&user(), "e1", 1, email("n1", 1)),
            ])
            .expect("persists");
        store.forget_stream(&conv).expect("forget");
        let positions = store.positions().expect("positions");
        assert_eq!(positions.keys().collect::<Vec<_>>(), [&user()]);
        assert!(store.get("m1").expect("get").is_some());
    }
}
