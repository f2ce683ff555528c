//! Tests for the calendar: each public holiday of 2026 and 2027 by date and name, and
//! the working-day arithmetic around them, checked on dates one can look up.

use chrono::NaiveDate;
use chrono_tz::Tz;
use chrono_tz::{America, Europe};

use super::*;

fn d(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a valid date")
}

/// A local wall-clock time in `tz`, as an instant.
fn local(tz: Tz, date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    resolve_local(tz, date.and_time(hm(hour, minute)))
}

fn utc(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    date.and_time(hm(hour, minute)).and_utc()
}

fn fr() -> Calendar {
    Calendar::new("fr", &[]).expect("fr is a calendar")
}

fn alsace() -> Calendar {
    Calendar::new("fr-alsace-moselle", &[]).expect("fr-alsace-moselle is a calendar")
}

fn paris(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    local(Europe::Paris, date, hour, minute)
}

/// 2026: Easter on 5 April.
fn holidays_2026() -> Vec<(NaiveDate, &'static str)> {
    vec![
        (d(2026, 1, 1), "Jour de l'an"),
        (d(2026, 4, 6), "Lundi de Pâques"),
        (d(2026, 5, 1), "Fête du Travail"),
        (d(2026, 5, 8), "Victoire 1945"),
        (d(2026, 5, 14), "Ascension"),
        (d(2026, 5, 25), "Lundi de Pentecôte"),
        (d(2026, 7, 14), "Fête nationale"),
        (d(2026, 8, 15), "Assomption"),
        (d(2026, 11, 1), "Toussaint"),
        (d(2026, 11, 11), "Armistice 1918"),
        (d(2026, 12, 25), "Noël"),
    ]
}

/// 2027: Easter on 28 March; 1 May, 8 May, 15 August and Christmas fall on weekends.
fn holidays_2027() -> Vec<(NaiveDate, &'static str)> {
    vec![
        (d(2027, 1, 1), "Jour de l'an"),
        (d(2027, 3, 29), "Lundi de Pâques"),
        (d(2027, 5, 1), "Fête du Travail"),
        (d(2027, 5, 6), "Ascension"),
        (d(2027, 5, 8), "Victoire 1945"),
        (d(2027, 5, 17), "Lundi de Pentecôte"),
        (d(2027, 7, 14), "Fête nationale"),
        (d(2027, 8, 15), "Assomption"),
        (d(2027, 11, 1), "Toussaint"),
        (d(2027, 11, 11), "Armistice 1918"),
        (d(2027, 12, 25), "Noël"),
    ]
}

#[test]
fn easter_sundays_match_the_published_dates() {
    assert_eq!(easter(2024), Some(d(2024, 3, 31)));
    assert_eq!(easter(2025), Some(d(2025, 4, 20)));
    assert_eq!(easter(2026), Some(d(2026, 4, 5)));
    assert_eq!(easter(2027), Some(d(2027, 3, 28)));
    assert_eq!(easter(1000), None);
}

#[test]
fn every_french_holiday_of_2026_and_2027_is_named_and_closed() {
    let calendar = fr();
    for (year, expected) in [(2026, holidays_2026()), (2027, holidays_2027())] {
        for (date, name) in &expected {
            assert_eq!(calendar.holiday(*date), Some(*name), "{date}");
            assert!(!calendar.is_working_day(*date), "{date}");
        }
        assert_eq!(calendar.holidays(year), expected, "{year}");
    }
}

#[test]
fn ordinary_days_around_holidays_are_working_days() {
    let calendar = fr();
    for date in [
        d(2026, 4, 3),
        d(2026, 4, 7),
        d(2026, 5, 15),
        d(2026, 12, 24),
        d(2026, 12, 28),
    ] {
        assert_eq!(calendar.holiday(date), None, "{date}");
        assert!(calendar.is_working_day(date), "{date}");
    }
    assert!(!calendar.is_working_day(d(2026, 6, 13)), "a Saturday");
    assert!(!calendar.is_working_day(d(2026, 6, 14)), "a Sunday");
}

#[test]
fn ascension_on_labour_day_is_one_day_with_one_name() {
    // Easter 2008 was 23 March: Ascension fell on 1 May.
    let holidays = fr().holidays(2008);
    assert_eq!(holidays.len(), 10);
    assert!(holidays.contains(&(d(2008, 5, 1), "Fête du Travail")));
}

