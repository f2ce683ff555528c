//! Hostile input: an oversized message closes with 4103; malformed JSON, an unknown
//! frame type, a binary frame or a frame before `hello` get an `error` frame and close
//! 4102. Each time only the offender goes: a fresh client is still served.

use std::collections::BTreeMap;

use tocsin_e2e::publisher::email;
use tocsin_e2e::ws::Closed;
use tocsin_e2e::{ConnectOptions, Gateway, GatewayOptions, STEP, WsClient};
use tocsin_protocol::ServerFrame;
use tokio_tungstenite::tungstenite::Message;

/// What the offender sends, and whether it says hello first.
struct Offence {
    /// Send `hello` and read until `caught_up` before offending.
    after_hello: bool,
    /// The offending message.
    message: Message,
}

/// Commits `offence` on a fresh connection and returns how the gateway closed it,
/// with the frames it sent first.
async fn offend(gw: &Gateway, token: &str, offence: Offence) -> (Closed, Vec<ServerFrame>) {
    let mut client = WsClient::connect(&gw.ws_url(), &ConnectOptions::bearer(token)).await;
    if offence.after_hello {
        client.hello(BTreeMap::new()).await;
        client.read_until_caught_up(STEP).await;
    }
    // The gateway may close before it has read all of a large message.
    let _ignored = client.try_send_raw(offence.message).await;
    client.expect_close(STEP).await
}

/// A new, well-behaved client on the same gateway still connects and receives a publish.
async fn assert_still_serving(gw: &Gateway, token: &str) {
    let marie = gw.user("dupont", 0);
    let (mut client, _, _) = WsClient::connect_ready(&gw.ws_url(), token, BTreeMap::new()).await;
    let published = gw
        .api()
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "still here"))
        .await;
    client.wait_notification(&published.id, STEP).await;
}

async fn assert_protocol_violation(offence: Offence, what: &str) {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let token = gw.api().login(gw.user("dupont", 0)).await.access_token;
    let (closed, frames) = offend(&gw, &token, offence).await;
    assert_eq!(closed.code, Some(4102), "{what}: close code ({closed:?})");
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Error { .. })),
        "{what}: an error frame says why before the close; got {frames:?}"
    );
    assert_still_serving(&gw, &token).await;
}

#[tokio::test]
async fn a_message_over_64_kib_closes_4103_and_others_are_still_served() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let token = gw.api().login(gw.user("dupont", 0)).await.access_token;
    let huge = format!(
        r#"{{"type":"mark_read","id":"big","notification_ids":["{}"]}}"#,
        "a".repeat(70 * 1024)
    );
    let offence = Offence {
        after_hello: true,
        message: Message::text(huge),
    };
    let (closed, _) = offend(&gw, &token, offence).await;
    assert_eq!(closed.code, Some(4103), "{closed:?}");
    assert_still_serving(&gw, &token).await;
}

#[tokio::test]
async fn malformed_json_closes_4102_after_an_error_frame() {
    let offence = Offence {
        after_hello: true,
        message: Message::text(r#"{"type":"mark_read","id":"#),
    };
    assert_protocol_violation(offence, "malformed JSON").await;
}

#[tokio::test]
async fn an_unknown_frame_type_without_an_action_id_closes_4102_after_an_error_frame() {
    let offence = Offence {
        after_hello: true,
        message: Message::text(r#"{"type":"explode"}"#),
    };
    assert_protocol_violation(offence, "unknown type").await;
}

/// A newer client's action this gateway does not know is refused, not fatal: the
/// client keeps its connection and learns not to send it again.
#[tokio::test]
async fn an_unknown_action_is_answered_unsupported_and_the_connection_stays() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let token = gw.api().login(gw.user("dupont", 0)).await.access_token;
    let (mut client, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    client
        .send_raw(Message::text(
            r#"{"type":"dismiss","id":"d-1","notification_ids":["x"]}"#,
        ))
        .await;
    let result = client.wait_result("d-1").await;
    let ServerFrame::Result { ok, error, .. } = result else {
        unreachable!("wait_result returns results");
    };
    let error = error.expect("an error");
    assert!(!ok);
    assert_eq!(error.code, tocsin_protocol::ErrorCode::Unsupported);
    assert!(error.message.contains("dismiss"), "{}", error.message);
    client.send(&tocsin_protocol::ClientFrame::Ping {}).await;
    client
        .wait_for(STEP, "pong", |frame| {
            matches!(frame, ServerFrame::Pong {}).then_some(())
        })
        .await;
}

#[tokio::test]
async fn a_binary_frame_closes_4102_after_an_error_frame() {
    let offence = Offence {
        after_hello: true,
        message: Message::binary(br#"{"type":"ping"}"#.to_vec()),
    };
    assert_protocol_violation(offence, "binary frame").await;
}

#[tokio::test]
async fn a_frame_before_hello_closes_4102_after_an_error_frame() {
    let offence = Offence {
        after_hello: false,
        message: Message::text(r#"{"type":"mark_all_read","id":"early"}"#),
    };
    assert_protocol_violation(offence, "frame before hello").await;
}

/// The attack: invalid UTF-8 in a text frame got a bare TCP drop. Now close 1007
/// (RFC 6455's "invalid payload"), after an error frame saying why.
#[tokio::test]
async fn invalid_utf8_in_a_text_frame_closes_1007_and_others_are_still_served() {
    use tokio_tungstenite::tungstenite::protocol::frame::Frame;
    use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};

    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let token = gw.api().login(gw.user("dupont", 0)).await.access_token;
    let not_utf8 = Frame::message(vec![b'{', 0xff, 0xfe, b'}'], OpCode::Data(Data::Text), true);
    let offence = Offence {
        after_hello: true,
        message: Message::Frame(not_utf8),
    };
    let (closed, frames) = offend(&gw, &token, offence).await;
    assert_eq!(closed.code, Some(1007), "close code ({closed:?})");
    assert!(
        frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Error { error } if error.message.contains("UTF-8"))),
        "an error frame says why: {frames:?}"
    );
    assert_still_serving(&gw, &token).await;
}

/// The attack: under a frame flood the gateway sent close 4003 with `retry_after_ms`,
/// but the client saw no close frame in 20 of 20 runs (1006: the socket was reset with
/// the flood still unread). The gateway now reads out what is in flight before it
/// drops the connection, so the close frame and its delay arrive.
#[tokio::test]
async fn a_frame_flood_closes_4003_with_its_delay_and_the_close_frame_arrives() {
    let gw = Gateway::start(GatewayOptions {
        actions_per_second: Some(2),
        actions_burst: Some(4),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    })
    .await;
    let token = gw.api().login(gw.user("dupont", 0)).await.access_token;
    for run in 0..5 {
        let mut client = WsClient::connect(&gw.ws_url(), &ConnectOptions::bearer(&token)).await;
        client.hello(BTreeMap::new()).await;
        client.read_until_caught_up(STEP).await;
        for n in 0..5000 {
            let frame = tocsin_protocol::ClientFrame::MarkRead {
                id: format!("flood-{run}-{n}"),
                notification_ids: vec!["00000000-0000-0000-0000-000000000000".into()],
            };
            let text = serde_json::to_string(&frame).expect("serialises");
            if client.try_send_raw(Message::text(text)).await.is_err() {
                break;
            }
        }
        let (closed, _frames) = client.expect_close(STEP).await;
        assert_eq!(
            closed.code,
            Some(4003),
            "run {run}: the close frame arrived ({closed:?})"
        );
        assert!(
            closed.reason.starts_with("retry_after_ms="),
            "run {run}: the delay travels in the reason: {closed:?}"
        );
    }
}
