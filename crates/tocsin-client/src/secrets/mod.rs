//! Where the long-lived refresh token lives.
//!
//! The refresh token (`tsr_…`) signs a device in for up to 90 days, so it belongs in the
//! OS keyring ([`KeyringStore`]). When no keyring works (a headless machine, no Secret
//! Service on the session bus, a locked keyring), [`choose`] falls back to a file only
//! its owner can read ([`FileStore`], when the caller allows it), else to memory
//! ([`MemoryStore`]): the user then signs in again at the next start, and is told so.
//!
//! Secrets are keyed by an *account* string, by convention `"<server url>|<email>"`
//! (see [`account`]), under the service name [`SERVICE`].

mod file;
mod keyring_store;
mod memory;

use std::path::{Path, PathBuf};

pub use file::FileStore;
pub use keyring_store::KeyringStore;
pub use memory::MemoryStore;

/// The service name every secret is stored under (the keyring's "service").
pub const SERVICE: &str = "tocsin";

/// A place to keep secrets (refresh tokens) between runs, or only for this run.
///
/// Implementations are blocking but short; they are safe to call from async code
/// (the keyring one runs its calls on a thread of its own).
pub trait SecretStore: Send + Sync {
    /// The secret stored for `account`, if any.
    fn get(&self, account: &str) -> Result<Option<String>, SecretError>;
    /// Stores (or replaces) the secret for `account`; durable when this returns.
    fn set(&self, account: &str, secret: &str) -> Result<(), SecretError>;
    /// Forgets the secret for `account`; deleting a missing secret is not an error.
    fn delete(&self, account: &str) -> Result<(), SecretError>;
    /// A short human description of the store, for status lines and logs.
    fn describe(&self) -> &'static str;
}

/// Why a secret could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The OS keyring cannot be used at all (no Secret Service on the session bus,
    /// store locked or access denied, no platform store compiled in): fall back.
    #[error("{store} is unavailable: {reason}")]
    Unavailable {
        /// Which keyring ([`KeyringStore::describe`]).
        store: &'static str,
        /// What the platform said.
        reason: String,
    },
    /// The OS keyring answered, but refused this operation (bad encoding, ambiguous
    /// entries, attribute too long…).
    #[error("{store} failed: {reason}")]
    Keyring {
        /// Which keyring ([`KeyringStore::describe`]).
        store: &'static str,
        /// What the platform said.
        reason: String,
    },
    /// Reading or writing the secret file failed.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file or directory concerned.
        path: PathBuf,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The secret file can be read or written by other users: it is not trusted.
    #[error(
        "{} is accessible by other users (mode {mode:o}); refusing to use it: \
         run `chmod 600 {}` if you trust its content, or delete it and sign in again",
        path.display(),
        path.display()
    )]
    InsecureFile {
        /// The file.
        path: PathBuf,
        /// Its permission bits.
        mode: u32,
    },
    /// The secret file is not one this program wrote.
    #[error("{} is not a valid Tocsin secret file: {reason}", path.display())]
    CorruptFile {
        /// The file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
}

/// The account key for a user on a gateway: `"<server url>|<email>"`.
pub fn account(server_url: &str, email: &str) -> String {
    format!("{server_url}|{email}")
}

/// The warning shown when nothing can keep the token between runs.
pub const MEMORY_WARNING: &str = "no secret store: you will have to sign in again next time";

/// Picks the best store available: the OS keyring if it works, else the 0600 file in
/// `config_dir` when `allow_file_fallback`, else memory. The second value is a warning
/// to show the user (the terminal client prints it on stderr) when the keyring was not
/// used; `None` when it was.
pub fn choose(
    config_dir: &Path,
    allow_file_fallback: bool,
) -> (Box<dyn SecretStore>, Option<String>) {
    choose_with(config_dir, allow_file_fallback, || {
        KeyringStore::open().map(|store| Box::new(store) as Box<dyn SecretStore>)
    })
}

