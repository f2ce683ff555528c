//! A reminder policy, and the instants it sends a deadline's reminders at.
//!
//! A firm says "remind at J-3, J-2, J-1 and on the day, at 09:00"; the scheduler needs
//! instants. This module turns one into the other, purely, so that every rule below is
//! tested on fixed dates rather than discovered by a lawyer on a bank holiday.
//!
//! # Rules of [`plan`]
//! - `WorkingDays(n)`: the local date `calendar.working_days_before(due date, n)` at
//!   `policy.at` in the deadline's zone. The due date is the local date of `due_at` in
//!   that zone; a deadline on a non-working day gets its J-0 on the working day before.
//!   A local time the clock skips gives the first valid minute after it; one that
//!   happens twice gives the earlier instant.
//! - `Seconds(s)`: `due_at − s`.
//! - A reminder that would come at or after `due_at` (due at 08:00, reminders at
//!   09:00, J-0) is sent at `due_at − 1 h` instead: a reminder after the deadline is
//!   useless, and an hour is time enough to act on one.
//! - The result is sorted by instant, strictly increasing, and its urgency never goes
//!   down: of two steps at the same instant only the more urgent is kept (equal
//!   urgency: the later step of the policy); a step less urgent than one before it is
//!   dropped. A lawyer never gets two reminders at once, nor a calmer one after an
//!   alarm.
//!
//! [`plan`] does not validate its policy; [`Policy::validate`] belongs where a policy
//! comes in (the API, the config).

use chrono::{DateTime, NaiveTime, TimeDelta, Timelike, Utc};
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};
use tocsin_protocol::notification::DeadlineUrgency;

use super::calendar::{Calendar, hm, resolve_local};

#[cfg(test)]
mod tests;

/// When one reminder is sent, relative to the deadline. In JSON `{"working_days": 3}`
/// or `{"seconds": 30}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Offset {
    /// On the n-th working day before the due date, at the policy's hour (0: the day).
    WorkingDays(u32),
    /// This many seconds before the deadline: for short fuses, and for tests that
    /// cannot wait days.
    Seconds(u64),
}

impl Offset {
    /// How a reminder is labelled for people: "J-3", "J-0", "T-30s".
    pub fn label(self) -> String {
        match self {
            Offset::WorkingDays(days) => format!("J-{days}"),
            Offset::Seconds(seconds) => format!("T-{seconds}s"),
        }
    }
}

/// One step of a reminder policy, e.g. `{"before": {"working_days": 3}, "urgency":
/// "warning"}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// How long before the deadline.
    pub before: Offset,
    /// The urgency the reminder carries.
    pub urgency: DeadlineUrgency,
}

/// A reminder policy: the steps, and the local hour working-day reminders are sent at.
///
/// In JSON `{"steps": [{"before": {"working_days": 3}, "urgency": "warning"}], "at":
/// "09:00"}`; `at` may be left out (09:00). Unknown fields are refused, so that a
/// misspelt one is an error rather than a silently ignored setting.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Policy {
    /// The reminders, in any order: [`plan`] sorts them by instant.
    pub steps: Vec<Step>,
    /// Local time of day of working-day reminders, "HH:MM".
    #[serde(with = "hhmm", default = "default_at")]
    #[schema(value_type = String, pattern = "^[0-2][0-9]:[0-5][0-9]$", example = "09:00")]
    pub at: NaiveTime,
}

fn default_at() -> NaiveTime {
    hm(9, 0)
}

impl Default for Policy {
    /// J-3 warning, J-2 urgent, J-1 critical, J-0 (on the day) critical, at 09:00: the
    /// thresholds [`DeadlineUrgency`] is defined by.
    fn default() -> Self {
        let step = |days, urgency| Step {
            before: Offset::WorkingDays(days),
            urgency,
        };
        Policy {
            steps: vec![
                step(3, DeadlineUrgency::Warning),
                step(2, DeadlineUrgency::Urgent),
                step(1, DeadlineUrgency::Critical),
                step(0, DeadlineUrgency::Critical),
            ],
            at: default_at(),
        }
    }
}

impl Policy {
    /// The most steps a policy may have: more would be noise, and it bounds the work
    /// of planning one deadline.
    pub const MAX_STEPS: usize = 16;
    /// The furthest working-day step: about three months.
    pub const MAX_WORKING_DAYS: u32 = 60;
    /// The furthest seconds step: 365 days.
    pub const MAX_SECONDS: u64 = 31_536_000;

