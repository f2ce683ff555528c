//! The hub: who is connected, to which streams, and the non-blocking fan-out.
//!
//! Each connection owns a bounded queue. Fan-out only ever `try_push`es: a full queue
//! never blocks the storage writer or other clients; it marks that connection as a
//! slow consumer, and its task closes it with 4001 (the client resumes later from
//! its last position, losing nothing). Locks are std `RwLock`s held only to copy or
//! iterate, never across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, RwLock};

use axum::extract::ws::Utf8Bytes;
use tocsin_protocol::{CloseCode, StreamName};
use tokio_util::sync::CancellationToken;

use crate::cluster::{ClusterEvent, Relay};
use crate::queue::{Full, Queue};
use crate::store::{Fanout, StoredNotification};

/// A connection's id, unique for the life of the process.
pub type ConnId = u64;

/// A live notification as queued to connections: the stored notification plus its
/// `notification` frame, serialised once for every recipient.
#[derive(Debug)]
pub struct Live {
    /// The notification.
    pub stored: Arc<StoredNotification>,
    /// Its frame with `replay: false`.
    pub frame: Utf8Bytes,
    /// When the writer handed it over (just after its commit): the start of the
    /// delivery latency metric.
    pub committed: std::time::Instant,
}

/// What a connection's queue carries.
#[derive(Debug, Clone)]
pub enum Outbound {
    /// A stored notification, subject to the per-stream offset rule.
    Notification(Arc<Live>),
    /// A ready frame (read sync, ephemeral event).
    Frame(Utf8Bytes),
    /// The user's conversations changed: the session takes them from
    /// [`ConnHandle::take_membership`].
    MembershipChanged,
}

/// A change of the streams a connection may read, made while it is open.
#[derive(Debug, Clone, PartialEq)]
pub enum Membership {
    /// Made a member: read the stream live from after `from` (the head when the change
    /// committed), replaying what came since.
    Added {
        /// The conversation's stream.
        stream: StreamName,
        /// Where it stood right after the change.
        from: tocsin_protocol::Position,
    },
    /// No longer a member: already unsubscribed in the hub; the session forgets it.
    Removed(StreamName),
}

/// The hub's side of one connection.
pub struct ConnHandle {
    /// Its id.
    pub id: ConnId,
    /// The user it is signed in as.
    pub user_id: String,
    /// The device session its token belongs to (own tokens only), so signing out
    /// closes the device's open connections.
    pub session_id: Option<String>,
    /// Its queue (see [`crate::queue`] for why not tokio's mpsc).
    queue: Queue<Outbound>,
    /// Fired to make the connection close itself.
    kill: CancellationToken,
    /// Why it was killed (the first reason wins).
    kill_reason: OnceLock<(CloseCode, String)>,
    /// The streams it is subscribed to, to unsubscribe on unregister.
    streams: Mutex<Vec<StreamName>>,
    /// Membership changes not yet taken by the session. Written by the hub under the
    /// API request that made them, so an action read after that request's answer is
    /// already checked against them (the queue's wake-up may come later).
    membership: Mutex<Vec<Membership>>,
}

impl ConnHandle {
    /// Asks the connection to close with `code`; the first request wins.
    pub fn kill(&self, code: CloseCode, reason: impl Into<String>) {
        let _ = self.kill_reason.set((code, reason.into()));
        self.kill.cancel();
    }

    /// The code and reason it was asked to close with.
    pub fn kill_reason(&self) -> Option<&(CloseCode, String)> {
        self.kill_reason.get()
    }

    /// The membership changes made since the last call, oldest first.
    pub fn take_membership(&self) -> Vec<Membership> {
        std::mem::take(&mut *self.membership.lock().unwrap_or_else(|e| e.into_inner()))
    }

    fn note(&self, change: Membership) {
        self.membership
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(change);
        self.offer(Outbound::MembershipChanged);
    }

    fn is_subscribed(&self, stream: &StreamName) -> bool {
        self.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .contains(stream)
    }

    /// Queues without waiting; a full queue makes this a slow consumer.
    fn offer(&self, item: Outbound) {
        match self.queue.try_push(item) {
            Ok(()) => {}
            Err(Full(_)) => {
                if !self.kill.is_cancelled() {
                    crate::metrics::slow_consumer();
                    tracing::warn!(conn = self.id, user = %self.user_id, "slow consumer: queue full, closing with 4001");
                }
                self.kill(
                    CloseCode::SlowConsumer,
                    "you did not read fast enough; reconnect and resume from your last position",
                );
            }
        }
    }
}

/// The consuming end of a connection's queue, for its task alone.
pub struct Receiver(Arc<ConnHandle>);

/// Nothing is queued right now.
#[derive(Debug)]
pub struct Empty;

