//! Failed logins per account and source address, and the delay they earn.
//!
//! Keyed by (account, source) rather than by account alone, so that an attacker's
//! guesses slow down the attacker's address only: the account's owner, signing in
//! from another address, is not locked out. A success resets the count and marks
//! the source as known for the account (see [`Verdict::Allowed`]).
//!
//! Attempts are counted as failures when admitted, before their password is checked,
//! and forgiven on success: counting only finished failures would let a burst of
//! concurrent guesses all pass while the count still reads zero.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::AccountKey;

/// Entries kept at most (about 100 bytes each): a flood of made-up emails from many
/// addresses must not grow the table without bound.
const MAX_ENTRIES: usize = 100_000;
/// How long a source that signed in to an account stays known for it.
const KNOWN_FOR: Duration = Duration::from_secs(30 * 24 * 3600);
/// Failures are forgotten this long after the last attempt (or twice the longest
/// delay, if that is longer), so a mistyped password last week costs nothing today.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

/// When delays start and how they grow.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Attempts in a row allowed without delay.
    pub free: u32,
    /// The first delay; each next one doubles.
    pub first_delay: Duration,
    /// The longest delay.
    pub max_delay: Duration,
}

/// What [`Failures::admit`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The attempt may go on (and is counted). `known`: this source signed in to
    /// this account recently, so the per-account limit does not apply to it.
    Allowed {
        /// The source signed in to the account within [`KNOWN_FOR`].
        known: bool,
    },
    /// Too many failures in a row: wait this long.
    Wait(Duration),
}

type Key = (AccountKey, IpAddr);

#[derive(Debug, Clone, Copy)]
struct Entry {
    /// Attempts since the last success (each counted when admitted).
    attempts: u32,
    /// When the last one was admitted.
    last: Instant,
    /// Until when the source is known for the account.
    known_until: Option<Instant>,
}

/// The table of (account, source) → recent attempts.
#[derive(Debug)]
pub struct Failures {
    entries: Mutex<HashMap<Key, Entry>>,
    policy: Policy,
}

impl Failures {
    /// An empty table.
    pub fn new(policy: Policy) -> Failures {
        Failures {
            entries: Mutex::new(HashMap::new()),
            policy,
        }
    }

    /// Admits (and counts) an attempt, or says how long to wait.
    pub fn admit(&self, account: AccountKey, source: IpAddr, now: Instant) -> Verdict {
        let mut entries = self.lock();
        if !entries.contains_key(&(account, source)) && entries.len() >= MAX_ENTRIES {
            self.make_room(&mut entries, now);
        }
        let entry = entries.entry((account, source)).or_insert(Entry {
            attempts: 0,
            last: now,
            known_until: None,
        });
        if let Some(until) = self.delayed_until(entry)
            && until > now
        {
            return Verdict::Wait(until - now);
        }
        entry.attempts = entry.attempts.saturating_add(1);
        entry.last = now;
        Verdict::Allowed {
            known: entry.known_until.is_some_and(|until| until > now),
        }
    }

    /// The password was right: forgive the count, remember the source.
    pub fn succeeded(&self, account: AccountKey, source: IpAddr, now: Instant) {
        if let Some(entry) = self.lock().get_mut(&(account, source)) {
            entry.attempts = 0;
            entry.known_until = Some(now + KNOWN_FOR);
        }
    }

    /// The attempt was admitted but its password never checked (gate busy, another
    /// limit refused it, an internal error): it does not count.
    pub fn not_checked(&self, account: AccountKey, source: IpAddr) {
        if let Some(entry) = self.lock().get_mut(&(account, source)) {
            entry.attempts = entry.attempts.saturating_sub(1);
        }
    }

    /// Forgets what no longer matters.
    pub fn prune(&self, now: Instant) {
        self.forget_stale(&mut self.lock(), now);
    }

    /// Entries held.
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// When the next attempt may be admitted, if it must wait at all.
    fn delayed_until(&self, entry: &Entry) -> Option<Instant> {
        let beyond = entry.attempts.checked_sub(self.policy.free)?;
        // 2^beyond, without overflowing: past 2^31 any sane delay is capped anyway.
        let factor = 1_u32.checked_shl(beyond.min(31)).unwrap_or(u32::MAX);
        let delay = self
            .policy
            .first_delay
            .saturating_mul(factor)
            .min(self.policy.max_delay);
        Some(entry.last + delay)
    }

    /// Drops entries neither known nor recently failing.
    fn forget_stale(&self, entries: &mut HashMap<Key, Entry>, now: Instant) {
        let forget_after = FORGET_AFTER.max(self.policy.max_delay.saturating_mul(2));
        entries.retain(|_, entry| {
            let known = entry.known_until.is_some_and(|until| until > now);
            known || (entry.attempts > 0 && now.duration_since(entry.last) < forget_after)
        });
    }

