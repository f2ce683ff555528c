//! The nodes' channel: one PostgreSQL `NOTIFY` channel carries, as JSON, the
//! `(stream, offset)` pairs each writer batch committed (sent inside the batch's
//! transaction, so delivered only if it commits, in commit order) and the hub events
//! of [`crate::cluster`] (sent by [`PgRelay`] after they were applied locally).

use std::sync::Arc;

use serde::{Deserialize, Serialize};
use sqlx::{PgConnection, PgPool};
use tokio::sync::mpsc;

use crate::cluster::{ClusterEvent, Relay};
use crate::store::StoreError;
use crate::store::time::to_us;

/// The channel every node listens on.
pub const CHANNEL: &str = "tocsin_cluster";

/// The most payload bytes per NOTIFY (PostgreSQL's limit is 8000, with the channel
/// name counted).
const MAX_PAYLOAD: usize = 7_000;

/// How long a large event stays in `cluster_events`.
const EVENT_KEEP_US: i64 = 10 * 60 * 1_000_000;

/// One NOTIFY payload.
#[derive(Debug, Serialize, Deserialize)]
pub struct Announcement {
    /// The sending node (a node ignores its own: it delivered them already).
    pub node: String,
    /// What it says.
    #[serde(flatten)]
    pub body: Body,
}

/// What an announcement says.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Body {
    /// Notifications committed: `(stream, offset)`, in commit order.
    Log(Vec<(String, u64)>),
    /// A hub event.
    Event(ClusterEvent),
    /// A hub event stored in `cluster_events` under this id (too large to carry).
    Stored(i64),
    /// A node's heartbeat: the listener of the node that sent it expects to hear it
    /// (`listener.rs`), which proves its LISTEN connection alive end to end.
    Beat,
}

/// How often each node sends its heartbeat.
pub const BEAT_EVERY: std::time::Duration = std::time::Duration::from_secs(2);

/// Sends this node's heartbeat on the pool every [`BEAT_EVERY`], for as long as the
/// runtime runs. A failed beat is not logged: the listener, not hearing it, reports.
pub fn start_heartbeat(pool: PgPool, node: Arc<str>) {
    tokio::spawn(async move {
        let mut ticks = tokio::time::interval(BEAT_EVERY);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticks.tick().await;
            let beat = async {
                let mut conn = pool.acquire().await?;
                notify(&mut conn, &node, Body::Beat).await
            };
            let _ = tokio::time::timeout(BEAT_EVERY, beat).await;
        }
    });
}

/// Sends the committed `(stream, offset)` pairs, inside the writer's transaction.
pub async fn announce_log(
    conn: &mut PgConnection,
    node: &str,
    committed: &[(String, u64)],
) -> Result<(), StoreError> {
    let mut chunk: Vec<(String, u64)> = Vec::new();
    let mut size = 0;
    for pair in committed {
        // A pair's JSON: the name, quotes, brackets, comma and up to 20 digits.
        let pair_size = pair.0.len() + 26;
        if size + pair_size > MAX_PAYLOAD && !chunk.is_empty() {
            notify(conn, node, Body::Log(std::mem::take(&mut chunk))).await?;
            size = 0;
        }
        size += pair_size;
        chunk.push(pair.clone());
    }
    if !chunk.is_empty() {
        notify(conn, node, Body::Log(chunk)).await?;
    }
    Ok(())
}

