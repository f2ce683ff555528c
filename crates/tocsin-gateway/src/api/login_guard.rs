//! Throttling of `POST /v1/auth/login`, checked before any password is: per source
//! address, per (account, source) failures, per account.
//!
//! - **Per source** (`login.per_ip_*`): every attempt from one address, whatever the
//!   account. The source is the TCP peer (see `listener.rs`); `X-Forwarded-For` is
//!   deliberately not read, since any client can write it: behind a reverse proxy
//!   every login shares the proxy's address until a trusted-proxy setting exists.
//!   IPv6 addresses count per /64, the block one host usually gets.
//! - **Failures** ([`failures`]): delays after repeated failures, keyed by account
//!   *and* source, so an attacker slows down only the attacker's own address.
//! - **Per account** (`login.per_account_*`): every attempt on one email, from
//!   wherever, against guessing spread over many addresses. A source that signed in
//!   to the account recently is exempt, so such a flood cannot lock the owner out
//!   either.
//!
//! Unknown emails are throttled exactly like known ones: the answers must not tell
//! which emails have accounts.

mod failures;

use std::net::{IpAddr, SocketAddr};
use std::num::NonZeroU32;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use governor::clock::{Clock, DefaultClock};
use governor::{DefaultKeyedRateLimiter, Quota, RateLimiter};
use sha2::{Digest, Sha256};

use crate::config::LoginConfig;
use crate::error::AppError;
use failures::{Failures, Policy, Verdict};

/// The guard prunes its tables every this many attempts, so their memory follows
/// the attempts of the last minutes, not of the gateway's whole life.
const PRUNE_EVERY: u64 = 1024;
/// The longest email shown in a log line (attacker-chosen text).
const MAX_LOGGED_EMAIL: usize = 254;

/// An account as the guard knows it: the SHA-256 of its normalised email, so a
/// megabyte of "email" costs 32 bytes in the tables.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct AccountKey([u8; 32]);

/// One login attempt: for which account, from where.
#[derive(Debug, Clone)]
pub struct Attempt {
    account: AccountKey,
    source: IpAddr,
    /// The normalised email, shortened, for log lines.
    email: String,
}

impl Attempt {
    /// The attempt to sign in as `email` from `peer`.
    pub fn new(email: &str, peer: SocketAddr) -> Attempt {
        // The spelling the store compares (NFC + case folding): `MÅRIE@` and `mårie@`
        // are one account, so they are one account's attempts too.
        let email = crate::email::normalize(email);
        let account = AccountKey(Sha256::digest(email.as_bytes()).into());
        Attempt {
            account,
            source: source_key(peer.ip()),
            email: shorten(email),
        }
    }
}

/// Which limit refused an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Limit {
    Source,
    Failures,
    Account,
}

/// The login limiters. Shared by every request (an `Arc` in `AppState`).
pub struct LoginGuard {
    per_source: DefaultKeyedRateLimiter<IpAddr>,
    per_account: DefaultKeyedRateLimiter<AccountKey>,
    failures: Failures,
    attempts: AtomicU64,
}

impl LoginGuard {
    /// The guard for `[login]`.
    pub fn new(config: &LoginConfig) -> LoginGuard {
        let per_source = Quota::per_second(nonzero(config.per_ip_per_second))
            .allow_burst(nonzero(config.per_ip_burst));
        let per_account = Quota::per_minute(nonzero(config.per_account_per_minute))
            .allow_burst(nonzero(config.per_account_burst));
        LoginGuard {
            per_source: RateLimiter::keyed(per_source),
            per_account: RateLimiter::keyed(per_account),
            failures: Failures::new(Policy {
                free: config.failures_before_delay,
                first_delay: Duration::from_millis(config.failure_delay_ms),
                max_delay: Duration::from_millis(config.max_failure_delay_ms),
            }),
            attempts: AtomicU64::new(0),
        }
    }

    /// Lets an attempt go on to the password check, or refuses it with 429. An
    /// admitted attempt counts as failed until [`LoginGuard::succeeded`] or
    /// [`LoginGuard::not_checked`] says otherwise.
    pub fn admit(&self, attempt: &Attempt) -> Result<(), AppError> {
        if self.attempts.fetch_add(1, Ordering::Relaxed) % PRUNE_EVERY == PRUNE_EVERY - 1 {
            self.prune();
        }
        if let Err(wait) = check(&self.per_source, &attempt.source) {
            return Err(refuse(attempt, Limit::Source, wait));
        }
        let known = match self
            .failures
            .admit(attempt.account, attempt.source, Instant::now())
        {
            Verdict::Allowed { known } => known,
            Verdict::Wait(wait) => return Err(refuse(attempt, Limit::Failures, wait)),
        };
        if !known && let Err(wait) = check(&self.per_account, &attempt.account) {
            self.not_checked(attempt);
            return Err(refuse(attempt, Limit::Account, wait));
        }
        Ok(())
    }

    /// The password was right.
    pub fn succeeded(&self, attempt: &Attempt) {
        self.failures
            .succeeded(attempt.account, attempt.source, Instant::now());
    }

    /// The attempt was admitted but no password was checked.
    pub fn not_checked(&self, attempt: &Attempt) {
        self.failures.not_checked(attempt.account, attempt.source);
    }

