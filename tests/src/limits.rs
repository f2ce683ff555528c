//! Connection limits: the per-user cap (4104), the Origin allow-list (HTTP 403 at the
//! upgrade) and the first-frame auth deadline (4105).

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin_e2e::publisher::email;
use tocsin_e2e::ws::ConnectFailure;
use tocsin_e2e::{ConnectOptions, Gateway, GatewayOptions, STEP, WsClient};
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

fn dupont() -> GatewayOptions {
    GatewayOptions::with_tenants(&[("dupont", &["marie"])])
}

#[tokio::test]
async fn a_third_connection_of_a_user_capped_at_two_is_closed_4104() {
    let gw = Gateway::start(GatewayOptions {
        max_connections_per_user: Some(2),
        ..dupont()
    })
    .await;
    let marie = gw.user("dupont", 0);
    let token = gw.api().login(marie).await.access_token;
    let (mut first, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    let (mut second, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;

    let mut third = WsClient::connect(&gw.ws_url(), &ConnectOptions::bearer(&token)).await;
    let hello = serde_json::json!({"type": "hello", "positions": {}}).to_string();
    let _ignored = third.try_send_raw(Message::text(hello)).await;
    let (closed, _) = third.expect_close(STEP).await;
    assert_eq!(closed.code, Some(4104), "{closed:?}");

    let published = gw
        .api()
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "still two"))
        .await;
    first.wait_notification(&published.id, STEP).await;
    second.wait_notification(&published.id, STEP).await;
}

#[tokio::test]
async fn an_origin_not_allowed_is_refused_403_at_the_upgrade() {
    let gw = Gateway::start(GatewayOptions {
        allowed_origins: Some(vec!["https://app.example".to_owned()]),
        ..dupont()
    })
    .await;
    let token = gw.api().login(gw.user("dupont", 0)).await.access_token;
    let with_origin = |origin: &str| ConnectOptions {
        origin: Some(origin.to_owned()),
        ..ConnectOptions::bearer(&token)
    };

    match WsClient::try_connect(&gw.ws_url(), &with_origin("https://evil.example")).await {
        Err(ConnectFailure::Refused { status: 403, .. }) => {}
        Err(other) => panic!("expected HTTP 403, got {other:?}"),
        Ok(_) => panic!("a foreign Origin was upgraded"),
    }

    let mut allowed = WsClient::connect(&gw.ws_url(), &with_origin("https://app.example")).await;
    allowed.hello(BTreeMap::new()).await;
    let mut no_origin = WsClient::connect(&gw.ws_url(), &ConnectOptions::bearer(&token)).await;
    no_origin.hello(BTreeMap::new()).await;
}

#[tokio::test]
async fn without_first_frame_auth_the_connection_closes_4105_after_the_deadline() {
    let gw = Gateway::start(GatewayOptions {
        auth_timeout_ms: Some(300),
        ..dupont()
    })
    .await;
    let started = Instant::now();
    let mut client = WsClient::connect(&gw.ws_url(), &ConnectOptions::default()).await;
    let (closed, _) = client.expect_close(Duration::from_secs(5)).await;
    let waited = started.elapsed();
    assert_eq!(closed.code, Some(4105), "{closed:?}");
    assert!(
        waited >= Duration::from_millis(250),
        "closed after {waited:?}, before the 300 ms deadline"
    );
}
