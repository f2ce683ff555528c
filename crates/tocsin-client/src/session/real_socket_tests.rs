//! A session against a tiny fake gateway (WebSocket, history, refresh) whose data was
//! restored from an older copy with the same epoch: the client must notice the
//! divergence and re-sync the stream, keeping what it had already received.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::ws::{Message as WsMessage, WebSocket, WebSocketUpgrade};
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::json;
use tocsin_protocol::SUBPROTOCOL;
use tocsin_protocol::frames::{Limits, StreamStatus, Welcome};
use tocsin_protocol::http::{HistoryItem, HistoryResponse, UserInfo};
use tocsin_protocol::{Notification, Position};

use super::*;
use crate::api::ServerUrl;
use crate::engine::{EngineConfig, start};
use crate::policy::{Policy, Preferences};
use crate::secrets::{MemoryStore, SecretStore};
use crate::store::LocalStore;
use crate::store::testing::{email, incoming};

/// The epoch the restored gateway still claims.
const EPOCH: &str = "e1";
/// The head of the copy the gateway was restored from.
const RESTORED_HEAD: u64 = 5;
/// The head after the 8 notifications published since the restore.
const HEAD: u64 = 13;

fn tenant() -> StreamName {
    StreamName::Tenant("dupont".into())
}

/// The gateway's current timeline: a1..a5 (restored), then b6..b13.
fn current(offset: u64) -> Notification {
    let id = if offset <= RESTORED_HEAD { "a" } else { "b" };
    email(&format!("{id}{offset}"), offset as i64)
}

/// The tenant-stream offset each `hello` carried, in order.
type Hellos = Arc<Mutex<Vec<Option<u64>>>>;

async fn refresh() -> Response {
    Json(json!({
        "access_token": "at_1",
        "refresh_token": "tsr_1",
        "expires_in": 900,
        "user": {"id": "u1", "email": "marie@dupont.fr", "tenant": "dupont", "role": "lawyer"}
    }))
    .into_response()
}

async fn history(Query(query): Query<HashMap<String, String>>) -> Json<HistoryResponse> {
    let after: u64 = query["after"].parse().expect("after");
    Json(HistoryResponse {
        stream: tenant(),
        epoch: EPOCH.into(),
        first: 1,
        head: HEAD,
        notifications: (after + 1..=HEAD)
            .map(|offset| HistoryItem {
                offset,
                read: false,
                notification: current(offset),
            })
            .collect(),
        next_after: None,
    })
}

async fn ws(upgrade: WebSocketUpgrade, State(hellos): State<Hellos>) -> Response {
    upgrade
        .protocols([SUBPROTOCOL])
        .on_upgrade(move |socket| session(socket, hellos))
}

/// Like the gateway: the client reconnects right after the restore, so its position
/// (10) is ahead of the head (5): not recovered, and the 8 new notifications come live
/// after `welcome`. A position within the restored part is recovered and everything
/// after it is replayed.
async fn session(mut socket: WebSocket, hellos: Hellos) {
    let Some(Ok(WsMessage::Text(text))) = socket.recv().await else {
        return;
    };
    let Ok(ClientFrame::Hello { positions, .. }) = serde_json::from_str(text.as_str()) else {
        return;
    };
    let held = positions.get(&tenant()).map(|p| p.offset);
    hellos.lock().expect("lock").push(held);
    let (recovered, head, from) = match held {
        Some(offset) if offset <= RESTORED_HEAD => (true, HEAD, offset + 1),
        _ => (false, RESTORED_HEAD, RESTORED_HEAD + 1),
    };
    let mut frames = vec![welcome(recovered, head)];
    let notes = (from..=HEAD).map(|offset| ServerFrame::Notification {
        stream: tenant(),
        epoch: EPOCH.into(),
        offset,
        replay: recovered,
        notification: current(offset),
    });
    let caught_up = ServerFrame::CaughtUp {
        positions: [(
            tenant(),
            Position {
                epoch: EPOCH.into(),
                offset: head,
            },
        )]
        .into(),
    };
    if recovered {
        frames.extend(notes);
        frames.push(caught_up);
    } else {
        frames.push(caught_up);
        frames.extend(notes);
    }
    for frame in frames {
        let text = serde_json::to_string(&frame).expect("encodes");
        if socket.send(WsMessage::Text(text.into())).await.is_err() {
            return;
        }
    }
    while let Some(Ok(_)) = socket.recv().await {}
}

