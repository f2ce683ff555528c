//! Declaring a deadline (`PUT /v1/deadlines/{id}`): checks the request, resolves the
//! owner and backup inside the firm, and decides whether the reminders are planned
//! again.
//!
//! A re-plan happens on a new deadline, a reopened one, or a change of what the
//! reminders depend on: `due_at`, the zone, the owner, the policy, the escalation
//! delays. A change of title, dossier or link alone keeps the plan (the reminders
//! read them when they go). On a re-plan, steps already past are not all sent: the
//! latest one goes at once (a deadline declared at J-1 raises its critical reminder
//! now) and the earlier ones are recorded as superseded.

use chrono::{DateTime, Utc};
use tocsin_protocol::deadline::{DeadlineRequest, DeadlineStatus, StepState};

use super::plan::{Policy, plan, split_past};
use super::settings::{Escalation, FirmSettings, Resolved, parse_zone};
use crate::error::AppError;
use crate::store::{DeadlineRecord, DeadlineUpsert, NewStep, StepKind, Store, StoreError};

/// The longest a firm id, a type or a dossier field may be.
const MAX_FIELD: usize = 200;
/// How far ahead a deadline may be declared.
const MAX_AHEAD_DAYS: i64 = 3660;

/// Declares or changes the deadline `id` of `tenant`; returns whether it is new.
pub async fn declare(
    store: &dyn Store,
    tenant: &str,
    id: &str,
    request: DeadlineRequest,
    now: DateTime<Utc>,
) -> Result<bool, AppError> {
    check_id(id)?;
    let settings = firm_settings(store, tenant).await?;
    let record = record_of(store, tenant, id, request, &settings, now).await?;
    // Read, decide, write with the revision read: a concurrent change of the same
    // deadline makes the write a conflict, and the decision is made again.
    for _ in 0..3 {
        let current = store.deadline(tenant, id).await?.map(|state| state.record);
        let plan = needs_plan(current.as_ref(), &record)
            .then(|| steps(&record, &settings, now))
            .transpose()?;
        let upsert = DeadlineUpsert {
            record: record.clone(),
            expected_revision: current.as_ref().map(|c| c.revision),
            plan,
        };
        match store.upsert_deadline(upsert).await {
            Err(StoreError::Conflict(_)) => continue,
            other => return Ok(other?),
        }
    }
    Err(AppError::conflict(format!(
        "deadline '{id}' is being changed by several requests at once; send it again"
    )))
}

/// A firm's settings, checked.
pub async fn firm_settings(store: &dyn Store, tenant: &str) -> Result<Resolved, AppError> {
    let stored = store.deadline_settings(tenant).await?;
    Ok(FirmSettings::from_stored(tenant, stored.as_deref()))
}

fn check_id(id: &str) -> Result<(), AppError> {
    if id.is_empty() || id.len() > MAX_FIELD || id.chars().any(char::is_control) {
        return Err(AppError::invalid(format!(
            "a deadline id is your software's own id: 1-{MAX_FIELD} characters, no control characters"
        )));
    }
    Ok(())
}

fn check_text(field: &str, value: &str, required: bool) -> Result<(), AppError> {
    if required && value.trim().is_empty() {
        return Err(AppError::invalid(format!(
            "{field} is empty; say what the deadline is (\"Délai d'appel\")"
        )));
    }
    if value.chars().count() > MAX_FIELD {
        return Err(AppError::invalid(format!(
            "{field} is longer than {MAX_FIELD} characters"
        )));
    }
    no_control(field, value)
}

/// Fields are shown in toasts, calendar files and CSV exports, where a line break or
/// another control character would be read as structure.
fn no_control(field: &str, value: &str) -> Result<(), AppError> {
    if value.chars().any(char::is_control) {
        return Err(AppError::invalid(format!(
            "{field} holds a control character (a line break?); send one line of text"
        )));
    }
    Ok(())
}

