//! Durability: a publish acknowledged with a 2xx is on disk. SIGKILL the gateway in the
//! middle of a burst, restart it on the same data directory, and every acknowledged
//! notification is replayed exactly once, in order, at the offset it was given.

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin_e2e::publisher::ContinuousPublisher;
use tocsin_e2e::{Gateway, GatewayOptions, WsClient, assert_consecutive, position, stream};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_publishes_survive_sigkill_exactly_once_in_order() {
    let mut gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();

    let mut publisher =
        ContinuousPublisher::start(gw.api(), gw.key("dupont").to_owned(), marie.stream());
    publisher
        .wait_acknowledged(150, Duration::from_secs(60))
        .await;
    gw.kill_hard().await;
    let acknowledged = publisher.finish().await;
    let epoch = acknowledged[0].epoch.clone();
    let ack_offsets: Vec<u64> = acknowledged.iter().map(|p| p.offset).collect();
    assert_consecutive(&ack_offsets, 1, "offsets handed out by the gateway");

    gw.restart().await;
    let token = gw.api().login(&marie).await.access_token;
    let hello = position(&marie.stream(), &epoch, 0);
    let (_client, welcome, catch_up) = WsClient::connect_ready(&gw.ws_url(), &token, hello).await;
    let user = welcome
        .streams
        .iter()
        .find(|s| s.stream == stream(&marie.stream()))
        .expect("welcome lists the user's stream");
    assert_eq!(
        user.epoch, epoch,
        "a restart does not lose the stream's history"
    );
    assert!(
        user.recovered,
        "offset 0 of the same epoch is usable: {user:?}"
    );

    let replayed = &catch_up.notifications;
    let offsets: Vec<u64> = replayed.iter().map(|d| d.offset).collect();
    assert_consecutive(&offsets, 1, "replay after the crash");
    assert!(
        replayed.len() >= acknowledged.len(),
        "{} acknowledged but only {} replayed after the crash",
        acknowledged.len(),
        replayed.len()
    );
    let by_offset: BTreeMap<u64, &str> = replayed
        .iter()
        .map(|d| (d.offset, d.notification.id.as_str()))
        .collect();
    for ack in &acknowledged {
        assert_eq!(
            by_offset.get(&ack.offset).copied(),
            Some(ack.id.as_str()),
            "acknowledged notification {} at offset {} is replayed there",
            ack.id,
            ack.offset
        );
    }
    let mut ids: Vec<&str> = replayed
        .iter()
        .map(|d| d.notification.id.as_str())
        .collect();
    ids.sort_unstable();
    ids.dedup();
    assert_eq!(
        ids.len(),
        replayed.len(),
        "no notification is replayed twice"
    );
}
