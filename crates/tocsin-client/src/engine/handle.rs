//! The app's side of a running engine: commands in, through one cheap handle.

use std::sync::{Arc, Mutex};

use tocsin_protocol::Kind;
use tocsin_protocol::frames::ProposalResponse;
use tokio::sync::mpsc;

use crate::store::LocalStore;

/// What the app asks of the engine.
#[derive(Debug)]
pub enum Command {
    /// Mark notifications read (on every device).
    MarkRead(Vec<String>),
    /// Mark everything (of a kind) read.
    MarkAllRead(Option<Kind>),
    /// Accept or reject a proposal.
    Respond {
        /// The proposal.
        proposal_id: String,
        /// The answer.
        response: ProposalResponse,
    },
    /// The user edited their notification preferences: decide later toasts with these.
    SetPreferences(Box<crate::policy::Preferences>),
    /// The network changed (new Wi-Fi, VPN up) or the machine woke up: reconnect now.
    NetworkChanged,
    /// Stop the engine.
    Shutdown,
}

/// The app's side of a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    /// Commands to the engine task.
    commands: mpsc::Sender<Command>,
    /// The local store, for the app's queries (inbox lists, counts).
    pub store: Arc<Mutex<LocalStore>>,
}

impl EngineHandle {
    pub(crate) fn new(commands: mpsc::Sender<Command>, store: Arc<Mutex<LocalStore>>) -> Self {
        EngineHandle { commands, store }
    }

    /// Sends a command; false when the engine has stopped.
    pub async fn send(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }
}
