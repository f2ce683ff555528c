//! Steps the desktop tests share: start the app signed in, wait until it is live (its
//! tray status line says so), read the gateway's unread count.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};

use super::app::{AppOptions, DesktopApp};
use super::session::{DesktopSession, SessionOptions};
use super::tray::{TrayItem, labels};
use crate::gateway::{Gateway, GatewayOptions, UserFixture};
use crate::http::Api;

/// How often the polls below ask again.
const POLL: Duration = Duration::from_millis(100);

/// `http://127.0.0.1:PORT` of `gateway`.
pub fn server_url(gateway: &Gateway) -> String {
    format!("http://{}", gateway.addr())
}

/// Starts the app hidden in `lang`, signed in as `user` on `gateway` (password on
/// stdin), with its home in the session's `home` directory.
pub async fn start_signed_in(
    session: &DesktopSession,
    binary: &Path,
    gateway: &Gateway,
    user: &UserFixture,
    lang: &str,
) -> Result<(DesktopApp, AppOptions)> {
    let home = session.dir("home")?;
    let options = AppOptions::new(&home).lang(lang).signed_in(
        &server_url(gateway),
        &user.email,
        &user.password,
    );
    let app = DesktopApp::start(session, binary, &options).await?;
    Ok((app, options))
}

/// How most desktop tests begin: a gateway with the firm "dupont" and Marie, a
/// desktop session, and the app started hidden in `lang`, signed in as her.
pub struct MarieSignedIn {
    /// The gateway.
    pub gw: Gateway,
    /// Marie's account.
    pub marie: UserFixture,
    /// The X server and session bus.
    pub session: DesktopSession,
    /// The app.
    pub app: DesktopApp,
    /// What the app was started with (to start it again).
    pub options: AppOptions,
}

/// Starts what [`MarieSignedIn`] holds; panics (failing the test) when a part does
/// not start.
pub async fn marie_signed_in(binary: &Path, lang: &str, session: SessionOptions) -> MarieSignedIn {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let session = DesktopSession::start(session)
        .await
        .expect("a desktop session");
    let (app, options) = start_signed_in(&session, binary, &gw, &marie, lang)
        .await
        .expect("the app starts");
    MarieSignedIn {
        gw,
        marie,
        session,
        app,
        options,
    }
}

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

/// Polls the gateway until `user`'s unread total is `expected`.
pub async fn wait_gateway_unread(
    api: &Api,
    token: &str,
    expected: u64,
    timeout: Duration,
) -> Result<()> {
    let deadline = tokio::time::Instant::now() + timeout;
    loop {
        let total = api.unread(token).await.total;
        if total == expected {
            return Ok(());
        }
        if tokio::time::Instant::now() >= deadline {
            bail!("the gateway's unread count is {total}, not {expected}, after {timeout:?}");
        }
        tokio::time::sleep(POLL).await;
    }
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
