//! The real engine's sign-in against the real gateway's single-use refresh tokens: a
//! renewed token the keyring could not save is used from memory (presenting the old
//! one again would revoke the device), and a renewal whose answer was lost on the way
//! is retried on the open socket without signing the device out.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::Duration;

use tocsin_client::api::ServerUrl;
use tocsin_client::engine::{self, EngineConfig};
use tocsin_client::events::{ConnectionState, EngineEvent};
use tocsin_client::policy::Policy;
use tocsin_client::secrets::{MemoryStore, SecretError, SecretStore};
use tocsin_e2e::http::Api;
use tocsin_e2e::http_fault::HttpFault;
use tocsin_e2e::publisher::email;
use tocsin_e2e::{Gateway, GatewayOptions};
use tokio::sync::mpsc;

const LONG: Duration = Duration::from_secs(60);

/// Access tokens of 62 s: the engine renews them a minute before expiry, every 2 s.
const TTL: u64 = 62;

/// A keyring that may refuse writes, counting every token it was asked to save.
#[derive(Default)]
struct FlakyKeyring {
    inner: MemoryStore,
    refusing: AtomicBool,
    saves: AtomicU32,
}

impl SecretStore for FlakyKeyring {
    fn get(&self, account: &str) -> Result<Option<String>, SecretError> {
        self.inner.get(account)
    }

    fn set(&self, account: &str, secret: &str) -> Result<(), SecretError> {
        self.saves.fetch_add(1, Ordering::SeqCst);
        if self.refusing.load(Ordering::SeqCst) {
            return Err(SecretError::Unavailable {
                store: "locked keyring",
                reason: "the collection is locked".into(),
            });
        }
        self.inner.set(account, secret)
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        self.inner.delete(account)
    }

    fn describe(&self) -> &'static str {
        "flaky keyring"
    }
}

struct Engine {
    /// Held: dropping the last handle stops the engine.
    _handle: engine::EngineHandle,
    events: mpsc::Receiver<EngineEvent>,
    _home: tempfile::TempDir,
}

impl Engine {
    /// Signs in at `gateway` and starts an engine on `server` (the gateway or a proxy).
    async fn start(gw: &Gateway, server: &str, keyring: Arc<FlakyKeyring>) -> Engine {
        let marie = gw.user("dupont", 0).clone();
        let login = gw.api().login(&marie).await;
        keyring
            .inner
            .set("account", &login.refresh_token)
            .expect("memory");
        let home = tempfile::tempdir().expect("a temp dir");
        let server = ServerUrl::parse(server).expect("url");
        let mut config = EngineConfig::new(server, "account".into(), home.path().to_path_buf());
        config.heartbeat_interval = Duration::from_secs(1);
        config.heartbeat_timeout = Duration::from_secs(5);
        let (handle, events, _task) =
            engine::start(config, keyring, Policy::default()).expect("the engine starts");
        Engine {
            _handle: handle,
            events,
            _home: home,
        }
    }

    /// Waits for an event matching `pick`; a sign-out fails the test.
    async fn wait_for<T>(
        &mut self,
        what: &str,
        mut pick: impl FnMut(&EngineEvent) -> Option<T>,
    ) -> T {
        loop {
            let event = tokio::time::timeout(LONG, self.events.recv())
                .await
                .unwrap_or_else(|_| panic!("no {what} within {LONG:?}"))
                .expect("the engine runs");
            if let EngineEvent::State(ConnectionState::SignedOut { reason }) = &event {
                panic!("signed out while waiting for {what}: {reason}");
            }
            if let Some(found) = pick(&event) {
                return found;
            }
        }
    }

    async fn connected(&mut self) {
        self.wait_for("a live connection", |event| {
            matches!(event, EngineEvent::State(ConnectionState::Connected { .. })).then_some(())
        })
        .await;
    }

    /// Waits until `id` arrives; true when no reconnect came before it.
    async fn receives(&mut self, id: &str) -> bool {
        let mut reconnected = false;
        self.wait_for("the notification", |event| match event {
            EngineEvent::State(ConnectionState::Connecting { .. }) => {
                reconnected = true;
                None
            }
            EngineEvent::Notification { notification, .. } => (notification.id == id).then_some(()),
            _ => None,
        })
        .await;
        !reconnected
    }
}

/// Waits until `done` holds, checking every 50 ms, for at most a minute.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = tokio::time::Instant::now() + LONG;
    while !done() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{what}: not within {LONG:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn options(grace: u64) -> GatewayOptions {
    GatewayOptions {
        access_token_ttl_secs: Some(TTL),
        refresh_grace_secs: Some(grace),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    }
}

async fn publish(api: &Api, gw: &Gateway, text: &str) -> String {
    let marie = gw.user("dupont", 0).clone();
    api.publish_ok(gw.key("dupont"), &email(&marie.stream(), text))
        .await
        .id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_token_the_keyring_could_not_save_keeps_the_device_signed_in() {
    // A one-second grace: presenting the previous token two seconds later is reuse.
    let gw = Gateway::start(options(1)).await;
    let keyring = Arc::new(FlakyKeyring::default());
    keyring.refusing.store(true, Ordering::SeqCst);
    let mut engine = Engine::start(&gw, &format!("http://{}", gw.addr()), keyring.clone()).await;
    engine.connected().await;
    let saves = keyring.saves.load(Ordering::SeqCst);
    until("two renewals on the open socket", || {
        keyring.saves.load(Ordering::SeqCst) >= saves + 2
    })
    .await;
    let id = publish(&gw.api(), &gw, "toujours connecté").await;
    assert!(engine.receives(&id).await, "delivered on the same socket");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_lost_refresh_answer_is_retried_without_signing_the_device_out() {
    let gw = Gateway::start(options(60)).await;
    let fault = HttpFault::start(gw.addr().to_owned(), "/v1/auth/refresh").await;
    let keyring = Arc::new(FlakyKeyring::default());
    let mut engine = Engine::start(&gw, &format!("http://{}", fault.addr), keyring.clone()).await;
    engine.connected().await;
    let saves = keyring.saves.load(Ordering::SeqCst);
    fault.lose_next(1);
    until("the renewal's answer lost", || fault.lost() == 1).await;
    until("a renewal after the lost one", || {
        keyring.saves.load(Ordering::SeqCst) > saves
    })
    .await;
    let id = publish(&gw.api(), &gw, "après la panne").await;
    assert!(engine.receives(&id).await, "delivered on the same socket");
}
