//! Webhooks against the real binary: a firm's receiver that is down, then slow, then
//! up receives every deadline event (reminded, escalated, acknowledged) at least once,
//! each signed as docs/DEADLINES.md says, across a gateway SIGKILL; a receiver that
//! checks signatures that way detects a forged or altered request.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use hmac::{Hmac, Mac};
use serde_json::json;
use sha2::Sha256;
use tocsin_e2e::{Gateway, GatewayOptions, TenantSpec, WsClient, poll_until};
use tocsin_protocol::deadline::DeadlineRequest;
use tocsin_protocol::{ClientFrame, ServerFrame};

/// Past the gateway's 10 s answer timeout, and the retries after it.
const WAIT: Duration = Duration::from_secs(60);

/// One request the receiver got.
#[derive(Debug, Clone)]
struct Received {
    signature: String,
    event_id: String,
    body: String,
}

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<Received>>>,
    /// The first request is answered after the gateway gave up on it.
    slow_once: Arc<AtomicBool>,
}

async fn hook(State(receiver): State<Receiver>, headers: HeaderMap, body: Bytes) -> &'static str {
    let header = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    receiver.got.lock().expect("not poisoned").push(Received {
        signature: header("tocsin-signature"),
        event_id: header("tocsin-event-id"),
        body: String::from_utf8_lossy(&body).into_owned(),
    });
    if receiver.slow_once.swap(false, Ordering::SeqCst) {
        tokio::time::sleep(Duration::from_secs(12)).await;
    }
    "ok"
}

/// The check docs/DEADLINES.md tells receivers to make: the HMAC-SHA256 of
/// `<t>.<raw body>` under the secret, compared in constant time, and a fresh `t`.
fn verify(secret: &str, header: &str, body: &str, now: i64) -> bool {
    let mut timestamp = None;
    let mut v1 = None;
    for part in header.split(',') {
        match part.split_once('=') {
            Some(("t", t)) => timestamp = t.parse::<i64>().ok(),
            Some(("v1", hex)) => v1 = hex::decode(hex).ok(),
            _ => {}
        }
    }
    let (Some(timestamp), Some(v1)) = (timestamp, v1) else {
        return false;
    };
    if (now - timestamp).abs() > 300 {
        return false;
    }
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes()).expect("any key length");
    mac.update(format!("{timestamp}.{body}").as_bytes());
    mac.verify_slice(&v1).is_ok()
}

#[tokio::test]
async fn a_receiver_down_then_slow_then_up_gets_every_event_signed() {
    let mut gw = Gateway::start(GatewayOptions {
        tenants: vec![TenantSpec::new("dupont", &["marie", "paul"])],
        ..GatewayOptions::default()
    })
    .await;
    let key = gw.key("dupont").to_owned();
    let (marie, paul) = (gw.user("dupont", 0).clone(), gw.user("dupont", 1).clone());
    // The receiver's port, not listening yet: the receiver is down.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
        .port();
    let client = reqwest::Client::new();
    let set: serde_json::Value = client
        .put(format!("http://{}/v1/webhook", gw.addr()))
        .bearer_auth(&key)
        .json(&json!({ "url": format!("http://127.0.0.1:{port}/hook") }))
        .send()
        .await
        .expect("PUT /v1/webhook")
        .json()
        .await
        .expect("JSON");
    let secret = set["secret"]
        .as_str()
        .expect("a generated secret")
        .to_owned();
    let refused = client
        .put(format!("http://{}/v1/webhook", gw.addr()))
        .bearer_auth(&key)
        .json(&json!({ "url": "http://dms.dupont.example/hook" }))
        .send()
        .await
        .expect("PUT");
    assert_eq!(
        refused.status(),
        422,
        "plain http to another machine is refused"
    );

    let token = gw.api().login(&marie).await.access_token;
    let (mut ws, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    let due = (chrono::Utc::now() + chrono::Duration::seconds(4)).fixed_offset();
    let request = DeadlineRequest {
        deadline_type: "Délai d'appel".into(),
        due_at: due,
        time_zone: None,
        owner: marie.email.clone(),
        backup: Some(paul.email.clone()),
        dossier_number: Some("2026/0142".into()),
        dossier_title: None,
        url: None,
        policy: Some(json!({"steps": [{"before": {"seconds": 3}, "urgency": "critical"}]})),
        escalation: Some(json!({"first": {"seconds": 1}, "second": null})),
    };
    gw.api()
        .put_deadline(&key, "appel-7", &request)
        .await
        .expect_status(201, "declare");
    let alert = ws.recv_notifications(1, WAIT).await.remove(0);
    let pending = |gw: &Gateway| {
        let (client, addr, key) = (client.clone(), gw.addr().to_owned(), key.clone());
        async move {
            let view: serde_json::Value = client
                .get(format!("http://{addr}/v1/webhook"))
                .bearer_auth(&key)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            view["pending"].as_u64()
        }
    };
    poll_until(WAIT, "reminded and escalated queued", || async {
        (pending(&gw).await? >= 2).then_some(())
    })
    .await;
    ws.send(&ClientFrame::Acknowledge {
        id: "ack-1".into(),
        notification_ids: vec![alert.notification.id.clone()],
    })
    .await;
    assert!(matches!(
        ws.wait_result("ack-1").await,
        ServerFrame::Result { ok: true, .. }
    ));
    poll_until(WAIT, "acknowledged queued", || async {
        (pending(&gw).await? >= 3).then_some(())
    })
    .await;

    // Killed with three events undelivered; they are in the store.
    gw.kill_hard().await;
    gw.restart().await;
    let receiver = Receiver::default();
    receiver.slow_once.store(true, Ordering::SeqCst);
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
        .await
        .expect("the receiver's port is free again");
    let app = axum::Router::new()
        .route("/hook", axum::routing::post(hook))
        .with_state(receiver.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });

    poll_until(WAIT, "every event delivered", || async {
        (pending(&gw).await? == 0).then_some(())
    })
    .await;
    let got = receiver.got.lock().expect("not poisoned").clone();
    let now = chrono::Utc::now().timestamp();
    let mut kinds = BTreeSet::new();
    let mut ids = BTreeSet::new();
    for request in &got {
        assert!(
            verify(&secret, &request.signature, &request.body, now),
            "a valid signature: {request:?}"
        );
        let body: serde_json::Value = serde_json::from_str(&request.body).expect("JSON");
        assert_eq!(
            body["id"],
            request.event_id.as_str(),
            "the header and the body agree"
        );
        assert_eq!(body["deadline"]["id"], "appel-7");
        ids.insert(request.event_id.clone());
        kinds.insert(body["type"].as_str().expect("a type").to_owned());
    }
    assert_eq!(
        kinds,
        BTreeSet::from([
            "deadline.acknowledged".to_owned(),
            "deadline.escalated".to_owned(),
            "deadline.reminded".to_owned()
        ])
    );
    assert_eq!(ids.len(), 3, "three events, deduplicable by id");
    assert!(
        got.len() > 3,
        "the slow answer was retried: {} requests",
        got.len()
    );

    // What a receiver that checks signatures rejects.
    let sample = &got[0];
    let altered = sample.body.replace("appel-7", "appel-8");
    assert!(
        !verify(&secret, &sample.signature, &altered, now),
        "an altered body"
    );
    assert!(
        !verify("another secret", &sample.signature, &sample.body, now),
        "a forged signature"
    );
    assert!(
        !verify(&secret, &sample.signature, &sample.body, now + 3600),
        "a replay an hour later"
    );
}
