//! The bridge from the engine to the user: renders each [`EngineEvent`] (state,
//! tray, panel events, OS notifications shown, and closed once read elsewhere) and
//! turns notification clicks back into engine commands, the notification's link
//! opened, or panel navigation. Events that arrive together (a replay of thousands)
//! are handled as one batch: the last counts, one snapshot, one tray update.
//!
//! Everything it knows comes through the engine's door: its events, and its
//! handle's queries (a notification by id, the counts before the first event).

use std::collections::{BTreeSet, HashSet};

use tauri::{AppHandle, Emitter, Manager};
use tocsin_client::engine::{Command, EngineHandle};
use tocsin_client::events::{ConnectionState, EngineEvent};
use tocsin_client::policy::Toast;
use tocsin_client::store::{Counts, Tab};
use tocsin_protocol::frames::ClientFrame;
use tokio::sync::mpsc;

use crate::error::AppError;
use crate::ipc::{self, EVENT_ACTION_RESULT, EVENT_NEW_ITEMS, Item, Navigate, NewItems, View};
use crate::notifier::{Notifier, ToastClick};
use crate::panel::{self, PANEL};
use crate::state::AppState;
use crate::toast::{self, ACTION_DEFAULT, ACTION_MARK_READ, ToastContent};
use crate::{link, view};

/// At most this many events are handled before the view is refreshed once.
const BATCH: usize = 512;

/// What one batch of events changed.
#[derive(Default)]
struct Batch {
    /// Tabs whose lists changed.
    tabs: BTreeSet<Tab>,
    /// Live notifications, for the panel's live region.
    new_items: Vec<Item>,
    /// OS notifications to show.
    toasts: Vec<ToastContent>,
    /// Notifications that became read: their toasts are closed.
    read: Vec<String>,
    /// The engine's last counts in the batch (each supersedes the one before).
    counts: Option<Counts>,
}

/// One running engine, as the bridge sees it.
struct Engine {
    /// Its handle, for queries.
    handle: EngineHandle,
    /// Its session's [`crate::state::Session::id`].
    session: u64,
}

/// Renders the events of session `session`'s engine until it stops.
pub async fn run(
    app: AppHandle,
    engine: EngineHandle,
    session: u64,
    mut events: mpsc::Receiver<EngineEvent>,
) {
    let engine = Engine {
        handle: engine,
        session,
    };
    // The counts before the first `Counts` event (a resumed inbox has unread items
    // before anything happens). Read here, before any event is handled: an event
    // handled first and then overwritten by this older answer would stay wrong.
    match engine.handle.counts().await {
        Ok(counts) => view::set_counts(&app, session, &counts),
        Err(err) => tracing::warn!(%err, "cannot read the unread counts"),
    }
    while let Some(first) = events.recv().await {
        let mut batch = Batch::default();
        handle(&app, &engine, first, &mut batch).await;
        for _ in 1..BATCH {
            match events.try_recv() {
                Ok(event) => handle(&app, &engine, event, &mut batch).await,
                Err(_) => break,
            }
        }
        flush(&app, &engine, batch).await;
    }
    tracing::debug!("engine events ended");
}

