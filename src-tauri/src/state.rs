//! The app's state: one [`AppState`] managed by Tauri, holding the running engine
//! session, what the panel and the tray show, and the settings. A std `Mutex`, not
//! tokio's: it is never held across an await, only for quick reads and writes.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use chrono::{DateTime, Utc};
use tocsin_client::engine::EngineHandle;
use tocsin_client::events::ConnectionState;
use tocsin_client::secrets::SecretStore;
use tocsin_client::store::{Counts, Tab};

use crate::i18n::Locale;
use crate::ipc::{Account, Navigate, NotificationsStatus, SecretStoreStatus, Snapshot};
use crate::notifier::Notifier;
use crate::nudges::Nudges;
use crate::settings::Settings;
use crate::tray::Tray;

/// Where the app keeps its files: profile and settings in `config`, the local
/// database in `data` (the client's own layout).
pub use tocsin_client::profile::Dirs;

/// A signed-in account with its running engine.
pub struct Session {
    /// This session's number in the app's life: the bridge of an engine that was
    /// stopped may still be rendering its last events, and must not set the counts of
    /// the session that followed it (or of none).
    pub id: u64,
    /// Who, where, and the secret store account of its refresh token.
    pub account: tocsin_client::account::Account,
    /// Where the refresh token lives.
    pub secrets: Arc<dyn SecretStore>,
    /// The engine.
    pub engine: EngineHandle,
    /// The engine task (awaited on sign-out and quit).
    pub task: Option<tokio::task::JoinHandle<()>>,
    /// Network-change and resume nudges for this engine; dropping the session (any
    /// way it ends) stops them.
    pub nudges: Nudges,
}

/// Everything that changes.
pub struct Shared {
    /// The signed-in account, if any.
    pub session: Option<Session>,
    /// The connection as the engine last reported it.
    pub connection: ConnectionState,
    /// When the connection was last lost (cleared when live again): the status line
    /// says "Offline since" through the backoff waits instead of flickering.
    pub offline_since: Option<DateTime<Utc>>,
    /// Why it was lost.
    pub offline_reason: String,
    /// Unread per tab, as the engine last counted them.
    pub unread: BTreeMap<Tab, u64>,
    /// Outbox length, as the engine last counted it.
    pub pending_actions: usize,
    /// A critical deadline nobody acknowledged exists (the engine's count is above
    /// zero): the tray's orange mark. Reading its alerts does not clear it.
    pub critical_pending: bool,
    /// How many (the engine's `unacknowledged_critical_deadlines`): the Deadlines
    /// tab's badge.
    pub unacknowledged_critical: u64,
    /// OS notifications.
    pub notifications: NotificationsStatus,
    /// Secret store.
    pub secret_store: SecretStoreStatus,
    /// The user's settings.
    pub settings: Settings,
    /// Where the panel should open (taken by the panel at load).
    pub navigation: Option<Navigate>,
}

/// The state Tauri manages.
pub struct AppState {
    /// Directories.
    pub dirs: Dirs,
    /// The OS locale tag, read once at start.
    pub os_locale: Option<String>,
    /// OS notifications.
    pub notifier: Arc<dyn Notifier>,
    /// What changes.
    shared: Mutex<Shared>,
    /// The last snapshot's revision.
    revision: AtomicU64,
    /// The last [`Session::id`] handed out.
    sessions: AtomicU64,
    /// The tray, once created. A lock of its own, taken only on the main thread: tray
    /// calls from other threads wait for the main thread, so holding `shared` (which
    /// the main thread also takes) across one would deadlock.
    pub tray: Mutex<Option<Tray>>,
}

impl AppState {
    /// The state at start: signed out until a session starts.
    pub fn new(dirs: Dirs, settings: Settings, notifier: Arc<dyn Notifier>) -> Self {
        AppState {
            dirs,
            os_locale: sys_locale::get_locale(),
            notifier,
            shared: Mutex::new(Shared {
                session: None,
                connection: ConnectionState::SignedOut {
                    reason: String::new(),
                },
                offline_since: None,
                offline_reason: String::new(),
                unread: BTreeMap::new(),
                pending_actions: 0,
                critical_pending: false,
                unacknowledged_critical: 0,
                notifications: NotificationsStatus {
                    available: true,
                    problem: None,
                },
                secret_store: SecretStoreStatus {
                    persistent: true,
                    warning: None,
                },
                settings,
                navigation: None,
            }),
            revision: AtomicU64::new(0),
            sessions: AtomicU64::new(0),
            tray: Mutex::new(None),
        }
    }

