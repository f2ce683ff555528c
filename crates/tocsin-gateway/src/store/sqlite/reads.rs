//! Read queries on pooled connections: stream states, ranges, read flags, counts.

use std::sync::Arc;

use rusqlite::{Connection, params};
use tocsin_protocol::{Kind, StreamName};

use super::ops::ensure_stream;
use crate::store::{StoreError, StoredNotification, StreamState};

/// Where a stream stands; a stream never written to gets its row (and epoch) now,
/// so the epoch a client is told is the one its later notifications carry.
pub fn stream_state(conn: &Connection, stream: &str) -> Result<StreamState, StoreError> {
    let state = conn
        .prepare_cached("SELECT epoch, head, first FROM streams WHERE name = ?1")?
        .query_row(params![stream], |row| {
            Ok(StreamState {
                epoch: row.get(0)?,
                head: row.get::<_, i64>(1)? as u64,
                first: row.get::<_, i64>(2)? as u64,
            })
        });
    match state {
        Ok(state) => Ok(state),
        Err(rusqlite::Error::QueryReturnedNoRows) => {
            // INSERT OR IGNORE is atomic: if the writer created the row meanwhile, the
            // writer's epoch wins and is what we read back.
            ensure_stream(conn, stream)?;
            stream_state(conn, stream)
        }
        Err(err) => Err(err.into()),
    }
}

/// An offset as SQLite stores it; no stored offset is above i64::MAX.
pub(super) fn clamp_i64(offset: u64) -> i64 {
    i64::try_from(offset).unwrap_or(i64::MAX)
}

/// Notifications with `after < offset <= up_to`, oldest first; only those
/// `unread_by` has not read, when given.
pub fn read_range(
    conn: &Connection,
    stream: &StreamName,
    (after, up_to, limit): (u64, u64, u32),
    unread_by: Option<&str>,
) -> Result<Vec<StoredNotification>, StoreError> {
    let name = stream.to_string();
    let epoch: Arc<str> = Arc::from(stream_state(conn, &name)?.epoch);
    let mut statement = conn.prepare_cached(
        "SELECT offset, id, kind, payload, retracted_us FROM notifications
         WHERE stream = ?1 AND offset > ?2 AND offset <= ?3
         AND (?5 IS NULL OR retracted_us IS NULL AND NOT EXISTS
              (SELECT 1 FROM reads r WHERE r.user_id = ?5 AND r.notification_id = notifications.id))
         ORDER BY offset LIMIT ?4",
    )?;
    let rows = statement.query_map(
        // SQLite integers are i64: an offset past i64::MAX (a client's `after=2^63`)
        // must not wrap to a negative number and read from the start.
        params![name, clamp_i64(after), clamp_i64(up_to), limit, unread_by],
        |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, String>(1)?,
                row.get::<_, String>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, Option<i64>>(4)?,
            ))
        },
    )?;
    let mut out = Vec::new();
    for row in rows {
        let (offset, id, kind, payload, retracted_us) = row?;
        // A kind a newer gateway stored (then rolled back) is served as it is.
        let kind = Kind::parse_lenient(&kind);
        out.push(StoredNotification {
            stream: stream.clone(),
            epoch: epoch.clone(),
            offset: offset as u64,
            id,
            kind,
            payload: Arc::from(payload),
            retracted_at: retracted_us.map(super::time::from_us),
        });
    }
    Ok(out)
}

/// For each id, whether the user has read it.
pub fn read_flags(
    conn: &Connection,
    user_id: &str,
    ids: &[String],
) -> Result<Vec<bool>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM reads WHERE user_id = ?1 AND notification_id = ?2)",
    )?;
    ids.iter()
        .map(|id| Ok(statement.query_row(params![user_id, id], |row| row.get(0))?))
        .collect()
}

/// Unread notifications per kind over the streams.
pub fn unread_counts(
    conn: &Connection,
    user_id: &str,
    streams: &[StreamName],
) -> Result<Vec<(Kind, u64)>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT kind, COUNT(*) FROM notifications n WHERE n.stream = ?2
         AND n.retracted_us IS NULL AND NOT EXISTS (SELECT 1 FROM reads r WHERE r.user_id = ?1 AND r.notification_id = n.id)
         GROUP BY kind",
    )?;
    let mut totals: std::collections::BTreeMap<Kind, u64> = Default::default();
    for stream in streams {
        let rows = statement.query_map(params![user_id, stream.to_string()], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        for row in rows {
            let (kind, count) = row?;
            *totals.entry(Kind::parse_lenient(&kind)).or_default() += count as u64;
        }
    }
    Ok(totals.into_iter().collect())
}
