//! Governing users who leave the firm: an admin key disables a user (every device's
//! socket closed at once with 4101, refresh and old tokens refused, sign-in told why),
//! enables them again, or erases them (GDPR) while the audit trail keeps its records
//! under an anonymised id. Publishing keys and other firms' admin keys are refused.
//! The CLI does the same on a stopped gateway's data dir, and while one serves it
//! refuses and points at the API (only the gateway can close its sockets).

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin_e2e::binary::gateway_binary;
use tocsin_e2e::publisher::email;
use tocsin_e2e::ws::ConnectFailure;
use tocsin_e2e::{ConnectOptions, Gateway, GatewayOptions, STEP, UserFixture, WsClient};
use tocsin_protocol::audit::AuditPage;
use tocsin_protocol::frames::ClientFrame;

const WAIT: Duration = Duration::from_secs(20);

/// `method path` with `key` as bearer; the status and the JSON body.
async fn call(
    gw: &Gateway,
    method: reqwest::Method,
    path: &str,
    key: &str,
) -> (u16, serde_json::Value) {
    let response = reqwest::Client::new()
        .request(method, format!("{}{path}", gw.base_url()))
        .bearer_auth(key)
        .timeout(WAIT)
        .send()
        .await
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    let status = response.status().as_u16();
    let body = response.json().await.unwrap_or(serde_json::Value::Null);
    (status, body)
}

async fn post(gw: &Gateway, path: &str, key: &str) -> (u16, serde_json::Value) {
    call(gw, reqwest::Method::POST, path, key).await
}

/// The error message of a refusal, for assertions on what it tells.
fn message(body: &serde_json::Value) -> &str {
    body["message"].as_str().unwrap_or_default()
}

