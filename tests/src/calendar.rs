//! The per-user calendar feed against the real binary: a user's open deadlines as
//! iCalendar, read by an outside parser (Python's `icalendar`, Debian's
//! python3-icalendar) exactly as a calendar app would — the owner's deadlines only, at
//! their due instants, one alarm per planned reminder; rotating the secret retires the
//! old URL, revoking retires the feed, and a cancelled deadline leaves it.
//!
//! The parser is required: without python3-icalendar (`cargo xtask setup` installs it)
//! these tests fail rather than skip.

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::Duration;

use chrono::{DateTime, SubsecRound, Utc};
use serde::Deserialize;
use serde_json::json;
use tocsin_e2e::{Gateway, GatewayOptions, TenantSpec};
use tocsin_protocol::deadline::{DeadlineRequest, DeadlineView, StepState};
use tocsin_protocol::{ErrorBody, ErrorCode};
use tokio::io::AsyncWriteExt;

/// Debian's interpreter, the one python3-icalendar installs for: a `python3` found
/// first on PATH (pyenv, a virtualenv) would not see the package.
const PYTHON: &str = "/usr/bin/python3";

/// How long one request or the parser may take before the test fails.
const TIMEOUT: Duration = Duration::from_secs(20);

/// Reads an iCalendar text on stdin with Python's `icalendar` and prints what a
/// calendar app would take from it, as JSON. Parse problems the library tolerates are
/// collected in each component's `errors`; they are printed too, so that a tolerated
/// error still fails the test.
const PARSER: &str = r#"
import json, sys
from icalendar import Calendar
cal = Calendar.from_ical(sys.stdin.buffer.read())
errors = [[c.name, str(e)] for c in cal.walk() for e in getattr(c, "errors", [])]
events = []
for event in cal.walk("VEVENT"):
    alarms = []
    for alarm in event.walk("VALARM"):
        trigger = alarm.decoded("TRIGGER")
        alarms.append({
            "action": str(alarm.get("ACTION")),
            "trigger_seconds": trigger.total_seconds() if hasattr(trigger, "total_seconds") else None,
        })
    events.append({
        "uid": str(event.get("UID")),
        "summary": str(event.get("SUMMARY")),
        "description": str(event.get("DESCRIPTION")),
        "dtstart": event.decoded("DTSTART").isoformat(),
        "dtend": event.decoded("DTEND").isoformat(),
        "url": str(event["URL"]) if "URL" in event else None,
        "alarms": alarms,
    })
print(json.dumps({"name": str(cal.get("X-WR-CALNAME")), "errors": errors, "events": events}))
"#;

/// What the outside parser read.
#[derive(Debug, Deserialize)]
struct Parsed {
    name: String,
    errors: Vec<(String, String)>,
    events: Vec<ParsedEvent>,
}

#[derive(Debug, Deserialize)]
struct ParsedEvent {
    uid: String,
    summary: String,
    description: String,
    dtstart: String,
    dtend: String,
    url: Option<String>,
    alarms: Vec<ParsedAlarm>,
}

#[derive(Debug, Deserialize)]
struct ParsedAlarm {
    action: String,
    trigger_seconds: Option<f64>,
}

impl ParsedEvent {
    fn start(&self) -> DateTime<Utc> {
        instant(&self.dtstart)
    }
}

fn instant(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("'{text}' is not an instant with an offset: {e}"))
        .with_timezone(&Utc)
}

/// Parses `text` with Python's `icalendar`; panics (never skips) when it is missing.
async fn parse(text: &str) -> Parsed {
    let mut child = tokio::process::Command::new(PYTHON)
        .args(["-c", PARSER])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| {
            panic!("{PYTHON} cannot be run ({e}); install python3-icalendar (`cargo xtask setup`)")
        });
    let mut stdin = child.stdin.take().expect("stdin is piped");
    stdin
        .write_all(text.as_bytes())
        .await
        .expect("the parser reads its input");
    drop(stdin);
    let output = tokio::time::timeout(TIMEOUT, child.wait_with_output())
        .await
        .expect("the parser finishes")
        .expect("the parser's output can be read");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        !stderr.contains("No module named 'icalendar'"),
        "Python's icalendar is missing: install python3-icalendar (`cargo xtask setup`)\n{stderr}"
    );
    assert!(
        output.status.success(),
        "Python's icalendar refused the feed ({}):\n{stderr}\n--- feed ---\n{text}",
        output.status
    );
    let parsed: Parsed = serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "the parser's JSON does not read ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    });
    assert!(
        parsed.errors.is_empty(),
        "Python's icalendar found errors {:?} in\n{text}",
        parsed.errors
    );
    parsed
}

