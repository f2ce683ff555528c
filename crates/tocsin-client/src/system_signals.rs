//! Nudges from the operating system: network changes (NetworkManager) and sleep/resume
//! (logind), heard on the Linux system bus.
//!
//! Why: a laptop that wakes up or joins another network holds a WebSocket that is dead
//! or goes through a route that no longer exists. Without a nudge the engine notices only
//! when the heartbeat times out or a backoff delay ends, and a lawyer waits that long for
//! notifications. With one it reconnects at once (`Command::NetworkChanged`).
//!
//! Both services are optional: a server has no NetworkManager, a container has no logind,
//! and either may start after us. The match rules name the service's well-known name, so
//! the bus daemon delivers its signals as soon as someone owns that name, and only from
//! that owner (any process may emit a signal on the system bus; a forged one is dropped).
//!
//! What counts as a network change:
//! - `StateChanged` into a connected state (>= 50) from any other state, including from
//!   another connected state (60 → 70: a new route, a VPN). A repeated state (70 → 70)
//!   is not a change.
//! - `PrimaryConnection` (a property, through `PropertiesChanged`) moving from one active
//!   connection straight to another (Wi-Fi → Ethernet plugged in, a VPN taking the default
//!   route): NetworkManager stays at 70 then, so `StateChanged` says nothing. A move from
//!   or to `/` (no connection) is not reported: the state changes with it and that signal
//!   is the nudge, so one switch gives one nudge, not two.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures_util::StreamExt;
use zbus::message::Type as MessageType;
use zbus::proxy::{CacheProperties, MethodFlags};
use zbus::{Connection, MatchRule, Message, MessageStream, OwnedVariant};

use crate::engine::{Command, EngineHandle};

const NM_NAME: &str = "org.freedesktop.NetworkManager";
const NM_PATH: &str = "/org/freedesktop/NetworkManager";
const NM_INTERFACE: &str = "org.freedesktop.NetworkManager";
const LOGIND_NAME: &str = "org.freedesktop.login1";
const LOGIND_PATH: &str = "/org/freedesktop/login1";
const LOGIND_INTERFACE: &str = "org.freedesktop.login1.Manager";
const PROPERTIES_INTERFACE: &str = "org.freedesktop.DBus.Properties";
/// `NM_STATE_CONNECTED_LOCAL`: the lowest state with a usable link.
const NM_CONNECTED: u32 = 50;
/// `NM_STATE_UNKNOWN`: what a nudge reports before any state was heard.
const NM_UNKNOWN: u32 = 0;
/// NetworkManager's "no primary connection".
const NO_CONNECTION: &str = "/";
/// The initial property read must not hold up the listener behind a hung service.
const READ_TIMEOUT: Duration = Duration::from_secs(2);

/// One nudge from the operating system.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SystemEvent {
    /// The network changed: reconnect now. `state` is NetworkManager's `NM_STATE`
    /// (50, 60 or 70; 0 when a connection switch came before any state was known).
    NetworkChanged {
        /// NetworkManager's state at the change.
        state: u32,
    },
    /// The machine is about to sleep (logind `PrepareForSleep(true)`).
    Sleeping,
    /// The machine woke up (logind `PrepareForSleep(false)`): reconnect now.
    Resumed,
}

/// Listens on `bus` until it closes; calls `on_event` for each nudge. `on_event` runs on
/// the listener's task: it must not block (send to a channel, spawn).
///
/// Fails only when the match rules cannot be added; absent services are fine.
pub async fn listen(
    bus: Connection,
    on_event: impl Fn(SystemEvent) + Send + Sync + 'static,
) -> zbus::Result<()> {
    SystemSignals::subscribe(&bus).await?.run(on_event).await
}

