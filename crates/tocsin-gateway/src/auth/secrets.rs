//! Refresh tokens and API keys: random secrets stored only as SHA-256 digests.
//!
//! These secrets carry 256 bits of randomness, so a fast hash is the right choice:
//! nothing can be guessed from the digest, and there is no dictionary to make slow.
//! (Passwords are the opposite case; see [`super::password`].)

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::rngs::OsRng;
use rand::{Rng, RngCore, TryRngCore};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

/// Prefix of refresh tokens, so a leaked one is recognisable (e.g. by secret scanners).
pub const REFRESH_TOKEN_PREFIX: &str = "tsr_";
/// Prefix of API keys, for the same reason.
pub const API_KEY_PREFIX: &str = "tsk_";
/// Length of an API key's public id.
pub const KEY_ID_LEN: usize = 12;
/// Characters of an API key's id: lowercase letters and digits, easy to read aloud.
const KEY_ID_ALPHABET: &[u8; 36] = b"abcdefghijklmnopqrstuvwxyz0123456789";
/// Random bytes in a secret: 256 bits.
const SECRET_BYTES: usize = 32;
/// Length of a secret once base64url-encoded without padding.
const SECRET_CHARS: usize = 43;

/// A freshly created API key. Deliberately not `Debug`, so the key is not logged by
/// accident.
pub struct NewApiKey {
    /// Public id, stored in clear and used to find the key's row.
    pub key_id: String,
    /// SHA-256 hex digest of the secret part: the only trace of the secret stored.
    pub secret_hash: String,
    /// `tsk_<key_id>_<secret>`, shown to the user once and never again.
    pub full_key: String,
}

/// The OS RNG as an infallible RNG.
///
/// # Panics
/// If the operating system cannot provide randomness, which leaves no safe way to
/// continue.
fn os_rng() -> impl RngCore {
    OsRng.unwrap_err()
}

/// A random 256-bit secret, base64url without padding (43 characters): refresh
/// tokens, API keys, calendar feed URLs.
pub fn new_secret() -> String {
    let mut bytes = [0_u8; SECRET_BYTES];
    os_rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// A new refresh token: `tsr_` then 32 random bytes in base64url without padding.
pub fn new_refresh_token() -> String {
    format!("{REFRESH_TOKEN_PREFIX}{}", new_secret())
}

/// The refresh token that replaces `old` at rotation: `tsr_` then HMAC-SHA256 of `old`
/// under a key of the gateway's own (`key`, from `auth.jwt_secret`), in base64url.
///
/// Derived, not random, so that a client whose refresh answer was lost (a timeout, a
/// crash before it stored the token) and presents `old` again within the grace window
/// gets the same successor back, without the gateway ever storing a token: the store
/// keeps only hashes. Without the key, a successor cannot be told from a random token.
pub fn successor_refresh_token(key: &[u8], old: &str) -> String {
    use hmac::{Hmac, Mac};
    let domain = Sha256::new()
        .chain_update(b"tocsin refresh successor v1\0")
        .chain_update(key)
        .finalize();
    let mut mac = match Hmac::<Sha256>::new_from_slice(&domain) {
        Ok(mac) => mac,
        // HMAC takes keys of any length; a 32-byte digest always fits.
        Err(_) => return new_refresh_token(),
    };
    mac.update(old.as_bytes());
    format!(
        "{REFRESH_TOKEN_PREFIX}{}",
        URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes())
    )
}

/// SHA-256 hex digest of a token or secret, for storage and lookup.
pub fn hash_token(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}

/// A new API key with a random id and secret.
pub fn new_api_key() -> NewApiKey {
    let mut rng = os_rng();
    let key_id: String = (0..KEY_ID_LEN)
        .map(|_| char::from(KEY_ID_ALPHABET[rng.random_range(0..KEY_ID_ALPHABET.len())]))
        .collect();
    let secret = new_secret();
    NewApiKey {
        full_key: format!("{API_KEY_PREFIX}{key_id}_{secret}"),
        secret_hash: hash_token(&secret),
        key_id,
    }
}

