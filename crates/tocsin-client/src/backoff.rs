//! When to reconnect, and whether to at all.
//!
//! [`Backoff`] spaces reconnect attempts with exponential backoff and **full jitter**
//! (`random(0, min(cap, base × 2^attempt))`, PROTOCOL.md §9), so a gateway restart does
//! not bring every client back in the same second. Its attempt counter is reset only
//! after a connection has stayed up for `stable_after`: a gateway that accepts and then
//! drops us at once must not be hammered at the base delay.
//!
//! [`decide`] reads the close code (PROTOCOL.md §5) and says whether to reconnect, to
//! refresh the access token first, or to stop and tell the user. Stop codes are never
//! retried automatically, so a bad token can never turn into a reconnect loop.

use std::time::{Duration, Instant};

use rand::Rng;
use tocsin_protocol::close::{self, CloseCode};

/// The knobs of [`Backoff`]; the defaults are the ones PROTOCOL.md §9 suggests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BackoffConfig {
    /// The bound of the first attempt's delay; it doubles with each failed attempt.
    pub base: Duration,
    /// The largest bound, so an outage of hours still retries about once a minute.
    pub cap: Duration,
    /// How long a connection must stay up before the attempt counter resets.
    pub stable_after: Duration,
}

impl Default for BackoffConfig {
    fn default() -> Self {
        BackoffConfig {
            base: Duration::from_secs(1),
            cap: Duration::from_secs(60),
            stable_after: Duration::from_secs(60),
        }
    }
}

/// Reconnect pacing: exponential backoff with full jitter and a stability-gated reset.
#[derive(Debug, Clone)]
pub struct Backoff {
    config: BackoffConfig,
    attempt: u32,
    connected_at: Option<Instant>,
}

impl Backoff {
    /// A fresh backoff, at attempt 0.
    pub fn new(config: BackoffConfig) -> Self {
        Backoff {
            config,
            attempt: 0,
            connected_at: None,
        }
    }

    /// How many delays were handed out since the last reset.
    pub fn attempt(&self) -> u32 {
        self.attempt
    }

    /// The upper bound of the next delay: `min(cap, base × 2^attempt)`.
    pub fn bound(&self) -> Duration {
        match 2u32.checked_pow(self.attempt) {
            Some(factor) => self.config.base.saturating_mul(factor).min(self.config.cap),
            None => self.config.cap,
        }
    }

    /// The delay before the next attempt, uniform in `[0, bound()]`; counts the attempt.
    pub fn next_delay(&mut self, rng: &mut impl Rng) -> Duration {
        let bound = self.bound();
        self.attempt = self.attempt.saturating_add(1);
        let nanos = u64::try_from(bound.as_nanos()).unwrap_or(u64::MAX);
        Duration::from_nanos(rng.random_range(0..=nanos))
    }

    /// Like [`Backoff::next_delay`], but never shorter than `floor` (the server's
    /// `retry_after_ms` hint of close code 4003).
    pub fn next_delay_at_least(&mut self, floor: Duration, rng: &mut impl Rng) -> Duration {
        self.next_delay(rng).max(floor)
    }

    /// Records that a connection is up. Call it when the session is really usable
    /// (at `caught_up`), not at the TCP connect, so a gateway that fails every
    /// handshake never counts as stable.
    pub fn connected(&mut self, at: Instant) {
        self.connected_at = Some(at);
    }

    /// Records that the connection ended; resets the attempt counter if it had stayed
    /// up for at least `stable_after`.
    pub fn disconnected(&mut self, at: Instant) {
        if let Some(since) = self.connected_at.take()
            && at.saturating_duration_since(since) >= self.config.stable_after
        {
            self.attempt = 0;
        }
    }
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff::new(BackoffConfig::default())
    }
}

/// What to do after a connection closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reconnect {
    /// Reconnect with backoff and resume. `Some(d)`: the server asked to wait at least
    /// `d` (use [`Backoff::next_delay_at_least`]).
    After(Option<Duration>),
    /// The access token expired: refresh it over HTTP first, then reconnect (a refresh
    /// that fails with 401 means "sign in again").
    RefreshThenReconnect,
    /// Do not reconnect automatically; tell the user why.
    Stop(StopReason),
}

