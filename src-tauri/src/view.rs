//! Keeping what the user sees in step with the state: after anything changes, the
//! panel gets a fresh [`crate::ipc::Snapshot`] (when it is open) and the tray its
//! look, status line and label. Counts come from the engine's local store, the one
//! source of truth for unread state.

use tauri::{AppHandle, Emitter, Manager};
use tocsin_client::store::Tab;

use crate::badge::{Badge, TrayLook};
use crate::ipc::{EVENT_ITEMS_CHANGED, EVENT_STATE, ItemsChanged};
use crate::panel::{self, PANEL};
use crate::state::AppState;
use crate::tray::{self, TrayView};
use tocsin_client::events::ConnectionState;

/// Re-reads unread counts, outbox length and the critical mark from the local store.
/// Blocking (SQLite): call from a blocking thread.
pub fn recount(app: &AppHandle) {
    let state = app.state::<AppState>();
    let Some(store) = state.lock().session.as_ref().map(|s| s.store()) else {
        let mut shared = state.lock();
        shared.unread.clear();
        shared.pending_actions = 0;
        shared.critical_pending = false;
        return;
    };
    let counts = {
        let store = store
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        (|| {
            anyhow::Ok((
                store.unread_by_tab()?,
                store.outbox_len()?,
                store.unread_critical_deadlines()? > 0,
            ))
        })()
    };
    match counts {
        Ok((unread, pending, critical)) => {
            let mut shared = state.lock();
            shared.unread = unread;
            shared.pending_actions = pending;
            shared.critical_pending = critical;
        }
        Err(err) => tracing::warn!(%err, "cannot read the unread counts"),
    }
}

/// [`recount`] on a blocking thread, then [`publish`].
pub async fn recount_and_publish(app: &AppHandle) {
    let handle = app.clone();
    if let Err(err) = tokio::task::spawn_blocking(move || recount(&handle)).await {
        tracing::warn!(%err, "recount failed");
    }
    publish(app);
}

/// Sends the snapshot to the panel and updates the tray.
pub fn publish(app: &AppHandle) {
    let state = app.state::<AppState>();
    let snapshot = state.snapshot();
    if panel::is_open(app)
        && let Err(err) = app.emit_to(PANEL, EVENT_STATE, &snapshot)
    {
        tracing::debug!(%err, "panel did not take the state");
    }
    let view = TrayView {
        look: TrayLook {
            badge: Badge::from_count(snapshot.unread_total),
            live: matches!(snapshot.connection, ConnectionState::Connected { .. }),
            critical: snapshot.critical_pending,
        },
        status: tray::status_line(&snapshot.connection, snapshot.locale.strings()),
        locale: snapshot.locale,
        signed_in: snapshot.signed_in,
    };
    // On the main thread, where tray calls run directly instead of waiting for it.
    let handle = app.clone();
    let dispatched = app.run_on_main_thread(move || {
        let state = handle.state::<AppState>();
        let mut tray = state
            .tray
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some(tray) = tray.as_mut()
            && let Err(err) = tray.update(view)
        {
            tracing::warn!(%err, "cannot update the tray");
        }
    });
    if let Err(err) = dispatched {
        tracing::warn!(%err, "cannot reach the main thread to update the tray");
    }
}

/// Tells the panel that these tabs' lists changed.
pub fn items_changed(app: &AppHandle, tabs: Vec<Tab>) {
    if panel::is_open(app)
        && let Err(err) = app.emit_to(PANEL, EVENT_ITEMS_CHANGED, ItemsChanged { tabs })
    {
        tracing::debug!(%err, "panel did not take items-changed");
    }
}
