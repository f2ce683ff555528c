//! Device sessions over time: an access token refreshed in-band keeps the socket
//! open past its old expiry; signing out, or reusing a rotated refresh token, closes
//! the device's sockets and refuses its tokens.

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin_e2e::publisher::email;
use tocsin_e2e::ws::ConnectFailure;
use tocsin_e2e::{ConnectOptions, Gateway, GatewayOptions, STEP, WsClient};
use tocsin_protocol::frames::{ClientFrame, ServerFrame};
use tocsin_protocol::http::TokenResponse;

/// Reads `client` until it has received a WebSocket ping: with a 1 s heartbeat, this
/// is how a test lets a second pass without sleeping.
async fn wait_for_ping(client: &mut WsClient) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while client.pings() == 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "no heartbeat ping within 10 s"
        );
        let _ = client.try_next_event(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_in_band_refresh_keeps_the_socket_open_past_the_old_expiry() {
    // Six seconds: long enough for the refresh round trip on a loaded CI machine
    // (two seconds flaked there), short enough to watch the old token expire.
    let gw = Gateway::start(GatewayOptions {
        access_token_ttl_secs: Some(6),
        heartbeat_interval_ms: Some(1000),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    })
    .await;
    let api = gw.api();
    let marie = gw.user("dupont", 0).clone();
    let login = api.login(&marie).await;
    let (mut refreshed, welcome, _) =
        WsClient::connect_ready(&gw.ws_url(), &login.access_token, BTreeMap::new()).await;
    let (mut expiring, _, _) =
        WsClient::connect_ready(&gw.ws_url(), &login.access_token, BTreeMap::new()).await;

    // A second later, a new access token expires later than the first.
    wait_for_ping(&mut refreshed).await;
    let renewed: TokenResponse = api
        .refresh(&login.refresh_token)
        .await
        .expect_status(200, "refresh")
        .json();
    refreshed
        .send(&ClientFrame::Refresh {
            id: "r1".into(),
            access_token: renewed.access_token,
        })
        .await;
    let ServerFrame::Result {
        ok: true,
        data: Some(data),
        ..
    } = refreshed.wait_result("r1").await
    else {
        panic!("the in-band refresh is accepted");
    };
    let new_expiry: chrono::DateTime<chrono::Utc> =
        serde_json::from_value(data["expires_at"].clone()).expect("expires_at is a time");
    assert!(
        new_expiry > welcome.token_expires_at,
        "{new_expiry} > {}",
        welcome.token_expires_at
    );

    // The connection that kept the old token is closed at its expiry with 4002…
    let (closed, frames) = expiring.expect_close(Duration::from_secs(15)).await;
    assert_eq!(closed.code, Some(4002), "{closed:?} after {frames:?}");
    // …while the refreshed one still receives notifications after that moment.
    let sent = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "still here"))
        .await;
    refreshed.wait_notification(&sent.id, STEP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn signing_out_closes_the_devices_sockets_and_refuses_its_tokens() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0).clone();
    let laptop = api.login(&marie).await;
    let phone = api.login(&marie).await;
    let (mut on_laptop, _, _) =
        WsClient::connect_ready(&gw.ws_url(), &laptop.access_token, BTreeMap::new()).await;
    let (mut on_phone, _, _) =
        WsClient::connect_ready(&gw.ws_url(), &phone.access_token, BTreeMap::new()).await;

    api.logout(&laptop.refresh_token)
        .await
        .expect_status(204, "logout");
    let (closed, _) = on_laptop.expect_close(STEP).await;
    assert_eq!(closed.code, Some(4100), "{closed:?}");
    let again =
        WsClient::try_connect(&gw.ws_url(), &ConnectOptions::bearer(&laptop.access_token)).await;
    assert!(
        matches!(again, Err(ConnectFailure::Refused { status: 401, .. })),
        "the signed-out device's access token is refused: {:?}",
        again.err()
    );
    api.refresh(&laptop.refresh_token)
        .await
        .expect_status(401, "refresh after logout");

    // The other device is untouched.
    let sent = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "for the phone"))
        .await;
    on_phone.wait_notification(&sent.id, STEP).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reusing_a_rotated_refresh_token_revokes_the_device_session() {
    // Without the grace window a lost answer may be retried in, as after it ends.
    let gw = Gateway::start(GatewayOptions {
        refresh_grace_secs: Some(0),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    })
    .await;
    let api = gw.api();
    let marie = gw.user("dupont", 0).clone();
    let first = api.login(&marie).await;
    let second: TokenResponse = api
        .refresh(&first.refresh_token)
        .await
        .expect_status(200, "first refresh")
        .json();
    assert_ne!(
        second.refresh_token, first.refresh_token,
        "refresh tokens rotate"
    );
    let (mut client, _, _) =
        WsClient::connect_ready(&gw.ws_url(), &second.access_token, BTreeMap::new()).await;

    // Someone replays the old refresh token: the whole session is revoked.
    let reuse = api.refresh(&first.refresh_token).await;
    reuse.expect_status(401, "reuse of a rotated token");
    assert!(
        reuse.error().message.contains("already used"),
        "{:?}",
        reuse.body
    );
    let (closed, _) = client.expect_close(STEP).await;
    assert_eq!(closed.code, Some(4100), "{closed:?}");
    api.refresh(&second.refresh_token)
        .await
        .expect_status(401, "the legitimate token died with the session");
}

/// The audit: the gateway committed the rotation before answering, so a refresh whose
/// answer was lost (a timeout, a crash before the token was stored) was retried with the
/// old token, looked like reuse, and signed the device out. Within the grace window the
/// old token, presented once more, gets the same successor; a second time it is a
/// replay, and the session is revoked as before.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refresh_whose_answer_was_lost_can_be_retried_once_without_signing_out() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0).clone();
    let first = api.login(&marie).await;
    let lost: TokenResponse = api
        .refresh(&first.refresh_token)
        .await
        .expect_status(200, "the refresh whose answer is lost")
        .json();
    let retried: TokenResponse = api
        .refresh(&first.refresh_token)
        .await
        .expect_status(200, "its retry within the grace window")
        .json();
    assert_eq!(
        retried.refresh_token, lost.refresh_token,
        "the retry gets the same successor"
    );
    let next: TokenResponse = api
        .refresh(&retried.refresh_token)
        .await
        .expect_status(200, "the device carries on with it")
        .json();
    let (_client, _, _) =
        WsClient::connect_ready(&gw.ws_url(), &next.access_token, BTreeMap::new()).await;

    // Another device: its old token presented a third time, while the successor is
    // still the current token, is a replay, and that device is signed out as before.
    let other = api.login(&marie).await;
    let successor: TokenResponse = api
        .refresh(&other.refresh_token)
        .await
        .expect_status(200, "the other device's refresh")
        .json();
    api.refresh(&other.refresh_token)
        .await
        .expect_status(200, "its one retry");
    let replay = api.refresh(&other.refresh_token).await;
    replay.expect_status(401, "a second retry is a replay");
    assert!(
        replay.error().message.contains("already used"),
        "{:?}",
        replay.body
    );
    api.refresh(&successor.refresh_token)
        .await
        .expect_status(401, "the replayed device is signed out");
    api.refresh(&next.refresh_token)
        .await
        .expect_status(200, "the first device is not affected");
}
