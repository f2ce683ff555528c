//! The pinning verifier against real rustls servers on 127.0.0.1: the HTTP client
//! and the WebSocket each accept the pinned certificate, refuse another one as
//! changed, and an unpinned self-signed one comes back with its fingerprint.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_rustls::TlsAcceptor;

use super::*;
use crate::api::{ApiClient, ApiError};
use crate::gateway::{ConnectError, Gateway, HttpGateway};

/// A fresh self-signed certificate for 127.0.0.1, as `init --tls-self-signed` makes.
fn certificate() -> (rustls::ServerConfig, CertFingerprint) {
    let certified =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("certificate");
    let fingerprint = CertFingerprint::of(certified.cert.der());
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("versions")
        .with_no_client_auth()
        .with_single_cert(vec![certified.cert.der().clone()], key)
        .expect("server config");
    (config, fingerprint)
}

/// An HTTPS server answering every request `204 No Content`, and the fingerprint
/// of its certificate.
async fn serve_https() -> (SocketAddr, CertFingerprint) {
    let (config, fingerprint) = certificate();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(mut tls) = acceptor.accept(socket).await else {
                    return;
                };
                read_request(&mut tls).await;
                let answer = b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n";
                let _ = tls.write_all(answer).await;
                let _ = tls.shutdown().await;
            });
        }
    });
    (addr, fingerprint)
}

/// Reads one request: the headers, then `Content-Length` bytes of body.
async fn read_request<S: tokio::io::AsyncRead + Unpin>(stream: &mut S) {
    let mut received = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let Ok(n) = stream.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        received.extend_from_slice(&buf[..n]);
        let text = String::from_utf8_lossy(&received).to_ascii_lowercase();
        if let Some(end) = text.find("\r\n\r\n") {
            let length = text[..end]
                .lines()
                .find_map(|line| line.strip_prefix("content-length:"))
                .and_then(|value| value.trim().parse::<usize>().ok())
                .unwrap_or(0);
            if received.len() >= end + 4 + length {
                return;
            }
        }
    }
}

/// A WSS server speaking Tocsin's subprotocol, and its certificate's fingerprint.
async fn serve_wss() -> (SocketAddr, CertFingerprint) {
    use tokio_tungstenite::tungstenite::handshake::server::{Request, Response};
    let (config, fingerprint) = certificate();
    let acceptor = TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(socket).await else {
                    return;
                };
                // tungstenite's callback type returns its whole error response.
                #[allow(clippy::result_large_err)]
                let echo = |_: &Request, mut response: Response| {
                    response.headers_mut().insert(
                        "Sec-WebSocket-Protocol",
                        tocsin_protocol::SUBPROTOCOL.parse().expect("header"),
                    );
                    Ok(response)
                };
                let socket = tokio_tungstenite::accept_hdr_async(tls, echo).await;
                // Held open until the client goes.
                if let Ok(mut socket) = socket {
                    use futures_util::StreamExt;
                    while let Some(Ok(_)) = socket.next().await {}
                }
            });
        }
    });
    (addr, fingerprint)
}

fn url(addr: SocketAddr, pin: Option<CertFingerprint>) -> ServerUrl {
    ServerUrl::parse(&format!("https://{addr}/"))
        .expect("url")
        .with_pin(pin)
}

/// Another certificate's fingerprint: what a pin made for a replaced one looks like.
fn other_fingerprint() -> CertFingerprint {
    certificate().1
}

#[test]
fn fingerprints_read_as_people_copy_them() {
    let printed = "AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89:\
                   AB:CD:EF:01:23:45:67:89:AB:CD:EF:01:23:45:67:89";
    let fingerprint: CertFingerprint = printed.parse().expect("parses");
    assert_eq!(fingerprint.to_string(), printed);
    for copy in [
        printed.to_lowercase(),
        printed.replace(':', ""),
        printed.replace(':', " "),
        format!("sha256 Fingerprint={printed}"),
        format!("  {printed}\n"),
    ] {
        assert_eq!(copy.parse::<CertFingerprint>(), Ok(fingerprint), "{copy}");
    }
    assert!("AB:CD".parse::<CertFingerprint>().is_err());
    assert!(format!("{printed}:00").parse::<CertFingerprint>().is_err());
    assert!(
        printed
            .replace('A', "G")
            .parse::<CertFingerprint>()
            .is_err()
    );
}

#[tokio::test]
async fn a_pinned_certificate_is_accepted_over_https() {
    let (addr, fingerprint) = serve_https().await;
    ApiClient::new(url(addr, Some(fingerprint)))
        .logout("tsr_1")
        .await
        .expect("the pinned certificate is trusted");
}

#[tokio::test]
async fn another_certificate_than_the_pinned_one_is_refused_as_changed() {
    let (addr, fingerprint) = serve_https().await;
    let pin = other_fingerprint();
    match ApiClient::new(url(addr, Some(pin))).logout("tsr_1").await {
        Err(ApiError::CertificateChanged(changed)) => {
            assert_eq!(changed.expected, pin);
            assert_eq!(changed.presented, fingerprint);
            let message = changed.to_string();
            assert!(message.contains("certificate changed"), "{message}");
            assert!(message.contains("IT person"), "{message}");
            assert!(message.contains("sign in again"), "{message}");
            assert!(message.contains(&fingerprint.to_string()), "{message}");
        }
        other => panic!("expected a changed certificate, got {other:?}"),
    }
}

#[tokio::test]
async fn an_unpinned_self_signed_certificate_comes_back_with_its_fingerprint() {
    let (addr, fingerprint) = serve_https().await;
    match ApiClient::new(url(addr, None)).logout("tsr_1").await {
        Err(ApiError::UntrustedCertificate {
            fingerprint: presented,
            ..
        }) => assert_eq!(presented, fingerprint),
        other => panic!("expected an untrusted certificate, got {other:?}"),
    }
    let probed = probe(&url(addr, None), Duration::from_secs(10))
        .await
        .expect("probed");
    assert_eq!(probed, fingerprint);
}

#[tokio::test]
async fn the_websocket_accepts_the_pinned_certificate_only() {
    let (addr, fingerprint) = serve_wss().await;
    HttpGateway::new(url(addr, Some(fingerprint)))
        .connect("token")
        .await
        .map_err(|err| format!("{err:?}"))
        .expect("the pinned certificate is trusted");
    match HttpGateway::new(url(addr, Some(other_fingerprint())))
        .connect("token")
        .await
    {
        Err(ConnectError::Refused(reason)) => {
            assert!(reason.contains("certificate changed"), "{reason}");
            assert!(reason.contains(&fingerprint.to_string()), "{reason}");
        }
        Err(other) => panic!("expected a refusal, got {other:?}"),
        Ok(_) => panic!("another certificate was accepted"),
    }
    match HttpGateway::new(url(addr, None)).connect("token").await {
        Err(ConnectError::Refused(reason)) => {
            assert!(reason.contains("not trusted"), "{reason}")
        }
        Err(other) => panic!("expected a refusal, got {other:?}"),
        Ok(_) => panic!("a self-signed certificate was accepted without a pin"),
    }
}
