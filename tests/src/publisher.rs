//! Notifications to publish, and a publisher task that keeps publishing and records
//! exactly what the gateway acknowledged.

use chrono::{Duration as ChronoDuration, Utc};
use tocsin_protocol::NotificationData;
use tocsin_protocol::http::{PublishRequest, PublishResponse};
use tocsin_protocol::notification::{
    ConversationMessage, DeadlineAlert, DeadlineUrgency, DossierAction, DossierUpdated,
    EmailReceived, ProposalCreated,
};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::http::Api;

/// An `email-received` notification to `to`.
pub fn email(to: &str, title: &str) -> PublishRequest {
    PublishRequest {
        url: None,
        to: to.to_owned(),
        tenant: None,
        data: NotificationData::EmailReceived(EmailReceived {
            extra: Default::default(),
            subject: title.to_owned(),
            from: "Maître Martin <martin@exemple.fr>".to_owned(),
            dossier_number: Some("2026-0142".to_owned()),
            message_id: None,
            has_attachments: false,
        }),
        title: title.to_owned(),
        body: String::new(),
        urgency: None,
        idempotency_key: None,
        deliver_at: None,
    }
}

/// A `conversation-message` in the firm's conversation `conversation` (its own id).
pub fn conversation_message(conversation: &str) -> PublishRequest {
    let mut request = email(&format!("conversation:{conversation}"), "Message");
    request.data = NotificationData::ConversationMessage(ConversationMessage {
        extra: Default::default(),
        conversation_id: conversation.to_owned(),
        message_id: "m-1".to_owned(),
        from: "Anne".to_owned(),
        excerpt: "Confidentiel".to_owned(),
    });
    request
}

/// An `email-received` notification whose body is `body_bytes` long.
pub fn email_with_body(to: &str, title: &str, body_bytes: usize) -> PublishRequest {
    let mut request = email(to, title);
    request.body = "x".repeat(body_bytes);
    request
}

/// A critical deadline alert (due in 20 hours) for `to`.
pub fn critical_deadline(to: &str, id: &str) -> PublishRequest {
    let due = (Utc::now() + chrono::Duration::hours(20)).fixed_offset();
    PublishRequest {
        url: None,
        to: to.to_owned(),
        tenant: None,
        data: NotificationData::DeadlineAlert(DeadlineAlert {
            extra: Default::default(),
            deadline_id: id.to_owned(),
            deadline_type: "appel".to_owned(),
            due_at: due,
            time_zone: "Europe/Paris".to_owned(),
            urgency: DeadlineUrgency::Critical,
            remaining_days: 0,
            dossier_number: Some("2026-0142".to_owned()),
            dossier_title: None,
            working_days_left: None,
            reminder: None,
            late: false,
            escalation: None,
        }),
        title: format!("Délai d'appel {id}"),
        body: String::new(),
        urgency: None,
        idempotency_key: None,
        deliver_at: None,
    }
}

/// A `dossier-updated` notification to `to`.
pub fn dossier(to: &str, number: &str) -> PublishRequest {
    PublishRequest {
        url: None,
        to: to.to_owned(),
        tenant: None,
        data: NotificationData::DossierUpdated(DossierUpdated {
            extra: Default::default(),
            dossier_number: number.to_owned(),
            action: DossierAction::DocumentAdded,
            dossier_title: Some("Dupont c/ Durand".to_owned()),
            status: None,
            previous_status: None,
            document_name: Some("conclusions.pdf".to_owned()),
        }),
        title: format!("Dossier {number}"),
        body: String::new(),
        urgency: None,
        idempotency_key: None,
        deliver_at: None,
    }
}

/// A `proposal-created` notification to `to`.
pub fn proposal(to: &str, proposal_id: &str) -> PublishRequest {
    let starts_at = (Utc::now() + ChronoDuration::days(2)).fixed_offset();
    PublishRequest {
        url: None,
        to: to.to_owned(),
        tenant: None,
        data: NotificationData::ProposalCreated(ProposalCreated {
            extra: Default::default(),
            proposal_id: proposal_id.to_owned(),
            starts_at,
            ends_at: Some(starts_at + ChronoDuration::hours(1)),
            proposed_by: "Me Martin".to_owned(),
            location: Some("Cabinet".to_owned()),
            conversation_id: None,
            dossier_number: None,
        }),
        title: "Rendez-vous proposé".to_owned(),
        body: String::new(),
        urgency: None,
        idempotency_key: None,
        deliver_at: None,
    }
}