async fn notify(conn: &mut PgConnection, node: &str, body: Body) -> Result<(), StoreError> {
    let payload = serde_json::to_string(&Announcement {
        node: node.to_owned(),
        body,
    })
    .map_err(|err| StoreError::Internal(format!("announcement: {err}")))?;
    sqlx::query("SELECT pg_notify($1, $2)")
        .bind(CHANNEL)
        .bind(payload)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Relays hub events to the other nodes, in the order the hub applied them, from one
/// task: the hub's methods are synchronous and must not wait for the database.
pub struct PgRelay {
    queue: mpsc::UnboundedSender<ClusterEvent>,
}

impl PgRelay {
    /// Starts the relaying task for node `node`.
    pub fn start(pool: PgPool, node: Arc<str>) -> PgRelay {
        let (queue, events) = mpsc::unbounded_channel();
        tokio::spawn(relay_loop(pool, node, events));
        PgRelay { queue }
    }
}

impl Relay for PgRelay {
    fn relay(&self, event: ClusterEvent) {
        // Only fails once the task stopped (the runtime is shutting down).
        let _ = self.queue.send(event);
    }
}

/// How many times an event is tried before it is given up (logged).
const RELAY_ATTEMPTS: u32 = 3;

async fn relay_loop(
    pool: PgPool,
    node: Arc<str>,
    mut events: mpsc::UnboundedReceiver<ClusterEvent>,
) {
    while let Some(event) = events.recv().await {
        let mut attempt = 0;
        loop {
            attempt += 1;
            match send_event(&pool, &node, &event).await {
                Ok(()) => break,
                Err(err) if attempt < RELAY_ATTEMPTS => {
                    tracing::warn!(error = %err, attempt, "relaying an event to the other nodes failed; retrying");
                    tokio::time::sleep(std::time::Duration::from_millis(200 * u64::from(attempt)))
                        .await;
                }
                Err(err) => {
                    crate::metrics::cluster_event("relay_failed");
                    tracing::error!(error = %err, ?event, "an event could not be relayed to the other nodes: their connections miss it");
                    break;
                }
            }
        }
    }
}

/// Sends one event: inline when it fits a NOTIFY, else stored and referenced.
async fn send_event(pool: &PgPool, node: &str, event: &ClusterEvent) -> Result<(), StoreError> {
    let inline = serde_json::to_string(&Announcement {
        node: node.to_owned(),
        body: Body::Event(event.clone()),
    })
    .map_err(|err| StoreError::Internal(format!("event: {err}")))?;
    let mut conn = pool.acquire().await?;
    if inline.len() <= MAX_PAYLOAD {
        sqlx::query("SELECT pg_notify($1, $2)")
            .bind(CHANNEL)
            .bind(inline)
            .execute(&mut *conn)
            .await?;
        return Ok(());
    }
    let body = serde_json::to_string(event)
        .map_err(|err| StoreError::Internal(format!("event: {err}")))?;
    let now = to_us(chrono::Utc::now());
    let (id,): (i64,) =
        sqlx::query_as("INSERT INTO cluster_events (at_us, body) VALUES ($1, $2) RETURNING id")
            .bind(now)
            .bind(body)
            .fetch_one(&mut *conn)
            .await?;
    notify(&mut conn, node, Body::Stored(id)).await?;
    sqlx::query("DELETE FROM cluster_events WHERE at_us < $1")
        .bind(now - EVENT_KEEP_US)
        .execute(&mut *conn)
        .await?;
    Ok(())
}

/// Reads an event stored by [`send_event`].
pub async fn stored_event(pool: &PgPool, id: i64) -> Result<Option<ClusterEvent>, StoreError> {
    let body: Option<(String,)> = sqlx::query_as("SELECT body FROM cluster_events WHERE id = $1")
        .bind(id)
        .fetch_optional(pool)
        .await?;
    body.map(|(body,)| {
        serde_json::from_str(&body)
            .map_err(|err| StoreError::Internal(format!("stored event {id}: {err}")))
    })
    .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kind of announcement survives the trip through its JSON payload, within
    /// a NOTIFY's size.
    #[test]
    fn announcements_round_trip() {
        let bodies = [
            Body::Log(vec![("user:u1".into(), 7)]),
            Body::Event(ClusterEvent::CloseUser {
                user: "u1".into(),
                code: 4101,
                reason: "disabled".into(),
            }),
            Body::Stored(42),
            Body::Beat,
        ];
        for body in bodies {
            let text = serde_json::to_string(&Announcement {
                node: "n1".into(),
                body,
            })
            .expect("serialises");
            let back: Announcement = serde_json::from_str(&text).expect("parses");
            assert_eq!(back.node, "n1", "{text}");
            assert!(text.len() < MAX_PAYLOAD, "{text}");
        }
    }
}
