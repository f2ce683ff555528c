//! The SQLite schema, as numbered migrations applied by `rusqlite_migration`
//! (tracked in SQLite's `user_version`). Never edit a released migration: add one.

use std::path::Path;

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

use crate::store::StoreError;

/// Brings the database to the latest schema. An upgrade that copies a table (migration
/// 2 copies every notification) can take a while on a large database and needs about
/// that table's size again in free disk space, so it is logged before it starts, and a
/// failure says what to do. Each migration runs in a transaction: one that fails
/// leaves the database as it was.
pub fn upgrade(conn: &mut Connection, path: &Path) -> Result<(), StoreError> {
    let migrations = migrations();
    let pending = migrations.pending_migrations(conn).unwrap_or(0);
    if pending > 0 && database_is_not_new(conn) {
        tracing::info!(
            database = %path.display(),
            pending,
            "upgrading the database schema; on a large database this can take a minute"
        );
    }
    migrations.to_latest(conn).map_err(|err| {
        StoreError::Internal(format!(
            "upgrading the database schema of {} failed: {err}. The database was left as it \
             was; if the disk is full, free about the database's size again and start the \
             gateway again",
            path.display()
        ))
    })
}

/// Whether the file already holds a schema (so this is an upgrade, not a first start).
fn database_is_not_new(conn: &Connection) -> bool {
    conn.query_row("SELECT COUNT(*) > 0 FROM sqlite_master", [], |row| {
        row.get(0)
    })
    .unwrap_or(false)
}

/// Every migration, oldest first.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![
        M::up(V1),
        M::up(V2),
        M::up(V3),
        M::up_with_hook("", normalize_emails),
        M::up(V5),
        M::up(V6),
        M::up(V7),
        M::up(V8),
        M::up(V9),
        M::up(V10),
        M::up(V11),
    ])
}

/// The first schema. Times are stored twice where they are compared: `*_us` integer
/// microseconds since the epoch for comparisons, RFC 3339 inside JSON for clients.
const V1: &str = r#"
CREATE TABLE tenants (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_us INTEGER NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants(slug),
    email TEXT COLLATE NOCASE UNIQUE,
    name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL,
    password_hash TEXT,
    external INTEGER NOT NULL DEFAULT 0,
    disabled INTEGER NOT NULL DEFAULT 0,
    created_us INTEGER NOT NULL
);
CREATE INDEX users_tenant ON users(tenant);

CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    tenant TEXT REFERENCES tenants(slug),
    name TEXT NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_us INTEGER NOT NULL
);

-- One row per signed-in device. `previous_hash` remembers the refresh token that was
-- rotated away, so its reuse (a stolen token) is detected and revokes the session.
CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    device_name TEXT NOT NULL,
    refresh_hash TEXT NOT NULL UNIQUE,
    previous_hash TEXT,
    expires_us INTEGER NOT NULL,
    revoked INTEGER NOT NULL DEFAULT 0,
    created_us INTEGER NOT NULL
);
CREATE INDEX sessions_previous ON sessions(previous_hash);

CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants(slug),
    created_us INTEGER NOT NULL
);
CREATE TABLE conversation_members (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (conversation_id, user_id)
) WITHOUT ROWID;
CREATE INDEX conversation_members_user ON conversation_members(user_id);

-- A stream's epoch and head. Offsets are assigned from `head` inside the writer's
-- transaction; `first` is the oldest retained offset (head + 1 when empty).
CREATE TABLE streams (
    name TEXT PRIMARY KEY,
    epoch TEXT NOT NULL,
    head INTEGER NOT NULL DEFAULT 0,
    first INTEGER NOT NULL DEFAULT 1
) WITHOUT ROWID;

CREATE TABLE notifications (
    stream TEXT NOT NULL,
    offset INTEGER NOT NULL,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    payload TEXT NOT NULL,
    PRIMARY KEY (stream, offset)
) WITHOUT ROWID;
CREATE INDEX notifications_created ON notifications(created_us);

CREATE TABLE idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    offset INTEGER NOT NULL,
    created_us INTEGER NOT NULL,
    PRIMARY KEY (scope, key)
) WITHOUT ROWID;
CREATE INDEX idempotency_created ON idempotency(created_us);

CREATE TABLE reads (
    user_id TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    read_us INTEGER NOT NULL,
    PRIMARY KEY (user_id, notification_id)
) WITHOUT ROWID;

CREATE TABLE proposals (
    tenant TEXT NOT NULL,
    proposal_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    status TEXT NOT NULL,
    responded_by TEXT,
    PRIMARY KEY (tenant, proposal_id)
) WITHOUT ROWID;

