//! Small holes an outside attack found, each closed with a clear answer: offsets past
//! what SQLite stores, emails that differ only by non-ASCII case.

use tocsin_e2e::publisher::email;
use tocsin_e2e::{Gateway, GatewayOptions};

/// The attack: `GET /v1/history?after=` ≥ 2^63 wrapped to a negative offset and
/// returned the stream from offset 1.
#[tokio::test]
async fn history_after_an_offset_beyond_any_stored_returns_nothing() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let api = gw.api();
    for n in 0..3 {
        api.publish_ok(gw.key("dupont"), &email("tenant:dupont", &format!("#{n}")))
            .await;
    }
    let token = api.login(gw.user("dupont", 0)).await.access_token;
    for after in [1_u64 << 63, u64::MAX] {
        let page = api
            .history_ok(&token, "tenant:dupont", Some(after), None)
            .await;
        assert!(
            page.notifications.is_empty(),
            "after={after} returns nothing, not the stream from its start: {} items",
            page.notifications.len()
        );
        assert_eq!(page.head, 3);
    }
}

/// The attack: `MÅRIE@` and `mårie@` were two accounts (SQLite's NOCASE folds ASCII
/// only). An email is now one account whatever its case.
#[tokio::test]
async fn an_email_is_one_account_whatever_its_non_ascii_case() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["MÅRIE"])])).await;
    let api = gw.api();
    let marie = gw.user("dupont", 0).clone();
    assert_eq!(marie.email, "MÅRIE@dupont.example");

    let signed_in = api.login_raw("mårie@dupont.example", &marie.password).await;
    assert_eq!(
        signed_in.status.as_u16(),
        200,
        "the lower-case spelling signs in: {:?}",
        signed_in.body
    );
    let mixed = api.login_raw("Mårie@DUPONT.example", &marie.password).await;
    assert_eq!(mixed.status.as_u16(), 200, "{:?}", mixed.body);
    let ids: Vec<String> = [&signed_in, &mixed]
        .iter()
        .map(|reply| {
            reply.body["user"]["id"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect();
    assert_eq!(ids, [marie.id.clone(), marie.id.clone()], "one account");
}
