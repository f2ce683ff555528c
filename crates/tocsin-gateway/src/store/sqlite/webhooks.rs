//! Webhooks and calendar feeds in SQLite.
//!
//! A webhook event is queued by [`enqueue`] inside the writer transaction that does
//! what it reports, so an event exists exactly when its cause committed; the webhook
//! task (`crate::webhooks`) delivers the queue and records each attempt here. A firm
//! without a webhook queues nothing.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};

use super::accounts::user_where;
use super::time::{from_us, to_us};
use crate::store::{StoreError, User, Webhook, WebhookAttempt, WebhookEvent};

/// Queues an event for the firm's webhook, if it has one.
pub fn enqueue(
    conn: &Connection,
    tenant: &str,
    kind: &str,
    mut body: serde_json::Value,
) -> Result<(), StoreError> {
    let configured: bool = conn
        .prepare_cached("SELECT EXISTS (SELECT 1 FROM webhooks WHERE tenant = ?1)")?
        .query_row(params![tenant], |row| row.get(0))?;
    if !configured {
        return Ok(());
    }
    let event_id = uuid::Uuid::now_v7().to_string();
    let now = Utc::now();
    if let Some(object) = body.as_object_mut() {
        object.insert("id".into(), event_id.clone().into());
        object.insert("type".into(), kind.into());
        object.insert("tenant".into(), tenant.into());
        object.insert(
            "created_at".into(),
            serde_json::to_value(now).unwrap_or_default(),
        );
    }
    conn.prepare_cached(
        "INSERT INTO webhook_outbox (event_id, tenant, kind, body, next_us, created_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?5)",
    )?
    .execute(params![
        event_id,
        tenant,
        kind,
        body.to_string(),
        to_us(now)
    ])?;
    Ok(())
}

/// Sets (or with `None` removes) a firm's webhook.
pub fn set(conn: &Connection, tenant: &str, webhook: Option<&Webhook>) -> Result<(), StoreError> {
    match webhook {
        Some(webhook) => {
            conn.prepare_cached(
                "INSERT INTO webhooks (tenant, url, secret, created_us) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (tenant) DO UPDATE SET url = excluded.url, secret = excluded.secret",
            )?
            .execute(params![
                tenant,
                webhook.url,
                webhook.secret,
                to_us(Utc::now())
            ])?;
        }
        None => {
            conn.prepare_cached("DELETE FROM webhooks WHERE tenant = ?1")?
                .execute(params![tenant])?;
        }
    }
    Ok(())
}

/// A firm's webhook.
pub fn get(conn: &Connection, tenant: &str) -> Result<Option<Webhook>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT url, secret FROM webhooks WHERE tenant = ?1")?
        .query_row(params![tenant], |row| {
            Ok(Webhook {
                url: row.get(0)?,
                secret: row.get(1)?,
            })
        })
        .optional()?)
}

/// Events due for an attempt, oldest first, with where to send them.
pub fn due(
    conn: &Connection,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<WebhookEvent>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT o.id, o.event_id, o.tenant, o.kind, o.body, o.attempts, w.url, w.secret
             FROM webhook_outbox o JOIN webhooks w ON w.tenant = o.tenant
             WHERE o.delivered_us IS NULL AND o.next_us <= ?1 ORDER BY o.next_us, o.id LIMIT ?2",
        )?
        .query_map(params![to_us(now), limit], |row| {
            Ok(WebhookEvent {
                id: row.get(0)?,
                event_id: row.get(1)?,
                tenant: row.get(2)?,
                kind: row.get(3)?,
                body: row.get(4)?,
                attempts: row.get(5)?,
                url: row.get(6)?,
                secret: row.get(7)?,
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// When the next undelivered event is due (of firms that still have a webhook).
pub fn next_at(conn: &Connection) -> Result<Option<DateTime<Utc>>, StoreError> {
    let next: Option<i64> = conn
        .prepare_cached(
            "SELECT min(o.next_us) FROM webhook_outbox o JOIN webhooks w ON w.tenant = o.tenant
             WHERE o.delivered_us IS NULL",
        )?
        .query_row([], |row| row.get(0))?;
    Ok(next.map(from_us))
}

/// Records one delivery attempt.
pub fn record(conn: &Connection, id: i64, attempt: &WebhookAttempt) -> Result<(), StoreError> {
    match attempt {
        WebhookAttempt::Delivered { at } => {
            conn.prepare_cached(
                "UPDATE webhook_outbox SET delivered_us = ?2, attempts = attempts + 1, last_error = NULL WHERE id = ?1",
            )?
            .execute(params![id, to_us(*at)])?;
        }
        WebhookAttempt::Failed { retry_at, error } => {
            conn.prepare_cached(
                "UPDATE webhook_outbox SET next_us = ?2, attempts = attempts + 1, last_error = ?3 WHERE id = ?1",
            )?
            .execute(params![id, to_us(*retry_at), error])?;
        }
    }
    Ok(())
}

/// Undelivered events of a firm, or of all (for operators, metrics and tests).
pub fn pending(conn: &Connection, tenant: Option<&str>) -> Result<u64, StoreError> {
    let n: i64 = conn
        .prepare_cached(
            "SELECT count(*) FROM webhook_outbox WHERE delivered_us IS NULL AND (?1 IS NULL OR tenant = ?1)",
        )?
        .query_row(params![tenant], |row| row.get(0))?;
    Ok(n.max(0) as u64)
}

/// The user whose calendar feed has this secret digest.
pub fn feed_user(conn: &Connection, secret_hash: &str) -> Result<Option<User>, StoreError> {
    let user_id: Option<String> = conn
        .prepare_cached("SELECT user_id FROM calendar_feeds WHERE secret_hash = ?1")?
        .query_row(params![secret_hash], |row| row.get(0))
        .optional()?;
    match user_id {
        Some(id) => user_where(conn, "id = ?1", &id),
        None => Ok(None),
    }
}

/// Gives a user's calendar feed a new secret (the old URL stops working).
pub fn set_feed(conn: &Connection, user_id: &str, secret_hash: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO calendar_feeds (user_id, secret_hash, created_us) VALUES (?1, ?2, ?3)
         ON CONFLICT (user_id) DO UPDATE SET secret_hash = excluded.secret_hash, created_us = excluded.created_us",
    )?
    .execute(params![user_id, secret_hash, to_us(Utc::now())])?;
    Ok(())
}

/// Turns a user's calendar feed off; false if there was none.
pub fn revoke_feed(conn: &Connection, user_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("DELETE FROM calendar_feeds WHERE user_id = ?1")?
        .execute(params![user_id])?
        > 0)
}
