//! A seeded, randomized soak of the real client engine against the real gateway.
//!
//! From one seed (`TOCSIN_SOAK_SEED`, else taken from the clock and printed), a
//! schedule of short random steps runs for `TOCSIN_SOAK_SECS` seconds (80 by default:
//! about 90 s with set-up and settling): gateway SIGKILLs and restarts on the same
//! port, black holes and resets of the client's link (through the fault proxy), and
//! the user's actions of every kind (mark read, mark all read of everything or one
//! kind, proposal answers — twice for some, as a double click would), online and
//! offline. Meanwhile a publisher publishes every stored kind (mail, dossier, proposal,
//! system, critical deadline) to the user's and the firm's streams, singly and in
//! batches, retrying each with its idempotency key until the gateway acknowledges it.
//!
//! Once everything settled (gateway and link up, the engine live and caught up with
//! every stream's head, outbox empty), it checks:
//! 1. delivery: each acknowledged notification is held once, at the acknowledged
//!    stream/epoch/offset; each stream held is the server's history exactly (offsets
//!    consecutive from 1, same ids); the engine surfaced each once, in offset order;
//! 2. actions: each was answered once and applied once (one `proposal-status-changed`
//!    per answered proposal, the second answer refused as a conflict; local proposal
//!    status agrees), the outbox is empty;
//! 3. read state: server and client unread counts are equal, and every notification's
//!    read flag on both sides is what the actions imply;
//! 4. mark-all-read: each click covered what the client held when it was made and
//!    nothing more, so a critical deadline that arrived after every click covering it,
//!    and was not marked read on its own, is unread on the server and locally.
//!
//! The schedule is reproducible from the seed; the timing of the processes is not, so
//! a seed that failed once shows the same kind of run, not the same interleaving.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use rand::rngs::StdRng;
use rand::seq::IndexedRandom;
use rand::{Rng, SeedableRng};
use tocsin_client::engine::Command;
use tocsin_client::events::{ConnectionState, EngineEvent};
use tocsin_e2e::client::{ClientOptions, TestClient};
use tocsin_e2e::http::Api;
use tocsin_e2e::proxy::Proxy;
use tocsin_e2e::publisher::{
    Attempt, attempt_publish, attempt_publish_batch, critical_deadline, dossier, email, proposal,
    system,
};
use tocsin_e2e::{Gateway, GatewayOptions};
use tocsin_protocol::frames::{ClientFrame, ProposalResponse};
use tocsin_protocol::http::{HistoryItem, PublishRequest, PublishResponse};
use tocsin_protocol::notification::{ProposalStatus, SystemLevel};
use tocsin_protocol::{ErrorBody, ErrorCode, Kind, NotificationData, Position, StreamName};
use tokio::sync::watch;

/// The chaos phase's default length; set-up and settling add about ten seconds.
const DEFAULT_SECS: u64 = 80;
/// How long the end of the run may take to settle (publisher done, client caught up).
const SETTLE: Duration = Duration::from_secs(45);
/// How long one publish may go unacknowledged before the run fails.
const PUBLISH_PATIENCE: Duration = Duration::from_secs(45);
/// The kinds a user can "mark all read" one at a time (every stored kind).
const STORED_KINDS: [Kind; 6] = [
    Kind::EmailReceived,
    Kind::DossierUpdated,
    Kind::DeadlineAlert,
    Kind::ProposalCreated,
    Kind::ProposalStatusChanged,
    Kind::SystemNotification,
];

pub(crate) fn seed_from_env() -> u64 {
    match std::env::var(tocsin_harness::env::SOAK_SEED) {
        Ok(text) => {
            let text = text.trim();
            let parsed = match text.strip_prefix("0x") {
                Some(hex) => u64::from_str_radix(hex, 16),
                None => text.parse(),
            };
            parsed.unwrap_or_else(|e| panic!("TOCSIN_SOAK_SEED={text:?} is not a u64: {e}"))
        }
        Err(_) => {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .expect("the clock is after 1970");
            now.as_secs() ^ u64::from(now.subsec_nanos()).rotate_left(32)
        }
    }
}

fn secs_from_env() -> u64 {
    std::env::var(tocsin_harness::env::SOAK_SECS)
        .ok()
        .map(|text| {
            text.trim()
                .parse()
                .unwrap_or_else(|e| panic!("TOCSIN_SOAK_SECS={text:?} is not a number: {e}"))
        })
        .unwrap_or(DEFAULT_SECS)
}

/// Under nextest each test is its own process: a panic anywhere (the harness, a
/// task) also prints how to rerun this seed.
pub(crate) fn announce_seed_on_panic(seed: u64) {
    if std::env::var("NEXTEST_EXECUTION_MODE").as_deref() != Ok("process-per-test") {
        return;
    }
    let previous = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        previous(info);
        eprintln!("[soak] seed {seed}: rerun with TOCSIN_SOAK_SEED={seed}");
    }));
}

// ---------------------------------------------------------------------------------
// What the engine reported, gathered by a task that drains its events (the engine
// waits when its event channel is full, so somebody must always read it).

/// One `ActionResult`.
#[derive(Debug, Clone)]
struct ResultSeen {
    id: String,
    action: Option<ClientFrame>,
    error: Option<ErrorBody>,
}

/// One surfaced notification.
#[derive(Debug, Clone)]
struct Surfaced {
    stream: StreamName,
    id: String,
    proposal_id: Option<String>,
}

#[derive(Debug, Default)]
struct Observed {
    notifications: Vec<Surfaced>,
    results: Vec<ResultSeen>,
    connected: bool,
    connects: usize,
    offline_states: usize,
    signed_out: Option<String>,
    warnings: Vec<String>,
}

