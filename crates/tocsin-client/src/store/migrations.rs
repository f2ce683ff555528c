//! The local store's schema, as numbered migrations applied by `rusqlite_migration`
//! (tracked in SQLite's `user_version`). Never edit a released migration: add one.

use rusqlite_migration::{M, Migrations};

/// SQLite `application_id` of a Tocsin local store (`Tocs` in ASCII), so a file of
/// another program is recognised as foreign rather than migrated.
pub const APPLICATION_ID: i32 = 0x546F_6373;

/// Every migration, oldest first.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2),
        M::up(V3),
        M::up(V4),
        M::up(V5),
        M::up(V6),
    ])
}

/// The first schema. Times are integer microseconds since the Unix epoch (UTC).
///
/// - `positions`: the last offset held per stream; `backfill` is 1 from a
///   `reset_stream` until the history rebuild is done.
/// - `inbox`: one row per notification, unique by id and by (stream, epoch, offset);
///   `body` is the notification's JSON; `due_us`/`proposal_id` are copied out of
///   `data` for sorting and lookups.
/// - `early_reads`: ids marked read before the notification itself arrived (a `read`
///   push during replay); applied when it does.
/// - `read_cutoffs`: the latest `read_all` cut-off per kind (`''` = every kind), applied
///   to notifications that arrive later but were created before it.
/// - `proposals`: local status per proposal; `as_of_us` orders competing updates.
/// - `outbox`: offline actions in enqueue order (`seq`), by client action id.
const V1: &str = r#"
PRAGMA application_id = 1416586099;

CREATE TABLE positions (
    stream TEXT PRIMARY KEY,
    epoch TEXT NOT NULL,
    last_offset INTEGER NOT NULL,
    backfill INTEGER NOT NULL DEFAULT 0
) STRICT;

CREATE TABLE inbox (
    id TEXT PRIMARY KEY,
    stream TEXT NOT NULL,
    epoch TEXT NOT NULL,
    stream_offset INTEGER NOT NULL,
    kind TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    received_us INTEGER NOT NULL,
    is_read INTEGER NOT NULL DEFAULT 0,
    due_us INTEGER,
    proposal_id TEXT,
    body TEXT NOT NULL
) STRICT;
CREATE UNIQUE INDEX inbox_position ON inbox(stream, epoch, stream_offset);
CREATE INDEX inbox_newest ON inbox(created_us, id);
CREATE INDEX inbox_kind_newest ON inbox(kind, created_us, id);
CREATE INDEX inbox_unread ON inbox(kind) WHERE is_read = 0;
CREATE INDEX inbox_due ON inbox(due_us) WHERE due_us IS NOT NULL;
CREATE INDEX inbox_proposal ON inbox(proposal_id) WHERE proposal_id IS NOT NULL;

CREATE TABLE early_reads (
    id TEXT PRIMARY KEY,
    noted_us INTEGER NOT NULL
) STRICT;

CREATE TABLE read_cutoffs (
    kind TEXT PRIMARY KEY,
    before_us INTEGER NOT NULL
) STRICT;

CREATE TABLE proposals (
    proposal_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    as_of_us INTEGER NOT NULL
) STRICT;

CREATE TABLE outbox (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    action_id TEXT NOT NULL UNIQUE,
    frame TEXT NOT NULL,
    queued_us INTEGER NOT NULL
) STRICT;
"#;

/// `read_marks`: per stream, epoch and kind (`''` = every kind), the offset a "mark
/// all read" covers: what the user saw when they clicked. Notifications at or before
/// it that arrive later (replay, history) are stored as read; newer ones are not,
/// which a time cut-off could not promise for an offline click sent later.
const V2: &str = r#"
CREATE TABLE read_marks (
    stream TEXT NOT NULL,
    epoch TEXT NOT NULL,
    kind TEXT NOT NULL,
    up_to INTEGER NOT NULL,
    PRIMARY KEY (stream, epoch, kind)
) STRICT;
"#;

