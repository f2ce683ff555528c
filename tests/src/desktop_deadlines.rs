//! Deadlines on the desktop, against the real app and a real gateway: a deadline the
//! gateway owns raises two alerts (a warning, then a critical reminder); the Deadlines
//! tab lists them as ONE row with "Acknowledge", whose click (WebDriver) reaches the
//! gateway naming Marie and this device, and the tray's orange critical mark goes —
//! while the alerts stay unread (acknowledged is not read). The critical toast offers
//! Open, Acknowledge and Mark as read; its Acknowledge (played by the fake notification
//! server) reaches the gateway the same way, and a deadline acknowledged on another
//! device has its toast closed. A deadline received as an escalation says, in French,
//! whose it was ("marie n’a pas pris en compte ce délai"), and the backup takes it in.
//! Offline, Acknowledge applies at once ("you, on this device", not yet confirmed) and
//! reaches the gateway once it is back. Preferences make a calendar (ICS) link the
//! gateway serves, and turn it off.

use std::collections::BTreeMap;
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::json;
use tocsin_e2e::desktop::artifacts::artifact;
use tocsin_e2e::desktop::steps::{MarieSignedIn, marie_signed_in, poll, server_url, wait_live};
use tocsin_e2e::desktop::tray::TrayItem;
use tocsin_e2e::desktop::webdriver::{WebDriver, require_webdriver, testid};
use tocsin_e2e::desktop::{AppOptions, DesktopSession, SessionOptions, require_desktop, within};
use tocsin_e2e::{Gateway, GatewayOptions, UserFixture, WsClient};
use tocsin_protocol::deadline::{Acknowledgement, DeadlineRequest, DeadlineView, StepState};
use tocsin_protocol::{ClientFrame, ServerFrame};

/// One step's limit (a debug build of a WebKit app on two cores).
const STEP: Duration = Duration::from_secs(30);
/// A whole test's limit.
const LIMIT: Duration = Duration::from_secs(120);
/// The tray icon's critical mark (src-tauri/src/badge.rs: an orange disc at 12,12).
const ORANGE: [u8; 4] = [230, 110, 0, 255];

/// A deadline of `owner` due in an hour whose two reminders go 2 s and 5 s after it
/// is declared (a warning, then a critical one); escalation far enough away (10 min)
/// not to reach anyone during the test.
fn two_reminders(owner: &str, dossier: &str) -> DeadlineRequest {
    let due_at: DateTime<FixedOffset> = (Utc::now() + chrono::Duration::hours(1))
        .with_timezone(&chrono_tz::Europe::Paris)
        .fixed_offset();
    DeadlineRequest {
        deadline_type: "Délai d'appel".into(),
        due_at,
        time_zone: Some("Europe/Paris".into()),
        owner: owner.into(),
        backup: None,
        dossier_number: Some(dossier.into()),
        dossier_title: Some("Dupont c/ Martin".into()),
        url: None,
        policy: Some(json!({"steps": [
            {"before": {"seconds": 3598}, "urgency": "warning"},
            {"before": {"seconds": 3595}, "urgency": "critical"},
        ]})),
        escalation: Some(json!({"first": {"seconds": 600}, "second": null})),
    }
}

/// Polls the gateway's view of deadline `id` until `done` holds.
async fn wait_deadline(
    gw: &Gateway,
    id: &str,
    what: &str,
    done: impl Fn(&DeadlineView) -> bool,
) -> anyhow::Result<DeadlineView> {
    let api = gw.api();
    poll(what, STEP, async || {
        let view = api.deadline_ok(gw.key("dupont"), id).await;
        Ok(done(&view).then_some(view))
    })
    .await
}

/// Both reminders sent.
fn both_sent(view: &DeadlineView) -> bool {
    view.reminders.len() == 2 && view.reminders.iter().all(|r| r.state == StepState::Sent)
}

