//! The audit trail in SQLite: written inside the writer transaction of what it
//! records (a publish, a read, an acknowledgement), or in batches for what the
//! connections and devices report (deliveries, OS notifications shown).
//!
//! Reads write one row per notification marked read, computed in SQL so that a "mark
//! all read" over thousands costs one statement per stream. Notifications to `all`
//! belong to no firm and are not audited.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use tocsin_protocol::audit::{AuditEvent, AuditRecord};

use super::time::{from_us, to_us};
use crate::store::{AppendRequest, AuditEntry, AuditFilter, StoreError};

/// Records a notification just stored.
pub fn published(conn: &Connection, request: &AppendRequest) -> Result<(), StoreError> {
    let Some(tenant) = &request.tenant else {
        return Ok(());
    };
    let notification = &request.notification;
    let user = match &request.stream {
        tocsin_protocol::StreamName::User(id) => Some(id.as_str()),
        _ => None,
    };
    let detail = serde_json::json!({
        "kind": notification.data.kind_name(),
        "title": notification.title,
        "urgency": notification.urgency,
        "stream": request.stream.to_string(),
    });
    conn.prepare_cached(
        "INSERT INTO audit (tenant, at_us, event, notification_id, deadline_id, dossier, user_id, actor, detail)
         VALUES (?1, ?2, 'published', ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        tenant,
        to_us(notification.created_at),
        notification.id,
        notification.data.deadline_id(),
        notification.data.dossier_number(),
        user,
        request.actor,
        detail.to_string(),
    ])?;
    Ok(())
}

/// The columns an audit row of a stored notification takes from it.
const FROM_NOTIFICATION: &str = "json_extract(n.payload, '$.data.deadline_id'),
    json_extract(n.payload, '$.data.dossier_number')";

/// Records that `user_id` read one notification (call only when the read is new).
pub fn read_one(
    conn: &Connection,
    user_id: &str,
    session_id: Option<&str>,
    notification_id: &str,
    at_us: i64,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO audit (tenant, at_us, event, notification_id, deadline_id, dossier, user_id, device)
         SELECT u.tenant, ?1, 'read', n.id, {FROM_NOTIFICATION}, u.id,
                (SELECT device_name FROM sessions WHERE id = ?4)
         FROM notifications n, users u WHERE n.id = ?2 AND u.id = ?3"
    );
    conn.prepare_cached(&sql)?
        .execute(params![at_us, notification_id, user_id, session_id])?;
    Ok(())
}

/// Records the reads a "mark all read" is about to make in one stream: the
/// notifications at or before `up_to` (of `kind`) the user had not read. Call before
/// inserting the reads.
pub fn read_range(
    conn: &Connection,
    user_id: &str,
    session_id: Option<&str>,
    stream: &str,
    (up_to, created_before_us, kind): (i64, i64, Option<&str>),
    at_us: i64,
) -> Result<(), StoreError> {
    let sql = format!(
        "INSERT INTO audit (tenant, at_us, event, notification_id, deadline_id, dossier, user_id, device)
         SELECT u.tenant, ?1, 'read', n.id, {FROM_NOTIFICATION}, u.id,
                (SELECT device_name FROM sessions WHERE id = ?3)
         FROM notifications n, users u
         WHERE u.id = ?2 AND n.stream = ?4 AND n.offset <= ?5 AND n.created_us <= ?6
         AND (?7 IS NULL OR n.kind = ?7)
         AND NOT EXISTS (SELECT 1 FROM reads r WHERE r.user_id = ?2 AND r.notification_id = n.id)"
    );
    conn.prepare_cached(&sql)?.execute(params![
        at_us,
        user_id,
        session_id,
        stream,
        up_to,
        created_before_us,
        kind
    ])?;
    Ok(())
}

