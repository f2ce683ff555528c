//! Publishing over the real HTTP API (`POST /v1/publish`, docs/PROTOCOL.md §7) with
//! the firm's key, each notification's body stamped with [`clock::now_us`] so the
//! receiving client can measure publish → parsed latency.

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use tocsin_protocol::http::PublishResponse;

use crate::clock;

/// A keep-alive HTTP client for one API key.
#[derive(Clone)]
pub struct Publisher {
    http: reqwest::Client,
    url: String,
    batch_url: String,
    bearer: String,
}

/// A realistic notification: a document added to a dossier (~400 bytes on the wire).
pub fn dossier_update(to: &str, sequence: u64) -> Value {
    json!({
        "to": to,
        "kind": "dossier-updated",
        "data": {
            "dossier_number": "2026-0142",
            "action": "document_added",
            "document_name": format!("conclusions-{sequence}.pdf"),
        },
        "title": "Nouveau document — 2026-0142",
        "body": clock::stamp(clock::now_us()),
    })
}

/// [`dossier_update`] as ready-to-send JSON text, stamped `at_us` (e.g. the intended
/// send time of an open-loop schedule): no `Value` tree per request, so building it
/// costs the load generator little.
pub fn dossier_update_text(to: &str, sequence: u64, at_us: u64) -> String {
    format!(
        concat!(
            r#"{{"to":"{}","kind":"dossier-updated","data":{{"dossier_number":"2026-0142","#,
            r#""action":"document_added","document_name":"conclusions-{}.pdf"}},"#,
            r#""title":"Nouveau document — 2026-0142","body":"{}"}}"#
        ),
        to,
        sequence,
        clock::stamp(at_us)
    )
}

impl Publisher {
    /// A publisher for `base_url` (`http://127.0.0.1:port`) with key `key`.
    pub fn new(base_url: &str, key: &str) -> Result<Publisher> {
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(1024)
            .tcp_nodelay(true)
            .build()
            .context("building the HTTP client")?;
        Ok(Publisher {
            http,
            url: format!("{base_url}/v1/publish"),
            batch_url: format!("{base_url}/v1/publish/batch"),
            bearer: format!("Bearer {key}"),
        })
    }

    /// Publishes one notification; the body is stamped now.
    pub async fn publish(&self, request: &Value) -> Result<PublishResponse> {
        let response = self
            .http
            .post(&self.url)
            .header("Authorization", &self.bearer)
            .json(request)
            .send()
            .await
            .context("POST /v1/publish")?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            bail!("POST /v1/publish answered {status}: {text}");
        }
        response
            .json()
            .await
            .context("reading the publish response")
    }

    /// Publishes one ready-made JSON body; returns the status (the body is read and
    /// dropped, so the keep-alive connection is reused). Transport errors are `Err`.
    pub async fn publish_text(&self, body: String) -> Result<reqwest::StatusCode> {
        let response = self
            .http
            .post(&self.url)
            .header("Authorization", &self.bearer)
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .await
            .context("POST /v1/publish")?;
        let status = response.status();
        response
            .bytes()
            .await
            .context("reading the publish response")?;
        Ok(status)
    }

    /// Publishes up to 500 notifications in one transaction.
    pub async fn publish_batch(&self, requests: &[Value]) -> Result<Vec<PublishResponse>> {
        let response = self
            .http
            .post(&self.batch_url)
            .header("Authorization", &self.bearer)
            .json(&json!({ "notifications": requests }))
            .send()
            .await
            .context("POST /v1/publish/batch")?;
        let status = response.status();
        if !status.is_success() {
            let text = response.text().await.unwrap_or_default();
            bail!("POST /v1/publish/batch answered {status}: {text}");
        }
        let body: Value = response
            .json()
            .await
            .context("reading the batch response")?;
        serde_json::from_value(body["results"].clone()).context("the batch response's results")
    }
}
