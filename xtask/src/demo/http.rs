//! The demo's HTTP calls: JSON in, JSON out, the gateway's error body on refusal.

use anyhow::{Context, Result, bail};
use reqwest::RequestBuilder;
use serde::de::DeserializeOwned;
use tocsin_protocol::ErrorBody;

/// Sends a request and reads its JSON answer; a non-2xx status becomes an error that
/// carries the gateway's error code and message (`what` names the call, e.g.
/// `POST /v1/publish`).
pub async fn send_json<T: DeserializeOwned>(request: RequestBuilder, what: &str) -> Result<T> {
    let response = request.send().await.with_context(|| what.to_owned())?;
    let status = response.status();
    if !status.is_success() {
        let text = response.text().await.unwrap_or_default();
        let detail = serde_json::from_str::<ErrorBody>(&text)
            .map_or(text, |error| describe_error(Some(&error)));
        bail!("{what} was refused: {status} {detail}");
    }
    response
        .json()
        .await
        .with_context(|| format!("{what} answered with an unexpected body"))
}

/// An error body for a human: `Forbidden: the key belongs to another firm`.
pub fn describe_error(error: Option<&ErrorBody>) -> String {
    error.map_or_else(
        || "no reason given".into(),
        |error| format!("{:?}: {}", error.code, error.message),
    )
}
