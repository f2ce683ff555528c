//! Storing what arrives: notifications are persisted with their stream's position in
//! one transaction, and a stream whose history changed under a held position (the
//! gateway restored from an older copy) is rewound instead of silently kept.

use super::Session;
use super::end::SessionEnd;
use crate::events::EngineEvent;
use crate::gateway::Gateway;
use crate::store::{Divergence, Incoming, StoreError};

impl<G: Gateway> Session<'_, G> {
    /// Persists notifications (positions advance in the same transaction) and returns
    /// those that were new. A divergence ends the session through [`Self::diverged`].
    pub(super) async fn persist(
        &mut self,
        batch: Vec<Incoming>,
    ) -> Result<Vec<Incoming>, SessionEnd> {
        let outcome = self
            .engine
            .with_store(move |store| {
                // The store also keeps proposal statuses in step with these.
                match store.persist(&batch) {
                    Ok(fresh) => Ok(Ok(batch
                        .into_iter()
                        .zip(fresh)
                        .filter(|(_, new)| *new)
                        .map(|(item, _)| item)
                        .collect())),
                    Err(StoreError::Diverged(divergence)) => Ok(Err(divergence)),
                    Err(err) => Err(err.into()),
                }
            })
            .await
            .map_err(SessionEnd::local_failure)?;
        match outcome {
            Ok(fresh) => Ok(fresh),
            Err(divergence) => Err(self.diverged(*divergence).await),
        }
    }

    /// The gateway's history of a stream is not the one stored (nothing of the batch
    /// was): keep what the user received from there on, rewind the stream to just
    /// before it with a rebuild pending, say so, and reconnect (after the backoff
    /// delay) so that `hello` re-syncs it. Each rewind moves at least the conflicting
    /// row off the stream's timeline, so this cannot loop.
    async fn diverged(&mut self, divergence: Divergence) -> SessionEnd {
        let rewind = divergence.clone();
        let moved = match self
            .engine
            .with_store(move |store| Ok(store.rewind_diverged(&rewind)?))
            .await
        {
            Ok(moved) => moved,
            Err(err) => return SessionEnd::local_failure(err),
        };
        let Divergence {
            stream,
            epoch,
            offset,
            held_id,
            received_id,
        } = &divergence;
        tracing::warn!(
            %stream, epoch, offset, held_id, received_id, kept = moved,
            "stream history diverged: kept what was received from this offset on, rewound the stream and re-syncing it from the gateway"
        );
        self.engine.emit(EngineEvent::Warning(format!(
            "{stream} diverged: the server's history changed at offset {offset} (restored from an older copy?); the {moved} notification(s) received from there on are kept, and {stream} is re-synced from the server"
        )))
        .await;
        if moved == 0 {
            return SessionEnd::lost(format!(
                "{divergence}; the gateway sent two notifications at one offset"
            ));
        }
        SessionEnd::lost(format!("{stream} diverged; re-syncing it"))
    }
}
