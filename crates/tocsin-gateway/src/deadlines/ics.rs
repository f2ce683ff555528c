//! A user's open deadlines as an iCalendar feed (RFC 5545), for
//! `GET /v1/calendar/{secret}.ics`: Outlook, Thunderbird, Apple Calendar and Google
//! Calendar subscribe to it and show each deadline with its reminders.
//!
//! - One VEVENT per deadline. Its UID is `<deadline id>@<firm>.tocsin`: the firm's own
//!   id, which is stable, made unique across firms (two firms may use the same ids), so
//!   a client updates the event it already has instead of adding a copy.
//! - DTSTART is the due instant in UTC (no VTIMEZONE to ship, and every client shows it
//!   in its own zone); the event lasts [`EVENT_MINUTES`] and is transparent, because a
//!   deadline is a limit, not a meeting that makes the lawyer busy.
//! - One VALARM (DISPLAY) per reminder still planned, its TRIGGER relative to DTSTART:
//!   relative triggers are the form every client honours (Outlook ignores absolute
//!   ones). Reminders already sent are listed in the description but get no alarm: a
//!   client would show them as missed alarms at once.
//! - The text is in French, like the reminders the gateway sends.
//!
//! The `icalendar` crate does the escaping and the 75-octet folding. It adds a DTSTAMP
//! and a random UID to any component that lacks them, VALARMs included; each alarm gets
//! both here so that the text depends only on the arguments.

use chrono::{DateTime, Duration, Utc};
use icalendar::{Alarm, Calendar, Component, EventLike, EventStatus, Property};
use tocsin_protocol::deadline::{DeadlineView, ReminderView, StepState};
use tocsin_protocol::notification::DeadlineUrgency;

use super::settings::parse_zone;

/// How long a deadline's event lasts in a calendar: short, so it marks an instant.
pub const EVENT_MINUTES: i64 = 15;

/// How often clients are asked to fetch the feed again (`REFRESH-INTERVAL`,
/// `X-PUBLISHED-TTL`): a changed or cancelled deadline shows within this time.
pub const REFRESH_MINUTES: i64 = 15;

/// `PRODID`: who made the calendar.
const PRODUCT: &str = "-//Tocsin//Tocsin gateway//FR";

/// The UID of the event of deadline `id` of firm `tenant`.
pub fn uid(tenant: &str, id: &str) -> String {
    format!("{id}@{tenant}.tocsin")
}

/// The feed of `deadlines` (of firm `tenant`), named `calendar_name`, stamped `now`.
///
/// Pure: the same arguments give the same text.
pub fn render(
    deadlines: &[DeadlineView],
    tenant: &str,
    calendar_name: &str,
    now: DateTime<Utc>,
) -> String {
    let mut calendar = Calendar::empty();
    calendar
        .append_property(Property::new("VERSION", "2.0"))
        .append_property(Property::new("PRODID", PRODUCT))
        .append_property(Property::new("CALSCALE", "GREGORIAN"))
        .append_property(Property::new("METHOD", "PUBLISH"));
    let name = clean(calendar_name);
    // The crate escapes only the properties it knows as text; it does not know NAME
    // (RFC 7986), so its value type is said, and a comma in a name stays text.
    calendar
        .append_property(
            Property::new("NAME", &name)
                .add_parameter("VALUE", "TEXT")
                .done(),
        )
        .append_property(Property::new("X-WR-CALNAME", &name))
        .ttl(&Duration::minutes(REFRESH_MINUTES));
    for deadline in deadlines {
        calendar.push(event(deadline, tenant, now));
    }
    calendar.to_string()
}

/// The VEVENT of one deadline.
fn event(deadline: &DeadlineView, tenant: &str, now: DateTime<Utc>) -> icalendar::Event {
    let id = uid(tenant, &deadline.id);
    let due = deadline.due_at.with_timezone(&Utc);
    let summary = summary(deadline);
    let mut event = icalendar::Event::new();
    event
        .uid(&clean(&id))
        .timestamp(now)
        .created(deadline.created_at)
        .last_modified(deadline.updated_at)
        .starts(due)
        .ends(due + Duration::minutes(EVENT_MINUTES))
        .summary(&summary)
        .description(&description(deadline))
        .status(EventStatus::Confirmed)
        .append_property(Property::new("TRANSP", "TRANSPARENT"));
    if let Some(url) = deadline.url.as_deref().filter(|url| plain_url(url)) {
        event.url(url);
    }
    for reminder in deadline
        .reminders
        .iter()
        .filter(|reminder| reminder.state == StepState::Planned)
    {
        event.alarm(alarm(deadline, reminder, &id, &summary, now));
    }
    event.done()
}

