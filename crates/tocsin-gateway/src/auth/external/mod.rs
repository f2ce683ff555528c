//! Verification of an external app's JWTs, so its users can use Tocsin without a
//! second login.
//!
//! - `config`: the `[auth.external]` table and its validation.
//! - `claims`: mapping verified claims to an [`Identity`].
//! - `jwks`: the cache of a provider's published keys.
//!
//! The algorithm is pinned by config, never taken from the token; `exp`, `iss` and
//! `aud` are required; the user and tenant claims must be non-empty strings.

mod claims;
mod config;
mod jwks;

pub use claims::DEFAULT_EXTERNAL_ROLE;
pub use config::ExternalJwtConfig;

use jsonwebtoken::{Algorithm, DecodingKey, Validation, decode};
use serde_json::{Map, Value};

use self::config::KeySource;
use self::jwks::JwksCache;
use super::jwt::{self, Expected, Unverified};
use super::{Identity, TokenError};

/// Where this verifier gets its keys.
enum Keys {
    /// The HS256 secret or a fixed PEM public key.
    Static(DecodingKey),
    /// Keys fetched from the provider's JWKS URL, selected by `kid`.
    Jwks(JwksCache),
}

/// Verifies tokens issued by the configured external identity provider.
pub struct ExternalVerifier {
    /// Issuer, audience and claim names, as configured.
    config: ExternalJwtConfig,
    /// The one accepted algorithm.
    algorithm: Algorithm,
    /// Pinned algorithm; `exp`, `iss`, `aud` required; configured leeway.
    validation: Validation,
    /// Verification keys.
    keys: Keys,
}

impl ExternalVerifier {
    /// Validates the config and builds the verifier; the error says what to fix in
    /// config.toml. A JWKS is fetched lazily, on the first token.
    pub fn new(config: ExternalJwtConfig) -> Result<Self, String> {
        let (algorithm, source) = config.resolve()?;
        let keys = match source {
            KeySource::Static(key) => Keys::Static(key),
            KeySource::Jwks(url) => Keys::Jwks(JwksCache::new(url, algorithm)?),
        };
        let mut validation = Validation::new(algorithm);
        validation.leeway = config.leeway_secs;
        validation.validate_nbf = true;
        validation.set_required_spec_claims(&["exp", "iss", "aud"]);
        validation.set_issuer(&[&config.issuer]);
        validation.set_audience(&[&config.audience]);
        Ok(Self {
            config,
            algorithm,
            validation,
            keys,
        })
    }

    /// The `iss` this verifier accepts.
    pub fn issuer(&self) -> &str {
        &self.config.issuer
    }

    /// Verifies a token and maps its claims to an [`Identity`] with `external` set.
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let unverified = Unverified::peek(token)?;
        unverified.require_algorithm(self.algorithm)?;
        let fetched;
        let key = match &self.keys {
            Keys::Static(key) => key,
            Keys::Jwks(cache) => {
                fetched = cache.key_for(unverified.kid.as_deref()).await?;
                &fetched
            }
        };
        let expected = Expected {
            algorithm: self.algorithm,
            issuer: &self.config.issuer,
            audience: &self.config.audience,
        };
        let claims = decode::<Map<String, Value>>(token, key, &self.validation)
            .map_err(|error| jwt::explain(&error, &expected))?
            .claims;
        claims::identity_from_claims(&claims, &self.config)
    }

    /// The JWKS cache, for tests that age it.
    #[cfg(test)]
    fn jwks(&self) -> Option<&JwksCache> {
        match &self.keys {
            Keys::Jwks(cache) => Some(cache),
            Keys::Static(_) => None,
        }
    }
}

#[cfg(test)]
mod jwks_tests;
#[cfg(test)]
mod test_support;
#[cfg(test)]
mod tests;
