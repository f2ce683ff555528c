//! Conversation membership changed while sockets are open: a removed member stops
//! receiving and acting on the conversation at once, an added member starts at once,
//! without reconnecting.

use std::collections::BTreeMap;

use tocsin_e2e::publisher::{email, proposal};
use tocsin_e2e::{Gateway, GatewayOptions, STEP, WsClient};
use tocsin_protocol::frames::ProposalResponse;
use tocsin_protocol::{ClientFrame, ErrorCode, ServerFrame, StreamName};

const CONVERSATION: &str = "dossier-2024-117";

async fn firm() -> Gateway {
    Gateway::start(GatewayOptions::with_tenants(&[(
        "dupont",
        &["marie", "paul"],
    )]))
    .await
}

fn stream() -> StreamName {
    StreamName::Conversation(format!("dupont:{CONVERSATION}"))
}

async fn set_members(gw: &Gateway, members: &[&str]) {
    gw.api()
        .set_members(gw.key("dupont"), CONVERSATION, members)
        .await
        .expect_status(200, "members set");
}

async fn connect(gw: &Gateway, index: usize) -> WsClient {
    let token = gw.api().login(gw.user("dupont", index)).await.access_token;
    WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new())
        .await
        .0
}

/// The attack: a member removed from a conversation kept acting on her open socket —
/// she accepted its proposal (stored with her as `responded_by`), sent typing and
/// marked read, until she reconnected.
#[tokio::test]
async fn a_removed_member_can_no_longer_act_on_the_conversation_from_her_open_socket() {
    let gw = firm().await;
    let (marie, paul) = (gw.user("dupont", 0).clone(), gw.user("dupont", 1).clone());
    set_members(&gw, &[&marie.id, &paul.id]).await;
    let mut marie_socket = connect(&gw, 0).await;
    let mut paul_socket = connect(&gw, 1).await;
    let to = format!("conversation:{CONVERSATION}");
    let created = gw
        .api()
        .publish_ok(gw.key("dupont"), &proposal(&to, "rdv-9"))
        .await;
    marie_socket.wait_notification(&created.id, STEP).await;

    set_members(&gw, &[&paul.id]).await;
    marie_socket
        .send(&ClientFrame::ProposalRespond {
            id: "accept-after-removal".to_owned(),
            proposal_id: "rdv-9".to_owned(),
            response: ProposalResponse::Accept,
        })
        .await;
    match marie_socket.wait_result("accept-after-removal").await {
        ServerFrame::Result { ok: false, .. } => {}
        other => panic!("a removed member's answer is refused, got {other:?}"),
    }
    marie_socket
        .send(&ClientFrame::Typing {
            id: "typing-after-removal".to_owned(),
            conversation_id: CONVERSATION.to_owned(),
            active: true,
        })
        .await;
    match marie_socket.wait_result("typing-after-removal").await {
        ServerFrame::Result {
            ok: false, error, ..
        } => assert_eq!(error.map(|e| e.code), Some(ErrorCode::Forbidden)),
        other => panic!("a removed member cannot type, got {other:?}"),
    }

    // Paul, still a member, answers: the proposal was still pending.
    paul_socket
        .send(&ClientFrame::ProposalRespond {
            id: "paul-accepts".to_owned(),
            proposal_id: "rdv-9".to_owned(),
            response: ProposalResponse::Accept,
        })
        .await;
    match paul_socket.wait_result("paul-accepts").await {
        ServerFrame::Result { ok: true, .. } => {}
        other => panic!("the proposal was still pending for paul, got {other:?}"),
    }

    // Marie was told, and nothing more of the conversation reaches her.
    marie_socket
        .wait_for(STEP, "unsubscribed", |frame| match frame {
            ServerFrame::Unsubscribed { stream: s } if *s == stream() => Some(()),
            _ => None,
        })
        .await;
    let later = gw
        .api()
        .publish_ok(gw.key("dupont"), &email(&to, "Pièces du dossier"))
        .await;
    let marker = gw
        .api()
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "marker"))
        .await;
    marie_socket
        .wait_for(STEP, "the marker", |frame| match frame {
            ServerFrame::Notification { notification, .. } if notification.id == marker.id => {
                Some(())
            }
            ServerFrame::Notification { notification, .. } if notification.id == later.id => {
                panic!("a removed member received the conversation's next message")
            }
            _ => None,
        })
        .await;
}

/// A member added to a conversation receives it on the sockets she already has open
/// (before, only after a reconnect or a `join`).
#[tokio::test]
async fn an_added_member_receives_the_conversation_on_her_open_socket_at_once() {
    let gw = firm().await;
    let (marie, paul) = (gw.user("dupont", 0).clone(), gw.user("dupont", 1).clone());
    set_members(&gw, &[&paul.id]).await;
    let mut marie_socket = connect(&gw, 0).await;

    set_members(&gw, &[&paul.id, &marie.id]).await;
    let to = format!("conversation:{CONVERSATION}");
    let message = gw
        .api()
        .publish_ok(gw.key("dupont"), &email(&to, "Bienvenue dans le dossier"))
        .await;
    let status = marie_socket
        .wait_for(STEP, "subscribed", |frame| match frame {
            ServerFrame::Subscribed { stream: status } if status.stream == stream() => {
                Some(status.clone())
            }
            _ => None,
        })
        .await;
    assert!(status.recovered);
    let delivered = marie_socket.wait_notification(&message.id, STEP).await;
    assert_eq!(delivered.stream, stream());

    marie_socket
        .send(&ClientFrame::Typing {
            id: "typing-as-member".to_owned(),
            conversation_id: CONVERSATION.to_owned(),
            active: true,
        })
        .await;
    match marie_socket.wait_result("typing-as-member").await {
        ServerFrame::Result { ok: true, .. } => {}
        other => panic!("a new member may type at once, got {other:?}"),
    }
}
