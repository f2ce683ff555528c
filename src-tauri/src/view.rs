//! Keeping what the user sees in step with the state: after anything changes, the
//! panel gets a fresh [`crate::ipc::Snapshot`] (when it is open) and the tray its
//! look, status line and label. The counts are the engine's (its `Counts` events,
//! [`set_counts`]): the desktop never counts anything itself, so the badge, the
//! panel's tabs and the engine cannot disagree.

use tauri::{AppHandle, Emitter, Manager};
use tocsin_client::store::{Counts, Tab};

use crate::badge::{Badge, TrayLook};
use crate::ipc::{EVENT_ITEMS_CHANGED, EVENT_STATE, ItemsChanged};
use crate::panel::{self, PANEL};
use crate::state::AppState;
use crate::tray::{self, TrayView};
use tocsin_client::events::ConnectionState;

/// Takes the counts of session `session`'s engine and publishes them; the counts of
/// an engine that has stopped since are dropped.
pub fn set_counts(app: &AppHandle, session: u64, counts: &Counts) {
    if app.state::<AppState>().lock().set_counts(session, counts) {
        publish(app);
    }
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
