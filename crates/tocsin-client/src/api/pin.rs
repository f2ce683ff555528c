//! Certificate pinning for a gateway with a self-signed certificate
//! (docs/OPERATIONS.md, "A self-signed certificate for the firm's network").
//!
//! No root store knows such a certificate, so the user confirms its SHA-256
//! fingerprint once (read aloud by whoever ran `init --tls-self-signed`), and from
//! then on this device accepts exactly that leaf and nothing else: [`pinned_config`]
//! is the rustls configuration both the HTTP client and the WebSocket use. A
//! different certificate is refused with [`CertificateChanged`], never accepted.
//! Before anything is pinned, [`probe`] reads the fingerprint a server presents, so
//! the app can show it when the normal verification refused the certificate.

use std::fmt;
use std::str::FromStr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, WebPkiSupportedAlgorithms};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{CertificateError, DigitallySignedStruct, OtherError, SignatureScheme};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::ServerUrl;

/// The SHA-256 digest of a certificate's DER, written like `openssl x509
/// -fingerprint -sha256` and the gateway's `init`: uppercase hex pairs joined by `:`.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct CertFingerprint([u8; 32]);

/// Why a text is not a SHA-256 fingerprint.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("not a SHA-256 fingerprint (64 hexadecimal digits, pairs separated by colons)")]
pub struct FingerprintError;

impl CertFingerprint {
    /// The fingerprint of a certificate (its whole DER encoding).
    pub fn of(der: &[u8]) -> CertFingerprint {
        CertFingerprint(Sha256::digest(der).into())
    }
}

impl FromStr for CertFingerprint {
    type Err = FingerprintError;

    /// Reads `AB:CD:…` as printed, also lowercase, with spaces, or without colons,
    /// and OpenSSL's `sha256 Fingerprint=` prefix: people copy it from anywhere.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let text = text.trim();
        let text = text.rsplit_once('=').map_or(text, |(_, digits)| digits);
        let digits: String = text
            .chars()
            .filter(|c| *c != ':' && !c.is_whitespace())
            .collect();
        let mut bytes = [0u8; 32];
        hex::decode_to_slice(&digits, &mut bytes).map_err(|_| FingerprintError)?;
        Ok(CertFingerprint(bytes))
    }
}

impl fmt::Display for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let pairs: Vec<String> = self.0.iter().map(|byte| format!("{byte:02X}")).collect();
        f.write_str(&pairs.join(":"))
    }
}

impl fmt::Debug for CertFingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CertFingerprint({self})")
    }
}

impl TryFrom<String> for CertFingerprint {
    type Error = FingerprintError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        value.parse()
    }
}

impl From<CertFingerprint> for String {
    fn from(value: CertFingerprint) -> Self {
        value.to_string()
    }
}

/// A pinned gateway presented another certificate. Its words are what the user
/// reads in the app, so they say what to do.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "the gateway's certificate changed: it now presents SHA-256 {presented}, not the \
     confirmed {expected}. Do not continue unless your IT person confirms the new \
     fingerprint; then sign in again to confirm it"
)]
pub struct CertificateChanged {
    /// The fingerprint this device confirmed.
    pub expected: CertFingerprint,
    /// The fingerprint presented now.
    pub presented: CertFingerprint,
}

/// What a TLS failure says about the server's certificate.
#[derive(Debug, Clone)]
pub(crate) enum CertProblem {
    /// The pinned certificate was replaced.
    Changed(CertificateChanged),
    /// The normal verification refused the certificate (unknown issuer, name…).
    Refused(String),
}

