//! Tests for reminder planning: real 2026–2027 weeks (holidays, clock changes, three
//! time zones), the ordering rule, late deadlines, and the policy's JSON.

use chrono::{NaiveDate, TimeDelta};
use chrono_tz::{America, Europe, Pacific, Tz};
use tocsin_protocol::notification::DeadlineUrgency::{Critical, Info, Urgent, Warning};

use super::*;

fn d(year: i32, month: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(year, month, day).expect("a valid date")
}

fn utc(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    date.and_time(hm(hour, minute)).and_utc()
}

fn local(tz: Tz, date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    resolve_local(tz, date.and_time(hm(hour, minute)))
}

fn paris(date: NaiveDate, hour: u32, minute: u32) -> DateTime<Utc> {
    local(Europe::Paris, date, hour, minute)
}

fn calendar(name: &str) -> Calendar {
    Calendar::new(name, &[]).expect("a known calendar")
}

fn policy(steps: &[(Offset, DeadlineUrgency)]) -> Policy {
    Policy {
        steps: steps
            .iter()
            .map(|&(before, urgency)| Step { before, urgency })
            .collect(),
        at: hm(9, 0),
    }
}

/// What a plan says, in a form one can write out in a test.
fn summary(planned: &[Planned]) -> Vec<(u32, &str, DateTime<Utc>, DeadlineUrgency)> {
    planned
        .iter()
        .map(|p| (p.step, p.label.as_str(), p.at, p.urgency))
        .collect()
}

/// Label and local date of each reminder: enough where only the day matters.
fn days(planned: &[Planned], tz: Tz) -> Vec<(&str, NaiveDate)> {
    planned
        .iter()
        .map(|p| (p.label.as_str(), p.at.with_timezone(&tz).date_naive()))
        .collect()
}

fn default_plan(due_at: DateTime<Utc>, calendar_name: &str) -> Vec<Planned> {
    plan(
        &Policy::default(),
        due_at,
        Europe::Paris,
        &calendar(calendar_name),
    )
}

#[test]
fn default_policy_before_a_monday_in_summer_time() {
    // Monday 15 June 2026, CEST (UTC+2): 09:00 in Paris is 07:00 UTC.
    let planned = default_plan(paris(d(2026, 6, 15), 12, 0), "fr");
    assert_eq!(
        summary(&planned),
        [
            (0, "J-3", utc(d(2026, 6, 10), 7, 0), Warning),
            (1, "J-2", utc(d(2026, 6, 11), 7, 0), Urgent),
            (2, "J-1", utc(d(2026, 6, 12), 7, 0), Critical),
            (3, "J-0", utc(d(2026, 6, 15), 7, 0), Critical),
        ]
    );
}

#[test]
fn default_policy_before_a_monday_in_winter_time() {
    // Monday 16 February 2026, CET (UTC+1): 09:00 in Paris is 08:00 UTC.
    let planned = default_plan(paris(d(2026, 2, 16), 14, 0), "fr");
    assert_eq!(
        summary(&planned),
        [
            (0, "J-3", utc(d(2026, 2, 11), 8, 0), Warning),
            (1, "J-2", utc(d(2026, 2, 12), 8, 0), Urgent),
            (2, "J-1", utc(d(2026, 2, 13), 8, 0), Critical),
            (3, "J-0", utc(d(2026, 2, 16), 8, 0), Critical),
        ]
    );
}

