//! A private desktop session per test or benchmark run: the harness's own X server,
//! session bus, runtime and XDG directories ([`crate::session`]), optionally a
//! keyring and dunst, plus what the tests and the desktop benchmark observe the app
//! with: the fake notification server and tray watcher (in-process D-Bus servers), a
//! bus connection of the caller's own, screenshots, key presses and the app's WebKit
//! processes.
//!
//! The session's directory is a temporary one; everything is killed on [`Drop`], and
//! when the thread panics (a failed test) the directory, logs included, is kept.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};

use super::notifications::{DEFAULT_CAPABILITIES, NotificationServer};
use super::tray::StatusNotifierWatcher;
use crate::session::{PrivateSession, SessionConfig};

/// How long a screenshot or a key press may take.
const TOOL_TIMEOUT: Duration = Duration::from_secs(20);
/// The password the test keyring is unlocked with.
pub const KEYRING_PASSWORD: &str = "tocsin-e2e";

/// Who answers `org.freedesktop.Notifications` on the session bus.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NotificationDaemon {
    /// The fake recording server, answering `GetCapabilities` with this list.
    Fake(Vec<String>),
    /// A real `dunst` drawing on the X server (for screenshots).
    Dunst,
    /// Nobody: calls fail with `ServiceUnknown`, as on a desktop without a daemon.
    None,
}

impl Default for NotificationDaemon {
    fn default() -> Self {
        NotificationDaemon::Fake(DEFAULT_CAPABILITIES.map(str::to_owned).to_vec())
    }
}

/// What a session provides besides X and the bus.
#[derive(Debug, Clone)]
pub struct SessionOptions {
    /// The notification daemon (default: the fake server).
    pub notifications: NotificationDaemon,
    /// Run the fake `org.kde.StatusNotifierWatcher` (default: yes).
    pub tray_watcher: bool,
    /// Run gnome-keyring's Secret Service, unlocked (default: no).
    pub keyring: bool,
}

impl Default for SessionOptions {
    fn default() -> Self {
        SessionOptions {
            notifications: NotificationDaemon::default(),
            tray_watcher: true,
            keyring: false,
        }
    }
}

/// A running private session.
pub struct DesktopSession {
    /// Everything the session writes; kept when the thread panics (a failed test).
    root: Option<tempfile::TempDir>,
    /// Its path, valid after the directory was kept.
    root_path: PathBuf,
    /// X, the bus and the keyring or dunst; `None` once stopped.
    session: Option<PrivateSession>,
    /// The display and bus address, kept here so they outlive a stopped session.
    display: String,
    /// See `display`.
    bus_address: String,
    /// The fake notification server, when asked for.
    notifications: Option<NotificationServer>,
    /// The fake tray watcher, when asked for.
    watcher: Option<StatusNotifierWatcher>,
    /// A connection of the test's own to the bus.
    bus: zbus::Connection,
}

impl DesktopSession {
    /// Starts Xvfb, the bus and the extras in `options`.
    pub async fn start(options: SessionOptions) -> Result<DesktopSession> {
        let root = tempfile::Builder::new()
            .prefix("tocsin-desktop-")
            .tempdir()
            .context("a temporary session directory")?;
        let root_path = root.path().to_path_buf();
        let config = SessionConfig {
            keyring_password: options.keyring.then(|| KEYRING_PASSWORD.to_owned()),
            dunstrc: (options.notifications == NotificationDaemon::Dunst)
                .then(|| DUNSTRC.to_owned()),
        };
        let session = PrivateSession::start(&root_path, &config).await?;
        let bus_address = session.bus_address().to_owned();
        let bus = zbus::connection::Builder::address(bus_address.as_str())
            .build()
            .await
            .with_context(|| format!("cannot connect to the session bus {bus_address}"))?;
        let mut desktop = DesktopSession {
            root: Some(root),
            root_path,
            display: session.display().to_owned(),
            bus_address,
            session: Some(session),
            notifications: None,
            watcher: None,
            bus,
        };
        if let NotificationDaemon::Fake(capabilities) = &options.notifications {
            let capabilities: Vec<&str> = capabilities.iter().map(String::as_str).collect();
            desktop.notifications =
                Some(NotificationServer::start(&desktop.bus_address, &capabilities).await?);
        }
        if options.tray_watcher {
            desktop.watcher = Some(StatusNotifierWatcher::start(&desktop.bus_address).await?);
        }
        Ok(desktop)
    }

