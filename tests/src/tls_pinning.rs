//! First-connect certificate pinning with the real client and a real gateway whose
//! certificate `init --tls-self-signed 127.0.0.1` made (docs/OPERATIONS.md, "A
//! self-signed certificate for the firm's network"). With the fingerprint `init`
//! printed pinned, the client signs in, keeps the pin in its profile, and its engine
//! receives a publish over WSS; without a pin, sign-in fails with the fingerprint to
//! compare; with a wrong pin, or after the gateway's certificate was replaced, it is
//! refused as a changed certificate — never accepted.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tocsin_client::account::{self, App};
use tocsin_client::api::{ApiClient, ApiError, CertFingerprint, ServerUrl, probe};
use tocsin_client::events::{ConnectionState, EngineEvent};
use tocsin_client::profile::Profile;
use tocsin_client::secrets::{MemoryStore, SecretStore};
use tocsin_e2e::client::{ClientOptions, TestClient};
use tocsin_e2e::publisher::email;
use tocsin_e2e::{Gateway, GatewayOptions, poll_until};

const LONG: Duration = Duration::from_secs(60);
/// The gateway checks its certificate files every 5 s.
const RELOAD_TIMEOUT: Duration = Duration::from_secs(30);
const DAY: Duration = Duration::from_secs(24 * 3600);

/// A firm with one user, served over TLS with a certificate `init` made.
async fn self_signed_gateway() -> Gateway {
    Gateway::start(GatewayOptions {
        init_args: vec!["--tls-self-signed".into(), "127.0.0.1".into()],
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    })
    .await
}

/// The fingerprint `init` printed, as the IT person reads it out.
pub(crate) fn printed_fingerprint(gw: &Gateway) -> CertFingerprint {
    gw.init_output()
        .lines()
        .find_map(|line| line.strip_prefix("SHA-256 fingerprint: "))
        .unwrap_or_else(|| panic!("init printed no fingerprint:\n{}", gw.init_output()))
        .parse()
        .expect("the printed fingerprint reads back")
}

/// The gateway's address, trusting `pin` (or the usual roots with `None`).
fn server(gw: &Gateway, pin: Option<CertFingerprint>) -> ServerUrl {
    assert!(gw.base_url().starts_with("https://"), "{}", gw.base_url());
    ServerUrl::parse(&gw.base_url())
        .expect("an https URL")
        .with_pin(pin)
}

/// A self-signed pair for 127.0.0.1 that is not the gateway's: (cert PEM, key PEM,
/// fingerprint).
fn another_pair() -> (String, String, CertFingerprint) {
    let key = rcgen::KeyPair::generate().expect("a key pair");
    let mut params =
        rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).expect("parameters");
    let now = SystemTime::now();
    params.not_before = (now - DAY).into();
    params.not_after = (now + 90 * DAY).into();
    let cert = params.self_signed(&key).expect("a certificate");
    let fingerprint = CertFingerprint::of(cert.der());
    (cert.pem(), key.serialize_pem(), fingerprint)
}

