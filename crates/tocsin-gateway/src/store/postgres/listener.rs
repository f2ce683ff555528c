//! The node's ear: one dedicated connection LISTENs on the nodes' channel
//! (`cluster.rs`). Another node's committed notifications are read from the log and
//! handed to this node's hub (each connection's consecutive-offsets rule fills any
//! gap from the store, ARCHITECTURE.md invariant 3); its hub events are applied here.
//!
//! NOTIFY is not durable: while the connection is down the node is deaf and what was
//! announced meanwhile is lost to it. So the listener reconnects with backoff, and
//! once LISTENing again — subscribe before reading, like invariant 4 — reads the head
//! of every stream someone here reads and hands over each head it had not heard of:
//! connections behind it fill the rest from the store. Nothing is lost while deaf and
//! nothing is delivered twice to a client (the offset rule drops what it has). While
//! deaf the node reports not ready, and after [`DEAF_GRACE`] it closes its sockets so
//! clients move to a node that hears.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use sqlx::PgPool;
use sqlx::postgres::PgListener;

use super::cluster::{Announcement, Body, CHANNEL, stored_event};
use super::ops::parse_stream;
use crate::store::time::from_us;
use crate::store::{Fanout, StoreError, StoredNotification};

/// How long a node stays deaf before it closes its connections.
pub const DEAF_GRACE: Duration = Duration::from_secs(10);
/// Silence on the LISTEN connection after which it is taken for dead: three of the
/// node's own heartbeats (`cluster.rs`) missed. A network cut (a black hole, no
/// reset) would otherwise leave it waiting forever, believing it hears.
const SILENCE: Duration = Duration::from_secs(3 * super::cluster::BEAT_EVERY.as_secs());
/// The longest a (re)connection or a catch-up may take before it is retried.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(5);
/// The first and the longest wait between reconnection attempts.
const BACKOFF: (Duration, Duration) = (Duration::from_millis(100), Duration::from_secs(5));

/// Whether the listener hears the other nodes (shared with readiness).
#[derive(Default)]
pub struct Hearing {
    /// Since when it is deaf; `None` while it hears.
    deaf_since: Mutex<Option<Instant>>,
}

impl Hearing {
    /// How long it has been deaf, if it is.
    pub fn deaf_for(&self) -> Option<Duration> {
        self.deaf_since
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .map(|since| since.elapsed())
    }

    fn set(&self, hearing: bool) {
        let mut since = self.deaf_since.lock().unwrap_or_else(|e| e.into_inner());
        match (hearing, *since) {
            (true, _) => *since = None,
            (false, None) => *since = Some(Instant::now()),
            (false, Some(_)) => {}
        }
        crate::metrics::cluster_listening(hearing);
    }
}

/// What the listener needs, for its whole life.
struct Ear {
    pool: PgPool,
    /// This node's id: its own announcements are not delivered again.
    node: Arc<str>,
    fanout: Arc<dyn Fanout>,
    hearing: Arc<Hearing>,
    /// Per stream read here, the highest offset heard of.
    known: HashMap<String, u64>,
    /// Whether the connections were closed for this deaf spell.
    closed_for_deafness: bool,
}

/// LISTENs (failing if it cannot: a node that would not hear the others must not
/// start), then keeps listening in a task of its own.
pub async fn start(
    pool: PgPool,
    node: Arc<str>,
    fanout: Arc<dyn Fanout>,
) -> Result<Arc<Hearing>, StoreError> {
    let first = listen(&pool).await?;
    let hearing = Arc::new(Hearing::default());
    hearing.set(true);
    let ear = Ear {
        pool,
        node,
        fanout,
        hearing: hearing.clone(),
        known: HashMap::new(),
        closed_for_deafness: false,
    };
    tokio::spawn(ear.run(first));
    Ok(hearing)
}

async fn listen(pool: &PgPool) -> Result<PgListener, StoreError> {
    let connect = async {
        let mut listener = PgListener::connect_with(pool).await?;
        listener.listen(CHANNEL).await?;
        Ok::<_, sqlx::Error>(listener)
    };
    tokio::time::timeout(ATTEMPT_TIMEOUT, connect)
        .await
        .map_err(|_| silent("connecting its LISTEN connection"))?
        .map_err(StoreError::from)
}

/// The failure of a step the database did not answer in time.
fn silent(what: &str) -> StoreError {
    StoreError::Unreachable(format!("the database did not answer while {what}"))
}

