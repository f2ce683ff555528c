//! The inbox: persisting notifications (with their stream position, in one
//! transaction) and querying them for the panel.

use chrono::{DateTime, Utc};
use rusqlite::types::Value;
use rusqlite::{
    CachedStatement, OptionalExtension, Row, Transaction, TransactionBehavior, params,
    params_from_iter,
};
use tocsin_protocol::{Kind, Notification, NotificationData, StreamName};

use super::error::{Divergence, StoreError};
use super::read::Tab;
use super::{LocalStore, from_us, now_us, offset_from_sql, offset_to_sql, proposals};

/// A stored notification on its way into the store: from a `notification` frame
/// (live or replayed) or from a `GET /v1/history` page.
#[derive(Debug, Clone, PartialEq)]
pub struct Incoming {
    /// The stream it belongs to.
    pub stream: StreamName,
    /// The stream's epoch its offset belongs to.
    pub epoch: String,
    /// Its offset in the stream.
    pub offset: u64,
    /// The notification.
    pub notification: Notification,
    /// True while the gateway replays what was missed. Not stored: carried so the
    /// engine can hand one value to both the store and its catch-up summary.
    pub replay: bool,
    /// Already read on the server (a history item's `read` flag); `false` for frames.
    /// `true` marks the notification read even if it was held already.
    pub read: bool,
}

/// A notification as held locally.
#[derive(Debug, Clone, PartialEq)]
pub struct InboxItem {
    /// The notification.
    pub notification: Notification,
    /// The stream it came from.
    pub stream: StreamName,
    /// The epoch of that stream when it was stored.
    pub epoch: String,
    /// Its offset in the stream (within `epoch`).
    pub offset: u64,
    /// Whether the user has read it (here or on another device).
    pub read: bool,
    /// When this device stored it.
    pub received_at: DateTime<Utc>,
}

impl InboxItem {
    /// The cursor to pass to [`LocalStore::list`] for the page after this item.
    pub fn cursor(&self) -> ListCursor {
        ListCursor {
            created_at: self.notification.created_at,
            id: self.notification.id.clone(),
        }
    }
}

/// Where a page of [`LocalStore::list`] starts: strictly older than this
/// `(created_at, id)`. Stable while new notifications arrive.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListCursor {
    /// `created_at` of the last item of the previous page.
    pub created_at: DateTime<Utc>,
    /// Its id (breaks ties between equal times).
    pub id: String,
}

/// Inserts a notification unless its id (or its stream position) is held already, or
/// the firm retracted it;
/// [`HELD_AT`] then tells a duplicate from a divergence.
/// It is born read if the server said so, if a `read` push named it before it
/// arrived, or if a "mark all read" covers it (by position, or by time for the
/// older form).
const INSERT: &str = "
INSERT OR IGNORE INTO inbox
    (id, stream, epoch, stream_offset, kind, created_us, received_us, is_read, due_us, proposal_id, body,
     deadline_id)
SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7,
    ?8
    OR EXISTS (SELECT 1 FROM early_reads WHERE id = ?1)
    OR EXISTS (SELECT 1 FROM read_cutoffs WHERE kind IN ('', ?5) AND before_us >= ?6)
    OR EXISTS (SELECT 1 FROM read_marks
               WHERE stream = ?2 AND epoch = ?3 AND kind IN ('', ?5) AND up_to >= ?4),
    ?9, ?10, ?11, ?12
WHERE NOT EXISTS (SELECT 1 FROM retracted WHERE id = ?1)";

/// The id held at a stream position, if any.
const HELD_AT: &str =
    "SELECT id FROM inbox WHERE stream = ?1 AND epoch = ?2 AND stream_offset = ?3";

/// Moves a stream's position forward only: never backwards, never across epochs
/// (an epoch change goes through [`LocalStore::reset_stream`]).
pub(super) const ADVANCE: &str = "
INSERT INTO positions (stream, epoch, last_offset) VALUES (?1, ?2, ?3)
ON CONFLICT (stream) DO UPDATE SET last_offset = excluded.last_offset
WHERE positions.epoch = excluded.epoch AND positions.last_offset < excluded.last_offset";

