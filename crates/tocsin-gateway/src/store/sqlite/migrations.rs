//! The SQLite schema, as numbered migrations applied by `rusqlite_migration`
//! (tracked in SQLite's `user_version`). Never edit a released migration: add one.

use rusqlite_migration::{M, Migrations};

/// Every migration, oldest first.
pub fn migrations() -> Migrations<'static> {
    Migrations::new(vec![M::up(V1)])
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

#[cfg(test)]
mod tests {
    #[test]
    fn migrations_are_valid() {
        super::migrations().validate().expect("valid migrations");
    }
}