#[test]
fn after_easter_monday_good_friday_counts_only_outside_alsace_moselle() {
    let due = paris(d(2026, 4, 7), 10, 0);
    assert_eq!(
        days(&default_plan(due, "fr"), Europe::Paris),
        [
            ("J-3", d(2026, 4, 1)),
            ("J-2", d(2026, 4, 2)),
            ("J-1", d(2026, 4, 3)),
            ("J-0", d(2026, 4, 7)),
        ]
    );
    assert_eq!(default_plan(due, "fr")[2].at, utc(d(2026, 4, 3), 7, 0));
    assert_eq!(
        days(&default_plan(due, "fr-alsace-moselle"), Europe::Paris),
        [
            ("J-3", d(2026, 3, 31)),
            ("J-2", d(2026, 4, 1)),
            ("J-1", d(2026, 4, 2)),
            ("J-0", d(2026, 4, 7)),
        ]
    );
    assert_eq!(
        days(&default_plan(due, "none"), Europe::Paris),
        [
            ("J-3", d(2026, 4, 2)),
            ("J-2", d(2026, 4, 3)),
            ("J-1", d(2026, 4, 6)),
            ("J-0", d(2026, 4, 7)),
        ]
    );
}

#[test]
fn after_easter_monday_2027_the_clock_changed_in_between() {
    // Easter 2027 is 28 March, the day summer time starts: J-1 on Friday 26 in CET,
    // J-0 on Tuesday 30 in CEST.
    let planned = default_plan(paris(d(2027, 3, 30), 10, 0), "fr");
    assert_eq!(planned[2].at, utc(d(2027, 3, 26), 8, 0));
    assert_eq!(planned[3].at, utc(d(2027, 3, 30), 7, 0));
}

#[test]
fn reminders_skip_the_may_holidays() {
    let j1 = |due: NaiveDate| {
        let planned = default_plan(paris(due, 12, 0), "fr");
        assert_eq!(planned[2].label, "J-1");
        planned[2].at.with_timezone(&Europe::Paris).date_naive()
    };
    // After Friday 1 May, after Friday 8 May, after Ascension, after Whit Monday.
    assert_eq!(j1(d(2026, 5, 4)), d(2026, 4, 30));
    assert_eq!(j1(d(2026, 5, 11)), d(2026, 5, 7));
    assert_eq!(j1(d(2026, 5, 15)), d(2026, 5, 13));
    assert_eq!(j1(d(2026, 5, 26)), d(2026, 5, 22));
    assert_eq!(
        days(
            &default_plan(paris(d(2026, 5, 15), 12, 0), "fr"),
            Europe::Paris
        ),
        [
            ("J-3", d(2026, 5, 11)),
            ("J-2", d(2026, 5, 12)),
            ("J-1", d(2026, 5, 13)),
            ("J-0", d(2026, 5, 15)),
        ]
    );
}

#[test]
fn a_firm_closure_moves_reminders_earlier() {
    let bridged = Calendar::new("fr", &[d(2026, 5, 15)]).expect("fr is a calendar");
    let planned = plan(
        &Policy::default(),
        paris(d(2026, 5, 18), 12, 0),
        Europe::Paris,
        &bridged,
    );
    assert_eq!(
        days(&planned, Europe::Paris),
        [
            ("J-3", d(2026, 5, 11)),
            ("J-2", d(2026, 5, 12)),
            ("J-1", d(2026, 5, 13)),
            ("J-0", d(2026, 5, 18)),
        ]
    );
}

#[test]
fn an_early_deadline_gets_its_same_day_reminder_an_hour_before() {
    let monday = d(2026, 6, 15);
    let at_eight = default_plan(paris(monday, 8, 0), "fr");
    assert_eq!(at_eight[3].label, "J-0");
    assert_eq!(at_eight[3].at, paris(monday, 7, 0));
    assert_eq!(at_eight[2].at, paris(d(2026, 6, 12), 9, 0), "J-1 unchanged");
    // At the reminder hour itself: still too late. A minute after: on time.
    assert_eq!(
        default_plan(paris(monday, 9, 0), "fr")[3].at,
        paris(monday, 8, 0)
    );
    assert_eq!(
        default_plan(paris(monday, 9, 1), "fr")[3].at,
        paris(monday, 9, 0)
    );
    // Just after midnight: the day before, an hour earlier.
    assert_eq!(
        default_plan(paris(monday, 0, 30), "fr")[3].at,
        paris(d(2026, 6, 14), 23, 30)
    );
}

