//! Webhooks: the firm's software hears what the gateway did about its deadlines —
//! `deadline.reminded`, `deadline.escalated`, `deadline.acknowledged` — without
//! polling. Events are queued durably in the transaction that did what they report
//! (`store/sqlite/webhooks.rs`); this task delivers them, oldest first, and retries
//! each until the endpoint answers 2xx: after 1 s, then doubling up to an hour, with
//! jitter, across restarts. An event may arrive more than once (a lost answer);
//! receivers deduplicate by its id.
//!
//! Each request is a `POST` of the JSON event with
//! `Tocsin-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
//! `Tocsin-Event-Id` and `Tocsin-Event-Type`. A receiver recomputes the HMAC over the
//! raw body with its secret, compares in constant time, and refuses a timestamp more
//! than five minutes old (a replayed request). docs/DEADLINES.md shows the check.

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use crate::clock::Clock;
use crate::state::AppState;
use crate::store::{Store, WebhookAttempt, WebhookEvent};

/// The signature header.
pub const SIGNATURE_HEADER: &str = "Tocsin-Signature";
/// The event id header (also `id` in the body).
pub const EVENT_ID_HEADER: &str = "Tocsin-Event-Id";
/// The event type header (also `type` in the body).
pub const EVENT_TYPE_HEADER: &str = "Tocsin-Event-Type";
/// Events delivered at once per round (a slow endpoint holds only these).
const PARALLEL: u32 = 8;
/// How long an endpoint may take to answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The longest wait between two attempts of one event.
const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// `t=<timestamp>,v1=<hex HMAC-SHA256(secret, "<timestamp>.<body>")>`.
pub fn signature(secret: &str, timestamp: i64, body: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(secret.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC takes keys of any length"));
    mac.update(format!("{timestamp}.{body}").as_bytes());
    format!(
        "t={timestamp},v1={}",
        hex::encode(mac.finalize().into_bytes())
    )
}

/// Checks a webhook URL: `https://`, or `http://` to a loopback address only (a
/// receiver on the gateway's own machine).
pub fn check_url(text: &str) -> Result<(), String> {
    let url = url::Url::parse(text).map_err(|err| format!("url: {err}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(name)) => name == "localhost",
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err("url: use https:// (plain http only to a loopback address)".into()),
    }
}

/// The wait before attempt `attempts + 1`: 1 s doubling up to an hour, less up to half
/// of it at random so a firm's queue does not retry in lockstep.
fn backoff(attempts: u32) -> Duration {
    let full = Duration::from_secs(1u64 << attempts.min(12)).min(MAX_BACKOFF);
    let jitter = rand::random::<f64>() * 0.5;
    full.mul_f64(1.0 - jitter)
}

/// The delivery task.
pub struct Deliverer {
    store: Arc<dyn Store>,
    clock: Clock,
    wake: Arc<Notify>,
    shutdown: CancellationToken,
    client: reqwest::Client,
}

impl Deliverer {
    /// The gateway's deliverer.
    pub fn of(state: &AppState) -> anyhow::Result<Deliverer> {
        let client = reqwest::Client::builder()
            .timeout(TIMEOUT)
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("tocsin-gateway/", env!("CARGO_PKG_VERSION")))
            .build()?;
        Ok(Deliverer {
            store: state.store.clone(),
            clock: state.clock.clone(),
            wake: state.webhook_wake.clone(),
            shutdown: state.shutdown.clone(),
            client,
        })
    }

    /// Runs until shutdown.
    pub async fn run(self) {
        loop {
            let now = self.clock.now();
            let next = match self.round(now).await {
                Ok(n) if n >= PARALLEL as usize => continue,
                Ok(_) => self.store.next_webhook_at().await.unwrap_or_else(|err| {
                    tracing::error!(error = %err, "cannot read the webhook queue; retrying");
                    Some(now + chrono::Duration::seconds(1))
                }),
                Err(err) => {
                    tracing::error!(error = %err, "cannot read the webhook queue; retrying");
                    Some(now + chrono::Duration::seconds(1))
                }
            };
            let far = now + chrono::Duration::from_std(crate::clock::MAX_SLEEP).unwrap_or_default();
            tokio::select! {
                _ = self.clock.sleep_until(next.unwrap_or(far).min(far)) => {}
                _ = self.wake.notified() => {}
                _ = self.shutdown.cancelled() => return,
            }
        }
    }

    /// Attempts the events due now, at most [`PARALLEL`] at once.
    async fn round(&self, now: DateTime<Utc>) -> Result<usize, crate::store::StoreError> {
        let due = self.store.due_webhook_events(now, PARALLEL).await?;
        let count = due.len();
        let attempts = futures_util::future::join_all(due.into_iter().map(|event| async move {
            let attempt = self.attempt(&event).await;
            (event, attempt)
        }))
        .await;
        for (event, attempt) in attempts {
            crate::metrics::webhook_attempt(matches!(attempt, WebhookAttempt::Delivered { .. }));
            if let WebhookAttempt::Failed { error, retry_at } = &attempt {
                tracing::warn!(
                    tenant = %event.tenant,
                    event = %event.event_id,
                    kind = %event.kind,
                    attempts = event.attempts + 1,
                    %retry_at,
                    "webhook delivery failed: {error}"
                );
            }
            self.store.record_webhook_attempt(event.id, attempt).await?;
        }
        Ok(count)
    }

    async fn attempt(&self, event: &WebhookEvent) -> WebhookAttempt {
        let now = self.clock.now();
        let failed = |error: String| WebhookAttempt::Failed {
            retry_at: now + chrono::Duration::from_std(backoff(event.attempts)).unwrap_or_default(),
            error,
        };
        if let Err(err) = check_url(&event.url) {
            return failed(err);
        }
        let sent = self
            .client
            .post(&event.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(
                SIGNATURE_HEADER,
                signature(&event.secret, now.timestamp(), &event.body),
            )
            .header(EVENT_ID_HEADER, &event.event_id)
            .header(EVENT_TYPE_HEADER, &event.kind)
            .body(event.body.clone())
            .send()
            .await;
        match sent {
            Ok(response) if response.status().is_success() => WebhookAttempt::Delivered { at: now },
            Ok(response) => failed(format!("the endpoint answered {}", response.status())),
            Err(err) if err.is_timeout() => failed(format!("no answer within {TIMEOUT:?}")),
            Err(err) => failed(format!("cannot reach the endpoint: {err}")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_signature_is_the_documented_hmac() {
        // Computed with another implementation:
        // printf %s '1700000000.{"a":1}' | openssl dgst -sha256 -hmac s3cret
        assert_eq!(
            signature("s3cret", 1_700_000_000, r#"{"a":1}"#),
            "t=1700000000,v1=1698a50bc74d1ff1db85c4e0a5297c2ad9fdba245d5737cdb789e4cc6e098940"
        );
    }

    #[test]
    fn only_https_or_loopback_http_is_accepted() {
        assert!(check_url("https://dms.dupont.example/hooks/tocsin").is_ok());
        assert!(check_url("http://127.0.0.1:8080/hook").is_ok());
        assert!(check_url("http://localhost/hook").is_ok());
        assert!(check_url("http://dms.dupont.example/hook").is_err());
        assert!(check_url("ftp://x/").is_err());
    }

    #[test]
    fn retries_back_off_to_an_hour() {
        assert!(backoff(0) <= Duration::from_secs(1) && backoff(0) >= Duration::from_millis(500));
        assert!(backoff(5) <= Duration::from_secs(32));
        assert!(backoff(40) <= MAX_BACKOFF && backoff(40) >= MAX_BACKOFF / 2);
    }
}
