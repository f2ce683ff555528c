//! Replay and live delivery with the one rule that makes both gap-free: per stream,
//! a connection sends offsets strictly consecutively. A live notification ahead of
//! the next expected offset first has the gap filled from the store; one behind it
//! was already sent (by replay or a fill) and is dropped.
//!
//! Subscribing to the hub happens *before* the stream's head is read, so every
//! notification committed after that read is queued live, and every one committed
//! before it is replayed: there is no window in which one can slip through.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use tocsin_protocol::frames::{Limits, ServerFrame, StreamStatus, Welcome};
use tocsin_protocol::http::UserInfo;
use tocsin_protocol::{CloseCode, Position, StreamName};

use super::session::{End, Session, app_end};
use crate::access::readable_streams;
use crate::api::user_info;
use crate::error::AppError;
use crate::hub::Outbound;
use crate::store::StreamState;

/// How far back a connecting client is told of retractions (as for closed deadlines).
const RETRACTIONS_SYNC_DAYS: i64 = 60;

/// Notifications read from the store per query while replaying or filling a gap.
const PAGE: u32 = 500;

/// Where a connection stands in one stream.
#[derive(Debug, Clone)]
pub struct Cursor {
    /// The stream's epoch.
    pub epoch: Arc<str>,
    /// The next offset to send.
    pub next: u64,
}

/// Whether a client's position can be resumed from: same epoch, not ahead of the
/// stream, and nothing after it pruned.
pub fn resumable(position: &Position, state: &StreamState) -> bool {
    position.epoch == state.epoch
        && position.offset <= state.head
        && position.offset + 1 >= state.first
}

impl Session {
    /// Subscribes to every readable stream, sends `welcome`, replays, sends `caught_up`.
    pub async fn start(&mut self, positions: BTreeMap<StreamName, Position>) -> Result<(), End> {
        let store = self.state.store.clone();
        let streams = readable_streams(store.as_ref(), &self.user)
            .await
            .map_err(app_end)?;
        let mut statuses = Vec::with_capacity(streams.len());
        let mut replays = Vec::new();
        for stream in streams {
            let (status, replay_from) = self.subscribe(&stream, positions.get(&stream)).await?;
            if let Some(after) = replay_from {
                replays.push((stream, after, status.head));
            }
            statuses.push(status);
        }
        // A reconnect (positions sent) counts once: recovered only if every stream it
        // held positions for was.
        if !positions.is_empty() {
            let held = |status: &&StreamStatus| positions.contains_key(&status.stream);
            crate::metrics::resumed(statuses.iter().filter(held).all(|s| s.recovered));
        }
        // The firm's display name, for the client's status line; a failed lookup
        // only costs the nicety.
        let tenant_name = store
            .tenant(&self.user.tenant)
            .await
            .ok()
            .flatten()
            .map(|tenant| tenant.name);
        let limits = &self.state.config.websocket;
        let welcome = ServerFrame::Welcome(Welcome {
            connection_id: self.handle.id.to_string(),
            user: UserInfo {
                tenant_name,
                ..user_info(&self.user)
            },
            streams: statuses,
            token_expires_at: chrono::Utc::now()
                + chrono::Duration::from_std(self.token_expiry - tokio::time::Instant::now())
                    .unwrap_or_default(),
            limits: Limits {
                heartbeat_interval_ms: limits.heartbeat_interval_ms,
                heartbeat_timeout_ms: limits.heartbeat_timeout_ms,
                max_message_bytes: limits.max_message_bytes,
                actions_per_second: limits.actions_per_second,
                actions_burst: limits.actions_burst,
            },
            features: tocsin_protocol::frames::features::ALL
                .iter()
                .map(|f| (*f).to_owned())
                .collect(),
        });
        self.writer
            .send(&welcome)
            .await
            .map_err(|stop| self.stop(stop))?;
        for (stream, after, head) in replays {
            self.send_range(&stream, after, head, true).await?;
        }
        let positions = self
            .cursors
            .iter()
            .map(|(stream, cursor)| {
                (
                    stream.clone(),
                    Position {
                        epoch: cursor.epoch.to_string(),
                        offset: cursor.next - 1,
                    },
                )
            })
            .collect();
        self.writer
            .send(&ServerFrame::CaughtUp { positions })
            .await
            .map_err(|stop| self.stop(stop))?;
        self.send_acknowledgements().await?;
        self.send_closed_deadlines().await?;
        self.send_recent_retractions().await
    }

