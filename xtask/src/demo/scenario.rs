//! The demo's scripted day at Cabinet Dupont, and how one step is published.
//!
//! Seven notifications, each published with the firm's API key as the firm's own
//! software would: a mail linked to dossier 2026-0142, a document added to that
//! dossier, an appeal deadline escalating warning → urgent → critical (one
//! `deadline_id`, three days compressed into seconds), an appointment proposal to
//! accept in the panel and a notice from IT. Some go to Marie's own stream and some
//! to the firm's, so the demo also shows that a lawyer receives both.

use anyhow::{Context, Result};
use chrono::{DateTime, DurationRound, FixedOffset, TimeDelta, Utc};
use tocsin_protocol::http::{PublishRequest, PublishResponse};
use tocsin_protocol::notification::{
    DeadlineAlert, DeadlineUrgency, DossierAction, DossierUpdated, EmailReceived, ProposalCreated,
    SystemLevel, SystemNotification,
};
use tocsin_protocol::{NotificationData, Urgency};

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

/// One step of the scenario.
#[derive(Debug, Clone)]
pub struct Step {
    /// A short name, for the screenshot's file (`deadline-critical`).
    pub name: &'static str,
    /// What it shows, for the person watching.
    pub caption: &'static str,
    /// What is published.
    pub request: PublishRequest,
}

/// The scenario's steps, in publishing order, dated relative to `now`.
pub fn steps(now: DateTime<Utc>) -> Result<Vec<Step>> {
    let captions = [
        ("email", "a mail linked to dossier 2026-0142"),
        ("dossier", "the dossier gets a new document (firm-wide)"),
        (
            "deadline-warning",
            "the appeal deadline: warning, 3 days left",
        ),
        (
            "deadline-urgent",
            "the same deadline escalates: urgent, 2 days left",
        ),
        (
            "deadline-critical",
            "the same deadline escalates: critical, 1 day left (stays on screen)",
        ),
        (
            "proposal",
            "an appointment proposal: accept it in the panel (Proposals tab)",
        ),
        ("system", "a notice from IT to the whole firm"),
    ];
    let requests = notifications(now)?;
    if requests.len() != captions.len() {
        anyhow::bail!(
            "the scenario has {} notifications but {} captions",
            requests.len(),
            captions.len()
        );
    }
    Ok(captions
        .into_iter()
        .zip(requests)
        .map(|((name, caption), request)| Step {
            name,
            caption,
            request,
        })
        .collect())
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
    let appeal_due_at = on_the_hour(26)?;
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
    let escalation = [
        (DeadlineUrgency::Warning, 3),
        (DeadlineUrgency::Urgent, 2),
        (DeadlineUrgency::Critical, 1),
    ];
    for (urgency, remaining_days) in escalation {
        let mut request = publish(
            format!("user:{MARIE}"),
            format!("Délai d'appel — dossier {DOSSIER} : J-{remaining_days}"),
            "Déclaration d'appel à former avant l'échéance.",
            NotificationData::DeadlineAlert(DeadlineAlert {
                extra: Default::default(),
                deadline_id: format!("appel-{DOSSIER}"),
                deadline_type: "appel".into(),
                due_at: appeal_due_at,
                time_zone: "Europe/Paris".into(),
                urgency,
                remaining_days,
                dossier_number: Some(DOSSIER.into()),
                dossier_title: None,
                working_days_left: None,
                reminder: None,
                late: false,
                escalation: None,
            }),
        );
        if urgency == DeadlineUrgency::Critical {
            // The kind's default already; said explicitly, as the firm's deadline
            // checker would for the last day.
            request.urgency = Some(Urgency::Critical);
        }
        scenario.push(request);
    }
    scenario.push(publish(
        format!("user:{MARIE}"),
        "Proposition de rendez-vous : M. Durand".into(),
        "M. Durand propose un rendez-vous pour préparer l'audience.",
        NotificationData::ProposalCreated(ProposalCreated {
            extra: Default::default(),
            proposal_id: "proposition-demo-1".into(),
            starts_at: on_the_hour(48)?,
            ends_at: Some(on_the_hour(49)?),
            proposed_by: "M. Durand (client)".into(),
            location: Some("Cabinet — salle 2".into()),
            conversation_id: None,
            dossier_number: Some(DOSSIER.into()),
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

/// Publishes one step (saying so first: the listener may print its arrival before
/// the gateway's answer is back); returns the id the gateway gave it.
pub async fn publish_step(
    http: &reqwest::Client,
    base_url: &str,
    api_key: &str,
    step: &Step,
) -> Result<String> {
    let request = &step.request;
    println!(
        "→ publishing {} to {}",
        request.data.kind().as_str(),
        request.to
    );
    Ok(publish_one(http, base_url, api_key, request).await?.id)
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
    fn the_scenario_tells_the_story_in_seven_notifications() {
        let steps = steps(Utc::now()).expect("builds");
        let scenario: Vec<PublishRequest> = steps.iter().map(|s| s.request.clone()).collect();
        let kinds: Vec<Kind> = scenario.iter().map(|r| r.data.kind()).collect();
        assert_eq!(
            kinds,
            [
                Kind::EmailReceived,
                Kind::DossierUpdated,
                Kind::DeadlineAlert,
                Kind::DeadlineAlert,
                Kind::DeadlineAlert,
                Kind::ProposalCreated,
                Kind::SystemNotification,
            ]
        );
        let urgencies: Vec<_> = scenario.iter().map(|r| r.data.default_urgency()).collect();
        assert!(urgencies[2] < urgencies[3] && urgencies[3] < urgencies[4]);
        assert_eq!(scenario[4].urgency, Some(Urgency::Critical));
        let deadline_ids: Vec<_> = scenario[2..5]
            .iter()
            .map(|r| match &r.data {
                NotificationData::DeadlineAlert(d) => d.deadline_id.clone(),
                other => panic!("not a deadline: {other:?}"),
            })
            .collect();
        assert!(deadline_ids.iter().all(|id| id == &deadline_ids[0]));
        let names: HashSet<&str> = steps.iter().map(|s| s.name).collect();
        assert_eq!(names.len(), steps.len(), "screenshot names are distinct");
        for request in &scenario {
            let json = serde_json::to_value(request).expect("serialises");
            let back: PublishRequest = serde_json::from_value(json).expect("round-trips");
            assert_eq!(&back, request);
            assert!(request.to.parse::<tocsin_protocol::StreamName>().is_ok());
        }
    }

    #[test]
    fn the_curl_example_can_be_single_quoted() {
        let body = curl_example_body().expect("serialises");
        assert!(!body.contains('\''), "{body}");
    }
}