#[test]
fn alsace_moselle_adds_good_friday_and_saint_stephen() {
    let calendar = alsace();
    assert_eq!(calendar.name(), "fr-alsace-moselle");
    for (date, name) in [
        (d(2026, 4, 3), "Vendredi saint"),
        (d(2026, 12, 26), "Saint-Étienne"),
        (d(2027, 3, 26), "Vendredi saint"),
        (d(2027, 12, 26), "Saint-Étienne"),
    ] {
        assert_eq!(calendar.holiday(date), Some(name), "{date}");
        assert_eq!(fr().holiday(date), None, "{date} is no holiday in fr");
    }
    assert!(!calendar.is_working_day(d(2026, 4, 3)));
    assert!(fr().is_working_day(d(2026, 4, 3)));
    assert_eq!(calendar.holidays(2026).len(), 13);
    for (date, name) in holidays_2026() {
        assert_eq!(calendar.holiday(date), Some(name), "{date}");
    }
}

#[test]
fn weekends_only_has_no_holiday() {
    let calendar = Calendar::new("none", &[]).expect("none is a calendar");
    assert_eq!(calendar.name(), "none");
    let mut date = d(2026, 1, 1);
    while date.year() == 2026 {
        assert_eq!(calendar.holiday(date), None, "{date}");
        assert_eq!(
            calendar.is_working_day(date),
            !is_weekend(date.weekday()),
            "{date}"
        );
        date = date.succ_opt().expect("2026 has an end");
    }
    assert!(calendar.holidays(2026).is_empty());
}

#[test]
fn a_firm_closure_is_a_non_working_day() {
    // The bridge day after Ascension 2026, given twice; and one on Christmas.
    let closed = [d(2026, 5, 15), d(2026, 5, 15), d(2026, 12, 25)];
    let calendar = Calendar::new("fr", &closed).expect("fr is a calendar");
    assert_eq!(calendar.holiday(d(2026, 5, 15)), Some(FIRM_CLOSURE));
    assert!(!calendar.is_working_day(d(2026, 5, 15)));
    assert_eq!(
        calendar.holiday(d(2026, 12, 25)),
        Some("Noël"),
        "the public name wins"
    );
    let holidays = calendar.holidays(2026);
    assert_eq!(holidays.len(), 12);
    assert_eq!(holidays[5], (d(2026, 5, 15), FIRM_CLOSURE), "in date order");
    assert_ne!(calendar, fr());
}

#[test]
fn an_unknown_calendar_lists_the_valid_names() {
    let error = Calendar::new("de", &[]).expect_err("no German calendar");
    assert_eq!(
        error,
        r#"unknown calendar "de": expected one of "fr", "fr-alsace-moselle", "none""#
    );
    assert!(Calendar::new("FR", &[]).is_err(), "names are exact");
    assert_eq!(Calendar::default(), fr());
    assert_eq!(fr().name(), "fr");
}

#[test]
fn working_days_before_a_monday_skip_the_weekend() {
    let calendar = fr();
    let monday = d(2026, 6, 15);
    assert_eq!(calendar.working_days_before(monday, 0), monday);
    assert_eq!(calendar.working_days_before(monday, 1), d(2026, 6, 12));
    assert_eq!(calendar.working_days_before(monday, 2), d(2026, 6, 11));
    assert_eq!(calendar.working_days_before(monday, 3), d(2026, 6, 10));
    assert_eq!(calendar.working_days_before(monday, 5), d(2026, 6, 8));
}

#[test]
fn working_days_before_zero_on_a_day_off_is_the_working_day_before() {
    let calendar = fr();
    assert_eq!(
        calendar.working_days_before(d(2026, 6, 13), 0),
        d(2026, 6, 12)
    );
    assert_eq!(
        calendar.working_days_before(d(2026, 6, 14), 0),
        d(2026, 6, 12)
    );
    // Easter Monday 2026: back over the weekend to Good Friday, a working day in fr.
    assert_eq!(
        calendar.working_days_before(d(2026, 4, 6), 0),
        d(2026, 4, 3)
    );
    assert_eq!(
        alsace().working_days_before(d(2026, 4, 6), 0),
        d(2026, 4, 2)
    );
}