    /// `:N`, the X display.
    pub fn display(&self) -> &str {
        &self.display
    }

    /// The session bus address.
    pub fn bus_address(&self) -> &str {
        &self.bus_address
    }

    /// The test's own connection to the session bus.
    pub fn bus(&self) -> &zbus::Connection {
        &self.bus
    }

    /// The session's directory.
    pub fn root(&self) -> &Path {
        &self.root_path
    }

    /// `XDG_RUNTIME_DIR` (0700).
    pub fn runtime_dir(&self) -> PathBuf {
        self.root_path.join("run")
    }

    /// Where helper processes' logs go.
    pub fn logs_dir(&self) -> PathBuf {
        self.root_path.join("logs")
    }

    /// A fresh subdirectory of the session's directory (created if missing).
    pub fn dir(&self, name: &str) -> Result<PathBuf> {
        let path = self.root_path.join(name);
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(path)
    }

    /// The fake notification server.
    pub fn notifications(&self) -> Result<&NotificationServer> {
        self.notifications
            .as_ref()
            .context("this session runs no fake notification server (see SessionOptions)")
    }

    /// The fake tray watcher.
    pub fn tray(&self) -> Result<&StatusNotifierWatcher> {
        self.watcher
            .as_ref()
            .context("this session runs no tray watcher (see SessionOptions)")
    }

    /// The environment a child process of this session gets.
    pub fn envs(&self) -> Vec<(&'static str, std::ffi::OsString)> {
        self.session
            .as_ref()
            .map(PrivateSession::envs)
            .unwrap_or_default()
    }

    /// Variables removed from a child's environment: the machine's own display, bus and
    /// keyring must never be reached.
    pub const REMOVED_ENV: [&'static str; 6] = crate::session::REMOVED_ENV;

    /// A tokio command for `program` inside the session.
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(program);
        for name in Self::REMOVED_ENV {
            command.env_remove(name);
        }
        command.envs(self.envs());
        command
    }

