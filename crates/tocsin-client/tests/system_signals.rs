//! `system_signals` against fake NetworkManager and logind services on a private
//! `dbus-daemon`: the real bus daemon applies the match rules, so what is filtered by
//! sender, path and interface is tested as it runs on a laptop.
//!
//! "Nothing is reported" is checked without sleeping: the ignored signal is followed by
//! a signal that must be reported through the same subscription, which keeps their
//! order, so the next event being that one proves the first was dropped.
#![allow(clippy::unwrap_used)]

use std::process::Stdio;
use std::time::Duration;

use tocsin_client::system_signals::{SystemEvent, SystemSignals};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::sync::mpsc::{UnboundedReceiver, error::TryRecvError, unbounded_channel};
use zbus::object_server::{InterfaceRef, SignalEmitter};
use zbus::{Connection, OwnedObjectPath};

const NM_NAME: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const LOGIND_NAME: &str = "org.freedesktop.login1";
const LOGIND_PATH: &str = "/org/freedesktop/login1";
/// Generous for a loaded CI machine; only a failing test waits that long.
const EVENT_TIMEOUT: Duration = Duration::from_secs(10);

/// A `dbus-daemon` of our own, killed when dropped.
struct PrivateBus {
    address: String,
    _daemon: tokio::process::Child,
    _dir: tempfile::TempDir,
}

impl PrivateBus {
    async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let config = dir.path().join("bus.conf");
        std::fs::write(&config, bus_config(&dir.path().join("bus"))).unwrap();
        // Its complaints (e.g. about the fd limit) stay out of the test output.
        let log = dir.path().join("dbus-daemon.log");
        let mut daemon = tokio::process::Command::new("dbus-daemon")
            .arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address"])
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|err| {
                panic!("dbus-daemon cannot be started ({err}): install dbus (`cargo xtask setup`)")
            });
        let mut lines = BufReader::new(daemon.stdout.take().unwrap()).lines();
        let address = tokio::time::timeout(EVENT_TIMEOUT, lines.next_line())
            .await
            .expect("dbus-daemon printed no address in time")
            .unwrap()
            .unwrap_or_else(|| {
                let log = std::fs::read_to_string(&log).unwrap_or_default();
                panic!("dbus-daemon exited before printing its address: {log}")
            });
        Self {
            address,
            _daemon: daemon,
            _dir: dir,
        }
    }

    async fn connect(&self) -> Connection {
        zbus::connection::Builder::address(self.address.as_str())
            .build()
            .await
            .unwrap()
    }
}

/// A session-type bus that lets anyone own any name, with no service activation.
fn bus_config(socket: &std::path::Path) -> String {
    format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        socket.display()
    )
}

struct FakeNetworkManager {
    state: u32,
    primary: OwnedObjectPath,
    connectivity: u32,
}

#[zbus::interface(name = "org.freedesktop.NetworkManager")]
impl FakeNetworkManager {
    /// Without a change signal: its `state_changed` would clash with the signal's.
    #[zbus(property(emits_changed_signal = "false"))]
    fn state(&self) -> u32 {
        self.state
    }

    #[zbus(property)]
    fn connectivity(&self) -> u32 {
        self.connectivity
    }

    #[zbus(property)]
    fn primary_connection(&self) -> OwnedObjectPath {
        self.primary.clone()
    }

