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
//!
//! A notification read elsewhere (another device of the user, the panel, the tray's
//! "mark all read") has its toast closed ([`Notifier::close`]): a critical deadline
//! never expires, and one the lawyer already took in on the phone must not wait on
//! this screen too. [`OnScreen`] remembers which server id shows which notification,
//! for the [`MAX_ON_SCREEN`] most recent toasts. A deadline acknowledged (here, on
//! another device, by a colleague) has its alert's toast closed the same way
//! ([`Notifier::close_deadline`]), found by the key its alerts replace each other by.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use tocsin_client::store::Tab;
use tokio::sync::mpsc;

use crate::toast::ToastContent;

/// At most this many shown notifications wait for a click at once.
pub const MAX_WAITERS: usize = 64;

/// At most this many toasts are remembered (to close or replace them). More are
/// seldom on screen at once: ordinary toasts expire, critical ones are rare, and
/// each one closed, dismissed or acted on is forgotten at once. Past the cap the
/// oldest is forgotten: it can no longer be closed from here, it still shows.
pub const MAX_ON_SCREEN: usize = 200;

/// The user clicked a notification or one of its actions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToastClick {
    /// The action key (`default`, `acknowledge`, `mark-read`).
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
    /// Closes the toast still showing Tocsin notification `notification_id` (read
    /// elsewhere); nothing to do, and `Ok`, when none shows it. Summaries stand for
    /// many notifications and are never closed this way.
    fn close(&self, notification_id: &str) -> Result<(), String>;
    /// Closes the toasts still showing an alert of deadline `deadline_id` (it was
    /// acknowledged); `Ok` when none shows one.
    fn close_deadline(&self, deadline_id: &str) -> Result<(), String>;
}

/// One toast this app put on the notification server's screen.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Shown {
    /// The server's id for it.
    server_id: u32,
    /// The Tocsin notification it shows (`None` for a summary).
    notification_id: Option<String>,
    /// Its [`ToastContent::replaces`] key.
    replaces: Option<String>,
}

/// The toasts on screen as far as this app knows, oldest first, at most
/// [`MAX_ON_SCREEN`]: to close a notification's toast when it is read elsewhere, and
/// to replace a deadline's earlier alert (or the last summary) instead of piling up.
///
/// A toast that another replaced (same server id) no longer stands for its own
/// notification: reading that one elsewhere must not close its successor. A
/// linear scan over at most 200 entries, once per read notification, costs less
/// than the D-Bus call it may save.
#[derive(Debug, Default)]
pub struct OnScreen {
    /// Oldest first.
    shown: VecDeque<Shown>,
    /// Toasts another replaced on screen (same server id), as (server id, what they
    /// showed), at most [`MAX_ON_SCREEN`]: their click threads still wait on that id
    /// and wake with the successor's click, which is not theirs to handle (a click
    /// on the critical alert would open or acknowledge twice).
    superseded: VecDeque<(u32, Option<String>)>,
}

impl OnScreen {
    /// The server id to replace for a toast with this key, when one is on screen.
    pub fn replaceable(&self, key: &str) -> Option<u32> {
        self.shown
            .iter()
            .rev()
            .find(|shown| shown.replaces.as_deref() == Some(key))
            .map(|shown| shown.server_id)
    }

    /// The server showed `toast` as `server_id` (a new id, or the one it replaced).
    pub fn shown(&mut self, server_id: u32, toast: &ToastContent) {
        if let Some(replaced) = self
            .shown
            .iter()
            .find(|shown| shown.server_id == server_id)
            .filter(|shown| shown.notification_id != toast.notification_id)
        {
            self.superseded
                .push_back((server_id, replaced.notification_id.clone()));
            while self.superseded.len() > MAX_ON_SCREEN {
                self.superseded.pop_front();
            }
        }
        self.shown.retain(|shown| shown.server_id != server_id);
        self.shown.push_back(Shown {
            server_id,
            notification_id: toast.notification_id.clone(),
            replaces: toast.replaces.clone(),
        });
        while self.shown.len() > MAX_ON_SCREEN {
            self.shown.pop_front();
        }
    }

    /// Forgets the toast of `notification_id` and returns its server id, to close it.
    pub fn take(&mut self, notification_id: &str) -> Option<u32> {
        let index = self
            .shown
            .iter()
            .position(|shown| shown.notification_id.as_deref() == Some(notification_id))?;
        self.shown.remove(index).map(|shown| shown.server_id)
    }

