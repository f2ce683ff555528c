//! Deadlines the gateway owns, against the real binary: reminders in seconds arrive in
//! order with rising urgency; a changed due date re-plans them and a cancel stops them;
//! a deadline declared late raises its current urgency at once; a reminder due while
//! the gateway was down fires once, late, on start, and one caught by SIGKILL fires
//! exactly once; an unacknowledged critical reminder escalates to the backup, then the
//! partners, and an acknowledgement stops it; scheduled publishes go out once at their
//! time across a restart; bad declarations get a clear 4xx.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::json;
use tocsin_e2e::publisher::email;
use tocsin_e2e::{Gateway, GatewayOptions, STEP, TenantSpec, WsClient, poll_until};
use tocsin_protocol::deadline::{DeadlineRequest, DeadlineStatus, DeadlineView, StepState};
use tocsin_protocol::notification::{DeadlineAlert, DeadlineUrgency};
use tocsin_protocol::{ClientFrame, NotificationData, ServerFrame};

/// Long enough for a reminder a few seconds ahead, in a debug build under load.
const WAIT: Duration = Duration::from_secs(20);

/// A due date `secs` from now, in Paris time.
fn due_in(secs: i64) -> DateTime<FixedOffset> {
    (Utc::now() + chrono::Duration::seconds(secs))
        .with_timezone(&chrono_tz::Europe::Paris)
        .fixed_offset()
}

/// A deadline of `owner` due in `due` seconds with reminders `steps` (seconds before,
/// urgency) and escalation delays in seconds (no escalation when `None`: far away).
fn deadline(
    owner: &str,
    due: i64,
    steps: &[(u64, &str)],
    escalation: Option<(u64, Option<u64>)>,
) -> DeadlineRequest {
    let steps: Vec<_> = steps
        .iter()
        .map(|(secs, urgency)| json!({"before": {"seconds": secs}, "urgency": urgency}))
        .collect();
    let (first, second) = escalation.unwrap_or((86_400, None));
    DeadlineRequest {
        deadline_type: "Délai d'appel".into(),
        due_at: due_in(due),
        time_zone: Some("Europe/Paris".into()),
        owner: owner.into(),
        backup: None,
        dossier_number: Some("2026/0142".into()),
        dossier_title: Some("Dupont c/ Martin".into()),
        url: None,
        policy: Some(json!({ "steps": steps })),
        escalation: Some(json!({
            "first": {"seconds": first},
            "second": second.map(|s| json!({"seconds": s})),
        })),
    }
}

fn alert_of(notification: &tocsin_protocol::Notification) -> DeadlineAlert {
    match &notification.data {
        NotificationData::DeadlineAlert(alert) => alert.clone(),
        other => panic!("expected a deadline-alert, got {other:?}"),
    }
}

/// The owner's connection, ready for live notifications.
async fn connect(gw: &Gateway, user: usize) -> WsClient {
    let token = gw.api().login(gw.user("dupont", user)).await.access_token;
    WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new())
        .await
        .0
}

fn firm(users: &[&str]) -> GatewayOptions {
    GatewayOptions {
        tenants: vec![TenantSpec::new("dupont", users)],
        ..GatewayOptions::default()
    }
}

/// Acknowledges one alert and checks the gateway applied it.
async fn acknowledge(ws: &mut WsClient, action: &str, notification_id: &str) {
    ws.send(&ClientFrame::Acknowledge {
        id: action.into(),
        notification_ids: vec![notification_id.to_owned()],
    })
    .await;
    let result = ws.wait_result(action).await;
    assert!(
        matches!(result, ServerFrame::Result { ok: true, .. }),
        "{result:?}"
    );
}

/// The next `acknowledged` frame's acknowledgements.
async fn next_acknowledged(ws: &mut WsClient) -> Vec<tocsin_protocol::deadline::Acknowledgement> {
    ws.wait_for(STEP, "acknowledged", |frame| match frame {
        ServerFrame::Acknowledged { acknowledgements } => Some(acknowledgements.clone()),
        _ => None,
    })
    .await
}

/// Polls the deadline until `done` says so.
async fn wait_view(
    gw: &Gateway,
    id: &str,
    what: &str,
    done: impl Fn(&DeadlineView) -> bool,
) -> DeadlineView {
    let api = gw.api();
    poll_until(WAIT, what, || async {
        let view = api.deadline_ok(gw.key("dupont"), id).await;
        done(&view).then_some(view)
    })
    .await
}

