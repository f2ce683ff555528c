//! The real client engine (tocsin-client) against the real gateway: it survives a
//! gateway SIGKILL, a black-holed link and a sleep, replays offline actions exactly
//! once, stops on refused credentials, and summarises a flood after an outage.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tocsin_client::api::ServerUrl;
use tocsin_client::backoff::BackoffConfig;
use tocsin_client::clock::Clock;
use tocsin_client::engine::Command;
use tocsin_client::events::{ConnectionState, EngineEvent};
use tocsin_client::policy::Toast;
use tocsin_client::secrets::{MemoryStore, SecretStore};
use tocsin_e2e::client::{ClientOptions, TestClient};
use tocsin_e2e::proxy::Proxy;
use tocsin_e2e::publisher::{
    RetryingPublisher, conversation_message, critical_deadline, email, proposal,
};
use tocsin_e2e::{Gateway, GatewayOptions, poll_until};
use tocsin_protocol::Kind;
use tocsin_protocol::frames::ProposalResponse;
use tocsin_protocol::http::PublishRequest;
use tocsin_protocol::notification::ProposalStatus;

const LONG: Duration = Duration::from_secs(60);

fn base_url(gw: &Gateway) -> String {
    format!("http://{}", gw.addr())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_rides_out_a_gateway_sigkill_with_exactly_the_acknowledged_set_in_order() {
    let mut gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let key = gw.key("dupont").to_owned();
    let mut client = TestClient::sign_in(&base_url(&gw), &marie, ClientOptions::default()).await;
    client.wait_connected(LONG).await;

    // A publisher that, like the firm's software, retries a failed publish with the
    // same idempotency key until the gateway acknowledges it.
    let mut publisher = RetryingPublisher::start(
        gw.api(),
        key,
        marie.stream(),
        "steady",
        300,
        Duration::from_millis(2),
    );
    publisher.wait_acknowledged(100, LONG).await;
    gw.kill_hard().await;
    gw.restart_on_same_port().await;
    let acked = publisher.finish(LONG).await;
    client.assert_holds_exactly(&acked, LONG, "").await;
    client.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_conversation_joined_while_connected_is_delivered_live_with_its_past() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[(
        "dupont",
        &["marie", "claire"],
    )]))
    .await;
    let marie = gw.user("dupont", 0).clone();
    let claire = gw.user("dupont", 1).clone();
    let (api, key) = (gw.api(), gw.key("dupont").to_owned());
    api.set_members(&key, "c-1", &[&claire.id])
        .await
        .expect_status(200, "Claire's conversation");
    let before = api.publish_ok(&key, &conversation_message("c-1")).await.id;
    let mut client = TestClient::sign_in(&base_url(&gw), &marie, ClientOptions::default()).await;
    client.wait_connected(LONG).await;

    // Marie is added while connected: the gateway sends `subscribed`, then the new
    // messages; what was said before her arrival comes from history.
    api.set_members(&key, "c-1", &[&claire.id, &marie.id])
        .await
        .expect_status(200, "Marie joins");
    let after = api.publish_ok(&key, &conversation_message("c-1")).await.id;
    poll_until(LONG, "both messages in Marie's inbox", || async {
        let held: Vec<String> = client
            .inbox()
            .into_iter()
            .map(|item| item.notification.id)
            .collect();
        (held == [before.clone(), after.clone()]).then_some(())
    })
    .await;
    client.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_black_holed_link_is_noticed_by_the_heartbeat_and_resumed_without_loss() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let proxy = Proxy::start(gw.addr().to_owned()).await;
    let options = ClientOptions {
        heartbeat_interval: Duration::from_millis(500),
        heartbeat_timeout: Duration::from_millis(500),
        ..ClientOptions::default()
    };
    let mut client = TestClient::sign_in(&format!("http://{}", proxy.addr), &marie, options).await;
    client.wait_connected(LONG).await;
    let api = gw.api();
    let first = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "before"))
        .await;
    assert_eq!(client.collect(1, LONG).await, vec![first.id]);

    proxy.freeze();
    let frozen_at = Instant::now();
    let mut missed = Vec::new();
    for n in 0..5 {
        missed.push(
            api.publish_ok(
                gw.key("dupont"),
                &email(&marie.stream(), &format!("during #{n}")),
            )
            .await
            .id,
        );
    }
    client
        .wait_for(
            Duration::from_secs(10),
            "the heartbeat noticing the dead link",
            |event| {
                matches!(event, EngineEvent::State(ConnectionState::Offline { .. })).then_some(())
            },
        )
        .await;
    let noticed = frozen_at.elapsed();
    // Ping interval + deadline, plus scheduling slack on a loaded 2-core machine.
    assert!(
        noticed < Duration::from_secs(4),
        "the dead link was noticed after {noticed:?}"
    );

    proxy.thaw();
    // Replayed notifications are surfaced as the engine catches up, before it
    // reports being live again.
    let resumed = client.collect(missed.len(), LONG).await;
    assert_eq!(
        resumed, missed,
        "everything published during the outage, once, in order"
    );
    client.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn offline_actions_apply_exactly_once_when_the_gateway_returns() {
    let mut gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let api = gw.api();
    let mut client = TestClient::sign_in(&base_url(&gw), &marie, ClientOptions::default()).await;
    client.wait_connected(LONG).await;
    let mail = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "à lire"))
        .await;
    api.publish_ok(gw.key("dupont"), &proposal(&marie.stream(), "p-7"))
        .await;
    client.collect(2, LONG).await;

    gw.kill_hard().await;
    client
        .handle
        .send(Command::MarkRead(vec![mail.id.clone()]))
        .await;
    client
        .handle
        .send(Command::Respond {
            proposal_id: "p-7".into(),
            response: ProposalResponse::Accept,
        })
        .await;
    // Applied locally at once, while the gateway is down.
    // Both actions are applied locally at once, while the gateway is down.
    let store = client.handle.local_store();
    let mail_id = mail.id.clone();
    client
        .wait_for(LONG, "both actions applied locally and queued", move |_| {
            let store = store.lock().expect("store");
            let applied = store.is_read(&mail_id).expect("query") == Some(true)
                && store.proposal_status("p-7").expect("query") == Some(ProposalStatus::Accepted)
                && store.outbox_len().expect("query") == 2;
            applied.then_some(())
        })
        .await;

    gw.restart_on_same_port().await;
    let mut answered = 0;
    while answered < 2 {
        let error = client
            .wait_for(LONG, "the queued actions' results", |event| match event {
                EngineEvent::ActionResult { error, .. } => Some(error.clone()),
                _ => None,
            })
            .await;
        assert!(
            error.is_none(),
            "the gateway applied the queued action: {error:?}"
        );
        answered += 1;
    }
    assert_eq!(client.outbox_len(), 0);

    // Another device of Marie sees the read state and one proposal answer.
    let token = api.login(&marie).await.access_token;
    let history = api
        .history_ok(&token, &marie.stream(), None, Some(100))
        .await;
    let read = history
        .notifications
        .iter()
        .find(|item| item.notification.id == mail.id)
        .expect("the mail");
    assert!(read.read, "marked read on the other device");
    let answers = history
        .notifications
        .iter()
        .filter(|item| item.notification.kind() == Kind::ProposalStatusChanged)
        .count();
    assert_eq!(answers, 1, "the proposal was answered exactly once");

    // Restarting the client does not send the actions again.
    let (home, secrets) = client.stop().await;
    let server = ServerUrl::parse(&base_url(&gw)).expect("url");
    let mut again = TestClient::start_in(server, home, secrets, ClientOptions::default());
    again.wait_connected(LONG).await;
    let history = api
        .history_ok(&token, &marie.stream(), None, Some(100))
        .await;
    let answers = history
        .notifications
        .iter()
        .filter(|item| item.notification.kind() == Kind::ProposalStatusChanged)
        .count();
    assert_eq!(
        answers, 1,
        "still exactly one answer after the client restarted"
    );
    again.stop().await;
}

