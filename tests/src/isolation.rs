//! Firm isolation: with two firms on one gateway, firm B's users and key can neither
//! see, read, publish into, join nor mark anything of firm A.

use std::collections::BTreeMap;

use tocsin_e2e::publisher::{conversation_message, email};
use tocsin_e2e::ws::summarize;
use tocsin_e2e::{Gateway, GatewayOptions, STEP, WsClient};
use tocsin_protocol::{ClientFrame, ErrorCode, ServerFrame};

/// A gateway with firms `alpha` (anne) and `beta` (bruno), and a conversation of alpha.
async fn two_firms() -> (Gateway, String) {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[
        ("alpha", &["anne"]),
        ("beta", &["bruno"]),
    ]))
    .await;
    let conversation = "conv-alpha-1".to_owned();
    let anne = gw.user("alpha", 0).id.clone();
    gw.api()
        .set_members(gw.key("alpha"), &conversation, &[&anne])
        .await
        .expect_status(200, "alpha creates its conversation");
    (gw, conversation)
}

#[tokio::test]
async fn another_firms_user_never_receives_our_notifications() {
    let (gw, conversation) = two_firms().await;
    let api = gw.api();
    let anne = gw.user("alpha", 0);
    let bruno = gw.user("beta", 0);
    let token = api.login(bruno).await.access_token;
    let (mut client, welcome, _) =
        WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    let streams: Vec<String> = welcome
        .streams
        .iter()
        .map(|s| s.stream.to_string())
        .collect();
    assert!(
        streams
            .iter()
            .all(|s| !s.contains("alpha") && !s.contains(&anne.id)),
        "bruno is subscribed to nothing of alpha: {streams:?}"
    );

    let alpha = gw.key("alpha");
    api.publish_ok(alpha, &email(&anne.stream(), "to anne"))
        .await;
    api.publish_ok(
        alpha,
        &email(&format!("user:{}", anne.email), "to anne by email"),
    )
    .await;
    api.publish_ok(alpha, &email("tenant:alpha", "to alpha"))
        .await;
    api.publish_ok(alpha, &conversation_message(&conversation))
        .await;
    let marker = api
        .publish_ok(gw.key("beta"), &email("tenant:beta", "marker"))
        .await;

    // Everything alpha published was stored before the marker; wait for the marker and
    // check nothing else came.
    let mut before = Vec::new();
    loop {
        match client.next_frame(STEP).await {
            ServerFrame::Notification { notification, .. } if notification.id == marker.id => {
                break;
            }
            other => before.push(other),
        }
    }
    let own = [bruno.stream(), "tenant:beta".to_owned()];
    let intrusions: Vec<ServerFrame> = before
        .into_iter()
        .filter(|frame| match frame {
            ServerFrame::Notification { .. } => true,
            ServerFrame::Ephemeral { stream, .. } => !own.contains(&stream.to_string()),
            _ => false,
        })
        .collect();
    assert!(
        intrusions.is_empty(),
        "bruno received frames that are not his: {}",
        summarize(&intrusions)
    );
}

#[tokio::test]
async fn a_key_cannot_publish_into_another_firm_nor_to_all() {
    let (gw, conversation) = two_firms().await;
    let api = gw.api();
    let anne = gw.user("alpha", 0);
    let beta = gw.key("beta");
    let targets = [
        anne.stream(),
        format!("user:{}", anne.email),
        "tenant:alpha".to_owned(),
        format!("conversation:{conversation}"),
    ];
    let mut failures = Vec::new();
    for target in &targets {
        let reply = api.publish(beta, &email(target, "intrusion")).await;
        if !matches!(reply.status.as_u16(), 403 | 404) {
            failures.push(format!("beta → {target}: {} {}", reply.status, reply.body));
        }
    }
    let reply = api
        .publish(gw.key("alpha"), &email("all", "everyone"))
        .await;
    if reply.status.as_u16() != 403 {
        failures.push(format!("alpha key → all: {} {}", reply.status, reply.body));
    }
    assert!(failures.is_empty(), "accepted:\n{}", failures.join("\n"));

    let token = api.login(anne).await.access_token;
    for stream in [
        anne.stream(),
        "tenant:alpha".to_owned(),
        format!("conversation:alpha:{conversation}"),
    ] {
        let history = api.history_ok(&token, &stream, None, None).await;
        assert_eq!(history.head, 0, "nothing was stored in {stream}");
    }
}