#[tokio::test]
async fn reminders_arrive_in_order_with_rising_urgency() {
    let gw = Gateway::start(firm(&["marie"])).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let mut ws = connect(&gw, 0).await;
    let request = deadline(
        &marie.email,
        6,
        &[
            (5, "warning"),
            (4, "urgent"),
            (3, "critical"),
            (2, "critical"),
        ],
        None,
    );
    let created = api
        .put_deadline(gw.key("dupont"), "appel-1", &request)
        .await;
    created.expect_status(201, "a new deadline");
    let view: DeadlineView = created.json();
    assert_eq!(view.owner, marie.id, "the owner is stored by id");
    assert_eq!(view.reminders.len(), 4);
    assert!(
        view.reminders.iter().all(|r| r.state == StepState::Planned),
        "{view:?}"
    );
    // The same declaration again changes nothing.
    let again = api
        .put_deadline(gw.key("dupont"), "appel-1", &request)
        .await;
    again.expect_status(200, "an unchanged deadline");
    assert_eq!(again.json::<DeadlineView>().reminders, view.reminders);

    let alerts = ws.recv_notifications(4, WAIT).await;
    let urgencies: Vec<_> = alerts
        .iter()
        .map(|d| alert_of(&d.notification).urgency)
        .collect();
    assert_eq!(
        urgencies,
        [
            DeadlineUrgency::Warning,
            DeadlineUrgency::Urgent,
            DeadlineUrgency::Critical,
            DeadlineUrgency::Critical
        ]
    );
    let first = alert_of(&alerts[0].notification);
    assert_eq!(first.deadline_id, "appel-1");
    assert_eq!(first.reminder.as_deref(), Some("T-5s"));
    assert_eq!(first.dossier_title.as_deref(), Some("Dupont c/ Martin"));
    assert!(!first.late);
    assert!(
        alerts
            .windows(2)
            .all(|w| w[0].notification.created_at <= w[1].notification.created_at),
        "in order"
    );
    let view = wait_view(&gw, "appel-1", "every reminder sent", |v| {
        v.reminders.iter().all(|r| r.state == StepState::Sent)
    })
    .await;
    assert_eq!(view.urgency, DeadlineUrgency::Critical);
    let sent: Vec<_> = view
        .reminders
        .iter()
        .flat_map(|r| r.notification_ids.clone())
        .collect();
    let received: Vec<_> = alerts.iter().map(|d| d.notification.id.clone()).collect();
    assert_eq!(sent, received, "the receipts name what the owner received");
}

#[tokio::test]
async fn a_changed_due_date_replans_and_a_cancel_stops_everything() {
    let gw = Gateway::start(firm(&["marie"])).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let mut ws = connect(&gw, 0).await;
    let key = gw.key("dupont");
    api.put_deadline(
        key,
        "appel-2",
        &deadline(&marie.email, 4, &[(3, "warning")], None),
    )
    .await
    .expect_status(201, "declare");
    let first = ws.recv_notifications(1, WAIT).await;
    assert_eq!(
        alert_of(&first[0].notification).urgency,
        DeadlineUrgency::Warning
    );

    // Moved a minute later: a new plan, the sent reminder stays in the receipts.
    let moved = deadline(&marie.email, 60, &[(50, "warning"), (3, "critical")], None);
    let view: DeadlineView = api
        .put_deadline(key, "appel-2", &moved)
        .await
        .expect_status(200, "re-plan")
        .json();
    let states: Vec<_> = view
        .reminders
        .iter()
        .map(|r| (r.label.as_str(), r.state))
        .collect();
    assert_eq!(
        states,
        [
            ("T-3s", StepState::Sent),
            ("T-50s", StepState::Planned),
            ("T-3s", StepState::Planned)
        ],
        "{view:?}"
    );

    let cancelled: DeadlineView = api
        .cancel_deadline(key, "appel-2", "done")
        .await
        .expect_status(200, "cancel")
        .json();
    assert_eq!(cancelled.status, DeadlineStatus::Done);
    assert!(
        cancelled
            .reminders
            .iter()
            .all(|r| r.state != StepState::Planned),
        "nothing stays planned: {cancelled:?}"
    );
    // Declared again with a reminder in 2 s: the history shows that one only, proving
    // the scheduler ran past nothing of the cancelled plan.
    api.put_deadline(
        key,
        "appel-3",
        &deadline(&marie.email, 4, &[(2, "urgent")], None),
    )
    .await
    .expect_status(201, "another");
    let next = ws.recv_notifications(1, WAIT).await;
    assert_eq!(alert_of(&next[0].notification).deadline_id, "appel-3");
    // Re-opening a cancelled deadline plans it again.
    let reopened: DeadlineView = api
        .put_deadline(key, "appel-2", &moved)
        .await
        .expect_status(200, "reopen")
        .json();
    assert_eq!(reopened.status, DeadlineStatus::Open);
    assert!(
        reopened
            .reminders
            .iter()
            .any(|r| r.state == StepState::Planned)
    );
}

