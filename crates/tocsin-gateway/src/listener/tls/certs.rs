//! Reading a certificate chain and its key from PEM files, and refusing a pair that
//! cannot serve: unreadable, not PEM, a key of another certificate, expired or not
//! yet valid. Every refusal names the file and says what to do, because the one who
//! reads it is an administrator whose gateway just refused to start (or kept its old
//! certificate on a reload).
//!
//! Pure apart from reading the two files: "now" is a parameter, so the tests check
//! expiry at any date.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use chrono::{DateTime, Utc};
use sha2::{Digest, Sha256};
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio_rustls::rustls::sign::CertifiedKey;

/// A certificate this close to its expiry is warned about (log, `/readyz`).
pub const EXPIRY_WARNING_DAYS: i64 = 14;

/// Where the pair is read from (resolved against the data dir).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertPaths {
    /// The chain, leaf first.
    pub cert: PathBuf,
    /// The leaf's private key.
    pub key: PathBuf,
}

/// A pair that passed every check, ready for new handshakes.
#[derive(Debug)]
pub struct LoadedPair {
    /// What rustls serves.
    pub certified: Arc<CertifiedKey>,
    /// The leaf's notAfter: the expiry warning and `/readyz` read it.
    pub not_after: DateTime<Utc>,
    /// The leaf's SHA-256 fingerprint, logged so an administrator can compare it
    /// with what clients were told to trust.
    pub fingerprint: String,
}

/// Why a pair was refused.
#[derive(Debug, thiserror::Error)]
pub enum CertError {
    /// A file could not be read at all.
    #[error(
        "cannot read the TLS {what} {}: {source}; check [tls] {what_key} in config.toml (relative to the data dir unless absolute) and that the gateway's user may read it",
        path.display(),
        what_key = what.config_key()
    )]
    Unreadable {
        /// Which of the two.
        what: Which,
        /// The file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A file holds no usable PEM block of the expected kind.
    #[error(
        "{} holds no PEM {what} ({detail}): [tls] cert wants the certificate chain (-----BEGIN CERTIFICATE-----, certbot's fullchain.pem), [tls] key its private key (-----BEGIN PRIVATE KEY-----, certbot's privkey.pem)",
        path.display()
    )]
    NotPem {
        /// Which of the two.
        what: Which,
        /// The file.
        path: PathBuf,
        /// What the PEM reader said.
        detail: String,
    },
    /// The leaf is not a certificate x509 parsing understands.
    #[error(
        "the certificate in {} cannot be parsed ({detail}); point [tls] cert at a PEM X.509 certificate chain",
        path.display()
    )]
    BadCertificate {
        /// The file.
        path: PathBuf,
        /// The parser's error.
        detail: String,
    },
    /// The key is of a type or form rustls cannot sign with.
    #[error(
        "the key in {} cannot be used ({detail}); use an ECDSA P-256/P-384, Ed25519 or RSA (2048 bits or more) private key",
        path.display()
    )]
    BadKey {
        /// The file.
        path: PathBuf,
        /// rustls's error.
        detail: String,
    },
    /// The key belongs to another certificate.
    #[error(
        "the key {} does not belong to the certificate {}: point [tls] key at this certificate's own private key (certbot: privkey.pem in the same live/ directory as fullchain.pem)",
        key.display(),
        cert.display()
    )]
    KeyMismatch {
        /// The certificate file.
        cert: PathBuf,
        /// The key file.
        key: PathBuf,
    },
    /// notAfter is past.
    #[error(
        "certificate {} expired on {}: renew it (certbot renew) or point [tls] cert at the new file",
        path.display(),
        on.format("%Y-%m-%d %H:%M UTC")
    )]
    Expired {
        /// The file.
        path: PathBuf,
        /// Its notAfter.
        on: DateTime<Utc>,
    },
    /// notBefore is ahead.
    #[error(
        "certificate {} is not valid before {}: check this machine's clock (timedatectl), or use a certificate that is valid now",
        path.display(),
        from.format("%Y-%m-%d %H:%M:%S UTC")
    )]
    NotYetValid {
        /// The file.
        path: PathBuf,
        /// Its notBefore.
        from: DateTime<Utc>,
    },
}

