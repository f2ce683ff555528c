//! OS notifications as the notification server receives them: a critical deadline is
//! urgent, never expires and offers "Acknowledge" and "Mark as read" (desktop_deadlines.rs
//! clicks the first), the second of which — clicked — reaches the gateway and clears the
//! tray's count; an ordinary one is normal with "Open" only.
//! Without any notification server the app carries on with the tray. A real dunst
//! draws a critical notification for a screenshot. A pause from the tray silences
//! ordinary toasts, never critical ones; clicking a notification opens the panel —
//! or, when it has a link, runs the system's opener with exactly that link instead.
//! A toast whose notification is read elsewhere (another device, the tray) is closed,
//! and so is one the firm retracts (which also leaves the tray's count).

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin_e2e::desktop::artifacts::artifact;
use tocsin_e2e::desktop::fixtures::{APP_LINK, critical_deadline};
use tocsin_e2e::desktop::opener::FakeOpener;
use tocsin_e2e::desktop::steps::{
    MarieSignedIn, marie_signed_in, poll, server_url, wait_gateway_unread, wait_live,
};
use tocsin_e2e::desktop::tray::decode_png;
use tocsin_e2e::desktop::{
    AppOptions, DesktopApp, DesktopSession, NotificationDaemon, SessionOptions, require_desktop,
    within,
};
use tocsin_e2e::publisher::email;
use tocsin_e2e::{Gateway, GatewayOptions, WsClient};
use tocsin_protocol::{ClientFrame, ServerFrame};