fn firm() -> GatewayOptions {
    GatewayOptions {
        tenants: vec![TenantSpec::new("dupont", &["marie", "paul"])],
        ..GatewayOptions::default()
    }
}

/// A deadline of `owner` due in `days` days (whole seconds, Paris time); `steps` are
/// reminders that many hours before (the firm's own J-3…J-0 policy when empty).
fn deadline(owner: &str, days: i64, steps: &[u64]) -> DeadlineRequest {
    let due = (Utc::now().trunc_subsecs(0) + chrono::Duration::days(days))
        .with_timezone(&chrono_tz::Europe::Paris)
        .fixed_offset();
    let policy = (!steps.is_empty()).then(|| {
        let steps: Vec<_> = steps
            .iter()
            .map(|hours| json!({"before": {"seconds": hours * 3600}, "urgency": "warning"}))
            .collect();
        json!({ "steps": steps })
    });
    DeadlineRequest {
        deadline_type: "Délai d'appel".into(),
        due_at: due,
        time_zone: Some("Europe/Paris".into()),
        owner: owner.into(),
        backup: None,
        dossier_number: Some("2026/0142".into()),
        dossier_title: Some("Dupont c/ Martin".into()),
        url: None,
        policy,
        escalation: None,
    }
}

/// Declares `id` and returns the gateway's view of it.
async fn declare(gw: &Gateway, id: &str, request: &DeadlineRequest) -> DeadlineView {
    gw.api()
        .put_deadline(gw.key("dupont"), id, request)
        .await
        .expect_status(201, "a new deadline")
        .json()
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .build()
        .expect("a reqwest client can be built")
}

fn base(gw: &Gateway) -> String {
    format!("http://{}", gw.addr())
}

/// The signed-in user `index`'s access token.
async fn token(gw: &Gateway, index: usize) -> String {
    gw.api().login(gw.user("dupont", index)).await.access_token
}

/// What `POST /v1/me/calendar` answers.
#[derive(Debug, Deserialize)]
struct FeedAddress {
    url: String,
    path: String,
}