    /// Checks the bounds, with a message naming the faulty field.
    pub fn validate(&self) -> Result<(), String> {
        if self.steps.is_empty() {
            return Err("steps: at least 1".to_owned());
        }
        if self.steps.len() > Self::MAX_STEPS {
            return Err(format!(
                "steps: at most {}, got {}",
                Self::MAX_STEPS,
                self.steps.len()
            ));
        }
        for (index, step) in self.steps.iter().enumerate() {
            match step.before {
                Offset::WorkingDays(days) if days > Self::MAX_WORKING_DAYS => {
                    return Err(format!(
                        "steps[{index}].before: working_days must be ≤ {}, got {days}",
                        Self::MAX_WORKING_DAYS
                    ));
                }
                Offset::Seconds(seconds) if seconds > Self::MAX_SECONDS => {
                    return Err(format!(
                        "steps[{index}].before: seconds must be ≤ {} (365 days), got {seconds}",
                        Self::MAX_SECONDS
                    ));
                }
                Offset::WorkingDays(_) | Offset::Seconds(_) => {}
            }
        }
        if self.at.second() != 0 || self.at.nanosecond() != 0 {
            return Err(format!(
                "at: must be a whole minute (HH:MM), got {}",
                self.at
            ));
        }
        Ok(())
    }
}

/// A reminder the scheduler will send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Planned {
    /// Index of its step in `policy.steps`: what the scheduler records as sent.
    pub step: u32,
    /// For people: "J-3", "J-0", "T-30s".
    pub label: String,
    /// When to send it.
    pub at: DateTime<Utc>,
    /// The urgency it carries.
    pub urgency: DeadlineUrgency,
}

/// How long before the deadline a reminder goes that would otherwise come too late.
const TOO_LATE_LEAD: TimeDelta = TimeDelta::hours(1);

/// Plans the reminders of a deadline due at `due_at` (its zone `tz` decides which
/// local day it falls on), in the firm's calendar. See the module's rules.
pub fn plan(policy: &Policy, due_at: DateTime<Utc>, tz: Tz, calendar: &Calendar) -> Vec<Planned> {
    let due_date = due_at.with_timezone(&tz).date_naive();
    let mut planned: Vec<Planned> = policy
        .steps
        .iter()
        .enumerate()
        .map(|(index, step)| {
            let at = match step.before {
                Offset::WorkingDays(days) => {
                    let day = calendar.working_days_before(due_date, days);
                    resolve_local(tz, day.and_time(policy.at))
                }
                Offset::Seconds(seconds) => i64::try_from(seconds)
                    .ok()
                    .and_then(TimeDelta::try_seconds)
                    .and_then(|lead| due_at.checked_sub_signed(lead))
                    .unwrap_or(DateTime::<Utc>::MIN_UTC),
            };
            let at = if at >= due_at {
                due_at
                    .checked_sub_signed(TOO_LATE_LEAD)
                    .unwrap_or(DateTime::<Utc>::MIN_UTC)
            } else {
                at
            };
            Planned {
                step: u32::try_from(index).unwrap_or(u32::MAX),
                label: step.before.label(),
                at,
                urgency: step.urgency,
            }
        })
        .collect();
    planned.sort_by_key(|reminder| (reminder.at, reminder.step));
    keep_rising(planned)
}

/// Keeps, from reminders sorted by `(at, step)`, a sequence strictly increasing in
/// instant and never decreasing in urgency (the module's last rule).
fn keep_rising(sorted: Vec<Planned>) -> Vec<Planned> {
    let mut kept: Vec<Planned> = Vec::with_capacity(sorted.len());
    for reminder in sorted {
        let Some(last) = kept.last() else {
            kept.push(reminder);
            continue;
        };
        if reminder.urgency < last.urgency {
            continue;
        }
        if reminder.at == last.at {
            // Sorted by step too, so `reminder` is the later step: it wins ties.
            kept.pop();
        }
        kept.push(reminder);
    }
    kept
}

/// For a deadline declared (or re-planned) late: among `planned`, those with
/// `at <= now` are past. Returns the one to send at once (the most urgent past one;
/// ties: the latest, then the last in the slice) and the indices of the other past ones,
/// in slice order, which it supersedes. On [`plan`]'s output the one to send is simply
/// the last past one.
pub fn split_past(planned: &[Planned], now: DateTime<Utc>) -> (Option<usize>, Vec<usize>) {
    let past: Vec<usize> = planned
        .iter()
        .enumerate()
        .filter(|(_, reminder)| reminder.at <= now)
        .map(|(index, _)| index)
        .collect();
    let send = past
        .iter()
        .copied()
        .max_by_key(|&index| (planned[index].urgency, planned[index].at, index));
    let superseded = past
        .into_iter()
        .filter(|&index| Some(index) != send)
        .collect();
    (send, superseded)
}

/// `at` as "HH:MM" in JSON: what a person writes in a config, not chrono's "09:00:00".
mod hhmm {
    use chrono::NaiveTime;
    use serde::{Deserialize, Deserializer, Serializer, de::Error};

    use super::super::calendar::parse_hhmm;

    pub(super) fn serialize<S: Serializer>(at: &NaiveTime, out: S) -> Result<S::Ok, S::Error> {
        out.collect_str(&at.format("%H:%M"))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(input: D) -> Result<NaiveTime, D::Error> {
        let text = String::deserialize(input)?;
        parse_hhmm(&text).map_err(|e| D::Error::custom(format!("at: {e}")))
    }
}
