//! The demo's scripted day at Cabinet Dupont, and how one step is played.
//!
//! Each step is what the firm's own software would do with its API key: publish a
//! mail linked to dossier 2026-0142, a document added to that dossier, then **declare**
//! the appeal deadline once (`PUT /v1/deadlines/{id}`) — the gateway itself raises its
//! reminders warning → urgent → critical (a policy in seconds stands for working
//! days) and, if Marie does not acknowledge the critical one, escalates to Claire, her
//! backup — an appointment proposal to accept in the panel, a mail sent to Marie by
//! mistake that the firm's software then **retracts** (`DELETE
//! /v1/notifications/{id}`: it leaves her inbox and her screen), and a notice from IT. Some
//! go to Marie's own stream and some to the firm's, so the demo also shows that a
//! lawyer receives both. In between, the dossier's conversation: Marie and Claire are
//! made its members, Claire writes, and the appointment proposal is made there — what
//! the web SDK's conversation example (sdk/web/examples) shows beside the desktop.

use anyhow::{Context, Result};
use chrono::{DateTime, DurationRound, FixedOffset, TimeDelta, Utc};
use tocsin_protocol::NotificationData;
use tocsin_protocol::deadline::{DeadlineRequest, DeadlineView, StepState};
use tocsin_protocol::http::{PublishRequest, PublishResponse, RetractResponse};
use tocsin_protocol::notification::{
    ConversationMessage, DossierAction, DossierUpdated, EmailReceived, ProposalCreated,
    SystemLevel, SystemNotification,
};

use super::http::send_json;

/// The firm's slug.
pub const TENANT: &str = "dupont";
/// The lawyer whose desktop the demo plays.
pub const MARIE: &str = "marie@dupont.example";
/// Her colleague, so the firm has more than one person.
pub const CLAIRE: &str = "claire@dupont.example";
/// Both demo users' password.
pub const PASSWORD: &str = "demo-password";
/// The dossier the scenario is about.
const DOSSIER: &str = "2026-0142";
/// The firm's id of the dossier's conversation.
pub const CONVERSATION: &str = "c-2026-0142";
/// The firm's id of the appeal deadline.
pub const DEADLINE_ID: &str = "appel-2026-0142";
/// How long after its declaration the demo's deadline falls due.
const DEADLINE_IN_SECS: i64 = 40;
/// Its reminders, seconds before it falls due (three working days in seconds).
const REMINDERS: [(u64, &str); 3] = [(36, "warning"), (30, "urgent"), (24, "critical")];

/// One step of the scenario.
#[derive(Debug, Clone)]
pub struct Step {
    /// A short name, for the screenshot's file (`deadline-critical`).
    pub name: &'static str,
    /// What it shows, for the person watching.
    pub caption: &'static str,
    /// What the firm's software does.
    pub action: Action,
}

/// What a step does.
#[derive(Debug, Clone)]
pub enum Action {
    /// Publish one notification.
    Publish(PublishRequest),
    /// Retract what the previous step published (it went to the wrong person).
    RetractPrevious,
    /// Set a conversation's members (`PUT /v1/conversations/{id}/members`).
    Members {
        /// The firm's id of the conversation.
        conversation: String,
        /// Their emails.
        members: Vec<String>,
    },
    /// Declare a deadline; the gateway raises `reminders` notifications for it.
    Declare {
        /// The firm's id of the deadline.
        id: String,
        /// The declaration.
        request: DeadlineRequest,
        /// How many reminders to wait for.
        reminders: usize,
    },
}

/// The scenario's steps, in order, dated relative to `now`.
pub fn steps(now: DateTime<Utc>) -> Result<Vec<Step>> {
    let mut published = notifications(now)?.into_iter();
    let mut next = || {
        published
            .next()
            .context("the scenario ran out of notifications")
    };
    Ok(vec![
        Step {
            name: "email",
            caption: "a mail linked to dossier 2026-0142",
            action: Action::Publish(next()?),
        },
        Step {
            name: "dossier",
            caption: "the dossier gets a new document (firm-wide)",
            action: Action::Publish(next()?),
        },
        Step {
            name: "deadline",
            caption: "the appeal deadline, declared once: the gateway reminds Marie — warning, \
                      urgent, then critical (seconds stand for working days); acknowledge it in \
                      the Deadlines tab, or Claire is told",
            action: Action::Declare {
                id: DEADLINE_ID.into(),
                request: appeal_deadline(now)?,
                reminders: REMINDERS.len(),
            },
        },
        Step {
            name: "conversation",
            caption: "the dossier's conversation: Marie and Claire are its members",
            action: Action::Members {
                conversation: CONVERSATION.into(),
                members: vec![MARIE.into(), CLAIRE.into()],
            },
        },
        Step {
            name: "message",
            caption: "Claire writes in the conversation",
            action: Action::Publish(next()?),
        },
        Step {
            name: "proposal",
            caption: "an appointment proposal in the conversation: accept it in the panel \
                      (Proposals tab) or on the web page's toast",
            action: Action::Publish(next()?),
        },
        Step {
            name: "misdirected",
            caption: "a mail for another lawyer's dossier, sent to Marie by mistake",
            action: Action::Publish(next()?),
        },
        Step {
            name: "retracted",
            caption: "the firm retracts it: it leaves Marie's inbox and her screen",
            action: Action::RetractPrevious,
        },
        Step {
            name: "system",
            caption: "a notice from IT to the whole firm",
            action: Action::Publish(next()?),
        },
    ])
}