    /// Drops limiter state that no longer limits anything. Called every
    /// [`PRUNE_EVERY`] attempts; cheap enough to call from a periodic task too.
    pub fn prune(&self) {
        self.per_source.retain_recent();
        self.per_source.shrink_to_fit();
        self.per_account.retain_recent();
        self.per_account.shrink_to_fit();
        self.failures.prune(Instant::now());
    }
}

/// One cell of a keyed limiter: `Err(wait)` when it is empty.
fn check<K>(limiter: &DefaultKeyedRateLimiter<K>, key: &K) -> Result<(), Duration>
where
    K: Clone + Eq + std::hash::Hash,
{
    limiter
        .check_key(key)
        .map_err(|not_until| not_until.wait_time_from(DefaultClock::default().now()))
}

/// Logs the refusal (never the password) and builds the 429.
fn refuse(attempt: &Attempt, limit: Limit, wait: Duration) -> AppError {
    let retry_after_ms = u64::try_from(wait.as_millis()).unwrap_or(u64::MAX).max(1);
    let message = match limit {
        Limit::Source => {
            "too many login attempts from your address (login.per_ip_per_second); retry after the delay"
        }
        Limit::Failures => {
            "too many failed logins for this account from your address; retry after the delay"
        }
        Limit::Account => {
            "too many login attempts for this account (login.per_account_per_minute); retry after the delay"
        }
    };
    tracing::warn!(
        account = %attempt.email,
        source = %attempt.source,
        limit = ?limit,
        retry_after_ms,
        "login refused by a rate limit"
    );
    AppError::rate_limited(retry_after_ms, message)
}

/// The address limits count by: IPv4 as is (also when mapped into IPv6), IPv6 per
/// /64, since one host usually owns a whole /64 and could otherwise rotate through it.
fn source_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & (u128::MAX << 64)).into()),
        },
    }
}

fn shorten(mut email: String) -> String {
    if email.len() > MAX_LOGGED_EMAIL {
        let mut end = MAX_LOGGED_EMAIL;
        while !email.is_char_boundary(end) {
            end -= 1;
        }
        email.truncate(end);
        email.push('…');
    }
    email
}

fn nonzero(value: u32) -> NonZeroU32 {
    // Validation refuses 0; a stray one still must not panic here.
    NonZeroU32::new(value).unwrap_or(NonZeroU32::MIN)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(ip: &str) -> SocketAddr {
        SocketAddr::new(ip.parse().expect("ip"), 40_000)
    }

    fn guard() -> LoginGuard {
        LoginGuard::new(&LoginConfig::default())
    }

    #[test]
    fn emails_are_one_account_whatever_their_case_and_spaces() {
        let first = Attempt::new(" Marie@Dupont.fr ", peer("192.0.2.1"));
        let second = Attempt::new("marie@dupont.fr", peer("192.0.2.1"));
        assert_eq!(first.account, second.account);
        assert_eq!(first.email, "marie@dupont.fr");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let a = Attempt::new("x", peer("2001:db8:1:2::1"));
        let b = Attempt::new("x", peer("2001:db8:1:2:ffff::9"));
        let c = Attempt::new("x", peer("2001:db8:1:3::1"));
        assert_eq!(a.source, b.source);
        assert_ne!(a.source, c.source);
        let mapped = Attempt::new("x", peer("::ffff:192.0.2.7"));
        assert_eq!(mapped.source, peer("192.0.2.7").ip());
    }

    #[test]
    fn a_long_email_is_shortened_in_logs() {
        let attempt = Attempt::new(&"é".repeat(1000), peer("192.0.2.1"));
        assert!(attempt.email.len() <= MAX_LOGGED_EMAIL + '…'.len_utf8());
    }

    #[test]
    fn one_source_gets_its_burst_then_429() {
        let guard = guard();
        let refused = (0..40)
            .map(|i| Attempt::new(&format!("user{i}@x.example"), peer("192.0.2.1")))
            .filter(|attempt| guard.admit(attempt).is_err())
            .count();
        assert!((19..=21).contains(&refused), "{refused} refused of 40");
        let other = Attempt::new("user0@x.example", peer("192.0.2.2"));
        assert!(guard.admit(&other).is_ok());
    }

    #[test]
    fn failures_from_one_source_do_not_refuse_another() {
        let guard = guard();
        let attacker = Attempt::new("marie@dupont.fr", peer("192.0.2.66"));
        for _ in 0..5 {
            guard.admit(&attacker).expect("five free attempts");
        }
        let refused = guard.admit(&attacker).expect_err("the sixth waits");
        assert_eq!(refused.status, 429);
        assert!(refused.body.retry_after_ms.is_some_and(|ms| ms <= 1000));
        let owner = Attempt::new("marie@dupont.fr", peer("192.0.2.7"));
        guard.admit(&owner).expect("the owner is not delayed");
    }

    #[test]
    fn many_sources_exhaust_the_account_but_not_a_known_source() {
        let guard = guard();
        let owner = Attempt::new("marie@dupont.fr", peer("198.51.100.7"));
        guard.admit(&owner).expect("first sign-in");
        guard.succeeded(&owner);
        let refused = (1..=30)
            .map(|i| Attempt::new("marie@dupont.fr", peer(&format!("192.0.2.{i}"))))
            .filter(|attempt| guard.admit(attempt).is_err())
            .count();
        assert!(refused >= 19, "{refused}: the account's burst is 10");
        guard
            .admit(&owner)
            .expect("a known source skips the account limit");
        let stranger = Attempt::new("marie@dupont.fr", peer("203.0.113.1"));
        assert!(guard.admit(&stranger).is_err());
    }
}
