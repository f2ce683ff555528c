//! A fake `org.freedesktop.Notifications` server on a session bus: it records every
//! `Notify` call (no display; the instant each arrived is kept for the benchmark's
//! latency figures) and lets the test play the user — invoke an action, dismiss a
//! notification.
//!
//! The [Desktop Notifications spec](https://specifications.freedesktop.org/notification-spec/latest/)
//! is followed where the app can observe it: `Notify` returns increasing ids (or the
//! replaced id), `CloseNotification` answers with `NotificationClosed` reason 3, and
//! [`NotificationServer::invoke_action`] emits `ActionInvoked` then `NotificationClosed`
//! reason 2, as a real server does when the user clicks a button.

use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::sync::watch;
use zbus::object_server::SignalEmitter;
use zbus::{Connection, interface};
use zbus::{OwnedVariant, Variant};

/// The well-known name a notification server owns.
pub const NAME: &str = "org.freedesktop.Notifications";
/// The object path it serves at.
pub const PATH: &str = "/org/freedesktop/Notifications";
/// Its interface.
pub const INTERFACE: &str = "org.freedesktop.Notifications";

/// `NotificationClosed` reason: dismissed by the user.
pub const CLOSED_BY_USER: u32 = 2;
/// `NotificationClosed` reason: closed by a `CloseNotification` call.
pub const CLOSED_BY_CALL: u32 = 3;

/// The capabilities answered when the test does not choose.
pub const DEFAULT_CAPABILITIES: [&str; 4] = ["body", "actions", "persistence", "icon-static"];

/// One hint value, simplified for assertions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hint {
    /// A byte (`y`), e.g. `urgency`.
    Byte(u8),
    /// A boolean (`b`), e.g. `resident`, `transient`.
    Bool(bool),
    /// Any integer type other than a byte.
    Int(i64),
    /// A string (`s`), e.g. `category`, `desktop-entry`.
    Str(String),
    /// Anything else, by its D-Bus signature (e.g. `(iiibiiay)` for `image-data`).
    Other(String),
}

impl Hint {
    fn from_value(value: &Variant<'_>) -> Hint {
        match value {
            Variant::U8(byte) => Hint::Byte(*byte),
            Variant::Bool(flag) => Hint::Bool(*flag),
            Variant::I16(n) => Hint::Int(i64::from(*n)),
            Variant::U16(n) => Hint::Int(i64::from(*n)),
            Variant::I32(n) => Hint::Int(i64::from(*n)),
            Variant::U32(n) => Hint::Int(i64::from(*n)),
            Variant::I64(n) => Hint::Int(*n),
            Variant::U64(n) => i64::try_from(*n)
                .map(Hint::Int)
                .unwrap_or_else(|_| Hint::Other("t".into())),
            Variant::Str(text) => Hint::Str(text.as_str().to_owned()),
            Variant::Variant(inner) => Hint::from_value(inner),
            other => Hint::Other(other.value_signature().to_string()),
        }
    }
}

/// One `Notify` call as the server received it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Notification {
    /// The id the server answered.
    pub id: u32,
    /// The caller's unique bus name.
    pub sender: String,
    /// `app_name`.
    pub app_name: String,
    /// `replaces_id` (0 for a new notification).
    pub replaces_id: u32,
    /// `app_icon`.
    pub app_icon: String,
    /// `summary`.
    pub summary: String,
    /// `body`.
    pub body: String,
    /// `actions`, flat: key, label, key, label…
    pub actions: Vec<String>,
    /// `hints`.
    pub hints: BTreeMap<String, Hint>,
    /// `expire_timeout` in ms (-1 = server default, 0 = never).
    pub expire_timeout: i32,
}

impl Notification {
    /// The `urgency` hint (0 low, 1 normal, 2 critical), when sent.
    pub fn urgency(&self) -> Option<u8> {
        match self.hints.get("urgency") {
            Some(Hint::Byte(byte)) => Some(*byte),
            _ => None,
        }
    }

    /// The `category` hint, when sent.
    pub fn category(&self) -> Option<&str> {
        match self.hints.get("category") {
            Some(Hint::Str(text)) => Some(text),
            _ => None,
        }
    }

    /// The actions as (key, label) pairs.
    pub fn action_pairs(&self) -> Vec<(String, String)> {
        self.actions
            .chunks(2)
            .map(|pair| (pair[0].clone(), pair.get(1).cloned().unwrap_or_default()))
            .collect()
    }

    /// The label of action `key`, when offered.
    pub fn action_label(&self, key: &str) -> Option<String> {
        self.action_pairs()
            .into_iter()
            .find(|(k, _)| k == key)
            .map(|(_, label)| label)
    }
}

/// What the server object shares with the test side.
struct Recorder {
    /// Every `Notify` call, in order.
    calls: watch::Sender<Vec<Notification>>,
    /// When each call of `calls` (same index) reached the server, for latency
    /// measurements (tocsin-bench); pushed before the call itself is published.
    received_at: Mutex<Vec<Instant>>,
    /// Ids the app closed with `CloseNotification`, in order.
    closed_by_app: watch::Sender<Vec<u32>>,
    /// The last id handed out.
    last_id: AtomicU32,
    /// What `GetCapabilities` answers.
    capabilities: Vec<String>,
}