-- Client actions already applied, with their answer, so a replayed action id (from
-- an offline queue) is answered the same way and applied once.
CREATE TABLE client_actions (
    user_id TEXT NOT NULL,
    action_id TEXT NOT NULL,
    result TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    PRIMARY KEY (user_id, action_id)
) WITHOUT ROWID;
CREATE INDEX client_actions_created ON client_actions(created_us);
"#;

/// Notifications in append order. V1 clustered the table by `(stream, offset)` with the
/// payload inline, so a batch of publishes to many users wrote into as many b-tree
/// leaves of whole rows, and split them every few rows: 50 µs per notification with
/// 1 000 streams against 14 µs with 10. Now rows are appended at the end of the table
/// (rowid order) and only the small `(stream, offset)` index entries land one per
/// stream: 20 µs with 1 000 streams (docs/BENCHMARKS.md, unicast). Offsets stay unique
/// per stream through that index; reads by stream and offset use it.
const V2: &str = r#"
CREATE TABLE notifications_v2 (
    seq INTEGER PRIMARY KEY,
    stream TEXT NOT NULL,
    offset INTEGER NOT NULL,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created_us INTEGER NOT NULL,
    payload TEXT NOT NULL
);
INSERT INTO notifications_v2 (stream, offset, id, kind, created_us, payload)
    SELECT stream, offset, id, kind, created_us, payload FROM notifications
    ORDER BY created_us, stream, offset;
DROP TABLE notifications;
ALTER TABLE notifications_v2 RENAME TO notifications;
CREATE UNIQUE INDEX notifications_stream_offset ON notifications(stream, offset);
CREATE INDEX notifications_created ON notifications(created_us);
"#;

/// What the database knows of its own history (`lineage.rs`): the generation, bumped
/// each time a gateway starts serving it, and the count of committed writer batches.
/// Compared with the copy kept beside the database, they tell a restored older copy
/// from the database this gateway last served.
const V3: &str = r#"
CREATE TABLE meta (
    key TEXT PRIMARY KEY,
    value INTEGER NOT NULL
) WITHOUT ROWID;
INSERT INTO meta (key, value) VALUES ('generation', 0), ('commits', 0);
"#;

/// The newest schema this build knows (SQLite's `user_version` after the upgrade).
pub fn latest_version() -> i64 {
    11
}

/// Migration 11: retracting misdirected notifications (`store/sqlite/retract.rs`).
/// A retracted notification keeps its row (offsets stay consecutive) with its content
/// replaced and `retracted_us` set; `retractions` says when and by whom — also for a
/// scheduled publish withdrawn before it was stored (no stream then) — so a repeated
/// call answers the same and connecting clients learn of recent ones.
const V11: &str = r#"
ALTER TABLE notifications ADD COLUMN retracted_us INTEGER;
CREATE TABLE retractions (
    notification_id TEXT PRIMARY KEY,
    tenant TEXT,
    stream TEXT,
    offset INTEGER,
    at_us INTEGER NOT NULL,
    actor TEXT NOT NULL
) WITHOUT ROWID;
CREATE INDEX retractions_stream ON retractions(stream, at_us) WHERE stream IS NOT NULL;
"#;

/// Migration 10: the indexes that make "the deadlines this user is involved in"
/// (`deadlines::INVOLVED`, run at every connection) lookups instead of a read of all
/// the firm's deadlines: by backup, the escalations that fired (with recipients), and
/// a user's own acknowledgements.
const V10: &str = r#"
CREATE INDEX deadlines_backup ON deadlines(tenant, backup) WHERE backup IS NOT NULL;
CREATE INDEX schedule_escalated ON schedule(tenant) WHERE kind = 'escalation' AND recipients IS NOT NULL;
CREATE INDEX acknowledgements_user ON acknowledgements(tenant, user_id, at_us);
"#;

/// Migration 9: the audit trail — what a firm shows when a deadline is disputed:
/// each notification published (by which key, or the scheduler), delivered to which
/// device, shown, read and acknowledged, with times. Kept apart from the streams, so
/// stream retention never prunes it (its own retention is per firm). Admin API keys
/// may read it; others only publish.
const V9: &str = r#"
ALTER TABLE api_keys ADD COLUMN admin INTEGER NOT NULL DEFAULT 0;

