//! Deadlines, their firm settings and acknowledgements in PostgreSQL. Reads run on
//! pooled connections; changes run inside a transaction (the writer's for
//! acknowledgements, their own for declarations), so a re-plan and the reminders it
//! cancels commit together.
//!
//! Several nodes change deadlines at once, unlike SQLite's single writer: what a
//! change decides from a row it read is protected by a lock on that row (an upsert's
//! revision check) or by a conditional write (an acknowledgement's primary key).

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use serde_json::json;
use sqlx::postgres::PgRow;
use sqlx::{AssertSqlSafe, PgConnection, Row};
use tocsin_protocol::deadline::{Acknowledgement, DeadlineStatus, StepState};
use tocsin_protocol::notification::DeadlineUrgency;
use tocsin_protocol::{ErrorBody, ErrorCode, NotificationData};

use crate::store::time::{from_us, to_us};
use crate::store::{
    DeadlineFilter, DeadlineRecord, DeadlineState, DeadlineUpsert, NewStep, ReadEffect,
    ScheduleStep, StepKind, StoreError,
};

/// A firm's deadline settings (JSON), if it set any.
pub async fn settings(conn: &mut PgConnection, tenant: &str) -> Result<Option<String>, StoreError> {
    let row: Option<(String,)> =
        sqlx::query_as("SELECT settings FROM deadline_settings WHERE tenant = $1")
            .bind(tenant)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(settings,)| settings))
}

/// Replaces a firm's deadline settings.
pub async fn set_settings(
    conn: &mut PgConnection,
    tenant: &str,
    settings: &str,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO deadline_settings (tenant, settings) VALUES ($1, $2)
         ON CONFLICT (tenant) DO UPDATE SET settings = excluded.settings",
    )
    .bind(tenant)
    .bind(settings)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

// The dynamic SQL of this module and `schedule.rs` (`AssertSqlSafe`) is made of these
// constants only; every value is a bound parameter.
const RECORD_COLUMNS: &str = "tenant, external_id, deadline_type, due_at, time_zone, owner, backup,
    dossier_number, dossier_title, url, policy, escalation, status, revision, created_us, updated_us";

fn record_of(row: &PgRow) -> Result<DeadlineRecord, sqlx::Error> {
    let due_at: String = row.try_get("due_at")?;
    let status: String = row.try_get("status")?;
    Ok(DeadlineRecord {
        tenant: row.try_get("tenant")?,
        external_id: row.try_get("external_id")?,
        deadline_type: row.try_get("deadline_type")?,
        due_at: DateTime::parse_from_rfc3339(&due_at).unwrap_or_default(),
        time_zone: row.try_get("time_zone")?,
        owner: row.try_get("owner")?,
        backup: row.try_get("backup")?,
        dossier_number: row.try_get("dossier_number")?,
        dossier_title: row.try_get("dossier_title")?,
        url: row.try_get("url")?,
        policy: row.try_get("policy")?,
        escalation: row.try_get("escalation")?,
        status: DeadlineStatus::parse(&status).unwrap_or(DeadlineStatus::Open),
        revision: row.try_get("revision")?,
        created_at: from_us(row.try_get("created_us")?),
        updated_at: from_us(row.try_get("updated_us")?),
    })
}

/// A deadline's declaration.
pub async fn record(
    conn: &mut PgConnection,
    tenant: &str,
    id: &str,
) -> Result<Option<DeadlineRecord>, StoreError> {
    let sql =
        format!("SELECT {RECORD_COLUMNS} FROM deadlines WHERE tenant = $1 AND external_id = $2");
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(record_of).transpose()?)
}

/// A deadline's declaration, its row locked until the transaction ends: the upsert
/// that checks its revision must not let another node's upsert in between.
async fn record_for_update(
    conn: &mut PgConnection,
    tenant: &str,
    id: &str,
) -> Result<Option<DeadlineRecord>, StoreError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM deadlines WHERE tenant = $1 AND external_id = $2 FOR UPDATE"
    );
    let row = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant)
        .bind(id)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.as_ref().map(record_of).transpose()?)
}

/// A deadline with its schedule and acknowledgements.
pub async fn load(
    conn: &mut PgConnection,
    tenant: &str,
    id: &str,
) -> Result<Option<DeadlineState>, StoreError> {
    let Some(record) = record(conn, tenant, id).await? else {
        return Ok(None);
    };
    state_of(conn, record).await.map(Some)
}

