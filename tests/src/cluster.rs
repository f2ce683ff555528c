//! Three gateway nodes on one real PostgreSQL database (each its own process and data
//! directory, the same config): a notification published on one node reaches a
//! device on another once and in order; what is not a notification crosses too (read
//! sync, a disabled user's sockets closed everywhere); and a node killed with SIGKILL
//! under a steady publisher loses nothing: its client resumes on another node and ends
//! with exactly the acknowledged set, in offset order; PostgreSQL itself restarted
//! under a steady publisher: refused with 503 while down, every node ready again by
//! itself, devices on the other nodes end with exactly the acknowledged set.

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin_e2e::publisher::{ContinuousPublisher, RetryingPublisher, email};
use tocsin_e2e::ws::as_delivered;
use tocsin_e2e::{Gateway, GatewayOptions, STEP, WsClient, assert_consecutive, poll_until};
use tocsin_harness::postgres::PgCluster;
use tocsin_protocol::frames::{ClientFrame, ServerFrame};

/// Node A (which created the fixtures) and two more nodes on its database.
pub(crate) async fn three_nodes(cluster: &PgCluster) -> (Gateway, Gateway, Gateway) {
    let url = cluster
        .create_database("tocsin")
        .expect("the database can be created");
    let a = Gateway::start(GatewayOptions {
        database: Some(url),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie", "paul"])])
    })
    .await;
    let b = a.another_node().await;
    let c = a.another_node().await;
    (a, b, c)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publish_on_one_node_reaches_devices_on_the_others_once_in_order() {
    let cluster = PgCluster::start().expect("PostgreSQL starts (cargo xtask setup installs it)");
    let (a, b, c) = three_nodes(&cluster).await;
    let marie = a.user("dupont", 0).clone();
    let laptop = a.api().login(&marie).await.access_token;
    let phone = c.api().login(&marie).await.access_token;
    let (mut on_a, _, _) = WsClient::connect_ready(&a.ws_url(), &laptop, BTreeMap::new()).await;
    let (mut on_c, _, _) = WsClient::connect_ready(&c.ws_url(), &phone, BTreeMap::new()).await;

    // Published on B (and a few on C itself): both devices get all, in order, once.
    let mut published = Vec::new();
    for n in 1..=30 {
        let node = if n % 5 == 0 { &c } else { &b };
        let reply = node
            .api()
            .publish_ok(
                node.key("dupont"),
                &email(&marie.stream(), &format!("mail #{n}")),
            )
            .await;
        published.push(reply.id);
    }
    for (device, client) in [("A", &mut on_a), ("C", &mut on_c)] {
        let got = client.recv_notifications(30, STEP).await;
        let offsets: Vec<u64> = got.iter().map(|d| d.offset).collect();
        assert_consecutive(&offsets, 1, &format!("the device on node {device}"));
        let ids: Vec<&str> = got.iter().map(|d| d.notification.id.as_str()).collect();
        assert_eq!(
            ids,
            published.iter().map(String::as_str).collect::<Vec<_>>(),
            "node {device}"
        );
    }

    // Marked read on A: the device on C is told (relayed, not a notification).
    on_a.send(&ClientFrame::MarkRead {
        id: "mr-1".to_owned(),
        notification_ids: published[..2].to_vec(),
    })
    .await;
    on_a.wait_result("mr-1").await;
    let told = on_c
        .wait_for(STEP, "read on another node", |frame| match frame {
            ServerFrame::Read { notification_ids } => Some(notification_ids.clone()),
            _ => None,
        })
        .await;
    assert_eq!(told.len(), 2, "{told:?}");

    // Disabled through node B's admin API: Marie's sockets on A and C close at once.
    let admin = a.create_key("dupont", true).await;
    let reply = reqwest::Client::new()
        .post(format!("{}/v1/users/{}/disable", b.base_url(), marie.email))
        .bearer_auth(&admin)
        .send()
        .await
        .expect("node B answers");
    assert_eq!(reply.status().as_u16(), 200);
    for (node, socket) in [("A", &mut on_a), ("C", &mut on_c)] {
        let (closed, frames) = socket.expect_close(STEP).await;
        assert_eq!(
            closed.code,
            Some(4101),
            "node {node}: {closed:?} after {frames:?}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_killed_under_a_steady_publisher_loses_nothing() {
    let cluster = PgCluster::start().expect("PostgreSQL starts (cargo xtask setup installs it)");
    let (mut a, b, c) = three_nodes(&cluster).await;
    let paul = a.user("dupont", 1).clone();
    let token = a.api().login(&paul).await.access_token;
    let (mut on_a, _, _) = WsClient::connect_ready(&a.ws_url(), &token, BTreeMap::new()).await;

    let mut publisher =
        ContinuousPublisher::start(b.api(), b.key("dupont").to_owned(), paul.stream());
    publisher
        .wait_acknowledged(40, Duration::from_secs(60))
        .await;
    a.kill_hard().await;
    let (_, before) = on_a.expect_close(STEP).await;
    let mut received: Vec<_> = before.iter().filter_map(as_delivered).collect();
    let positions = on_a.positions();

    // The device resumes on C (a load balancer would send it there) while B goes on.
    let (mut on_c, welcome, catch_up) =
        WsClient::connect_ready(&c.ws_url(), &token, positions).await;
    assert!(
        welcome.streams.iter().all(|s| s.recovered),
        "positions taken on A are valid on C: {welcome:?}"
    );
    received.extend(catch_up.notifications);
    publisher
        .wait_acknowledged(80, Duration::from_secs(60))
        .await;
    let acknowledged = publisher.finish().await;
    let missing = acknowledged.len() - received.len().min(acknowledged.len());
    received.extend(on_c.recv_notifications(missing, STEP).await);

    let offsets: Vec<u64> = received.iter().map(|d| d.offset).collect();
    assert_consecutive(&offsets, 1, "before the kill on A, then on C");
    let ids: Vec<&str> = received
        .iter()
        .map(|d| d.notification.id.as_str())
        .collect();
    let expected: Vec<&str> = acknowledged.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, expected, "exactly the acknowledged set, in order");
    assert!(
        on_c.try_next_event(Duration::from_millis(300))
            .await
            .is_none_or(|event| !matches!(
                event,
                tocsin_e2e::ws::WsEvent::Frame(ServerFrame::Notification { .. })
            )),
        "nothing more than what was acknowledged"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_cut_from_the_database_stops_acknowledging_and_its_clients_miss_nothing() {
    let cluster = PgCluster::start().expect("PostgreSQL starts (cargo xtask setup installs it)");
    let url = cluster
        .create_database("tocsin")
        .expect("the database can be created");
    let a = Gateway::start(GatewayOptions {
        database: Some(url.clone()),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    })
    .await;
    // Node C reaches the same database through a proxy that can black-hole the link.
    let proxy = tocsin_e2e::proxy::Proxy::start(format!("127.0.0.1:{}", cluster.port())).await;
    let through_proxy = url.replace(&format!("127.0.0.1:{}", cluster.port()), &proxy.addr);
    let c = a.another_node_on(Some(&through_proxy)).await;
    let marie = a.user("dupont", 0).clone();
    let token = c.api().login(&marie).await.access_token;
    let (mut on_c, _, _) = WsClient::connect_ready(&c.ws_url(), &token, BTreeMap::new()).await;
    let first = a
        .api()
        .publish_ok(a.key("dupont"), &email(&marie.stream(), "before"))
        .await;
    on_c.wait_notification(&first.id, STEP).await;

    proxy.freeze();
    let mut published = vec![first.id.clone()];
    for n in 1..=3 {
        let reply = a
            .api()
            .publish_ok(
                a.key("dupont"),
                &email(&marie.stream(), &format!("during #{n}")),
            )
            .await;
        published.push(reply.id);
    }
    // C acknowledges nothing it cannot commit, and says why.
    let refused = c
        .api()
        .publish(c.key("dupont"), &email(&marie.stream(), "on C"))
        .await;
    assert_eq!(refused.status.as_u16(), 503, "{:?}", refused.body);
    tocsin_e2e::poll_until(Duration::from_secs(30), "C not ready while cut", || async {
        (c.api().get("/readyz").await.status.as_u16() == 503).then_some(())
    })
    .await;
    // C, deaf, sends its device away; the device resumes on A with everything.
    let (closed, _) = on_c.expect_close(Duration::from_secs(40)).await;
    assert_eq!(closed.code, Some(4000), "{closed:?}");
    let (_on_a, _, catch_up) = WsClient::connect_ready(&a.ws_url(), &token, on_c.positions()).await;
    let mut got: Vec<String> = vec![first.id.clone()];
    got.extend(
        catch_up
            .notifications
            .iter()
            .map(|d| d.notification.id.clone()),
    );
    assert_eq!(got, published, "nothing published during the cut is missed");

    proxy.thaw();
    tocsin_e2e::poll_until(Duration::from_secs(30), "C ready again", || async {
        (c.api().get("/readyz").await.status.as_u16() == 200).then_some(())
    })
    .await;
    c.api()
        .publish_ok(c.key("dupont"), &email(&marie.stream(), "after"))
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_restart_under_a_steady_publisher_is_ridden_out_by_every_node() {
    let mut cluster =
        PgCluster::start().expect("PostgreSQL starts (cargo xtask setup installs it)");
    let (a, b, c) = three_nodes(&cluster).await;
    let paul = a.user("dupont", 1).clone();
    let key = a.key("dupont").to_owned();
    let token = a.api().login(&paul).await.access_token;
    let (mut on_b, _, _) = WsClient::connect_ready(&b.ws_url(), &token, BTreeMap::new()).await;
    let (mut on_c, _, _) = WsClient::connect_ready(&c.ws_url(), &token, BTreeMap::new()).await;
    let mut publisher = RetryingPublisher::start(
        a.api(),
        key.clone(),
        paul.stream(),
        "through a restart",
        150,
        Duration::from_millis(10),
    );
    publisher
        .wait_acknowledged(30, Duration::from_secs(60))
        .await;

    cluster.kill().expect("PostgreSQL is killed");
    let refused = a
        .api()
        .publish(&key, &email(&paul.stream(), "while down"))
        .await;
    assert_eq!(
        refused.status.as_u16(),
        503,
        "never a 2xx without a commit: {:?}",
        refused.body
    );
    cluster
        .restart()
        .expect("PostgreSQL starts again after the crash");
    let acknowledged = publisher.finish(Duration::from_secs(90)).await;
    for (name, node) in [("A", &a), ("B", &b), ("C", &c)] {
        let api = node.api();
        poll_until(
            Duration::from_secs(30),
            &format!("node {name} ready again"),
            || async { (api.get("/readyz").await.status.as_u16() == 200).then_some(()) },
        )
        .await;
    }
    for (name, device) in [("B", &mut on_b), ("C", &mut on_c)] {
        let got = device
            .recv_notifications(acknowledged.len(), Duration::from_secs(60))
            .await;
        let offsets: Vec<u64> = got.iter().map(|d| d.offset).collect();
        assert_consecutive(&offsets, 1, &format!("the device on {name}"));
        let ids: Vec<&str> = got.iter().map(|d| d.notification.id.as_str()).collect();
        assert_eq!(
            ids, acknowledged,
            "the device on node {name} holds exactly the acknowledged set, in order"
        );
    }
}