fn welcome(recovered: bool, head: u64) -> ServerFrame {
    ServerFrame::Welcome(Welcome {
        connection_id: "c1".into(),
        user: UserInfo {
            id: "u1".into(),
            email: "marie@dupont.fr".into(),
            tenant: "dupont".into(),
            tenant_name: None,
            role: "lawyer".into(),
        },
        streams: vec![StreamStatus {
            stream: tenant(),
            epoch: EPOCH.into(),
            head,
            first: 1,
            recovered,
        }],
        token_expires_at: chrono::Utc::now() + chrono::Duration::minutes(15),
        limits: Limits {
            heartbeat_interval_ms: 30_000,
            heartbeat_timeout_ms: 10_000,
            max_message_bytes: 1 << 20,
            actions_per_second: 10,
            actions_burst: 20,
        },
        features: tocsin_protocol::frames::features::ALL
            .iter()
            .map(|f| (*f).to_owned())
            .collect(),
    })
}

async fn serve(hellos: Hellos) -> ServerUrl {
    let app = Router::new()
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/history", get(history))
        .route("/v1/ws", get(ws))
        .with_state(hellos);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    ServerUrl::parse(&format!("http://{addr}")).expect("url")
}

#[tokio::test]
async fn a_diverged_stream_is_rebuilt_and_keeps_what_was_received() {
    let dir = tempfile::tempdir().expect("tempdir");
    {
        // The client held a1..a10 before the gateway was restored to head 5.
        let (mut store, _) = LocalStore::open(&dir.path().join("client.db")).expect("opens");
        let old: Vec<Incoming> = (1..=10)
            .map(|i| incoming(&tenant(), EPOCH, i, email(&format!("a{i}"), i as i64)))
            .collect();
        store.persist(&old).expect("persists");
    }
    let hellos = Hellos::default();
    let server = serve(hellos.clone()).await;
    let secrets = Arc::new(MemoryStore::new());
    secrets.set("acct", "tsr_0").expect("set");
    let config = EngineConfig::new(server, "acct".into(), dir.path().to_path_buf());
    let policy = Policy::new(Preferences::default());
    let (handle, mut events, task) = start(config, secrets, policy).expect("starts");

    let mut warnings = Vec::new();
    let missed = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match events.recv().await.expect("engine running") {
                EngineEvent::Warning(warning) => warnings.push(warning),
                EngineEvent::CatchUp { missed, .. } if missed > 0 => return missed,
                _ => {}
            }
        }
    })
    .await;
    handle.send(Command::Shutdown).await;
    task.await.expect("engine ends");

    assert_eq!(
        missed,
        Ok(8),
        "b6..b13 replayed after the divergence; warnings: {warnings:?}"
    );
    assert_eq!(*hellos.lock().expect("lock"), [Some(10), Some(5)]);
    assert!(
        warnings
            .iter()
            .any(|w| w.starts_with("tenant:dupont diverged")),
        "{warnings:?}"
    );
    let store = handle.local_store();
    let store = store.lock().expect("lock");
    for offset in 6..=HEAD {
        let item = store
            .get(&format!("b{offset}"))
            .expect("get")
            .expect("stored");
        assert_eq!((item.epoch.as_str(), item.offset), (EPOCH, offset));
    }
    for offset in 1..=10 {
        assert!(
            store.get(&format!("a{offset}")).expect("get").is_some(),
            "a{offset} kept"
        );
    }
    let position = store.position(&tenant()).expect("pos");
    assert_eq!(
        position,
        Some(Position {
            epoch: EPOCH.into(),
            offset: HEAD
        })
    );
    assert!(store.pending_backfills().expect("pending").is_empty());
}