async fn state_of(
    conn: &mut PgConnection,
    record: DeadlineRecord,
) -> Result<DeadlineState, StoreError> {
    let steps = steps_of(conn, &record.tenant, &record.external_id).await?;
    let acknowledgements = acknowledgements(conn, &record.tenant, &record.external_id).await?;
    Ok(DeadlineState {
        record,
        steps,
        acknowledgements,
    })
}

/// Deadlines matching the filter, soonest due first.
pub async fn list(
    conn: &mut PgConnection,
    filter: &DeadlineFilter,
) -> Result<Vec<DeadlineState>, StoreError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM deadlines WHERE tenant = $1
         AND ($2::TEXT IS NULL OR owner = $2) AND ($3::TEXT IS NULL OR dossier_number = $3)
         AND ($4::BIGINT IS NULL OR due_us >= $4) AND ($5::BIGINT IS NULL OR due_us < $5)
         AND ($6::TEXT IS NULL OR status = $6)
         ORDER BY due_us, external_id LIMIT $7"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(&filter.tenant)
        .bind(&filter.owner)
        .bind(&filter.dossier)
        .bind(filter.due_from.map(to_us))
        .bind(filter.due_to.map(to_us))
        .bind(filter.status.map(DeadlineStatus::as_str))
        .bind(i64::from(filter.limit))
        .fetch_all(&mut *conn)
        .await?;
    let records = rows.iter().map(record_of).collect::<Result<Vec<_>, _>>()?;
    let mut states = Vec::with_capacity(records.len());
    for record in records {
        states.push(state_of(conn, record).await?);
    }
    Ok(states)
}

pub(super) const STEP_COLUMNS: &str =
    "id, at_us, kind, state, tenant, deadline_id, revision, step, label,
    urgency, fired_us, late, recipients, notification_ids, payload";

pub(super) fn step_of(row: &PgRow) -> Result<ScheduleStep, sqlx::Error> {
    let kind: String = row.try_get("kind")?;
    let state: String = row.try_get("state")?;
    let urgency: Option<String> = row.try_get("urgency")?;
    let list = |text: Option<String>| -> Vec<String> {
        text.and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    };
    let step: i64 = row.try_get("step")?;
    Ok(ScheduleStep {
        id: row.try_get("id")?,
        at: from_us(row.try_get("at_us")?),
        kind: StepKind::parse(&kind).unwrap_or(StepKind::Reminder),
        state: StepState::parse(&state).unwrap_or(StepState::Cancelled),
        tenant: row.try_get("tenant")?,
        deadline_id: row.try_get("deadline_id")?,
        revision: row.try_get("revision")?,
        step: u32::try_from(step).map_err(|err| sqlx::Error::ColumnDecode {
            index: "step".into(),
            source: Box::new(err),
        })?,
        label: row.try_get("label")?,
        urgency: urgency.and_then(|u| serde_json::from_value(json!(u)).ok()),
        fired_at: row.try_get::<Option<i64>, _>("fired_us")?.map(from_us),
        late: row.try_get("late")?,
        recipients: list(row.try_get("recipients")?),
        notification_ids: list(row.try_get("notification_ids")?),
        payload: row.try_get("payload")?,
    })
}

async fn steps_of(
    conn: &mut PgConnection,
    tenant: &str,
    id: &str,
) -> Result<Vec<ScheduleStep>, StoreError> {
    let sql = format!(
        "SELECT {STEP_COLUMNS} FROM schedule WHERE tenant = $1 AND deadline_id = $2 ORDER BY at_us, id"
    );
    let rows = sqlx::query(AssertSqlSafe(sql))
        .bind(tenant)
        .bind(id)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.iter().map(step_of).collect::<Result<_, _>>()?)
}

/// Who took a deadline in, first one first.
pub async fn acknowledgements(
    conn: &mut PgConnection,
    tenant: &str,
    deadline_id: &str,
) -> Result<Vec<Acknowledgement>, StoreError> {
    let rows = sqlx::query(
        "SELECT a.deadline_id, a.user_id, COALESCE(u.name, '') AS user_name, a.device, a.at_us,
             a.notification_id
         FROM acknowledgements a LEFT JOIN users u ON u.id = a.user_id
         WHERE a.tenant = $1 AND a.deadline_id = $2 ORDER BY a.at_us, a.user_id",
    )
    .bind(tenant)
    .bind(deadline_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.iter().map(ack_of).collect::<Result<_, _>>()?)
}

