//! The web SDK (sdk/web, built) in a real Chromium against the real gateway: a page
//! with `<tocsin-bell>` receives live notifications; a gateway SIGKILLed under a steady
//! publisher leaves the page with exactly the acknowledged set, kept in IndexedDB
//! across a reload; two tabs share one socket and the second takes over when the
//! first closes, losing nothing; an action taken offline reaches the gateway once;
//! typing and presence reach another member's page. Pages are the SDK's own examples,
//! served from an origin the gateway allows, with a token minted by the test as the
//! firm's backend would.

use std::path::PathBuf;
use std::time::Duration;

use serde_json::{Value, json};
use tocsin_e2e::browser::{Chromium, ChromiumOptions, PageServer};
use tocsin_e2e::desktop::{DesktopSession, SessionOptions, within};
use tocsin_e2e::publisher::{RetryingPublisher, critical_deadline, email, proposal};
use tocsin_e2e::{Gateway, GatewayOptions, UserFixture, poll_until};
use tocsin_protocol::Kind;

const LONG: Duration = Duration::from_secs(60);

/// sdk/web, where `cargo xtask test` (or `npm run build`) put the SDK and its examples.
fn sdk_dir() -> PathBuf {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../sdk/web");
    for built in [
        "dist/index.min.js",
        "dist/element.min.js",
        "examples/build/conversation.js",
    ] {
        assert!(
            dir.join(built).is_file(),
            "sdk/web/{built} is missing: build the SDK first (`cargo xtask test` does, or `cd sdk/web && npm ci && npm run build`)"
        );
    }
    dir
}

/// The firm's web app: the SDK's examples at `/`, the built SDK at `/sdk/`.
async fn web_app() -> PageServer {
    let sdk = sdk_dir();
    PageServer::builder()
        .dir(sdk.join("examples"))
        .mount("/sdk", sdk.join("dist"))
        .start()
        .await
        .expect("the page server starts")
}

/// What the page's backend answers: the gateway, the user's token, the conversation.
fn configure(app: &PageServer, gw: &Gateway, token: &str, scope: &str) {
    let config = json!({
        "gateway": gw.base_url(),
        "token": "/token",
        "scope": scope,
        "conversation": "c-2026-0142",
    });
    app.set_file("/config.json", config.to_string());
    app.set_file("/token", json!({ "token": token }).to_string());
}

async fn gateway_for(apps: &[&PageServer], users: &[&str]) -> Gateway {
    Gateway::start(GatewayOptions {
        allowed_origins: Some(apps.iter().map(|app| app.origin().to_owned()).collect()),
        ..GatewayOptions::with_tenants(&[("dupont", users)])
    })
    .await
}

async fn signed_in(gw: &Gateway, app: &PageServer, user: &UserFixture) {
    let token = gw.api().login(user).await.access_token;
    configure(app, gw, &token, &user.id);
}

async fn browser() -> Chromium {
    Chromium::launch(&ChromiumOptions::headless())
        .await
        .expect("Chromium starts")
}

/// Runs `script` in the current tab (a promise it returns is awaited).
async fn js(browser: &Chromium, script: &str) -> Value {
    browser
        .run(script, vec![])
        .await
        .expect("the script runs in the page")
}

/// Waits until the page's client says `connected` and has caught up.
async fn wait_connected(browser: &Chromium) {
    poll_until(
        LONG,
        "the page's client connected and caught up",
        || async {
            let state = js(browser, "return window.tocsin ? window.tocsin.state : null").await;
            (state["status"] == "connected" && state["catchingUp"] == false).then_some(())
        },
    )
    .await;
}

/// The ids the page's inbox holds, sorted.
async fn page_ids(browser: &Chromium) -> Vec<String> {
    let ids = js(
        browser,
        "return window.tocsin.notifications().map((i) => i.notification.id)",
    )
    .await;
    let mut ids: Vec<String> = serde_json::from_value(ids).expect("ids");
    ids.sort();
    ids
}

async fn wait_ids(browser: &Chromium, expected: &[String], what: &str) {
    let mut expected = expected.to_vec();
    expected.sort();
    poll_until(LONG, what, || async {
        (page_ids(browser).await == expected).then_some(())
    })
    .await;
}

/// Marie's firm: its web app on an origin of its own, a gateway that allows it, and
/// Marie signed in for the app's pages.
struct Firm {
    app: PageServer,
    gw: Gateway,
    marie: UserFixture,
}

async fn firm() -> Firm {
    let app = web_app().await;
    let gw = gateway_for(&[&app], &["marie"]).await;
    let marie = gw.user("dupont", 0).clone();
    signed_in(&gw, &app, &marie).await;
    Firm { app, gw, marie }
}