/// Why the client stopped reconnecting; each asks something different of the user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopReason {
    /// 4100: the token is invalid or the device was signed out. The engine may try
    /// exactly one refresh; if that fails, ask the user to sign in. Never loop.
    InvalidToken,
    /// 4101: authenticated but not allowed; the user should contact the firm's admin.
    Forbidden,
    /// 4102 / 4103: the client broke the protocol; a bug to log, not to retry.
    ProtocolError,
    /// 4104: the user has too many connections open; retry only on the user's request.
    TooManyConnections,
    /// 4105: `auth`/`hello` did not arrive in time. PROTOCOL.md §5 and §9 say to stop
    /// automatic retries (the client sends them right after the upgrade, so a timeout
    /// means a bug or a stuck machine); kept apart so the app can word it.
    AuthTimeout,
    /// Any other code outside the reconnect range (1000, 1008, unknown 41xx, …).
    Other(u16),
}

/// Maps a close (code and reason) to what the client must do. `None` means the
/// transport was lost without a close frame (network error, 1006): reconnect.
pub fn decide(close: Option<u16>, reason: &str) -> Reconnect {
    let Some(code) = close else {
        return Reconnect::After(None);
    };
    match CloseCode::from_code(code) {
        Some(CloseCode::TokenExpired) => Reconnect::RefreshThenReconnect,
        Some(CloseCode::RateLimited) => Reconnect::After(retry_after(reason)),
        Some(CloseCode::InvalidToken) => Reconnect::Stop(StopReason::InvalidToken),
        Some(CloseCode::Forbidden) => Reconnect::Stop(StopReason::Forbidden),
        Some(CloseCode::ProtocolViolation | CloseCode::MessageTooLarge) => {
            Reconnect::Stop(StopReason::ProtocolError)
        }
        Some(CloseCode::TooManyConnections) => Reconnect::Stop(StopReason::TooManyConnections),
        Some(CloseCode::AuthTimeout) => Reconnect::Stop(StopReason::AuthTimeout),
        _ if close::should_reconnect(code) => Reconnect::After(None),
        _ => Reconnect::Stop(StopReason::Other(code)),
    }
}

