//! The `[auth.external]` table of config.toml, and its validation.
//!
//! Every error names the config.toml key to fix, because the person reading it is an
//! operator at startup, not a developer.

use std::fmt;

use jsonwebtoken::{Algorithm, DecodingKey};
use serde::{Deserialize, Serialize};

/// Longest accepted `leeway_secs`: a larger skew means something is broken, and a
/// huge value would make expired tokens valid forever.
const MAX_LEEWAY_SECS: u64 = 300;

/// HMAC keys shorter than the hash output weaken HS256 (RFC 7518 §3.2).
const MIN_SECRET_BYTES: usize = 32;

/// How to verify an external app's JWTs: the `[auth.external]` table of config.toml.
///
/// ```toml
/// [auth.external]
/// algorithm = "RS256"
/// jwks_url = "https://idp.example/.well-known/jwks.json"
/// issuer = "https://idp.example/"
/// audience = "tocsin"
/// tenant_claim = "org"
/// ```
#[derive(Deserialize, Serialize, Clone)]
#[serde(deny_unknown_fields)]
pub struct ExternalJwtConfig {
    /// The one accepted signing algorithm: "HS256", "RS256" or "ES256". Pinned, so a
    /// token cannot choose a weaker one (or "none").
    pub algorithm: String,
    /// Shared secret (its UTF-8 bytes) for HS256, at least 32 bytes.
    #[serde(default)]
    pub secret: Option<String>,
    /// PEM public key (SPKI "PUBLIC KEY", or PKCS#1 for RSA) for RS256/ES256, when the
    /// provider's key is fixed.
    #[serde(default)]
    pub public_key_pem: Option<String>,
    /// JWKS URL for RS256/ES256, when the provider rotates keys; https unless the host
    /// is local.
    #[serde(default)]
    pub jwks_url: Option<String>,
    /// The required `iss`; also how the gateway tells these tokens from its own.
    pub issuer: String,
    /// The value `aud` must contain, so tokens minted for other services are refused.
    pub audience: String,
    /// Clock skew tolerated on `exp` and `nbf`, in seconds (at most 300).
    #[serde(default = "default_leeway_secs")]
    pub leeway_secs: u64,
    /// Claim holding the user id.
    #[serde(default = "default_user_claim")]
    pub user_claim: String,
    /// Claim holding the tenant slug.
    #[serde(default = "default_tenant_claim")]
    pub tenant_claim: String,
    /// Claim holding the email (optional in tokens).
    #[serde(default = "default_email_claim")]
    pub email_claim: String,
    /// Claim holding the role (optional in tokens; "lawyer" when absent).
    #[serde(default = "default_role_claim")]
    pub role_claim: String,
}

fn default_leeway_secs() -> u64 {
    30
}
fn default_user_claim() -> String {
    "sub".to_owned()
}
fn default_tenant_claim() -> String {
    "tenant".to_owned()
}
fn default_email_claim() -> String {
    "email".to_owned()
}
fn default_role_claim() -> String {
    "role".to_owned()
}

/// Hand-written so that logging the config never prints the shared secret.
impl fmt::Debug for ExternalJwtConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ExternalJwtConfig")
            .field("algorithm", &self.algorithm)
            .field("secret", &self.secret.as_ref().map(|_| "<redacted>"))
            .field(
                "public_key_pem",
                &self.public_key_pem.as_ref().map(|_| "<set>"),
            )
            .field("jwks_url", &self.jwks_url)
            .field("issuer", &self.issuer)
            .field("audience", &self.audience)
            .field("leeway_secs", &self.leeway_secs)
            .field("user_claim", &self.user_claim)
            .field("tenant_claim", &self.tenant_claim)
            .field("email_claim", &self.email_claim)
            .field("role_claim", &self.role_claim)
            .finish()
    }
}

/// Where verification keys come from, once the config is validated.
pub(crate) enum KeySource {
    /// One fixed key: the HS256 secret or a PEM public key.
    Static(DecodingKey),
    /// Keys fetched from a JWKS URL and selected by `kid`.
    Jwks(reqwest::Url),
}

impl ExternalJwtConfig {
    /// Checks the whole table and returns the pinned algorithm and the key source.
    pub(crate) fn resolve(&self) -> Result<(Algorithm, KeySource), String> {
        let algorithm = match self.algorithm.as_str() {
            "HS256" => Algorithm::HS256,
            "RS256" => Algorithm::RS256,
            "ES256" => Algorithm::ES256,
            other => {
                return Err(format!(
                    "[auth.external] algorithm = \"{other}\" is not supported; use \"HS256\", \"RS256\" or \"ES256\""
                ));
            }
        };
        for (key, value) in [
            ("issuer", &self.issuer),
            ("audience", &self.audience),
            ("user_claim", &self.user_claim),
            ("tenant_claim", &self.tenant_claim),
            ("email_claim", &self.email_claim),
            ("role_claim", &self.role_claim),
        ] {
            if value.trim().is_empty() {
                return Err(format!("[auth.external] {key} must not be empty"));
            }
        }
        if self.leeway_secs > MAX_LEEWAY_SECS {
            return Err(format!(
                "[auth.external] leeway_secs = {} is too large; use at most {MAX_LEEWAY_SECS}",
                self.leeway_secs
            ));
        }
        let keys = match algorithm {
            Algorithm::HS256 => self.hmac_key()?,
            _ => self.public_key(algorithm)?,
        };
        Ok((algorithm, keys))
    }

