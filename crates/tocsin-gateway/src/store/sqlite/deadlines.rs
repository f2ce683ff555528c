//! Deadlines, their firm settings and acknowledgements in SQLite. Reads run on pooled
//! connections; changes run inside the writer's transaction (`writer.rs`), like every
//! other change, so a re-plan and the reminders it cancels commit together.

use std::collections::HashSet;

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};
use serde_json::json;
use tocsin_protocol::deadline::{Acknowledgement, DeadlineStatus, StepState};
use tocsin_protocol::notification::DeadlineUrgency;
use tocsin_protocol::{ErrorBody, ErrorCode, NotificationData};

use super::time::{from_us, to_us};
use crate::store::{
    DeadlineFilter, DeadlineRecord, DeadlineState, DeadlineUpsert, NewStep, ReadEffect,
    ScheduleStep, StepKind, StoreError,
};

/// A firm's deadline settings (JSON), if it set any.
pub fn settings(conn: &Connection, tenant: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT settings FROM deadline_settings WHERE tenant = ?1")?
        .query_row(params![tenant], |row| row.get(0))
        .optional()?)
}

/// Replaces a firm's deadline settings.
pub fn set_settings(conn: &Connection, tenant: &str, settings: &str) -> Result<(), StoreError> {
    conn.prepare_cached(
        "INSERT INTO deadline_settings (tenant, settings) VALUES (?1, ?2)
         ON CONFLICT (tenant) DO UPDATE SET settings = excluded.settings",
    )?
    .execute(params![tenant, settings])?;
    Ok(())
}

const RECORD_COLUMNS: &str = "tenant, external_id, deadline_type, due_at, time_zone, owner, backup,
    dossier_number, dossier_title, url, policy, escalation, status, revision, created_us, updated_us";

fn record_of(row: &Row) -> rusqlite::Result<DeadlineRecord> {
    let due_at: String = row.get(3)?;
    let status: String = row.get(12)?;
    Ok(DeadlineRecord {
        tenant: row.get(0)?,
        external_id: row.get(1)?,
        deadline_type: row.get(2)?,
        due_at: DateTime::parse_from_rfc3339(&due_at).unwrap_or_default(),
        time_zone: row.get(4)?,
        owner: row.get(5)?,
        backup: row.get(6)?,
        dossier_number: row.get(7)?,
        dossier_title: row.get(8)?,
        url: row.get(9)?,
        policy: row.get(10)?,
        escalation: row.get(11)?,
        status: DeadlineStatus::parse(&status).unwrap_or(DeadlineStatus::Open),
        revision: row.get(13)?,
        created_at: from_us(row.get(14)?),
        updated_at: from_us(row.get(15)?),
    })
}

/// A deadline's declaration.
pub fn record(
    conn: &Connection,
    tenant: &str,
    id: &str,
) -> Result<Option<DeadlineRecord>, StoreError> {
    let sql =
        format!("SELECT {RECORD_COLUMNS} FROM deadlines WHERE tenant = ?1 AND external_id = ?2");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![tenant, id], record_of)
        .optional()?)
}

/// A deadline with its schedule and acknowledgements.
pub fn load(
    conn: &Connection,
    tenant: &str,
    id: &str,
) -> Result<Option<DeadlineState>, StoreError> {
    let Some(record) = record(conn, tenant, id)? else {
        return Ok(None);
    };
    state_of(conn, record).map(Some)
}

fn state_of(conn: &Connection, record: DeadlineRecord) -> Result<DeadlineState, StoreError> {
    let steps = steps_of(conn, &record.tenant, &record.external_id)?;
    let acknowledgements = acknowledgements(conn, &record.tenant, &record.external_id)?;
    Ok(DeadlineState {
        record,
        steps,
        acknowledgements,
    })
}

/// Deadlines matching the filter, soonest due first.
pub fn list(conn: &Connection, filter: &DeadlineFilter) -> Result<Vec<DeadlineState>, StoreError> {
    let sql = format!(
        "SELECT {RECORD_COLUMNS} FROM deadlines WHERE tenant = ?1
         AND (?2 IS NULL OR owner = ?2) AND (?3 IS NULL OR dossier_number = ?3)
         AND (?4 IS NULL OR due_us >= ?4) AND (?5 IS NULL OR due_us < ?5)
         AND (?6 IS NULL OR status = ?6)
         ORDER BY due_us, external_id LIMIT ?7"
    );
    let records: Vec<DeadlineRecord> = conn
        .prepare_cached(&sql)?
        .query_map(
            params![
                filter.tenant,
                filter.owner,
                filter.dossier,
                filter.due_from.map(to_us),
                filter.due_to.map(to_us),
                filter.status.map(DeadlineStatus::as_str),
                filter.limit
            ],
            record_of,
        )?
        .collect::<Result<_, _>>()?;
    records
        .into_iter()
        .map(|record| state_of(conn, record))
        .collect()
}