    /// Locks the shared state. A panic while it was held (a bug) does not take the
    /// app down with it: the data is plain values, still usable.
    pub fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The language in force.
    pub fn locale(&self) -> Locale {
        let language = self.lock().settings.language;
        language.resolve(self.os_locale.as_deref())
    }

    /// The engine, when signed in: the one door to the local store (queries) and to
    /// the gateway (commands).
    pub fn engine(&self) -> Option<EngineHandle> {
        self.lock().session.as_ref().map(|s| s.engine.clone())
    }

    /// A number for the next [`Session`], never handed out before.
    pub fn next_session_id(&self) -> u64 {
        self.sessions.fetch_add(1, Ordering::SeqCst) + 1
    }

    /// What the panel shows.
    pub fn snapshot(&self) -> Snapshot {
        let locale = self.locale();
        let shared = self.lock();
        // Taken under the lock, so revisions follow the order of the states they show.
        let revision = self.revision.fetch_add(1, Ordering::SeqCst) + 1;
        let unread: BTreeMap<Tab, u64> = Tab::ALL
            .into_iter()
            .map(|tab| (tab, shared.unread.get(&tab).copied().unwrap_or(0)))
            .collect();
        Snapshot {
            revision,
            signed_in: shared.session.is_some(),
            account: shared.session.as_ref().map(|s| Account {
                server: s.account.profile.server.clone(),
                email: s.account.profile.email.clone(),
            }),
            connection: shared.displayed_connection(),
            unread_total: unread.values().sum(),
            unread,
            pending_actions: shared.pending_actions,
            notifications: shared.notifications.clone(),
            secret_store: shared.secret_store.clone(),
            locale,
            paused_until: shared
                .settings
                .prefs
                .paused_until
                .filter(|until| *until > Utc::now()),
            critical_pending: shared.critical_pending,
            unacknowledged_critical: shared.unacknowledged_critical,
        }
    }
}

impl Shared {
    /// Takes what the engine counted (its `Counts` event, or its handle's `counts()`
    /// before the first event) when it is the running session's engine's: a stopped
    /// engine's last counts are not this session's. True when taken.
    pub fn set_counts(&mut self, session: u64, counts: &Counts) -> bool {
        if self.session.as_ref().map(|s| s.id) != Some(session) {
            return false;
        }
        self.take_counts(counts);
        true
    }

    /// Takes the engine's counts as they are shown.
    fn take_counts(&mut self, counts: &Counts) {
        self.unread.clone_from(&counts.unread);
        self.pending_actions = counts.outbox;
        // Acknowledged, not read: a critical deadline keeps the mark until someone
        // takes it in (docs/DEADLINES.md §3), however many of its alerts were read.
        self.unacknowledged_critical = counts.unacknowledged_critical_deadlines;
        self.critical_pending = counts.unacknowledged_critical_deadlines > 0;
    }

    /// Ends the session, if any: with no engine there is nothing unread to show.
    pub fn end_session(&mut self) -> Option<Session> {
        self.unread.clear();
        self.pending_actions = 0;
        self.critical_pending = false;
        self.unacknowledged_critical = 0;
        self.session.take()
    }

    /// Records a connection state from the engine.
    pub fn set_connection(&mut self, state: ConnectionState) {
        match &state {
            ConnectionState::Connected { .. } => {
                self.offline_since = None;
                self.offline_reason.clear();
            }
            ConnectionState::Offline { since, reason } => {
                self.offline_since.get_or_insert(*since);
                self.offline_reason.clone_from(reason);
            }
            ConnectionState::Connecting { .. } => {
                if matches!(self.connection, ConnectionState::Connected { .. }) {
                    self.offline_since = Some(Utc::now());
                }
            }
            ConnectionState::SignedOut { .. } => self.offline_since = None,
        }
        self.connection = state;
    }

