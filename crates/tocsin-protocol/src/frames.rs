//! WebSocket frames: one JSON object per text message, tagged by `type`.
//!
//! Client → gateway: [`ClientFrame`]. Gateway → client: [`ServerFrame`].
//! Every client action carries a client-generated `id` (unique per device, e.g. a
//! UUID) and is answered by exactly one `result` with the same `id`; the gateway
//! applies each id at most once, so an action replayed from an offline queue is safe.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::ErrorBody;
use crate::http::UserInfo;
use crate::notification::{Kind, Notification, NotificationData, Presence};
use crate::stream::{Position, StreamName};

/// The longest client action id accepted, in bytes.
pub const MAX_ACTION_ID_LEN: usize = 64;

/// A frame sent by a client.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ClientFrame {
    /// First-frame authentication, for clients that cannot set an `Authorization`
    /// header on the upgrade. Must arrive within the auth deadline.
    Auth {
        /// An access token.
        token: String,
    },
    /// Start of the session: the last position the client holds per stream.
    /// Streams left out are delivered live from now on (fetch their past with
    /// `GET /v1/history`).
    Hello {
        /// Last position held per stream.
        #[serde(default)]
        positions: BTreeMap<StreamName, Position>,
        /// The client's name and version, for logs (e.g. `tocsin-desktop/0.1.0`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        client: Option<String>,
        /// What this client understands beyond the first v1 (see [`client_features`]):
        /// the gateway sends a `retracted` frame in place of a retracted notification
        /// only to clients that list `retract`; older ones get a content-free notice.
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        // `optional_fields` marks only `Option`s `?`; a type of its own makes ts-rs
        // read `default` + `skip_serializing_if` and mark this one too.
        #[cfg_attr(feature = "ts", ts(type = "Array<string>"))]
        features: Vec<String>,
    },
    /// Mark notifications read for this user on every device.
    MarkRead {
        /// Action id.
        id: String,
        /// Notification ids (at most 500).
        notification_ids: Vec<String>,
    },
    /// Mark everything the user saw read, optionally only one kind.
    MarkAllRead {
        /// Action id.
        id: String,
        /// Only this kind, when given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<Kind>,
        /// What the user saw: per stream, everything at or before this position is
        /// marked; streams left out, and streams whose epoch changed since, are not
        /// touched. A notification that arrived after the click (an offline click
        /// sent later) stays unread. Without it (older clients), everything created
        /// up to when the gateway applies the action.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        up_to: Option<BTreeMap<StreamName, Position>>,
    },
    /// Accept or reject an appointment proposal.
    ProposalRespond {
        /// Action id.
        id: String,
        /// The proposal's id (from `proposal-created`).
        proposal_id: String,
        /// The answer.
        response: ProposalResponse,
    },
    /// Take deadline alerts in ("Pris en compte"): acknowledges each alert's deadline
    /// for the whole firm (it stops the escalation) and records who, when and from
    /// which device. Distinct from read.
    Acknowledge {
        /// Action id.
        id: String,
        /// Ids of `deadline-alert` notifications (at most 500).
        notification_ids: Vec<String>,
    },
    /// Report that these notifications were shown on this device as OS notifications
    /// (the audit trail's "shown"; recorded for deadline alerts). Needs the `shown`
    /// feature.
    Shown {
        /// Action id.
        id: String,
        /// The notifications shown (at most 500).
        notification_ids: Vec<String>,
    },
    /// Subscribe this connection to a conversation the user is a member of.
    Join {
        /// Action id.
        id: String,
        /// The conversation's id.
        conversation_id: String,
        /// The last position held in that conversation, to replay what was missed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        position: Option<Position>,
    },
    /// Unsubscribe this connection from a conversation for the rest of the session.
    Leave {
        /// Action id.
        id: String,
        /// The conversation's id.
        conversation_id: String,
    },
    /// Tell a conversation's other members that the user is (or stopped) typing.
    Typing {
        /// Action id.
        id: String,
        /// The conversation's id (the connection must have it subscribed).
        conversation_id: String,
        /// Typing now or not.
        active: bool,
    },
    /// Set the user's presence, seen by their firm.
    Presence {
        /// Action id.
        id: String,
        /// The new presence.
        status: Presence,
    },
    /// Replace the connection's access token with a fresh one before it expires,
    /// without dropping the socket.
    Refresh {
        /// Action id.
        id: String,
        /// A new access token for the same user.
        access_token: String,
    },
    /// Application-level ping for clients that cannot send WebSocket pings.
    Ping {},
}

