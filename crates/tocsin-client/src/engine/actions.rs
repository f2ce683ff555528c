//! The user's actions: queued durably in the outbox, which each session sends once
//! caught up, and applied to the local store at once (the panel, the badge and the
//! tray's mark follow the click, online or not).

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
use crate::store::{Counts, LocalStore};

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
    /// the frames to send when connected (several for an acknowledgement of many
    /// deadlines). None for commands that are not actions, and when the action could
    /// not be saved (the user is told).
    pub(crate) async fn queue_action(&mut self, command: Command) -> Vec<ClientFrame> {
        self.split().1.queue(command).await
    }
}

/// An action as the user asked for it, before the store turns it into frames.
enum Action {
    /// One frame (completed with what the user saw, for "mark all read").
    Frame(ClientFrame),
    /// Deadlines to acknowledge: sent as the ids of the alerts held for them.
    Acknowledge(Vec<String>),
}

/// Alert ids sent per deadline: any one acknowledges it; a few more stand in for the
/// newest should the gateway no longer hold it (retention). Newest first, so the
/// gateway records the acknowledgement against the alert the user last saw.
const ALERTS_PER_DEADLINE: usize = 5;
/// Deadlines per `acknowledge` frame, keeping it within the gateway's 500 ids.
const DEADLINES_PER_FRAME: usize = 100;

/// What applying actions locally changed, for the events that follow.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Applied {
    /// Notifications that went from unread to read.
    pub read: Vec<String>,
    /// Deadlines acknowledged by this device's user.
    pub acknowledged: Vec<String>,
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

    /// See [`Engine::queue_action`]. Each frame is queued before it is applied: an
    /// action that could not be saved must not look done.
    pub(crate) async fn queue(&mut self, command: Command) -> Vec<ClientFrame> {
        let Some(action) = self.action_for(command) else {
            return Vec::new();
        };
        let saved = super::on_store(self.store, move |store| {
            let frames = frames_of(store, action)?;
            let mut applied = Applied::default();
            for frame in &frames {
                store.enqueue(frame)?;
                let done = apply_locally(store, frame)?;
                applied.read.extend(done.read);
                applied.acknowledged.extend(done.acknowledged);
            }
            anyhow::Ok((frames, applied, store.counts()?))
        })
        .await;
        match saved {
            Ok((frames, applied, counts)) => {
                self.report(applied, counts).await;
                frames
            }
            Err(err) => {
                let warning = format!("the action could not be saved: {err}");
                let _ = self.events.send(EngineEvent::Warning(warning)).await;
                Vec::new()
            }
        }
    }

    /// Tells the app what a click changed.
    async fn report(&mut self, applied: Applied, counts: Counts) {
        if !applied.read.is_empty() {
            let _ = self.events.send(EngineEvent::Read(applied.read)).await;
        }
        if !applied.acknowledged.is_empty() {
            let deadline_ids = applied.acknowledged;
            let _ = self
                .events
                .send(EngineEvent::Acknowledged { deadline_ids })
                .await;
        }
        let _ = self.events.send(EngineEvent::Counts(counts)).await;
    }

    /// The action of a command; commands that are not actions are handled here.
    fn action_for(&mut self, command: Command) -> Option<Action> {
        let id = new_action_id();
        Some(Action::Frame(match command {
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
            Command::Acknowledge { deadline_ids } => {
                return Some(Action::Acknowledge(deadline_ids));
            }
            Command::ReportShown { notification_ids } => ClientFrame::Shown {
                id,
                notification_ids,
            },
            Command::SetPreferences(prefs) => {
                // Not an action for the gateway: preferences are this device's own.
                self.policy.prefs = *prefs;
                return None;
            }
            Command::NetworkChanged | Command::Shutdown => return None,
        }))
    }
}

/// A fresh client action id.
fn new_action_id() -> String {
    uuid::Uuid::now_v7().to_string()
}

/// The frames of an action, completed from the store.
fn frames_of(store: &LocalStore, action: Action) -> anyhow::Result<Vec<ClientFrame>> {
    match action {
        Action::Frame(frame) => Ok(vec![with_what_was_seen(store, frame)?]),
        Action::Acknowledge(deadline_ids) => acknowledge_frames(store, &deadline_ids),
    }
}

/// `acknowledge` frames for deadlines: the alerts held for them, newest first. A
/// deadline with no alert held cannot be acknowledged from here (nothing to name).
fn acknowledge_frames(
    store: &LocalStore,
    deadline_ids: &[String],
) -> anyhow::Result<Vec<ClientFrame>> {
    let alerts = store.alert_ids_by_deadline(deadline_ids)?;
    if alerts.len() < deadline_ids.len() {
        tracing::warn!(
            asked = deadline_ids.len(),
            held = alerts.len(),
            "acknowledging deadlines without any alert held: those are skipped"
        );
    }
    let frames = alerts
        .chunks(DEADLINES_PER_FRAME)
        .map(|chunk| ClientFrame::Acknowledge {
            id: new_action_id(),
            notification_ids: chunk
                .iter()
                .flat_map(|(_, ids)| ids.iter().take(ALERTS_PER_DEADLINE).cloned())
                .collect(),
        })
        .collect();
    Ok(frames)
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
/// says what it changed.
pub fn apply_locally(store: &mut LocalStore, frame: &ClientFrame) -> anyhow::Result<Applied> {
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
        ClientFrame::Acknowledge {
            id,
            notification_ids,
        } => {
            let acknowledged =
                store.acknowledge_locally(id, notification_ids, chrono::Utc::now())?;
            return Ok(Applied {
                read: Vec::new(),
                acknowledged,
            });
        }
        _ => Vec::new(),
    };
    Ok(Applied {
        read,
        acknowledged: Vec::new(),
    })
}
