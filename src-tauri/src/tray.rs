//! The tray icon and its menu. Linux gives a tray no click events, so the menu is the
//! way in; its first line says how the connection is ("En direct — Cabinet Dupont").
//! The icon is re-rendered only when what it shows ([`TrayLook`]) changes, and the
//! unread count is also the tray's title (the label beside the icon on Linux).

use chrono::{DateTime, Local, Utc};
use tauri::image::Image;
use tauri::menu::{Menu, MenuEvent, MenuItem, PredefinedMenuItem, Submenu};
use tauri::tray::{MouseButton, MouseButtonState, TrayIcon, TrayIconBuilder, TrayIconEvent};
use tauri::{AppHandle, Wry};

use crate::badge::{self, TrayLook};
use crate::i18n::{Locale, Strings};
use tocsin_client::events::ConnectionState;

/// The tray's id.
pub const TRAY_ID: &str = "tocsin";

/// Menu item ids.
pub mod ids {
    /// The status line (disabled).
    pub const STATUS: &str = "status";
    /// Open the panel.
    pub const OPEN: &str = "open";
    /// Mark everything read.
    pub const MARK_ALL_READ: &str = "mark-all-read";
    /// The pause submenu.
    pub const PAUSE: &str = "pause";
    /// Pause for an hour.
    pub const PAUSE_HOUR: &str = "pause-hour";
    /// Pause until tomorrow 08:00.
    pub const PAUSE_TOMORROW: &str = "pause-tomorrow";
    /// End the pause.
    pub const RESUME: &str = "resume";
    /// Preferences.
    pub const PREFERENCES: &str = "preferences";
    /// Sign out.
    pub const SIGN_OUT: &str = "sign-out";
    /// Quit.
    pub const QUIT: &str = "quit";
}

/// The bell the badges are drawn on.
const BASE_ICON: &[u8] = include_bytes!("../../icons/64x64.png");

/// What the tray shows, computed from the app state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrayView {
    /// The icon's look.
    pub look: TrayLook,
    /// The status line.
    pub status: String,
    /// The language.
    pub locale: Locale,
    /// Whether account actions apply.
    pub signed_in: bool,
}

/// The tray and the menu items it updates.
pub struct Tray {
    /// The icon.
    icon: TrayIcon,
    /// The bell's RGBA pixels.
    base: Vec<u8>,
    /// Status line.
    status: MenuItem<Wry>,
    /// Open.
    open: MenuItem<Wry>,
    /// Mark all read.
    mark_all_read: MenuItem<Wry>,
    /// Pause submenu.
    pause: Submenu<Wry>,
    /// Pause items.
    pause_hour: MenuItem<Wry>,
    /// Pause items.
    pause_tomorrow: MenuItem<Wry>,
    /// Pause items.
    resume: MenuItem<Wry>,
    /// Preferences.
    preferences: MenuItem<Wry>,
    /// Sign out.
    sign_out: MenuItem<Wry>,
    /// Quit.
    quit: MenuItem<Wry>,
    /// What is shown now (`None` before the first update).
    shown: Option<TrayView>,
}

/// The status line for a connection state.
pub fn status_line(connection: &ConnectionState, strings: &Strings) -> String {
    match connection {
        ConnectionState::Connected { tenant, .. } => format!("{} — {tenant}", strings.status_live),
        ConnectionState::Connecting { .. } => strings.status_connecting.to_owned(),
        ConnectionState::Offline { since, .. } => {
            format!("{} {}", strings.status_offline_since, local_hhmm(*since))
        }
        ConnectionState::SignedOut { .. } => strings.status_signed_out.to_owned(),
    }
}

/// "10:42" in local time.
fn local_hhmm(at: DateTime<Utc>) -> String {
    at.with_timezone(&Local).format("%H:%M").to_string()
}

