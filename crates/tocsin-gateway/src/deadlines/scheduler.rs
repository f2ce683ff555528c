//! The scheduler: one task that applies every schedule step when it falls due —
//! reminders, escalations, scheduled publishes.
//!
//! It sleeps until the next planned step (read from the store), a wake-up (a new
//! step was planned), or [`crate::clock::MAX_SLEEP`]; then applies what is due, in
//! rounds of [`ROUND`]. Everything it knows is in the store: a gateway that was down
//! applies on start what fell due meanwhile (late), once; two nodes applying the same
//! step would both find it no longer planned but one. With nothing due it wakes
//! only every `MAX_SLEEP` and reads one indexed row.

use std::time::Duration;

use chrono::{DateTime, Utc};

use super::firing::firings;
use crate::state::AppState;

/// The most steps applied per transaction.
pub const ROUND: u32 = 500;
/// The pause after a failed round (the store refused: disk full, locked…).
const RETRY: Duration = Duration::from_secs(1);

/// Runs until the gateway shuts down.
pub async fn run(state: AppState) {
    loop {
        let now = state.clock.now();
        let wait = match apply_due(&state, now).await {
            // A full round: more may be due right now.
            Ok(applied) if applied >= ROUND as usize => continue,
            Ok(_) => next_wake(&state, now).await,
            Err(err) => {
                tracing::error!(error = %err, "the scheduler could not apply due steps; retrying");
                Some(now + chrono::Duration::from_std(RETRY).unwrap_or_default())
            }
        };
        let far = now + chrono::Duration::from_std(crate::clock::MAX_SLEEP).unwrap_or_default();
        let until = wait.unwrap_or(far).min(far);
        tokio::select! {
            _ = state.clock.sleep_until(until) => {}
            _ = state.schedule_wake.notified() => {}
            _ = state.shutdown.cancelled() => return,
        }
    }
}

/// Applies one round of due steps; returns how many were due.
pub async fn apply_due(state: &AppState, now: DateTime<Utc>) -> Result<usize, String> {
    let due = state
        .store
        .due_steps(now, ROUND)
        .await
        .map_err(|err| err.to_string())?;
    if due.is_empty() {
        return Ok(0);
    }
    let count = due.len();
    let late_after = chrono::Duration::seconds(
        i64::try_from(state.config.deadlines.late_after_secs).unwrap_or(i64::MAX / 1_000_000),
    );
    let firings = firings(state.store.as_ref(), due, now, late_after)
        .await
        .map_err(|err| err.to_string())?;
    let applied = state
        .store
        .fire(firings)
        .await
        .map_err(|err| err.to_string())?;
    tracing::info!(due = count, applied, "scheduled steps applied");
    Ok(count)
}

/// When the next planned step is due (`None`: nothing planned).
async fn next_wake(state: &AppState, now: DateTime<Utc>) -> Option<DateTime<Utc>> {
    match state.store.next_step_at().await {
        Ok(next) => next,
        Err(err) => {
            tracing::error!(error = %err, "the scheduler cannot read the next step; retrying");
            Some(now + chrono::Duration::from_std(RETRY).unwrap_or_default())
        }
    }
}