    /// HS256: `secret` and nothing else.
    fn hmac_key(&self) -> Result<KeySource, String> {
        if self.public_key_pem.is_some() || self.jwks_url.is_some() {
            return Err("[auth.external] HS256 verifies with `secret` only; remove \
                        public_key_pem and jwks_url (or switch algorithm to RS256/ES256)"
                .to_owned());
        }
        let Some(secret) = &self.secret else {
            return Err(
                "[auth.external] algorithm = \"HS256\" needs `secret`, the key \
                        shared with the external app"
                    .to_owned(),
            );
        };
        if secret.len() < MIN_SECRET_BYTES {
            return Err(format!(
                "[auth.external] secret is {} bytes; HS256 needs at least {MIN_SECRET_BYTES}",
                secret.len()
            ));
        }
        Ok(KeySource::Static(DecodingKey::from_secret(
            secret.as_bytes(),
        )))
    }

    /// RS256/ES256: exactly one of `public_key_pem` and `jwks_url`, and no `secret`.
    fn public_key(&self, algorithm: Algorithm) -> Result<KeySource, String> {
        let name = crate::auth::jwt::algorithm_name(algorithm);
        if self.secret.is_some() {
            return Err(format!(
                "[auth.external] {name} verifies with a public key; remove `secret` \
                 (it is only for HS256)"
            ));
        }
        match (&self.public_key_pem, &self.jwks_url) {
            (Some(pem), None) => {
                let key = if algorithm == Algorithm::RS256 {
                    DecodingKey::from_rsa_pem(pem.as_bytes())
                } else {
                    DecodingKey::from_ec_pem(pem.as_bytes())
                };
                key.map(KeySource::Static).map_err(|error| {
                    format!("[auth.external] public_key_pem is not a {name} public key: {error}")
                })
            }
            (None, Some(url)) => jwks_url(url).map(KeySource::Jwks),
            (Some(_), Some(_)) => {
                Err("[auth.external] set either public_key_pem or jwks_url, not both".to_owned())
            }
            (None, None) => Err(format!(
                "[auth.external] algorithm = \"{name}\" needs public_key_pem (a fixed key) \
                 or jwks_url (the provider's key set)"
            )),
        }
    }
}

/// Parses the JWKS URL, requiring https except for local hosts (development, tests).
fn jwks_url(url: &str) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url)
        .map_err(|error| format!("[auth.external] jwks_url = \"{url}\" is not a URL: {error}"))?;
    let local = matches!(parsed.host_str(), Some("localhost" | "127.0.0.1" | "[::1]"));
    match parsed.scheme() {
        "https" => Ok(parsed),
        "http" if local => Ok(parsed),
        _ => Err(format!(
            "[auth.external] jwks_url = \"{url}\" must use https (keys fetched in clear \
             text could be replaced in transit)"
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const RSA_PUBLIC: &str = include_str!("../testdata/rsa_public.pem");

    fn config(extra: &str) -> Result<ExternalJwtConfig, toml::de::Error> {
        toml::from_str(&format!(
            "issuer = \"https://idp.example\"\naudience = \"tocsin\"\n{extra}"
        ))
    }

    fn resolve_error(extra: &str) -> String {
        match config(extra).expect("parses").resolve() {
            Ok(_) => panic!("config should be refused: {extra}"),
            Err(error) => error,
        }
    }

    #[test]
    fn defaults_apply() {
        let config = config("algorithm = \"HS256\"").expect("parses");
        assert_eq!(config.leeway_secs, 30);
        assert_eq!(
            [
                config.user_claim,
                config.tenant_claim,
                config.email_claim,
                config.role_claim
            ],
            ["sub", "tenant", "email", "role"]
        );
    }

    #[test]
    fn misspelt_keys_are_refused() {
        assert!(config("algorithm = \"RS256\"\njwks_uri = \"https://x\"").is_err());
    }

    #[test]
    fn key_sources_must_fit_the_algorithm() {
        assert!(resolve_error("algorithm = \"HS256\"").contains("needs `secret`"));
        assert!(resolve_error("algorithm = \"HS256\"\nsecret = \"short\"").contains("at least 32"));
        assert!(resolve_error("algorithm = \"RS256\"").contains("public_key_pem"));
        assert!(
            resolve_error("algorithm = \"RS256\"\nsecret = \"0123456789abcdef0123456789abcdef\"")
                .contains("remove `secret`")
        );
        assert!(
            resolve_error(&format!(
                "algorithm = \"RS256\"\njwks_url = \"https://idp.example/jwks\"\n\
                 public_key_pem = '''{RSA_PUBLIC}'''"
            ))
            .contains("not both")
        );
        assert!(
            resolve_error("algorithm = \"ES256\"\npublic_key_pem = \"junk\"").contains("ES256")
        );
        assert!(resolve_error("algorithm = \"none\"").contains("not supported"));
    }

    #[test]
    fn jwks_url_must_be_https_unless_local() {
        let error = resolve_error("algorithm = \"RS256\"\njwks_url = \"http://idp.example/jwks\"");
        assert!(error.contains("https"), "{error}");
        let local = config("algorithm = \"RS256\"\njwks_url = \"http://127.0.0.1:9/jwks\"")
            .expect("parses");
        assert!(local.resolve().is_ok());
    }

    #[test]
    fn excessive_leeway_is_refused() {
        let error = resolve_error(
            "algorithm = \"HS256\"\nsecret = \"0123456789abcdef0123456789abcdef\"\nleeway_secs = 86400",
        );
        assert!(error.contains("leeway_secs"), "{error}");
    }

    #[test]
    fn debug_redacts_the_secret() {
        let config = config("algorithm = \"HS256\"\nsecret = \"0123456789abcdef0123456789abcdef\"")
            .expect("parses");
        assert!(!format!("{config:?}").contains("0123456789abcdef"));
    }
}