fn spawn_collector(
    mut events: tokio::sync::mpsc::Receiver<EngineEvent>,
    observed: Arc<Mutex<Observed>>,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        while let Some(event) = events.recv().await {
            let mut seen = observed.lock().expect("observed lock");
            match event {
                EngineEvent::Notification {
                    stream,
                    notification,
                    ..
                } => {
                    let proposal_id = match &notification.data {
                        NotificationData::ProposalCreated(p) => Some(p.proposal_id.clone()),
                        _ => None,
                    };
                    seen.notifications.push(Surfaced {
                        stream,
                        id: notification.id.clone(),
                        proposal_id,
                    });
                }
                EngineEvent::ActionResult { id, action, error } => {
                    seen.results.push(ResultSeen {
                        id,
                        action: action.map(|frame| *frame),
                        error,
                    });
                }
                EngineEvent::State(ConnectionState::Connected { .. }) => {
                    seen.connected = true;
                    seen.connects += 1;
                }
                EngineEvent::State(ConnectionState::SignedOut { reason }) => {
                    seen.connected = false;
                    seen.signed_out = Some(reason);
                }
                EngineEvent::State(ConnectionState::Offline { .. }) => {
                    seen.connected = false;
                    seen.offline_states += 1;
                }
                EngineEvent::State(ConnectionState::Connecting { .. }) => seen.connected = false,
                EngineEvent::Warning(text) => seen.warnings.push(text),
                // Nothing here loses history: a rebuild would mean a resume was refused.
                EngineEvent::Rebuilding { stream, .. } => {
                    seen.warnings
                        .push(format!("{stream} was rebuilt from history"));
                }
                // Counts and the like; new events of a newer engine are not this test's.
                _ => {}
            }
        }
    })
}

// ---------------------------------------------------------------------------------
// The publisher: every stored kind, to the user's and the firm's streams, retried
// with its idempotency key until acknowledged.

/// An acknowledged publish.
#[derive(Debug, Clone)]
struct Acked {
    key: String,
    kind: Kind,
    response: PublishResponse,
    /// When the acknowledgement came.
    at: Instant,
    /// Attempts it took (more than one: the gateway was down or restarting).
    attempts: u32,
}

struct PublisherSetup {
    api: Api,
    base: String,
    key: String,
    user_stream: String,
    tenant_stream: String,
    seed: u64,
}

fn next_request(rng: &mut StdRng, n: u64, setup: &PublisherSetup) -> (PublishRequest, Kind) {
    let to = if rng.random_bool(0.75) {
        &setup.user_stream
    } else {
        &setup.tenant_stream
    };
    let roll = rng.random_range(0..100);
    let (mut request, kind) = match roll {
        0..30 => (email(to, &format!("soak mail #{n}")), Kind::EmailReceived),
        30..48 => (dossier(to, &format!("2026-{n:04}")), Kind::DossierUpdated),
        48..63 => (proposal(to, &format!("p-{n}")), Kind::ProposalCreated),
        63..78 => {
            let level = *[
                SystemLevel::Info,
                SystemLevel::Success,
                SystemLevel::Warning,
                SystemLevel::Error,
            ]
            .choose(rng)
            .expect("levels");
            (
                system(to, level, &format!("soak notice #{n}")),
                Kind::SystemNotification,
            )
        }
        _ => (
            critical_deadline(to, &format!("d-{n}")),
            Kind::DeadlineAlert,
        ),
    };
    request.idempotency_key = Some(format!("soak-{}-{n}", setup.seed));
    (request, kind)
}

fn spawn_publisher(
    setup: PublisherSetup,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<Vec<Acked>> {
    tokio::spawn(async move {
        let seed = setup.seed;
        let mut rng = StdRng::seed_from_u64(seed ^ 0x5eed_0f5a_b115_e5e5);
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(20))
            .build()
            .expect("a reqwest client");
        let mut acked = Vec::new();
        let mut n = 0u64;
        while !*stop.borrow() {
            let count = if rng.random_bool(0.1) {
                rng.random_range(2..=6)
            } else {
                1
            };
            let batch: Vec<(PublishRequest, Kind)> = (0..count)
                .map(|_| {
                    n += 1;
                    next_request(&mut rng, n, &setup)
                })
                .collect();
            let requests: Vec<PublishRequest> = batch.iter().map(|(r, _)| r.clone()).collect();
            let first_try = Instant::now();
            let mut attempts = 0u32;
            let responses = loop {
                attempts += 1;
                let attempt = if count == 1 {
                    match attempt_publish(&setup.api, &setup.key, &requests[0]).await {
                        Attempt::Acknowledged(one) => Attempt::Acknowledged(vec![one]),
                        Attempt::Unavailable(why) => Attempt::Unavailable(why),
                        Attempt::Refused(status, why) => Attempt::Refused(status, why),
                    }
                } else {
                    attempt_publish_batch(&http, &setup.base, &setup.key, &requests).await
                };
                match attempt {
                    Attempt::Acknowledged(responses) => break responses,
                    Attempt::Refused(status, why) => panic!(
                        "[soak seed {seed}] the gateway refused publish #{n} for good (HTTP {status}): {why}"
                    ),
                    Attempt::Unavailable(why) => {
                        assert!(
                            first_try.elapsed() < PUBLISH_PATIENCE,
                            "[soak seed {seed}] publish #{n} unacknowledged for {PUBLISH_PATIENCE:?}: {why}"
                        );
                        tokio::time::sleep(Duration::from_millis(25)).await;
                    }
                }
            };
            assert_eq!(
                responses.len(),
                batch.len(),
                "[soak seed {seed}] one result per published notification"
            );
            let at = Instant::now();
            for ((request, kind), response) in batch.into_iter().zip(responses) {
                acked.push(Acked {
                    key: request.idempotency_key.clone().unwrap_or_default(),
                    kind,
                    response,
                    at,
                    attempts,
                });
            }
            let pause = Duration::from_millis(rng.random_range(5..70));
            // Stop promptly, but never in the middle of an unacknowledged publish.
            let _ = tokio::time::timeout(pause, stop.wait_for(|stop| *stop)).await;
        }
        acked
    })
}

// ---------------------------------------------------------------------------------
// What the schedule did.