/// Checks that the gateway's first acknowledgement of the deadline is `user`'s, from
/// this desktop (its device session is named "Tocsin desktop (<host>)").
fn acknowledged_by(view: &DeadlineView, user: &UserFixture) -> anyhow::Result<Acknowledgement> {
    let ack = view
        .acknowledged
        .clone()
        .ok_or_else(|| anyhow::anyhow!("not acknowledged: {view:?}"))?;
    anyhow::ensure!(ack.user_id == user.id, "acknowledged by {ack:?}");
    anyhow::ensure!(ack.user_name == "marie", "named {:?}", ack.user_name);
    let device = ack.device.clone().unwrap_or_default();
    anyhow::ensure!(
        device.starts_with("Tocsin desktop ("),
        "from this desktop's device session, not {device:?}"
    );
    Ok(ack)
}

/// Whether the tray icon shows the orange critical mark (its left edge, where the
/// `!` drawn on it does not reach).
async fn critical_mark(tray: &TrayItem) -> anyhow::Result<bool> {
    Ok(tray.icon_pixels().await?.at(12 - 8, 12) == ORANGE)
}

/// Waits until the tray's critical mark is `shown` (or not).
async fn wait_critical_mark(tray: &TrayItem, shown: bool) -> anyhow::Result<()> {
    let what = if shown {
        "the tray's orange critical mark"
    } else {
        "the tray's critical mark to go"
    };
    poll(what, STEP, async || {
        Ok((critical_mark(tray).await? == shown).then_some(()))
    })
    .await
}

/// Signs `user` in through the panel's form and waits until it is live.
async fn sign_in(wd: &WebDriver, gw: &Gateway, user: &UserFixture) -> anyhow::Result<()> {
    for (id, value) in [
        ("signin-server", server_url(gw)),
        ("signin-email", user.email.clone()),
        ("signin-password", user.password.clone()),
    ] {
        let input = wd.wait_for(&testid(id), STEP).await?;
        input.clear().await?;
        input.send_keys(&value).await?;
    }
    wd.by_testid("signin-submit").await?.click().await?;
    wd.wait_attribute(
        &testid("connection-status"),
        "data-state",
        "connected",
        STEP,
    )
    .await?;
    Ok(())
}

