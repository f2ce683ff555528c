//! The tray as the desktop shell sees it over D-Bus (StatusNotifierItem + dbusmenu):
//! the unread count in the label and drawn on the icon, an offline look when the
//! gateway dies, the menu's items in both languages, and "Mark all as read" clicked
//! in the menu clearing the count end to end. Waking from sleep (logind on a stand-in
//! system bus) makes the app reconnect at once, and it stays live.

use std::time::Duration;

use tocsin_e2e::desktop::artifacts::artifact;
use tocsin_e2e::desktop::steps::{
    MarieSignedIn, marie_signed_in, menu_labels, poll, server_url, status_line,
    wait_gateway_unread, wait_live, wait_status,
};
use tocsin_e2e::desktop::system_bus::FakeSystemBus;
use tocsin_e2e::desktop::tray::TrayItem;
use tocsin_e2e::desktop::{
    AppOptions, DesktopApp, DesktopSession, SessionOptions, require_desktop, within,
};
use tocsin_e2e::publisher::email;
use tocsin_e2e::{Gateway, GatewayOptions};

/// Keeps the tray's current icon as an artifact, for a human to look at.
async fn keep_icon(tray: &TrayItem, name: &str) -> anyhow::Result<()> {
    let file = tray.icon_file().await?;
    std::fs::copy(&file, artifact(name)?)?;
    Ok(())
}

