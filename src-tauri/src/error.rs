//! The one error type of the app's commands: a stable `code` the panel can branch on
//! and a `message` already written for the user (docs/DESKTOP_IPC.md lists the codes).

use serde::Serialize;
use tocsin_client::api::{ApiError, ServerUrlError};

use crate::i18n::Locale;

/// An error as the panel receives it (`{ code, message }`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
#[error("{message}")]
pub struct AppError {
    /// Stable machine-readable code (`unreachable`, `unauthorized`, …).
    pub code: &'static str,
    /// What went wrong and what to do, in the user's language.
    pub message: String,
    /// `untrusted_certificate` only: the SHA-256 fingerprint the gateway presented,
    /// for the user to compare before trusting it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fingerprint: Option<String>,
}

impl AppError {
    /// An error with this code and message.
    pub fn new(code: &'static str, message: impl Into<String>) -> Self {
        AppError {
            code,
            message: message.into(),
            fingerprint: None,
        }
    }

    /// A failure of ours (a poisoned lock, a store error): logged in full, shown
    /// briefly.
    pub fn internal(err: impl std::fmt::Display) -> Self {
        tracing::error!(%err, "internal error in a command");
        AppError::new("internal", format!("internal error: {err}"))
    }

    /// The command needs a signed-in account.
    pub fn not_signed_in(locale: Locale) -> Self {
        AppError::new("not_signed_in", locale.strings().not_signed_in)
    }

    /// Maps a sign-in URL error to `invalid_url` / `insecure_url`.
    pub fn from_url(err: &ServerUrlError, locale: Locale) -> Self {
        let s = locale.strings();
        match err {
            ServerUrlError::PlainHttp { .. } => AppError::new("insecure_url", s.err_insecure_url),
            other => AppError::new("invalid_url", format!("{} ({other})", s.err_invalid_url)),
        }
    }

    /// Maps an HTTP API error to the sign-in error codes.
    pub fn from_api(err: &ApiError, locale: Locale) -> Self {
        let s = locale.strings();
        match err {
            ApiError::Unreachable { .. } => {
                AppError::new("unreachable", format!("{} ({err})", s.err_unreachable))
            }
            ApiError::Tls { .. } => AppError::new("tls", format!("{} ({err})", s.err_tls)),
            ApiError::UntrustedCertificate { fingerprint, .. } => AppError {
                fingerprint: Some(fingerprint.to_string()),
                ..AppError::new("untrusted_certificate", s.err_untrusted_certificate)
            },
            ApiError::CertificateChanged(changed) => AppError::new(
                "certificate_changed",
                format!("{} ({changed})", s.err_certificate_changed),
            ),
            ApiError::Unauthorized(_) => AppError::new("unauthorized", s.err_unauthorized),
            ApiError::RateLimited { .. } => {
                AppError::new("rate_limited", format!("{} ({err})", s.err_rate_limited))
            }
            ApiError::Server { .. } => AppError::new("server", format!("{} ({err})", s.err_server)),
            ApiError::Protocol(_) => {
                AppError::new("protocol", format!("{} ({err})", s.err_protocol))
            }
        }
    }
}
