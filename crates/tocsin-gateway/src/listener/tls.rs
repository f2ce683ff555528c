//! Built-in TLS on the gateway's one port: HTTPS and WSS with rustls (ring), TLS 1.2
//! and 1.3 only, rustls's default cipher suites (all AEAD with forward secrecy), ALPN
//! `http/1.1` (a WebSocket upgrade is an HTTP/1.1 request).
//!
//! The accept loop hands each connection here after its first byte: a byte other than
//! a TLS handshake record is plain HTTP sent to the wrong scheme, answered with a short
//! 400 that says so; otherwise the handshake must finish by the same deadline as the
//! first byte (`http.handshake_timeout_ms` from the accept), so a client that opens
//! TCP and stalls mid-handshake is dropped like one that never sends headers.
//!
//! The served pair is one `Arc<CertifiedKey>` behind a lock that rustls asks for on
//! every handshake ([`Resolver`]). A reload (`reload.rs`: the files changed, or
//! SIGHUP) swaps it whole: new handshakes get the new certificate, open connections
//! (WebSockets included) keep the session they negotiated. A pair that fails the
//! checks (`certs.rs`) is logged and the old one kept.

mod certs;
mod reload;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::crypto::CryptoProvider;
use tokio_rustls::rustls::server::{ClientHello, ResolvesServerCert};
use tokio_rustls::rustls::sign::CertifiedKey;
use tokio_rustls::rustls::{ServerConfig, version};
use tokio_rustls::server::TlsStream;
use tokio_util::sync::CancellationToken;

pub use certs::{CertError, CertPaths, EXPIRY_WARNING_DAYS, expiry_warning, fingerprint};

use super::Throttled;
use crate::clock::Clock;
use crate::config::TlsConfig;
use certs::LoadedPair;

/// The first byte of every TLS connection: a handshake record (RFC 8446 §5.1).
const HANDSHAKE_RECORD: u8 = 0x16;
/// How long a plain-HTTP client gets to send its request and read the 400.
const REFUSAL_TIMEOUT: Duration = Duration::from_secs(1);

/// The TLS side of the listener: the acceptor and the pair it serves.
pub struct Tls {
    /// Where the pair is read from, again on every reload.
    paths: CertPaths,
    /// The pair new handshakes get; shared with the acceptor's config.
    resolver: Arc<Resolver>,
    /// rustls's server config (built once: only the pair changes) in tokio's clothes.
    acceptor: TlsAcceptor,
    /// ring, named explicitly rather than rustls's process-wide default, so nothing
    /// else in the process decides which library signs.
    provider: Arc<CryptoProvider>,
    /// "Now" for validity checks and the expiry warning.
    clock: Clock,
    /// Set by SIGHUP (through the CLI); a permit is kept if the watcher is busy, so
    /// a signal during a reload is not lost.
    reload_requested: Notify,
    /// How often the files are checked for a change; `None`: on SIGHUP only.
    check_every: Option<Duration>,
    /// The files' stamps at the last (attempted) load, to notice a change.
    stamps: Mutex<reload::Stamps>,
}

/// The pair rustls serves. Std lock: held for one `Arc` clone or swap, never across
/// an await.
#[derive(Debug)]
struct Resolver {
    /// The current pair.
    current: RwLock<Arc<LoadedPair>>,
}

impl Resolver {
    fn current(&self) -> Arc<LoadedPair> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn swap(&self, pair: LoadedPair) {
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(pair);
    }
}

impl ResolvesServerCert for Resolver {
    // One certificate for every name: SNI is not needed to pick it (clients that
    // connect by IP send none).
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.current().certified.clone())
    }
}

impl Tls {
    /// [`Tls::load`] with the files and the polling interval of `[tls]`.
    pub fn from_config(
        config: &TlsConfig,
        data_dir: &Path,
        clock: Clock,
    ) -> Result<Tls, CertError> {
        let paths = CertPaths {
            cert: config.cert_path(data_dir),
            key: config.key_path(data_dir),
        };
        let check_every =
            (config.reload_check_secs > 0).then(|| Duration::from_secs(config.reload_check_secs));
        Tls::load(paths, check_every, clock)
    }

