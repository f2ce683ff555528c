//! The panel window (label [`PANEL`]): created on demand and destroyed when closed,
//! so no WebKit process stays alive while the user is not looking at it (the app
//! itself keeps running in the tray). Opening it for a place (a notification click,
//! "Preferences…") leaves a [`Navigate`] for the page to take at load and also
//! sends it as an event when the window already exists.

use tauri::{AppHandle, Emitter, Manager, WebviewUrl, WebviewWindowBuilder};

use crate::ipc::{EVENT_NAVIGATE, Navigate};
use crate::state::AppState;

/// The panel window's label (capabilities allow the app's commands to it only).
pub const PANEL: &str = "panel";
/// The panel's size, in logical pixels.
const WIDTH: f64 = 380.0;
/// The panel's size, in logical pixels.
const HEIGHT: f64 = 560.0;

/// Shows the panel (creating it if needed), at `navigate` when given.
pub fn open(app: &AppHandle, navigate: Option<Navigate>) -> tauri::Result<()> {
    if let Some(window) = app.get_webview_window(PANEL) {
        if let Some(navigate) = navigate {
            window.emit_to(PANEL, EVENT_NAVIGATE, navigate)?;
        }
        window.unminimize()?;
        window.show()?;
        return window.set_focus();
    }
    app.state::<AppState>().lock().navigation = navigate;
    let window = WebviewWindowBuilder::new(app, PANEL, WebviewUrl::App("index.html".into()))
        .title("Tocsin")
        .inner_size(WIDTH, HEIGHT)
        .min_inner_size(340.0, 420.0)
        .center()
        .focused(true)
        .build()?;
    window.set_focus()
}

/// Closes the panel: the window and its webview are destroyed.
pub fn close(app: &AppHandle) -> tauri::Result<()> {
    match app.get_webview_window(PANEL) {
        Some(window) => window.destroy(),
        None => Ok(()),
    }
}

/// True when the panel exists (then events are worth sending).
pub fn is_open(app: &AppHandle) -> bool {
    app.get_webview_window(PANEL).is_some()
}
