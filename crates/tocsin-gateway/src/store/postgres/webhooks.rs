//! Webhooks and calendar feeds on PostgreSQL.
//!
//! A webhook event is queued by [`enqueue`] inside the writer transaction that does
//! what it reports, so an event exists exactly when its cause committed; the webhook
//! task (`crate::webhooks`) delivers the queue and records each attempt here. A firm
//! without a webhook queues nothing.

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};

use super::accounts::user_where;
use crate::store::time::{from_us, to_us};
use crate::store::{StoreError, User, Webhook, WebhookAttempt, WebhookEvent};

/// Queues an event for the firm's webhook, if it has one.
pub async fn enqueue(
    conn: &mut PgConnection,
    tenant: &str,
    kind: &str,
    mut body: serde_json::Value,
) -> Result<(), StoreError> {
    // FOR KEY SHARE: a concurrent removal of the webhook (`set(None)` on another
    // connection) waits for this transaction, so the event is queued only for a
    // webhook that still exists when its cause commits, as on SQLite. (It does not
    // wait for a change of the webhook's url or secret.)
    let configured: Option<i32> =
        sqlx::query_scalar("SELECT 1 FROM webhooks WHERE tenant = $1 FOR KEY SHARE")
            .bind(tenant)
            .fetch_optional(&mut *conn)
            .await?;
    if configured.is_none() {
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
    sqlx::query(
        "INSERT INTO webhook_outbox (event_id, tenant, kind, body, next_us, created_us)
         VALUES ($1, $2, $3, $4, $5, $5)",
    )
    .bind(&event_id)
    .bind(tenant)
    .bind(kind)
    .bind(body.to_string())
    .bind(to_us(now))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Sets (or with `None` removes) a firm's webhook.
pub async fn set(
    conn: &mut PgConnection,
    tenant: &str,
    webhook: Option<&Webhook>,
) -> Result<(), StoreError> {
    match webhook {
        Some(webhook) => {
            // An upsert in one statement: two nodes setting it at once do not collide.
            sqlx::query(
                "INSERT INTO webhooks (tenant, url, secret, created_us) VALUES ($1, $2, $3, $4)
                 ON CONFLICT (tenant) DO UPDATE SET url = excluded.url, secret = excluded.secret",
            )
            .bind(tenant)
            .bind(&webhook.url)
            .bind(&webhook.secret)
            .bind(to_us(Utc::now()))
            .execute(&mut *conn)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM webhooks WHERE tenant = $1")
                .bind(tenant)
                .execute(&mut *conn)
                .await?;
        }
    }
    Ok(())
}

/// A firm's webhook.
pub async fn get(conn: &mut PgConnection, tenant: &str) -> Result<Option<Webhook>, StoreError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT url, secret FROM webhooks WHERE tenant = $1")
            .bind(tenant)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(url, secret)| Webhook { url, secret }))
}

/// A row of [`due`]'s query.
type EventRow = (i64, String, String, String, String, i64, String, String);

/// How long a claimed event is not due again for other nodes: well above a delivery
/// attempt's 10 s timeout (`crate::webhooks`).
const CLAIM_LEASE_US: i64 = 120 * 1_000_000;

/// Events due for an attempt, oldest first, with where to send them; claimed for this
/// node for [`CLAIM_LEASE_US`].
pub async fn due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<WebhookEvent>, StoreError> {
    // Claimed, not only read: several nodes run a deliverer each, and without a claim
    // two would POST the same event at the same moment. The claim is a lease — the
    // event is due again after CLAIM_LEASE if its node dies before recording the
    // attempt — and SKIP LOCKED lets two nodes claiming at once take different events.
    let mut rows: Vec<EventRow> = sqlx::query_as(
        "WITH claimed AS (
             SELECT o.id FROM webhook_outbox o JOIN webhooks w ON w.tenant = o.tenant
             WHERE o.delivered_us IS NULL AND o.next_us <= $1
             ORDER BY o.next_us, o.id LIMIT $2 FOR UPDATE OF o SKIP LOCKED)
         UPDATE webhook_outbox o SET next_us = $3 FROM claimed, webhooks w
         WHERE o.id = claimed.id AND w.tenant = o.tenant
         RETURNING o.id, o.event_id, o.tenant, o.kind, o.body, o.attempts, w.url, w.secret",
    )
    .bind(to_us(now))
    .bind(i64::from(limit))
    .bind(to_us(now) + CLAIM_LEASE_US)
    .fetch_all(&mut *conn)
    .await?;
    // Oldest first, as they were due (ids grow with time).
    rows.sort_by_key(|row| row.0);
    Ok(rows
        .into_iter()
        .map(
            |(id, event_id, tenant, kind, body, attempts, url, secret)| WebhookEvent {
                id,
                event_id,
                tenant,
                kind,
                body,
                attempts: u32::try_from(attempts.max(0)).unwrap_or(u32::MAX),
                url,
                secret,
            },
        )
        .collect())
}

