//! Positions: the last `(epoch, offset)` held per stream, sent in `hello`/`join`.
//!
//! [`LocalStore::persist`] advances them; this module reads them and handles a
//! stream that cannot be resumed (`recovered: false`, PROTOCOL.md §2): the position
//! jumps to the gateway's `(epoch, head)` and the stream is flagged for a history
//! rebuild until the engine says the rebuild is done, so a rebuild interrupted by a
//! restart is resumed rather than forgotten.

use std::collections::BTreeMap;

use rusqlite::{OptionalExtension, params};
use tocsin_protocol::{Position, StreamName};

use super::error::StoreError;
use super::{LocalStore, offset_from_sql, offset_to_sql};

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
        self.conn
            .prepare_cached(
                "INSERT INTO positions (stream, epoch, last_offset, backfill) VALUES (?1, ?2, ?3, 1)
                 ON CONFLICT (stream) DO UPDATE SET
                     epoch = excluded.epoch, last_offset = excluded.last_offset, backfill = 1",
            )?
            .execute(params![stream.to_string(), epoch, offset_to_sql(head)?])?;
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
