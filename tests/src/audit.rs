//! The audit trail against the real binary: for a dossier, the firm can show that the
//! lawyer was told (published by the scheduler, written to each of her two devices,
//! shown as an OS notification on one), read it there and acknowledged it — each step with its device and time —
//! through `GET /v1/audit` with an admin key, and through `audit export` as CSV once
//! the gateway stopped. A publishing key may not read it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::json;
use tocsin_e2e::{Gateway, GatewayOptions, TenantSpec, WsClient, poll_until};
use tocsin_protocol::audit::{AuditEvent, AuditPage};
use tocsin_protocol::deadline::DeadlineRequest;
use tocsin_protocol::http::{LoginRequest, TokenResponse};
use tocsin_protocol::{ClientFrame, ServerFrame};

const WAIT: Duration = Duration::from_secs(20);

async fn login(gw: &Gateway, email: &str, device: &str) -> TokenResponse {
    reqwest::Client::new()
        .post(format!("http://{}/v1/auth/login", gw.addr()))
        .json(&LoginRequest {
            email: email.into(),
            password: tocsin_e2e::gateway::PASSWORD.into(),
            device_name: device.into(),
        })
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("a token")
}

#[tokio::test]
async fn a_dossiers_trail_shows_every_step_with_device_and_time() {
    let mut gw = Gateway::start(GatewayOptions {
        tenants: vec![TenantSpec::new("dupont", &["marie"])],
        ..GatewayOptions::default()
    })
    .await;
    let admin_key = gw.create_key("dupont", true).await;
    let marie = gw.user("dupont", 0).clone();
    let desk = login(&gw, &marie.email, "Bureau — Marie").await;
    let laptop = login(&gw, &marie.email, "Portable — Marie").await;
    let (mut desk_ws, _, _) =
        WsClient::connect_ready(&gw.ws_url(), &desk.access_token, BTreeMap::new()).await;
    let (mut laptop_ws, _, _) =
        WsClient::connect_ready(&gw.ws_url(), &laptop.access_token, BTreeMap::new()).await;
    let request = DeadlineRequest {
        deadline_type: "Délai d'appel".into(),
        due_at: (chrono::Utc::now() + chrono::Duration::seconds(3)).fixed_offset(),
        time_zone: None,
        owner: marie.email.clone(),
        backup: None,
        dossier_number: Some("2026-0142".into()),
        dossier_title: Some("Dupont c/ Martin".into()),
        url: None,
        policy: Some(json!({"steps": [{"before": {"seconds": 2}, "urgency": "critical"}]})),
        escalation: None,
    };
    gw.api()
        .put_deadline(gw.key("dupont"), "appel-9", &request)
        .await
        .expect_status(201, "declare");
    let alert = desk_ws.recv_notifications(1, WAIT).await.remove(0);
    laptop_ws.recv_notifications(1, WAIT).await;
    let id = alert.notification.id.clone();
    for (action, frame) in [
        (
            "read-1",
            ClientFrame::MarkRead {
                id: "read-1".into(),
                notification_ids: vec![id.clone()],
            },
        ),
        (
            "shown-1",
            ClientFrame::Shown {
                id: "shown-1".into(),
                notification_ids: vec![id.clone()],
            },
        ),
        (
            "ack-1",
            ClientFrame::Acknowledge {
                id: "ack-1".into(),
                notification_ids: vec![id.clone()],
            },
        ),
    ] {
        desk_ws.send(&frame).await;
        let result = desk_ws.wait_result(action).await;
        assert!(
            matches!(result, ServerFrame::Result { ok: true, .. }),
            "{result:?}"
        );
    }
    // A second read of the same notification is not a new step.
    desk_ws
        .send(&ClientFrame::MarkRead {
            id: "read-2".into(),
            notification_ids: vec![id.clone()],
        })
        .await;
    desk_ws.wait_result("read-2").await;

    let client = reqwest::Client::new();
    let audit = |key: String, query: &'static str| {
        let (client, addr) = (client.clone(), gw.addr().to_owned());
        async move {
            client
                .get(format!("http://{addr}/v1/audit?{query}"))
                .bearer_auth(key)
                .send()
                .await
                .expect("GET /v1/audit")
        }
    };
    let refused = audit(gw.key("dupont").to_owned(), "dossier=2026-0142").await;
    assert_eq!(
        refused.status(),
        403,
        "a publishing key may not read the trail"
    );

    // Deliveries are written in batches: poll until both devices' are in.
    let page: AuditPage = poll_until(WAIT, "both deliveries recorded", || async {
        let page: AuditPage = audit(admin_key.clone(), "dossier=2026-0142")
            .await
            .json()
            .await
            .ok()?;
        let delivered = page
            .records
            .iter()
            .filter(|r| r.event == AuditEvent::Delivered)
            .count();
        (delivered == 2).then_some(page)
    })
    .await;
    let steps: Vec<_> = page
        .records
        .iter()
        .map(|r| (r.event, r.device.clone().unwrap_or_default()))
        .collect();
    let mut sorted = steps.clone();
    sorted.sort();
    assert_eq!(
        sorted,
        [
            (AuditEvent::Published, String::new()),
            (AuditEvent::Delivered, "Bureau — Marie".into()),
            (AuditEvent::Delivered, "Portable — Marie".into()),
            (AuditEvent::Shown, "Bureau — Marie".into()),
            (AuditEvent::Read, "Bureau — Marie".into()),
            (AuditEvent::Acknowledged, "Bureau — Marie".into()),
        ],
        "{steps:?}"
    );
    let published = &page.records[0];
    assert_eq!(published.event, AuditEvent::Published);
    assert_eq!(published.actor.as_deref(), Some("scheduler"));
    assert_eq!(published.user_id.as_deref(), Some(marie.id.as_str()));
    assert!(
        page.records
            .iter()
            .all(|r| r.notification_id.as_deref() == Some(id.as_str()))
    );
    assert!(
        page.records
            .iter()
            .all(|r| r.deadline_id.as_deref() == Some("appel-9"))
    );
    let by_deadline: AuditPage = audit(admin_key.clone(), "deadline=appel-9")
        .await
        .json()
        .await
        .expect("JSON");
    assert_eq!(by_deadline.records.len(), 6);
    let other: AuditPage = audit(admin_key.clone(), "dossier=2026-9999")
        .await
        .json()
        .await
        .expect("JSON");
    assert!(other.records.is_empty());

    // The same trail from the command line, with the gateway stopped.
    gw.terminate();
    gw.wait_exit(WAIT).await;
    let csv = gw
        .admin(&[
            "audit",
            "export",
            "--tenant",
            "dupont",
            "--dossier",
            "2026-0142",
        ])
        .await;
    let lines: Vec<_> = csv.lines().collect();
    assert!(lines[0].starts_with("id,at,event,"), "{csv}");
    assert_eq!(lines.len(), 7, "a header and six steps: {csv}");
    assert!(
        lines
            .iter()
            .any(|l| l.contains(",delivered,") && l.contains("Portable — Marie"))
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(",acknowledged,") && l.contains("Bureau — Marie"))
    );
    let json = gw
        .admin(&[
            "audit",
            "export",
            "--tenant",
            "dupont",
            "--deadline",
            "appel-9",
            "--format",
            "json",
        ])
        .await;
    assert_eq!(json.lines().count(), 6);
    for line in json.lines() {
        let record: tocsin_protocol::audit::AuditRecord =
            serde_json::from_str(line).expect("a record");
        assert_eq!(record.deadline_id.as_deref(), Some("appel-9"));
    }
}