#[test]
fn a_deadline_on_a_saturday_gets_one_reminder_on_the_friday() {
    // J-0 and J-1 both fall on Friday 09:00; the later step (J-0) is kept.
    let planned = default_plan(paris(d(2026, 6, 13), 10, 0), "fr");
    assert_eq!(
        summary(&planned),
        [
            (0, "J-3", paris(d(2026, 6, 10), 9, 0), Warning),
            (1, "J-2", paris(d(2026, 6, 11), 9, 0), Urgent),
            (3, "J-0", paris(d(2026, 6, 12), 9, 0), Critical),
        ]
    );
}

#[test]
fn seconds_steps_count_back_from_the_deadline() {
    let due = utc(d(2026, 6, 15), 10, 0);
    let policy = policy(&[
        (Offset::Seconds(3), Warning),
        (Offset::Seconds(2), Urgent),
        (Offset::Seconds(1), Critical),
    ]);
    let planned = plan(&policy, due, Europe::Paris, &calendar("fr"));
    assert_eq!(
        summary(&planned),
        [
            (0, "T-3s", due - TimeDelta::seconds(3), Warning),
            (1, "T-2s", due - TimeDelta::seconds(2), Urgent),
            (2, "T-1s", due - TimeDelta::seconds(1), Critical),
        ]
    );
    // A zero lead would land on the deadline itself.
    let at_due = plan(
        &self::policy(&[(Offset::Seconds(0), Critical)]),
        due,
        Europe::Paris,
        &calendar("fr"),
    );
    assert_eq!(at_due[0].at, due - TimeDelta::hours(1));
    // Seconds ignore the calendar: a Sunday is fine.
    let sunday = utc(d(2026, 6, 14), 10, 0);
    let planned = plan(&policy, sunday, Europe::Paris, &calendar("fr"));
    assert_eq!(planned[0].at, sunday - TimeDelta::seconds(3));
}

#[test]
fn two_steps_at_one_instant_keep_the_more_urgent() {
    let due = paris(d(2026, 6, 15), 12, 0);
    let friday = paris(d(2026, 6, 12), 9, 0);
    let run = |steps: &[(Offset, DeadlineUrgency)]| {
        summary(&plan(&policy(steps), due, Europe::Paris, &calendar("fr")))
            .into_iter()
            .map(|(step, _, at, urgency)| (step, at, urgency))
            .collect::<Vec<_>>()
    };
    let one = Offset::WorkingDays(1);
    assert_eq!(
        run(&[(one, Warning), (one, Critical)]),
        [(1, friday, Critical)]
    );
    assert_eq!(
        run(&[(one, Critical), (one, Warning)]),
        [(0, friday, Critical)]
    );
    assert_eq!(
        run(&[(one, Urgent), (one, Urgent)]),
        [(1, friday, Urgent)],
        "ties: later step"
    );
    // J-0 moved to 07:00 by an 08:00 deadline meets T-3600s there.
    let early = paris(d(2026, 6, 15), 8, 0);
    let planned = plan(
        &policy(&[
            (Offset::Seconds(3600), Urgent),
            (Offset::WorkingDays(0), Critical),
        ]),
        early,
        Europe::Paris,
        &calendar("fr"),
    );
    assert_eq!(
        summary(&planned),
        [(1, "J-0", paris(d(2026, 6, 15), 7, 0), Critical)]
    );
}

#[test]
fn urgency_never_goes_down() {
    let due = paris(d(2026, 6, 15), 12, 0);
    let planned = plan(
        &policy(&[
            (Offset::WorkingDays(2), Critical),
            (Offset::WorkingDays(1), Warning),
            (Offset::Seconds(60), Info),
            (Offset::WorkingDays(0), Critical),
        ]),
        due,
        Europe::Paris,
        &calendar("fr"),
    );
    assert_eq!(
        summary(&planned),
        [
            (0, "J-2", paris(d(2026, 6, 11), 9, 0), Critical),
            (3, "J-0", paris(d(2026, 6, 15), 9, 0), Critical),
        ]
    );
}

