//! Retracting a misdirected notification (`DELETE /v1/notifications/{id}`) against a
//! real gateway: a connected device is told at once; a device that was offline gets
//! a `retracted` frame in the notification's slot of its replay (no content, offsets
//! still consecutive) and, when it already held it, the list after `caught_up`; an
//! older client that does not list the `retract` feature gets a content-free notice in
//! that slot instead. History and unread counts forget it, the audit trail says who
//! retracted it, and the keys allowed are the firm's admin keys and the key that
//! published it — another firm's key is told it does not exist. The real client
//! engine drops it from its inbox and says so.

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin_client::events::EngineEvent;
use tocsin_e2e::client::{ClientOptions, TestClient};
use tocsin_e2e::publisher::email;
use tocsin_e2e::{Gateway, GatewayOptions, STEP, WsClient};
use tocsin_protocol::frames::{Retraction, ServerFrame};
use tocsin_protocol::http::RetractResponse;
use tocsin_protocol::{Position, StreamName};

const WAIT: Duration = Duration::from_secs(20);
/// What the misdirected notification says: it must not be served again.
const SECRET: &str = "Conclusions adverses — Dossier Lefèvre";

/// `DELETE /v1/notifications/{id}` with `key`: the status and the JSON body.
async fn retract(gw: &Gateway, id: &str, key: &str) -> (u16, serde_json::Value) {
    let reply = gw.api().retract(key, id).await;
    (reply.status.as_u16(), reply.body)
}

/// The ids of the client engine's next `Retracted` event.
async fn wait_retracted(client: &mut TestClient, what: &str) -> Vec<String> {
    client
        .wait_for(WAIT, what, |event| match event {
            EngineEvent::Retracted(ids) => Some(ids.clone()),
            _ => None,
        })
        .await
}

/// The ids in the client's inbox, newest first.
fn held(client: &TestClient) -> Vec<String> {
    client
        .inbox()
        .iter()
        .map(|item| item.notification.id.clone())
        .collect()
}

/// Frames until `caught_up` and the frames right after it (the gateway's sync lists
/// are sent at once after it; a ping round-trip says when they are all in).
async fn replay_frames(client: &mut WsClient) -> (Vec<ServerFrame>, Vec<ServerFrame>) {
    let mut before = Vec::new();
    loop {
        match client.next_frame(STEP).await {
            ServerFrame::CaughtUp { .. } => break,
            frame => before.push(frame),
        }
    }
    client.send(&tocsin_protocol::ClientFrame::Ping {}).await;
    let mut after = Vec::new();
    loop {
        match client.next_frame(STEP).await {
            ServerFrame::Pong {} => break,
            frame => after.push(frame),
        }
    }
    (before, after)
}