fn ack_of(row: &PgRow) -> Result<Acknowledgement, sqlx::Error> {
    Ok(Acknowledgement {
        deadline_id: row.try_get("deadline_id")?,
        user_id: row.try_get("user_id")?,
        user_name: row.try_get("user_name")?,
        device: row.try_get("device")?,
        at: from_us(row.try_get("at_us")?),
        notification_id: row.try_get("notification_id")?,
    })
}

/// The deadlines a user is involved in (owner, backup, told by an escalation), as a
/// common table expression `involved(id)` over `$1` (firm) and `$2` (user). Every
/// connection runs it before `caught_up`, so each part is an index lookup
/// (`deadlines_owner`, `deadlines_backup`, `schedule_escalated`): a filter on the
/// firm's deadlines with an `OR` of these would read all of them (docs/BENCHMARKS.md,
/// deadlines, measured on SQLite).
const INVOLVED: &str = "WITH involved(id) AS (
        SELECT external_id FROM deadlines WHERE tenant = $1 AND owner = $2
        UNION SELECT external_id FROM deadlines WHERE tenant = $1 AND backup = $2
        UNION SELECT s.deadline_id FROM schedule s, jsonb_array_elements_text(s.recipients::jsonb) r(value)
            WHERE s.tenant = $1 AND s.kind = 'escalation' AND s.recipients IS NOT NULL
            AND r.value = $2)";

fn acknowledgements_sql() -> String {
    format!(
        "{INVOLVED}, shown(id) AS (
             SELECT d.external_id FROM involved i JOIN deadlines d
             ON d.tenant = $1 AND d.external_id = i.id
             WHERE d.status = 'open' OR d.updated_us >= $3)
         SELECT a.deadline_id, a.user_id, COALESCE(u.name, '') AS user_name, a.device, a.at_us,
             a.notification_id
         FROM acknowledgements a LEFT JOIN users u ON u.id = a.user_id
         WHERE a.tenant = $1 AND a.deadline_id IN (SELECT id FROM shown)
         UNION
         SELECT a.deadline_id, a.user_id, COALESCE(u.name, '') AS user_name, a.device, a.at_us,
             a.notification_id
         FROM acknowledgements a LEFT JOIN users u ON u.id = a.user_id
         WHERE a.tenant = $1 AND a.user_id = $2 AND a.at_us >= $3
         ORDER BY 5"
    )
}

fn closed_sql() -> String {
    format!(
        "{INVOLVED}
         SELECT d.external_id, d.status, d.updated_us FROM involved i JOIN deadlines d
         ON d.tenant = $1 AND d.external_id = i.id
         WHERE d.status != 'open' AND d.updated_us >= $3
         ORDER BY d.updated_us"
    )
}

/// The acknowledgements a user's devices should hold: those of the deadlines the user
/// is involved in that are open or closed in the last 60 days (a device offline
/// meanwhile still learns of them), and the user's own of the last 60 days (alerts the
/// firm published itself).
pub async fn acknowledgements_for_user(
    conn: &mut PgConnection,
    tenant: &str,
    user_id: &str,
) -> Result<Vec<Acknowledgement>, StoreError> {
    let since = to_us(Utc::now() - chrono::Duration::days(60));
    let rows = sqlx::query(AssertSqlSafe(acknowledgements_sql()))
        .bind(tenant)
        .bind(user_id)
        .bind(since)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.iter().map(ack_of).collect::<Result<_, _>>()?)
}

/// The deadlines closed in the last 60 days that the user is involved in, so their
/// devices stop waiting for them.
pub async fn closed_for_user(
    conn: &mut PgConnection,
    tenant: &str,
    user_id: &str,
) -> Result<Vec<tocsin_protocol::deadline::ClosedDeadline>, StoreError> {
    let since = to_us(Utc::now() - chrono::Duration::days(60));
    let rows: Vec<(String, String, i64)> = sqlx::query_as(AssertSqlSafe(closed_sql()))
        .bind(tenant)
        .bind(user_id)
        .bind(since)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows
        .into_iter()
        .map(
            |(deadline_id, status, at)| tocsin_protocol::deadline::ClosedDeadline {
                deadline_id,
                status: DeadlineStatus::parse(&status).unwrap_or(DeadlineStatus::Done),
                at: from_us(at),
            },
        )
        .collect())
}

