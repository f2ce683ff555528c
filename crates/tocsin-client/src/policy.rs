//! Which notifications deserve an OS notification ("toast"); the app only renders the
//! decision.
//!
//! Rules, in order:
//! 1. Ephemeral kinds (typing, presence, read receipts) are never toasted, and `low`
//!    urgency is badge and panel only (PROTOCOL.md §8).
//! 2. **Critical** notifications (urgency `critical`: critical deadlines, system errors)
//!    are shown individually and stay on screen. A pause never silences them, and
//!    neither does a disabled kind: the kind toggles are about the everyday flow, and
//!    a deadline about to expire is exactly what the user must not miss. The one
//!    opt-out is [`Preferences::critical_breaks_through_quiet_hours`] = false, which
//!    silences them during quiet hours only.
//! 3. Other notifications are silent when their kind is disabled, during a pause, or
//!    during quiet hours; otherwise shown.
//! 4. After an outage ([`Policy::decide_catch_up`]), if more than
//!    [`Preferences::summary_threshold`] non-critical notifications would be shown,
//!    they become one summary; critical ones are still shown one by one.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, NaiveTime, TimeDelta, TimeZone, Utc};
use serde::{Deserialize, Serialize};
use tocsin_protocol::{Kind, Notification, Urgency};

/// Where "pause until tomorrow" ends, in local time.
pub const MORNING: NaiveTime = match NaiveTime::from_hms_opt(8, 0, 0) {
    Some(time) => time,
    None => panic!("08:00 is a valid time"),
};

/// A daily window, in local time, during which ordinary notifications stay silent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct QuietHours {
    /// First quiet moment (inclusive).
    pub start: NaiveTime,
    /// First moment no longer quiet (exclusive). Before `start` means the window wraps
    /// midnight (22:00–07:00); equal to `start` means an empty window.
    pub end: NaiveTime,
}

impl QuietHours {
    /// True when `time` (local) falls in the window.
    pub fn contains(&self, time: NaiveTime) -> bool {
        if self.start <= self.end {
            self.start <= time && time < self.end
        } else {
            time >= self.start || time < self.end
        }
    }
}

/// The user's notification preferences, persisted as JSON by the app. Missing fields
/// take their defaults, so older files keep loading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Preferences {
    /// Per-kind toggles; a kind absent from the map is on (so new kinds start on).
    pub enabled_kinds: BTreeMap<Kind, bool>,
    /// The nightly silent window, if any.
    pub quiet_hours: Option<QuietHours>,
    /// Whether critical notifications still show during quiet hours (pause and kind
    /// toggles never silence them).
    pub critical_breaks_through_quiet_hours: bool,
    /// Ordinary notifications stay silent until then (tray "pause notifications").
    pub paused_until: Option<DateTime<Utc>>,
    /// After an outage, more than this many ordinary toasts become one summary.
    pub summary_threshold: usize,
}

impl Default for Preferences {
    fn default() -> Self {
        Preferences {
            enabled_kinds: BTreeMap::new(),
            quiet_hours: None,
            critical_breaks_through_quiet_hours: true,
            paused_until: None,
            summary_threshold: 3,
        }
    }
}

impl Preferences {
    /// Whether ordinary notifications of `kind` are toasted. A kind from a newer
    /// gateway is a generic notice: it follows the system notices' toggle unless it
    /// has its own.
    pub fn kind_enabled(&self, kind: Kind) -> bool {
        match self.enabled_kinds.get(&kind) {
            Some(enabled) => *enabled,
            None if kind == Kind::Unknown => self.kind_enabled(Kind::SystemNotification),
            None => true,
        }
    }

    /// Turns a kind's toasts on or off.
    pub fn set_kind_enabled(&mut self, kind: Kind, enabled: bool) {
        self.enabled_kinds.insert(kind, enabled);
    }

    /// True while a pause is in effect.
    pub fn is_paused(&self, now: DateTime<Utc>) -> bool {
        self.paused_until.is_some_and(|until| now < until)
    }

    /// Pauses ordinary notifications for `duration` (tray "1 h").
    pub fn pause_for(&mut self, now: DateTime<Utc>, duration: Duration) {
        let delta = TimeDelta::from_std(duration).unwrap_or(TimeDelta::MAX);
        let until = now
            .checked_add_signed(delta)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        self.paused_until = Some(until);
    }

