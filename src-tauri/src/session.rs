//! Signing in and out, and the engine's life: one account at a time, its refresh
//! token in the OS secret store only (memory for this run when there is none), its
//! local database in the app's data dir. Each engine gets its network-change and
//! resume nudges ([`Nudges`]) for as long as it runs.

use std::sync::Arc;

use tauri::{AppHandle, Manager};
use tocsin_client::account::{self, Account, App};
use tocsin_client::api::{CertFingerprint, ServerUrl};
use tocsin_client::engine::{self, Command};
use tocsin_client::events::ConnectionState;
use tocsin_client::policy::Policy;
use tocsin_client::profile::Profile;
use tocsin_client::secrets::{self, SecretStore};

use crate::error::AppError;
use crate::i18n::Locale;
use crate::ipc::SecretStoreStatus;
use crate::nudges::Nudges;
use crate::state::{AppState, Session};
use crate::{bridge, view};

/// This device's name as the gateway lists it.
fn device_name() -> String {
    let host = std::fs::read_to_string("/etc/hostname")
        .ok()
        .map(|h| h.trim().to_owned())
        .filter(|h| !h.is_empty())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_else(|| "desktop".to_owned());
    format!("Tocsin desktop ({host})")
}

/// Picks the secret store and records what the panel should say about it. Blocking:
/// probing the OS keyring may wait for an unlock prompt (up to a minute).
fn open_secrets(app: &AppHandle) -> Arc<dyn SecretStore> {
    let state = app.state::<AppState>();
    // The rule: the OS store, or memory for this run; never a file.
    tracing::info!("opening the secret store");
    let (store, warning) = secrets::choose(&state.dirs.config, false);
    tracing::info!(store = store.describe(), "secret store chosen");
    if let Some(warning) = &warning {
        tracing::warn!(%warning, "no OS secret store");
    }
    let locale = state.locale();
    state.lock().secret_store = SecretStoreStatus {
        persistent: warning.is_none(),
        // The platform's own error is long and technical: it goes to the log above.
        warning: warning.map(|_| locale.strings().no_secret_store.to_owned()),
    };
    Arc::from(store)
}

/// Signs in with a password, remembers the device, starts the engine. With a
/// `fingerprint` (the user confirmed the one an untrusted gateway presented), the
/// gateway's certificate is pinned to it and saved with the profile.
pub async fn sign_in(
    app: &AppHandle,
    server: &str,
    email: &str,
    password: &str,
    fingerprint: Option<&str>,
) -> Result<(), AppError> {
    let state = app.state::<AppState>();
    let locale = state.locale();
    let server = ServerUrl::parse(server.trim())
        .map_err(|err| AppError::from_url(&err, locale))?
        .with_pin(pin(fingerprint, locale)?);
    let device_name = device_name();
    tracing::info!(server = %server.as_str(), "signing in");
    let tokens = account::log_in(&server, email, password, &device_name)
        .await
        .map_err(|err| AppError::from_api(&err, locale))?;
    // One account at a time: end the previous session's engine first.
    stop_engine(app).await;
    let opener = app.clone();
    let secrets = tokio::task::spawn_blocking(move || open_secrets(&opener))
        .await
        .map_err(AppError::internal)?;
    // The token into the secret store, the profile saved, and a fresh local database
    // (rebuilt from the gateway's history, never mixing two accounts' notifications).
    let signed_in = account::remember(
        App::Desktop,
        &state.dirs,
        secrets.as_ref(),
        &server,
        email,
        &device_name,
        &tokens,
    )
    .map_err(AppError::internal)?;
    start_engine(app, signed_in, secrets).map_err(AppError::internal)?;
    tracing::info!(server = %server.as_str(), "signed in");
    Ok(())
}

/// The confirmed fingerprint, if the user confirmed one.
fn pin(fingerprint: Option<&str>, locale: Locale) -> Result<Option<CertFingerprint>, AppError> {
    fingerprint
        .filter(|text| !text.trim().is_empty())
        .map(|text| {
            text.parse().map_err(|_| {
                AppError::new(
                    "invalid_fingerprint",
                    locale.strings().err_invalid_fingerprint,
                )
            })
        })
        .transpose()
}