/// Nudges `engine` on the system's signals for as long as the task runs: a network
/// change or a wake-up sends `Command::NetworkChanged` (reconnect now). Going to
/// sleep calls for nothing: the link cannot be closed cleanly in that instant (that
/// would need a logind delay inhibitor), and the wake-up reconnects. A burst of
/// signals (Wi-Fi flapping, a VPN coming up just after) queues one reconnect, not
/// one per signal. Abort the task when the engine stops. The desktop and `tocsin
/// listen` both use it.
pub fn nudge_engine(engine: EngineHandle) -> tokio::task::JoinHandle<()> {
    let in_flight = Arc::new(AtomicBool::new(false));
    spawn_system(move |event| {
        if !wants_reconnect(event) || in_flight.swap(true, Ordering::SeqCst) {
            return;
        }
        tracing::info!(?event, "reconnecting at once");
        // The callback must not block, and `send` waits for room in the engine's
        // queue: hand it to a task.
        let engine = engine.clone();
        let in_flight = in_flight.clone();
        tokio::spawn(async move {
            engine.send(Command::NetworkChanged).await;
            in_flight.store(false, Ordering::SeqCst);
        });
    })
}

/// Whether `event` calls for a reconnect now (see [`nudge_engine`]).
pub fn wants_reconnect(event: SystemEvent) -> bool {
    match event {
        SystemEvent::NetworkChanged { .. } | SystemEvent::Resumed => true,
        SystemEvent::Sleeping => false,
    }
}

/// Connects to the system bus and spawns [`listen`]. Must be called inside a tokio
/// runtime. Without a system bus it logs one warning and the task ends: the app keeps
/// working and the heartbeat still detects dead links. An absent service is logged once
/// too, but the task keeps listening in case it starts later.
pub fn spawn_system(
    on_event: impl Fn(SystemEvent) + Send + Sync + 'static,
) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let result = async {
            let bus = Connection::system().await?;
            let signals = SystemSignals::subscribe(&bus).await?;
            warn_absent_services(&bus).await;
            signals.run(on_event).await
        }
        .await;
        match result {
            Ok(()) => tracing::warn!("the system bus closed: no more network or resume nudges"),
            Err(err) => tracing::warn!(
                %err,
                "system bus unavailable: reconnecting after sleep or a network change waits for the heartbeat"
            ),
        }
    })
}

/// Subscriptions on one bus, made before anything is reported so that no signal sent
/// after [`SystemSignals::subscribe`] returns is missed (tests rely on this).
pub struct SystemSignals {
    streams: Vec<MessageStream>,
    network: NetworkTracker,
}

impl SystemSignals {
    /// Adds the match rules on `bus` and reads NetworkManager's current state, if it runs.
    pub async fn subscribe(bus: &Connection) -> zbus::Result<Self> {
        let mut streams = Vec::with_capacity(3);
        for rule in match_rules()? {
            streams.push(MessageStream::for_match_rule(rule, bus, None).await?);
        }
        // After the rules: a change during the read is then heard, not lost.
        let network = NetworkTracker {
            state: read_nm_property::<u32>(bus, "State").await,
            primary: read_nm_property::<zbus::OwnedObjectPath>(bus, "PrimaryConnection")
                .await
                .map(|path| path.as_str().to_owned()),
        };
        Ok(Self { streams, network })
    }

    /// Reports nudges until the bus closes.
    pub async fn run(
        mut self,
        on_event: impl Fn(SystemEvent) + Send + Sync + 'static,
    ) -> zbus::Result<()> {
        let mut messages = futures_util::stream::select_all(self.streams);
        while let Some(message) = messages.next().await {
            match message {
                Ok(message) => {
                    if let Some(event) = self.network.event_for(&message) {
                        on_event(event);
                    }
                }
                // zbus reports only a dead socket here, then ends the streams.
                Err(err) => tracing::debug!(%err, "the bus connection ended"),
            }
        }
        Ok(())
    }
}

/// NetworkManager's state and primary connection as last heard, to tell a change from a
/// repetition. `None` until known.
struct NetworkTracker {
    state: Option<u32>,
    primary: Option<String>,
}