    /// Pauses ordinary notifications until [`MORNING`] (08:00) on the next calendar day
    /// in `now`'s time zone (tray "until tomorrow"), even when it is already past
    /// midnight: the label promises tomorrow.
    pub fn pause_until_tomorrow<Tz: TimeZone>(&mut self, now: &DateTime<Tz>) {
        let until = now
            .date_naive()
            .succ_opt()
            .and_then(|day| {
                now.timezone()
                    .from_local_datetime(&day.and_time(MORNING))
                    .earliest()
            })
            .map(|local| local.with_timezone(&Utc));
        // A DST gap exactly at 08:00 (none in practice): fall back to 24 h.
        let until = until.unwrap_or_else(|| now.with_timezone(&Utc) + TimeDelta::hours(24));
        self.paused_until = Some(until);
    }

    /// Ends any pause (tray "off").
    pub fn resume(&mut self) {
        self.paused_until = None;
    }

    fn in_quiet_hours<Tz: TimeZone>(&self, now: &DateTime<Tz>) -> bool {
        self.quiet_hours.is_some_and(|q| q.contains(now.time()))
    }
}

/// What the app should do for one notification, or for a catch-up batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Toast {
    /// Show this notification on its own.
    Show {
        /// The notification's id (to render it and to open the panel at it).
        notification_id: String,
        /// Critical: stays on screen until dismissed, with an action (PROTOCOL.md §8).
        critical: bool,
    },
    /// One toast standing for many ordinary notifications received while offline
    /// ("12 new notifications while offline").
    Summary {
        /// How many notifications it stands for.
        count: usize,
        /// The same count split by kind, for the toast's text.
        by_kind: BTreeMap<Kind, usize>,
    },
    /// Badge and panel only.
    Silent,
}

impl Toast {
    /// True for an individual critical toast.
    pub fn is_critical(&self) -> bool {
        matches!(self, Toast::Show { critical: true, .. })
    }
}

/// Applies [`Preferences`] to incoming notifications.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    /// The preferences in force; the app replaces them when the user edits them.
    pub prefs: Preferences,
}

impl Policy {
    /// A policy with these preferences.
    pub fn new(prefs: Preferences) -> Self {
        Policy { prefs }
    }

    /// The decision for one notification arriving live. `now` is local time (quiet
    /// hours are read in its time zone).
    pub fn decide_live<Tz: TimeZone>(
        &self,
        notification: &Notification,
        now: &DateTime<Tz>,
    ) -> Toast {
        let kind = notification.kind();
        if kind.is_ephemeral() || notification.urgency == Urgency::Low {
            return Toast::Silent;
        }
        let quiet = self.prefs.in_quiet_hours(now);
        let critical = notification.urgency == Urgency::Critical;
        let show = if critical {
            !quiet || self.prefs.critical_breaks_through_quiet_hours
        } else {
            self.prefs.kind_enabled(kind)
                && !quiet
                && !self.prefs.is_paused(now.with_timezone(&Utc))
        };
        if show {
            Toast::Show {
                notification_id: notification.id.clone(),
                critical,
            }
        } else {
            Toast::Silent
        }
    }