/// The D-Bus object.
struct Server {
    recorder: std::sync::Arc<Recorder>,
}

#[interface(name = "org.freedesktop.Notifications")]
impl Server {
    #[allow(clippy::too_many_arguments)]
    fn notify(
        &self,
        #[zbus(header)] header: zbus::message::Header<'_>,
        app_name: String,
        replaces_id: u32,
        app_icon: String,
        summary: String,
        body: String,
        actions: Vec<String>,
        hints: HashMap<String, OwnedVariant>,
        expire_timeout: i32,
    ) -> u32 {
        // First thing: the call's arrival as near as the handler can see it (zbus has
        // read and decoded the message by now: tens of microseconds), before our own work.
        let received = Instant::now();
        let id = if replaces_id != 0 {
            replaces_id
        } else {
            self.recorder.last_id.fetch_add(1, Ordering::SeqCst) + 1
        };
        let notification = Notification {
            id,
            sender: header
                .sender()
                .map(|name| name.to_string())
                .unwrap_or_default(),
            app_name,
            replaces_id,
            app_icon,
            summary,
            body,
            actions,
            hints: hints
                .iter()
                .map(|(key, value)| (key.clone(), Hint::from_value(value)))
                .collect(),
            expire_timeout,
        };
        // The instant goes in first: whoever sees call N in `calls` finds its time.
        self.recorder
            .received_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(received);
        self.recorder
            .calls
            .send_modify(|calls| calls.push(notification));
        id
    }

    fn get_capabilities(&self) -> Vec<String> {
        self.recorder.capabilities.clone()
    }

    #[zbus(out_args("name", "vendor", "version", "spec_version"))]
    fn get_server_information(&self) -> (String, String, String, String) {
        (
            "tocsin-e2e-notifications".into(),
            "tocsin".into(),
            "1.0".into(),
            "1.2".into(),
        )
    }

    async fn close_notification(
        &self,
        id: u32,
        #[zbus(signal_emitter)] emitter: SignalEmitter<'_>,
    ) -> zbus::fdo::Result<()> {
        self.recorder
            .closed_by_app
            .send_modify(|closed| closed.push(id));
        Self::notification_closed(&emitter, id, CLOSED_BY_CALL).await?;
        Ok(())
    }

    #[zbus(signal)]
    async fn notification_closed(
        emitter: &SignalEmitter<'_>,
        id: u32,
        reason: u32,
    ) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn action_invoked(
        emitter: &SignalEmitter<'_>,
        id: u32,
        action_key: &str,
    ) -> zbus::Result<()>;
}

/// A running fake notification server and the test's view of it.
pub struct NotificationServer {
    /// The server's own connection (it owns [`NAME`]).
    connection: Connection,
    /// Every `Notify` call so far.
    calls: watch::Receiver<Vec<Notification>>,
    /// Ids closed by the app.
    closed_by_app: watch::Receiver<Vec<u32>>,
    /// How many calls [`next_notify`](Self::next_notify) has handed out.
    cursor: Mutex<usize>,
    /// Shared with the server object: the reception times.
    recorder: std::sync::Arc<Recorder>,
}

impl NotificationServer {
    /// Serves on the bus at `address`, answering `GetCapabilities` with `capabilities`.
    /// Fails if another server already owns the name.
    pub async fn start(address: &str, capabilities: &[&str]) -> Result<NotificationServer> {
        let (calls_tx, calls) = watch::channel(Vec::new());
        let (closed_tx, closed_by_app) = watch::channel(Vec::new());
        let recorder = std::sync::Arc::new(Recorder {
            calls: calls_tx,
            received_at: Mutex::new(Vec::new()),
            closed_by_app: closed_tx,
            last_id: AtomicU32::new(0),
            capabilities: capabilities.iter().map(|c| (*c).to_owned()).collect(),
        });
        let connection = zbus::connection::Builder::address(address)
            .serve_at(
                PATH,
                Server {
                    recorder: recorder.clone(),
                },
            )
            .name(NAME)
            .build()
            .await
            .with_context(|| format!("cannot own {NAME} on {address}"))?;
        Ok(NotificationServer {
            connection,
            calls,
            closed_by_app,
            cursor: Mutex::new(0),
            recorder,
        })
    }

    /// Every `Notify` call so far, in order.
    pub fn all(&self) -> Vec<Notification> {
        self.calls.borrow().clone()
    }