impl Ear {
    async fn run(mut self, first: PgListener) {
        let mut listener = Some(first);
        let mut backoff = BACKOFF.0;
        loop {
            let ear = match listener.take() {
                Some(ear) => Ok(ear),
                None => listen(&self.pool).await,
            };
            let outcome = match ear {
                Ok(ear) => self.hear(ear).await,
                Err(err) => Err(err),
            };
            // Only a listener that heard (and caught up) resets the backoff.
            if outcome.is_ok() {
                backoff = BACKOFF.0;
            }
            let err = outcome.err().map_or_else(
                || "the connection was lost".to_owned(),
                |err| err.to_string(),
            );
            self.hearing.set(false);
            tracing::warn!(error = %err, retry_in = ?backoff, "this node does not hear the other nodes (LISTEN connection down); reconnecting");
            self.close_if_deaf_too_long();
            tokio::time::sleep(backoff).await;
            backoff = (backoff * 2).min(BACKOFF.1);
        }
    }

    fn close_if_deaf_too_long(&mut self) {
        let deaf_for = self.hearing.deaf_for().unwrap_or_default();
        if deaf_for >= DEAF_GRACE && !self.closed_for_deafness {
            tracing::error!(
                ?deaf_for,
                "still deaf: closing this node's connections so clients move to a node that hears"
            );
            self.fanout.deaf();
            self.closed_for_deafness = true;
        }
    }

    /// Catches up, then hears until the connection is lost (`Ok`) or fails (`Err`).
    async fn hear(&mut self, mut ear: PgListener) -> Result<(), StoreError> {
        tokio::time::timeout(ATTEMPT_TIMEOUT, self.catch_up())
            .await
            .map_err(|_| silent("catching up"))??;
        self.hearing.set(true);
        self.closed_for_deafness = false;
        crate::metrics::cluster_caught_up();
        loop {
            // Dropping a `try_recv` cut short is fine: the listener is dropped with it.
            let heard = tokio::time::timeout(SILENCE, ear.try_recv())
                .await
                .map_err(|_| silent("carrying this node's own heartbeats"))??;
            let Some(heard) = heard else {
                return Ok(());
            };
            if let Err(err) = self.handle(heard.payload()).await {
                // The connection is fine; one unreadable announcement is logged and
                // the next ones still count (a gap it leaves is filled by the next
                // notification of the stream, or at the next catch-up).
                tracing::error!(error = %err, "an announcement from another node could not be applied");
            }
        }
    }

    /// Hands over the head of every stream read here that moved past what was heard.
    async fn catch_up(&mut self) -> Result<(), StoreError> {
        let names: Vec<String> = self
            .fanout
            .subscribed_streams()
            .iter()
            .map(ToString::to_string)
            .collect();
        let wanted: HashSet<&String> = names.iter().collect();
        self.known.retain(|stream, _| wanted.contains(stream));
        let heads = read_rows(
            &self.pool,
            "SELECT n.stream, n.stream_offset, n.id, n.kind, n.payload, n.retracted_us, s.epoch
             FROM streams s JOIN notifications n ON n.stream = s.name AND n.stream_offset = s.head
             WHERE s.name = ANY($1)",
            &names,
            &[],
        )
        .await?;
        let missed: Vec<Arc<StoredNotification>> = heads
            .into_values()
            .filter(|head| self.note(&head.stream.to_string(), head.offset))
            .map(Arc::new)
            .collect();
        if !missed.is_empty() {
            tracing::info!(
                streams = missed.len(),
                "caught up streams that moved while this node was deaf"
            );
            self.fanout.deliver(&missed);
        }
        Ok(())
    }

    /// Records that `offset` of `stream` was heard of; true if it is news.
    fn note(&mut self, stream: &str, offset: u64) -> bool {
        let known = self.known.entry(stream.to_owned()).or_default();
        let news = offset > *known;
        *known = (*known).max(offset);
        news
    }

    async fn handle(&mut self, payload: &str) -> Result<(), StoreError> {
        let announcement: Announcement = serde_json::from_str(payload)
            .map_err(|err| StoreError::Internal(format!("unreadable announcement: {err}")))?;
        let own = *announcement.node == *self.node;
        match announcement.body {
            Body::Log(pairs) => self.heard_log(pairs, own).await?,
            Body::Event(_) | Body::Stored(_) | Body::Beat if own => {}
            // Another node is alive; nothing to do with it.
            Body::Beat => {}
            Body::Event(event) => {
                crate::metrics::cluster_event("heard");
                self.fanout.apply_remote(event);
            }
            Body::Stored(id) => {
                crate::metrics::cluster_event("heard");
                match stored_event(&self.pool, id).await? {
                    Some(event) => self.fanout.apply_remote(event),
                    None => tracing::warn!(id, "a relayed event was already deleted"),
                }
            }
        }
        Ok(())
    }