/// The refusal of a change prepared against another revision than the stored one.
fn changed_meanwhile(id: &str) -> StoreError {
    StoreError::Conflict(format!(
        "deadline '{id}' changed while this change was prepared; send it again"
    ))
}

/// Declares or changes a deadline; returns whether it is new. With a plan, every
/// planned step of the deadline is cancelled and the new ones take their place.
///
/// Run it in a transaction: the deadline's row stays locked (`FOR UPDATE`) from the
/// revision check to the commit, so of two nodes' upserts expecting the same
/// revision one waits for the other and then finds the revision changed. A new
/// deadline has no row to lock: its insert does nothing if another transaction
/// inserted it first (after waiting for that one's commit), which is the same
/// refusal.
pub async fn upsert(conn: &mut PgConnection, upsert: DeadlineUpsert) -> Result<bool, StoreError> {
    let DeadlineUpsert {
        mut record,
        expected_revision,
        plan,
    } = upsert;
    let current = record_for_update(conn, &record.tenant, &record.external_id).await?;
    if current.as_ref().map(|c| c.revision) != expected_revision {
        return Err(changed_meanwhile(&record.external_id));
    }
    let created = current.is_none();
    let now = Utc::now();
    record.revision = expected_revision.unwrap_or(0) + i64::from(plan.is_some() || created);
    record.created_at = current.as_ref().map_or(now, |c| c.created_at);
    record.updated_at = now;
    let sql = if created {
        "INSERT INTO deadlines (tenant, external_id, deadline_type, due_at, due_us, time_zone, owner,
             backup, dossier_number, dossier_title, url, policy, escalation, status, revision,
             created_us, updated_us)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, 'open', $14, $15, $16)
         ON CONFLICT (tenant, external_id) DO NOTHING"
    } else {
        // The row is locked since the check: this is the revision that was checked.
        // `created_us` is the stored one, unchanged.
        "UPDATE deadlines SET deadline_type = $3, due_at = $4, due_us = $5, time_zone = $6,
             owner = $7, backup = $8, dossier_number = $9, dossier_title = $10, url = $11,
             policy = $12, escalation = $13, status = 'open', revision = $14, created_us = $15,
             updated_us = $16
         WHERE tenant = $1 AND external_id = $2"
    };
    let written = sqlx::query(sql)
        .bind(&record.tenant)
        .bind(&record.external_id)
        .bind(&record.deadline_type)
        .bind(record.due_at.to_rfc3339())
        .bind(to_us(record.due_at.with_timezone(&Utc)))
        .bind(&record.time_zone)
        .bind(&record.owner)
        .bind(&record.backup)
        .bind(&record.dossier_number)
        .bind(&record.dossier_title)
        .bind(&record.url)
        .bind(&record.policy)
        .bind(&record.escalation)
        .bind(record.revision)
        .bind(to_us(record.created_at))
        .bind(to_us(now))
        .execute(&mut *conn)
        .await?
        .rows_affected();
    if written == 0 {
        // Created by another transaction since the check (a new deadline), as SQLite
        // would have found it at the check.
        return Err(changed_meanwhile(&record.external_id));
    }
    if let Some(plan) = plan {
        // Acknowledgements stay: they are of the deadline, which devices show as taken
        // in; a moved date reaches the owner through the new plan's reminders.
        cancel_planned(conn, &record.tenant, &record.external_id, None).await?;
        for step in &plan {
            insert_step(
                conn,
                &record.tenant,
                &record.external_id,
                record.revision,
                step,
            )
            .await?;
        }
    }
    Ok(created)
}

/// Cancels a deadline: nothing more is raised for it. False if unknown.
pub async fn cancel(
    conn: &mut PgConnection,
    tenant: &str,
    id: &str,
    status: DeadlineStatus,
) -> Result<bool, StoreError> {
    let changed = sqlx::query(
        "UPDATE deadlines SET status = $3, updated_us = $4 WHERE tenant = $1 AND external_id = $2",
    )
    .bind(tenant)
    .bind(id)
    .bind(status.as_str())
    .bind(to_us(Utc::now()))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if changed == 0 {
        return Ok(false);
    }
    cancel_planned(conn, tenant, id, None).await?;
    Ok(true)
}

