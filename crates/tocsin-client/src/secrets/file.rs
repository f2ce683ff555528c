//! A JSON file only its owner can read, in the config directory: the fallback when no
//! OS keyring works (e.g. a headless server running the terminal client).
//!
//! The file is written whole each time: to a temporary file created with mode 0600
//! (never a moment with wider permissions), synced, then renamed over the old one, so
//! a reader sees the old or the new content, never half of it. A file that other users
//! could read or write is refused, not silently fixed: its content may have leaked or
//! been planted. Read-modify-write cycles hold an advisory lock on a side file, so two
//! processes (the desktop app and the terminal client) do not lose each other's write.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};

use serde::{Deserialize, Serialize};

use super::{SecretError, SecretStore};

/// The file's name inside the config directory.
pub const FILE_NAME: &str = "secrets.json";
/// The format version written in the file.
const VERSION: u32 = 1;
/// A secret file larger than this is not ours.
const MAX_FILE_BYTES: u64 = 1024 * 1024;

/// What the file holds.
#[derive(Debug, Default, Serialize, Deserialize)]
struct SecretFile {
    /// Format version ([`VERSION`]).
    version: u32,
    /// Secret per account.
    secrets: BTreeMap<String, String>,
}

/// Keeps secrets in `<config dir>/secrets.json`, mode 0600.
#[derive(Debug)]
pub struct FileStore {
    /// The secret file.
    path: PathBuf,
    /// Serialises this process's read-modify-write cycles.
    guard: Mutex<()>,
}

impl FileStore {
    /// What [`SecretStore::describe`] says for this store.
    pub const DESCRIPTION: &'static str = "file (readable only by you)";

    /// Opens the store in `config_dir` (created, mode 0700, if missing) and checks an
    /// existing file: it must be private and well-formed.
    pub fn open(config_dir: &Path) -> Result<Self, SecretError> {
        create_private_dir(config_dir)?;
        let store = FileStore {
            path: config_dir.join(FILE_NAME),
            guard: Mutex::new(()),
        };
        store.read()?;
        Ok(store)
    }

    /// Where the secrets are kept.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The file's content; empty when it does not exist.
    fn read(&self) -> Result<SecretFile, SecretError> {
        let mut file = match File::open(&self.path) {
            Ok(file) => file,
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                return Ok(SecretFile {
                    version: VERSION,
                    secrets: BTreeMap::new(),
                });
            }
            Err(err) => return Err(io_error(&self.path, err)),
        };
        let meta = file.metadata().map_err(|err| io_error(&self.path, err))?;
        check_private(&self.path, &meta)?;
        if !meta.is_file() || meta.len() > MAX_FILE_BYTES {
            return Err(self.corrupt("not a regular file of a sensible size"));
        }
        let mut text = String::new();
        file.read_to_string(&mut text)
            .map_err(|err| io_error(&self.path, err))?;
        let content: SecretFile =
            serde_json::from_str(&text).map_err(|err| self.corrupt(err.to_string()))?;
        if content.version != VERSION {
            return Err(self.corrupt(format!("unsupported version {}", content.version)));
        }
        Ok(content)
    }

    fn corrupt(&self, reason: impl Into<String>) -> SecretError {
        SecretError::CorruptFile {
            path: self.path.clone(),
            reason: reason.into(),
        }
    }

    /// Reads, lets `change` edit the map, writes back if it changed; under both locks.
    fn update(
        &self,
        change: impl FnOnce(&mut BTreeMap<String, String>) -> bool,
    ) -> Result<(), SecretError> {
        let _in_process = self.guard.lock().unwrap_or_else(PoisonError::into_inner);
        let _across_processes = self.lock_file()?;
        let mut content = self.read()?;
        if !change(&mut content.secrets) {
            return Ok(());
        }
        if content.secrets.is_empty() {
            return match std::fs::remove_file(&self.path) {
                Ok(()) => Ok(()),
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Ok(()),
                Err(err) => Err(io_error(&self.path, err)),
            };
        }
        self.write(&content)
    }

    /// Takes the advisory lock on the side file; released when the file is dropped.
    fn lock_file(&self) -> Result<File, SecretError> {
        let lock_path = self.path.with_extension("json.lock");
        let file = private_options()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(|err| io_error(&lock_path, err))?;
        file.lock().map_err(|err| io_error(&lock_path, err))?;
        Ok(file)
    }

    /// Writes `content` to a new 0600 temporary file, syncs it, renames it into place.
    fn write(&self, content: &SecretFile) -> Result<(), SecretError> {
        let dir = self.path.parent().unwrap_or(Path::new("."));
        let tmp = dir.join(format!(
            ".{FILE_NAME}.{}.{}.tmp",
            std::process::id(),
            uuid::Uuid::new_v4().simple()
        ));
        let result = (|| {
            let mut file = private_options().write(true).create_new(true).open(&tmp)?;
            let text = serde_json::to_vec_pretty(content).map_err(std::io::Error::other)?;
            file.write_all(&text)?;
            file.sync_all()?;
            std::fs::rename(&tmp, &self.path)?;
            sync_dir(dir)
        })();
        if result.is_err() {
            let _ = std::fs::remove_file(&tmp);
        }
        result.map_err(|err| io_error(&self.path, err))
    }
}

impl SecretStore for FileStore {
    fn get(&self, account: &str) -> Result<Option<String>, SecretError> {
        Ok(self.read()?.secrets.remove(account))
    }

