//! The panel (the Tauri webview) driven over WebDriver like a user would: sign in
//! through the form (a wrong password is refused with `unauthorized`), the tabs and
//! their counts after catch-up, marking read and accepting a proposal (the gateway
//! records both), the offline banner when the gateway is SIGKILLed with an action
//! queued meanwhile, and recovery when it comes back on the same port; closing the
//! panel ends its web process. A kind from a newer gateway is listed in the System tab
//! like any notice; "Open" on an item with a link runs the system's opener with exactly
//! that link, and the page cannot make it open anything else. Screenshots in French and
//! English go to the artifacts directory.

use std::time::Duration;

use serde_json::json;
use tocsin_e2e::desktop::artifacts::artifact;
use tocsin_e2e::desktop::fixtures::{DOSSIER_LINK, critical_deadline, system};
use tocsin_e2e::desktop::opener::FakeOpener;
use tocsin_e2e::desktop::steps::{poll, server_url, wait_gateway_unread};
use tocsin_e2e::desktop::webdriver::{WebDriver, require_webdriver, testid};
use tocsin_e2e::desktop::{AppOptions, DesktopSession, SessionOptions, within};
use tocsin_e2e::newer_kind::{NEWER_KIND, NEWER_TITLE, rewrite_as_newer_kind};
use tocsin_e2e::publisher::{dossier, email, proposal};
use tocsin_e2e::{Gateway, GatewayOptions, UserFixture};
use tocsin_protocol::notification::{ProposalStatus, SystemLevel};
use tocsin_protocol::{NotificationData, Urgency};

/// One step's limit.
const STEP: Duration = Duration::from_secs(30);
/// A whole test's limit (WebKit in a debug build on two cores).
const LIMIT: Duration = Duration::from_secs(90);

/// Fills the sign-in form and submits it.
async fn submit_sign_in(
    wd: &WebDriver,
    server: &str,
    email: &str,
    password: &str,
) -> anyhow::Result<()> {
    for (id, value) in [
        ("signin-server", server),
        ("signin-email", email),
        ("signin-password", password),
    ] {
        let input = wd.wait_for(&testid(id), STEP).await?;
        input.clear().await?;
        input.send_keys(value).await?;
    }
    wd.by_testid("signin-submit").await?.click().await
}

/// Signs `user` in through the form and waits until the panel says it is live.
async fn sign_in(wd: &WebDriver, gw: &Gateway, user: &UserFixture) -> anyhow::Result<()> {
    submit_sign_in(wd, &server_url(gw), &user.email, &user.password).await?;
    wd.wait_attribute(
        &testid("connection-status"),
        "data-state",
        "connected",
        STEP,
    )
    .await?;
    Ok(())
}

/// Waits until tab `tab`'s unread count reads `count`.
async fn wait_tab_count(wd: &WebDriver, tab: &str, count: u64) -> anyhow::Result<()> {
    let expected = count.to_string();
    wd.wait_text(
        &testid(&format!("tab-count-{tab}")),
        &format!("= {count}"),
        STEP,
        |text| text.trim() == expected,
    )
    .await
    .map(|_| ())
}

