//! What the engine tells the application: one typed stream of [`EngineEvent`]s.
//! The desktop app renders them; the terminal client prints them.

use chrono::{DateTime, Utc};
use serde::Serialize;
use tocsin_protocol::frames::ClientFrame;
use tocsin_protocol::{ErrorBody, Notification, StreamName};

use crate::policy::Toast;
use crate::store::Counts;

/// The connection as the user should see it ("En direct" / "Connexion…" / "Déconnecté").
/// Serialised as the desktop panel reads it: `{"state":"connected","since":…}`.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum ConnectionState {
    /// Live: connected and caught up.
    Connected {
        /// Since when.
        since: DateTime<Utc>,
        /// The firm's display name or slug, for the status line.
        tenant: String,
    },
    /// Trying to (re)connect.
    Connecting {
        /// Attempt number since the last stable connection (1-based).
        attempt: u32,
        /// When the next attempt starts, if waiting.
        next_retry: Option<DateTime<Utc>>,
    },
    /// Not connected and not trying right now.
    Offline {
        /// Since when.
        since: DateTime<Utc>,
        /// Why, for the user.
        reason: String,
    },
    /// The server refused our credentials: the user must sign in again. Terminal.
    SignedOut {
        /// Why, for the user.
        reason: String,
    },
}

/// Everything the engine reports.
#[derive(Debug, Clone)]
pub enum EngineEvent {
    /// The connection state changed.
    State(ConnectionState),
    /// A new notification was persisted locally (never emitted twice for one id).
    Notification {
        /// Its stream.
        stream: StreamName,
        /// The notification.
        notification: Box<Notification>,
        /// True when it arrived while catching up after a disconnect.
        replay: bool,
        /// What the policy says to show for it (live notifications only; replayed
        /// ones are decided together in [`EngineEvent::CatchUp`]).
        toast: Option<Toast>,
    },
    /// Catch-up after a (re)connect finished: what to show for what was missed.
    CatchUp {
        /// How many notifications were missed.
        missed: usize,
        /// The toasts to show (a summary plus each critical one).
        toasts: Vec<Toast>,
    },
    /// What the badge, the tray mark and the status line show changed: unread per
    /// tab, critical deadlines not acknowledged, actions waiting for the gateway.
    Counts(Counts),
    /// These notifications became read here — on another device of the user, or by
    /// this device's own action: an OS notification still showing one of them is
    /// closed (the lawyer took it in elsewhere).
    Read(Vec<String>),
    /// The publishing firm retracted these notifications (misdirected): they left the
    /// inbox, and an OS notification still showing one of them is closed.
    Retracted(Vec<String>),
    /// These deadlines became acknowledged here ("Pris en compte": by this device's
    /// user at once, or reported by the gateway — another device, a colleague), or
    /// who acknowledged them changed: an OS notification still showing one of their
    /// critical alerts is closed, and their rows are redrawn
    /// ([`crate::engine::EngineHandle::deadline_rows`]). An acknowledgement this
    /// device gave and the gateway refused is undone and reported by
    /// [`EngineEvent::ActionResult`] with an error instead. Also sent when the firm
    /// closed deadlines (done or withdrawn): nobody needs to take those in any more,
    /// and they leave the critical mark the same way.
    Acknowledged {
        /// The firm's ids of the deadlines (`deadline-alert` `data.deadline_id`).
        deadline_ids: Vec<String>,
    },
    /// The gateway answered a queued action.
    ActionResult {
        /// The action id.
        id: String,
        /// The action as it was queued (which proposal it answered, say), when this
        /// device still held it; `None` for an action answered twice.
        action: Option<Box<ClientFrame>>,
        /// The error, when refused (e.g. a proposal already answered elsewhere). An
        /// `acknowledge` the gateway accepted for only some of its deadlines (it no
        /// longer holds the others' alerts) gets a `not_found` naming those, which
        /// were undone here.
        error: Option<ErrorBody>,
    },
    /// A stream is being rebuilt from the server's history (after a restore, or a
    /// device offline longer than retention): how far it got.
    Rebuilding {
        /// The stream.
        stream: StreamName,
        /// True while the unread notifications are fetched (they come first).
        unread_only: bool,
        /// Notifications fetched so far in this pass.
        fetched: u64,
        /// Notifications the gateway retains for the stream.
        retained: u64,
    },
    /// Something the user should know that is not an error of an action (a moved-aside
    /// corrupt database, a secret store fallback, a stream rebuilt from history).
    Warning(String),
}
