//! The sign-in token in the OS keyring: with gnome-keyring's Secret Service on the
//! session bus the app keeps its refresh token there (libsecret's own `secret-tool`
//! finds it), signing out from the tray deletes it and revokes it at the gateway, and
//! a restart resumes from it without a password.

use std::time::Duration;

use tocsin_e2e::desktop::steps::{MarieSignedIn, marie_signed_in, poll, wait_live, wait_status};
use tocsin_e2e::desktop::{
    AppOptions, DesktopApp, DesktopSession, SessionOptions, require_desktop, within,
};
use tocsin_e2e::publisher::email;

/// One step's limit.
const STEP: Duration = Duration::from_secs(30);
/// A whole test's limit.
const LIMIT: Duration = Duration::from_secs(90);

/// One Secret Service item as `secret-tool search --all` prints it.
#[derive(Debug, Default, Clone)]
struct Item {
    /// `attribute.username`.
    username: String,
    /// `secret`.
    secret: String,
}

/// Every item stored under the service `tocsin`, read with libsecret's tool.
async fn tocsin_items(session: &DesktopSession) -> anyhow::Result<Vec<Item>> {
    let output = session
        .command("secret-tool")
        .args(["search", "--all", "--unlock", "service", "tocsin"])
        .kill_on_drop(true)
        .output()
        .await?;
    // secret-tool prints the label and secret on stdout, the attributes on stderr,
    // one "[path]" header per item on stdout.
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let mut items: Vec<Item> = Vec::new();
    for line in stdout.lines() {
        if line.starts_with('[') {
            items.push(Item::default());
        } else if let Some(secret) = line.strip_prefix("secret = ")
            && let Some(item) = items.last_mut()
        {
            item.secret = secret.to_owned();
        }
    }
    let usernames: Vec<&str> = stderr
        .lines()
        .filter_map(|line| line.strip_prefix("attribute.username = "))
        .collect();
    anyhow::ensure!(
        usernames.len() == items.len(),
        "secret-tool's output does not parse:\nstdout: {stdout}\nstderr: {stderr}"
    );
    for (item, username) in items.iter_mut().zip(usernames) {
        item.username = username.to_owned();
    }
    Ok(items)
}

/// A session with gnome-keyring, a gateway with marie, and the app signed in as her.
async fn keyring_fixture(test: &str) -> Option<(std::path::PathBuf, MarieSignedIn)> {
    let binary = require_desktop(test, &["gnome-keyring-daemon", "secret-tool"])?;
    let keyring = SessionOptions {
        keyring: true,
        ..SessionOptions::default()
    };
    let signed_in = marie_signed_in(&binary, "en_US.UTF-8", keyring).await;
    Some((binary, signed_in))
}

/// Waits for the one token in the keyring, checks it names `email`, returns it.
async fn stored_token(session: &DesktopSession, email: &str) -> anyhow::Result<String> {
    let items = poll("the token in the keyring", STEP, async || {
        let items = tocsin_items(session).await?;
        Ok((!items.is_empty()).then_some(items))
    })
    .await?;
    assert_eq!(items.len(), 1, "one token: {items:?}");
    assert!(
        items[0].username.contains(email),
        "the account names the user: {:?}",
        items[0].username
    );
    assert!(
        items[0].secret.starts_with("tsr_"),
        "a refresh token is stored"
    );
    Ok(items[0].secret.clone())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_the_token_lives_in_the_keyring_and_sign_out_clears_and_revokes_it() {
    let test = "desktop_the_token_lives_in_the_keyring_and_sign_out_clears_and_revokes_it";
    let Some((
        _binary,
        MarieSignedIn {
            gw,
            session,
            mut app,
            ..
        },
    )) = keyring_fixture(test).await
    else {
        return;
    };
    let marie = gw.user("dupont", 0).clone();
    within(LIMIT, async {
        let tray = app.wait_tray(&session, 0, STEP).await?;
        wait_live(&tray, STEP).await?;
        let token = stored_token(&session, &marie.email).await?;

        tray.click_label("Sign out").await?;
        wait_status(&tray, "Signed out", STEP).await?;
        poll("the keyring to be emptied", STEP, async || {
            Ok(tocsin_items(&session).await?.is_empty().then_some(()))
        })
        .await?;
        // The device session was revoked at the gateway: its token is dead.
        let refreshed = gw.api().refresh(&token).await;
        assert_eq!(
            refreshed.status.as_u16(),
            401,
            "the stored refresh token no longer works after sign-out: {}",
            refreshed.body
        );
        assert!(app.is_running(), "signing out does not quit");
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_a_restart_resumes_from_the_keyring_without_a_password() {
    let test = "desktop_a_restart_resumes_from_the_keyring_without_a_password";
    let Some((
        binary,
        MarieSignedIn {
            gw,
            session,
            mut app,
            options,
            ..
        },
    )) = keyring_fixture(test).await
    else {
        return;
    };
    let marie = gw.user("dupont", 0).clone();
    let mut second: Option<DesktopApp> = None;
    within(LIMIT, async {
        let tray = app.wait_tray(&session, 0, STEP).await?;
        wait_live(&tray, STEP).await?;
        stored_token(&session, &marie.email).await?;

        app.kill().await;
        let restarted = second
            .insert(DesktopApp::start(&session, &binary, &AppOptions::new(&options.home)).await?);
        let tray = restarted.wait_tray(&session, 1, STEP).await?;
        wait_live(&tray, STEP).await?;
        gw.api()
            .publish_ok(
                gw.key("dupont"),
                &email(&marie.stream(), "after the restart"),
            )
            .await;
        tray.wait_label("1", STEP).await?;
        assert!(restarted.is_running());
        Ok(())
    })
    .await;
}