/// The columns every inbox query reads, in [`RawItem::from_row`]'s order.
pub(super) const COLUMNS: &str = "stream, epoch, stream_offset, is_read, received_us, body";

impl LocalStore {
    /// Stores a batch in ONE transaction: each notification is inserted into the inbox
    /// (de-duplicated by id and by stream position) and its stream's position is
    /// advanced to `(epoch, offset)` right after it, so a position never covers a
    /// notification that is not stored.
    ///
    /// Returns, per item, whether the notification was new (show and count it only
    /// then). The position never moves backwards within an epoch (older offsets from a
    /// history backfill are stored without moving it) and never moves to another
    /// epoch than the stored one; a stream without a position takes this one.
    /// Offsets need not be consecutive here (the engine checks). An ephemeral kind is
    /// not stored (reported as not new) but its position still advances.
    ///
    /// A notification whose id is held is a duplicate: dropped, as harmless. One at a
    /// `(stream, epoch, offset)` held under ANOTHER id means the gateway's history of
    /// that stream diverged from ours: [`StoreError::Diverged`], and nothing of the
    /// batch is stored (all or nothing keeps "a position covers only stored
    /// notifications" trivially true; the other streams' items come again after the
    /// reconnect that follows). Dropping it instead would lose it for good, since the
    /// position moves past it.
    pub fn persist(&mut self, batch: &[Incoming]) -> Result<Vec<bool>, StoreError> {
        let received = now_us();
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut fresh = Vec::with_capacity(batch.len());
        {
            let mut writer = BatchWriter::prepare(&tx, received)?;
            for item in batch {
                // An error returns before the commit: dropping `tx` rolls back.
                fresh.push(writer.store(item)?);
            }
        }
        tx.commit()?;
        Ok(fresh)
    }

