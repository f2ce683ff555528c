//! Tests for external-token verification with fixed keys (HS256 secret, PEM keys).

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde_json::json;

use super::test_support::*;
use crate::auth::TokenError;

fn hs256() -> super::ExternalVerifier {
    verifier(&format!(
        "algorithm = \"HS256\"\nsecret = \"{SHARED_SECRET}\""
    ))
}

fn hs256_token(overrides: serde_json::Value) -> String {
    sign(
        &Header::new(Algorithm::HS256),
        &claims(overrides),
        &EncodingKey::from_secret(SHARED_SECRET.as_bytes()),
    )
}

#[tokio::test]
async fn hs256_token_maps_to_an_external_identity() {
    let identity = hs256()
        .verify(&hs256_token(json!({"role": "admin"})))
        .await
        .expect("valid");
    assert_eq!(identity.user_id, "ext-user-7");
    assert_eq!(identity.tenant, "acme");
    assert_eq!(identity.email.as_deref(), Some("ext@acme.test"));
    assert_eq!(identity.role, "admin");
    assert_eq!(identity.session_id, None);
    assert!(identity.external);
}

#[tokio::test]
async fn role_defaults_to_lawyer() {
    let identity = hs256()
        .verify(&hs256_token(json!({})))
        .await
        .expect("valid");
    assert_eq!(identity.role, super::DEFAULT_EXTERNAL_ROLE);
}

#[tokio::test]
async fn rs256_token_verifies_with_a_pem_key() {
    let verifier = verifier(&format!(
        "algorithm = \"RS256\"\npublic_key_pem = '''{RSA_PUBLIC}'''"
    ));
    let token = sign(
        &Header::new(Algorithm::RS256),
        &claims(json!({})),
        &rsa_key(),
    );
    let identity = verifier.verify(&token).await.expect("valid");
    assert_eq!(identity.user_id, "ext-user-7");
}

#[tokio::test]
async fn es256_token_verifies_with_a_pem_key() {
    let verifier = verifier(&format!(
        "algorithm = \"ES256\"\npublic_key_pem = '''{EC_PUBLIC}'''"
    ));
    let key = EncodingKey::from_ec_pem(EC_PRIVATE.as_bytes()).expect("test EC key");
    let token = sign(&Header::new(Algorithm::ES256), &claims(json!({})), &key);
    assert!(verifier.verify(&token).await.is_ok());
}

#[tokio::test]
async fn hs256_signed_with_the_public_key_is_refused_by_an_rs256_verifier() {
    // The classic algorithm-confusion attack: the public key used as an HMAC secret.
    let verifier = verifier(&format!(
        "algorithm = \"RS256\"\npublic_key_pem = '''{RSA_PUBLIC}'''"
    ));
    let token = sign(
        &Header::new(Algorithm::HS256),
        &claims(json!({})),
        &EncodingKey::from_secret(RSA_PUBLIC.as_bytes()),
    );
    assert!(invalid_reason(verifier.verify(&token).await).contains("RS256"));
}

#[tokio::test]
async fn alg_none_is_refused() {
    let header = URL_SAFE_NO_PAD.encode(br#"{"alg":"none"}"#);
    let payload = URL_SAFE_NO_PAD.encode(claims(json!({})).to_string());
    let reason = invalid_reason(hs256().verify(&format!("{header}.{payload}.")).await);
    assert!(reason.contains("`none`"), "{reason}");
}

#[tokio::test]
async fn missing_tenant_claim_is_named() {
    let reason = invalid_reason(hs256().verify(&hs256_token(json!({"tenant": null}))).await);
    assert!(
        reason.contains("`tenant`") && reason.contains("missing"),
        "{reason}"
    );
}

#[tokio::test]
async fn claim_names_come_from_config() {
    let verifier = verifier(&format!(
        "algorithm = \"HS256\"\nsecret = \"{SHARED_SECRET}\"\n\
         user_claim = \"uid\"\ntenant_claim = \"org\""
    ));
    let token = hs256_token(json!({"uid": "u-42", "org": "globex"}));
    let identity = verifier.verify(&token).await.expect("valid");
    assert_eq!(
        (identity.user_id.as_str(), identity.tenant.as_str()),
        ("u-42", "globex")
    );
}

#[tokio::test]
async fn wrong_audience_issuer_or_missing_exp_is_invalid() {
    let verifier = hs256();
    for (overrides, needle) in [
        (json!({"aud": "another-service"}), "`aud`"),
        (json!({"iss": "https://other.example"}), "`iss`"),
        (json!({"exp": null}), "`exp`"),
    ] {
        let reason = invalid_reason(verifier.verify(&hs256_token(overrides)).await);
        assert!(reason.contains(needle), "{needle}: {reason}");
    }
}

#[tokio::test]
async fn expiry_honours_the_configured_leeway() {
    let verifier = hs256(); // leeway_secs defaults to 30
    let now = chrono::Utc::now().timestamp();
    assert!(
        verifier
            .verify(&hs256_token(json!({"exp": now - 10})))
            .await
            .is_ok()
    );
    assert_eq!(
        verifier
            .verify(&hs256_token(json!({"exp": now - 120})))
            .await,
        Err(TokenError::Expired)
    );
}

#[tokio::test]
async fn token_not_valid_yet_is_invalid() {
    let nbf = chrono::Utc::now().timestamp() + 3600;
    let reason = invalid_reason(hs256().verify(&hs256_token(json!({"nbf": nbf}))).await);
    assert!(reason.contains("`nbf`"), "{reason}");
}