CREATE TABLE audit (
    id INTEGER PRIMARY KEY,
    tenant TEXT NOT NULL,
    at_us INTEGER NOT NULL,
    event TEXT NOT NULL,
    notification_id TEXT,
    deadline_id TEXT,
    dossier TEXT,
    user_id TEXT,
    device TEXT,
    actor TEXT,
    detail TEXT
);
CREATE INDEX audit_time ON audit(tenant, at_us);
CREATE INDEX audit_dossier ON audit(tenant, dossier, at_us) WHERE dossier IS NOT NULL;
CREATE INDEX audit_deadline ON audit(tenant, deadline_id, at_us) WHERE deadline_id IS NOT NULL;
CREATE INDEX audit_user ON audit(tenant, user_id, at_us) WHERE user_id IS NOT NULL;
CREATE INDEX audit_notification ON audit(notification_id);
"#;

/// Migration 8: receipts for the firm's software. `webhooks` holds a firm's endpoint
/// and signing secret; `webhook_outbox` the events to deliver, written in the same
/// transaction as what they report (a reminder sent, an acknowledgement), delivered
/// and retried by the webhook task until the endpoint answers 2xx. `calendar_feeds`
/// holds the digest of each user's ICS feed secret (one per user, rotated by
/// replacing it).
const V8: &str = r#"
CREATE TABLE webhooks (
    tenant TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_us INTEGER NOT NULL
) WITHOUT ROWID;

CREATE TABLE webhook_outbox (
    id INTEGER PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    next_us INTEGER NOT NULL,
    last_error TEXT,
    delivered_us INTEGER,
    created_us INTEGER NOT NULL
);
CREATE INDEX webhook_outbox_next ON webhook_outbox(next_us) WHERE delivered_us IS NULL;

CREATE TABLE calendar_feeds (
    user_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    created_us INTEGER NOT NULL
) WITHOUT ROWID;
"#;

/// Migration 7: deadlines the gateway owns (docs/DEADLINES.md). `schedule` holds every
/// step the gateway will take by itself — a deadline's reminders and escalations, and
/// publishes with `deliver_at` — each applied at most once: the step's state moves from
/// `planned` in the same transaction that stores what it raises. `acknowledgements`
/// keeps who took a deadline in (one row per deadline and user); it is keyed by the
/// firm's deadline id, so alerts the firm publishes itself can be acknowledged too.
const V7: &str = r#"
CREATE TABLE deadline_settings (
    tenant TEXT PRIMARY KEY,
    settings TEXT NOT NULL
) WITHOUT ROWID;

CREATE TABLE deadlines (
    tenant TEXT NOT NULL,
    external_id TEXT NOT NULL,
    deadline_type TEXT NOT NULL,
    due_at TEXT NOT NULL,
    due_us INTEGER NOT NULL,
    time_zone TEXT NOT NULL,
    owner TEXT NOT NULL,
    backup TEXT,
    dossier_number TEXT,
    dossier_title TEXT,
    url TEXT,
    policy TEXT,
    escalation TEXT,
    status TEXT NOT NULL,
    revision INTEGER NOT NULL,
    created_us INTEGER NOT NULL,
    updated_us INTEGER NOT NULL,
    PRIMARY KEY (tenant, external_id)
) WITHOUT ROWID;
CREATE INDEX deadlines_owner ON deadlines(tenant, owner, due_us);
CREATE INDEX deadlines_due ON deadlines(tenant, due_us);

CREATE TABLE schedule (
    id INTEGER PRIMARY KEY,
    at_us INTEGER NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    tenant TEXT,
    deadline_id TEXT,
    revision INTEGER NOT NULL DEFAULT 0,
    step INTEGER NOT NULL DEFAULT 0,
    label TEXT,
    urgency TEXT,
    fired_us INTEGER,
    late INTEGER NOT NULL DEFAULT 0,
    recipients TEXT,
    notification_ids TEXT,
    payload TEXT,
    idem_scope TEXT,
    idem_key TEXT,
    created_us INTEGER NOT NULL
);
CREATE INDEX schedule_planned ON schedule(at_us) WHERE state = 'planned';
CREATE INDEX schedule_deadline ON schedule(tenant, deadline_id);
CREATE UNIQUE INDEX schedule_idempotency ON schedule(idem_scope, idem_key) WHERE idem_key IS NOT NULL;

CREATE TABLE acknowledgements (
    tenant TEXT NOT NULL,
    deadline_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    session_id TEXT,
    device TEXT,
    notification_id TEXT,
    at_us INTEGER NOT NULL,
    PRIMARY KEY (tenant, deadline_id, user_id)
) WITHOUT ROWID;
"#;

/// Migration 6: when a session's refresh token was last rotated, and whether its
/// previous token was already given its successor again (the grace window of
/// `accounts::rotate_session`: a lost refresh answer must not sign the device out).
const V6: &str = r#"
ALTER TABLE sessions ADD COLUMN rotated_us INTEGER NOT NULL DEFAULT 0;
ALTER TABLE sessions ADD COLUMN grace_used INTEGER NOT NULL DEFAULT 0;
"#;

