//! A stored deadline as the API shows it (`DeadlineView`): its reminders, escalations
//! and acknowledgements, and the working days left as of now in the firm's calendar.

use chrono::{DateTime, Utc};
use tocsin_protocol::deadline::{DeadlineView, EscalationView, ReminderView, StepState};
use tocsin_protocol::notification::DeadlineUrgency;

use super::settings::Resolved;
use crate::store::{DeadlineState, StepKind};

/// The view of `state` at `now`.
pub fn view(state: DeadlineState, settings: &Resolved, now: DateTime<Utc>) -> DeadlineView {
    let DeadlineState {
        record,
        steps,
        acknowledgements,
    } = state;
    let zone = super::settings::parse_zone(&record.time_zone).unwrap_or(settings.zone);
    let today = now.with_timezone(&zone).date_naive();
    let due_date = record.due_at.with_timezone(&zone).date_naive();
    let current = record.revision;
    let mut urgency = DeadlineUrgency::Info;
    let mut reminders = Vec::new();
    let mut escalations = Vec::new();
    for step in steps {
        match step.kind {
            StepKind::Reminder => {
                // Earlier plans' reminders are shown only if they reached someone.
                if step.revision != current && step.state != StepState::Sent {
                    continue;
                }
                let step_urgency = step.urgency.unwrap_or(DeadlineUrgency::Info);
                if step.state == StepState::Sent {
                    urgency = step_urgency;
                }
                reminders.push(ReminderView {
                    label: step.label.unwrap_or_default(),
                    at: step.at,
                    urgency: step_urgency,
                    state: step.state,
                    sent_at: step.fired_at.filter(|_| step.state == StepState::Sent),
                    late: step.late,
                    notification_ids: step.notification_ids,
                });
            }
            StepKind::Escalation => escalations.push(EscalationView {
                step: step.step,
                at: step.at,
                state: step.state,
                sent_at: step.fired_at.filter(|_| step.state == StepState::Sent),
                recipients: step.recipients,
                notification_ids: step.notification_ids,
            }),
            StepKind::Publish => {}
        }
    }
    DeadlineView {
        id: record.external_id,
        deadline_type: record.deadline_type,
        due_at: record.due_at,
        time_zone: record.time_zone,
        owner: record.owner,
        backup: record.backup,
        dossier_number: record.dossier_number,
        dossier_title: record.dossier_title,
        url: record.url,
        status: record.status,
        working_days_left: settings.calendar.working_days_left(today, due_date),
        urgency,
        reminders,
        escalations,
        acknowledged: acknowledgements.first().cloned(),
        acknowledgements,
        created_at: record.created_at,
        updated_at: record.updated_at,
    }
}