/// Cancels a deadline's planned steps (only those of one kind, when given).
pub(super) async fn cancel_planned(
    conn: &mut PgConnection,
    tenant: &str,
    id: &str,
    kind: Option<StepKind>,
) -> Result<usize, StoreError> {
    // Conditional on `planned`: a step another node is firing waits for its commit and
    // is left as that firing made it.
    let cancelled = sqlx::query(
        "UPDATE schedule SET state = 'cancelled' WHERE tenant = $1 AND deadline_id = $2
         AND state = 'planned' AND ($3::TEXT IS NULL OR kind = $3)",
    )
    .bind(tenant)
    .bind(id)
    .bind(kind.map(StepKind::as_str))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    Ok(usize::try_from(cancelled).unwrap_or(usize::MAX))
}

/// Adds one step of a deadline to the schedule.
pub(super) async fn insert_step(
    conn: &mut PgConnection,
    tenant: &str,
    deadline_id: &str,
    revision: i64,
    step: &NewStep,
) -> Result<(), StoreError> {
    let urgency = step.urgency.map(urgency_name);
    sqlx::query(
        "INSERT INTO schedule (at_us, kind, state, tenant, deadline_id, revision, step, label, urgency, created_us)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
    )
    .bind(to_us(step.at))
    .bind(step.kind.as_str())
    .bind(step.state.as_str())
    .bind(tenant)
    .bind(deadline_id)
    .bind(revision)
    .bind(i64::from(step.step))
    .bind(&step.label)
    .bind(urgency)
    .bind(to_us(Utc::now()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// The stored spelling of an urgency (serde's).
pub(super) fn urgency_name(urgency: DeadlineUrgency) -> &'static str {
    match urgency {
        DeadlineUrgency::Info => "info",
        DeadlineUrgency::Warning => "warning",
        DeadlineUrgency::Urgent => "urgent",
        DeadlineUrgency::Critical => "critical",
    }
}

type ActionResult = Result<serde_json::Value, ErrorBody>;

/// Who acknowledges, from where.
pub struct Acknowledger<'a> {
    /// The user.
    pub user_id: &'a str,
    /// Their firm.
    pub tenant: &'a str,
    /// Their device session, when the connection has one.
    pub session_id: Option<&'a str>,
}

/// Acknowledges the deadlines of the visible `deadline-alert`s among `ids`: records
/// who, when and from which device, and cancels the deadline's planned escalations.
/// Ids of streams the user cannot read are reported like unknown ids.
pub async fn acknowledge(
    conn: &mut PgConnection,
    who: &Acknowledger<'_>,
    visible: &HashSet<String>,
    ids: &[String],
) -> Result<(ActionResult, Option<ReadEffect>), StoreError> {
    let now = to_us(Utc::now());
    let device: Option<String> = match who.session_id {
        Some(sid) => {
            sqlx::query_as::<_, (String,)>("SELECT device_name FROM sessions WHERE id = $1")
                .bind(sid)
                .fetch_optional(&mut *conn)
                .await?
                .map(|(device,)| device)
        }
        None => None,
    };
    let (mut deadlines, mut not_found, mut not_deadlines) = (Vec::new(), Vec::new(), Vec::new());
    let mut streams: Vec<String> = Vec::new();
    for id in ids {
        let row: Option<(String, String, String)> =
            sqlx::query_as("SELECT stream, kind, payload FROM notifications WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        let Some((stream, kind, payload)) = row.filter(|(stream, ..)| visible.contains(stream))
        else {
            not_found.push(id.clone());
            continue;
        };
        let alert = (kind == "deadline-alert")
            .then(|| serde_json::from_str::<tocsin_protocol::Notification>(&payload).ok())
            .flatten()
            .and_then(|n| match n.data {
                NotificationData::DeadlineAlert(alert) => Some(alert),
                _ => None,
            });
        let Some((deadline_id, dossier)) = alert.map(|a| (a.deadline_id, a.dossier_number)) else {
            not_deadlines.push(id.clone());
            continue;
        };
        // One acknowledgement per (deadline, user), whichever device is first: a second
        // device's insert at the same time waits on the primary key for the first's
        // commit, then inserts nothing, so the audit record and the webhook event below
        // are written once.
        let new = sqlx::query(
            "INSERT INTO acknowledgements (tenant, deadline_id, user_id, session_id, device, notification_id, at_us)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING",
        )
        .bind(who.tenant)
        .bind(&deadline_id)
        .bind(who.user_id)
        .bind(who.session_id)
        .bind(&device)
        .bind(id)
        .bind(now)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        cancel_planned(conn, who.tenant, &deadline_id, Some(StepKind::Escalation)).await?;
        if new > 0 {
            super::audit::insert(
                conn,
                &[crate::store::AuditEntry {
                    tenant: who.tenant.to_owned(),
                    at: from_us(now),
                    event: tocsin_protocol::audit::AuditEvent::Acknowledged,
                    notification_id: Some(id.clone()),
                    deadline_id: Some(deadline_id.clone()),
                    dossier: dossier.clone(),
                    user_id: Some(who.user_id.to_owned()),
                    device: device.clone(),
                    session_id: who.session_id.map(str::to_owned),
                }],
            )
            .await?;
            let body = json!({
                "deadline": super::schedule::deadline_summary(conn, who.tenant, &deadline_id).await?,
                "acknowledgement": {
                    "user_id": who.user_id,
                    "device": device,
                    "at": from_us(now),
                    "notification_id": id,
                },
            });
            super::webhooks::enqueue(conn, who.tenant, "deadline.acknowledged", body).await?;
        }
        if !streams.contains(&stream) {
            streams.push(stream.clone());
        }
        if !deadlines.contains(&deadline_id) {
            deadlines.push(deadline_id);
        }
    }
    let mut acknowledgements = Vec::new();
    let mut users = vec![who.user_id.to_owned()];
    for deadline_id in &deadlines {
        acknowledgements.extend(self::acknowledgements(conn, who.tenant, deadline_id).await?);
        users.extend(involved(conn, who.tenant, deadline_id).await?);
    }
    users.sort();
    users.dedup();
    let data = json!({
        "acknowledged": deadlines,
        "not_found": not_found,
        "not_deadlines": not_deadlines,
    });
    if !not_deadlines.is_empty() && deadlines.is_empty() && not_found.is_empty() {
        return Ok((
            Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                "only deadline-alert notifications can be acknowledged; mark the others read",
            )),
            None,
        ));
    }
    let streams = streams
        .iter()
        .filter_map(|stream| stream.parse().ok())
        .collect();
    let effect = (!acknowledgements.is_empty()).then_some(ReadEffect::Acknowledged {
        acknowledgements,
        users,
        streams,
    });
    Ok((Ok(data), effect))
}