/// The certificate or the key, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Which {
    /// `[tls] cert`.
    Certificate,
    /// `[tls] key`.
    Key,
}

impl Which {
    fn config_key(self) -> &'static str {
        match self {
            Which::Certificate => "cert",
            Which::Key => "key",
        }
    }
}

impl fmt::Display for Which {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Which::Certificate => "certificate",
            Which::Key => "key",
        })
    }
}

/// Reads and checks the pair at `now`.
pub fn load(
    paths: &CertPaths,
    provider: &CryptoProvider,
    now: DateTime<Utc>,
) -> Result<LoadedPair, CertError> {
    let chain = read_chain(&paths.cert)?;
    let key = read_key(&paths.key)?;
    let (not_before, not_after) = validity(&paths.cert, &chain[0])?;
    let fingerprint = fingerprint(&chain[0]);
    let signing_key =
        provider
            .key_provider
            .load_private_key(key)
            .map_err(|err| CertError::BadKey {
                path: paths.key.clone(),
                detail: err.to_string(),
            })?;
    let certified = CertifiedKey::new(chain, signing_key);
    // `Unknown`: the key cannot tell its public half (rustls's own rule is to accept
    // it); every key type ring loads can.
    if let Err(tokio_rustls::rustls::Error::InconsistentKeys(
        tokio_rustls::rustls::InconsistentKeys::KeyMismatch,
    )) = certified.keys_match()
    {
        return Err(CertError::KeyMismatch {
            cert: paths.cert.clone(),
            key: paths.key.clone(),
        });
    }
    if now < not_before {
        return Err(CertError::NotYetValid {
            path: paths.cert.clone(),
            from: not_before,
        });
    }
    if now >= not_after {
        return Err(CertError::Expired {
            path: paths.cert.clone(),
            on: not_after,
        });
    }
    Ok(LoadedPair {
        certified: Arc::new(certified),
        not_after,
        fingerprint,
    })
}

/// The SHA-256 of a certificate's DER, as `openssl x509 -noout -fingerprint -sha256`
/// and browsers show it: upper-case hex pairs joined by colons.
pub fn fingerprint(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let pairs: Vec<String> = digest.iter().map(|byte| format!("{byte:02X}")).collect();
    pairs.join(":")
}

/// "TLS certificate expires in N days, on DATE" within [`EXPIRY_WARNING_DAYS`] of
/// `not_after`, else `None`.
pub fn expiry_warning(not_after: DateTime<Utc>, now: DateTime<Utc>) -> Option<String> {
    let left = not_after - now;
    if left > chrono::Duration::days(EXPIRY_WARNING_DAYS) {
        return None;
    }
    let date = not_after.format("%Y-%m-%d");
    Some(match left.num_days() {
        days if days <= 0 => format!("TLS certificate expires in less than a day, on {date}"),
        1 => format!("TLS certificate expires in 1 day, on {date}"),
        days => format!("TLS certificate expires in {days} days, on {date}"),
    })
}