    /// The notification with this id, if held.
    pub fn get(&self, id: &str) -> Result<Option<InboxItem>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM inbox WHERE id = ?1");
        let raw = self
            .conn
            .prepare_cached(&sql)?
            .query_row([id], RawItem::from_row)
            .optional()?;
        raw.map(RawItem::decode).transpose()
    }

    /// Up to `limit` notifications, newest first (by `created_at`, then id), of one
    /// kind or all, strictly older than `before` when given (pass the last item's
    /// [`InboxItem::cursor`] to get the next page).
    pub fn list(
        &self,
        kind: Option<Kind>,
        limit: usize,
        before: Option<&ListCursor>,
    ) -> Result<Vec<InboxItem>, StoreError> {
        match kind {
            Some(kind) => self.list_kinds(Some(&[kind]), limit, before),
            None => self.list_kinds(None, limit, before),
        }
    }

    /// Like [`LocalStore::list`], for the kinds of one panel tab.
    pub fn list_tab(
        &self,
        tab: Tab,
        limit: usize,
        before: Option<&ListCursor>,
    ) -> Result<Vec<InboxItem>, StoreError> {
        self.list_kinds(Some(tab.kinds()), limit, before)
    }

    /// Up to `limit` `deadline-alert` notifications, soonest `data.due_at` first
    /// (ties: newest alert first). Every alert is listed, including several alerts of
    /// one deadline, so the list matches the Deadlines tab's unread count.
    pub fn deadlines_by_due_date(&self, limit: usize) -> Result<Vec<InboxItem>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM inbox WHERE due_us IS NOT NULL
             ORDER BY due_us ASC, created_us DESC, id ASC LIMIT ?1"
        );
        self.query_items(&sql, vec![Value::Integer(sql_limit(limit))])
    }

    /// How many notifications are held.
    pub fn count(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached("SELECT COUNT(*) FROM inbox")?
            .query_row([], |row| row.get(0))?;
        Ok(offset_from_sql(n))
    }

    /// Deletes read notifications created before `cutoff` (e.g. the server's
    /// retention), and read marks noted before it that never met their notification.
    /// Positions are untouched. Returns the number of notifications deleted.
    pub fn prune_read_before(&mut self, cutoff: DateTime<Utc>) -> Result<usize, StoreError> {
        let cutoff = cutoff.timestamp_micros();
        let tx = self.conn.transaction()?;
        let deleted = tx.execute(
            "DELETE FROM inbox WHERE is_read = 1 AND created_us < ?1",
            [cutoff],
        )?;
        tx.execute("DELETE FROM early_reads WHERE noted_us < ?1", [cutoff])?;
        tx.commit()?;
        Ok(deleted)
    }

    /// Lists newest first, optionally restricted to `kinds`.
    fn list_kinds(
        &self,
        kinds: Option<&[Kind]>,
        limit: usize,
        before: Option<&ListCursor>,
    ) -> Result<Vec<InboxItem>, StoreError> {
        let (created, id) = match before {
            Some(c) => (c.created_at.timestamp_micros(), c.id.clone()),
            None => (i64::MAX, String::new()),
        };
        let mut values = vec![Value::Integer(created), Value::Text(id)];
        let mut sql = format!("SELECT {COLUMNS} FROM inbox WHERE (created_us, id) < (?1, ?2)");
        if let Some(kinds) = kinds {
            let marks: Vec<String> = (0..kinds.len()).map(|i| format!("?{}", i + 3)).collect();
            sql.push_str(&format!(" AND kind IN ({})", marks.join(", ")));
            values.extend(kinds.iter().map(|k| Value::Text(k.as_str().to_owned())));
        }
        values.push(Value::Integer(sql_limit(limit)));
        sql.push_str(&format!(
            " ORDER BY created_us DESC, id DESC LIMIT ?{}",
            values.len()
        ));
        self.query_items(&sql, values)
    }

    /// Runs an item query; rows that cannot be decoded (written by an incompatible
    /// version) are skipped with a warning rather than hiding the whole list.
    pub(super) fn query_items(
        &self,
        sql: &str,
        values: Vec<Value>,
    ) -> Result<Vec<InboxItem>, StoreError> {
        let mut stmt = self.conn.prepare_cached(sql)?;
        let rows = stmt.query_map(params_from_iter(values), RawItem::from_row)?;
        let mut items = Vec::new();
        for raw in rows {
            match raw?.decode() {
                Ok(item) => items.push(item),
                Err(err) => tracing::warn!(%err, "skipping an unreadable inbox row"),
            }
        }
        Ok(items)
    }
}

/// The statements of one [`LocalStore::persist`] transaction, prepared once per batch.
struct BatchWriter<'tx> {
    /// The transaction (for proposal statuses).
    tx: &'tx Transaction<'tx>,
    /// [`INSERT`].
    insert: CachedStatement<'tx>,
    /// [`HELD_AT`].
    held_at: CachedStatement<'tx>,
    /// Marks a held notification read (a history item's `read` flag).
    mark_read: CachedStatement<'tx>,
    /// Forgets an early read mark once its notification is stored.
    forget_early: CachedStatement<'tx>,
    /// [`ADVANCE`].
    advance: CachedStatement<'tx>,
    /// `received_us` of every row of the batch.
    received: i64,
}

impl<'tx> BatchWriter<'tx> {
    /// Prepares the statements (cached on the connection across batches).
    fn prepare(tx: &'tx Transaction<'tx>, received: i64) -> Result<Self, StoreError> {
        Ok(BatchWriter {
            tx,
            insert: tx.prepare_cached(INSERT)?,
            held_at: tx.prepare_cached(HELD_AT)?,
            mark_read: tx
                .prepare_cached("UPDATE inbox SET is_read = 1 WHERE id = ?1 AND is_read = 0")?,
            forget_early: tx.prepare_cached("DELETE FROM early_reads WHERE id = ?1")?,
            advance: tx.prepare_cached(ADVANCE)?,
            received,
        })
    }

