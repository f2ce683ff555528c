//! Three gateway nodes behind Debian's HAProxy, configured as docs/OPERATIONS.md says
//! (leastconn, no sticky sessions, health checks on `/readyz`), with the real client
//! engine and a publisher that both know only HAProxy's address: the node holding the
//! client's socket is SIGKILLed (a crash), or drained with SIGTERM (an administrator
//! taking it out), under a steady publisher; the client comes back through HAProxy on
//! another node and ends with exactly the acknowledged set, in order, none twice.

use std::time::Duration;

use tocsin_e2e::client::{ClientOptions, TestClient};
use tocsin_e2e::http::Api;
use tocsin_e2e::publisher::RetryingPublisher;
use tocsin_e2e::{Gateway, poll_until};
use tocsin_harness::haproxy::Haproxy;
use tocsin_harness::postgres::PgCluster;

const LONG: Duration = Duration::from_secs(60);

/// How many WebSocket connections `gw` holds now, from its `/metrics`.
async fn open_connections(gw: &Gateway) -> f64 {
    gw.metric_total("tocsin_connections_open").await
}

/// How the client's node goes away.
#[derive(Debug, Clone, Copy)]
enum Leaves {
    /// SIGKILL: no close frame, no drain.
    Crash,
    /// SIGTERM: its sockets close with 4000 (going away) and it exits once drained.
    Drain,
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_haproxy_the_client_rides_out_its_node_killed_with_exactly_the_acknowledged_set() {
    rides_out(Leaves::Crash).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn behind_haproxy_draining_the_clients_node_moves_it_to_another_without_loss() {
    rides_out(Leaves::Drain).await;
}

async fn rides_out(leaves: Leaves) {
    let cluster = PgCluster::start().expect("PostgreSQL starts (cargo xtask setup installs it)");
    let (a, b, c) = crate::cluster::three_nodes(&cluster).await;
    let dir = tempfile::tempdir().expect("a directory for HAProxy");
    let haproxy = Haproxy::start(&[a.addr(), b.addr(), c.addr()], dir.path())
        .await
        .expect("HAProxy starts in front of the nodes (cargo xtask setup installs it)");
    let mut nodes = [a, b, c];
    let marie = nodes[0].user("dupont", 0).clone();
    let key = nodes[0].key("dupont").to_owned();
    let mut client =
        TestClient::sign_in(&haproxy.base_url(), &marie, ClientOptions::default()).await;
    client.wait_connected(LONG).await;

    // The firm's software, through HAProxy too: a publish whose node died before
    // answering is retried with its idempotency key until one acknowledges it.
    let mut publisher = RetryingPublisher::start(
        Api::new(haproxy.base_url()),
        key,
        marie.stream(),
        "through haproxy",
        200,
        Duration::from_millis(5),
    );
    publisher.wait_acknowledged(60, LONG).await;

    // The node HAProxy gave the client's socket to.
    let mut holder = None;
    for (index, node) in nodes.iter().enumerate() {
        if open_connections(node).await >= 1.0 {
            holder = Some(index);
        }
    }
    let holder = holder.expect("one node holds the client's WebSocket");
    match leaves {
        Leaves::Crash => nodes[holder].kill_hard().await,
        Leaves::Drain => {
            nodes[holder].terminate();
            let status = nodes[holder].wait_exit(LONG).await;
            assert!(status.success(), "a drained node exits cleanly: {status}");
        }
    }
    let others: Vec<&Gateway> = (0..3).filter(|&i| i != holder).map(|i| &nodes[i]).collect();
    poll_until(LONG, "the client back on another node", || async {
        for node in &others {
            if open_connections(node).await >= 1.0 {
                return Some(());
            }
        }
        None
    })
    .await;

    let acked = publisher.finish(LONG).await;
    let context = format!(
        " (HAProxy config {}, log:\n{})",
        haproxy.config().display(),
        haproxy.log_tail(30)
    );
    client.assert_holds_exactly(&acked, LONG, &context).await;
    client.stop().await;
}