/// Runs the CLI on the gateway's data dir; success, stdout and stderr.
async fn cli(gw: &Gateway, args: &[&str]) -> (bool, String, String) {
    let output = tokio::process::Command::new(gateway_binary())
        .arg("--data-dir")
        .arg(gw.data_dir())
        .args(args)
        .env_remove(tocsin_harness::env::DATA_DIR)
        .env("NO_COLOR", "1")
        .output();
    let output = tokio::time::timeout(WAIT, output)
        .await
        .expect("the CLI ends")
        .expect("the CLI runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

async fn login_status(gw: &Gateway, user: &UserFixture, password: &str) -> (u16, String) {
    let reply = gw.api().login_raw(&user.email, password).await;
    let text = reply.body["message"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    (reply.status.as_u16(), text)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn disabling_closes_every_device_at_once_and_enabling_lets_them_back() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[
        ("dupont", &["marie", "paul"]),
        ("martin", &["jean"]),
    ]))
    .await;
    let api = gw.api();
    let admin = gw.create_key("dupont", true).await;
    let marie = gw.user("dupont", 0).clone();
    let laptop = api.login(&marie).await;
    let desk = api.login(&marie).await;
    let (mut on_laptop, _, _) =
        WsClient::connect_ready(&gw.ws_url(), &laptop.access_token, BTreeMap::new()).await;
    let (mut on_desk, _, _) =
        WsClient::connect_ready(&gw.ws_url(), &desk.access_token, BTreeMap::new()).await;
    let disable = format!("/v1/users/{}/disable", marie.email);

    // Refusals first, each saying what to do; nothing changes.
    let (status, body) = post(&gw, &disable, gw.key("dupont")).await;
    assert_eq!(status, 403, "a publishing key: {body}");
    assert!(
        message(&body).contains("key create --tenant <firm> --admin"),
        "{body}"
    );
    let other_firm = gw.create_key("martin", true).await;
    let (status, body) = post(&gw, &disable, &other_firm).await;
    assert_eq!(status, 404, "another firm's user is unknown to it: {body}");
    let (status, body) = post(&gw, "/v1/users/nobody@dupont.example/disable", &admin).await;
    assert_eq!(status, 404, "{body}");
    assert!(message(&body).contains("user list"), "{body}");
    let sent = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "still enabled"))
        .await;
    on_laptop.wait_notification(&sent.id, STEP).await;

    // Disabled: both devices closed at once with 4101, with the reason in the error.
    let (status, body) = post(&gw, &disable, &admin).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["disabled"], true);
    assert_eq!(body["sessions_revoked"], 2, "{body}");
    for socket in [&mut on_laptop, &mut on_desk] {
        let (closed, frames) = socket.expect_close(STEP).await;
        assert_eq!(closed.code, Some(4101), "{closed:?} after {frames:?}");
        assert!(
            format!("{frames:?}").contains("this account is disabled"),
            "{frames:?}"
        );
    }
    for token in [&laptop.refresh_token, &desk.refresh_token] {
        api.refresh(token)
            .await
            .expect_status(401, "refresh after disable");
    }
    let (status, text) = login_status(&gw, &marie, &marie.password).await;
    assert_eq!(status, 403, "{text}");
    assert!(
        text.contains("disabled") && text.contains("administrator"),
        "{text}"
    );
    let (status, text) = login_status(&gw, &marie, "not her password").await;
    assert_eq!(
        (status, text.as_str()),
        (401, "wrong email or password"),
        "a wrong password learns nothing"
    );
    let unread = reqwest::Client::new()
        .get(format!("{}/v1/unread", gw.base_url()))
        .bearer_auth(&laptop.access_token)
        .send()
        .await
        .expect("answers");
    assert_eq!(
        unread.status().as_u16(),
        403,
        "an old access token is refused"
    );
    let again =
        WsClient::try_connect(&gw.ws_url(), &ConnectOptions::bearer(&laptop.access_token)).await;
    assert!(
        matches!(again, Err(ConnectFailure::Refused { status: 403, .. })),
        "{:?}",
        again.err()
    );
    // Her colleague is untouched.
    let paul = gw.user("dupont", 1).clone();
    api.login(&paul).await;

    // Enabled: she signs in again; the old sessions stay signed out.
    let (status, body) = post(&gw, &format!("/v1/users/{}/enable", marie.id), &admin).await;
    assert_eq!(
        (status, body["disabled"].clone()),
        (200, false.into()),
        "{body}"
    );
    let back = api.login(&marie).await;
    let (mut on_back, _, _) =
        WsClient::connect_ready(&gw.ws_url(), &back.access_token, BTreeMap::new()).await;
    let sent = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "welcome back"))
        .await;
    on_back.wait_notification(&sent.id, STEP).await;
    api.refresh(&desk.refresh_token)
        .await
        .expect_status(401, "an old session");

    // Each refusal was counted: the disabled account's sign-in and token, the
    // publishing key's 403 and the unknown users' 404s.
    let metrics = gw.scrape_metrics().await;
    for (series, at_least) in [
        (
            "tocsin_auth_failures_total{reason=\"disabled_account\"}",
            3.0,
        ),
        (
            "tocsin_refusals_total{code=\"forbidden\",surface=\"http\"}",
            1.0,
        ),
        (
            "tocsin_refusals_total{code=\"not_found\",surface=\"http\"}",
            2.0,
        ),
    ] {
        let value = metrics
            .lines()
            .find_map(|line| line.strip_prefix(series))
            .and_then(|value| value.trim().parse::<f64>().ok())
            .unwrap_or_else(|| panic!("{series} in {metrics}"));
        assert!(value >= at_least, "{series} = {value}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn erasing_a_user_keeps_the_audit_trail_under_an_anonymised_id() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[(
        "dupont",
        &["marie", "paul"],
    )]))
    .await;
    let api = gw.api();
    let admin = gw.create_key("dupont", true).await;
    let marie = gw.user("dupont", 0).clone();
    let login = api.login(&marie).await;
    let (mut socket, _, _) =
        WsClient::connect_ready(&gw.ws_url(), &login.access_token, BTreeMap::new()).await;
    let sent = api
        .publish_ok(
            gw.key("dupont"),
            &email(&marie.stream(), &format!("pour {}", marie.email)),
        )
        .await;
    socket.wait_notification(&sent.id, STEP).await;
    socket
        .send(&ClientFrame::MarkRead {
            id: "read-1".into(),
            notification_ids: vec![sent.id.clone()],
        })
        .await;
    socket.wait_result("read-1").await;

    let path = format!("/v1/users/{}", marie.email);
    let (status, body) = call(&gw, reqwest::Method::DELETE, &path, &admin).await;
    assert_eq!(status, 422, "no erase=true: {body}");
    assert!(message(&body).contains("erase=true"), "{body}");
    let (status, body) = call(
        &gw,
        reqwest::Method::DELETE,
        &format!("{path}?erase=true"),
        gw.key("dupont"),
    )
    .await;
    assert_eq!(status, 403, "a publishing key: {body}");

    let (status, body) = call(
        &gw,
        reqwest::Method::DELETE,
        &format!("{path}?erase=true"),
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let anonymised = body["anonymised_id"].as_str().expect("an id").to_owned();
    assert!(anonymised.starts_with("erased:"), "{body}");
    let (closed, _) = socket.expect_close(STEP).await;
    assert_eq!(closed.code, Some(4100), "{closed:?}");
    let (status, text) = login_status(&gw, &marie, &marie.password).await;
    assert_eq!((status, text.as_str()), (401, "wrong email or password"));
    api.refresh(&login.refresh_token)
        .await
        .expect_status(401, "refresh after erasure");
    let (status, _) = call(
        &gw,
        reqwest::Method::DELETE,
        &format!("{path}?erase=true"),
        &admin,
    )
    .await;
    assert_eq!(status, 404, "erased is gone");

    // The proof stays: published and read, under the anonymised id, naming nobody.
    let (status, body) = call(
        &gw,
        reqwest::Method::GET,
        "/v1/audit?dossier=2026-0142",
        &admin,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let page: AuditPage = serde_json::from_value(body.clone()).expect("an audit page");
    let hers: Vec<_> = page
        .records
        .iter()
        .filter(|r| r.user_id.as_deref() == Some(anonymised.as_str()))
        .map(|r| r.event)
        .collect();
    assert!(hers.len() >= 2, "published and read kept: {body}");
    let text = body.to_string();
    assert!(
        !text.contains(&marie.id) && !text.contains(&marie.email),
        "{text}"
    );
    let (status, _) = call(
        &gw,
        reqwest::Method::GET,
        &format!("/v1/audit?user={}", marie.email),
        &admin,
    )
    .await;
    assert_eq!(status, 404, "her email finds nobody any more");
    let (_, listed, _) = cli(&gw, &["user", "list", "--tenant", "dupont"]).await;
    assert!(!listed.contains(&marie.email), "{listed}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_governs_a_stopped_gateways_users_and_defers_to_a_running_one() {
    let mut gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    gw.api().login(&marie).await;

    // Serving: disabling and erasing are refused with the API call to make instead.
    let (ok, _, stderr) = cli(&gw, &["user", "disable", &marie.email]).await;
    assert!(!ok, "refused while served");
    assert!(
        stderr.contains("is serving")
            && stderr.contains(&format!("<gateway URL>/v1/users/{}/disable", marie.email))
            && stderr.contains("--admin"),
        "{stderr}"
    );
    let (ok, _, stderr) = cli(&gw, &["user", "delete", &marie.email]).await;
    assert!(!ok && stderr.contains("--erase"), "{stderr}");
    let (ok, _, stderr) = cli(&gw, &["user", "delete", &marie.email, "--erase"]).await;
    assert!(!ok && stderr.contains("?erase=true"), "{stderr}");

    // Stopped (even by SIGKILL: no stale claim), the CLI does it and says what it did.
    gw.kill_hard().await;
    let (ok, _, stderr) = cli(&gw, &["user", "disable", "nobody@dupont.example"]).await;
    assert!(!ok && stderr.contains("no user with email"), "{stderr}");
    let (ok, stdout, stderr) = cli(&gw, &["user", "disable", &marie.email.to_uppercase()]).await;
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), marie.id);
    assert!(
        stderr.contains("disabled") && stderr.contains("1 device session"),
        "{stderr}"
    );
    gw.restart().await;
    let (status, text) = login_status(&gw, &marie, &marie.password).await;
    assert_eq!(status, 403, "{text}");

    // Enabling closes nothing, so it works while served.
    let (ok, _, stderr) = cli(&gw, &["user", "enable", &marie.email]).await;
    assert!(ok && stderr.contains("enabled"), "{stderr}");
    gw.api().login(&marie).await;

    gw.terminate();
    gw.wait_exit(WAIT).await;
    let (ok, stdout, stderr) = cli(&gw, &["user", "delete", &marie.email, "--erase"]).await;
    assert!(ok, "{stderr}");
    assert!(
        stdout.trim().starts_with("erased:") && stderr.contains("erased"),
        "{stdout} {stderr}"
    );
    gw.restart().await;
    let (status, _) = login_status(&gw, &marie, &marie.password).await;
    assert_eq!(status, 401, "erased");
}
