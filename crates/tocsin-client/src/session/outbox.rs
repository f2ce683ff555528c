//! Sending the queued actions: paced to the rate the gateway announced in
//! `welcome.limits`, each kept in the store until the gateway gives a final answer.
//!
//! A laptop back from a day offline may hold hundreds of actions. Sent at once, all
//! but the burst would be refused `rate_limited` (and a flood closes the socket), and
//! dropping them on that answer undid what the user did: the server kept counting
//! unread what the desktop showed read. So actions leave at the announced pace, a
//! transient refusal (`rate_limited`, `store_busy`, `unavailable`, `internal`, a code
//! this build does not know) puts the action back with a delay, and only a final
//! answer (done, or refused for good: `not_found`, `conflict`…) takes it out of the
//! store — a final refusal is reported to the user as an action result.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use tocsin_protocol::frames::{ClientFrame, Limits};
use tocsin_protocol::{ErrorBody, ErrorCode};
use tokio::time::Instant;

/// Slots of the gateway's burst left for frames the session sends by itself (the
/// in-band token refresh).
const RESERVED: u32 = 2;
/// The first retry of a transiently refused action, doubling up to [`MAX_RETRY`].
const FIRST_RETRY: Duration = Duration::from_secs(1);
/// The longest wait between retries of one action.
const MAX_RETRY: Duration = Duration::from_secs(60);

/// The `welcome.features` entry an action needs, for actions added after the first v1.
pub(super) fn feature_of(frame: &ClientFrame) -> Option<&'static str> {
    match frame {
        ClientFrame::Acknowledge { .. } => Some(tocsin_protocol::frames::features::ACKNOWLEDGE),
        ClientFrame::Shown { .. } => Some(tocsin_protocol::frames::features::SHOWN),
        _ => None,
    }
}

/// A token bucket with the gateway's rate and burst.
struct Pacer {
    capacity: f64,
    tokens: f64,
    per_second: f64,
    at: Instant,
}

impl Pacer {
    fn new(limits: &Limits) -> Pacer {
        let capacity = f64::from(limits.actions_burst.saturating_sub(RESERVED).max(1));
        Pacer {
            capacity,
            tokens: capacity,
            per_second: f64::from(limits.actions_per_second.max(1)),
            at: Instant::now(),
        }
    }

    fn refill(&mut self, now: Instant) {
        let earned = now.saturating_duration_since(self.at).as_secs_f64() * self.per_second;
        self.tokens = (self.tokens + earned).min(self.capacity);
        self.at = now;
    }

    /// Takes a slot now, or says when one is free.
    fn take(&mut self, now: Instant) -> Result<(), Instant> {
        self.refill(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        let missing = (1.0 - self.tokens) / self.per_second;
        Err(now + Duration::from_secs_f64(missing))
    }
}

/// One action waiting to be sent.
struct Queued {
    frame: ClientFrame,
    not_before: Instant,
    refusals: u32,
}

/// What to do with an answer.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Verdict {
    /// Done (applied, or refused for good): out of the store, tell the app.
    Final,
    /// Refused for now: sent again at the instant given.
    Retry(Instant),
    /// Not sent by this session (answered twice, or from before a reconnect).
    Unknown,
}

/// The actions of one session.
pub(super) struct Outbox {
    pacer: Pacer,
    queue: VecDeque<Queued>,
    /// Sent, awaiting their result, with the refusals they had.
    in_flight: HashMap<String, (ClientFrame, u32)>,
    /// Until the pacer has a slot again.
    paced_until: Option<Instant>,
}

impl Outbox {
    /// An empty outbox paced to `limits`.
    pub fn new(limits: &Limits) -> Outbox {
        Outbox {
            pacer: Pacer::new(limits),
            queue: VecDeque::new(),
            in_flight: HashMap::new(),
            paced_until: None,
        }
    }

    /// Queues an action to send as soon as the pace allows.
    pub fn push(&mut self, frame: ClientFrame) {
        self.queue.push_back(Queued {
            frame,
            not_before: Instant::now(),
            refusals: 0,
        });
    }

    /// The next action that may leave now, if the pace allows it.
    pub fn next_to_send(&mut self) -> Option<ClientFrame> {
        let now = Instant::now();
        let due = self.queue.iter().position(|item| item.not_before <= now)?;
        if let Err(free_at) = self.pacer.take(now) {
            self.paced_until = Some(free_at);
            return None;
        }
        self.paced_until = None;
        let item = self.queue.remove(due)?;
        let id = item.frame.action_id().unwrap_or_default().to_owned();
        self.in_flight
            .insert(id, (item.frame.clone(), item.refusals));
        Some(item.frame)
    }

