//! The schedule in PostgreSQL: steps the gateway takes by itself (a deadline's
//! reminders and escalations, publishes with `deliver_at`), and their firing.
//!
//! Exactly once, across every node: a step moves out of `planned` only in [`fire`],
//! by a conditional update (`… WHERE state = 'planned'`) in the same transaction that
//! stores the notifications it raises. That update locks the step's row: a second
//! node firing the same step waits for the first's commit, then finds it no longer
//! planned and leaves it alone (or, if the first rolled back, applies it itself). A
//! crash before the commit leaves it planned (it fires later); after the commit it is
//! `sent` with its notification ids, and never fires again.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::json;
use sqlx::{AssertSqlSafe, PgConnection};
use tocsin_protocol::deadline::StepState;
use tocsin_protocol::{Notification, StreamName};

use super::deadlines::{STEP_COLUMNS, insert_step, record, step_of};
use super::ops::append_one;
use crate::store::time::{from_us, to_us};
use crate::store::{
    AppendRequest, Appended, DueStep, Firing, IdempotencyKey, StepKind, StoreError,
    StoredNotification,
};

/// A scheduled publish as stored in `schedule.payload`.
#[derive(Serialize, Deserialize)]
struct Scheduled {
    stream: StreamName,
    tenant: Option<String>,
    notification: Notification,
    /// Who scheduled it (the audit trail's `published` names them).
    #[serde(default)]
    actor: String,
}

/// The notification id of the scheduled publish with this idempotency key, if any.
async fn scheduled_with_key(
    conn: &mut PgConnection,
    idem: &IdempotencyKey,
) -> Result<Option<String>, StoreError> {
    let known: Option<(String,)> = sqlx::query_as(
        "SELECT payload::jsonb -> 'notification' ->> 'id' FROM schedule
         WHERE idem_scope = $1 AND idem_key = $2",
    )
    .bind(&idem.scope)
    .bind(&idem.key)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(known.map(|(id,)| id))
}

/// Stores a publish for later (`deliver_at`). A retry with a known idempotency key
/// returns the first answer: the step, or — once it fired — the stored notification.
pub async fn schedule_publish(
    conn: &mut PgConnection,
    request: AppendRequest,
    at: DateTime<Utc>,
) -> Result<Appended, StoreError> {
    let duplicate = |id: String, request: AppendRequest| Appended {
        id,
        stream: request.stream,
        epoch: String::new(),
        offset: 0,
        duplicate: true,
        deliver_at: Some(at),
    };
    if let Some(idem) = &request.idempotency
        && let Some(id) = scheduled_with_key(conn, idem).await?
    {
        return Ok(duplicate(id, request));
    }
    let payload = serde_json::to_string(&Scheduled {
        stream: request.stream.clone(),
        tenant: request.tenant.clone(),
        notification: request.notification.clone(),
        actor: request.actor.clone(),
    })
    .map_err(|err| StoreError::Invalid(format!("notification cannot be encoded: {err}")))?;
    let (scope, key) = request
        .idempotency
        .as_ref()
        .map(|idem| (idem.scope.clone(), idem.key.clone()))
        .unzip();
    // Another node may schedule the same key between the check above and this insert:
    // the unique index `schedule_idempotency` makes this insert wait for its commit and
    // then insert nothing, and the request is answered like a known key.
    let inserted = sqlx::query(
        "INSERT INTO schedule (at_us, kind, state, tenant, payload, idem_scope, idem_key, created_us)
         VALUES ($1, 'publish', 'planned', $2, $3, $4, $5, $6)
         ON CONFLICT (idem_scope, idem_key) WHERE idem_key IS NOT NULL DO NOTHING",
    )
    .bind(to_us(at))
    .bind(&request.tenant)
    .bind(&payload)
    .bind(&scope)
    .bind(&key)
    .bind(to_us(Utc::now()))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if inserted == 0
        && let Some(idem) = &request.idempotency
    {
        let id = scheduled_with_key(conn, idem).await?.ok_or_else(|| {
            StoreError::Internal("a scheduled publish's idempotency key vanished".into())
        })?;
        return Ok(duplicate(id, request));
    }
    Ok(Appended {
        id: request.notification.id,
        stream: request.stream,
        epoch: String::new(),
        offset: 0,
        duplicate: false,
        deliver_at: Some(at),
    })
}

/// When the next planned step is due.
pub async fn next_at(conn: &mut PgConnection) -> Result<Option<DateTime<Utc>>, StoreError> {
    let (next,): (Option<i64>,) =
        sqlx::query_as("SELECT min(at_us) FROM schedule WHERE state = 'planned'")
            .fetch_one(&mut *conn)
            .await?;
    Ok(next.map(from_us))
}

