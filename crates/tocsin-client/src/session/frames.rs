//! One handler per frame the gateway sends during the live phase.

use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use tocsin_protocol::frames::{ClientFrame, ServerFrame};

use tocsin_protocol::{ErrorBody, Kind, Notification, Position, StreamName};

use super::end::SessionEnd;
use super::outbox::Verdict;
use super::{REPLAY_BATCH, Session};
use crate::events::{ConnectionState, EngineEvent};
use crate::gateway::Gateway;
use crate::store::Incoming;

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
            ServerFrame::Result { id, ok, error, .. } => {
                self.on_result(id, ok, error).await;
                Ok(())
            }
            ServerFrame::Error { error } => {
                // The close that follows says little (123 bytes); keep the full text.
                self.last_error = Some(error.message);
                Ok(())
            }
            ServerFrame::Welcome(_)
            | ServerFrame::Acknowledged { .. }
            | ServerFrame::Ephemeral { .. }
            | ServerFrame::Pong {}
            | ServerFrame::Subscribed { .. }
            | ServerFrame::Unsubscribed { .. }
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

    /// The gateway's answer to a queued action. A transient refusal sends it again
    /// later; a final answer takes it out of the store, and a refused answer to a
    /// proposal (answered elsewhere) undoes the optimistic local status.
    async fn on_result(&mut self, id: String, ok: bool, error: Option<ErrorBody>) {
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
        let action = self
            .engine
            .with_store(move |store| {
                let answered = store
                    .pending()?
                    .into_iter()
                    .find(|frame| frame.action_id() == Some(done.as_str()));
                if !ok && let Some(ClientFrame::ProposalRespond { proposal_id, .. }) = &answered {
                    store.recompute_proposal_status(proposal_id)?;
                }
                store.complete(&done)?;
                Ok(answered)
            })
            .await
            .ok()
            .flatten();
        if !ok {
            tracing::warn!(action = %id, error = ?error, "action refused by the gateway");
        }
        self.engine
            .emit(EngineEvent::ActionResult {
                id,
                action: action.map(Box::new),
                error,
            })
            .await;
        // One action fewer waiting (and a refused proposal answer undone).
        self.emit_counts().await;
    }
}