/// Everyone a deadline's acknowledgement is shown to: its owner, its backup, and whoever
/// an escalation reached.
async fn involved(
    conn: &mut PgConnection,
    tenant: &str,
    deadline_id: &str,
) -> Result<Vec<String>, StoreError> {
    let mut users = Vec::new();
    if let Some(record) = record(conn, tenant, deadline_id).await? {
        users.push(record.owner);
        users.extend(record.backup);
    }
    for step in steps_of(conn, tenant, deadline_id).await? {
        if step.kind == StepKind::Escalation {
            users.extend(step.recipients);
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests {
    //! What differs from SQLite's single writer: two nodes' transactions racing on
    //! one deadline, and the involvement queries' PostgreSQL spelling.

    use std::time::Duration;

    use chrono::Utc;
    use sqlx::PgPool;
    use tocsin_protocol::deadline::{DeadlineStatus, StepState};

    use super::*;

    fn declaration(id: &str) -> DeadlineRecord {
        let now = Utc::now();
        DeadlineRecord {
            tenant: "dupont".into(),
            external_id: id.into(),
            deadline_type: "Délai d'appel".into(),
            due_at: (now + chrono::Duration::days(3)).fixed_offset(),
            time_zone: "Europe/Paris".into(),
            owner: "marie".into(),
            backup: None,
            dossier_number: Some("2026-0142".into()),
            dossier_title: None,
            url: None,
            policy: None,
            escalation: None,
            status: DeadlineStatus::Open,
            revision: 0,
            created_at: now,
            updated_at: now,
        }
    }

    fn reminder(label: &str) -> NewStep {
        NewStep {
            at: Utc::now() + chrono::Duration::days(1),
            kind: StepKind::Reminder,
            step: 0,
            label: Some(label.into()),
            urgency: Some(DeadlineUrgency::Warning),
            state: StepState::Planned,
        }
    }

    /// Runs an upsert in its own transaction on its own pool connection, in a task;
    /// commits it if it succeeded.
    fn upsert_in_task(
        pool: &PgPool,
        change: DeadlineUpsert,
    ) -> tokio::task::JoinHandle<Result<bool, StoreError>> {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut tx = pool.begin().await?;
            let result = upsert(&mut tx, change).await;
            if result.is_ok() {
                tx.commit().await?;
            }
            result
        })
    }

    /// Two nodes change one deadline from the same revision: the second waits for the
    /// first's commit and is refused like a stale revision, not applied over it.
    #[tokio::test]
    async fn of_two_concurrent_upserts_from_one_revision_one_is_refused() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        let created = upsert_in_task(
            &pool,
            DeadlineUpsert {
                record: declaration("appel-1"),
                expected_revision: None,
                plan: Some(vec![reminder("J-1")]),
            },
        )
        .await
        .expect("joins")
        .expect("declared");
        assert!(created);

        // The first holds its transaction open (its row lock) while the second runs.
        let mut first = pool.begin().await.expect("begins");
        let mut moved = declaration("appel-1");
        moved.due_at = (Utc::now() + chrono::Duration::days(10)).fixed_offset();
        upsert(
            &mut first,
            DeadlineUpsert {
                record: moved,
                expected_revision: Some(1),
                plan: Some(vec![reminder("J-10")]),
            },
        )
        .await
        .expect("the first one passes");
        let second = upsert_in_task(
            &pool,
            DeadlineUpsert {
                record: declaration("appel-1"),
                expected_revision: Some(1),
                plan: Some(vec![reminder("J-2")]),
            },
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !second.is_finished(),
            "the second waits for the first's lock"
        );
        first.commit().await.expect("commits");
        let refused = second.await.expect("joins");
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{refused:?}"
        );

        let mut conn = pool.acquire().await.expect("connects");
        let state = load(&mut conn, "dupont", "appel-1")
            .await
            .expect("reads")
            .expect("stored");
        assert_eq!(state.record.revision, 2);
        let planned: Vec<_> = state
            .steps
            .iter()
            .filter(|s| s.state == StepState::Planned)
            .filter_map(|s| s.label.as_deref())
            .collect();
        assert_eq!(planned, ["J-10"], "only the first one's plan: {state:?}");
    }

    /// Two nodes declare the same new deadline: there is no row to lock yet; the
    /// second's insert waits for the first's and is refused, not merged into it.
    #[tokio::test]
    async fn of_two_concurrent_declarations_of_one_deadline_one_is_refused() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        let mut first = pool.begin().await.expect("begins");
        let created = upsert(
            &mut first,
            DeadlineUpsert {
                record: declaration("appel-2"),
                expected_revision: None,
                plan: Some(vec![reminder("J-1")]),
            },
        )
        .await
        .expect("the first one passes");
        assert!(created);
        let mut other = declaration("appel-2");
        other.owner = "claire".into();
        let second = upsert_in_task(
            &pool,
            DeadlineUpsert {
                record: other,
                expected_revision: None,
                plan: Some(vec![reminder("J-2")]),
            },
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !second.is_finished(),
            "the second waits for the first's insert"
        );
        first.commit().await.expect("commits");
        let refused = second.await.expect("joins");
        assert!(
            matches!(refused, Err(StoreError::Conflict(_))),
            "{refused:?}"
        );
        let mut conn = pool.acquire().await.expect("connects");
        let state = load(&mut conn, "dupont", "appel-2")
            .await
            .expect("reads")
            .expect("stored");
        assert_eq!(state.record.owner, "marie");
        assert_eq!(state.steps.len(), 1, "{state:?}");
    }

    /// A deadline of dupont, `status`, last changed `days_ago`.
    async fn stored(
        conn: &mut PgConnection,
        (id, owner, backup): (&str, &str, Option<&str>),
        tenant: &str,
        status: &str,
        days_ago: i64,
    ) {
        let updated = to_us(Utc::now() - chrono::Duration::days(days_ago));
        sqlx::query(
            "INSERT INTO deadlines (tenant, external_id, deadline_type, due_at, due_us, time_zone,
                 owner, backup, status, revision, created_us, updated_us)
             VALUES ($1, $2, 'Délai d''appel', '2026-12-20T12:00:00+01:00', $3, 'Europe/Paris',
                 $4, $5, $6, 1, $3, $3)",
        )
        .bind(tenant)
        .bind(id)
        .bind(updated)
        .bind(owner)
        .bind(backup)
        .bind(status)
        .execute(&mut *conn)
        .await
        .expect("deadline");
    }

    async fn escalated_to(conn: &mut PgConnection, id: &str, recipients: &str) {
        sqlx::query(
            "INSERT INTO schedule (at_us, kind, state, tenant, deadline_id, recipients, created_us)
             VALUES ($1, 'escalation', 'sent', 'dupont', $2, $3, $1)",
        )
        .bind(to_us(Utc::now()))
        .bind(id)
        .bind(recipients)
        .execute(&mut *conn)
        .await
        .expect("escalation");
    }

    async fn acknowledged_by(conn: &mut PgConnection, tenant: &str, id: &str, user: &str) {
        sqlx::query(
            "INSERT INTO acknowledgements (tenant, deadline_id, user_id, at_us) VALUES ($1, $2, $3, $4)",
        )
        .bind(tenant)
        .bind(id)
        .bind(user)
        .bind(to_us(Utc::now()))
        .execute(&mut *conn)
        .await
        .expect("acknowledgement");
    }

    /// SQLite's fixture (store/sqlite/deadlines/tests.rs): marie owns one, backs up
    /// another and was told of a third by an escalation; the rest is not hers, too
    /// old, still open or another firm's.
    #[tokio::test]
    async fn a_device_learns_what_its_user_is_involved_in() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        let mut conn = pool.acquire().await.expect("connects");
        let conn = &mut *conn;
        stored(conn, ("owned", "marie", None), "dupont", "done", 1).await;
        stored(
            conn,
            ("backed", "claire", Some("marie")),
            "dupont",
            "cancelled",
            2,
        )
        .await;
        stored(conn, ("escalated", "claire", None), "dupont", "done", 3).await;
        escalated_to(conn, "escalated", r#"["paul","marie"]"#).await;
        stored(
            conn,
            ("claire-only", "claire", Some("paul")),
            "dupont",
            "done",
            1,
        )
        .await;
        escalated_to(conn, "claire-only", r#"["paul"]"#).await;
        stored(conn, ("old", "marie", None), "dupont", "done", 90).await;
        stored(conn, ("open", "marie", None), "dupont", "open", 1).await;
        stored(conn, ("elsewhere", "marie", None), "martin", "done", 1).await;
        acknowledged_by(conn, "dupont", "open", "claire").await;
        acknowledged_by(conn, "dupont", "escalated", "paul").await;
        acknowledged_by(conn, "dupont", "claire-only", "claire").await;
        acknowledged_by(conn, "dupont", "firm-published", "marie").await;
        acknowledged_by(conn, "martin", "elsewhere", "claire").await;

        let closed: Vec<String> = closed_for_user(conn, "dupont", "marie")
            .await
            .expect("reads")
            .into_iter()
            .map(|c| c.deadline_id)
            .collect();
        assert_eq!(closed, ["escalated", "backed", "owned"]);
        assert!(
            closed_for_user(conn, "dupont", "nobody")
                .await
                .expect("reads")
                .is_empty()
        );
        let mut acks: Vec<(String, String)> = acknowledgements_for_user(conn, "dupont", "marie")
            .await
            .expect("reads")
            .into_iter()
            .map(|a| (a.deadline_id, a.user_id))
            .collect();
        acks.sort();
        assert_eq!(
            acks,
            [
                ("escalated".to_string(), "paul".to_string()),
                ("firm-published".into(), "marie".into()),
                ("open".into(), "claire".into()),
            ]
        );
    }

    /// The writer runs these in a spawned task: their futures must be `Send`.
    #[allow(dead_code)]
    fn futures_are_send(conn: &mut PgConnection) {
        fn send<F: Send>(_: F) {}
        let who = Acknowledger {
            user_id: "marie",
            tenant: "dupont",
            session_id: None,
        };
        let visible = HashSet::new();
        send(acknowledge(conn, &who, &visible, &[]));
        send(upsert(
            conn,
            DeadlineUpsert {
                record: declaration("x"),
                expected_revision: None,
                plan: None,
            },
        ));
    }
}