impl Receiver {
    /// Waits for the next item. Never `None` while the task holds its handle; the
    /// `Option` keeps the shape of a channel's `recv` for the select loop.
    pub async fn recv(&mut self) -> Option<Outbound> {
        Some(self.0.queue.pop().await)
    }

    /// The next item, if one is queued.
    pub fn try_recv(&mut self) -> Result<Outbound, Empty> {
        self.0.queue.try_pop().ok_or(Empty)
    }
}

/// A list of connections. A `Vec`, not a map: most lists hold one or two connections
/// (a user's, a user's stream), where a map's buckets cost ~100 bytes more per idle
/// connection; fan-out iterates it fastest; removal scans it, which at 10k
/// subscribers is ~10 µs, once per disconnection.
type Conns = Vec<Arc<ConnHandle>>;

/// Removes `id` from a list (order does not matter).
fn remove_conn(conns: &mut Conns, id: ConnId) {
    if let Some(index) = conns.iter().position(|conn| conn.id == id) {
        conns.swap_remove(index);
    }
}

/// The registry of connections and subscriptions.
#[derive(Default)]
pub struct Hub {
    /// Subscribers per stream.
    streams: RwLock<HashMap<StreamName, Conns>>,
    /// Connections per user (read sync, connection cap).
    users: RwLock<HashMap<String, Conns>>,
    /// Next connection id.
    next_id: AtomicU64,
    /// Where events for the other nodes go (PostgreSQL with several nodes); unset
    /// with SQLite.
    relay: OnceLock<Arc<dyn Relay>>,
}

/// The user already has the maximum number of connections.
#[derive(Debug)]
pub struct TooManyConnections;

impl Hub {
    /// An empty hub.
    pub fn new() -> Arc<Hub> {
        Arc::new(Hub::default())
    }

    /// Registers a connection of `user_id` with a queue of `capacity` frames; `kill`
    /// is the token its task watches (cancelled on slow consumption or shutdown).
    pub fn register(
        &self,
        user_id: &str,
        session_id: Option<&str>,
        max_per_user: usize,
        capacity: usize,
        kill: CancellationToken,
    ) -> Result<(Arc<ConnHandle>, Receiver), TooManyConnections> {
        let mut users = write(&self.users);
        let conns = users.entry(user_id.to_owned()).or_default();
        if conns.len() >= max_per_user {
            return Err(TooManyConnections);
        }
        let handle = Arc::new(ConnHandle {
            id: self.next_id.fetch_add(1, Ordering::Relaxed) + 1,
            user_id: user_id.to_owned(),
            session_id: session_id.map(str::to_owned),
            queue: Queue::new(capacity),
            kill,
            kill_reason: OnceLock::new(),
            streams: Mutex::new(Vec::new()),
            membership: Mutex::new(Vec::new()),
        });
        conns.push(handle.clone());
        Ok((handle.clone(), Receiver(handle)))
    }

    /// Removes a connection and all its subscriptions.
    pub fn unregister(&self, conn: &ConnHandle) {
        let streams = std::mem::take(&mut *conn.streams.lock().unwrap_or_else(|e| e.into_inner()));
        {
            let mut map = write(&self.streams);
            for stream in streams {
                if let Some(subs) = map.get_mut(&stream) {
                    remove_conn(subs, conn.id);
                    if subs.is_empty() {
                        map.remove(&stream);
                    }
                }
            }
        }
        let mut users = write(&self.users);
        if let Some(conns) = users.get_mut(&conn.user_id) {
            remove_conn(conns, conn.id);
            if conns.is_empty() {
                users.remove(&conn.user_id);
            }
        }
    }

    /// Subscribes a connection to a stream's live notifications.
    pub fn subscribe(&self, conn: &Arc<ConnHandle>, stream: &StreamName) {
        // The connection's own short list says whether it is already subscribed,
        // without scanning the stream's (possibly 10k) subscribers.
        let mut streams = conn.streams.lock().unwrap_or_else(|e| e.into_inner());
        if streams.contains(stream) {
            return;
        }
        write(&self.streams)
            .entry(stream.clone())
            .or_default()
            .push(conn.clone());
        streams.push(stream.clone());
    }

    /// Unsubscribes a connection from a stream.
    pub fn unsubscribe(&self, conn: &ConnHandle, stream: &StreamName) {
        if let Some(subs) = write(&self.streams).get_mut(stream) {
            remove_conn(subs, conn.id);
        }
        conn.streams
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .retain(|s| s != stream);
    }

    /// Relays events to the other nodes from now on (set once, at start).
    pub fn set_relay(&self, relay: Arc<dyn Relay>) {
        if self.relay.set(relay).is_err() {
            tracing::warn!("the hub's relay was already set; keeping the first");
        }
    }

