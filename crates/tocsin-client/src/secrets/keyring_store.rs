//! The OS keyring (Secret Service on Linux, Keychain on macOS, Credential Manager on
//! Windows) through keyring 3.
//!
//! Two traps of keyring 3 are handled here:
//! - with no platform store compiled in, it silently uses a mock that forgets
//!   everything: [`KeyringStore::open`] checks the store's persistence, then probes it
//!   (set, read back through a fresh entry, delete) and fails with a clear error when
//!   it does not really keep secrets (no Secret Service on the bus, locked store…);
//! - its Secret Service backend blocks on a tokio runtime of its own, which panics or
//!   deadlocks when called from inside the app's runtime: every call runs on a
//!   short-lived thread of its own, with a time limit (an unlock prompt nobody answers
//!   must not hang the app).

use std::sync::mpsc;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use keyring::Entry;
use keyring::credential::{CredentialBuilder, CredentialPersistence};

use super::{SERVICE, SecretError, SecretStore};

/// How long one keyring call may take (it may wait for an unlock prompt).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);

/// Serialises keyring calls in this process: concurrent writes of one entry could
/// create two items, which the store then reports as ambiguous.
static CALLS: Mutex<()> = Mutex::new(());

/// The name of the platform store, for messages.
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
const DESCRIPTION: &str = "OS keyring (Secret Service)";
#[cfg(target_os = "macos")]
const DESCRIPTION: &str = "OS keyring (macOS Keychain)";
#[cfg(target_os = "windows")]
const DESCRIPTION: &str = "OS keyring (Windows Credential Manager)";
#[cfg(not(any(
    target_os = "linux",
    target_os = "freebsd",
    target_os = "openbsd",
    target_os = "macos",
    target_os = "windows"
)))]
const DESCRIPTION: &str = "OS keyring";

/// What to check when the keyring is unavailable.
#[cfg(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd"))]
const HINT: &str = " (is a Secret Service such as gnome-keyring or KWallet running on the \
                    session bus, and unlocked?)";
#[cfg(not(any(target_os = "linux", target_os = "freebsd", target_os = "openbsd")))]
const HINT: &str = "";

/// Secrets in the OS keyring, under one service name.
pub struct KeyringStore {
    /// The keyring's service name ([`SERVICE`] outside tests).
    service: String,
    /// Builds the platform credential for an account.
    builder: Arc<CredentialBuilder>,
}

impl std::fmt::Debug for KeyringStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyringStore")
            .field("service", &self.service)
            .finish_non_exhaustive()
    }
}

impl KeyringStore {
    /// Opens the OS keyring under the service name [`SERVICE`], after checking that it
    /// really stores secrets.
    pub fn open() -> Result<Self, SecretError> {
        Self::open_service(SERVICE)
    }

    /// [`open`](Self::open) under another service name (tests use a unique one).
    pub fn open_service(service: &str) -> Result<Self, SecretError> {
        let builder: Arc<CredentialBuilder> =
            Arc::from(keyring::default::default_credential_builder());
        if matches!(
            builder.persistence(),
            CredentialPersistence::EntryOnly | CredentialPersistence::ProcessOnly
        ) {
            return Err(SecretError::Unavailable {
                store: DESCRIPTION,
                reason: "no platform keyring is built in for this system (keyring's mock \
                         store would forget everything)"
                    .into(),
            });
        }
        let store = KeyringStore {
            service: service.to_owned(),
            builder,
        };
        store.probe()?;
        Ok(store)
    }

    /// Sets a probe entry, reads it back through a fresh entry, deletes it.
    fn probe(&self) -> Result<(), SecretError> {
        let account = format!("probe-{}", std::process::id());
        let value = uuid::Uuid::new_v4().to_string();
        self.set(&account, &value)?;
        let read = self.get(&account);
        let deleted = self.delete(&account);
        match read? {
            Some(read) if read == value => deleted,
            _ => Err(SecretError::Unavailable {
                store: DESCRIPTION,
                reason: "a secret written to it could not be read back".into(),
            }),
        }
    }

    /// Runs `op` on the entry for `account`, on a thread of its own, within
    /// [`CALL_TIMEOUT`].
    fn call<T: Send + 'static>(
        &self,
        account: &str,
        op: impl FnOnce(&Entry) -> keyring::Result<T> + Send + 'static,
    ) -> Result<T, SecretError> {
        let builder = Arc::clone(&self.builder);
        let service = self.service.clone();
        let account = account.to_owned();
        let (tx, rx) = mpsc::sync_channel(1);
        std::thread::Builder::new()
            .name("tocsin-keyring".into())
            .spawn(move || {
                let _one_at_a_time = CALLS.lock().unwrap_or_else(PoisonError::into_inner);
                let result = builder
                    .build(None, &service, &account)
                    .and_then(|credential| op(&Entry::new_with_credential(credential)));
                let _ = tx.send(result);
            })
            .map_err(|err| keyring_error(format!("cannot start a keyring thread: {err}")))?;
        match rx.recv_timeout(CALL_TIMEOUT) {
            Ok(result) => result.map_err(map_error),
            Err(mpsc::RecvTimeoutError::Timeout) => Err(SecretError::Unavailable {
                store: DESCRIPTION,
                reason: format!(
                    "no answer within {} s (is an unlock prompt waiting?)",
                    CALL_TIMEOUT.as_secs()
                ),
            }),
            Err(mpsc::RecvTimeoutError::Disconnected) => {
                Err(keyring_error("the keyring call panicked".into()))
            }
        }
    }
}