pub(super) const STEP_COLUMNS: &str =
    "id, at_us, kind, state, tenant, deadline_id, revision, step, label,
    urgency, fired_us, late, recipients, notification_ids, payload";

pub(super) fn step_of(row: &Row) -> rusqlite::Result<ScheduleStep> {
    let kind: String = row.get(2)?;
    let state: String = row.get(3)?;
    let urgency: Option<String> = row.get(9)?;
    let list = |text: Option<String>| -> Vec<String> {
        text.and_then(|text| serde_json::from_str(&text).ok())
            .unwrap_or_default()
    };
    Ok(ScheduleStep {
        id: row.get(0)?,
        at: from_us(row.get(1)?),
        kind: StepKind::parse(&kind).unwrap_or(StepKind::Reminder),
        state: StepState::parse(&state).unwrap_or(StepState::Cancelled),
        tenant: row.get(4)?,
        deadline_id: row.get(5)?,
        revision: row.get(6)?,
        step: row.get(7)?,
        label: row.get(8)?,
        urgency: urgency.and_then(|u| serde_json::from_value(json!(u)).ok()),
        fired_at: row.get::<_, Option<i64>>(10)?.map(from_us),
        late: row.get(11)?,
        recipients: list(row.get(12)?),
        notification_ids: list(row.get(13)?),
        payload: row.get(14)?,
    })
}

fn steps_of(conn: &Connection, tenant: &str, id: &str) -> Result<Vec<ScheduleStep>, StoreError> {
    let sql = format!(
        "SELECT {STEP_COLUMNS} FROM schedule WHERE tenant = ?1 AND deadline_id = ?2 ORDER BY at_us, id"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_map(params![tenant, id], step_of)?
        .collect::<Result<_, _>>()?)
}

/// Who took a deadline in, first one first.
pub fn acknowledgements(
    conn: &Connection,
    tenant: &str,
    deadline_id: &str,
) -> Result<Vec<Acknowledgement>, StoreError> {
    Ok(conn
        .prepare_cached(
            "SELECT a.deadline_id, a.user_id, COALESCE(u.name, ''), a.device, a.at_us, a.notification_id
             FROM acknowledgements a LEFT JOIN users u ON u.id = a.user_id
             WHERE a.tenant = ?1 AND a.deadline_id = ?2 ORDER BY a.at_us, a.user_id",
        )?
        .query_map(params![tenant, deadline_id], ack_of)?
        .collect::<Result<_, _>>()?)
}

fn ack_of(row: &Row) -> rusqlite::Result<Acknowledgement> {
    Ok(Acknowledgement {
        deadline_id: row.get(0)?,
        user_id: row.get(1)?,
        user_name: row.get(2)?,
        device: row.get(3)?,
        at: from_us(row.get(4)?),
        notification_id: row.get(5)?,
    })
}

/// The deadlines a user is involved in (owner, backup, told by an escalation), as a
/// common table expression `involved(id)` over `?1` (firm) and `?2` (user). Every
/// connection runs it before `caught_up`, so each part is an index lookup
/// (`deadlines_owner`, `deadlines_backup`, `schedule_escalated`): a filter on the
/// firm's deadlines with an `OR` of these would read all of them, ~20 ms a connection
/// at 100k deadlines (docs/BENCHMARKS.md, deadlines). The queries join it with
/// `CROSS JOIN`, which makes SQLite keep it the outer loop: without statistics the
/// planner would rather read the firm's deadlines and probe the few involved.
const INVOLVED: &str = "WITH involved(id) AS (
        SELECT external_id FROM deadlines WHERE tenant = ?1 AND owner = ?2
        UNION SELECT external_id FROM deadlines WHERE tenant = ?1 AND backup = ?2
        UNION SELECT s.deadline_id FROM schedule s, json_each(s.recipients) r
            WHERE s.tenant = ?1 AND s.kind = 'escalation' AND s.recipients IS NOT NULL
            AND r.value = ?2)";

