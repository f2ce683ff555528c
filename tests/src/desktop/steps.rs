//! Steps the desktop tests share: start the app signed in, read the gateway's unread
//! count; waiting until it is live (its tray status line says so) and polling are the
//! harness's ([`tocsin_harness::desktop::wait`]), re-exported here.

use std::path::Path;
use std::time::Duration;

use anyhow::{Result, bail};

use super::app::{AppOptions, DesktopApp};
use super::session::{DesktopSession, SessionOptions};
use crate::gateway::{Gateway, GatewayOptions, UserFixture};
use crate::http::Api;
pub use tocsin_harness::desktop::wait::{menu_labels, poll, status_line, wait_live, wait_status};

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
