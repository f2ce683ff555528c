//! External-app JWTs minted as a firm's identity provider would (`[auth.external]`,
//! HS256 and its siblings): the benchmark signs 10k users in without argon2 logins,
//! the end-to-end tests check the gateway's verification.

use anyhow::{Context, Result};
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::{Value, json};

/// The claims of a well-formed external token for `user` of `tenant`, valid for an hour.
pub fn claims(user: &str, tenant: &str, issuer: &str, audience: &str) -> Value {
    let now = chrono::Utc::now().timestamp();
    json!({
        "sub": user,
        "tenant": tenant,
        "iss": issuer,
        "aud": audience,
        "iat": now,
        "exp": now + 3600,
    })
}

/// Signs `claims` with `secret` using a real HMAC algorithm (HS256, HS384, HS512).
pub fn sign(claims: &Value, secret: &str, algorithm: Algorithm) -> Result<String> {
    jsonwebtoken::encode(
        &Header::new(algorithm),
        claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .with_context(|| format!("cannot sign a {algorithm:?} JWT (an HMAC algorithm is needed)"))
}