    /// The toasts for a batch received after an outage (duplicates by id ignored):
    /// each critical one individually, and the ordinary ones individually too unless
    /// there are more than `summary_threshold`, in which case one [`Toast::Summary`]
    /// comes after the individual ones. Silent notifications produce nothing.
    pub fn decide_catch_up<Tz: TimeZone>(
        &self,
        notifications: &[Notification],
        now: &DateTime<Tz>,
    ) -> Vec<Toast> {
        let mut seen = HashSet::new();
        let shown: Vec<(Kind, Toast)> = notifications
            .iter()
            .filter(|n| seen.insert(n.id.as_str()))
            .map(|n| (n.kind(), self.decide_live(n, now)))
            .filter(|(_, toast)| *toast != Toast::Silent)
            .collect();
        let mut by_kind = BTreeMap::new();
        for (kind, toast) in &shown {
            if !toast.is_critical() {
                *by_kind.entry(*kind).or_insert(0) += 1;
            }
        }
        let count: usize = by_kind.values().sum();
        if count <= self.prefs.summary_threshold {
            return shown.into_iter().map(|(_, toast)| toast).collect();
        }
        let mut toasts: Vec<Toast> = shown
            .into_iter()
            .map(|(_, toast)| toast)
            .filter(Toast::is_critical)
            .collect();
        toasts.push(Toast::Summary { count, by_kind });
        toasts
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::FixedOffset;
    use tocsin_protocol::NotificationData;
    use tocsin_protocol::notification::{
        DeadlineAlert, DeadlineUrgency, EmailReceived, SystemLevel, SystemNotification,
        TypingIndicator,
    };

    fn paris(y: i32, m: u32, d: u32, h: u32, min: u32) -> DateTime<FixedOffset> {
        let offset = FixedOffset::east_opt(3600).expect("offset");
        offset
            .with_ymd_and_hms(y, m, d, h, min, 0)
            .single()
            .expect("valid time")
    }

    fn noon() -> DateTime<FixedOffset> {
        paris(2026, 11, 21, 12, 0)
    }

    fn at(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).expect("valid time")
    }

    fn notification(id: &str, data: NotificationData, urgency: Urgency) -> Notification {
        Notification {
            url: None,
            id: id.to_owned(),
            data,
            created_at: noon().with_timezone(&Utc),
            urgency,
            title: id.to_owned(),
            body: String::new(),
        }
    }

    fn email(id: &str) -> Notification {
        let data = NotificationData::EmailReceived(EmailReceived {
            extra: Default::default(),
            subject: "Conclusions".into(),
            from: "Maître Martin".into(),
            dossier_number: None,
            message_id: None,
            has_attachments: false,
        });
        notification(id, data, Urgency::Normal)
    }

    fn system(id: &str, level: SystemLevel, urgency: Urgency) -> Notification {
        let data = NotificationData::SystemNotification(SystemNotification {
            extra: Default::default(),
            level,
            code: None,
        });
        notification(id, data, urgency)
    }

    fn deadline(id: &str, urgency: DeadlineUrgency) -> Notification {
        let data = NotificationData::DeadlineAlert(DeadlineAlert {
            extra: Default::default(),
            deadline_id: id.into(),
            deadline_type: "appel".into(),
            due_at: noon() + TimeDelta::days(1),
            time_zone: "Europe/Paris".into(),
            urgency,
            remaining_days: 1,
            dossier_number: None,
            dossier_title: None,
            working_days_left: None,
            reminder: None,
            late: false,
            escalation: None,
        });
        let urgency = match urgency {
            DeadlineUrgency::Critical => Urgency::Critical,
            DeadlineUrgency::Urgent => Urgency::High,
            DeadlineUrgency::Warning => Urgency::Normal,
            DeadlineUrgency::Info => Urgency::Low,
        };
        notification(id, data, urgency)
    }

    fn shown(id: &str, critical: bool) -> Toast {
        Toast::Show {
            notification_id: id.into(),
            critical,
        }
    }

    #[test]
    fn ordinary_notifications_show_and_low_or_ephemeral_do_not() {
        let policy = Policy::default();
        assert_eq!(policy.decide_live(&email("e"), &noon()), shown("e", false));
        assert_eq!(
            policy.decide_live(&deadline("d", DeadlineUrgency::Info), &noon()),
            Toast::Silent
        );
        let typing = NotificationData::TypingIndicator(TypingIndicator {
            conversation_id: "c".into(),
            user_id: "u".into(),
            active: true,
        });
        let typing = notification("t", typing, Urgency::Critical);
        assert_eq!(policy.decide_live(&typing, &noon()), Toast::Silent);
    }