    /// True, once, when the toast `server_id` showing `notification_id` was replaced
    /// by another since: a click on that id is the successor's.
    pub fn take_superseded(&mut self, server_id: u32, notification_id: Option<&str>) -> bool {
        let Some(index) = self
            .superseded
            .iter()
            .position(|(id, n)| *id == server_id && n.as_deref() == notification_id)
        else {
            return false;
        };
        self.superseded.remove(index);
        true
    }

    /// Forgets every toast shown with the [`ToastContent::replaces`] key `key` and
    /// returns their server ids, to close them (one, unless a replaced toast's
    /// server gave a new id).
    pub fn take_key(&mut self, key: &str) -> Vec<u32> {
        let mut taken = Vec::new();
        self.shown.retain(|shown| {
            let matches = shown.replaces.as_deref() == Some(key);
            if matches {
                taken.push(shown.server_id);
            }
            !matches
        });
        taken
    }

    /// The toast `server_id` showing `notification_id` was closed, dismissed, expired
    /// or acted on: forgotten. A toast that has replaced it since keeps its place.
    pub fn forget(&mut self, server_id: u32, notification_id: Option<&str>) {
        self.shown.retain(|shown| {
            shown.server_id != server_id || shown.notification_id.as_deref() != notification_id
        });
    }

    /// How many toasts are remembered.
    pub fn len(&self) -> usize {
        self.shown.len()
    }

    /// True when none is.
    pub fn is_empty(&self) -> bool {
        self.shown.is_empty()
    }
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
    /// The toasts on screen: shared with the click threads, which forget a toast
    /// once it is closed or acted on.
    on_screen: Arc<Mutex<OnScreen>>,
}