    /// Hands an event to the relay, if there is one (built only then).
    fn relay(&self, event: impl FnOnce() -> ClusterEvent) {
        if let Some(relay) = self.relay.get() {
            relay.relay(event());
        }
    }

    /// Applies an event another node relayed, to this node's connections only.
    pub fn apply_remote(&self, event: ClusterEvent) {
        match event {
            ClusterEvent::ToUser { user, frame } => self.to_user_here(&user, &frame.into()),
            ClusterEvent::ToStream { stream, frame } => {
                self.to_stream_here(&stream, &frame.into(), None);
            }
            ClusterEvent::Ephemeral { stream, frame } => {
                self.to_stream_here(&stream, &frame.into(), None);
            }
            ClusterEvent::CloseSession {
                session,
                code,
                reason,
            } => self.close_session_here(&session, ClusterEvent::close_code(code), &reason),
            ClusterEvent::CloseUser { user, code, reason } => {
                self.close_user_here(&user, ClusterEvent::close_code(code), &reason);
            }
            ClusterEvent::MembersChanged {
                stream,
                members,
                from,
            } => self.members_changed_here(&stream, &members, &from),
        }
    }

    /// Sends a frame to every connection of a user, on every node.
    pub fn send_to_user(&self, user_id: &str, frame: Utf8Bytes) {
        self.to_user_here(user_id, &frame);
        self.relay(|| ClusterEvent::ToUser {
            user: user_id.to_owned(),
            frame: frame.as_str().to_owned(),
        });
    }

    fn to_user_here(&self, user_id: &str, frame: &Utf8Bytes) {
        let users = read(&self.users);
        for conn in users.get(user_id).into_iter().flatten() {
            conn.offer(Outbound::Frame(frame.clone()));
        }
    }

    /// Sends a frame to every subscriber of a stream, on every node.
    pub fn send_to_stream(&self, stream: &StreamName, frame: Utf8Bytes) {
        self.to_stream_here(stream, &frame, None);
        self.relay(|| ClusterEvent::ToStream {
            stream: stream.clone(),
            frame: frame.as_str().to_owned(),
        });
    }

    /// Sends an ephemeral frame to a stream's subscribers on every node, except the
    /// connection `except` (on this node).
    pub fn send_ephemeral(&self, stream: &StreamName, frame: Utf8Bytes, except: ConnId) {
        self.to_stream_here(stream, &frame, Some(except));
        self.relay(|| ClusterEvent::Ephemeral {
            stream: stream.clone(),
            frame: frame.as_str().to_owned(),
        });
    }

    fn to_stream_here(&self, stream: &StreamName, frame: &Utf8Bytes, except: Option<ConnId>) {
        for conn in read(&self.streams).get(stream).into_iter().flatten() {
            if Some(conn.id) != except {
                conn.offer(Outbound::Frame(frame.clone()));
            }
        }
    }

    /// Closes the connections of one device session (sign-out, revocation), on every
    /// node.
    pub fn close_session(&self, session_id: &str, code: CloseCode, reason: &str) {
        self.close_session_here(session_id, code, reason);
        self.relay(|| ClusterEvent::CloseSession {
            session: session_id.to_owned(),
            code: code.code(),
            reason: reason.to_owned(),
        });
    }

    fn close_session_here(&self, session_id: &str, code: CloseCode, reason: &str) {
        for conns in read(&self.users).values() {
            for conn in conns {
                if conn.session_id.as_deref() == Some(session_id) {
                    conn.kill(code, reason);
                }
            }
        }
    }

    /// Closes every connection of one user (disabled or erased by an administrator),
    /// on every node.
    pub fn close_user(&self, user_id: &str, code: CloseCode, reason: &str) {
        self.close_user_here(user_id, code, reason);
        self.relay(|| ClusterEvent::CloseUser {
            user: user_id.to_owned(),
            code: code.code(),
            reason: reason.to_owned(),
        });
    }

    fn close_user_here(&self, user_id: &str, code: CloseCode, reason: &str) {
        for conn in read(&self.users).get(user_id).into_iter().flatten() {
            conn.kill(code, reason);
        }
    }

    /// A conversation's members are now `members` (its stream stood at `from` right
    /// after the change), on every node: the open connections of removed members stop
    /// receiving it at once and forget it, those of added members are subscribed at
    /// once and told.
    pub fn members_changed(
        &self,
        stream: &StreamName,
        members: &[String],
        from: &tocsin_protocol::Position,
    ) {
        self.members_changed_here(stream, members, from);
        self.relay(|| ClusterEvent::MembersChanged {
            stream: stream.clone(),
            members: members.to_vec(),
            from: from.clone(),
        });
    }