#[tokio::test]
async fn a_deadline_declared_late_raises_its_current_urgency_at_once() {
    let gw = Gateway::start(firm(&["marie"])).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let mut ws = connect(&gw, 0).await;
    let request = deadline(
        &marie.email,
        5,
        &[(3600, "warning"), (600, "urgent"), (60, "critical")],
        None,
    );
    let view: DeadlineView = api
        .put_deadline(gw.key("dupont"), "pourvoi-1", &request)
        .await
        .expect_status(201, "declare")
        .json();
    let states: Vec<_> = view.reminders.iter().map(|r| r.state).collect();
    assert_eq!(
        states,
        [
            StepState::Superseded,
            StepState::Superseded,
            StepState::Planned
        ],
        "{view:?}"
    );
    let alert = ws.recv_notifications(1, WAIT).await;
    assert_eq!(
        alert_of(&alert[0].notification).urgency,
        DeadlineUrgency::Critical
    );
    assert_eq!(
        alert[0].notification.urgency,
        tocsin_protocol::Urgency::Critical
    );
    let frame = ws.try_next_event(Duration::from_millis(500)).await;
    assert!(
        !matches!(&frame, Some(tocsin_e2e::ws::WsEvent::Frame(f)) if tocsin_e2e::ws::as_delivered(f).is_some()),
        "the superseded reminders are not sent: {frame:?}"
    );
}

#[tokio::test]
async fn bad_declarations_are_refused_saying_what_to_fix() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[
        ("dupont", &["marie"]),
        ("martin", &["jean"]),
    ]))
    .await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let key = gw.key("dupont");
    let cases = [
        (
            deadline(&marie.email, -60, &[(1, "warning")], None),
            "in the past",
        ),
        (
            deadline("nobody@dupont.example", 60, &[(1, "warning")], None),
            "not a user of your firm",
        ),
        (
            // Another firm's user is nobody here.
            deadline(&gw.user("martin", 0).email, 60, &[(1, "warning")], None),
            "not a user of your firm",
        ),
        (
            DeadlineRequest {
                time_zone: Some("Paris".into()),
                ..deadline(&marie.email, 60, &[(1, "warning")], None)
            },
            "IANA time zone",
        ),
        (
            DeadlineRequest {
                dossier_title: Some("Dupont\r\nX-Injected: 1".into()),
                ..deadline(&marie.email, 60, &[(1, "warning")], None)
            },
            "control character",
        ),
        (
            DeadlineRequest {
                backup: Some(marie.email.clone()),
                ..deadline(&marie.email, 60, &[(1, "warning")], None)
            },
            "backup is the owner",
        ),
        (
            DeadlineRequest {
                policy: Some(json!({"steps": [{"before": {"weeks": 1}, "urgency": "warning"}]})),
                ..deadline(&marie.email, 60, &[(1, "warning")], None)
            },
            "policy:",
        ),
    ];
    for (request, expected) in cases {
        let reply = api.put_deadline(key, "bad-1", &request).await;
        reply.expect_status(422, expected);
        let message = reply.error().message;
        assert!(message.contains(expected), "{expected}: {message}");
    }
    // Another firm's deadline is answered exactly like an unknown one.
    api.put_deadline(
        gw.key("martin"),
        "theirs",
        &deadline(&gw.user("martin", 0).email, 60, &[(1, "warning")], None),
    )
    .await
    .expect_status(201, "martin's own");
    let theirs = api.deadline(key, "theirs").await;
    let unknown = api.deadline(key, "never-declared").await;
    theirs.expect_status(404, "another firm's");
    unknown.expect_status(404, "unknown");
    assert_eq!(
        theirs.error().message.replace("theirs", "ID"),
        unknown.error().message.replace("never-declared", "ID"),
        "the same answer"
    );
    api.cancel_deadline(key, "theirs", "done")
        .await
        .expect_status(404, "cancel another firm's");
    // Lists are of one firm: martin's deadline is in martin's list only, and filters
    // by owner (id or email) and dossier.
    let jean = &gw.user("martin", 0).email;
    let list = |key: &str, query: String| {
        let api = api.clone();
        let key = key.to_owned();
        async move {
            api.deadlines(&key, &query)
                .await
                .expect_status(200, "list")
                .json::<tocsin_protocol::deadline::DeadlineList>()
                .deadlines
                .into_iter()
                .map(|d| d.id)
                .collect::<Vec<_>>()
        }
    };
    assert!(list(key, String::new()).await.is_empty(), "dupont has none");
    assert_eq!(
        list(gw.key("martin"), format!("owner={jean}")).await,
        ["theirs"]
    );
    assert_eq!(
        list(gw.key("martin"), "dossier=2026/0142".into()).await,
        ["theirs"]
    );
    assert!(
        list(gw.key("martin"), "owner=nobody@martin.example".into())
            .await
            .is_empty()
    );
    assert!(
        list(gw.key("martin"), format!("owner={}", marie.email))
            .await
            .is_empty()
    );
}