impl ClientFrame {
    /// The action id, for frames that carry one.
    pub fn action_id(&self) -> Option<&str> {
        match self {
            ClientFrame::MarkRead { id, .. }
            | ClientFrame::MarkAllRead { id, .. }
            | ClientFrame::ProposalRespond { id, .. }
            | ClientFrame::Acknowledge { id, .. }
            | ClientFrame::Shown { id, .. }
            | ClientFrame::Join { id, .. }
            | ClientFrame::Leave { id, .. }
            | ClientFrame::Typing { id, .. }
            | ClientFrame::Presence { id, .. }
            | ClientFrame::Refresh { id, .. } => Some(id),
            ClientFrame::Auth { .. } | ClientFrame::Hello { .. } | ClientFrame::Ping {} => None,
        }
    }
}

/// An answer to a proposal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum ProposalResponse {
    /// Accept the appointment.
    Accept,
    /// Reject it.
    Reject,
}

/// A frame sent by the gateway.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS), ts(optional_fields))]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum ServerFrame {
    /// The answer to `hello`: who the client is and where each stream stands.
    Welcome(Welcome),
    /// A stored notification, replayed or live.
    Notification {
        /// Its stream.
        stream: StreamName,
        /// The stream's epoch.
        epoch: String,
        /// Its offset in the stream.
        offset: u64,
        /// True while replaying what the client missed.
        #[serde(default)]
        replay: bool,
        /// The notification.
        notification: Notification,
    },
    /// Replay is over on every stream: what follows is live.
    CaughtUp {
        /// The position of every subscribed stream at the end of replay.
        positions: BTreeMap<StreamName, Position>,
    },
    /// Notifications were marked read (on this or another device of the user).
    Read {
        /// The ids now read.
        notification_ids: Vec<String>,
    },
    /// A `mark_all_read` was applied: with `up_to`, everything at or before those
    /// positions (of `kind`, when given) is read; without, everything created at or
    /// before `before`.
    ReadAll {
        /// Only this kind, when given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        kind: Option<Kind>,
        /// The cut-off, in the gateway's clock. With `up_to`, the creation time of the
        /// newest notification marked (for clients that do not read `up_to`).
        before: DateTime<Utc>,
        /// The positions marked up to, per stream (the action's own, less the streams
        /// the user cannot read or whose epoch changed).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        up_to: Option<BTreeMap<StreamName, Position>>,
    },
    /// Deadlines were acknowledged (on this or another device, by the user or someone
    /// else involved), or, right after `caught_up`, the acknowledgements of the user's
    /// open deadlines: clients apply them idempotently.
    Acknowledged {
        /// One per deadline and user.
        acknowledgements: Vec<crate::deadline::Acknowledgement>,
    },
    /// Deadlines were closed by the firm's software (done or withdrawn): clients stop
    /// showing them as waiting for an acknowledgement. Pushed to everyone involved, and
    /// sent once after `caught_up` with the user's deadlines closed in the last 60 days.
    /// Older clients ignore it.
    DeadlinesClosed {
        /// The deadlines.
        deadlines: Vec<crate::deadline::ClosedDeadline>,
    },
    /// The publishing firm retracted notifications (`DELETE /v1/notifications/{id}`):
    /// clients remove them from the inbox and close their OS notifications. Pushed
    /// live to the stream's subscribers; during a replay, sent *in place of* a
    /// retracted notification (its offset counts as delivered); and sent once after
    /// `caught_up` with the retractions of the last 60 days in the connection's
    /// streams. Only to clients whose `hello` lists the `retract` feature.
    Retracted {
        /// The notifications withdrawn.
        retractions: Vec<Retraction>,
    },
    /// An ephemeral event (typing, presence, read receipt): live only, never replayed.
    Ephemeral {
        /// The stream it was sent to.
        stream: StreamName,
        /// When the gateway relayed it.
        at: DateTime<Utc>,
        /// The kind and data.
        #[serde(flatten)]
        data: NotificationData,
    },
    /// The answer to one client action.
    Result {
        /// The action id.
        id: String,
        /// Whether it was applied (or had already been applied).
        ok: bool,
        /// Action-specific data on success.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        // Each action's own shape: the SDK reads it per action, from `unknown`.
        #[cfg_attr(feature = "ts", ts(type = "unknown"))]
        data: Option<serde_json::Value>,
        /// What was wrong, on failure.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<ErrorBody>,
    },
    /// Sent just before the gateway closes the connection, saying why in full (a close
    /// reason is limited to 123 bytes).
    Error {
        /// What was wrong and what to do.
        error: ErrorBody,
    },
    /// The answer to an application-level `ping`.
    Pong {},
    /// The user was made a member of a conversation while connected: this connection
    /// now receives it live from `stream.head` on (earlier messages are in
    /// `GET /v1/history`).
    Subscribed {
        /// Where the stream stands now.
        stream: StreamStatus,
    },
    /// The user stopped being a member of a conversation: nothing more of it is sent,
    /// and actions on it are refused.
    Unsubscribed {
        /// The conversation's stream.
        stream: StreamName,
    },
    /// A frame type from a newer gateway: clients ignore it (forward compatible).
    /// Never sent, so not in TypeScript.
    #[serde(other)]
    #[cfg_attr(feature = "ts", ts(skip))]
    Unknown,
}