/// The VALARM of one planned reminder.
fn alarm(
    deadline: &DeadlineView,
    reminder: &ReminderView,
    event_uid: &str,
    summary: &str,
    now: DateTime<Utc>,
) -> Alarm {
    let before = reminder.at - deadline.due_at.with_timezone(&Utc);
    let text = format!(
        "{summary} ({}) — échéance le {}",
        clean(&reminder.label),
        local(deadline, deadline.due_at.with_timezone(&Utc))
    );
    let mut alarm = Alarm::display(&text, before);
    alarm
        // Our own spelling of the duration (days, hours, minutes) rather than chrono's
        // seconds-only one: both are RFC 5545, this one is what clients themselves write.
        .append_property(Property::new("TRIGGER", duration(before)))
        .uid(&clean(&format!("{}.{event_uid}", reminder.label)))
        .timestamp(now);
    alarm.done()
}

/// "<type> — <dossier title, else number, else the deadline's id>", like the title of
/// the reminders the gateway sends.
fn summary(deadline: &DeadlineView) -> String {
    let dossier = deadline
        .dossier_title
        .as_deref()
        .or(deadline.dossier_number.as_deref())
        .unwrap_or(&deadline.id);
    clean(&format!("{} — {dossier}", deadline.deadline_type))
}

/// The dossier, the due date in the deadline's zone, the reminder plan, the link.
fn description(deadline: &DeadlineView) -> String {
    let mut lines = Vec::new();
    let dossier: Vec<&str> = [&deadline.dossier_number, &deadline.dossier_title]
        .into_iter()
        .flatten()
        .map(String::as_str)
        .collect();
    if !dossier.is_empty() {
        lines.push(format!("Dossier : {}", dossier.join(" — ")));
    }
    lines.push(format!(
        "Échéance : {} ({})",
        local(deadline, deadline.due_at.with_timezone(&Utc)),
        deadline.time_zone
    ));
    if deadline.reminders.is_empty() {
        lines.push("Rappels : aucun".to_owned());
    } else {
        lines.push("Rappels :".to_owned());
        for reminder in &deadline.reminders {
            lines.push(format!(
                "• {} : {} — {}, {}",
                reminder.label,
                local(deadline, reminder.at),
                urgency(reminder.urgency),
                state(reminder.state)
            ));
        }
    }
    if let Some(url) = &deadline.url {
        lines.push(format!("Lien : {url}"));
    }
    clean(&lines.join("\n"))
}

/// `at` in the deadline's zone, as the reminders write it ("12/03/2026 à 12:00").
fn local(deadline: &DeadlineView, at: DateTime<Utc>) -> String {
    const FORMAT: &str = "%d/%m/%Y à %H:%M";
    match parse_zone(&deadline.time_zone) {
        Ok(zone) => at.with_timezone(&zone).format(FORMAT).to_string(),
        // A zone this build does not know: the offset the deadline was declared with.
        Err(_) => at
            .with_timezone(deadline.due_at.offset())
            .format(FORMAT)
            .to_string(),
    }
}

fn urgency(urgency: DeadlineUrgency) -> &'static str {
    match urgency {
        DeadlineUrgency::Info => "information",
        DeadlineUrgency::Warning => "avertissement",
        DeadlineUrgency::Urgent => "urgent",
        DeadlineUrgency::Critical => "critique",
    }
}

fn state(state: StepState) -> &'static str {
    match state {
        StepState::Planned => "prévu",
        StepState::Sent => "envoyé",
        StepState::Superseded => "non envoyé (un rappel plus urgent l'a remplacé)",
        StepState::Cancelled => "annulé",
    }
}

