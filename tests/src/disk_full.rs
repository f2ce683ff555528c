//! A full disk: publishes are refused with a clear 503 while nothing acknowledged is
//! lost, the gateway keeps serving, readiness reports it, and both readiness and
//! publishing recover once space is freed.

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin_e2e::publisher::email_with_body;
use tocsin_e2e::{
    Gateway, GatewayOptions, STEP, SmallDisk, WsClient, assert_consecutive, poll_until,
};
use tocsin_protocol::ErrorCode;

/// The most publishes tried before the disk must be full (4 MiB / 8 KiB ≈ 500).
const MAX_ATTEMPTS: usize = 2000;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_refuses_publishes_clearly_loses_nothing_and_recovers() {
    let gw = Gateway::start(GatewayOptions {
        small_disk: Some(SmallDisk {
            size_bytes: 4 * 1024 * 1024,
            filler_bytes: 1024 * 1024,
        }),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    })
    .await;
    let api = gw.api();
    let key = gw.key("dupont").to_owned();
    let marie = gw.user("dupont", 0).clone();
    let token = api.login(&marie).await.access_token;
    let (mut client, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;

    let mut acknowledged = Vec::new();
    let mut refusal = None;
    for n in 0..MAX_ATTEMPTS {
        let request = email_with_body(&marie.stream(), &format!("mail #{n}"), 8 * 1024);
        let reply = api.publish(&key, &request).await;
        match reply.status.as_u16() {
            201 => acknowledged.push(reply.json::<tocsin_protocol::http::PublishResponse>()),
            503 => {
                refusal = Some(reply.error());
                break;
            }
            other => panic!("publish #{n}: unexpected {other}: {:?}", reply.body),
        }
    }
    let refusal = refusal.expect("the 4 MiB disk fills up within the attempts");
    assert_eq!(refusal.code, ErrorCode::Unavailable);
    assert!(
        refusal.message.contains("disk is full") && refusal.message.contains("nothing was stored"),
        "the error says what happened and what to do: {}",
        refusal.message
    );
    assert!(
        !acknowledged.is_empty(),
        "some publishes fit before the disk filled"
    );
    // Readiness says so (a load balancer stops sending publishes here).
    let ready = api.get("/readyz").await;
    assert_eq!(ready.status.as_u16(), 503, "{:?}", ready.body);
    assert!(
        ready.body.to_string().contains("disk is full"),
        "readiness names the cause: {}",
        ready.body
    );

    // Every acknowledged notification was delivered live, in order, nothing more.
    let live = client
        .recv_notifications(acknowledged.len(), Duration::from_secs(30))
        .await;
    let offsets: Vec<u64> = live.iter().map(|d| d.offset).collect();
    assert_consecutive(&offsets, 1, "live delivery up to the full disk");
    for (delivered, ack) in live.iter().zip(&acknowledged) {
        assert_eq!(delivered.notification.id, ack.id);
    }

    // The operator frees space; the same gateway process accepts publishes again.
    gw.free_filler();
    // Readiness recovers by itself, before any publish tries the disk again.
    poll_until(STEP, "readiness after space was freed", || async {
        (api.get("/readyz").await.status.as_u16() == 200).then_some(())
    })
    .await;
    let after = email_with_body(&marie.stream(), "after the cleanup", 100);
    let resumed = api.publish_ok(&key, &after).await;
    assert_eq!(
        resumed.offset,
        acknowledged.len() as u64 + 1,
        "the refused publish consumed no offset"
    );
    let next = client.recv_notifications(1, STEP).await;
    assert_eq!(next[0].notification.id, resumed.id);
}