/// Finds the rustls verdict in an error's causes (reqwest and tungstenite both
/// carry it inside an `io::Error`), so the caller can tell a certificate problem
/// from any other failure.
pub(crate) fn cert_problem(err: &(dyn std::error::Error + 'static)) -> Option<CertProblem> {
    let problem = match rustls_error(err)? {
        rustls::Error::InvalidCertificate(problem) => problem,
        _ => return None,
    };
    Some(match problem {
        CertificateError::Other(OtherError(other)) => {
            match other.downcast_ref::<CertificateChanged>() {
                Some(changed) => CertProblem::Changed(changed.clone()),
                None => CertProblem::Refused(other.to_string()),
            }
        }
        problem => CertProblem::Refused(format!("{problem:?}")),
    })
}

/// The rustls error among `err`'s causes. An `io::Error`'s `source` skips the error
/// it wraps, and reqwest nests one `io::Error` in another, so those are opened too.
fn rustls_error<'a>(err: &'a (dyn std::error::Error + 'static)) -> Option<&'a rustls::Error> {
    let mut cause = Some(err);
    while let Some(err) = cause {
        if let Some(found) = err.downcast_ref::<rustls::Error>() {
            return Some(found);
        }
        let wrapped = err
            .downcast_ref::<std::io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| rustls_error(inner));
        if wrapped.is_some() {
            return wrapped;
        }
        cause = err.source();
    }
    None
}

/// The provider every connection of this crate uses: ring, like the rest of the tree.
fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// The client configuration that trusts exactly the leaf `pin`.
pub(crate) fn pinned_config(pin: CertFingerprint) -> Arc<rustls::ClientConfig> {
    let provider = provider();
    let verifier = Arc::new(PinnedVerifier {
        pin,
        algorithms: provider.signature_verification_algorithms,
    });
    config_with(provider, verifier)
}

/// A configuration with `verifier`; the versions are rustls' safe defaults, which
/// ring supports, so building cannot fail.
fn config_with(
    provider: Arc<CryptoProvider>,
    verifier: Arc<dyn ServerCertVerifier>,
) -> Arc<rustls::ClientConfig> {
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap_or_else(|_| rustls::ClientConfig::builder());
    Arc::new(
        builder
            .dangerous()
            .with_custom_certificate_verifier(verifier)
            .with_no_client_auth(),
    )
}

/// Accepts the pinned leaf only. The name and dates are not checked: the user
/// confirmed this very certificate, which `init` made for the firm's address; the
/// handshake signatures are, so only the holder of its key passes.
#[derive(Debug)]
struct PinnedVerifier {
    /// The confirmed fingerprint.
    pin: CertFingerprint,
    /// The provider's signature algorithms.
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for PinnedVerifier {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        let presented = CertFingerprint::of(end_entity);
        if presented == self.pin {
            return Ok(ServerCertVerified::assertion());
        }
        let changed = CertificateChanged {
            expected: self.pin,
            presented,
        };
        Err(rustls::Error::InvalidCertificate(CertificateError::Other(
            OtherError(Arc::new(changed)),
        )))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// Records the leaf presented, then refuses it: the handshake stops before any
/// byte of ours is sent, so probing trusts nothing.
#[derive(Debug)]
struct Recorder {
    /// The leaf's fingerprint, once presented.
    seen: Mutex<Option<CertFingerprint>>,
    /// The provider's signature algorithms (never used: the handshake stops first).
    algorithms: WebPkiSupportedAlgorithms,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        if let Ok(mut seen) = self.seen.lock() {
            *seen = Some(CertFingerprint::of(end_entity));
        }
        Err(rustls::Error::InvalidCertificate(
            CertificateError::ApplicationVerificationFailure,
        ))
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.algorithms.supported_schemes()
    }
}

/// The fingerprint of the leaf certificate `server` presents (a handshake that is
/// abandoned as soon as the certificate arrives).
pub async fn probe(server: &ServerUrl, timeout: Duration) -> Result<CertFingerprint, String> {
    let url = server.url();
    let (Some(host), Some(port)) = (url.host_str(), url.port_or_known_default()) else {
        return Err(format!("{server} names no host"));
    };
    // IPv6 hosts come in brackets; the socket and the TLS name want the bare address.
    let host = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .to_owned();
    let name = match host.parse::<std::net::IpAddr>() {
        Ok(ip) => Ok(ServerName::from(ip)),
        Err(_) => ServerName::try_from(host.clone()),
    }
    .map_err(|err| format!("{server}: {err}"))?;
    let provider = provider();
    let recorder = Arc::new(Recorder {
        seen: Mutex::new(None),
        algorithms: provider.signature_verification_algorithms,
    });
    let connector = tokio_rustls::TlsConnector::from(config_with(provider, recorder.clone()));
    let handshake = async {
        let socket = tokio::net::TcpStream::connect((host.as_str(), port))
            .await
            .map_err(|err| format!("cannot reach {server}: {err}"))?;
        // The handshake fails by design once the certificate is recorded.
        let _ = connector.connect(name, socket).await;
        Ok::<(), String>(())
    };
    tokio::time::timeout(timeout, handshake)
        .await
        .map_err(|_| format!("{server}: no certificate within {timeout:?}"))??;
    let seen = recorder.seen.lock().map(|seen| *seen).unwrap_or(None);
    seen.ok_or_else(|| format!("{server} presented no certificate"))
}

#[cfg(test)]
mod tests;