/// `POST /v1/me/calendar` with `bearer`: its status and body.
async fn rotate_raw(gw: &Gateway, bearer: Option<&str>) -> (u16, serde_json::Value) {
    let mut request = client().post(format!("{}/v1/me/calendar", base(gw)));
    if let Some(bearer) = bearer {
        request = request.bearer_auth(bearer);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

/// `POST /v1/me/calendar`, expecting a new feed address.
async fn rotate(gw: &Gateway, token: &str) -> FeedAddress {
    let (status, body) = rotate_raw(gw, Some(token)).await;
    assert_eq!(status, 200, "rotate the feed: {body}");
    let address: FeedAddress = serde_json::from_value(body).expect("{url, path}");
    assert!(
        address.path.starts_with("/v1/calendar/") && address.path.ends_with(".ics"),
        "{address:?}"
    );
    assert_eq!(
        address.url,
        format!("{}{}", base(gw), address.path),
        "the Host header makes the URL absolute"
    );
    address
}

/// `DELETE /v1/me/calendar`: its status.
async fn revoke(gw: &Gateway, token: &str) -> u16 {
    client()
        .delete(format!("{}/v1/me/calendar", base(gw)))
        .bearer_auth(token)
        .send()
        .await
        .expect("the gateway answers")
        .status()
        .as_u16()
}

/// A fetched feed.
struct Fetched {
    status: u16,
    content_type: String,
    cache_control: String,
    text: String,
}

/// `GET url` without credentials, as a calendar app does.
async fn fetch(url: &str) -> Fetched {
    let response = client().get(url).send().await.expect("the gateway answers");
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    Fetched {
        status: response.status().as_u16(),
        content_type: header(reqwest::header::CONTENT_TYPE),
        cache_control: header(reqwest::header::CACHE_CONTROL),
        text: response.text().await.expect("the body reads"),
    }
}

/// The feed at `url`, parsed, after checking it is served as iCalendar.
async fn feed(url: &str) -> Parsed {
    let fetched = fetch(url).await;
    assert_eq!(fetched.status, 200, "{url}: {}", fetched.text);
    assert_eq!(fetched.content_type, "text/calendar; charset=utf-8");
    assert!(fetched.cache_control.contains("no-store"));
    parse(&fetched.text).await
}

fn uids(parsed: &Parsed) -> BTreeSet<&str> {
    parsed
        .events
        .iter()
        .map(|event| event.uid.as_str())
        .collect()
}

/// Expects the 404 of an unknown or retired feed URL.
async fn expect_gone(url: &str, what: &str) {
    let fetched = fetch(url).await;
    assert_eq!(fetched.status, 404, "{what}: {}", fetched.text);
    let error: ErrorBody = serde_json::from_str(&fetched.text)
        .unwrap_or_else(|e| panic!("{what}: not the JSON error body ({e}): {}", fetched.text));
    assert_eq!(error.code, ErrorCode::NotFound, "{what}");
    assert!(
        error.message.contains("rotated") && error.message.contains("Preferences"),
        "{what}: the message says what to do: {}",
        error.message
    );
}

#[tokio::test]
async fn feed_holds_the_owners_open_deadlines_with_their_reminders() {
    let gw = Gateway::start(firm()).await;
    let (marie, paul) = (gw.user("dupont", 0), gw.user("dupont", 1));

    let mut backed_up = deadline(&marie.email, 10, &[72, 24]);
    backed_up.backup = Some(paul.email.clone());
    let mut linked = deadline(&marie.email, 20, &[]);
    linked.dossier_title = Some("Dupont, Martin; et al. \\ appel".into());
    linked.url = Some("https://ged.cabinet.fr/dossiers/2026-0142".into());
    let mut views = [
        declare(&gw, "appel-1", &backed_up).await,
        declare(&gw, "appel-2", &linked).await,
    ];
    declare(&gw, "conclusions-1", &deadline(&paul.email, 5, &[24])).await;

    let address = rotate(&gw, &token(&gw, 0).await).await;
    let parsed = feed(&address.url).await;
    assert!(parsed.name.contains("échéances"), "{}", parsed.name);
    assert_eq!(
        uids(&parsed),
        BTreeSet::from(["appel-1@dupont.tocsin", "appel-2@dupont.tocsin"]),
        "marie's open deadlines only: {parsed:#?}"
    );

    views.sort_by_key(|view| view.due_at);
    for (view, event) in views.iter().zip(&parsed.events) {
        assert_eq!(
            event.uid,
            format!("{}@dupont.tocsin", view.id),
            "soonest due first"
        );
        assert_eq!(
            event.start(),
            view.due_at.with_timezone(&Utc),
            "{}: DTSTART is the due instant",
            view.id
        );
        assert!(instant(&event.dtend) > event.start());
        let dossier = view.dossier_title.as_deref().expect("a title");
        assert_eq!(event.summary, format!("Délai d'appel — {dossier}"));
        assert!(
            event.description.contains("2026/0142") && event.description.contains("Rappels"),
            "{}",
            event.description
        );
        assert_eq!(event.url, view.url);

        let planned: Vec<DateTime<Utc>> = view
            .reminders
            .iter()
            .filter(|reminder| reminder.state == StepState::Planned)
            .map(|reminder| reminder.at)
            .collect();
        assert!(!planned.is_empty(), "{view:?}");
        assert_eq!(
            event.alarms.len(),
            planned.len(),
            "{}: one alarm per planned reminder: {event:#?}",
            view.id
        );
        let fired: Vec<DateTime<Utc>> = event
            .alarms
            .iter()
            .map(|alarm| {
                assert_eq!(alarm.action, "DISPLAY");
                let seconds = alarm
                    .trigger_seconds
                    .expect("a trigger relative to the start");
                event.start() + chrono::Duration::seconds(seconds as i64)
            })
            .collect();
        assert_eq!(
            fired, planned,
            "{}: the alarms go with the reminders",
            view.id
        );
    }
    assert_eq!(
        parsed.events[0].alarms.len(),
        2,
        "appel-1: its own two reminders"
    );
}

#[tokio::test]
async fn rotating_or_revoking_the_secret_retires_the_old_url() {
    let gw = Gateway::start(firm()).await;
    let marie = gw.user("dupont", 0);
    declare(&gw, "appel-1", &deadline(&marie.email, 10, &[24])).await;
    let token = token(&gw, 0).await;

    let first = rotate(&gw, &token).await;
    assert_eq!(uids(&feed(&first.url).await).len(), 1);
    let second = rotate(&gw, &token).await;
    assert_ne!(first.path, second.path, "a new secret");
    expect_gone(&first.url, "the URL before rotation").await;
    assert_eq!(
        uids(&feed(&second.url).await),
        BTreeSet::from(["appel-1@dupont.tocsin"])
    );

    assert_eq!(revoke(&gw, &token).await, 204);
    expect_gone(&second.url, "a revoked URL").await;
    assert_eq!(revoke(&gw, &token).await, 404, "nothing left to revoke");

    // A new feed after a revocation works, and nothing else opens one.
    let third = rotate(&gw, &token).await;
    assert_eq!(fetch(&third.url).await.status, 200);
    let secret = third
        .path
        .trim_start_matches("/v1/calendar/")
        .trim_end_matches(".ics");
    for (path, what) in [
        (format!("/v1/calendar/{secret}"), "the secret without .ics"),
        (format!("/v1/calendar/{secret}x.ics"), "a longer secret"),
        ("/v1/calendar/nope.ics".to_owned(), "garbage"),
    ] {
        expect_gone(&format!("{}{path}", base(&gw)), what).await;
    }
    let (status, body) = rotate_raw(&gw, None).await;
    assert_eq!(status, 401, "no token: {body}");
    let (status, body) = rotate_raw(&gw, Some(gw.key("dupont"))).await;
    assert_eq!(status, 401, "an API key is not a user: {body}");
}

#[tokio::test]
async fn each_user_sees_their_own_and_a_cancelled_deadline_leaves() {
    let gw = Gateway::start(firm()).await;
    let (marie, paul) = (gw.user("dupont", 0), gw.user("dupont", 1));
    let mut backed_up = deadline(&marie.email, 10, &[24]);
    backed_up.backup = Some(paul.email.clone());
    declare(&gw, "appel-1", &backed_up).await;
    declare(&gw, "appel-2", &deadline(&marie.email, 12, &[24])).await;
    declare(&gw, "conclusions-1", &deadline(&paul.email, 5, &[24])).await;

    let marie_feed = rotate(&gw, &token(&gw, 0).await).await;
    let paul_feed = rotate(&gw, &token(&gw, 1).await).await;
    assert_eq!(
        uids(&feed(&marie_feed.url).await),
        BTreeSet::from(["appel-1@dupont.tocsin", "appel-2@dupont.tocsin"])
    );
    assert_eq!(
        uids(&feed(&paul_feed.url).await),
        BTreeSet::from(["conclusions-1@dupont.tocsin"]),
        "paul's own only: being marie's backup puts her deadline in no feed of his"
    );

    gw.api()
        .cancel_deadline(gw.key("dupont"), "appel-2", "done")
        .await
        .expect_status(200, "cancel");
    assert_eq!(
        uids(&feed(&marie_feed.url).await),
        BTreeSet::from(["appel-1@dupont.tocsin"]),
        "a cancelled deadline leaves the feed"
    );
    assert_eq!(
        uids(&feed(&paul_feed.url).await),
        BTreeSet::from(["conclusions-1@dupont.tocsin"])
    );
}