    fn members_changed_here(
        &self,
        stream: &StreamName,
        members: &[String],
        from: &tocsin_protocol::Position,
    ) {
        let removed: Vec<Arc<ConnHandle>> = read(&self.streams)
            .get(stream)
            .into_iter()
            .flatten()
            .filter(|conn| !members.contains(&conn.user_id))
            .cloned()
            .collect();
        for conn in removed {
            self.unsubscribe(&conn, stream);
            conn.note(Membership::Removed(stream.clone()));
        }
        let added: Vec<Arc<ConnHandle>> = {
            let users = read(&self.users);
            members
                .iter()
                .filter_map(|member| users.get(member))
                .flatten()
                .filter(|conn| !conn.is_subscribed(stream))
                .cloned()
                .collect()
        };
        for conn in added {
            // Subscribed before the request answers, so nothing published after it is
            // missed; the session replays what came between `from` and its own read.
            self.subscribe(&conn, stream);
            conn.note(Membership::Added {
                stream: stream.clone(),
                from: from.clone(),
            });
        }
    }

    /// Asks every connection to close (graceful shutdown).
    pub fn close_all(&self, code: CloseCode, reason: &str) {
        for conns in read(&self.users).values() {
            for conn in conns {
                conn.kill(code, reason);
            }
        }
    }

    /// How many connections are open.
    pub fn connection_count(&self) -> usize {
        read(&self.users).values().map(Vec::len).sum()
    }
}

impl Fanout for Hub {
    fn subscribed_streams(&self) -> Vec<StreamName> {
        read(&self.streams).keys().cloned().collect()
    }

    fn wants(&self, stream: &StreamName) -> bool {
        read(&self.streams).contains_key(stream)
    }

    fn apply_remote(&self, event: ClusterEvent) {
        Hub::apply_remote(self, event);
    }

    fn deaf(&self) {
        self.close_all(
            CloseCode::GoingAway,
            "this node lost its connection to the database; reconnect (the load balancer sends you to another node) and resume",
        );
    }

    fn deliver(&self, notifications: &[Arc<StoredNotification>]) {
        let streams = read(&self.streams);
        let committed = std::time::Instant::now();
        for stored in notifications {
            let Some(subs) = streams.get(&stored.stream) else {
                continue;
            };
            let live = Arc::new(Live {
                stored: stored.clone(),
                frame: Utf8Bytes::from(stored.frame_text(false)),
                committed,
            });
            for conn in subs {
                conn.offer(Outbound::Notification(live.clone()));
            }
        }
    }
}

/// Locks for reading; a poisoned lock still holds consistent maps (every critical
/// section only inserts or removes whole entries), so recover it.
fn read<T>(lock: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    lock.read().unwrap_or_else(|e| e.into_inner())
}

fn write<T>(lock: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    lock.write().unwrap_or_else(|e| e.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stored(stream: &StreamName, offset: u64) -> Arc<StoredNotification> {
        Arc::new(StoredNotification {
            stream: stream.clone(),
            epoch: Arc::from("e"),
            offset,
            id: format!("n{offset}"),
            kind: tocsin_protocol::Kind::EmailReceived,
            payload: Arc::from("{}"),
            retracted_at: None,
        })
    }

    #[test]
    fn a_full_queue_kills_only_that_connection() {
        let hub = Hub::new();
        let stream = StreamName::Tenant("t".into());
        let (slow, _slow_rx) = hub
            .register("u1", None, 10, 2, CancellationToken::new())
            .expect("registers");
        let (fast, mut fast_rx) = hub
            .register("u2", None, 10, 100, CancellationToken::new())
            .expect("registers");
        hub.subscribe(&slow, &stream);
        hub.subscribe(&fast, &stream);
        for offset in 1..=5 {
            hub.deliver(&[stored(&stream, offset)]);
        }
        assert_eq!(
            slow.kill_reason().map(|r| r.0),
            Some(CloseCode::SlowConsumer)
        );
        assert!(fast.kill_reason().is_none());
        let mut got = Vec::new();
        while let Ok(Outbound::Notification(live)) = fast_rx.try_recv() {
            got.push(live.stored.offset);
        }
        assert_eq!(got, vec![1, 2, 3, 4, 5]);
    }

    #[test]
    fn the_connection_cap_is_per_user_and_freed_on_unregister() {
        let hub = Hub::new();
        let (first, _rx1) = hub
            .register("u", None, 1, 4, CancellationToken::new())
            .expect("first");
        assert!(
            hub.register("u", None, 1, 4, CancellationToken::new())
                .is_err()
        );
        assert!(
            hub.register("other", None, 1, 4, CancellationToken::new())
                .is_ok()
        );
        hub.unregister(&first);
        assert!(
            hub.register("u", None, 1, 4, CancellationToken::new())
                .is_ok()
        );
    }
}