    /// The retractions of the last 60 days in the connection's streams, so a device
    /// that was offline when the firm retracted a notification it holds removes it
    /// (one it had not received came in the replay as a `retracted` slot). Like
    /// [`Session::send_acknowledgements`], a failed lookup costs only the sync.
    async fn send_recent_retractions(&mut self) -> Result<(), End> {
        if !self.retract_aware {
            return Ok(());
        }
        let streams: Vec<StreamName> = self.cursors.keys().cloned().collect();
        let since = chrono::Utc::now() - chrono::Duration::days(RETRACTIONS_SYNC_DAYS);
        let retractions = match self.state.store.recent_retractions(&streams, since).await {
            Ok(retractions) if !retractions.is_empty() => retractions,
            Ok(_) => return Ok(()),
            Err(err) => {
                tracing::warn!(error = %err, user = %self.user.id, "cannot read retractions");
                return Ok(());
            }
        };
        self.writer
            .send(&ServerFrame::Retracted { retractions })
            .await
            .map_err(|stop| self.stop(stop))
    }

    /// The acknowledgements of the user's open deadlines, so a device that was offline
    /// when someone acknowledged (or a newly signed-in one) shows them. Sent only when
    /// there are some; a failed lookup costs the sync until the next connect, not the
    /// connection.
    async fn send_acknowledgements(&mut self) -> Result<(), End> {
        let acknowledgements = match self
            .state
            .store
            .user_acknowledgements(&self.user.tenant, &self.user.id)
            .await
        {
            Ok(acknowledgements) if !acknowledgements.is_empty() => acknowledgements,
            Ok(_) => return Ok(()),
            Err(err) => {
                tracing::warn!(error = %err, user = %self.user.id, "cannot read acknowledgements");
                return Ok(());
            }
        };
        self.writer
            .send(&ServerFrame::Acknowledged { acknowledgements })
            .await
            .map_err(|stop| self.stop(stop))
    }

    /// The user's deadlines closed in the last 60 days, so a device that was offline
    /// when the firm closed one stops waiting for its acknowledgement. Like
    /// [`Session::send_acknowledgements`], a failed lookup costs only the sync.
    async fn send_closed_deadlines(&mut self) -> Result<(), End> {
        let deadlines = match self
            .state
            .store
            .user_closed_deadlines(&self.user.tenant, &self.user.id)
            .await
        {
            Ok(deadlines) if !deadlines.is_empty() => deadlines,
            Ok(_) => return Ok(()),
            Err(err) => {
                tracing::warn!(error = %err, user = %self.user.id, "cannot read closed deadlines");
                return Ok(());
            }
        };
        self.writer
            .send(&ServerFrame::DeadlinesClosed { deadlines })
            .await
            .map_err(|stop| self.stop(stop))
    }

    /// Subscribes to a stream live, then reads where it stands and sets the cursor
    /// after its head. Returns the status for the client and, when the client's
    /// position is resumable and behind, the offset to replay after.
    pub async fn subscribe(
        &mut self,
        stream: &StreamName,
        position: Option<&Position>,
    ) -> Result<(StreamStatus, Option<u64>), End> {
        self.state.hub.subscribe(&self.handle, stream);
        let state = self
            .state
            .store
            .stream_state(stream)
            .await
            .map_err(|err| app_end(AppError::from(err)))?;
        let (recovered, replay_from) = match position {
            None => (true, None),
            Some(position) if resumable(position, &state) => (
                true,
                (position.offset < state.head).then_some(position.offset),
            ),
            Some(_) => (false, None),
        };
        self.cursors.insert(
            stream.clone(),
            Cursor {
                epoch: Arc::from(state.epoch.as_str()),
                next: state.head + 1,
            },
        );
        let status = StreamStatus {
            stream: stream.clone(),
            epoch: state.epoch,
            head: state.head,
            first: state.first,
            recovered,
        };
        Ok((status, replay_from))
    }

