//! A firm's working days: French public holidays, the firm's own closures, and
//! arithmetic in working days and working hours.
//!
//! Lawyers count procedural deadlines in working days ("J-3" is three working days
//! before the deadline, never a Sunday), and escalations in working hours. Everything
//! here is pure: dates in, dates out, no clock and no store, so the scheduler can be
//! tested against fixed calendars.
//!
//! # Where the holidays come from
//! Today's list of French public holidays, applied to every year: eight fixed dates plus
//! Easter Monday, Ascension (Easter + 39) and Whit Monday (Easter + 50); Alsace-Moselle
//! adds Good Friday (Easter − 2) and 26 December. Easter comes from the `computus`
//! crate; the table is ours. `fasti` was evaluated first: its `france::SETTLEMENT` has
//! the same eleven days, but it requires Rust 1.90 where this workspace promises 1.89,
//! it only answers whether a day is a holiday (a reminder names it: "Lundi de Pâques"),
//! and it has no Alsace-Moselle calendar. `bdays` has no French calendar at all.
//! Whit Monday stays a holiday although many firms work it as the "journée de
//! solidarité": the law still lists it, and a reminder a day early does no harm.
//!
//! # Bounds
//! A calendar may close every day (a misconfigured firm). No search looks further than
//! [`SEARCH_LIMIT_DAYS`] for a working day; past that, each function falls back to plain
//! calendar time, as its doc says.

use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use chrono::{
    DateTime, Datelike, Days, NaiveDate, NaiveDateTime, NaiveTime, TimeDelta, TimeZone, Timelike,
    Utc, Weekday,
};
use chrono_tz::Tz;

#[cfg(test)]
mod tests;

/// How far any search goes for a working day (about three years) before falling back.
pub const SEARCH_LIMIT_DAYS: u32 = 3 * 366;

/// Working-day counts above this (about 38 years) are counted in calendar days instead:
/// it bounds [`Calendar::working_days_before`] whatever `n` it is given.
pub const MAX_COUNTED_WORKING_DAYS: u32 = 10_000;

/// Working time beyond about a century is added as plain time: it bounds
/// [`Calendar::add_working_time`] whatever duration it is given.
const MAX_WORKING_TIME_DAYS: u32 = 36_600;

/// What [`Calendar::holiday`] names a firm closure.
pub const FIRM_CLOSURE: &str = "Fermeture du cabinet";

/// A firm's working-day calendar.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Calendar {
    /// Which public holidays apply.
    region: Region,
    /// The firm's own non-working days (bridge days, the August closure): a set, so a
    /// date given twice is one closure and lookups stay logarithmic.
    closed: BTreeSet<NaiveDate>,
}

/// The public-holiday sets a firm can choose from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Region {
    France,
    AlsaceMoselle,
    WeekendsOnly,
}

/// How a public holiday's date is found in a given year.
#[derive(Debug, Clone, Copy)]
enum Rule {
    /// The same month and day every year.
    Fixed(u32, u32),
    /// A number of days after (or, negative, before) Easter Sunday.
    Easter(i64),
}

/// Metropolitan France. Fixed dates come first, so that when Ascension falls on 1 May
/// (as in 2008) the day keeps its better-known name.
const METROPOLITAN: &[(Rule, &str)] = &[
    (Rule::Fixed(1, 1), "Jour de l'an"),
    (Rule::Fixed(5, 1), "Fête du Travail"),
    (Rule::Fixed(5, 8), "Victoire 1945"),
    (Rule::Fixed(7, 14), "Fête nationale"),
    (Rule::Fixed(8, 15), "Assomption"),
    (Rule::Fixed(11, 1), "Toussaint"),
    (Rule::Fixed(11, 11), "Armistice 1918"),
    (Rule::Fixed(12, 25), "Noël"),
    (Rule::Easter(1), "Lundi de Pâques"),
    (Rule::Easter(39), "Ascension"),
    (Rule::Easter(50), "Lundi de Pentecôte"),
];

/// What the local law of Alsace and Moselle adds to [`METROPOLITAN`].
const ALSACE_MOSELLE_EXTRA: &[(Rule, &str)] = &[
    (Rule::Fixed(12, 26), "Saint-Étienne"),
    (Rule::Easter(-2), "Vendredi saint"),
];