impl DesktopNotifier {
    /// A notifier sending clicks to `clicks`.
    pub fn new(clicks: mpsc::UnboundedSender<ToastClick>) -> Self {
        DesktopNotifier {
            clicks,
            waiting: Arc::new(AtomicUsize::new(0)),
            // Learnt from the server's capabilities by `probe` (Linux only).
            body_markup: AtomicBool::new(false),
            on_screen: Arc::new(Mutex::new(OnScreen::default())),
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
        #[cfg(all(unix, not(target_os = "macos")))]
        if let Some(id) = toast
            .replaces
            .as_deref()
            .and_then(|key| lock(&self.on_screen).replaceable(key))
        {
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
        lock(&self.on_screen).shown(handle.id(), toast);
        if toast.actions.is_empty() {
            return Ok(());
        }
        self.wait_for_click(handle, toast);
        Ok(())
    }

    fn close(&self, notification_id: &str) -> Result<(), String> {
        let Some(server_id) = lock(&self.on_screen).take(notification_id) else {
            return Ok(());
        };
        tracing::debug!(notification_id, server_id, "closing a toast read elsewhere");
        close_on_server(server_id)
    }

    fn close_deadline(&self, deadline_id: &str) -> Result<(), String> {
        let server_ids = lock(&self.on_screen).take_key(&crate::toast::deadline_key(deadline_id));
        let mut last = Ok(());
        for server_id in server_ids {
            tracing::debug!(
                deadline_id,
                server_id,
                "closing the toast of an acknowledged deadline"
            );
            last = close_on_server(server_id);
        }
        last
    }
}

/// `CloseNotification(server_id)` on the session bus. notify-rust closes only
/// through a handle it gave, which the click thread holds (and keeping every handle
/// would keep a bus connection open per toast): the server's id is all it takes.
/// One short-lived connection per call: toasts are closed one by one as the lawyer
/// reads them. Blocking, like [`Notifier::show`].
#[cfg(all(unix, not(target_os = "macos")))]
fn close_on_server(server_id: u32) -> Result<(), String> {
    const NAME: &str = "org.freedesktop.Notifications";
    const PATH: &str = "/org/freedesktop/Notifications";
    zbus::block_on(async {
        let connection = zbus::Connection::session().await?;
        connection
            .call_method(
                Some(NAME),
                PATH,
                Some(NAME),
                "CloseNotification",
                &(server_id,),
            )
            .await?;
        Ok::<_, zbus::Error>(())
    })
    .map_err(|err| err.to_string())
}

/// Elsewhere toasts are not closed yet (notify-rust cannot close them there).
#[cfg(not(all(unix, not(target_os = "macos"))))]
fn close_on_server(_server_id: u32) -> Result<(), String> {
    Ok(())
}

/// Locks the toasts on screen; a panic while it was held leaves plain values.
fn lock(on_screen: &Mutex<OnScreen>) -> MutexGuard<'_, OnScreen> {
    on_screen
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// Escapes the three characters freedesktop body markup gives a meaning to.
pub fn escape_markup(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

impl DesktopNotifier {
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
        let on_screen = self.on_screen.clone();
        let server_id = handle.id();
        let notification_id = toast.notification_id.clone();
        let tab = toast.tab;
        let spawned = std::thread::Builder::new()
            .name("toast-click".into())
            .spawn(move || {
                handle.wait_for_action(|action| {
                    // Off the screen now, whatever happened: forgotten before the
                    // click is handled, so the read it causes closes nothing.
                    let replaced = {
                        let mut on_screen = lock(&on_screen);
                        on_screen.forget(server_id, notification_id.as_deref());
                        on_screen.take_superseded(server_id, notification_id.as_deref())
                    };
                    // "__closed" is notify-rust's word for "dismissed without action";
                    // a replaced toast's thread wakes with its successor's click,
                    // which the successor's own thread handles.
                    if action != "__closed" && !replaced {
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

    /// A notifier that records what it was asked to show and close, and hands out
    /// server ids the way a notification server does (new ones increase, a
    /// replacement keeps the replaced one), keeping them in an [`OnScreen`] as the
    /// real one does (unit tests only; the real one is tested against a notification
    /// server on a session bus, tests/).
    #[derive(Default)]
    pub struct Recording {
        /// Every toast shown.
        pub shown: Mutex<Vec<ToastContent>>,
        /// The server ids closed, in order.
        pub closed: Mutex<Vec<u32>>,
        /// The toasts on its screen.
        pub on_screen: Mutex<OnScreen>,
        /// The last server id handed out.
        last_id: Mutex<u32>,
        /// Set to make every call fail as with no notification service.
        pub unavailable: Option<String>,
    }

    impl Recording {
        /// The server id the last toast got.
        pub fn last_id(&self) -> u32 {
            *self.last_id.lock().unwrap_or_else(|p| p.into_inner())
        }

        /// The server ids closed so far.
        pub fn closed(&self) -> Vec<u32> {
            self.closed
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .clone()
        }
    }

    impl Notifier for Recording {
        fn probe(&self) -> Result<(), String> {
            self.unavailable.clone().map_or(Ok(()), Err)
        }

        fn show(&self, toast: &ToastContent) -> Result<(), String> {
            self.probe()?;
            let mut on_screen = lock(&self.on_screen);
            let replaced = toast
                .replaces
                .as_deref()
                .and_then(|key| on_screen.replaceable(key));
            let mut last_id = self.last_id.lock().unwrap_or_else(|p| p.into_inner());
            let id = replaced.unwrap_or(*last_id + 1);
            *last_id = (*last_id).max(id);
            on_screen.shown(id, toast);
            self.shown
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .push(toast.clone());
            Ok(())
        }

        fn close(&self, notification_id: &str) -> Result<(), String> {
            if let Some(id) = lock(&self.on_screen).take(notification_id) {
                self.closed
                    .lock()
                    .unwrap_or_else(std::sync::PoisonError::into_inner)
                    .push(id);
            }
            Ok(())
        }

        fn close_deadline(&self, deadline_id: &str) -> Result<(), String> {
            let ids = lock(&self.on_screen).take_key(&crate::toast::deadline_key(deadline_id));
            self.closed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .extend(ids);
            Ok(())
        }
    }

    /// A toast for notification `id`, replacing others of `key`.
    fn toast(id: Option<&str>, key: Option<&str>) -> ToastContent {
        ToastContent {
            notification_id: id.map(str::to_owned),
            deadline_id: key
                .and_then(|k| k.strip_prefix("deadline:"))
                .map(str::to_owned),
            tab: None,
            summary: id.unwrap_or("summary").to_owned(),
            body: String::new(),
            icon: "dialog-information",
            category: "x-tocsin.system",
            critical: false,
            actions: vec![("default", "Open")],
            replaces: key.map(str::to_owned),
        }
    }

    #[test]
    fn a_toast_read_elsewhere_is_closed_once_and_a_summary_never() {
        let notifier = Recording::default();
        notifier.show(&toast(Some("n1"), None)).expect("shown");
        let n1 = notifier.last_id();
        notifier.show(&toast(None, Some("summary"))).expect("shown");
        notifier.show(&toast(Some("n2"), None)).expect("shown");
        let n2 = notifier.last_id();

        notifier.close("n2").expect("closed");
        notifier.close("n2").expect("nothing to close");
        notifier.close("never-shown").expect("nothing to close");
        notifier.close("n1").expect("closed");
        assert_eq!(notifier.closed(), vec![n2, n1], "each toast closed once");
        // Only the summary is left: it has no notification id to be read by.
        assert_eq!(lock(&notifier.on_screen).len(), 1);
        assert_eq!(lock(&notifier.on_screen).replaceable("summary"), Some(2));
    }

    #[test]
    fn reading_a_replaced_alert_does_not_close_the_alert_that_replaced_it() {
        let notifier = Recording::default();
        // A deadline's warning, then its critical alert in the warning's place.
        notifier
            .show(&toast(Some("warning"), Some("deadline:d1")))
            .expect("shown");
        let id = notifier.last_id();
        notifier
            .show(&toast(Some("critical"), Some("deadline:d1")))
            .expect("shown");
        assert_eq!(
            notifier.last_id(),
            id,
            "the critical alert replaced the warning"
        );

        notifier.close("warning").expect("nothing to close");
        assert!(notifier.closed().is_empty(), "the critical alert stays");
        notifier.close("critical").expect("closed");
        assert_eq!(notifier.closed(), vec![id]);
        assert!(lock(&notifier.on_screen).is_empty());
    }

    #[test]
    fn a_click_on_a_replaced_toast_belongs_to_its_successor_only() {
        let mut on_screen = OnScreen::default();
        on_screen.shown(7, &toast(Some("warning"), Some("deadline:d1")));
        assert!(
            !on_screen.take_superseded(7, Some("warning")),
            "still its own"
        );
        on_screen.shown(7, &toast(Some("critical"), Some("deadline:d1")));
        // Both click threads wake on id 7: the warning's stands down, once.
        assert!(on_screen.take_superseded(7, Some("warning")));
        assert!(!on_screen.take_superseded(7, Some("warning")));
        assert!(!on_screen.take_superseded(7, Some("critical")));
        // The same notification shown again in its own place is not replaced.
        on_screen.shown(8, &toast(Some("n1"), None));
        on_screen.shown(8, &toast(Some("n1"), None));
        assert!(!on_screen.take_superseded(8, Some("n1")));
    }

    #[test]
    fn a_toast_closed_or_acted_on_is_forgotten_and_its_key_shows_anew() {
        let mut on_screen = OnScreen::default();
        on_screen.shown(7, &toast(Some("n1"), Some("deadline:d1")));
        // The click thread of a toast that was replaced since: nothing of its own.
        on_screen.forget(7, Some("n0"));
        assert_eq!(on_screen.replaceable("deadline:d1"), Some(7));
        // Its own: dismissed, expired or clicked.
        on_screen.forget(7, Some("n1"));
        assert!(on_screen.is_empty());
        assert_eq!(
            on_screen.replaceable("deadline:d1"),
            None,
            "a new toast next"
        );
        assert_eq!(on_screen.take("n1"), None, "nothing left to close");
    }

    #[test]
    fn an_acknowledged_deadline_closes_its_alert_and_nothing_else() {
        let notifier = Recording::default();
        notifier
            .show(&toast(Some("d1-warning"), Some("deadline:d1")))
            .expect("shown");
        let d1 = notifier.last_id();
        notifier
            .show(&toast(Some("d1-critical"), Some("deadline:d1")))
            .expect("shown");
        notifier
            .show(&toast(Some("d2-critical"), Some("deadline:d2")))
            .expect("shown");
        let d2 = notifier.last_id();
        notifier.show(&toast(Some("mail"), None)).expect("shown");

        notifier.close_deadline("d1").expect("closed");
        assert_eq!(notifier.closed(), vec![d1], "d1's one toast on screen");
        notifier.close_deadline("d1").expect("nothing left");
        notifier
            .close_deadline("never-shown")
            .expect("nothing to close");
        assert_eq!(notifier.closed(), vec![d1]);
        notifier.close("d1-critical").expect("nothing left");
        assert_eq!(notifier.closed(), vec![d1], "already forgotten");
        assert_eq!(lock(&notifier.on_screen).len(), 2, "d2 and the mail stay");
        notifier.close_deadline("d2").expect("closed");
        assert_eq!(notifier.closed(), vec![d1, d2]);
    }

    #[test]
    fn only_the_most_recent_toasts_are_remembered() {
        let mut on_screen = OnScreen::default();
        let total = MAX_ON_SCREEN + 50;
        for i in 0..total {
            let id = format!("n{i}");
            on_screen.shown(
                u32::try_from(i).expect("small") + 1,
                &toast(Some(&id), None),
            );
        }
        assert_eq!(on_screen.len(), MAX_ON_SCREEN);
        assert_eq!(on_screen.take("n0"), None, "the oldest are forgotten");
        assert_eq!(on_screen.take("n49"), None);
        assert_eq!(on_screen.take("n50"), Some(51), "the rest can be closed");
        let newest = format!("n{}", total - 1);
        assert_eq!(
            on_screen.take(&newest),
            Some(u32::try_from(total).expect("small"))
        );
    }
}
