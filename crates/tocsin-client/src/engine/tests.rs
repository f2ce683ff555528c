//! The engine's timing under `tokio::time::pause()`, against a gateway of channels:
//! backoff between attempts, dead-peer detection, token renewal before expiry and
//! resume detection, each checked to the instant instead of raced against a real
//! clock on a loaded machine.

use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use rand::SeedableRng;
use rand::rngs::StdRng;
use tocsin_protocol::StreamName;
use tocsin_protocol::frames::{ClientFrame, ServerFrame};
use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::api::ServerUrl;
use crate::backoff::Backoff;
use crate::clock::Clock;
use crate::gateway::fake::{FakeConnection, FakeGateway, empty_stream};
use crate::secrets::MemoryStore;
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

/// An engine against a [`FakeGateway`], its events recorded with their instant.
struct Harness {
    handle: EngineHandle,
    accepted: mpsc::UnboundedReceiver<FakeConnection>,
    gateway: FakeGateway,
    secrets: Arc<MemoryStore>,
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
        let secrets = Arc::new(MemoryStore::new());
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
    let pinged = loop {
        match connection
            .next_message()
            .await
            .expect("the socket stays open")
        {
            Message::Ping(_) => break Instant::now(),
            _ => continue,
        }
    };
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
    let frame = loop {
        match connection
            .next_frame()
            .await
            .expect("the socket stays open")
        {
            frame @ ClientFrame::Refresh { .. } => break frame,
            _ => continue,
        }
    };
    assert_eq!(Instant::now() - connection.at, Duration::from_secs(840));
    let ClientFrame::Refresh { access_token, .. } = frame else {
        unreachable!()
    };
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
