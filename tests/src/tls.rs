//! Built-in TLS seen from outside: the real gateway serving a certificate made by
//! `init --tls-self-signed 127.0.0.1`. HTTPS and WSS with rustls trusting that
//! certificate; `openssl s_client` (TLS 1.1 refused, 1.2 and 1.3 served) and the
//! fingerprint `init` printed; plain HTTP answered with a clear 400; a stalled
//! handshake dropped; a certificate swapped under an open WebSocket (its files
//! replaced, or SIGHUP; a bad pair keeps the old one); an expired certificate refused
//! at start and one near its end reported by `/readyz`; testssl's scan of protocols
//! and ciphers.
//!
//! openssl and testssl are required (`cargo xtask setup` installs them): a test that
//! cannot run them fails, it never skips.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};
use tocsin_e2e::http::Api;
use tocsin_e2e::publisher::email;
use tocsin_e2e::ws::ConnectFailure;
use tocsin_e2e::{ConnectOptions, Gateway, GatewayOptions, STEP, WsClient, poll_until};
use tocsin_protocol::ErrorCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;
use tokio_rustls::rustls::client::Resumption;
use tokio_rustls::rustls::pki_types::pem::PemObject;
use tokio_rustls::rustls::pki_types::{CertificateDer, ServerName};
use tokio_rustls::rustls::{ClientConfig, RootCertStore};

/// How long a reload may take to show: the gateway checks its files every 5 s.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);
/// testssl's bounded scan takes ~20 s on an idle machine; parallel tests slow it.
const TESTSSL_TIMEOUT: Duration = Duration::from_secs(240);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A firm with one user, served over TLS with a certificate `init` made.
fn tls_options() -> GatewayOptions {
    GatewayOptions {
        init_args: vec!["--tls-self-signed".into(), "127.0.0.1".into()],
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    }
}

fn cert_path(gw: &Gateway) -> PathBuf {
    gw.data_dir().join("tls/cert.pem")
}

fn key_path(gw: &Gateway) -> PathBuf {
    gw.data_dir().join("tls/key.pem")
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{} is readable: {e}", path.display()))
}

/// The fingerprint line `init` printed.
fn printed_fingerprint(gw: &Gateway) -> String {
    gw.init_output()
        .lines()
        .find_map(|line| line.strip_prefix("SHA-256 fingerprint: "))
        .unwrap_or_else(|| panic!("init printed no fingerprint:\n{}", gw.init_output()))
        .trim()
        .to_owned()
}

/// As `openssl x509 -fingerprint -sha256` writes it.
fn fingerprint(der: &[u8]) -> String {
    let pairs: Vec<String> = Sha256::digest(der)
        .iter()
        .map(|byte| format!("{byte:02X}"))
        .collect();
    pairs.join(":")
}

/// A new self-signed pair for 127.0.0.1 valid from `from` to `to`: (cert PEM, key PEM,
/// fingerprint).
fn pair(from: SystemTime, to: SystemTime) -> (String, String, String) {
    let key = rcgen::KeyPair::generate().expect("a key pair");
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("parameters");
    params.not_before = from.into();
    params.not_after = to.into();
    let cert = params.self_signed(&key).expect("a certificate");
    (cert.pem(), key.serialize_pem(), fingerprint(cert.der()))
}

/// Replaces a file by renaming a new one over it, as certbot and editors do.
fn replace(path: &Path, contents: &str) {
    let staged = path.with_extension("new");
    std::fs::write(&staged, contents).expect("the new file can be written");
    std::fs::rename(&staged, path).expect("the new file can be renamed into place");
}

/// A rustls client trusting exactly the certificates in `pems`, never resuming a
/// session (a resumed session would report the certificate of the first one).
fn client_config(pems: &[&str]) -> Arc<ClientConfig> {
    let mut roots = RootCertStore::empty();
    for pem in pems {
        for cert in CertificateDer::pem_slice_iter(pem.as_bytes()) {
            roots
                .add(cert.expect("a PEM certificate"))
                .expect("a usable root");
        }
    }
    let provider = Arc::new(tokio_rustls::rustls::crypto::ring::default_provider());
    let mut config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .expect("TLS 1.2 and 1.3")
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.resumption = Resumption::disabled();
    Arc::new(config)
}

