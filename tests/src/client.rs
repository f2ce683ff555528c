//! The real client engine (tocsin-client) run in the test process, signed in to a
//! test gateway, with short timers so faults are noticed quickly.

use std::sync::Arc;
use std::time::Duration;

use tocsin_client::api::{ApiClient, ServerUrl};
use tocsin_client::backoff::BackoffConfig;
use tocsin_client::clock::{Clock, SystemClock};
use tocsin_client::engine::{self, Command, EngineConfig, EngineHandle};
use tocsin_client::events::{ConnectionState, EngineEvent};
use tocsin_client::policy::Policy;
use tocsin_client::secrets::{MemoryStore, SecretStore};
use tocsin_client::store::InboxItem;
use tokio::sync::mpsc;

use crate::gateway::UserFixture;

/// Timers for a client under test.
#[derive(Clone)]
pub struct ClientOptions {
    /// Ping interval.
    pub heartbeat_interval: Duration,
    /// Silence after a ping that means dead.
    pub heartbeat_timeout: Duration,
    /// Reconnect delays.
    pub backoff: BackoffConfig,
    /// The clock watched for resume jumps.
    pub clock: Arc<dyn Clock>,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            heartbeat_interval: Duration::from_secs(30),
            heartbeat_timeout: Duration::from_secs(10),
            backoff: BackoffConfig {
                base: Duration::from_millis(100),
                cap: Duration::from_millis(500),
                stable_after: Duration::from_secs(60),
            },
            clock: Arc::new(SystemClock),
        }
    }
}

/// A running engine with its temp home.
pub struct TestClient {
    /// The client's files (local database).
    pub home: tempfile::TempDir,
    /// The engine's handle.
    pub handle: EngineHandle,
    /// Its events.
    pub events: mpsc::Receiver<EngineEvent>,
    /// The engine task.
    pub task: tokio::task::JoinHandle<()>,
    /// Where its refresh token lives.
    pub secrets: Arc<MemoryStore>,
}

impl TestClient {
    /// Signs `user` in over HTTP (as `tocsin login` does) and starts the engine.
    pub async fn sign_in(base_url: &str, user: &UserFixture, options: ClientOptions) -> TestClient {
        let server = ServerUrl::parse(base_url).expect("a loopback URL is accepted");
        let tokens = ApiClient::new(server.clone())
            .login(&user.email, &user.password, "e2e client")
            .await
            .expect("login works");
        let secrets = Arc::new(MemoryStore::new());
        secrets
            .set("account", &tokens.refresh_token)
            .expect("memory store");
        let home = tempfile::tempdir().expect("a temp home");
        Self::start_in(server, home, secrets, options)
    }

    /// Starts an engine on an existing home and secret store (a restart).
    pub fn start_in(
        server: ServerUrl,
        home: tempfile::TempDir,
        secrets: Arc<MemoryStore>,
        options: ClientOptions,
    ) -> TestClient {
        let mut config = EngineConfig::new(server, "account".into(), home.path().to_path_buf());
        config.heartbeat_interval = options.heartbeat_interval;
        config.heartbeat_timeout = options.heartbeat_timeout;
        config.backoff = options.backoff;
        config.clock_tick = Duration::from_millis(100);
        let (handle, events, task) =
            engine::start_with_clock(config, secrets.clone(), Policy::default(), options.clock)
                .expect("the engine starts");
        TestClient {
            home,
            handle,
            events,
            task,
            secrets,
        }
    }

    /// Stops the engine and hands back its home and secrets (to start it again).
    pub async fn stop(self) -> (tempfile::TempDir, Arc<MemoryStore>) {
        self.handle.send(Command::Shutdown).await;
        tokio::time::timeout(Duration::from_secs(10), self.task)
            .await
            .expect("the engine stops")
            .expect("the engine task ends cleanly");
        (self.home, self.secrets)
    }

    /// Waits for an event matching `pick`, failing after `timeout`.
    pub async fn wait_for<T>(
        &mut self,
        timeout: Duration,
        what: &str,
        mut pick: impl FnMut(&EngineEvent) -> Option<T>,
    ) -> T {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let event = tokio::time::timeout_at(deadline, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} within {timeout:?}"))
                .unwrap_or_else(|| panic!("the engine stopped before {what}"));
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    }