/// A task publishing one notification after another to one target until told to
/// stop or until a request fails (e.g. the gateway was killed).
pub struct ContinuousPublisher {
    /// Set to true to stop after the request in flight.
    stop: watch::Sender<bool>,
    /// The number of acknowledged publishes so far.
    acknowledged: watch::Receiver<usize>,
    /// The task; yields every 2xx response, in order.
    task: JoinHandle<Vec<PublishResponse>>,
}

impl ContinuousPublisher {
    /// Starts publishing `email` notifications to `to` with `key`.
    pub fn start(api: Api, key: String, to: String) -> Self {
        let (stop, stop_rx) = watch::channel(false);
        let (count_tx, acknowledged) = watch::channel(0usize);
        let task = tokio::spawn(async move {
            let mut acked = Vec::new();
            let mut n = 0u64;
            while !*stop_rx.borrow() {
                n += 1;
                let request = email(&to, &format!("continuous #{n}"));
                let Ok(reply) = api.send(api.publish_request(&key, &request)).await else {
                    break;
                };
                if !reply.status.is_success() {
                    break;
                }
                acked.push(reply.json::<PublishResponse>());
                count_tx.send_replace(acked.len());
            }
            acked
        });
        ContinuousPublisher {
            stop,
            acknowledged,
            task,
        }
    }

    /// Waits until at least `count` publishes were acknowledged; panics after `timeout`
    /// or if the publisher ended first.
    pub async fn wait_acknowledged(&mut self, count: usize, timeout: std::time::Duration) {
        let waited = tokio::time::timeout(timeout, self.acknowledged.wait_for(|n| *n >= count))
            .await
            .map(|result| result.map(|_| ()));
        match waited {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!(
                "the publisher stopped after {} acknowledged publishes, before {count}",
                *self.acknowledged.borrow()
            ),
            Err(_) => panic!(
                "only {} of {count} publishes acknowledged within {timeout:?}",
                *self.acknowledged.borrow()
            ),
        }
    }

    /// Stops and returns every acknowledged publish, in order.
    pub async fn finish(self) -> Vec<PublishResponse> {
        self.stop.send_replace(true);
        self.task.await.expect("the publisher task did not panic")
    }
}

/// The firm's software riding out a gateway restart: publishes `count` emails to
/// `to`, one after another (`pause` apart), each retried with its idempotency key
/// every 20 ms until a gateway acknowledges it.
pub struct RetryingPublisher {
    /// Acknowledged so far.
    acknowledged: watch::Receiver<usize>,
    /// The task; yields the acknowledged ids, in order.
    task: JoinHandle<Vec<String>>,
}

