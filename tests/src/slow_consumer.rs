//! Slow consumers: a client that stops reading must not hold anyone back. Its queue
//! overflows, it alone is closed with 4001, and on reconnect it resumes from its last
//! position without losing anything.

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin_e2e::publisher::email_with_body;
use tocsin_e2e::{
    ConnectOptions, Delivered, Gateway, GatewayOptions, STEP, WsClient, assert_consecutive, stream,
};

/// Notifications published while X is not reading.
const COUNT: usize = 2000;
/// Body size: 2000 × 4 KiB is far more than the socket buffers of a 4 KiB receive window.
const BODY_BYTES: usize = 4096;
/// Notifications per publish request; well under the queue capacity so the reading
/// client is never more than a few frames behind.
const PER_REQUEST: usize = 4;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_stops_reading_is_closed_4001_alone_and_resumes_without_loss() {
    let gw = Gateway::start(GatewayOptions {
        queue_capacity: Some(16),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    })
    .await;
    let api = gw.api();
    let token = api.login(gw.user("dupont", 0)).await.access_token;
    let tenant = stream("tenant:dupont");

    let mut stalled = WsClient::connect(
        &gw.ws_url(),
        &ConnectOptions {
            small_receive_buffer: true,
            ..ConnectOptions::bearer(&token)
        },
    )
    .await;
    stalled.hello(BTreeMap::new()).await;
    stalled.read_until_caught_up(STEP).await;
    // From here on `stalled` is not read until the end: its socket fills up.

    let (mut reader, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    let reading = tokio::spawn(async move {
        let received = reader
            .recv_notifications(COUNT, Duration::from_secs(90))
            .await;
        (reader, received)
    });

    let mut published = Vec::with_capacity(COUNT);
    let mut n = 0;
    while published.len() < COUNT {
        let batch = (0..PER_REQUEST)
            .map(|_| {
                n += 1;
                email_with_body("tenant:dupont", &format!("bulk #{n}"), BODY_BYTES)
            })
            .collect();
        published.extend(api.publish_batch_ok(gw.key("dupont"), batch).await);
    }
    let published_ids: Vec<String> = published.iter().map(|p| p.id.clone()).collect();

    let (_reader, received) = reading.await.expect("the reading client did not panic");
    let offsets: Vec<u64> = received.iter().map(|d| d.offset).collect();
    assert_consecutive(&offsets, 1, "the reading client");
    assert!(received.iter().all(|d| d.stream == tenant && !d.replay));
    let ids: Vec<String> = received.iter().map(|d| d.notification.id.clone()).collect();
    assert_eq!(
        ids, published_ids,
        "the reading client got every publish, in order"
    );

    let (closed, before_close) = stalled.expect_close(Duration::from_secs(30)).await;
    assert_eq!(
        closed.code,
        Some(4001),
        "the stalled client is closed as slow: {closed:?}"
    );
    let mut got: Vec<Delivered> = before_close
        .iter()
        .filter_map(tocsin_e2e::ws::as_delivered)
        .collect();
    assert!(
        got.len() < COUNT,
        "the stalled client was never behind: the test did not fill its queue"
    );

    let resume_from = stalled.positions();
    let (_resumed, welcome, catch_up) =
        WsClient::connect_ready(&gw.ws_url(), &token, resume_from).await;
    let status = welcome
        .streams
        .iter()
        .find(|s| s.stream == tenant)
        .expect("welcome lists the tenant stream");
    assert!(
        status.recovered,
        "the slow client's position is usable: {status:?}"
    );
    got.extend(catch_up.notifications);
    let offsets: Vec<u64> = got.iter().map(|d| d.offset).collect();
    assert_consecutive(&offsets, 1, "before the close, then the replay");
    let ids: Vec<String> = got.iter().map(|d| d.notification.id.clone()).collect();
    assert_eq!(
        ids, published_ids,
        "nothing lost across the slow-consumer close"
    );
}