impl NetworkTracker {
    /// The nudge `message` (one of our signals) means, if any.
    fn event_for(&mut self, message: &Message) -> Option<SystemEvent> {
        let header = message.header();
        let body = message.body();
        match header.member()?.as_str() {
            "PrepareForSleep" => Some(match body.deserialize::<bool>().ok()? {
                true => SystemEvent::Sleeping,
                false => SystemEvent::Resumed,
            }),
            "StateChanged" => self.on_state(body.deserialize::<u32>().ok()?),
            "PropertiesChanged" => {
                let (_, changed, _) = body
                    .deserialize::<(String, HashMap<String, OwnedVariant>, Vec<String>)>()
                    .ok()?;
                let path = <&zbus::ObjectPath>::try_from(changed.get("PrimaryConnection")?).ok()?;
                self.on_primary(path.as_str())
            }
            _ => None,
        }
    }

    fn on_state(&mut self, state: u32) -> Option<SystemEvent> {
        let previous = self.state.replace(state);
        (state >= NM_CONNECTED && previous != Some(state))
            .then_some(SystemEvent::NetworkChanged { state })
    }

    fn on_primary(&mut self, primary: &str) -> Option<SystemEvent> {
        let previous = self.primary.replace(primary.to_owned())?;
        // Only a direct switch; through "/" the state changes and nudges (module doc).
        let switched = previous != NO_CONNECTION && primary != NO_CONNECTION && previous != primary;
        switched.then(|| SystemEvent::NetworkChanged {
            state: self.state.unwrap_or(NM_UNKNOWN),
        })
    }
}

/// The three signals we follow, each only from its service's owner.
fn match_rules() -> zbus::Result<[MatchRule<'static>; 3]> {
    let signal = |name, path| {
        MatchRule::builder()
            .msg_type(MessageType::Signal)
            .sender(name)
            .path(path)
    };
    Ok([
        signal(NM_NAME, NM_PATH)
            .interface(NM_INTERFACE)
            .member("StateChanged")
            .build()?,
        signal(NM_NAME, NM_PATH)
            .interface(PROPERTIES_INTERFACE)
            .member("PropertiesChanged")
            .arg(0, NM_INTERFACE)
            .build()?,
        signal(LOGIND_NAME, LOGIND_PATH)
            .interface(LOGIND_INTERFACE)
            .member("PrepareForSleep")
            .build()?,
    ])
}

/// One NetworkManager property, or `None` when it does not run. `NO_AUTO_START`: a
/// listener must not start NetworkManager through D-Bus activation.
async fn read_nm_property<T>(bus: &Connection, name: &str) -> Option<T>
where
    T: TryFrom<OwnedVariant>,
{
    let read = async {
        let proxy: zbus::Proxy<'_> = zbus::proxy::Builder::new(bus)
            .destination(NM_NAME)
            .path(NM_PATH)
            .interface(PROPERTIES_INTERFACE)
            .cache_properties(CacheProperties::No)
            .build()
            .await?;
        proxy
            .call_with_flags::<_, _, OwnedVariant>(
                "Get",
                MethodFlags::NO_AUTO_START,
                &(NM_INTERFACE, name),
            )
            .await
    };
    match tokio::time::timeout(READ_TIMEOUT, read).await {
        Ok(Ok(Some(value))) => T::try_from(value).ok(),
        Ok(Ok(None)) | Err(_) => None,
        Ok(Err(err)) => {
            tracing::debug!(%err, property = name, "NetworkManager's property is unknown");
            None
        }
    }
}

/// Logs (once, at start) which service is not on the bus: its nudges come only once it
/// starts, so a reconnect after sleep may wait for the heartbeat meanwhile.
async fn warn_absent_services(bus: &Connection) {
    let Ok(dbus) = zbus::fdo::DBusProxy::new(bus).await else {
        return;
    };
    for name in [NM_NAME, LOGIND_NAME] {
        let Ok(bus_name) = zbus::names::BusName::try_from(name) else {
            continue;
        };
        if let Ok(false) = dbus.name_has_owner(bus_name).await {
            tracing::warn!(
                service = name,
                "not on the system bus: no nudges from it until it starts"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_network_change_and_a_resume_reconnect_going_to_sleep_does_not() {
        assert!(wants_reconnect(SystemEvent::NetworkChanged { state: 70 }));
        assert!(wants_reconnect(SystemEvent::Resumed));
        assert!(!wants_reconnect(SystemEvent::Sleeping));
    }
}