    /// Full: forget what no longer matters, then (under a flood) the tenth of entries
    /// idle longest, sources unknown to their account first. Known sources come from
    /// successful sign-ins, which a flood cannot make up.
    fn make_room(&self, entries: &mut HashMap<Key, Entry>, now: Instant) {
        self.forget_stale(entries, now);
        if entries.len() < MAX_ENTRIES {
            return;
        }
        let mut order: Vec<(bool, Instant, Key)> = entries
            .iter()
            .map(|(key, entry)| (entry.known_until.is_some(), entry.last, *key))
            .collect();
        let evict = MAX_ENTRIES / 10;
        order.select_nth_unstable_by_key(evict, |(known, last, _)| (*known, *last));
        for (_, _, key) in &order[..evict] {
            entries.remove(key);
        }
        tracing::warn!(
            evicted = evict,
            "the login failure table is full (a flood of logins from many addresses?); \
             forgot the entries idle longest"
        );
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Entry>> {
        // A panic while holding this lock leaves a consistent map: keep serving.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    fn table() -> Failures {
        Failures::new(Policy {
            free: 5,
            first_delay: SECOND,
            max_delay: Duration::from_secs(300),
        })
    }

    fn ip(last: u8) -> IpAddr {
        IpAddr::V4(Ipv4Addr::new(192, 0, 2, last))
    }

    const MARIE: AccountKey = AccountKey([1; 32]);
    const UNKNOWN: Verdict = Verdict::Allowed { known: false };

    #[test]
    fn five_free_attempts_then_doubling_delays() {
        let (table, t0) = (table(), Instant::now());
        for _ in 0..5 {
            assert_eq!(table.admit(MARIE, ip(1), t0), UNKNOWN);
        }
        assert_eq!(table.admit(MARIE, ip(1), t0), Verdict::Wait(SECOND));
        assert_eq!(table.admit(MARIE, ip(1), t0 + SECOND), UNKNOWN);
        assert_eq!(
            table.admit(MARIE, ip(1), t0 + 2 * SECOND),
            Verdict::Wait(SECOND)
        );
        assert_eq!(table.admit(MARIE, ip(1), t0 + 3 * SECOND), UNKNOWN);
        assert_eq!(
            table.admit(MARIE, ip(1), t0 + 3 * SECOND),
            Verdict::Wait(4 * SECOND)
        );
    }

    #[test]
    fn delays_are_capped() {
        let (table, mut now) = (table(), Instant::now());
        for _ in 0..60 {
            now += Duration::from_secs(301);
            assert_eq!(table.admit(MARIE, ip(1), now), UNKNOWN);
        }
        assert_eq!(
            table.admit(MARIE, ip(1), now),
            Verdict::Wait(Duration::from_secs(300))
        );
    }

    #[test]
    fn another_source_is_not_delayed_and_a_success_makes_it_known() {
        let (table, t0) = (table(), Instant::now());
        for _ in 0..6 {
            table.admit(MARIE, ip(66), t0);
        }
        assert!(matches!(table.admit(MARIE, ip(66), t0), Verdict::Wait(_)));
        assert_eq!(table.admit(MARIE, ip(7), t0), UNKNOWN);
        table.succeeded(MARIE, ip(7), t0);
        assert_eq!(
            table.admit(MARIE, ip(7), t0),
            Verdict::Allowed { known: true }
        );
        assert!(matches!(table.admit(MARIE, ip(66), t0), Verdict::Wait(_)));
    }

    #[test]
    fn a_success_forgives_and_an_unchecked_attempt_does_not_count() {
        let (table, t0) = (table(), Instant::now());
        for _ in 0..5 {
            table.admit(MARIE, ip(1), t0);
        }
        table.not_checked(MARIE, ip(1));
        assert_eq!(table.admit(MARIE, ip(1), t0), UNKNOWN, "the 5th again");
        assert!(matches!(table.admit(MARIE, ip(1), t0), Verdict::Wait(_)));
        table.succeeded(MARIE, ip(1), t0);
        for _ in 0..5 {
            assert!(matches!(
                table.admit(MARIE, ip(1), t0),
                Verdict::Allowed { .. }
            ));
        }
    }

    #[test]
    fn pruning_forgets_old_failures_but_keeps_known_sources() {
        let (table, t0) = (table(), Instant::now());
        table.admit(MARIE, ip(1), t0);
        table.admit(MARIE, ip(2), t0);
        table.succeeded(MARIE, ip(2), t0);
        table.prune(t0 + Duration::from_secs(60));
        assert_eq!(table.len(), 2);
        table.prune(t0 + FORGET_AFTER);
        assert_eq!(table.len(), 1, "the known source stays");
        table.prune(t0 + KNOWN_FOR);
        assert_eq!(table.len(), 0);
    }

    #[test]
    fn a_full_table_forgets_strangers_idle_longest_but_keeps_known_sources() {
        let (table, t0) = (table(), Instant::now());
        table.admit(MARIE, ip(7), t0);
        table.succeeded(MARIE, ip(7), t0);
        for i in 1..MAX_ENTRIES {
            let mut key = [0; 32];
            key[..8].copy_from_slice(&(i as u64).to_le_bytes());
            table.admit(
                AccountKey(key),
                ip(66),
                t0 + Duration::from_millis(i as u64),
            );
        }
        assert_eq!(table.len(), MAX_ENTRIES);
        let later = t0 + Duration::from_secs(200);
        table.admit(AccountKey([9; 32]), ip(66), later);
        assert_eq!(table.len(), MAX_ENTRIES - MAX_ENTRIES / 10 + 1);
        assert_eq!(
            table.admit(MARIE, ip(7), later),
            Verdict::Allowed { known: true }
        );
    }
}
