//! Tocsin's desktop tray app: a thin Tauri 2 shell over `tocsin-client` (the engine
//! that connects, resumes, stores and queues). It draws the unread count on the tray
//! icon, shows OS notifications through notify-rust, and opens a small panel window
//! on demand.
//!
//! # Layout
//! - [`cli`]: command-line flags (`--hidden`, `--home`, sign-in for scripts).
//! - [`state`]: the managed [`state::AppState`] (session, what is shown, settings).
//! - [`session`]: sign in/out, the engine's life, the secret store.
//! - [`bridge`]: engine events → tray, panel, OS notifications; clicks → engine.
//! - [`view`]: pushing the snapshot to the panel and the look to the tray.
//! - [`tray`] + [`badge`]: the tray menu and the icon's pixels.
//! - [`notifier`] + [`toast`]: OS notifications and their wording per kind.
//! - [`link`]: a notification's link opened with the system's handler, checked again.
//! - [`calendar`]: the user's calendar (ICS) feed, made and turned off on the gateway.
//! - [`nudges`]: network changes and resume from sleep (system bus) → reconnect now.
//! - [`panel`]: the on-demand panel window.
//! - [`commands`] + [`ipc`]: the panel's commands and the contract's types
//!   (docs/DESKTOP_IPC.md).
//! - [`prefs`] + [`settings`]: preferences, pause, start at login, language.
//! - [`i18n`]: the shell's French and English strings.
//! - [`error`]: the commands' error type.
//! - [`logging`]: the rotating log file.

pub mod badge;
pub mod bridge;
pub mod calendar;
pub mod cli;
pub mod commands;
pub mod error;
pub mod i18n;
pub mod ipc;
pub mod link;
pub mod logging;
pub mod notifier;
pub mod nudges;
pub mod panel;
pub mod prefs;
pub mod session;
pub mod settings;
pub mod state;
pub mod toast;
pub mod tray;
pub mod view;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tauri::menu::MenuEvent;
use tauri::{AppHandle, Manager, RunEvent};
use tocsin_client::engine::Command;
use tokio::sync::mpsc;

use crate::cli::{Cli, SignIn};
use crate::ipc::{Navigate, View};
use crate::notifier::{DesktopNotifier, Notifier};
use crate::prefs::Pause;
use crate::settings::Settings;
use crate::state::{AppState, Dirs};

