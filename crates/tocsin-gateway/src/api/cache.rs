//! Short-lived in-memory copies of what every publish looks up: the API key's record
//! and the target user.
//!
//! Without them each `POST /v1/publish` made two SQLite reads on the blocking pool
//! before reaching the writer: two thread hand-offs per request, which on a one-core
//! gateway cost more than the rest of the publish (profiled in docs/BENCHMARKS.md).
//! Only rows that exist are cached, never an absence, so a key or user created a moment
//! ago works at once. The price is staleness bounded by [`LOOKUP_TTL`]: a key revoked
//! with `tocsin-gateway key revoke` (another process, which cannot tell this one) is
//! refused within that time, not instantly (docs/PROTOCOL.md §3.4).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::store::{ApiKey, User};

/// How long a looked-up row is trusted: the longest a revoked key keeps working.
pub const LOOKUP_TTL: Duration = Duration::from_secs(5);
/// Entries per cache before expired ones are swept (and, if none were, all dropped):
/// bounds memory when many distinct ids are published to.
const MAX_ENTRIES: usize = 100_000;

/// The caches of the publish path.
pub struct Lookups {
    /// API keys by key id.
    pub keys: TtlCache<ApiKey>,
    /// Publish targets (`user:<id or email>`) by firm and what the publisher wrote.
    pub users: TtlCache<User>,
}

impl Lookups {
    /// Empty caches with the gateway's TTL.
    pub fn new() -> Lookups {
        Lookups {
            keys: TtlCache::new(LOOKUP_TTL),
            users: TtlCache::new(LOOKUP_TTL),
        }
    }
}

impl Default for Lookups {
    fn default() -> Self {
        Lookups::new()
    }
}

/// A map whose entries expire `ttl` after they were inserted. A std mutex: it is held
/// only to look up, clone or insert, never across an `.await`.
pub struct TtlCache<V> {
    ttl: Duration,
    entries: Mutex<HashMap<String, (Instant, V)>>,
}

impl<V: Clone> TtlCache<V> {
    /// An empty cache.
    pub fn new(ttl: Duration) -> TtlCache<V> {
        TtlCache {
            ttl,
            entries: Mutex::new(HashMap::new()),
        }
    }

    /// The value stored under `key`, unless it is older than the TTL.
    pub fn get(&self, key: &str) -> Option<V> {
        self.get_at(key, Instant::now())
    }

    /// [`TtlCache::get`] as seen at `now`.
    pub fn get_at(&self, key: &str, now: Instant) -> Option<V> {
        let entries = self.lock();
        let (at, value) = entries.get(key)?;
        (now.saturating_duration_since(*at) < self.ttl).then(|| value.clone())
    }

    /// Stores `value` under `key`, fresh from now.
    pub fn insert(&self, key: &str, value: V) {
        self.insert_at(key, value, Instant::now());
    }

    /// [`TtlCache::insert`] as of `now`.
    pub fn insert_at(&self, key: &str, value: V, now: Instant) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES && !entries.contains_key(key) {
            let ttl = self.ttl;
            entries.retain(|_, (at, _)| now.saturating_duration_since(*at) < ttl);
            if entries.len() >= MAX_ENTRIES {
                entries.clear();
            }
        }
        entries.insert(key.to_owned(), (now, value));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (Instant, V)>> {
        // A panic while holding the lock leaves a map that is still a valid cache.
        self.entries
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_entry_expires_after_the_ttl() {
        let cache = TtlCache::new(Duration::from_secs(5));
        let start = Instant::now();
        cache.insert_at("k", 1, start);
        assert_eq!(cache.get_at("k", start + Duration::from_secs(4)), Some(1));
        assert_eq!(cache.get_at("k", start + Duration::from_secs(5)), None);
        assert_eq!(cache.get_at("other", start), None);
    }

    #[test]
    fn a_full_cache_sweeps_expired_entries_first() {
        let cache = TtlCache::new(Duration::from_secs(5));
        let start = Instant::now();
        for i in 0..MAX_ENTRIES {
            cache.insert_at(&i.to_string(), i, start);
        }
        let later = start + Duration::from_secs(10);
        cache.insert_at("fresh", 7, later);
        assert_eq!(cache.get_at("fresh", later), Some(7));
        assert_eq!(cache.lock().len(), 1, "expired entries were swept");
    }
}