/// Where a stream's history rebuild stands, so that one cut short (a restart, a lost
/// link) resumes where it was instead of starting over: `backfill_pass` 0 fetches
/// the unread notifications, 1 all of them; `backfill_after` is the offset reached.
const V3: &str = r#"
ALTER TABLE positions ADD COLUMN backfill_pass INTEGER NOT NULL DEFAULT 0;
ALTER TABLE positions ADD COLUMN backfill_after INTEGER NOT NULL DEFAULT 0;
"#;

/// Deadline acknowledgements ("Pris en compte"), which are per deadline, not per
/// notification: `inbox.deadline_id` (a `deadline-alert`'s `data.deadline_id`, filled in
/// for the alerts already held) groups the alerts of one deadline, and
/// `acknowledgements` holds one row per deadline and user who took it in, as the
/// gateway reported it. `user_id = ''` is this device's own acknowledgement before
/// the gateway said who and from where; `action_id` is set while its action awaits
/// the gateway's answer (pending: undone if refused). The backfill reads only bodies
/// that parse: a failing migration would move the whole store aside, outbox included.
const V4: &str = r#"
ALTER TABLE inbox ADD COLUMN deadline_id TEXT;
UPDATE inbox SET deadline_id =
    CASE WHEN json_valid(body) THEN
        CASE WHEN json_type(body, '$.data.deadline_id') = 'text'
             THEN json_extract(body, '$.data.deadline_id') END
    END
WHERE kind = 'deadline-alert';
CREATE INDEX inbox_deadline ON inbox(deadline_id, created_us) WHERE deadline_id IS NOT NULL;

CREATE TABLE acknowledgements (
    deadline_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    user_name TEXT NOT NULL,
    device TEXT,
    at_us INTEGER NOT NULL,
    notification_id TEXT,
    action_id TEXT,
    PRIMARY KEY (deadline_id, user_id)
) STRICT;
CREATE INDEX acknowledgements_action ON acknowledgements(action_id) WHERE action_id IS NOT NULL;
"#;

/// Deadlines the firm closed (done or withdrawn), as the gateway reported them: nobody
/// needs to acknowledge them any more, so they leave the tray's critical mark.
const V5: &str = r#"
CREATE TABLE deadline_closures (
    deadline_id TEXT PRIMARY KEY,
    status TEXT NOT NULL,
    at_us INTEGER NOT NULL
) STRICT;
"#;

/// Notifications the publishing firm retracted: their inbox rows are deleted, and the
/// id stays here so the notification is never stored again (a live frame racing the
/// retraction, a replay from an older position).
const V6: &str = r#"
CREATE TABLE retracted (
    id TEXT PRIMARY KEY,
    at_us INTEGER NOT NULL
) STRICT;
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_are_valid() {
        migrations().validate().expect("valid migrations");
        assert_eq!(APPLICATION_ID, 1_416_586_099);
    }

    #[test]
    fn alerts_held_before_version_4_are_grouped_by_their_deadline() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        {
            let mut conn = rusqlite::Connection::open(&path).expect("opens");
            migrations().to_version(&mut conn, 3).expect("version 3");
            let alert = crate::store::testing::deadline("n1", 1, 5);
            let insert = "INSERT INTO inbox (id, stream, epoch, stream_offset, kind, created_us,
                 received_us, due_us, body) VALUES (?1, 'user:u1', 'e1', ?2, ?3, 1, 1, 1, ?4)";
            let body = serde_json::to_string(&alert).expect("encodes");
            conn.execute(insert, rusqlite::params!["n1", 1, "deadline-alert", body])
                .expect("an alert");
            conn.execute(
                insert,
                rusqlite::params!["bad", 2, "deadline-alert", "{not json"],
            )
            .expect("a broken row");
        }
        let (store, recovered) = crate::store::LocalStore::open(&path).expect("migrates");
        assert!(recovered.is_none(), "migrated in place, not moved aside");
        let rows = store.deadline_rows(10).expect("rows");
        assert_eq!(rows.len(), 1);
        assert_eq!(rows[0].deadline_id, "d-n1");
        assert_eq!(store.unacknowledged_critical_deadlines().expect("count"), 1);
    }
}