/// One step's limit.
const STEP: Duration = Duration::from_secs(30);
/// A whole test's limit.
const LIMIT: Duration = Duration::from_secs(90);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_a_critical_deadline_notifies_urgently_and_mark_read_reaches_the_gateway() {
    let test = "desktop_a_critical_deadline_notifies_urgently_and_mark_read_reaches_the_gateway";
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
        let server = session.notifications()?;
        let tray = app.wait_tray(&session, 0, STEP).await?;
        wait_live(&tray, STEP).await?;
        let api = gw.api();
        let token = api.login(&marie).await.access_token;

        let request = critical_deadline(&marie.stream(), "Conclusions — RG 24/01234");
        api.publish_ok(gw.key("dupont"), &request).await;
        let shown = server
            .wait_for("the critical deadline", STEP, |n| {
                n.summary == "Conclusions — RG 24/01234"
            })
            .await?;
        assert_eq!(shown.app_name, "Tocsin");
        assert!(
            shown.body.contains(&request.body),
            "the body carries the notification's body: {:?}",
            shown.body
        );
        assert_eq!(shown.urgency(), Some(2), "critical urgency (byte 2)");
        assert_eq!(
            shown.expire_timeout, 0,
            "a critical notification never expires"
        );
        assert_eq!(
            shown.action_pairs(),
            vec![
                ("default".to_owned(), "Open".to_owned()),
                ("acknowledge".to_owned(), "Acknowledge".to_owned()),
                ("mark-read".to_owned(), "Mark as read".to_owned()),
            ]
        );
        tray.wait_label("1", STEP).await?;
        wait_gateway_unread(&api, &token, 1, STEP).await?;

        // Clicked until the gateway has it, then dismissed as a server does after a
        // click: the app listens for a toast's actions only once its Notify call
        // returned (see `NotificationServer::click`), and on a loaded machine a first
        // click can come before that.
        poll(
            "the toast's Mark as read on the gateway",
            STEP,
            async || {
                if api.unread(&token).await.total == 0 {
                    return Ok(Some(()));
                }
                server.click(shown.id, "mark-read").await?;
                Ok(None)
            },
        )
        .await?;
        server.close(shown.id).await?;
        tray.wait_label("", STEP).await?;
        // The toast acted on is gone from the screen and forgotten: the read it
        // caused closes nothing (a close is issued before the tray shows the count).
        assert!(
            server.closed_by_app().is_empty(),
            "no CloseNotification for a toast acted on: {:?}",
            server.closed_by_app()
        );

        // An ordinary notification: normal urgency, the server's timeout, "Open" only.
        api.publish_ok(
            gw.key("dupont"),
            &email(&marie.stream(), "Nouveau courriel"),
        )
        .await;
        let ordinary = server
            .wait_for("the email", STEP, |n| n.summary == "Nouveau courriel")
            .await?;
        assert_eq!(ordinary.app_name, "Tocsin");
        assert_eq!(ordinary.urgency(), Some(1), "normal urgency (byte 1)");
        assert_ne!(
            ordinary.expire_timeout, 0,
            "an ordinary notification expires"
        );
        assert_eq!(
            ordinary.action_pairs(),
            vec![("default".to_owned(), "Open".to_owned())]
        );
        tray.wait_label("1", STEP).await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_the_mark_read_action_is_labelled_in_french() {
    let test = "desktop_the_mark_read_action_is_labelled_in_french";
    let Some(binary) = require_desktop(test, &[]) else {
        return;
    };
    let MarieSignedIn {
        gw,
        marie,
        session,
        mut app,
        options: _,
    } = marie_signed_in(&binary, "fr_FR.UTF-8", SessionOptions::default()).await;
    within(LIMIT, async {
        let server = session.notifications()?;
        let tray = app.wait_tray(&session, 0, STEP).await?;
        wait_live(&tray, STEP).await?;
        let api = gw.api();
        api.publish_ok(
            gw.key("dupont"),
            &critical_deadline(&marie.stream(), "Appel — RG 24/05678"),
        )
        .await;
        let shown = server
            .wait_for("the critical deadline", STEP, |n| {
                n.summary == "Appel — RG 24/05678"
            })
            .await?;
        assert_eq!(
            shown.action_pairs(),
            vec![
                ("default".to_owned(), "Ouvrir".to_owned()),
                ("acknowledge".to_owned(), "Pris en compte".to_owned()),
                ("mark-read".to_owned(), "Marquer comme lu".to_owned()),
            ]
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_without_a_notification_server_the_app_carries_on_with_the_tray() {
    let test = "desktop_without_a_notification_server_the_app_carries_on_with_the_tray";
    let Some(binary) = require_desktop(test, &[]) else {
        return;
    };
    let MarieSignedIn {
        gw,
        marie,
        session,
        mut app,
        options: _,
    } = marie_signed_in(
        &binary,
        "en_US.UTF-8",
        SessionOptions {
            notifications: NotificationDaemon::None,
            ..SessionOptions::default()
        },
    )
    .await;
    within(LIMIT, async {
        assert!(
            !session
                .name_has_owner(tocsin_e2e::desktop::notifications::NAME)
                .await?,
            "nobody serves notifications on this bus"
        );
        let tray = app.wait_tray(&session, 0, STEP).await?;
        wait_live(&tray, STEP).await?;
        let api = gw.api();
        let token = api.login(&marie).await.access_token;
        api.publish_ok(
            gw.key("dupont"),
            &critical_deadline(&marie.stream(), "Délai critique"),
        )
        .await;
        api.publish_ok(gw.key("dupont"), &email(&marie.stream(), "Courriel"))
            .await;
        tray.wait_label("2", STEP).await?;
        assert!(app.is_running(), "the app is still running");
        assert_eq!(
            session.tray()?.registrations().len(),
            1,
            "the tray item registered once (no restart)"
        );
        tray.click_label("Mark all as read").await?;
        tray.wait_label("", STEP).await?;
        wait_gateway_unread(&api, &token, 0, STEP).await?;
        assert!(app.is_running(), "the app is still running");
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_a_critical_notification_drawn_by_dunst_for_a_screenshot() {
    let test = "desktop_a_critical_notification_drawn_by_dunst_for_a_screenshot";
    let Some(binary) = require_desktop(test, &["dunst", "dunstctl", "import"]) else {
        return;
    };
    let MarieSignedIn {
        gw,
        marie,
        session,
        mut app,
        options: _,
    } = marie_signed_in(
        &binary,
        "fr_FR.UTF-8",
        SessionOptions {
            notifications: NotificationDaemon::Dunst,
            ..SessionOptions::default()
        },
    )
    .await;
    within(LIMIT, async {
        let tray = app.wait_tray(&session, 0, STEP).await?;
        wait_live(&tray, STEP).await?;
        gw.api()
            .publish_ok(
                gw.key("dupont"),
                &critical_deadline(&marie.stream(), "Conclusions — RG 24/01234"),
            )
            .await;
        // dunst has no "shown" signal: ask it how many it displays until it is one.
        poll("dunst to display the notification", STEP, async || {
            let output = session
                .command("dunstctl")
                .args(["count", "displayed"])
                .output()
                .await?;
            let count = String::from_utf8_lossy(&output.stdout).trim().to_owned();
            Ok((count == "1").then_some(()))
        })
        .await?;
        // Nor a "painted" one: screenshot until the critical red is on screen.
        let path = artifact("notification-critical-dunst-fr.png")?;
        let red = poll("the critical notification on screen", STEP, async || {
            session.screenshot(&path).await?;
            let shot = decode_png(&path)?;
            let red = shot
                .rgba
                .chunks(4)
                .filter(|p| p[0] == 0xbf && p[1] == 0x30 && p[2] == 0x30)
                .count();
            Ok((red > 2_000).then_some(red))
        })
        .await?;
        eprintln!("screenshot ({red} critical-red pixels): {}", path.display());
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_a_pause_silences_ordinary_toasts_not_critical_ones_and_a_click_opens_the_panel() {
    let test =
        "desktop_a_pause_silences_ordinary_toasts_not_critical_ones_and_a_click_opens_the_panel";
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
        let server = session.notifications()?;
        let tray = app.wait_tray(&session, 0, STEP).await?;
        wait_live(&tray, STEP).await?;
        assert!(!session.has_web_process(), "started hidden: no web engine");
        let api = gw.api();
        let key = gw.key("dupont");

        tray.click_label("For 1 hour").await?;
        // The pause is saved before the next notification is decided: wait for it
        // on disk rather than guessing.
        let settings = session.dir("home")?.join("config").join("settings.json");
        poll("the pause to be saved", STEP, async || {
            let text = std::fs::read_to_string(&settings).unwrap_or_default();
            Ok(text.contains("\"paused_until\": \"").then_some(()))
        })
        .await?;
        api.publish_ok(key, &email(&marie.stream(), "Pendant la pause"))
            .await;
        // The app shows a batch's toasts before it updates the tray: once the label
        // says 1, a toast for the email would already have been sent.
        tray.wait_label("1", STEP).await?;
        assert!(
            !server.summaries().iter().any(|s| s == "Pendant la pause"),
            "paused: no toast for an ordinary email ({:?})",
            server.summaries()
        );

        let request = critical_deadline(&marie.stream(), "Appel — RG 24/09999");
        api.publish_ok(key, &request).await;
        let critical = server
            .wait_for("the critical deadline despite the pause", STEP, |n| {
                n.summary == "Appel — RG 24/09999"
            })
            .await?;
        assert_eq!(critical.urgency(), Some(2));

        // Clicking the notification opens the panel (a web process starts). Clicked
        // until it does: the first click may come before the app listens.
        tray.wait_label("2", STEP).await?;
        poll("the panel to open on a click", STEP, async || {
            if session.has_web_process() {
                return Ok(Some(()));
            }
            server.click(critical.id, "default").await?;
            Ok(None)
        })
        .await?;

        tray.click_label("Resume").await?;
        poll("the pause to end", STEP, async || {
            let text = std::fs::read_to_string(&settings).unwrap_or_default();
            Ok(text.contains("\"paused_until\": null").then_some(()))
        })
        .await?;
        api.publish_ok(key, &email(&marie.stream(), "Après la pause"))
            .await;
        server
            .wait_for("an ordinary toast once resumed", STEP, |n| {
                n.summary == "Après la pause"
            })
            .await?;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_clicking_a_toast_with_a_link_runs_the_system_opener_with_that_link() {
    let test = "desktop_clicking_a_toast_with_a_link_runs_the_system_opener_with_that_link";
    let Some(binary) = require_desktop(test, &[]) else {
        return;
    };
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let session = DesktopSession::start(SessionOptions::default())
        .await
        .expect("a desktop session");
    let opener = FakeOpener::install(&session).expect("the fake xdg-open");
    let home = session.dir("home").expect("a home");
    let mut options = AppOptions::new(&home).lang("en_US.UTF-8").signed_in(
        &server_url(&gw),
        &marie.email,
        &marie.password,
    );
    options.env.push(opener.path_env());
    let mut app = DesktopApp::start(&session, &binary, &options)
        .await
        .expect("the app starts");
    within(LIMIT, async {
        let server = session.notifications()?;
        let tray = app.wait_tray(&session, 0, STEP).await?;
        wait_live(&tray, STEP).await?;
        let api = gw.api();
        let key = gw.key("dupont");

        let mut linked = email(&marie.stream(), "Pièce ajoutée au dossier 2026-0142");
        linked.url = Some(APP_LINK.to_owned());
        api.publish_ok(key, &linked).await;
        let toast = server
            .wait_for("the toast of the linked email", STEP, |n| {
                n.summary == linked.title
            })
            .await?;
        assert_eq!(
            toast.action_pairs(),
            vec![("default".to_owned(), "Open".to_owned())],
            "its default action is Open"
        );
        // Clicked until the opener runs: the first click may come before the app
        // listens for this notification's actions (see `NotificationServer::click`).
        let calls = poll("the system opener to run on a click", STEP, async || {
            let calls = opener.calls();
            if !calls.is_empty() {
                return Ok(Some(calls));
            }
            server.click(toast.id, "default").await?;
            Ok(None)
        })
        .await?;
        // One run: the app follows one action per notification (then it is done).
        assert_eq!(
            calls,
            vec![vec![APP_LINK.to_owned()]],
            "xdg-open ran once with exactly the link ({})",
            opener.record().display()
        );
        assert!(
            !session.has_web_process(),
            "the link was opened instead of the panel"
        );

        // Without a link, the same click opens the panel as before.
        api.publish_ok(key, &email(&marie.stream(), "Sans lien"))
            .await;
        let plain = server
            .wait_for("the toast of the plain email", STEP, |n| {
                n.summary == "Sans lien"
            })
            .await?;
        poll("the panel to open on a click", STEP, async || {
            if session.has_web_process() {
                return Ok(Some(()));
            }
            server.click(plain.id, "default").await?;
            Ok(None)
        })
        .await?;
        assert_eq!(
            opener.calls(),
            vec![vec![APP_LINK.to_owned()]],
            "the plain email opened no link"
        );
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_a_toast_read_on_another_device_or_from_the_tray_is_closed() {
    let test = "desktop_a_toast_read_on_another_device_or_from_the_tray_is_closed";
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
        let server = session.notifications()?;
        let tray = app.wait_tray(&session, 0, STEP).await?;
        wait_live(&tray, STEP).await?;
        let api = gw.api();
        let key = gw.key("dupont");

        // Two critical deadlines: both toasts stay on screen (they never expire).
        let first = api
            .publish_ok(
                key,
                &critical_deadline(&marie.stream(), "Appel — RG 24/00001"),
            )
            .await;
        let first_toast = server
            .wait_for("the first critical deadline", STEP, |n| {
                n.summary == "Appel — RG 24/00001"
            })
            .await?;
        api.publish_ok(
            key,
            &critical_deadline(&marie.stream(), "Appel — RG 24/00002"),
        )
        .await;
        let second_toast = server
            .wait_for("the second critical deadline", STEP, |n| {
                n.summary == "Appel — RG 24/00002"
            })
            .await?;
        assert_ne!(first_toast.id, second_toast.id);
        tray.wait_label("2", STEP).await?;
        assert!(server.closed_by_app().is_empty(), "nothing closed yet");

        // Marie reads the first one on her laptop: another login, its own socket.
        let laptop_token = api.login(&marie).await.access_token;
        let (mut laptop, _, _) =
            WsClient::connect_ready(&gw.ws_url(), &laptop_token, BTreeMap::new()).await;
        laptop
            .send(&ClientFrame::MarkRead {
                id: "laptop-read-1".to_owned(),
                notification_ids: vec![first.id.clone()],
            })
            .await;
        let answer = laptop.wait_result("laptop-read-1").await;
        assert!(
            matches!(answer, ServerFrame::Result { ok: true, .. }),
            "the laptop's mark read is accepted: {answer:?}"
        );
        let closed = server.wait_closed_by_app(first_toast.id, STEP).await?;
        assert_eq!(
            closed,
            vec![first_toast.id],
            "exactly the toast of the notification read elsewhere is closed, with the id \
             its Notify returned"
        );
        tray.wait_label("1", STEP).await?;
        assert_eq!(
            server.closed_by_app(),
            vec![first_toast.id],
            "the other critical deadline's toast stays on screen"
        );

        // This device's own "mark all read" (tray menu) closes the one left.
        tray.click_label("Mark all as read").await?;
        let closed = server.wait_closed_by_app(second_toast.id, STEP).await?;
        assert_eq!(closed, vec![first_toast.id, second_toast.id]);
        tray.wait_label("", STEP).await?;
        laptop.close().await;
        Ok(())
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn desktop_a_retracted_notification_closes_its_toast_and_leaves_the_count() {
    let test = "desktop_a_retracted_notification_closes_its_toast_and_leaves_the_count";
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
        let server = session.notifications()?;
        let tray = app.wait_tray(&session, 0, STEP).await?;
        wait_live(&tray, STEP).await?;
        let api = gw.api();
        let key = gw.key("dupont");

        // A critical deadline sent to Marie by mistake (its toast never expires), and
        // one meant for her.
        let mistaken = api
            .publish_ok(
                key,
                &critical_deadline(&marie.stream(), "Appel — RG 24/09999"),
            )
            .await;
        let toast = server
            .wait_for("the mistaken deadline", STEP, |n| {
                n.summary == "Appel — RG 24/09999"
            })
            .await?;
        api.publish_ok(key, &email(&marie.stream(), "Conclusions reçues"))
            .await;
        server
            .wait_for("the mail", STEP, |n| n.summary == "Conclusions reçues")
            .await?;
        tray.wait_label("2", STEP).await?;

        // The firm retracts it: its toast closes, the count drops to the mail alone.
        api.retract(key, &mistaken.id)
            .await
            .expect_status(200, "retract");
        let closed = server.wait_closed_by_app(toast.id, STEP).await?;
        assert_eq!(closed, vec![toast.id], "exactly the retracted one's toast");
        tray.wait_label("1", STEP).await?;
        Ok(())
    })
    .await;
}