fn retractions(frames: &[ServerFrame]) -> Vec<Retraction> {
    frames
        .iter()
        .filter_map(|frame| match frame {
            ServerFrame::Retracted { retractions } => Some(retractions.clone()),
            _ => None,
        })
        .flatten()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_retracted_notification_leaves_every_device_and_the_history() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[
        ("dupont", &["marie"]),
        ("martin", &["jean"]),
    ]))
    .await;
    let api = gw.api();
    let marie = gw.user("dupont", 0).clone();
    let token = api.login(&marie).await.access_token;
    let stream: StreamName = marie.stream().parse().expect("stream");

    // The laptop holds everything up to `before`; the desk is online.
    let first = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "before"))
        .await;
    let held = BTreeMap::from([(
        stream.clone(),
        Position {
            epoch: first.epoch.clone(),
            offset: first.offset,
        },
    )]);
    let (mut desk, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, held.clone()).await;
    let wrong = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), SECRET))
        .await;
    let after = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "after"))
        .await;
    desk.recv_notifications(2, WAIT).await;
    let unread_before = api.unread(&token).await.total;

    // Refused: another firm's admin key (unknown to it), a publish-only key that did
    // not publish it. Nothing changes.
    let (status, body) = retract(&gw, &wrong.id, &gw.create_key("martin", true).await).await;
    assert_eq!(status, 404, "{body}");
    let (status, body) = retract(&gw, &wrong.id, &gw.create_key("dupont", false).await).await;
    assert_eq!(status, 403, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("--admin"),
        "{body}"
    );

    // The key that published it retracts it; the desk is told at once.
    let (status, body) = retract(&gw, &wrong.id, gw.key("dupont")).await;
    assert_eq!(status, 200, "{body}");
    let answer: RetractResponse = serde_json::from_value(body).expect("the answer");
    assert!(!answer.already && answer.stream.as_ref() == Some(&stream));
    let pushed = loop {
        if let ServerFrame::Retracted { retractions } = desk.next_frame(WAIT).await {
            break retractions;
        }
    };
    assert_eq!(
        pushed
            .iter()
            .map(|r| (r.notification_id.as_str(), r.offset))
            .collect::<Vec<_>>(),
        [(wrong.id.as_str(), wrong.offset)]
    );
    // Repeated by an admin key: the same answer, `already`.
    let (status, body) = retract(&gw, &wrong.id, &gw.create_key("dupont", true).await).await;
    assert_eq!(
        (status, body["already"].as_bool()),
        (200, Some(true)),
        "{body}"
    );
    assert_eq!(body["retracted_at"], serde_json::json!(answer.retracted_at));

    // History and unread counts forget it.
    let history = api.history_ok(&token, &marie.stream(), None, None).await;
    let titles: Vec<&str> = history
        .notifications
        .iter()
        .map(|item| item.notification.title.as_str())
        .collect();
    assert_eq!(titles, ["before", "after"]);
    assert_eq!(api.unread(&token).await.total, unread_before - 1);

    // The laptop comes back from `before`: the slot is a `retracted` frame, then
    // `after` follows at the next offset; the content is nowhere.
    let mut laptop =
        WsClient::connect(&gw.ws_url(), &tocsin_e2e::ConnectOptions::bearer(&token)).await;
    laptop.hello(held.clone()).await;
    let (replayed, _) = replay_frames(&mut laptop).await;
    let slots: Vec<(String, u64)> = replayed
        .iter()
        .map(|frame| match frame {
            ServerFrame::Notification {
                offset,
                notification,
                ..
            } => (notification.title.clone(), *offset),
            ServerFrame::Retracted { retractions } => {
                ("(retracted)".to_owned(), retractions[0].offset)
            }
            other => panic!("unexpected in the replay: {other:?}"),
        })
        .collect();
    assert_eq!(
        slots,
        [
            ("(retracted)".to_owned(), wrong.offset),
            ("after".to_owned(), after.offset)
        ]
    );

    // A device that held it already (its position is past it) is told after caught_up.
    let past = BTreeMap::from([(
        stream.clone(),
        Position {
            epoch: after.epoch.clone(),
            offset: after.offset,
        },
    )]);
    let mut phone =
        WsClient::connect(&gw.ws_url(), &tocsin_e2e::ConnectOptions::bearer(&token)).await;
    phone.hello(past).await;
    let (replayed, synced) = replay_frames(&mut phone).await;
    assert!(replayed.is_empty(), "{replayed:?}");
    assert_eq!(
        retractions(&synced)
            .iter()
            .map(|r| r.notification_id.as_str())
            .collect::<Vec<_>>(),
        [wrong.id.as_str()]
    );

    // An older client, without the `retract` feature: a content-free notice fills the
    // slot, under the same id, so its offsets stay consecutive.
    let mut old =
        WsClient::connect(&gw.ws_url(), &tocsin_e2e::ConnectOptions::bearer(&token)).await;
    old.hello_with(held, Vec::new()).await;
    let (replayed, synced) = replay_frames(&mut old).await;
    assert!(retractions(&synced).is_empty(), "{synced:?}");
    let ServerFrame::Notification {
        offset,
        notification,
        ..
    } = &replayed[0]
    else {
        panic!("expected the notice, got {:?}", replayed[0]);
    };
    assert_eq!(
        (offset, notification.id.as_str()),
        (&wrong.offset, wrong.id.as_str())
    );
    assert!(
        !notification.title.contains("Lefèvre"),
        "{}",
        notification.title
    );
    assert!(
        notification.title.contains("retracted"),
        "{}",
        notification.title
    );

    // The audit trail keeps it: who published, who retracted.
    let admin = gw.create_key("dupont", true).await;
    let trail: serde_json::Value = reqwest::Client::new()
        .get(format!("{}/v1/audit?user={}", gw.base_url(), marie.email))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("audit")
        .json()
        .await
        .expect("json");
    let events: Vec<(&str, &str)> = trail["records"]
        .as_array()
        .expect("records")
        .iter()
        .filter(|r| r["notification_id"] == wrong.id.as_str())
        .map(|r| {
            (
                r["event"].as_str().unwrap_or_default(),
                r["actor"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert!(events.contains(&("retracted", events[0].1)), "{trail}");
    assert_eq!(events[0].0, "published", "{trail}");
    drop(desk);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_scheduled_publish_is_withdrawn_before_anyone_receives_it() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0).clone();
    let mut later = email(&marie.stream(), SECRET);
    later.deliver_at = Some(chrono::Utc::now() + chrono::Duration::hours(1));
    let held = api
        .publish(gw.key("dupont"), &later)
        .await
        .expect_status(202, "scheduled")
        .json::<tocsin_protocol::http::PublishResponse>();
    let (status, body) = retract(&gw, &held.id, gw.key("dupont")).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("stream").is_none(), "never stored: {body}");
    let (status, body) = retract(&gw, "no-such-id", gw.key("dupont")).await;
    assert_eq!(status, 404, "{body}");
    assert!(
        body["message"]
            .as_str()
            .unwrap_or_default()
            .contains("no notification"),
        "{body}"
    );
}

/// Live, then offline: the engine drops what the firm retracts while it is connected,
/// and, restarted after a retraction made while it was stopped, drops that one too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_client_engine_drops_retracted_notifications_live_and_after_being_away() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let base = format!("http://{}", gw.addr());
    let mut client = TestClient::sign_in(&base, &marie, ClientOptions::default()).await;
    client.wait_connected(WAIT).await;
    let api = gw.api();
    let wrong = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), SECRET))
        .await;
    let other = api
        .publish_ok(
            gw.key("dupont"),
            &email(&marie.stream(), "also misdirected"),
        )
        .await;
    let kept = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "kept"))
        .await;
    client.collect(3, WAIT).await;

    let (status, body) = retract(&gw, &wrong.id, gw.key("dupont")).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        wait_retracted(&mut client, "the retraction").await,
        [wrong.id.as_str()]
    );
    assert_eq!(held(&client), [other.id.clone(), kept.id.clone()]);

    let (home, secrets) = client.stop().await;
    let (status, body) = retract(&gw, &other.id, gw.key("dupont")).await;
    assert_eq!(status, 200, "{body}");
    let server = tocsin_client::api::ServerUrl::parse(&base).expect("url");
    let mut client = TestClient::start_in(server, home, secrets, ClientOptions::default());
    assert_eq!(
        wait_retracted(&mut client, "the retraction made while away").await,
        [other.id.as_str()]
    );
    assert_eq!(held(&client), [kept.id.as_str()]);
    assert_eq!(client.unread_total(), 1);
}