/// Parses `retry_after_ms=<n>` out of a close reason (tolerating surrounding text).
fn retry_after(reason: &str) -> Option<Duration> {
    let (_, rest) = reason.split_once("retry_after_ms=")?;
    let digits: &str = rest
        .split(|c: char| !c.is_ascii_digit())
        .next()
        .unwrap_or_default();
    digits.parse().ok().map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    const SECOND: Duration = Duration::from_secs(1);

    fn at_attempt(attempt: u32) -> Backoff {
        Backoff {
            attempt,
            ..Backoff::default()
        }
    }

    #[test]
    fn delays_stay_within_a_doubling_bound_capped_at_a_minute() {
        let mut rng = StdRng::seed_from_u64(7);
        let mut backoff = Backoff::default();
        let expected = [1, 2, 4, 8, 16, 32, 60, 60, 60, 60];
        for (attempt, secs) in expected.into_iter().enumerate() {
            assert_eq!(backoff.attempt(), attempt as u32);
            assert_eq!(backoff.bound(), secs * SECOND, "attempt {attempt}");
            let delay = backoff.next_delay(&mut rng);
            assert!(delay <= secs * SECOND, "{delay:?} > {secs}s");
        }
    }

    #[test]
    fn attempt_counter_saturates_without_overflow() {
        let mut rng = StdRng::seed_from_u64(1);
        let mut backoff = at_attempt(u32::MAX - 1);
        backoff.next_delay(&mut rng);
        let delay = backoff.next_delay(&mut rng);
        assert_eq!(backoff.attempt(), u32::MAX);
        assert_eq!(backoff.bound(), 60 * SECOND);
        assert!(delay <= 60 * SECOND);
    }

    #[test]
    fn median_delay_grows_then_plateaus() {
        let mut rng = StdRng::seed_from_u64(42);
        let medians: Vec<Duration> = (0..10u32)
            .map(|attempt| {
                let mut draws: Vec<Duration> = (0..2001)
                    .map(|_| at_attempt(attempt).next_delay(&mut rng))
                    .collect();
                draws.sort();
                draws[draws.len() / 2]
            })
            .collect();
        for pair in medians[..6].windows(2) {
            assert!(pair[1] > pair[0], "median should grow: {medians:?}");
        }
        // Full jitter: the median is about half the bound, at every attempt.
        for (attempt, median) in medians.iter().enumerate().take(6) {
            let half = (1u32 << attempt) * SECOND / 2;
            let err = median.abs_diff(half);
            assert!(err < half / 10, "attempt {attempt}: {median:?} vs {half:?}");
        }
        for median in &medians[6..] {
            assert!(median.abs_diff(30 * SECOND) < 3 * SECOND, "{medians:?}");
        }
    }

    #[test]
    fn floor_is_honoured() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut backoff = Backoff::default();
        let delay = backoff.next_delay_at_least(5 * SECOND, &mut rng);
        assert!(delay >= 5 * SECOND);
        assert_eq!(backoff.attempt(), 1);
    }

    #[test]
    fn counter_resets_only_after_a_stable_connection() {
        let mut rng = StdRng::seed_from_u64(9);
        let mut backoff = Backoff::default();
        let t0 = Instant::now();
        for _ in 0..4 {
            backoff.next_delay(&mut rng);
        }
        backoff.connected(t0);
        backoff.disconnected(t0 + 59 * SECOND);
        assert_eq!(backoff.attempt(), 4, "59 s is not stable");

        backoff.disconnected(t0 + 600 * SECOND);
        assert_eq!(
            backoff.attempt(),
            4,
            "a disconnect without connect resets nothing"
        );

        backoff.connected(t0 + 700 * SECOND);
        backoff.disconnected(t0 + 760 * SECOND);
        assert_eq!(backoff.attempt(), 0, "60 s is stable");
        assert_eq!(backoff.bound(), SECOND);
    }

    #[test]
    fn every_documented_code_is_decided() {
        use Reconnect::{After, RefreshThenReconnect, Stop};
        let cases = [
            (Some(4000), "going_away", After(None)),
            (Some(4001), "slow_consumer", After(None)),
            (Some(4002), "token_expired", RefreshThenReconnect),
            (
                Some(4003),
                "retry_after_ms=1500",
                After(Some(Duration::from_millis(1500))),
            ),
            (Some(4003), "rate_limited", After(None)),
            (Some(4004), "heartbeat_timeout", After(None)),
            (Some(4005), "server_error", After(None)),
            (Some(4042), "", After(None)),
            (Some(4100), "invalid_token", Stop(StopReason::InvalidToken)),
            (Some(4101), "forbidden", Stop(StopReason::Forbidden)),
            (Some(4102), "", Stop(StopReason::ProtocolError)),
            (Some(4103), "", Stop(StopReason::ProtocolError)),
            (Some(4104), "", Stop(StopReason::TooManyConnections)),
            (Some(4105), "auth_timeout", Stop(StopReason::AuthTimeout)),
            (Some(4150), "", Stop(StopReason::Other(4150))),
            (Some(1000), "", Stop(StopReason::Other(1000))),
            (Some(1008), "", Stop(StopReason::Other(1008))),
            (Some(1001), "", After(None)),
            (Some(1006), "", After(None)),
            (Some(1011), "", After(None)),
            (Some(1014), "", After(None)),
            (None, "", After(None)),
        ];
        for (code, reason, expected) in cases {
            assert_eq!(decide(code, reason), expected, "{code:?} {reason:?}");
        }
    }

    #[test]
    fn every_protocol_close_code_agrees_with_its_range() {
        for code in CloseCode::ALL {
            let reconnects = !matches!(decide(Some(code.code()), ""), Reconnect::Stop(_));
            assert_eq!(reconnects, code.should_reconnect(), "{code:?}");
        }
    }

    #[test]
    fn retry_after_parsing_tolerates_noise() {
        assert_eq!(
            retry_after("retry_after_ms=250"),
            Some(250 * Duration::from_millis(1))
        );
        assert_eq!(
            retry_after("rate_limited; retry_after_ms=20 more"),
            Some(Duration::from_millis(20))
        );
        assert_eq!(retry_after("retry_after_ms="), None);
        assert_eq!(retry_after("retry_after_ms=-5"), None);
        assert_eq!(retry_after(""), None);
    }
}
