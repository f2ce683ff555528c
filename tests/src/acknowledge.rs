//! Deadline acknowledgements ("Pris en compte") with real client engines against the
//! real gateway: acknowledged is per deadline and distinct from read; one device's
//! acknowledgement clears the other's critical mark, an offline one reaches the
//! gateway exactly once, and a device offline meanwhile learns of it on reconnecting.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use tocsin_client::api::{ApiClient, ServerUrl};
use tocsin_client::engine::Command;
use tocsin_client::events::{ConnectionState, EngineEvent};
use tocsin_client::secrets::{MemoryStore, SecretStore};
use tocsin_client::store::DeadlineRow;
use tocsin_e2e::client::{ClientOptions, TestClient};
use tocsin_e2e::proxy::Proxy;
use tocsin_e2e::{Gateway, GatewayOptions, TenantSpec, UserFixture, poll_until};
use tocsin_protocol::deadline::{DeadlineRequest, DeadlineView};
use tocsin_protocol::{NotificationData, Urgency};

const LONG: Duration = Duration::from_secs(60);

/// Marie (the deadlines' owner) and Paul, a partner the escalation would reach.
async fn firm() -> Gateway {
    Gateway::start(GatewayOptions {
        tenants: vec![TenantSpec::new("dupont", &["marie", "paul:partner"])],
        ..GatewayOptions::default()
    })
    .await
}

/// Timers that notice a black-holed link within a second or two.
fn quick_heartbeat() -> ClientOptions {
    ClientOptions {
        heartbeat_interval: Duration::from_millis(500),
        heartbeat_timeout: Duration::from_millis(500),
        ..ClientOptions::default()
    }
}

/// Signs `user` in as the device `device` (its name is what acknowledgements show)
/// and starts an engine for it.
async fn device(
    base_url: &str,
    user: &UserFixture,
    device: &str,
    options: ClientOptions,
) -> TestClient {
    let server = ServerUrl::parse(base_url).expect("a loopback URL");
    let tokens = ApiClient::new(server.clone())
        .login(&user.email, &user.password, device)
        .await
        .expect("login works");
    let secrets = Arc::new(MemoryStore::new());
    secrets
        .set("account", &tokens.refresh_token)
        .expect("memory store");
    let home = tempfile::tempdir().expect("a temp home");
    let mut client = TestClient::start_in(server, home, secrets, options);
    client.wait_connected(LONG).await;
    client
}

/// Declares a deadline of `owner` due in 6 s: a warning reminder 4 s before, a
/// critical one 2 s before, escalated 30 s after that if nobody acknowledged it.
async fn declare(gw: &Gateway, id: &str, owner: &UserFixture) {
    let due = (Utc::now() + chrono::Duration::seconds(6)).to_rfc3339();
    let body: DeadlineRequest = serde_json::from_value(serde_json::json!({
        "deadline_type": "Délai d'appel",
        "due_at": due,
        "owner": owner.email,
        "dossier_number": "2026-0142",
        "policy": {"steps": [
            {"before": {"seconds": 4}, "urgency": "warning"},
            {"before": {"seconds": 2}, "urgency": "critical"}
        ]},
        "escalation": {"first": {"seconds": 30}, "second": null}
    }))
    .expect("a deadline request");
    let reply = gw.api().put_deadline(gw.key("dupont"), id, &body).await;
    assert!(
        reply.status.is_success(),
        "declared: {} {}",
        reply.status,
        reply.body
    );
}

/// Waits for the critical reminder of `deadline_id`; returns its notification id.
async fn critical_alert(client: &mut TestClient, deadline_id: &str) -> String {
    client
        .wait_for(LONG, "the critical reminder", |event| match event {
            EngineEvent::Notification { notification, .. }
                if notification.urgency == Urgency::Critical
                    && matches!(&notification.data,
                        NotificationData::DeadlineAlert(alert) if alert.deadline_id == deadline_id) =>
            {
                Some(notification.id.clone())
            }
            _ => None,
        })
        .await
}

/// Waits until an `Acknowledged` event names `deadline_id`.
async fn acknowledged_event(client: &mut TestClient, deadline_id: &str) {
    client
        .wait_for(LONG, "the deadline acknowledged", |event| match event {
            EngineEvent::Acknowledged { deadline_ids } => deadline_ids
                .iter()
                .any(|id| id == deadline_id)
                .then_some(()),
            _ => None,
        })
        .await;
}

async fn until_offline(client: &mut TestClient) {
    client
        .wait_for(LONG, "the engine noticing the dead link", |event| {
            matches!(event, EngineEvent::State(ConnectionState::Offline { .. })).then_some(())
        })
        .await;
}

