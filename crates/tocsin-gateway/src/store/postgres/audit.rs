//! The audit trail in PostgreSQL: written inside the transaction of what it records
//! (a publish, a read, an acknowledgement), or in batches for what the connections
//! and devices report (deliveries, OS notifications shown).
//!
//! Reads write one row per notification marked read, computed in SQL so that a "mark
//! all read" over thousands costs one statement per stream. Notifications to `all`
//! belong to no firm and are not audited.

use chrono::{DateTime, Utc};
use sqlx::postgres::PgRow;
use sqlx::{PgConnection, Row};
use tocsin_protocol::audit::{AuditEvent, AuditRecord};

use crate::store::time::{from_us, to_us};
use crate::store::{AppendRequest, AuditEntry, AuditFilter, StoreError};

/// Records a notification just stored.
pub async fn published(conn: &mut PgConnection, request: &AppendRequest) -> Result<(), StoreError> {
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
    sqlx::query(
        "INSERT INTO audit (tenant, at_us, event, notification_id, deadline_id, dossier, user_id, actor, detail)
         VALUES ($1, $2, 'published', $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant)
    .bind(to_us(notification.created_at))
    .bind(&notification.id)
    .bind(notification.data.deadline_id())
    .bind(notification.data.dossier_number())
    .bind(user)
    .bind(&request.actor)
    .bind(detail.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The columns an audit row of a stored notification takes from it (SQLite's
/// `json_extract(n.payload, '$.data.…')`: NULL when absent or JSON null). A macro,
/// so the statements stay static strings (`concat!`).
macro_rules! from_notification {
    () => {
        "n.payload::jsonb -> 'data' ->> 'deadline_id',
         n.payload::jsonb -> 'data' ->> 'dossier_number'"
    };
}

/// Records that `user_id` read one notification (call only when the read is new).
pub async fn read_one(
    conn: &mut PgConnection,
    user_id: &str,
    session_id: Option<&str>,
    notification_id: &str,
    at_us: i64,
) -> Result<(), StoreError> {
    let sql = concat!(
        "INSERT INTO audit (tenant, at_us, event, notification_id, deadline_id, dossier, user_id, device)
         SELECT u.tenant, $1, 'read', n.id, ", from_notification!(), ", u.id,
                (SELECT device_name FROM sessions WHERE id = $4::TEXT)
         FROM notifications n, users u WHERE n.id = $2 AND u.id = $3"
    );
    sqlx::query(sql)
        .bind(at_us)
        .bind(notification_id)
        .bind(user_id)
        .bind(session_id)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records the reads a "mark all read" is about to make in one stream: the
/// notifications at or before `up_to` (of `kind`) the user had not read. Call before
/// inserting the reads.
pub async fn read_range(
    conn: &mut PgConnection,
    user_id: &str,
    session_id: Option<&str>,
    stream: &str,
    (up_to, created_before_us, kind): (i64, i64, Option<&str>),
    at_us: i64,
) -> Result<(), StoreError> {
    let sql = concat!(
        "INSERT INTO audit (tenant, at_us, event, notification_id, deadline_id, dossier, user_id, device)
         SELECT u.tenant, $1, 'read', n.id, ", from_notification!(), ", u.id,
                (SELECT device_name FROM sessions WHERE id = $3::TEXT)
         FROM notifications n, users u
         WHERE u.id = $2 AND n.stream = $4 AND n.stream_offset <= $5 AND n.created_us <= $6
         AND ($7::TEXT IS NULL OR n.kind = $7)
         AND NOT EXISTS (SELECT 1 FROM reads r WHERE r.user_id = $2 AND r.notification_id = n.id)"
    );
    sqlx::query(sql)
        .bind(at_us)
        .bind(user_id)
        .bind(session_id)
        .bind(stream)
        .bind(up_to)
        .bind(created_before_us)
        .bind(kind)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Records that the visible deadline alerts among `ids` were shown as OS notifications
/// on the acting device; the answer counts them.
pub async fn shown(
    conn: &mut PgConnection,
    key: &crate::store::ActionKey,
    visible: &std::collections::HashSet<String>,
    ids: &[String],
    at_us: i64,
) -> Result<Result<serde_json::Value, tocsin_protocol::ErrorBody>, StoreError> {
    let sql = concat!(
        "INSERT INTO audit (tenant, at_us, event, notification_id, deadline_id, dossier, user_id, device)
         SELECT u.tenant, $1, 'shown', n.id, ", from_notification!(), ", u.id,
                (SELECT device_name FROM sessions WHERE id = $4::TEXT)
         FROM notifications n, users u
         WHERE n.id = $2 AND u.id = $3 AND n.kind = 'deadline-alert'"
    );
    let mut recorded = 0;
    for id in ids {
        let stream: Option<String> =
            sqlx::query_scalar("SELECT stream FROM notifications WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        if stream.is_some_and(|s| visible.contains(&s)) {
            recorded += sqlx::query(sql)
                .bind(at_us)
                .bind(id)
                .bind(&key.user_id)
                .bind(key.session_id.as_deref())
                .execute(&mut *conn)
                .await?
                .rows_affected();
        }
    }
    Ok(Ok(serde_json::json!({ "recorded": recorded })))
}

/// Records entries as given (deliveries, OS notifications shown, acknowledgements).
pub async fn insert(conn: &mut PgConnection, entries: &[AuditEntry]) -> Result<(), StoreError> {
    for entry in entries {
        sqlx::query(
            "INSERT INTO audit (tenant, at_us, event, notification_id, deadline_id, dossier, user_id, device)
             VALUES ($1, $2, $3, $4, $5, $6, $7,
                     COALESCE($8::TEXT, (SELECT device_name FROM sessions WHERE id = $9::TEXT)))",
        )
        .bind(&entry.tenant)
        .bind(to_us(entry.at))
        .bind(entry.event.as_str())
        .bind(&entry.notification_id)
        .bind(&entry.deadline_id)
        .bind(&entry.dossier)
        .bind(&entry.user_id)
        .bind(&entry.device)
        .bind(&entry.session_id)
        .execute(&mut *conn)
        .await?;
    }
    Ok(())
}

fn record_of(row: &PgRow) -> Result<AuditRecord, sqlx::Error> {
    let event: String = row.try_get("event")?;
    let detail: Option<String> = row.try_get("detail")?;
    Ok(AuditRecord {
        id: row.try_get("id")?,
        at: from_us(row.try_get("at_us")?),
        event: AuditEvent::parse(&event).unwrap_or(AuditEvent::Published),
        notification_id: row.try_get("notification_id")?,
        deadline_id: row.try_get("deadline_id")?,
        dossier: row.try_get("dossier")?,
        user_id: row.try_get("user_id")?,
        device: row.try_get("device")?,
        actor: row.try_get("actor")?,
        detail: detail.and_then(|text| serde_json::from_str(&text).ok()),
    })
}

/// Records matching the filter, oldest first (by time, then id).
///
/// A deadline's records include those of every notification that belongs to it, and a
/// dossier's those of its deadlines' alerts: the rows carry both.
pub async fn list(
    conn: &mut PgConnection,
    filter: &AuditFilter,
) -> Result<Vec<AuditRecord>, StoreError> {
    let rows = sqlx::query(
        "SELECT id, at_us, event, notification_id, deadline_id, dossier, user_id, device, actor, detail
         FROM audit WHERE tenant = $1
         AND ($2::TEXT IS NULL OR dossier = $2) AND ($3::TEXT IS NULL OR user_id = $3)
         AND ($4::TEXT IS NULL OR deadline_id = $4)
         AND ($5::BIGINT IS NULL OR at_us >= $5) AND ($6::BIGINT IS NULL OR at_us < $6)
         AND ($7::BIGINT IS NULL OR id > $7)
         ORDER BY id LIMIT $8",
    )
    .bind(&filter.tenant)
    .bind(&filter.dossier)
    .bind(&filter.user_id)
    .bind(&filter.deadline_id)
    .bind(filter.from.map(to_us))
    .bind(filter.to.map(to_us))
    .bind(filter.after)
    .bind(i64::from(filter.limit))
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(record_of).collect::<Result<_, _>>()?)
}

/// Deletes a firm's records older than `cutoff`; returns how many.
pub async fn prune(
    conn: &mut PgConnection,
    tenant: &str,
    cutoff: DateTime<Utc>,
) -> Result<u64, StoreError> {
    Ok(
        sqlx::query("DELETE FROM audit WHERE tenant = $1 AND at_us < $2")
            .bind(tenant)
            .bind(to_us(cutoff))
            .execute(&mut *conn)
            .await?
            .rows_affected(),
    )
}