/// The HTTP API over HTTPS, trusting only the gateway's own certificate.
fn https_api(gw: &Gateway) -> Api {
    let pem = read(&cert_path(gw));
    let client = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("PEM"))
        .tls_built_in_root_certs(false)
        .https_only(true)
        .timeout(Duration::from_secs(20))
        .build()
        .expect("a reqwest client");
    Api::with_client(client, gw.base_url())
}

/// A `wss://` connection trusting `pems`, said hello and caught up.
async fn wss(gw: &Gateway, token: &str, pems: &[&str]) -> WsClient {
    let options = ConnectOptions {
        tls: Some(client_config(pems)),
        ..ConnectOptions::bearer(token)
    };
    let mut client = WsClient::connect(&gw.ws_url(), &options).await;
    client.hello(BTreeMap::new()).await;
    client.read_until_caught_up(STEP).await;
    client
}

/// The fingerprint of the certificate a new TLS connection gets, or `None` when the
/// handshake fails (`trust` must include it).
async fn served_fingerprint(addr: &str, trust: &[&str]) -> Option<String> {
    let connector = TlsConnector::from(client_config(trust));
    let tcp = TcpStream::connect(addr).await.ok()?;
    let name = ServerName::from(IpAddr::V4(Ipv4Addr::LOCALHOST));
    let tls = tokio::time::timeout(STEP, connector.connect(name, tcp))
        .await
        .ok()?
        .ok()?;
    let leaf = tls.get_ref().1.peer_certificates()?.first()?;
    Some(fingerprint(leaf))
}

/// Runs a tool to completion: (success, stdout + stderr).
async fn run(program: &str, args: &[&str], timeout: Duration) -> (bool, String) {
    let output = tokio::process::Command::new(program)
        .args(args)
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(timeout, output)
        .await
        .unwrap_or_else(|_| panic!("{program} {args:?} took over {timeout:?}"))
        .unwrap_or_else(|e| {
            panic!("{program} cannot be run ({e}); install it with `cargo xtask setup`")
        });
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), text)
}

async fn sighup(gw: &Gateway) {
    let pid = nix::unistd::Pid::from_raw(i32::try_from(gw.pid()).expect("a pid"));
    nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGHUP).expect("SIGHUP is sent");
}

async fn wait_for_log(gw: &Gateway, text: &str) {
    poll_until(
        RELOAD_TIMEOUT,
        &format!("the log says {text:?}"),
        || async { gw.log_tail(200).contains(text).then_some(()) },
    )
    .await;
}

#[tokio::test]
async fn https_and_wss_carry_publishes_and_notifications() {
    let gw = Gateway::start(tls_options()).await;
    assert!(gw.base_url().starts_with("https://"), "{}", gw.base_url());
    let api = https_api(&gw);
    let health = api.get("/healthz").await;
    health.expect_status(200, "GET /healthz over HTTPS");
    let ready = api.get("/readyz").await;
    ready.expect_status(200, "GET /readyz over HTTPS");
    assert_eq!(
        ready.body, "ready",
        "a five-year certificate has no warning"
    );

    let marie = gw.user("dupont", 0);
    let token = api.login(marie).await.access_token;
    let cert = read(&cert_path(&gw));
    let mut ws = wss(&gw, &token, &[&cert]).await;
    let published = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "over TLS"))
        .await;
    let delivered = ws.wait_notification(&published.id, STEP).await;
    assert_eq!(delivered.notification.title, "over TLS");
    ws.close().await;
}

