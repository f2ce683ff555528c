//! A kind this build does not know — stored by a newer gateway that was then rolled
//! back — is served as stored by the history API, stored and shown by the real client
//! engine as a generic notice, and does not stop what follows it from arriving. A
//! publisher's own fields and a deep link are kept as sent.

use std::time::Duration;

use serde_json::json;
use tocsin_client::events::EngineEvent;
use tocsin_client::store::Tab;
use tocsin_e2e::client::{ClientOptions, TestClient};
use tocsin_e2e::newer_kind::{NEWER_KIND, NEWER_TITLE, rewrite_as_newer_kind};
use tocsin_e2e::publisher::email;
use tocsin_e2e::{Gateway, GatewayOptions};
use tocsin_protocol::{Kind, NotificationData};

const LONG: Duration = Duration::from_secs(60);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unknown_stored_kind_is_served_shown_and_does_not_block_what_follows() {
    let mut gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let api = gw.api();
    let key = gw.key("dupont").to_owned();
    let base = format!("http://{}", gw.addr());
    let mut client = TestClient::sign_in(&base, &marie, ClientOptions::default()).await;
    client.wait_connected(LONG).await;
    let (home, secrets) = client.stop().await;

    // While the desktop is closed: one notification the rolled-back gateway cannot
    // type, then one it can.
    let newer = api
        .publish_ok(&key, &email(&marie.stream(), "sera réécrit"))
        .await;
    let after = api
        .publish_ok(&key, &email(&marie.stream(), "la suite"))
        .await;
    gw.terminate();
    gw.wait_exit(LONG).await;
    rewrite_as_newer_kind(&gw, &newer.id);
    gw.restart_on_same_port().await;

    let server = tocsin_client::api::ServerUrl::parse(&base).expect("url");
    let mut client = TestClient::start_in(server, home, secrets, ClientOptions::default());
    let mut attempts = 0;
    let mut arrived = Vec::new();
    while !arrived.contains(&after.id) {
        client
            .wait_for(LONG, "the notification after the unknown one", |event| {
                match event {
                    EngineEvent::State(tocsin_client::events::ConnectionState::Connecting {
                        next_retry: None,
                        ..
                    }) => attempts += 1,
                    EngineEvent::Notification { notification, .. } => {
                        arrived.push(notification.id.clone())
                    }
                    _ => return None,
                }
                Some(())
            })
            .await;
        assert!(
            attempts <= 1,
            "a reconnect before the notification after the unknown kind arrived"
        );
    }
    assert_eq!(attempts, 1, "one connection, no reconnect loop");
    assert!(
        arrived.contains(&newer.id),
        "the unknown kind was delivered too"
    );

    let inbox = client.inbox();
    let stored = inbox
        .iter()
        .find(|item| item.notification.id == newer.id)
        .expect("the unknown kind is in the local inbox");
    assert_eq!(stored.notification.kind(), Kind::Unknown);
    assert_eq!(stored.notification.data.kind_name(), NEWER_KIND);
    assert_eq!(stored.notification.title, NEWER_TITLE);
    assert_eq!(Tab::of(stored.notification.kind()), Some(Tab::System));
    assert!(!stored.read, "shown as unread like any other notice");
    client.stop().await;

    let token = api.login(&marie).await.access_token;
    let history = api.history(&token, &marie.stream(), None, Some(100)).await;
    history.expect_status(200, "history with a kind this gateway does not know");
    let served = history.body["notifications"]
        .as_array()
        .expect("items")
        .iter()
        .find(|item| item["notification"]["id"] == newer.id.as_str())
        .expect("the newer kind is listed")
        .clone();
    assert_eq!(served["notification"]["kind"], NEWER_KIND);
    assert_eq!(
        served["notification"]["data"]["escalated_to"],
        "u-associate"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_publishers_own_fields_and_link_are_kept_and_unknown_kinds_refused() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let api = gw.api();
    let key = gw.key("dupont").to_owned();
    let mut request = email(&marie.stream(), "avec références");
    let NotificationData::EmailReceived(mail) = &mut request.data else {
        panic!("an email")
    };
    mail.extra
        .insert("ged_ref".into(), json!({"id": 4217, "base": "archives"}));
    request.url = Some("https://ged.cabinet.fr/mails/4217".into());
    let published = api.publish_ok(&key, &request).await;

    let token = api.login(&marie).await.access_token;
    let history = api
        .history_ok(&token, &marie.stream(), None, Some(10))
        .await;
    let item = history
        .notifications
        .iter()
        .find(|item| item.notification.id == published.id)
        .expect("stored");
    assert_eq!(
        item.notification.url.as_deref(),
        Some("https://ged.cabinet.fr/mails/4217")
    );
    let NotificationData::EmailReceived(stored) = &item.notification.data else {
        panic!("typed as an email: {:?}", item.notification.data)
    };
    assert_eq!(
        stored.extra["ged_ref"],
        json!({"id": 4217, "base": "archives"})
    );

    let mut body = serde_json::to_value(email(&marie.stream(), "x")).expect("json");
    body["kind"] = NEWER_KIND.into();
    let reply = api
        .send(
            reqwest::Client::new()
                .post(format!("http://{}/v1/publish", gw.addr()))
                .bearer_auth(&key)
                .json(&body),
        )
        .await
        .expect("answered");
    assert_eq!(reply.status.as_u16(), 422, "{}", reply.body);
    let message = reply.body["message"].as_str().unwrap_or_default();
    assert!(
        message.contains(NEWER_KIND) && message.contains("email-received"),
        "the refusal names the kind and the known ones: {message}"
    );

    let mut link = email(&marie.stream(), "lien piégé");
    link.url = Some("javascript:alert(document.cookie)".into());
    let reply = api.publish(&key, &link).await;
    assert_eq!(reply.status.as_u16(), 422, "{}", reply.body);
}
