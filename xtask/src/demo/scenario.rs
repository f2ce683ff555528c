//! The demo's scripted day at Cabinet Dupont, and the publisher that plays it.
//!
//! Seven notifications, each published with the firm's API key as the firm's own
//! software would: a mail linked to dossier 2026-0142, a document added to that
//! dossier, an appeal deadline escalating over three days (compressed into seconds),
//! an appointment proposal and a notice from IT. Some go to Marie's own stream and
//! some to the firm's, so the demo also shows that a lawyer receives both.

use std::time::Duration;

use anyhow::{Context, Result};
use chrono::{DateTime, DurationRound, FixedOffset, TimeDelta, Utc};
use tocsin_protocol::NotificationData;
use tocsin_protocol::http::{PublishRequest, PublishResponse};
use tocsin_protocol::notification::{
    DeadlineAlert, DeadlineUrgency, DossierAction, DossierUpdated, EmailReceived, ProposalCreated,
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

/// The scenario's notifications, in publishing order, dated relative to `now`.
pub fn notifications(now: DateTime<Utc>) -> Result<Vec<PublishRequest>> {
    // Paris's winter offset: the demo carries no time-zone database, and the dates
    // only need to look plausible.
    let paris = FixedOffset::east_opt(3600).context("+01:00 is a valid offset")?;
    let on_the_hour = |hours: i64| -> Result<DateTime<FixedOffset>> {
        let time = (now + TimeDelta::hours(hours)).duration_trunc(TimeDelta::hours(1))?;
        Ok(time.with_timezone(&paris))
    };
    let appeal_due_at = on_the_hour(26)?;
    let mut scenario = vec![
        publish(
            format!("user:{MARIE}"),
            format!("Nouveau mail — dossier {DOSSIER}"),
            "Maître Martin vous transmet ses conclusions.",
            NotificationData::EmailReceived(EmailReceived {
                subject: "Conclusions adverses".into(),
                from: "Maître Martin <martin@martin-avocats.example>".into(),
                dossier_number: Some(DOSSIER.into()),
                message_id: Some("<demo-1@martin-avocats.example>".into()),
                has_attachments: true,
            }),
        ),
        publish(
            format!("tenant:{TENANT}"),
            format!("Dossier {DOSSIER} : pièce ajoutée"),
            "Conclusions_adverses.pdf a été ajoutée au dossier.",
            NotificationData::DossierUpdated(DossierUpdated {
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
        scenario.push(publish(
            format!("user:{MARIE}"),
            format!("Délai d'appel — dossier {DOSSIER} : J-{remaining_days}"),
            "Déclaration d'appel à former avant l'échéance.",
            NotificationData::DeadlineAlert(DeadlineAlert {
                deadline_id: format!("appel-{DOSSIER}"),
                deadline_type: "appel".into(),
                due_at: appeal_due_at,
                time_zone: "Europe/Paris".into(),
                urgency,
                remaining_days,
                dossier_number: Some(DOSSIER.into()),
            }),
        ));
    }
    scenario.push(publish(
        format!("user:{MARIE}"),
        "Proposition de rendez-vous : M. Durand".into(),
        "M. Durand propose un rendez-vous pour préparer l'audience.",
        NotificationData::ProposalCreated(ProposalCreated {
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
        to,
        data,
        title,
        body: body.into(),
        urgency: None,
        idempotency_key: None,
    }
}

/// The body of the `curl` example printed for the user: a notification to Marie.
pub fn curl_example_body() -> Result<String> {
    let request = publish(
        format!("user:{MARIE}"),
        "Bonjour depuis curl".into(),
        "Publié à la main.",
        NotificationData::SystemNotification(SystemNotification {
            level: SystemLevel::Success,
            code: None,
        }),
    );
    Ok(serde_json::to_string(&request)?)
}

/// Publishes the scenario, one notification every `pace`, and returns the ids the
/// gateway gave them.
pub async fn play(
    http: &reqwest::Client,
    base_url: &str,
    api_key: &str,
    scenario: &[PublishRequest],
    pace: Duration,
) -> Result<Vec<String>> {
    let mut ids = Vec::with_capacity(scenario.len());
    for (index, request) in scenario.iter().enumerate() {
        if index > 0 {
            // Pacing, so a person can follow; nothing waits on this for correctness.
            tokio::time::sleep(pace).await;
        }
        let published = publish_one(http, base_url, api_key, request).await?;
        println!(
            "→ published {} to {} (offset {})",
            request.data.kind().as_str(),
            request.to,
            published.offset
        );
        ids.push(published.id);
    }
    Ok(ids)
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
    use tocsin_protocol::Kind;

    use super::*;

    #[test]
    fn the_scenario_tells_the_story_in_seven_notifications() {
        let scenario = notifications(Utc::now()).expect("builds");
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
