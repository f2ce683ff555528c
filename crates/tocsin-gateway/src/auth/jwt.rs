//! JWT plumbing shared by the gateway's own tokens and external ones.
//!
//! Two jobs: a lenient look at a token's *unverified* header and claims (to pick a
//! verifier and a key, and to refuse a wrong `alg` with a clear message before any
//! cryptography), and the translation of `jsonwebtoken` errors into [`TokenError`]s a
//! client's developer can act on.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use jsonwebtoken::Algorithm;
use jsonwebtoken::errors::{Error as JwtError, ErrorKind};
use serde_json::{Map, Value};

use super::{MAX_TOKEN_BYTES, TokenError};

/// What a token says about itself before any check.
///
/// Never trust these values: they only choose a verifier and a key, and word errors.
#[derive(Debug, Default)]
pub(crate) struct Unverified {
    /// `alg` from the header exactly as written, so "none" or garbage can be named in
    /// the refusal instead of surfacing as a JSON error.
    pub alg: Option<String>,
    /// `kid` from the header: which key of a JWKS signed the token.
    pub kid: Option<String>,
    /// `iss` from the claims: whether the gateway or the external app issued it.
    pub iss: Option<String>,
}

impl Unverified {
    /// Splits and decodes the header and claims segments without verifying anything.
    pub(crate) fn peek(token: &str) -> Result<Self, TokenError> {
        ensure_size(token)?;
        let mut segments = token.split('.');
        let (Some(header), Some(claims), Some(_signature), None) = (
            segments.next(),
            segments.next(),
            segments.next(),
            segments.next(),
        ) else {
            return Err(TokenError::invalid(
                "not a JWT: expected three dot-separated segments (header.claims.signature)",
            ));
        };
        let header = decode_segment(header, "header")?;
        let claims = decode_segment(claims, "claims")?;
        Ok(Self {
            alg: string_field(&header, "alg"),
            kid: string_field(&header, "kid"),
            iss: string_field(&claims, "iss"),
        })
    }

    /// Refuses any `alg` but `expected`, naming what the token claimed.
    ///
    /// `jsonwebtoken` pins the algorithm too; this check exists for the message.
    pub(crate) fn require_algorithm(&self, expected: Algorithm) -> Result<(), TokenError> {
        match self.alg.as_deref() {
            Some(alg) if alg == algorithm_name(expected) => Ok(()),
            Some(alg) => Err(TokenError::Invalid(format!(
                "algorithm `{alg}` is not accepted; this issuer's tokens must be signed with {}",
                algorithm_name(expected)
            ))),
            None => Err(TokenError::invalid("the header has no `alg`")),
        }
    }
}

/// Refuses tokens over [`MAX_TOKEN_BYTES`] before any decoding work.
pub(crate) fn ensure_size(token: &str) -> Result<(), TokenError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(TokenError::TooLarge);
    }
    Ok(())
}

/// The JOSE name of an algorithm ("HS256"), as it appears in a header.
pub(crate) fn algorithm_name(algorithm: Algorithm) -> String {
    // `Algorithm`'s Debug output is its variant name, which is exactly the JOSE name.
    format!("{algorithm:?}")
}

/// What a verifier expected, so a refusal can say what would have been accepted.
pub(crate) struct Expected<'a> {
    /// The pinned signing algorithm.
    pub algorithm: Algorithm,
    /// The only accepted `iss`.
    pub issuer: &'a str,
    /// The value `aud` must contain.
    pub audience: &'a str,
}

/// Translates a `jsonwebtoken` failure into [`TokenError`]: `Expired` for an expired
/// but otherwise genuine token (the signature is checked before `exp`), `Invalid` with
/// a reason for everything else.
pub(crate) fn explain(error: &JwtError, expected: &Expected<'_>) -> TokenError {
    let reason = match error.kind() {
        ErrorKind::ExpiredSignature => return TokenError::Expired,
        ErrorKind::InvalidSignature => {
            "the signature does not match: the token was altered or signed with another key"
                .to_owned()
        }
        ErrorKind::InvalidAlgorithm => format!(
            "the token must be signed with {}",
            algorithm_name(expected.algorithm)
        ),
        ErrorKind::InvalidIssuer => format!("the issuer (`iss`) must be `{}`", expected.issuer),
        ErrorKind::InvalidAudience => {
            format!("the audience (`aud`) must include `{}`", expected.audience)
        }
        ErrorKind::MissingRequiredClaim(claim) => {
            format!("the required claim `{claim}` is missing")
        }
        ErrorKind::InvalidClaimFormat(claim) => {
            format!("the claim `{claim}` must be a number of seconds since 1970")
        }
        ErrorKind::ImmatureSignature => {
            "the token is not valid yet (`nbf` is in the future); check the issuer's clock"
                .to_owned()
        }
        ErrorKind::Json(json) => format!("the claims do not have the expected shape: {json}"),
        ErrorKind::InvalidToken | ErrorKind::Base64(_) | ErrorKind::Utf8(_) => {
            "the token is malformed: expected base64url-encoded JSON segments".to_owned()
        }
        _ => format!("the token could not be verified ({error})"),
    };
    TokenError::Invalid(reason)
}

/// Decodes one base64url segment into a JSON object.
fn decode_segment(segment: &str, name: &str) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(segment)
        .map_err(|_| TokenError::Invalid(format!("the {name} segment is not base64url")))?;
    serde_json::from_slice(&bytes)
        .map_err(|_| TokenError::Invalid(format!("the {name} segment is not a JSON object")))
}

/// A string member of a JSON object, if it is one.
fn string_field(object: &Map<String, Value>, name: &str) -> Option<String> {
    object.get(name).and_then(Value::as_str).map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn segment(json: &str) -> String {
        URL_SAFE_NO_PAD.encode(json)
    }

    #[test]
    fn peek_reads_alg_kid_and_iss() {
        let token = format!(
            "{}.{}.sig",
            segment(r#"{"alg":"RS256","kid":"k1"}"#),
            segment(r#"{"iss":"https://idp.example"}"#)
        );
        let peeked = Unverified::peek(&token).expect("well-formed");
        assert_eq!(peeked.alg.as_deref(), Some("RS256"));
        assert_eq!(peeked.kid.as_deref(), Some("k1"));
        assert_eq!(peeked.iss.as_deref(), Some("https://idp.example"));
    }

    #[test]
    fn peek_refuses_wrong_segment_counts() {
        for token in ["", "a.b", "a.b.c.d"] {
            assert!(matches!(
                Unverified::peek(token),
                Err(TokenError::Invalid(_))
            ));
        }
    }

    #[test]
    fn require_algorithm_names_the_offending_alg() {
        let peeked = Unverified {
            alg: Some("none".to_owned()),
            ..Unverified::default()
        };
        let Err(TokenError::Invalid(reason)) = peeked.require_algorithm(Algorithm::HS256) else {
            panic!("alg none must be refused");
        };
        assert!(
            reason.contains("`none`") && reason.contains("HS256"),
            "{reason}"
        );
    }
}
