//! Mapping a verified external token's claims to an [`Identity`].
//!
//! Providers name things differently (`org`, `https://app.example/tenant`, ...), so the
//! claim names come from config; the rules do not: user and tenant must be non-empty
//! strings, email and role are optional.

use chrono::DateTime;
use serde_json::{Map, Value};

use super::ExternalJwtConfig;
use crate::auth::{Identity, TokenError};

/// Role given to external users whose token carries none: the least privileged one
/// the product has.
pub const DEFAULT_EXTERNAL_ROLE: &str = "lawyer";

/// Builds the identity from claims whose signature, `exp`, `iss` and `aud` have
/// already been verified.
pub(crate) fn identity_from_claims(
    claims: &Map<String, Value>,
    config: &ExternalJwtConfig,
) -> Result<Identity, TokenError> {
    let user_id = required_string(claims, &config.user_claim, "user_claim")?;
    let tenant = required_string(claims, &config.tenant_claim, "tenant_claim")?;
    let email = optional_string(claims, &config.email_claim);
    let role = optional_string(claims, &config.role_claim)
        .unwrap_or_else(|| DEFAULT_EXTERNAL_ROLE.to_owned());
    let expires_at = claims
        .get("exp")
        .and_then(|exp| {
            exp.as_i64()
                .or_else(|| exp.as_f64().map(|secs| secs as i64))
        })
        .and_then(|secs| DateTime::from_timestamp(secs, 0))
        .ok_or_else(|| TokenError::invalid("`exp` is not a usable timestamp"))?;
    Ok(Identity {
        user_id,
        tenant,
        email,
        role,
        session_id: None,
        expires_at,
        external: true,
    })
}

/// A claim that must be a non-empty string; the error names the claim and the
/// config.toml key that chose it.
fn required_string(
    claims: &Map<String, Value>,
    claim: &str,
    config_key: &str,
) -> Result<String, TokenError> {
    match claims.get(claim) {
        Some(Value::String(value)) if !value.trim().is_empty() => Ok(value.clone()),
        Some(Value::String(_)) => Err(TokenError::Invalid(format!(
            "the claim `{claim}` is empty; the identity provider must fill it"
        ))),
        Some(_) => Err(TokenError::Invalid(format!(
            "the claim `{claim}` must be a string"
        ))),
        None => Err(TokenError::Invalid(format!(
            "the claim `{claim}` is missing; the identity provider must include it \
             (or the gateway's [auth.external] {config_key} must name the claim it uses)"
        ))),
    }
}

/// A claim that is used when it is a non-empty string and ignored otherwise.
fn optional_string(claims: &Map<String, Value>, claim: &str) -> Option<String> {
    claims
        .get(claim)
        .and_then(Value::as_str)
        .filter(|value| !value.trim().is_empty())
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn config() -> ExternalJwtConfig {
        toml::from_str(
            "algorithm = \"HS256\"\nissuer = \"i\"\naudience = \"a\"\ntenant_claim = \"org\"",
        )
        .expect("parses")
    }

    fn claims(value: Value) -> Map<String, Value> {
        match value {
            Value::Object(map) => map,
            _ => panic!("not an object"),
        }
    }

    #[test]
    fn maps_configured_claims_and_defaults_the_role() {
        let identity = identity_from_claims(
            &claims(json!({"sub": "u1", "org": "acme", "email": "a@b.c", "exp": 2_000_000_000})),
            &config(),
        )
        .expect("valid");
        assert_eq!(identity.user_id, "u1");
        assert_eq!(identity.tenant, "acme");
        assert_eq!(identity.email.as_deref(), Some("a@b.c"));
        assert_eq!(identity.role, DEFAULT_EXTERNAL_ROLE);
        assert_eq!(identity.session_id, None);
        assert!(identity.external);
        assert_eq!(identity.expires_at.timestamp(), 2_000_000_000);
    }

    #[test]
    fn tenant_must_be_a_non_empty_string() {
        for org in [json!(""), json!(42), json!(null)] {
            let result = identity_from_claims(
                &claims(json!({"sub": "u1", "org": org, "exp": 2_000_000_000})),
                &config(),
            );
            let Err(TokenError::Invalid(reason)) = result else {
                panic!("expected Invalid, got {result:?}");
            };
            assert!(reason.contains("`org`"), "{reason}");
        }
    }
}