/// When the next undelivered event is due (of firms that still have a webhook).
pub async fn next_at(conn: &mut PgConnection) -> Result<Option<DateTime<Utc>>, StoreError> {
    let next: Option<i64> = sqlx::query_scalar(
        "SELECT min(o.next_us) FROM webhook_outbox o JOIN webhooks w ON w.tenant = o.tenant
         WHERE o.delivered_us IS NULL",
    )
    .fetch_one(&mut *conn)
    .await?;
    Ok(next.map(from_us))
}

/// Records one delivery attempt.
pub async fn record(
    conn: &mut PgConnection,
    id: i64,
    attempt: &WebhookAttempt,
) -> Result<(), StoreError> {
    match attempt {
        WebhookAttempt::Delivered { at } => {
            sqlx::query(
                "UPDATE webhook_outbox SET delivered_us = $2, attempts = attempts + 1, last_error = NULL
                 WHERE id = $1",
            )
            .bind(id)
            .bind(to_us(*at))
            .execute(&mut *conn)
            .await?;
        }
        WebhookAttempt::Failed { retry_at, error } => {
            sqlx::query(
                "UPDATE webhook_outbox SET next_us = $2, attempts = attempts + 1, last_error = $3
                 WHERE id = $1",
            )
            .bind(id)
            .bind(to_us(*retry_at))
            .bind(error)
            .execute(&mut *conn)
            .await?;
        }
    }
    Ok(())
}

/// Undelivered events of a firm, or of all (for operators, metrics and tests).
pub async fn pending(conn: &mut PgConnection, tenant: Option<&str>) -> Result<u64, StoreError> {
    let n: i64 = sqlx::query_scalar(
        "SELECT count(*) FROM webhook_outbox
         WHERE delivered_us IS NULL AND ($1::TEXT IS NULL OR tenant = $1)",
    )
    .bind(tenant)
    .fetch_one(&mut *conn)
    .await?;
    Ok(n.max(0) as u64)
}

/// The user whose calendar feed has this secret digest.
pub async fn feed_user(
    conn: &mut PgConnection,
    secret_hash: &str,
) -> Result<Option<User>, StoreError> {
    let user_id: Option<String> =
        sqlx::query_scalar("SELECT user_id FROM calendar_feeds WHERE secret_hash = $1")
            .bind(secret_hash)
            .fetch_optional(&mut *conn)
            .await?;
    match user_id {
        Some(id) => user_where(conn, "id = $1", &id).await,
        None => Ok(None),
    }
}

/// Gives a user's calendar feed a new secret (the old URL stops working).
pub async fn set_feed(
    conn: &mut PgConnection,
    user_id: &str,
    secret_hash: &str,
) -> Result<(), StoreError> {
    // calendar_feeds has no foreign key to users; the user's row is share-locked by
    // hand (until this transaction ends) so that a concurrent erasure, which locks it
    // FOR UPDATE and then deletes the feed, either comes after this feed and deletes
    // it, or before it — not in between, leaving the erased user's feed behind. A
    // missing user is not refused, as on SQLite.
    let mut tx = conn.begin().await?;
    sqlx::query("SELECT 1 FROM users WHERE id = $1 FOR KEY SHARE")
        .bind(user_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO calendar_feeds (user_id, secret_hash, created_us) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET secret_hash = excluded.secret_hash,
             created_us = excluded.created_us",
    )
    .bind(user_id)
    .bind(secret_hash)
    .bind(to_us(Utc::now()))
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(())
}