/// Creates the tray with its menu; `on_menu` handles menu clicks.
pub fn create(
    app: &AppHandle,
    locale: Locale,
    on_menu: impl Fn(&AppHandle, MenuEvent) + Send + Sync + 'static,
) -> tauri::Result<Tray> {
    let s = locale.strings();
    let item = |id: &str, text: &str, enabled: bool| {
        MenuItem::with_id(app, id, text, enabled, None::<&str>)
    };
    let status = item(ids::STATUS, s.status_connecting, false)?;
    let open = item(ids::OPEN, s.menu_open, true)?;
    let mark_all_read = item(ids::MARK_ALL_READ, s.menu_mark_all_read, false)?;
    let pause_hour = item(ids::PAUSE_HOUR, s.menu_pause_hour, true)?;
    let pause_tomorrow = item(ids::PAUSE_TOMORROW, s.menu_pause_tomorrow, true)?;
    let resume = item(ids::RESUME, s.menu_resume, true)?;
    let pause = Submenu::with_id_and_items(
        app,
        ids::PAUSE,
        s.menu_pause,
        true,
        &[&pause_hour, &pause_tomorrow, &resume],
    )?;
    let preferences = item(ids::PREFERENCES, s.menu_preferences, true)?;
    let sign_out = item(ids::SIGN_OUT, s.menu_sign_out, false)?;
    let quit = item(ids::QUIT, s.menu_quit, true)?;
    let menu = Menu::with_items(
        app,
        &[
            &status,
            &PredefinedMenuItem::separator(app)?,
            &open,
            &mark_all_read,
            &pause,
            &preferences,
            &PredefinedMenuItem::separator(app)?,
            &sign_out,
            &quit,
        ],
    )?;
    let base = Image::from_bytes(BASE_ICON)?.rgba().to_vec();
    let first = TrayLook {
        badge: badge::Badge::None,
        live: false,
        critical: false,
    };
    let icon = TrayIconBuilder::with_id(TRAY_ID)
        .icon(Image::new_owned(
            badge::render(&base, first),
            badge::SIZE as u32,
            badge::SIZE as u32,
        ))
        .tooltip("Tocsin")
        .title("")
        .menu(&menu)
        .show_menu_on_left_click(false)
        .on_menu_event(on_menu)
        .on_tray_icon_event(|tray, event| {
            // macOS and Windows: a left click opens the panel (Linux sends no clicks).
            if let TrayIconEvent::Click {
                button: MouseButton::Left,
                button_state: MouseButtonState::Up,
                ..
            } = event
                && let Err(err) = crate::panel::open(tray.app_handle(), None)
            {
                tracing::warn!(%err, "cannot open the panel");
            }
        })
        .build(app)?;
    Ok(Tray {
        icon,
        base,
        status,
        open,
        mark_all_read,
        pause,
        pause_hour,
        pause_tomorrow,
        resume,
        preferences,
        sign_out,
        quit,
        shown: None,
    })
}

impl Tray {
    /// Shows `view`, touching only what changed.
    pub fn update(&mut self, view: TrayView) -> tauri::Result<()> {
        let before = self.shown.as_ref();
        if before.map(|b| b.look) != Some(view.look) {
            let pixels = badge::render(&self.base, view.look);
            self.icon.set_icon(Some(Image::new_owned(
                pixels,
                badge::SIZE as u32,
                badge::SIZE as u32,
            )))?;
            self.icon.set_title(Some(view.look.badge.label()))?;
            tracing::debug!(look = ?view.look, "tray icon re-rendered");
        }
        if before.map(|b| &b.status) != Some(&view.status) {
            self.status.set_text(&view.status)?;
        }
        if before.map(|b| b.signed_in) != Some(view.signed_in) {
            self.mark_all_read.set_enabled(view.signed_in)?;
            self.sign_out.set_enabled(view.signed_in)?;
        }
        if before.is_some_and(|b| b.locale != view.locale) {
            self.relabel(view.locale.strings())?;
        }
        self.shown = Some(view);
        Ok(())
    }

    /// Renames every item after a language change.
    fn relabel(&self, s: &Strings) -> tauri::Result<()> {
        self.open.set_text(s.menu_open)?;
        self.mark_all_read.set_text(s.menu_mark_all_read)?;
        self.pause.set_text(s.menu_pause)?;
        self.pause_hour.set_text(s.menu_pause_hour)?;
        self.pause_tomorrow.set_text(s.menu_pause_tomorrow)?;
        self.resume.set_text(s.menu_resume)?;
        self.preferences.set_text(s.menu_preferences)?;
        self.sign_out.set_text(s.menu_sign_out)?;
        self.quit.set_text(s.menu_quit)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_says_live_connecting_offline_or_signed_out() {
        let fr = Locale::Fr.strings();
        let en = Locale::En.strings();
        let live = ConnectionState::Connected {
            since: Utc::now(),
            tenant: "Cabinet Dupont".into(),
        };
        assert_eq!(status_line(&live, fr), "En direct — Cabinet Dupont");
        assert_eq!(status_line(&live, en), "Live — Cabinet Dupont");
        let connecting = ConnectionState::Connecting {
            attempt: 1,
            next_retry: None,
        };
        assert_eq!(status_line(&connecting, fr), "Connexion…");
        let since = Utc::now();
        let offline = ConnectionState::Offline {
            since,
            reason: "reset".into(),
        };
        assert_eq!(
            status_line(&offline, fr),
            format!("Déconnecté depuis {}", local_hhmm(since))
        );
        assert!(status_line(&offline, en).starts_with("Offline since "));
    }
}