/// An RFC 5545 duration: `-P3DT2H30M`, `PT0S`; whole seconds (DTSTART has no finer
/// resolution).
fn duration(delta: Duration) -> String {
    let seconds = delta.num_seconds();
    let sign = if seconds < 0 { "-" } else { "" };
    let total = seconds.unsigned_abs();
    let (days, hours, minutes, seconds) = (
        total / 86_400,
        total % 86_400 / 3600,
        total % 3600 / 60,
        total % 60,
    );
    let mut text = format!("{sign}P");
    if days > 0 {
        text.push_str(&format!("{days}D"));
    }
    if hours > 0 || minutes > 0 || seconds > 0 || days == 0 {
        text.push('T');
        if hours > 0 {
            text.push_str(&format!("{hours}H"));
        }
        if minutes > 0 {
            text.push_str(&format!("{minutes}M"));
        }
        if seconds > 0 || (hours == 0 && minutes == 0) {
            text.push_str(&format!("{seconds}S"));
        }
    }
    text
}

/// Text without control characters but line breaks: the firm's fields may hold any
/// (the API does not refuse them), and the crate escapes `\n` but would write a CR or
/// another control character raw, which would end the content line.
fn clean(text: &str) -> String {
    text.replace("\r\n", "\n")
        .chars()
        .map(|c| if c.is_control() && c != '\n' { ' ' } else { c })
        .collect()
}

