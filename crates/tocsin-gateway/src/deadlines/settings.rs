//! A firm's deadline settings: its zone, calendar, reminder policy and escalation
//! delays. Stored as JSON per firm (`PUT /v1/deadline-settings`); every field has
//! a default, so a firm that never set anything gets J-3/J-2/J-1/J-0 at 09:00 Paris
//! time in the French calendar, escalating after 2 working hours, then 2 more.

use chrono::NaiveDate;
use chrono_tz::Tz;
use serde::{Deserialize, Serialize};

use super::calendar::{Calendar, WorkingHours};
use super::plan::Policy;

/// A delay before an escalation step.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Delay {
    /// Hours counted inside the firm's working hours, on working days.
    WorkingHours(u32),
    /// Plain seconds (tests and demos).
    Seconds(u64),
}

/// When a critical reminder nobody acknowledged escalates.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[schema(as = EscalationDelays)]
pub struct Escalation {
    /// After the critical reminder: to the backup (else the partners).
    pub first: Delay,
    /// After the first step: to the partners. `null`: no second step.
    pub second: Option<Delay>,
}

impl Default for Escalation {
    fn default() -> Self {
        Escalation {
            first: Delay::WorkingHours(2),
            second: Some(Delay::WorkingHours(2)),
        }
    }
}

impl Escalation {
    /// Checks the delays are usable.
    pub fn validate(&self) -> Result<(), String> {
        for delay in std::iter::once(self.first).chain(self.second) {
            match delay {
                Delay::WorkingHours(hours) if hours == 0 || hours > 200 => {
                    return Err("escalation: working_hours must be 1-200".into());
                }
                Delay::Seconds(seconds) if seconds == 0 || seconds > 31_536_000 => {
                    return Err("escalation: seconds must be 1-31536000".into());
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// A firm's settings as stored and as `GET /v1/deadline-settings` shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(default, deny_unknown_fields)]
pub struct FirmSettings {
    /// The firm's IANA zone: deadlines without one are in it.
    pub time_zone: String,
    /// `fr`, `fr-alsace-moselle` or `none`.
    pub calendar: String,
    /// Days the firm is closed besides public holidays.
    pub closed: Vec<NaiveDate>,
    /// Working hours, `HH:MM-HH:MM` (escalation delays count inside them).
    pub working_hours: String,
    /// The default reminder policy.
    pub policy: Policy,
    /// The default escalation delays.
    pub escalation: Escalation,
    /// How long the audit trail is kept, in days (default six years: the limitation
    /// period of a claim against a lawyer runs five years from the end of the mission).
    pub audit_retention_days: u32,
}

impl Default for FirmSettings {
    fn default() -> Self {
        FirmSettings {
            time_zone: "Europe/Paris".into(),
            calendar: "fr".into(),
            closed: Vec::new(),
            working_hours: "09:00-18:00".into(),
            policy: Policy::default(),
            escalation: Escalation::default(),
            audit_retention_days: 6 * 366,
        }
    }
}

/// Settings checked and ready to plan with.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// As given.
    pub settings: FirmSettings,
    /// The zone.
    pub zone: Tz,
    /// The calendar with the firm's closures.
    pub calendar: Calendar,
    /// The opening hours.
    pub hours: WorkingHours,
}

impl FirmSettings {
    /// Checks every field; the error names the field and what to fix.
    pub fn resolve(self) -> Result<Resolved, String> {
        let zone = parse_zone(&self.time_zone).map_err(|err| format!("time_zone: {err}"))?;
        let calendar = Calendar::new(&self.calendar, &self.closed)
            .map_err(|err| format!("calendar: {err}"))?;
        let hours = WorkingHours::parse(&self.working_hours)
            .map_err(|err| format!("working_hours: {err}"))?;
        self.policy
            .validate()
            .map_err(|err| format!("policy: {err}"))?;
        self.escalation.validate()?;
        if self.audit_retention_days < 30 {
            return Err("audit_retention_days: at least 30".into());
        }
        if self.closed.len() > 400 {
            return Err("closed: at most 400 dates".into());
        }
        Ok(Resolved {
            settings: self,
            zone,
            calendar,
            hours,
        })
    }

    /// Parses stored settings (written by this module, so only a downgrade could make
    /// them unreadable: then the defaults apply and it is logged).
    pub fn from_stored(tenant: &str, stored: Option<&str>) -> Resolved {
        let parsed = stored.map(|text| {
            serde_json::from_str::<FirmSettings>(text)
                .map_err(|err| err.to_string())
                .and_then(FirmSettings::resolve)
        });
        match parsed {
            Some(Ok(resolved)) => resolved,
            Some(Err(err)) => {
                tracing::error!(tenant, error = %err, "stored deadline settings are unreadable; the defaults apply");
                defaults()
            }
            None => defaults(),
        }
    }
}

fn defaults() -> Resolved {
    // The defaults are constants this module's tests check resolve.
    FirmSettings::default()
        .resolve()
        .unwrap_or_else(|err| unreachable!("default deadline settings: {err}"))
}

/// An IANA zone name, with an error that says what is expected.
pub fn parse_zone(name: &str) -> Result<Tz, String> {
    name.parse::<Tz>().map_err(|_| {
        format!(
            "'{name}' is not an IANA time zone; use a name like Europe/Paris or America/Martinique"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_resolve() {
        let resolved = FirmSettings::default().resolve().expect("defaults");
        assert_eq!(resolved.zone, chrono_tz::Europe::Paris);
    }

    #[test]
    fn a_bad_field_is_named() {
        let bad = FirmSettings {
            time_zone: "Paris".into(),
            ..FirmSettings::default()
        };
        let err = bad.resolve().expect_err("a bad zone");
        assert!(err.starts_with("time_zone:"), "{err}");
        let err = serde_json::from_str::<FirmSettings>(r#"{"timezone":"Europe/Paris"}"#)
            .expect_err("an unknown field")
            .to_string();
        assert!(err.contains("timezone"), "{err}");
    }

    #[test]
    fn escalation_delays_read_as_documented() {
        let escalation: Escalation =
            serde_json::from_str(r#"{"first":{"seconds":3},"second":null}"#).expect("parse");
        assert_eq!(escalation.first, Delay::Seconds(3));
        assert_eq!(escalation.second, None);
        assert!(
            Escalation {
                first: Delay::WorkingHours(0),
                second: None
            }
            .validate()
            .is_err()
        );
    }
}
