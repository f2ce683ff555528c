//! What each due step does: the `deadline-alert` a reminder or an escalation raises,
//! to whom, and what it plans next. Decided here from what the store read; the store
//! then applies each decision only if its step is still planned (`store::Firing`).
//!
//! - Of several reminders of one deadline due at once (declared late, or the gateway
//!   was down across them), only the latest is sent; the others are `superseded`.
//! - A reminder of a cancelled deadline, or of an earlier plan, is `cancelled`.
//! - A critical reminder nobody acknowledged plans escalation step 1 (once per plan);
//!   step 1 plans step 2. An acknowledged deadline's escalation is `cancelled`.
//! - A step applied more than `late_after` (`[deadlines] late_after_secs`) after its
//!   time is marked late, and its alert says so.

use std::collections::HashMap;

use chrono::{DateTime, Duration, Utc};
use tocsin_protocol::deadline::StepState;
use tocsin_protocol::notification::{DeadlineAlert, DeadlineUrgency, Escalation};
use tocsin_protocol::{Notification, NotificationData, StreamName, Urgency};

use super::settings::{Delay, FirmSettings, Resolved};
use crate::store::{
    AppendRequest, DeadlineRecord, DueStep, Firing, NewStep, StepKind, Store, StoreError, User,
};

/// Turns due steps into firings, reading each firm's settings and users once.
pub async fn firings(
    store: &dyn Store,
    due: Vec<DueStep>,
    now: DateTime<Utc>,
    late_after: Duration,
) -> Result<Vec<Firing>, StoreError> {
    let mut firms = Firms::default();
    let latest = latest_reminders(&due);
    let mut out = Vec::with_capacity(due.len());
    for item in due {
        let late = now - item.step.at > late_after;
        let mut firing = Firing {
            step_id: item.step.id,
            outcome: StepState::Sent,
            late,
            appends: Vec::new(),
            recipients: Vec::new(),
            follow_ups: Vec::new(),
        };
        match (item.step.kind, &item.deadline) {
            (StepKind::Publish, _) => {}
            (_, Some(deadline))
                if deadline.status != tocsin_protocol::deadline::DeadlineStatus::Open
                    || deadline.revision != item.step.revision =>
            {
                firing.outcome = StepState::Cancelled;
            }
            (_, None) => firing.outcome = StepState::Cancelled,
            (StepKind::Reminder, Some(_)) if latest.get(&key(&item)) != Some(&item.step.id) => {
                firing.outcome = StepState::Superseded;
            }
            (StepKind::Reminder, Some(deadline)) => {
                let settings = firms.settings(store, &deadline.tenant).await?;
                remind(&mut firing, &item, deadline, &settings, now);
            }
            (StepKind::Escalation, Some(_)) if item.acknowledged => {
                firing.outcome = StepState::Cancelled;
            }
            (StepKind::Escalation, Some(deadline)) => {
                let settings = firms.settings(store, &deadline.tenant).await?;
                let users = firms.users(store, &deadline.tenant).await?;
                escalate(&mut firing, &item, deadline, &settings, &users, now);
            }
        }
        out.push(firing);
    }
    Ok(out)
}

/// Per deadline, the id of its latest due reminder.
fn latest_reminders(due: &[DueStep]) -> HashMap<(String, String), i64> {
    let mut latest = HashMap::new();
    // `due` is sorted by time, so the last one seen wins.
    for item in due.iter().filter(|i| i.step.kind == StepKind::Reminder) {
        latest.insert(key(item), item.step.id);
    }
    latest
}

fn key(item: &DueStep) -> (String, String) {
    (
        item.step.tenant.clone().unwrap_or_default(),
        item.step.deadline_id.clone().unwrap_or_default(),
    )
}

/// Settings and users read once per firm per round.
#[derive(Default)]
struct Firms {
    settings: HashMap<String, Resolved>,
    users: HashMap<String, Vec<User>>,
}

