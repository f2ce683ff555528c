//! What connections report for the audit trail: each deadline alert written to a
//! device's socket ("delivered", with the device and the time). The store records
//! the rest itself (published, read, acknowledged, shown) in the transaction of the
//! change.
//!
//! A connection must never wait for the audit: it hands entries to a bounded queue
//! and goes on; one task writes them in batches, one writer command a second at
//! most. If the queue is full (the disk stalls), entries are dropped and counted in
//! the log rather than slowing delivery — the notification itself is never at risk.
//! At shutdown, what is queued is written before the store closes.
//!
//! Only deadline alerts get per-device receipts: they are what a firm must prove,
//! and one row per device per mail would multiply the writes of every fan-out.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tocsin_protocol::Kind;
use tocsin_protocol::audit::AuditEvent;
use tokio::sync::mpsc;

use crate::store::{AuditEntry, Store, StoredNotification};

/// Entries waiting to be written before new ones are dropped.
const CAPACITY: usize = 65_536;
/// The most entries in one write.
const BATCH: usize = 2_000;

/// The connections' side: cheap to clone.
#[derive(Clone)]
pub struct AuditSink {
    queue: mpsc::Sender<AuditEntry>,
    dropped: Arc<AtomicU64>,
}

/// The writing side, run by [`AuditWriter::run`].
pub struct AuditWriter {
    queue: mpsc::Receiver<AuditEntry>,
    store: Arc<dyn Store>,
    dropped: Arc<AtomicU64>,
}

/// A sink and the writer that empties it.
pub fn channel(store: Arc<dyn Store>) -> (AuditSink, AuditWriter) {
    let (queue, receiver) = mpsc::channel(CAPACITY);
    let dropped = Arc::new(AtomicU64::new(0));
    (
        AuditSink {
            queue,
            dropped: dropped.clone(),
        },
        AuditWriter {
            queue: receiver,
            store,
            dropped,
        },
    )
}

impl AuditSink {
    /// A notification was written to a connection of `user` in `tenant`.
    pub fn delivered(
        &self,
        stored: &StoredNotification,
        tenant: &str,
        user_id: &str,
        session_id: Option<&str>,
    ) {
        if stored.kind != Kind::DeadlineAlert {
            return;
        }
        let data = stored.notification().ok().map(|n| n.data);
        let entry = AuditEntry {
            tenant: tenant.to_owned(),
            at: chrono::Utc::now(),
            event: AuditEvent::Delivered,
            notification_id: Some(stored.id.clone()),
            deadline_id: data
                .as_ref()
                .and_then(|d| d.deadline_id().map(str::to_owned)),
            dossier: data
                .as_ref()
                .and_then(|d| d.dossier_number().map(str::to_owned)),
            user_id: Some(user_id.to_owned()),
            device: None,
            session_id: session_id.map(str::to_owned),
        };
        if self.queue.try_send(entry).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

impl AuditWriter {
    /// Writes entries as they come until every sink is dropped or `stop` fires; then
    /// writes what is left.
    pub async fn run(mut self, stop: tokio_util::sync::CancellationToken) {
        let mut batch = Vec::with_capacity(BATCH);
        loop {
            tokio::select! {
                received = self.queue.recv_many(&mut batch, BATCH) => {
                    if received == 0 {
                        return;
                    }
                }
                _ = stop.cancelled() => {
                    while let Ok(entry) = self.queue.try_recv() {
                        batch.push(entry);
                    }
                    self.write(&mut batch).await;
                    return;
                }
            }
            self.write(&mut batch).await;
        }
    }

    async fn write(&self, batch: &mut Vec<AuditEntry>) {
        let dropped = self.dropped.swap(0, Ordering::Relaxed);
        if dropped > 0 {
            tracing::warn!(
                dropped,
                "audit queue full: delivery receipts were not recorded"
            );
        }
        if batch.is_empty() {
            return;
        }
        let entries = std::mem::take(batch);
        let count = entries.len();
        if let Err(err) = self.store.record_audit(entries).await {
            tracing::error!(error = %err, count, "delivery receipts could not be recorded");
        }
    }
}