/// Keeps the log writer alive for the app's life.
struct LogGuard(#[allow(dead_code)] tracing_appender::non_blocking::WorkerGuard);

/// Runs the app until the user quits.
pub fn run() -> ExitCode {
    #[cfg(target_os = "linux")]
    without_gdk_gl();
    let cli = Cli::parse();
    let sign_in = match cli.sign_in() {
        Ok(sign_in) => sign_in,
        Err(err) => {
            eprintln!("error: {err:#}");
            return ExitCode::from(2);
        }
    };
    // The name desktops show for the app (the tray item's title on Linux, which
    // libayatana takes from GLib's application name).
    #[cfg(target_os = "linux")]
    glib::set_application_name("Tocsin");
    let app = tauri::Builder::default()
        // First, so a second launch only opens the panel of the running one.
        .plugin(tauri_plugin_single_instance::init(|app, _argv, _cwd| {
            if let Err(err) = panel::open(app, None) {
                tracing::warn!(%err, "cannot open the panel for a second launch");
            }
        }))
        .plugin(tauri_plugin_autostart::init(
            tauri_plugin_autostart::MacosLauncher::LaunchAgent,
            Some(vec!["--hidden"]),
        ))
        .invoke_handler(tauri::generate_handler![
            commands::snapshot,
            commands::take_navigation,
            commands::list_items,
            commands::list_deadlines,
            commands::acknowledge,
            commands::rotate_calendar_feed,
            commands::revoke_calendar_feed,
            commands::mark_read,
            commands::mark_all_read,
            commands::respond_proposal,
            commands::open_link,
            commands::sign_in,
            commands::sign_out,
            commands::get_preferences,
            commands::set_preferences,
            commands::pause,
            commands::hide_panel,
        ])
        .setup(move |app| setup(app, &cli, sign_in))
        .build(tauri::generate_context!());
    let app = match app {
        Ok(app) => app,
        Err(err) => {
            eprintln!("error: cannot start Tocsin: {err}");
            return ExitCode::FAILURE;
        }
    };
    app.run(|_app, event| {
        // A tray app keeps running with no window; only Quit (an explicit exit code)
        // ends it.
        if let RunEvent::ExitRequested {
            api, code: None, ..
        } = event
        {
            api.prevent_exit();
        }
    });
    ExitCode::SUCCESS
}

/// Restarts this process (same pid, arguments and stdin) with `GDK_GL=disable`, once.
///
/// GTK 3 opens an OpenGL context when it connects to an X display, only to choose
/// visuals; with Mesa that maps the GL driver and LLVM, ~50 MB resident for a tray
/// app that draws nothing with GL (measured: 134 MB → 83 MB with the panel closed).
/// The panel's webview composites without it (WebKit's web process has its own
/// renderer). GDK reads the variable only from the environment, and setting it from
/// Rust needs `unsafe` (forbidden here), hence the exec. `GDK_GL` already set (to
/// anything) is respected, so `GDK_GL=always` turns GL back on.
#[cfg(target_os = "linux")]
fn without_gdk_gl() {
    use std::os::unix::process::CommandExt;
    if std::env::var_os("GDK_GL").is_some() {
        return;
    }
    let Ok(exe) = std::env::current_exe() else {
        return;
    };
    let err = std::process::Command::new(exe)
        .args(std::env::args_os().skip(1))
        .env("GDK_GL", "disable")
        .exec();
    // Only reached when exec failed: carry on with GL, which works, only heavier.
    eprintln!("warning: could not restart without GTK's OpenGL ({err}); carrying on");
}

/// Wires state, logs, tray, notifications and the session at start.
fn setup(
    app: &mut tauri::App,
    cli: &Cli,
    sign_in: Option<SignIn>,
) -> Result<(), Box<dyn std::error::Error>> {
    let handle = app.handle().clone();
    let (dirs, log_dir) = match &cli.home {
        Some(home) => (
            Dirs {
                config: home.join("config"),
                data: home.join("data"),
            },
            home.join("logs"),
        ),
        None => (
            Dirs {
                config: app.path().app_config_dir()?,
                data: app.path().app_data_dir()?,
            },
            app.path().app_log_dir()?,
        ),
    };
    app.manage(LogGuard(logging::init(&log_dir)?));
    tracing::info!(version = env!("CARGO_PKG_VERSION"), config = %dirs.config.display(), "starting");
    let loaded = Settings::load(&dirs.config);
    if let Some(aside) = loaded.moved_aside {
        tracing::warn!(path = %aside.display(), "damaged settings moved aside; defaults in use");
    }
    let (clicks_tx, clicks_rx) = mpsc::unbounded_channel();
    let notifier: Arc<dyn Notifier> = Arc::new(DesktopNotifier::new(clicks_tx));
    app.manage(AppState::new(dirs, loaded.settings, notifier.clone()));
    let state = app.state::<AppState>();
    let tray = tray::create(&handle, state.locale(), on_menu)?;
    *state
        .tray
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner) = Some(tray);
    tauri::async_runtime::spawn(bridge::follow_clicks(handle.clone(), clicks_rx));
    let probe_app = handle.clone();
    tauri::async_runtime::spawn(async move {
        let outcome = tokio::task::spawn_blocking(move || notifier.probe())
            .await
            .unwrap_or_else(|err| Err(err.to_string()));
        if let Err(err) = &outcome {
            tracing::warn!(%err, "no OS notification service: badge and panel only");
        }
        bridge::set_notifications_status(&probe_app, outcome);
        view::publish(&probe_app);
    });
    match sign_in {
        Some(sign_in) => {
            let app = handle.clone();
            tauri::async_runtime::spawn(async move {
                if let Err(err) = session::sign_in(
                    &app,
                    &sign_in.server,
                    &sign_in.email,
                    &sign_in.password,
                    None,
                )
                .await
                {
                    tracing::error!(code = err.code, %err, "sign-in from the command line failed");
                    eprintln!("error: sign-in failed: {err}");
                }
            });
        }
        None => {
            let app = handle.clone();
            tauri::async_runtime::spawn(async move { session::resume(&app).await });
        }
    }
    if !cli.hidden {
        panel::open(&handle, None)?;
    }
    view::publish(&handle);
    Ok(())
}

/// Tray menu clicks (on the main thread).
fn on_menu(app: &AppHandle, event: MenuEvent) {
    let app = app.clone();
    let opened = match event.id().as_ref() {
        tray::ids::OPEN => panel::open(&app, None),
        tray::ids::PREFERENCES => panel::open(
            &app,
            Some(Navigate {
                view: View::Preferences,
                tab: None,
                item_id: None,
            }),
        ),
        tray::ids::MARK_ALL_READ => {
            tauri::async_runtime::spawn(async move {
                if let Some(engine) = app.state::<AppState>().engine() {
                    engine.send(Command::MarkAllRead(None)).await;
                }
            });
            Ok(())
        }
        id @ (tray::ids::PAUSE_HOUR | tray::ids::PAUSE_TOMORROW | tray::ids::RESUME) => {
            let choice = match id {
                tray::ids::PAUSE_HOUR => Pause::Hour,
                tray::ids::PAUSE_TOMORROW => Pause::Tomorrow,
                _ => Pause::Resume,
            };
            tauri::async_runtime::spawn(async move {
                if let Err(err) = prefs::pause(&app, choice).await {
                    tracing::warn!(%err, "cannot pause");
                }
            });
            Ok(())
        }
        tray::ids::SIGN_OUT => {
            tauri::async_runtime::spawn(async move {
                if let Err(err) = session::sign_out(&app).await {
                    tracing::warn!(%err, "sign-out failed");
                }
            });
            Ok(())
        }
        tray::ids::QUIT => {
            tauri::async_runtime::spawn(async move { session::quit(&app).await });
            Ok(())
        }
        other => {
            tracing::debug!(id = other, "unhandled menu item");
            Ok(())
        }
    };
    if let Err(err) = opened {
        tracing::warn!(%err, "cannot open the panel");
    }
}
