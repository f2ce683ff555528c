//! Read queries on pooled connections: stream states, ranges, read flags, counts.

use std::sync::Arc;

use sqlx::PgConnection;
use tocsin_protocol::{Kind, StreamName};

use super::ops::ensure_stream;
use crate::store::time::from_us;
use crate::store::{StoreError, StoredNotification, StreamState};

/// Where a stream stands; a stream never written to gets its row (and epoch) now,
/// so the epoch a client is told is the one its later notifications carry.
pub async fn stream_state(
    conn: &mut PgConnection,
    stream: &str,
) -> Result<StreamState, StoreError> {
    let select = "SELECT epoch, head, first FROM streams WHERE name = $1";
    let mut state: Option<(String, i64, i64)> = sqlx::query_as(select)
        .bind(stream)
        .fetch_optional(&mut *conn)
        .await?;
    if state.is_none() {
        ensure_stream(conn, stream).await?;
        state = sqlx::query_as(select)
            .bind(stream)
            .fetch_optional(&mut *conn)
            .await?;
    }
    let (epoch, head, first) =
        state.ok_or_else(|| StoreError::Internal(format!("stream {stream} vanished")))?;
    Ok(StreamState {
        epoch,
        head: head as u64,
        first: first as u64,
    })
}

/// An offset as PostgreSQL's BIGINT holds it; no stored offset is above i64::MAX, and
/// a client's `after=2^63` must not wrap to a negative number and read from the start.
pub fn clamp_i64(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

/// Notifications with `after < offset <= up_to`, oldest first; only those
/// `unread_by` has not read, when given.
pub async fn read_range(
    conn: &mut PgConnection,
    stream: &StreamName,
    (after, up_to, limit): (u64, u64, u32),
    unread_by: Option<&str>,
) -> Result<Vec<StoredNotification>, StoreError> {
    let name = stream.to_string();
    let epoch: Arc<str> = Arc::from(stream_state(conn, &name).await?.epoch);
    let rows: Vec<(i64, String, String, String, Option<i64>)> = sqlx::query_as(
        "SELECT stream_offset, id, kind, payload, retracted_us FROM notifications n
         WHERE stream = $1 AND stream_offset > $2 AND stream_offset <= $3
         AND ($5::TEXT IS NULL OR retracted_us IS NULL AND NOT EXISTS
              (SELECT 1 FROM reads r WHERE r.user_id = $5 AND r.notification_id = n.id))
         ORDER BY stream_offset LIMIT $4",
    )
    .bind(&name)
    .bind(clamp_i64(after))
    .bind(clamp_i64(up_to))
    .bind(i64::from(limit))
    .bind(unread_by)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows
        .into_iter()
        .map(
            |(offset, id, kind, payload, retracted_us)| StoredNotification {
                stream: stream.clone(),
                epoch: epoch.clone(),
                offset: offset as u64,
                id,
                // A kind a newer gateway stored (then rolled back) is served as it is.
                kind: Kind::parse_lenient(&kind),
                payload: Arc::from(payload),
                retracted_at: retracted_us.map(from_us),
            },
        )
        .collect())
}

/// For each id, whether the user has read it.
pub async fn read_flags(
    conn: &mut PgConnection,
    user_id: &str,
    ids: &[String],
) -> Result<Vec<bool>, StoreError> {
    let read: Vec<(String,)> = sqlx::query_as(
        "SELECT notification_id FROM reads WHERE user_id = $1 AND notification_id = ANY($2)",
    )
    .bind(user_id)
    .bind(ids)
    .fetch_all(&mut *conn)
    .await?;
    let read: std::collections::HashSet<String> = read.into_iter().map(|(id,)| id).collect();
    Ok(ids.iter().map(|id| read.contains(id)).collect())
}

/// Unread notifications per kind over the streams.
pub async fn unread_counts(
    conn: &mut PgConnection,
    user_id: &str,
    streams: &[StreamName],
) -> Result<Vec<(Kind, u64)>, StoreError> {
    let names: Vec<String> = streams.iter().map(ToString::to_string).collect();
    let rows: Vec<(String, i64)> = sqlx::query_as(
        "SELECT kind, COUNT(*) FROM notifications n WHERE n.stream = ANY($2)
         AND n.retracted_us IS NULL
         AND NOT EXISTS (SELECT 1 FROM reads r WHERE r.user_id = $1 AND r.notification_id = n.id)
         GROUP BY kind",
    )
    .bind(user_id)
    .bind(&names)
    .fetch_all(&mut *conn)
    .await?;
    let mut totals: std::collections::BTreeMap<Kind, u64> = Default::default();
    for (kind, count) in rows {
        *totals.entry(Kind::parse_lenient(&kind)).or_default() += count as u64;
    }
    Ok(totals.into_iter().collect())
}
