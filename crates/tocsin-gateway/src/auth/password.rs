//! Password hashing with argon2id.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=19456,t=2,p=1$salt$hash`), so the
//! parameters travel with each hash and can be raised later without breaking old
//! ones. Parameters are the `argon2` crate's defaults, which are OWASP's recommended
//! minimum for argon2id. [`HashGate`] caps how many verifications run at once.

mod gate;

pub use gate::{GateError, HashGate};

use argon2::password_hash::SaltString;
use argon2::{Argon2, PasswordHash, PasswordHasher, PasswordVerifier};
use rand::TryRngCore;
use rand::rngs::OsRng;

/// Salt length: 16 bytes, the length the PHC format and RFC 9106 recommend.
const SALT_BYTES: usize = 16;

/// A hash of a random password made with the default parameters, verified against
/// when an email is unknown. A constant rather than computed at startup so the first
/// unknown-email login is not slower than the others; a test checks its parameters
/// still match [`hash_password`]'s.
const DUMMY_PHC: &str = "$argon2id$v=19$m=19456,t=2,p=1$8ExAKNhK0aLKVtXj0/ChRw$sp5NNNCyI/VrsOwys3cthdsLrBPePnBCcSqs1bvNLJE";

/// Why a password could not be hashed.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    /// The operating system's random number generator failed to give a salt.
    #[error("the operating system's random number generator failed: {0}")]
    Rng(String),
    /// argon2 refused the input (in practice never, for a string password).
    #[error("could not hash the password: {0}")]
    Hash(argon2::password_hash::Error),
}

/// The hasher: argon2id, version 19, default parameters.
fn hasher() -> Argon2<'static> {
    Argon2::default()
}

/// Hashes a password with a fresh random salt from the OS RNG, as a PHC string.
pub fn hash_password(password: &str) -> Result<String, PasswordError> {
    let mut salt = [0_u8; SALT_BYTES];
    OsRng
        .try_fill_bytes(&mut salt)
        .map_err(|error| PasswordError::Rng(error.to_string()))?;
    let salt = SaltString::encode_b64(&salt).map_err(PasswordError::Hash)?;
    let hash = hasher()
        .hash_password(password.as_bytes(), &salt)
        .map_err(PasswordError::Hash)?;
    Ok(hash.to_string())
}

/// Whether `password` matches the PHC string `phc`. A malformed stored hash verifies
/// nothing (and is logged, since it means a damaged database row).
pub fn verify_password(password: &str, phc: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(phc) else {
        tracing::warn!("a stored password hash is not a valid PHC string");
        return false;
    };
    // Verification hashes with the parameters stored in `phc`, and compares in
    // constant time.
    hasher()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Spends the time of one verification without checking anything. Call it when a
/// login names an unknown email, so response timing does not reveal which emails
/// have accounts.
pub fn dummy_verify() {
    let matched = verify_password("not the dummy password", DUMMY_PHC);
    std::hint::black_box(matched);
}

#[cfg(test)]
mod tests {
    use argon2::{Algorithm, Params};

    use super::*;

    #[test]
    fn correct_password_verifies_and_wrong_one_does_not() {
        let phc = hash_password("correct horse battery staple").expect("hash");
        assert!(phc.starts_with("$argon2id$v=19$"), "{phc}");
        assert!(verify_password("correct horse battery staple", &phc));
        assert!(!verify_password("correct horse battery stapler", &phc));
    }

    #[test]
    fn salts_are_random() {
        let first = hash_password("same").expect("hash");
        let second = hash_password("same").expect("hash");
        assert_ne!(first, second);
    }

    #[test]
    fn malformed_hash_verifies_nothing() {
        assert!(!verify_password("anything", "not a phc string"));
        assert!(!verify_password("", ""));
    }

    #[test]
    fn dummy_hash_costs_the_same_as_a_real_one() {
        let dummy = PasswordHash::new(DUMMY_PHC).expect("dummy hash parses");
        let real_phc = hash_password("x").expect("hash");
        let real = PasswordHash::new(&real_phc).expect("real hash parses");
        assert_eq!(dummy.algorithm, Algorithm::Argon2id.ident());
        assert_eq!(dummy.version, real.version);
        assert_eq!(
            Params::try_from(&dummy).expect("dummy params"),
            Params::try_from(&real).expect("real params")
        );
        assert_eq!(
            dummy.salt.map(|salt| salt.len()),
            real.salt.map(|salt| salt.len())
        );
        dummy_verify();
    }
}
