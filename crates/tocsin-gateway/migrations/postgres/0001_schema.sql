-- The PostgreSQL schema: the same tables and columns as SQLite's newest schema
-- (store/sqlite/migrations.rs), so both stores answer alike. Differences, on purpose:
--   * flags are BOOLEAN (SQLite's 0/1 INTEGERs);
--   * a stream position is `stream_offset` (OFFSET is reserved in PostgreSQL);
--   * emails are unique case-insensitively through an index on lower(email) (the
--     gateway stores them already case-folded and NFC-normalised);
--   * row ids are identity columns (SQLite's rowid);
--   * there is no `meta` table: lineage and the serve lock are about a database
--     file, which a PostgreSQL server does not have.
-- Times are microseconds since the Unix epoch (`*_us`), as in SQLite.

CREATE TABLE tenants (
    slug TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    created_us BIGINT NOT NULL
);

CREATE TABLE users (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants(slug),
    email TEXT,
    name TEXT NOT NULL DEFAULT '',
    role TEXT NOT NULL,
    password_hash TEXT,
    external BOOLEAN NOT NULL DEFAULT FALSE,
    disabled BOOLEAN NOT NULL DEFAULT FALSE,
    created_us BIGINT NOT NULL
);
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE INDEX users_tenant ON users (tenant);

CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL,
    tenant TEXT REFERENCES tenants(slug),
    name TEXT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    admin BOOLEAN NOT NULL DEFAULT FALSE,
    created_us BIGINT NOT NULL
);

CREATE TABLE sessions (
    id TEXT PRIMARY KEY,
    user_id TEXT NOT NULL REFERENCES users(id),
    device_name TEXT NOT NULL,
    refresh_hash TEXT NOT NULL UNIQUE,
    previous_hash TEXT,
    expires_us BIGINT NOT NULL,
    revoked BOOLEAN NOT NULL DEFAULT FALSE,
    created_us BIGINT NOT NULL,
    rotated_us BIGINT NOT NULL DEFAULT 0,
    grace_used BOOLEAN NOT NULL DEFAULT FALSE
);
CREATE INDEX sessions_previous ON sessions (previous_hash);
CREATE INDEX sessions_user ON sessions (user_id);

CREATE TABLE conversations (
    id TEXT PRIMARY KEY,
    tenant TEXT NOT NULL REFERENCES tenants(slug),
    created_us BIGINT NOT NULL
);

CREATE TABLE conversation_members (
    conversation_id TEXT NOT NULL REFERENCES conversations(id),
    user_id TEXT NOT NULL REFERENCES users(id),
    PRIMARY KEY (conversation_id, user_id)
);
CREATE INDEX conversation_members_user ON conversation_members (user_id);

-- One row per stream: the appending transaction locks it (UPDATE … head), which
-- orders appends to one stream across every node and keeps offsets gap-free.
CREATE TABLE streams (
    name TEXT PRIMARY KEY,
    epoch TEXT NOT NULL,
    head BIGINT NOT NULL DEFAULT 0,
    first BIGINT NOT NULL DEFAULT 1
);

CREATE TABLE notifications (
    seq BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    stream TEXT NOT NULL,
    stream_offset BIGINT NOT NULL,
    id TEXT NOT NULL UNIQUE,
    kind TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    payload TEXT NOT NULL,
    retracted_us BIGINT
);
CREATE UNIQUE INDEX notifications_stream_offset ON notifications (stream, stream_offset);
CREATE INDEX notifications_created ON notifications (created_us);

CREATE TABLE idempotency (
    scope TEXT NOT NULL,
    key TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    stream_offset BIGINT NOT NULL,
    created_us BIGINT NOT NULL,
    PRIMARY KEY (scope, key)
);
CREATE INDEX idempotency_created ON idempotency (created_us);

CREATE TABLE reads (
    user_id TEXT NOT NULL,
    notification_id TEXT NOT NULL,
    read_us BIGINT NOT NULL,
    PRIMARY KEY (user_id, notification_id)
);

CREATE TABLE proposals (
    tenant TEXT NOT NULL,
    proposal_id TEXT NOT NULL,
    stream TEXT NOT NULL,
    status TEXT NOT NULL,
    responded_by TEXT,
    PRIMARY KEY (tenant, proposal_id)
);

CREATE TABLE client_actions (
    user_id TEXT NOT NULL,
    action_id TEXT NOT NULL,
    result TEXT NOT NULL,
    created_us BIGINT NOT NULL,
    PRIMARY KEY (user_id, action_id)
);
CREATE INDEX client_actions_created ON client_actions (created_us);

CREATE TABLE deadline_settings (
    tenant TEXT PRIMARY KEY,
    settings TEXT NOT NULL
);

CREATE TABLE deadlines (
    tenant TEXT NOT NULL,
    external_id TEXT NOT NULL,
    deadline_type TEXT NOT NULL,
    due_at TEXT NOT NULL,
    due_us BIGINT NOT NULL,
    time_zone TEXT NOT NULL,
    owner TEXT NOT NULL,
    backup TEXT,
    dossier_number TEXT,
    dossier_title TEXT,
    url TEXT,
    policy TEXT,
    escalation TEXT,
    status TEXT NOT NULL,
    revision BIGINT NOT NULL,
    created_us BIGINT NOT NULL,
    updated_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, external_id)
);
CREATE INDEX deadlines_owner ON deadlines (tenant, owner, due_us);
CREATE INDEX deadlines_due ON deadlines (tenant, due_us);
CREATE INDEX deadlines_backup ON deadlines (tenant, backup) WHERE backup IS NOT NULL;