fn acknowledgements_sql() -> String {
    format!(
        "{INVOLVED}, current(id) AS (
             SELECT d.external_id FROM involved i CROSS JOIN deadlines d
             ON d.tenant = ?1 AND d.external_id = i.id
             WHERE d.status = 'open' OR d.updated_us >= ?3)
         SELECT a.deadline_id, a.user_id, COALESCE(u.name, ''), a.device, a.at_us, a.notification_id
         FROM acknowledgements a LEFT JOIN users u ON u.id = a.user_id
         WHERE a.tenant = ?1 AND a.deadline_id IN current
         UNION
         SELECT a.deadline_id, a.user_id, COALESCE(u.name, ''), a.device, a.at_us, a.notification_id
         FROM acknowledgements a LEFT JOIN users u ON u.id = a.user_id
         WHERE a.tenant = ?1 AND a.user_id = ?2 AND a.at_us >= ?3
         ORDER BY 5"
    )
}

fn closed_sql() -> String {
    format!(
        "{INVOLVED}
         SELECT d.external_id, d.status, d.updated_us FROM involved i CROSS JOIN deadlines d
         ON d.tenant = ?1 AND d.external_id = i.id
         WHERE d.status != 'open' AND d.updated_us >= ?3
         ORDER BY d.updated_us"
    )
}

/// The acknowledgements a user's devices should hold: those of the deadlines the user
/// is involved in that are open or closed in the last 60 days (a device offline
/// meanwhile still learns of them), and the user's own of the last 60 days (alerts the
/// firm published itself).
pub fn acknowledgements_for_user(
    conn: &Connection,
    tenant: &str,
    user_id: &str,
) -> Result<Vec<Acknowledgement>, StoreError> {
    let since = to_us(Utc::now() - chrono::Duration::days(60));
    Ok(conn
        .prepare_cached(&acknowledgements_sql())?
        .query_map(params![tenant, user_id, since], ack_of)?
        .collect::<Result<_, _>>()?)
}

/// The deadlines closed in the last 60 days that the user is involved in, so their
/// devices stop waiting for them.
pub fn closed_for_user(
    conn: &Connection,
    tenant: &str,
    user_id: &str,
) -> Result<Vec<tocsin_protocol::deadline::ClosedDeadline>, StoreError> {
    let since = to_us(Utc::now() - chrono::Duration::days(60));
    Ok(conn
        .prepare_cached(&closed_sql())?
        .query_map(params![tenant, user_id, since], |row| {
            let status: String = row.get(1)?;
            Ok(tocsin_protocol::deadline::ClosedDeadline {
                deadline_id: row.get(0)?,
                status: DeadlineStatus::parse(&status).unwrap_or(DeadlineStatus::Done),
                at: from_us(row.get(2)?),
            })
        })?
        .collect::<Result<_, _>>()?)
}

/// Declares or changes a deadline; returns whether it is new. With a plan, every
/// planned step of the deadline is cancelled and the new ones take their place.
pub fn upsert(conn: &Connection, upsert: DeadlineUpsert) -> Result<bool, StoreError> {
    let DeadlineUpsert {
        mut record,
        expected_revision,
        plan,
    } = upsert;
    let current = self::record(conn, &record.tenant, &record.external_id)?;
    if current.as_ref().map(|c| c.revision) != expected_revision {
        return Err(StoreError::Conflict(format!(
            "deadline '{}' changed while this change was prepared; send it again",
            record.external_id
        )));
    }
    let created = current.is_none();
    let now = Utc::now();
    record.revision = expected_revision.unwrap_or(0) + i64::from(plan.is_some() || created);
    record.created_at = current.as_ref().map_or(now, |c| c.created_at);
    record.updated_at = now;
    conn.prepare_cached(
        "INSERT INTO deadlines (tenant, external_id, deadline_type, due_at, due_us, time_zone, owner,
             backup, dossier_number, dossier_title, url, policy, escalation, status, revision,
             created_us, updated_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, 'open', ?14, ?15, ?16)
         ON CONFLICT (tenant, external_id) DO UPDATE SET deadline_type = excluded.deadline_type,
             due_at = excluded.due_at, due_us = excluded.due_us, time_zone = excluded.time_zone,
             owner = excluded.owner, backup = excluded.backup,
             dossier_number = excluded.dossier_number, dossier_title = excluded.dossier_title,
             url = excluded.url, policy = excluded.policy, escalation = excluded.escalation,
             status = 'open', revision = excluded.revision, updated_us = excluded.updated_us",
    )?
    .execute(params![
        record.tenant,
        record.external_id,
        record.deadline_type,
        record.due_at.to_rfc3339(),
        to_us(record.due_at.with_timezone(&Utc)),
        record.time_zone,
        record.owner,
        record.backup,
        record.dossier_number,
        record.dossier_title,
        record.url,
        record.policy,
        record.escalation,
        record.revision,
        to_us(record.created_at),
        to_us(now),
    ])?;
    if let Some(plan) = plan {
        // Acknowledgements stay: they are of the deadline, which devices show as taken
        // in; a moved date reaches the owner through the new plan's reminders.
        cancel_planned(conn, &record.tenant, &record.external_id, None)?;
        for step in &plan {
            insert_step(
                conn,
                &record.tenant,
                &record.external_id,
                record.revision,
                step,
            )?;
        }
    }
    Ok(created)
}