/// The appeal deadline: due in [`DEADLINE_IN_SECS`], reminded at [`REMINDERS`], Claire
/// as the backup (told a minute after the critical reminder if nobody acknowledged).
fn appeal_deadline(now: DateTime<Utc>) -> Result<DeadlineRequest> {
    let steps: Vec<_> = REMINDERS
        .iter()
        .map(|(secs, urgency)| serde_json::json!({"before": {"seconds": secs}, "urgency": urgency}))
        .collect();
    Ok(DeadlineRequest {
        deadline_type: "Délai d'appel".into(),
        due_at: due_at(now)?,
        time_zone: Some("Europe/Paris".into()),
        owner: MARIE.into(),
        backup: Some(CLAIRE.into()),
        dossier_number: Some(DOSSIER.into()),
        dossier_title: Some("Dupont c/ Société Exemple".into()),
        url: Some(format!(
            "https://ged.cabinet-dupont.example/dossiers/{DOSSIER}"
        )),
        policy: Some(serde_json::json!({ "steps": steps })),
        escalation: Some(serde_json::json!({"first": {"seconds": 60}, "second": null})),
    })
}

/// When the appeal deadline falls due, declared at `now`: [`DEADLINE_IN_SECS`] later,
/// in Paris's winter offset.
fn due_at(now: DateTime<Utc>) -> Result<DateTime<FixedOffset>> {
    let paris = FixedOffset::east_opt(3600).context("+01:00 is a valid offset")?;
    Ok((now + TimeDelta::seconds(DEADLINE_IN_SECS)).with_timezone(&paris))
}