/// Publishes one of each kind the tabs show, as a firm's systems would.
async fn seed(gw: &Gateway, user: &UserFixture) -> Vec<String> {
    let api = gw.api();
    let key = gw.key(&user.tenant);
    let to = user.stream();
    let mut ids = Vec::new();
    for request in [
        email(&to, "Conclusions adverses reçues"),
        email(&to, "Convocation à l'audience"),
        dossier(&to, "2026-0142"),
        critical_deadline(&to, "Conclusions — RG 24/01234"),
        proposal(&to, "prop-1"),
    ] {
        ids.push(api.publish_ok(key, &request).await.id);
    }
    ids
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_panel_sign_in_tabs_mark_read_and_accept_a_proposal() {
    let test = "desktop_panel_sign_in_tabs_mark_read_and_accept_a_proposal";
    let Some(binary) = require_webdriver(test) else {
        return;
    };
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let ids = seed(&gw, &marie).await;
    let session = DesktopSession::start(SessionOptions::default())
        .await
        .expect("a desktop session");
    let home = session.dir("home").expect("a home");
    let wd = WebDriver::launch(&session, &binary, &AppOptions::new(&home).shown())
        .await
        .expect("tauri-driver opens the panel");
    within(LIMIT, async {
        wd.wait_attribute(
            &testid("connection-status"),
            "data-state",
            "signed_out",
            STEP,
        )
        .await?;

        // A wrong password is refused, with the code the UI words it by.
        submit_sign_in(&wd, &server_url(&gw), &marie.email, "not the password").await?;
        wd.wait_attribute(&testid("signin-error"), "data-code", "unauthorized", STEP)
            .await?;

        sign_in(&wd, &gw, &marie).await?;
        for (tab, count) in [
            ("emails", 2),
            ("dossiers", 1),
            ("deadlines", 1),
            ("proposals", 1),
            ("system", 0),
        ] {
            wait_tab_count(&wd, tab, count).await?;
        }

        // Mark one email read: the gateway records it.
        let api = gw.api();
        let token = api.login(&marie).await.access_token;
        wait_gateway_unread(&api, &token, 5, STEP).await?;
        wd.by_testid("tab-emails").await?.click().await?;
        let items = wd
            .wait_until("two emails listed", STEP, async |wd| {
                let items = wd.find_all(&testid("item")).await?;
                Ok((items.len() == 2).then_some(items))
            })
            .await?;
        let first_id = items[0].attribute("data-id").await?.unwrap_or_default();
        assert!(
            ids[..2].contains(&first_id),
            "an email's item carries its notification id ({first_id} in {ids:?})"
        );
        assert_eq!(
            items[0].attribute("data-read").await?.as_deref(),
            Some("false")
        );
        items[0]
            .find(&testid("item-mark-read"))
            .await?
            .click()
            .await?;
        let item = format!("{}[data-id=\"{first_id}\"]", testid("item"));
        wd.wait_attribute(&item, "data-read", "true", STEP).await?;
        wait_tab_count(&wd, "emails", 1).await?;
        wait_gateway_unread(&api, &token, 4, STEP).await?;

        // "Mark all as read" in the tab clears the other email.
        wd.by_testid("mark-all-read").await?.click().await?;
        wait_tab_count(&wd, "emails", 0).await?;
        wait_gateway_unread(&api, &token, 3, STEP).await?;

        // Accept the proposal: the gateway records who accepted it.
        wd.by_testid("tab-proposals").await?.click().await?;
        wd.wait_for(&testid("proposal-accept"), STEP)
            .await?
            .click()
            .await?;
        wd.wait_attribute(&testid("proposal-status"), "data-status", "accepted", STEP)
            .await?;
        let history = api.history_ok(&token, &marie.stream(), None, None).await;
        let answered =
            history
                .notifications
                .iter()
                .find_map(|item| match &item.notification.data {
                    NotificationData::ProposalStatusChanged(change)
                        if change.proposal_id == "prop-1" =>
                    {
                        Some((change.status, change.responded_by.clone()))
                    }
                    _ => None,
                });
        assert_eq!(
            answered,
            Some((ProposalStatus::Accepted, Some(marie.id.clone()))),
            "the gateway recorded marie's acceptance"
        );
        Ok(())
    })
    .await;
    wd.quit().await.expect("the WebDriver session ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_panel_shows_offline_queues_actions_and_recovers_on_restart() {
    let test = "desktop_panel_shows_offline_queues_actions_and_recovers_on_restart";
    let Some(binary) = require_webdriver(test) else {
        return;
    };
    let mut gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let api = gw.api();
    for n in 1..=2 {
        api.publish_ok(
            gw.key("dupont"),
            &email(&marie.stream(), &format!("Courriel {n}")),
        )
        .await;
    }
    let session = DesktopSession::start(SessionOptions::default())
        .await
        .expect("a desktop session");
    let home = session.dir("home").expect("a home");
    let wd = WebDriver::launch(&session, &binary, &AppOptions::new(&home).shown())
        .await
        .expect("tauri-driver opens the panel");
    within(LIMIT, async {
        sign_in(&wd, &gw, &marie).await?;
        wait_tab_count(&wd, "emails", 2).await?;
        assert!(
            wd.try_find(&testid("offline-banner")).await?.is_none(),
            "no offline banner while live"
        );

        gw.kill_hard().await;
        wd.wait_for(&testid("offline-banner"), STEP).await?;
        let state = wd
            .by_testid("connection-status")
            .await?
            .attribute("data-state")
            .await?;
        assert!(
            matches!(state.as_deref(), Some("offline" | "connecting")),
            "the status says it is not live: {state:?}"
        );

        // Marking read while offline is applied at once and queued.
        wd.by_testid("tab-emails").await?.click().await?;
        wd.wait_for(&testid("item-mark-read"), STEP)
            .await?
            .click()
            .await?;
        wait_tab_count(&wd, "emails", 1).await?;
        wd.wait_text(&testid("pending-actions"), "names 1 action", STEP, |text| {
            text.starts_with("1 ")
        })
        .await?;
        wd.wait_settled(STEP).await?;
        wd.screenshot(&artifact("panel-offline-en.png")?).await?;

        gw.restart_on_same_port().await;
        wd.wait_attribute(
            &testid("connection-status"),
            "data-state",
            "connected",
            STEP,
        )
        .await?;
        wd.wait_gone(&testid("offline-banner"), STEP).await?;
        let api = gw.api();
        let token = api.login(&marie).await.access_token;
        wait_gateway_unread(&api, &token, 1, STEP).await?;
        wait_tab_count(&wd, "emails", 1).await?;
        Ok(())
    })
    .await;
    wd.quit().await.expect("the WebDriver session ends");
}

/// The CSS selector of the listed item of notification `id`.
fn item_of(id: &str) -> String {
    format!("{}[data-id=\"{id}\"]", testid("item"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_panel_lists_a_newer_gateways_kind_in_the_system_tab() {
    let test = "desktop_panel_lists_a_newer_gateways_kind_in_the_system_tab";
    let Some(binary) = require_webdriver(test) else {
        return;
    };
    let mut gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let api = gw.api();
    // Published as an email (the gateway refuses kinds it does not know), then
    // rewritten in its stopped database as a newer gateway would have stored it.
    let mut request = email(&marie.stream(), "sera réécrit");
    request.body = "Sans réponse de Maître Dubois, confié à Maître Roux".to_owned();
    request.urgency = Some(Urgency::High);
    let newer = api.publish_ok(gw.key("dupont"), &request).await;
    let notice = api
        .publish_ok(
            gw.key("dupont"),
            &system(&marie.stream(), "Maintenance ce soir", SystemLevel::Info),
        )
        .await;
    gw.terminate();
    gw.wait_exit(STEP).await;
    rewrite_as_newer_kind(&gw, &newer.id);
    gw.restart_on_same_port().await;

    let session = DesktopSession::start(SessionOptions::default())
        .await
        .expect("a desktop session");
    let home = session.dir("home").expect("a home");
    let wd = WebDriver::launch(&session, &binary, &AppOptions::new(&home).shown())
        .await
        .expect("tauri-driver opens the panel");
    within(LIMIT, async {
        sign_in(&wd, &gw, &marie).await?;
        // Counted where it is shown: with the notices, not with the emails it was.
        wait_tab_count(&wd, "system", 2).await?;
        wait_tab_count(&wd, "emails", 0).await?;
        wd.by_testid("tab-system").await?.click().await?;
        let item = wd.wait_for(&item_of(&newer.id), STEP).await?;
        wd.wait_for(&item_of(&notice.id), STEP).await?;
        assert_eq!(
            item.attribute("data-kind").await?.as_deref(),
            Some("unknown")
        );
        assert_eq!(
            item.attribute("data-kind-name").await?.as_deref(),
            Some(NEWER_KIND)
        );
        assert_eq!(item.attribute("data-read").await?.as_deref(), Some("false"));
        let title = item.find(".title").await?.text().await?;
        assert!(title.contains(NEWER_TITLE), "its title: {title:?}");
        let html = item.property("outerHTML").await?;
        let body = item.find(".body").await?.property("textContent").await?;
        assert_eq!(
            body.as_str(),
            Some(request.body.as_str()),
            "its body: {html}"
        );
        assert_eq!(
            item.find(&testid("urgency"))
                .await?
                .attribute("data-tone")
                .await?
                .as_deref(),
            Some("high"),
            "its urgency is shown"
        );
        let when = item
            .find("time")
            .await?
            .attribute("datetime")
            .await?
            .unwrap_or_default();
        let age = chrono::DateTime::parse_from_rfc3339(&when)
            .map(|at| chrono::Utc::now().signed_duration_since(at))
            .map_err(|err| anyhow::anyhow!("its time {when:?}: {err}"))?;
        assert!(
            age < chrono::TimeDelta::hours(1),
            "its time is the publish time: {when}"
        );
        assert!(
            item.find_all(&testid("item-open")).await?.is_empty(),
            "no link, no Open"
        );
        wd.wait_settled(STEP).await?;
        wd.screenshot(&artifact("panel-newer-kind-en.png")?).await?;

        // "Mark all as read" in the tab reaches the gateway for it too (by id: the
        // gateway stored its real kind name, which "read all of kind unknown" misses).
        let token = gw.api().login(&marie).await.access_token;
        wait_gateway_unread(&gw.api(), &token, 2, STEP).await?;
        wd.by_testid("mark-all-read").await?.click().await?;
        wd.wait_attribute(&item_of(&newer.id), "data-read", "true", STEP)
            .await?;
        wait_tab_count(&wd, "system", 0).await?;
        wait_gateway_unread(&gw.api(), &token, 0, STEP).await?;
        Ok(())
    })
    .await;
    wd.quit().await.expect("the WebDriver session ends");
}

/// Calls `open_link` from the page as a compromised page would, with an `id` and a
/// URL of its own; returns the error code it was answered with, or `"opened"`.
async fn open_link_from_the_page(wd: &WebDriver, id: &str) -> anyhow::Result<String> {
    let answer = wd
        .execute_async(
            "const done = arguments[arguments.length - 1];
             window.__TAURI_INTERNALS__
               .invoke('open_link', { id: arguments[0], url: 'file:///etc/passwd' })
               .then(() => done('opened'), (e) => done((e && e.code) || String(e)));",
            vec![json!(id)],
        )
        .await?;
    Ok(answer.as_str().unwrap_or_default().to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_panel_open_runs_the_system_opener_with_the_items_link_only() {
    let test = "desktop_panel_open_runs_the_system_opener_with_the_items_link_only";
    let Some(binary) = require_webdriver(test) else {
        return;
    };
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let api = gw.api();
    let mut linked = email(&marie.stream(), "Conclusions adverses reçues");
    linked.url = Some(DOSSIER_LINK.to_owned());
    let linked = api.publish_ok(gw.key("dupont"), &linked).await;
    let plain = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "Sans lien"))
        .await;
    let session = DesktopSession::start(SessionOptions::default())
        .await
        .expect("a desktop session");
    let opener = FakeOpener::install(&session).expect("the fake xdg-open");
    let home = session.dir("home").expect("a home");
    let mut options = AppOptions::new(&home).shown().lang("fr_FR.UTF-8");
    options.env.push(opener.path_env());
    let wd = WebDriver::launch(&session, &binary, &options)
        .await
        .expect("tauri-driver opens the panel");
    within(LIMIT, async {
        sign_in(&wd, &gw, &marie).await?;
        wait_tab_count(&wd, "emails", 2).await?;
        wd.by_testid("tab-emails").await?.click().await?;
        let item = wd.wait_for(&item_of(&linked.id), STEP).await?;
        let without = wd.wait_for(&item_of(&plain.id), STEP).await?;
        assert!(
            without.find_all(&testid("item-open")).await?.is_empty(),
            "an item without a link offers no Open"
        );
        let open = item.find(&testid("item-open")).await?;
        assert_eq!(
            open.text().await?.trim(),
            "Ouvrir",
            "in the user's language"
        );
        wd.wait_settled(STEP).await?;
        wd.screenshot(&artifact("panel-open-link-fr.png")?).await?;
        open.click().await?;
        let calls = opener.wait_calls(STEP).await?;
        assert_eq!(
            calls,
            vec![vec![DOSSIER_LINK.to_owned()]],
            "xdg-open ran once with exactly the link ({})",
            opener.record().display()
        );
        assert!(
            wd.try_find(&testid("item-open-error")).await?.is_none(),
            "no error shown"
        );

        // The page names ids only; the URL it passes along is ignored, and an id with
        // no link (or no notification) opens nothing.
        assert_eq!(open_link_from_the_page(&wd, &plain.id).await?, "no_link");
        assert_eq!(
            open_link_from_the_page(&wd, "not-a-notification").await?,
            "no_link"
        );
        assert_eq!(open_link_from_the_page(&wd, &linked.id).await?, "opened");
        assert_eq!(
            opener.calls(),
            vec![vec![DOSSIER_LINK.to_owned()], vec![DOSSIER_LINK.to_owned()]],
            "only the stored link was opened, never the page's URL"
        );
        Ok(())
    })
    .await;
    wd.quit().await.expect("the WebDriver session ends");
}

/// Signs in and seeds, then saves a screenshot of the panel in `lang`.
async fn panel_screenshot(lang: &str, name: &str, expected_tab_label: &str) {
    let test = format!("desktop_panel_screenshot_{name}");
    let Some(binary) = require_webdriver(&test) else {
        return;
    };
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    seed(&gw, &marie).await;
    let session = DesktopSession::start(SessionOptions::default())
        .await
        .expect("a desktop session");
    let home = session.dir("home").expect("a home");
    let options = AppOptions::new(&home).shown().lang(lang);
    let wd = WebDriver::launch(&session, &binary, &options)
        .await
        .expect("tauri-driver opens the panel");
    within(LIMIT, async {
        let signin = artifact(&format!("panel-signin-{name}.png"))?;
        wd.wait_for(&testid("signin-submit"), STEP).await?;
        wd.wait_settled(STEP).await?;
        wd.screenshot(&signin).await?;
        sign_in(&wd, &gw, &marie).await?;
        wait_tab_count(&wd, "deadlines", 1).await?;
        wd.by_testid("tab-deadlines").await?.click().await?;
        wd.wait_attribute(&testid("tab-deadlines"), "aria-selected", "true", STEP)
            .await?;
        // One row per deadline (desktop_deadlines.rs covers the row itself).
        wd.wait_until("the deadline listed alone", STEP, async |wd| {
            let rows = wd.find_all(&testid("deadline-row")).await?;
            Ok((rows.len() == 1).then_some(()))
        })
        .await?;
        let label = wd
            .by_testid("tab-emails")
            .await?
            .property("textContent")
            .await?
            .as_str()
            .unwrap_or_default()
            .to_owned();
        assert!(
            label.contains(expected_tab_label),
            "the emails tab reads {label:?} in {lang}"
        );
        let inbox = artifact(&format!("panel-{name}.png"))?;
        wd.wait_settled(STEP).await?;
        wd.screenshot(&inbox).await?;
        let screen = artifact(&format!("screen-panel-{name}.png"))?;
        session.screenshot(&screen).await?;
        eprintln!(
            "screenshots: {}, {}, {}",
            signin.display(),
            inbox.display(),
            screen.display()
        );
        Ok(())
    })
    .await;
    wd.quit().await.expect("the WebDriver session ends");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_panel_screenshot_in_french() {
    panel_screenshot("fr_FR.UTF-8", "fr", "Courriels").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_panel_screenshot_in_english() {
    panel_screenshot("en_US.UTF-8", "en", "Emails").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_closing_the_panel_ends_its_web_process() {
    let test = "desktop_closing_the_panel_ends_its_web_process";
    let Some(binary) = require_webdriver(test) else {
        return;
    };
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let session = DesktopSession::start(SessionOptions::default())
        .await
        .expect("a desktop session");
    let home = session.dir("home").expect("a home");
    let wd = WebDriver::launch(&session, &binary, &AppOptions::new(&home).shown())
        .await
        .expect("tauri-driver opens the panel");
    within(LIMIT, async {
        sign_in(&wd, &gw, &marie).await?;
        let open = session.webkit_processes();
        assert!(
            open.iter()
                .any(|(_, name)| name.starts_with("WebKitWebProces")),
            "the open panel has a web process: {open:?}"
        );
        // What Esc does in the panel, asked after the script has answered: the
        // window (and the page the script runs in) is destroyed by it, and a reply
        // still pending then would fail for that reason alone.
        if let Err(err) = wd
            .execute(
                "setTimeout(() => window.__TAURI_INTERNALS__.invoke('hide_panel'), 0); return true;",
                vec![],
            )
            .await
        {
            eprintln!("the page went before WebDriver's reply (expected at times): {err:#}");
        }
        let closed = poll("the web process to exit", STEP, async || {
            let left = session.webkit_processes();
            let web = left
                .iter()
                .any(|(_, name)| name.starts_with("WebKitWebProces"));
            Ok((!web).then_some(left))
        })
        .await?;
        eprintln!("left after closing the panel: {closed:?}");
        Ok(())
    })
    .await;
    let _ = wd.quit().await;
}