/// One step's limit (a debug build of a WebKit app on two cores).
const STEP: Duration = Duration::from_secs(30);
/// A whole test's limit.
const LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_tray_label_and_icon_follow_the_unread_count_and_the_connection() {
    let test = "desktop_tray_label_and_icon_follow_the_unread_count_and_the_connection";
    let Some(binary) = require_desktop(test, &[]) else {
        return;
    };
    let MarieSignedIn {
        mut gw,
        marie,
        session,
        mut app,
        options: _,
    } = marie_signed_in(&binary, "en_US.UTF-8", SessionOptions::default()).await;
    within(LIMIT, async {
        let tray = app.wait_tray(&session, 0, STEP).await?;
        let live = wait_live(&tray, STEP).await?;
        assert_eq!(
            live, "Live — Cabinet dupont",
            "the status line names the firm"
        );
        assert_eq!(tray.label().await?, "", "no unread: no label");
        let none = tray.icon_pixels().await?;
        keep_icon(&tray, "tray-0-unread.png").await?;

        let api = gw.api();
        api.publish_ok(gw.key("dupont"), &email(&marie.stream(), "first"))
            .await;
        tray.wait_label("1", STEP).await?;
        let one = tray.wait_icon_change(&none, STEP).await?;
        keep_icon(&tray, "tray-1-unread.png").await?;
        assert!(
            one.differing_pixels(&none) > 20,
            "the badge is drawn on the icon"
        );

        for n in 2..=10 {
            api.publish_ok(gw.key("dupont"), &email(&marie.stream(), &format!("#{n}")))
                .await;
        }
        tray.wait_label("9+", STEP).await?;
        let ten = tray.wait_icon_change(&one, STEP).await?;
        keep_icon(&tray, "tray-10-unread.png").await?;
        assert!(
            ten.differing_pixels(&one) > 0,
            "9+ is drawn differently from 1"
        );
        assert_eq!((ten.width, ten.height), (none.width, none.height));

        gw.kill_hard().await;
        let offline = wait_status(&tray, "Offline since ", STEP).await;
        let offline = match offline {
            Ok(line) => line,
            Err(err) => {
                anyhow::bail!(
                    "{err:#}; the status line went through: {:?}",
                    status_line(&tray).await
                )
            }
        };
        assert!(
            offline.len() == "Offline since HH:MM".len(),
            "{offline:?} says since when"
        );
        let dark = tray.wait_icon_change(&ten, STEP).await?;
        keep_icon(&tray, "tray-offline.png").await?;
        assert!(
            dark.differing_pixels(&ten) > 20,
            "the offline look differs from the live one"
        );
        assert_eq!(tray.label().await?, "9+", "the count stays while offline");

        gw.restart_on_same_port().await;
        wait_live(&tray, STEP).await?;
        let back = tray.wait_icon_change(&dark, STEP).await?;
        assert_eq!(back, ten, "live again: the same icon as before the outage");
        assert_eq!(tray.title().await?, "Tocsin", "the tray item's Title");
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_mark_all_as_read_from_the_tray_menu_clears_the_count_end_to_end() {
    let test = "desktop_mark_all_as_read_from_the_tray_menu_clears_the_count_end_to_end";
    let Some(binary) = require_desktop(test, &[]) else {
        return;
    };
    let MarieSignedIn {
        gw,
        marie,
        session,
        mut app,
        options: _,
    } = marie_signed_in(&binary, "en_US.UTF-8", SessionOptions::default()).await;
    within(LIMIT, async {
        let tray = app.wait_tray(&session, 0, STEP).await?;
        wait_live(&tray, STEP).await?;
        let labels = menu_labels(&tray).await?;
        let expected = [
            "Open Tocsin",
            "Mark all as read",
            "Pause notifications",
            "For 1 hour",
            "Until tomorrow 08:00",
            "Resume",
            "Preferences…",
            "Sign out",
            "Quit",
        ];
        assert!(labels[0].starts_with("Live — "), "{labels:?}");
        assert_eq!(&labels[1..], &expected, "the menu, in order");

        let api = gw.api();
        let token = api.login(&marie).await.access_token;
        for n in 1..=3 {
            api.publish_ok(gw.key("dupont"), &email(&marie.stream(), &format!("#{n}")))
                .await;
        }
        tray.wait_label("3", STEP).await?;
        wait_gateway_unread(&api, &token, 3, STEP).await?;

        tray.click_label("Mark all as read").await?;
        tray.wait_label("", STEP).await?;
        wait_gateway_unread(&api, &token, 0, STEP).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_tray_menu_speaks_french_under_a_french_locale() {
    let test = "desktop_tray_menu_speaks_french_under_a_french_locale";
    let Some(binary) = require_desktop(test, &[]) else {
        return;
    };
    // The gateway is kept alive for the app (`_gw`), but not otherwise used here.
    let MarieSignedIn {
        gw: _gw,
        session,
        mut app,
        ..
    } = marie_signed_in(&binary, "fr_FR.UTF-8", SessionOptions::default()).await;
    within(LIMIT, async {
        let tray = app.wait_tray(&session, 0, STEP).await?;
        let live = wait_live(&tray, STEP).await?;
        assert_eq!(
            live, "En direct — Cabinet dupont",
            "the status line names the firm"
        );
        let labels = menu_labels(&tray).await?;
        let expected = [
            "Ouvrir Tocsin",
            "Tout marquer comme lu",
            "Suspendre les notifications",
            "Pendant 1 heure",
            "Jusqu'à demain 08:00",
            "Reprendre",
            "Préférences…",
            "Se déconnecter",
            "Quitter",
        ];
        assert_eq!(&labels[1..], &expected, "the menu in French, in order");
        Ok(())
    })
    .await;
}

/// How many WebSocket connections the gateway has accepted so far (its metrics).
async fn connections(gw: &Gateway) -> u64 {
    gw.metric_total("tocsin_connects_total").await as u64
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_waking_from_sleep_reconnects_at_once() {
    let test = "desktop_waking_from_sleep_reconnects_at_once";
    let Some(binary) = require_desktop(test, &[]) else {
        return;
    };
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let session = DesktopSession::start(SessionOptions::default())
        .await
        .expect("a desktop session");
    let system = FakeSystemBus::start(&session)
        .await
        .expect("a stand-in system bus with logind");
    let home = session.dir("home").expect("a home");
    let mut options =
        AppOptions::new(&home).signed_in(&server_url(&gw), &marie.email, &marie.password);
    options.env.push(system.env());
    let mut app = DesktopApp::start(&session, &binary, &options)
        .await
        .expect("the app starts");
    within(LIMIT, async {
        let tray = app.wait_tray(&session, 0, STEP).await?;
        wait_live(&tray, STEP).await?;
        poll("the first connection", STEP, async || {
            Ok((connections(&gw).await == 1).then_some(()))
        })
        .await?;

        // The live link is healthy: only the nudge can make a second one this soon (the
        // heartbeat would take tens of seconds to find a dead one). Woken until it
        // reconnects: the app may not have added its match rules for the first wake-up.
        poll("a reconnect on wake-up", STEP, async || {
            if connections(&gw).await >= 2 {
                return Ok(Some(()));
            }
            system.prepare_for_sleep(false).await?;
            Ok(None)
        })
        .await?;
        wait_live(&tray, STEP).await?;
        assert!(
            std::fs::read_to_string(app.log())?.contains("reconnecting at once"),
            "the app says why it reconnected"
        );

        // Still delivering after the reconnect.
        gw.api()
            .publish_ok(gw.key("dupont"), &email(&marie.stream(), "Après le réveil"))
            .await;
        tray.wait_label("1", STEP).await?;
        assert!(app.is_running(), "the app is still running");
        Ok(())
    })
    .await;
}