/// Cancels a deadline: nothing more is raised for it. False if unknown.
pub fn cancel(
    conn: &Connection,
    tenant: &str,
    id: &str,
    status: DeadlineStatus,
) -> Result<bool, StoreError> {
    let changed = conn
        .prepare_cached(
            "UPDATE deadlines SET status = ?3, updated_us = ?4 WHERE tenant = ?1 AND external_id = ?2",
        )?
        .execute(params![tenant, id, status.as_str(), to_us(Utc::now())])?;
    if changed == 0 {
        return Ok(false);
    }
    cancel_planned(conn, tenant, id, None)?;
    Ok(true)
}

/// Cancels a deadline's planned steps (only those of one kind, when given).
pub(super) fn cancel_planned(
    conn: &Connection,
    tenant: &str,
    id: &str,
    kind: Option<StepKind>,
) -> Result<usize, StoreError> {
    Ok(conn
        .prepare_cached(
            "UPDATE schedule SET state = 'cancelled' WHERE tenant = ?1 AND deadline_id = ?2
             AND state = 'planned' AND (?3 IS NULL OR kind = ?3)",
        )?
        .execute(params![tenant, id, kind.map(StepKind::as_str)])?)
}

/// Adds one step of a deadline to the schedule.
pub(super) fn insert_step(
    conn: &Connection,
    tenant: &str,
    deadline_id: &str,
    revision: i64,
    step: &NewStep,
) -> Result<(), StoreError> {
    let urgency = step.urgency.map(urgency_name);
    conn.prepare_cached(
        "INSERT INTO schedule (at_us, kind, state, tenant, deadline_id, revision, step, label, urgency, created_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
    )?
    .execute(params![
        to_us(step.at),
        step.kind.as_str(),
        step.state.as_str(),
        tenant,
        deadline_id,
        revision,
        step.step,
        step.label,
        urgency,
        to_us(Utc::now()),
    ])?;
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
pub fn acknowledge(
    conn: &Connection,
    who: &Acknowledger,
    visible: &HashSet<String>,
    ids: &[String],
) -> Result<(ActionResult, Option<ReadEffect>), StoreError> {
    let now = to_us(Utc::now());
    let device: Option<String> = match who.session_id {
        Some(sid) => conn
            .prepare_cached("SELECT device_name FROM sessions WHERE id = ?1")?
            .query_row(params![sid], |row| row.get(0))
            .optional()?,
        None => None,
    };
    let mut find =
        conn.prepare_cached("SELECT stream, kind, payload FROM notifications WHERE id = ?1")?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO acknowledgements (tenant, deadline_id, user_id, session_id, device, notification_id, at_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
    )?;
    let (mut deadlines, mut not_found, mut not_deadlines) = (Vec::new(), Vec::new(), Vec::new());
    let mut streams: Vec<String> = Vec::new();
    for id in ids {
        let row: Option<(String, String, String)> = find
            .query_row(params![id], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
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
        let new = insert.execute(params![
            who.tenant,
            deadline_id,
            who.user_id,
            who.session_id,
            device,
            id,
            now
        ])?;
        cancel_planned(conn, who.tenant, &deadline_id, Some(StepKind::Escalation))?;
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
            )?;
            let body = json!({
                "deadline": super::schedule::deadline_summary(conn, who.tenant, &deadline_id)?,
                "acknowledgement": {
                    "user_id": who.user_id,
                    "device": device,
                    "at": from_us(now),
                    "notification_id": id,
                },
            });
            super::webhooks::enqueue(conn, who.tenant, "deadline.acknowledged", body)?;
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
        acknowledgements.extend(self::acknowledgements(conn, who.tenant, deadline_id)?);
        users.extend(involved(conn, who.tenant, deadline_id)?);
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
fn involved(conn: &Connection, tenant: &str, deadline_id: &str) -> Result<Vec<String>, StoreError> {
    let mut users = Vec::new();
    if let Some(record) = record(conn, tenant, deadline_id)? {
        users.push(record.owner);
        users.extend(record.backup);
    }
    for step in steps_of(conn, tenant, deadline_id)? {
        if step.kind == StepKind::Escalation {
            users.extend(step.recipients);
        }
    }
    Ok(users)
}

#[cfg(test)]
mod tests;
