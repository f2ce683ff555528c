//! The values the store takes and returns.

use std::collections::BTreeMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use tocsin_protocol::{ErrorBody, Kind, Notification, Position, StreamName};

/// A firm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Tenant {
    /// Unique short name; `tenant:<slug>` is its stream.
    pub slug: String,
    /// Display name, e.g. "Cabinet Dupont".
    pub name: String,
}

/// A user to create.
#[derive(Debug, Clone)]
pub struct NewUser {
    /// Chosen by the caller: a UUID for built-in accounts, the external `sub` otherwise.
    pub id: String,
    /// The user's firm.
    pub tenant: String,
    /// Email, unique across the gateway; empty for external users without one.
    pub email: String,
    /// Display name.
    pub name: String,
    /// `admin`, `partner`, `lawyer` or `staff`.
    pub role: String,
    /// Argon2 PHC string; `None` for external identities (they cannot log in here).
    pub password_hash: Option<String>,
    /// True for shadows of external identities.
    pub external: bool,
}

/// A stored user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    /// Id; `user:<id>` is their stream.
    pub id: String,
    /// Their firm's slug.
    pub tenant: String,
    /// Email (may be empty for external identities).
    pub email: String,
    /// Display name.
    pub name: String,
    /// Role.
    pub role: String,
    /// Argon2 hash, for built-in accounts.
    pub password_hash: Option<String>,
    /// Disabled users cannot sign in or connect.
    pub disabled: bool,
}

/// An API key to store.
#[derive(Debug, Clone)]
pub struct NewApiKey {
    /// The public part of the key, used to find it.
    pub key_id: String,
    /// SHA-256 of the secret part.
    pub secret_hash: String,
    /// The firm the key publishes for; `None` for a global key.
    pub tenant: Option<String>,
    /// A label for operators.
    pub name: String,
    /// May also read the firm's audit trail (`GET /v1/audit`).
    pub admin: bool,
}

/// A stored API key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    /// Public id.
    pub key_id: String,
    /// SHA-256 of the secret.
    pub secret_hash: String,
    /// Its firm, or `None` when global.
    pub tenant: Option<String>,
    /// Label.
    pub name: String,
    /// Revoked keys are refused.
    pub revoked: bool,
    /// May read the audit trail.
    pub admin: bool,
    /// When it was created.
    pub created_at: DateTime<Utc>,
}

/// A device session to open.
#[derive(Debug, Clone)]
pub struct NewSession {
    /// Session id, carried in access tokens as `sid`.
    pub id: String,
    /// Whose.
    pub user_id: String,
    /// The device's name.
    pub device_name: String,
    /// SHA-256 of the current refresh token.
    pub refresh_hash: String,
    /// When the refresh token stops working.
    pub expires_at: DateTime<Utc>,
}

/// The result of presenting a refresh token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RotateOutcome {
    /// Rotated: the session and its user.
    Rotated {
        /// The session id.
        session_id: String,
        /// The user.
        user_id: String,
    },
    /// The token was already rotated away: the session is now revoked.
    Reused {
        /// The revoked session.
        session_id: String,
    },
    /// Unknown, expired or revoked.
    Invalid,
}

/// A conversation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conversation {
    /// Its id.
    pub id: String,
    /// The firm it belongs to.
    pub tenant: String,
    /// Member user ids.
    pub members: Vec<String>,
}

/// The idempotency key of a publish, scoped by the publisher.
#[derive(Debug, Clone)]
pub struct IdempotencyKey {
    /// Who published (the API key id), so two publishers never collide.
    pub scope: String,
    /// The publisher's key.
    pub key: String,
}

/// One notification to store.
#[derive(Debug, Clone)]
pub struct AppendRequest {
    /// Its stream.
    pub stream: StreamName,
    /// The firm owning the stream (`None` for `all`).
    pub tenant: Option<String>,
    /// The notification (id and created_at already set).
    pub notification: Notification,
    /// Optional idempotency key.
    pub idempotency: Option<IdempotencyKey>,
    /// Store it at this time instead of now (a scheduled publish); a time already
    /// past stores it now.
    pub deliver_at: Option<DateTime<Utc>>,
    /// Who published, for the audit trail: `key:<id>`, `scheduler`, `user:<id>`.
    pub actor: String,
}