    /// When something may be sent next: a retry coming due or a slot of the pacer.
    pub fn next_due(&self) -> Option<Instant> {
        let earliest = self.queue.iter().map(|item| item.not_before).min()?;
        Some(match self.paced_until {
            Some(free_at) => earliest.max(free_at),
            None => earliest,
        })
    }

    /// Sorts an answer: final, or back in the queue for a retry.
    pub fn answered(&mut self, id: &str, error: Option<&ErrorBody>) -> Verdict {
        let Some((frame, refusals)) = self.in_flight.remove(id) else {
            return Verdict::Unknown;
        };
        let Some(error) = error.filter(|error| is_transient(error.code)) else {
            return Verdict::Final;
        };
        let backoff = FIRST_RETRY
            .saturating_mul(2u32.saturating_pow(refusals))
            .min(MAX_RETRY);
        let asked = Duration::from_millis(error.retry_after_ms.unwrap_or(0));
        let not_before = Instant::now() + backoff.max(asked);
        self.queue.push_back(Queued {
            frame,
            not_before,
            refusals: refusals + 1,
        });
        Verdict::Retry(not_before)
    }
}

/// Refusals that say "not now" rather than "never".
fn is_transient(code: ErrorCode) -> bool {
    matches!(
        code,
        ErrorCode::RateLimited
            | ErrorCode::StoreBusy
            | ErrorCode::Unavailable
            | ErrorCode::Internal
            | ErrorCode::Unknown
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_second: u32, burst: u32) -> Limits {
        Limits {
            heartbeat_interval_ms: 30_000,
            heartbeat_timeout_ms: 10_000,
            max_message_bytes: 1 << 20,
            actions_per_second: per_second,
            actions_burst: burst,
        }
    }

    fn read(id: &str) -> ClientFrame {
        ClientFrame::MarkRead {
            id: id.into(),
            notification_ids: vec![format!("n-{id}")],
        }
    }

    fn drain(outbox: &mut Outbox) -> Vec<String> {
        std::iter::from_fn(|| outbox.next_to_send())
            .map(|frame| frame.action_id().unwrap_or_default().to_owned())
            .collect()
    }

    #[tokio::test(start_paused = true)]
    async fn actions_leave_at_the_announced_pace() {
        let mut outbox = Outbox::new(&limits(10, 7));
        for n in 0..60 {
            outbox.push(read(&format!("a{n}")));
        }
        assert_eq!(
            drain(&mut outbox).len(),
            5,
            "the burst, less two slots kept"
        );
        let start = Instant::now();
        let mut sent = 5;
        while sent < 60 {
            tokio::time::sleep_until(outbox.next_due().expect("more to send")).await;
            sent += drain(&mut outbox).len();
        }
        // 55 more at 10 per second.
        let took = Instant::now() - start;
        assert!(
            took >= Duration::from_millis(5400) && took <= Duration::from_millis(5600),
            "{took:?}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn a_transient_refusal_is_retried_and_a_final_one_is_not() {
        let mut outbox = Outbox::new(&limits(10, 20));
        outbox.push(read("busy"));
        outbox.push(read("gone"));
        assert_eq!(drain(&mut outbox), ["busy", "gone"]);
        let mut limited = ErrorBody::new(ErrorCode::RateLimited, "slow down");
        limited.retry_after_ms = Some(2500);
        let Verdict::Retry(at) = outbox.answered("busy", Some(&limited)) else {
            panic!("retried")
        };
        assert_eq!(at - Instant::now(), Duration::from_millis(2500));
        let gone = ErrorBody::new(ErrorCode::NotFound, "no such notification");
        assert_eq!(outbox.answered("gone", Some(&gone)), Verdict::Final);
        assert_eq!(
            outbox.answered("gone", None),
            Verdict::Unknown,
            "answered twice"
        );
        assert!(drain(&mut outbox).is_empty(), "not before its delay");
        tokio::time::sleep_until(outbox.next_due().expect("the retry")).await;
        assert_eq!(drain(&mut outbox), ["busy"]);
        // The second refusal waits longer: 2 s, then 4 s, up to a minute.
        let busy = ErrorBody::new(ErrorCode::StoreBusy, "locked");
        let Verdict::Retry(at) = outbox.answered("busy", Some(&busy)) else {
            panic!("retried")
        };
        assert_eq!(at - Instant::now(), Duration::from_secs(2));
        drain(&mut outbox);
        assert_eq!(
            outbox.answered("busy", None),
            Verdict::Unknown,
            "not sent yet"
        );
    }
}