    #[zbus(signal)]
    async fn state_changed(emitter: &SignalEmitter<'_>, state: u32) -> zbus::Result<()>;
}

struct FakeLogind;

#[zbus::interface(name = "org.freedesktop.login1.Manager")]
impl FakeLogind {
    #[zbus(signal)]
    async fn prepare_for_sleep(emitter: &SignalEmitter<'_>, start: bool) -> zbus::Result<()>;
}

/// The same signal names on another interface: must be ignored.
struct Decoy;

#[zbus::interface(name = "org.example.Decoy")]
impl Decoy {
    #[zbus(signal)]
    async fn state_changed(emitter: &SignalEmitter<'_>, state: u32) -> zbus::Result<()>;

    #[zbus(signal)]
    async fn prepare_for_sleep(emitter: &SignalEmitter<'_>, start: bool) -> zbus::Result<()>;
}

/// A service on its own connection, like the real one. `name` is owned only if given.
struct Service<I> {
    iface: InterfaceRef<I>,
    decoy: InterfaceRef<Decoy>,
    _conn: Connection,
}

async fn serve<I: zbus::object_server::Interface>(
    bus: &PrivateBus,
    name: Option<&str>,
    path: &str,
    iface: I,
) -> Service<I> {
    let conn = bus.connect().await;
    let server = conn.object_server();
    assert!(server.at(path, iface).await.unwrap().is_none());
    assert!(server.at(path, Decoy).await.unwrap().is_none());
    if let Some(name) = name {
        conn.request_name(name).await.unwrap();
    }
    Service {
        iface: server.interface(path).await.unwrap(),
        decoy: server.interface(path).await.unwrap(),
        _conn: conn,
    }
}

async fn network_manager(
    bus: &PrivateBus,
    state: u32,
    primary: &str,
) -> Service<FakeNetworkManager> {
    let nm = FakeNetworkManager {
        state,
        primary: OwnedObjectPath::try_from(primary).unwrap(),
        connectivity: 4,
    };
    serve(bus, Some(NM_NAME), NM_PATH, nm).await
}

async fn logind(bus: &PrivateBus) -> Service<FakeLogind> {
    serve(bus, Some(LOGIND_NAME), LOGIND_PATH, FakeLogind).await
}

impl Service<FakeNetworkManager> {
    async fn state(&self, state: u32) {
        self.iface.state_changed(state).await.unwrap();
    }

    /// Sets `PrimaryConnection` and emits its `PropertiesChanged`.
    async fn primary(&self, path: &str) {
        self.iface.get_mut().await.primary = OwnedObjectPath::try_from(path).unwrap();
        let nm = self.iface.get().await;
        nm.primary_connection_changed(self.iface.signal_emitter())
            .await
            .unwrap();
    }

    /// A `PropertiesChanged` of `Connectivity` alone.
    async fn connectivity(&self, connectivity: u32) {
        self.iface.get_mut().await.connectivity = connectivity;
        let nm = self.iface.get().await;
        nm.connectivity_changed(self.iface.signal_emitter())
            .await
            .unwrap();
    }
}

impl Service<FakeLogind> {
    async fn sleep(&self, start: bool) {
        self.iface.prepare_for_sleep(start).await.unwrap();
    }
}

/// The listener's side: what it reported, and its task.
struct Heard {
    events: UnboundedReceiver<SystemEvent>,
    task: tokio::task::JoinHandle<zbus::Result<()>>,
}

/// Subscribes (done when this returns: no race with the signals sent next), then runs.
async fn listen(bus: &PrivateBus) -> Heard {
    let signals = SystemSignals::subscribe(&bus.connect().await)
        .await
        .unwrap();
    let (sender, events) = unbounded_channel();
    let task = tokio::spawn(signals.run(move |event| {
        let _ = sender.send(event);
    }));
    Heard { events, task }
}

impl Heard {
    async fn next(&mut self) -> SystemEvent {
        tokio::time::timeout(EVENT_TIMEOUT, self.events.recv())
            .await
            .expect("an event in time")
            .expect("the listener is running")
    }

    /// Nothing more was reported (called after the sentinel event came).
    fn assert_quiet(&mut self) {
        assert_eq!(self.events.try_recv(), Err(TryRecvError::Empty));
    }
}

fn changed(state: u32) -> SystemEvent {
    SystemEvent::NetworkChanged { state }
}

const CONNECTION_1: &str = "/org/freedesktop/NetworkManager/ActiveConnection/1";
const CONNECTION_2: &str = "/org/freedesktop/NetworkManager/ActiveConnection/2";
const CONNECTION_3: &str = "/org/freedesktop/NetworkManager/ActiveConnection/3";
const CONNECTION_4: &str = "/org/freedesktop/NetworkManager/ActiveConnection/4";

#[tokio::test]
async fn connecting_nudges_once_and_a_repeated_state_not_at_all() {
    let bus = PrivateBus::start().await;
    let nm = network_manager(&bus, 20, "/").await;
    let mut heard = listen(&bus).await;

    nm.state(40).await; // connecting: not yet usable
    nm.state(70).await;
    assert_eq!(heard.next().await, changed(70));
    nm.state(70).await; // the same state again: no change
    nm.state(60).await; // sentinel: another connected state is a change
    assert_eq!(heard.next().await, changed(60));
    nm.state(20).await;
    nm.state(70).await;
    assert_eq!(heard.next().await, changed(70));
    heard.assert_quiet();
}

#[tokio::test]
async fn sleeping_then_resumed() {
    let bus = PrivateBus::start().await;
    let login = logind(&bus).await;
    let mut heard = listen(&bus).await;

    login.sleep(true).await;
    login.sleep(false).await;
    assert_eq!(heard.next().await, SystemEvent::Sleeping);
    assert_eq!(heard.next().await, SystemEvent::Resumed);
    heard.assert_quiet();
}

#[tokio::test]
async fn services_that_start_later_are_heard() {
    let bus = PrivateBus::start().await;
    let mut heard = listen(&bus).await;

    let nm = network_manager(&bus, 20, "/").await;
    nm.state(70).await;
    assert_eq!(heard.next().await, changed(70));
    let login = logind(&bus).await;
    login.sleep(false).await;
    assert_eq!(heard.next().await, SystemEvent::Resumed);
    heard.assert_quiet();
}

#[tokio::test]
async fn a_direct_switch_of_primary_connection_nudges() {
    let bus = PrivateBus::start().await;
    let nm = network_manager(&bus, 70, CONNECTION_1).await;
    let mut heard = listen(&bus).await;

    nm.primary(CONNECTION_2).await; // Ethernet plugged in while on Wi-Fi: still 70
    assert_eq!(heard.next().await, changed(70));
    // Through "no connection": StateChanged is the nudge there, not this.
    nm.primary("/").await;
    nm.primary(CONNECTION_3).await;
    nm.primary(CONNECTION_3).await; // the same again
    nm.connectivity(4).await; // another property
    nm.primary(CONNECTION_4).await; // sentinel
    assert_eq!(heard.next().await, changed(70));
    heard.assert_quiet();
}

#[tokio::test]
async fn other_interfaces_and_impostors_are_ignored() {
    let bus = PrivateBus::start().await;
    let nm = network_manager(&bus, 20, "/").await;
    let login = logind(&bus).await;
    // Same path and interface as NetworkManager, but it does not own the name.
    let impostor = serve(
        &bus,
        None,
        NM_PATH,
        FakeNetworkManager {
            state: 20,
            primary: OwnedObjectPath::try_from("/").unwrap(),
            connectivity: 4,
        },
    )
    .await;
    let mut heard = listen(&bus).await;

    nm.decoy.state_changed(70).await.unwrap();
    impostor.iface.state_changed(70).await.unwrap();
    nm.state(60).await; // sentinel
    assert_eq!(heard.next().await, changed(60));

    login.decoy.prepare_for_sleep(false).await.unwrap();
    login.sleep(true).await; // sentinel
    assert_eq!(heard.next().await, SystemEvent::Sleeping);
    heard.assert_quiet();
}

#[tokio::test]
async fn the_listener_ends_when_the_bus_closes() {
    let bus = PrivateBus::start().await;
    let heard = listen(&bus).await;

    drop(bus); // kills dbus-daemon
    let result = tokio::time::timeout(EVENT_TIMEOUT, heard.task)
        .await
        .expect("the listener ends in time")
        .unwrap();
    assert!(result.is_ok(), "{result:?}");
}