#[tokio::test]
async fn a_reminder_due_while_the_gateway_was_down_fires_once_late_on_start() {
    let mut gw = Gateway::start(GatewayOptions {
        late_after_secs: Some(1),
        ..firm(&["marie"])
    })
    .await;
    let api = gw.api();
    let marie = gw.user("dupont", 0).clone();
    let key = gw.key("dupont").to_owned();
    let view: DeadlineView = api
        .put_deadline(
            &key,
            "appel-4",
            &deadline(&marie.email, 600, &[(597, "urgent")], None),
        )
        .await
        .expect_status(201, "declare")
        .json();
    let at = view.reminders[0].at;
    gw.kill_hard().await;
    // Down across the reminder's time, and more than late_after past it.
    poll_until(WAIT, "the reminder's time passed", || async {
        (Utc::now() > at + chrono::Duration::seconds(2)).then_some(())
    })
    .await;
    gw.restart().await;
    let view = wait_view(&gw, "appel-4", "the reminder sent on start", |v| {
        v.reminders[0].state == StepState::Sent
    })
    .await;
    assert!(view.reminders[0].late, "{view:?}");
    let token = gw.api().login(&marie).await.access_token;
    let history = gw
        .api()
        .history_ok(&token, &marie.stream(), None, Some(500))
        .await;
    assert_eq!(history.notifications.len(), 1, "sent once");
    let alert = alert_of(&history.notifications[0].notification);
    assert!(alert.late, "the alert says it is late");
    assert!(
        history.notifications[0]
            .notification
            .body
            .contains("en retard")
    );
    // A second restart sends nothing more.
    gw.kill_hard().await;
    gw.restart().await;
    let history = gw
        .api()
        .history_ok(&token, &marie.stream(), None, Some(500))
        .await;
    assert_eq!(
        history.notifications.len(),
        1,
        "still once after another restart"
    );
}