impl RetryingPublisher {
    /// Starts publishing; `label` names the notifications and their keys.
    pub fn start(
        api: Api,
        key: String,
        to: String,
        label: &str,
        count: usize,
        pause: std::time::Duration,
    ) -> Self {
        let (count_tx, acknowledged) = watch::channel(0usize);
        let label = label.to_owned();
        let task = tokio::spawn(async move {
            let mut acked = Vec::with_capacity(count);
            for n in 0..count {
                let mut request = email(&to, &format!("{label} #{n}"));
                request.idempotency_key = Some(format!("{label}-{n}"));
                loop {
                    if let Some(response) = api.try_publish(&key, &request).await {
                        acked.push(response.id);
                        count_tx.send_replace(acked.len());
                        break;
                    }
                    // No gateway answers: retry at a steady pace, like real software.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                }
                tokio::time::sleep(pause).await;
            }
            acked
        });
        RetryingPublisher { acknowledged, task }
    }

    /// Waits until at least `count` publishes were acknowledged; panics after `timeout`.
    pub async fn wait_acknowledged(&mut self, count: usize, timeout: std::time::Duration) {
        let waited = tokio::time::timeout(timeout, self.acknowledged.wait_for(|n| *n >= count))
            .await
            .map(|result| result.is_ok());
        match waited {
            Ok(true) => {}
            Ok(false) => panic!("the publisher task ended before {count} publishes"),
            Err(_) => panic!(
                "only {} of {count} publishes acknowledged within {timeout:?}",
                *self.acknowledged.borrow()
            ),
        }
    }

    /// Waits for every publish to be acknowledged (panics after `timeout`); their ids,
    /// in order.
    pub async fn finish(self, timeout: std::time::Duration) -> Vec<String> {
        tokio::time::timeout(timeout, self.task)
            .await
            .expect("publishing ends")
            .expect("the publisher task did not panic")
    }
}

/// A `system-notification` of `level` to `to` (an `error` one is critical by default).
pub fn system(
    to: &str,
    level: tocsin_protocol::notification::SystemLevel,
    title: &str,
) -> PublishRequest {
    PublishRequest {
        url: None,
        to: to.to_owned(),
        tenant: None,
        data: NotificationData::SystemNotification(
            tocsin_protocol::notification::SystemNotification {
                extra: Default::default(),
                level,
                code: Some("e2e".to_owned()),
            },
        ),
        title: title.to_owned(),
        body: String::new(),
        urgency: None,
        idempotency_key: None,
        deliver_at: None,
    }
}

/// What one publish attempt came to.
#[derive(Debug)]
pub enum Attempt<T> {
    /// Answered 2xx: stored (or stored before, for a retried idempotency key).
    Acknowledged(T),
    /// Not acknowledged for now (the gateway is down, restarting, busy, limiting):
    /// retry with the same idempotency keys.
    Unavailable(String),
    /// Refused for good (4xx other than 429): a bug in the test or the gateway.
    Refused(u16, String),
}

fn sort_reply<T: serde::de::DeserializeOwned>(
    sent: reqwest::Result<crate::http::Reply>,
) -> Attempt<T> {
    let reply = match sent {
        Ok(reply) => reply,
        Err(err) => return Attempt::Unavailable(format!("transport: {err}")),
    };
    let status = reply.status.as_u16();
    if reply.status.is_success() {
        return match serde_json::from_value::<T>(reply.body.clone()) {
            Ok(parsed) => Attempt::Acknowledged(parsed),
            Err(err) => Attempt::Refused(
                status,
                format!("unparsable 2xx body ({err}): {}", reply.body),
            ),
        };
    }
    if status == 429 || reply.status.is_server_error() {
        return Attempt::Unavailable(format!("HTTP {status}: {}", reply.body));
    }
    Attempt::Refused(status, reply.body.to_string())
}

/// One `POST /v1/publish`, sorted into acknowledged / retry later / refused.
pub async fn attempt_publish(
    api: &Api,
    key: &str,
    request: &PublishRequest,
) -> Attempt<PublishResponse> {
    sort_reply(api.send(api.publish_request(key, request)).await)
}

/// One `POST /v1/publish/batch` to `base` (`http://host:port`), sorted like
/// [`attempt_publish`]; never panics on a gateway that is down.
pub async fn attempt_publish_batch(
    client: &reqwest::Client,
    base: &str,
    key: &str,
    notifications: &[PublishRequest],
) -> Attempt<Vec<PublishResponse>> {
    let body = tocsin_protocol::http::BatchPublishRequest {
        notifications: notifications.to_vec(),
    };
    let sent = async {
        let response = client
            .post(format!("{base}/v1/publish/batch"))
            .bearer_auth(key)
            .json(&body)
            .send()
            .await?;
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await?;
        let body = if text.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(serde_json::Value::String(text))
        };
        Ok(crate::http::Reply {
            status,
            body,
            headers,
        })
    }
    .await;
    match sort_reply::<tocsin_protocol::http::BatchPublishResponse>(sent) {
        Attempt::Acknowledged(reply) => Attempt::Acknowledged(reply.results),
        Attempt::Unavailable(why) => Attempt::Unavailable(why),
        Attempt::Refused(status, why) => Attempt::Refused(status, why),
    }
}