#[tokio::test]
async fn openssl_gets_tls_1_2_and_1_3_only_and_the_printed_fingerprint() {
    let gw = Gateway::start(tls_options()).await;
    let addr = gw.addr().to_owned();
    let cert = cert_path(&gw);
    let cert = cert.to_str().expect("a UTF-8 path");

    // SECLEVEL=0 lets this OpenSSL offer TLS 1.1 at all: the refusal is the server's.
    let (ok, out) = run(
        "openssl",
        &[
            "s_client",
            "-connect",
            &addr,
            "-tls1_1",
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ],
        STEP,
    )
    .await;
    assert!(!ok, "TLS 1.1 was accepted:\n{out}");
    assert!(
        out.contains("alert"),
        "the server did not refuse TLS 1.1 with an alert:\n{out}"
    );

    for (flag, protocol) in [("-tls1_2", "TLSv1.2"), ("-tls1_3", "TLSv1.3")] {
        let (ok, out) = run(
            "openssl",
            &[
                "s_client",
                "-connect",
                &addr,
                flag,
                "-CAfile",
                cert,
                "-verify_return_error",
            ],
            STEP,
        )
        .await;
        assert!(ok, "{protocol} failed:\n{out}");
        assert!(
            out.contains(&format!("Protocol  : {protocol}"))
                || out.contains(&format!("New, {protocol}")),
            "{out}"
        );
        assert!(out.contains("Verify return code: 0 (ok)"), "{out}");
    }

    let (ok, out) = run(
        "openssl",
        &["x509", "-noout", "-fingerprint", "-sha256", "-in", cert],
        STEP,
    )
    .await;
    assert!(ok, "{out}");
    let from_openssl = out
        .trim()
        .split_once('=')
        .map(|(_, value)| value.to_owned())
        .unwrap_or_else(|| panic!("no fingerprint in {out:?}"));
    let printed = printed_fingerprint(&gw);
    assert_eq!(printed, from_openssl, "init printed another fingerprint");
    let pem = read(&cert_path(&gw));
    let served = served_fingerprint(&addr, &[&pem]).await;
    assert_eq!(
        served.as_deref(),
        Some(printed.as_str()),
        "the gateway serves another certificate"
    );
}

#[tokio::test]
async fn plain_http_and_ws_to_the_tls_port_are_told_to_use_https() {
    let gw = Gateway::start(tls_options()).await;
    let plain = Api::new(format!("http://{}", gw.addr()));
    let reply = plain.get("/healthz").await;
    reply.expect_status(400, "plain HTTP to the TLS port");
    let error = reply.error();
    assert_eq!(error.code, ErrorCode::InvalidRequest);
    assert!(error.message.contains("use https://"), "{}", error.message);

    let ws_url = format!("ws://{}{}", gw.addr(), tocsin_protocol::WS_PATH);
    match WsClient::try_connect(&ws_url, &ConnectOptions::default()).await {
        Err(ConnectFailure::Refused { status: 400, body }) => {
            assert!(body.contains("wss://"), "{body}")
        }
        Err(other) => panic!("ws:// to the TLS port: {other:?}"),
        Ok(_) => panic!("ws:// to the TLS port was upgraded"),
    }
    // Still serving TLS after the refusals.
    https_api(&gw)
        .get("/healthz")
        .await
        .expect_status(200, "HTTPS after refusals");
    // And both refusals are counted, for the operator who wonders why desktops fail.
    let config: toml::Table = read(&gw.data_dir().join("config.toml"))
        .parse()
        .expect("config parses");
    let token = config["metrics"]["token"]
        .as_str()
        .expect("a metrics token");
    let pem = read(&cert_path(&gw));
    let metrics = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).expect("PEM"))
        .build()
        .expect("a reqwest client")
        .get(format!("{}/metrics", gw.base_url()))
        .bearer_auth(token)
        .send()
        .await
        .expect("/metrics answers")
        .text()
        .await
        .expect("a body");
    assert!(
        metrics
            .contains(r#"tocsin_refusals_total{code="plain_http_on_tls",surface="connection"} 2"#),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_stalled_tls_handshake_is_dropped_at_the_handshake_deadline() {
    let gw = Gateway::start(GatewayOptions {
        handshake_timeout_ms: Some(500),
        ..tls_options()
    })
    .await;
    let mut tcp = TcpStream::connect(gw.addr()).await.expect("TCP connects");
    // A handshake record header announcing a ClientHello that never comes.
    tcp.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00])
        .await
        .expect("the header is sent");
    let started = tokio::time::Instant::now();
    let mut buffer = [0_u8; 64];
    let read = tokio::time::timeout(STEP, tcp.read(&mut buffer))
        .await
        .expect("the gateway closes a stalled handshake well before 10 s");
    assert!(
        matches!(read, Ok(0) | Err(_)),
        "expected the connection closed, read {read:?}"
    );
    assert!(
        started.elapsed() >= Duration::from_millis(300),
        "closed before the deadline: {:?}",
        started.elapsed()
    );
}

