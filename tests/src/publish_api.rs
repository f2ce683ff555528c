//! The publish and read HTTP API: idempotent retries, all-or-nothing batches, history
//! paging, refused kinds, and unread counts that follow mark-read.

use std::collections::BTreeMap;

use tocsin_e2e::publisher::{dossier, email};
use tocsin_e2e::{Gateway, GatewayOptions, WsClient, assert_consecutive};
use tocsin_protocol::http::{MAX_BATCH, PublishResponse};
use tocsin_protocol::notification::TypingIndicator;
use tocsin_protocol::{ClientFrame, ErrorCode, Kind, NotificationData, ServerFrame};

fn dupont() -> GatewayOptions {
    GatewayOptions::with_tenants(&[("dupont", &["marie"])])
}

#[tokio::test]
async fn an_idempotent_retry_returns_the_first_result_and_stores_once() {
    let gw = Gateway::start(dupont()).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let key = gw.key("dupont");

    let mut request = email(&marie.stream(), "Conclusions adverses");
    request.idempotency_key = Some("mail-77".to_owned());
    let first = api.publish_ok(key, &request).await;
    assert!(!first.duplicate);

    let retry: PublishResponse = api
        .publish(key, &request)
        .await
        .expect_status(200, "an idempotent retry")
        .json();
    assert!(retry.duplicate, "the retry says duplicate=true");
    assert_eq!((&retry.id, retry.offset), (&first.id, first.offset));

    let other = api
        .publish_ok(key, &email(&marie.stream(), "another mail"))
        .await;
    assert_eq!(other.offset, first.offset + 1, "the retry took no offset");

    let token = api.login(marie).await.access_token;
    let history = api.history_ok(&token, &marie.stream(), None, None).await;
    let ids: Vec<&str> = history
        .notifications
        .iter()
        .map(|item| item.notification.id.as_str())
        .collect();
    assert_eq!(ids, [first.id.as_str(), other.id.as_str()], "stored once");
}

#[tokio::test]
async fn a_batch_answers_in_order_with_consecutive_offsets() {
    let gw = Gateway::start(dupont()).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let key = gw.key("dupont");
    api.publish_ok(key, &email(&marie.stream(), "before")).await;

    let batch = vec![
        email(&marie.stream(), "b1"),
        dossier(&marie.stream(), "2026-0001"),
        email(&marie.stream(), "b3"),
        dossier(&marie.stream(), "2026-0004"),
        email(&marie.stream(), "b5"),
    ];
    let titles: Vec<String> = batch.iter().map(|r| r.title.clone()).collect();
    let results = api.publish_batch_ok(key, batch).await;
    let offsets: Vec<u64> = results.iter().map(|r| r.offset).collect();
    assert_consecutive(&offsets, 2, "batch offsets");
    assert!(results.iter().all(|r| !r.duplicate));

    let token = api.login(marie).await.access_token;
    let history = api.history_ok(&token, &marie.stream(), Some(1), None).await;
    let stored: Vec<(u64, &str, &str)> = history
        .notifications
        .iter()
        .map(|i| {
            (
                i.offset,
                i.notification.id.as_str(),
                i.notification.title.as_str(),
            )
        })
        .collect();
    let expected: Vec<(u64, &str, &str)> = results
        .iter()
        .zip(&titles)
        .map(|(r, t)| (r.offset, r.id.as_str(), t.as_str()))
        .collect();
    assert_eq!(
        stored, expected,
        "each result names the notification stored there"
    );
}

#[tokio::test]
async fn a_batch_over_500_is_refused_and_stores_nothing() {
    let gw = Gateway::start(dupont()).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let batch = (0..=MAX_BATCH)
        .map(|i| email(&marie.stream(), &format!("too many #{i}")))
        .collect();
    let reply = api.publish_batch(gw.key("dupont"), batch).await;
    assert!(
        matches!(reply.status.as_u16(), 413 | 422),
        "a batch of 501 gets 413 or 422, got {} {}",
        reply.status,
        reply.body
    );
    let error = reply.error();
    assert!(
        matches!(error.code, ErrorCode::TooLarge | ErrorCode::InvalidRequest),
        "{error:?}"
    );
    assert!(
        error.message.contains("500"),
        "the message tells the limit: {:?}",
        error.message
    );

    let token = api.login(marie).await.access_token;
    let history = api.history_ok(&token, &marie.stream(), None, None).await;
    assert_eq!(history.head, 0, "nothing of the refused batch was stored");
}

#[tokio::test]
async fn history_pages_with_after_limit_and_next_after() {
    let gw = Gateway::start(dupont()).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let batch = (1..=25)
        .map(|i| email(&marie.stream(), &format!("page item {i}")))
        .collect();
    let published = api.publish_batch_ok(gw.key("dupont"), batch).await;
    let token = api.login(marie).await.access_token;

    let mut after = None;
    let mut pages = Vec::new();
    loop {
        let page = api
            .history_ok(&token, &marie.stream(), after, Some(10))
            .await;
        assert!(page.notifications.len() <= 10, "limit is honoured");
        assert_eq!((page.first, page.head), (1, 25));
        pages.push(
            page.notifications
                .iter()
                .map(|i| i.offset)
                .collect::<Vec<_>>(),
        );
        match page.next_after {
            Some(next) => {
                assert_eq!(Some(next), page.notifications.last().map(|i| i.offset));
                after = Some(next);
            }
            None => break,
        }
        assert!(pages.len() < 10, "paging terminates");
    }
    let expected: Vec<Vec<u64>> =
        vec![(1..=10).collect(), (11..=20).collect(), (21..=25).collect()];
    assert_eq!(pages, expected);

    let all = api.history_ok(&token, &marie.stream(), None, None).await;
    let ids: Vec<&str> = all
        .notifications
        .iter()
        .map(|i| i.notification.id.as_str())
        .collect();
    let published_ids: Vec<&str> = published.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, published_ids);
    assert!(all.notifications.iter().all(|i| !i.read));
}