/// Waits until the Deadlines tab's badge reads `count` in `tone`.
async fn wait_deadlines_badge(wd: &WebDriver, count: u64, tone: &str) -> anyhow::Result<()> {
    let badge = testid("tab-count-deadlines");
    wd.wait_text(&badge, &format!("= {count}"), STEP, |text| {
        text.trim() == count.to_string()
    })
    .await?;
    wd.wait_attribute(&badge, "data-tone", tone, STEP).await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_deadlines_tab_one_row_per_deadline_and_acknowledge_reaches_the_gateway() {
    let test = "desktop_deadlines_tab_one_row_per_deadline_and_acknowledge_reaches_the_gateway";
    let Some(binary) = require_webdriver(test) else {
        return;
    };
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let id = "appel-2026-0142";
    gw.api()
        .put_deadline(
            gw.key("dupont"),
            id,
            &two_reminders(&marie.email, "2026-0142"),
        )
        .await
        .expect_status(201, "a new deadline");
    let session = DesktopSession::start(SessionOptions::default())
        .await
        .expect("a desktop session");
    let home = session.dir("home").expect("a home");
    let wd = WebDriver::launch(&session, &binary, &AppOptions::new(&home).shown())
        .await
        .expect("tauri-driver opens the panel");
    within(LIMIT, async {
        let sent = wait_deadline(&gw, id, "both reminders sent", both_sent).await?;
        let alert_ids: Vec<String> = sent
            .reminders
            .iter()
            .flat_map(|r| r.notification_ids.iter().cloned())
            .collect();
        assert_eq!(alert_ids.len(), 2, "two alerts of one deadline: {sent:?}");
        let tray = session.tray()?.wait_item(STEP).await?;

        sign_in(&wd, &gw, &marie).await?;
        wait_deadlines_badge(&wd, 1, "critical").await?;
        wait_critical_mark(&tray, true).await?;
        wd.by_testid("tab-deadlines").await?.click().await?;
        let rows = wd
            .wait_until("one row for the deadline", STEP, async |wd| {
                let rows = wd.find_all(&testid("deadline-row")).await?;
                let listed = rows.len() == 1
                    && rows[0]
                        .attribute("data-alert-ids")
                        .await?
                        .is_some_and(|ids| ids.split(' ').filter(|s| !s.is_empty()).count() == 2);
                Ok(listed.then_some(rows))
            })
            .await?;
        let row = &rows[0];
        assert_eq!(
            row.attribute("data-deadline-id").await?.as_deref(),
            Some(id)
        );
        let listed_ids = row.attribute("data-alert-ids").await?.unwrap_or_default();
        for alert in &alert_ids {
            assert!(
                listed_ids.contains(alert.as_str()),
                "{alert} in {listed_ids}"
            );
        }
        assert_eq!(
            row.attribute("data-tone").await?.as_deref(),
            Some("critical")
        );
        let heading = row.find(&testid("deadline-title")).await?.text().await?;
        assert!(
            heading.contains("Délai d'appel") && heading.contains("2026-0142"),
            "type and dossier: {heading:?}"
        );
        let left = row
            .find(&testid("deadline-working-days"))
            .await?
            .text()
            .await?;
        // "Due today" within the hour, unless the test straddles a day or a weekend.
        assert!(
            left.contains("working day") || left == "Due today" || left == "Past due",
            "working days left: {left:?}"
        );
        assert_eq!(
            row.find(&testid("urgency"))
                .await?
                .attribute("data-tone")
                .await?
                .as_deref(),
            Some("critical"),
            "the current urgency"
        );
        wd.wait_settled(STEP).await?;
        wd.screenshot(&artifact("panel-deadlines-en.png")?).await?;

        let button = row.find(&testid("deadline-acknowledge")).await?;
        assert_eq!(button.text().await?.trim(), "Acknowledge");
        button.click().await?;
        let view = wait_deadline(&gw, id, "the acknowledgement on the gateway", |v| {
            v.acknowledged.is_some()
        })
        .await?;
        let ack = acknowledged_by(&view, &marie)?;
        assert!(
            alert_ids.contains(ack.notification_id.as_ref().unwrap_or(&String::new())),
            "acknowledged from one of its alerts: {ack:?}"
        );

        // The row says who, once the gateway named them; no button any more.
        let row_css = format!("{}[data-deadline-id=\"{id}\"]", testid("deadline-row"));
        wd.wait_attribute(&row_css, "data-acknowledged", "true", STEP)
            .await?;
        let said = wd
            .wait_text(
                &testid("deadline-acknowledged"),
                "names marie and this device",
                STEP,
                |text| text.starts_with("Acknowledged by marie (Tocsin desktop ("),
            )
            .await?;
        eprintln!("the row reads: {said}");
        assert!(
            wd.try_find(&testid("deadline-acknowledge"))
                .await?
                .is_none(),
            "no Acknowledge once acknowledged"
        );
        assert_eq!(
            wd.find(&row_css)
                .await?
                .attribute("data-tone")
                .await?
                .as_deref(),
            Some("done")
        );
        wait_deadlines_badge(&wd, 0, "normal").await?;
        wait_critical_mark(&tray, false).await?;
        // Acknowledged is not read: both alerts are still unread, here and there.
        assert_eq!(tray.label().await?, "2", "the unread count stays");
        let token = gw.api().login(&marie).await.access_token;
        assert_eq!(gw.api().unread(&token).await.total, 2);
        wd.wait_settled(STEP).await?;
        wd.screenshot(&artifact("panel-deadlines-acknowledged-en.png")?)
            .await?;

        // Preferences: a calendar link the gateway serves, then turned off.
        wd.by_testid("prefs-open").await?.click().await?;
        wd.wait_for(&testid("calendar-rotate"), STEP)
            .await?
            .click()
            .await?;
        let input = wd.wait_for(&testid("calendar-url"), STEP).await?;
        let url = input
            .property("value")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            url.starts_with(&format!("{}/v1/calendar/", server_url(&gw))) && url.ends_with(".ics"),
            "an absolute feed URL on the gateway: {url:?}"
        );
        let http = reqwest::Client::new();
        let feed = http.get(&url).send().await?;
        assert_eq!(feed.status(), 200, "the feed is served");
        let ics = feed.text().await?;
        assert!(ics.starts_with("BEGIN:VCALENDAR"), "{ics}");
        assert!(ics.contains("2026-0142"), "the deadline is in it: {ics}");
        wd.execute(
            "document.querySelector('[data-testid=\"prefs-calendar\"]').scrollIntoView(); return true;",
            vec![],
        )
        .await?;
        wd.wait_settled(STEP).await?;
        wd.screenshot(&artifact("panel-calendar-en.png")?).await?;
        wd.by_testid("calendar-revoke").await?.click().await?;
        wd.wait_text(&testid("calendar-status"), "turned off", STEP, |text| {
            text.contains("Calendar feed turned off")
        })
        .await?;
        assert_eq!(
            http.get(&url).send().await?.status(),
            404,
            "the old URL is dead"
        );
        assert!(wd.try_find(&testid("calendar-url")).await?.is_none());
        Ok(())
    })
    .await;
    wd.quit().await.expect("the WebDriver session ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_deadlines_the_critical_toasts_acknowledge_reaches_the_gateway() {
    let test = "desktop_deadlines_the_critical_toasts_acknowledge_reaches_the_gateway";
    let Some(binary) = require_desktop(test, &[]) else {
        return;
    };
    let MarieSignedIn {
        gw,
        marie,
        session,
        mut app,
        options: _,
    } = marie_signed_in(&binary, "en_US.UTF-8", SessionOptions::default()).await;
    within(LIMIT, async {
        let server = session.notifications()?;
        let tray = app.wait_tray(&session, 0, STEP).await?;
        wait_live(&tray, STEP).await?;
        let api = gw.api();
        let key = gw.key("dupont");

        let first = "appel-2026-0142";
        api.put_deadline(key, first, &two_reminders(&marie.email, "2026-0142"))
            .await
            .expect_status(201, "a new deadline");
        let critical = |dossier: &'static str| {
            move |n: &tocsin_e2e::desktop::notifications::Notification| {
                n.urgency() == Some(2)
                    && n.category() == Some("x-tocsin.deadline")
                    && n.body.contains(dossier)
            }
        };
        let toast = server
            .wait_for("the deadline's critical toast", STEP, critical("2026-0142"))
            .await?;
        assert_eq!(
            toast.action_pairs(),
            vec![
                ("default".to_owned(), "Open".to_owned()),
                ("acknowledge".to_owned(), "Acknowledge".to_owned()),
                ("mark-read".to_owned(), "Mark as read".to_owned()),
            ]
        );
        assert_eq!(toast.expire_timeout, 0, "it stays until acted on");
        wait_deadline(&gw, first, "both reminders sent", both_sent).await?;
        tray.wait_label("2", STEP).await?;
        wait_critical_mark(&tray, true).await?;

        // Clicked until the gateway has it: the app listens for a toast's actions only
        // once its Notify call returned (see `NotificationServer::click`).
        let view = poll("the toast's Acknowledge on the gateway", STEP, async || {
            let view = api.deadline_ok(key, first).await;
            if view.acknowledged.is_some() {
                return Ok(Some(view));
            }
            server.click(toast.id, "acknowledge").await?;
            Ok(None)
        })
        .await?;
        acknowledged_by(&view, &marie)?;
        wait_critical_mark(&tray, false).await?;
        tray.wait_label("2", STEP).await?;
        let token = api.login(&marie).await.access_token;
        assert_eq!(
            api.unread(&token).await.total,
            2,
            "acknowledging is not reading"
        );
        assert_eq!(
            api.deadline_ok(key, first)
                .await
                .acknowledgements
                .iter()
                .filter(|a| a.user_id == marie.id)
                .count(),
            1,
            "one acknowledgement: the replaced warning's toast did not send its own"
        );
        // The app told the audit trail the alert was on this screen.
        let admin_key = gw.create_key("dupont", true).await;
        poll("the toast reported shown", STEP, async || {
            let page: tocsin_protocol::audit::AuditPage = reqwest::Client::new()
                .get(format!("http://{}/v1/audit?deadline={first}", gw.addr()))
                .bearer_auth(&admin_key)
                .send()
                .await?
                .json()
                .await?;
            Ok(page
                .records
                .iter()
                .any(|r| r.event == tocsin_protocol::audit::AuditEvent::Shown)
                .then_some(()))
        })
        .await?;

        // Another deadline, acknowledged on Marie's laptop: its toast here is closed.
        let second = "pourvoi-2026-0199";
        api.put_deadline(key, second, &two_reminders(&marie.email, "2026-0199"))
            .await
            .expect_status(201, "a new deadline");
        let other = server
            .wait_for("the second critical toast", STEP, critical("2026-0199"))
            .await?;
        assert_ne!(other.id, toast.id);
        let sent = wait_deadline(&gw, second, "both reminders sent", both_sent).await?;
        wait_critical_mark(&tray, true).await?;
        let alert = sent
            .reminders
            .last()
            .and_then(|r| r.notification_ids.first().cloned())
            .ok_or_else(|| anyhow::anyhow!("the critical reminder's alert: {sent:?}"))?;
        let laptop_token = api.login(&marie).await.access_token;
        let (mut laptop, _, _) =
            WsClient::connect_ready(&gw.ws_url(), &laptop_token, BTreeMap::new()).await;
        laptop
            .send(&ClientFrame::Acknowledge {
                id: "laptop-ack-1".to_owned(),
                notification_ids: vec![alert],
            })
            .await;
        let answer = laptop.wait_result("laptop-ack-1").await;
        assert!(
            matches!(answer, ServerFrame::Result { ok: true, .. }),
            "the laptop's acknowledgement is accepted: {answer:?}"
        );
        let closed = server.wait_closed_by_app(other.id, STEP).await?;
        assert!(
            !closed.contains(&toast.id),
            "the toast acted on was not closed again: {closed:?}"
        );
        wait_critical_mark(&tray, false).await?;
        laptop.close().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_deadlines_an_escalation_says_whose_deadline_was_not_taken_in() {
    let test = "desktop_deadlines_an_escalation_says_whose_deadline_was_not_taken_in";
    let Some(binary) = require_webdriver(test) else {
        return;
    };
    let gw = Gateway::start(GatewayOptions::with_tenants(&[(
        "dupont",
        &["marie", "paul"],
    )]))
    .await;
    let marie = gw.user("dupont", 0).clone();
    let paul = gw.user("dupont", 1).clone();
    let id = "prescription-2026-0311";
    // Marie's deadline, Paul her backup: her critical reminder goes unacknowledged, so
    // the escalation reaches Paul 3 s later.
    let mut request = two_reminders(&marie.email, "2026-0311");
    request.backup = Some(paul.email.clone());
    request.escalation = Some(json!({"first": {"seconds": 3}, "second": null}));
    gw.api()
        .put_deadline(gw.key("dupont"), id, &request)
        .await
        .expect_status(201, "a new deadline");
    let session = DesktopSession::start(SessionOptions::default())
        .await
        .expect("a desktop session");
    let home = session.dir("home").expect("a home");
    let options = AppOptions::new(&home).shown().lang("fr_FR.UTF-8");
    let wd = WebDriver::launch(&session, &binary, &options)
        .await
        .expect("tauri-driver opens the panel");
    within(LIMIT, async {
        wait_deadline(&gw, id, "the escalation sent to Paul", |v| {
            v.escalations.iter().any(|e| e.state == StepState::Sent)
        })
        .await?;
        sign_in(&wd, &gw, &paul).await?;
        wait_deadlines_badge(&wd, 1, "critical").await?;
        wd.by_testid("tab-deadlines").await?.click().await?;
        let note = wd
            .wait_text(
                &testid("deadline-escalation"),
                "names Marie",
                STEP,
                |text| !text.trim().is_empty(),
            )
            .await?;
        assert_eq!(note.trim(), "marie n’a pas pris en compte ce délai");
        let button = wd.by_testid("deadline-acknowledge").await?;
        assert_eq!(button.text().await?.trim(), "Pris en compte");
        wd.wait_settled(STEP).await?;
        wd.screenshot(&artifact("panel-deadlines-escalation-fr.png")?)
            .await?;
        button.click().await?;
        let view = wait_deadline(&gw, id, "Paul's acknowledgement", |v| {
            v.acknowledged.is_some()
        })
        .await?;
        let ack = view
            .acknowledged
            .clone()
            .ok_or_else(|| anyhow::anyhow!("not acknowledged: {view:?}"))?;
        assert_eq!(ack.user_id, paul.id, "the backup took it in: {ack:?}");
        wd.wait_text(
            &testid("deadline-acknowledged"),
            "names Paul",
            STEP,
            |text| text.starts_with("Pris en compte par paul (Tocsin desktop ("),
        )
        .await?;
        wait_deadlines_badge(&wd, 0, "normal").await?;
        Ok(())
    })
    .await;
    wd.quit().await.expect("the WebDriver session ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_deadlines_acknowledged_offline_reaches_the_gateway_once_back() {
    let test = "desktop_deadlines_acknowledged_offline_reaches_the_gateway_once_back";
    let Some(binary) = require_webdriver(test) else {
        return;
    };
    let mut gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let id = "appel-2026-0142";
    gw.api()
        .put_deadline(
            gw.key("dupont"),
            id,
            &two_reminders(&marie.email, "2026-0142"),
        )
        .await
        .expect_status(201, "a new deadline");
    let session = DesktopSession::start(SessionOptions::default())
        .await
        .expect("a desktop session");
    let home = session.dir("home").expect("a home");
    let wd = WebDriver::launch(&session, &binary, &AppOptions::new(&home).shown())
        .await
        .expect("tauri-driver opens the panel");
    within(LIMIT, async {
        wait_deadline(&gw, id, "both reminders sent", both_sent).await?;
        let tray = session.tray()?.wait_item(STEP).await?;
        sign_in(&wd, &gw, &marie).await?;
        wait_deadlines_badge(&wd, 1, "critical").await?;
        wd.by_testid("tab-deadlines").await?.click().await?;
        let button = wd.wait_for(&testid("deadline-acknowledge"), STEP).await?;

        gw.kill_hard().await;
        wd.wait_for(&testid("offline-banner"), STEP).await?;
        button.click().await?;
        // Applied at once: this device's own, waiting for the gateway.
        let row_css = format!("{}[data-deadline-id=\"{id}\"]", testid("deadline-row"));
        wd.wait_attribute(&row_css, "data-acknowledged", "pending", STEP)
            .await?;
        let said = wd
            .wait_text(
                &testid("deadline-acknowledged"),
                "says it is this device's, not yet confirmed",
                STEP,
                |text| {
                    text.starts_with("Acknowledged by you on this device at")
                        && text.ends_with("not yet confirmed")
                },
            )
            .await?;
        eprintln!("offline, the row reads: {said}");
        wait_deadlines_badge(&wd, 0, "normal").await?;
        wait_critical_mark(&tray, false).await?;
        wd.wait_text(&testid("pending-actions"), "names 1 action", STEP, |text| {
            text.starts_with("1 ")
        })
        .await?;
        wd.wait_settled(STEP).await?;
        wd.screenshot(&artifact("panel-deadlines-offline-en.png")?)
            .await?;

        gw.restart_on_same_port().await;
        let view = wait_deadline(&gw, id, "the queued acknowledgement on the gateway", |v| {
            v.acknowledged.is_some()
        })
        .await?;
        acknowledged_by(&view, &marie)?;
        wd.wait_attribute(&row_css, "data-acknowledged", "true", STEP)
            .await?;
        wait_critical_mark(&tray, false).await?;
        Ok(())
    })
    .await;
    wd.quit().await.expect("the WebDriver session ends");
}