/// Migration 5: conversations keyed by firm. Their ids are the firms' own, so two
/// firms may use the same one; the key and the stream name now carry the firm
/// (`<firm>:<id>`, `conversation:<firm>:<id>`), and another firm's conversation is
/// never found. Every table that names a conversation's stream follows; foreign keys
/// are checked at the commit, once parent and children agree again.
const V5: &str = r#"
PRAGMA defer_foreign_keys = ON;
CREATE TEMP TABLE conversation_keys AS
    SELECT id AS old, tenant || ':' || id AS new FROM conversations;
UPDATE streams SET name = 'conversation:' || (SELECT new FROM conversation_keys WHERE old = substr(name, 14))
    WHERE name LIKE 'conversation:%' AND substr(name, 14) IN (SELECT old FROM conversation_keys);
UPDATE notifications SET stream = 'conversation:' || (SELECT new FROM conversation_keys WHERE old = substr(stream, 14))
    WHERE stream LIKE 'conversation:%' AND substr(stream, 14) IN (SELECT old FROM conversation_keys);
UPDATE proposals SET stream = 'conversation:' || (SELECT new FROM conversation_keys WHERE old = substr(stream, 14))
    WHERE stream LIKE 'conversation:%' AND substr(stream, 14) IN (SELECT old FROM conversation_keys);
UPDATE idempotency SET stream = 'conversation:' || (SELECT new FROM conversation_keys WHERE old = substr(stream, 14))
    WHERE stream LIKE 'conversation:%' AND substr(stream, 14) IN (SELECT old FROM conversation_keys);
UPDATE conversation_members SET conversation_id = (SELECT new FROM conversation_keys WHERE old = conversation_id);
UPDATE conversations SET id = tenant || ':' || id;
DROP TABLE conversation_keys;
"#;