/// Turns a user's calendar feed off; false if there was none.
pub async fn revoke_feed(conn: &mut PgConnection, user_id: &str) -> Result<bool, StoreError> {
    Ok(sqlx::query("DELETE FROM calendar_feeds WHERE user_id = $1")
        .bind(user_id)
        .execute(&mut *conn)
        .await?
        .rows_affected()
        > 0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::NewUser;
    use crate::store::postgres::accounts::{create_tenant, create_user};

    #[tokio::test]
    async fn events_queue_deliver_and_feeds_find_their_user() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        let mut conn = pool.acquire().await.expect("connection");
        create_tenant(&mut conn, "dupont", "Dupont")
            .await
            .expect("firm");
        enqueue(
            &mut conn,
            "dupont",
            "deadline.acknowledged",
            serde_json::json!({}),
        )
        .await
        .expect("queues nothing");
        assert_eq!(pending(&mut conn, None).await.expect("counts"), 0);
        let webhook = Webhook {
            url: "https://firm.example/hook".into(),
            secret: "s".into(),
        };
        set(&mut conn, "dupont", Some(&webhook))
            .await
            .expect("sets");
        set(&mut conn, "dupont", Some(&webhook))
            .await
            .expect("sets again");
        assert_eq!(
            get(&mut conn, "dupont").await.expect("reads"),
            Some(webhook)
        );
        enqueue(
            &mut conn,
            "dupont",
            "deadline.acknowledged",
            serde_json::json!({"x": 1}),
        )
        .await
        .expect("queues");
        assert_eq!(pending(&mut conn, Some("dupont")).await.expect("counts"), 1);
        assert_eq!(pending(&mut conn, Some("martin")).await.expect("counts"), 0);
        let due_now = due(&mut conn, Utc::now(), 10).await.expect("reads");
        assert_eq!(due_now.len(), 1);
        let event = &due_now[0];
        assert_eq!(
            (event.kind.as_str(), event.attempts),
            ("deadline.acknowledged", 0)
        );
        let body: serde_json::Value = serde_json::from_str(&event.body).expect("json");
        assert_eq!(body["id"], event.event_id.as_str());
        // Claimed: another node's deliverer does not take it now, but does once the
        // lease ran out (this node died before recording its attempt).
        assert!(
            due(&mut conn, Utc::now(), 10)
                .await
                .expect("reads")
                .is_empty()
        );
        let later = Utc::now() + chrono::Duration::microseconds(CLAIM_LEASE_US + 1_000_000);
        let again = due(&mut conn, later, 10).await.expect("reads");
        assert_eq!(again.iter().map(|e| e.id).collect::<Vec<_>>(), [event.id]);
        let retry_at = Utc::now() + chrono::Duration::minutes(5);
        record(
            &mut conn,
            event.id,
            &WebhookAttempt::Failed {
                retry_at,
                error: "503".into(),
            },
        )
        .await
        .expect("records");
        assert!(
            due(&mut conn, Utc::now(), 10)
                .await
                .expect("reads")
                .is_empty()
        );
        let next = next_at(&mut conn).await.expect("reads").expect("one due");
        assert_eq!(to_us(next), to_us(retry_at));
        record(
            &mut conn,
            event.id,
            &WebhookAttempt::Delivered { at: Utc::now() },
        )
        .await
        .expect("records");
        assert_eq!(pending(&mut conn, None).await.expect("counts"), 0);
        assert_eq!(next_at(&mut conn).await.expect("reads"), None);
        set(&mut conn, "dupont", None).await.expect("removes");
        assert_eq!(get(&mut conn, "dupont").await.expect("reads"), None);

        create_user(
            &mut conn,
            NewUser {
                id: "lea".into(),
                tenant: "dupont".into(),
                email: "lea@dupont.example".into(),
                name: "Léa".into(),
                role: "lawyer".into(),
                password_hash: None,
                external: false,
            },
        )
        .await
        .expect("user");
        set_feed(&mut conn, "lea", "f1").await.expect("feed");
        set_feed(&mut conn, "lea", "f2").await.expect("new secret");
        assert_eq!(feed_user(&mut conn, "f1").await.expect("reads"), None);
        let user = feed_user(&mut conn, "f2")
            .await
            .expect("reads")
            .expect("found");
        assert_eq!(user.id, "lea");
        assert!(revoke_feed(&mut conn, "lea").await.expect("revokes"));
        assert!(!revoke_feed(&mut conn, "lea").await.expect("none left"));
    }
}