/// Applies one event to the state and the batch.
async fn handle(app: &AppHandle, engine: &Engine, event: EngineEvent, batch: &mut Batch) {
    let state = app.state::<AppState>();
    let locale = state.locale();
    match event {
        EngineEvent::State(connection) => {
            let refused = matches!(connection, ConnectionState::SignedOut { .. });
            state.lock().set_connection(connection);
            if refused {
                crate::session::forget_refused(app);
            }
        }
        EngineEvent::Notification {
            notification,
            replay,
            toast,
            ..
        } => {
            if let Some(tab) = Tab::of(notification.kind()) {
                batch.tabs.insert(tab);
            }
            if !replay && let Some(item) = Item::from_notification(&notification, false, None) {
                batch.new_items.push(item);
            }
            if let Some(Toast::Show { .. }) = toast {
                batch
                    .toasts
                    .push(toast::for_notification(&notification, locale));
            }
        }
        EngineEvent::CatchUp { toasts, .. } => {
            batch.tabs.extend(Tab::ALL);
            for toast in toasts {
                match toast {
                    Toast::Show {
                        notification_id, ..
                    } => {
                        if let Some(n) = load(engine, notification_id).await {
                            batch.toasts.push(toast::for_notification(&n, locale));
                        }
                    }
                    Toast::Summary { count, by_kind } => {
                        batch
                            .toasts
                            .push(toast::for_summary(count, &by_kind, locale));
                    }
                    Toast::Silent => {}
                }
            }
        }
        EngineEvent::Counts(counts) => {
            batch.counts = Some(counts);
            batch.tabs.extend(Tab::ALL);
        }
        EngineEvent::ActionResult { action, error, .. } => {
            let proposal_id = match action.as_deref() {
                Some(ClientFrame::ProposalRespond { proposal_id, .. }) => Some(proposal_id.clone()),
                _ => None,
            };
            if let Some(error) = &error {
                tracing::warn!(code = ?error.code, message = %error.message, "the gateway refused an action");
            }
            if proposal_id.is_some() {
                batch.tabs.insert(Tab::Proposals);
                let result = ipc::ActionResult {
                    ok: error.is_none(),
                    error: error.map(|e| AppError::new("refused", e.message)),
                    proposal_id,
                };
                if panel::is_open(app)
                    && let Err(err) = app.emit_to(PANEL, EVENT_ACTION_RESULT, result)
                {
                    tracing::debug!(%err, "panel did not take the action result");
                }
            }
        }
        // Progress: the notifications it fetched are stored, not announced one by one;
        // the engine sends its counts after each page, so the badge follows. The
        // progress itself is not shown in the panel yet: the log says how far it got.
        EngineEvent::Rebuilding {
            stream,
            unread_only,
            fetched,
            retained,
        } => {
            tracing::debug!(%stream, unread_only, fetched, retained, "rebuilding from history");
        }
        EngineEvent::Read(ids) => {
            batch.read.extend(ids);
            batch.tabs.extend(Tab::ALL);
        }
        EngineEvent::Warning(warning) => tracing::warn!(%warning, "engine warning"),
    }
}

/// A notification held by the engine.
async fn load(engine: &Engine, id: String) -> Option<tocsin_protocol::Notification> {
    match engine.handle.get(id).await {
        Ok(item) => item.map(|item| item.notification),
        Err(err) => {
            tracing::warn!(%err, "cannot read a notification to toast it");
            None
        }
    }
}

/// Refreshes the view once for the batch, shows its toasts and closes those of
/// notifications read meanwhile.
async fn flush(app: &AppHandle, engine: &Engine, batch: Batch) {
    if !batch.toasts.is_empty() || !batch.read.is_empty() {
        render_toasts(app, batch.toasts, batch.read).await;
    }
    if let Some(counts) = &batch.counts {
        app.state::<AppState>()
            .lock()
            .set_counts(engine.session, counts);
    }
    view::publish(app);
    if !batch.tabs.is_empty() {
        view::items_changed(app, batch.tabs.into_iter().collect());
    }
    if !batch.new_items.is_empty()
        && panel::is_open(app)
        && let Err(err) = app.emit_to(
            PANEL,
            EVENT_NEW_ITEMS,
            NewItems {
                items: batch.new_items,
            },
        )
    {
        tracing::debug!(%err, "panel did not take new items");
    }
}

/// Shows toasts and closes read ones on a blocking thread; records whether the
/// notification service answers, so the panel can say why there are none.
async fn render_toasts(app: &AppHandle, toasts: Vec<ToastContent>, read: Vec<String>) {
    let state = app.state::<AppState>();
    let notifier = state.notifier.clone();
    let shows = !toasts.is_empty();
    let outcome = tokio::task::spawn_blocking(move || show_and_close(&*notifier, &toasts, &read))
        .await
        .unwrap_or_else(|err| Err(err.to_string()));
    // Only showing says whether the service answers: closing has nothing to say
    // when no toast was on screen.
    if shows {
        set_notifications_status(app, outcome);
    }
}

