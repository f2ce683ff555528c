//! Nudges from the operating system for the running engine: a network change
//! (NetworkManager) or a resume from sleep (logind), heard on the system bus by
//! [`tocsin_client::system_signals`], becomes `Command::NetworkChanged` — reconnect now
//! instead of waiting for the heartbeat to time out or a backoff delay to end.
//!
//! One listener per engine: started with it ([`Nudges::start`]), stopped with it
//! (sign-out, another account, quit, the gateway refusing the device), since the
//! listener holds a handle to that engine and must not outlive it.

use tocsin_client::engine::EngineHandle;
use tocsin_client::system_signals;

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
        Nudges {
            task: system_signals::nudge_engine(engine),
        }
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
