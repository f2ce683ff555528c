//! First connect to a firm's self-signed gateway from the panel, as a user does it:
//! the sign-in form shows the certificate's SHA-256 fingerprint — exactly the one
//! `init --tls-self-signed` printed for the IT person to read out — and signs in only
//! when the user says it matches. Cancelling leaves the user signed out; trusting
//! signs in pinned to that certificate: the engine connects over WSS and live
//! notifications arrive, and the pin survives a restart of the app (it resumes
//! connected, without asking again).

use std::time::Duration;

use tocsin_client::api::{ApiClient, ServerUrl};
use tocsin_e2e::desktop::webdriver::{WebDriver, require_webdriver, testid};
use tocsin_e2e::desktop::{AppOptions, DesktopSession, SessionOptions, within};
use tocsin_e2e::publisher::email;
use tocsin_e2e::{Gateway, GatewayOptions};

use crate::tls_pinning::printed_fingerprint;

/// One step's limit.
const STEP: Duration = Duration::from_secs(30);
/// A whole test's limit (WebKit in a debug build on two cores, started twice).
const LIMIT: Duration = Duration::from_secs(150);

/// Fills the sign-in form and submits it.
async fn submit_sign_in(wd: &WebDriver, fields: [(&str, &str); 3]) -> anyhow::Result<()> {
    for (id, value) in fields {
        let input = wd.wait_for(&testid(id), STEP).await?;
        input.clear().await?;
        input.send_keys(value).await?;
    }
    wd.by_testid("signin-submit").await?.click().await
}

/// Waits until the panel's connection status reads `state`.
async fn wait_state(wd: &WebDriver, state: &str) -> anyhow::Result<()> {
    wd.wait_attribute(&testid("connection-status"), "data-state", state, STEP)
        .await?;
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_sign_in_shows_the_self_signed_fingerprint_and_pins_it() {
    let test = "desktop_sign_in_shows_the_self_signed_fingerprint_and_pins_it";
    let Some(binary) = require_webdriver(test) else {
        return;
    };
    let gw = Gateway::start(GatewayOptions {
        init_args: vec!["--tls-self-signed".into(), "127.0.0.1".into()],
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    })
    .await;
    let pin = printed_fingerprint(&gw);
    let expected = pin.to_string();
    let marie = gw.user("dupont", 0).clone();
    let server = gw.base_url();
    assert!(server.starts_with("https://"), "{server}");
    // The token must outlive the app for it to resume: gnome-keyring holds it.
    let session = DesktopSession::start(SessionOptions {
        keyring: true,
        ..SessionOptions::default()
    })
    .await
    .expect("a desktop session");
    let home = session.dir("home").expect("a home");
    let options = AppOptions::new(&home).shown();
    let wd = WebDriver::launch(&session, &binary, &options)
        .await
        .expect("tauri-driver opens the panel");
    within(LIMIT, async {
        wait_state(&wd, "signed_out").await?;
        let fields = [
            ("signin-server", server.as_str()),
            ("signin-email", marie.email.as_str()),
            ("signin-password", marie.password.as_str()),
        ];

        // The unknown certificate is not accepted silently: its fingerprint is shown.
        submit_sign_in(&wd, fields).await?;
        let shown = wd
            .wait_for(&testid("signin-fingerprint"), STEP)
            .await?
            .attribute("data-fingerprint")
            .await?;
        anyhow::ensure!(
            shown.as_deref() == Some(expected.as_str()),
            "the panel shows {shown:?}, init printed {expected}"
        );
        let text = wd.by_testid("signin-fingerprint").await?.text().await?;
        anyhow::ensure!(
            text.split_whitespace().collect::<Vec<_>>().join(":") == expected,
            "the fingerprint reads {text:?}"
        );

        // Cancel: nothing trusted, still signed out, the prompt gone.
        wd.by_testid("signin-trust-cancel").await?.click().await?;
        wd.wait_gone(&testid("signin-trust-prompt"), STEP).await?;
        wait_state(&wd, "signed_out").await?;

        // Asked again, and this time trusted: signed in and live over WSS.
        submit_sign_in(&wd, fields).await?;
        wd.wait_for(&testid("signin-trust"), STEP)
            .await?
            .click()
            .await?;
        wait_state(&wd, "connected").await?;
        // The firm's software, trusting the same certificate.
        let pinned = ServerUrl::parse(&server)?.with_pin(Some(pin));
        ApiClient::new(pinned)
            .publish(gw.key("dupont"), &email(&marie.stream(), "Pièces reçues"))
            .await?;
        wd.wait_text(&testid("tab-count-emails"), "= 1", STEP, |text| {
            text.trim() == "1"
        })
        .await?;
        Ok(())
    })
    .await;
    wd.quit().await.expect("the panel closes");

    // The pin was kept with the profile: the app resumes connected, no prompt.
    let wd = WebDriver::launch(&session, &binary, &options)
        .await
        .expect("tauri-driver opens the panel again");
    within(LIMIT, async {
        wait_state(&wd, "connected").await?;
        anyhow::ensure!(
            wd.try_find(&testid("signin-trust-prompt")).await?.is_none(),
            "the restarted app asked again"
        );
        Ok(())
    })
    .await;
    wd.quit().await.expect("the panel closes");
}
