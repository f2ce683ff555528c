//! The scheduler over a real SQLite store, under tokio's paused clock: a week of
//! reminders in milliseconds, each checked against the hour and day it must go.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, TimeZone, Utc};
use chrono_tz::Europe::Paris;
use tocsin_protocol::deadline::DeadlineRequest;
use tocsin_protocol::notification::DeadlineUrgency;
use tocsin_protocol::{Notification, NotificationData, StreamName};
use tokio::sync::{Notify, mpsc};
use tokio_util::sync::CancellationToken;

use super::Scheduler;
use crate::clock::Clock;
use crate::deadlines::declare::declare;
use crate::store::sqlite::SqliteStore;
use crate::store::{ActionKey, Fanout, NewUser, Store, StoredNotification};

/// Hands every committed notification to the test.
struct Recorder(mpsc::UnboundedSender<Arc<StoredNotification>>);

impl Fanout for Recorder {
    fn deliver(&self, notifications: &[Arc<StoredNotification>]) {
        for notification in notifications {
            let _ = self.0.send(notification.clone());
        }
    }
}

fn paris(day: u32, hour: u32, minute: u32) -> DateTime<Utc> {
    let date = NaiveDate::from_ymd_opt(2026, 12, day).expect("a December day");
    Paris
        .from_local_datetime(&date.and_hms_opt(hour, minute, 0).expect("a time"))
        .single()
        .expect("no DST change in December")
        .with_timezone(&Utc)
}

struct Firm {
    store: Arc<dyn Store>,
    delivered: mpsc::UnboundedReceiver<Arc<StoredNotification>>,
    owner: String,
    partner: String,
    _dir: tempfile::TempDir,
}

async fn firm() -> Firm {
    let dir = tempfile::tempdir().expect("a temp dir");
    let (tx, delivered) = mpsc::unbounded_channel();
    let store = SqliteStore::open(
        &dir.path().join("tocsin.db"),
        "normal",
        Arc::new(Recorder(tx)),
    )
    .expect("a store");
    let store: Arc<dyn Store> = Arc::new(store);
    store
        .create_tenant("dupont", "Cabinet Dupont")
        .await
        .expect("tenant");
    let mut ids = Vec::new();
    for (name, role) in [("marie", "lawyer"), ("jeanne", "partner")] {
        let user = store
            .create_user(NewUser {
                id: format!("{name}-id"),
                tenant: "dupont".into(),
                email: format!("{name}@dupont.example"),
                name: name.into(),
                role: role.into(),
                password_hash: None,
                external: false,
            })
            .await
            .expect("user");
        ids.push(user.id);
    }
    Firm {
        store,
        delivered,
        owner: ids[0].clone(),
        partner: ids[1].clone(),
        _dir: dir,
    }
}

/// Declares an appeal deadline due Monday 7 December 23:59 (Paris), on Thursday the
/// 3rd at 08:00, with the firm's default policy (J-3 … J-0 at 09:00, escalation after
/// two working hours), and starts the scheduler with a clock at that moment.
async fn declared_on_thursday(firm: &Firm) -> (Clock, CancellationToken) {
    let now = paris(3, 8, 0);
    let clock = Clock::following_tokio(now);
    let request = DeadlineRequest {
        deadline_type: "Délai d'appel".into(),
        due_at: paris(7, 23, 59).with_timezone(&Paris).fixed_offset(),
        time_zone: None,
        owner: "marie@dupont.example".into(),
        backup: None,
        dossier_number: Some("2026/0142".into()),
        dossier_title: None,
        url: None,
        policy: None,
        escalation: None,
    };
    declare(firm.store.as_ref(), "dupont", "appel-1", request, now)
        .await
        .expect("declared");
    let shutdown = CancellationToken::new();
    let scheduler = Scheduler {
        store: firm.store.clone(),
        clock: clock.clone(),
        wake: Arc::new(Notify::new()),
        webhooks: Arc::new(Notify::new()),
        late_after: chrono::Duration::seconds(60),
        shutdown: shutdown.clone(),
    };
    tokio::spawn(scheduler.run());
    (clock, shutdown)
}

/// The next committed notification: to whom, with what urgency, when.
async fn next(firm: &mut Firm) -> (String, DeadlineUrgency, DateTime<Utc>, Notification) {
    let stored = firm.delivered.recv().await.expect("the scheduler runs");
    let notification = stored.notification().expect("stored JSON");
    let StreamName::User(user) = &stored.stream else {
        panic!("reminders go to a user: {}", stored.stream);
    };
    let NotificationData::DeadlineAlert(alert) = &notification.data else {
        panic!("a deadline-alert: {notification:?}");
    };
    (
        user.clone(),
        alert.urgency,
        notification.created_at,
        notification,
    )
}