/// A retraction asked for through `DELETE /v1/notifications/{id}`.
#[derive(Debug, Clone)]
pub struct RetractRequest {
    /// The notification's id.
    pub notification_id: String,
    /// The key's firm: another firm's notification is unknown to it. `None` for a
    /// global key.
    pub tenant: Option<String>,
    /// An admin (or global) key may retract any of its firm's notifications; a
    /// publish-only key only those it published.
    pub admin: bool,
    /// Who retracts, as the audit trail names publishers: `key:<id>`.
    pub actor: String,
}

/// What a retraction did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Retracted {
    /// The notification's id.
    pub notification_id: String,
    /// Its stream; `None` for a scheduled publish withdrawn before it was stored.
    pub stream: Option<StreamName>,
    /// The stream's epoch (empty without a stream).
    pub epoch: String,
    /// Its offset (0 without a stream).
    pub offset: u64,
    /// When it was retracted.
    pub at: DateTime<Utc>,
    /// True when it had been retracted before: nothing changed now.
    pub already: bool,
}

/// Where an appended notification landed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Appended {
    /// The notification id (the first one's, for a duplicate).
    pub id: String,
    /// Its stream.
    pub stream: StreamName,
    /// The stream's epoch.
    pub epoch: String,
    /// Its offset.
    pub offset: u64,
    /// True when the idempotency key was already known.
    pub duplicate: bool,
    /// Set for a publish scheduled for later: it is stored then (epoch and offset
    /// are unknown until it is).
    pub deliver_at: Option<DateTime<Utc>>,
}

/// Where a stream stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamState {
    /// Current epoch.
    pub epoch: String,
    /// Latest offset (0 = empty).
    pub head: u64,
    /// Oldest retained offset (head + 1 when nothing is retained).
    pub first: u64,
}

/// A stored notification, with its JSON kept as stored so replay never re-serialises.
#[derive(Debug, Clone)]
pub struct StoredNotification {
    /// Its stream.
    pub stream: StreamName,
    /// The stream's epoch.
    pub epoch: Arc<str>,
    /// Its offset.
    pub offset: u64,
    /// Its id.
    pub id: String,
    /// Its kind.
    pub kind: Kind,
    /// The notification's JSON (a `Notification`); for a retracted one, the
    /// content-free notice that replaced it.
    pub payload: Arc<str>,
    /// When the publishing firm retracted it.
    pub retracted_at: Option<DateTime<Utc>>,
}

impl StoredNotification {
    /// The `notification` frame for this notification, built around the stored JSON.
    pub fn frame_text(&self, replay: bool) -> String {
        // Stream names are restricted to [A-Za-z0-9-_.@+:] and epochs are hex, so they
        // need no JSON escaping; the payload is JSON already.
        format!(
            r#"{{"type":"notification","stream":"{}","epoch":"{}","offset":{},"replay":{},"notification":{}}}"#,
            self.stream, self.epoch, self.offset, replay, self.payload
        )
    }

    /// The frame that fills this notification's slot on a connection: for a retracted
    /// one, a `retracted` frame to clients that know it (`retract_aware`), the
    /// content-free notice to others.
    pub fn slot_frame(&self, replay: bool, retract_aware: bool) -> String {
        match self.retraction() {
            Some(retraction) if retract_aware => {
                serde_json::to_string(&tocsin_protocol::ServerFrame::Retracted {
                    retractions: vec![retraction],
                })
                .unwrap_or_default()
            }
            _ => self.frame_text(replay),
        }
    }

    /// Its retraction, when it was retracted.
    pub fn retraction(&self) -> Option<tocsin_protocol::frames::Retraction> {
        self.retracted_at
            .map(|at| tocsin_protocol::frames::Retraction {
                notification_id: self.id.clone(),
                stream: self.stream.clone(),
                epoch: self.epoch.to_string(),
                offset: self.offset,
                at,
            })
    }

    /// The notification, parsed.
    pub fn notification(&self) -> Result<Notification, StoreError> {
        serde_json::from_str(&self.payload).map_err(|err| {
            StoreError::Internal(format!("stored notification {} is corrupt: {err}", self.id))
        })
    }
}