#[tokio::test]
async fn replaced_files_are_served_to_new_connections_while_websockets_stay() {
    let gw = Gateway::start(tls_options()).await;
    let api = https_api(&gw);
    let marie = gw.user("dupont", 0);
    let token = api.login(marie).await.access_token;
    let old_cert = read(&cert_path(&gw));
    let mut ws = wss(&gw, &token, &[&old_cert]).await;

    let now = SystemTime::now();
    let (new_cert, new_key, new_fingerprint) = pair(now - DAY, now + 90 * DAY);
    replace(&key_path(&gw), &new_key);
    replace(&cert_path(&gw), &new_cert);
    let addr = gw.addr().to_owned();
    poll_until(RELOAD_TIMEOUT, "the new certificate is served", || async {
        let served = served_fingerprint(&addr, &[&old_cert, &new_cert]).await;
        (served.as_deref() == Some(new_fingerprint.as_str())).then_some(())
    })
    .await;
    wait_for_log(&gw, "reason=\"the files changed\"").await;

    // The WebSocket opened with the old certificate still delivers.
    let published = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "after the swap"))
        .await;
    ws.wait_notification(&published.id, STEP).await;
    // And a client that trusts only the new certificate gets in.
    let mut fresh = wss(&gw, &token, &[&new_cert]).await;
    let published = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "to both"))
        .await;
    ws.wait_notification(&published.id, STEP).await;
    fresh.wait_notification(&published.id, STEP).await;
}

#[tokio::test]
async fn sighup_reloads_and_a_bad_pair_keeps_the_old_certificate() {
    let mut gw = Gateway::start(tls_options()).await;
    // Polling off: whatever reloads from here on is SIGHUP's doing.
    gw.terminate();
    gw.wait_exit(STEP).await;
    let config_path = gw.data_dir().join("config.toml");
    let config = read(&config_path).replace("reload_check_secs = 5", "reload_check_secs = 0");
    assert!(config.contains("reload_check_secs = 0"), "{config}");
    std::fs::write(&config_path, config).expect("config.toml is written");
    gw.restart().await;

    let api = https_api(&gw);
    let marie = gw.user("dupont", 0);
    let token = api.login(marie).await.access_token;
    let old_cert = read(&cert_path(&gw));
    let old_fingerprint = printed_fingerprint(&gw);
    let mut ws = wss(&gw, &token, &[&old_cert]).await;
    let addr = gw.addr().to_owned();

    // A new certificate with the key of another: refused, the old pair stays.
    let now = SystemTime::now();
    let (new_cert, new_key, new_fingerprint) = pair(now - DAY, now + 90 * DAY);
    let (_, other_key, _) = pair(now - DAY, now + 90 * DAY);
    replace(&key_path(&gw), &other_key);
    replace(&cert_path(&gw), &new_cert);
    sighup(&gw).await;
    wait_for_log(&gw, "TLS certificate not reloaded").await;
    assert!(
        gw.log_tail(200)
            .contains("does not belong to the certificate"),
        "{}",
        gw.log_tail(40)
    );
    let served = served_fingerprint(&addr, &[&old_cert, &new_cert]).await;
    assert_eq!(served.as_deref(), Some(old_fingerprint.as_str()));

    // The matching key, then SIGHUP: the new pair is served.
    replace(&key_path(&gw), &new_key);
    sighup(&gw).await;
    poll_until(
        RELOAD_TIMEOUT,
        "the new certificate is served after SIGHUP",
        || async {
            let served = served_fingerprint(&addr, &[&old_cert, &new_cert]).await;
            (served.as_deref() == Some(new_fingerprint.as_str())).then_some(())
        },
    )
    .await;
    assert!(
        gw.log_tail(200).contains("reason=\"SIGHUP\""),
        "{}",
        gw.log_tail(40)
    );
    let published = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "after SIGHUP"))
        .await;
    ws.wait_notification(&published.id, STEP).await;
}

