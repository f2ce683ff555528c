//! The gateway's own access tokens: short-lived HS256 JWTs.
//!
//! They are issued at login and refresh, and verified on every request and WebSocket
//! connect. Being short-lived, they are never stored or revoked one by one; revocation
//! happens on the refresh token and the device session (`sid`) they name.

use std::time::Duration;

use chrono::{DateTime, Utc};
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation, decode, encode};
use serde::{Deserialize, Serialize};

use super::jwt::{self, Expected, Unverified};
use super::{Identity, TokenError};

/// The `aud` of every access token: the gateway refuses tokens meant for anyone else.
pub const ACCESS_AUDIENCE: &str = "tocsin";

/// Clock skew tolerated on `exp`. `jsonwebtoken` defaults to 60 s, a sizeable slice of
/// a 15-minute token's life; our issuer and verifier share one clock.
const LEEWAY_SECS: u64 = 5;

/// HMAC keys shorter than the hash output weaken HS256 (RFC 7518 §3.2).
const MIN_SECRET_BYTES: usize = 32;

/// The claims of an access token.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessClaims {
    /// User id.
    pub sub: String,
    /// Tenant slug, so a request is scoped without a database lookup.
    pub tid: String,
    /// Device session id, so revoking a session can refuse its access tokens.
    pub sid: String,
    /// Role name, for authorisation without a database lookup.
    pub role: String,
    /// Email, for display and logs; absent when the user has none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Issued at, seconds since 1970.
    pub iat: i64,
    /// Expiry, seconds since 1970.
    pub exp: i64,
    /// Issuer: the gateway's configured name, distinguishing its tokens from an
    /// external app's.
    pub iss: String,
    /// Audience: always [`ACCESS_AUDIENCE`].
    pub aud: String,
}

/// Why an access token could not be issued.
#[derive(Debug, thiserror::Error)]
pub enum IssueError {
    /// The configured lifetime does not fit a JWT timestamp.
    #[error("the access-token lifetime {0:?} is too large; configure a lifetime of minutes")]
    TtlOutOfRange(Duration),
    /// Signing failed (in practice, claims that do not serialise).
    #[error("could not sign the access token: {0}")]
    Signing(#[from] jsonwebtoken::errors::Error),
}

/// Issues and verifies the gateway's own access tokens.
#[derive(Clone)]
pub struct AccessTokens {
    /// Signs new tokens with the configured secret.
    encoding: EncodingKey,
    /// Verifies tokens with the same secret.
    decoding: DecodingKey,
    /// HS256 only; `exp`, `iss` and `aud` required; 5 s leeway.
    validation: Validation,
    /// The `iss` put into and required of every token.
    issuer: String,
    /// How long a token lives.
    ttl: Duration,
}

impl AccessTokens {
    /// Creates the service. `secret` should be at least 32 random bytes; a shorter one
    /// is accepted (the caller owns config validation) but logged as a warning.
    pub fn new(secret: &[u8], issuer: &str, ttl: Duration) -> Self {
        if secret.len() < MIN_SECRET_BYTES {
            tracing::warn!(
                bytes = secret.len(),
                "the access-token secret is shorter than {MIN_SECRET_BYTES} bytes"
            );
        }
        let mut validation = Validation::new(Algorithm::HS256);
        validation.leeway = LEEWAY_SECS;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[issuer]);
        validation.set_audience(&[ACCESS_AUDIENCE]);
        Self {
            encoding: EncodingKey::from_secret(secret),
            decoding: DecodingKey::from_secret(secret),
            validation,
            issuer: issuer.to_owned(),
            ttl,
        }
    }

    /// The `iss` of this gateway's tokens.
    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// How long an issued token lives.
    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    /// Issues a token, returning it with its expiry (whole seconds, as in `exp`).
    pub fn issue(
        &self,
        user_id: &str,
        tenant: &str,
        email: Option<&str>,
        role: &str,
        session_id: &str,
    ) -> Result<(String, DateTime<Utc>), IssueError> {
        let out_of_range = || IssueError::TtlOutOfRange(self.ttl);
        let now = Utc::now().timestamp();
        let ttl = i64::try_from(self.ttl.as_secs()).map_err(|_| out_of_range())?;
        let exp = now.checked_add(ttl).ok_or_else(out_of_range)?;
        let expires_at = DateTime::from_timestamp(exp, 0).ok_or_else(out_of_range)?;
        let claims = AccessClaims {
            sub: user_id.to_owned(),
            tid: tenant.to_owned(),
            sid: session_id.to_owned(),
            role: role.to_owned(),
            email: email.map(str::to_owned),
            iat: now,
            exp,
            iss: self.issuer.clone(),
            aud: ACCESS_AUDIENCE.to_owned(),
        };
        let token = encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)?;
        Ok((token, expires_at))
    }

    /// Verifies one of this gateway's tokens.
    pub fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        Unverified::peek(token)?.require_algorithm(Algorithm::HS256)?;
        let expected = Expected {
            algorithm: Algorithm::HS256,
            issuer: &self.issuer,
            audience: ACCESS_AUDIENCE,
        };
        let claims = decode::<AccessClaims>(token, &self.decoding, &self.validation)
            .map_err(|error| jwt::explain(&error, &expected))?
            .claims;
        let expires_at = DateTime::from_timestamp(claims.exp, 0)
            .ok_or_else(|| TokenError::invalid("`exp` is out of range"))?;
        Ok(Identity {
            user_id: claims.sub,
            tenant: claims.tid,
            email: claims.email,
            role: claims.role,
            session_id: Some(claims.sid),
            expires_at,
            external: false,
        })
    }
}

#[cfg(test)]
mod tests;
