//! The user's settings, kept as `settings.json` in the app's config dir: notification
//! preferences (the engine's [`Preferences`], pause included), start at login and the
//! language. Missing fields take their defaults so older files keep loading; a damaged
//! file is moved aside (never a crash loop) and the defaults are used.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tocsin_client::policy::Preferences;
use tocsin_protocol::Kind;

use crate::i18n::Language;

/// The file's name in the config dir.
pub const SETTINGS_FILE: &str = "settings.json";

/// Everything the user can set.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    /// What to toast, quiet hours, pause.
    pub prefs: Preferences,
    /// Start Tocsin when the user logs in (registered with the OS by the autostart
    /// plugin; this mirrors what was asked).
    pub autostart: bool,
    /// The UI language.
    pub language: Language,
}

/// What loading found.
#[derive(Debug)]
pub struct Loaded {
    /// The settings (defaults when missing or damaged).
    pub settings: Settings,
    /// Where a damaged file was moved, to tell the user.
    pub moved_aside: Option<PathBuf>,
}

impl Settings {
    /// Loads `dir/settings.json`.
    pub fn load(dir: &Path) -> Loaded {
        let path = dir.join(SETTINGS_FILE);
        let Ok(bytes) = std::fs::read(&path) else {
            return Loaded {
                settings: Settings::default(),
                moved_aside: None,
            };
        };
        match serde_json::from_slice::<Settings>(&bytes) {
            Ok(mut settings) => {
                // Files written before unknown kinds were shown have no entry for them.
                unknown_kinds_follow_system(&mut settings.prefs);
                Loaded {
                    settings,
                    moved_aside: None,
                }
            }
            Err(err) => {
                let aside = path.with_extension("json.damaged");
                tracing::warn!(%err, path = %path.display(), "damaged settings file moved aside");
                let moved = std::fs::rename(&path, &aside).ok().map(|()| aside);
                Loaded {
                    settings: Settings::default(),
                    moved_aside: moved,
                }
            }
        }
    }

    /// Saves atomically (write a temp file, then rename): a crash mid-save leaves
    /// the previous settings, never half a file.
    pub fn save(&self, dir: &Path) -> std::io::Result<()> {
        std::fs::create_dir_all(dir)?;
        let path = dir.join(SETTINGS_FILE);
        let temp = path.with_extension("json.tmp");
        let json = serde_json::to_vec_pretty(self).map_err(std::io::Error::other)?;
        std::fs::write(&temp, json)?;
        std::fs::rename(&temp, &path)
    }
}

/// Kinds this build does not know (a newer gateway's) have no toggle of their own:
/// they are shown as system notices, so their toasts follow the "System notices"
/// toggle. The engine's policy reads `enabled_kinds[Unknown]`; this keeps it equal to
/// `enabled_kinds[SystemNotification]` (absent, i.e. on, when that one is absent).
pub fn unknown_kinds_follow_system(prefs: &mut Preferences) {
    match prefs.enabled_kinds.get(&Kind::SystemNotification).copied() {
        Some(enabled) => prefs.set_kind_enabled(Kind::Unknown, enabled),
        None => {
            prefs.enabled_kinds.remove(&Kind::Unknown);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn saved_settings_load_back() {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut settings = Settings {
            autostart: true,
            language: Language::Fr,
            ..Settings::default()
        };
        settings.prefs.set_kind_enabled(Kind::DossierUpdated, false);
        settings.save(dir.path()).expect("save");
        let loaded = Settings::load(dir.path());
        assert_eq!(loaded.settings, settings);
        assert!(loaded.moved_aside.is_none());
    }

    #[test]
    fn a_missing_file_gives_defaults() {
        let dir = tempfile::tempdir().expect("tempdir");
        let loaded = Settings::load(dir.path());
        assert_eq!(loaded.settings, Settings::default());
        assert!(loaded.settings.prefs.critical_breaks_through_quiet_hours);
    }

    #[test]
    fn a_damaged_file_is_moved_aside_and_defaults_are_used() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(SETTINGS_FILE), b"{not json").expect("write");
        let loaded = Settings::load(dir.path());
        assert_eq!(loaded.settings, Settings::default());
        let aside = loaded.moved_aside.expect("moved aside");
        assert_eq!(std::fs::read(aside).expect("read"), b"{not json");
        assert!(!dir.path().join(SETTINGS_FILE).exists());
    }

    #[test]
    fn unknown_kinds_toast_like_system_notices_in_an_older_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(
            dir.path().join(SETTINGS_FILE),
            br#"{"prefs":{"enabled_kinds":{"system-notification":false}}}"#,
        )
        .expect("write");
        let prefs = Settings::load(dir.path()).settings.prefs;
        assert!(!prefs.kind_enabled(Kind::SystemNotification));
        assert!(
            !prefs.kind_enabled(Kind::Unknown),
            "system notices off: a newer gateway's kinds are silent too"
        );
    }

    #[test]
    fn an_older_file_without_new_fields_still_loads() {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join(SETTINGS_FILE), br#"{"autostart":true}"#).expect("write");
        let loaded = Settings::load(dir.path());
        assert!(loaded.settings.autostart);
        assert_eq!(loaded.settings.language, Language::System);
    }
}