    /// Another node's commits: read those someone here wants, deliver them in the
    /// announced (commit) order. This node's own were delivered by its writer.
    async fn heard_log(&mut self, pairs: Vec<(String, u64)>, own: bool) -> Result<(), StoreError> {
        let mut wanted = Vec::new();
        for (stream, offset) in pairs {
            let wants = self.known.contains_key(&stream)
                || parse_stream(&stream).is_ok_and(|name| self.fanout.wants(&name));
            if wants && self.note(&stream, offset) && !own {
                wanted.push((stream, offset));
            }
        }
        if wanted.is_empty() {
            return Ok(());
        }
        crate::metrics::cluster_event("heard");
        let (streams, offsets): (Vec<String>, Vec<i64>) = wanted
            .iter()
            .map(|(stream, offset)| (stream.clone(), i64::try_from(*offset).unwrap_or(i64::MAX)))
            .unzip();
        let mut rows = read_rows(
            &self.pool,
            "SELECT n.stream, n.stream_offset, n.id, n.kind, n.payload, n.retracted_us, s.epoch
             FROM unnest($1::TEXT[], $2::BIGINT[]) AS a(stream, stream_offset)
             JOIN notifications n ON n.stream = a.stream AND n.stream_offset = a.stream_offset
             JOIN streams s ON s.name = n.stream",
            &streams,
            &offsets,
        )
        .await?;
        // Pruned in the meantime: nothing to deliver (a reader behind it gets 4005).
        let ordered: Vec<Arc<StoredNotification>> = wanted
            .iter()
            .filter_map(|(stream, offset)| rows.remove(&(stream.clone(), *offset)))
            .map(Arc::new)
            .collect();
        self.fanout.deliver(&ordered);
        Ok(())
    }
}

type Row = (String, i64, String, String, String, Option<i64>, String);

/// Runs a query returning notification rows (with their stream's epoch), keyed by
/// `(stream, offset)`.
async fn read_rows(
    pool: &PgPool,
    sql: &'static str,
    streams: &[String],
    offsets: &[i64],
) -> Result<HashMap<(String, u64), StoredNotification>, StoreError> {
    let mut query = sqlx::query_as::<_, Row>(sql).bind(streams);
    if !offsets.is_empty() {
        query = query.bind(offsets);
    }
    let rows = query.fetch_all(pool).await?;
    let mut out = HashMap::with_capacity(rows.len());
    for (stream, offset, id, kind, payload, retracted_us, epoch) in rows {
        let name = parse_stream(&stream)?;
        out.insert(
            (stream, offset as u64),
            StoredNotification {
                stream: name,
                epoch: Arc::from(epoch),
                offset: offset as u64,
                id,
                kind: tocsin_protocol::Kind::parse_lenient(&kind),
                payload: Arc::from(payload),
                retracted_at: retracted_us.map(from_us),
            },
        );
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use super::{BACKOFF, SILENCE};
    use crate::store::Fanout;
    use crate::store::conformance::Recorder;

    /// Polls `hearing` until `want` (deaf or not) or panics after `within`.
    async fn until(hearing: &super::Hearing, deaf: bool, within: Duration) {
        let deadline = Instant::now() + within;
        while hearing.deaf_for().is_some() != deaf {
            assert!(
                Instant::now() < deadline,
                "deaf={deaf} not reached in {within:?}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The node's own heartbeats keep a quiet listener hearing past the silence
    /// deadline; a killed server makes it deaf, and it hears again by itself once the
    /// server is back.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn heartbeats_keep_it_hearing_and_it_recovers_from_a_dead_server() {
        let mut cluster = tocsin_harness::postgres::PgCluster::start().expect("PostgreSQL starts");
        let url = cluster.create_database("ear").expect("database");
        let pool = super::super::connect_and_migrate(&url, 4)
            .await
            .expect("migrated");
        let node: Arc<str> = Arc::from("test-node");
        let fanout: Arc<dyn Fanout> = Arc::new(Recorder::default());
        let hearing = super::start(pool.clone(), node.clone(), fanout)
            .await
            .expect("listens");
        super::super::cluster::start_heartbeat(pool, node);

        let quiet_until = Instant::now() + SILENCE + Duration::from_secs(1);
        while Instant::now() < quiet_until {
            assert!(
                hearing.deaf_for().is_none(),
                "went deaf on a quiet, healthy link"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }

        cluster.kill().expect("killed");
        until(&hearing, true, SILENCE + Duration::from_secs(2)).await;
        cluster.restart().expect("restarts");
        until(&hearing, false, BACKOFF.1 + Duration::from_secs(10)).await;
    }
}
