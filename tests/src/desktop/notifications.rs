//! A fake `org.freedesktop.Notifications` server on a session bus: the harness's
//! ([`tocsin_harness::desktop::notifications`]), shared with the desktop benchmark,
//! checked here against a real client (libnotify's `notify-send`).

pub use tocsin_harness::desktop::notifications::*;

#[cfg(test)]
mod tests {
    use std::process::Stdio;

    use tokio::io::AsyncReadExt;

    use anyhow::{Context, Result};
    use std::time::{Duration, Instant};

    use crate::desktop::session::{DesktopSession, SessionOptions};
    use crate::desktop::skip_without_tools;

    const STEP: Duration = Duration::from_secs(20);

    /// `notify-send` (libnotify, a real client) against the fake server: the urgency
    /// byte, the timeout and the actions arrive as sent, and an invoked action reaches
    /// the client (it prints the action key).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn desktop_fake_notification_server_speaks_to_libnotify() -> Result<()> {
        if skip_without_tools(
            "desktop_fake_notification_server_speaks_to_libnotify",
            &["notify-send"],
        ) {
            return Ok(());
        }
        let session = DesktopSession::start(SessionOptions::default()).await?;
        let server = session.notifications()?;
        let before = Instant::now();
        let mut child = session
            .command("notify-send")
            .args([
                "--app-name=Tocsin",
                "--urgency=critical",
                "--expire-time=0",
                "--category=deadline",
                "-A",
                "open=Open",
                "-A",
                "mark-read=Mark as read",
                "Délai critique",
                "Conclusions à déposer demain",
            ])
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("notify-send starts")?;

        let shown = server.next_notify(STEP).await?;
        let (timed, received) = server
            .wait_for_timed("the same call, timed", STEP, |n| n.id == shown.id)
            .await?;
        assert_eq!(timed, shown);
        assert!(
            before <= received && received <= Instant::now(),
            "the reception time lies between the send and now"
        );
        assert_eq!(shown.app_name, "Tocsin");
        assert_eq!(shown.summary, "Délai critique");
        assert_eq!(shown.body, "Conclusions à déposer demain");
        assert_eq!(shown.urgency(), Some(2), "critical is urgency byte 2");
        assert_eq!(shown.category(), Some("deadline"));
        assert_eq!(shown.expire_timeout, 0, "never expires");
        assert_eq!(
            shown.action_pairs(),
            vec![
                ("open".to_owned(), "Open".to_owned()),
                ("mark-read".to_owned(), "Mark as read".to_owned())
            ]
        );
        assert!(shown.id >= 1);

        server.invoke_action(shown.id, "mark-read").await?;
        let output = tokio::time::timeout(STEP, async {
            let mut stdout = String::new();
            if let Some(pipe) = child.stdout.as_mut() {
                pipe.read_to_string(&mut stdout).await?;
            }
            let status = child.wait().await?;
            Ok::<_, std::io::Error>((status, stdout))
        })
        .await
        .context("notify-send exits once its notification was closed")??;
        assert!(output.0.success(), "notify-send: {:?}", output.0);
        assert_eq!(
            output.1.trim(),
            "mark-read",
            "notify-send prints the invoked action's key"
        );

        // A second notification gets a new id; a replacement keeps it.
        let status = session
            .command("notify-send")
            .args(["--urgency=low", "second"])
            .status()
            .await?;
        assert!(status.success());
        let second = server.next_notify(STEP).await?;
        assert_eq!(second.urgency(), Some(0));
        assert_eq!(second.expire_timeout, -1, "server default");
        assert!(second.id > shown.id, "ids increase");
        let found = server
            .wait_for("the first one", STEP, |n| n.summary == "Délai critique")
            .await?;
        assert_eq!(found.id, shown.id);
        Ok(())
    }
}
