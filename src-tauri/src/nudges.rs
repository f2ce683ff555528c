//! Nudges from the operating system for the running engine: a network change
//! (NetworkManager) or a resume from sleep (logind), heard on the system bus by
//! [`tocsin_client::system_signals`], becomes `Command::NetworkChanged` — reconnect now
//! instead of waiting for the heartbeat to time out or a backoff delay to end.
//!
//! One listener per engine: started with it ([`Nudges::start`]), stopped with it
//! (sign-out, another account, quit, the gateway refusing the device), since the
//! listener holds a handle to that engine and must not outlive it.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tocsin_client::engine::{Command, EngineHandle};
use tocsin_client::system_signals::{self, SystemEvent};

/// The running listener; stops it when dropped.
pub struct Nudges {
    /// The listener task (its own system bus connection).
    task: tokio::task::JoinHandle<()>,
}

impl Nudges {
    /// Listens on the system bus and nudges `engine`. Must run inside the tokio
    /// runtime. Without a system bus it logs once and does nothing more: the engine
    /// still notices dead links through its heartbeat.
    pub fn start(engine: EngineHandle) -> Nudges {
        // One nudge on its way is enough: a burst of signals (Wi-Fi flapping, a VPN
        // coming up right after) must not queue a reconnect per signal.
        let in_flight = Arc::new(AtomicBool::new(false));
        let task = system_signals::spawn_system(move |event| {
            if !wants_reconnect(event) || in_flight.swap(true, Ordering::SeqCst) {
                return;
            }
            tracing::info!(?event, "reconnecting at once");
            // The callback must not block, and `send` awaits room in the engine's
            // queue: hand it to a task.
            let engine = engine.clone();
            let in_flight = in_flight.clone();
            tokio::spawn(async move {
                engine.send(Command::NetworkChanged).await;
                in_flight.store(false, Ordering::SeqCst);
            });
        });
        Nudges { task }
    }

    /// Stops listening.
    pub fn stop(&self) {
        self.task.abort();
    }
}

impl Drop for Nudges {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Whether `event` calls for a reconnect now.
///
/// `Sleeping` does not: the connection cannot be closed cleanly in the instant
/// before the machine sleeps (that would need a logind delay inhibitor, which we do
/// not hold), and nothing is lost by not trying — on wake `Resumed` reconnects at
/// once, and the engine's clock watch notices the jump too.
pub fn wants_reconnect(event: SystemEvent) -> bool {
    match event {
        SystemEvent::NetworkChanged { .. } | SystemEvent::Resumed => true,
        SystemEvent::Sleeping => false,
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
