//! The gateway's address, validated once: https anywhere, plain http only to this
//! machine (tokens must never cross a network in clear).

use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::str::FromStr;

use reqwest::Url;
use serde::{Deserialize, Serialize};

use super::pin::CertFingerprint;

/// A validated gateway base URL, always ending with `/` (a path prefix such as
/// `https://host/tocsin/` is kept). Displays as that normalised URL.
///
/// It may carry the SHA-256 fingerprint of a certificate the user confirmed
/// ([`ServerUrl::with_pin`]): every connection made from it then trusts exactly that
/// certificate. The pin is not part of the text form (serde, `Display`): the
/// profile keeps it beside the URL.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct ServerUrl {
    /// The base, `https://host[:port]/[prefix/]`.
    base: Url,
    /// `ws(s)://host[:port]/[prefix/]v1/ws`.
    websocket: Url,
    /// The one certificate to accept, when the user confirmed one (https only).
    pin: Option<CertFingerprint>,
}

/// Why a gateway URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ServerUrlError {
    /// Not a URL at all.
    #[error("{input:?} is not a valid URL: {reason}")]
    Invalid {
        /// What was given.
        input: String,
        /// What is wrong with it.
        reason: String,
    },
    /// Neither https nor http.
    #[error("unsupported scheme {scheme:?}: use https://")]
    Scheme {
        /// The scheme given.
        scheme: String,
    },
    /// Plain http to another machine: tokens would travel in clear.
    #[error("plain http to {host} is refused: use https://")]
    PlainHttp {
        /// The host given.
        host: String,
    },
    /// A user name or password in the URL.
    #[error("the server URL must not contain a user name or password")]
    Credentials,
    /// A query or a fragment in the URL.
    #[error("the server URL must not contain a query (?…) or a fragment (#…)")]
    QueryOrFragment,
}

impl ServerUrl {
    /// Parses and validates a gateway URL (surrounding spaces are ignored).
    pub fn parse(input: &str) -> Result<Self, ServerUrlError> {
        let input = input.trim();
        let invalid = |reason: String| ServerUrlError::Invalid {
            input: input.to_owned(),
            reason,
        };
        if !input.contains("://") {
            return Err(invalid("no scheme: write https://<host>".into()));
        }
        let mut base = Url::parse(input).map_err(|err| invalid(err.to_string()))?;
        let websocket_scheme = match base.scheme() {
            "https" => "wss",
            "http" => "ws",
            other => {
                return Err(ServerUrlError::Scheme {
                    scheme: other.to_owned(),
                });
            }
        };
        let Some(host) = base.host_str().filter(|host| !host.is_empty()) else {
            return Err(invalid("no host".into()));
        };
        if base.scheme() == "http" && !is_loopback(host) {
            return Err(ServerUrlError::PlainHttp {
                host: host.to_owned(),
            });
        }
        if !base.username().is_empty() || base.password().is_some() {
            return Err(ServerUrlError::Credentials);
        }
        if base.query().is_some() || base.fragment().is_some() {
            return Err(ServerUrlError::QueryOrFragment);
        }
        if !base.path().ends_with('/') {
            let path = format!("{}/", base.path());
            base.set_path(&path);
        }
        let mut websocket = base
            .join(tocsin_protocol::WS_PATH.trim_start_matches('/'))
            .map_err(|err| invalid(err.to_string()))?;
        websocket
            .set_scheme(websocket_scheme)
            .map_err(|()| invalid("cannot derive the WebSocket URL".into()))?;
        Ok(ServerUrl {
            base,
            websocket,
            pin: None,
        })
    }

    /// The normalised base URL, ending with `/`.
    pub fn as_str(&self) -> &str {
        self.base.as_str()
    }

    /// The normalised base URL.
    pub fn url(&self) -> &Url {
        &self.base
    }

    /// The WebSocket endpoint: `wss://…/v1/ws` (or `ws://` for loopback http).
    pub fn websocket_url(&self) -> &Url {
        &self.websocket
    }

    /// The same gateway, trusting exactly the certificate `pin` (or, with `None`,
    /// the usual roots). Ignored for plain http to loopback, which has no certificate.
    pub fn with_pin(mut self, pin: Option<CertFingerprint>) -> Self {
        self.pin = pin.filter(|_| self.is_https());
        self
    }

    /// The confirmed certificate's fingerprint, if one is pinned.
    pub fn pin(&self) -> Option<CertFingerprint> {
        self.pin
    }

    /// The TLS configuration of a pinned gateway; `None`: the usual verification.
    pub(crate) fn pinned_tls(&self) -> Option<std::sync::Arc<rustls::ClientConfig>> {
        self.pin.map(super::pin::pinned_config)
    }

    /// True for `https://` (the WebSocket then uses `wss://`).
    pub fn is_https(&self) -> bool {
        self.base.scheme() == "https"
    }