    #[test]
    fn five_hundred_missed_with_seven_critical_make_one_summary_and_seven_toasts() {
        let mut batch = Vec::new();
        for i in 0..500 {
            batch.push(match i % 71 {
                0 if i < 7 * 71 => deadline(&format!("n{i}"), DeadlineUrgency::Critical),
                1 => system(&format!("n{i}"), SystemLevel::Info, Urgency::Normal),
                2 => deadline(&format!("n{i}"), DeadlineUrgency::Info),
                _ => email(&format!("n{i}")),
            });
        }
        let critical = batch
            .iter()
            .filter(|n| n.urgency == Urgency::Critical)
            .count();
        assert_eq!(critical, 7);
        let low = batch.iter().filter(|n| n.urgency == Urgency::Low).count();
        batch.push(email("n3")); // a duplicate after a reconnect counts once

        let toasts = Policy::default().decide_catch_up(&batch, &noon());
        let individual: Vec<&Toast> = toasts.iter().filter(|t| t.is_critical()).collect();
        assert_eq!(individual.len(), 7);
        assert_eq!(toasts.len(), 8, "{toasts:?}");
        let Some(Toast::Summary { count, by_kind }) = toasts.last() else {
            panic!("the summary comes last: {toasts:?}");
        };
        assert_eq!(*count, 500 - 7 - low);
        assert_eq!(by_kind.get(&Kind::SystemNotification), Some(&8));
        assert_eq!(by_kind.values().sum::<usize>(), *count);
        assert!(
            !by_kind.contains_key(&Kind::DeadlineAlert),
            "low ones are silent"
        );
    }

    #[test]
    fn a_short_catch_up_is_shown_one_by_one_in_order() {
        let batch = [
            email("a"),
            deadline("b", DeadlineUrgency::Critical),
            email("c"),
            email("d"),
        ];
        let toasts = Policy::default().decide_catch_up(&batch, &noon());
        assert_eq!(
            toasts,
            [
                shown("a", false),
                shown("b", true),
                shown("c", false),
                shown("d", false)
            ]
        );
        let mut four = batch.to_vec();
        four.push(email("e"));
        let toasts = Policy::default().decide_catch_up(&four, &noon());
        assert_eq!(toasts.len(), 2, "4 ordinary > threshold 3: {toasts:?}");
        assert!(matches!(toasts[1], Toast::Summary { count: 4, .. }));
    }

    #[test]
    fn quiet_hours_wrap_midnight() {
        let night = QuietHours {
            start: at(22, 0),
            end: at(7, 0),
        };
        assert!(night.contains(at(22, 0)));
        assert!(night.contains(at(23, 59)));
        assert!(night.contains(at(0, 0)));
        assert!(night.contains(at(6, 59)));
        assert!(!night.contains(at(7, 0)));
        assert!(!night.contains(at(12, 0)));
        assert!(!night.contains(at(21, 59)));
        let lunch = QuietHours {
            start: at(12, 0),
            end: at(14, 0),
        };
        assert!(lunch.contains(at(13, 0)));
        assert!(!lunch.contains(at(23, 0)));
        let empty = QuietHours {
            start: at(9, 0),
            end: at(9, 0),
        };
        assert!(!empty.contains(at(9, 0)));

        let mut prefs = Preferences {
            quiet_hours: Some(night),
            ..Preferences::default()
        };
        let late = paris(2026, 11, 21, 23, 30);
        let critical = deadline("d", DeadlineUrgency::Critical);
        let policy = Policy::new(prefs.clone());
        assert_eq!(policy.decide_live(&email("e"), &late), Toast::Silent);
        assert_eq!(policy.decide_live(&email("e"), &noon()), shown("e", false));
        assert_eq!(policy.decide_live(&critical, &late), shown("d", true));

        prefs.critical_breaks_through_quiet_hours = false;
        let policy = Policy::new(prefs);
        assert_eq!(policy.decide_live(&critical, &late), Toast::Silent);
        assert_eq!(policy.decide_live(&critical, &noon()), shown("d", true));
    }

    #[test]
    fn quiet_hours_are_read_in_local_time() {
        let prefs = Preferences {
            quiet_hours: Some(QuietHours {
                start: at(22, 0),
                end: at(7, 0),
            }),
            ..Preferences::default()
        };
        // 22:30 UTC is 23:30 in Paris (quiet) but 17:30 in New York (not quiet).
        let utc = Utc
            .with_ymd_and_hms(2026, 11, 21, 22, 30, 0)
            .single()
            .expect("time");
        let new_york = utc.with_timezone(&FixedOffset::west_opt(5 * 3600).expect("offset"));
        let paris = utc.with_timezone(&FixedOffset::east_opt(3600).expect("offset"));
        let policy = Policy::new(prefs);
        assert_eq!(policy.decide_live(&email("e"), &paris), Toast::Silent);
        assert_eq!(
            policy.decide_live(&email("e"), &new_york),
            shown("e", false)
        );
    }