/// What a client action did.
#[derive(Debug, Clone)]
pub struct ActionOutcome {
    /// The answer for the client: data on success, an error otherwise.
    pub result: Result<serde_json::Value, ErrorBody>,
    /// True when this action id had been applied before: nothing changed now.
    pub replayed: bool,
    /// What the connection layer must push to the user's devices.
    pub effect: Option<ReadEffect>,
}

/// A change of read state to push to every connection of a user.
#[derive(Debug, Clone, PartialEq)]
pub enum ReadEffect {
    /// These notifications are now read.
    Read(Vec<String>),
    /// Everything up to `up_to` (when given) or created up to `before` (of `kind`)
    /// is read.
    ReadAll {
        /// Only this kind.
        kind: Option<Kind>,
        /// The time cut-off (with `up_to`: the newest notification marked).
        before: DateTime<Utc>,
        /// The positions marked up to, per stream.
        up_to: Option<BTreeMap<StreamName, Position>>,
    },
    /// Deadlines were acknowledged: shown to everyone involved, not only the actor.
    Acknowledged {
        /// Every acknowledgement of the deadlines concerned.
        acknowledgements: Vec<tocsin_protocol::deadline::Acknowledgement>,
        /// The users whose connections are told.
        users: Vec<String>,
        /// The alerts' streams: their readers are told too (an alert the firm
        /// published to the whole firm has no deadline record naming who is involved).
        streams: Vec<StreamName>,
    },
}

/// Why a store operation failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    /// The thing asked for does not exist.
    #[error("{0}")]
    NotFound(String),
    /// It exists already or its state forbids the change.
    #[error("{0}")]
    Conflict(String),
    /// It belongs to another firm.
    #[error("{0}")]
    Forbidden(String),
    /// The input cannot be stored.
    #[error("{0}")]
    Invalid(String),
    /// The disk is full: nothing was stored.
    #[error("the gateway's disk is full: nothing was stored; free space on the gateway machine")]
    DiskFull,
    /// Another process holds SQLite's write lock past the busy timeout.
    #[error(
        "another process holds the database's write lock (an admin command or a backup tool?): nothing was stored; retry in a moment"
    )]
    Busy,
    /// The database file or its WAL was deleted or replaced under the running gateway:
    /// writes are refused until it is restarted. The message says what happened and
    /// what to do.
    #[error("{0}")]
    Unusable(String),
    /// The database server cannot be reached (PostgreSQL restarting, network cut):
    /// nothing was stored; the gateway reconnects by itself.
    #[error("{0}")]
    Unreachable(String),
    /// The database failed unexpectedly.
    #[error("storage error: {0}")]
    Internal(String),
}

impl From<rusqlite::Error> for StoreError {
    fn from(err: rusqlite::Error) -> Self {
        if let rusqlite::Error::SqliteFailure(code, _) = &err {
            match code.code {
                rusqlite::ErrorCode::DiskFull => return StoreError::DiskFull,
                rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked => {
                    return StoreError::Busy;
                }
                _ => {}
            }
        }
        StoreError::Internal(err.to_string())
    }
}

/// The client actions a store's writer applies, each at most once per action key.
pub enum ActionCommand {
    /// Mark these ids read.
    MarkRead(Vec<String>),
    /// Mark all (of a kind) read, up to what the user saw when given.
    MarkAllRead {
        /// Only this kind.
        kind: Option<Kind>,
        /// Per stream, the position the user saw.
        up_to: Option<BTreeMap<StreamName, Position>>,
    },
    /// Answer a proposal of `tenant`.
    RespondProposal {
        /// The user's firm.
        tenant: String,
        /// The proposal.
        proposal_id: String,
        /// The answer.
        response: tocsin_protocol::frames::ProposalResponse,
    },
    /// Record that these notifications were shown as OS notifications.
    Shown(Vec<String>),
    /// Acknowledge the deadlines of these alerts.
    Acknowledge {
        /// The user's firm.
        tenant: String,
        /// The device session acting, when known.
        session_id: Option<String>,
        /// The alerts' notification ids.
        ids: Vec<String>,
    },
}