impl Firms {
    async fn settings(&mut self, store: &dyn Store, tenant: &str) -> Result<Resolved, StoreError> {
        if let Some(found) = self.settings.get(tenant) {
            return Ok(found.clone());
        }
        let stored = store.deadline_settings(tenant).await?;
        let resolved = FirmSettings::from_stored(tenant, stored.as_deref());
        self.settings.insert(tenant.to_owned(), resolved.clone());
        Ok(resolved)
    }

    async fn users(&mut self, store: &dyn Store, tenant: &str) -> Result<Vec<User>, StoreError> {
        if let Some(found) = self.users.get(tenant) {
            return Ok(found.clone());
        }
        let users = store.list_users(Some(tenant)).await?;
        self.users.insert(tenant.to_owned(), users.clone());
        Ok(users)
    }
}

/// The reminder to the owner, and the escalation it may start.
fn remind(
    firing: &mut Firing,
    item: &DueStep,
    deadline: &DeadlineRecord,
    settings: &Resolved,
    now: DateTime<Utc>,
) {
    let urgency = item.step.urgency.unwrap_or(DeadlineUrgency::Warning);
    let alert = alert(
        deadline,
        settings,
        now,
        urgency,
        item.step.label.clone(),
        firing.late,
        None,
    );
    let title = format!("{} — {}", deadline.deadline_type, dossier(deadline));
    firing.appends.push(append(
        deadline,
        &deadline.owner,
        alert,
        title,
        settings,
        now,
    ));
    firing.recipients.push(deadline.owner.clone());
    if urgency == DeadlineUrgency::Critical && !item.acknowledged && !item.escalated {
        let escalation = escalation_of(deadline, settings);
        firing.follow_ups.push(NewStep {
            at: after(escalation.first, now, settings),
            kind: StepKind::Escalation,
            step: 1,
            label: None,
            urgency: Some(DeadlineUrgency::Critical),
            state: StepState::Planned,
        });
    }
}

/// The escalation alerts: step 1 to the backup (else the partners), step 2 to the
/// partners; the owner is never among them.
fn escalate(
    firing: &mut Firing,
    item: &DueStep,
    deadline: &DeadlineRecord,
    settings: &Resolved,
    users: &[User],
    now: DateTime<Utc>,
) {
    let partners = || {
        users
            .iter()
            .filter(|u| u.role == "partner" && !u.disabled && u.id != deadline.owner)
            .map(|u| u.id.clone())
            .collect::<Vec<_>>()
    };
    let step = item.step.step.max(1);
    let to_backup = step == 1
        && deadline
            .backup
            .as_ref()
            .is_some_and(|backup| *backup != deadline.owner);
    let recipients = match &deadline.backup {
        Some(backup) if to_backup => vec![backup.clone()],
        _ => partners(),
    };
    if recipients.is_empty() {
        tracing::warn!(
            tenant = %deadline.tenant,
            deadline = %deadline.external_id,
            step,
            "nobody to escalate to: the deadline has no backup and the firm no user with the partner role"
        );
        firing.outcome = StepState::Cancelled;
        return;
    }
    let owner_name = users
        .iter()
        .find(|u| u.id == deadline.owner)
        .map_or_else(|| deadline.owner.clone(), display_name);
    let escalation = Escalation {
        step,
        owner: deadline.owner.clone(),
        owner_name: owner_name.clone(),
    };
    let title = format!(
        "Non pris en compte : {} — {}",
        deadline.deadline_type,
        dossier(deadline)
    );
    for recipient in &recipients {
        let alert = alert(
            deadline,
            settings,
            now,
            DeadlineUrgency::Critical,
            item.step.label.clone(),
            firing.late,
            Some(escalation.clone()),
        );
        let mut request = append(deadline, recipient, alert, title.clone(), settings, now);
        request.notification.body = format!(
            "{owner_name} n'a pas pris en compte ce délai. {}",
            request.notification.body
        );
        firing.appends.push(request);
    }
    firing.recipients = recipients;
    // Step 2 is the partners: only worth a step when step 1 reached someone else.
    if to_backup && let Some(second) = escalation_of(deadline, settings).second {
        firing.follow_ups.push(NewStep {
            at: after(second, now, settings),
            kind: StepKind::Escalation,
            step: 2,
            label: None,
            urgency: Some(DeadlineUrgency::Critical),
            state: StepState::Planned,
        });
    }
}