/// Records that the visible deadline alerts among `ids` were shown as OS notifications
/// on the acting device; the answer counts them.
pub fn shown(
    conn: &Connection,
    key: &crate::store::ActionKey,
    visible: &std::collections::HashSet<String>,
    ids: &[String],
    at_us: i64,
) -> Result<Result<serde_json::Value, tocsin_protocol::ErrorBody>, StoreError> {
    let sql = format!(
        "INSERT INTO audit (tenant, at_us, event, notification_id, deadline_id, dossier, user_id, device)
         SELECT u.tenant, ?1, 'shown', n.id, {FROM_NOTIFICATION}, u.id,
                (SELECT device_name FROM sessions WHERE id = ?4)
         FROM notifications n, users u
         WHERE n.id = ?2 AND u.id = ?3 AND n.kind = 'deadline-alert'"
    );
    let mut stream_of = conn.prepare_cached("SELECT stream FROM notifications WHERE id = ?1")?;
    let mut insert = conn.prepare_cached(&sql)?;
    let mut recorded = 0;
    for id in ids {
        let stream: Option<String> = stream_of
            .query_row(params![id], |row| row.get(0))
            .optional()?;
        if stream.is_some_and(|s| visible.contains(&s)) {
            recorded += insert.execute(params![at_us, id, key.user_id, key.session_id])?;
        }
    }
    Ok(Ok(serde_json::json!({ "recorded": recorded })))
}

/// Records entries as given (deliveries, OS notifications shown, acknowledgements).
pub fn insert(conn: &Connection, entries: &[AuditEntry]) -> Result<(), StoreError> {
    let mut statement = conn.prepare_cached(
        "INSERT INTO audit (tenant, at_us, event, notification_id, deadline_id, dossier, user_id, device)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7,
                 COALESCE(?8, (SELECT device_name FROM sessions WHERE id = ?9)))",
    )?;
    for entry in entries {
        statement.execute(params![
            entry.tenant,
            to_us(entry.at),
            entry.event.as_str(),
            entry.notification_id,
            entry.deadline_id,
            entry.dossier,
            entry.user_id,
            entry.device,
            entry.session_id,
        ])?;
    }
    Ok(())
}

fn record_of(row: &Row) -> rusqlite::Result<AuditRecord> {
    let event: String = row.get(2)?;
    let detail: Option<String> = row.get(9)?;
    Ok(AuditRecord {
        id: row.get(0)?,
        at: from_us(row.get(1)?),
        event: AuditEvent::parse(&event).unwrap_or(AuditEvent::Published),
        notification_id: row.get(3)?,
        deadline_id: row.get(4)?,
        dossier: row.get(5)?,
        user_id: row.get(6)?,
        device: row.get(7)?,
        actor: row.get(8)?,
        detail: detail.and_then(|text| serde_json::from_str(&text).ok()),
    })
}

/// Records matching the filter, oldest first (by time, then id).
///
/// A deadline's records include those of every notification that belongs to it, and a
/// dossier's those of its deadlines' alerts: the rows carry both.
pub fn list(conn: &Connection, filter: &AuditFilter) -> Result<Vec<AuditRecord>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT id, at_us, event, notification_id, deadline_id, dossier, user_id, device, actor, detail
             FROM audit WHERE tenant = ?1
             AND (?2 IS NULL OR dossier = ?2) AND (?3 IS NULL OR user_id = ?3)
             AND (?4 IS NULL OR deadline_id = ?4)
             AND (?5 IS NULL OR at_us >= ?5) AND (?6 IS NULL OR at_us < ?6)
             AND (?7 IS NULL OR id > ?7)
             ORDER BY id LIMIT ?8",
        )?
        .query_map(
            params![
                filter.tenant,
                filter.dossier,
                filter.user_id,
                filter.deadline_id,
                filter.from.map(to_us),
                filter.to.map(to_us),
                filter.after,
                filter.limit
            ],
            record_of,
        )?
        .collect::<Result<_, _>>()?)
}

/// Deletes a firm's records older than `cutoff`; returns how many.
pub fn prune(conn: &Connection, tenant: &str, cutoff: DateTime<Utc>) -> Result<u64, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM audit WHERE tenant = ?1 AND at_us < ?2")?
        .execute(params![tenant, to_us(cutoff)])? as u64)
}