/// The scenario's notifications, in publishing order, dated relative to `now`.
fn notifications(now: DateTime<Utc>) -> Result<Vec<PublishRequest>> {
    // Paris's winter offset: the demo carries no time-zone database, and the dates
    // only need to look plausible.
    let paris = FixedOffset::east_opt(3600).context("+01:00 is a valid offset")?;
    let on_the_hour = |hours: i64| -> Result<DateTime<FixedOffset>> {
        let time = (now + TimeDelta::hours(hours)).duration_trunc(TimeDelta::hours(1))?;
        Ok(time.with_timezone(&paris))
    };
    let mut mail = publish(
        format!("user:{MARIE}"),
        format!("Nouveau mail — dossier {DOSSIER}"),
        "Maître Martin vous transmet ses conclusions.",
        NotificationData::EmailReceived(EmailReceived {
            // The firm's own reference travels with the notification, as sent.
            extra: serde_json::Map::from_iter([(
                "ged_document".to_owned(),
                serde_json::json!({"id": 4217, "base": "courriers"}),
            )]),
            subject: "Conclusions adverses".into(),
            from: "Maître Martin <martin@martin-avocats.example>".into(),
            dossier_number: Some(DOSSIER.into()),
            message_id: Some("<demo-1@martin-avocats.example>".into()),
            has_attachments: true,
        }),
    );
    // "Open" in the panel and on the toast leads into the firm's software.
    mail.url = Some(format!(
        "https://ged.cabinet-dupont.example/dossiers/{DOSSIER}"
    ));
    let mut scenario = vec![
        mail,
        publish(
            format!("tenant:{TENANT}"),
            format!("Dossier {DOSSIER} : pièce ajoutée"),
            "Conclusions_adverses.pdf a été ajoutée au dossier.",
            NotificationData::DossierUpdated(DossierUpdated {
                extra: Default::default(),
                dossier_number: DOSSIER.into(),
                action: DossierAction::DocumentAdded,
                dossier_title: Some("Dupont c/ Société Exemple".into()),
                status: None,
                previous_status: None,
                document_name: Some("Conclusions_adverses.pdf".into()),
            }),
        ),
    ];
    scenario.push(publish(
        format!("conversation:{CONVERSATION}"),
        "Claire Martin — dossier 2026-0142".into(),
        "M. Durand voudrait nous voir avant l'audience, je lui propose jeudi.",
        NotificationData::ConversationMessage(ConversationMessage {
            extra: Default::default(),
            conversation_id: CONVERSATION.into(),
            message_id: "message-demo-1".into(),
            from: "Claire Martin".into(),
            excerpt: "M. Durand voudrait nous voir avant l'audience, je lui propose jeudi.".into(),
        }),
    ));
    scenario.push(publish(
        format!("conversation:{CONVERSATION}"),
        "Proposition de rendez-vous : M. Durand".into(),
        "M. Durand propose un rendez-vous pour préparer l'audience.",
        NotificationData::ProposalCreated(ProposalCreated {
            extra: Default::default(),
            proposal_id: "proposition-demo-1".into(),
            starts_at: on_the_hour(48)?,
            ends_at: Some(on_the_hour(49)?),
            proposed_by: "M. Durand (client)".into(),
            location: Some("Cabinet — salle 2".into()),
            conversation_id: Some(CONVERSATION.into()),
            dossier_number: Some(DOSSIER.into()),
        }),
    ));
    scenario.push(publish(
        format!("user:{MARIE}"),
        "Nouveau mail — dossier 2026-0077".into(),
        "Le greffe transmet l'ordonnance de clôture.",
        NotificationData::EmailReceived(EmailReceived {
            extra: Default::default(),
            subject: "Ordonnance de clôture".into(),
            from: "Greffe du tribunal judiciaire <greffe@tj.example>".into(),
            dossier_number: Some("2026-0077".into()),
            message_id: Some("<demo-2@tj.example>".into()),
            has_attachments: true,
        }),
    ));
    scenario.push(publish(
        format!("tenant:{TENANT}"),
        "Maintenance de la messagerie ce soir à 22 h".into(),
        "Le service informatique coupe la messagerie pendant 30 minutes.",
        NotificationData::SystemNotification(SystemNotification {
            extra: Default::default(),
            level: SystemLevel::Info,
            code: Some("maintenance".into()),
        }),
    ));
    for (index, request) in scenario.iter_mut().enumerate() {
        // Keys make a retried publish harmless; the demo never retries, but shows them.
        request.idempotency_key = Some(format!("demo-{}", index + 1));
    }
    Ok(scenario)
}

/// A publish request with the kind's default urgency.
fn publish(to: String, title: String, body: &str, data: NotificationData) -> PublishRequest {
    PublishRequest {
        url: None,
        to,
        tenant: None,
        data,
        title,
        body: body.into(),
        urgency: None,
        idempotency_key: None,
        deliver_at: None,
    }
}

/// The body of the `curl` example printed for the user: a notification to Marie.
pub fn curl_example_body() -> Result<String> {
    let request = publish(
        format!("user:{MARIE}"),
        "Bonjour depuis curl".into(),
        "Publié à la main.",
        NotificationData::SystemNotification(SystemNotification {
            extra: Default::default(),
            level: SystemLevel::Success,
            code: None,
        }),
    );
    Ok(serde_json::to_string(&request)?)
}

/// What a step led to.
#[derive(Debug, Default)]
pub struct Played {
    /// Notifications it published (or the gateway raised) that Marie should hold.
    pub delivered: Vec<String>,
    /// Notifications it retracted: Marie should no longer hold them.
    pub retracted: Vec<String>,
}

/// Plays one step (saying so first: the listener may print an arrival before the
/// gateway's answer is back); `previous` is what the step before led to.
pub async fn play_step(
    http: &reqwest::Client,
    base_url: &str,
    api_key: &str,
    step: &Step,
    previous: &Played,
) -> Result<Played> {
    let delivered = match &step.action {
        Action::Publish(request) => {
            println!(
                "→ publishing {} to {}",
                request.data.kind().as_str(),
                request.to
            );
            vec![publish_one(http, base_url, api_key, request).await?.id]
        }
        Action::RetractPrevious => {
            for id in &previous.delivered {
                println!("→ retracting {id} (DELETE /v1/notifications/{id})");
                let call = http
                    .delete(format!("{base_url}/v1/notifications/{id}"))
                    .bearer_auth(api_key);
                let _: RetractResponse = send_json(call, &format!("retracting {id}")).await?;
            }
            return Ok(Played {
                delivered: Vec::new(),
                retracted: previous.delivered.clone(),
            });
        }
        Action::Members {
            conversation,
            members,
        } => {
            println!(
                "→ making {} the members of conversation {conversation} (PUT /v1/conversations/{conversation}/members)",
                members.join(" and ")
            );
            let call = http
                .put(format!(
                    "{base_url}/v1/conversations/{conversation}/members"
                ))
                .bearer_auth(api_key)
                .json(&serde_json::json!({ "members": members }));
            let _: serde_json::Value =
                send_json(call, &format!("setting {conversation}'s members")).await?;
            Vec::new()
        }
        Action::Declare {
            id,
            request,
            reminders,
        } => {
            println!(
                "→ declaring deadline {id} for {} (PUT /v1/deadlines/{id})",
                request.owner
            );
            // Dated now, not when the scenario was written: paced for a person, the
            // steps before took seconds, and a reminder already past is not sent.
            let mut request = request.clone();
            request.due_at = due_at(Utc::now())?;
            let call = http
                .put(format!("{base_url}/v1/deadlines/{id}"))
                .bearer_auth(api_key)
                .json(&request);
            let _: DeadlineView = send_json(call, &format!("declaring {id}")).await?;
            reminders_sent(http, base_url, api_key, id, *reminders).await?
        }
    };
    Ok(Played {
        delivered,
        retracted: Vec::new(),
    })
}