/// The `welcome` frame's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Welcome {
    /// This connection's id, for logs on both sides.
    pub connection_id: String,
    /// Who the client is signed in as.
    pub user: UserInfo,
    /// Where each subscribed stream stands and whether the client's position was usable.
    pub streams: Vec<StreamStatus>,
    /// When the access token expires; refresh before then.
    pub token_expires_at: DateTime<Utc>,
    /// Heartbeat and size limits in force.
    pub limits: Limits,
    /// The client actions added after the first v1 that this gateway applies (see
    /// [`features`]). An action whose feature is absent must not be sent: an older
    /// gateway closes the connection on a frame type it does not know. Absent from
    /// older gateways (empty).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub features: Vec<String>,
}

/// One retracted notification in a [`ServerFrame::Retracted`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Retraction {
    /// The notification's id.
    pub notification_id: String,
    /// Its stream.
    pub stream: StreamName,
    /// The stream's epoch.
    pub epoch: String,
    /// Its offset in the stream: in a replay, the slot this entry fills.
    pub offset: u64,
    /// When it was retracted.
    pub at: DateTime<Utc>,
}

/// The names in [`ClientFrame::Hello`]'s `features`: what a client understands.
pub mod client_features {
    /// `retracted` frames, in a replay too (in place of the notification).
    pub const RETRACT: &str = "retract";
}

/// The names in [`Welcome::features`].
pub mod features {
    /// The `acknowledge` action and `acknowledged` frames (deadlines).
    pub const ACKNOWLEDGE: &str = "acknowledge";
    /// The `shown` action (OS notifications shown, for the audit trail).
    pub const SHOWN: &str = "shown";
    /// `DELETE /v1/notifications/{id}` and `retracted` frames.
    pub const RETRACT: &str = "retract";
    /// Every feature this build's gateway offers.
    pub const ALL: &[&str] = &[ACKNOWLEDGE, SHOWN, RETRACT];
}

/// One subscribed stream in `welcome` (or in a `join` result).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct StreamStatus {
    /// The stream.
    pub stream: StreamName,
    /// Its current epoch.
    pub epoch: String,
    /// The offset of its latest notification (0 = empty).
    pub head: u64,
    /// The oldest offset still retained (head + 1 when empty).
    pub first: u64,
    /// True when the client's position was usable: everything after it is replayed.
    /// False when it was from another epoch, older than retention or ahead of the
    /// stream: nothing is replayed and the client must rebuild this stream from
    /// `GET /v1/history` (live delivery continues after `head`).
    pub recovered: bool,
}

/// Limits in force on this connection.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct Limits {
    /// The gateway pings this often; the client should too.
    pub heartbeat_interval_ms: u64,
    /// A peer silent this long after a ping is considered dead.
    pub heartbeat_timeout_ms: u64,
    /// The largest message accepted, in bytes.
    pub max_message_bytes: usize,
    /// Sustained client actions per second allowed.
    pub actions_per_second: u32,
    /// Burst of client actions allowed.
    pub actions_burst: u32,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hello_parses_positions_keyed_by_stream() {
        let text = r#"{"type":"hello","positions":{"user:u1":{"epoch":"e","offset":3},"all":{"epoch":"f","offset":0}}}"#;
        let frame: ClientFrame = serde_json::from_str(text).expect("parses");
        let ClientFrame::Hello { positions, .. } = frame else {
            panic!("hello")
        };
        assert_eq!(positions[&StreamName::All].epoch, "f");
        assert_eq!(positions[&StreamName::User("u1".into())].offset, 3);
    }

    #[test]
    fn unknown_types_and_bad_streams_are_refused() {
        assert!(serde_json::from_str::<ClientFrame>(r#"{"type":"explode"}"#).is_err());
        let bad = r#"{"type":"hello","positions":{"room:1":{"epoch":"e","offset":3}}}"#;
        assert!(serde_json::from_str::<ClientFrame>(bad).is_err());
    }

    #[test]
    fn a_newer_gateways_frame_type_is_read_as_unknown() {
        let frame: ServerFrame =
            serde_json::from_str(r#"{"type":"deadline_state","id":"d1","state":{"a":1}}"#)
                .expect("lenient");
        assert_eq!(frame, ServerFrame::Unknown);
    }

    #[test]
    fn frames_are_tagged_by_type() {
        let frame = ServerFrame::Result {
            id: "a1".into(),
            ok: true,
            data: None,
            error: None,
        };
        let json = serde_json::to_value(&frame).expect("serialises");
        assert_eq!(json["type"], "result");
        assert_eq!(json["id"], "a1");
        let ping = serde_json::to_string(&ClientFrame::Ping {}).expect("serialises");
        assert_eq!(ping, r#"{"type":"ping"}"#);
    }
}