    /// The connection as the user should see it: while waiting to retry after a
    /// loss it is "offline since …"; "connecting" only while an attempt runs.
    pub fn displayed_connection(&self) -> ConnectionState {
        match (&self.connection, self.offline_since) {
            (
                ConnectionState::Connecting {
                    next_retry: Some(_),
                    ..
                },
                Some(since),
            ) => ConnectionState::Offline {
                since,
                reason: self.offline_reason.clone(),
            },
            (state, _) => state.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shared() -> Shared {
        let state = AppState::new(
            Dirs {
                config: std::path::PathBuf::new(),
                data: std::path::PathBuf::new(),
            },
            Settings::default(),
            Arc::new(crate::notifier::tests::Recording::default()),
        );
        state
            .shared
            .into_inner()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    #[test]
    fn a_lost_connection_reads_offline_through_backoff_waits() {
        let mut s = shared();
        let t0 = Utc::now();
        s.set_connection(ConnectionState::Connected {
            since: t0,
            tenant: "Cabinet Dupont".into(),
        });
        assert!(matches!(
            s.displayed_connection(),
            ConnectionState::Connected { .. }
        ));
        s.set_connection(ConnectionState::Offline {
            since: t0,
            reason: "connection reset".into(),
        });
        s.set_connection(ConnectionState::Connecting {
            attempt: 1,
            next_retry: Some(t0),
        });
        assert_eq!(
            s.displayed_connection(),
            ConnectionState::Offline {
                since: t0,
                reason: "connection reset".into()
            }
        );
        // A running attempt shows as connecting; the first loss time is kept.
        s.set_connection(ConnectionState::Connecting {
            attempt: 2,
            next_retry: None,
        });
        assert!(matches!(
            s.displayed_connection(),
            ConnectionState::Connecting { .. }
        ));
        s.set_connection(ConnectionState::Offline {
            since: Utc::now(),
            reason: "again".into(),
        });
        assert_eq!(s.offline_since, Some(t0));
        s.set_connection(ConnectionState::Connected {
            since: Utc::now(),
            tenant: "Cabinet Dupont".into(),
        });
        assert_eq!(s.offline_since, None);
    }

    #[test]
    fn counts_are_taken_only_from_the_running_sessions_engine() {
        let mut s = shared();
        s.unread.insert(Tab::Emails, 3);
        s.pending_actions = 1;
        s.critical_pending = true;
        let counts = Counts {
            unread: BTreeMap::from([(Tab::Deadlines, 2)]),
            unread_critical_deadlines: 1,
            unacknowledged_critical_deadlines: 1,
            outbox: 4,
        };
        // Signed out: the last counts of a stopped engine are not shown.
        assert!(!s.set_counts(1, &counts));
        assert_eq!(s.unread.get(&Tab::Deadlines), None);
        // Ending the session (any way it ends) clears what it counted.
        assert!(s.end_session().is_none());
        assert!(s.unread.is_empty());
        assert_eq!(s.pending_actions, 0);
        assert!(!s.critical_pending);
    }

    #[test]
    fn the_critical_mark_follows_unacknowledged_deadlines_not_unread_alerts() {
        let mut s = shared();
        // Its alerts read on the phone, the deadline not taken in: the mark stays.
        s.take_counts(&Counts {
            unread: BTreeMap::new(),
            unread_critical_deadlines: 0,
            unacknowledged_critical_deadlines: 2,
            outbox: 0,
        });
        assert!(s.critical_pending);
        assert_eq!(s.unacknowledged_critical, 2);
        // Acknowledged, still unread: the mark goes, the unread count stays.
        s.take_counts(&Counts {
            unread: BTreeMap::from([(Tab::Deadlines, 3)]),
            unread_critical_deadlines: 3,
            unacknowledged_critical_deadlines: 0,
            outbox: 1,
        });
        assert!(!s.critical_pending);
        assert_eq!(s.unacknowledged_critical, 0);
        assert_eq!(s.unread.get(&Tab::Deadlines), Some(&3));
        assert_eq!(s.pending_actions, 1);
    }

    #[test]
    fn the_first_connection_reads_connecting() {
        let mut s = shared();
        s.set_connection(ConnectionState::Connecting {
            attempt: 1,
            next_retry: None,
        });
        assert!(matches!(
            s.displayed_connection(),
            ConnectionState::Connecting { .. }
        ));
    }
}
