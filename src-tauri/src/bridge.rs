//! The bridge from the engine to the user: renders each [`EngineEvent`] (state,
//! tray, panel events, OS notifications) and turns notification clicks back into
//! engine commands, the notification's link opened, or panel navigation. Events that arrive together (a replay of
//! thousands) are handled as one batch: one recount, one snapshot, one tray update.

use std::collections::BTreeSet;

use tauri::{AppHandle, Emitter, Manager};
use tocsin_client::engine::Command;
use tocsin_client::events::{ConnectionState, EngineEvent};
use tocsin_client::policy::Toast;
use tocsin_client::store::Tab;
use tocsin_protocol::frames::ClientFrame;
use tokio::sync::mpsc;

use crate::error::AppError;
use crate::ipc::{self, EVENT_ACTION_RESULT, EVENT_NEW_ITEMS, Item, Navigate, NewItems, View};
use crate::notifier::ToastClick;
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
}

/// Renders the engine's events until it stops.
pub async fn run(app: AppHandle, mut events: mpsc::Receiver<EngineEvent>) {
    while let Some(first) = events.recv().await {
        let mut batch = Batch::default();
        handle(&app, first, &mut batch).await;
        for _ in 1..BATCH {
            match events.try_recv() {
                Ok(event) => handle(&app, event, &mut batch).await,
                Err(_) => break,
            }
        }
        flush(&app, batch).await;
    }
    tracing::debug!("engine events ended");
}

/// Applies one event to the state and the batch.
async fn handle(app: &AppHandle, event: EngineEvent, batch: &mut Batch) {
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
                        if let Some(n) = load(app, notification_id).await {
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
        EngineEvent::Counts(_) => batch.tabs.extend(Tab::ALL),
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
        // Progress only: the notifications it fetches arrive as `Notification` events.
        // (Not shown in the panel yet; the log says how far it got.)
        EngineEvent::Rebuilding {
            stream,
            unread_only,
            fetched,
            retained,
        } => tracing::debug!(%stream, unread_only, fetched, retained, "rebuilding from history"),
        EngineEvent::Read(_) => batch.tabs.extend(Tab::ALL),
        EngineEvent::Warning(warning) => tracing::warn!(%warning, "engine warning"),
    }
}

/// A notification from the local store.
async fn load(app: &AppHandle, id: String) -> Option<tocsin_protocol::Notification> {
    let store = app.state::<AppState>().lock().session.as_ref()?.store();
    tokio::task::spawn_blocking(move || {
        let store = store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        store.get(&id).ok().flatten().map(|item| item.notification)
    })
    .await
    .ok()
    .flatten()
}

/// Refreshes the view once for the batch and shows its toasts.
async fn flush(app: &AppHandle, batch: Batch) {
    if !batch.toasts.is_empty() {
        show(app, batch.toasts).await;
    }
    view::recount_and_publish(app).await;
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

/// Shows toasts on a blocking thread; records whether the notification service
/// answers, so the panel can say why there are none.
async fn show(app: &AppHandle, toasts: Vec<ToastContent>) {
    let state = app.state::<AppState>();
    let notifier = state.notifier.clone();
    let outcome = tokio::task::spawn_blocking(move || {
        let mut last = Ok(());
        for toast in &toasts {
            last = notifier.show(toast);
            if let Err(err) = &last {
                tracing::warn!(%err, summary = %toast.summary, "cannot show an OS notification");
            }
        }
        last
    })
    .await
    .unwrap_or_else(|err| Err(err.to_string()));
    set_notifications_status(app, outcome);
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
