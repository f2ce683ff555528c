//! `tocsin-gateway publish` from a script against the real gateway: the notification
//! reaches the connected desktop; the address comes from the data dir's config (over
//! HTTPS with a self-signed `[tls]` pair too) or `--gateway`; a wrong key or bad
//! `--data` fails with exit 1 and the reason.

use std::collections::BTreeMap;
use std::process::Output;

use tocsin_e2e::binary::gateway_binary;
use tocsin_e2e::{Gateway, GatewayOptions, STEP, WsClient};

/// Runs `tocsin-gateway --data-dir <gw's> publish <args>` with `key` in TOCSIN_API_KEY.
async fn publish(gw: &Gateway, key: &str, args: &[&str]) -> Output {
    tokio::process::Command::new(gateway_binary())
        .arg("--data-dir")
        .arg(gw.data_dir())
        .arg("publish")
        .args(args)
        .env(tocsin_harness::env::API_KEY, key)
        .env_remove(tocsin_harness::env::URL)
        .env_remove(tocsin_harness::env::DATA_DIR)
        .output()
        .await
        .expect("the CLI runs")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Points the data dir's `listen` at the running gateway, as a config a script on the
/// gateway's machine would read (tests serve on a port picked at start).
fn listen_here(gw: &Gateway) {
    let path = gw.data_dir().join("config.toml");
    let mut config: toml::Table = std::fs::read_to_string(&path)
        .expect("config")
        .parse()
        .expect("parses");
    config.insert("listen".into(), toml::Value::String(gw.addr().to_owned()));
    std::fs::write(&path, toml::to_string(&config).expect("serialises")).expect("written");
}

async fn published_reaches_the_desktop(gw: &Gateway, extra: &[&str]) {
    let api = gw.api();
    let marie = gw.user("dupont", 0).clone();
    let token = api.login(&marie).await.access_token;
    let (mut client, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    let to = format!("user:{}", marie.email);
    let mut args = vec![
        "--to",
        &to,
        "--title",
        "La sauvegarde de cette nuit a échoué",
        "--body",
        "Disque plein sur le NAS",
    ];
    args.extend_from_slice(extra);
    let out = publish(gw, gw.key("dupont"), &args).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let said = text(&out.stdout);
    assert!(said.starts_with("published: id "), "{said}");
    let got = client.recv_notifications(1, STEP).await;
    let notification = &got[0].notification;
    assert_eq!(notification.title, "La sauvegarde de cette nuit a échoué");
    assert_eq!(notification.kind().as_str(), "system-notification");
    assert!(said.contains(&notification.id), "{said}");
}

#[tokio::test]
async fn a_script_publishes_through_the_running_gateway() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    // --gateway, as from another machine.
    let url = format!("http://{}", gw.addr());
    published_reaches_the_desktop(&gw, &["--gateway", &url]).await;
    // The data dir's config, as on the gateway's machine.
    listen_here(&gw);
    published_reaches_the_desktop(&gw, &[]).await;

    let to = format!("user:{}", gw.user("dupont", 0).email);
    let wrong = publish(&gw, "tsk_nobody_wrong", &["--to", &to, "--title", "x"]).await;
    assert_eq!(wrong.status.code(), Some(1));
    assert!(
        text(&wrong.stderr).contains("API key"),
        "{}",
        text(&wrong.stderr)
    );
    let bad = publish(
        &gw,
        gw.key("dupont"),
        &["--to", &to, "--title", "x", "--data", "{not json"],
    )
    .await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(text(&bad.stderr).contains("--data is not JSON"));
    let missing = publish(
        &gw,
        gw.key("dupont"),
        &["--to", &to, "--title", "x", "--kind", "email-received"],
    )
    .await;
    assert_eq!(missing.status.code(), Some(1));
    assert!(text(&missing.stderr).contains("needs its data"));
}

#[tokio::test]
async fn a_script_publishes_over_the_gateways_own_tls() {
    let gw = Gateway::start(GatewayOptions {
        init_args: vec!["--tls-self-signed".into(), "127.0.0.1".into()],
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    })
    .await;
    listen_here(&gw);
    let marie = gw.user("dupont", 0).clone();
    let to = format!("user:{}", marie.email);
    let out = publish(&gw, gw.key("dupont"), &["--to", &to, "--title", "Par TLS"]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));

    // Read back over HTTPS, trusting only the gateway's certificate.
    let config: toml::Table = std::fs::read_to_string(gw.data_dir().join("config.toml"))
        .expect("config")
        .parse()
        .expect("parses");
    let cert = gw
        .data_dir()
        .join(config["tls"]["cert"].as_str().expect("[tls] cert"));
    let pem = std::fs::read(cert).expect("the certificate");
    let client = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(&pem).expect("PEM"))
        .build()
        .expect("a client");
    let api = tocsin_e2e::http::Api::with_client(client, gw.base_url());
    let token = api.login(&marie).await.access_token;
    let history = api.history_ok(&token, &marie.stream(), None, None).await;
    assert!(
        history
            .notifications
            .iter()
            .any(|n| n.notification.title == "Par TLS"),
        "{history:?}"
    );
}
