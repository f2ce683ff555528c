//! Heartbeat: the gateway pings every `heartbeat_interval_ms`; a peer that does not
//! answer within `heartbeat_timeout_ms` is dropped (close 4004) and stops counting
//! against the per-user cap, while a peer that reads (and so answers pings) stays.

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin_e2e::publisher::email;
use tocsin_e2e::ws::WsEvent;
use tocsin_e2e::{ConnectOptions, Gateway, GatewayOptions, STEP, WsClient};
use tocsin_protocol::ServerFrame;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

fn fast_heartbeat(max_connections_per_user: u64) -> GatewayOptions {
    GatewayOptions {
        heartbeat_interval_ms: Some(300),
        heartbeat_timeout_ms: Some(300),
        max_connections_per_user: Some(max_connections_per_user),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    }
}

/// Tries to open a second session: `Some` when welcomed, `None` when refused with 4104.
async fn try_session(gw: &Gateway, token: &str) -> Option<WsClient> {
    let mut client = WsClient::connect(&gw.ws_url(), &ConnectOptions::bearer(token)).await;
    let hello = serde_json::json!({"type": "hello", "positions": {}}).to_string();
    let _ignored = client.try_send_raw(Message::text(hello)).await;
    loop {
        match client.next_event(STEP).await {
            WsEvent::Frame(ServerFrame::Welcome(_)) => return Some(client),
            // The refusal may be explained in an `error` frame before the close.
            WsEvent::Frame(ServerFrame::Error { .. }) => {}
            WsEvent::Closed(closed) if closed.code == Some(4104) => return None,
            other => panic!("expected welcome or close 4104, got {other:?}"),
        }
    }
}

#[tokio::test]
async fn a_peer_that_never_answers_pings_is_dropped_and_frees_its_slot() {
    let gw = Gateway::start(fast_heartbeat(1)).await;
    let token = gw.api().login(gw.user("dupont", 0)).await.access_token;
    let (silent, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    // From here on `silent` is not read, so tungstenite never answers the pings.
    let silent_since = Instant::now();

    let deadline = silent_since + Duration::from_secs(5);
    let replacement = loop {
        if let Some(client) = try_session(&gw, &token).await {
            break client;
        }
        assert!(
            Instant::now() < deadline,
            "the silent connection still holds the only slot after 5 s"
        );
        tokio::time::sleep(tocsin_e2e::POLL_INTERVAL).await;
    };
    drop(replacement);

    let closed = silent.drain_silently(STEP).await;
    assert_eq!(
        closed.code,
        Some(4004),
        "closed for heartbeat timeout: {closed:?}"
    );
}

#[tokio::test]
async fn a_peer_that_reads_stays_connected_across_heartbeats() {
    let gw = Gateway::start(fast_heartbeat(10)).await;
    let marie = gw.user("dupont", 0);
    let token = gw.api().login(marie).await.access_token;
    let (mut client, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;

    // Reading answers each ping; wait until six have come and gone (≈ 1.8 s).
    let deadline = Instant::now() + STEP;
    while client.pings() < 6 {
        assert!(
            Instant::now() < deadline,
            "only {} pings in {STEP:?}",
            client.pings()
        );
        if let Some(WsEvent::Closed(closed)) =
            client.try_next_event(Duration::from_millis(100)).await
        {
            panic!(
                "a reading client was dropped after {} pings: {closed:?}",
                client.pings()
            );
        }
    }

    let published = gw
        .api()
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "still connected"))
        .await;
    client.wait_notification(&published.id, STEP).await;
}
