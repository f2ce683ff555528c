//! Waits on the desktop app as the user sees it: its tray status line (live, or
//! not), and a generic poll of a condition that has no event to wait for (D-Bus
//! properties, `/proc`), each under a deadline.

use std::time::Duration;

use anyhow::{Result, bail};

use super::tray::{TrayItem, labels};

/// How often [`poll`] asks again.
const POLL: Duration = Duration::from_millis(100);

/// The tray menu's first line (the connection status).
pub async fn status_line(tray: &TrayItem) -> Result<String> {
    let menu = tray.menu().await?;
    menu.iter()
        .find(|item| !item.separator)
        .map(|item| item.label.clone())
        .ok_or_else(|| anyhow::anyhow!("the tray menu is empty"))
}

/// Waits until the tray's status line starts with `prefix` (e.g. `"Live — "`).
pub async fn wait_status(tray: &TrayItem, prefix: &str, timeout: Duration) -> Result<String> {
    tray.wait_property(
        &format!("a tray status line starting with {prefix:?}"),
        timeout,
        async |item| status_line(item).await,
        |line| line.starts_with(prefix),
    )
    .await
}

/// Waits until the app is live (English or French status line).
pub async fn wait_live(tray: &TrayItem, timeout: Duration) -> Result<String> {
    tray.wait_property(
        "the app to be live (tray status line \"Live — …\" / \"En direct — …\")",
        timeout,
        async |item| status_line(item).await,
        |line| line.starts_with("Live — ") || line.starts_with("En direct — "),
    )
    .await
}

/// The menu's labels, for messages.
pub async fn menu_labels(tray: &TrayItem) -> Result<Vec<String>> {
    Ok(labels(&tray.menu().await?))
}

/// Polls `probe` until it returns `Some`, up to `timeout`; `what` names the wait.
pub async fn poll<T>(
    what: &str,
    timeout: Duration,
    mut probe: impl AsyncFnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = tokio::time::Instant::now() + timeout;
    let mut last_error = None;
    loop {
        match probe().await {
            Ok(Some(value)) => return Ok(value),
            Ok(None) => {}
            Err(err) => last_error = Some(err),
        }
        if tokio::time::Instant::now() >= deadline {
            let last = last_error
                .map(|err| format!("; last error: {err:#}"))
                .unwrap_or_default();
            bail!("waited {timeout:?} for {what}, in vain{last}");
        }
        tokio::time::sleep(POLL).await;
    }
}