    /// Stores one item (unless ephemeral, a duplicate or a divergence) and advances
    /// its stream's position; true when it was new.
    fn store(&mut self, item: &Incoming) -> Result<bool, StoreError> {
        let n = &item.notification;
        let stream = item.stream.to_string();
        let offset = offset_to_sql(item.offset)?;
        let is_new = !n.kind().is_ephemeral() && self.insert(item, &stream, offset)?;
        if is_new {
            self.forget_early.execute([&n.id])?;
            proposals::note(self.tx, n)?;
        } else {
            // Checked for ephemeral kinds too: advancing over a held position would
            // hide the divergence just the same.
            self.refuse_divergence(item, &stream, offset)?;
            if item.read {
                self.mark_read.execute([&n.id])?;
            }
        }
        self.advance.execute(params![stream, item.epoch, offset])?;
        Ok(is_new)
    }

    /// Runs [`INSERT`]; true when a row was added.
    fn insert(&mut self, item: &Incoming, stream: &str, offset: i64) -> Result<bool, StoreError> {
        let n = &item.notification;
        let indexed = Indexed::of(&n.data);
        let inserted = self.insert.execute(params![
            n.id,
            stream,
            item.epoch,
            offset,
            n.kind().as_str(),
            n.created_at.timestamp_micros(),
            self.received,
            item.read,
            indexed.due_us,
            indexed.proposal_id,
            serde_json::to_string(n)?,
            indexed.deadline_id,
        ])?;
        Ok(inserted == 1)
    }

    /// Fails with [`StoreError::Diverged`] when the item's position is held under
    /// another id (the same id there is a true duplicate).
    fn refuse_divergence(
        &mut self,
        item: &Incoming,
        stream: &str,
        offset: i64,
    ) -> Result<(), StoreError> {
        let held: Option<String> = self
            .held_at
            .query_row(params![stream, item.epoch, offset], |row| row.get(0))
            .optional()?;
        match held {
            Some(held_id) if held_id != item.notification.id => {
                Err(StoreError::Diverged(Box::new(Divergence {
                    stream: item.stream.clone(),
                    epoch: item.epoch.clone(),
                    offset: item.offset,
                    held_id,
                    received_id: item.notification.id.clone(),
                })))
            }
            _ => Ok(()),
        }
    }
}

/// The fields copied out of `data` into their own columns: a deadline's due time
/// (for sorting) and id (its alerts are grouped and acknowledged by it), and a
/// proposal id (for status lookups).
#[derive(Default)]
struct Indexed<'n> {
    due_us: Option<i64>,
    deadline_id: Option<&'n str>,
    proposal_id: Option<&'n str>,
}

impl<'n> Indexed<'n> {
    fn of(data: &'n NotificationData) -> Indexed<'n> {
        match data {
            NotificationData::DeadlineAlert(d) => Indexed {
                due_us: Some(d.due_at.timestamp_micros()),
                deadline_id: Some(&d.deadline_id),
                proposal_id: None,
            },
            NotificationData::ProposalCreated(p) => Indexed {
                proposal_id: Some(&p.proposal_id),
                ..Indexed::default()
            },
            NotificationData::ProposalStatusChanged(p) => Indexed {
                proposal_id: Some(&p.proposal_id),
                ..Indexed::default()
            },
            _ => Indexed::default(),
        }
    }
}

/// A `LIMIT` value (SQLite integers are signed).
pub(super) fn sql_limit(limit: usize) -> i64 {
    i64::try_from(limit).unwrap_or(i64::MAX)
}

/// An inbox row before decoding.
struct RawItem {
    /// `stream` column.
    stream: String,
    /// `epoch` column.
    epoch: String,
    /// `stream_offset` column.
    offset: i64,
    /// `is_read` column.
    read: bool,
    /// `received_us` column.
    received_us: i64,
    /// `body` column (the notification's JSON).
    body: String,
}

impl RawItem {
    /// Reads the [`COLUMNS`] of a row.
    fn from_row(row: &Row<'_>) -> rusqlite::Result<RawItem> {
        Ok(RawItem {
            stream: row.get(0)?,
            epoch: row.get(1)?,
            offset: row.get(2)?,
            read: row.get(3)?,
            received_us: row.get(4)?,
            body: row.get(5)?,
        })
    }

