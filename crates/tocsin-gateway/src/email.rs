//! One spelling per email address.
//!
//! An email is a sign-in name and a publish target (`user:<email>`). SQLite's
//! `COLLATE NOCASE` folds ASCII only, so `MÅRIE@cabinet.fr` and `mårie@cabinet.fr` were
//! two accounts, and a publish to one missed the other. Every email is normalised here
//! before it is stored or looked up: Unicode NFC (one encoding of `å`), then full case
//! folding (ICU4X, Unicode's CaseFolding.txt), then NFC again.

use icu_casemap::CaseMapper;
use icu_normalizer::ComposingNormalizerBorrowed;

/// The stored and compared form of an email address.
pub fn normalize(email: &str) -> String {
    let nfc = ComposingNormalizerBorrowed::new_nfc();
    let composed = nfc.normalize(email.trim());
    let folded = CaseMapper::new().fold_string(&composed);
    nfc.normalize(&folded).into_owned()
}

#[cfg(test)]
mod tests {
    use super::normalize;

    #[test]
    fn non_ascii_case_and_encoding_give_one_spelling() {
        assert_eq!(normalize("MÅRIE@Dupont.example"), "mårie@dupont.example");
        // "A" followed by a combining ring above, and the precomposed "å".
        assert_eq!(normalize("ma\u{30a}rie@x"), normalize("MÅRIE@X"));
        assert_eq!(normalize("  Marie@Dupont.Example "), "marie@dupont.example");
    }
}