    /// Sends stored notifications with `after < offset <= up_to`, checking that they
    /// are consecutive (a hole means retention pruned them meanwhile).
    pub(super) async fn send_range(
        &mut self,
        stream: &StreamName,
        mut after: u64,
        up_to: u64,
        replay: bool,
    ) -> Result<(), End> {
        while after < up_to {
            let page = self
                .state
                .store
                .read_range(stream, after, up_to, PAGE)
                .await
                .map_err(|err| app_end(AppError::from(err)))?;
            if page.is_empty() {
                return Err(pruned(stream));
            }
            for stored in page {
                if stored.offset != after + 1 {
                    return Err(pruned(stream));
                }
                after = stored.offset;
                let frame = stored.slot_frame(replay, self.retract_aware);
                self.writer
                    .feed(Utf8Bytes::from(frame))
                    .await
                    .map_err(|stop| self.stop(stop))?;
                self.receipt(&stored);
                crate::metrics::delivered_from_store();
            }
            self.writer.flush().await.map_err(|stop| self.stop(stop))?;
        }
        Ok(())
    }

    /// Delivers one queued item under the consecutive-offsets rule.
    pub async fn deliver(&mut self, item: Outbound) -> Result<(), End> {
        let live = match item {
            Outbound::Frame(text) => {
                return self.writer.feed(text).await.map_err(|stop| self.stop(stop));
            }
            Outbound::Notification(live) => live,
            // Boxed: rare, and its store read would grow every delivery's future.
            Outbound::MembershipChanged => return Box::pin(self.apply_membership()).await,
        };
        let stream = &live.stored.stream;
        // Not (or no longer) subscribed: the hub's view lags a `leave` by a moment.
        let Some(cursor) = self.cursors.get_mut(stream) else {
            return Ok(());
        };
        let next = cursor.next;
        let offset = live.stored.offset;
        if offset < next {
            return Ok(());
        }
        if offset == next {
            // The usual case, with one map lookup per delivery. Advanced before the
            // write: a failed write ends the session, cursor and all.
            cursor.next = offset + 1;
            self.writer
                .feed(live.frame.clone())
                .await
                .map_err(|stop| self.stop(stop))?;
            self.receipt(&live.stored);
            crate::metrics::delivered_live(live.committed);
            return Ok(());
        }
        // Ahead of the cursor: fill the gap first.
        tracing::debug!(conn = self.handle.id, %stream, next, offset, "filling a gap from the store");
        // Boxed: gaps are rare, and a store read's future would otherwise make
        // every delivery's future (and so every connection task) larger.
        Box::pin(self.send_range(stream, next - 1, offset - 1, false)).await?;
        self.writer
            .feed(live.frame.clone())
            .await
            .map_err(|stop| self.stop(stop))?;
        self.receipt(&live.stored);
        crate::metrics::delivered_live(live.committed);
        if let Some(cursor) = self.cursors.get_mut(stream) {
            cursor.next = offset + 1;
        }
        Ok(())
    }
}

impl Session {
    /// Tells the audit trail a notification was written to this device.
    fn receipt(&self, stored: &crate::store::StoredNotification) {
        self.state.audit.delivered(
            stored,
            &self.user.tenant,
            &self.user.id,
            self.handle.session_id.as_deref(),
        );
    }
}

fn pruned(stream: &StreamName) -> End {
    End::Close(
        CloseCode::ServerError,
        format!(
            "part of {stream} was pruned by retention while being sent; reconnect to resynchronise"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn state(head: u64, first: u64) -> StreamState {
        StreamState {
            epoch: "e1".into(),
            head,
            first,
        }
    }

    fn at(epoch: &str, offset: u64) -> Position {
        Position {
            epoch: epoch.into(),
            offset,
        }
    }

    #[test]
    fn positions_resume_only_within_the_same_retained_epoch() {
        assert!(resumable(&at("e1", 5), &state(10, 1)));
        assert!(resumable(&at("e1", 10), &state(10, 1)), "caught up");
        assert!(resumable(&at("e1", 0), &state(10, 1)), "from the start");
        assert!(!resumable(&at("e2", 5), &state(10, 1)), "another epoch");
        assert!(
            !resumable(&at("e1", 11), &state(10, 1)),
            "ahead of the stream"
        );
        assert!(
            !resumable(&at("e1", 3), &state(10, 5)),
            "offset 4 was pruned"
        );
        assert!(
            resumable(&at("e1", 4), &state(10, 5)),
            "offset 5 is still there"
        );
    }
}