#[test]
fn steps_in_any_order_come_out_sorted() {
    let due = paris(d(2026, 6, 15), 12, 0);
    let planned = plan(
        &policy(&[
            (Offset::WorkingDays(0), Critical),
            (Offset::Seconds(60), Critical),
            (Offset::WorkingDays(3), Warning),
        ]),
        due,
        Europe::Paris,
        &calendar("fr"),
    );
    assert_eq!(
        summary(&planned),
        [
            (2, "J-3", paris(d(2026, 6, 10), 9, 0), Warning),
            (0, "J-0", paris(d(2026, 6, 15), 9, 0), Critical),
            (1, "T-60s", paris(d(2026, 6, 15), 11, 59), Critical),
        ]
    );
    assert!(planned.windows(2).all(|pair| pair[0].at < pair[1].at));
    assert!(plan(&policy(&[]), due, Europe::Paris, &calendar("fr")).is_empty());
}

#[test]
fn the_weeks_of_the_clock_changes_in_paris() {
    // Summer time starts Sunday 29 March 2026: Friday in CET, Monday in CEST.
    let march = default_plan(paris(d(2026, 3, 30), 12, 0), "fr");
    assert_eq!(
        summary(&march),
        [
            (0, "J-3", utc(d(2026, 3, 25), 8, 0), Warning),
            (1, "J-2", utc(d(2026, 3, 26), 8, 0), Urgent),
            (2, "J-1", utc(d(2026, 3, 27), 8, 0), Critical),
            (3, "J-0", utc(d(2026, 3, 30), 7, 0), Critical),
        ]
    );
    // It ends Sunday 25 October 2026: Friday in CEST, Monday in CET.
    let october = default_plan(paris(d(2026, 10, 26), 12, 0), "fr");
    assert_eq!(
        summary(&october),
        [
            (0, "J-3", utc(d(2026, 10, 21), 7, 0), Warning),
            (1, "J-2", utc(d(2026, 10, 22), 7, 0), Urgent),
            (2, "J-1", utc(d(2026, 10, 23), 7, 0), Critical),
            (3, "J-0", utc(d(2026, 10, 26), 8, 0), Critical),
        ]
    );
}

#[test]
fn a_reminder_hour_the_clock_skips_or_repeats() {
    // Cairo changes its clocks around midnight on working days: summer time starts
    // Friday 24 April 2026 (00:00 → 01:00), ends Thursday 29 October (24:00 → 23:00).
    let cairo: Tz = "Africa/Cairo".parse().expect("a zone");
    let mut half_past_midnight = policy(&[
        (Offset::WorkingDays(1), Critical),
        (Offset::WorkingDays(0), Critical),
    ]);
    half_past_midnight.at = hm(0, 30);
    let spring = plan(
        &half_past_midnight,
        local(cairo, d(2026, 4, 24), 12, 0),
        cairo,
        &calendar("none"),
    );
    assert_eq!(spring[0].at, utc(d(2026, 4, 22), 22, 30), "00:30 EET");
    assert_eq!(
        spring[1].at,
        utc(d(2026, 4, 23), 22, 0),
        "01:00 EEST, the first minute after"
    );
    let mut late_evening = policy(&[(Offset::WorkingDays(1), Critical)]);
    late_evening.at = hm(23, 30);
    let autumn = plan(
        &late_evening,
        local(cairo, d(2026, 10, 30), 12, 0),
        cairo,
        &calendar("none"),
    );
    assert_eq!(
        autumn[0].at,
        utc(d(2026, 10, 29), 20, 30),
        "the first 23:30, EEST"
    );
}