impl SecretStore for KeyringStore {
    fn get(&self, account: &str) -> Result<Option<String>, SecretError> {
        self.call(account, |entry| match entry.get_password() {
            Ok(secret) => Ok(Some(secret)),
            Err(keyring::Error::NoEntry) => Ok(None),
            Err(err) => Err(err),
        })
    }

    fn set(&self, account: &str, secret: &str) -> Result<(), SecretError> {
        let secret = secret.to_owned();
        self.call(account, move |entry| entry.set_password(&secret))
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        self.call(account, |entry| match entry.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(err) => Err(err),
        })
    }

    fn describe(&self) -> &'static str {
        DESCRIPTION
    }
}

fn keyring_error(reason: String) -> SecretError {
    SecretError::Keyring {
        store: DESCRIPTION,
        reason,
    }
}

/// Store-level failures mean "unavailable" (fall back); the rest are per-entry errors.
fn map_error(err: keyring::Error) -> SecretError {
    match err {
        keyring::Error::NoStorageAccess(inner) => SecretError::Unavailable {
            store: DESCRIPTION,
            reason: format!("no access to the store (locked, or access denied): {inner}{HINT}"),
        },
        keyring::Error::PlatformFailure(inner) => SecretError::Unavailable {
            store: DESCRIPTION,
            reason: format!("{inner}{HINT}"),
        },
        other => keyring_error(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Set to make a missing keyring fail the real-keyring test instead of skipping it.
    const REQUIRE: &str = "TOCSIN_REQUIRE_KEYRING";

    /// A round trip through the real OS keyring. On Linux CI run it inside
    /// `dbus-run-session` with gnome-keyring started and unlocked (see the crate's
    /// testing notes), with `TOCSIN_REQUIRE_KEYRING=1`; without a keyring it skips
    /// (printing why) unless that variable is set.
    #[test]
    fn real_keyring_round_trip() {
        let required = std::env::var_os(REQUIRE).is_some();
        let service = format!("tocsin-test-{}", uuid::Uuid::new_v4().simple());
        let store = match KeyringStore::open_service(&service) {
            Ok(store) => store,
            Err(err) if !required => {
                eprintln!(
                    "SKIPPED real_keyring_round_trip: {err} (set {REQUIRE}=1 to fail instead)"
                );
                return;
            }
            Err(err) => panic!("{REQUIRE} is set but the OS keyring is unusable: {err}"),
        };
        let account = "https://tocsin.example/|marie@dupont.fr";
        assert_eq!(store.get(account).expect("get"), None);
        store.set(account, "tsr_first").expect("set");
        store.set(account, "tsr_second").expect("replace");

        // A fresh instance reads it back, from inside a tokio runtime (the engine's
        // case: keyring's Secret Service backend must not run on a runtime thread).
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let other = runtime.block_on(async {
            let other = KeyringStore::open_service(&service).expect("second instance");
            assert_eq!(
                other.get(account).expect("get").as_deref(),
                Some("tsr_second")
            );
            other
        });
        #[cfg(target_os = "linux")]
        check_with_secret_tool(&service, account, "tsr_second", required);

        other.delete(account).expect("delete");
        other.delete(account).expect("deleting twice is fine");
        assert_eq!(store.get(account).expect("get"), None);
    }

    /// Reads the item with libsecret's own tool: proof that it is in the Secret
    /// Service, not in some in-process stand-in.
    #[cfg(target_os = "linux")]
    fn check_with_secret_tool(service: &str, account: &str, expected: &str, required: bool) {
        let output = std::process::Command::new("secret-tool")
            .args(["lookup", "service", service, "username", account])
            .output();
        match output {
            Ok(output) => {
                assert!(output.status.success(), "secret-tool lookup failed");
                assert_eq!(String::from_utf8_lossy(&output.stdout).trim_end(), expected);
            }
            Err(err) if !required => eprintln!("secret-tool not run ({err}): check skipped"),
            Err(err) => panic!("{REQUIRE} is set but secret-tool cannot run: {err}"),
        }
    }

    #[test]
    fn store_level_errors_mean_unavailable() {
        let err = map_error(keyring::Error::NoStorageAccess("locked".into()));
        assert!(matches!(err, SecretError::Unavailable { .. }), "{err:?}");
        assert!(err.to_string().contains("locked"), "{err}");
        let err = map_error(keyring::Error::PlatformFailure("no bus".into()));
        assert!(matches!(err, SecretError::Unavailable { .. }), "{err:?}");
        let err = map_error(keyring::Error::BadEncoding(vec![0xff]));
        assert!(matches!(err, SecretError::Keyring { .. }), "{err:?}");
    }
}
