//! Authentication: who is calling, and proof of it.
//!
//! # Layout
//! - [`identity`]: [`Identity`], what every verified token turns into, and
//!   [`TokenError`], why one was refused.
//! - [`access`]: the gateway's own short-lived HS256 access tokens.
//! - [`external`]: verification of an external app's JWTs (`[auth.external]`).
//! - [`password`]: argon2id password hashing, with a dummy verification for unknown
//!   emails.
//! - [`secrets`]: refresh tokens and API keys, stored only as SHA-256 digests.
//! - `jwt`: plumbing shared by the two JWT verifiers.
//!
//! [`Authenticator`] is the facade request handlers use: one bearer token in, one
//! [`Identity`] or one [`TokenError`] out.

pub mod access;
pub mod external;
pub mod identity;
mod jwt;
pub mod password;
pub mod secrets;

pub use access::{AccessClaims, AccessTokens, IssueError};
pub use external::{ExternalJwtConfig, ExternalVerifier};
pub use identity::{Identity, TokenError};
pub use password::{PasswordError, dummy_verify, hash_password, verify_password};
pub use secrets::{
    NewApiKey, hash_token, new_api_key, new_refresh_token, parse_api_key, successor_refresh_token,
    verify_secret,
};

use jwt::Unverified;

/// Longest bearer token accepted. Real tokens are well under 2 KiB; the cap bounds
/// the decoding work an anonymous caller can cause.
pub const MAX_TOKEN_BYTES: usize = 8 * 1024;

/// Verifies bearer tokens of both kinds, choosing the verifier by the token's `iss`.
pub struct Authenticator {
    /// Issues and verifies the gateway's own access tokens.
    access: AccessTokens,
    /// Verifies an external app's tokens, when `[auth.external]` is configured.
    external: Option<ExternalVerifier>,
}

impl Authenticator {
    /// Builds the facade from the gateway's own token service and, optionally, the
    /// external verifier. The two issuers should differ; if they do not, own tokens
    /// are tried first and the external verifier second.
    pub fn new(access: AccessTokens, external: Option<ExternalVerifier>) -> Self {
        Self { access, external }
    }

    /// The gateway's own token service, to issue tokens at login and refresh.
    pub fn access(&self) -> &AccessTokens {
        &self.access
    }

    /// Verifies a bearer token (without any "Bearer " prefix).
    ///
    /// Oversized tokens are refused with [`TokenError::TooLarge`] before any parsing;
    /// an expired but genuine token gives [`TokenError::Expired`]; anything else that
    /// fails gives [`TokenError::Invalid`] with the reason.
    pub async fn verify(&self, token: &str) -> Result<Identity, TokenError> {
        let verified = self.verify_uncounted(token).await;
        if let Err(err) = &verified {
            crate::metrics::auth_failed(match err {
                TokenError::Expired => crate::metrics::AuthFailure::ExpiredToken,
                _ => crate::metrics::AuthFailure::InvalidToken,
            });
        }
        verified
    }

    /// [`Authenticator::verify`] without counting its failures.
    async fn verify_uncounted(&self, token: &str) -> Result<Identity, TokenError> {
        jwt::ensure_size(token)?;
        let Some(external) = &self.external else {
            return self.access.verify(token);
        };
        let own_issuer = self.access.issuer();
        let issuer = Unverified::peek(token)?.iss;
        if issuer.as_deref() == Some(own_issuer) {
            let own = self.access.verify(token);
            // Only when both issuers are configured alike can a token that is not
            // ours still be the external app's.
            if matches!(own, Err(TokenError::Invalid(_))) && external.issuer() == own_issuer {
                return external.verify(token).await;
            }
            return own;
        }
        if issuer.as_deref() == Some(external.issuer()) {
            return external.verify(token).await;
        }
        let claimed = issuer.map_or_else(|| "missing".to_owned(), |iss| format!("`{iss}`"));
        Err(TokenError::Invalid(format!(
            "the issuer (`iss`) is {claimed}; accepted issuers are `{own_issuer}` (this \
             gateway) and `{}` (the external identity provider)",
            external.issuer()
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use jsonwebtoken::{EncodingKey, Header, encode};
    use serde_json::json;

    use super::*;

    const OWN_SECRET: &[u8] = b"own-secret-own-secret-own-secret";
    const EXTERNAL_SECRET: &str = "external-secret-external-secret!";

    fn authenticator(with_external: bool) -> Authenticator {
        let access = AccessTokens::new(OWN_SECRET, "tocsin-gateway", Duration::from_secs(900));
        let external = with_external.then(|| {
            let config: ExternalJwtConfig = toml::from_str(&format!(
                "algorithm = \"HS256\"\nsecret = \"{EXTERNAL_SECRET}\"\n\
                 issuer = \"https://idp.example\"\naudience = \"tocsin\"\n"
            ))
            .expect("valid config");
            ExternalVerifier::new(config).expect("valid verifier")
        });
        Authenticator::new(access, external)
    }

    fn external_token(iss: &str) -> String {
        let claims = json!({
            "sub": "ext-user", "tenant": "acme", "iss": iss, "aud": "tocsin",
            "exp": chrono::Utc::now().timestamp() + 300,
        });
        encode(
            &Header::default(),
            &claims,
            &EncodingKey::from_secret(EXTERNAL_SECRET.as_bytes()),
        )
        .expect("sign")
    }

    #[tokio::test]
    async fn oversized_token_is_refused_before_parsing() {
        let token = "a".repeat(MAX_TOKEN_BYTES + 1);
        for auth in [authenticator(false), authenticator(true)] {
            assert_eq!(auth.verify(&token).await, Err(TokenError::TooLarge));
        }
    }

    #[tokio::test]
    async fn own_tokens_verify_with_or_without_external() {
        for auth in [authenticator(false), authenticator(true)] {
            let (token, _) = auth
                .access()
                .issue("u1", "acme", None, "lawyer", "s1")
                .expect("issue");
            let identity = auth.verify(&token).await.expect("own token");
            assert_eq!(identity.user_id, "u1");
            assert!(!identity.external);
        }
    }

    #[tokio::test]
    async fn external_tokens_are_routed_by_issuer() {
        let identity = authenticator(true)
            .verify(&external_token("https://idp.example"))
            .await
            .expect("external token");
        assert_eq!(
            (identity.user_id.as_str(), identity.external),
            ("ext-user", true)
        );
    }

    #[tokio::test]
    async fn external_tokens_are_invalid_without_external_config() {
        let result = authenticator(false)
            .verify(&external_token("https://idp.example"))
            .await;
        assert!(matches!(result, Err(TokenError::Invalid(_))), "{result:?}");
    }

    #[tokio::test]
    async fn unknown_issuer_is_named_in_the_refusal() {
        let result = authenticator(true)
            .verify(&external_token("https://evil.example"))
            .await;
        let Err(TokenError::Invalid(reason)) = result else {
            panic!("expected Invalid, got {result:?}");
        };
        assert!(reason.contains("https://evil.example"), "{reason}");
    }
}