    /// Decodes the stream name and the notification.
    fn decode(self) -> Result<InboxItem, StoreError> {
        let stream = self
            .stream
            .parse::<StreamName>()
            .map_err(|err| StoreError::Decode(format!("stream '{}': {err}", self.stream)))?;
        let notification: Notification = serde_json::from_str(&self.body)
            .map_err(|err| StoreError::Decode(format!("notification: {err}")))?;
        Ok(InboxItem {
            notification,
            stream,
            epoch: self.epoch,
            offset: offset_from_sql(self.offset),
            read: self.read,
            received_at: from_us(self.received_us),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use tocsin_protocol::Position;

    fn pos(epoch: &str, offset: u64) -> Position {
        Position {
            epoch: epoch.into(),
            offset,
        }
    }

    #[test]
    fn persist_and_positions_survive_reopening() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        let tenant = StreamName::Tenant("dupont".into());
        {
            let (mut store, _) = LocalStore::open(&path).expect("opens");
            let new = store
                .persist(&[
                    incoming(&user(), "e1", 1, email("n1", 1)),
                    incoming(&user(), "e1", 2, deadline("n2", 2, 48)),
                    incoming(&tenant, "t1", 7, system("n3", 3)),
                ])
                .expect("persists");
            assert_eq!(new, vec![true, true, true]);
        }
        let (store, recovered) = LocalStore::open(&path).expect("reopens");
        assert!(recovered.is_none());
        let positions = store.positions().expect("positions");
        assert_eq!(positions.len(), 2);
        assert_eq!(positions[&user()], pos("e1", 2));
        assert_eq!(positions[&tenant], pos("t1", 7));
        let item = store.get("n2").expect("get").expect("held");
        assert_eq!(item.stream, user());
        assert_eq!(item.offset, 2);
        assert_eq!(item.epoch, "e1");
        assert!(!item.read);
        assert_eq!(item.notification, deadline("n2", 2, 48));
        assert_eq!(store.count().expect("count"), 3);
    }

    #[test]
    fn duplicates_are_not_reinserted_and_report_false() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        let first = store
            .persist(&[
                incoming(&user(), "e1", 1, email("n1", 1)),
                incoming(&user(), "e1", 1, email("n1", 1)),
            ])
            .expect("persists");
        assert_eq!(first, vec![true, false], "a duplicate within one batch");
        let again = store
            .persist(&[
                incoming(&user(), "e1", 1, email("n1", 1)),
                incoming(&user(), "e1", 2, email("n2", 2)),
            ])
            .expect("persists");
        assert_eq!(again, vec![false, true], "a duplicate across batches");
        assert_eq!(store.count().expect("count"), 2);
        assert_eq!(store.position(&user()).expect("pos"), Some(pos("e1", 2)));
    }

    #[test]
    fn the_same_id_at_a_held_offset_is_a_harmless_duplicate() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        let tenant = StreamName::Tenant("dupont".into());
        let held: Vec<Incoming> = (1..=10)
            .map(|i| incoming(&tenant, "e1", i, email(&format!("a{i}"), i as i64)))
            .collect();
        store.persist(&held).expect("persists");
        // A replay or history page resending what is held.
        let again = store.persist(&held[5..]).expect("persists");
        assert_eq!(again, vec![false; 5]);
        assert_eq!(store.count().expect("count"), 10);
        assert_eq!(store.position(&tenant).expect("pos"), Some(pos("e1", 10)));
    }

