//! The user's actions: applied to the local store at once (the panel and the badge
//! follow the click, online or not) and queued durably in the outbox, which each
//! session sends once caught up.

use tocsin_protocol::frames::{ClientFrame, ProposalResponse};
use tocsin_protocol::notification::ProposalStatus;

use std::future::Future;
use std::sync::{Arc, Mutex};

use tokio::sync::mpsc;

use super::{Command, Engine};
use crate::events::EngineEvent;
use crate::gateway::Gateway;
use crate::policy::Policy;
use crate::session::SessionEnd;
use crate::store::LocalStore;

/// The parts of the engine that serve the user's commands — apart from the gateway,
/// so that a click is applied locally at once even while a connection attempt hangs
/// on a black-holed network for its whole timeout.
pub(crate) struct Desk<'e> {
    commands: &'e mut mpsc::Receiver<Command>,
    store: &'e Arc<Mutex<LocalStore>>,
    events: &'e mpsc::Sender<EngineEvent>,
    policy: &'e mut Policy,
}

impl<G: Gateway> Engine<G> {
    /// The gateway, and the desk serving commands meanwhile.
    pub(crate) fn split(&mut self) -> (&G, Desk<'_>) {
        let desk = Desk {
            commands: &mut self.commands,
            store: &self.store,
            events: &self.events,
            policy: &mut self.policy,
        };
        (&self.gateway, desk)
    }

    /// Applies an action locally (optimistic UI) and stores it in the outbox; returns
    /// the frame to send when connected. `None` for commands that are not actions,
    /// and when the action could not be saved (the user is told).
    pub(crate) async fn queue_action(&mut self, command: Command) -> Option<ClientFrame> {
        self.split().1.queue(command).await
    }
}

impl Desk<'_> {
    /// Runs `work` while serving commands: actions are applied and queued as they
    /// come. A shutdown or a network change abandons `work` (the session ends).
    pub(crate) async fn serve_until<F: Future>(
        &mut self,
        work: F,
    ) -> Result<F::Output, SessionEnd> {
        tokio::pin!(work);
        loop {
            tokio::select! {
                done = &mut work => return Ok(done),
                command = self.commands.recv() => match command {
                    None | Some(Command::Shutdown) => return Err(SessionEnd::Shutdown),
                    Some(Command::NetworkChanged) => return Err(SessionEnd::ReconnectNow),
                    Some(command) => {
                        self.queue(command).await;
                    }
                },
            }
        }
    }

    /// See [`Engine::queue_action`].
    pub(crate) async fn queue(&mut self, command: Command) -> Option<ClientFrame> {
        let frame = self.frame_for(command)?;
        let saved = super::on_store(self.store, move |store| {
            let frame = with_what_was_seen(store, frame)?;
            let read = apply_locally(store, &frame)?;
            store.enqueue(&frame)?;
            anyhow::Ok((frame, read, store.counts()?))
        })
        .await;
        match saved {
            Ok((frame, read, counts)) => {
                if !read.is_empty() {
                    let _ = self.events.send(EngineEvent::Read(read)).await;
                }
                let _ = self.events.send(EngineEvent::Counts(counts)).await;
                Some(frame)
            }
            Err(err) => {
                let warning = format!("the action could not be saved: {err}");
                let _ = self.events.send(EngineEvent::Warning(warning)).await;
                None
            }
        }
    }

    /// The frame of an action; commands that are not actions are handled here.
    fn frame_for(&mut self, command: Command) -> Option<ClientFrame> {
        let id = uuid::Uuid::now_v7().to_string();
        Some(match command {
            Command::MarkRead(notification_ids) => ClientFrame::MarkRead {
                id,
                notification_ids,
            },
            Command::MarkAllRead(kind) => ClientFrame::MarkAllRead {
                id,
                kind,
                up_to: None,
            },
            Command::Respond {
                proposal_id,
                response,
            } => ClientFrame::ProposalRespond {
                id,
                proposal_id,
                response,
            },
            Command::SetPreferences(prefs) => {
                // Not an action for the gateway: preferences are this device's own.
                self.policy.prefs = *prefs;
                return None;
            }
            Command::NetworkChanged | Command::Shutdown => return None,
        })
    }
}

/// A "mark all read" carries what the user saw when they clicked: the position of
/// every stream held, less those still being rebuilt (their older items are not
/// all shown yet). Whatever arrives later, however late the action is sent, stays
/// unread.
fn with_what_was_seen(store: &LocalStore, frame: ClientFrame) -> anyhow::Result<ClientFrame> {
    let ClientFrame::MarkAllRead {
        id,
        kind,
        up_to: None,
    } = frame
    else {
        return Ok(frame);
    };
    let mut seen = store.positions()?;
    for stream in store.pending_backfills()?.keys() {
        seen.remove(stream);
    }
    Ok(ClientFrame::MarkAllRead {
        id,
        kind,
        up_to: Some(seen),
    })
}

/// Applies an action to the local store before the gateway confirms it (optimistic);
/// returns the ids it made read.
pub fn apply_locally(store: &mut LocalStore, frame: &ClientFrame) -> anyhow::Result<Vec<String>> {
    let read = match frame {
        ClientFrame::MarkRead {
            notification_ids, ..
        } => store.apply_read(notification_ids)?,
        ClientFrame::MarkAllRead {
            kind,
            up_to: Some(up_to),
            ..
        } => store.apply_read_up_to(*kind, up_to)?,
        // Queued by an older version of the client, without positions.
        ClientFrame::MarkAllRead {
            kind, up_to: None, ..
        } => store.apply_read_all(*kind, chrono::Utc::now())?,
        ClientFrame::ProposalRespond {
            proposal_id,
            response,
            ..
        } => {
            let status = match response {
                ProposalResponse::Accept => ProposalStatus::Accepted,
                ProposalResponse::Reject => ProposalStatus::Rejected,
            };
            store.set_proposal_status(proposal_id, status)?;
            Vec::new()
        }
        _ => Vec::new(),
    };
    Ok(read)
}