#[test]
fn working_days_before_skip_holidays_and_closures() {
    let calendar = fr();
    // The Tuesday after Easter Monday.
    assert_eq!(
        calendar.working_days_before(d(2026, 4, 7), 1),
        d(2026, 4, 3)
    );
    assert_eq!(
        alsace().working_days_before(d(2026, 4, 7), 1),
        d(2026, 4, 2)
    );
    // The Monday after 1 May (a Friday in 2026).
    assert_eq!(
        calendar.working_days_before(d(2026, 5, 4), 1),
        d(2026, 4, 30)
    );
    // The Friday after Ascension, then with that Friday closed as a bridge day.
    assert_eq!(
        calendar.working_days_before(d(2026, 5, 15), 1),
        d(2026, 5, 13)
    );
    let bridged = Calendar::new("fr", &[d(2026, 5, 15)]).expect("fr is a calendar");
    assert_eq!(
        bridged.working_days_before(d(2026, 5, 18), 1),
        d(2026, 5, 13)
    );
    assert_eq!(
        bridged.working_days_before(d(2026, 5, 18), 2),
        d(2026, 5, 12)
    );
    // Across the new year: 1 January 2027 is a Friday.
    assert_eq!(
        calendar.working_days_before(d(2027, 1, 4), 1),
        d(2026, 12, 31)
    );
}

/// Every day from 2023 to 2026 closed: more than [`SEARCH_LIMIT_DAYS`] without a
/// working day.
fn all_closed() -> Calendar {
    let mut closed = Vec::new();
    let mut date = d(2023, 1, 1);
    while date.year() <= 2026 {
        closed.push(date);
        date = date.succ_opt().expect("2026 has an end");
    }
    Calendar::new("fr", &closed).expect("fr is a calendar")
}

#[test]
fn a_calendar_closed_for_years_falls_back_to_calendar_days() {
    let calendar = all_closed();
    assert_eq!(
        calendar.working_days_before(d(2026, 12, 31), 2),
        d(2026, 12, 29)
    );
    assert_eq!(
        calendar.working_days_before(d(2026, 12, 31), 0),
        d(2026, 12, 31)
    );
    // The 2-working-hours escalation becomes plain time.
    let from = utc(d(2023, 6, 15), 10, 0);
    let later = calendar.add_working_time(
        from,
        TimeDelta::hours(2),
        WorkingHours::default(),
        Europe::Paris,
    );
    assert_eq!(later, utc(d(2023, 6, 15), 12, 0));
    // Less than the limit ahead, the search finds the first working day after.
    let from = utc(d(2026, 6, 15), 10, 0);
    let later = calendar.add_working_time(
        from,
        TimeDelta::hours(2),
        WorkingHours::default(),
        Europe::Paris,
    );
    assert_eq!(later, paris(d(2027, 1, 4), 11, 0));
    assert_eq!(
        calendar.working_days_left(d(2026, 6, 12), d(2026, 6, 15)),
        1
    );
}

#[test]
fn huge_counts_fall_back_to_calendar_days() {
    let calendar = fr();
    let date = d(2026, 6, 15);
    let n = MAX_COUNTED_WORKING_DAYS + 1;
    assert_eq!(
        calendar.working_days_before(date, n),
        date - Days::new(n.into())
    );
    assert_eq!(calendar.working_days_before(date, u32::MAX), NaiveDate::MIN);
    assert_eq!(
        calendar.working_days_before(NaiveDate::MIN, 3),
        NaiveDate::MIN
    );
}

#[test]
fn working_days_left_as_a_lawyer_counts_them() {
    let calendar = fr();
    let monday = d(2026, 6, 15);
    assert_eq!(calendar.working_days_left(monday, monday), 0);
    assert_eq!(
        calendar.working_days_left(d(2026, 6, 14), monday),
        1,
        "Sunday"
    );
    assert_eq!(
        calendar.working_days_left(d(2026, 6, 13), monday),
        1,
        "Saturday"
    );
    assert_eq!(
        calendar.working_days_left(d(2026, 6, 12), monday),
        1,
        "Friday"
    );
    assert_eq!(
        calendar.working_days_left(d(2026, 6, 11), monday),
        2,
        "Thursday"
    );
    assert_eq!(
        calendar.working_days_left(d(2026, 6, 8), monday),
        5,
        "a week before"
    );
    assert_eq!(calendar.working_days_left(d(2026, 6, 16), monday), -1);
    assert_eq!(calendar.working_days_left(d(2026, 6, 22), monday), -7);
    // 1 May 2026 (a Friday) does not count.
    assert_eq!(calendar.working_days_left(d(2026, 4, 30), d(2026, 5, 4)), 1);
    assert_eq!(calendar.working_days_left(d(2026, 4, 29), d(2026, 5, 4)), 2);
}

/// The same count by walking every day, to check the closed form against.
fn walked(calendar: &Calendar, today: NaiveDate, due: NaiveDate) -> i64 {
    let mut count = 0;
    let mut date = today.succ_opt().expect("not the last date");
    while date < due {
        if calendar.is_working_day(date) {
            count += 1;
        }
        date = date.succ_opt().expect("not the last date");
    }
    1 + count
}

