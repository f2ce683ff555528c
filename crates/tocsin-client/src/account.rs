//! The account a device is signed in with, and signing in and out: one
//! implementation for the desktop app and `tocsin`, which used to carry a copy each
//! (and disagreed: the terminal client kept the previous account's local database on
//! a new sign-in, mixing two users' notifications).
//!
//! A sign-in is two steps, so that an app can stop its running engine in between:
//! [`log_in`] asks the gateway (nothing changes locally if it refuses), then
//! [`remember`] stores the refresh token in the secret store, saves the profile and
//! starts from a fresh local database. [`saved`] finds the account again at the next
//! start; [`sign_out`] revokes the device on the gateway (best effort) and forgets
//! everything local; [`forget`] does the local part for a device the gateway refused.

use std::path::Path;

use tocsin_protocol::http::TokenResponse;

use crate::api::{ApiClient, ApiError, ServerUrl};
use crate::engine::EngineConfig;
use crate::profile::{Dirs, Profile};
use crate::secrets::{self, SecretStore};

/// The local database's file name in the data dir (the engine's).
pub const DATABASE_FILE: &str = "client.db";

/// Which app signs in. Each keeps its own refresh token, so the desktop and `tocsin`
/// can both be signed in on one machine without rotating each other's token away.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum App {
    /// The tray app.
    Desktop,
    /// The terminal client.
    Terminal,
}

impl App {
    /// The secret store account holding this app's refresh token for a user.
    pub fn secret_account(self, server: &str, email: &str) -> String {
        let shared = secrets::account(server, email);
        match self {
            App::Desktop => format!("desktop|{shared}"),
            App::Terminal => shared,
        }
    }

    /// The name and version sent in `hello`, for the gateway's logs.
    fn client_name(self) -> String {
        let app = match self {
            App::Desktop => "tocsin-desktop",
            App::Terminal => "tocsin",
        };
        format!("{app}/{}", env!("CARGO_PKG_VERSION"))
    }
}

/// A signed-in account on this device.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Account {
    /// Who, where, and this device's name.
    pub profile: Profile,
    /// The secret store account holding the refresh token.
    pub secret_account: String,
    /// The app it belongs to.
    pub app: App,
}

impl Account {
    /// The account of a saved profile, whether or not its token is still held.
    pub fn of_profile(app: App, profile: Profile) -> Account {
        let secret_account = app.secret_account(&profile.server, &profile.email);
        Account {
            profile,
            secret_account,
            app,
        }
    }

    /// The engine's settings for this account, with its local database in `dirs`.
    pub fn engine_config(&self, dirs: &Dirs) -> anyhow::Result<EngineConfig> {
        let server = self.profile.server_url()?;
        let mut config = EngineConfig::new(server, self.secret_account.clone(), dirs.data.clone());
        config.client_name = self.app.client_name();
        Ok(config)
    }
}

/// Asks the gateway for tokens; nothing changes on this device.
pub async fn log_in(
    server: &ServerUrl,
    email: &str,
    password: &str,
    device_name: &str,
) -> Result<TokenResponse, ApiError> {
    ApiClient::new(server.clone())
        .login(email.trim(), password, device_name)
        .await
}

/// Remembers a sign-in on this device: the refresh token in the secret store, the
/// profile saved (with the certificate `server` pins, if any), and a fresh local database — rebuilt from the gateway's history,
/// never mixed with a previous account's notifications.
pub fn remember(
    app: App,
    dirs: &Dirs,
    secrets: &dyn SecretStore,
    server: &ServerUrl,
    email: &str,
    device_name: &str,
    tokens: &TokenResponse,
) -> anyhow::Result<Account> {
    let email = email.trim().to_owned();
    let secret_account = app.secret_account(server.as_str(), &email);
    secrets.set(&secret_account, &tokens.refresh_token)?;
    let profile = Profile {
        server: server.as_str().to_owned(),
        email,
        device_name: device_name.to_owned(),
        pin: server.pin(),
    };
    profile.save(&dirs.config)?;
    remove_database(&dirs.data);
    Ok(Account {
        profile,
        secret_account,
        app,
    })
}

/// The account saved on this device, if its refresh token is in the secret store.
/// `Ok(None)`: nobody signed in (no profile, or a profile without its token).
pub fn saved(app: App, dirs: &Dirs, secrets: &dyn SecretStore) -> anyhow::Result<Option<Account>> {
    if !Profile::path(&dirs.config).exists() {
        return Ok(None);
    }
    let account = Account::of_profile(app, Profile::load(&dirs.config)?);
    if secrets.get(&account.secret_account)?.is_none() {
        return Ok(None);
    }
    Ok(Some(account))
}