async fn record_of(
    store: &dyn Store,
    tenant: &str,
    id: &str,
    request: DeadlineRequest,
    settings: &Resolved,
    now: DateTime<Utc>,
) -> Result<DeadlineRecord, AppError> {
    check_text("deadline_type", &request.deadline_type, true)?;
    for (field, value) in [
        ("dossier_number", &request.dossier_number),
        ("dossier_title", &request.dossier_title),
    ] {
        check_text(field, value.as_deref().unwrap_or(""), false)?;
    }
    if let Some(url) = &request.url {
        no_control("url", url)?;
        tocsin_protocol::notification::link::check_url(url)
            .map_err(|err| AppError::invalid(format!("url: {err}")))?;
    }
    let time_zone = request
        .time_zone
        .unwrap_or_else(|| settings.settings.time_zone.clone());
    let zone =
        parse_zone(&time_zone).map_err(|err| AppError::invalid(format!("time_zone: {err}")))?;
    let due_utc = request.due_at.with_timezone(&Utc);
    if due_utc <= now {
        return Err(AppError::invalid(format!(
            "due_at {} is in the past (now is {}); declare a deadline before it falls due, or DELETE it once done",
            request.due_at.to_rfc3339(),
            now.to_rfc3339()
        )));
    }
    if due_utc > now + chrono::Duration::days(MAX_AHEAD_DAYS) {
        return Err(AppError::invalid(
            "due_at is more than ten years ahead; check the date",
        ));
    }
    let owner = member(store, tenant, "owner", &request.owner).await?;
    let backup = match &request.backup {
        Some(backup) => {
            let backup = member(store, tenant, "backup", backup).await?;
            if backup == owner {
                return Err(AppError::invalid(
                    "backup is the owner; name another user of your firm, or leave backup out",
                ));
            }
            Some(backup)
        }
        None => None,
    };
    let policy = parse_json::<Policy>("policy", request.policy, |p| p.validate())?;
    let escalation = parse_json::<Escalation>("escalation", request.escalation, |e| e.validate())?;
    Ok(DeadlineRecord {
        tenant: tenant.to_owned(),
        external_id: id.to_owned(),
        deadline_type: request.deadline_type.trim().to_owned(),
        // Shown in the deadline's own zone.
        due_at: request.due_at.with_timezone(&zone).fixed_offset(),
        time_zone,
        owner,
        backup,
        dossier_number: request.dossier_number,
        dossier_title: request.dossier_title,
        url: request.url,
        policy,
        escalation,
        status: DeadlineStatus::Open,
        revision: 0,
        created_at: now,
        updated_at: now,
    })
}

/// A policy or escalation given as JSON: checked, and stored as its normal form.
fn parse_json<T: serde::de::DeserializeOwned + serde::Serialize>(
    field: &str,
    value: Option<serde_json::Value>,
    validate: impl Fn(&T) -> Result<(), String>,
) -> Result<Option<String>, AppError> {
    let Some(value) = value else {
        return Ok(None);
    };
    let parsed: T = serde_json::from_value(value).map_err(|err| {
        AppError::invalid(format!(
            "{field}: {err} (see docs/DEADLINES.md for the shape)"
        ))
    })?;
    validate(&parsed).map_err(|err| AppError::invalid(format!("{field}: {err}")))?;
    Ok(Some(
        serde_json::to_string(&parsed).map_err(|err| AppError::internal(err.to_string()))?,
    ))
}

/// A user of the firm by id or email; another firm's users are not found.
async fn member(
    store: &dyn Store,
    tenant: &str,
    field: &str,
    who: &str,
) -> Result<String, AppError> {
    match store.firm_user(tenant, who).await? {
        Some(user) if !user.disabled => Ok(user.id),
        Some(_) => Err(AppError::invalid(format!(
            "{field} '{who}' is disabled; name an active user of your firm"
        ))),
        None => Err(AppError::invalid(format!(
            "{field} '{who}' is not a user of your firm; use the id or email of one (tocsin-gateway user list)"
        ))),
    }
}

/// Whether the reminders must be planned again.
fn needs_plan(current: Option<&DeadlineRecord>, new: &DeadlineRecord) -> bool {
    let Some(current) = current else {
        return true;
    };
    current.status != DeadlineStatus::Open
        || current.due_at != new.due_at
        || current.time_zone != new.time_zone
        || current.owner != new.owner
        || current.policy != new.policy
        || current.escalation != new.escalation
}

/// The steps of a new plan: future ones planned, the latest past one now, earlier past
/// ones superseded.
fn steps(
    record: &DeadlineRecord,
    settings: &Resolved,
    now: DateTime<Utc>,
) -> Result<Vec<NewStep>, AppError> {
    let policy: Policy = match &record.policy {
        Some(text) => {
            serde_json::from_str(text).map_err(|err| AppError::internal(err.to_string()))?
        }
        None => settings.settings.policy.clone(),
    };
    let zone = parse_zone(&record.time_zone).map_err(AppError::invalid)?;
    let planned = plan(
        &policy,
        record.due_at.with_timezone(&Utc),
        zone,
        &settings.calendar,
    );
    let (current, superseded) = split_past(&planned, now);
    Ok(planned
        .into_iter()
        .enumerate()
        .map(|(index, planned)| {
            let (at, state) = if Some(index) == current {
                (now, StepState::Planned)
            } else if superseded.contains(&index) {
                (planned.at, StepState::Superseded)
            } else {
                (planned.at, StepState::Planned)
            };
            NewStep {
                at,
                kind: StepKind::Reminder,
                step: planned.step,
                label: Some(planned.label),
                urgency: Some(planned.urgency),
                state,
            }
        })
        .collect())
}