    /// The URL of an API route, given relative to the base (`v1/auth/login`).
    pub(crate) fn endpoint(&self, route: &str) -> Url {
        let mut url = self.base.clone();
        let path = format!("{}{}", self.base.path(), route.trim_start_matches('/'));
        url.set_path(&path);
        url
    }
}

/// `localhost`, 127.0.0.0/8, `::1` (and `::ffff:127.x.y.z`), as the URL parser
/// normalised them (IPv4 in dotted decimal, IPv6 in brackets).
fn is_loopback(host: &str) -> bool {
    if let Some(v6) = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')) {
        return match v6.parse::<Ipv6Addr>() {
            Ok(ip) => ip.is_loopback() || ip.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
            Err(_) => false,
        };
    }
    match host.parse::<Ipv4Addr>() {
        Ok(ip) => ip.is_loopback(),
        Err(_) => host.eq_ignore_ascii_case("localhost"),
    }
}

impl fmt::Display for ServerUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for ServerUrl {
    type Err = ServerUrlError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<String> for ServerUrl {
    type Error = ServerUrlError;

    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<ServerUrl> for String {
    fn from(value: ServerUrl) -> Self {
        value.base.into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> ServerUrl {
        ServerUrl::parse(input).unwrap_or_else(|err| panic!("{input}: {err}"))
    }

    #[test]
    fn https_is_accepted_anywhere() {
        let url = ok("https://tocsin.dupont.fr");
        assert_eq!(url.as_str(), "https://tocsin.dupont.fr/");
        assert!(url.is_https());
        assert_eq!(url.websocket_url().as_str(), "wss://tocsin.dupont.fr/v1/ws");
        assert_eq!(
            url.endpoint("v1/auth/login").as_str(),
            "https://tocsin.dupont.fr/v1/auth/login"
        );
        assert_eq!(
            ok("  https://10.0.0.1:8443/ ").as_str(),
            "https://10.0.0.1:8443/"
        );
    }

    #[test]
    fn a_path_prefix_is_kept() {
        for input in ["https://host/tocsin/", "https://host/tocsin"] {
            let url = ok(input);
            assert_eq!(url.as_str(), "https://host/tocsin/");
            assert_eq!(url.websocket_url().as_str(), "wss://host/tocsin/v1/ws");
            assert_eq!(
                url.endpoint("/v1/history").as_str(),
                "https://host/tocsin/v1/history"
            );
        }
    }

    #[test]
    fn plain_http_only_to_loopback() {
        for input in [
            "http://localhost:8080",
            "http://LOCALHOST/",
            "http://127.0.0.1:9000/",
            "http://127.8.9.10/",
            "http://[::1]:8080/",
            "http://127.1/",
            "http://[::ffff:127.0.0.1]/",
        ] {
            let url = ok(input);
            assert_eq!(url.websocket_url().scheme(), "ws", "{input}");
        }
        assert_eq!(
            ok("http://localhost:8080/gw").websocket_url().as_str(),
            "ws://localhost:8080/gw/v1/ws"
        );
        for (input, host) in [
            ("http://10.0.0.1/", "10.0.0.1"),
            ("http://tocsin.dupont.fr", "tocsin.dupont.fr"),
            ("http://localhost.evil.com/", "localhost.evil.com"),
            ("http://[2001:db8::1]/", "[2001:db8::1]"),
            ("http://0.0.0.0/", "0.0.0.0"),
        ] {
            let err = ServerUrl::parse(input).expect_err(input);
            assert_eq!(
                err,
                ServerUrlError::PlainHttp {
                    host: host.to_owned()
                }
            );
            assert_eq!(
                err.to_string(),
                format!("plain http to {host} is refused: use https://")
            );
        }
    }

    #[test]
    fn other_shapes_are_refused() {
        assert!(matches!(
            ServerUrl::parse("tocsin.dupont.fr"),
            Err(ServerUrlError::Invalid { .. })
        ));
        assert!(matches!(
            ServerUrl::parse("localhost:8080"),
            Err(ServerUrlError::Invalid { .. })
        ));
        assert!(matches!(
            ServerUrl::parse("ftp://host/"),
            Err(ServerUrlError::Scheme { .. })
        ));
        assert!(matches!(
            ServerUrl::parse("wss://host/"),
            Err(ServerUrlError::Scheme { .. })
        ));
        assert_eq!(
            ServerUrl::parse("https://me:pw@host/"),
            Err(ServerUrlError::Credentials)
        );
        assert_eq!(
            ServerUrl::parse("https://host/?x=1"),
            Err(ServerUrlError::QueryOrFragment)
        );
        assert!(ServerUrl::parse("https://").is_err());
    }

    #[test]
    fn serde_round_trip_validates() {
        let url: ServerUrl = serde_json::from_str(r#""https://host/tocsin""#).expect("parses");
        assert_eq!(
            serde_json::to_string(&url).expect("serialises"),
            r#""https://host/tocsin/""#
        );
        assert!(serde_json::from_str::<ServerUrl>(r#""http://10.0.0.1""#).is_err());
    }
}
