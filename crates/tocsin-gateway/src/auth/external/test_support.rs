//! Helpers shared by the external-verifier tests: test keys, configs and signing.

use jsonwebtoken::{EncodingKey, Header, encode};
use serde_json::{Value, json};

use super::{ExternalJwtConfig, ExternalVerifier};
use crate::auth::{Identity, TokenError};

/// Throw-away RSA key pair (see `auth/testdata/README.md`).
pub(super) const RSA_PRIVATE: &str = include_str!("../testdata/rsa_private.pem");
/// Public half of [`RSA_PRIVATE`].
pub(super) const RSA_PUBLIC: &str = include_str!("../testdata/rsa_public.pem");
/// Throw-away P-256 key pair.
pub(super) const EC_PRIVATE: &str = include_str!("../testdata/ec_private.pem");
/// Public half of [`EC_PRIVATE`].
pub(super) const EC_PUBLIC: &str = include_str!("../testdata/ec_public.pem");
/// HS256 secret shared with the pretend external app.
pub(super) const SHARED_SECRET: &str = "external-app-secret-32-bytes-min";
/// Issuer every test config expects.
pub(super) const ISSUER: &str = "https://idp.example";

/// A verifier for `ISSUER` / audience "tocsin" plus the given config.toml lines.
pub(super) fn verifier(extra: &str) -> ExternalVerifier {
    let config: ExternalJwtConfig = toml::from_str(&format!(
        "issuer = \"{ISSUER}\"\naudience = \"tocsin\"\n{extra}"
    ))
    .expect("config parses");
    ExternalVerifier::new(config).expect("config is valid")
}

/// Valid claims expiring in five minutes, with `overrides` merged in (null removes).
pub(super) fn claims(overrides: Value) -> Value {
    let mut claims = json!({
        "sub": "ext-user-7",
        "tenant": "acme",
        "email": "ext@acme.test",
        "iss": ISSUER,
        "aud": "tocsin",
        "exp": chrono::Utc::now().timestamp() + 300,
    });
    if let (Some(claims), Value::Object(overrides)) = (claims.as_object_mut(), overrides) {
        for (name, value) in overrides {
            if value.is_null() {
                claims.remove(&name);
            } else {
                claims.insert(name, value);
            }
        }
    }
    claims
}

/// Signs `claims` with `header` and `key`.
pub(super) fn sign(header: &Header, claims: &Value, key: &EncodingKey) -> String {
    encode(header, claims, key).expect("sign")
}

/// The RSA signing key.
pub(super) fn rsa_key() -> EncodingKey {
    EncodingKey::from_rsa_pem(RSA_PRIVATE.as_bytes()).expect("test RSA key")
}

/// The reason of an `Invalid`, failing the test on anything else.
pub(super) fn invalid_reason(result: Result<Identity, TokenError>) -> String {
    match result {
        Err(TokenError::Invalid(reason)) => reason,
        other => panic!("expected Invalid, got {other:?}"),
    }
}