/// Whether a link can go in URL as it is: URL is not escaped, so one with a control
/// character or a space (which the API's check lets through) stays in the description
/// only.
fn plain_url(url: &str) -> bool {
    !url.chars().any(|c| c.is_control() || c.is_whitespace())
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use tocsin_protocol::deadline::DeadlineStatus;

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("a valid instant")
            .with_timezone(&Utc)
    }

    fn reminder(label: &str, when: &str, state: StepState) -> ReminderView {
        ReminderView {
            label: label.into(),
            at: at(when),
            urgency: DeadlineUrgency::Warning,
            state,
            sent_at: None,
            late: false,
            notification_ids: Vec::new(),
        }
    }

    /// A deadline due on 12 March 2026 at 12:00 Paris time (11:00 UTC), with J-3 sent
    /// and J-1, J-0 planned.
    fn deadline(id: &str) -> DeadlineView {
        DeadlineView {
            id: id.into(),
            deadline_type: "Délai d'appel".into(),
            due_at: DateTime::parse_from_rfc3339("2026-03-12T12:00:00+01:00")
                .expect("a valid instant"),
            time_zone: "Europe/Paris".into(),
            owner: "u-marie".into(),
            backup: None,
            dossier_number: Some("2026/0142".into()),
            dossier_title: Some("Dupont, Martin; et al. \\ appel".into()),
            url: Some("https://ged.cabinet.fr/dossiers/2026-0142".into()),
            status: DeadlineStatus::Open,
            working_days_left: 3,
            urgency: DeadlineUrgency::Info,
            reminders: vec![
                reminder("J-3", "2026-03-09T08:00:00Z", StepState::Sent),
                reminder("J-1", "2026-03-11T08:00:00Z", StepState::Planned),
                reminder("J-0", "2026-03-12T08:00:00Z", StepState::Planned),
            ],
            escalations: Vec::new(),
            acknowledged: None,
            acknowledgements: Vec::new(),
            created_at: at("2026-03-01T10:00:00Z"),
            updated_at: at("2026-03-02T10:00:00Z"),
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 3, 10, 7, 30, 0)
            .single()
            .expect("a valid instant")
    }

    /// The content lines, unfolded (RFC 5545 §3.1).
    fn unfolded(text: &str) -> Vec<String> {
        text.replace("\r\n ", "")
            .split("\r\n")
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn ics_lines_end_with_crlf_and_fold_at_75_octets() {
        let mut long = deadline("appel-1");
        long.dossier_title = Some("Très long intitulé — ".repeat(12));
        let text = render(&[long], "dupont", "Échéances de Marie", now());
        assert!(text.ends_with("END:VCALENDAR\r\n"), "{text}");
        assert!(
            !text.replace("\r\n", "").contains('\n'),
            "a bare LF: {text}"
        );
        assert!(
            !text.replace("\r\n", "").contains('\r'),
            "a bare CR: {text}"
        );
        let lines: Vec<&str> = text.trim_end_matches("\r\n").split("\r\n").collect();
        assert!(
            lines.iter().any(|line| line.starts_with(' ')),
            "the long description is folded: {text}"
        );
        for line in &lines {
            assert!(line.len() <= 75, "{} octets: {line:?}", line.len());
        }
        let summary = unfolded(&text)
            .into_iter()
            .find(|line| line.starts_with("SUMMARY:"))
            .expect("a SUMMARY");
        assert!(
            summary.ends_with(&"Très long intitulé — ".repeat(12)),
            "folding keeps every character: {summary}"
        );
    }

    #[test]
    fn ics_text_escapes_commas_semicolons_and_backslashes() {
        let text = render(&[deadline("appel-1")], "dupont", "Marie, Paul; \\", now());
        let lines = unfolded(&text);
        assert!(
            lines.contains(
                &"SUMMARY:Délai d'appel — Dupont\\, Martin\\; et al. \\\\ appel".to_owned()
            ),
            "{lines:#?}"
        );
        assert!(lines.contains(&"X-WR-CALNAME:Marie\\, Paul\\; \\\\".to_owned()));
        assert!(lines.contains(&"NAME;VALUE=TEXT:Marie\\, Paul\\; \\\\".to_owned()));
        let description = lines
            .iter()
            .find(|line| line.starts_with("DESCRIPTION:Dossier"))
            .expect("the event's description");
        assert!(
            description.contains("\\n"),
            "line breaks are escaped: {description}"
        );
    }

    #[test]
    fn ics_control_characters_never_end_a_line() {
        let mut odd = deadline("appel-1");
        odd.deadline_type = "Délai\rd'appel\u{7}".into();
        odd.url = Some("https://ged.cabinet.fr/a\r\nATTENDEE:x".into());
        let text = render(&[odd], "dupont", "Marie\r\nX-EVIL:1", now());
        let lines = unfolded(&text);
        assert!(
            !lines.iter().any(|line| line.starts_with("ATTENDEE")
                || line.starts_with("X-EVIL")
                || line.starts_with("URL")),
            "{lines:#?}"
        );
        assert!(lines.contains(
            &"SUMMARY:Délai d'appel  — Dupont\\, Martin\\; et al. \\\\ appel".to_owned()
        ));
    }

    #[test]
    fn ics_has_one_event_per_deadline_with_a_stable_uid() {
        let deadlines = [deadline("appel-1"), deadline("appel-2")];
        let text = render(&deadlines, "dupont", "Marie", now());
        let lines = unfolded(&text);
        let parsed: Calendar = text.parse().expect("the crate's parser reads it");
        let uids: Vec<_> = parsed.events().map(|event| event.get_uid()).collect();
        assert_eq!(
            uids,
            [Some("appel-1@dupont.tocsin"), Some("appel-2@dupont.tocsin")],
            "{lines:#?}"
        );
        let later = now() + Duration::hours(5);
        let again = render(&deadlines, "dupont", "Marie", later);
        assert_eq!(
            unfolded(&again)
                .into_iter()
                .filter(|line| line.starts_with("UID:"))
                .collect::<Vec<_>>(),
            lines
                .iter()
                .filter(|line| line.starts_with("UID:"))
                .cloned()
                .collect::<Vec<_>>(),
            "the UIDs (events and alarms) do not change between fetches"
        );
        assert_eq!(
            render(&deadlines, "dupont", "Marie", now()),
            text,
            "the text depends on the arguments only"
        );
        assert_ne!(uid("dupont", "appel-1"), uid("martin", "appel-1"));
    }

    #[test]
    fn ics_event_carries_the_due_instant_summary_and_link() {
        let lines = unfolded(&render(&[deadline("appel-1")], "dupont", "Marie", now()));
        for expected in [
            "DTSTART:20260312T110000Z",
            "DTEND:20260312T111500Z",
            "DTSTAMP:20260310T073000Z",
            "URL:https://ged.cabinet.fr/dossiers/2026-0142",
            "TRANSP:TRANSPARENT",
            "METHOD:PUBLISH",
            "VERSION:2.0",
        ] {
            assert!(
                lines.contains(&expected.to_owned()),
                "{expected}: {lines:#?}"
            );
        }
        let description = lines
            .iter()
            .find(|line| line.starts_with("DESCRIPTION:Dossier"))
            .expect("the event's description");
        for part in [
            "Dossier : 2026/0142 — Dupont\\, Martin\\; et al. \\\\ appel",
            "Échéance : 12/03/2026 à 12:00 (Europe/Paris)",
            "• J-3 : 09/03/2026 à 09:00 — avertissement\\, envoyé",
            "• J-1 : 11/03/2026 à 09:00 — avertissement\\, prévu",
            "Lien : https://ged.cabinet.fr/dossiers/2026-0142",
        ] {
            assert!(description.contains(part), "{part}: {description}");
        }
    }

    #[test]
    fn ics_has_one_display_alarm_per_planned_reminder() {
        let lines = unfolded(&render(&[deadline("appel-1")], "dupont", "Marie", now()));
        let count = |prefix: &str| lines.iter().filter(|l| l.starts_with(prefix)).count();
        assert_eq!(count("BEGIN:VALARM"), 2, "J-1 and J-0, not J-3 (sent)");
        assert_eq!(count("ACTION:DISPLAY"), 2);
        let triggers: Vec<&String> = lines
            .iter()
            .filter(|line| line.starts_with("TRIGGER"))
            .collect();
        // Due 11:00 UTC: J-1 at 08:00 UTC the day before, J-0 at 08:00 UTC the same day.
        assert_eq!(triggers, ["TRIGGER:-P1DT3H", "TRIGGER:-PT3H"]);
        assert!(lines.contains(&"UID:J-1.appel-1@dupont.tocsin".to_owned()));

        let mut none = deadline("appel-1");
        none.reminders.clear();
        let lines = unfolded(&render(&[none], "dupont", "Marie", now()));
        assert!(!lines.iter().any(|l| l == "BEGIN:VALARM"));
        assert!(lines.iter().any(|l| l.contains("Rappels : aucun")));
    }

    #[test]
    fn ics_durations_are_rfc5545() {
        for (seconds, text) in [
            (0, "PT0S"),
            (-30, "-PT30S"),
            (-90, "-PT1M30S"),
            (-3600, "-PT1H"),
            (-86_400, "-P1D"),
            (-(3 * 86_400 + 2 * 3600 + 5), "-P3DT2H5S"),
            (3600, "PT1H"),
        ] {
            assert_eq!(duration(Duration::seconds(seconds)), text);
        }
        assert_eq!(duration(Duration::milliseconds(-1500)), "-PT1S");
    }

    #[test]
    fn ics_parses_back_with_the_crates_parser() {
        let deadlines = [deadline("appel-1"), deadline("appel-2")];
        let text = render(&deadlines, "dupont", "Marie, Paul", now());
        let parsed: Calendar = text.parse().expect("the crate's parser reads it");
        let events: Vec<_> = parsed.events().collect();
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].get_uid(), Some("appel-1@dupont.tocsin"));
        assert_eq!(
            events[0].get_summary(),
            Some("Délai d'appel — Dupont, Martin; et al. \\ appel")
        );
        assert_eq!(
            events[0].get_start(),
            Some(icalendar::DatePerhapsTime::DateTime(
                icalendar::CalendarDateTime::Utc(at("2026-03-12T11:00:00Z"))
            ))
        );
        assert_eq!(events[0].components().len(), 2, "two alarms");
        assert_eq!(parsed.get_name(), Some("Marie, Paul"));
    }

    #[test]
    fn ics_of_no_deadline_is_an_empty_calendar() {
        let text = render(&[], "dupont", "Marie", now());
        assert!(text.starts_with("BEGIN:VCALENDAR\r\n"));
        assert!(!text.contains("VEVENT"));
        let parsed: Calendar = text.parse().expect("the crate's parser reads it");
        assert_eq!(parsed.events().count(), 0);
    }
}