#[tokio::test]
async fn sigkill_while_reminders_fire_loses_none_and_sends_none_twice() {
    let mut gw = Gateway::start(firm(&["marie"])).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0).clone();
    let key = gw.key("dupont").to_owned();
    // 40 deadlines whose reminders fall every 25 ms over one second.
    let due = due_in(4);
    for n in 0..40u64 {
        let mut request = deadline(&marie.email, 4, &[(1, "urgent")], None);
        request.due_at = due + chrono::Duration::milliseconds(25 * n as i64);
        api.put_deadline(&key, &format!("lot-{n}"), &request)
            .await
            .expect_status(201, "declare");
    }
    let start = due.with_timezone(&Utc) - chrono::Duration::seconds(1);
    // Killed in the middle of the second, then again as soon as it is back.
    poll_until(WAIT, "half the reminders are due", || async {
        (Utc::now() > start + chrono::Duration::milliseconds(500)).then_some(())
    })
    .await;
    gw.kill_hard().await;
    gw.restart().await;
    gw.kill_hard().await;
    gw.restart().await;
    let token = gw.api().login(&marie).await.access_token;
    let ids = poll_until(WAIT, "all 40 reminders stored", || async {
        let history = gw
            .api()
            .history_ok(&token, &marie.stream(), None, Some(500))
            .await;
        (history.notifications.len() >= 40).then_some(history)
    })
    .await;
    let deadline_ids: Vec<_> = ids
        .notifications
        .iter()
        .map(|item| alert_of(&item.notification).deadline_id)
        .collect();
    let distinct: BTreeSet<_> = deadline_ids.iter().collect();
    assert_eq!(deadline_ids.len(), 40, "none twice: {deadline_ids:?}");
    assert_eq!(distinct.len(), 40, "none missing");
    for n in [0, 20, 39] {
        let view = gw.api().deadline_ok(&key, &format!("lot-{n}")).await;
        assert_eq!(view.reminders[0].notification_ids.len(), 1, "{view:?}");
    }
}

#[tokio::test]
async fn an_unacknowledged_critical_reminder_escalates_to_the_backup_then_the_partners() {
    let gw = Gateway::start(firm(&["marie", "paul", "jeanne:partner"])).await;
    let api = gw.api();
    let (marie, paul) = (gw.user("dupont", 0), gw.user("dupont", 1));
    let mut paul_ws = connect(&gw, 1).await;
    let mut partner_ws = connect(&gw, 2).await;
    let request = DeadlineRequest {
        backup: Some(paul.email.clone()),
        ..deadline(&marie.email, 30, &[(29, "critical")], Some((1, Some(1))))
    };
    api.put_deadline(gw.key("dupont"), "appel-5", &request)
        .await
        .expect_status(201, "declare");
    let to_backup = paul_ws.recv_notifications(1, WAIT).await;
    let alert = alert_of(&to_backup[0].notification);
    let escalation = alert.escalation.expect("an escalation");
    assert_eq!(
        (escalation.step, escalation.owner.as_str()),
        (1, marie.id.as_str())
    );
    assert_eq!(escalation.owner_name, "marie");
    assert!(
        to_backup[0]
            .notification
            .body
            .contains("marie n'a pas pris en compte")
    );
    let to_partner = partner_ws.recv_notifications(1, WAIT).await;
    assert_eq!(
        alert_of(&to_partner[0].notification)
            .escalation
            .map(|e| e.step),
        Some(2)
    );
    let view = wait_view(&gw, "appel-5", "both steps sent", |v| {
        v.escalations.len() == 2 && v.escalations.iter().all(|e| e.state == StepState::Sent)
    })
    .await;
    assert_eq!(
        view.escalations[0].recipients,
        std::slice::from_ref(&paul.id)
    );
    assert_eq!(
        view.escalations[1].recipients,
        [gw.user("dupont", 2).id.clone()]
    );
}

