//! One handler per frame the gateway sends during the live phase.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use tocsin_protocol::frames::{ClientFrame, Retraction, ServerFrame};

use tocsin_protocol::deadline::Acknowledgement;
use tocsin_protocol::{ErrorBody, ErrorCode, Kind, Notification, Position, StreamName};

use super::end::SessionEnd;
use super::outbox::Verdict;
use super::{REPLAY_BATCH, Session};
use crate::events::{ConnectionState, EngineEvent};
use crate::gateway::Gateway;
use crate::store::{Incoming, LocalStore};

/// A `notification` frame's fields.
pub(super) struct Arrived {
    pub stream: StreamName,
    pub epoch: String,
    pub offset: u64,
    pub replay: bool,
    pub notification: Notification,
}

impl<G: Gateway> Session<'_, G> {
    /// Dispatches one parsed frame.
    pub(super) async fn on_frame(&mut self, frame: ServerFrame) -> Result<(), SessionEnd> {
        match frame {
            ServerFrame::Notification {
                stream,
                epoch,
                offset,
                replay,
                notification,
            } => {
                let arrived = Arrived {
                    stream,
                    epoch,
                    offset,
                    replay,
                    notification,
                };
                self.on_notification(arrived).await
            }
            ServerFrame::CaughtUp { .. } => self.on_caught_up().await,
            ServerFrame::Read { notification_ids } => {
                self.on_read(notification_ids).await;
                Ok(())
            }
            ServerFrame::ReadAll {
                kind,
                before,
                up_to,
            } => {
                self.on_read_all(kind, before, up_to).await;
                Ok(())
            }
            ServerFrame::Result {
                id,
                ok,
                data,
                error,
            } => {
                self.on_result(id, ok, data, error).await;
                Ok(())
            }
            ServerFrame::Acknowledged { acknowledgements } => {
                self.on_acknowledged(acknowledgements).await;
                Ok(())
            }
            ServerFrame::DeadlinesClosed { deadlines } => {
                self.on_deadlines_closed(deadlines).await;
                Ok(())
            }
            ServerFrame::Retracted { retractions } => self.on_retracted(retractions).await,
            ServerFrame::Error { error } => {
                // The close that follows says little (123 bytes); keep the full text.
                self.last_error = Some(error.message);
                Ok(())
            }
            ServerFrame::Subscribed { stream } => self.on_subscribed(&stream).await,
            ServerFrame::Unsubscribed { stream } => {
                // What was received stays; nothing more of it is sent.
                self.cursors.remove(&stream);
                Ok(())
            }
            ServerFrame::Welcome(_)
            | ServerFrame::Ephemeral { .. }
            | ServerFrame::Pong {}
            | ServerFrame::Unknown => Ok(()),
        }
    }

    /// A stored notification: in order, or the session resumes from what is stored.
    async fn on_notification(&mut self, arrived: Arrived) -> Result<(), SessionEnd> {
        let Some(cursor) = self.cursors.get_mut(&arrived.stream) else {
            return Ok(());
        };
        if arrived.epoch != cursor.epoch || arrived.offset > cursor.next {
            // The gateway never skips; a hole means something is off: resume from what
            // is stored, after the backoff delay (a gateway that keeps doing it must
            // not be hammered).
            return Err(SessionEnd::lost(format!(
                "{}: expected offset {} of epoch {}, got {} of {}",
                arrived.stream, cursor.next, cursor.epoch, arrived.offset, arrived.epoch
            )));
        }
        if arrived.offset < cursor.next {
            return Ok(());
        }
        cursor.next = arrived.offset + 1;
        let incoming = Incoming {
            stream: arrived.stream,
            epoch: arrived.epoch,
            offset: arrived.offset,
            notification: arrived.notification,
            replay: arrived.replay,
            read: false,
        };
        if self.replay.active {
            self.replay.batch.push(incoming);
            if self.replay.batch.len() >= REPLAY_BATCH {
                self.persist_replayed().await?;
            }
            return Ok(());
        }
        let fresh = self.persist(vec![incoming]).await?;
        for item in fresh {
            let toast = self
                .engine
                .policy
                .decide_live(&item.notification, &chrono::Local::now());
            self.engine
                .emit(EngineEvent::Notification {
                    stream: item.stream,
                    notification: Box::new(item.notification),
                    replay: false,
                    toast: Some(toast),
                })
                .await;
        }
        self.emit_counts().await;
        Ok(())
    }

    /// Persists the replayed notifications gathered so far.
    async fn persist_replayed(&mut self) -> Result<(), SessionEnd> {
        let batch = std::mem::take(&mut self.replay.batch);
        let fresh = self.persist(batch).await?;
        self.replay.missed.extend(fresh);
        Ok(())
    }

    /// Replay is over: tell the user what was missed (one summary and each critical
    /// item), go live, and send the outbox.
    async fn on_caught_up(&mut self) -> Result<(), SessionEnd> {
        if !self.replay.batch.is_empty() {
            self.persist_replayed().await?;
        }
        self.replay.active = false;
        let missed = std::mem::take(&mut self.replay.missed);
        let notifications: Vec<_> = missed
            .iter()
            .map(|item| item.notification.clone())
            .collect();
        let toasts = self
            .engine
            .policy
            .decide_catch_up(&notifications, &chrono::Local::now());
        for item in missed {
            self.engine
                .emit(EngineEvent::Notification {
                    stream: item.stream,
                    notification: Box::new(item.notification),
                    replay: true,
                    toast: None,
                })
                .await;
        }
        self.engine
            .emit(EngineEvent::CatchUp {
                missed: notifications.len(),
                toasts,
            })
            .await;
        self.emit_counts().await;
        self.engine
            .backoff
            .connected(tokio::time::Instant::now().into_std());
        self.engine.tokens.session_good();
        let tenant = self.tenant.clone();
        self.engine
            .emit(EngineEvent::State(ConnectionState::Connected {
                since: Utc::now(),
                tenant,
            }))
            .await;
        self.flush_outbox().await
    }

    /// Read on another device (or confirmed for this one).
    async fn on_read(&mut self, ids: Vec<String>) {
        let read = self
            .engine
            .with_store(move |store| Ok(store.apply_read(&ids)?))
            .await;
        self.emit_read(read).await;
    }

    /// Tells the app what became read (to close its toasts) and the new counts.
    async fn emit_read(&mut self, read: anyhow::Result<Vec<String>>) {
        match read {
            Ok(ids) if !ids.is_empty() => self.engine.emit(EngineEvent::Read(ids)).await,
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "cannot apply a read push"),
        }
        self.emit_counts().await;
    }

    /// "Mark all read" applied on the gateway: by the positions that device saw, or
    /// by time from an older gateway.
    async fn on_read_all(
        &mut self,
        kind: Option<Kind>,
        before: DateTime<Utc>,
        up_to: Option<BTreeMap<StreamName, Position>>,
    ) {
        let read = self
            .engine
            .with_store(move |store| match up_to {
                Some(up_to) => Ok(store.apply_read_up_to(kind, &up_to)?),
                None => Ok(store.apply_read_all(kind, before)?),
            })
            .await;
        self.emit_read(read).await;
    }

    /// Notifications the firm retracted. An entry at its stream's next offset fills
    /// that slot of the replay (the cursor moves over it); the others (a live push,
    /// the list after `caught_up`) only remove what is held. Either way the
    /// notification is never stored or shown again.
    async fn on_retracted(&mut self, retractions: Vec<Retraction>) -> Result<(), SessionEnd> {
        let (mut slots, mut others) = (Vec::new(), Vec::new());
        for retraction in retractions {
            match self.cursors.get_mut(&retraction.stream) {
                Some(cursor)
                    if cursor.epoch == retraction.epoch && retraction.offset == cursor.next =>
                {
                    cursor.next += 1;
                    slots.push(retraction);
                }
                _ => others.push(retraction),
            }
        }
        // What was replayed before this frame is stored first: positions stay in
        // order, and a notification replayed then retracted is deleted with the rest.
        if !self.replay.batch.is_empty() {
            self.persist_replayed().await?;
        }
        let ids: Vec<String> = others
            .iter()
            .chain(&slots)
            .map(|r| r.notification_id.clone())
            .collect();
        self.replay
            .missed
            .retain(|item| !ids.contains(&item.notification.id));
        let removed = self
            .engine
            .with_store(move |store| Ok(store.apply_retracted(&others, &slots)?))
            .await;
        match removed {
            Ok(ids) if !ids.is_empty() => {
                tracing::info!(count = ids.len(), "notifications retracted by the firm");
                self.engine.emit(EngineEvent::Retracted(ids)).await;
                self.emit_counts().await;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "cannot apply a retraction"),
        }
        Ok(())
    }

    /// Deadlines acknowledged (here, on another device, by a colleague), or, after
    /// `caught_up`, every acknowledgement the user's devices should hold: applied
    /// idempotently, and announced only when something changed.
    async fn on_acknowledged(&mut self, acknowledgements: Vec<Acknowledgement>) {
        let me = self.user_id.clone();
        let changed = self
            .engine
            .with_store(move |store| Ok(store.apply_acknowledged(&acknowledgements, Some(&me))?))
            .await;
        match changed {
            Ok(deadline_ids) if !deadline_ids.is_empty() => {
                self.engine
                    .emit(EngineEvent::Acknowledged { deadline_ids })
                    .await;
                self.emit_counts().await;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "cannot apply an acknowledged push"),
        }
    }

    /// Deadlines the firm closed: they leave the critical mark, and the app redraws
    /// them (announced like an acknowledgement: nobody needs to take them in now).
    async fn on_deadlines_closed(
        &mut self,
        deadlines: Vec<tocsin_protocol::deadline::ClosedDeadline>,
    ) {
        let changed = self
            .engine
            .with_store(move |store| Ok(store.apply_closed(&deadlines)?))
            .await;
        match changed {
            Ok(deadline_ids) if !deadline_ids.is_empty() => {
                self.engine
                    .emit(EngineEvent::Acknowledged { deadline_ids })
                    .await;
                self.emit_counts().await;
            }
            Ok(_) => {}
            Err(err) => tracing::warn!(%err, "cannot apply a deadlines_closed push"),
        }
    }

    /// The gateway's answer to a queued action. A transient refusal sends it again
    /// later; a final answer takes it out of the store, and a refused proposal answer
    /// or acknowledgement (answered elsewhere, alerts gone) is undone locally.
    async fn on_result(
        &mut self,
        id: String,
        ok: bool,
        data: Option<serde_json::Value>,
        error: Option<ErrorBody>,
    ) {
        let error = if ok { None } else { error };
        if let Verdict::Retry(at) = self.outbox.answered(&id, error.as_ref()) {
            tracing::info!(
                action = %id,
                error = ?error,
                retry_in_ms = at.saturating_duration_since(tokio::time::Instant::now()).as_millis() as u64,
                "action refused for now; sending it again later"
            );
            return;
        }
        let done = id.clone();
        let settled = self
            .engine
            .with_store(move |store| settle(store, &done, ok, data.as_ref()))
            .await
            .unwrap_or_else(|err| {
                tracing::warn!(action = %id, %err, "cannot settle an answered action");
                Settled::default()
            });
        let error = error.or_else(|| settled.not_acknowledged());
        if let Some(error) = &error {
            tracing::warn!(action = %id, ?error, "action refused by the gateway");
        }
        self.engine
            .emit(EngineEvent::ActionResult {
                id,
                action: settled.action.map(Box::new),
                error,
            })
            .await;
        // One action fewer waiting (and a refused answer undone).
        self.emit_counts().await;
    }
}