/// Migration 4: every stored email in the one spelling `crate::email` gives, so that a
/// lookup of the normalised form finds accounts made before. Accounts whose emails differ
/// only by non-ASCII case (made before this version) cannot all take the one spelling:
/// they keep theirs, and each is logged for the administrator to merge or rename.
fn normalize_emails(tx: &rusqlite::Transaction) -> rusqlite_migration::HookResult {
    let users: Vec<(String, String)> = tx
        .prepare("SELECT id, email FROM users WHERE email IS NOT NULL")?
        .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let mut by_spelling: std::collections::BTreeMap<String, Vec<(String, String)>> =
        std::collections::BTreeMap::new();
    for (id, email) in users {
        by_spelling
            .entry(crate::email::normalize(&email))
            .or_default()
            .push((id, email));
    }
    for (normalized, accounts) in by_spelling {
        if let [(id, email)] = accounts.as_slice() {
            if *email != normalized {
                tx.execute(
                    "UPDATE users SET email = ?1 WHERE id = ?2",
                    rusqlite::params![normalized, id],
                )?;
            }
            continue;
        }
        for (id, email) in &accounts {
            tracing::warn!(
                user = %id,
                email = %email,
                accounts = accounts.len(),
                "several accounts have this email but for letter case; they keep their \
                 spellings until an administrator merges or renames them"
            );
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use rusqlite::Connection;

    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().expect("valid migrations");
    }

    #[test]
    fn stored_emails_take_the_one_spelling_and_clashing_ones_keep_theirs() {
        let mut conn = Connection::open_in_memory().expect("opens");
        let migrations = super::migrations();
        migrations.to_version(&mut conn, 3).expect("schema 3");
        conn.execute_batch(
            "INSERT INTO tenants VALUES ('t', 'T', 0);
             INSERT INTO users (id, tenant, email, role, created_us) VALUES
                 ('a', 't', 'MÅRIE@x.fr', 'lawyer', 1),
                 ('b', 't', 'PAUL@X.FR', 'lawyer', 2),
                 ('c', 't', 'mårie@X.fr', 'lawyer', 3);",
        )
        .expect("users");
        migrations.to_latest(&mut conn).expect("migrates");
        let email = |id: &str| -> String {
            conn.query_row("SELECT email FROM users WHERE id = ?1", [id], |row| {
                row.get(0)
            })
            .expect("reads")
        };
        assert_eq!(email("b"), "paul@x.fr");
        assert_eq!(email("a"), "MÅRIE@x.fr", "a clash keeps its spelling");
        assert_eq!(email("c"), "mårie@X.fr", "a clash keeps its spelling");
    }

    #[test]
    fn conversations_and_their_streams_take_the_firm_in_their_key() {
        let mut conn = Connection::open_in_memory().expect("opens");
        conn.pragma_update(None, "foreign_keys", "ON").expect("fks");
        let migrations = super::migrations();
        migrations.to_version(&mut conn, 4).expect("schema 4");
        conn.execute_batch(
            "INSERT INTO tenants VALUES ('dupont', 'D', 0);
             INSERT INTO users (id, tenant, email, role, created_us) VALUES ('u1', 'dupont', 'a@b', 'lawyer', 0);
             INSERT INTO conversations VALUES ('c-42', 'dupont', 0);
             INSERT INTO conversation_members VALUES ('c-42', 'u1');
             INSERT INTO streams VALUES ('conversation:c-42', 'e1', 1, 1);
             INSERT INTO notifications (stream, offset, id, kind, created_us, payload)
                 VALUES ('conversation:c-42', 1, 'n1', 'conversation-message', 0, '{}');",
        )
        .expect("a conversation");
        migrations.to_latest(&mut conn).expect("migrates");
        let one = |sql: &str| -> String { conn.query_row(sql, [], |row| row.get(0)).expect(sql) };
        assert_eq!(one("SELECT id FROM conversations"), "dupont:c-42");
        assert_eq!(
            one("SELECT conversation_id FROM conversation_members"),
            "dupont:c-42"
        );
        assert_eq!(one("SELECT name FROM streams"), "conversation:dupont:c-42");
        assert_eq!(
            one("SELECT stream FROM notifications"),
            "conversation:dupont:c-42"
        );
    }

    #[test]
    fn the_latest_version_is_the_number_of_migrations() {
        let mut conn = Connection::open_in_memory().expect("opens");
        super::migrations().to_latest(&mut conn).expect("migrates");
        let version: i64 = conn
            .pragma_query_value(None, "user_version", |row| row.get(0))
            .expect("reads");
        assert_eq!(version, super::latest_version());
    }

    /// A database written by the first schema keeps every notification, in the
    /// same streams and offsets, and offsets stay unique per stream.
    #[test]
    fn notifications_survive_the_move_to_append_order() {
        let mut conn = Connection::open_in_memory().expect("opens");
        let migrations = super::migrations();
        migrations.to_version(&mut conn, 1).expect("first schema");
        for (stream, offset, created) in [("user:a", 1, 30), ("user:b", 1, 10), ("user:a", 2, 40)] {
            conn.execute(
                "INSERT INTO notifications (stream, offset, id, kind, created_us, payload)
                 VALUES (?1, ?2, ?3, 'email', ?4, '{}')",
                rusqlite::params![stream, offset, format!("{stream}-{offset}"), created],
            )
            .expect("inserts");
        }
        migrations.to_latest(&mut conn).expect("migrates");

        let mut rows = conn
            .prepare("SELECT stream, offset, id FROM notifications ORDER BY seq")
            .expect("prepares");
        let rows: Vec<(String, i64, String)> = rows
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
            .expect("queries")
            .collect::<Result<_, _>>()
            .expect("reads");
        let ids: Vec<&str> = rows.iter().map(|(_, _, id)| id.as_str()).collect();
        assert_eq!(
            ids,
            ["user:b-1", "user:a-1", "user:a-2"],
            "copied oldest first"
        );

        let duplicate = conn.execute(
            "INSERT INTO notifications (stream, offset, id, kind, created_us, payload)
             VALUES ('user:a', 2, 'other', 'email', 50, '{}')",
            [],
        );
        assert!(duplicate.is_err(), "an offset is still unique per stream");
    }

    /// A replay reads a stream's range through the `(stream, offset)` index rather than
    /// scanning the table (which now holds every stream's rows interleaved).
    #[test]
    fn a_stream_range_is_read_through_its_index() {
        let mut conn = Connection::open_in_memory().expect("opens");
        super::migrations().to_latest(&mut conn).expect("migrates");
        let plan: Vec<String> = conn
            .prepare(
                "EXPLAIN QUERY PLAN SELECT offset, id, kind, payload FROM notifications
                 WHERE stream = ?1 AND offset > ?2 AND offset <= ?3 ORDER BY offset LIMIT ?4",
            )
            .expect("prepares")
            .query_map(rusqlite::params!["user:a", 0, 10, 10], |row| row.get(3))
            .expect("explains")
            .collect::<Result<_, _>>()
            .expect("reads");
        assert!(
            plan.iter()
                .any(|step| step.contains("notifications_stream_offset")),
            "plan: {plan:?}"
        );
    }
}
