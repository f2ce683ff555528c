//! The one clock the gateway's own timed work reads: the deadline scheduler, reminder
//! and escalation times, scheduled publishes.
//!
//! In production it is the wall clock. Tests build one that follows tokio's clock
//! from a chosen start ([`Clock::following_tokio`]), so under
//! `tokio::time::pause()` a whole week of reminders runs in milliseconds and the
//! scheduler cannot tell. Sleeps are capped (see [`Clock::sleep_until`]) because a
//! tokio timer does not move with the wall clock: after a suspend or an NTP step
//! the scheduler looks again within the cap instead of firing hours late.

use std::time::Duration;

use chrono::{DateTime, Utc};

/// The longest a sleep lasts before the wall clock is read again.
pub const MAX_SLEEP: Duration = Duration::from_secs(30);

/// Where "now" comes from.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The system's wall clock.
    System,
    /// `start` plus the time tokio's clock moved since `origin` (tests).
    Tokio {
        /// The wall time at `origin`.
        start: DateTime<Utc>,
        /// Tokio's instant when the clock was made.
        origin: tokio::time::Instant,
    },
}

impl Clock {
    /// The wall clock.
    pub fn system() -> Clock {
        Clock::System
    }

    /// A clock at `start` now that moves with tokio's (paused or not) clock.
    pub fn following_tokio(start: DateTime<Utc>) -> Clock {
        Clock::Tokio {
            start,
            origin: tokio::time::Instant::now(),
        }
    }

    /// Now.
    pub fn now(&self) -> DateTime<Utc> {
        match self {
            Clock::System => Utc::now(),
            Clock::Tokio { start, origin } => {
                let elapsed = chrono::Duration::from_std(origin.elapsed()).unwrap_or_default();
                *start + elapsed
            }
        }
    }

    /// Sleeps until `when` or for [`MAX_SLEEP`], whichever comes first; the caller
    /// reads [`Clock::now`] again after.
    pub async fn sleep_until(&self, when: DateTime<Utc>) {
        let left = (when - self.now()).to_std().unwrap_or(Duration::ZERO);
        tokio::time::sleep(left.min(MAX_SLEEP)).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn a_tokio_clock_moves_with_paused_time() {
        let start = DateTime::parse_from_rfc3339("2026-12-04T08:00:00Z")
            .expect("a date")
            .with_timezone(&Utc);
        let clock = Clock::following_tokio(start);
        assert_eq!(clock.now(), start);
        clock
            .sleep_until(start + chrono::Duration::seconds(10))
            .await;
        assert_eq!(clock.now(), start + chrono::Duration::seconds(10));
        // A far target is slept towards in steps of at most MAX_SLEEP.
        clock.sleep_until(start + chrono::Duration::days(1)).await;
        assert_eq!(
            clock.now(),
            start
                + chrono::Duration::seconds(10)
                + chrono::Duration::from_std(MAX_SLEEP).expect("30 s")
        );
    }
}