/// What became of an answered action in the store.
#[derive(Default)]
struct Settled {
    /// The action as queued, if this device still held it.
    action: Option<ClientFrame>,
    /// Deadlines whose local acknowledgement was undone.
    undone: Vec<String>,
}

impl Settled {
    /// The refusal to report for an acknowledgement the gateway accepted only in
    /// part (or not at all: it answers `ok` naming the alerts it does not hold).
    fn not_acknowledged(&self) -> Option<ErrorBody> {
        (!self.undone.is_empty()).then(|| {
            ErrorBody::new(
                ErrorCode::NotFound,
                format!(
                    "not acknowledged: the gateway no longer holds the alerts of deadline(s) {}",
                    self.undone.join(", ")
                ),
            )
        })
    }
}

/// Takes an answered action out of the store, undoing what the gateway refused.
fn settle(
    store: &mut LocalStore,
    id: &str,
    ok: bool,
    data: Option<&serde_json::Value>,
) -> anyhow::Result<Settled> {
    let answered = store
        .pending()?
        .into_iter()
        .find(|frame| frame.action_id() == Some(id));
    let mut undone = Vec::new();
    match &answered {
        Some(ClientFrame::ProposalRespond { proposal_id, .. }) if !ok => {
            store.recompute_proposal_status(proposal_id)?;
        }
        Some(ClientFrame::Acknowledge { .. }) => {
            let acknowledged = if ok {
                acknowledged_in(data)
            } else {
                Some(Vec::new())
            };
            undone = store.settle_acknowledge(id, acknowledged.as_deref())?;
        }
        _ => {}
    }
    store.complete(id)?;
    Ok(Settled {
        action: answered,
        undone,
    })
}

/// The deadlines an `acknowledge` result names as acknowledged; `None` when it does
/// not say (another gateway's shape: nothing is undone).
fn acknowledged_in(data: Option<&serde_json::Value>) -> Option<Vec<String>> {
    let list = data?.get("acknowledged")?.as_array()?;
    Some(
        list.iter()
            .filter_map(|id| id.as_str().map(str::to_owned))
            .collect(),
    )
}
