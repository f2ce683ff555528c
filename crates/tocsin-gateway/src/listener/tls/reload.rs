//! Keeping the served certificate current without a restart, and warning before it
//! expires.
//!
//! The watcher compares the two files' stamps (modification time, size, inode) every
//! `[tls] reload_check_secs` and reloads when either changed; SIGHUP reloads at once.
//! Polling metadata, rather than inotify (the `notify` crate), is what survives
//! certbot's renewals: `live/…/fullchain.pem` is a symlink re-pointed at a new file in
//! `archive/`, and an inotify watch on the old target sees nothing. Metadata follows
//! the symlink, so the new target's stamp differs. A check costs two `stat` calls.
//!
//! A failed load (a half-written file, a key for another certificate) is logged as
//! an error and the old pair kept; the stamps are recorded anyway, so the error is
//! logged once per change, and the next change (the rest of the write) is retried.

use std::path::Path;
use std::sync::{Arc, PoisonError};
use std::time::{Duration, SystemTime};

use chrono::{DateTime, Utc};
use tokio_util::sync::CancellationToken;

use super::{CertPaths, Tls, certs};

/// How often the expiry warning is looked at when the files are not polled.
const WARNING_CHECK: Duration = Duration::from_secs(3600);
/// The expiry warning is logged again after this long.
const WARNING_EVERY: chrono::Duration = chrono::Duration::days(1);

/// What `stat` says of one file; `None` when it cannot be read (missing mid-swap).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileStamp {
    /// Last modification.
    modified: Option<SystemTime>,
    /// Size in bytes.
    len: u64,
    /// A file renamed over the old one has a new inode, even with the same time and
    /// size (0 off Unix).
    inode: u64,
}

/// The stamps of the certificate and the key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Stamps {
    /// The certificate file's.
    cert: Option<FileStamp>,
    /// The key file's.
    key: Option<FileStamp>,
}

impl Stamps {
    /// The two files' stamps now.
    pub(super) fn of(paths: &CertPaths) -> Stamps {
        Stamps {
            cert: stamp(&paths.cert),
            key: stamp(&paths.key),
        }
    }
}

fn stamp(path: &Path) -> Option<FileStamp> {
    let metadata = std::fs::metadata(path).ok()?;
    #[cfg(unix)]
    let inode = std::os::unix::fs::MetadataExt::ino(&metadata);
    #[cfg(not(unix))]
    let inode = 0;
    Some(FileStamp {
        modified: metadata.modified().ok(),
        len: metadata.len(),
        inode,
    })
}

/// Why a reload was attempted, for the log.
#[derive(Debug, Clone, Copy)]
enum Trigger {
    /// The files' stamps changed.
    FilesChanged,
    /// SIGHUP.
    Signal,
}

impl Trigger {
    fn as_str(self) -> &'static str {
        match self {
            Trigger::FilesChanged => "the files changed",
            Trigger::Signal => "SIGHUP",
        }
    }
}

impl Tls {
    /// Reloads on change or request, and logs the expiry warning at start and daily,
    /// until `shutdown`.
    pub async fn watch(self: Arc<Self>, shutdown: CancellationToken) {
        let mut warned_at: Option<DateTime<Utc>> = None;
        loop {
            self.warn_if_expiring(&mut warned_at);
            let wait = self.check_every.unwrap_or(WARNING_CHECK);
            let trigger = tokio::select! {
                () = tokio::time::sleep(wait) => Trigger::FilesChanged,
                () = self.reload_requested.notified() => Trigger::Signal,
                () = shutdown.cancelled() => return,
            };
            let due = match trigger {
                Trigger::Signal => true,
                Trigger::FilesChanged => self.check_every.is_some() && self.files_changed(),
            };
            if due {
                self.reload(trigger);
            }
        }
    }

    fn files_changed(&self) -> bool {
        let seen = *self.stamps.lock().unwrap_or_else(PoisonError::into_inner);
        Stamps::of(&self.paths) != seen
    }

