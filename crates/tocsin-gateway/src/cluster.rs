//! What one node tells the others when several serve one PostgreSQL database.
//!
//! Notifications need no relaying: each node's listener hears `(stream, offset)` from
//! the log (`store/postgres/listener.rs`). What is not in the log is relayed here:
//! frames pushed to a user's or a stream's connections (read sync, acknowledgements,
//! retractions, typing), sockets to close (sign-out, revocation, a disabled user) and
//! conversation membership changes. The hub applies each event to its own
//! connections, then hands it to its [`Relay`]; the other nodes apply it to theirs.
//! With SQLite there is one node and no relay.

use serde::{Deserialize, Serialize};
use tocsin_protocol::{CloseCode, Position, StreamName};

/// A hub event the other nodes apply to their own connections.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case")]
pub enum ClusterEvent {
    /// A frame for every connection of a user.
    ToUser {
        /// The user.
        user: String,
        /// The frame's JSON.
        frame: String,
    },
    /// A frame for every subscriber of a stream.
    ToStream {
        /// The stream.
        stream: StreamName,
        /// The frame's JSON.
        frame: String,
    },
    /// An ephemeral frame for a stream's subscribers (the sender's own connection is
    /// on the node that relays it, so every remote subscriber gets it).
    Ephemeral {
        /// The stream.
        stream: StreamName,
        /// The frame's JSON.
        frame: String,
    },
    /// Close the connections of one device session.
    CloseSession {
        /// The session.
        session: String,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// Close every connection of one user.
    CloseUser {
        /// The user.
        user: String,
        /// The close code.
        code: u16,
        /// The close reason.
        reason: String,
    },
    /// A conversation's members changed (its stream stood at `from` right after).
    MembersChanged {
        /// The conversation's stream.
        stream: StreamName,
        /// Its members now.
        members: Vec<String>,
        /// Where it stood right after the change.
        from: Position,
    },
}

impl ClusterEvent {
    /// A close code as relayed, back to the protocol's (an unknown one closes as
    /// going-away: reconnect and resume).
    pub fn close_code(code: u16) -> CloseCode {
        CloseCode::from_code(code).unwrap_or(CloseCode::GoingAway)
    }
}

/// Carries hub events to the other nodes. Called from the hub's synchronous methods:
/// it must not block (queue, then send).
pub trait Relay: Send + Sync + 'static {
    /// Sends `event` to every other node.
    fn relay(&self, event: ClusterEvent);
}
