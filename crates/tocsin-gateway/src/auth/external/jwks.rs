//! A cache of an identity provider's signing keys, fetched from its JWKS URL.
//!
//! Keys are looked up by `kid`. An unknown `kid` (the provider rotated its keys)
//! triggers a refetch, but at most one per [`REFETCH_INTERVAL`], so a stream of tokens
//! with made-up `kid`s cannot make the gateway hammer the provider. Keys older than
//! [`MAX_KEY_AGE`] are refetched too, so a key the provider withdrew stops working.

use std::collections::HashMap;
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use jsonwebtoken::jwk::{AlgorithmParameters, EllipticCurve, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;

use crate::auth::TokenError;

/// Minimum time between two fetches, whatever the tokens say.
const REFETCH_INTERVAL: Duration = Duration::from_secs(60);
/// Age after which the key set is refreshed on next use (when the provider answers).
const MAX_KEY_AGE: Duration = Duration::from_secs(3600);
/// A provider that does not answer within this time is treated as down.
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);
/// Largest key set accepted; real ones are a few KiB.
const MAX_JWKS_BYTES: usize = 256 * 1024;

/// The keys currently trusted, and when they were fetched.
#[derive(Default)]
struct KeySet {
    /// Usable keys by `kid`: only those of the pinned algorithm's type.
    keys: HashMap<String, DecodingKey>,
    /// When `keys` was last replaced by a successful fetch.
    fetched_at: Option<Instant>,
}

/// The JWKS document; keys stay raw JSON so one key of an unknown type does not make
/// the whole set unreadable.
#[derive(Deserialize)]
struct JwksDocument {
    /// The keys, parsed one by one.
    keys: Vec<serde_json::Value>,
}

/// Fetches and caches the signing keys published at a JWKS URL.
pub(crate) struct JwksCache {
    /// Where the provider publishes its keys.
    url: reqwest::Url,
    /// HTTP client with [`FETCH_TIMEOUT`].
    client: reqwest::Client,
    /// The pinned algorithm; keys of other types are ignored.
    algorithm: Algorithm,
    /// std Mutex, not tokio's: held only to read or replace the map, never across an
    /// await.
    keys: Mutex<KeySet>,
    /// When a fetch was last attempted (successful or not). A tokio Mutex held across
    /// the fetch, so concurrent misses wait for one request instead of each sending
    /// their own.
    last_attempt: tokio::sync::Mutex<Option<Instant>>,
}