#[test]
fn working_days_left_matches_a_day_by_day_count() {
    let closed = [
        d(2026, 5, 15),
        d(2026, 8, 3),
        d(2026, 8, 4),
        d(2026, 12, 26),
    ];
    for calendar in [
        fr(),
        alsace(),
        Calendar::new("none", &closed).expect("none is a calendar"),
        Calendar::new("fr", &closed).expect("fr is a calendar"),
    ] {
        let mut today = d(2025, 12, 20);
        while today < d(2027, 1, 10) {
            for ahead in [1, 2, 3, 4, 6, 7, 8, 13, 40, 400] {
                let due = today + Days::new(ahead);
                assert_eq!(
                    calendar.working_days_left(today, due),
                    walked(&calendar, today, due),
                    "{} from {today} to {due}",
                    calendar.name()
                );
            }
            today = today + Days::new(5);
        }
    }
}

#[test]
fn working_days_left_spans_any_distance_quickly() {
    let left = fr().working_days_left(NaiveDate::MIN, NaiveDate::MAX);
    assert!(left > 100_000_000, "{left}");
}

#[test]
fn working_time_after_friday_closing_resumes_on_monday() {
    let calendar = fr();
    let friday_five = paris(d(2026, 6, 12), 17, 0);
    let two_hours = TimeDelta::hours(2);
    let hours = WorkingHours::default();
    assert_eq!(
        calendar.add_working_time(friday_five, two_hours, hours, Europe::Paris),
        paris(d(2026, 6, 15), 10, 0)
    );
    assert_eq!(paris(d(2026, 6, 15), 10, 0), utc(d(2026, 6, 15), 8, 0));
}

#[test]
fn working_time_within_the_day_is_plain_time() {
    let from = paris(d(2026, 6, 16), 10, 0);
    let later = fr().add_working_time(
        from,
        TimeDelta::minutes(30),
        WorkingHours::default(),
        Europe::Paris,
    );
    assert_eq!(later, paris(d(2026, 6, 16), 10, 30));
    let to_closing = fr().add_working_time(
        from,
        TimeDelta::hours(8),
        WorkingHours::default(),
        Europe::Paris,
    );
    assert_eq!(to_closing, paris(d(2026, 6, 16), 18, 0));
}

#[test]
fn working_time_skips_holidays_and_closures() {
    let hours = WorkingHours::default();
    // Wednesday before Ascension 2026 (Thursday 14 May).
    let from = paris(d(2026, 5, 13), 17, 0);
    let two_hours = TimeDelta::hours(2);
    assert_eq!(
        fr().add_working_time(from, two_hours, hours, Europe::Paris),
        paris(d(2026, 5, 15), 10, 0)
    );
    let bridged = Calendar::new("fr", &[d(2026, 5, 15)]).expect("fr is a calendar");
    assert_eq!(
        bridged.add_working_time(from, two_hours, hours, Europe::Paris),
        paris(d(2026, 5, 18), 10, 0)
    );
}

#[test]
fn working_time_from_outside_hours_starts_at_the_next_opening() {
    let calendar = fr();
    let hours = WorkingHours::default();
    let two_hours = TimeDelta::hours(2);
    let tuesday_evening = paris(d(2026, 6, 16), 20, 0);
    assert_eq!(
        calendar.add_working_time(tuesday_evening, two_hours, hours, Europe::Paris),
        paris(d(2026, 6, 17), 11, 0)
    );
    let early_morning = paris(d(2026, 6, 17), 6, 30);
    assert_eq!(
        calendar.add_working_time(early_morning, two_hours, hours, Europe::Paris),
        paris(d(2026, 6, 17), 11, 0)
    );
    let sunday = paris(d(2026, 6, 14), 10, 0);
    assert_eq!(
        calendar.add_working_time(sunday, two_hours, hours, Europe::Paris),
        paris(d(2026, 6, 15), 11, 0)
    );
}

#[test]
fn working_time_spans_several_days_and_a_clock_change() {
    let calendar = fr();
    let hours = WorkingHours::default();
    // 20 h from a Monday's opening: 9 h Monday, 9 h Tuesday, 2 h Wednesday.
    let monday = paris(d(2026, 6, 15), 9, 0);
    assert_eq!(
        calendar.add_working_time(monday, TimeDelta::hours(20), hours, Europe::Paris),
        paris(d(2026, 6, 17), 11, 0)
    );
    // Friday 27 March 2026 in CET, Monday 30 March in CEST.
    let friday = paris(d(2026, 3, 27), 17, 0);
    assert_eq!(friday, utc(d(2026, 3, 27), 16, 0));
    assert_eq!(
        calendar.add_working_time(friday, TimeDelta::hours(2), hours, Europe::Paris),
        utc(d(2026, 3, 30), 8, 0)
    );
}

