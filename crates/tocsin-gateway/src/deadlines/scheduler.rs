//! The scheduler: one task that applies every schedule step when it falls due —
//! reminders, escalations, scheduled publishes.
//!
//! It sleeps until the next planned step (read from the store), a wake-up (a new
//! step was planned), or [`crate::clock::MAX_SLEEP`]; then applies what is due, in
//! rounds of [`ROUND`]. Everything it knows is in the store: a gateway that was down
//! applies on start what fell due meanwhile (late), once; two nodes applying the same
//! step would both find it no longer planned but one. With nothing due it wakes
//! only every `MAX_SLEEP` and reads one indexed row.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::firing::firings;
use crate::clock::Clock;
use crate::state::AppState;
use crate::store::Store;

#[cfg(test)]
mod tests;

/// The most steps applied per transaction.
pub const ROUND: u32 = 500;
/// The pause after a failed round (the store refused: disk full, locked…).
const RETRY: Duration = Duration::from_secs(1);

/// What the scheduler works with: the store, the one clock, its wake-up, and when to
/// stop.
#[derive(Clone)]
pub struct Scheduler {
    /// Where the schedule lives.
    pub store: Arc<dyn Store>,
    /// Now.
    pub clock: Clock,
    /// Notified when a step was planned.
    pub wake: Arc<Notify>,
    /// Notified when applied steps may have queued webhook events.
    pub webhooks: Arc<Notify>,
    /// A step applied later than this after its time is marked late.
    pub late_after: chrono::Duration,
    /// Stops the loop.
    pub shutdown: CancellationToken,
}

impl Scheduler {
    /// The gateway's scheduler.
    pub fn of(state: &AppState) -> Scheduler {
        let late_after = i64::try_from(state.config.deadlines.late_after_secs)
            .ok()
            .and_then(chrono::Duration::try_seconds)
            .unwrap_or(chrono::Duration::MAX);
        Scheduler {
            store: state.store.clone(),
            clock: state.clock.clone(),
            wake: state.schedule_wake.clone(),
            webhooks: state.webhook_wake.clone(),
            late_after,
            shutdown: state.shutdown.clone(),
        }
    }

    /// Runs until the shutdown token is cancelled.
    pub async fn run(self) {
        loop {
            let now = self.clock.now();
            let wait = match self.apply_due(now).await {
                // A full round: more may be due right now.
                Ok(applied) if applied >= ROUND as usize => continue,
                Ok(_) => self.next_wake(now).await,
                Err(err) => {
                    tracing::error!(error = %err, "the scheduler could not apply due steps; retrying");
                    Some(now + retry())
                }
            };
            let far = now + chrono::Duration::from_std(crate::clock::MAX_SLEEP).unwrap_or_default();
            let until = wait.unwrap_or(far).min(far);
            tokio::select! {
                _ = self.clock.sleep_until(until) => {}
                _ = self.wake.notified() => {}
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    /// Applies one round of due steps; returns how many were due.
    pub async fn apply_due(&self, now: DateTime<Utc>) -> Result<usize, String> {
        let due = self
            .store
            .due_steps(now, ROUND)
            .await
            .map_err(|err| err.to_string())?;
        if due.is_empty() {
            return Ok(0);
        }
        let count = due.len();
        // Lag is measured on the scheduler's clock (paused in tests), per step found due.
        let lags: Vec<_> = due
            .iter()
            .map(|d| {
                (
                    d.step.kind.as_str(),
                    (now - d.step.at).to_std().unwrap_or_default(),
                )
            })
            .collect();
        let firings = firings(self.store.as_ref(), due, now, self.late_after)
            .await
            .map_err(|err| err.to_string())?;
        let applied = self
            .store
            .fire(firings)
            .await
            .map_err(|err| err.to_string())?;
        tracing::info!(due = count, applied, "scheduled steps applied");
        for (kind, lag) in lags {
            crate::metrics::step_applied(kind, lag);
        }
        if applied > 0 {
            self.webhooks.notify_one();
        }
        Ok(count)
    }

    /// When the next planned step is due (`None`: nothing planned).
    async fn next_wake(&self, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
        match self.store.next_step_at().await {
            Ok(next) => next,
            Err(err) => {
                tracing::error!(error = %err, "the scheduler cannot read the next step; retrying");
                Some(now + retry())
            }
        }
    }
}

fn retry() -> chrono::Duration {
    chrono::Duration::from_std(RETRY).unwrap_or_default()
}
