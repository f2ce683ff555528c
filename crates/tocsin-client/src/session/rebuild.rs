//! After `welcome`: each stream resumes where it was, or — when the gateway could not
//! resume it (another epoch, a position older than retention) — is rebuilt from
//! `GET /v1/history`. A rebuild cut short (a crash, a lost link) is finished first at
//! the next session: the store marks it pending until it is done.

use std::collections::{BTreeMap, HashMap};

use tocsin_protocol::frames::StreamStatus;
use tocsin_protocol::{Position, StreamName};

use super::end::SessionEnd;
use super::{Cursor, Session};
use crate::events::EngineEvent;
use crate::gateway::Gateway;
use crate::store::Incoming;

/// History page size when rebuilding a stream.
const HISTORY_PAGE: u32 = 500;
/// The most history items fetched per stream when rebuilding it: older ones stay on
/// the server (history API), the inbox shows the recent past.
const MAX_BACKFILL: u64 = 2000;

impl<G: Gateway> Session<'_, G> {
    /// Decides for every stream of `welcome` where live delivery continues, rebuilding
    /// those the gateway could not resume.
    pub(super) async fn sync_streams(
        &mut self,
        streams: &[StreamStatus],
        positions: &BTreeMap<StreamName, Position>,
    ) -> Result<HashMap<StreamName, Cursor>, SessionEnd> {
        let unfinished = self
            .engine
            .with_store(|store| Ok(store.pending_backfills()?))
            .await
            .map_err(SessionEnd::local_failure)?;
        let mut cursors = HashMap::new();
        for status in streams {
            let held = positions
                .get(&status.stream)
                .filter(|held| status.recovered && held.epoch == status.epoch);
            let next = match held {
                Some(held) => {
                    if unfinished.contains_key(&status.stream) {
                        self.backfill(&status.stream, &status.epoch, status.first, held.offset)
                            .await?;
                    }
                    held.offset + 1
                }
                None => {
                    self.rebuild(status).await?;
                    status.head + 1
                }
            };
            let epoch = status.epoch.clone();
            cursors.insert(status.stream.clone(), Cursor { epoch, next });
        }
        Ok(cursors)
    }

    /// Rebuilds a stream the gateway could not resume: reset its position to the head
    /// (live delivery continues after it), then fetch the recent past.
    async fn rebuild(&mut self, status: &StreamStatus) -> Result<(), SessionEnd> {
        let (stream, epoch, head) = (status.stream.clone(), status.epoch.clone(), status.head);
        self.engine
            .with_store(move |store| Ok(store.reset_stream(&stream, &epoch, head)?))
            .await
            .map_err(SessionEnd::local_failure)?;
        self.backfill(&status.stream, &status.epoch, status.first, status.head)
            .await
    }

    /// Fetches history up to `up_to` (at most [`MAX_BACKFILL`] items back) into the
    /// inbox, then clears the stream's "needs a rebuild" mark. Persisting older
    /// offsets never moves the stream's position backwards.
    async fn backfill(
        &mut self,
        stream: &StreamName,
        epoch: &str,
        first: u64,
        up_to: u64,
    ) -> Result<(), SessionEnd> {
        let Some(token) = self.engine.tokens.access().map(str::to_owned) else {
            return Err(SessionEnd::RefreshThenReconnect);
        };
        let mut after = first
            .saturating_sub(1)
            .max(up_to.saturating_sub(MAX_BACKFILL));
        while after < up_to {
            let (gateway, mut desk) = self.engine.split();
            let page = desk
                .serve_until(gateway.history(&token, stream, after, HISTORY_PAGE))
                .await?
                .map_err(|err| SessionEnd::lost(format!("history failed: {err}")))?;
            if page.epoch != epoch {
                // The stream changed epoch meanwhile: the next hello sorts it out.
                return Err(SessionEnd::lost(format!(
                    "{stream} changed epoch while it was rebuilt"
                )));
            }
            let items: Vec<Incoming> = page
                .notifications
                .iter()
                .filter(|item| item.offset <= up_to)
                .map(|item| Incoming {
                    stream: stream.clone(),
                    epoch: epoch.to_owned(),
                    offset: item.offset,
                    notification: item.notification.clone(),
                    replay: true,
                    read: item.read,
                })
                .collect();
            self.persist(items).await?;
            match page.next_after {
                Some(next) if next < up_to => after = next,
                _ => break,
            }
        }
        let done = stream.clone();
        self.engine
            .with_store(move |store| Ok(store.backfill_done(&done)?))
            .await
            .map_err(SessionEnd::local_failure)?;
        self.engine
            .emit(EngineEvent::Warning(format!(
                "{stream} was rebuilt from the server's history"
            )))
            .await;
        Ok(())
    }
}