fn assert_at(actual: DateTime<Utc>, expected: DateTime<Utc>, what: &str) {
    let drift = (actual - expected).num_milliseconds().abs();
    assert!(
        drift < 1000,
        "{what}: sent at {actual}, expected {expected}"
    );
}

#[tokio::test(start_paused = true)]
async fn a_monday_deadline_is_reminded_on_working_days_and_escalates_once() {
    let mut firm = firm().await;
    let (_clock, shutdown) = declared_on_thursday(&firm).await;
    // J-3 (Wednesday) has passed: it goes at once, as the current urgency.
    let (to, urgency, at, alert) = next(&mut firm).await;
    assert_eq!(
        (to.as_str(), urgency),
        (firm.owner.as_str(), DeadlineUrgency::Warning)
    );
    assert_at(at, paris(3, 8, 0), "J-3, declared late");
    assert!(alert.body.contains("07/12/2026"), "{}", alert.body);
    let (_, urgency, at, _) = next(&mut firm).await;
    assert_eq!(urgency, DeadlineUrgency::Urgent);
    assert_at(at, paris(3, 9, 0), "J-2 on Thursday at 09:00");
    // The weekend before a Monday deadline: J-1 is Friday.
    let (_, urgency, at, alert) = next(&mut firm).await;
    assert_eq!(urgency, DeadlineUrgency::Critical);
    assert_at(at, paris(4, 9, 0), "J-1 on Friday at 09:00");
    let NotificationData::DeadlineAlert(data) = &alert.data else {
        unreachable!()
    };
    assert_eq!(
        data.working_days_left,
        Some(1),
        "Friday before Monday: one working day"
    );
    // Nobody acknowledged: two working hours later, the partner (no backup).
    let (to, urgency, at, alert) = next(&mut firm).await;
    assert_eq!(
        (to.as_str(), urgency),
        (firm.partner.as_str(), DeadlineUrgency::Critical)
    );
    assert_at(at, paris(4, 11, 0), "escalation after two working hours");
    assert!(
        alert.title.starts_with("Non pris en compte"),
        "{}",
        alert.title
    );
    // J-0 on Monday; no second escalation (the partners were already told).
    let (to, urgency, at, _) = next(&mut firm).await;
    assert_eq!(
        (to.as_str(), urgency),
        (firm.owner.as_str(), DeadlineUrgency::Critical)
    );
    assert_at(at, paris(7, 9, 0), "J-0 on Monday at 09:00");
    assert!(
        firm.store.next_step_at().await.expect("read").is_none(),
        "nothing more planned"
    );
    shutdown.cancel();
}

#[tokio::test(start_paused = true)]
async fn an_acknowledged_deadline_is_not_escalated() {
    let mut firm = firm().await;
    let (_clock, shutdown) = declared_on_thursday(&firm).await;
    for _ in 0..2 {
        next(&mut firm).await;
    }
    let (_, urgency, _, alert) = next(&mut firm).await;
    assert_eq!(urgency, DeadlineUrgency::Critical);
    let streams = [StreamName::User(firm.owner.clone())];
    let key = ActionKey {
        session_id: None,
        user_id: firm.owner.clone(),
        action_id: "ack-1".into(),
    };
    let outcome = firm
        .store
        .acknowledge(
            key,
            &streams,
            "dupont",
            None,
            std::slice::from_ref(&alert.id),
        )
        .await
        .expect("acknowledged");
    assert!(outcome.result.is_ok(), "{:?}", outcome.result);
    // Next is Monday's J-0 to the owner: the partner got nothing on Friday.
    let (to, _, at, _) = next(&mut firm).await;
    assert_eq!(to, firm.owner);
    assert_at(at, paris(7, 9, 0), "J-0 on Monday");
    let view = firm
        .store
        .deadline("dupont", "appel-1")
        .await
        .expect("read")
        .expect("the deadline");
    let escalation = view
        .steps
        .iter()
        .find(|s| s.kind == crate::store::StepKind::Escalation)
        .expect("the escalation step");
    assert_eq!(
        escalation.state,
        tocsin_protocol::deadline::StepState::Cancelled
    );
    shutdown.cancel();
}
