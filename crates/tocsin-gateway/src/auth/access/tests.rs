//! Tests for the gateway's own access tokens: every way a token can be wrong.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use super::*;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const ISSUER: &str = "tocsin-gateway";

fn tokens() -> AccessTokens {
    AccessTokens::new(SECRET, ISSUER, Duration::from_secs(900))
}

/// Claims as the gateway would issue them, expiring `exp_offset` seconds from now.
fn claims(exp_offset: i64) -> AccessClaims {
    let now = Utc::now().timestamp();
    AccessClaims {
        sub: "user-1".to_owned(),
        tid: "acme".to_owned(),
        sid: "session-1".to_owned(),
        role: "lawyer".to_owned(),
        email: Some("ada@acme.test".to_owned()),
        iat: now,
        exp: now + exp_offset,
        iss: ISSUER.to_owned(),
        aud: ACCESS_AUDIENCE.to_owned(),
    }
}

fn sign(claims: &AccessClaims, algorithm: Algorithm, secret: &[u8]) -> String {
    encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret),
    )
    .expect("sign")
}

fn invalid_reason(result: Result<Identity, TokenError>) -> String {
    match result {
        Err(TokenError::Invalid(reason)) => reason,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn issued_token_round_trips() {
    let tokens = tokens();
    let before = Utc::now();
    let (token, expires_at) = tokens
        .issue(
            "user-1",
            "acme",
            Some("ada@acme.test"),
            "admin",
            "session-1",
        )
        .expect("issue");
    let identity = tokens.verify(&token).expect("verify");
    assert_eq!(
        identity,
        Identity {
            user_id: "user-1".to_owned(),
            tenant: "acme".to_owned(),
            email: Some("ada@acme.test".to_owned()),
            role: "admin".to_owned(),
            session_id: Some("session-1".to_owned()),
            expires_at,
            external: false,
        }
    );
    let lifetime = (expires_at - before).num_seconds();
    assert!((899..=900).contains(&lifetime), "lifetime {lifetime}");
    assert_eq!(tokens.ttl(), Duration::from_secs(900));
}

#[test]
fn expired_token_is_reported_as_expired() {
    // 30 s past expiry: beyond our 5 s leeway but inside jsonwebtoken's default 60 s,
    // so this also proves the leeway was set.
    let token = sign(&claims(-30), Algorithm::HS256, SECRET);
    assert_eq!(tokens().verify(&token), Err(TokenError::Expired));
}

#[test]
fn token_just_past_expiry_is_within_leeway() {
    let token = sign(&claims(-2), Algorithm::HS256, SECRET);
    assert!(tokens().verify(&token).is_ok());
}

#[test]
fn wrong_secret_is_invalid() {
    let token = sign(
        &claims(300),
        Algorithm::HS256,
        b"another-secret-another-secret-!!",
    );
    assert!(invalid_reason(tokens().verify(&token)).contains("signature"));
}

#[test]
fn alg_none_is_invalid() {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none","typ":"JWT"}"#);
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims(300)).expect("json"));
    let token = format!("{header}.{payload}.");
    assert!(invalid_reason(tokens().verify(&token)).contains("`none`"));
}

#[test]
fn hs384_is_invalid() {
    let token = sign(&claims(300), Algorithm::HS384, SECRET);
    assert!(invalid_reason(tokens().verify(&token)).contains("HS384"));
}

#[test]
fn wrong_audience_is_invalid() {
    let mut claims = claims(300);
    claims.aud = "someone-else".to_owned();
    let token = sign(&claims, Algorithm::HS256, SECRET);
    assert!(invalid_reason(tokens().verify(&token)).contains("`aud`"));
}

#[test]
fn wrong_issuer_is_invalid() {
    let mut claims = claims(300);
    claims.iss = "another-gateway".to_owned();
    let token = sign(&claims, Algorithm::HS256, SECRET);
    assert!(invalid_reason(tokens().verify(&token)).contains("`iss`"));
}

#[test]
fn tampered_payload_is_invalid() {
    let token = sign(&claims(300), Algorithm::HS256, SECRET);
    let segments: Vec<&str> = token.split('.').collect();
    let mut forged = claims(300);
    forged.tid = "victim-tenant".to_owned();
    let payload = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&forged).expect("json"));
    let tampered = format!("{}.{payload}.{}", segments[0], segments[2]);
    assert!(invalid_reason(tokens().verify(&tampered)).contains("signature"));
}

#[test]
fn oversized_token_is_too_large() {
    let token = "x".repeat(crate::auth::MAX_TOKEN_BYTES + 1);
    assert_eq!(tokens().verify(&token), Err(TokenError::TooLarge));
}
