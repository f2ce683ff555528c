//! Read state and proposal answers are server-side and pushed to every connection of
//! the user: what one desktop marks read is cleared on the others, and a proposal
//! answered on one is a visible conflict on the other.

use std::collections::{BTreeMap, BTreeSet};

use tocsin_e2e::publisher::{email, proposal};
use tocsin_e2e::{Gateway, GatewayOptions, STEP, WsClient};
use tocsin_protocol::frames::ProposalResponse;
use tocsin_protocol::notification::ProposalStatus;
use tocsin_protocol::{ClientFrame, ErrorCode, NotificationData, ServerFrame};

fn expect_ok(frame: ServerFrame, what: &str) {
    assert!(
        matches!(frame, ServerFrame::Result { ok: true, .. }),
        "{what}: expected ok=true, got {frame:?}"
    );
}

#[tokio::test]
async fn marking_read_on_one_connection_is_pushed_to_the_other() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let token = api.login(marie).await.access_token;
    let (mut desk, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    let (mut laptop, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;

    let mut ids = Vec::new();
    for title in ["m1", "m2", "m3"] {
        let published = api
            .publish_ok(gw.key("dupont"), &email(&marie.stream(), title))
            .await;
        ids.push(published.id);
    }
    desk.recv_notifications(3, STEP).await;
    laptop.recv_notifications(3, STEP).await;

    desk.send(&ClientFrame::MarkRead {
        id: "mr-1".to_owned(),
        notification_ids: ids[..2].to_vec(),
    })
    .await;
    expect_ok(desk.wait_result("mr-1").await, "mark_read");
    let pushed = laptop
        .wait_for(STEP, "read", |frame| match frame {
            ServerFrame::Read { notification_ids } => Some(notification_ids.clone()),
            _ => None,
        })
        .await;
    assert_eq!(
        pushed.into_iter().collect::<BTreeSet<_>>(),
        ids[..2].iter().cloned().collect::<BTreeSet<_>>(),
        "the other connection learns which ids were read"
    );
    assert_eq!(api.unread(&token).await.total, 1);

    desk.send(&ClientFrame::MarkAllRead {
        up_to: Default::default(),
        id: "mr-2".to_owned(),
        kind: None,
    })
    .await;
    expect_ok(desk.wait_result("mr-2").await, "mark_all_read");
    let kind = laptop
        .wait_for(STEP, "read_all", |frame| match frame {
            ServerFrame::ReadAll { kind, .. } => Some(*kind),
            _ => None,
        })
        .await;
    assert_eq!(kind, None, "read_all covers every kind");
    assert_eq!(api.unread(&token).await.total, 0);
}

#[tokio::test]
async fn a_proposal_answered_twice_is_a_conflict_and_both_connections_see_its_status() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let token = api.login(marie).await.access_token;
    let (mut desk, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    let (mut laptop, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;

    let created = api
        .publish_ok(gw.key("dupont"), &proposal(&marie.stream(), "prop-17"))
        .await;
    desk.wait_notification(&created.id, STEP).await;
    laptop.wait_notification(&created.id, STEP).await;

    desk.send(&ClientFrame::ProposalRespond {
        id: "pr-1".to_owned(),
        proposal_id: "prop-17".to_owned(),
        response: ProposalResponse::Accept,
    })
    .await;
    expect_ok(desk.wait_result("pr-1").await, "the first answer");

    laptop
        .send(&ClientFrame::ProposalRespond {
            id: "pr-2".to_owned(),
            proposal_id: "prop-17".to_owned(),
            response: ProposalResponse::Reject,
        })
        .await;
    match laptop.wait_result("pr-2").await {
        ServerFrame::Result {
            ok: false, error, ..
        } => assert_eq!(error.map(|e| e.code), Some(ErrorCode::Conflict)),
        other => panic!("a second answer must be a conflict, got {other:?}"),
    }

    for (name, client) in [("desk", &mut desk), ("laptop", &mut laptop)] {
        let status = client
            .wait_for(STEP, "proposal-status-changed", |frame| match frame {
                ServerFrame::Notification { notification, .. } => match &notification.data {
                    NotificationData::ProposalStatusChanged(change)
                        if change.proposal_id == "prop-17" =>
                    {
                        Some(change.status)
                    }
                    _ => None,
                },
                _ => None,
            })
            .await;
        assert_eq!(
            status,
            ProposalStatus::Accepted,
            "{name} sees the accepted status"
        );
    }
}
