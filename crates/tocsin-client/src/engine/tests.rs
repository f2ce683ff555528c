//! The engine's timing under `tokio::time::pause()`, against a gateway of channels:
//! backoff between attempts, dead-peer detection, token renewal before expiry and
//! resume detection, each checked to the instant instead of raced against a real
//! clock on a loaded machine.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tocsin_protocol::StreamName;
use tocsin_protocol::frames::{ClientFrame, ServerFrame, StreamStatus};
use tocsin_protocol::http::HistoryItem;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::api::ServerUrl;
use crate::backoff::Backoff;
use crate::clock::Clock;
use crate::gateway::fake::{FakeConnection, FakeGateway, empty_stream};
use crate::secrets::{MemoryStore, SecretError};
use crate::store::testing::email;

/// A clock whose wall time the test moves forward, as a laptop waking up sees.
#[derive(Default)]
struct JumpingClock {
    ahead: Mutex<Duration>,
}

impl JumpingClock {
    fn jump(&self, by: Duration) {
        *self.ahead.lock().expect("clock lock") += by;
    }
}

impl Clock for JumpingClock {
    fn now_mono(&self) -> std::time::Instant {
        std::time::Instant::now()
    }

    fn now_wall(&self) -> SystemTime {
        SystemTime::now() + *self.ahead.lock().expect("clock lock")
    }
}

/// A secret store whose writes fail while `failing` (a locked keyring, a full disk).
#[derive(Default)]
struct FlakySecrets {
    inner: MemoryStore,
    failing: AtomicBool,
}

impl SecretStore for FlakySecrets {
    fn get(&self, account: &str) -> Result<Option<String>, SecretError> {
        self.inner.get(account)
    }

    fn set(&self, account: &str, secret: &str) -> Result<(), SecretError> {
        if self.failing.load(Ordering::SeqCst) {
            return Err(SecretError::Unavailable {
                store: "test keyring",
                reason: "locked".into(),
            });
        }
        self.inner.set(account, secret)
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        self.inner.delete(account)
    }

    fn describe(&self) -> &'static str {
        "test keyring"
    }
}

/// An engine against a [`FakeGateway`], its events recorded with their instant.
struct Harness {
    handle: EngineHandle,
    accepted: mpsc::UnboundedReceiver<FakeConnection>,
    gateway: FakeGateway,
    secrets: Arc<FlakySecrets>,
    events: Arc<Mutex<Vec<(Instant, EngineEvent)>>>,
    clock: Arc<JumpingClock>,
    config: EngineConfig,
    _home: tempfile::TempDir,
}

impl Harness {
    fn start(tweak: impl FnOnce(&mut EngineConfig, &mut FakeGateway)) -> Harness {
        let home = tempfile::tempdir().expect("a temp dir");
        let server = ServerUrl::parse("http://127.0.0.1:9").expect("url");
        let mut config = EngineConfig::new(server, "account".into(), home.path().to_path_buf());
        config.jitter_seed = Some(7);
        config.clock_tick = Duration::from_secs(1);
        let (mut gateway, accepted) = FakeGateway::new();
        tweak(&mut config, &mut gateway);
        let secrets = Arc::new(FlakySecrets::default());
        secrets.set("account", "tsr_0").expect("memory store");
        let clock = Arc::new(JumpingClock::default());
        let (handle, mut events, _task) = start_with(
            gateway.clone(),
            config.clone(),
            secrets.clone(),
            Policy::default(),
            clock.clone(),
        )
        .expect("the engine starts");
        let recorded = Arc::new(Mutex::new(Vec::new()));
        let sink = recorded.clone();
        tokio::spawn(async move {
            while let Some(event) = events.recv().await {
                sink.lock().expect("events").push((Instant::now(), event));
            }
        });
        Harness {
            handle,
            accepted,
            gateway,
            secrets,
            events: recorded,
            clock,
            config,
            _home: home,
        }
    }