#[test]
fn the_deadlines_zone_decides_its_day() {
    // 00:30 UTC on Tuesday 16 June 2026 is Monday 20:30 in Martinique (UTC−4) but
    // Tuesday 02:30 in Paris.
    let due = utc(d(2026, 6, 16), 0, 30);
    let martinique = plan(
        &Policy::default(),
        due,
        America::Martinique,
        &calendar("fr"),
    );
    assert_eq!(
        summary(&martinique),
        [
            (0, "J-3", utc(d(2026, 6, 10), 13, 0), Warning),
            (1, "J-2", utc(d(2026, 6, 11), 13, 0), Urgent),
            (2, "J-1", utc(d(2026, 6, 12), 13, 0), Critical),
            (3, "J-0", utc(d(2026, 6, 15), 13, 0), Critical),
        ]
    );
    let in_paris = plan(&Policy::default(), due, Europe::Paris, &calendar("fr"));
    assert_eq!(in_paris[2].at, utc(d(2026, 6, 15), 7, 0));
    assert_eq!(in_paris[3].at, due - TimeDelta::hours(1));
}

#[test]
fn a_deadline_in_noumea() {
    // Monday 15 June 2026 08:00 in Nouméa (UTC+11) is Sunday 21:00 UTC.
    let due = utc(d(2026, 6, 14), 21, 0);
    let planned = plan(&Policy::default(), due, Pacific::Noumea, &calendar("fr"));
    assert_eq!(
        summary(&planned),
        [
            (0, "J-3", utc(d(2026, 6, 9), 22, 0), Warning),
            (1, "J-2", utc(d(2026, 6, 10), 22, 0), Urgent),
            (2, "J-1", utc(d(2026, 6, 11), 22, 0), Critical),
            (3, "J-0", utc(d(2026, 6, 14), 20, 0), Critical),
        ]
    );
}

#[test]
fn split_past_sends_the_latest_and_supersedes_the_rest() {
    let planned = default_plan(paris(d(2026, 6, 15), 12, 0), "fr");
    assert_eq!(
        split_past(&planned, utc(d(2026, 6, 1), 0, 0)),
        (None, vec![])
    );
    // A reminder exactly now is past.
    assert_eq!(split_past(&planned, planned[2].at), (Some(2), vec![0, 1]));
    assert_eq!(
        split_past(&planned, planned[2].at - TimeDelta::seconds(1)),
        (Some(1), vec![0])
    );
    assert_eq!(
        split_past(&planned, utc(d(2026, 6, 15), 11, 0)),
        (Some(3), vec![0, 1, 2])
    );
    assert_eq!(split_past(&[], utc(d(2026, 6, 15), 11, 0)), (None, vec![]));
}

#[test]
fn split_past_prefers_urgency_in_any_slice() {
    let reminder = |step, at, urgency| Planned {
        step,
        label: format!("J-{step}"),
        at,
        urgency,
    };
    let early = utc(d(2026, 6, 10), 7, 0);
    let later = utc(d(2026, 6, 11), 7, 0);
    let unsorted = [reminder(0, early, Critical), reminder(1, later, Warning)];
    assert_eq!(split_past(&unsorted, later), (Some(0), vec![1]));
    let tied = [reminder(0, later, Urgent), reminder(1, early, Urgent)];
    assert_eq!(split_past(&tied, later), (Some(0), vec![1]));
}