impl Region {
    const ALL: [(Region, &'static str); 3] = [
        (Region::France, "fr"),
        (Region::AlsaceMoselle, "fr-alsace-moselle"),
        (Region::WeekendsOnly, "none"),
    ];

    fn name(self) -> &'static str {
        match self {
            Region::France => "fr",
            Region::AlsaceMoselle => "fr-alsace-moselle",
            Region::WeekendsOnly => "none",
        }
    }

    fn rules(self) -> impl Iterator<Item = &'static (Rule, &'static str)> {
        let (base, extra): (&[_], &[_]) = match self {
            Region::France => (METROPOLITAN, &[]),
            Region::AlsaceMoselle => (METROPOLITAN, ALSACE_MOSELLE_EXTRA),
            Region::WeekendsOnly => (&[], &[]),
        };
        base.iter().chain(extra)
    }
}

impl Rule {
    fn date_in(self, year: i32, easter: Option<NaiveDate>) -> Option<NaiveDate> {
        match self {
            Rule::Fixed(month, day) => NaiveDate::from_ymd_opt(year, month, day),
            Rule::Easter(offset) => easter?.checked_add_signed(TimeDelta::try_days(offset)?),
        }
    }
}

/// Easter Sunday (Gregorian), or `None` outside the years `computus` covers (1583–9999),
/// where the Easter holidays are simply not counted.
fn easter(year: i32) -> Option<NaiveDate> {
    let date = computus::gregorian(year).ok()?;
    NaiveDate::from_ymd_opt(date.year, date.month, date.day)
}

fn is_weekend(day: Weekday) -> bool {
    matches!(day, Weekday::Sat | Weekday::Sun)
}

impl Default for Calendar {
    /// Metropolitan France, no firm closures.
    fn default() -> Self {
        Calendar {
            region: Region::France,
            closed: BTreeSet::new(),
        }
    }
}

impl Calendar {
    /// The names [`Calendar::new`] accepts.
    pub const NAMES: [&'static str; 3] = ["fr", "fr-alsace-moselle", "none"];

    /// `name`: "fr" (metropolitan France, the default), "fr-alsace-moselle", "none"
    /// (weekends only). `closed`: extra non-working dates of the firm (e.g. a bridge
    /// day). An unknown name is an error whose message lists the valid names.
    pub fn new(name: &str, closed: &[NaiveDate]) -> Result<Calendar, String> {
        let Some((region, _)) = Region::ALL.into_iter().find(|(_, known)| *known == name) else {
            return Err(format!(
                "unknown calendar {name:?}: expected one of {}",
                Self::NAMES.map(|known| format!("{known:?}")).join(", ")
            ));
        };
        Ok(Calendar {
            region,
            closed: closed.iter().copied().collect(),
        })
    }

    /// The name it was made from, e.g. "fr".
    pub fn name(&self) -> &str {
        self.region.name()
    }

    /// The public holiday on this date, if any (its French name, e.g. "Lundi de
    /// Pâques"); firm closures give [`FIRM_CLOSURE`]. A closure on a public holiday
    /// gives the holiday's name.
    pub fn holiday(&self, date: NaiveDate) -> Option<&'static str> {
        let easter = easter(date.year());
        self.region
            .rules()
            .find(|(rule, _)| rule.date_in(date.year(), easter) == Some(date))
            .map(|(_, name)| *name)
            .or_else(|| self.closed.contains(&date).then_some(FIRM_CLOSURE))
    }