/// [`choose`] with the keyring opener injected, so the fallback logic is testable
/// without touching the process environment.
pub fn choose_with(
    config_dir: &Path,
    allow_file_fallback: bool,
    open_keyring: impl FnOnce() -> Result<Box<dyn SecretStore>, SecretError>,
) -> (Box<dyn SecretStore>, Option<String>) {
    let keyring_error = match open_keyring() {
        Ok(store) => return (store, None),
        Err(err) => err,
    };
    tracing::info!(error = %keyring_error, "OS keyring not usable");
    if !allow_file_fallback {
        let warning = format!("{keyring_error}; {MEMORY_WARNING}");
        return (Box::new(MemoryStore::new()), Some(warning));
    }
    match FileStore::open(config_dir) {
        Ok(store) => {
            let warning = format!(
                "{keyring_error}; keeping the sign-in token in {} (mode 0600: readable only by you)",
                store.path().display()
            );
            (Box::new(store), Some(warning))
        }
        Err(file_error) => {
            let warning = format!("{keyring_error}; {file_error}; {MEMORY_WARNING}");
            (Box::new(MemoryStore::new()), Some(warning))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keyring_down() -> Result<Box<dyn SecretStore>, SecretError> {
        Err(SecretError::Unavailable {
            store: "Secret Service",
            reason: "no session bus".into(),
        })
    }

    #[test]
    fn choose_prefers_a_working_keyring() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, warning) = choose_with(dir.path(), true, || {
            Ok(Box::new(MemoryStore::new()) as Box<dyn SecretStore>)
        });
        assert_eq!(store.describe(), MemoryStore::new().describe());
        assert_eq!(warning, None);
        assert!(
            !dir.path().join(file::FILE_NAME).exists(),
            "no file is created when the keyring works"
        );
    }

    #[test]
    fn choose_falls_back_to_the_file_when_allowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, warning) = choose_with(dir.path(), true, keyring_down);
        assert_eq!(store.describe(), FileStore::DESCRIPTION);
        let warning = warning.expect("a warning");
        assert!(warning.contains("no session bus"), "{warning}");
        assert!(warning.contains(file::FILE_NAME), "{warning}");
        store.set("a|b", "tsr_x").expect("set");
        let again = FileStore::open(dir.path()).expect("reopen");
        assert_eq!(again.get("a|b").expect("get").as_deref(), Some("tsr_x"));
    }

    #[test]
    fn choose_falls_back_to_memory_when_the_file_is_not_allowed() {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, warning) = choose_with(dir.path(), false, keyring_down);
        assert_eq!(store.describe(), MemoryStore::new().describe());
        let warning = warning.expect("a warning");
        assert!(warning.contains(MEMORY_WARNING), "{warning}");
        store.set("a|b", "tsr_x").expect("set");
        assert!(!dir.path().join(file::FILE_NAME).exists());
    }

    #[cfg(unix)]
    #[test]
    fn choose_falls_back_to_memory_when_the_file_is_insecure() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(file::FILE_NAME);
        std::fs::write(&path, r#"{"version":1,"secrets":{}}"#).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let (store, warning) = choose_with(dir.path(), true, keyring_down);
        assert_eq!(store.describe(), MemoryStore::new().describe());
        let warning = warning.expect("a warning");
        assert!(warning.contains("accessible by other users"), "{warning}");
        assert!(warning.contains(MEMORY_WARNING), "{warning}");
    }

    #[test]
    fn account_joins_server_and_email() {
        assert_eq!(
            account("https://tocsin.dupont.fr/", "marie@dupont.fr"),
            "https://tocsin.dupont.fr/|marie@dupont.fr"
        );
    }

    /// The real `choose` with no session bus: run in a child process (this test binary,
    /// filtered to [`child_choose_without_session_bus`]) so the environment change
    /// cannot leak into other tests.
    #[cfg(target_os = "linux")]
    #[test]
    fn choose_falls_back_to_the_file_without_a_session_bus() {
        let exe = std::env::current_exe().expect("test binary");
        let output = std::process::Command::new(exe)
            .args([
                "--exact",
                "secrets::tests::child_choose_without_session_bus",
                "--nocapture",
                "--test-threads=1",
            ])
            .env(CHILD_MARKER, "1")
            .env(
                "DBUS_SESSION_BUS_ADDRESS",
                "unix:path=/nonexistent/tocsin-test-bus",
            )
            .output()
            .expect("run the child test");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(output.status.success(), "child failed:\n{stdout}\n{stderr}");
        assert!(
            stdout.contains("child: fell back to file"),
            "the child test did not run:\n{stdout}\n{stderr}"
        );
    }

    #[cfg(target_os = "linux")]
    const CHILD_MARKER: &str = "TOCSIN_SECRETS_CHILD_TEST";

    /// Runs only when started by [`choose_falls_back_to_the_file_without_a_session_bus`].
    #[cfg(target_os = "linux")]
    #[test]
    fn child_choose_without_session_bus() {
        if std::env::var_os(CHILD_MARKER).is_none() {
            return;
        }
        let err = KeyringStore::open().expect_err("no keyring without a bus");
        assert!(
            matches!(err, SecretError::Unavailable { .. }),
            "unexpected error: {err:?}"
        );
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, warning) = choose(dir.path(), true);
        assert_eq!(store.describe(), FileStore::DESCRIPTION);
        let warning = warning.expect("a warning");
        assert!(warning.contains("unavailable"), "{warning}");
        println!("child: fell back to file ({warning})");
    }
}
