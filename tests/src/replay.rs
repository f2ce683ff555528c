//! Replay on reconnect: everything after the client's position, in order, exactly once,
//! then `caught_up` and live delivery with no gap at the seam; unusable positions are
//! reported (`recovered: false`) instead of silently skipped.

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin_e2e::publisher::{ContinuousPublisher, email};
use tocsin_e2e::{
    Delivered, Gateway, GatewayOptions, STEP, WsClient, assert_consecutive, poll_until, position,
    stream,
};
use tocsin_protocol::frames::{StreamStatus, Welcome};

fn dupont() -> GatewayOptions {
    GatewayOptions::with_tenants(&[("dupont", &["marie"])])
}

fn status<'a>(welcome: &'a Welcome, name: &str) -> &'a StreamStatus {
    let wanted = stream(name);
    welcome
        .streams
        .iter()
        .find(|s| s.stream == wanted)
        .unwrap_or_else(|| panic!("welcome lists no {name}: {:?}", welcome.streams))
}

#[tokio::test]
async fn two_hundred_missed_notifications_are_replayed_in_order_then_caught_up() {
    let gw = Gateway::start(dupont()).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let token = api.login(marie).await.access_token;

    let (first, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    let last_seen = first.positions();
    assert!(
        last_seen.contains_key(&stream(&marie.stream())),
        "caught_up gives a position for the user's stream: {last_seen:?}"
    );
    first.close().await;

    let batch = (1..=200)
        .map(|i| email(&marie.stream(), &format!("missed #{i}")))
        .collect();
    let published = api.publish_batch_ok(gw.key("dupont"), batch).await;

    let (mut client, welcome, catch_up) =
        WsClient::connect_ready(&gw.ws_url(), &token, last_seen).await;
    let user = status(&welcome, &marie.stream());
    assert!(user.recovered, "a fresh position is usable: {user:?}");
    assert_eq!(user.head, 200);

    let replayed = &catch_up.notifications;
    assert_eq!(
        replayed.len(),
        200,
        "exactly the missed notifications are replayed"
    );
    assert!(
        replayed.iter().all(|d| d.replay),
        "replayed frames say replay=true"
    );
    assert!(replayed.iter().all(|d| d.stream == stream(&marie.stream())));
    let offsets: Vec<u64> = replayed.iter().map(|d| d.offset).collect();
    assert_consecutive(&offsets, 1, "replay");
    let replayed_ids: Vec<&str> = replayed
        .iter()
        .map(|d| d.notification.id.as_str())
        .collect();
    let published_ids: Vec<&str> = published.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(
        replayed_ids, published_ids,
        "the replay is what was published, in order"
    );
    assert_eq!(
        catch_up.positions[&stream(&marie.stream())].offset,
        200,
        "caught_up reports the end of replay"
    );

    let live = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "live"))
        .await;
    let delivered = client.wait_notification(&live.id, STEP).await;
    assert_eq!((delivered.offset, delivered.replay), (201, false));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishing_during_replay_leaves_no_gap_and_no_duplicate() {
    let gw = Gateway::start(dupont()).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let token = api.login(marie).await.access_token;
    let key = gw.key("dupont").to_owned();

    let backlog: Vec<_> = (1..=400)
        .map(|i| email(&marie.stream(), &format!("backlog #{i}")))
        .collect();
    let backlog = api.publish_batch_ok(&key, backlog).await;
    let epoch = backlog[0].epoch.clone();

    let mut publisher = ContinuousPublisher::start(api.clone(), key, marie.stream());
    publisher.wait_acknowledged(5, STEP).await;

    let hello = position(&marie.stream(), &epoch, 0);
    let (mut client, welcome, catch_up) =
        WsClient::connect_ready(&gw.ws_url(), &token, hello).await;
    assert!(status(&welcome, &marie.stream()).recovered);
    let mut delivered: Vec<Delivered> = catch_up.notifications;
    // Let the live side carry a good number of publishes before stopping.
    let live = client.recv_notifications(30, STEP * 3).await;
    delivered.extend(live);
    let acknowledged = publisher.finish().await;
    let last = acknowledged
        .last()
        .expect("the publisher acknowledged some")
        .offset;
    while delivered.last().map(|d| d.offset) < Some(last) {
        delivered.extend(client.recv_notifications(1, STEP).await);
    }

    let offsets: Vec<u64> = delivered.iter().map(|d| d.offset).collect();
    assert_consecutive(&offsets, 1, "replay then live");
    assert_eq!(offsets.len() as u64, last);
    let expected_ids: Vec<&str> = backlog
        .iter()
        .chain(acknowledged.iter())
        .map(|p| p.id.as_str())
        .collect();
    let delivered_ids: Vec<&str> = delivered
        .iter()
        .map(|d| d.notification.id.as_str())
        .collect();
    assert_eq!(
        delivered_ids, expected_ids,
        "the stream carries exactly the acknowledged publishes, in offset order"
    );
}