/// Splits `tsk_<key_id>_<secret>` into its id and secret, or `None` if it is not
/// shaped like a key this gateway issues.
pub fn parse_api_key(key: &str) -> Option<(&str, &str)> {
    let rest = key.strip_prefix(API_KEY_PREFIX)?;
    // The id has no `_`, so the first one ends it; the secret may contain more.
    let (key_id, secret) = rest.split_once('_')?;
    let id_ok = key_id.len() == KEY_ID_LEN && key_id.bytes().all(|b| KEY_ID_ALPHABET.contains(&b));
    let secret_ok = secret.len() == SECRET_CHARS
        && secret
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    (id_ok && secret_ok).then_some((key_id, secret))
}

/// Whether `secret` hashes to `stored_hash_hex`, compared in constant time.
pub fn verify_secret(secret: &str, stored_hash_hex: &str) -> bool {
    let Ok(stored) = hex::decode(stored_hash_hex) else {
        return false;
    };
    let computed = Sha256::digest(secret.as_bytes());
    // `ct_eq` on slices of different lengths is false, without early exit on content.
    computed[..].ct_eq(&stored[..]).into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_successor_is_the_same_for_the_same_token_and_key_only() {
        let old = new_refresh_token();
        let next = successor_refresh_token(b"key", &old);
        assert!(next.starts_with(REFRESH_TOKEN_PREFIX) && next != old);
        assert_eq!(next.len(), old.len(), "looks like any refresh token");
        assert_eq!(
            successor_refresh_token(b"key", &old),
            next,
            "a retry gets it again"
        );
        assert_ne!(successor_refresh_token(b"other key", &old), next);
        assert_ne!(successor_refresh_token(b"key", &next), next);
    }

    #[test]
    fn refresh_tokens_are_prefixed_random_and_hashable() {
        let first = new_refresh_token();
        let second = new_refresh_token();
        assert!(first.starts_with(REFRESH_TOKEN_PREFIX));
        assert_eq!(first.len(), REFRESH_TOKEN_PREFIX.len() + SECRET_CHARS);
        assert_ne!(first, second);
        assert_eq!(hash_token(&first).len(), 64);
        assert_eq!(hash_token(&first), hash_token(&first));
        assert_ne!(hash_token(&first), hash_token(&second));
    }

    #[test]
    fn hash_token_is_sha256_hex() {
        assert_eq!(
            hash_token("abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn api_key_round_trips() {
        let key = new_api_key();
        assert_eq!(key.key_id.len(), KEY_ID_LEN);
        assert!(
            key.key_id
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        );
        let (key_id, secret) = parse_api_key(&key.full_key).expect("parses");
        assert_eq!(key_id, key.key_id);
        assert!(verify_secret(secret, &key.secret_hash));
    }

    #[test]
    fn wrong_secret_is_rejected() {
        let key = new_api_key();
        let other = new_api_key();
        let (_, other_secret) = parse_api_key(&other.full_key).expect("parses");
        assert!(!verify_secret(other_secret, &key.secret_hash));
        assert!(!verify_secret("", &key.secret_hash));
        let (_, secret) = parse_api_key(&key.full_key).expect("parses");
        assert!(!verify_secret(secret, "not hex"));
        assert!(!verify_secret(secret, &key.secret_hash[..62]));
    }

    #[test]
    fn malformed_keys_do_not_parse() {
        let key = new_api_key().full_key;
        let secret = &key[key.len() - SECRET_CHARS..];
        for bad in [
            String::new(),
            key.replacen("tsk_", "tsr_", 1),
            format!("tsk_SHORT_{secret}"),
            format!("tsk_ABCDEFGHIJKL_{secret}"),
            format!("tsk_abcdefghijkl_{}", &secret[1..]),
            format!("tsk_abcdefghijkl_{secret}!"),
            format!("tsk_abcdefghijkl{secret}"),
        ] {
            assert_eq!(parse_api_key(&bad), None, "{bad}");
        }
    }
}