#[tokio::test]
async fn another_firms_history_is_forbidden() {
    let (gw, conversation) = two_firms().await;
    let api = gw.api();
    let anne = gw.user("alpha", 0);
    let token = api.login(gw.user("beta", 0)).await.access_token;
    let mut failures = Vec::new();
    for stream in [
        anne.stream(),
        "tenant:alpha".to_owned(),
        format!("conversation:{conversation}"),
        format!("conversation:alpha:{conversation}"),
    ] {
        let reply = api.history(&token, &stream, None, None).await;
        if reply.status.as_u16() != 403 {
            failures.push(format!("{stream}: {} {}", reply.status, reply.body));
        }
    }
    assert!(
        failures.is_empty(),
        "readable by beta:\n{}",
        failures.join("\n")
    );
}

#[tokio::test]
async fn joining_another_firms_conversation_is_refused() {
    let (gw, conversation) = two_firms().await;
    let api = gw.api();
    let token = api.login(gw.user("beta", 0)).await.access_token;
    let (mut client, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    client
        .send(&ClientFrame::Join {
            id: "join-1".to_owned(),
            conversation_id: conversation.clone(),
            position: None,
        })
        .await;
    match client.wait_result("join-1").await {
        ServerFrame::Result {
            ok: false, error, ..
        } => {
            let code = error.map(|e| e.code);
            assert_eq!(code, Some(ErrorCode::Forbidden));
        }
        other => panic!("beta joined alpha's conversation: {other:?}"),
    }

    let secret = api
        .publish_ok(gw.key("alpha"), &conversation_message(&conversation))
        .await;
    let marker = api
        .publish_ok(gw.key("beta"), &email("tenant:beta", "marker"))
        .await;
    let mut before = Vec::new();
    loop {
        match client.next_frame(STEP).await {
            ServerFrame::Notification { notification, .. } if notification.id == marker.id => {
                break;
            }
            other => before.push(other),
        }
    }
    assert!(
        before.iter().all(|f| !matches!(f,
            ServerFrame::Notification { notification, .. } if notification.id == secret.id)),
        "beta received alpha's conversation message: {}",
        summarize(&before)
    );
}

#[tokio::test]
async fn marking_another_firms_notification_read_changes_nothing() {
    let (gw, _) = two_firms().await;
    let api = gw.api();
    let anne = gw.user("alpha", 0);
    let anne_token = api.login(anne).await.access_token;
    let bruno_token = api.login(gw.user("beta", 0)).await.access_token;
    let notification = api
        .publish_ok(gw.key("alpha"), &email(&anne.stream(), "for anne"))
        .await;
    assert_eq!(api.unread(&anne_token).await.total, 1);

    let (mut client, _, _) =
        WsClient::connect_ready(&gw.ws_url(), &bruno_token, BTreeMap::new()).await;
    client
        .send(&ClientFrame::MarkRead {
            id: "steal-1".to_owned(),
            notification_ids: vec![notification.id.clone()],
        })
        .await;
    client.wait_result("steal-1").await;
    client
        .send(&ClientFrame::MarkAllRead {
            up_to: Default::default(),
            id: "steal-2".to_owned(),
            kind: None,
        })
        .await;
    client.wait_result("steal-2").await;

    assert_eq!(
        api.unread(&anne_token).await.total,
        1,
        "anne's notification is still unread"
    );
    let history = api
        .history_ok(&anne_token, &anne.stream(), None, None)
        .await;
    assert!(!history.notifications[0].read);
}

const IDP_SECRET: &str = "e2e-isolation-idp-secret-0123456789";

/// The attack: with `[auth.external]`, an IdP token `sub=marie@dupont.example,
/// tenant=martin` made a shadow user in martin, and a global key's publish to
/// `user:marie@dupont.example` went to that shadow user while dupont's real marie got
/// nothing. Targets are now looked up inside one named firm only.
#[tokio::test]
async fn an_external_id_that_looks_like_another_firms_email_never_takes_its_mail() {
    use jsonwebtoken::Algorithm;
    use tocsin_e2e::gateway::ExternalAuth;
    use tocsin_e2e::tokens::{claims, sign};
    use tocsin_e2e::{ConnectOptions, TenantSpec};

    let gw = Gateway::start(GatewayOptions {
        tenants: vec![
            TenantSpec::new("dupont", &["marie"]),
            TenantSpec::new("martin", &[]),
        ],
        global_key: true,
        external_auth: Some(ExternalAuth {
            secret: IDP_SECRET.to_owned(),
            issuer: "https://idp.example".to_owned(),
            audience: "tocsin".to_owned(),
            leeway_secs: 30,
        }),
        ..GatewayOptions::default()
    })
    .await;
    let api = gw.api();
    let marie = gw.user("dupont", 0).clone();
    assert_eq!(marie.email, "marie@dupont.example");
    let squatter = sign(
        &claims(&marie.email, "martin", "https://idp.example", "tocsin"),
        IDP_SECRET,
        Algorithm::HS256,
    );
    let mut shadow = WsClient::connect(&gw.ws_url(), &ConnectOptions::bearer(&squatter)).await;
    shadow.hello(BTreeMap::new()).await;
    shadow.read_until_caught_up(STEP).await;
    let token = api.login(&marie).await.access_token;
    let (mut real, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;

    let target = format!("user:{}", marie.email);
    let mut request = email(&target, "Jugement — dossier 2024-117");
    let refused = api.publish(gw.global_key(), &request).await;
    assert_eq!(refused.status.as_u16(), 422, "{:?}", refused.body);
    assert!(
        refused.error().message.contains("\"tenant\""),
        "a global key is told to name the firm: {}",
        refused.error().message
    );

    request.tenant = Some("dupont".to_owned());
    let sent = api.publish_ok(gw.global_key(), &request).await;
    assert_eq!(
        sent.stream.to_string(),
        marie.stream(),
        "the real marie's stream"
    );
    real.wait_notification(&sent.id, STEP).await;
    let by_firm_key = api
        .publish_ok(gw.key("dupont"), &email(&target, "Convocation"))
        .await;
    assert_eq!(by_firm_key.stream.to_string(), marie.stream());

    // A marker to the shadow user's own firm: nothing of marie's reached it before.
    let marker = api
        .publish_ok(gw.global_key(), &email("tenant:martin", "marker"))
        .await;
    let seen = shadow.wait_notification(&marker.id, STEP).await;
    assert_eq!(seen.notification.title, "marker");
    let shadow_stream: tocsin_protocol::StreamName =
        target.parse().expect("the shadow user's stream");
    assert!(
        shadow
            .positions()
            .get(&shadow_stream)
            .is_none_or(|position| position.offset == 0),
        "nothing of marie's reached the shadow user: {:?}",
        shadow.positions()
    );
}

/// The attack: conversation ids were global, so another firm reusing an id got 403
/// where an unknown id got 404 — the id's existence leaked, and a firm could squat ids
/// another would need. Each firm now has its own conversations: the same id in two
/// firms is two conversations, each reaching only its own members.
#[tokio::test]
async fn two_firms_may_use_the_same_conversation_id_each_for_its_own() {
    let (gw, conversation) = two_firms().await;
    let api = gw.api();
    let bruno = gw.user("beta", 0).clone();
    let created = api
        .set_members(gw.key("beta"), &conversation, &[&bruno.id])
        .await;
    assert_eq!(
        created.status.as_u16(),
        200,
        "beta gets its own conversation of that id: {:?}",
        created.body
    );

    let token = api.login(&bruno).await.access_token;
    let (mut bruno_socket, welcome, _) =
        WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    let own = format!("conversation:beta:{conversation}");
    assert!(
        welcome.streams.iter().any(|s| s.stream.to_string() == own),
        "bruno reads beta's conversation: {:?}",
        welcome.streams
    );
    let to_alpha = api
        .publish_ok(gw.key("alpha"), &conversation_message(&conversation))
        .await;
    assert_eq!(
        to_alpha.stream.to_string(),
        format!("conversation:alpha:{conversation}")
    );
    let to_beta = api
        .publish_ok(gw.key("beta"), &conversation_message(&conversation))
        .await;
    assert_eq!(to_beta.stream.to_string(), own);
    // Alpha's message was published first: had it reached bruno, it would come first.
    let first = bruno_socket
        .wait_for(STEP, "a conversation message", |frame| match frame {
            ServerFrame::Notification { notification, .. } => Some(notification.id.clone()),
            _ => None,
        })
        .await;
    assert_eq!(first, to_beta.id, "only beta's own message reaches bruno");
}
