//! A seeded, randomized soak of three gateway nodes on one real PostgreSQL database.
//!
//! From one seed (`TOCSIN_SOAK_SEED`, else taken from the clock and printed), for
//! `TOCSIN_CLUSTER_SOAK_SECS` seconds (30 by default; longer runs with the variable):
//! two publishers publish to four users through random live nodes, each publish
//! retried with its idempotency key on another node until one acknowledges it; each
//! user's device holds a WebSocket to a random live node and, when that node dies,
//! resumes on another from its last positions; meanwhile nodes are SIGKILLed and
//! restarted at random, one at a time or two. At the end, with every node back, each
//! device must hold exactly the acknowledged notifications of its stream: in offset
//! order from 1, none twice, none missing.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tocsin_e2e::http::Api;
use tocsin_e2e::publisher::{Attempt, attempt_publish, email};
use tocsin_e2e::ws::{ConnectOptions, WsClient, WsEvent, as_delivered};
use tocsin_e2e::{Delivered, Gateway, GatewayOptions, UserFixture};
use tocsin_harness::postgres::PgCluster;
use tocsin_protocol::frames::{ClientFrame, ServerFrame};
use tokio_tungstenite::tungstenite::Message;

use crate::soak::{announce_seed_on_panic, seed_from_env};

const DEFAULT_SECS: u64 = 30;
/// How long the end may take to settle (every device caught up).
const SETTLE: Duration = Duration::from_secs(60);
/// How long one publish may stay unacknowledged on every node.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(60);

fn secs_from_env() -> u64 {
    std::env::var(tocsin_harness::env::CLUSTER_SOAK_SECS)
        .ok()
        .map(|text| {
            text.trim().parse().unwrap_or_else(|e| {
                panic!("TOCSIN_CLUSTER_SOAK_SECS={text:?} is not a number: {e}")
            })
        })
        .unwrap_or(DEFAULT_SECS)
}

/// What the publishers and devices know of a node: where it is, whether it runs.
struct Node {
    api: Api,
    ws_url: String,
    alive: AtomicBool,
}

type Nodes = Arc<Vec<Node>>;

/// A live node, chosen at random (or `None` while all are down).
fn pick(nodes: &Nodes, rng: &mut StdRng, not: Option<usize>) -> Option<usize> {
    let live: Vec<usize> = (0..nodes.len())
        .filter(|&i| nodes[i].alive.load(Ordering::SeqCst) && Some(i) != not)
        .collect();
    (!live.is_empty()).then(|| live[rng.random_range(0..live.len())])
}