    #[test]
    fn pause_silences_ordinary_but_never_critical() {
        let mut prefs = Preferences {
            critical_breaks_through_quiet_hours: false,
            ..Preferences::default()
        };
        prefs.pause_for(noon().with_timezone(&Utc), Duration::from_secs(3600));
        let policy = Policy::new(prefs.clone());
        let error = system("s", SystemLevel::Error, Urgency::Critical);
        assert_eq!(policy.decide_live(&email("e"), &noon()), Toast::Silent);
        assert_eq!(policy.decide_live(&error, &noon()), shown("s", true));
        let later = noon() + TimeDelta::minutes(60);
        assert_eq!(policy.decide_live(&email("e"), &later), shown("e", false));

        prefs.pause_for(noon().with_timezone(&Utc), Duration::from_secs(3600));
        prefs.resume();
        let policy = Policy::new(prefs);
        assert_eq!(policy.decide_live(&email("e"), &noon()), shown("e", false));
    }

    #[test]
    fn pause_until_tomorrow_ends_at_eight_local_on_the_next_day() {
        let mut prefs = Preferences::default();
        prefs.pause_until_tomorrow(&paris(2026, 11, 21, 23, 30));
        let expected = paris(2026, 11, 22, 8, 0).with_timezone(&Utc);
        assert_eq!(prefs.paused_until, Some(expected));
        prefs.pause_until_tomorrow(&paris(2026, 11, 21, 0, 30));
        let expected = paris(2026, 11, 22, 8, 0).with_timezone(&Utc);
        assert_eq!(
            prefs.paused_until,
            Some(expected),
            "the label says tomorrow"
        );
        assert!(prefs.is_paused(paris(2026, 11, 22, 7, 59).with_timezone(&Utc)));
        assert!(!prefs.is_paused(expected));
    }

    #[test]
    fn kinds_from_a_newer_gateway_follow_the_system_notices_toggle() {
        let mut prefs = Preferences::default();
        assert!(prefs.kind_enabled(Kind::Unknown));
        prefs.set_kind_enabled(Kind::SystemNotification, false);
        assert!(!prefs.kind_enabled(Kind::Unknown));
        prefs.set_kind_enabled(Kind::Unknown, true);
        assert!(prefs.kind_enabled(Kind::Unknown), "its own toggle wins");
    }

    #[test]
    fn a_disabled_kind_is_silent_except_when_critical() {
        let mut prefs = Preferences::default();
        prefs.set_kind_enabled(Kind::DeadlineAlert, false);
        prefs.set_kind_enabled(Kind::EmailReceived, false);
        assert!(prefs.kind_enabled(Kind::DossierUpdated), "absent means on");
        let policy = Policy::new(prefs);
        assert_eq!(policy.decide_live(&email("e"), &noon()), Toast::Silent);
        let urgent = deadline("u", DeadlineUrgency::Urgent);
        assert_eq!(policy.decide_live(&urgent, &noon()), Toast::Silent);
        let critical = deadline("c", DeadlineUrgency::Critical);
        assert_eq!(policy.decide_live(&critical, &noon()), shown("c", true));
    }

    #[test]
    fn preferences_round_trip_and_default_missing_fields() {
        let mut prefs = Preferences {
            quiet_hours: Some(QuietHours {
                start: at(22, 0),
                end: at(7, 0),
            }),
            ..Preferences::default()
        };
        prefs.set_kind_enabled(Kind::DossierUpdated, false);
        prefs.pause_for(noon().with_timezone(&Utc), Duration::from_secs(60));
        let json = serde_json::to_string(&prefs).expect("serialize");
        assert!(json.contains(r#""dossier-updated":false"#), "{json}");
        let back: Preferences = serde_json::from_str(&json).expect("deserialize");
        assert_eq!(back, prefs);

        let old: Preferences = serde_json::from_str(r#"{"summary_threshold":10}"#).expect("old");
        assert_eq!(old.summary_threshold, 10);
        assert!(old.critical_breaks_through_quiet_hours);
        assert!(old.kind_enabled(Kind::EmailReceived));
    }
}