    #[test]
    fn another_id_at_a_held_offset_is_a_divergence_and_stores_nothing() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        let tenant = StreamName::Tenant("dupont".into());
        let held: Vec<Incoming> = (1..=10)
            .map(|i| incoming(&tenant, "e1", i, email(&format!("a{i}"), i as i64)))
            .collect();
        store.persist(&held).expect("persists");
        // The gateway was restored to head 5 with the same epoch; offset 6 is now b6.
        let err = store
            .persist(&[
                incoming(&user(), "u", 1, email("u1", 1)),
                incoming(&tenant, "e1", 5, email("a5", 5)),
                incoming(&tenant, "e1", 6, email("b6", 100)),
            ])
            .expect_err("a divergence");
        let StoreError::Diverged(divergence) = err else {
            panic!("not a divergence: {err}");
        };
        assert_eq!(
            *divergence,
            Divergence {
                stream: tenant.clone(),
                epoch: "e1".into(),
                offset: 6,
                held_id: "a6".into(),
                received_id: "b6".into(),
            }
        );
        assert!(
            divergence.to_string().contains("tenant:dupont"),
            "{divergence}"
        );
        // Rolled back as a whole: not the new item, nor the other stream's one.
        assert!(store.get("b6").expect("get").is_none());
        assert!(store.get("u1").expect("get").is_none());
        assert_eq!(store.position(&user()).expect("pos"), None);
        assert_eq!(store.position(&tenant).expect("pos"), Some(pos("e1", 10)));
        assert_eq!(store.count().expect("count"), 10);
    }