#[test]
fn policy_validation_names_the_faulty_field() {
    assert_eq!(Policy::default().validate(), Ok(()));
    let one = (Offset::WorkingDays(1), Critical);
    assert_eq!(policy(&[]).validate(), Err("steps: at least 1".to_owned()));
    assert_eq!(policy(&[one; 16]).validate(), Ok(()));
    assert_eq!(
        policy(&[one; 17]).validate(),
        Err("steps: at most 16, got 17".to_owned())
    );
    assert_eq!(
        policy(&[(Offset::WorkingDays(60), Info)]).validate(),
        Ok(())
    );
    assert_eq!(
        policy(&[one, (Offset::WorkingDays(61), Info)]).validate(),
        Err("steps[1].before: working_days must be ≤ 60, got 61".to_owned())
    );
    assert_eq!(
        policy(&[(Offset::Seconds(31_536_000), Info)]).validate(),
        Ok(())
    );
    assert_eq!(
        policy(&[(Offset::Seconds(31_536_001), Info)]).validate(),
        Err("steps[0].before: seconds must be ≤ 31536000 (365 days), got 31536001".to_owned())
    );
    let with_seconds = Policy {
        at: NaiveTime::from_hms_opt(9, 0, 30).expect("a valid time"),
        ..Policy::default()
    };
    assert_eq!(
        with_seconds.validate(),
        Err("at: must be a whole minute (HH:MM), got 09:00:30".to_owned())
    );
}

#[test]
fn policy_json_round_trips_in_its_readable_shape() {
    let json = r#"{"steps":[{"before":{"working_days":3},"urgency":"warning"}],"at":"09:00"}"#;
    let parsed: Policy = serde_json::from_str(json).expect("a valid policy");
    assert_eq!(parsed, policy(&[(Offset::WorkingDays(3), Warning)]));
    assert_eq!(serde_json::to_string(&parsed).expect("serialises"), json);

    let seconds = r#"{"steps":[{"before":{"seconds":30},"urgency":"critical"}],"at":"17:45"}"#;
    let parsed: Policy = serde_json::from_str(seconds).expect("a valid policy");
    assert_eq!(parsed.steps[0].before, Offset::Seconds(30));
    assert_eq!(parsed.at, hm(17, 45));
    assert_eq!(serde_json::to_string(&parsed).expect("serialises"), seconds);

    let default = serde_json::to_string(&Policy::default()).expect("serialises");
    assert_eq!(
        serde_json::from_str::<Policy>(&default).expect("reads back"),
        Policy::default()
    );
    let without_at: Policy =
        serde_json::from_str(r#"{"steps":[{"before":{"working_days":0},"urgency":"info"}]}"#)
            .expect("at defaults");
    assert_eq!(without_at.at, hm(9, 0));
}

#[test]
fn invalid_policy_json_says_what_is_wrong() {
    let error = |json: &str| {
        serde_json::from_str::<Policy>(json)
            .expect_err("an invalid policy")
            .to_string()
    };
    let step = r#"{"before":{"working_days":3},"urgency":"warning"}"#;
    let bad_at = error(&format!(r#"{{"steps":[{step}],"at":"9h"}}"#));
    assert!(
        bad_at.starts_with(r#"at: expected "HH:MM" (e.g. "09:00"), got "9h""#),
        "{bad_at}"
    );
    let misspelt = error(r#"{"steps":[{"before":{"working_days":3},"urgence":"warning"}]}"#);
    assert!(misspelt.contains("unknown field `urgence`"), "{misspelt}");
    let unknown_offset = error(r#"{"steps":[{"before":{"days":3},"urgency":"warning"}]}"#);
    assert!(
        unknown_offset.contains("unknown variant `days`"),
        "{unknown_offset}"
    );
    let unknown_urgency = error(r#"{"steps":[{"before":{"seconds":3},"urgency":"high"}]}"#);
    assert!(
        unknown_urgency.contains("unknown variant `high`"),
        "{unknown_urgency}"
    );
    let negative = error(r#"{"steps":[{"before":{"seconds":-3},"urgency":"info"}]}"#);
    assert!(negative.contains("invalid value"), "{negative}");
    let extra = error(&format!(
        r#"{{"steps":[{step}],"timezone":"Europe/Paris"}}"#
    ));
    assert!(extra.contains("unknown field `timezone`"), "{extra}");
}