    /// Every non-working day of `year` other than weekends, in date order, each date
    /// once: public holidays (even those on a weekend) and firm closures.
    pub fn holidays(&self, year: i32) -> Vec<(NaiveDate, &'static str)> {
        let easter = easter(year);
        let mut days: Vec<(NaiveDate, &'static str)> = Vec::new();
        for (rule, name) in self.region.rules() {
            if let Some(date) = rule.date_in(year, easter)
                && !days.iter().any(|(known, _)| *known == date)
            {
                days.push((date, name));
            }
        }
        let first = NaiveDate::from_ymd_opt(year, 1, 1);
        let last = NaiveDate::from_ymd_opt(year, 12, 31);
        if let (Some(first), Some(last)) = (first, last) {
            for date in self.closed.range(first..=last) {
                if !days.iter().any(|(known, _)| known == date) {
                    days.push((*date, FIRM_CLOSURE));
                }
            }
        }
        days.sort_unstable_by_key(|(date, _)| *date);
        days
    }

    /// Not a Saturday or Sunday, not a public holiday, not a firm closure.
    pub fn is_working_day(&self, date: NaiveDate) -> bool {
        !is_weekend(date.weekday()) && self.holiday(date).is_none()
    }

    /// The n-th working day strictly before `date` (n ≥ 1). n = 0: `date` itself if it
    /// is a working day, else the working day before it.
    ///
    /// Falls back to `date` minus n calendar days when no working day turns up within
    /// [`SEARCH_LIMIT_DAYS`], or when n exceeds [`MAX_COUNTED_WORKING_DAYS`].
    pub fn working_days_before(&self, date: NaiveDate, n: u32) -> NaiveDate {
        let fallback = date
            .checked_sub_days(Days::new(n.into()))
            .unwrap_or(NaiveDate::MIN);
        if n > MAX_COUNTED_WORKING_DAYS {
            return fallback;
        }
        if n == 0 && self.is_working_day(date) {
            return date;
        }
        let mut left = n.max(1);
        let mut day = date;
        let mut closed_run = 0;
        while let Some(previous) = day.pred_opt() {
            day = previous;
            if self.is_working_day(day) {
                left -= 1;
                if left == 0 {
                    return day;
                }
                closed_run = 0;
            } else {
                closed_run += 1;
                if closed_run > SEARCH_LIMIT_DAYS {
                    break;
                }
            }
        }
        fallback
    }

    /// Working days left from `today` until `due` as a lawyer counts them: 0 when due
    /// today; when due later, 1 + the working days strictly between (so on the Friday
    /// before a deadline on Monday: 1, on the Thursday: 2); when overdue, minus the
    /// calendar days past.
    pub fn working_days_left(&self, today: NaiveDate, due: NaiveDate) -> i64 {
        if due <= today {
            return -(today - due).num_days();
        }
        match (today.succ_opt(), due.pred_opt()) {
            (Some(first), Some(last)) if first <= last => 1 + self.working_days_in(first, last),
            _ => 1,
        }
    }

    /// Working days in `first..=last` (`first <= last`), counted without walking every
    /// day, so that any span costs one step per year rather than per day.
    fn working_days_in(&self, first: NaiveDate, last: NaiveDate) -> i64 {
        let days = (last - first).num_days() + 1;
        let mut weekdays = days / 7 * 5;
        let mut weekday = first.weekday();
        for _ in 0..days % 7 {
            if !is_weekend(weekday) {
                weekdays += 1;
            }
            weekday = weekday.succ();
        }
        let mut off = 0;
        for year in first.year()..=last.year() {
            off += self
                .holidays(year)
                .iter()
                .filter(|(date, _)| (first..=last).contains(date) && !is_weekend(date.weekday()))
                .count();
        }
        weekdays - i64::try_from(off).unwrap_or(i64::MAX)
    }

    /// `from` plus `duration` counted only inside working hours (`hours`, local time in
    /// `tz`, on working days). From outside working hours, counting starts at the next
    /// opening. Used for "escalate after 2 working hours".
    ///
    /// A zero or negative duration gives `from`. Plain time (`from + duration`) is the
    /// fallback when `hours` is empty (start not before end), when no working day turns
    /// up within [`SEARCH_LIMIT_DAYS`], or when the duration outlasts about a century.
    pub fn add_working_time(
        &self,
        from: DateTime<Utc>,
        duration: TimeDelta,
        hours: WorkingHours,
        tz: Tz,
    ) -> DateTime<Utc> {
        if duration <= TimeDelta::zero() {
            return from;
        }
        let fallback = from
            .checked_add_signed(duration)
            .unwrap_or(DateTime::<Utc>::MAX_UTC);
        if hours.start >= hours.end {
            return fallback;
        }
        let mut left = duration;
        let mut day = from.with_timezone(&tz).date_naive();
        let mut closed_run = 0;
        for _ in 0..MAX_WORKING_TIME_DAYS {
            if self.is_working_day(day) {
                closed_run = 0;
                // Through UTC, so that a day whose hours straddle a clock change counts
                // the hours actually worked.
                let opening = resolve_local(tz, day.and_time(hours.start)).max(from);
                let closing = resolve_local(tz, day.and_time(hours.end));
                if opening < closing {
                    let open_for = closing - opening;
                    if left <= open_for {
                        return opening + left;
                    }
                    left -= open_for;
                }
            } else {
                closed_run += 1;
                if closed_run > SEARCH_LIMIT_DAYS {
                    break;
                }
            }
            let Some(next) = day.succ_opt() else { break };
            day = next;
        }
        fallback
    }
}

/// The instant a local wall-clock time means in `tz`. A time that the clock skips (the
/// spring-forward gap) gives the first valid minute after it; a time that happens twice
/// (the autumn fall-back) gives the earlier instant, so a reminder is never late.
pub fn resolve_local(tz: Tz, local: NaiveDateTime) -> DateTime<Utc> {
    if let Some(instant) = tz.from_local_datetime(&local).earliest() {
        return instant.with_timezone(&Utc);
    }
    // Gaps last an hour, sometimes half an hour, at most a day (Samoa, 2011).
    let mut probe = local
        .with_second(0)
        .and_then(|t| t.with_nanosecond(0))
        .unwrap_or(local);
    for _ in 0..2 * 24 * 60 {
        probe += TimeDelta::minutes(1);
        if let Some(instant) = tz.from_local_datetime(&probe).earliest() {
            return instant.with_timezone(&Utc);
        }
    }
    // No zone has a gap that long; reading the time as UTC at least gives an answer.
    local.and_utc()
}

/// A time of day known when compiling; only ever called in `const` items and
/// defaults with literal, valid arguments.
pub(super) const fn hm(hour: u32, minute: u32) -> NaiveTime {
    match NaiveTime::from_hms_opt(hour, minute, 0) {
        Some(time) => time,
        None => NaiveTime::MIN,
    }
}

/// Parses a strict "HH:MM" (24-hour, two digits each), e.g. "09:00".
pub fn parse_hhmm(text: &str) -> Result<NaiveTime, String> {
    let invalid = || format!("expected \"HH:MM\" (e.g. \"09:00\"), got {text:?}");
    let bytes = text.as_bytes();
    let digit = |at: usize| {
        bytes
            .get(at)
            .filter(|b| b.is_ascii_digit())
            .map(|b| u32::from(b - b'0'))
    };
    let (Some(h1), Some(h2), Some(b':'), Some(m1), Some(m2), 5) = (
        digit(0),
        digit(1),
        bytes.get(2).copied(),
        digit(3),
        digit(4),
        bytes.len(),
    ) else {
        return Err(invalid());
    };
    NaiveTime::from_hms_opt(h1 * 10 + h2, m1 * 10 + m2, 0).ok_or_else(invalid)
}

/// Opening hours of a working day, local time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WorkingHours {
    /// When the firm opens.
    pub start: NaiveTime,
    /// When it closes; after `start`, or the day has no working time at all.
    pub end: NaiveTime,
}

