//! The checks a publish request must pass on its own, before any lookup: a stored kind
//! with data of its shape, a title, a body and an idempotency key within their limits,
//! and a `url` that opens a page rather than runs code.
//!
//! Kept apart from target resolution (which needs the store) so that it is pure: the
//! property tests below drive every kind of body through the same decoding as
//! `ApiJson<PublishRequest>` and then through [`validate`], with no gateway running.

use tocsin_protocol::http::PublishRequest;
use tocsin_protocol::notification::link::check_url;
use tocsin_protocol::notification::{MAX_BODY_LEN, MAX_TITLE_LEN};

use crate::error::AppError;

/// The longest idempotency key accepted, in bytes (`str::len`) like the other limits;
/// the refusal and docs/PROTOCOL.md say bytes.
const MAX_IDEMPOTENCY_KEY_LEN: usize = 200;

/// What a request that passed keeps from the checks.
#[derive(Debug)]
pub(super) struct Validated {
    /// The title without surrounding whitespace, as it is stored and shown.
    pub title: String,
}

/// Checks everything that needs no lookup. Every refusal is the publisher's mistake,
/// hence a 4xx (422, or 413 for an oversized body), never a 5xx.
pub(super) fn validate(request: &PublishRequest) -> Result<Validated, AppError> {
    // Reading is lenient (a newer kind is kept as received, for clients); storing is
    // not: the gateway stores only kinds and shapes it knows, plus unknown fields.
    request.data.check_typed().map_err(AppError::invalid)?;
    let kind = request.data.kind();
    if kind.is_ephemeral() {
        return Err(AppError::invalid(format!(
            "'{}' is ephemeral (live only, never stored); clients send it over the WebSocket",
            kind.as_str()
        )));
    }
    let title = request.title.trim();
    if title.is_empty() || title.len() > MAX_TITLE_LEN {
        return Err(AppError::invalid(format!(
            "title must be 1-{MAX_TITLE_LEN} bytes"
        )));
    }
    if request.body.len() > MAX_BODY_LEN {
        return Err(AppError::too_large(format!(
            "body must be at most {MAX_BODY_LEN} bytes"
        )));
    }
    if let Some(url) = &request.url {
        check_url(url).map_err(AppError::invalid)?;
    }
    if let Some(key) = &request.idempotency_key
        && (key.is_empty() || key.len() > MAX_IDEMPOTENCY_KEY_LEN)
    {
        return Err(AppError::invalid(format!(
            "idempotency_key must be 1-{MAX_IDEMPOTENCY_KEY_LEN} bytes"
        )));
    }
    Ok(Validated {
        title: title.to_owned(),
    })
}

#[cfg(test)]
mod tests;