/// Planned steps due at `now`, oldest first, with their deadline.
pub async fn due(
    conn: &mut PgConnection,
    now: DateTime<Utc>,
    limit: u32,
) -> Result<Vec<DueStep>, StoreError> {
    let sql = format!(
        "SELECT {STEP_COLUMNS} FROM schedule WHERE state = 'planned' AND at_us <= $1 ORDER BY at_us, id LIMIT $2"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(to_us(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *conn)
        .await?;
    let steps = rows.iter().map(step_of).collect::<Result<Vec<_>, _>>()?;
    let mut due = Vec::with_capacity(steps.len());
    for step in steps {
        let (deadline, acked, escalation) = match (&step.tenant, &step.deadline_id) {
            (Some(tenant), Some(id)) => {
                let deadline = record(conn, tenant, id).await?;
                let (acked,): (bool,) = sqlx::query_as(
                    "SELECT EXISTS (SELECT 1 FROM acknowledgements WHERE tenant = $1 AND deadline_id = $2)",
                )
                .bind(tenant)
                .bind(id)
                .fetch_one(&mut *conn)
                .await?;
                let (escalated,): (bool,) = sqlx::query_as(
                    "SELECT EXISTS (SELECT 1 FROM schedule WHERE tenant = $1 AND deadline_id = $2
                     AND kind = 'escalation' AND revision = $3 AND state IN ('planned', 'sent'))",
                )
                .bind(tenant)
                .bind(id)
                .bind(step.revision)
                .fetch_one(&mut *conn)
                .await?;
                (deadline, acked, escalated)
            }
            _ => (None, false, false),
        };
        due.push(DueStep {
            step,
            deadline,
            acknowledged: acked,
            escalated: escalation,
        });
    }
    Ok(due)
}

/// Applies one firing, if its step is still planned; returns whether it was.
///
/// The step is claimed first, by the conditional update that moves it out of
/// `planned` (see the module doc): only the transaction whose update changed the row
/// goes on to store notifications, so two nodes firing one step raise them once.
pub async fn fire(
    conn: &mut PgConnection,
    mut firing: Firing,
    fresh: &mut Vec<Arc<StoredNotification>>,
) -> Result<bool, StoreError> {
    let json = |list: &[String]| serde_json::to_string(list).unwrap_or_else(|_| "[]".into());
    let sql = format!(
        "UPDATE schedule SET state = $2, fired_us = $3, late = $4, recipients = $5
         WHERE id = $1 AND state = 'planned' RETURNING {STEP_COLUMNS}"
    );
    let claimed = sqlx::query(AssertSqlSafe(sql))
        .bind(firing.step_id)
        .bind(firing.outcome.as_str())
        .bind(to_us(Utc::now()))
        .bind(firing.late)
        .bind(json(&firing.recipients))
        .fetch_optional(&mut *conn)
        .await?;
    let Some(step) = claimed.as_ref().map(step_of).transpose()? else {
        // Cancelled or applied meanwhile (a re-plan, an acknowledgement, another node).
        return Ok(false);
    };
    let mut ids = Vec::new();
    if firing.outcome == StepState::Sent {
        let appends = match step.kind {
            StepKind::Publish => vec![scheduled_request(conn, &step).await?],
            _ => std::mem::take(&mut firing.appends),
        };
        for request in appends {
            ids.push(append_one(conn, request, fresh).await?.id);
        }
    }
    sqlx::query("UPDATE schedule SET notification_ids = $2 WHERE id = $1")
        .bind(step.id)
        .bind(json(&ids))
        .execute(&mut *conn)
        .await?;
    if let (Some(tenant), Some(id)) = (&step.tenant, &step.deadline_id) {
        for follow_up in &firing.follow_ups {
            insert_step(conn, tenant, id, step.revision, follow_up).await?;
        }
        if firing.outcome == StepState::Sent {
            report(conn, &step, tenant, id, &firing, &ids).await?;
        }
    }
    Ok(true)
}

/// Queues the webhook event of a sent reminder or escalation.
async fn report(
    conn: &mut PgConnection,
    step: &crate::store::ScheduleStep,
    tenant: &str,
    deadline_id: &str,
    firing: &Firing,
    ids: &[String],
) -> Result<(), StoreError> {
    let deadline = deadline_summary(conn, tenant, deadline_id).await?;
    let (kind, detail) = match step.kind {
        StepKind::Escalation => (
            "deadline.escalated",
            json!({ "escalation": {
                "step": step.step,
                "recipients": firing.recipients,
                "notification_ids": ids,
            }}),
        ),
        _ => (
            "deadline.reminded",
            json!({ "reminder": {
                "label": step.label,
                "urgency": step.urgency,
                "planned_at": step.at,
                "late": firing.late,
                "recipients": firing.recipients,
                "notification_ids": ids,
            }}),
        ),
    };
    let mut body = json!({ "deadline": deadline });
    if let (Some(body), Some(detail)) = (body.as_object_mut(), detail.as_object()) {
        body.extend(detail.clone());
    }
    super::webhooks::enqueue(conn, tenant, kind, body).await
}

/// What a webhook event says about its deadline.
pub(super) async fn deadline_summary(
    conn: &mut PgConnection,
    tenant: &str,
    deadline_id: &str,
) -> Result<serde_json::Value, StoreError> {
    Ok(match record(conn, tenant, deadline_id).await? {
        Some(d) => json!({
            "id": d.external_id,
            "deadline_type": d.deadline_type,
            "due_at": d.due_at,
            "owner": d.owner,
            "backup": d.backup,
            "dossier_number": d.dossier_number,
            "status": d.status,
        }),
        None => json!({ "id": deadline_id }),
    })
}

/// The notification a scheduled publish stores, created now.
async fn scheduled_request(
    conn: &mut PgConnection,
    step: &crate::store::ScheduleStep,
) -> Result<AppendRequest, StoreError> {
    let payload = step.payload.as_deref().ok_or_else(|| {
        StoreError::Internal(format!("scheduled publish {} has no payload", step.id))
    })?;
    let Scheduled {
        stream,
        tenant,
        mut notification,
        actor,
    } = serde_json::from_str(payload).map_err(|err| {
        StoreError::Internal(format!("scheduled publish {} is corrupt: {err}", step.id))
    })?;
    notification.created_at = Utc::now();
    let idempotency: Option<(String, String)> = sqlx::query_as(
        "SELECT idem_scope, idem_key FROM schedule WHERE id = $1 AND idem_key IS NOT NULL",
    )
    .bind(step.id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(AppendRequest {
        stream,
        tenant,
        notification,
        idempotency: idempotency.map(|(scope, key)| IdempotencyKey { scope, key }),
        deliver_at: None,
        actor,
    })
}

#[cfg(test)]
mod tests {
    //! What differs from SQLite's single writer: two nodes firing one step, and two
    //! scheduling one idempotency key, at the same time.

    use std::time::Duration;

    use sqlx::PgPool;
    use tocsin_protocol::notification::EmailReceived;
    use tocsin_protocol::{NotificationData, Urgency};

    use super::*;

    fn request(title: &str, key: Option<&str>) -> AppendRequest {
        AppendRequest {
            stream: StreamName::User("marie".into()),
            tenant: Some("dupont".into()),
            notification: Notification {
                url: None,
                id: uuid::Uuid::now_v7().to_string(),
                data: NotificationData::EmailReceived(EmailReceived {
                    extra: Default::default(),
                    subject: title.into(),
                    from: "Me Martin".into(),
                    dossier_number: Some("2026-0142".into()),
                    message_id: None,
                    has_attachments: false,
                }),
                created_at: Utc::now(),
                urgency: Urgency::Normal,
                title: title.into(),
                body: String::new(),
            },
            idempotency: key.map(|key| IdempotencyKey {
                scope: "k1".into(),
                key: key.into(),
            }),
            deliver_at: None,
            actor: "key:k1".into(),
        }
    }

    /// A due reminder of a deadline, with a follow-up that firing it plans.
    fn send(step_id: i64) -> Firing {
        Firing {
            step_id,
            outcome: StepState::Sent,
            late: false,
            appends: vec![request("reminder", None)],
            recipients: vec!["marie".into()],
            follow_ups: vec![crate::store::NewStep {
                at: Utc::now() + chrono::Duration::hours(1),
                kind: StepKind::Escalation,
                step: 1,
                label: None,
                urgency: None,
                state: StepState::Planned,
            }],
        }
    }

    /// Fires in its own transaction on its own pool connection, in a task; commits.
    fn fire_in_task(
        pool: &PgPool,
        firing: Firing,
    ) -> tokio::task::JoinHandle<Result<bool, StoreError>> {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut tx = pool.begin().await?;
            let mut fresh = Vec::new();
            let fired = fire(&mut tx, firing, &mut fresh).await?;
            tx.commit().await?;
            Ok(fired)
        })
    }

    async fn count(pool: &PgPool, sql: &'static str) -> i64 {
        let (n,): (i64,) = sqlx::query_as(sql).fetch_one(pool).await.expect("counts");
        n
    }

    /// Two nodes fire the same due step: the second waits for the first's commit,
    /// finds the step sent and stores nothing; the reminder is raised once.
    #[tokio::test]
    async fn a_step_fired_by_two_nodes_at_once_is_applied_once() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        let mut conn = pool.acquire().await.expect("connects");
        insert_step(
            &mut conn,
            "dupont",
            "appel-1",
            1,
            &crate::store::NewStep {
                at: Utc::now() - chrono::Duration::seconds(1),
                kind: StepKind::Reminder,
                step: 0,
                label: Some("J-3".into()),
                urgency: None,
                state: StepState::Planned,
            },
        )
        .await
        .expect("planned");
        let due = due(&mut conn, Utc::now(), 10).await.expect("due");
        assert_eq!(due.len(), 1);
        let step_id = due[0].step.id;
        drop(conn);

        let mut first = pool.begin().await.expect("begins");
        let mut fresh = Vec::new();
        assert!(
            fire(&mut first, send(step_id), &mut fresh)
                .await
                .expect("fires")
        );
        assert_eq!(fresh.len(), 1);
        let second = fire_in_task(&pool, send(step_id));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !second.is_finished(),
            "the second waits for the first's claim"
        );
        first.commit().await.expect("commits");
        assert!(
            !second.await.expect("joins").expect("runs"),
            "applied twice"
        );

        assert_eq!(count(&pool, "SELECT count(*) FROM notifications").await, 1);
        assert_eq!(
            count(
                &pool,
                "SELECT count(*) FROM schedule WHERE kind = 'escalation'"
            )
            .await,
            1,
            "one follow-up"
        );
        let mut conn = pool.acquire().await.expect("connects");
        assert!(next_at(&mut conn).await.expect("reads").is_some());
        let (state, ids): (String, String) =
            sqlx::query_as("SELECT state, notification_ids FROM schedule WHERE id = $1")
                .bind(step_id)
                .fetch_one(&mut *conn)
                .await
                .expect("reads");
        assert_eq!(state, "sent");
        assert_eq!(ids, serde_json::to_string(&[&fresh[0].id]).expect("json"));
    }

    /// Both nodes fire at once with no head start; still once.
    #[tokio::test]
    async fn a_step_raced_from_two_connections_fires_once() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        let mut conn = pool.acquire().await.expect("connects");
        let at = Utc::now() - chrono::Duration::seconds(1);
        let (step_id,): (i64,) = sqlx::query_as(
            "INSERT INTO schedule (at_us, kind, state, tenant, deadline_id, revision, created_us)
             VALUES ($1, 'reminder', 'planned', 'dupont', 'appel-1', 1, $1) RETURNING id",
        )
        .bind(to_us(at))
        .fetch_one(&mut *conn)
        .await
        .expect("planned");
        drop(conn);
        let (a, b) = tokio::join!(
            fire_in_task(&pool, send(step_id)),
            fire_in_task(&pool, send(step_id))
        );
        let fired = [
            a.expect("joins").expect("runs"),
            b.expect("joins").expect("runs"),
        ];
        assert_eq!(fired.iter().filter(|f| **f).count(), 1, "{fired:?}");
        assert_eq!(count(&pool, "SELECT count(*) FROM notifications").await, 1);
    }

    /// Two nodes schedule a publish with one idempotency key at once: the second is
    /// answered like a known key (the first's notification id), not with an error.
    #[tokio::test]
    async fn a_key_scheduled_twice_at_once_is_stored_once() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        let at = Utc::now() + chrono::Duration::hours(1);
        let mut first = pool.begin().await.expect("begins");
        let original = request("later", Some("same"));
        let first_id = original.notification.id.clone();
        let stored = schedule_publish(&mut first, original, at)
            .await
            .expect("scheduled");
        assert!(!stored.duplicate);
        let second = {
            let pool = pool.clone();
            tokio::spawn(async move {
                let mut tx = pool.begin().await?;
                let answer = schedule_publish(&mut tx, request("later", Some("same")), at).await?;
                tx.commit().await?;
                Ok::<_, StoreError>(answer)
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        first.commit().await.expect("commits");
        let answer = second.await.expect("joins").expect("answered");
        assert!(answer.duplicate);
        assert_eq!(answer.id, first_id);
        assert_eq!(answer.deliver_at, Some(at));
        assert_eq!(count(&pool, "SELECT count(*) FROM schedule").await, 1);
    }
}