    #[test]
    fn an_ephemeral_kind_at_a_held_offset_is_a_divergence_too() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        store
            .persist(&[incoming(&user(), "e1", 1, email("a1", 1))])
            .expect("persists");
        let typing = typing(2);
        let err = store
            .persist(&[incoming(&user(), "e1", 1, typing)])
            .expect_err("a divergence");
        assert!(matches!(err, StoreError::Diverged(_)), "{err}");
    }

    #[test]
    fn a_duplicate_with_the_read_flag_marks_it_read() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        store
            .persist(&[incoming(&user(), "e1", 1, email("n1", 1))])
            .expect("persists");
        let mut from_history = incoming(&user(), "e1", 1, email("n1", 1));
        from_history.read = true;
        assert_eq!(
            store.persist(&[from_history]).expect("persists"),
            vec![false]
        );
        assert_eq!(store.is_read("n1").expect("read"), Some(true));
    }

    #[test]
    fn the_position_never_moves_backwards_nor_across_epochs() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        store
            .persist(&[incoming(&user(), "e1", 10, email("n10", 10))])
            .expect("persists");
        let new = store
            .persist(&[
                incoming(&user(), "e1", 4, email("n4", 4)),
                incoming(&user(), "e1", 9, email("n9", 9)),
            ])
            .expect("persists");
        assert_eq!(new, vec![true, true], "older offsets are still stored");
        assert_eq!(store.position(&user()).expect("pos"), Some(pos("e1", 10)));
        store
            .persist(&[incoming(&user(), "e2", 50, email("x50", 50))])
            .expect("persists");
        assert_eq!(
            store.position(&user()).expect("pos"),
            Some(pos("e1", 10)),
            "another epoch needs reset_stream"
        );
        store
            .persist(&[incoming(&user(), "e1", 12, email("n12", 12))])
            .expect("persists");
        assert_eq!(store.position(&user()).expect("pos"), Some(pos("e1", 12)));
    }

    #[test]
    fn a_failed_batch_stores_nothing_and_moves_no_position() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        let err = store
            .persist(&[
                incoming(&user(), "e1", 1, email("n1", 1)),
                incoming(&user(), "e1", u64::MAX, email("n2", 2)),
            ])
            .expect_err("offset too large");
        assert!(matches!(err, StoreError::OffsetOutOfRange(_)), "{err}");
        assert_eq!(store.count().expect("count"), 0);
        assert!(store.positions().expect("positions").is_empty());
    }

    #[test]
    fn list_pages_newest_first_and_filters() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        let batch: Vec<Incoming> = (1..=5)
            .map(|i| incoming(&user(), "e1", i, email(&format!("e{i}"), i as i64)))
            .chain([
                incoming(&user(), "e1", 6, system("s6", 6)),
                incoming(&user(), "e1", 7, message("m7", 0)),
            ])
            .collect();
        store.persist(&batch).expect("persists");

        let ids = |items: &[InboxItem]| -> Vec<String> {
            items.iter().map(|i| i.notification.id.clone()).collect()
        };
        let page = store.list(None, 3, None).expect("list");
        assert_eq!(ids(&page), ["s6", "e5", "e4"]);
        let next = store.list(None, 3, Some(&page[2].cursor())).expect("list");
        assert_eq!(ids(&next), ["e3", "e2", "e1"]);
        let last = store.list(None, 3, Some(&next[2].cursor())).expect("list");
        assert_eq!(ids(&last), ["m7"]);

        let emails = store
            .list(Some(Kind::EmailReceived), 10, None)
            .expect("list");
        assert_eq!(emails.len(), 5);
        let tab = store.list_tab(Tab::Emails, 10, None).expect("list");
        assert_eq!(ids(&tab), ["e5", "e4", "e3", "e2", "e1", "m7"]);
        let system_tab = store.list_tab(Tab::System, 10, None).expect("list");
        assert_eq!(ids(&system_tab), ["s6"]);
    }

    #[test]
    fn equal_times_page_by_id_without_loss() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        let batch: Vec<Incoming> = ["a", "b", "c", "d"]
            .iter()
            .enumerate()
            .map(|(i, id)| incoming(&user(), "e1", i as u64 + 1, email(id, 5)))
            .collect();
        store.persist(&batch).expect("persists");
        let first = store.list(None, 2, None).expect("list");
        let second = store.list(None, 2, Some(&first[1].cursor())).expect("list");
        let all: Vec<&str> = first
            .iter()
            .chain(&second)
            .map(|i| i.notification.id.as_str())
            .collect();
        assert_eq!(all, ["d", "c", "b", "a"]);
    }

    #[test]
    fn deadlines_sort_by_due_date() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        store
            .persist(&[
                incoming(&user(), "e1", 1, deadline("late", 1, 72)),
                incoming(&user(), "e1", 2, email("mail", 2)),
                incoming(&user(), "e1", 3, deadline("soon", 3, 5)),
                incoming(&user(), "e1", 4, deadline("mid", 4, 24)),
            ])
            .expect("persists");
        let items = store.deadlines_by_due_date(10).expect("deadlines");
        let ids: Vec<&str> = items.iter().map(|i| i.notification.id.as_str()).collect();
        assert_eq!(ids, ["soon", "mid", "late"]);
        assert_eq!(store.deadlines_by_due_date(1).expect("deadlines").len(), 1);
    }

    #[test]
    fn pruning_keeps_unread_and_recent_items() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        store
            .persist(&[
                incoming(&user(), "e1", 1, email("old-read", 1)),
                incoming(&user(), "e1", 2, email("old-unread", 2)),
                incoming(&user(), "e1", 3, email("new-read", 100)),
            ])
            .expect("persists");
        store
            .apply_read(&["old-read".into(), "new-read".into()])
            .expect("read");
        assert_eq!(store.prune_read_before(t(50)).expect("prune"), 1);
        assert!(store.get("old-read").expect("get").is_none());
        assert!(store.get("old-unread").expect("get").is_some());
        assert!(store.get("new-read").expect("get").is_some());
        assert_eq!(store.position(&user()).expect("pos"), Some(pos("e1", 3)));
    }

    /// An ephemeral typing indicator received at `at` (never stored).
    fn typing(at: i64) -> Notification {
        use tocsin_protocol::notification::TypingIndicator;
        note(
            "ty",
            NotificationData::TypingIndicator(TypingIndicator {
                conversation_id: "c1".into(),
                user_id: "u2".into(),
                active: true,
            }),
            at,
        )
    }

    #[test]
    fn ephemeral_kinds_are_not_stored_but_do_not_stall_the_stream() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        let typing = typing(1);
        let new = store
            .persist(&[incoming(&user(), "e1", 1, typing)])
            .expect("persists");
        assert_eq!(new, vec![false]);
        assert_eq!(store.count().expect("count"), 0);
        assert_eq!(store.position(&user()).expect("pos"), Some(pos("e1", 1)));
    }
}
