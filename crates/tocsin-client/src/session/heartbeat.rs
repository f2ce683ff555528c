//! Dead-peer detection: ping every `interval`; a gateway that sends nothing for
//! `timeout` after a ping is gone (a black-holed link never closes by itself).

use std::time::Duration;

use tokio::time::{Instant, Interval, MissedTickBehavior};

/// The heartbeat of one session.
pub(super) struct Heartbeat {
    ticks: Interval,
    timeout: Duration,
    /// When the first unanswered ping went out; `None` once anything was heard.
    silent_since: Option<Instant>,
}

impl Heartbeat {
    /// The first ping goes out one `interval` from now.
    pub fn new(interval: Duration, timeout: Duration) -> Heartbeat {
        let mut ticks = tokio::time::interval_at(Instant::now() + interval, interval);
        ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Heartbeat {
            ticks,
            timeout,
            silent_since: None,
        }
    }

    /// Waits until the next ping is due.
    pub async fn ping_due(&mut self) {
        self.ticks.tick().await;
    }

    /// A ping went out.
    pub fn pinged(&mut self) {
        self.silent_since.get_or_insert_with(Instant::now);
    }

    /// Something arrived from the gateway: it is alive.
    pub fn heard(&mut self) {
        self.silent_since = None;
    }

    /// When the gateway counts as dead, if a ping is unanswered.
    pub fn dead_at(&self) -> Option<Instant> {
        self.silent_since.map(|since| since + self.timeout)
    }

    /// How long the gateway may stay silent after a ping.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }
}
