//! Retracting a misdirected notification (`DELETE /v1/notifications/{id}`), on the
//! writer, in one savepoint of its transaction.
//!
//! A stored notification keeps its row and its offset — offsets stay consecutive, so
//! no client sees a gap — but its content is replaced by a content-free notice
//! ([`tombstone`]) and `retracted_us` is set: replays send a `retracted` frame in its
//! place (or the notice to clients that do not know that frame), history and unread
//! counts skip it. A scheduled publish not yet stored is withdrawn before anyone
//! receives it. Either way a `retractions` row says when and by whom (a repeated call
//! answers the same), and the audit trail gets a `retracted` record next to the
//! `published` one, which keeps what the notification was: the firm's proof.
//!
//! Who may: an admin key of the notification's firm (or a global key), or the
//! publish-only key that published it. Another firm's notification is answered like
//! an unknown one.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use tocsin_protocol::notification::{SystemLevel, SystemNotification};
use tocsin_protocol::{Notification, NotificationData, StreamName, Urgency};

use super::time::{from_us, to_us};
use crate::store::{RetractRequest, Retracted, StoreError};

/// The title a retracted notification keeps, for clients that do not know the
/// `retracted` frame (both languages: the gateway does not know the reader's).
pub const RETRACTED_TITLE: &str = "Notification retirée par l'expéditeur · retracted by the sender";

/// The notice that replaces a retracted notification's content.
pub fn tombstone(id: &str, created_at: DateTime<Utc>) -> Notification {
    Notification {
        id: id.to_owned(),
        data: NotificationData::SystemNotification(SystemNotification {
            level: SystemLevel::Info,
            code: Some("retracted".to_owned()),
            extra: Default::default(),
        }),
        created_at,
        urgency: Urgency::Low,
        title: RETRACTED_TITLE.to_owned(),
        body: String::new(),
        url: None,
    }
}

/// Retracts `request.notification_id`, or answers how it was retracted before.
pub fn retract(conn: &Connection, request: &RetractRequest) -> Result<Retracted, StoreError> {
    if let Some(done) = earlier(conn, request)? {
        return Ok(done);
    }
    if let Some(done) = retract_stored(conn, request)? {
        return Ok(done);
    }
    if let Some(done) = withdraw_scheduled(conn, request)? {
        return Ok(done);
    }
    Err(unknown(&request.notification_id))
}

fn unknown(id: &str) -> StoreError {
    StoreError::NotFound(format!(
        "no notification '{id}' in your firm: check the id the publish answered (it may also have been pruned by retention)"
    ))
}

/// The firm owning a stream: `None` for `all` (only a global key may act on it).
fn firm_of(conn: &Connection, stream: &StreamName) -> Result<Option<String>, StoreError> {
    Ok(match stream {
        StreamName::Tenant(slug) => Some(slug.clone()),
        StreamName::Conversation(key) => key.split_once(':').map(|(firm, _)| firm.to_owned()),
        StreamName::User(id) => conn
            .prepare_cached("SELECT tenant FROM users WHERE id = ?1")?
            .query_row(params![id], |row| row.get(0))
            .optional()?,
        StreamName::All => None,
    })
}

/// Whether the key may act on something of `firm` published by `publisher`.
fn check_allowed(
    request: &RetractRequest,
    firm: Option<&str>,
    publisher: Option<&str>,
) -> Result<(), StoreError> {
    if let Some(own) = &request.tenant
        && firm != Some(own.as_str())
    {
        return Err(unknown(&request.notification_id));
    }
    if !request.admin && publisher != Some(request.actor.as_str()) {
        return Err(StoreError::Forbidden(format!(
            "notification '{}' was not published with this key: a publish-only key retracts only what it published itself; use an admin key (tocsin-gateway key create --tenant <firm> --admin)",
            request.notification_id
        )));
    }
    Ok(())
}

