//! OS notifications through notify-rust, directly: the Tauri notification plugin
//! drops urgency and actions on desktop Linux.
//!
//! [`Notifier`] is the seam: the app talks to the trait, [`DesktopNotifier`] is the
//! real one (freedesktop D-Bus on Linux, tested for real against a notification
//! server on a private session bus), and unit tests use a recording fake. Calls block
//! (a D-Bus round trip), so callers run them on a blocking thread.
//!
//! A click on a notification, or one of its actions, comes back as a [`ToastClick`]
//! on a channel: for each shown notification that has actions a thread waits for its
//! `ActionInvoked` / `NotificationClosed` signal. Those threads are capped
//! ([`MAX_WAITERS`]); past the cap notifications still show, without click handling.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use tocsin_client::store::Tab;
use tokio::sync::mpsc;

use crate::toast::ToastContent;

/// At most this many shown notifications wait for a click at once.
pub const MAX_WAITERS: usize = 64;

/// The user clicked a notification or one of its actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToastClick {
    /// The action key (`default`, `mark-read`).
    pub action: String,
    /// The notification it was about (`None` for a summary).
    pub notification_id: Option<String>,
    /// The tab to open.
    pub tab: Option<Tab>,
}

/// Shows OS notifications.
pub trait Notifier: Send + Sync + 'static {
    /// Asks whether a notification service answers; `Err` says why not.
    fn probe(&self) -> Result<(), String>;
    /// Shows one notification; `Err` says why it could not be shown.
    fn show(&self, toast: &ToastContent) -> Result<(), String>;
}

/// The real notifier.
pub struct DesktopNotifier {
    /// Clicks go to the app here.
    clicks: mpsc::UnboundedSender<ToastClick>,
    /// How many threads wait for a click now.
    waiting: Arc<AtomicUsize>,
    /// The server interprets markup in bodies (its `body-markup` capability): then
    /// `<`, `>` and `&` in our text must be escaped, or "Maître Martin <m@x.fr>"
    /// loses the address and the popup its formatting.
    body_markup: AtomicBool,
    /// The server's id of the last toast per [`ToastContent::replaces`] key.
    on_screen: Mutex<HashMap<String, u32>>,
}

impl DesktopNotifier {
    /// A notifier sending clicks to `clicks`.
    pub fn new(clicks: mpsc::UnboundedSender<ToastClick>) -> Self {
        DesktopNotifier {
            clicks,
            waiting: Arc::new(AtomicUsize::new(0)),
            // Learnt from the server's capabilities by `probe` (Linux only).
            body_markup: AtomicBool::new(false),
            on_screen: Mutex::new(HashMap::new()),
        }
    }
}

impl Notifier for DesktopNotifier {
    fn probe(&self) -> Result<(), String> {
        #[cfg(all(unix, not(target_os = "macos")))]
        {
            let info = notify_rust::get_server_information().map_err(|err| err.to_string())?;
            let capabilities = notify_rust::get_capabilities().unwrap_or_default();
            self.body_markup.store(
                capabilities.iter().any(|c| c == "body-markup"),
                Ordering::Relaxed,
            );
            tracing::info!(server = %info.name, version = %info.version, ?capabilities, "notification service found");
            Ok(())
        }
        #[cfg(not(all(unix, not(target_os = "macos"))))]
        {
            Ok(())
        }
    }