#[tokio::test]
async fn an_acknowledgement_before_the_delay_stops_the_escalation() {
    let gw = Gateway::start(firm(&["marie", "paul"])).await;
    let api = gw.api();
    let (marie, paul) = (gw.user("dupont", 0), gw.user("dupont", 1));
    let mut marie_ws = connect(&gw, 0).await;
    let mut paul_ws = connect(&gw, 1).await;
    let request = DeadlineRequest {
        backup: Some(paul.email.clone()),
        ..deadline(&marie.email, 30, &[(29, "critical")], Some((3, None)))
    };
    api.put_deadline(gw.key("dupont"), "appel-6", &request)
        .await
        .expect_status(201, "declare");
    let alert = marie_ws.recv_notifications(1, WAIT).await;
    acknowledge(&mut marie_ws, "ack-1", &alert[0].notification.id).await;
    // The backup is shown the acknowledgement.
    let shown = next_acknowledged(&mut paul_ws).await;
    assert_eq!(shown[0].user_id, marie.id);
    let view = api.deadline_ok(gw.key("dupont"), "appel-6").await;
    assert_eq!(view.escalations.len(), 1);
    assert_eq!(view.escalations[0].state, StepState::Cancelled, "{view:?}");
    let acknowledged = view.acknowledged.expect("acknowledged");
    assert_eq!(acknowledged.user_id, marie.id);
    assert!(acknowledged.device.is_some(), "from which device");
    // Past the escalation's time, the backup received no alert.
    let at = view.escalations[0].at;
    poll_until(WAIT, "the escalation's time passed", || async {
        (Utc::now() > at + chrono::Duration::seconds(1)).then_some(())
    })
    .await;
    let token = api.login(paul).await.access_token;
    let history = api
        .history_ok(&token, &paul.stream(), None, Some(500))
        .await;
    assert!(history.notifications.is_empty(), "{history:?}");
    // Moved to a later date: a new plan, and the deadline stays acknowledged (devices
    // show it so; the new reminders tell the owner the date).
    let moved = DeadlineRequest {
        backup: Some(paul.email.clone()),
        ..deadline(&marie.email, 3600, &[(60, "critical")], Some((3, None)))
    };
    let view: DeadlineView = api
        .put_deadline(gw.key("dupont"), "appel-6", &moved)
        .await
        .expect_status(200, "re-plan")
        .json();
    assert_eq!(view.acknowledged.map(|a| a.user_id), Some(marie.id.clone()));
}

/// An alert the firm publishes itself to the whole firm has no deadline record naming
/// who is involved: everyone who can read it is told of its acknowledgement.
#[tokio::test]
async fn acknowledging_a_firm_published_alert_tells_its_other_readers() {
    let gw = Gateway::start(firm(&["marie", "paul"])).await;
    let api = gw.api();
    let mut marie_ws = connect(&gw, 0).await;
    let mut paul_ws = connect(&gw, 1).await;
    let published = api
        .publish_ok(
            gw.key("dupont"),
            &tocsin_e2e::publisher::critical_deadline("tenant:dupont", "cron-1"),
        )
        .await;
    marie_ws.wait_notification(&published.id, STEP).await;
    paul_ws.wait_notification(&published.id, STEP).await;
    acknowledge(&mut marie_ws, "ack-t", &published.id).await;
    let shown = next_acknowledged(&mut paul_ws).await;
    assert_eq!(shown[0].deadline_id, "cron-1");
    assert_eq!(shown[0].user_id, gw.user("dupont", 0).id);
}

#[tokio::test]
async fn a_scheduled_publish_goes_out_once_at_its_time_across_a_restart() {
    let mut gw = Gateway::start(firm(&["marie"])).await;
    let marie = gw.user("dupont", 0).clone();
    let key = gw.key("dupont").to_owned();
    let at = Utc::now() + chrono::Duration::seconds(3);
    let mut request = email(&marie.stream(), "Audience demain");
    request.idempotency_key = Some("rappel-audience".into());
    request.deliver_at = Some(at);
    let api = gw.api();
    let scheduled = api.publish(&key, &request).await;
    scheduled.expect_status(202, "scheduled");
    let body: tocsin_protocol::http::PublishResponse = scheduled.json();
    assert_eq!((body.deliver_at, body.offset), (Some(at), 0));
    let retried = api.publish(&key, &request).await;
    retried.expect_status(202, "a retry of a scheduled publish");
    assert_eq!(
        retried.json::<tocsin_protocol::http::PublishResponse>().id,
        body.id
    );

    gw.kill_hard().await;
    gw.restart().await;
    let token = gw.api().login(&marie).await.access_token;
    let (mut ws, _, caught_up) =
        WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    assert!(caught_up.notifications.is_empty());
    let delivered = ws.recv_notifications(1, WAIT).await;
    assert_eq!(delivered[0].notification.id, body.id);
    assert!(delivered[0].notification.created_at >= at);
    // After it went out, a retry is answered with where it was stored.
    let after = gw.api().publish(&key, &request).await;
    after.expect_status(200, "a retry after delivery");
    assert_eq!(
        after
            .json::<tocsin_protocol::http::PublishResponse>()
            .offset,
        delivered[0].offset
    );
    gw.kill_hard().await;
    gw.restart().await;
    let history = gw
        .api()
        .history_ok(&token, &marie.stream(), None, Some(500))
        .await;
    assert_eq!(history.notifications.len(), 1, "once");
}