fn display_name(user: &User) -> String {
    if user.name.is_empty() {
        user.email.clone()
    } else {
        user.name.clone()
    }
}

/// The deadline's escalation delays: its own, else the firm's.
fn escalation_of(deadline: &DeadlineRecord, settings: &Resolved) -> super::settings::Escalation {
    deadline
        .escalation
        .as_deref()
        .and_then(|text| serde_json::from_str(text).ok())
        .unwrap_or(settings.settings.escalation)
}

/// `now` plus a delay, working hours counted in the firm's calendar.
fn after(delay: Delay, now: DateTime<Utc>, settings: &Resolved) -> DateTime<Utc> {
    match delay {
        Delay::Seconds(seconds) => now + Duration::seconds(seconds as i64),
        Delay::WorkingHours(hours) => settings.calendar.add_working_time(
            now,
            Duration::hours(i64::from(hours)),
            settings.hours,
            settings.zone,
        ),
    }
}

fn dossier(deadline: &DeadlineRecord) -> String {
    deadline
        .dossier_title
        .clone()
        .or_else(|| deadline.dossier_number.clone())
        .unwrap_or_else(|| deadline.external_id.clone())
}

/// The `deadline-alert` data of a deadline as of `now`.
fn alert(
    deadline: &DeadlineRecord,
    settings: &Resolved,
    now: DateTime<Utc>,
    urgency: DeadlineUrgency,
    reminder: Option<String>,
    late: bool,
    escalation: Option<Escalation>,
) -> DeadlineAlert {
    let zone = super::settings::parse_zone(&deadline.time_zone).unwrap_or(settings.zone);
    let today = now.with_timezone(&zone).date_naive();
    let due_date = deadline.due_at.with_timezone(&zone).date_naive();
    DeadlineAlert {
        extra: Default::default(),
        deadline_id: deadline.external_id.clone(),
        deadline_type: deadline.deadline_type.clone(),
        due_at: deadline.due_at,
        time_zone: deadline.time_zone.clone(),
        urgency,
        remaining_days: (due_date - today).num_days(),
        dossier_number: deadline.dossier_number.clone(),
        dossier_title: deadline.dossier_title.clone(),
        working_days_left: Some(settings.calendar.working_days_left(today, due_date)),
        reminder,
        late,
        escalation,
    }
}

/// The notification to one user.
fn append(
    deadline: &DeadlineRecord,
    user_id: &str,
    alert: DeadlineAlert,
    title: String,
    settings: &Resolved,
    now: DateTime<Utc>,
) -> AppendRequest {
    let zone = super::settings::parse_zone(&deadline.time_zone).unwrap_or(settings.zone);
    let due_local = deadline.due_at.with_timezone(&zone);
    let left = match alert.working_days_left.unwrap_or(0) {
        0 => "aujourd'hui".to_owned(),
        1 => "dans 1 jour ouvré".to_owned(),
        n if n > 1 => format!("dans {n} jours ouvrés"),
        _ => "dépassée".to_owned(),
    };
    let late = if alert.late {
        " (rappel envoyé en retard : la passerelle était arrêtée)"
    } else {
        ""
    };
    let body = format!(
        "Échéance le {} — {left}{late}",
        due_local.format("%d/%m/%Y à %H:%M")
    );
    let data = NotificationData::DeadlineAlert(alert);
    let urgency = data.default_urgency();
    AppendRequest {
        stream: StreamName::User(user_id.to_owned()),
        tenant: Some(deadline.tenant.clone()),
        notification: Notification {
            url: deadline.url.clone(),
            id: uuid::Uuid::now_v7().to_string(),
            urgency: if urgency == Urgency::Low {
                Urgency::Normal
            } else {
                urgency
            },
            data,
            created_at: now,
            title,
            body,
        },
        idempotency: None,
        deliver_at: None,
        actor: "scheduler".into(),
    }
}
