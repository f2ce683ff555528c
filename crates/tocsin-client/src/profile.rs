//! Where a client keeps its things, and the signed-in profile (server, email,
//! device). The refresh token is never here: it lives in the secret store.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::api::{CertFingerprint, ServerUrl, ServerUrlError};

/// The profile file's name in the config dir.
const PROFILE_FILE: &str = "profile.json";

/// The client's directories.
#[derive(Debug, Clone)]
pub struct Dirs {
    /// Profile and (fallback) token file.
    pub config: PathBuf,
    /// The local database.
    pub data: PathBuf,
}

/// Who is signed in where.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Profile {
    /// The gateway URL.
    pub server: String,
    /// The user's email.
    pub email: String,
    /// This device's name.
    pub device_name: String,
    /// The SHA-256 fingerprint of the gateway certificate the user confirmed, when
    /// the gateway's certificate is not one the system trusts (self-signed). Absent
    /// in older profiles: the usual verification.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub pin: Option<CertFingerprint>,
}

impl Profile {
    /// The directories: `home/config` and `home/data` when a home is given (tests,
    /// several profiles), else the per-user config and data dirs of `tocsin`.
    pub fn dirs(home: Option<PathBuf>) -> anyhow::Result<Dirs> {
        if let Some(home) = home {
            return Ok(Dirs {
                config: home.join("config"),
                data: home.join("data"),
            });
        }
        let dirs = directories::ProjectDirs::from("", "", "tocsin").ok_or_else(|| {
            anyhow::anyhow!("no home directory: pass --home or set TOCSIN_CLIENT_HOME")
        })?;
        // The gateway's default data dir is also `…/tocsin`: keep the client apart.
        Ok(Dirs {
            config: dirs.config_dir().join("client"),
            data: dirs.data_dir().join("client"),
        })
    }

    /// The gateway, with the confirmed certificate pinned if there is one.
    pub fn server_url(&self) -> Result<ServerUrl, ServerUrlError> {
        Ok(ServerUrl::parse(&self.server)?.with_pin(self.pin))
    }

    /// Where the profile is kept in `config_dir`.
    pub fn path(config_dir: &Path) -> PathBuf {
        config_dir.join(PROFILE_FILE)
    }

    /// Saves the profile.
    pub fn save(&self, config_dir: &Path) -> anyhow::Result<()> {
        std::fs::create_dir_all(config_dir)?;
        let path = Profile::path(config_dir);
        std::fs::write(&path, serde_json::to_vec_pretty(self)?)?;
        Ok(())
    }

    /// Loads the profile saved by `tocsin login`.
    pub fn load(config_dir: &Path) -> anyhow::Result<Profile> {
        let path = config_dir.join(PROFILE_FILE);
        let text = std::fs::read(&path).map_err(|_| {
            anyhow::anyhow!(
                "not signed in ({} is missing): run `tocsin login` first",
                path.display()
            )
        })?;
        serde_json::from_slice(&text).map_err(|err| {
            anyhow::anyhow!(
                "{} is damaged: {err}; run `tocsin login` again",
                path.display()
            )
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_profile_round_trips_and_a_missing_one_says_what_to_do() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = Profile::load(dir.path()).expect_err("missing");
        assert!(err.to_string().contains("tocsin login"), "{err}");
        let profile = Profile {
            server: "http://127.0.0.1:7850".into(),
            email: "m@d.fr".into(),
            device_name: "t".into(),
            pin: None,
        };
        profile.save(dir.path()).expect("saves");
        assert_eq!(Profile::load(dir.path()).expect("loads"), profile);
        let text = std::fs::read_to_string(Profile::path(dir.path())).expect("read");
        assert!(!text.contains("pin"), "no pin, no field: {text}");
    }

    #[test]
    fn a_pinned_certificate_is_kept_with_the_profile() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pin: CertFingerprint = format!("{}AB", "AB:".repeat(31))
            .parse()
            .expect("fingerprint");
        let profile = Profile {
            server: "https://192.168.1.10:7850/".into(),
            email: "m@d.fr".into(),
            device_name: "t".into(),
            pin: Some(pin),
        };
        profile.save(dir.path()).expect("saves");
        let text = std::fs::read_to_string(Profile::path(dir.path())).expect("read");
        assert!(
            text.contains(&pin.to_string()),
            "written as printed: {text}"
        );
        let loaded = Profile::load(dir.path()).expect("loads");
        assert_eq!(loaded.server_url().expect("url").pin(), Some(pin));
    }
}