    /// Waits until the engine reports it is live.
    pub async fn wait_connected(&mut self, timeout: Duration) {
        self.wait_for(timeout, "a live connection", |event| {
            matches!(event, EngineEvent::State(ConnectionState::Connected { .. })).then_some(())
        })
        .await;
    }

    /// Collects new notifications (live or replayed) until `count` arrived.
    pub async fn collect(&mut self, count: usize, timeout: Duration) -> Vec<String> {
        let mut ids = Vec::with_capacity(count);
        while ids.len() < count {
            let id = self
                .wait_for(
                    timeout,
                    &format!("notification #{} of {count}", ids.len() + 1),
                    |event| match event {
                        EngineEvent::Notification { notification, .. } => {
                            Some(notification.id.clone())
                        }
                        _ => None,
                    },
                )
                .await;
            ids.push(id);
        }
        ids
    }

    /// Waits for `acked.len()` notifications, then asserts none was surfaced twice and
    /// the local inbox holds exactly `acked`, in order; `context` is added to a failure.
    pub async fn assert_holds_exactly(
        &mut self,
        acked: &[String],
        timeout: Duration,
        context: &str,
    ) {
        let received = self.collect(acked.len(), timeout).await;
        let unique: std::collections::BTreeSet<&String> = received.iter().collect();
        assert_eq!(
            unique.len(),
            received.len(),
            "no notification is surfaced twice{context}"
        );
        let inbox: Vec<String> = self
            .inbox()
            .into_iter()
            .map(|item| item.notification.id)
            .collect();
        assert_eq!(
            inbox, acked,
            "the inbox holds exactly the acknowledged set, in order{context}"
        );
    }

    /// Everything in the local inbox, oldest first.
    pub fn inbox(&self) -> Vec<InboxItem> {
        let store = self.handle.local_store();
        let store = store.lock().expect("store lock");
        let mut items = store.list(None, 1_000_000, None).expect("the inbox lists");
        items.reverse();
        items
    }
}

/// Queries of the local store, one method each, so that tests never reach into the
/// engine's store themselves (only these change when its access does).
impl TestClient {
    /// How many actions wait in the offline queue (sent, not answered yet, or not sent).
    pub fn outbox_len(&self) -> usize {
        let store = self.handle.local_store();
        let store = store.lock().expect("store lock");
        store.outbox_len().expect("the outbox counts")
    }

    /// The queued actions, in the order they will be sent.
    pub fn outbox_actions(&self) -> Vec<tocsin_protocol::frames::ClientFrame> {
        let store = self.handle.local_store();
        let store = store.lock().expect("store lock");
        store.pending().expect("the outbox lists")
    }

    /// All unread notifications (the tray's number).
    pub fn unread_total(&self) -> u64 {
        let store = self.handle.local_store();
        let store = store.lock().expect("store lock");
        store.unread_total().expect("unread counts")
    }

    /// Unread notifications per kind (kinds with none left out, as `GET /v1/unread`).
    pub fn unread_counts(&self) -> std::collections::BTreeMap<tocsin_protocol::Kind, u64> {
        let store = self.handle.local_store();
        let store = store.lock().expect("store lock");
        store.unread_counts().expect("unread counts")
    }

    /// Unread critical deadline alerts (the tray's mark).
    pub fn unread_critical_deadlines(&self) -> u64 {
        let store = self.handle.local_store();
        let store = store.lock().expect("store lock");
        store
            .unread_critical_deadlines()
            .expect("unread critical deadlines")
    }

    /// Whether a held notification is read; `None` when it is not held.
    pub fn is_read(&self, id: &str) -> Option<bool> {
        let store = self.handle.local_store();
        let store = store.lock().expect("store lock");
        store.is_read(id).expect("read state")
    }

    /// A proposal's local status; `None` when nothing is known of it.
    pub fn proposal_status(
        &self,
        proposal_id: &str,
    ) -> Option<tocsin_protocol::notification::ProposalStatus> {
        let store = self.handle.local_store();
        let store = store.lock().expect("store lock");
        store.proposal_status(proposal_id).expect("proposal status")
    }

    /// The position reached in each stream (what the next `hello` carries).
    pub fn positions(
        &self,
    ) -> std::collections::BTreeMap<tocsin_protocol::StreamName, tocsin_protocol::Position> {
        let store = self.handle.local_store();
        let store = store.lock().expect("store lock");
        store.positions().expect("positions")
    }
}