    async fn next_connection(&mut self) -> FakeConnection {
        self.accepted.recv().await.expect("the engine connects")
    }

    /// When the first recorded event matching `pick` happened, if one did.
    fn when(&self, pick: impl Fn(&EngineEvent) -> bool) -> Option<Instant> {
        let events = self.events.lock().expect("events");
        events
            .iter()
            .find(|(_, event)| pick(event))
            .map(|(at, _)| *at)
    }

    /// How many times the engine waited a backoff delay.
    fn backoff_waits(&self) -> usize {
        let events = self.events.lock().expect("events");
        events
            .iter()
            .filter(|(_, event)| {
                matches!(
                    event,
                    EngineEvent::State(ConnectionState::Connecting {
                        next_retry: Some(_),
                        ..
                    })
                )
            })
            .count()
    }
}

fn user_stream() -> StreamName {
    StreamName::User("u1".into())
}

/// A `notification` frame of `stream` at `offset`.
fn notification(stream: &StreamName, offset: u64) -> ServerFrame {
    ServerFrame::Notification {
        stream: stream.clone(),
        epoch: "e1".into(),
        offset,
        replay: false,
        notification: email(&format!("n{offset}"), offset as i64),
    }
}

/// Checks `probe` every 10 ms of (paused) time until it gives a value, for at most
/// `within`.
async fn eventually<T>(what: &str, within: Duration, mut probe: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + within;
    loop {
        if let Some(found) = probe() {
            return found;
        }
        assert!(Instant::now() < deadline, "{what}: not within {within:?}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// When the next WebSocket ping arrives (a gateway that stays silent otherwise).
async fn next_ping(connection: &mut FakeConnection) -> Instant {
    loop {
        if let Message::Ping(_) = connection
            .next_message()
            .await
            .expect("the socket stays open")
        {
            return Instant::now();
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_gateway_that_breaks_the_order_is_retried_only_after_each_backoff_delay() {
    let mut h = Harness::start(|_, _| {});
    let mut held = Vec::new();
    let mut times = Vec::new();
    for _ in 0..6 {
        let mut connection = h.next_connection().await;
        times.push(connection.at);
        connection.accept(vec![empty_stream(user_stream())]).await;
        // Offset 1 is next: 5 is a hole, as a newer gateway's unparsable frame was.
        connection.send(&notification(&user_stream(), 5));
        held.push(connection);
    }
    let mut replay = Backoff::new(h.config.backoff);
    let mut rng = StdRng::seed_from_u64(7);
    for pair in times.windows(2) {
        let delay = replay.next_delay(&mut rng);
        // Tokio's timers round up to the millisecond.
        let waited = pair[1] - pair[0];
        assert!(
            waited >= delay && waited - delay < Duration::from_millis(1),
            "waited {waited:?}, the backoff said {delay:?}"
        );
    }
    assert_eq!(h.backoff_waits(), 5);
}

#[tokio::test(start_paused = true)]
async fn a_silent_gateway_is_dropped_after_the_interval_and_the_timeout() {
    let mut h = Harness::start(|config, _| {
        config.heartbeat_interval = Duration::from_secs(30);
        config.heartbeat_timeout = Duration::from_secs(10);
    });
    let mut connection = h.next_connection().await;
    connection.accept(vec![empty_stream(user_stream())]).await;
    let pinged = next_ping(&mut connection).await;
    assert_eq!(pinged - connection.at, Duration::from_secs(30));
    // No pong, nothing: a black-holed link.
    let again = h.next_connection().await;
    let dropped = h
        .when(|event| {
            matches!(event, EngineEvent::State(ConnectionState::Offline { reason, .. })
                if reason.contains("did not answer"))
        })
        .expect("the engine said why it dropped the link");
    assert_eq!(dropped - pinged, Duration::from_secs(10));
    assert!(again.at >= dropped);
}

#[tokio::test(start_paused = true)]
async fn a_gateway_that_answers_pings_keeps_its_session() {
    let mut h = Harness::start(|config, _| {
        config.heartbeat_interval = Duration::from_secs(30);
        config.heartbeat_timeout = Duration::from_secs(10);
    });
    let mut connection = h.next_connection().await;
    connection.accept(vec![empty_stream(user_stream())]).await;
    tokio::spawn(async move { while connection.next_frame().await.is_some() {} });
    let another = tokio::time::timeout(Duration::from_secs(600), h.accepted.recv()).await;
    assert!(
        another.is_err(),
        "no reconnect in 10 minutes of pings answered"
    );
}

#[tokio::test(start_paused = true)]
async fn the_access_token_is_renewed_a_minute_before_it_expires_on_the_open_socket() {
    let mut h = Harness::start(|_, gateway| gateway.expires_in = Duration::from_secs(900));
    let mut connection = h.next_connection().await;
    connection.accept(vec![empty_stream(user_stream())]).await;
    let access_token = next_refresh_frame(&mut connection).await;
    assert_eq!(Instant::now() - connection.at, Duration::from_secs(840));
    assert_eq!(access_token, "at_2", "the token of the second refresh");
    assert_eq!(h.gateway.refreshes(), ["tsr_0", "tsr_1"]);
    assert_eq!(
        h.secrets.get("account").expect("memory"),
        Some("tsr_2".into())
    );
    assert!(h.accepted.try_recv().is_err(), "the socket was kept");
}

#[tokio::test(start_paused = true)]
async fn a_resume_from_sleep_reconnects_at_once() {
    let mut h = Harness::start(|_, _| {});
    let mut connection = h.next_connection().await;
    connection.accept(vec![empty_stream(user_stream())]).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let woke = Instant::now();
    h.clock.jump(Duration::from_secs(3600));
    let again = h.next_connection().await;
    assert!(
        again.at - woke <= h.config.clock_tick,
        "reconnected within one clock tick, not after a backoff delay"
    );
    assert_eq!(h.backoff_waits(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_network_change_reconnects_at_once() {
    let mut h = Harness::start(|_, _| {});
    let mut connection = h.next_connection().await;
    connection.accept(vec![empty_stream(user_stream())]).await;
    tokio::time::sleep(Duration::from_secs(5)).await;
    let changed = Instant::now();
    assert!(h.handle.send(Command::NetworkChanged).await);
    let again = h.next_connection().await;
    assert_eq!(again.at, changed);
    assert_eq!(h.backoff_waits(), 0);
}

/// Waits for the next `refresh` frame on the socket, answering pings meanwhile.
async fn next_refresh_frame(connection: &mut FakeConnection) -> String {
    loop {
        match connection
            .next_frame()
            .await
            .expect("the socket stays open")
        {
            ClientFrame::Refresh { access_token, .. } => return access_token,
            _ => continue,
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_refresh_token_the_secret_store_could_not_save_is_presented_from_memory() {
    let mut h = Harness::start(|_, _| {});
    h.secrets.failing.store(true, Ordering::SeqCst);
    let mut connection = h.next_connection().await;
    connection.accept(vec![empty_stream(user_stream())]).await;
    next_refresh_frame(&mut connection).await;
    // tsr_1 never reached the keyring; presenting tsr_0 again would revoke the device.
    assert_eq!(h.gateway.refreshes(), ["tsr_0", "tsr_1"]);
    let warned = h
        .events
        .lock()
        .expect("events")
        .iter()
        .filter(|(_, event)| matches!(event, EngineEvent::Warning(text) if text.contains("kept in memory")))
        .count();
    assert_eq!(warned, 1, "told once, not at every renewal");

    h.secrets.failing.store(false, Ordering::SeqCst);
    next_refresh_frame(&mut connection).await;
    assert_eq!(h.gateway.refreshes(), ["tsr_0", "tsr_1", "tsr_2"]);
    assert_eq!(
        h.secrets.get("account").expect("memory"),
        Some("tsr_3".into())
    );
    assert!(h.accepted.try_recv().is_err(), "one socket throughout");
}

#[tokio::test(start_paused = true)]
async fn a_renewal_whose_answer_was_lost_is_retried_on_the_open_socket() {
    let mut h = Harness::start(|_, _| {});
    let mut connection = h.next_connection().await;
    connection.accept(vec![empty_stream(user_stream())]).await;
    h.gateway.lose_refresh_answers(2);
    let token = next_refresh_frame(&mut connection).await;
    assert_eq!(
        Instant::now() - connection.at,
        Duration::from_secs(840) + 2 * RENEW_RETRY
    );
    // The same token each time: the gateway's grace window answers its successor.
    assert_eq!(h.gateway.refreshes(), ["tsr_0", "tsr_1", "tsr_1", "tsr_1"]);
    assert_eq!(token, "at_4");
    assert!(h.accepted.try_recv().is_err(), "the socket was kept");
}

#[tokio::test(start_paused = true)]
async fn a_click_while_a_connection_attempt_hangs_is_applied_at_once() {
    let h = Harness::start(|_, gateway| gateway.hang_connects = true);
    assert!(h.handle.send(Command::MarkRead(vec!["n1".into()])).await);
    eventually(
        "the click applied and queued",
        Duration::from_secs(1),
        || {
            let queued = h.handle.local_store().lock().expect("store").outbox_len();
            (queued.expect("outbox") == 1).then_some(())
        },
    )
    .await;
}

/// A stream of 3,000 retained notifications, 10 of them unread.
fn long_history(h: &Harness) -> Vec<String> {
    let mut history = h.gateway.history.lock().expect("history");
    let mut unread = Vec::new();
    for offset in 1..=3000u64 {
        let read = offset % 300 != 5;
        let id = format!("h{offset}");
        if !read {
            unread.push(id.clone());
        }
        history.items.push(HistoryItem {
            offset,
            read,
            notification: email(&id, offset as i64),
        });
    }
    unread
}

/// The stream the gateway could not resume: rebuild it from history.
fn unrecovered(head: u64) -> StreamStatus {
    StreamStatus {
        recovered: false,
        head,
        ..empty_stream(user_stream())
    }
}

#[tokio::test(start_paused = true)]
async fn a_rebuild_fetches_everything_retained_unread_first() {
    let mut h = Harness::start(|_, _| {});
    let unread = long_history(&h);
    let mut connection = h.next_connection().await;
    connection.accept(vec![unrecovered(3000)]).await;
    eventually("live after the rebuild", Duration::from_secs(60), || {
        h.when(|event| matches!(event, EngineEvent::State(ConnectionState::Connected { .. })))
    })
    .await;
    let store = h.handle.local_store();
    let store = store.lock().expect("store");
    assert_eq!(
        store.list(None, 10_000, None).expect("inbox").len(),
        3000,
        "not capped"
    );
    let unread_held: u64 = store.unread_counts().expect("counts").values().sum();
    assert_eq!(unread_held, unread.len() as u64);
    drop(store);
    let requests = h.gateway.history.lock().expect("history").requests.clone();
    assert_eq!(requests[0], (0, true), "unread first");
    assert_eq!(
        requests.iter().filter(|(_, unread)| *unread).count(),
        1,
        "10 unread: one page"
    );
    assert_eq!(requests.len(), 1 + 6, "then 3,000 in pages of 500");
    let progress = h
        .events
        .lock()
        .expect("events")
        .iter()
        .filter(|(_, event)| matches!(event, EngineEvent::Rebuilding { retained: 3000, .. }))
        .count();
    assert_eq!(progress, 7, "one progress event per page");
}

#[tokio::test(start_paused = true)]
async fn a_rebuild_cut_short_resumes_from_the_page_it_reached() {
    let mut h = Harness::start(|_, _| {});
    long_history(&h);
    h.gateway.history.lock().expect("history").fail_after = Some(3);
    let mut connection = h.next_connection().await;
    connection.accept(vec![unrecovered(3000)]).await;
    let mut again = h.next_connection().await;
    {
        let mut history = h.gateway.history.lock().expect("history");
        history.fail_after = None;
        history.requests.clear();
    }
    // The position was reset to the head with the rebuild pending: resumed.
    again.accept(vec![empty_stream(user_stream())]).await;
    eventually("the rebuild finished", Duration::from_secs(60), || {
        let pending = h
            .handle
            .local_store()
            .lock()
            .expect("store")
            .pending_backfills();
        pending.expect("query").is_empty().then_some(())
    })
    .await;
    let requests = h.gateway.history.lock().expect("history").requests.clone();
    // Before the cut: the unread page, then the pages after 0 and 500 of all.
    assert_eq!(
        requests[0],
        (1000, false),
        "resumed after the last page stored"
    );
    assert_eq!(requests.len(), 4);
    let inbox = h.handle.list(None, 10_000, None).await.expect("inbox");
    assert_eq!(inbox.len(), 3000);
}

#[tokio::test(start_paused = true)]
async fn a_notification_read_on_another_device_is_reported_to_close_its_toast() {
    let mut h = Harness::start(|_, _| {});
    let mut connection = h.next_connection().await;
    connection.accept(vec![empty_stream(user_stream())]).await;
    connection.send(&notification(&user_stream(), 1));
    connection.send(&ServerFrame::Read {
        notification_ids: vec!["n1".into(), "never-held".into()],
    });
    let reported = eventually("a read event", Duration::from_secs(10), || {
        let events = h.events.lock().expect("events");
        events.iter().find_map(|(_, event)| match event {
            EngineEvent::Read(ids) => Some(ids.clone()),
            _ => None,
        })
    })
    .await;
    assert_eq!(reported, ["n1"], "only what this device held and showed");
}

#[tokio::test(start_paused = true)]
async fn the_client_pings_at_the_interval_the_gateway_announces() {
    let mut h = Harness::start(|config, _| config.heartbeat_interval = Duration::from_secs(30));
    let mut connection = h.next_connection().await;
    connection
        .accept_announcing(vec![empty_stream(user_stream())], |limits| {
            limits.heartbeat_interval_ms = 12_000;
        })
        .await;
    let pinged = next_ping(&mut connection).await;
    assert_eq!(pinged - connection.at, Duration::from_secs(12));
}

/// A critical `deadline-alert` of `deadline_id` at `offset` of the user's stream.
fn alert_frame(offset: u64, deadline_id: &str) -> ServerFrame {
    use tocsin_protocol::notification::DeadlineUrgency;
    ServerFrame::Notification {
        stream: user_stream(),
        epoch: "e1".into(),
        offset,
        replay: false,
        notification: crate::store::testing::alert(
            &format!("n{offset}"),
            deadline_id,
            offset as i64,
            DeadlineUrgency::Critical,
            48,
        ),
    }
}

/// A live session holding two critical alerts of deadline D1 (n1, then n2).
async fn holding_deadline_d1(h: &mut Harness) -> FakeConnection {
    let mut connection = h.next_connection().await;
    connection.accept(vec![empty_stream(user_stream())]).await;
    connection.send(&alert_frame(1, "D1"));
    connection.send(&alert_frame(2, "D1"));
    eventually("the alerts stored", Duration::from_secs(10), || {
        let counts = h.handle.local_store().lock().expect("store").counts();
        (counts.expect("counts").unacknowledged_critical_deadlines == 1).then_some(())
    })
    .await;
    connection
}

/// The next `acknowledge` frame the engine sends.
async fn next_acknowledge(connection: &mut FakeConnection) -> (String, Vec<String>) {
    loop {
        if let Some(ClientFrame::Acknowledge {
            id,
            notification_ids,
        }) = connection.next_frame().await
        {
            return (id, notification_ids);
        }
    }
}

/// Every deadline id announced by `Acknowledged` events so far.
fn acknowledged_events(h: &Harness) -> Vec<Vec<String>> {
    let events = h.events.lock().expect("events");
    events
        .iter()
        .filter_map(|(_, event)| match event {
            EngineEvent::Acknowledged { deadline_ids } => Some(deadline_ids.clone()),
            _ => None,
        })
        .collect()
}

/// The last counts the engine reported.
fn last_counts(h: &Harness) -> Option<crate::store::Counts> {
    let events = h.events.lock().expect("events");
    events.iter().rev().find_map(|(_, event)| match event {
        EngineEvent::Counts(counts) => Some(counts.clone()),
        _ => None,
    })
}

fn acknowledged_by(user_id: &str, device: &str) -> ServerFrame {
    ServerFrame::Acknowledged {
        acknowledgements: vec![tocsin_protocol::deadline::Acknowledgement {
            deadline_id: "D1".into(),
            user_id: user_id.into(),
            user_name: "Marie".into(),
            device: Some(device.into()),
            at: crate::store::testing::t(100),
            notification_id: Some("n2".into()),
        }],
    }
}

#[tokio::test(start_paused = true)]
async fn an_acknowledgement_shows_at_once_and_is_sent_as_the_deadlines_alerts() {
    let mut h = Harness::start(|_, _| {});
    let mut connection = holding_deadline_d1(&mut h).await;
    let command = Command::Acknowledge {
        deadline_ids: vec!["D1".into(), "never-held".into()],
    };
    assert!(h.handle.send(command).await);
    let (id, alerts) = next_acknowledge(&mut connection).await;
    assert_eq!(alerts, ["n2", "n1"], "the newest alert first");
    assert_eq!(acknowledged_events(&h), [vec!["D1".to_owned()]]);
    let counts = last_counts(&h).expect("counts");
    assert_eq!(counts.unacknowledged_critical_deadlines, 0);
    assert_eq!(counts.unread_critical_deadlines, 2, "still unread");
    assert_eq!(counts.outbox, 1, "kept until the gateway answers");

    connection.send(&ServerFrame::Result {
        id,
        ok: true,
        data: Some(serde_json::json!({"acknowledged":["D1"],"not_found":[],"not_deadlines":[]})),
        error: None,
    });
    connection.send(&acknowledged_by("u1", "Laptop — Marie"));
    let rows = eventually("who acknowledged it", Duration::from_secs(10), || {
        let store = h.handle.local_store();
        let store = store.lock().expect("store");
        let acks = store.acknowledgements_of("D1").expect("query");
        (store.outbox_len().expect("outbox") == 0 && acks.iter().any(|a| a.user_id.is_some()))
            .then_some(acks)
    })
    .await;
    assert_eq!(rows.len(), 1, "the local row replaced: {rows:?}");
    assert_eq!(rows[0].device.as_deref(), Some("Laptop — Marie"));
    let row = &h.handle.deadline_rows(10).await.expect("rows")[0];
    assert_eq!(row.alert_ids, ["n2", "n1"]);
    assert!(row.acknowledged.as_ref().is_some_and(|a| !a.pending));
}

/// A gateway older than acknowledgements closes on a frame type it does not know: the
/// acknowledgement stays queued (and shown) until a gateway announces the feature.
#[tokio::test(start_paused = true)]
async fn an_acknowledgement_waits_for_a_gateway_that_applies_it() {
    let mut h = Harness::start(|_, _| {});
    let mut connection = h.next_connection().await;
    connection
        .accept_welcome(vec![empty_stream(user_stream())], |welcome| {
            welcome.features.clear();
        })
        .await;
    connection.send(&alert_frame(1, "D1"));
    eventually("the alert stored", Duration::from_secs(10), || {
        let counts = h.handle.local_store().lock().expect("store").counts();
        (counts.expect("counts").unacknowledged_critical_deadlines == 1).then_some(())
    })
    .await;
    let command = Command::Acknowledge {
        deadline_ids: vec!["D1".into()],
    };
    assert!(h.handle.send(command).await);
    let sent =
        tokio::time::timeout(Duration::from_secs(120), next_acknowledge(&mut connection)).await;
    assert!(
        sent.is_err(),
        "not sent to a gateway without the feature: {sent:?}"
    );
    let counts = last_counts(&h).expect("counts");
    assert_eq!(
        counts.unacknowledged_critical_deadlines, 0,
        "shown acknowledged at once"
    );
    assert_eq!(counts.outbox, 1, "kept queued");
    // The gateway is upgraded: the next session sends it.
    drop(connection);
    let mut upgraded = h.next_connection().await;
    upgraded.accept(vec![empty_stream(user_stream())]).await;
    let (_, alerts) = next_acknowledge(&mut upgraded).await;
    assert_eq!(alerts, ["n1"]);
}

#[tokio::test(start_paused = true)]
async fn an_acknowledgement_of_alerts_the_gateway_lost_is_undone_and_reported() {
    let mut h = Harness::start(|_, _| {});
    let mut connection = holding_deadline_d1(&mut h).await;
    let command = Command::Acknowledge {
        deadline_ids: vec!["D1".into()],
    };
    assert!(h.handle.send(command).await);
    let (id, alerts) = next_acknowledge(&mut connection).await;
    // Applied, then `ok` with nothing acknowledged: the alerts were pruned.
    connection.send(&ServerFrame::Result {
        id,
        ok: true,
        data: Some(serde_json::json!({"acknowledged":[],"not_found":alerts,"not_deadlines":[]})),
        error: None,
    });
    let error = eventually("the refusal reported", Duration::from_secs(10), || {
        let events = h.events.lock().expect("events");
        events.iter().find_map(|(_, event)| match event {
            EngineEvent::ActionResult {
                action: Some(action),
                error,
                ..
            } if matches!(**action, ClientFrame::Acknowledge { .. }) => Some(error.clone()),
            _ => None,
        })
    })
    .await
    .expect("an error");
    assert_eq!(error.code, tocsin_protocol::ErrorCode::NotFound);
    assert!(error.message.contains("D1"), "{}", error.message);
    let counts = eventually("the mark back", Duration::from_secs(10), || {
        last_counts(&h).filter(|counts| counts.outbox == 0)
    })
    .await;
    assert_eq!(counts.unacknowledged_critical_deadlines, 1);
    let store = h.handle.local_store();
    assert!(
        !store
            .lock()
            .expect("store")
            .is_acknowledged("D1")
            .expect("query")
    );
}

#[tokio::test(start_paused = true)]
async fn an_acknowledgement_from_another_device_clears_the_mark_once() {
    let mut h = Harness::start(|_, _| {});
    let connection = holding_deadline_d1(&mut h).await;
    connection.send(&acknowledged_by("u1", "Desktop — Marie"));
    eventually(
        "the acknowledgement applied",
        Duration::from_secs(10),
        || last_counts(&h).filter(|counts| counts.unacknowledged_critical_deadlines == 0),
    )
    .await;
    assert_eq!(acknowledged_events(&h), [vec!["D1".to_owned()]]);
    // The same again (as after every `caught_up`), then something that is noticed.
    connection.send(&acknowledged_by("u1", "Desktop — Marie"));
    connection.send(&alert_frame(3, "D2"));
    eventually("the next alert", Duration::from_secs(10), || {
        last_counts(&h).filter(|counts| counts.unacknowledged_critical_deadlines == 1)
    })
    .await;
    assert_eq!(acknowledged_events(&h).len(), 1, "nothing new to tell");
}
