//! Web notifications from a real Chromium reach the desktop's notification service:
//! inside the harness's private X/D-Bus session (chromedriver, and so Chromium, get
//! its `DISPLAY` and `DBUS_SESSION_BUS_ADDRESS`), a page granted the `notifications`
//! permission over WebDriver calls `new Notification(…)`, and the fake
//! `org.freedesktop.Notifications` server records the `Notify` call: app "Chromium",
//! the title as summary, the page's host and port above the body, the "default"
//! action; `requireInteraction` makes it critical and never expiring. The server's
//! `ActionInvoked "default"` fires the page's `onclick`; the page's `close()` sends
//! `CloseNotification`. Checked headless and shown on Xvfb: both behave the same.

use std::time::Duration;

use serde_json::{Value, json};
use tocsin_e2e::browser::{Chromium, ChromiumOptions, PageServer};
use tocsin_e2e::desktop::notifications::Notification;
use tocsin_e2e::desktop::{DesktopSession, SessionOptions, within};

/// The whole test, the session's and Chromium's start included.
const LIMIT: Duration = Duration::from_secs(120);
/// How long a `Notify` call or an event may take to arrive.
const WAIT: Duration = Duration::from_secs(10);

const PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\">\
    <title>A firm's web app</title></head><body><p>notifications</p></body></html>";

/// Shows a notification and records its events in `window.events` (`click:TAG`,
/// `close:TAG`, …); returns the permission the page has.
const SHOW: &str = r"
    const [title, body, tag, requireInteraction] = arguments;
    window.events = window.events || [];
    window.shown = window.shown || {};
    const notification = new Notification(title, { body, tag, requireInteraction });
    for (const kind of ['show', 'click', 'close', 'error']) {
        notification.addEventListener(kind, () => window.events.push(kind + ':' + tag));
    }
    window.shown[tag] = notification;
    return Notification.permission;";

async fn events(browser: &Chromium) -> anyhow::Result<Vec<String>> {
    let value = browser
        .run("return window.events || [];", Vec::new())
        .await?;
    Ok(value
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(Value::as_str)
                .map(str::to_owned)
                .collect()
        })
        .unwrap_or_default())
}

async fn a_notification_reaches_the_desktop(headless: bool) {
    let session = DesktopSession::start(SessionOptions::default())
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
    let pages = PageServer::with_files(&[("/index.html", PAGE)])
        .await
        .expect("the page server");
    let mut options = ChromiumOptions::in_session(session.envs());
    options.headless = headless;
    let browser = Chromium::launch(&options)
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
    within(LIMIT, async {
        let server = session.notifications()?;
        browser.navigate(&pages.url("/index.html")).await?;
        browser.set_permission("notifications", "granted").await?;

        let permission = browser
            .run(
                SHOW,
                vec![
                    json!("Échéance J-2"),
                    json!("Conclusions à déposer"),
                    json!("deadline"),
                    json!(true),
                ],
            )
            .await?;
        assert_eq!(permission, "granted");
        let critical: Notification = server.next_notify(WAIT).await?;
        assert_eq!(critical.app_name, "Chromium", "{critical:#?}");
        assert_eq!(critical.summary, "Échéance J-2", "{critical:#?}");
        let host = pages.origin().trim_start_matches("http://");
        assert_eq!(
            critical.body,
            format!("{host}\n\nConclusions à déposer"),
            "Chromium puts the page's host above the body"
        );
        assert_eq!(
            critical.urgency(),
            Some(2),
            "requireInteraction is critical"
        );
        assert_eq!(
            critical.expire_timeout, 0,
            "requireInteraction never expires"
        );
        assert!(
            critical.action_label("default").is_some(),
            "a click on the notification is the default action: {critical:#?}"
        );

        // Chromium listens for ActionInvoked once Notify has returned; a click sent
        // before that reaches nobody, so click again until the page hears one.
        browser
            .wait_until("the page's onclick", WAIT, async |_| {
                if events(&browser)
                    .await?
                    .iter()
                    .any(|e| e == "click:deadline")
                {
                    return Ok(Some(()));
                }
                server.click(critical.id, "default").await?;
                Ok(None)
            })
            .await?;

        browser
            .run(
                SHOW,
                vec![
                    json!("Nouveau mail"),
                    json!("2026-0142"),
                    json!("mail"),
                    json!(false),
                ],
            )
            .await?;
        let plain = server.next_notify(WAIT).await?;
        assert_eq!(plain.summary, "Nouveau mail");
        assert_eq!(
            plain.urgency(),
            Some(1),
            "a plain notification is normal: {plain:#?}"
        );
        assert_eq!(
            plain.expire_timeout, -1,
            "and expires as the server decides"
        );
        browser
            .run("window.shown.mail.close(); return true;", Vec::new())
            .await?;
        server.wait_closed_by_app(plain.id, WAIT).await?;
        Ok::<(), anyhow::Error>(())
    })
    .await;
    browser.quit().await.expect("Chromium stops");
}

#[tokio::test]
async fn a_headless_page_notification_reaches_the_session_notification_server() {
    a_notification_reaches_the_desktop(true).await;
}

#[tokio::test]
async fn a_page_notification_shown_on_xvfb_reaches_the_session_notification_server() {
    a_notification_reaches_the_desktop(false).await;
}