/// A retraction already made: the same answer, `already` set.
fn earlier(conn: &Connection, request: &RetractRequest) -> Result<Option<Retracted>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT r.tenant, r.stream, r.offset, r.at_us, s.epoch FROM retractions r
             LEFT JOIN streams s ON s.name = r.stream WHERE r.notification_id = ?1",
        )?
        .query_row(params![request.notification_id], |row| {
            Ok((
                row.get::<_, Option<String>>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, Option<i64>>(2)?,
                row.get::<_, i64>(3)?,
                row.get::<_, Option<String>>(4)?,
            ))
        })
        .optional()?;
    let Some((tenant, stream, offset, at_us, epoch)) = row else {
        return Ok(None);
    };
    if let Some(own) = &request.tenant
        && tenant.as_deref() != Some(own.as_str())
    {
        return Err(unknown(&request.notification_id));
    }
    let stream = stream.map(|name| parse_stream(&name)).transpose()?;
    Ok(Some(Retracted {
        notification_id: request.notification_id.clone(),
        stream,
        epoch: epoch.unwrap_or_default(),
        offset: offset.unwrap_or(0) as u64,
        at: from_us(at_us),
        already: true,
    }))
}

fn parse_stream(name: &str) -> Result<StreamName, StoreError> {
    name.parse::<StreamName>()
        .map_err(|err| StoreError::Internal(format!("stored stream name '{name}': {err}")))
}

/// Retracts a stored notification: its content replaced, its slot kept.
fn retract_stored(
    conn: &Connection,
    request: &RetractRequest,
) -> Result<Option<Retracted>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT n.stream, n.offset, n.created_us, n.payload, s.epoch FROM notifications n
             JOIN streams s ON s.name = n.stream WHERE n.id = ?1",
        )?
        .query_row(params![request.notification_id], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
                row.get::<_, String>(4)?,
            ))
        })
        .optional()?;
    let Some((stream_name, offset, created_us, payload, epoch)) = row else {
        return Ok(None);
    };
    let stream = parse_stream(&stream_name)?;
    let firm = firm_of(conn, &stream)?;
    let publisher: Option<String> = conn
        .prepare_cached(
            "SELECT actor FROM audit WHERE notification_id = ?1 AND event = 'published' LIMIT 1",
        )?
        .query_row(params![request.notification_id], |row| row.get(0))
        .optional()?
        .flatten();
    check_allowed(request, firm.as_deref(), publisher.as_deref())?;
    // At the stored precision, so a repeated call answers exactly the same time.
    let now = from_us(to_us(Utc::now()));
    let tombstone =
        serde_json::to_string(&tombstone(&request.notification_id, from_us(created_us)))
            .map_err(|err| StoreError::Internal(err.to_string()))?;
    conn.prepare_cached(
        "UPDATE notifications SET payload = ?2, kind = 'system-notification', retracted_us = ?3 WHERE id = ?1",
    )?
    .execute(params![request.notification_id, tombstone, to_us(now)])?;
    record(
        conn,
        request,
        firm.as_deref(),
        Some((&stream_name, offset)),
        now,
    )?;
    audit(conn, request, firm.as_deref(), &stream, &payload, now)?;
    Ok(Some(Retracted {
        notification_id: request.notification_id.clone(),
        stream: Some(stream),
        epoch,
        offset: offset as u64,
        at: now,
        already: false,
    }))
}