/// Shows a batch's toasts, except those of notifications read in the same batch
/// (read on the phone while this desktop was catching up: nothing to take in any
/// more), then closes the toasts of every notification read. Blocking. The result
/// is the last toast's.
fn show_and_close(
    notifier: &dyn Notifier,
    toasts: &[ToastContent],
    read: &[String],
) -> Result<(), String> {
    let read_ids: HashSet<&str> = read.iter().map(String::as_str).collect();
    let mut last = Ok(());
    for toast in toasts {
        if toast
            .notification_id
            .as_deref()
            .is_some_and(|id| read_ids.contains(id))
        {
            continue;
        }
        last = notifier.show(toast);
        if let Err(err) = &last {
            tracing::warn!(%err, summary = %toast.summary, "cannot show an OS notification");
        }
    }
    for id in read {
        if let Err(err) = notifier.close(id) {
            // Gone already (dismissed meanwhile), or no service: nothing to undo.
            tracing::debug!(%err, id, "cannot close an OS notification");
        }
    }
    last
}

/// Records the notification service's state.
pub fn set_notifications_status(app: &AppHandle, outcome: Result<(), String>) {
    let state = app.state::<AppState>();
    let locale = state.locale();
    let mut shared = state.lock();
    shared.notifications = match outcome {
        Ok(()) => ipc::NotificationsStatus {
            available: true,
            problem: None,
        },
        Err(err) => ipc::NotificationsStatus {
            available: false,
            problem: Some(format!(
                "{} ({err})",
                locale.strings().no_notification_service
            )),
        },
    };
}

/// Turns notification clicks into actions until the app ends: "Mark as read" to the
/// engine; "Open" (the default action) opens the notification's link when it has one
/// that may be opened, else — and when the system cannot open it — the panel at it.
pub async fn follow_clicks(app: AppHandle, mut clicks: mpsc::UnboundedReceiver<ToastClick>) {
    while let Some(click) = clicks.recv().await {
        tracing::debug!(?click, "notification clicked");
        if click.action == ACTION_MARK_READ {
            if let (Some(id), Some(engine)) =
                (click.notification_id, app.state::<AppState>().engine())
            {
                engine.send(Command::MarkRead(vec![id])).await;
            }
            continue;
        }
        // The link is looked up by id in the local store and checked again there;
        // every refusal is logged by `link`.
        if click.action == ACTION_DEFAULT
            && let Some(id) = &click.notification_id
            && link::open_held(&app, id).await.is_ok()
        {
            continue;
        }
        let navigate = Navigate {
            view: View::Inbox,
            tab: click.tab,
            item_id: click.notification_id,
        };
        let app_for_main = app.clone();
        // Windows are created on the main thread.
        if let Err(err) = app.run_on_main_thread(move || {
            if let Err(err) = panel::open(&app_for_main, Some(navigate)) {
                tracing::warn!(%err, "cannot open the panel");
            }
        }) {
            tracing::warn!(%err, "cannot reach the main thread");
        }
    }
}

#[cfg(test)]
mod tests {
    use tocsin_client::store::testing;

    use super::*;
    use crate::i18n::Locale;
    use crate::notifier::tests::Recording;

    fn toast_of(id: &str) -> ToastContent {
        toast::for_notification(&testing::email(id, 0), Locale::En)
    }

    #[test]
    fn toasts_read_in_their_batch_are_not_shown_and_read_ones_are_closed() {
        let notifier = Recording::default();
        show_and_close(&notifier, &[toast_of("n1"), toast_of("n2")], &[]).expect("shown");
        let n1 = 1;
        // Next batch: n3 arrives and is read at once (the phone), n4 arrives, the
        // summary stands for many, and n1 (on screen) is read elsewhere.
        let summary = toast::for_summary(
            12,
            &std::collections::BTreeMap::from([(tocsin_protocol::Kind::EmailReceived, 12)]),
            Locale::En,
        );
        show_and_close(
            &notifier,
            &[toast_of("n3"), toast_of("n4"), summary],
            &["n3".to_owned(), "n1".to_owned(), "not-shown".to_owned()],
        )
        .expect("shown");
        let shown: Vec<Option<String>> = notifier
            .shown
            .lock()
            .expect("lock")
            .iter()
            .map(|t| t.notification_id.clone())
            .collect();
        assert_eq!(
            shown,
            vec![
                Some("n1".to_owned()),
                Some("n2".to_owned()),
                Some("n4".to_owned()),
                None
            ],
            "n3 was read before it was shown"
        );
        assert_eq!(notifier.closed(), vec![n1], "only n1 was on screen");
        // The summary is never closed by a read, whatever it stood for.
        show_and_close(&notifier, &[], &["n2".to_owned(), "n4".to_owned()]).expect("closed");
        assert_eq!(notifier.closed(), vec![1, 2, 3]);
    }
}