/// Signs out: revokes the device session on the gateway, then forgets the token,
/// the profile and the local database. Offline, or with a gateway that refuses, the
/// local part is done all the same; the answer says why the revocation failed.
pub async fn sign_out(
    account: &Account,
    dirs: &Dirs,
    secrets: &dyn SecretStore,
) -> anyhow::Result<Result<(), String>> {
    let revoked = match secrets.get(&account.secret_account)? {
        Some(token) => match account.profile.server_url() {
            Ok(server) => ApiClient::new(server)
                .logout(&token)
                .await
                .map_err(|err| err.to_string()),
            Err(err) => Err(err.to_string()),
        },
        None => Ok(()),
    };
    forget(account, dirs, secrets)?;
    Ok(revoked)
}

/// Forgets the account on this device — token, profile, local database — without
/// asking the gateway (which refused the device, or was told already).
pub fn forget(account: &Account, dirs: &Dirs, secrets: &dyn SecretStore) -> anyhow::Result<()> {
    secrets.delete(&account.secret_account)?;
    match std::fs::remove_file(Profile::path(&dirs.config)) {
        Err(err) if err.kind() != std::io::ErrorKind::NotFound => return Err(err.into()),
        _ => {}
    }
    remove_database(&dirs.data);
    Ok(())
}

/// Deletes the local database and its WAL files (absent ones are fine).
fn remove_database(dir: &Path) {
    for suffix in ["", "-wal", "-shm"] {
        let path = dir.join(format!("{DATABASE_FILE}{suffix}"));
        if let Err(err) = std::fs::remove_file(&path)
            && err.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), %err, "cannot remove the local database");
        }
    }
}

#[cfg(test)]
mod tests {
    use tocsin_protocol::http::UserInfo;

    use super::*;
    use crate::secrets::MemoryStore;

    fn tokens(refresh: &str) -> TokenResponse {
        TokenResponse {
            access_token: "at".into(),
            refresh_token: refresh.into(),
            expires_in: 900,
            user: UserInfo {
                id: "u1".into(),
                email: "marie@dupont.fr".into(),
                tenant: "dupont".into(),
                tenant_name: None,
                role: "lawyer".into(),
            },
        }
    }

    fn dirs(home: &Path) -> Dirs {
        Profile::dirs(Some(home.to_path_buf())).expect("dirs")
    }

    #[test]
    fn a_sign_in_is_found_again_and_starts_from_a_fresh_database() {
        let home = tempfile::tempdir().expect("tempdir");
        let dirs = dirs(home.path());
        std::fs::create_dir_all(&dirs.data).expect("data dir");
        std::fs::write(dirs.data.join(DATABASE_FILE), b"someone else's").expect("db");
        let secrets = MemoryStore::new();
        let server = ServerUrl::parse("https://tocsin.cabinet.fr").expect("url");
        let account = remember(
            App::Desktop,
            &dirs,
            &secrets,
            &server,
            " marie@dupont.fr ",
            "poste 3",
            &tokens("tsr_1"),
        )
        .expect("remembered");
        assert!(!dirs.data.join(DATABASE_FILE).exists(), "a fresh database");
        assert_eq!(
            secrets.get(&account.secret_account).expect("get"),
            Some("tsr_1".into())
        );
        assert_eq!(
            saved(App::Desktop, &dirs, &secrets).expect("saved"),
            Some(account.clone())
        );
        // The terminal client keeps a token of its own.
        assert_eq!(saved(App::Terminal, &dirs, &secrets).expect("saved"), None);
        let config = account.engine_config(&dirs).expect("config");
        assert_eq!(config.data_dir, dirs.data);
        assert!(config.client_name.starts_with("tocsin-desktop/"));
    }

    #[tokio::test]
    async fn signing_out_offline_still_forgets_everything_here() {
        let home = tempfile::tempdir().expect("tempdir");
        let dirs = dirs(home.path());
        let secrets = MemoryStore::new();
        // Nothing listens on port 9 of this machine: the gateway is unreachable.
        let server = ServerUrl::parse("http://127.0.0.1:9").expect("url");
        let account = remember(
            App::Terminal,
            &dirs,
            &secrets,
            &server,
            "marie@dupont.fr",
            "terminal",
            &tokens("tsr_1"),
        )
        .expect("remembered");
        std::fs::create_dir_all(&dirs.data).expect("data dir");
        std::fs::write(dirs.data.join(DATABASE_FILE), b"inbox").expect("db");
        let revoked = sign_out(&account, &dirs, &secrets)
            .await
            .expect("signed out");
        assert!(revoked.is_err(), "the gateway could not be told");
        assert_eq!(secrets.get(&account.secret_account).expect("get"), None);
        assert!(!Profile::path(&dirs.config).exists());
        assert!(!dirs.data.join(DATABASE_FILE).exists());
        assert_eq!(saved(App::Terminal, &dirs, &secrets).expect("saved"), None);
    }
}
