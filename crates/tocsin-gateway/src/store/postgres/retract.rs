//! Retracting a misdirected notification (`DELETE /v1/notifications/{id}`), in one
//! transaction (or savepoint) of its own.
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
//!
//! Concurrency (several nodes): the row retracted — the notification, or the planned
//! schedule step — is locked `FOR UPDATE` before it is checked, so two retractions
//! of one id at once make one retraction; the second waits for the first to commit,
//! then finds the `retractions` row and answers `already`, like a repeated call.

use chrono::{DateTime, Utc};
use sqlx::PgConnection;
use tocsin_protocol::notification::{SystemLevel, SystemNotification};
use tocsin_protocol::{Notification, NotificationData, StreamName, Urgency};

use crate::store::time::{from_us, to_us};
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
pub async fn retract(
    conn: &mut PgConnection,
    request: &RetractRequest,
) -> Result<Retracted, StoreError> {
    if let Some(done) = earlier(conn, request).await? {
        return Ok(done);
    }
    if let Some(done) = retract_stored(conn, request).await? {
        return Ok(done);
    }
    if let Some(done) = withdraw_scheduled(conn, request).await? {
        return Ok(done);
    }
    // Missed both only when another transaction changed things under us: a
    // concurrent withdrawal of the same scheduled publish (we waited on its lock,
    // then found the step no longer planned), or the scheduler storing it between
    // our two looks. Each later statement sees what committed meanwhile.
    if let Some(done) = earlier(conn, request).await? {
        return Ok(done);
    }
    if let Some(done) = retract_stored(conn, request).await? {
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
async fn firm_of(
    conn: &mut PgConnection,
    stream: &StreamName,
) -> Result<Option<String>, StoreError> {
    Ok(match stream {
        StreamName::Tenant(slug) => Some(slug.clone()),
        StreamName::Conversation(key) => key.split_once(':').map(|(firm, _)| firm.to_owned()),
        StreamName::User(id) => {
            sqlx::query_scalar("SELECT tenant FROM users WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?
        }
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
async fn earlier(
    conn: &mut PgConnection,
    request: &RetractRequest,
) -> Result<Option<Retracted>, StoreError> {
    type Row = (
        Option<String>,
        Option<String>,
        Option<i64>,
        i64,
        Option<String>,
    );
    let row: Option<Row> = sqlx::query_as(
        "SELECT r.tenant, r.stream, r.stream_offset, r.at_us, s.epoch FROM retractions r
         LEFT JOIN streams s ON s.name = r.stream WHERE r.notification_id = $1",
    )
    .bind(&request.notification_id)
    .fetch_optional(&mut *conn)
    .await?;
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
async fn retract_stored(
    conn: &mut PgConnection,
    request: &RetractRequest,
) -> Result<Option<Retracted>, StoreError> {
    // FOR UPDATE OF n: a concurrent retraction of the same id waits here until we
    // commit, then sees `retracted_us` set and answers from our `retractions` row.
    type Row = (String, i64, i64, String, String, Option<i64>);
    let row: Option<Row> = sqlx::query_as(
        "SELECT n.stream, n.stream_offset, n.created_us, n.payload, s.epoch, n.retracted_us
         FROM notifications n JOIN streams s ON s.name = n.stream WHERE n.id = $1
         FOR UPDATE OF n",
    )
    .bind(&request.notification_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((stream_name, offset, created_us, payload, epoch, retracted_us)) = row else {
        return Ok(None);
    };
    if retracted_us.is_some()
        && let Some(done) = earlier(conn, request).await?
    {
        return Ok(Some(done));
    }
    let stream = parse_stream(&stream_name)?;
    let firm = firm_of(conn, &stream).await?;
    let publisher: Option<String> = sqlx::query_scalar::<_, Option<String>>(
        "SELECT actor FROM audit WHERE notification_id = $1 AND event = 'published' LIMIT 1",
    )
    .bind(&request.notification_id)
    .fetch_optional(&mut *conn)
    .await?
    .flatten();
    check_allowed(request, firm.as_deref(), publisher.as_deref())?;
    // At the stored precision, so a repeated call answers exactly the same time.
    let now = from_us(to_us(Utc::now()));
    let tombstone =
        serde_json::to_string(&tombstone(&request.notification_id, from_us(created_us)))
            .map_err(|err| StoreError::Internal(err.to_string()))?;
    sqlx::query(
        "UPDATE notifications SET payload = $2, kind = 'system-notification', retracted_us = $3 WHERE id = $1",
    )
    .bind(&request.notification_id)
    .bind(&tombstone)
    .bind(to_us(now))
    .execute(&mut *conn)
    .await?;
    record(
        conn,
        request,
        firm.as_deref(),
        Some((&stream_name, offset)),
        now,
    )
    .await?;
    audit(conn, request, firm.as_deref(), &stream, &payload, now).await?;
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
async fn withdraw_scheduled(
    conn: &mut PgConnection,
    request: &RetractRequest,
) -> Result<Option<Retracted>, StoreError> {
    // FOR UPDATE with `state = 'planned'`: a concurrent withdrawal (or the scheduler
    // firing it) makes us wait, then the step is re-checked and no longer matches.
    // The kind test is inside CASE so that only publish payloads are parsed as JSON.
    let row: Option<(i64, Option<String>, Option<String>)> = sqlx::query_as(
        "SELECT id, tenant, payload::jsonb ->> 'actor' FROM schedule
         WHERE state = 'planned'
         AND CASE WHEN kind = 'publish'
             THEN payload::jsonb -> 'notification' ->> 'id' = $1 ELSE FALSE END
         LIMIT 1 FOR UPDATE",
    )
    .bind(&request.notification_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((step, firm, publisher)) = row else {
        return Ok(None);
    };
    check_allowed(request, firm.as_deref(), publisher.as_deref())?;
    // At the stored precision, so a repeated call answers exactly the same time.
    let now = from_us(to_us(Utc::now()));
    sqlx::query("UPDATE schedule SET state = 'cancelled' WHERE id = $1")
        .bind(step)
        .execute(&mut *conn)
        .await?;
    record(conn, request, firm.as_deref(), None, now).await?;
    if let Some(tenant) = &firm {
        sqlx::query(
            "INSERT INTO audit (tenant, at_us, event, notification_id, actor, detail)
             VALUES ($1, $2, 'retracted', $3, $4, '{\"scheduled\":true}')",
        )
        .bind(tenant)
        .bind(to_us(now))
        .bind(&request.notification_id)
        .bind(&request.actor)
        .execute(&mut *conn)
        .await?;
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

async fn record(
    conn: &mut PgConnection,
    request: &RetractRequest,
    firm: Option<&str>,
    slot: Option<(&str, i64)>,
    at: DateTime<Utc>,
) -> Result<(), StoreError> {
    let (stream, offset) = slot.unzip();
    sqlx::query(
        "INSERT INTO retractions (notification_id, tenant, stream, stream_offset, at_us, actor)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&request.notification_id)
    .bind(firm)
    .bind(stream)
    .bind(offset)
    .bind(to_us(at))
    .bind(&request.actor)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The `retracted` audit record, with the dossier and deadline the notification named
/// (so the firm finds it where it found the `published` one).
async fn audit(
    conn: &mut PgConnection,
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
    sqlx::query(
        "INSERT INTO audit (tenant, at_us, event, notification_id, deadline_id, dossier, user_id, actor, detail)
         VALUES ($1, $2, 'retracted', $3, $4, $5, $6, $7, $8)",
    )
    .bind(tenant)
    .bind(to_us(at))
    .bind(&request.notification_id)
    .bind(original.as_ref().and_then(|n| n.data.deadline_id()))
    .bind(original.as_ref().and_then(|n| n.data.dossier_number()))
    .bind(user)
    .bind(&request.actor)
    .bind(detail.to_string())
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The retractions of the last `since` in these streams, for a connecting client.
pub async fn recent(
    conn: &mut PgConnection,
    streams: &[StreamName],
    since: DateTime<Utc>,
) -> Result<Vec<tocsin_protocol::frames::Retraction>, StoreError> {
    let mut out = Vec::new();
    for stream in streams {
        let rows: Vec<(String, i64, i64, String)> = sqlx::query_as(
            "SELECT r.notification_id, r.stream_offset, r.at_us, s.epoch FROM retractions r
             JOIN streams s ON s.name = r.stream
             WHERE r.stream = $1 AND r.at_us >= $2 ORDER BY r.at_us",
        )
        .bind(stream.to_string())
        .bind(to_us(since))
        .fetch_all(&mut *conn)
        .await?;
        for (notification_id, offset, at_us, epoch) in rows {
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

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::PgPool;

    use super::*;
    use crate::store::AppendRequest;

    async fn publish(pool: &PgPool, id: &str) {
        let mut conn = pool.acquire().await.expect("connection");
        super::super::ops::append_one(
            &mut conn,
            AppendRequest {
                stream: StreamName::Tenant("acme".into()),
                tenant: Some("acme".into()),
                notification: tombstone(id, Utc::now()),
                idempotency: None,
                deliver_at: None,
                actor: "key:k1".into(),
            },
            &mut Vec::new(),
        )
        .await
        .expect("published");
    }

    fn request(id: &str) -> RetractRequest {
        RetractRequest {
            notification_id: id.to_owned(),
            tenant: Some("acme".into()),
            admin: true,
            actor: "key:admin".into(),
        }
    }

    fn spawn_retract(pool: &PgPool, id: &str) -> tokio::task::JoinHandle<Retracted> {
        let (pool, request) = (pool.clone(), request(id));
        tokio::spawn(async move {
            let mut tx = pool.begin().await.expect("begin");
            let done = retract(&mut tx, &request).await.expect("retracted");
            tx.commit().await.expect("commit");
            done
        })
    }

    async fn count(pool: &PgPool, sql: &'static str) -> i64 {
        sqlx::query_scalar(sql)
            .fetch_one(pool)
            .await
            .expect("count")
    }

    #[tokio::test]
    async fn a_retraction_racing_an_uncommitted_one_answers_already() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        publish(&pool, "n1").await;
        let mut first = pool.begin().await.expect("begin");
        let done = retract(&mut first, &request("n1"))
            .await
            .expect("retracted");
        assert!(!done.already);
        let second = spawn_retract(&pool, "n1");
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "the second retraction did not wait");
        first.commit().await.expect("commit");
        let again = second.await.expect("task");
        assert!(again.already);
        assert_eq!(
            (again.at, again.offset, &again.epoch, &again.stream),
            (done.at, done.offset, &done.epoch, &done.stream)
        );
        assert_eq!(count(&pool, "SELECT COUNT(*) FROM retractions").await, 1);
        assert_eq!(
            count(
                &pool,
                "SELECT COUNT(*) FROM audit WHERE event = 'retracted'"
            )
            .await,
            1
        );
    }

    #[tokio::test]
    async fn two_concurrent_retractions_make_one() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        publish(&pool, "n2").await;
        let (a, b) = (spawn_retract(&pool, "n2"), spawn_retract(&pool, "n2"));
        let (a, b) = (a.await.expect("task"), b.await.expect("task"));
        assert!(a.already != b.already, "{a:?} / {b:?}");
        assert_eq!(a.at, b.at);
        assert_eq!(count(&pool, "SELECT COUNT(*) FROM retractions").await, 1);
        let kind: String = sqlx::query_scalar("SELECT kind FROM notifications WHERE id = 'n2'")
            .fetch_one(&pool)
            .await
            .expect("kind");
        assert_eq!(kind, "system-notification");
    }

    #[tokio::test]
    async fn a_scheduled_publish_withdrawn_twice_at_once_is_withdrawn_once() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        let payload = serde_json::json!({
            "actor": "key:k1",
            "notification": { "id": "n3" },
        });
        sqlx::query(
            "INSERT INTO schedule (at_us, kind, state, tenant, payload, created_us)
             VALUES (0, 'publish', 'planned', 'acme', $1, 0)",
        )
        .bind(payload.to_string())
        .execute(&pool)
        .await
        .expect("scheduled");
        let (a, b) = (spawn_retract(&pool, "n3"), spawn_retract(&pool, "n3"));
        let (a, b) = (a.await.expect("task"), b.await.expect("task"));
        assert!(a.already != b.already, "{a:?} / {b:?}");
        assert!(a.stream.is_none() && b.stream.is_none());
        assert_eq!(count(&pool, "SELECT COUNT(*) FROM retractions").await, 1);
        assert_eq!(
            count(
                &pool,
                "SELECT COUNT(*) FROM schedule WHERE state = 'cancelled'"
            )
            .await,
            1
        );
    }
}
