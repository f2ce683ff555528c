//! Conversations joined or left while the connection is open (an administrator's
//! `PUT /v1/conversations/{id}/members`).
//!
//! The hub records each change on the connection's handle before that request is
//! answered, and wakes the session through its queue. The session applies the changes
//! then, and also before every client frame it handles: a member removed a moment ago
//! can no longer answer the conversation's proposal, mark its notifications read or
//! type in it, even if the wake-up is still queued behind other frames.

use tocsin_protocol::frames::ServerFrame;

use super::session::{End, Session};
use super::socket::encode;
use crate::hub::Membership;

impl Session {
    /// Applies the membership changes the hub recorded for this connection.
    pub async fn apply_membership(&mut self) -> Result<(), End> {
        for change in self.handle.take_membership() {
            match change {
                Membership::Removed(stream) => {
                    self.state.hub.unsubscribe(&self.handle, &stream);
                    if self.cursors.remove(&stream).is_some() {
                        tracing::info!(conn = self.handle.id, %stream, "no longer a member: unsubscribed");
                        let frame = ServerFrame::Unsubscribed { stream };
                        self.writer
                            .feed(encode(&frame))
                            .await
                            .map_err(|stop| self.stop(stop))?;
                    }
                }
                Membership::Added { stream, from } => {
                    if self.cursors.contains_key(&stream) {
                        continue;
                    }
                    let (status, replay_from) = self.subscribe(&stream, Some(&from)).await?;
                    tracing::info!(conn = self.handle.id, %stream, "made a member: subscribed");
                    let head = status.head;
                    self.writer
                        .feed(encode(&ServerFrame::Subscribed { stream: status }))
                        .await
                        .map_err(|stop| self.stop(stop))?;
                    // What was published between the change and this subscription.
                    if let Some(after) = replay_from {
                        self.send_range(&stream, after, head, false).await?;
                    }
                }
            }
        }
        self.writer.flush().await.map_err(|stop| self.stop(stop))
    }
}
