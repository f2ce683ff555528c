//! `[auth.external]`: an external app's HS256 JWTs. Every forged, expired, misdirected
//! or oversized token is refused, on the upgrade (HTTP 401) and in the first frame
//! (close 4100, or 4002 when expired); a good token connects and receives its firm's
//! notifications.

use std::collections::BTreeMap;

use jsonwebtoken::Algorithm;
use serde_json::{Value, json};
use tocsin_e2e::gateway::ExternalAuth;
use tocsin_e2e::publisher::email;
use tocsin_e2e::tokens::{claims, sign, tampered, unsigned, with_header_alg};
use tocsin_e2e::ws::ConnectFailure;
use tocsin_e2e::{ConnectOptions, Gateway, GatewayOptions, STEP, TenantSpec, WsClient};
use tocsin_protocol::{ClientFrame, ServerFrame};

const SECRET: &str = "e2e-external-secret-0123456789abcdef";
const ISSUER: &str = "https://app.example";
const AUDIENCE: &str = "tocsin";
const EXTERNAL_USER: &str = "ext-user-42";

async fn gateway() -> Gateway {
    Gateway::start(GatewayOptions {
        tenants: vec![
            TenantSpec::new("dupont", &[]),
            TenantSpec::new("durand", &[]),
        ],
        external_auth: Some(ExternalAuth {
            secret: SECRET.to_owned(),
            issuer: ISSUER.to_owned(),
            audience: AUDIENCE.to_owned(),
            leeway_secs: 30,
        }),
        ..GatewayOptions::default()
    })
    .await
}

fn good_claims() -> Value {
    claims(EXTERNAL_USER, "dupont", ISSUER, AUDIENCE)
}

fn good_token() -> String {
    sign(&good_claims(), SECRET, Algorithm::HS256)
}

fn with(changes: &[(&str, Value)]) -> Value {
    let mut c = good_claims();
    for (key, value) in changes {
        c[*key] = value.clone();
    }
    c
}

/// Every token that must be refused (except expiry), labelled.
fn bad_tokens() -> Vec<(&'static str, String)> {
    let now = chrono::Utc::now().timestamp();
    let mut no_exp = good_claims();
    no_exp
        .as_object_mut()
        .expect("claims are an object")
        .remove("exp");
    vec![
        ("alg none", unsigned(&good_claims())),
        (
            "HS384 instead of HS256",
            sign(&good_claims(), SECRET, Algorithm::HS384),
        ),
        (
            "RS256 header",
            with_header_alg(&good_claims(), SECRET, "RS256"),
        ),
        (
            "wrong secret",
            sign(
                &good_claims(),
                "not-the-secret-0123456789",
                Algorithm::HS256,
            ),
        ),
        (
            "wrong audience",
            sign(
                &with(&[("aud", json!("someone-else"))]),
                SECRET,
                Algorithm::HS256,
            ),
        ),
        (
            "wrong issuer",
            sign(
                &with(&[("iss", json!("https://evil.example"))]),
                SECRET,
                Algorithm::HS256,
            ),
        ),
        ("no exp", sign(&no_exp, SECRET, Algorithm::HS256)),
        (
            "not yet valid (nbf in an hour)",
            sign(
                &with(&[("nbf", json!(now + 3600))]),
                SECRET,
                Algorithm::HS256,
            ),
        ),
        (
            "tenant tampered",
            tampered(&good_token(), &with(&[("tenant", json!("durand"))])),
        ),
        (
            "oversized (> 8 KiB)",
            sign(
                &with(&[("pad", json!("p".repeat(9 * 1024)))]),
                SECRET,
                Algorithm::HS256,
            ),
        ),
    ]
}

fn expired_token() -> String {
    let now = chrono::Utc::now().timestamp();
    let expired = with(&[("exp", json!(now - 120)), ("iat", json!(now - 3720))]);
    sign(&expired, SECRET, Algorithm::HS256)
}

