//! Minting external-app JWTs, good and deliberately bad, for the `[auth.external]` tests.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey};
use serde_json::{Value, json};

pub use tocsin_harness::tokens::claims;

/// Signs `claims` with `secret` using a real HMAC algorithm (HS256, HS384, HS512).
pub fn sign(claims: &Value, secret: &str, algorithm: Algorithm) -> String {
    tocsin_harness::tokens::sign(claims, secret, algorithm).unwrap_or_else(|err| panic!("{err:?}"))
}

/// A token whose header says `header_alg` but whose signature is HS256 with `secret`:
/// only the algorithm is wrong.
pub fn with_header_alg(claims: &Value, secret: &str, header_alg: &str) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": header_alg, "typ": "JWT"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    let message = format!("{header}.{payload}");
    let signature = jsonwebtoken::crypto::sign(
        message.as_bytes(),
        &EncodingKey::from_secret(secret.as_bytes()),
        Algorithm::HS256,
    )
    .expect("HS256 signs");
    format!("{message}.{signature}")
}

/// An unsigned `alg: none` token.
pub fn unsigned(claims: &Value) -> String {
    let header = URL_SAFE_NO_PAD.encode(json!({"alg": "none", "typ": "JWT"}).to_string());
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.")
}

/// `token` with its payload replaced by `claims`, keeping the old signature.
pub fn tampered(token: &str, claims: &Value) -> String {
    let mut parts = token.split('.');
    let header = parts.next().expect("a JWT has a header");
    let _payload = parts.next().expect("a JWT has a payload");
    let signature = parts.next().expect("a JWT has a signature");
    let payload = URL_SAFE_NO_PAD.encode(claims.to_string());
    format!("{header}.{payload}.{signature}")
}