/// Publishes `count` notifications to `to`, returning the stream's epoch.
async fn publish_some(gw: &Gateway, to: &str, count: usize) -> String {
    let batch = (1..=count).map(|i| email(to, &format!("n{i}"))).collect();
    let results = gw.api().publish_batch_ok(gw.key("dupont"), batch).await;
    results[0].epoch.clone()
}

/// Connects with an unusable position and checks the welcome says so, that nothing is
/// replayed, and that live delivery goes on after the head.
async fn assert_not_recovered(gw: &Gateway, token: &str, epoch: &str, offset: u64) {
    let marie = gw.user("dupont", 0);
    let hello = position(&marie.stream(), epoch, offset);
    let (mut client, welcome, catch_up) = WsClient::connect_ready(&gw.ws_url(), token, hello).await;
    let user = status(&welcome, &marie.stream());
    assert!(
        !user.recovered,
        "position ({epoch}, {offset}) must not be recovered: {user:?}"
    );
    assert!(
        catch_up.notifications.is_empty(),
        "nothing is replayed for an unusable position, got offsets {:?}",
        catch_up
            .notifications
            .iter()
            .map(|d| d.offset)
            .collect::<Vec<_>>()
    );
    let live = gw
        .api()
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "after"))
        .await;
    let delivered = client.wait_notification(&live.id, STEP).await;
    assert!(!delivered.replay);
    assert_eq!(
        delivered.offset,
        user.head + 1,
        "live continues after the head"
    );
}

#[tokio::test]
async fn a_position_from_another_epoch_is_not_recovered_nor_replayed() {
    let gw = Gateway::start(dupont()).await;
    let marie = gw.user("dupont", 0);
    let token = gw.api().login(marie).await.access_token;
    publish_some(&gw, &marie.stream(), 3).await;
    assert_not_recovered(&gw, &token, "an-epoch-that-never-was", 1).await;
}

#[tokio::test]
async fn a_position_ahead_of_the_head_is_not_recovered_nor_replayed() {
    let gw = Gateway::start(dupont()).await;
    let marie = gw.user("dupont", 0);
    let token = gw.api().login(marie).await.access_token;
    let epoch = publish_some(&gw, &marie.stream(), 3).await;
    assert_not_recovered(&gw, &token, &epoch, 10).await;
}

#[tokio::test]
async fn a_position_older_than_retention_is_not_recovered_nor_replayed() {
    let gw = Gateway::start(GatewayOptions {
        retention_secs: Some(1),
        prune_interval_secs: Some(1),
        ..dupont()
    })
    .await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let token = api.login(marie).await.access_token;
    let epoch = publish_some(&gw, &marie.stream(), 3).await;

    poll_until(
        Duration::from_secs(20),
        "pruning moves `first` past offset 3",
        || {
            let (api, token, stream) = (api.clone(), token.clone(), marie.stream());
            async move {
                let history = api.history_ok(&token, &stream, None, None).await;
                (history.first > 3).then_some(())
            }
        },
    )
    .await;

    assert_not_recovered(&gw, &token, &epoch, 0).await;
}