    /// Reads and checks the pair: an error here stops the gateway from starting.
    /// `check_every` of `None` turns the file polling off (SIGHUP still reloads).
    pub fn load(
        paths: CertPaths,
        check_every: Option<Duration>,
        clock: Clock,
    ) -> Result<Tls, CertError> {
        let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
        // Stamped before reading: a change while reading is seen by the next check.
        let stamps = reload::Stamps::of(&paths);
        let pair = certs::load(&paths, &provider, clock.now())?;
        tracing::info!(
            cert = %paths.cert.display(),
            fingerprint = %pair.fingerprint,
            not_after = %pair.not_after,
            "TLS on: serving HTTPS and WSS"
        );
        let resolver = Arc::new(Resolver {
            current: RwLock::new(Arc::new(pair)),
        });
        let mut config = ServerConfig::builder_with_provider(provider.clone())
            .with_protocol_versions(&[&version::TLS13, &version::TLS12])
            .expect("ring's provider has suites for TLS 1.2 and 1.3")
            .with_no_client_auth()
            .with_cert_resolver(resolver.clone());
        // HTTP/1.1 only: the WebSocket upgrade needs it, and h2 is not tested here.
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        Ok(Tls {
            paths,
            resolver,
            acceptor: TlsAcceptor::from(Arc::new(config)),
            provider,
            clock,
            reload_requested: Notify::new(),
            check_every,
            stamps: Mutex::new(stamps),
        })
    }

    /// The certificate file, for messages.
    pub fn cert_path(&self) -> &Path {
        &self.paths.cert
    }

    /// The served leaf's SHA-256 fingerprint (`AB:CD:…`).
    pub fn fingerprint(&self) -> String {
        self.resolver.current().fingerprint.clone()
    }

    /// "TLS certificate expires in N days, on DATE" within
    /// [`EXPIRY_WARNING_DAYS`] of the served leaf's expiry.
    pub fn expiry_warning(&self) -> Option<String> {
        expiry_warning(self.resolver.current().not_after, self.clock.now())
    }

    /// Asks the watcher to read the files again now (SIGHUP).
    pub fn request_reload(&self) {
        self.reload_requested.notify_one();
    }

    /// Serves TLS on an accepted connection whose first byte was `first_byte`: refuses
    /// plain HTTP, then runs the handshake until `deadline`. `None`: the connection
    /// was answered or dropped here.
    pub(super) async fn accept(
        &self,
        stream: TcpStream,
        peer: SocketAddr,
        first_byte: u8,
        deadline: Instant,
        shutdown: &CancellationToken,
    ) -> Option<TlsStream<TcpStream>> {
        if first_byte != HANDSHAKE_RECORD {
            crate::metrics::refused("plain_http_on_tls", crate::metrics::Surface::Connection);
            refuse_plaintext(stream, peer).await;
            return None;
        }
        static FAILURES: Throttled = Throttled::new();
        let handshake = tokio::time::timeout_at(deadline, self.acceptor.accept(stream));
        let finished = tokio::select! {
            finished = handshake => finished,
            () = shutdown.cancelled() => return None,
        };
        match finished {
            Ok(Ok(stream)) => Some(stream),
            Ok(Err(err)) => {
                crate::metrics::refused(
                    "tls_handshake_failed",
                    crate::metrics::Surface::Connection,
                );
                FAILURES.log(
                    |count| tracing::debug!(%peer, error = %err, count, "TLS handshake failed"),
                );
                None
            }
            Err(_) => {
                crate::metrics::refused("handshake_timeout", crate::metrics::Surface::Connection);
                FAILURES.log(|count| {
                    tracing::debug!(%peer, count, "closed a connection that did not finish its TLS handshake in time")
                });
                None
            }
        }
    }
}

/// Answers plain HTTP on the TLS port with a 400 naming the right scheme (the API's
/// error shape, code `invalid_request`, so clients show its message). The request
/// is read first: closing a socket with unread bytes resets it, and the client would
/// see "connection reset" instead of the answer.
async fn refuse_plaintext(mut stream: TcpStream, peer: SocketAddr) {
    static REFUSALS: Throttled = Throttled::new();
    REFUSALS.log(|count| {
        tracing::debug!(%peer, count, "refused plain HTTP on the TLS port (the client used http:// or ws://)")
    });
    let body = r#"{"code":"invalid_request","message":"this port speaks HTTPS: use https:// (or wss://)"}"#;
    let response = format!(
        "HTTP/1.1 400 Bad Request\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let exchange = async {
        read_request_head(&mut stream).await?;
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await?;
        // Until the client closes: what it still sends must not reset the answer.
        let mut sink = [0_u8; 1024];
        while stream.read(&mut sink).await? > 0 {}
        Ok::<(), std::io::Error>(())
    };
    let _ = tokio::time::timeout(REFUSAL_TIMEOUT, exchange).await;
}

/// Reads until the end of the request's headers (or 16 KiB, or the end of the stream).
async fn read_request_head(stream: &mut TcpStream) -> std::io::Result<()> {
    const MAX: usize = 16 * 1024;
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0_u8; 1024];
    while head.len() < MAX && !head.windows(4).any(|window| window == b"\r\n\r\n") {
        let read = stream.read(&mut chunk).await?;
        if read == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..read]);
    }
    Ok(())
}