fn read_file(what: Which, path: &Path) -> Result<Vec<u8>, CertError> {
    std::fs::read(path).map_err(|source| CertError::Unreadable {
        what,
        path: path.to_owned(),
        source,
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, CertError> {
    let bytes = read_file(Which::Certificate, path)?;
    let not_pem = |detail: String| CertError::NotPem {
        what: Which::Certificate,
        path: path.to_owned(),
        detail,
    };
    let chain = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|err| not_pem(err.to_string()))?;
    if chain.is_empty() {
        return Err(not_pem("no CERTIFICATE block".into()));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, CertError> {
    let bytes = read_file(Which::Key, path)?;
    PrivateKeyDer::from_pem_slice(&bytes).map_err(|err| CertError::NotPem {
        what: Which::Key,
        path: path.to_owned(),
        detail: match err {
            tokio_rustls::rustls::pki_types::pem::Error::NoItemsFound => {
                "no PRIVATE KEY block".into()
            }
            other => other.to_string(),
        },
    })
}

/// The leaf's notBefore and notAfter.
fn validity(
    path: &Path,
    leaf: &CertificateDer<'_>,
) -> Result<(DateTime<Utc>, DateTime<Utc>), CertError> {
    let bad = |detail: String| CertError::BadCertificate {
        path: path.to_owned(),
        detail,
    };
    let (_, parsed) =
        x509_parser::parse_x509_certificate(leaf).map_err(|err| bad(err.to_string()))?;
    let validity = parsed.validity();
    let at = |seconds: i64| {
        DateTime::from_timestamp(seconds, 0)
            .ok_or_else(|| bad(format!("a validity date out of range ({seconds})")))
    };
    Ok((
        at(validity.not_before.timestamp())?,
        at(validity.not_after.timestamp())?,
    ))
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, SystemTime};

    use super::*;

    /// A self-signed pair valid from `from` to `to`, as PEM (cert, key).
    fn pair(from: SystemTime, to: SystemTime) -> (String, String) {
        let key = rcgen::KeyPair::generate().expect("a key");
        let mut params =
            rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("parameters");
        params.not_before = from.into();
        params.not_after = to.into();
        let cert = params.self_signed(&key).expect("a certificate");
        (cert.pem(), key.serialize_pem())
    }

    fn valid_pair() -> (String, String) {
        let now = SystemTime::now();
        pair(now - DAY, now + 90 * DAY)
    }

    const DAY: Duration = Duration::from_secs(24 * 3600);

    struct Files {
        _dir: tempfile::TempDir,
        paths: CertPaths,
    }

    fn files(cert: &str, key: &str) -> Files {
        let dir = tempfile::tempdir().expect("a temp dir");
        let paths = CertPaths {
            cert: dir.path().join("cert.pem"),
            key: dir.path().join("key.pem"),
        };
        std::fs::write(&paths.cert, cert).expect("cert written");
        std::fs::write(&paths.key, key).expect("key written");
        Files { _dir: dir, paths }
    }

    fn provider() -> CryptoProvider {
        tokio_rustls::rustls::crypto::ring::default_provider()
    }

    fn load_now(files: &Files) -> Result<LoadedPair, CertError> {
        load(&files.paths, &provider(), Utc::now())
    }

    #[test]
    fn a_valid_pair_loads_with_its_expiry_and_fingerprint() {
        let (cert, key) = valid_pair();
        let files = files(&cert, &key);
        let loaded = load_now(&files).expect("a valid pair loads");
        let days = (loaded.not_after - Utc::now()).num_days();
        assert!((89..=90).contains(&days), "{days}");
        let der = CertificateDer::from_pem_slice(cert.as_bytes()).expect("PEM");
        assert_eq!(loaded.fingerprint, fingerprint(&der));
        assert_eq!(loaded.fingerprint.len(), 32 * 3 - 1);
        assert!(expiry_warning(loaded.not_after, Utc::now()).is_none());
    }

    #[test]
    fn a_missing_file_names_it_and_the_setting() {
        let (cert, key) = valid_pair();
        let mut files = files(&cert, &key);
        files.paths.key = files.paths.key.with_file_name("absent.pem");
        let err = load_now(&files).expect_err("no key file").to_string();
        assert!(err.contains("absent.pem"), "{err}");
        assert!(err.contains("[tls] key"), "{err}");
    }

    #[test]
    fn garbage_is_not_pem() {
        let (_, key) = valid_pair();
        let files = files("this is not a certificate\n", &key);
        let err = load_now(&files).expect_err("garbage").to_string();
        assert!(err.contains("holds no PEM certificate"), "{err}");
        assert!(err.contains("fullchain.pem"), "{err}");

        let (cert, _) = valid_pair();
        let files = self::files(&cert, &cert);
        let err = load_now(&files).expect_err("a cert as key").to_string();
        assert!(err.contains("holds no PEM key"), "{err}");
    }

    #[test]
    fn a_certificate_block_of_garbage_cannot_be_parsed() {
        let (_, key) = valid_pair();
        let garbage = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        let files = files(garbage, &key);
        let err = load_now(&files).expect_err("not X.509").to_string();
        assert!(err.contains("cannot be parsed"), "{err}");
    }

    #[test]
    fn the_key_of_another_certificate_is_a_mismatch() {
        let (cert, _) = valid_pair();
        let (_, other_key) = valid_pair();
        let files = files(&cert, &other_key);
        let err = load_now(&files).expect_err("mismatch").to_string();
        assert!(err.contains("does not belong to the certificate"), "{err}");
        assert!(err.contains("privkey.pem"), "{err}");
    }

    #[test]
    fn an_expired_certificate_says_when_and_what_to_do() {
        let now = SystemTime::now();
        let (cert, key) = pair(now - 100 * DAY, now - 10 * DAY);
        let files = files(&cert, &key);
        let err = load_now(&files).expect_err("expired").to_string();
        let on = (Utc::now() - chrono::Duration::days(10)).format("%Y-%m-%d");
        assert!(err.contains(&format!("expired on {on}")), "{err}");
        assert!(err.contains("certbot renew"), "{err}");
        assert!(err.contains("cert.pem"), "{err}");
    }

    #[test]
    fn a_certificate_from_the_future_blames_the_clock() {
        let now = SystemTime::now();
        let (cert, key) = pair(now + 2 * DAY, now + 90 * DAY);
        let files = files(&cert, &key);
        let err = load_now(&files).expect_err("not yet valid").to_string();
        assert!(err.contains("is not valid before"), "{err}");
        assert!(err.contains("clock"), "{err}");
    }

    #[test]
    fn the_expiry_is_checked_at_the_given_time() {
        let (cert, key) = valid_pair();
        let files = files(&cert, &key);
        let later = Utc::now() + chrono::Duration::days(91);
        let err = load(&files.paths, &provider(), later).expect_err("expired by then");
        assert!(matches!(err, CertError::Expired { .. }), "{err}");
    }

    #[test]
    fn the_warning_counts_days_within_two_weeks() {
        let not_after = DateTime::parse_from_rfc3339("2026-11-01T12:00:00Z")
            .expect("a date")
            .with_timezone(&Utc);
        let at = |days: i64, hours: i64| {
            not_after - chrono::Duration::days(days) - chrono::Duration::hours(hours)
        };
        assert_eq!(expiry_warning(not_after, at(15, 0)), None);
        assert_eq!(expiry_warning(not_after, at(14, 1)), None);
        assert_eq!(
            expiry_warning(not_after, at(14, 0)).as_deref(),
            Some("TLS certificate expires in 14 days, on 2026-11-01")
        );
        assert_eq!(
            expiry_warning(not_after, at(3, 5)).as_deref(),
            Some("TLS certificate expires in 3 days, on 2026-11-01")
        );
        assert_eq!(
            expiry_warning(not_after, at(1, 0)).as_deref(),
            Some("TLS certificate expires in 1 day, on 2026-11-01")
        );
        assert_eq!(
            expiry_warning(not_after, at(0, 2)).as_deref(),
            Some("TLS certificate expires in less than a day, on 2026-11-01")
        );
    }

    #[test]
    fn a_soon_expiring_certificate_loads_with_a_warning() {
        let now = SystemTime::now();
        let (cert, key) = pair(now - 80 * DAY, now + 5 * DAY + Duration::from_secs(600));
        let files = files(&cert, &key);
        let loaded = load_now(&files).expect("still valid");
        let warning = expiry_warning(loaded.not_after, Utc::now()).expect("a warning");
        let date = loaded.not_after.format("%Y-%m-%d");
        assert_eq!(
            warning,
            format!("TLS certificate expires in 5 days, on {date}")
        );
    }
}