/// Withdraws a scheduled publish that was not stored yet: nobody received it.
fn withdraw_scheduled(
    conn: &Connection,
    request: &RetractRequest,
) -> Result<Option<Retracted>, StoreError> {
    let row = conn
        .prepare_cached(
            "SELECT id, tenant, json_extract(payload, '$.actor') FROM schedule
             WHERE kind = 'publish' AND state = 'planned'
             AND json_extract(payload, '$.notification.id') = ?1",
        )?
        .query_row(params![request.notification_id], |row| {
            Ok((
                row.get::<_, i64>(0)?,
                row.get::<_, Option<String>>(1)?,
                row.get::<_, Option<String>>(2)?,
            ))
        })
        .optional()?;
    let Some((step, firm, publisher)) = row else {
        return Ok(None);
    };
    check_allowed(request, firm.as_deref(), publisher.as_deref())?;
    // At the stored precision, so a repeated call answers exactly the same time.
    let now = from_us(to_us(Utc::now()));
    conn.prepare_cached("UPDATE schedule SET state = 'cancelled' WHERE id = ?1")?
        .execute(params![step])?;
    record(conn, request, firm.as_deref(), None, now)?;
    if let Some(tenant) = &firm {
        conn.prepare_cached(
            "INSERT INTO audit (tenant, at_us, event, notification_id, actor, detail)
             VALUES (?1, ?2, 'retracted', ?3, ?4, '{\"scheduled\":true}')",
        )?
        .execute(params![
            tenant,
            to_us(now),
            request.notification_id,
            request.actor
        ])?;
    }
    Ok(Some(Retracted {
        notification_id: request.notification_id.clone(),
        stream: None,
        epoch: String::new(),
        offset: 0,
        at: now,
        already: false,
    }))
}

fn record(
    conn: &Connection,
    request: &RetractRequest,
    firm: Option<&str>,
    slot: Option<(&str, i64)>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (stream, offset) = slot.unzip();
    conn.prepare_cached(
        "INSERT INTO retractions (notification_id, tenant, stream, offset, at_us, actor)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![
        request.notification_id,
        firm,
        stream,
        offset,
        to_us(at),
        request.actor
    ])?;
    Ok(())
}

/// The `retracted` audit record, with the dossier and deadline the notification named
/// (so the firm finds it where it found the `published` one).
fn audit(
    conn: &Connection,
    request: &RetractRequest,
    firm: Option<&str>,
    stream: &StreamName,
    payload: &str,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let Some(tenant) = firm else {
        return Ok(());
    };
    let original: Option<Notification> = serde_json::from_str(payload).ok();
    let user = match stream {
        StreamName::User(id) => Some(id.as_str()),
        _ => None,
    };
    let detail = serde_json::json!({
        "stream": stream.to_string(),
        "kind": original.as_ref().map(|n| n.data.kind_name()),
    });
    conn.prepare_cached(
        "INSERT INTO audit (tenant, at_us, event, notification_id, deadline_id, dossier, user_id, actor, detail)
         VALUES (?1, ?2, 'retracted', ?3, ?4, ?5, ?6, ?7, ?8)",
    )?
    .execute(params![
        tenant,
        to_us(at),
        request.notification_id,
        original.as_ref().and_then(|n| n.data.deadline_id()),
        original.as_ref().and_then(|n| n.data.dossier_number()),
        user,
        request.actor,
        detail.to_string(),
    ])?;
    Ok(())
}

/// The retractions of the last `since` in these streams, for a connecting client.
pub fn recent(
    conn: &Connection,
    streams: &[StreamName],
    since: DateTime<Utc>,
) -> Result<Vec<tocsin_protocol::frames::Retraction>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT r.notification_id, r.offset, r.at_us, s.epoch FROM retractions r
         JOIN streams s ON s.name = r.stream
         WHERE r.stream = ?1 AND r.at_us >= ?2 ORDER BY r.at_us",
    )?;
    let mut out = Vec::new();
    for stream in streams {
        let rows = statement.query_map(params![stream.to_string(), to_us(since)], |row| {
            Ok((
                row.get::<_, String>(0)?,
                row.get::<_, i64>(1)?,
                row.get::<_, i64>(2)?,
                row.get::<_, String>(3)?,
            ))
        })?;
        for row in rows {
            let (notification_id, offset, at_us, epoch) = row?;
            out.push(tocsin_protocol::frames::Retraction {
                notification_id,
                stream: stream.clone(),
                epoch,
                offset: offset as u64,
                at: from_us(at_us),
            });
        }
    }
    Ok(out)
}