    fn show(&self, toast: &ToastContent) -> Result<(), String> {
        let mut notification = notify_rust::Notification::new();
        let body = if self.body_markup.load(Ordering::Relaxed) {
            escape_markup(&toast.body)
        } else {
            toast.body.clone()
        };
        notification
            .appname("Tocsin")
            .summary(&toast.summary)
            .body(&body)
            .icon(toast.icon);
        let key = toast.replaces.as_deref();
        #[cfg(all(unix, not(target_os = "macos")))]
        if let Some(id) = key.and_then(|key| self.lock_on_screen().get(key).copied()) {
            notification.id(id);
        }
        for (key, label) in &toast.actions {
            notification.action(key, label);
        }
        #[cfg(all(unix, not(target_os = "macos")))]
        {
            use notify_rust::Hint;
            notification
                .hint(Hint::Category(toast.category.to_owned()))
                // The installed launcher is Tocsin.desktop (Tauri names it after the
                // product): desktops group the popups under it.
                .hint(Hint::DesktopEntry("Tocsin".to_owned()));
            notification.urgency(if toast.critical {
                notify_rust::Urgency::Critical
            } else {
                notify_rust::Urgency::Normal
            });
        }
        if toast.critical {
            // Stays on screen until the user acts (DESIGN.md).
            notification.timeout(notify_rust::Timeout::Never);
        }
        let handle = notification.show().map_err(|err| err.to_string())?;
        #[cfg(all(unix, not(target_os = "macos")))]
        if let Some(key) = key {
            self.lock_on_screen().insert(key.to_owned(), handle.id());
        }
        if toast.actions.is_empty() {
            return Ok(());
        }
        self.wait_for_click(handle, toast);
        Ok(())
    }
}

/// Escapes the three characters freedesktop body markup gives a meaning to.
pub fn escape_markup(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl DesktopNotifier {
    /// The ids of toasts on screen, by replacement key.
    fn lock_on_screen(&self) -> std::sync::MutexGuard<'_, HashMap<String, u32>> {
        self.on_screen
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Waits on a thread of its own for the notification's action or closing.
    #[cfg(all(unix, not(target_os = "macos")))]
    fn wait_for_click(&self, handle: notify_rust::NotificationHandle, toast: &ToastContent) {
        if self.waiting.fetch_add(1, Ordering::SeqCst) >= MAX_WAITERS {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            tracing::debug!("too many notifications waiting for a click; not following this one");
            return;
        }
        let clicks = self.clicks.clone();
        let waiting = self.waiting.clone();
        let notification_id = toast.notification_id.clone();
        let tab = toast.tab;
        let spawned = std::thread::Builder::new()
            .name("toast-click".into())
            .spawn(move || {
                handle.wait_for_action(|action| {
                    // "__closed" is notify-rust's word for "dismissed without action".
                    if action != "__closed" {
                        let _ = clicks.send(ToastClick {
                            action: action.to_owned(),
                            notification_id,
                            tab,
                        });
                    }
                });
                waiting.fetch_sub(1, Ordering::SeqCst);
            });
        if let Err(err) = spawned {
            self.waiting.fetch_sub(1, Ordering::SeqCst);
            tracing::warn!(%err, "cannot follow a notification's click");
        }
    }

    /// Elsewhere clicks are not followed yet (macOS/Windows deliver them differently).
    #[cfg(not(all(unix, not(target_os = "macos"))))]
    fn wait_for_click(&self, _handle: notify_rust::NotificationHandle, _toast: &ToastContent) {
        let _ = (&self.clicks, &self.waiting);
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use std::sync::Mutex;

    use super::*;

    #[test]
    fn markup_characters_are_escaped() {
        assert_eq!(
            escape_markup("Maître Martin <m@x.fr> & co"),
            "Maître Martin &lt;m@x.fr&gt; &amp; co"
        );
    }

    /// A notifier that records what it was asked to show (unit tests only; the real
    /// one is tested against a notification server on a session bus, tests/).
    #[derive(Default)]
    pub struct Recording {
        /// Every toast shown.
        pub shown: Mutex<Vec<ToastContent>>,
        /// Set to make every call fail as with no notification service.
        pub unavailable: Option<String>,
    }

    impl Notifier for Recording {
        fn probe(&self) -> Result<(), String> {
            self.unavailable.clone().map_or(Ok(()), Err)
        }

        fn show(&self, toast: &ToastContent) -> Result<(), String> {
            self.probe()?;
            self.shown
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(toast.clone());
            Ok(())
        }
    }
}