CREATE TABLE schedule (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at_us BIGINT NOT NULL,
    kind TEXT NOT NULL,
    state TEXT NOT NULL,
    tenant TEXT,
    deadline_id TEXT,
    revision BIGINT NOT NULL DEFAULT 0,
    step BIGINT NOT NULL DEFAULT 0,
    label TEXT,
    urgency TEXT,
    fired_us BIGINT,
    late BOOLEAN NOT NULL DEFAULT FALSE,
    recipients TEXT,
    notification_ids TEXT,
    payload TEXT,
    idem_scope TEXT,
    idem_key TEXT,
    created_us BIGINT NOT NULL
);
CREATE INDEX schedule_planned ON schedule (at_us) WHERE state = 'planned';
CREATE INDEX schedule_deadline ON schedule (tenant, deadline_id);
CREATE UNIQUE INDEX schedule_idempotency ON schedule (idem_scope, idem_key) WHERE idem_key IS NOT NULL;
CREATE INDEX schedule_escalated ON schedule (tenant) WHERE kind = 'escalation' AND recipients IS NOT NULL;

CREATE TABLE acknowledgements (
    tenant TEXT NOT NULL,
    deadline_id TEXT NOT NULL,
    user_id TEXT NOT NULL,
    session_id TEXT,
    device TEXT,
    notification_id TEXT,
    at_us BIGINT NOT NULL,
    PRIMARY KEY (tenant, deadline_id, user_id)
);
CREATE INDEX acknowledgements_user ON acknowledgements (tenant, user_id, at_us);

CREATE TABLE webhooks (
    tenant TEXT PRIMARY KEY,
    url TEXT NOT NULL,
    secret TEXT NOT NULL,
    created_us BIGINT NOT NULL
);

CREATE TABLE webhook_outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    event_id TEXT NOT NULL UNIQUE,
    tenant TEXT NOT NULL,
    kind TEXT NOT NULL,
    body TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_us BIGINT NOT NULL,
    last_error TEXT,
    delivered_us BIGINT,
    created_us BIGINT NOT NULL
);
CREATE INDEX webhook_outbox_next ON webhook_outbox (next_us) WHERE delivered_us IS NULL;

CREATE TABLE calendar_feeds (
    user_id TEXT PRIMARY KEY,
    secret_hash TEXT NOT NULL UNIQUE,
    created_us BIGINT NOT NULL
);

CREATE TABLE audit (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    tenant TEXT NOT NULL,
    at_us BIGINT NOT NULL,
    event TEXT NOT NULL,
    notification_id TEXT,
    deadline_id TEXT,
    dossier TEXT,
    user_id TEXT,
    device TEXT,
    actor TEXT,
    detail TEXT
);
CREATE INDEX audit_time ON audit (tenant, at_us);
CREATE INDEX audit_dossier ON audit (tenant, dossier, at_us) WHERE dossier IS NOT NULL;
CREATE INDEX audit_deadline ON audit (tenant, deadline_id, at_us) WHERE deadline_id IS NOT NULL;
CREATE INDEX audit_user ON audit (tenant, user_id, at_us) WHERE user_id IS NOT NULL;
CREATE INDEX audit_notification ON audit (notification_id);

CREATE TABLE retractions (
    notification_id TEXT PRIMARY KEY,
    tenant TEXT,
    stream TEXT,
    stream_offset BIGINT,
    at_us BIGINT NOT NULL,
    actor TEXT NOT NULL
);
CREATE INDEX retractions_stream ON retractions (stream, at_us) WHERE stream IS NOT NULL;