impl JwksCache {
    /// Creates an empty cache; the first token triggers the first fetch.
    pub(crate) fn new(url: reqwest::Url, algorithm: Algorithm) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .build()
            .map_err(|error| format!("could not create the JWKS HTTP client: {error}"))?;
        Ok(Self {
            url,
            client,
            algorithm,
            keys: Mutex::new(KeySet::default()),
            last_attempt: tokio::sync::Mutex::new(None),
        })
    }

    /// The key named `kid`, fetching the key set if it is unknown or stale and the
    /// last fetch attempt is older than [`REFETCH_INTERVAL`].
    pub(crate) async fn key_for(&self, kid: Option<&str>) -> Result<DecodingKey, TokenError> {
        let Some(kid) = kid else {
            return Err(TokenError::invalid(
                "the header has no `kid`; this issuer's tokens must name their signing key",
            ));
        };
        if let (Some(key), true) = self.lookup(kid) {
            return Ok(key);
        }
        let mut last_attempt = self.last_attempt.lock().await;
        // Another task may have refreshed the set while this one waited for the lock.
        let (cached, fresh) = self.lookup(kid);
        if fresh && let Some(key) = &cached {
            return Ok(key.clone());
        }
        if last_attempt.is_some_and(|at| at.elapsed() < REFETCH_INTERVAL) {
            return cached.ok_or_else(|| unknown_kid(kid));
        }
        *last_attempt = Some(Instant::now());
        match self.fetch().await {
            Ok(keys) => self.replace(keys),
            Err(reason) => {
                tracing::warn!(url = %self.url, %reason, "could not fetch the external JWKS");
                // A stale key beats refusing every user while the provider is down.
                return cached.ok_or_else(|| {
                    TokenError::Invalid(format!(
                        "the signing key `{kid}` is unknown and the identity provider's key \
                         set could not be fetched; retry later"
                    ))
                });
            }
        }
        drop(last_attempt);
        self.lookup(kid).0.ok_or_else(|| unknown_kid(kid))
    }

    /// The cached key for `kid`, and whether the set is fresh.
    fn lookup(&self, kid: &str) -> (Option<DecodingKey>, bool) {
        let set = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        let fresh = set.fetched_at.is_some_and(|at| at.elapsed() < MAX_KEY_AGE);
        (set.keys.get(kid).cloned(), fresh)
    }

    /// Replaces the whole set: keys the provider withdrew are dropped.
    fn replace(&self, keys: HashMap<String, DecodingKey>) {
        if keys.is_empty() {
            tracing::warn!(url = %self.url, algorithm = ?self.algorithm,
                "the external JWKS has no usable key with a kid for the configured algorithm");
        }
        let mut set = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        *set = KeySet {
            keys,
            fetched_at: Some(Instant::now()),
        };
    }

    /// Downloads the key set (bounded in time and size) and keeps the usable keys.
    async fn fetch(&self) -> Result<HashMap<String, DecodingKey>, String> {
        let mut response = self
            .client
            .get(self.url.clone())
            .send()
            .await
            .and_then(reqwest::Response::error_for_status)
            .map_err(|error| error.to_string())?;
        let mut body = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|error| error.to_string())? {
            if body.len() + chunk.len() > MAX_JWKS_BYTES {
                return Err(format!("the key set is larger than {MAX_JWKS_BYTES} bytes"));
            }
            body.extend_from_slice(&chunk);
        }
        let document: JwksDocument = serde_json::from_slice(&body)
            .map_err(|error| format!("the key set is not a JWKS document: {error}"))?;
        Ok(usable_keys(document.keys, self.algorithm))
    }

    /// Test hook: pretends the last fetch attempt and the key set are `by` older.
    #[cfg(test)]
    pub(crate) async fn age(&self, by: Duration) {
        let older = |at: Instant| at.checked_sub(by).unwrap_or(at);
        let mut last_attempt = self.last_attempt.lock().await;
        *last_attempt = last_attempt.map(older);
        let mut set = self.keys.lock().unwrap_or_else(PoisonError::into_inner);
        set.fetched_at = set.fetched_at.map(older);
    }
}

/// The refusal for a `kid` the provider does not publish.
fn unknown_kid(kid: &str) -> TokenError {
    TokenError::Invalid(format!(
        "no signing key `{kid}` of the configured type is published by the identity provider"
    ))
}

/// Keeps the keys that have a `kid`, are meant for signatures, and fit the pinned
/// algorithm (RSA for RS256, P-256 for ES256).
fn usable_keys(raw: Vec<serde_json::Value>, algorithm: Algorithm) -> HashMap<String, DecodingKey> {
    raw.into_iter()
        .filter_map(|value| serde_json::from_value::<Jwk>(value).ok())
        .filter(|jwk| fits(jwk, algorithm))
        .filter_map(|jwk| {
            let kid = jwk.common.key_id.clone()?;
            DecodingKey::from_jwk(&jwk).ok().map(|key| (kid, key))
        })
        .collect()
}

/// Whether a JWK may verify tokens signed with `algorithm`.
fn fits(jwk: &Jwk, algorithm: Algorithm) -> bool {
    let for_signing = jwk
        .common
        .public_key_use
        .as_ref()
        .is_none_or(|usage| *usage == PublicKeyUse::Signature);
    let declared = jwk.common.key_algorithm;
    let key_type_fits = match (algorithm, &jwk.algorithm) {
        (Algorithm::RS256, AlgorithmParameters::RSA(_)) => {
            declared.is_none_or(|alg| alg == KeyAlgorithm::RS256)
        }
        (Algorithm::ES256, AlgorithmParameters::EllipticCurve(params)) => {
            params.curve == EllipticCurve::P256
                && declared.is_none_or(|alg| alg == KeyAlgorithm::ES256)
        }
        _ => false,
    };
    for_signing && key_type_fits
}