/// Publishes until stopped; returns what was acknowledged: `(user index, id, offset)`.
fn spawn_publisher(
    seed: u64,
    nodes: Nodes,
    key: String,
    users: Vec<UserFixture>,
    stop: Arc<AtomicBool>,
    name: &'static str,
) -> tokio::task::JoinHandle<Vec<(usize, String, u64)>> {
    tokio::spawn(async move {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut acknowledged = Vec::new();
        let mut n = 0u64;
        while !stop.load(Ordering::SeqCst) {
            n += 1;
            let user = rng.random_range(0..users.len());
            let mut request = email(&users[user].stream(), &format!("{name} #{n}"));
            request.idempotency_key = Some(format!("{name}-{n}"));
            let started = Instant::now();
            let mut last = None;
            loop {
                assert!(
                    started.elapsed() < PUBLISH_PATIENCE,
                    "{name} #{n} unacknowledged on every node for {PUBLISH_PATIENCE:?}: {last:?}"
                );
                let Some(node) = pick(&nodes, &mut rng, last.take()) else {
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                };
                match attempt_publish(&nodes[node].api, &key, &request).await {
                    Attempt::Acknowledged(reply) => {
                        acknowledged.push((user, reply.id, reply.offset));
                        break;
                    }
                    Attempt::Unavailable(_) => {
                        last = Some(node);
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                    Attempt::Refused(status, body) => {
                        panic!("{name} #{n} refused for good by node {node}: {status} {body}")
                    }
                }
            }
            tokio::time::sleep(Duration::from_millis(rng.random_range(2..20))).await;
        }
        acknowledged
    })
}

/// A device of one user: connected to a live node, resuming on another when it dies;
/// every notification it receives lands in `held`. `subscribed` is told once its first
/// session is caught up: a device without positions starts at the stream's head (a
/// new device is not replayed the past), so publishing must wait for it.
fn spawn_device(
    seed: u64,
    nodes: Nodes,
    token: String,
    held: Arc<Mutex<Vec<Delivered>>>,
    stop: Arc<AtomicBool>,
    subscribed: tokio::sync::oneshot::Sender<()>,
) -> tokio::task::JoinHandle<usize> {
    tokio::spawn(async move {
        let mut rng = StdRng::seed_from_u64(seed);
        let mut positions = BTreeMap::new();
        let mut sessions = 0;
        let mut subscribed = Some(subscribed);
        while !stop.load(Ordering::SeqCst) {
            let Some(node) = pick(&nodes, &mut rng, None) else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let options = ConnectOptions::bearer(&token);
            let Ok(mut client) = WsClient::try_connect(&nodes[node].ws_url, &options).await else {
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            };
            let hello = ClientFrame::Hello {
                positions: positions.clone(),
                client: Some("tocsin-e2e-cluster-soak".to_owned()),
                features: Vec::new(),
            };
            let text = serde_json::to_string(&hello).expect("hello serialises");
            if client.try_send_raw(Message::text(text)).await.is_err() {
                continue;
            }
            sessions += 1;
            while !stop.load(Ordering::SeqCst) {
                match client.try_next_event(Duration::from_millis(200)).await {
                    Some(WsEvent::Frame(ServerFrame::CaughtUp { .. })) => {
                        if let Some(subscribed) = subscribed.take() {
                            // The soak may have given up waiting: nothing to tell then.
                            let _ = subscribed.send(());
                        }
                    }
                    Some(WsEvent::Frame(frame)) => {
                        if let Some(delivered) = as_delivered(&frame) {
                            held.lock().expect("not poisoned").push(delivered);
                        }
                    }
                    Some(WsEvent::Closed(_)) => break,
                    None => {}
                }
            }
            positions = client.positions();
        }
        sessions
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_soak_of_publishers_devices_and_node_kills() {
    let seed = seed_from_env();
    announce_seed_on_panic(seed);
    let secs = secs_from_env();
    eprintln!("[cluster soak] seed {seed} (TOCSIN_SOAK_SEED={seed}), chaos for {secs} s");
    let cluster = PgCluster::start().expect("PostgreSQL starts (cargo xtask setup installs it)");
    let url = cluster
        .create_database("soak")
        .expect("the database can be created");
    let first = Gateway::start(GatewayOptions {
        database: Some(url),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie", "paul", "anne", "luc"])])
    })
    .await;
    let mut gateways = vec![first.another_node().await, first.another_node().await];
    gateways.insert(0, first);
    let nodes: Nodes = Arc::new(
        gateways
            .iter()
            .map(|gw| Node {
                api: gw.api(),
                ws_url: gw.ws_url(),
                alive: AtomicBool::new(true),
            })
            .collect(),
    );
    let users: Vec<UserFixture> = (0..4)
        .map(|i| gateways[0].user("dupont", i).clone())
        .collect();
    let key = gateways[0].key("dupont").to_owned();
    let stop_publishing = Arc::new(AtomicBool::new(false));
    let stop_devices = Arc::new(AtomicBool::new(false));
    let mut held = Vec::new();
    let mut devices = Vec::new();
    let mut devices_ready = Vec::new();
    for (i, user) in users.iter().enumerate() {
        let (subscribed, ready) = tokio::sync::oneshot::channel();
        devices_ready.push(ready);
        let token = nodes[0].api.login(user).await.access_token;
        let inbox = Arc::new(Mutex::new(Vec::new()));
        devices.push(spawn_device(
            seed ^ (i as u64 + 1),
            nodes.clone(),
            token,
            inbox.clone(),
            stop_devices.clone(),
            subscribed,
        ));
        held.push(inbox);
    }
    for ready in devices_ready {
        tokio::time::timeout(Duration::from_secs(30), ready)
            .await
            .expect("every device subscribes within 30 s")
            .expect("a device task ended before subscribing");
    }
    let publishers = [
        spawn_publisher(
            seed.rotate_left(7),
            nodes.clone(),
            key.clone(),
            users.clone(),
            stop_publishing.clone(),
            "p1",
        ),
        spawn_publisher(
            seed.rotate_left(13),
            nodes.clone(),
            key.clone(),
            users.clone(),
            stop_publishing.clone(),
            "p2",
        ),
    ];

    // Chaos: SIGKILL a random live node (keeping one up), or bring a dead one back.
    let mut rng = StdRng::seed_from_u64(seed);
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut kills = 0;
    while Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(rng.random_range(1_000..4_000))).await;
        let dead: Vec<usize> = (0..3)
            .filter(|&i| !nodes[i].alive.load(Ordering::SeqCst))
            .collect();
        if dead.len() < 2 && rng.random_bool(0.6) {
            let Some(victim) = pick(&nodes, &mut rng, None) else {
                continue;
            };
            nodes[victim].alive.store(false, Ordering::SeqCst);
            gateways[victim].kill_hard().await;
            kills += 1;
        } else if let Some(&back) = dead.first() {
            gateways[back].restart_on_same_port().await;
            nodes[back].alive.store(true, Ordering::SeqCst);
        }
    }
    stop_publishing.store(true, Ordering::SeqCst);
    for (i, gw) in gateways.iter_mut().enumerate() {
        if !nodes[i].alive.load(Ordering::SeqCst) {
            gw.restart_on_same_port().await;
            nodes[i].alive.store(true, Ordering::SeqCst);
        }
    }
    let mut acknowledged: HashMap<usize, Vec<(String, u64)>> = HashMap::new();
    for publisher in publishers {
        for (user, id, offset) in publisher.await.expect("the publisher did not panic") {
            acknowledged.entry(user).or_default().push((id, offset));
        }
    }
    let total: usize = acknowledged.values().map(Vec::len).sum();
    eprintln!("[cluster soak] seed {seed}: {total} acknowledged, {kills} node kills");
    assert!(
        kills >= 1 && total >= 50,
        "the soak did too little: {kills} kills, {total} publishes"
    );

    // Settle: every device holds as many as were acknowledged for it.
    let settled = Instant::now() + SETTLE;
    while (0..users.len()).any(|u| {
        held[u].lock().expect("not poisoned").len() < acknowledged.get(&u).map_or(0, Vec::len)
    }) && Instant::now() < settled
    {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A moment more, for anything delivered twice to show.
    tokio::time::sleep(Duration::from_millis(500)).await;
    stop_devices.store(true, Ordering::SeqCst);
    for device in devices {
        device.await.expect("the device did not panic");
    }
    for (u, user) in users.iter().enumerate() {
        let mut expected = acknowledged.remove(&u).unwrap_or_default();
        expected.sort_by_key(|(_, offset)| *offset);
        let got: Vec<(String, u64)> = held[u]
            .lock()
            .expect("not poisoned")
            .iter()
            .map(|d| (d.notification.id.clone(), d.offset))
            .collect();
        assert_eq!(
            got, expected,
            "[seed {seed}] {}'s device holds exactly the acknowledged set, in offset order",
            user.email
        );
        let offsets: Vec<u64> = got.iter().map(|(_, offset)| *offset).collect();
        tocsin_e2e::assert_consecutive(&offsets, 1, &format!("{}'s stream", user.email));
    }
}