    fn set(&self, account: &str, secret: &str) -> Result<(), SecretError> {
        self.update(|secrets| {
            let previous = secrets.insert(account.to_owned(), secret.to_owned());
            previous.as_deref() != Some(secret)
        })
    }

    fn delete(&self, account: &str) -> Result<(), SecretError> {
        self.update(|secrets| secrets.remove(account).is_some())
    }

    fn describe(&self) -> &'static str {
        Self::DESCRIPTION
    }
}

/// Open options that create files readable and writable by their owner only.
fn private_options() -> OpenOptions {
    #[allow(unused_mut)]
    let mut options = OpenOptions::new();
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options
}

fn io_error(path: &Path, source: std::io::Error) -> SecretError {
    SecretError::Io {
        path: path.to_owned(),
        source,
    }
}

fn create_private_dir(dir: &Path) -> Result<(), SecretError> {
    #[allow(unused_mut)]
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir).map_err(|err| io_error(dir, err))
}

/// Refuses a file that anyone but its owner may read or write.
#[cfg(unix)]
fn check_private(path: &Path, meta: &std::fs::Metadata) -> Result<(), SecretError> {
    use std::os::unix::fs::PermissionsExt;
    let mode = meta.permissions().mode() & 0o7777;
    if mode & 0o077 != 0 {
        return Err(SecretError::InsecureFile {
            path: path.to_owned(),
            mode,
        });
    }
    Ok(())
}

/// On other systems the per-user config directory's ACLs protect the file.
#[cfg(not(unix))]
fn check_private(_path: &Path, _meta: &std::fs::Metadata) -> Result<(), SecretError> {
    Ok(())
}

/// Makes the rename durable.
#[cfg(unix)]
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

#[cfg(not(unix))]
fn sync_dir(_dir: &Path) -> std::io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_across_instances() {
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("nested").join("tocsin");
        let store = FileStore::open(&config).expect("open");
        assert_eq!(store.get("https://a/|m@a").expect("get"), None);
        store.set("https://a/|m@a", "tsr_1").expect("set");
        store.set("https://b/|m@b", "tsr_2").expect("set");
        store.set("https://a/|m@a", "tsr_3").expect("replace");

        let again = FileStore::open(&config).expect("reopen");
        assert_eq!(
            again.get("https://a/|m@a").expect("get").as_deref(),
            Some("tsr_3")
        );
        assert_eq!(
            again.get("https://b/|m@b").expect("get").as_deref(),
            Some("tsr_2")
        );
        again.delete("https://a/|m@a").expect("delete");
        again
            .delete("https://a/|m@a")
            .expect("deleting twice is fine");
        assert_eq!(store.get("https://a/|m@a").expect("get"), None);
        assert_eq!(
            store.get("https://b/|m@b").expect("get").as_deref(),
            Some("tsr_2")
        );
        store.delete("https://b/|m@b").expect("delete the last");
        assert!(!store.path().exists(), "an empty store leaves no file");
        let leftovers: Vec<_> = std::fs::read_dir(&config)
            .expect("list")
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .filter(|name| name.ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    }

    #[cfg(unix)]
    #[test]
    fn file_and_new_dir_are_private() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let config = dir.path().join("tocsin");
        let store = FileStore::open(&config).expect("open");
        store.set("s|a", "tsr_1").expect("set");
        let mode = |path: &Path| {
            std::fs::metadata(path)
                .expect("metadata")
                .permissions()
                .mode()
                & 0o777
        };
        assert_eq!(mode(store.path()), 0o600);
        assert_eq!(mode(&config), 0o700);
        assert_eq!(mode(&store.path().with_extension("json.lock")), 0o600);
    }

    #[cfg(unix)]
    #[test]
    fn refuses_a_file_others_can_read() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let store = FileStore::open(dir.path()).expect("open");
        store.set("s|a", "tsr_1").expect("set");
        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o644))
            .expect("chmod");

        let err = store.get("s|a").expect_err("a 0644 file is refused");
        assert!(
            matches!(err, SecretError::InsecureFile { mode: 0o644, .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains("chmod 600"), "{err}");
        assert!(matches!(
            store.set("s|b", "tsr_2"),
            Err(SecretError::InsecureFile { .. })
        ));
        assert!(matches!(
            FileStore::open(dir.path()),
            Err(SecretError::InsecureFile { .. })
        ));
        std::fs::set_permissions(store.path(), std::fs::Permissions::from_mode(0o600))
            .expect("chmod back");
        assert_eq!(store.get("s|a").expect("get").as_deref(), Some("tsr_1"));
    }

    #[test]
    fn refuses_a_foreign_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join(FILE_NAME);
        private_options()
            .write(true)
            .create_new(true)
            .open(&path)
            .and_then(|mut file| file.write_all(b"not json"))
            .expect("write");
        assert!(matches!(
            FileStore::open(dir.path()),
            Err(SecretError::CorruptFile { .. })
        ));
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().expect("tempdir");
        let stores: Vec<FileStore> = (0..4)
            .map(|_| FileStore::open(dir.path()).expect("open"))
            .collect();
        std::thread::scope(|scope| {
            for (n, store) in stores.iter().enumerate() {
                scope.spawn(move || {
                    for i in 0..10 {
                        store
                            .set(&format!("s|{n}-{i}"), &format!("tsr_{n}_{i}"))
                            .expect("set");
                    }
                });
            }
        });
        let content = stores[0].read().expect("read");
        assert_eq!(content.secrets.len(), 40);
    }
}