#[test]
fn working_time_honours_the_zone() {
    // Friday 17:00 in Martinique (UTC−4) is 21:00 UTC; Monday 10:00 there is 14:00 UTC.
    let from = utc(d(2026, 6, 12), 21, 0);
    let later = fr().add_working_time(
        from,
        TimeDelta::hours(2),
        WorkingHours::default(),
        America::Martinique,
    );
    assert_eq!(later, utc(d(2026, 6, 15), 14, 0));
}

#[test]
fn no_working_time_or_no_hours_give_plain_time() {
    let from = paris(d(2026, 6, 14), 10, 0);
    let calendar = fr();
    let hours = WorkingHours::default();
    assert_eq!(
        calendar.add_working_time(from, TimeDelta::zero(), hours, Europe::Paris),
        from
    );
    assert_eq!(
        calendar.add_working_time(from, -TimeDelta::hours(1), hours, Europe::Paris),
        from
    );
    let empty = WorkingHours {
        start: hm(18, 0),
        end: hm(9, 0),
    };
    assert_eq!(
        calendar.add_working_time(from, TimeDelta::hours(2), empty, Europe::Paris),
        from + TimeDelta::hours(2)
    );
    let forever = calendar.add_working_time(from, TimeDelta::MAX, hours, Europe::Paris);
    assert_eq!(forever, DateTime::<Utc>::MAX_UTC);
}

#[test]
fn working_hours_parse_and_print() {
    assert_eq!(
        WorkingHours::parse("09:00-18:00"),
        Ok(WorkingHours::default())
    );
    assert_eq!(
        "08:30 - 12:15".parse::<WorkingHours>(),
        Ok(WorkingHours {
            start: hm(8, 30),
            end: hm(12, 15)
        })
    );
    assert_eq!(WorkingHours::default().to_string(), "09:00-18:00");
    assert_eq!(
        WorkingHours::parse("9-18"),
        Err(r#"in "9-18": expected "HH:MM" (e.g. "09:00"), got "9""#.to_owned())
    );
    assert_eq!(
        WorkingHours::parse("09:00"),
        Err(r#"expected "HH:MM-HH:MM" (e.g. "09:00-18:00"), got "09:00""#.to_owned())
    );
    assert_eq!(
        WorkingHours::parse("18:00-09:00"),
        Err(r#"in "18:00-09:00": opening 18:00 must be before closing 09:00"#.to_owned())
    );
    assert!(WorkingHours::parse("09:00-09:00").is_err());
    assert!(WorkingHours::parse("09:00-24:00").is_err());
}

#[test]
fn hhmm_is_strict() {
    assert_eq!(parse_hhmm("00:00"), Ok(NaiveTime::MIN));
    assert_eq!(parse_hhmm("23:59"), Ok(hm(23, 59)));
    for bad in [
        "9:00", "09:0", "24:00", "12:60", "09h00", " 09:00", "09:00:00", "", "０9:00",
    ] {
        assert_eq!(
            parse_hhmm(bad),
            Err(format!(r#"expected "HH:MM" (e.g. "09:00"), got {bad:?}"#)),
            "{bad:?}"
        );
    }
}

#[test]
fn local_times_across_clock_changes() {
    let paris = Europe::Paris;
    // 29 March 2026: 02:00 CET jumps to 03:00 CEST; 02:30 does not exist.
    assert_eq!(
        local(paris, d(2026, 3, 29), 2, 30),
        utc(d(2026, 3, 29), 1, 0)
    );
    assert_eq!(
        local(paris, d(2026, 3, 29), 1, 59),
        utc(d(2026, 3, 29), 0, 59)
    );
    // 25 October 2026: 03:00 CEST falls back to 02:00 CET; 02:30 happens twice.
    assert_eq!(
        local(paris, d(2026, 10, 25), 2, 30),
        utc(d(2026, 10, 25), 0, 30)
    );
    assert_eq!(
        local(paris, d(2026, 10, 25), 3, 0),
        utc(d(2026, 10, 25), 2, 0)
    );
    // Cairo springs forward at midnight, on a Friday: 00:00–01:00 does not exist.
    let cairo: Tz = "Africa/Cairo".parse().expect("a zone");
    assert_eq!(
        local(cairo, d(2026, 4, 24), 0, 30),
        utc(d(2026, 4, 23), 22, 0)
    );
}