/// Opens the page with the bell in the current tab; waits until its client caught up.
async fn open_bell(browser: &Chromium, app: &PageServer) {
    browser
        .navigate(&app.url("/bell.html"))
        .await
        .expect("the page loads");
    wait_connected(browser).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_with_the_bell_receives_live_notifications() {
    let Firm { app, gw, marie } = firm().await;
    let browser = browser().await;
    open_bell(&browser, &app).await;

    let api = gw.api();
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            api.publish_ok(
                gw.key("dupont"),
                &email(&marie.stream(), &format!("Mail #{n}")),
            )
            .await
            .id,
        );
    }
    wait_ids(&browser, &ids, "the three notifications in the page").await;
    let badge = js(&browser, "return document.querySelector('tocsin-bell').shadowRoot.querySelector('.badge').textContent").await;
    assert_eq!(badge, "3", "the bell's badge counts them");
    let label = js(&browser, "return document.querySelector('tocsin-bell').shadowRoot.querySelector('.bell').getAttribute('aria-label')").await;
    assert_eq!(
        label,
        "Notifications, 3 non lus, En direct — Cabinet dupont"
    );
    browser.quit().await.expect("quit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_page_rides_out_a_gateway_sigkill_with_exactly_the_acknowledged_set() {
    let Firm { app, mut gw, marie } = firm().await;
    let browser = browser().await;
    open_bell(&browser, &app).await;

    // Like the firm's software: a failed publish is retried with the same key.
    let mut publisher = RetryingPublisher::start(
        gw.api(),
        gw.key("dupont").to_owned(),
        marie.stream(),
        "steady",
        200,
        Duration::from_millis(5),
    );
    publisher.wait_acknowledged(60, LONG).await;
    gw.kill_hard().await;
    gw.restart_on_same_port().await;
    let acked: Vec<String> = publisher.finish(LONG).await;
    assert_eq!(acked.len(), 200);
    wait_ids(&browser, &acked, "every acknowledged notification, once").await;

    // IndexedDB kept them: a reload shows them before any connection.
    gw.kill_hard().await;
    browser
        .navigate(&app.url("/bell.html"))
        .await
        .expect("the page reloads");
    poll_until(LONG, "the inbox read back from IndexedDB", || async {
        (page_ids(&browser).await.len() == acked.len()).then_some(())
    })
    .await;
    assert_eq!(page_ids(&browser).await, {
        let mut a = acked.clone();
        a.sort();
        a
    });
    browser.quit().await.expect("quit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_share_one_socket_and_the_second_takes_over_without_loss() {
    let Firm { app, gw, marie } = firm().await;
    let browser = browser().await;
    let first = browser.window().await.expect("tab");
    open_bell(&browser, &app).await;
    let second = browser.new_tab().await.expect("a second tab");
    browser.switch_to(&second).await.expect("switch");
    open_bell(&browser, &app).await;
    assert_eq!(js(&browser, "return window.tocsin.role").await, "follower");
    assert_eq!(
        gw.metric_total("tocsin_connections_open").await,
        1.0,
        "one socket for two tabs"
    );

    let api = gw.api();
    let mut ids = Vec::new();
    for n in 0..3 {
        ids.push(
            api.publish_ok(
                gw.key("dupont"),
                &email(&marie.stream(), &format!("both #{n}")),
            )
            .await
            .id,
        );
    }
    wait_ids(&browser, &ids, "the follower tab shows every notification").await;
    browser.switch_to(&first).await.expect("switch");
    assert_eq!(js(&browser, "return window.tocsin.role").await, "leader");
    wait_ids(&browser, &ids, "the leader tab shows every notification").await;

    // Close the leader's tab while publishing: the other takes the socket over.
    browser.close_window().await.expect("close the first tab");
    let publisher = RetryingPublisher::start(
        gw.api(),
        gw.key("dupont").to_owned(),
        marie.stream(),
        "handover",
        30,
        Duration::from_millis(20),
    );
    browser.switch_to(&second).await.expect("switch");
    poll_until(LONG, "the second tab became the leader", || async {
        (js(&browser, "return window.tocsin.role").await == "leader").then_some(())
    })
    .await;
    ids.extend(publisher.finish(LONG).await);
    wait_ids(&browser, &ids, "nothing lost across the handover").await;
    assert_eq!(gw.metric_total("tocsin_connections_open").await, 1.0);
    browser.quit().await.expect("quit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_action_taken_offline_reaches_the_gateway_once() {
    let Firm { app, mut gw, marie } = firm().await;
    let browser = browser().await;
    open_bell(&browser, &app).await;
    let api = gw.api();
    let mail = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "à lire"))
        .await;
    api.publish_ok(gw.key("dupont"), &proposal(&marie.stream(), "p-7"))
        .await;
    poll_until(LONG, "both in the page", || async {
        (page_ids(&browser).await.len() == 2).then_some(())
    })
    .await;

    gw.kill_hard().await;
    poll_until(LONG, "the page noticed the gateway is gone", || async {
        (js(&browser, "return window.tocsin.state.status").await != "connected").then_some(())
    })
    .await;
    js(&browser, &format!("await window.tocsin.markRead(['{}']); await window.tocsin.respond('p-7', 'accept'); return true", mail.id)).await;
    assert_eq!(
        js(&browser, "return window.tocsin.unread().total").await,
        1,
        "read at once, offline"
    );

    gw.restart_on_same_port().await;
    wait_connected(&browser).await;
    let token = api.login(&marie).await.access_token;
    poll_until(
        LONG,
        "the gateway has the mail read and the proposal answered",
        || async {
            let history = api
                .history_ok(&token, &marie.stream(), None, Some(100))
                .await;
            let read = history
                .notifications
                .iter()
                .any(|i| i.notification.id == mail.id && i.read);
            let answered = history
                .notifications
                .iter()
                .any(|i| i.notification.kind() == Kind::ProposalStatusChanged);
            (read && answered).then_some(())
        },
    )
    .await;
    // A reload (the outbox is in IndexedDB, empty now) sends nothing again.
    open_bell(&browser, &app).await;
    let history = api
        .history_ok(&token, &marie.stream(), None, Some(100))
        .await;
    let answers = history
        .notifications
        .iter()
        .filter(|i| i.notification.kind() == Kind::ProposalStatusChanged)
        .count();
    assert_eq!(answers, 1, "the proposal was answered exactly once");
    browser.quit().await.expect("quit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn typing_and_presence_reach_another_members_page() {
    let marie_app = web_app().await;
    let claire_app = web_app().await;
    let gw = gateway_for(&[&marie_app, &claire_app], &["marie", "claire"]).await;
    let marie = gw.user("dupont", 0).clone();
    let claire = gw.user("dupont", 1).clone();
    let api = gw.api();
    api.set_members(gw.key("dupont"), "c-2026-0142", &[&marie.id, &claire.id])
        .await
        .expect_status(200, "members");
    signed_in(&gw, &marie_app, &marie).await;
    signed_in(&gw, &claire_app, &claire).await;
    let browser = browser().await;
    let marie_tab = browser.window().await.expect("tab");
    browser
        .navigate(&marie_app.url("/conversation.html"))
        .await
        .expect("Marie's page");
    wait_connected(&browser).await;
    let claire_tab = browser.new_tab().await.expect("tab");
    browser.switch_to(&claire_tab).await.expect("switch");
    browser
        .navigate(&claire_app.url("/conversation.html"))
        .await
        .expect("Claire's page");
    wait_connected(&browser).await;

    // Claire types in the composer and sets herself busy.
    let input = browser
        .find("input[aria-label='Votre message']")
        .await
        .expect("composer");
    input.send_keys("Bonjour").await.expect("typing");
    js(&browser, "const s = document.querySelector('select'); s.value = 'busy'; s.dispatchEvent(new Event('change', { bubbles: true })); return true").await;

    browser.switch_to(&marie_tab).await.expect("switch");
    let claire_id = claire.id.clone();
    poll_until(LONG, "Marie's page shows Claire typing", || async {
        let text = js(
            &browser,
            "return document.querySelector('[data-testid=typing]').textContent",
        )
        .await;
        text.as_str()
            .is_some_and(|t| t.contains(&claire_id) && t.contains("écrit"))
            .then_some(())
    })
    .await;
    poll_until(LONG, "Marie's page shows Claire busy", || async {
        let text = js(
            &browser,
            "return document.querySelector('[data-testid=presence]').textContent",
        )
        .await;
        text.as_str()
            .is_some_and(|t| t.contains(&format!("{claire_id} : busy")))
            .then_some(())
    })
    .await;
    browser.quit().await.expect("quit");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_critical_deadline_raises_a_browser_notification_that_stays_until_read() {
    // Chromium in a private X/D-Bus session: its notifications reach the session's
    // (fake) org.freedesktop.Notifications server, as they would a desktop's.
    let session = DesktopSession::start(SessionOptions::default())
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
    let Firm { app, gw, marie } = firm().await;
    let browser = Chromium::launch(&ChromiumOptions::in_session(session.envs()))
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
    within(LONG * 2, async {
        let server = session.notifications()?;
        browser.navigate(&app.url("/bell.html")).await?;
        // What the user's "Allow" gives the page.
        browser.set_permission("notifications", "granted").await?;
        wait_connected(&browser).await;
        let api = gw.api();
        api.publish_ok(gw.key("dupont"), &email(&marie.stream(), "ordinaire"))
            .await;
        let deadline = critical_deadline(&marie.stream(), "d-9");
        let alert = api.publish_ok(gw.key("dupont"), &deadline).await;
        let shown = server.next_notify(Duration::from_secs(20)).await?;
        assert_eq!(
            shown.summary, deadline.title,
            "only the critical deadline alerts: {shown:#?}"
        );
        assert_eq!(shown.urgency(), Some(2), "requireInteraction: critical");
        assert_eq!(shown.expire_timeout, 0, "it stays until dismissed");

        // Read in the panel (or on another device): the alert closes.
        js(
            &browser,
            &format!(
                "await window.tocsin.markRead(['{}']); return true",
                alert.id
            ),
        )
        .await;
        server
            .wait_closed_by_app(shown.id, Duration::from_secs(20))
            .await?;
        Ok::<(), anyhow::Error>(())
    })
    .await;
    browser.quit().await.expect("quit");
}