    /// Loads the pair again and swaps it in, or logs why not and keeps the old one.
    fn reload(&self, trigger: Trigger) {
        *self.stamps.lock().unwrap_or_else(PoisonError::into_inner) = Stamps::of(&self.paths);
        match certs::load(&self.paths, &self.provider, self.clock.now()) {
            Ok(pair) => {
                tracing::info!(
                    reason = trigger.as_str(),
                    fingerprint = %pair.fingerprint,
                    not_after = %pair.not_after,
                    "TLS certificate reloaded: new connections get it, open ones keep theirs"
                );
                self.resolver.swap(pair);
            }
            Err(err) => tracing::error!(
                reason = trigger.as_str(),
                error = %err,
                still_serving = %self.fingerprint(),
                "TLS certificate not reloaded: still serving the previous one"
            ),
        }
    }

    /// Logs the expiry warning if due (once a day while it holds).
    fn warn_if_expiring(&self, warned_at: &mut Option<DateTime<Utc>>) {
        let Some(warning) = self.expiry_warning() else {
            // A renewed certificate: the next one to near its end is warned about at once.
            *warned_at = None;
            return;
        };
        let now = self.clock.now();
        if warned_at.is_some_and(|at| now - at < WARNING_EVERY) {
            return;
        }
        *warned_at = Some(now);
        tracing::warn!(
            cert = %self.paths.cert.display(),
            "{warning}: renew it (certbot renew; the gateway reloads it by itself) or point [tls] cert at a new file"
        );
    }
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;
    use crate::clock::Clock;

    const DAY: Duration = Duration::from_secs(24 * 3600);

    fn write_pair(paths: &CertPaths, days: u32) -> String {
        let key = rcgen::KeyPair::generate().expect("a key");
        let mut params =
            rcgen::CertificateParams::new(vec!["localhost".to_owned()]).expect("parameters");
        let now = SystemTime::now();
        params.not_before = (now - DAY).into();
        params.not_after = (now + days * DAY).into();
        let cert = params.self_signed(&key).expect("a certificate");
        // Renamed into place, as certbot and the e2e test do.
        let cert_tmp = paths.cert.with_extension("tmp");
        std::fs::write(&cert_tmp, cert.pem()).expect("cert written");
        std::fs::rename(&cert_tmp, &paths.cert).expect("cert renamed");
        let key_tmp = paths.key.with_extension("tmp");
        std::fs::write(&key_tmp, key.serialize_pem()).expect("key written");
        std::fs::rename(&key_tmp, &paths.key).expect("key renamed");
        certs::fingerprint(cert.der())
    }

    fn paths(dir: &Path) -> CertPaths {
        CertPaths {
            cert: dir.join("cert.pem"),
            key: dir.join("key.pem"),
        }
    }

    #[test]
    fn a_changed_pair_is_swapped_in_and_a_bad_one_is_not() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let paths = paths(dir.path());
        let first = write_pair(&paths, 90);
        let tls = Tls::load(paths.clone(), Some(DAY), Clock::system()).expect("loads");
        assert_eq!(tls.fingerprint(), first);
        assert!(!tls.files_changed());

        let second = write_pair(&paths, 90);
        assert!(tls.files_changed());
        tls.reload(Trigger::FilesChanged);
        assert_eq!(tls.fingerprint(), second);
        assert!(!tls.files_changed());

        std::fs::write(&paths.key, "not a key").expect("key overwritten");
        assert!(tls.files_changed());
        tls.reload(Trigger::Signal);
        assert_eq!(tls.fingerprint(), second, "the old pair is kept");
        assert!(
            !tls.files_changed(),
            "a failed attempt is not retried until the next change"
        );
    }

    #[test]
    fn the_warning_follows_the_served_certificate() {
        let dir = tempfile::tempdir().expect("a temp dir");
        let paths = paths(dir.path());
        write_pair(&paths, 3);
        let tls = Tls::load(paths.clone(), None, Clock::system()).expect("loads");
        let warning = tls.expiry_warning().expect("expires within 14 days");
        assert!(
            warning.starts_with("TLS certificate expires in 2 days"),
            "{warning}"
        );
        let mut warned_at = None;
        tls.warn_if_expiring(&mut warned_at);
        assert!(warned_at.is_some());

        write_pair(&paths, 90);
        tls.reload(Trigger::Signal);
        assert_eq!(tls.expiry_warning(), None);
        tls.warn_if_expiring(&mut warned_at);
        assert_eq!(warned_at, None, "a renewed certificate clears the warning");
    }
}