impl Default for WorkingHours {
    /// 09:00–18:00.
    fn default() -> Self {
        WorkingHours {
            start: hm(9, 0),
            end: hm(18, 0),
        }
    }
}

impl WorkingHours {
    /// Opening hours from "HH:MM-HH:MM", e.g. "09:00-18:00"; the opening must come
    /// before the closing (a firm open past midnight is not supported).
    pub fn parse(text: &str) -> Result<WorkingHours, String> {
        let Some((start, end)) = text.split_once('-') else {
            return Err(format!(
                "expected \"HH:MM-HH:MM\" (e.g. \"09:00-18:00\"), got {text:?}"
            ));
        };
        let start = parse_hhmm(start.trim()).map_err(|e| format!("in {text:?}: {e}"))?;
        let end = parse_hhmm(end.trim()).map_err(|e| format!("in {text:?}: {e}"))?;
        if start >= end {
            return Err(format!(
                "in {text:?}: opening {} must be before closing {}",
                start.format("%H:%M"),
                end.format("%H:%M")
            ));
        }
        Ok(WorkingHours { start, end })
    }
}

impl FromStr for WorkingHours {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        WorkingHours::parse(text)
    }
}

impl fmt::Display for WorkingHours {
    /// The form [`WorkingHours::parse`] reads, e.g. "09:00-18:00".
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}-{}",
            self.start.format("%H:%M"),
            self.end.format("%H:%M")
        )
    }
}