/// The reason of the next `Offline` state the engine reports.
async fn offline_reason(client: &mut TestClient) -> String {
    client
        .wait_for(LONG, "an offline state", |event| match event {
            EngineEvent::State(ConnectionState::Offline { reason, .. }) => Some(reason.clone()),
            _ => None,
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_printed_fingerprint_pinned_the_client_signs_in_and_receives_over_wss() {
    let gw = self_signed_gateway().await;
    let marie = gw.user("dupont", 0).clone();
    let pinned = server(&gw, Some(printed_fingerprint(&gw)));
    let tokens = account::log_in(&pinned, &marie.email, &marie.password, "poste 3")
        .await
        .expect("the pinned gateway signs in");

    // The pin is saved with the profile and found again, as after a restart.
    let home = tempfile::tempdir().expect("a temp home");
    let dirs = Profile::dirs(Some(home.path().to_path_buf())).expect("dirs");
    let secrets = Arc::new(MemoryStore::new());
    account::remember(
        App::Terminal,
        &dirs,
        secrets.as_ref(),
        &pinned,
        &marie.email,
        "poste 3",
        &tokens,
    )
    .expect("remembered");
    let saved = account::saved(App::Terminal, &dirs, secrets.as_ref())
        .expect("readable")
        .expect("signed in");
    let restored = saved.profile.server_url().expect("the saved URL");
    assert_eq!(restored.pin(), Some(printed_fingerprint(&gw)));

    // The engine, from the saved profile, is live over WSS and receives a publish.
    secrets
        .set("account", &tokens.refresh_token)
        .expect("memory store");
    let mut client = TestClient::start_in(
        restored.clone(),
        tempfile::tempdir().expect("a temp home"),
        secrets,
        ClientOptions::default(),
    );
    client.wait_connected(LONG).await;
    let request = email(&marie.stream(), "over a pinned WSS");
    let published = ApiClient::new(restored)
        .publish(gw.key("dupont"), &request)
        .await
        .expect("the pinned client publishes");
    assert_eq!(client.collect(1, LONG).await, vec![published.id]);
    client.stop().await;
}

#[tokio::test]
async fn without_a_pin_sign_in_is_refused_with_the_fingerprint_to_compare() {
    let gw = self_signed_gateway().await;
    let marie = gw.user("dupont", 0).clone();
    let printed = printed_fingerprint(&gw);
    match account::log_in(&server(&gw, None), &marie.email, &marie.password, "poste 3").await {
        Err(err @ ApiError::UntrustedCertificate { fingerprint, .. }) => {
            assert_eq!(fingerprint, printed, "the fingerprint shown is init's");
            let message = err.to_string();
            assert!(message.contains("not trusted"), "{message}");
            assert!(message.contains(&printed.to_string()), "{message}");
        }
        other => panic!("expected an untrusted certificate, got {other:?}"),
    }
    let probed = probe(&server(&gw, None), Duration::from_secs(10))
        .await
        .expect("the certificate is read");
    assert_eq!(probed, printed);
}

#[tokio::test]
async fn a_wrong_pin_is_refused_as_a_changed_certificate() {
    let gw = self_signed_gateway().await;
    let marie = gw.user("dupont", 0).clone();
    let (_, _, wrong) = another_pair();
    let pinned = server(&gw, Some(wrong));
    match account::log_in(&pinned, &marie.email, &marie.password, "poste 3").await {
        Err(ApiError::CertificateChanged(changed)) => {
            assert_eq!(changed.expected, wrong);
            assert_eq!(changed.presented, printed_fingerprint(&gw));
            let message = changed.to_string();
            assert!(message.contains("certificate changed"), "{message}");
            assert!(message.contains("IT person"), "{message}");
            assert!(message.contains("sign in again"), "{message}");
        }
        other => panic!("expected a changed certificate, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replaced_certificate_stops_a_pinned_engine_with_a_clear_reason() {
    let gw = self_signed_gateway().await;
    let marie = gw.user("dupont", 0).clone();
    let old = printed_fingerprint(&gw);
    let tokens = account::log_in(
        &server(&gw, Some(old)),
        &marie.email,
        &marie.password,
        "e2e",
    )
    .await
    .expect("signed in with the pin");

    // The certificate is replaced on the gateway (as a renewal by hand would).
    let (cert, key, new) = another_pair();
    let tls = gw.data_dir().join("tls");
    std::fs::write(tls.join("key.pem.new"), key).expect("write");
    std::fs::rename(tls.join("key.pem.new"), tls.join("key.pem")).expect("rename");
    std::fs::write(tls.join("cert.pem.new"), cert).expect("write");
    std::fs::rename(tls.join("cert.pem.new"), tls.join("cert.pem")).expect("rename");
    let unpinned = server(&gw, None);
    poll_until(RELOAD_TIMEOUT, "the new certificate is served", || async {
        let served = probe(&unpinned, Duration::from_secs(5)).await.ok();
        (served == Some(new)).then_some(())
    })
    .await;

    // The engine, still pinned to the old one, refuses the gateway and says why.
    let secrets = Arc::new(MemoryStore::new());
    secrets
        .set("account", &tokens.refresh_token)
        .expect("memory store");
    let mut client = TestClient::start_in(
        server(&gw, Some(old)),
        tempfile::tempdir().expect("a temp home"),
        secrets,
        ClientOptions::default(),
    );
    let reason = offline_reason(&mut client).await;
    assert!(reason.contains("certificate changed"), "{reason}");
    assert!(reason.contains(&new.to_string()), "{reason}");
    assert!(reason.contains("sign in again"), "{reason}");
    client.stop().await;
}