#[tokio::test]
async fn an_ephemeral_kind_cannot_be_published() {
    let gw = Gateway::start(dupont()).await;
    let marie = gw.user("dupont", 0);
    let mut request = email(&marie.stream(), "typing");
    request.data = NotificationData::TypingIndicator(TypingIndicator {
        conversation_id: "c-1".to_owned(),
        user_id: marie.id.clone(),
        active: true,
    });
    let reply = gw.api().publish(gw.key("dupont"), &request).await;
    reply.expect_status(422, "publishing an ephemeral kind");
    assert_eq!(reply.error().code, ErrorCode::InvalidRequest);
}

#[tokio::test]
async fn unread_counts_per_kind_follow_mark_read_over_the_websocket() {
    let gw = Gateway::start(dupont()).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let key = gw.key("dupont");
    let token = api.login(marie).await.access_token;
    let mail1 = api.publish_ok(key, &email(&marie.stream(), "m1")).await;
    api.publish_ok(key, &email(&marie.stream(), "m2")).await;
    api.publish_ok(key, &dossier(&marie.stream(), "2026-0142"))
        .await;

    let unread = api.unread(&token).await;
    assert_eq!(unread.total, 3);
    assert_eq!(
        unread.by_kind,
        BTreeMap::from([(Kind::EmailReceived, 2), (Kind::DossierUpdated, 1)])
    );

    let (mut client, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    client
        .send(&ClientFrame::MarkRead {
            id: "read-1".to_owned(),
            notification_ids: vec![mail1.id.clone()],
        })
        .await;
    assert_ok(client.wait_result("read-1").await);
    let unread = api.unread(&token).await;
    assert_eq!(unread.total, 2);
    assert_eq!(
        unread.by_kind,
        BTreeMap::from([(Kind::EmailReceived, 1), (Kind::DossierUpdated, 1)])
    );

    client
        .send(&ClientFrame::MarkAllRead {
            up_to: Default::default(),
            id: "read-2".to_owned(),
            kind: Some(Kind::DossierUpdated),
        })
        .await;
    assert_ok(client.wait_result("read-2").await);
    let unread = api.unread(&token).await;
    assert_eq!(unread.total, 1);
    assert_eq!(unread.by_kind, BTreeMap::from([(Kind::EmailReceived, 1)]));

    let history = api.history_ok(&token, &marie.stream(), None, None).await;
    let read: Vec<bool> = history.notifications.iter().map(|i| i.read).collect();
    assert_eq!(
        read,
        [true, false, true],
        "history shows per-item read state"
    );

    // A client rebuilding the stream asks for what is unread first.
    let reply = api
        .send(
            reqwest::Client::new()
                .get(format!("http://{}/v1/history", gw.addr()))
                .bearer_auth(&token)
                .query(&[("stream", marie.stream().as_str()), ("unread", "true")]),
        )
        .await
        .expect("answered");
    let unread: tocsin_protocol::http::HistoryResponse =
        serde_json::from_value(reply.body.clone()).expect("a history page");
    let offsets: Vec<u64> = unread.notifications.iter().map(|i| i.offset).collect();
    assert_eq!(offsets, [2], "only m2 is unread: {}", reply.body);
}

fn assert_ok(frame: ServerFrame) {
    match frame {
        ServerFrame::Result { ok: true, .. } => {}
        other => panic!("expected ok=true, got {other:?}"),
    }
}

/// The gateway keeps a looked-up API key for a few seconds (PROTOCOL.md §3.4), so a key
/// revoked by another process (`key revoke`) is refused within that time, not at once.
#[tokio::test]
async fn a_revoked_key_is_refused_within_the_lookup_ttl() {
    // The gateway's lookup TTL (api/cache.rs), plus room for a loaded machine.
    const TTL: std::time::Duration = std::time::Duration::from_secs(5);
    const SLACK: std::time::Duration = std::time::Duration::from_secs(10);
    let gw = Gateway::start(dupont()).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0);
    let key = gw.key("dupont");
    // A first publish puts the key in the gateway's cache.
    api.publish_ok(key, &email(&marie.stream(), "before")).await;

    let key_id = key
        .strip_prefix("tsk_")
        .and_then(|rest| rest.split_once('_'))
        .map(|(id, _)| id)
        .expect("keys are tsk_<id>_<secret>");
    gw.admin(&["key", "revoke", key_id]).await;
    let revoked_at = std::time::Instant::now();

    // Until the cached copy expires the key may still work; then it must be refused.
    loop {
        let reply = api.publish(key, &email(&marie.stream(), "after")).await;
        if reply.status.as_u16() == 401 {
            break;
        }
        assert!(
            reply.status.is_success(),
            "a key is either still cached or refused: {}",
            reply.status
        );
        assert!(
            revoked_at.elapsed() < TTL + SLACK,
            "the revoked key still works {:?} after `key revoke`",
            revoked_at.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    // Refused for good: the cache never brings a revoked key back.
    api.publish(key, &email(&marie.stream(), "later"))
        .await
        .expect_status(401, "a revoked key stays refused");
}