/// Waits for the gateway to send a deadline's first `count` reminders; returns their
/// notification ids.
async fn reminders_sent(
    http: &reqwest::Client,
    base_url: &str,
    api_key: &str,
    id: &str,
    count: usize,
) -> Result<Vec<String>> {
    let deadline =
        tokio::time::Instant::now() + std::time::Duration::from_secs(DEADLINE_IN_SECS as u64 + 20);
    let mut announced = 0;
    loop {
        let call = http
            .get(format!("{base_url}/v1/deadlines/{id}"))
            .bearer_auth(api_key);
        let view: DeadlineView = send_json(call, &format!("reading {id}")).await?;
        let sent: Vec<_> = view
            .reminders
            .iter()
            .filter(|r| r.state == StepState::Sent)
            .collect();
        for reminder in sent.iter().skip(announced) {
            println!(
                "  the gateway sent reminder {} ({:?})",
                reminder.label, reminder.urgency
            );
        }
        announced = sent.len();
        if sent.len() >= count {
            return Ok(sent
                .iter()
                .flat_map(|r| r.notification_ids.clone())
                .collect());
        }
        if tokio::time::Instant::now() > deadline {
            anyhow::bail!(
                "deadline {id}: only {} of {count} reminders were sent in time",
                sent.len()
            );
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// `POST /v1/publish` with the API key.
async fn publish_one(
    http: &reqwest::Client,
    base_url: &str,
    api_key: &str,
    request: &PublishRequest,
) -> Result<PublishResponse> {
    let call = http
        .post(format!("{base_url}/v1/publish"))
        .bearer_auth(api_key)
        .json(request);
    send_json(call, &format!("publishing to {}", request.to)).await
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;

    use tocsin_protocol::Kind;

    use super::*;

    #[test]
    fn the_scenario_publishes_six_notifications_retracts_one_and_declares_one_deadline() {
        let steps = steps(Utc::now()).expect("builds");
        let kinds: Vec<Option<Kind>> = steps
            .iter()
            .map(|s| match &s.action {
                Action::Publish(r) => Some(r.data.kind()),
                Action::Declare { .. } | Action::RetractPrevious | Action::Members { .. } => None,
            })
            .collect();
        assert_eq!(
            kinds,
            [
                Some(Kind::EmailReceived),
                Some(Kind::DossierUpdated),
                None,
                None,
                Some(Kind::ConversationMessage),
                Some(Kind::ProposalCreated),
                Some(Kind::EmailReceived),
                None,
                Some(Kind::SystemNotification),
            ]
        );
        assert!(matches!(steps[3].action, Action::Members { .. }));
        assert!(matches!(steps[7].action, Action::RetractPrevious));
        let Action::Declare { request, .. } = &steps[2].action else {
            unreachable!("checked above");
        };
        let json = serde_json::to_value(request).expect("serialises");
        assert_eq!(json["policy"]["steps"].as_array().map(Vec::len), Some(3));
        assert!(request.due_at.with_timezone(&Utc) > Utc::now());
        let names: HashSet<&str> = steps.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), steps.len(), "screenshot names are distinct");
        for step in &steps {
            if let Action::Publish(request) = &step.action {
                let json = serde_json::to_value(request).expect("serialises");
                let back: PublishRequest = serde_json::from_value(json).expect("round-trips");
                assert_eq!(&back, request);
                assert!(request.to.parse::<tocsin_protocol::StreamName>().is_ok());
            }
        }
    }

    #[test]
    fn the_curl_example_can_be_single_quoted() {
        let body = curl_example_body().expect("serialises");
        assert!(!body.contains('\''), "{body}");
    }
}