#[tokio::test]
async fn bad_external_tokens_are_refused_at_the_upgrade_with_401() {
    let gw = gateway().await;
    let mut cases = bad_tokens();
    cases.push(("expired beyond leeway", expired_token()));
    let mut failures = Vec::new();
    for (label, token) in cases {
        let allowed: &[u16] = if label.starts_with("oversized") {
            &[401, 431]
        } else {
            &[401]
        };
        match WsClient::try_connect(&gw.ws_url(), &ConnectOptions::bearer(&token)).await {
            Err(ConnectFailure::Refused { status, .. }) if allowed.contains(&status) => {}
            Err(other) => failures.push(format!("{label}: {other:?}")),
            Ok(mut client) => {
                let welcome = client.try_send_raw(hello_message()).await;
                let event = client.try_next_event(STEP).await;
                failures.push(format!(
                    "{label}: upgraded (hello: {welcome:?}, then {event:?})"
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "not refused with 401:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn bad_external_tokens_in_the_first_frame_close_4100_and_expired_4002() {
    let gw = gateway().await;
    let mut cases: Vec<(&str, String, u16)> = bad_tokens()
        .into_iter()
        .map(|(label, token)| (label, token, 4100))
        .collect();
    cases.push(("expired beyond leeway", expired_token(), 4002));
    let mut failures = Vec::new();
    for (label, token, expected) in cases {
        let mut client = WsClient::connect(&gw.ws_url(), &ConnectOptions::default()).await;
        client.send(&ClientFrame::Auth { token }).await;
        let _ignored = client.try_send_raw(hello_message()).await;
        let (closed, frames) = client.expect_close(STEP).await;
        if closed.code != Some(expected) {
            failures.push(format!(
                "{label}: expected close {expected}, got {closed:?}"
            ));
        }
        if !frames
            .iter()
            .any(|f| matches!(f, ServerFrame::Error { .. }))
        {
            failures.push(format!(
                "{label}: no error frame before the close: {frames:?}"
            ));
        }
        if frames.iter().any(|f| matches!(f, ServerFrame::Welcome(_))) {
            failures.push(format!("{label}: welcomed before the close"));
        }
    }
    assert!(
        failures.is_empty(),
        "first-frame auth:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn a_good_external_token_connects_and_receives_its_firms_notifications() {
    let gw = gateway().await;
    let api = gw.api();

    let (mut by_header, welcome, _) =
        WsClient::connect_ready(&gw.ws_url(), &good_token(), BTreeMap::new()).await;
    assert_eq!(welcome.user.tenant, "dupont");

    let mut by_frame = WsClient::connect(&gw.ws_url(), &ConnectOptions::default()).await;
    by_frame
        .send(&ClientFrame::Auth {
            token: good_token(),
        })
        .await;
    let welcome = by_frame.hello(BTreeMap::new()).await;
    assert_eq!(welcome.user.tenant, "dupont");
    by_frame.read_until_caught_up(STEP).await;

    let published = api
        .publish_ok(
            gw.key("dupont"),
            &email("tenant:dupont", "pour tout le cabinet"),
        )
        .await;
    for client in [&mut by_header, &mut by_frame] {
        let delivered = client.wait_notification(&published.id, STEP).await;
        assert_eq!(delivered.stream.to_string(), "tenant:dupont");
    }
}

/// Monday morning at a firm on SSO: many people the gateway has never seen connect at
/// once, each from two devices. Every connection gets in as its own user: shadow users
/// are created by the single storage writer (no "database is locked"), and the second
/// device of a person whose first device is creating them finds that user instead of
/// failing on the duplicate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_new_external_users_connecting_at_once_all_get_in() {
    const PEOPLE: usize = 150;
    let gw = gateway().await;
    let url = gw.ws_url();
    let attempts = (0..PEOPLE).flat_map(|person| {
        let user = format!("sso-{person}");
        let token = sign(
            &claims(&user, "dupont", ISSUER, AUDIENCE),
            SECRET,
            Algorithm::HS256,
        );
        [0, 1].map(|_| {
            let (url, user, token) = (url.clone(), user.clone(), token.clone());
            tokio::spawn(async move {
                let (_client, welcome, _) =
                    WsClient::connect_ready(&url, &token, BTreeMap::new()).await;
                (user, welcome.user.id, welcome.user.tenant)
            })
        })
    });
    let joined = futures_util::future::join_all(attempts).await;
    let mut seen = Vec::new();
    for outcome in joined {
        let (user, id, tenant) = outcome.expect("every device connected and caught up");
        assert_eq!((id.as_str(), tenant.as_str()), (user.as_str(), "dupont"));
        seen.push(id);
    }
    assert_eq!(seen.len(), 2 * PEOPLE);
}

fn hello_message() -> tokio_tungstenite::tungstenite::Message {
    let hello = ClientFrame::Hello {
        positions: BTreeMap::new(),
        client: None,
        features: Vec::new(),
    };
    tokio_tungstenite::tungstenite::Message::text(
        serde_json::to_string(&hello).expect("hello serialises"),
    )
}