/// One "mark all read" click.
#[derive(Debug, Clone)]
struct MarkAllClick {
    /// Its number in the run, for messages.
    index: usize,
    kind: Option<Kind>,
    /// What the client held just before the click.
    before: BTreeMap<StreamName, Position>,
    /// What it held once the engine had taken the click.
    after: BTreeMap<StreamName, Position>,
    /// The engine's action id for it.
    action_id: String,
    /// The positions the queued action carried.
    up_to: BTreeMap<StreamName, Position>,
    at: Instant,
    offline: bool,
}

#[derive(Debug, Default)]
struct Stats {
    steps: usize,
    kills: usize,
    freezes: usize,
    resets: usize,
    network_changes: usize,
    mark_reads: usize,
    mark_reads_offline: usize,
    responds: usize,
    responds_offline: usize,
    double_answers: usize,
    max_outbox: usize,
}

/// Positions per stream, as `hello` and `mark_all_read` carry them.
type Positions = BTreeMap<StreamName, Position>;

/// A `mark_all_read` frame's action id and positions.
fn mark_all_id(frame: &ClientFrame) -> Option<(&str, Option<&Positions>)> {
    match frame {
        ClientFrame::MarkAllRead { id, up_to, .. } => Some((id.as_str(), up_to.as_ref())),
        _ => None,
    }
}

/// Waits until the engine has taken the latest "mark all read" (it shows in the
/// outbox, or it was answered already); returns its id and the positions it carries.
async fn identify_mark_all(
    client: &TestClient,
    observed: &Arc<Mutex<Observed>>,
    known: &HashSet<String>,
    seed: u64,
) -> (String, Option<BTreeMap<StreamName, Position>>) {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        for frame in client.outbox_actions() {
            if let Some((id, up_to)) = mark_all_id(&frame)
                && !known.contains(id)
            {
                return (id.to_owned(), up_to.cloned());
            }
        }
        {
            let seen = observed.lock().expect("observed lock");
            for result in &seen.results {
                if let Some((id, up_to)) = result.action.as_ref().and_then(mark_all_id)
                    && !known.contains(id)
                {
                    return (id.to_owned(), up_to.cloned());
                }
            }
        }
        assert!(
            Instant::now() < deadline,
            "[soak seed {seed}] the engine did not take a mark-all-read click within 20 s"
        );
        tokio::time::sleep(Duration::from_millis(3)).await;
    }
}

/// The user clicks "mark all read" (of `kind`): recorded with what the client held
/// just before and once the engine took it, and the positions the action carries.
#[allow(clippy::too_many_arguments)]
async fn click_mark_all(
    client: &TestClient,
    observed: &Arc<Mutex<Observed>>,
    known: &mut HashSet<String>,
    clicks: &mut Vec<MarkAllClick>,
    kind: Option<Kind>,
    offline: bool,
    seed: u64,
) {
    let before = client.positions();
    let at = Instant::now();
    assert!(
        client.handle.send(Command::MarkAllRead(kind)).await,
        "[soak seed {seed}] the engine stopped"
    );
    let (action_id, up_to) = identify_mark_all(client, observed, known, seed).await;
    let after = client.positions();
    known.insert(action_id.clone());
    clicks.push(MarkAllClick {
        index: clicks.len(),
        kind,
        before,
        after,
        action_id,
        up_to: up_to.unwrap_or_default(),
        at,
        offline,
    });
}

/// Every item of a stream's history, oldest first, with its epoch and head.
async fn full_history(
    api: &Api,
    token: &str,
    stream: &str,
) -> (String, u64, u64, Vec<HistoryItem>) {
    let mut items = Vec::new();
    let mut after = None;
    loop {
        let page = api.history_ok(token, stream, after, Some(500)).await;
        items.extend(page.notifications);
        match page.next_after {
            Some(next) => after = Some(next),
            None => return (page.epoch, page.first, page.head, items),
        }
    }
}