/// The deadline as the gateway has it, once it holds `count` acknowledgements.
async fn with_acknowledgements(gw: &Gateway, id: &str, count: usize) -> DeadlineView {
    let api = gw.api();
    poll_until(LONG, "the gateway recording the acknowledgement", || {
        let api = api.clone();
        async move {
            let view = api.deadline_ok(gw.key("dupont"), id).await;
            (view.acknowledgements.len() >= count).then_some(view)
        }
    })
    .await
}

/// The panel's row of one deadline.
async fn row(client: &TestClient, deadline_id: &str) -> DeadlineRow {
    let rows = client.handle.deadline_rows(100).await.expect("rows");
    rows.into_iter()
        .find(|row| row.deadline_id == deadline_id)
        .expect("the deadline has a row")
}

async fn unacknowledged_critical(client: &TestClient) -> u64 {
    let counts = client.handle.counts().await.expect("counts");
    counts.unacknowledged_critical_deadlines
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledging_on_one_device_clears_the_critical_mark_on_the_other() {
    let gw = firm().await;
    let marie = gw.user("dupont", 0).clone();
    let base = format!("http://{}", gw.addr());
    let mut laptop = device(&base, &marie, "Laptop — A", ClientOptions::default()).await;
    let mut desktop = device(&base, &marie, "Desktop — B", ClientOptions::default()).await;
    declare(&gw, "appel-two-devices", &marie).await;
    critical_alert(&mut laptop, "appel-two-devices").await;
    critical_alert(&mut desktop, "appel-two-devices").await;
    assert_eq!(unacknowledged_critical(&desktop).await, 1);

    let ids = vec!["appel-two-devices".to_owned()];
    assert!(
        laptop
            .handle
            .send(Command::Acknowledge { deadline_ids: ids })
            .await
    );
    acknowledged_event(&mut desktop, "appel-two-devices").await;
    assert_eq!(unacknowledged_critical(&desktop).await, 0);
    let counts = desktop.handle.counts().await.expect("counts");
    assert!(
        counts.unread_critical_deadlines > 0,
        "acknowledged is not read"
    );
    let shown = row(&desktop, "appel-two-devices").await;
    let by = shown.acknowledged.expect("shown as acknowledged");
    assert_eq!(by.device.as_deref(), Some("Laptop — A"));
    assert_eq!(by.user_id.as_deref(), Some(marie.id.as_str()));

    let view = with_acknowledgements(&gw, "appel-two-devices", 1).await;
    assert_eq!(view.acknowledgements.len(), 1, "{view:?}");
    assert_eq!(
        view.acknowledgements[0].device.as_deref(),
        Some("Laptop — A")
    );
    poll_until(LONG, "the laptop's outbox emptied", || {
        let left = laptop.outbox_len();
        async move { (left == 0).then_some(()) }
    })
    .await;
    laptop.stop().await;
    desktop.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_offline_acknowledgement_reaches_the_gateway_exactly_once() {
    let gw = firm().await;
    let marie = gw.user("dupont", 0).clone();
    let proxy = Proxy::start(gw.addr().to_owned()).await;
    let base = format!("http://{}", proxy.addr);
    let mut laptop = device(&base, &marie, "Laptop — hors ligne", quick_heartbeat()).await;
    declare(&gw, "appel-offline", &marie).await;
    critical_alert(&mut laptop, "appel-offline").await;

    proxy.freeze();
    until_offline(&mut laptop).await;
    let ids = vec!["appel-offline".to_owned()];
    assert!(
        laptop
            .handle
            .send(Command::Acknowledge { deadline_ids: ids })
            .await
    );
    acknowledged_event(&mut laptop, "appel-offline").await;
    let local = row(&laptop, "appel-offline").await;
    assert!(
        local.acknowledged.as_ref().is_some_and(|ack| ack.pending),
        "shown acknowledged at once, pending: {local:?}"
    );
    assert_eq!(unacknowledged_critical(&laptop).await, 0);
    assert_eq!(laptop.outbox_len(), 1);
    assert!(
        gw.api()
            .deadline_ok(gw.key("dupont"), "appel-offline")
            .await
            .acknowledgements
            .is_empty(),
        "nothing reached the gateway yet"
    );

    proxy.thaw();
    let error = laptop
        .wait_for(LONG, "the acknowledgement's result", |event| match event {
            EngineEvent::ActionResult { error, .. } => Some(error.clone()),
            _ => None,
        })
        .await;
    assert!(error.is_none(), "accepted: {error:?}");
    let before = with_acknowledgements(&gw, "appel-offline", 1).await;
    assert_eq!(before.acknowledgements.len(), 1);
    assert_eq!(
        before.acknowledgements[0].device.as_deref(),
        Some("Laptop — hors ligne")
    );
    poll_until(LONG, "the gateway's account of it stored locally", || {
        let client = &laptop;
        async move {
            let shown = row(client, "appel-offline").await.acknowledged?;
            (!shown.pending && shown.user_id.is_some() && client.outbox_len() == 0).then_some(())
        }
    })
    .await;

    // A restart on the same local database: nothing is left to send again.
    let (home, secrets) = laptop.stop().await;
    let server = ServerUrl::parse(&base).expect("a loopback URL");
    let mut again = TestClient::start_in(server, home, secrets, quick_heartbeat());
    again.wait_connected(LONG).await;
    assert_eq!(again.outbox_len(), 0);
    let shown = row(&again, "appel-offline").await;
    assert!(shown.acknowledged.is_some_and(|ack| !ack.pending));
    let after = gw
        .api()
        .deadline_ok(gw.key("dupont"), "appel-offline")
        .await;
    assert_eq!(
        after.acknowledgements, before.acknowledgements,
        "same one, same time"
    );
    again.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_device_offline_meanwhile_learns_of_the_acknowledgement_on_reconnecting() {
    let gw = firm().await;
    let marie = gw.user("dupont", 0).clone();
    let proxy = Proxy::start(gw.addr().to_owned()).await;
    let direct = format!("http://{}", gw.addr());
    let mut laptop = device(&direct, &marie, "Laptop — A", ClientOptions::default()).await;
    let through_proxy = format!("http://{}", proxy.addr);
    let mut desktop = device(&through_proxy, &marie, "Desktop — B", quick_heartbeat()).await;
    declare(&gw, "appel-reconnect", &marie).await;
    critical_alert(&mut laptop, "appel-reconnect").await;
    critical_alert(&mut desktop, "appel-reconnect").await;

    proxy.freeze();
    until_offline(&mut desktop).await;
    let ids = vec!["appel-reconnect".to_owned()];
    assert!(
        laptop
            .handle
            .send(Command::Acknowledge { deadline_ids: ids })
            .await
    );
    with_acknowledgements(&gw, "appel-reconnect", 1).await;
    assert_eq!(unacknowledged_critical(&desktop).await, 1, "not told yet");

    proxy.thaw();
    let mut reconnected = false;
    let after_reconnect = desktop
        .wait_for(LONG, "the acknowledgement after reconnecting", |event| {
            match event {
                EngineEvent::State(ConnectionState::Connected { .. }) => reconnected = true,
                EngineEvent::Acknowledged { deadline_ids }
                    if deadline_ids.iter().any(|id| id == "appel-reconnect") =>
                {
                    return Some(reconnected);
                }
                _ => {}
            }
            None
        })
        .await;
    assert!(after_reconnect, "learnt from the frame after caught_up");
    assert_eq!(unacknowledged_critical(&desktop).await, 0);
    let shown = row(&desktop, "appel-reconnect").await;
    let by = shown.acknowledged.expect("shown as acknowledged");
    assert_eq!(by.device.as_deref(), Some("Laptop — A"));
    laptop.stop().await;
    desktop.stop().await;
}

/// A deadline the firm closes (done) no longer waits for anyone: it leaves the critical
/// mark on a connected device at once, and on one that was offline when it was closed
/// once it reconnects — nobody is left with an orange mark they cannot clear.
#[tokio::test]
async fn a_closed_deadline_leaves_the_critical_mark_live_and_after_reconnecting() {
    let gw = firm().await;
    let marie = gw.user("dupont", 0).clone();
    let proxy = Proxy::start(gw.addr().to_owned()).await;
    let direct = format!("http://{}", gw.addr());
    let mut laptop = device(&direct, &marie, "Laptop — A", ClientOptions::default()).await;
    let through_proxy = format!("http://{}", proxy.addr);
    let mut desktop = device(&through_proxy, &marie, "Desktop — B", quick_heartbeat()).await;
    declare(&gw, "appel-clos", &marie).await;
    critical_alert(&mut laptop, "appel-clos").await;
    critical_alert(&mut desktop, "appel-clos").await;
    assert_eq!(unacknowledged_critical(&laptop).await, 1);

    proxy.freeze();
    until_offline(&mut desktop).await;
    gw.api()
        .cancel_deadline(gw.key("dupont"), "appel-clos", "done")
        .await
        .expect_status(200, "closed by the firm");
    acknowledged_event(&mut laptop, "appel-clos").await;
    assert_eq!(unacknowledged_critical(&laptop).await, 0, "cleared live");
    assert_eq!(unacknowledged_critical(&desktop).await, 1, "not told yet");

    proxy.thaw();
    acknowledged_event(&mut desktop, "appel-clos").await;
    assert_eq!(
        unacknowledged_critical(&desktop).await,
        0,
        "cleared after reconnecting"
    );
    let view = gw.api().deadline_ok(gw.key("dupont"), "appel-clos").await;
    assert!(
        view.acknowledged.is_none(),
        "closing is not an acknowledgement"
    );
    laptop.stop().await;
    desktop.stop().await;
}
