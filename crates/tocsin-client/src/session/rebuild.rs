//! After `welcome`: each stream resumes where it was, or — when the gateway could not
//! resume it (another epoch, a position older than retention) — is rebuilt from
//! `GET /v1/history`: every retained notification, the unread ones first, a page at
//! a time, with progress events. A rebuild cut short (a crash, a lost link) resumes
//! at the next session from the page it had reached: the store keeps its progress.

use std::collections::{BTreeMap, HashMap};

use tocsin_protocol::frames::StreamStatus;
use tocsin_protocol::{Position, StreamName};

use super::end::SessionEnd;
use super::{Cursor, Session};
use crate::events::EngineEvent;
use crate::gateway::Gateway;
use crate::store::{BackfillPass, Incoming};

/// History page size when rebuilding a stream.
const HISTORY_PAGE: u32 = 500;

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

    /// A conversation the user was made a member of while connected (`subscribed`):
    /// followed from its head on, with what was said before from history. Without a
    /// cursor its notifications were dropped until the next connection.
    pub(super) async fn on_subscribed(&mut self, status: &StreamStatus) -> Result<(), SessionEnd> {
        self.rebuild(status).await?;
        let cursor = Cursor {
            epoch: status.epoch.clone(),
            next: status.head + 1,
        };
        self.cursors.insert(status.stream.clone(), cursor);
        Ok(())
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

    /// Fetches the whole retained history up to `up_to` into the inbox, unread
    /// notifications first, one page at a time (memory stays bounded whatever the
    /// history's length), recording after each page where it stands so that a
    /// rebuild cut short resumes there; then clears the stream's "needs a rebuild"
    /// mark. Persisting older offsets never moves the stream's position backwards.
    async fn backfill(
        &mut self,
        stream: &StreamName,
        epoch: &str,
        first: u64,
        up_to: u64,
    ) -> Result<(), SessionEnd> {
        let held = stream.clone();
        let (mut pass, mut after) = self
            .engine
            .with_store(move |store| Ok(store.backfill_progress(&held)?))
            .await
            .map_err(SessionEnd::local_failure)?;
        let retained = (up_to + 1).saturating_sub(first);
        loop {
            let mut fetched = 0;
            let mut cursor = after.max(first.saturating_sub(1));
            while cursor < up_to {
                let page = self
                    .history_page(stream, epoch, pass, cursor, up_to)
                    .await?;
                fetched += page.stored;
                cursor = page.next_after.unwrap_or(up_to);
                self.note_progress(stream, pass, cursor).await?;
                // The badge grows with the rebuild, page by page.
                self.emit_counts().await;
                self.engine
                    .emit(EngineEvent::Rebuilding {
                        stream: stream.clone(),
                        unread_only: pass == BackfillPass::Unread,
                        fetched,
                        retained,
                    })
                    .await;
            }
            match pass {
                BackfillPass::Unread => (pass, after) = (BackfillPass::All, 0),
                BackfillPass::All => break,
            }
            self.note_progress(stream, pass, after).await?;
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

    /// Fetches and stores one page of history after `after`.
    async fn history_page(
        &mut self,
        stream: &StreamName,
        epoch: &str,
        pass: BackfillPass,
        after: u64,
        up_to: u64,
    ) -> Result<Page, SessionEnd> {
        let Some(token) = self.engine.tokens.access().map(str::to_owned) else {
            return Err(SessionEnd::RefreshThenReconnect);
        };
        let unread_only = pass == BackfillPass::Unread;
        let (gateway, mut desk) = self.engine.split();
        let page = desk
            .serve_until(gateway.history(&token, stream, after, HISTORY_PAGE, unread_only))
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
        let stored = items.len() as u64;
        self.persist(items).await?;
        Ok(Page {
            stored,
            next_after: page.next_after.filter(|next| *next < up_to),
        })
    }

    async fn note_progress(
        &mut self,
        stream: &StreamName,
        pass: BackfillPass,
        after: u64,
    ) -> Result<(), SessionEnd> {
        let stream = stream.clone();
        self.engine
            .with_store(move |store| Ok(store.note_backfill_progress(&stream, pass, after)?))
            .await
            .map_err(SessionEnd::local_failure)
    }
}

/// What one page of history gave.
struct Page {
    /// Notifications stored from it.
    stored: u64,
    /// Where the next page starts; `None` when the pass is done.
    next_after: Option<u64>,
}