    /// The next `Notify` call not yet returned by this method, waiting up to `timeout`.
    pub async fn next_notify(&self, timeout: Duration) -> Result<Notification> {
        let wanted = *self.cursor.lock().unwrap_or_else(|p| p.into_inner());
        let mut calls = self.calls.clone();
        let waited =
            tokio::time::timeout(timeout, calls.wait_for(|calls| calls.len() > wanted)).await;
        let notification = match waited {
            Ok(Ok(calls)) => calls[wanted].clone(),
            Ok(Err(_)) => bail!("the notification server stopped"),
            Err(_) => bail!(
                "no Notify call #{} within {timeout:?} (calls so far: {:?})",
                wanted + 1,
                self.summaries()
            ),
        };
        *self.cursor.lock().unwrap_or_else(|p| p.into_inner()) = wanted + 1;
        Ok(notification)
    }

    /// The first `Notify` call (already received or still to come) matching
    /// `predicate`, waiting up to `timeout`; `what` names it in the error.
    pub async fn wait_for(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&Notification) -> bool,
    ) -> Result<Notification> {
        let mut calls = self.calls.clone();
        let waited = tokio::time::timeout(
            timeout,
            calls.wait_for(|calls| calls.iter().any(&predicate)),
        )
        .await;
        match waited {
            Ok(Ok(calls)) => calls
                .iter()
                .find(|n| predicate(n))
                .cloned()
                .context("the matching call vanished"),
            Ok(Err(_)) => bail!("the notification server stopped while waiting for {what}"),
            Err(_) => bail!(
                "no Notify call for {what} within {timeout:?} (calls so far: {:?})",
                self.summaries()
            ),
        }
    }

    /// Like [`wait_for`](Self::wait_for), with the instant the server received the
    /// call (taken as its handler started), for latency measurements.
    pub async fn wait_for_timed(
        &self,
        what: &str,
        timeout: Duration,
        predicate: impl Fn(&Notification) -> bool,
    ) -> Result<(Notification, Instant)> {
        let mut calls = self.calls.clone();
        let waited = tokio::time::timeout(
            timeout,
            calls.wait_for(|calls| calls.iter().any(&predicate)),
        )
        .await;
        let (index, notification) = match waited {
            Ok(Ok(calls)) => calls
                .iter()
                .enumerate()
                .find(|(_, n)| predicate(n))
                .map(|(index, n)| (index, n.clone()))
                .context("the matching call vanished")?,
            Ok(Err(_)) => bail!("the notification server stopped while waiting for {what}"),
            Err(_) => bail!(
                "no Notify call for {what} within {timeout:?} (calls so far: {:?})",
                self.summaries()
            ),
        };
        let received = self
            .recorder
            .received_at
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .get(index)
            .copied()
            .context("a recorded call has no reception time")?;
        Ok((notification, received))
    }

    /// Summaries of every call so far, for error messages.
    pub fn summaries(&self) -> Vec<String> {
        self.calls
            .borrow()
            .iter()
            .map(|n| n.summary.clone())
            .collect()
    }

    /// Ids the app closed with `CloseNotification`.
    pub fn closed_by_app(&self) -> Vec<u32> {
        self.closed_by_app.borrow().clone()
    }

    /// Waits up to `timeout` until the app has closed notification `id` with
    /// `CloseNotification`; returns every id it closed so far, in order.
    pub async fn wait_closed_by_app(&self, id: u32, timeout: Duration) -> Result<Vec<u32>> {
        let mut closed = self.closed_by_app.clone();
        let waited =
            tokio::time::timeout(timeout, closed.wait_for(|closed| closed.contains(&id))).await;
        match waited {
            Ok(Ok(closed)) => Ok(closed.clone()),
            Ok(Err(_)) => bail!("the notification server stopped while waiting for a close"),
            Err(_) => bail!(
                "the app did not close notification {id} within {timeout:?} (closed: {:?})",
                self.closed_by_app()
            ),
        }
    }

    /// Plays a click on action `key` of notification `id`: `ActionInvoked(id, key)`,
    /// then `NotificationClosed(id, 2)`, as a real server does.
    pub async fn invoke_action(&self, id: u32, key: &str) -> Result<()> {
        self.emit("ActionInvoked", &(id, key)).await?;
        self.emit("NotificationClosed", &(id, CLOSED_BY_USER)).await
    }

    /// `ActionInvoked(id, key)` alone, the notification staying on screen (a
    /// "resident" one): a test may repeat it, like a user clicking again, because
    /// the app starts listening for a notification's actions only after its
    /// `Notify` call returned, and a signal sent before that reaches nobody.
    pub async fn click(&self, id: u32, key: &str) -> Result<()> {
        self.emit("ActionInvoked", &(id, key)).await
    }

    /// Plays the user dismissing notification `id`: `NotificationClosed(id, 2)`.
    pub async fn close(&self, id: u32) -> Result<()> {
        self.emit("NotificationClosed", &(id, CLOSED_BY_USER)).await
    }

    async fn emit<B>(&self, member: &str, body: &B) -> Result<()>
    where
        B: serde::Serialize + zbus::DynamicType,
    {
        self.connection
            .emit_signal(None::<&str>, PATH, INTERFACE, member, body)
            .await
            .with_context(|| format!("cannot emit {member}"))
    }
}
