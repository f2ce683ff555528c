//! The writer's stream operations on PostgreSQL: appending notifications (idempotency,
//! the offset from the stream's locked head, proposal bookkeeping, the audit record).
//! Each runs inside the writer's open transaction.

use std::sync::Arc;

use chrono::Utc;
use sqlx::PgConnection;
use tocsin_protocol::{NotificationData, StreamName};

use crate::store::time::{new_epoch, to_us};
use crate::store::{AppendRequest, Appended, StoreError, StoredNotification};

/// Appends every request, in order; `fresh` receives what must be fanned out.
pub async fn append_all(
    conn: &mut PgConnection,
    batch: Vec<AppendRequest>,
    fresh: &mut Vec<Arc<StoredNotification>>,
) -> Result<Vec<Appended>, StoreError> {
    let mut out = Vec::with_capacity(batch.len());
    for request in batch {
        out.push(append_one(conn, request, fresh).await?);
    }
    Ok(out)
}

/// The answer for a request whose idempotency key is already known.
async fn known_key(
    conn: &mut PgConnection,
    request: &AppendRequest,
) -> Result<Option<Appended>, StoreError> {
    let Some(idem) = &request.idempotency else {
        return Ok(None);
    };
    let known: Option<(String, String, i64, String)> = sqlx::query_as(
        "SELECT i.notification_id, i.stream, i.stream_offset, s.epoch FROM idempotency i
         JOIN streams s ON s.name = i.stream WHERE i.scope = $1 AND i.key = $2",
    )
    .bind(&idem.scope)
    .bind(&idem.key)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((id, stream, offset, epoch)) = known else {
        return Ok(None);
    };
    Ok(Some(Appended {
        id,
        stream: parse_stream(&stream)?,
        epoch,
        offset: offset as u64,
        duplicate: true,
        deliver_at: None,
    }))
}

/// Appends one notification: idempotency check, offset from the stream's head (its
/// row stays locked until commit, so appends to one stream from every node commit in
/// offset order), insert, proposal bookkeeping, audit.
pub async fn append_one(
    conn: &mut PgConnection,
    request: AppendRequest,
    fresh: &mut Vec<Arc<StoredNotification>>,
) -> Result<Appended, StoreError> {
    if let Some(known) = known_key(conn, &request).await? {
        return Ok(known);
    }
    if let Some(at) = request.deliver_at.filter(|at| *at > Utc::now()) {
        return super::schedule::schedule_publish(conn, request, at).await;
    }
    let stream_name = request.stream.to_string();
    let (epoch, offset) = advance_head(conn, &stream_name).await?;
    let notification = &request.notification;
    let payload = serde_json::to_string(notification)
        .map_err(|err| StoreError::Invalid(format!("notification cannot be encoded: {err}")))?;
    let created_us = to_us(notification.created_at);
    sqlx::query(
        "INSERT INTO notifications (stream, stream_offset, id, kind, created_us, payload)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&stream_name)
    .bind(offset)
    .bind(&notification.id)
    .bind(notification.data.kind_name())
    .bind(created_us)
    .bind(&payload)
    .execute(&mut *conn)
    .await?;
    if let Some(idem) = &request.idempotency {
        sqlx::query(
            "INSERT INTO idempotency (scope, key, notification_id, stream, stream_offset, created_us)
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&idem.scope)
        .bind(&idem.key)
        .bind(&notification.id)
        .bind(&stream_name)
        .bind(offset)
        .bind(created_us)
        .execute(&mut *conn)
        .await?;
    }
    track_proposal(conn, &request, &stream_name).await?;
    super::audit::published(conn, &request).await?;
    let epoch: Arc<str> = Arc::from(epoch);
    fresh.push(Arc::new(StoredNotification {
        stream: request.stream.clone(),
        epoch: epoch.clone(),
        offset: offset as u64,
        id: notification.id.clone(),
        kind: notification.kind(),
        payload: Arc::from(payload),
        retracted_at: None,
    }));
    Ok(Appended {
        id: notification.id.clone(),
        stream: request.stream,
        epoch: epoch.to_string(),
        offset: offset as u64,
        duplicate: false,
        deliver_at: None,
    })
}

/// Takes the stream's next offset: `head + 1`, written back in the same statement,
/// which locks the stream's row until the transaction ends.
async fn advance_head(conn: &mut PgConnection, stream: &str) -> Result<(String, i64), StoreError> {
    let advanced: Option<(String, i64)> =
        sqlx::query_as("UPDATE streams SET head = head + 1 WHERE name = $1 RETURNING epoch, head")
            .bind(stream)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(advanced) = advanced {
        return Ok(advanced);
    }
    ensure_stream(conn, stream).await?;
    let advanced: (String, i64) =
        sqlx::query_as("UPDATE streams SET head = head + 1 WHERE name = $1 RETURNING epoch, head")
            .bind(stream)
            .fetch_one(&mut *conn)
            .await?;
    Ok(advanced)
}

/// Creates the stream row with a fresh epoch if missing; returns `(epoch, head)`.
pub async fn ensure_stream(
    conn: &mut PgConnection,
    stream: &str,
) -> Result<(String, i64), StoreError> {
    // ON CONFLICT DO NOTHING: another node (or a reader) may create it concurrently;
    // whichever insert wins, its epoch is the one read back.
    sqlx::query(
        "INSERT INTO streams (name, epoch, head, first) VALUES ($1, $2, 0, 1)
         ON CONFLICT (name) DO NOTHING",
    )
    .bind(stream)
    .bind(new_epoch())
    .execute(&mut *conn)
    .await?;
    let row: (String, i64) = sqlx::query_as("SELECT epoch, head FROM streams WHERE name = $1")
        .bind(stream)
        .fetch_one(&mut *conn)
        .await?;
    Ok(row)
}

/// Keeps the proposals table in step with proposal notifications, so a lawyer's
/// answer can be checked against the proposal's current state.
async fn track_proposal(
    conn: &mut PgConnection,
    request: &AppendRequest,
    stream: &str,
) -> Result<(), StoreError> {
    match &request.notification.data {
        NotificationData::ProposalCreated(created) => {
            let Some(tenant) = &request.tenant else {
                return Err(StoreError::Invalid(
                    "proposals belong to a firm: publish proposal-created to a user, tenant or conversation, not to all".into(),
                ));
            };
            sqlx::query(
                "INSERT INTO proposals (tenant, proposal_id, stream, status) VALUES ($1, $2, $3, 'pending')
                 ON CONFLICT (tenant, proposal_id) DO UPDATE SET stream = excluded.stream, status = 'pending', responded_by = NULL",
            )
            .bind(tenant)
            .bind(&created.proposal_id)
            .bind(stream)
            .execute(&mut *conn)
            .await?;
        }
        NotificationData::ProposalStatusChanged(changed) => {
            if let Some(tenant) = &request.tenant {
                sqlx::query(
                    "UPDATE proposals SET status = $3 WHERE tenant = $1 AND proposal_id = $2",
                )
                .bind(tenant)
                .bind(&changed.proposal_id)
                .bind(changed.status.as_str())
                .execute(&mut *conn)
                .await?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// A stream name read back from the database.
pub fn parse_stream(name: &str) -> Result<StreamName, StoreError> {
    name.parse::<StreamName>()
        .map_err(|err| StoreError::Internal(format!("stored stream name {name:?}: {err}")))
}