fn covers(
    kind: Option<Kind>,
    up_to: &BTreeMap<StreamName, Position>,
    item_kind: Kind,
    stream: &StreamName,
    epoch: &str,
    offset: u64,
) -> bool {
    kind.is_none_or(|k| k == item_kind)
        && up_to
            .get(stream)
            .is_some_and(|p| p.epoch == epoch && offset <= p.offset)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn soak_random_faults_and_actions_against_the_real_gateway() {
    let seed = seed_from_env();
    let secs = secs_from_env();
    announce_seed_on_panic(seed);
    eprintln!("[soak] seed {seed} (TOCSIN_SOAK_SEED={seed}), chaos for {secs} s");
    let started = Instant::now();
    let mut rng = StdRng::seed_from_u64(seed);

    let mut gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let key = gw.key("dupont").to_owned();
    let api = gw.api();
    let user_stream: StreamName = marie.stream().parse().expect("user stream");
    let tenant_stream: StreamName = "tenant:dupont".parse().expect("tenant stream");
    let proxy = Proxy::start(gw.addr().to_owned()).await;
    let options = ClientOptions {
        heartbeat_interval: Duration::from_millis(500),
        heartbeat_timeout: Duration::from_millis(500),
        ..ClientOptions::default()
    };
    let mut client = TestClient::sign_in(&format!("http://{}", proxy.addr), &marie, options).await;
    client.wait_connected(Duration::from_secs(60)).await;
    let (_keep, dummy) = tokio::sync::mpsc::channel(1);
    let events = std::mem::replace(&mut client.events, dummy);
    let observed = Arc::new(Mutex::new(Observed::default()));
    {
        let mut seen = observed.lock().expect("observed lock");
        seen.connected = true;
        seen.connects = 1;
    }
    let collector = spawn_collector(events, observed.clone());

    let (stop_tx, stop_rx) = watch::channel(false);
    let publisher = spawn_publisher(
        PublisherSetup {
            api: api.clone(),
            base: format!("http://{}", gw.addr()),
            key: key.clone(),
            user_stream: user_stream.to_string(),
            tenant_stream: tenant_stream.to_string(),
            seed,
        },
        stop_rx,
    );

    // ---- The schedule.
    let mut stats = Stats::default();
    let mut marked: Vec<Vec<String>> = Vec::new();
    let mut responds: Vec<(String, ProposalResponse)> = Vec::new();
    let mut clicks: Vec<MarkAllClick> = Vec::new();
    let mut known_mark_alls: HashSet<String> = HashSet::new();
    let mut restart_at: Option<Instant> = None;
    let mut thaw_at: Option<Instant> = None;
    let chaos = Duration::from_secs(secs);
    let chaos_start = Instant::now();
    while chaos_start.elapsed() < chaos {
        stats.steps += 1;
        let now = Instant::now();
        if restart_at.is_some_and(|at| now >= at) {
            gw.restart_on_same_port().await;
            restart_at = None;
        }
        if thaw_at.is_some_and(|at| now >= at) {
            proxy.thaw();
            thaw_at = None;
        }
        let gateway_down = restart_at.is_some();
        let offline = gateway_down || thaw_at.is_some();
        let roll = rng.random_range(0..1000);
        match roll {
            0..25 if !gateway_down => {
                gw.kill_hard().await;
                stats.kills += 1;
                restart_at =
                    Some(Instant::now() + Duration::from_millis(rng.random_range(50..2000)));
            }
            25..45 if thaw_at.is_none() => {
                proxy.freeze();
                stats.freezes += 1;
                thaw_at = Some(Instant::now() + Duration::from_millis(rng.random_range(200..3000)));
            }
            45..60 if thaw_at.is_none() => {
                // A reset: the link dies under the open connection and comes back.
                proxy.freeze();
                tokio::time::sleep(Duration::from_millis(rng.random_range(0..40))).await;
                proxy.thaw();
                stats.resets += 1;
            }
            60..67 => {
                client.handle.send(Command::NetworkChanged).await;
                stats.network_changes += 1;
            }
            67..400 => {
                let candidates: Vec<String> = {
                    let seen = observed.lock().expect("observed lock");
                    let all = &seen.notifications;
                    let recent = &all[all.len().saturating_sub(30)..];
                    let count = rng.random_range(1..=3);
                    (0..count)
                        .filter_map(|_| {
                            let pool = if rng.random_bool(0.6) {
                                recent
                            } else {
                                &all[..]
                            };
                            pool.choose(&mut rng).map(|s| s.id.clone())
                        })
                        .collect()
                };
                let mut ids = candidates;
                if rng.random_bool(0.1)
                    && let Some(again) = marked.choose(&mut rng).and_then(|m| m.first()).cloned()
                {
                    ids.push(again);
                }
                if !ids.is_empty() {
                    assert!(
                        client.handle.send(Command::MarkRead(ids.clone())).await,
                        "[soak seed {seed}] the engine stopped"
                    );
                    marked.push(ids);
                    stats.mark_reads += 1;
                    stats.mark_reads_offline += usize::from(offline);
                }
            }
            400..520 => {
                let proposals: Vec<String> = {
                    let seen = observed.lock().expect("observed lock");
                    seen.notifications
                        .iter()
                        .filter_map(|s| s.proposal_id.clone())
                        .collect()
                };
                // In the order answered (a HashSet's order would not follow the seed).
                let mut answered: Vec<&String> = Vec::new();
                for (p, _) in &responds {
                    if !answered.contains(&p) {
                        answered.push(p);
                    }
                }
                let fresh: Vec<&String> =
                    proposals.iter().filter(|p| !answered.contains(p)).collect();
                let pick = if !fresh.is_empty() && rng.random_bool(0.85) {
                    fresh.choose(&mut rng).map(|p| (*p).clone())
                } else {
                    answered.choose(&mut rng).map(|p| (*p).clone())
                };
                if let Some(proposal_id) = pick {
                    let response = if rng.random_bool(0.5) {
                        ProposalResponse::Accept
                    } else {
                        ProposalResponse::Reject
                    };
                    stats.double_answers += usize::from(answered.contains(&&proposal_id));
                    assert!(
                        client
                            .handle
                            .send(Command::Respond {
                                proposal_id: proposal_id.clone(),
                                response,
                            })
                            .await,
                        "[soak seed {seed}] the engine stopped"
                    );
                    responds.push((proposal_id, response));
                    stats.responds += 1;
                    stats.responds_offline += usize::from(offline);
                }
            }
            // Users tidy up more when they cannot see anything new.
            520..600 if roll < 540 || offline => {
                let kind = if rng.random_bool(0.35) {
                    None
                } else if rng.random_bool(0.4) {
                    Some(Kind::DeadlineAlert)
                } else {
                    Some(*STORED_KINDS.choose(&mut rng).expect("kinds"))
                };
                click_mark_all(
                    &client,
                    &observed,
                    &mut known_mark_alls,
                    &mut clicks,
                    kind,
                    offline,
                    seed,
                )
                .await;
            }
            _ => {}
        }
        stats.max_outbox = stats.max_outbox.max(client.outbox_len());
        tokio::time::sleep(Duration::from_millis(rng.random_range(20..200))).await;
    }

    // ---- Settle: heal everything, finish publishing, wait for the client.
    let chaos_took = chaos_start.elapsed();
    if thaw_at.take().is_some() {
        proxy.thaw();
    }
    if restart_at.take().is_some() {
        gw.restart_on_same_port().await;
    }
    // The case check 4 is about, whatever the schedule drew: critical deadlines
    // published while the link is a black hole, then "mark all read" (deadlines) offline.
    proxy.freeze();
    let mut late = Vec::new();
    for n in 0..2 {
        let mut request = critical_deadline(&marie.stream(), &format!("d-late-{n}"));
        request.idempotency_key = Some(format!("soak-{seed}-late-{n}"));
        let first_try = Instant::now();
        let mut attempts = 0;
        let response = loop {
            attempts += 1;
            match attempt_publish(&api, &key, &request).await {
                Attempt::Acknowledged(response) => break response,
                Attempt::Refused(status, why) => {
                    panic!("[soak seed {seed}] late deadline refused (HTTP {status}): {why}")
                }
                Attempt::Unavailable(why) => {
                    assert!(
                        first_try.elapsed() < PUBLISH_PATIENCE,
                        "[soak seed {seed}] late deadline unacknowledged: {why}"
                    );
                    tokio::time::sleep(Duration::from_millis(25)).await;
                }
            }
        };
        late.push(Acked {
            key: request.idempotency_key.clone().unwrap_or_default(),
            kind: Kind::DeadlineAlert,
            response,
            at: Instant::now(),
            attempts,
        });
    }
    // Deadlines only, so the rest keeps the read state the schedule left.
    let kind = Some(Kind::DeadlineAlert);
    click_mark_all(
        &client,
        &observed,
        &mut known_mark_alls,
        &mut clicks,
        kind,
        true,
        seed,
    )
    .await;
    proxy.thaw();
    stop_tx.send_replace(true);
    let acked = match tokio::time::timeout(SETTLE, publisher).await {
        Ok(Ok(acked)) => acked,
        Ok(Err(err)) => std::panic::resume_unwind(err.into_panic()),
        Err(_) => panic!("[soak seed {seed}] the publisher did not finish within {SETTLE:?}"),
    };
    let late_ids: Vec<String> = late.iter().map(|a| a.response.id.clone()).collect();
    let mut acked = acked;
    acked.extend(late);
    let token = api.login(&marie).await.access_token;
    let streams = [user_stream.clone(), tenant_stream.clone()];
    let settle_deadline = Instant::now() + SETTLE;
    loop {
        let (connected, signed_out, surfaced) = {
            let seen = observed.lock().expect("observed lock");
            let distinct: HashSet<&str> =
                seen.notifications.iter().map(|s| s.id.as_str()).collect();
            (
                seen.connected,
                seen.signed_out.clone(),
                distinct.len() as u64,
            )
        };
        if let Some(reason) = signed_out {
            panic!("[soak seed {seed}] the engine signed out: {reason}");
        }
        let mut heads = BTreeMap::new();
        for stream in &streams {
            let page = api
                .history_ok(&token, &stream.to_string(), None, Some(1))
                .await;
            heads.insert(stream.clone(), (page.epoch, page.head));
        }
        let positions = client.positions();
        let outbox = client.outbox_len();
        let caught_up = heads.iter().all(|(stream, (epoch, head))| {
            *head == 0
                || positions
                    .get(stream)
                    .is_some_and(|p| p.epoch == *epoch && p.offset == *head)
        });
        let total: u64 = heads.values().map(|(_, head)| head).sum();
        if connected && outbox == 0 && caught_up && surfaced == total {
            break;
        }
        assert!(
            Instant::now() < settle_deadline,
            "[soak seed {seed}] not settled within {SETTLE:?}: connected={connected}, outbox={outbox}, \
             server heads {heads:?}, client positions {positions:?}, {surfaced} of {total} surfaced; \
             outbox: {:?}",
            client.outbox_actions()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let settle_took = chaos_start.elapsed() - chaos_took;

    // ---- Gather both sides.
    let mut server: BTreeMap<StreamName, (String, u64, u64, Vec<HistoryItem>)> = BTreeMap::new();
    for stream in &streams {
        server.insert(
            stream.clone(),
            full_history(&api, &token, &stream.to_string()).await,
        );
    }
    let server_unread = api.unread(&token).await;
    let inbox = client.inbox();
    let local_unread = client.unread_counts();
    let local_unread_total = client.unread_total();
    let outbox_left = client.outbox_len();
    let seen = {
        let seen = observed.lock().expect("observed lock");
        Observed {
            notifications: seen.notifications.clone(),
            results: seen.results.clone(),
            connected: seen.connected,
            connects: seen.connects,
            offline_states: seen.offline_states,
            signed_out: seen.signed_out.clone(),
            warnings: seen.warnings.clone(),
        }
    };

    let mut failures: Vec<String> = Vec::new();
    macro_rules! check {
        ($cond:expr, $($arg:tt)+) => {
            if !$cond {
                failures.push(format!("[soak seed {seed}] {}", format!($($arg)+)));
            }
        };
    }

    check!(
        seen.warnings.is_empty(),
        "the engine warned: {:?}",
        seen.warnings
    );

    // ---- 1. Delivery: acknowledged = held, once, where acknowledged; streams = history.
    let mut by_id: HashMap<&str, Vec<&tocsin_client::store::InboxItem>> = HashMap::new();
    for item in &inbox {
        by_id
            .entry(item.notification.id.as_str())
            .or_default()
            .push(item);
    }
    let duplicated: Vec<&&str> = by_id
        .iter()
        .filter(|(_, v)| v.len() > 1)
        .map(|(k, _)| k)
        .collect();
    check!(
        duplicated.is_empty(),
        "check 1: ids held more than once locally: {duplicated:?}"
    );
    let acked_ids: HashSet<&str> = acked.iter().map(|a| a.response.id.as_str()).collect();
    check!(
        acked_ids.len() == acked.len(),
        "check 1: {} acknowledged publishes but {} distinct ids (two idempotency keys got one id?)",
        acked.len(),
        acked_ids.len()
    );
    let mut missing = Vec::new();
    let mut misplaced = Vec::new();
    for a in &acked {
        match by_id.get(a.response.id.as_str()).map(Vec::as_slice) {
            None | Some([]) => missing.push(format!("{} ({:?}, {})", a.response.id, a.kind, a.key)),
            Some([item, ..]) => {
                if item.stream != a.response.stream
                    || item.epoch != a.response.epoch
                    || item.offset != a.response.offset
                {
                    misplaced.push(format!(
                        "{} acknowledged at {} {}#{} but held at {} {}#{}",
                        a.response.id,
                        a.response.stream,
                        a.response.epoch,
                        a.response.offset,
                        item.stream,
                        item.epoch,
                        item.offset
                    ));
                }
            }
        }
    }
    check!(
        missing.is_empty(),
        "check 1: {} acknowledged notifications are not in the local store: {:?}",
        missing.len(),
        &missing[..missing.len().min(10)]
    );
    check!(
        misplaced.is_empty(),
        "check 1: acknowledged notifications held elsewhere: {:?}",
        &misplaced[..misplaced.len().min(10)]
    );
    for (stream, (epoch, first, head, items)) in &server {
        let mut local: Vec<&tocsin_client::store::InboxItem> =
            inbox.iter().filter(|i| &i.stream == stream).collect();
        local.sort_by_key(|i| i.offset);
        check!(
            *first == 1,
            "check 1: {stream} was pruned (first offset {first}); the comparison assumes full history"
        );
        let offsets: Vec<u64> = items.iter().map(|i| i.offset).collect();
        let expected: Vec<u64> = (1..=*head).collect();
        check!(
            offsets == expected,
            "check 1: the server's history of {stream} is not 1..={head}: {} items",
            offsets.len()
        );
        let local_offsets: Vec<u64> = local.iter().map(|i| i.offset).collect();
        let gap = local_offsets
            .iter()
            .enumerate()
            .find(|(index, offset)| **offset != *index as u64 + 1);
        check!(
            gap.is_none() && local_offsets.len() as u64 == *head,
            "check 1: {stream} held locally is not offsets 1..={head} once each ({} items; first gap or duplicate at {:?})",
            local_offsets.len(),
            gap
        );
        let wrong_epoch: Vec<String> = local
            .iter()
            .filter(|i| i.epoch != *epoch)
            .map(|i| format!("#{} in {}", i.offset, i.epoch))
            .collect();
        check!(
            wrong_epoch.is_empty(),
            "check 1: {stream} items held in another epoch than the server's {epoch}: {:?}",
            &wrong_epoch[..wrong_epoch.len().min(10)]
        );
        let server_ids: Vec<&str> = items.iter().map(|i| i.notification.id.as_str()).collect();
        let local_ids: Vec<&str> = local.iter().map(|i| i.notification.id.as_str()).collect();
        if server_ids != local_ids {
            let at = server_ids
                .iter()
                .zip(&local_ids)
                .position(|(s, l)| s != l)
                .unwrap_or(server_ids.len().min(local_ids.len()));
            failures.push(format!(
                "[soak seed {seed}] check 1: {stream} held locally differs from the server's history from index {at}: server {:?}, local {:?}",
                server_ids.get(at),
                local_ids.get(at)
            ));
        }
        let unacked: Vec<String> = items
            .iter()
            .filter(|i| !acked_ids.contains(i.notification.id.as_str()))
            .filter(|i| i.notification.kind() != Kind::ProposalStatusChanged)
            .map(|i| {
                format!(
                    "#{} {:?} {}",
                    i.offset,
                    i.notification.kind(),
                    i.notification.title
                )
            })
            .collect();
        check!(
            unacked.is_empty(),
            "check 1: {stream} holds notifications nobody was acknowledged for: {:?}",
            &unacked[..unacked.len().min(10)]
        );
    }
    // The engine surfaced each notification once, each stream in offset order.
    let offset_of: HashMap<&str, (&StreamName, u64)> = inbox
        .iter()
        .map(|i| (i.notification.id.as_str(), (&i.stream, i.offset)))
        .collect();
    let mut surfaced_count: HashMap<&str, usize> = HashMap::new();
    let mut last_offset: HashMap<&StreamName, u64> = HashMap::new();
    let mut out_of_order = Vec::new();
    for s in &seen.notifications {
        *surfaced_count.entry(s.id.as_str()).or_default() += 1;
        if let Some((stream, offset)) = offset_of.get(s.id.as_str()) {
            check!(
                *stream == &s.stream,
                "check 1: {} surfaced on {} but held in {}",
                s.id,
                s.stream,
                stream
            );
            let last = last_offset.entry(stream).or_insert(0);
            if *offset <= *last {
                out_of_order.push(format!("{stream}: #{offset} after #{last}"));
            }
            *last = (*last).max(*offset);
        }
    }
    let twice: Vec<&&str> = surfaced_count
        .iter()
        .filter(|(_, n)| **n > 1)
        .map(|(id, _)| id)
        .collect();
    check!(
        twice.is_empty(),
        "check 1: the engine surfaced {} notifications more than once: {:?}",
        twice.len(),
        &twice[..twice.len().min(10)]
    );
    check!(
        out_of_order.is_empty(),
        "check 1: notifications surfaced out of offset order: {:?}",
        &out_of_order[..out_of_order.len().min(10)]
    );
    check!(
        surfaced_count.len() == inbox.len(),
        "check 1: {} notifications held but {} surfaced",
        inbox.len(),
        surfaced_count.len()
    );

    // ---- 2. Actions: answered once, applied once.
    check!(
        outbox_left == 0,
        "check 2: {outbox_left} actions left in the outbox"
    );
    let mut final_results: BTreeMap<&str, (&ClientFrame, Option<&ErrorBody>)> = BTreeMap::new();
    let mut answered_twice = 0usize;
    for result in &seen.results {
        match &result.action {
            Some(frame) => {
                let again = final_results
                    .insert(result.id.as_str(), (frame, result.error.as_ref()))
                    .is_some();
                check!(
                    !again,
                    "check 2: action {} was answered twice while still queued",
                    result.id
                );
            }
            None => answered_twice += 1,
        }
    }
    let count_of =
        |pick: fn(&ClientFrame) -> bool| final_results.values().filter(|(f, _)| pick(f)).count();
    let (reads, alls, answers) = (
        count_of(|f| matches!(f, ClientFrame::MarkRead { .. })),
        count_of(|f| matches!(f, ClientFrame::MarkAllRead { .. })),
        count_of(|f| matches!(f, ClientFrame::ProposalRespond { .. })),
    );
    check!(
        reads == marked.len() && alls == clicks.len() && answers == responds.len(),
        "check 2: actions taken vs answered: mark_read {} vs {reads}, mark_all_read {} vs {alls}, proposal_respond {} vs {answers}",
        marked.len(),
        clicks.len(),
        responds.len()
    );
    for (id, (frame, error)) in &final_results {
        if let Some(error) = error
            && !matches!(frame, ClientFrame::ProposalRespond { .. })
        {
            failures.push(format!(
                "[soak seed {seed}] check 2: action {id} ({frame:?}) was refused: {error:?}"
            ));
        }
    }
    // Proposals: the first answer to reach the gateway wins, once; any other is a
    // conflict; the status on both sides is the winner's.
    let mut outcome: BTreeMap<&str, Vec<(ProposalResponse, Option<&ErrorBody>)>> = BTreeMap::new();
    for (frame, error) in final_results.values() {
        if let ClientFrame::ProposalRespond {
            proposal_id,
            response,
            ..
        } = frame
        {
            outcome
                .entry(proposal_id.as_str())
                .or_default()
                .push((*response, *error));
        }
    }
    let mut changes: BTreeMap<String, Vec<ProposalStatus>> = BTreeMap::new();
    for (_, _, _, items) in server.values() {
        for item in items {
            if let NotificationData::ProposalStatusChanged(change) = &item.notification.data {
                changes
                    .entry(change.proposal_id.clone())
                    .or_default()
                    .push(change.status);
            }
        }
    }
    let published_proposals: Vec<String> = acked
        .iter()
        .filter(|a| a.kind == Kind::ProposalCreated)
        .map(|a| {
            let suffix = a.key.rsplit('-').next().unwrap_or_default();
            format!("p-{suffix}")
        })
        .collect();
    for proposal_id in &published_proposals {
        let answers = outcome
            .get(proposal_id.as_str())
            .cloned()
            .unwrap_or_default();
        let winners: Vec<ProposalResponse> = answers
            .iter()
            .filter(|(_, e)| e.is_none())
            .map(|(r, _)| *r)
            .collect();
        let others_conflict = answers
            .iter()
            .filter_map(|(_, e)| *e)
            .all(|e| e.code == ErrorCode::Conflict);
        let server_changes = changes.get(proposal_id).cloned().unwrap_or_default();
        let expected_status = match winners.first() {
            Some(ProposalResponse::Accept) => ProposalStatus::Accepted,
            Some(ProposalResponse::Reject) => ProposalStatus::Rejected,
            None => ProposalStatus::Pending,
        };
        if answers.is_empty() {
            check!(
                server_changes.is_empty(),
                "check 2: proposal {proposal_id} was never answered but has status changes {server_changes:?}"
            );
        } else {
            check!(
                winners.len() == 1 && others_conflict,
                "check 2: proposal {proposal_id} answered {} times: results {answers:?} (expected one success, the rest conflicts)",
                answers.len()
            );
            check!(
                server_changes == vec![expected_status],
                "check 2: proposal {proposal_id}: the server holds status changes {server_changes:?}, expected exactly [{expected_status:?}]"
            );
        }
        let local = client.proposal_status(proposal_id);
        check!(
            local == Some(expected_status),
            "check 2: proposal {proposal_id} is {local:?} locally, expected {expected_status:?}"
        );
    }

    // ---- 3 and 4. Read state: what the actions imply, on both sides.
    let individually: HashSet<&str> = marked.iter().flatten().map(String::as_str).collect();
    let mark_alls: Vec<(Option<Kind>, &BTreeMap<StreamName, Position>, &str)> = final_results
        .iter()
        .filter_map(|(id, (frame, _))| match frame {
            ClientFrame::MarkAllRead { kind, up_to, .. } => {
                check!(
                    up_to.is_some(),
                    "check 4: mark-all-read {id} was queued without the positions seen"
                );
                up_to.as_ref().map(|u| (*kind, u, *id))
            }
            _ => None,
        })
        .collect();
    // Each click covered what the client held when it was made, and nothing more.
    for click in &clicks {
        let queued = mark_alls.iter().find(|(_, _, id)| *id == click.action_id);
        check!(
            queued.is_some_and(|(_, up_to, _)| **up_to == click.up_to || click.up_to.is_empty()),
            "check 4: click #{} ({}): the answered action differs from the one queued",
            click.index,
            click.action_id
        );
        let Some((_, up_to, _)) = queued else {
            continue;
        };
        for (stream, seen_before) in &click.before {
            let ok = up_to
                .get(stream)
                .is_some_and(|p| p.epoch == seen_before.epoch && p.offset >= seen_before.offset);
            check!(
                ok,
                "check 4: click #{} ({:?}, offline={}) held {stream} up to {seen_before:?} but the action covers {:?}",
                click.index,
                click.kind,
                click.offline,
                up_to.get(stream)
            );
        }
        for (stream, covered) in up_to.iter() {
            let held = click.after.get(stream);
            let ok = held.is_some_and(|p| p.epoch == covered.epoch && covered.offset <= p.offset);
            check!(
                ok,
                "check 4: click #{} ({:?}) covers {stream} up to {covered:?}, more than the client held ({held:?})",
                click.index,
                click.kind
            );
        }
    }
    let local_read: HashMap<&str, bool> = inbox
        .iter()
        .map(|i| (i.notification.id.as_str(), i.read))
        .collect();
    let acked_at: HashMap<&str, Instant> = acked
        .iter()
        .map(|a| (a.response.id.as_str(), a.at))
        .collect();
    let (mut wrong_server, mut wrong_local) = (Vec::new(), Vec::new());
    let (mut deadlines, mut protected, mut covered_deadlines) = (0usize, 0usize, 0usize);
    for (stream, (epoch, _, _, items)) in &server {
        for item in items {
            let n = &item.notification;
            let id = n.id.as_str();
            let by_click = mark_alls
                .iter()
                .any(|(kind, up_to, _)| covers(*kind, up_to, n.kind(), stream, epoch, item.offset));
            let expected = individually.contains(id) || by_click;
            let local = local_read.get(id).copied();
            let is_critical_deadline = matches!(&n.data, NotificationData::DeadlineAlert(d)
                if d.urgency == tocsin_protocol::notification::DeadlineUrgency::Critical);
            if is_critical_deadline {
                deadlines += 1;
                covered_deadlines += usize::from(by_click);
                // Clicks that would have covered it, made after it was acknowledged:
                // it was published before them but not yet on the desktop.
                let later_clicks: Vec<usize> = clicks
                    .iter()
                    .filter(|c| c.kind.is_none_or(|k| k == Kind::DeadlineAlert))
                    .filter(|c| acked_at.get(id).is_some_and(|at| *at < c.at))
                    .filter(|c| !covers(c.kind, &c.up_to, n.kind(), stream, epoch, item.offset))
                    .map(|c| c.index)
                    .collect();
                if !expected && !later_clicks.is_empty() {
                    protected += 1;
                }
                if !expected {
                    check!(
                        !item.read && local == Some(false),
                        "check 4: critical deadline {id} ({} #{}) arrived after every mark-all-read that could cover it \
                         (published before clicks {later_clicks:?}, which did not hold it) and was never marked read, \
                         yet it is read={} on the server and {local:?} locally",
                        stream,
                        item.offset,
                        item.read
                    );
                }
            }
            if item.read != expected {
                wrong_server.push(format!(
                    "{id} ({:?} {stream}#{}): read={} expected {expected}",
                    n.kind(),
                    item.offset,
                    item.read
                ));
            }
            if local != Some(expected) {
                wrong_local.push(format!(
                    "{id} ({:?} {stream}#{}): read={local:?} expected {expected}",
                    n.kind(),
                    item.offset
                ));
            }
        }
    }
    for id in &late_ids {
        let on_server = server
            .values()
            .flat_map(|(_, _, _, items)| items)
            .find(|item| &item.notification.id == id)
            .map(|item| item.read);
        check!(
            on_server == Some(false) && local_read.get(id.as_str()) == Some(&false),
            "check 4: critical deadline {id}, published while the link was a black hole and followed by an \
             offline mark-all-read, is read={on_server:?} on the server and {:?} locally (expected unread)",
            local_read.get(id.as_str())
        );
    }
    check!(
        wrong_server.is_empty(),
        "check 3: {} notifications have the wrong read state on the server: {:?}",
        wrong_server.len(),
        &wrong_server[..wrong_server.len().min(10)]
    );
    check!(
        wrong_local.is_empty(),
        "check 3: {} notifications have the wrong read state locally: {:?}",
        wrong_local.len(),
        &wrong_local[..wrong_local.len().min(10)]
    );
    check!(
        server_unread.by_kind == local_unread && server_unread.total == local_unread_total,
        "check 3: unread counts differ: server {} {:?}, client {} {:?}",
        server_unread.total,
        server_unread.by_kind,
        local_unread_total,
        local_unread
    );

    let server_critical = server
        .values()
        .flat_map(|(_, _, _, items)| items)
        .filter(|item| !item.read)
        .filter(|item| {
            matches!(&item.notification.data, NotificationData::DeadlineAlert(d)
                if d.urgency == tocsin_protocol::notification::DeadlineUrgency::Critical)
        })
        .count() as u64;
    let local_critical = client.unread_critical_deadlines();
    check!(
        server_critical == local_critical,
        "check 3: {server_critical} critical deadlines unread on the server, {local_critical} locally (the tray's mark)"
    );

    let retried = acked.iter().filter(|a| a.attempts > 1).count();
    let duplicates = acked.iter().filter(|a| a.response.duplicate).count();
    let mut kinds: BTreeMap<Kind, usize> = BTreeMap::new();
    for a in &acked {
        *kinds.entry(a.kind).or_default() += 1;
    }
    let conflicts = final_results
        .values()
        .filter(|(_, e)| e.is_some_and(|e| e.code == ErrorCode::Conflict))
        .count();
    let total_held: usize = server.values().map(|(_, _, _, items)| items.len()).sum();
    eprintln!(
        "[soak] seed {seed}: chaos {chaos_took:.1?}, settled in {settle_took:.1?}, total {:.1?}; {} steps: \
         {} SIGKILLs, {} black holes, {} resets, {} network changes, {} live connections; \
         {} publishes acknowledged {kinds:?} ({retried} after retries, {duplicates} answered as duplicates), \
         {total_held} notifications held; actions: {} mark_read ({} offline), {} mark_all_read ({} offline), \
         {} proposal answers ({} offline, {} double, {conflicts} conflicts), {answered_twice} answered twice, \
         max outbox {}; critical deadlines: {deadlines}, {covered_deadlines} covered by a click, \
         {protected} published before a click that did not hold them and still unread; \
         unread at the end: {} {:?}",
        started.elapsed(),
        stats.steps,
        stats.kills,
        stats.freezes,
        stats.resets,
        stats.network_changes,
        seen.connects,
        acked.len(),
        stats.mark_reads,
        stats.mark_reads_offline,
        clicks.len(),
        clicks.iter().filter(|c| c.offline).count(),
        stats.responds,
        stats.responds_offline,
        stats.double_answers,
        stats.max_outbox,
        server_unread.total,
        server_unread.by_kind,
    );

    if !failures.is_empty() {
        let count = failures.len();
        let shown = failures[..count.min(40)].join("\n");
        let TestClient { home, handle, .. } = client;
        drop(handle);
        let kept = home.keep();
        collector.abort();
        panic!(
            "[soak seed {seed}] {count} checks failed (rerun with TOCSIN_SOAK_SEED={seed}; the client's \
             database is kept in {}):\n{shown}",
            kept.display()
        );
    }
    client.stop().await;
    collector.abort();
}