/// A clock whose wall time the test can jump forward, as a laptop waking up sees.
struct JumpingClock {
    ahead: Mutex<Duration>,
}

impl Clock for JumpingClock {
    fn now_mono(&self) -> Instant {
        Instant::now()
    }

    fn now_wall(&self) -> SystemTime {
        SystemTime::now() + *self.ahead.lock().expect("clock lock")
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wall_clock_jump_reconnects_at_once() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let clock = Arc::new(JumpingClock {
        ahead: Mutex::new(Duration::ZERO),
    });
    let options = ClientOptions {
        // A reconnect through backoff would wait up to a minute: only an immediate
        // reconnect can pass the deadline below.
        backoff: BackoffConfig {
            base: Duration::from_secs(60),
            cap: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
        },
        clock: clock.clone(),
        ..ClientOptions::default()
    };
    let mut client = TestClient::sign_in(&base_url(&gw), &marie, options).await;
    client.wait_connected(LONG).await;

    *clock.ahead.lock().expect("clock lock") = Duration::from_secs(3600);
    let jumped_at = Instant::now();
    client
        .wait_for(
            Duration::from_secs(5),
            "a reconnect after the jump",
            |event| {
                matches!(
                    event,
                    EngineEvent::State(ConnectionState::Connecting { .. })
                )
                .then_some(())
            },
        )
        .await;
    client.wait_connected(Duration::from_secs(5)).await;
    assert!(jumped_at.elapsed() < Duration::from_secs(5));
    // And it is live again.
    let sent = gw
        .api()
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "good morning"))
        .await;
    assert_eq!(client.collect(1, LONG).await, vec![sent.id]);
    client.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_refresh_token_reports_signed_out_and_stops_retrying() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let secrets = Arc::new(MemoryStore::new());
    secrets
        .set("account", "tsr_not-a-real-token")
        .expect("memory store");
    let server = ServerUrl::parse(&base_url(&gw)).expect("url");
    let home = tempfile::tempdir().expect("tempdir");
    let mut client = TestClient::start_in(server, home, secrets, ClientOptions::default());
    let reason = client
        .wait_for(LONG, "signed out", |event| match event {
            EngineEvent::State(ConnectionState::SignedOut { reason }) => Some(reason.clone()),
            EngineEvent::State(ConnectionState::Connected { .. }) => {
                panic!("a bad token must not connect")
            }
            _ => None,
        })
        .await;
    assert!(!reason.is_empty());
    // The engine task ends: it does not loop on a "do not retry" answer.
    tokio::time::timeout(Duration::from_secs(10), client.task)
        .await
        .expect("the engine stopped")
        .expect("cleanly");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn catching_up_500_missed_gives_one_summary_and_each_critical_deadline() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let api = gw.api();
    let mut client = TestClient::sign_in(&base_url(&gw), &marie, ClientOptions::default()).await;
    client.wait_connected(LONG).await;
    let (home, secrets) = client.stop().await;

    let mut batch: Vec<PublishRequest> = (0..497)
        .map(|n| email(&marie.stream(), &format!("missed #{n}")))
        .collect();
    batch.insert(100, critical_deadline(&marie.stream(), "d-1"));
    batch.insert(300, critical_deadline(&marie.stream(), "d-2"));
    batch.push(critical_deadline(&marie.stream(), "d-3"));
    api.publish_batch_ok(gw.key("dupont"), batch).await;

    let server = ServerUrl::parse(&base_url(&gw)).expect("url");
    let mut client = TestClient::start_in(server, home, secrets, ClientOptions::default());
    let (missed, toasts) = client
        .wait_for(LONG, "the catch-up", |event| match event {
            EngineEvent::CatchUp { missed, toasts } => Some((*missed, toasts.clone())),
            _ => None,
        })
        .await;
    assert_eq!(missed, 500);
    let summaries: Vec<usize> = toasts
        .iter()
        .filter_map(|t| match t {
            Toast::Summary { count, .. } => Some(*count),
            _ => None,
        })
        .collect();
    let critical = toasts.iter().filter(|t| t.is_critical()).count();
    assert_eq!(
        summaries,
        vec![497],
        "one summary for the ordinary ones: {toasts:?}"
    );
    assert_eq!(
        critical, 3,
        "every critical deadline on its own: {toasts:?}"
    );
    assert_eq!(
        toasts.len(),
        4,
        "nothing else floods the screen: {toasts:?}"
    );
    client.stop().await;
}