/// At start: resumes the saved account if its token is in the secret store. Runs in
/// the async runtime (the engine's tasks need it) and probes the keyring off it.
pub async fn resume(app: &AppHandle) {
    let state = app.state::<AppState>();
    // No profile, no keyring probe (it may ask to unlock): show the sign-in form.
    if !Profile::path(&state.dirs.config).exists() {
        tracing::info!("no saved account: showing the sign-in form");
        return;
    }
    let opener = app.clone();
    let found = tokio::task::spawn_blocking(move || {
        let secrets = open_secrets(&opener);
        let dirs = &opener.state::<AppState>().dirs;
        let saved = account::saved(App::Desktop, dirs, secrets.as_ref());
        (secrets, saved)
    })
    .await;
    match found {
        Ok((secrets, Ok(Some(saved)))) => {
            if let Err(err) = start_engine(app, saved, secrets) {
                tracing::error!(%err, "cannot start the engine");
            }
        }
        Ok((_, Ok(None))) => tracing::info!("saved account without a token: sign in again"),
        Ok((_, Err(err))) => tracing::warn!(%err, "cannot read the saved account"),
        Err(err) => tracing::warn!(%err, "the secret store lookup failed"),
    }
    view::publish(app);
}

/// Starts the engine for an account and the bridge that renders its events.
fn start_engine(
    app: &AppHandle,
    account: Account,
    secrets: Arc<dyn SecretStore>,
) -> anyhow::Result<()> {
    let state = app.state::<AppState>();
    let config = account.engine_config(&state.dirs)?;
    let prefs = state.lock().settings.prefs.clone();
    let (engine, events, task) = engine::start(config, secrets.clone(), Policy::new(prefs))?;
    let nudges = Nudges::start(engine.clone());
    let id = state.next_session_id();
    let bridge = engine.clone();
    {
        let mut shared = state.lock();
        shared.set_connection(ConnectionState::Connecting {
            attempt: 1,
            next_retry: None,
        });
        shared.session = Some(Session {
            id,
            account,
            secrets,
            engine,
            task: Some(task),
            nudges,
        });
    }
    // The bridge reads the engine's counts first, then renders its events.
    tauri::async_runtime::spawn(bridge::run(app.clone(), bridge, id, events));
    view::publish(app);
    Ok(())
}

/// Stops the running engine, if any, and waits for it (bounded).
async fn stop_engine(app: &AppHandle) -> Option<Session> {
    let state = app.state::<AppState>();
    let mut session = state.lock().end_session()?;
    // First: a nudge now would only make the stopping engine reconnect.
    session.nudges.stop();
    session.engine.send(Command::Shutdown).await;
    if let Some(task) = session.task.take()
        && tokio::time::timeout(std::time::Duration::from_secs(3), task)
            .await
            .is_err()
    {
        tracing::warn!("the engine did not stop within 3 s");
    }
    Some(session)
}

/// Signs out: revokes the device session on the gateway (best effort: offline, the
/// token is still forgotten here), clears the secret store, the profile and the
/// local database.
pub async fn sign_out(app: &AppHandle) -> Result<(), AppError> {
    let state = app.state::<AppState>();
    let Some(session) = stop_engine(app).await else {
        return Ok(());
    };
    match account::sign_out(&session.account, &state.dirs, session.secrets.as_ref()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!(%err, "could not revoke the device session on the gateway"),
        Err(err) => tracing::warn!(%err, "could not forget the account on this device"),
    }
    state.lock().set_connection(ConnectionState::SignedOut {
        reason: String::new(),
    });
    view::publish(app);
    tracing::info!("signed out");
    Ok(())
}

/// The gateway refused this device (revoked elsewhere, password changed): the engine
/// has stopped and forgotten the token; forget the session so the panel asks to sign
/// in again. The local database goes too: the next sign-in may be someone else.
pub fn forget_refused(app: &AppHandle) {
    let state = app.state::<AppState>();
    let Some(session) = state.lock().end_session() else {
        return;
    };
    if let Err(err) = account::forget(&session.account, &state.dirs, session.secrets.as_ref()) {
        tracing::warn!(%err, "could not forget the account on this device");
    }
    tracing::warn!("the gateway refused this device: signed out");
}

/// Stops the engine and exits the app.
pub async fn quit(app: &AppHandle) {
    stop_engine(app).await;
    app.exit(0);
}
