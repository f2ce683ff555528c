//! Changing preferences: saved at once, handed to the engine (which decides the next
//! toasts with them), start-at-login registered with the OS, the language applied to
//! the tray and the panel.

use chrono::{Local, Utc};
use tauri::{AppHandle, Manager};
use tauri_plugin_autostart::ManagerExt;
use tocsin_client::engine::Command;

use crate::error::AppError;
use crate::ipc::PreferencesView;
use crate::state::AppState;
use crate::view;

/// "Pause notifications" choices.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Pause {
    /// One hour from now.
    Hour,
    /// Until tomorrow 08:00 local time.
    Tomorrow,
    /// End the pause.
    Resume,
}

/// The preferences as the panel edits them.
pub fn get(app: &AppHandle) -> PreferencesView {
    let state = app.state::<AppState>();
    let shared = state.lock();
    PreferencesView::new(
        &shared.settings.prefs,
        shared.settings.autostart,
        shared.settings.language,
    )
}

/// Applies and saves edited preferences.
pub async fn set(app: &AppHandle, view: PreferencesView) -> Result<PreferencesView, AppError> {
    let state = app.state::<AppState>();
    let mut settings = state.lock().settings.clone();
    view.apply(&mut settings.prefs)?;
    settings.language = view.language;
    if settings.autostart != view.autostart {
        let launcher = app.autolaunch();
        let registered = if view.autostart {
            launcher.enable()
        } else {
            launcher.disable()
        };
        registered.map_err(|err| {
            AppError::new(
                "autostart",
                format!("could not change start at login: {err}"),
            )
        })?;
        settings.autostart = view.autostart;
    }
    save(app, settings).await?;
    Ok(get(app))
}

/// Pauses or resumes ordinary notifications (critical ones still show).
pub async fn pause(app: &AppHandle, choice: Pause) -> Result<(), AppError> {
    let state = app.state::<AppState>();
    let mut settings = state.lock().settings.clone();
    match choice {
        Pause::Hour => settings
            .prefs
            .pause_for(Utc::now(), std::time::Duration::from_secs(3600)),
        Pause::Tomorrow => settings.prefs.pause_until_tomorrow(&Local::now()),
        Pause::Resume => settings.prefs.resume(),
    }
    save(app, settings).await
}

/// Stores settings, hands the preferences to the engine, refreshes the view.
async fn save(app: &AppHandle, settings: crate::settings::Settings) -> Result<(), AppError> {
    let state = app.state::<AppState>();
    // The engine first: once the file says "paused", the engine already decides
    // with it (what the end-to-end test relies on).
    if let Some(engine) = state.engine() {
        engine
            .send(Command::SetPreferences(Box::new(settings.prefs.clone())))
            .await;
    }
    let saved = settings.save(&state.dirs.config);
    state.lock().settings = settings;
    view::publish(app);
    saved.map_err(|err| {
        AppError::new(
            "save_failed",
            format!("could not save the settings (they apply until Tocsin quits): {err}"),
        )
    })
}