    /// A std command for `program` inside the session.
    pub fn std_command(&self, program: impl AsRef<std::ffi::OsStr>) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        for name in Self::REMOVED_ENV {
            command.env_remove(name);
        }
        command.envs(self.envs());
        command
    }

    /// Saves the whole screen as a PNG (`import -window root`).
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let output = tokio::time::timeout(
            TOOL_TIMEOUT,
            self.command("import")
                .args(["-window", "root"])
                .arg(path)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .context("import took too long")?
        .context("ImageMagick's import can be run")?;
        if !output.status.success() {
            bail!(
                "import -window root {} failed: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Presses `key` (an X keysym name, e.g. `Escape`) in the visible window titled
    /// `title` (the whole title; xdotool ignores case), as the user would: xdotool focuses it first (there is no window
    /// manager to do that) and types through XTEST, which GTK cannot tell from a real
    /// keyboard. Needs `xdotool` on the `PATH`.
    pub async fn press_key(&self, title: &str, key: &str) -> Result<()> {
        let output = tokio::time::timeout(
            TOOL_TIMEOUT,
            self.command("xdotool")
                .args(["search", "--onlyvisible", "--name"])
                .arg(format!("^{}$", regex_escape(title)))
                .args(["windowfocus", "--sync", "key", "--clearmodifiers", key])
                .kill_on_drop(true)
                .output(),
        )
        .await
        .context("xdotool took too long")?
        .context("xdotool can be run")?;
        if !output.status.success() {
            bail!(
                "xdotool could not press {key} in the window titled {title:?} ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// The WebKit processes (web, network) of the apps in this session, as
    /// `(pid, name)`: found by the session's private runtime dir in their environment.
    pub fn webkit_processes(&self) -> Vec<(u32, String)> {
        let marker = self.root_path.join("run").display().to_string();
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir("/proc") else {
            return found;
        };
        for entry in entries.flatten() {
            let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
                continue;
            };
            let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
            if !comm.starts_with("WebKit") {
                continue;
            }
            let environ = std::fs::read(entry.path().join("environ")).unwrap_or_default();
            if String::from_utf8_lossy(&environ).contains(&marker) {
                found.push((pid, comm.trim().to_owned()));
            }
        }
        found
    }

    /// True when a WebKit web process (an open panel) runs in this session.
    pub fn has_web_process(&self) -> bool {
        self.webkit_processes()
            .iter()
            .any(|(_, name)| name.starts_with("WebKitWebProces"))
    }

    /// True when `name` has an owner on the session bus.
    pub async fn name_has_owner(&self, name: &str) -> Result<bool> {
        let proxy = zbus::fdo::DBusProxy::new(&self.bus)
            .await
            .context("the bus's own proxy")?;
        let name = zbus::names::BusName::try_from(name.to_owned()).context("a valid bus name")?;
        proxy
            .name_has_owner(name)
            .await
            .context("NameHasOwner failed")
    }

    /// Kills everything now (also done on drop).
    pub async fn stop(mut self) {
        self.notifications = None;
        self.watcher = None;
        if let Some(session) = self.session.take() {
            session.kill().await;
        }
    }
}

impl Drop for DesktopSession {
    fn drop(&mut self) {
        // The in-process servers first, then the helpers (the harness drops them in
        // reverse start order: clients before the bus, the bus before X).
        self.notifications = None;
        self.watcher = None;
        self.session = None;
        if std::thread::panicking()
            && let Some(root) = self.root.take()
        {
            let _kept = root.keep();
            eprintln!(
                "--- desktop session directory kept at {} (logs in logs/)",
                self.root_path.display()
            );
        }
    }
}

/// A readable dunst configuration for screenshots: big, centred, no icons.
const DUNSTRC: &str = r##"[global]
    monitor = 0
    follow = none
    width = (300, 520)
    height = 300
    origin = top-right
    offset = 24x48
    notification_limit = 5
    padding = 14
    horizontal_padding = 16
    frame_width = 2
    frame_color = "#3b4252"
    separator_color = frame
    font = DejaVu Sans 11
    markup = full
    format = "<b>%a</b>\n<b>%s</b>\n%b"
    alignment = left
    word_wrap = yes
    icon_position = off
    show_indicators = yes
    mouse_left_click = do_action, close_current

[urgency_low]
    background = "#eceff4"
    foreground = "#2e3440"
    timeout = 10

[urgency_normal]
    background = "#eceff4"
    foreground = "#2e3440"
    timeout = 10

[urgency_critical]
    background = "#bf3030"
    foreground = "#ffffff"
    frame_color = "#7a1010"
    timeout = 0
"##;

/// `text` with the characters of xdotool's (POSIX extended) regular expressions escaped.
fn regex_escape(text: &str) -> String {
    let mut escaped = String::with_capacity(text.len());
    for c in text.chars() {
        if "\\^$.|?*+()[]{}".contains(c) {
            escaped.push('\\');
        }
        escaped.push(c);
    }
    escaped
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_titles_are_matched_literally_by_xdotool() {
        assert_eq!(regex_escape("Tocsin"), "Tocsin");
        assert_eq!(regex_escape("Tocsin (2) [x]"), r"Tocsin \(2\) \[x\]");
        assert_eq!(regex_escape("a.b*c$"), r"a\.b\*c\$");
    }
}
