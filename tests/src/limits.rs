//! Connection limits: the per-user cap (4104), the Origin allow-list (HTTP 403 at the
//! upgrade), the first-frame auth deadline (4105), silent TCP connections closed after
//! the handshake timeout, and the cap of connections per source address (503).

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

/// Sends `GET /healthz` on a fresh TCP connection from `source` and returns the raw
/// answer (status line, headers, body).
async fn raw_healthz(gw: &Gateway, source: std::net::IpAddr) -> String {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let socket = tokio::net::TcpSocket::new_v4().expect("a socket");
    socket
        .bind(std::net::SocketAddr::new(source, 0))
        .expect("binds the source address");
    let addr: std::net::SocketAddr = gw.addr().parse().expect("the gateway's address");
    let mut stream = socket.connect(addr).await.expect("connects");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\nConnection: close\r\n\r\n")
        .await
        .expect("writes");
    let mut answer = String::new();
    tokio::time::timeout(STEP, stream.read_to_string(&mut answer))
        .await
        .expect("an answer in time")
        .expect("reads");
    answer
}

/// A connection that got one `/healthz` answer and stays open (HTTP/1.1 keep-alive).
async fn kept_alive(gw: &Gateway) -> tokio::net::TcpStream {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(gw.addr())
        .await
        .expect("connects");
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: gw\r\n\r\n")
        .await
        .expect("writes");
    let mut answer = Vec::new();
    let mut buf = [0_u8; 512];
    while !answer.ends_with(b"ok") {
        let read = tokio::time::timeout(STEP, stream.read(&mut buf))
            .await
            .expect("an answer in time")
            .expect("reads");
        assert!(read > 0, "the connection stays open");
        answer.extend_from_slice(&buf[..read]);
    }
    stream
}

/// The attack: TCP connections that never send a byte were never closed (hyper's
/// header timeout starts at the first byte); 1,100 of them from one address made
/// `/healthz` and new WebSockets time out for everyone. A silent connection is now
/// closed after the handshake timeout.
#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_after_the_handshake_timeout() {
    use tokio::io::AsyncReadExt;
    let gw = Gateway::start(GatewayOptions {
        handshake_timeout_ms: Some(500),
        ..dupont()
    })
    .await;
    let mut silent = tokio::net::TcpStream::connect(gw.addr())
        .await
        .expect("connects");
    let started = Instant::now();
    let mut buf = [0_u8; 16];
    let read = tokio::time::timeout(Duration::from_secs(5), silent.read(&mut buf))
        .await
        .expect("the gateway closes a silent connection")
        .unwrap_or(0);
    assert_eq!(read, 0, "closed without an answer");
    assert!(
        started.elapsed() >= Duration::from_millis(400),
        "not before the timeout: {:?}",
        started.elapsed()
    );
}

/// One address is held to `http.max_connections_per_ip` open connections; the next
/// one gets a clear 503 and is closed, while other addresses are still served.
#[tokio::test]
async fn an_address_past_its_connection_cap_is_refused_clearly_and_others_are_served() {
    let gw = Gateway::start(GatewayOptions {
        max_connections_per_ip: Some(20),
        ..dupont()
    })
    .await;
    // Each held connection has been answered once (and stays open, keep-alive), so
    // the gateway has surely accepted and counted it before the next one comes.
    let mut held = Vec::new();
    for _ in 0..20 {
        held.push(kept_alive(&gw).await);
    }
    let refused = raw_healthz(&gw, "127.0.0.1".parse().expect("ip")).await;
    assert!(
        refused.starts_with("HTTP/1.1 503") && refused.contains("too many open connections"),
        "a clear refusal: {refused}"
    );
    let other = raw_healthz(&gw, "127.0.0.2".parse().expect("ip")).await;
    assert!(
        other.starts_with("HTTP/1.1 200"),
        "another address: {other}"
    );
    drop(held);
    let again = tokio::time::timeout(STEP, async {
        loop {
            let answer = raw_healthz(&gw, "127.0.0.1".parse().expect("ip")).await;
            if answer.starts_with("HTTP/1.1 200") {
                return answer;
            }
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the address is served again once its connections close");
    assert!(again.ends_with("ok"), "{again}");
}
