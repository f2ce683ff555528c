//! Actions the user takes while the desktop is offline keep their promise when they
//! reach the real gateway later: "mark all read" covers only what the user saw, and
//! a queue longer than the rate limit's burst is paced and retried, never dropped.

use std::time::Duration;

use tocsin_client::engine::Command;
use tocsin_client::events::{ConnectionState, EngineEvent};
use tocsin_e2e::client::{ClientOptions, TestClient};
use tocsin_e2e::proxy::Proxy;
use tocsin_e2e::publisher::{critical_deadline, email};
use tocsin_e2e::{Gateway, GatewayOptions};

const LONG: Duration = Duration::from_secs(60);

/// A client through a proxy whose link the test can cut, with a fast heartbeat.
async fn offline_capable_client(gw: &Gateway) -> (TestClient, Proxy) {
    let marie = gw.user("dupont", 0).clone();
    let proxy = Proxy::start(gw.addr().to_owned()).await;
    let options = ClientOptions {
        heartbeat_interval: Duration::from_millis(500),
        heartbeat_timeout: Duration::from_millis(500),
        ..ClientOptions::default()
    };
    let mut client = TestClient::sign_in(&format!("http://{}", proxy.addr), &marie, options).await;
    client.wait_connected(LONG).await;
    (client, proxy)
}

async fn until_offline(client: &mut TestClient) {
    client
        .wait_for(LONG, "the engine noticing the dead link", |event| {
            matches!(event, EngineEvent::State(ConnectionState::Offline { .. })).then_some(())
        })
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_mark_all_read_leaves_a_deadline_nobody_saw_unread() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let api = gw.api();
    let (mut client, proxy) = offline_capable_client(&gw).await;
    let mut seen = Vec::new();
    for text in ["lu 1", "lu 2"] {
        seen.push(
            api.publish_ok(gw.key("dupont"), &email(&marie.stream(), text))
                .await
                .id,
        );
    }
    client.collect(2, LONG).await;

    proxy.freeze();
    until_offline(&mut client).await;
    // Published while the laptop is offline: the user cannot have seen it.
    let deadline = api
        .publish_ok(
            gw.key("dupont"),
            &critical_deadline(&marie.stream(), "d-unseen"),
        )
        .await;
    assert!(client.handle.send(Command::MarkAllRead(None)).await);
    let store = client.handle.local_store();
    client
        .wait_for(LONG, "the click applied locally", move |_| {
            let store = store.lock().expect("store");
            (store.outbox_len().expect("outbox") == 1).then_some(())
        })
        .await;

    proxy.thaw();
    let result = client
        .wait_for(
            LONG,
            "the queued mark-all-read's result",
            |event| match event {
                EngineEvent::ActionResult { error, .. } => Some(error.clone()),
                _ => None,
            },
        )
        .await;
    assert!(result.is_none(), "applied: {result:?}");

    let token = api.login(&marie).await.access_token;
    let history = api
        .history_ok(&token, &marie.stream(), None, Some(100))
        .await;
    for item in &history.notifications {
        let expected = seen.contains(&item.notification.id);
        assert_eq!(
            item.read, expected,
            "{} read on the server: {}",
            item.notification.title, item.read
        );
    }
    let local = client
        .inbox()
        .into_iter()
        .find(|item| item.notification.id == deadline.id)
        .expect("the deadline arrived");
    assert!(!local.read, "the deadline stays unread on the desktop too");
    assert_eq!(api.unread(&token).await.total, 1);
    client.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sixty_offline_mark_reads_all_reach_the_gateway_past_its_burst() {
    // A small burst and rate, so that 60 actions need the pacing (and a retry of
    // anything refused) to all get through.
    let gw = Gateway::start(GatewayOptions {
        actions_per_second: Some(20),
        actions_burst: Some(8),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    })
    .await;
    let marie = gw.user("dupont", 0).clone();
    let api = gw.api();
    let (mut client, proxy) = offline_capable_client(&gw).await;
    let mut ids = Vec::new();
    for n in 0..60 {
        let request = email(&marie.stream(), &format!("à lire #{n}"));
        ids.push(api.publish_ok(gw.key("dupont"), &request).await.id);
    }
    client.collect(60, LONG).await;

    proxy.freeze();
    until_offline(&mut client).await;
    for id in &ids {
        assert!(
            client
                .handle
                .send(Command::MarkRead(vec![id.clone()]))
                .await
        );
    }
    let store = client.handle.local_store();
    client
        .wait_for(LONG, "60 actions queued", move |_| {
            let store = store.lock().expect("store");
            (store.outbox_len().expect("outbox") == 60).then_some(())
        })
        .await;

    proxy.thaw();
    let mut answered = 0;
    while answered < 60 {
        let error = client
            .wait_for(
                LONG,
                "the results of the queued actions",
                |event| match event {
                    EngineEvent::ActionResult { error, .. } => Some(error.clone()),
                    _ => None,
                },
            )
            .await;
        assert!(error.is_none(), "an action was refused for good: {error:?}");
        answered += 1;
    }
    let token = api.login(&marie).await.access_token;
    assert_eq!(
        api.unread(&token).await.total,
        0,
        "the server agrees: all read"
    );
    let left = client
        .handle
        .local_store()
        .lock()
        .expect("store")
        .outbox_len();
    assert_eq!(left.expect("outbox"), 0);
    client.stop().await;
}
