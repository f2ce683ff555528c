//! Tests for JWKS verification against a real HTTP server on 127.0.0.1: caching by
//! `kid`, the once-per-minute refetch on unknown keys, rotation and withdrawal.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::routing::get;
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, Header};
use serde_json::{Value, json};

use super::ExternalVerifier;
use super::test_support::*;
use crate::auth::{Identity, TokenError};

/// What the pretend identity provider serves, and how often it was asked.
#[derive(Clone, Default)]
struct Provider {
    /// The JWKS document currently published.
    jwks: Arc<Mutex<String>>,
    /// Number of JWKS requests served.
    hits: Arc<AtomicUsize>,
}

impl Provider {
    fn publish(&self, keys: &[Value]) {
        let document = json!({ "keys": keys }).to_string();
        *self.jwks.lock().expect("lock") = document;
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::SeqCst)
    }
}

async fn serve_jwks(
    State(provider): State<Provider>,
) -> ([(&'static str, &'static str); 1], String) {
    provider.hits.fetch_add(1, Ordering::SeqCst);
    let body = provider.jwks.lock().expect("lock").clone();
    ([("content-type", "application/json")], body)
}

/// Starts the provider on an ephemeral port and returns it with an RS256 verifier
/// pointed at it.
async fn start(keys: &[Value]) -> (Provider, ExternalVerifier) {
    let provider = Provider::default();
    provider.publish(keys);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let address = listener.local_addr().expect("address");
    let app = Router::new()
        .route("/jwks", get(serve_jwks))
        .with_state(provider.clone());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let verifier = verifier(&format!(
        "algorithm = \"RS256\"\njwks_url = \"http://{address}/jwks\""
    ));
    (provider, verifier)
}

/// The test RSA public key as a JWK named `kid`.
fn rsa_jwk(kid: &str) -> Value {
    let mut jwk = Jwk::from_encoding_key(&rsa_key(), Algorithm::RS256).expect("jwk");
    jwk.common.key_id = Some(kid.to_owned());
    serde_json::to_value(jwk).expect("json")
}

/// A valid RS256 token naming `kid` (or none).
fn token(kid: Option<&str>) -> String {
    let mut header = Header::new(Algorithm::RS256);
    header.kid = kid.map(str::to_owned);
    sign(&header, &claims(json!({})), &rsa_key())
}

/// Verifies with a deadline, so a hung fetch fails the test instead of hanging it.
async fn verify(verifier: &ExternalVerifier, token: &str) -> Result<Identity, TokenError> {
    tokio::time::timeout(Duration::from_secs(10), verifier.verify(token))
        .await
        .expect("verification finished in time")
}

/// Pretends `secs` seconds passed for the cache's clocks.
async fn age(verifier: &ExternalVerifier, secs: u64) {
    verifier
        .jwks()
        .expect("JWKS verifier")
        .age(Duration::from_secs(secs))
        .await;
}

#[tokio::test]
async fn key_is_fetched_once_then_cached() {
    let (provider, verifier) = start(&[rsa_jwk("k1")]).await;
    for _ in 0..3 {
        assert!(verify(&verifier, &token(Some("k1"))).await.is_ok());
    }
    assert_eq!(provider.hits(), 1);
}

#[tokio::test]
async fn unknown_kid_refetches_at_most_once_per_interval() {
    let (provider, verifier) = start(&[rsa_jwk("k1")]).await;
    assert!(verify(&verifier, &token(Some("k1"))).await.is_ok());
    assert_eq!(provider.hits(), 1);

    // Fetched less than a minute ago: an unknown kid does not refetch.
    let reason = invalid_reason(verify(&verifier, &token(Some("k2"))).await);
    assert!(reason.contains("`k2`"), "{reason}");
    assert_eq!(provider.hits(), 1);

    // A minute later, a burst of unknown kids costs exactly one request.
    age(&verifier, 61).await;
    let burst = (0..8).map(|_| {
        let token = token(Some("k2"));
        let verifier = &verifier;
        async move { verify(verifier, &token).await }
    });
    for result in futures_util::future::join_all(burst).await {
        assert!(matches!(result, Err(TokenError::Invalid(_))));
    }
    assert_eq!(provider.hits(), 2);

    // The provider rotates in k2; once the interval has passed it is picked up.
    provider.publish(&[rsa_jwk("k1"), rsa_jwk("k2")]);
    age(&verifier, 61).await;
    assert!(verify(&verifier, &token(Some("k2"))).await.is_ok());
    assert_eq!(provider.hits(), 3);
}

#[tokio::test]
async fn withdrawn_key_stops_working_once_the_set_is_stale() {
    let (provider, verifier) = start(&[rsa_jwk("k1")]).await;
    assert!(verify(&verifier, &token(Some("k1"))).await.is_ok());
    provider.publish(&[rsa_jwk("k2")]);
    age(&verifier, 3601).await;
    assert!(invalid_reason(verify(&verifier, &token(Some("k1"))).await).contains("`k1`"));
    assert_eq!(provider.hits(), 2);
}

#[tokio::test]
async fn token_without_kid_is_invalid() {
    let (provider, verifier) = start(&[rsa_jwk("k1")]).await;
    assert!(invalid_reason(verify(&verifier, &token(None)).await).contains("`kid`"));
    assert_eq!(provider.hits(), 0);
}

#[tokio::test]
async fn keys_of_another_type_are_ignored() {
    // An HMAC key published under "shared" must never verify an RS256 token, and an
    // unparseable key must not make the rest of the set unusable.
    let oct = json!({"kty": "oct", "kid": "shared", "k": "c2VjcmV0"});
    let junk = json!({"kty": "unknown", "kid": "junk"});
    let (_provider, verifier) = start(&[oct, junk, rsa_jwk("k1")]).await;
    assert!(invalid_reason(verify(&verifier, &token(Some("shared"))).await).contains("`shared`"));
    assert!(verify(&verifier, &token(Some("k1"))).await.is_ok());
}

#[tokio::test]
async fn unreachable_provider_is_reported() {
    // Bind then drop a listener to get a port nothing listens on.
    let address = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("free port");
    let verifier = verifier(&format!(
        "algorithm = \"RS256\"\njwks_url = \"http://{address}/jwks\""
    ));
    let reason = invalid_reason(verify(&verifier, &token(Some("k1"))).await);
    assert!(reason.contains("could not be fetched"), "{reason}");
}