#[tokio::test]
async fn an_expired_certificate_stops_the_start_and_one_near_its_end_is_reported() {
    let mut gw = Gateway::start(tls_options()).await;
    gw.terminate();
    gw.wait_exit(STEP).await;

    let now = SystemTime::now();
    let (cert, key, _) = pair(now - 100 * DAY, now - 2 * DAY);
    replace(&key_path(&gw), &key);
    replace(&cert_path(&gw), &cert);
    let refusal = gw.serve_expecting_refusal().await;
    let expired_on = chrono::DateTime::<chrono::Utc>::from(now - 2 * DAY).format("%Y-%m-%d");
    assert!(
        refusal.contains(&format!("expired on {expired_on}")),
        "{refusal}"
    );
    assert!(refusal.contains("certbot renew"), "{refusal}");
    assert!(refusal.contains("tls/cert.pem"), "{refusal}");

    // Five days left: it serves, and says so in /readyz and the log.
    let (cert, key, _) = pair(now - 80 * DAY, now + 5 * DAY + Duration::from_secs(3600));
    replace(&key_path(&gw), &key);
    replace(&cert_path(&gw), &cert);
    gw.restart().await;
    let ready = https_api(&gw).get("/readyz").await;
    ready.expect_status(200, "/readyz with a certificate near its end");
    let body = ready.body.as_str().unwrap_or_default().to_owned();
    assert!(
        body.starts_with("ready (warning: TLS certificate expires in 5 days, on "),
        "{body}"
    );
    wait_for_log(&gw, "TLS certificate expires in 5 days").await;
}

#[tokio::test]
async fn testssl_finds_only_tls_1_2_and_1_3_with_strong_ciphers() {
    let gw = Gateway::start(tls_options()).await;
    let out_dir = tempfile::tempdir().expect("a temp dir");
    let json_path = out_dir.path().join("testssl.json");
    let json = json_path.to_str().expect("a UTF-8 path");
    // Protocols (-p), cipher categories (-s) and forward secrecy (-f): the parts that
    // are the gateway's choice; certificate trust (self-signed) is not scanned.
    let (ok, out) = run(
        "testssl",
        &[
            "--quiet",
            "--color",
            "0",
            "--warnings",
            "off",
            "-p",
            "-s",
            "-f",
            "--jsonfile",
            json,
            gw.addr(),
        ],
        TESTSSL_TIMEOUT,
    )
    .await;
    assert!(ok, "testssl failed:\n{out}");
    let findings: Vec<serde_json::Value> =
        serde_json::from_str(&read(&json_path)).expect("testssl's JSON parses");
    let finding = |id: &str| -> String {
        findings
            .iter()
            .find(|f| f["id"] == id)
            .and_then(|f| f["finding"].as_str())
            .unwrap_or_else(|| panic!("testssl reported no {id}:\n{out}"))
            .to_owned()
    };
    for id in ["SSLv2", "SSLv3", "TLS1", "TLS1_1"] {
        assert!(
            finding(id).starts_with("not offered"),
            "{id}: {}",
            finding(id)
        );
    }
    for id in ["TLS1_2", "TLS1_3"] {
        assert!(finding(id).starts_with("offered"), "{id}: {}", finding(id));
    }
    for id in [
        "cipherlist_NULL",
        "cipherlist_aNULL",
        "cipherlist_EXPORT",
        "cipherlist_LOW",
        "cipherlist_3DES_IDEA",
        "cipherlist_AVERAGE",
    ] {
        assert!(
            finding(id).starts_with("not offered"),
            "{id}: {}",
            finding(id)
        );
    }
    assert!(finding("cipherlist_STRONG").starts_with("offered"));
    let severe: Vec<&serde_json::Value> = findings
        .iter()
        .filter(|f| matches!(f["severity"].as_str(), Some("HIGH" | "CRITICAL")))
        .collect();
    assert!(severe.is_empty(), "testssl found: {severe:#?}");
}
