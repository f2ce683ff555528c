//! The cap on password checks running at once.
//!
//! One argon2id verification holds 19 MiB (its `m` parameter) for its whole run, on
//! tokio's blocking pool, which grows to 512 threads: without a cap, 200 concurrent
//! logins meant 200 × 19 MiB at once (an outside attack reached 11.3 GiB). Running
//! more checks than there are cores does not finish them sooner anyway, so the gate
//! admits one per core; the others wait briefly for a turn, then are turned away
//! (the caller answers 503) rather than queueing without bound.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

/// Admits a bounded number of password checks at once.
#[derive(Debug)]
pub struct HashGate {
    /// One permit per check allowed to run.
    permits: Arc<Semaphore>,
    /// How many permits there are.
    size: usize,
    /// How long a check waits for a permit before giving up.
    wait: Duration,
}

/// Why a check did not run to completion.
#[derive(Debug, thiserror::Error)]
pub enum GateError {
    /// Every permit stayed taken for the whole wait.
    #[error("too many password checks are running; retry after {retry_after:?}")]
    Busy {
        /// A hint for the caller's `Retry-After`.
        retry_after: Duration,
    },
    /// The check panicked on the blocking pool.
    #[error("a password check failed: {0}")]
    Failed(String),
}

impl HashGate {
    /// A gate running at most `size` checks at once (0: one per core), each other
    /// check waiting up to `wait` for its turn.
    pub fn new(size: usize, wait: Duration) -> HashGate {
        let size = if size == 0 { cores() } else { size };
        HashGate {
            permits: Arc::new(Semaphore::new(size)),
            size,
            wait,
        }
    }

    /// How many checks may run at once.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Runs `check` on the blocking pool once a permit is free.
    pub async fn run<T, F>(&self, check: F) -> Result<T, GateError>
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let acquire = self.permits.clone().acquire_owned();
        let permit = match tokio::time::timeout(self.wait, acquire).await {
            Ok(Ok(permit)) => permit,
            // The semaphore is never closed; treat it like a full gate all the same.
            Ok(Err(_)) | Err(_) => return Err(self.busy()),
        };
        // The permit moves into the blocking task: if the request is dropped (its
        // client hung up), the hash still runs to the end, and its memory stays
        // counted until then.
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            check()
        })
        .await
        .map_err(|err| GateError::Failed(err.to_string()))
    }

    fn busy(&self) -> GateError {
        // Whoever waited the whole time should not come back sooner than that.
        GateError::Busy {
            retry_after: self.wait.max(Duration::from_secs(1)),
        }
    }
}

/// The machine's cores (as the process may use them), at least 1.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, usize::from)
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::*;

    #[test]
    fn zero_means_one_per_core() {
        let gate = HashGate::new(0, Duration::ZERO);
        assert_eq!(gate.size(), cores());
        assert_eq!(HashGate::new(3, Duration::ZERO).size(), 3);
    }

    #[tokio::test]
    async fn never_runs_more_than_its_size_and_turns_away_the_excess() {
        let gate = Arc::new(HashGate::new(2, Duration::from_millis(100)));
        let running = Arc::new(AtomicUsize::new(0));
        let peak = Arc::new(AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (gate, running, peak) = (gate.clone(), running.clone(), peak.clone());
            tasks.push(tokio::spawn(async move {
                gate.run(move || {
                    let now = running.fetch_add(1, Ordering::SeqCst) + 1;
                    peak.fetch_max(now, Ordering::SeqCst);
                    std::thread::sleep(Duration::from_millis(300));
                    running.fetch_sub(1, Ordering::SeqCst);
                })
                .await
            }));
        }
        let mut busy = 0;
        for task in tasks {
            match task.await.expect("task") {
                Ok(()) => {}
                Err(GateError::Busy { retry_after }) => {
                    assert!(retry_after >= Duration::from_secs(1));
                    busy += 1;
                }
                Err(err) => panic!("{err}"),
            }
        }
        assert_eq!(peak.load(Ordering::SeqCst), 2);
        assert_eq!(busy, 6, "two ran, the others waited 100 ms and gave up");
    }
}
