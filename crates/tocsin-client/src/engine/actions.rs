//! The user's actions: applied to the local store at once (the panel and the badge
//! follow the click, online or not) and queued durably in the outbox, which each
//! session sends once caught up.

use tocsin_protocol::frames::{ClientFrame, ProposalResponse};
use tocsin_protocol::notification::ProposalStatus;

use super::{Command, Engine};
use crate::events::EngineEvent;
use crate::gateway::Gateway;
use crate::store::LocalStore;

impl<G: Gateway> Engine<G> {
    /// Applies an action locally (optimistic UI) and stores it in the outbox; returns
    /// the frame to send when connected. `None` for commands that are not actions,
    /// and when the action could not be saved (the user is told).
    pub(crate) async fn queue_action(&mut self, command: Command) -> Option<ClientFrame> {
        let frame = self.frame_for(command)?;
        let saved = self
            .with_store(move |store| {
                let frame = with_what_was_seen(store, frame)?;
                apply_locally(store, &frame)?;
                store.enqueue(&frame)?;
                anyhow::Ok((frame, store.unread_by_tab()?))
            })
            .await;
        match saved {
            Ok((frame, unread)) => {
                self.emit(EngineEvent::Unread(unread)).await;
                Some(frame)
            }
            Err(err) => {
                self.emit(EngineEvent::Warning(format!(
                    "the action could not be saved: {err}"
                )))
                .await;
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

/// Applies an action to the local store before the gateway confirms it (optimistic).
pub fn apply_locally(store: &mut LocalStore, frame: &ClientFrame) -> anyhow::Result<()> {
    match frame {
        ClientFrame::MarkRead {
            notification_ids, ..
        } => {
            store.apply_read(notification_ids)?;
        }
        ClientFrame::MarkAllRead {
            kind,
            up_to: Some(up_to),
            ..
        } => {
            store.apply_read_up_to(*kind, up_to)?;
        }
        // Queued by an older version of the client, without positions.
        ClientFrame::MarkAllRead {
            kind, up_to: None, ..
        } => {
            store.apply_read_all(*kind, chrono::Utc::now())?;
        }
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
        }
        _ => {}
    }
    Ok(())
}
