//! The schedule in SQLite: steps the gateway takes by itself (a deadline's reminders
//! and escalations, publishes with `deliver_at`), and their firing.
//!
//! Exactly once: a step moves out of `planned` only in [`fire`], by a conditional
//! update in the same writer transaction that stores the notifications it raises. A
//! SIGKILL before the commit leaves it planned (it fires on the next start); after
//! the commit it is `sent` with its notification ids, and never fires again.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, params};
use serde::{Deserialize, Serialize};
use serde_json::json;
use tocsin_protocol::deadline::StepState;
use tocsin_protocol::{Notification, StreamName};

use super::deadlines::{STEP_COLUMNS, insert_step, record, step_of};
use super::ops::append_one;
use super::time::{from_us, to_us};
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

/// Stores a publish for later (`deliver_at`). A retry with a known idempotency key
/// returns the first answer: the step, or — once it fired — the stored notification.
pub fn schedule_publish(
    conn: &Connection,
    request: AppendRequest,
    at: DateTime<Utc>,
) -> Result<Appended, StoreError> {
    if let Some(idem) = &request.idempotency {
        let known: Option<(String,)> = conn
            .prepare_cached(
                "SELECT json_extract(payload, '$.notification.id') FROM schedule
                 WHERE idem_scope = ?1 AND idem_key = ?2",
            )?
            .query_row(params![idem.scope, idem.key], |row| Ok((row.get(0)?,)))
            .optional()?;
        if let Some((id,)) = known {
            return Ok(Appended {
                id,
                stream: request.stream,
                epoch: String::new(),
                offset: 0,
                duplicate: true,
                deliver_at: Some(at),
            });
        }
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
    conn.prepare_cached(
        "INSERT INTO schedule (at_us, kind, state, tenant, payload, idem_scope, idem_key, created_us)
         VALUES (?1, 'publish', 'planned', ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![to_us(at), request.tenant, payload, scope, key, to_us(Utc::now())])?;
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
pub fn next_at(conn: &Connection) -> Result<Option<DateTime<Utc>>, StoreError> {
    let next: Option<i64> = conn
        .prepare_cached("SELECT min(at_us) FROM schedule WHERE state = 'planned'")?
        .query_row([], |row| row.get(0))?;
    Ok(next.map(from_us))
}

/// Planned steps due at `now`, oldest first, with their deadline.
pub fn due(conn: &Connection, now: DateTime<Utc>, limit: u32) -> Result<Vec<DueStep>, StoreError> {
    let sql = format!(
        "SELECT {STEP_COLUMNS} FROM schedule WHERE state = 'planned' AND at_us <= ?1 ORDER BY at_us, id LIMIT ?2"
    );
    let steps: Vec<_> = conn
        .prepare_cached(&sql)?
        .query_map(params![to_us(now), limit], step_of)?
        .collect::<Result<_, _>>()?;
    let mut acknowledged = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM acknowledgements WHERE tenant = ?1 AND deadline_id = ?2)",
    )?;
    let mut escalated = conn.prepare_cached(
        "SELECT EXISTS (SELECT 1 FROM schedule WHERE tenant = ?1 AND deadline_id = ?2
         AND kind = 'escalation' AND revision = ?3 AND state IN ('planned', 'sent'))",
    )?;
    let mut due = Vec::with_capacity(steps.len());
    for step in steps {
        let (deadline, acked, escalation) = match (&step.tenant, &step.deadline_id) {
            (Some(tenant), Some(id)) => (
                record(conn, tenant, id)?,
                acknowledged.query_row(params![tenant, id], |row| row.get(0))?,
                escalated.query_row(params![tenant, id, step.revision], |row| row.get(0))?,
            ),
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
pub fn fire(
    conn: &Connection,
    mut firing: Firing,
    fresh: &mut Vec<Arc<StoredNotification>>,
) -> Result<bool, StoreError> {
    let sql = format!("SELECT {STEP_COLUMNS} FROM schedule WHERE id = ?1 AND state = 'planned'");
    let Some(step) = conn
        .prepare_cached(&sql)?
        .query_row(params![firing.step_id], step_of)
        .optional()?
    else {
        // Cancelled or applied meanwhile (a re-plan, an acknowledgement, another node).
        return Ok(false);
    };
    let mut ids = Vec::new();
    if firing.outcome == StepState::Sent {
        let appends = match step.kind {
            StepKind::Publish => vec![scheduled_request(conn, &step)?],
            _ => std::mem::take(&mut firing.appends),
        };
        for request in appends {
            ids.push(append_one(conn, request, fresh)?.id);
        }
    }
    let json = |list: &[String]| serde_json::to_string(list).unwrap_or_else(|_| "[]".into());
    conn.prepare_cached(
        "UPDATE schedule SET state = ?2, fired_us = ?3, late = ?4, recipients = ?5, notification_ids = ?6
         WHERE id = ?1",
    )?
    .execute(params![
        step.id,
        firing.outcome.as_str(),
        to_us(Utc::now()),
        firing.late,
        json(&firing.recipients),
        json(&ids),
    ])?;
    if let (Some(tenant), Some(id)) = (&step.tenant, &step.deadline_id) {
        for follow_up in &firing.follow_ups {
            insert_step(conn, tenant, id, step.revision, follow_up)?;
        }
        if firing.outcome == StepState::Sent {
            report(conn, &step, tenant, id, &firing, &ids)?;
        }
    }
    Ok(true)
}

/// Queues the webhook event of a sent reminder or escalation.
fn report(
    conn: &Connection,
    step: &crate::store::ScheduleStep,
    tenant: &str,
    deadline_id: &str,
    firing: &Firing,
    ids: &[String],
) -> Result<(), StoreError> {
    let deadline = deadline_summary(conn, tenant, deadline_id)?;
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
    super::webhooks::enqueue(conn, tenant, kind, body)
}

/// What a webhook event says about its deadline.
pub(super) fn deadline_summary(
    conn: &Connection,
    tenant: &str,
    deadline_id: &str,
) -> Result<serde_json::Value, StoreError> {
    Ok(match record(conn, tenant, deadline_id)? {
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
fn scheduled_request(
    conn: &Connection,
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
    let idempotency: Option<(String, String)> = conn
        .prepare_cached(
            "SELECT idem_scope, idem_key FROM schedule WHERE id = ?1 AND idem_key IS NOT NULL",
        )?
        .query_row(params![step.id], |row| Ok((row.get(0)?, row.get(1)?)))
        .optional()?;
    Ok(AppendRequest {
        stream,
        tenant,
        notification,
        idempotency: idempotency.map(|(scope, key)| IdempotencyKey { scope, key }),
        deliver_at: None,
        actor,
    })
}
