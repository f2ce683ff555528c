//! A private desktop session per test: its own X server, session bus, runtime and XDG
//! directories, and optionally a keyring, a notification daemon and a tray watcher.
//!
//! Tests run in parallel without stepping on each other: Xvfb picks a free display
//! itself (`-displayfd`), the bus listens on a socket in the session's own
//! `XDG_RUNTIME_DIR`, and the bus has **no service activation** (so nothing from the
//! machine — dunst, gnome-keyring, at-spi — is started behind the test's back: a test
//! "without a notification server" really has none). The real home is never touched
//! and `HOME` is left alone (it would hide `~/.cargo`). Everything is killed on
//! [`Drop`]; when a test fails the session's directory (logs included) is kept.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::AsyncWriteExt;

use super::notifications::{DEFAULT_CAPABILITIES, NotificationServer};
use super::process::{Pipes, Supervised, log_tail, read_line_until};
use super::tray::StatusNotifierWatcher;

/// How long each helper may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// The X screen.
pub const SCREEN: &str = "1280x800x24";
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
    /// Everything the session writes; kept when a test fails.
    root: Option<tempfile::TempDir>,
    /// Its path, valid after the directory was kept.
    root_path: PathBuf,
    /// `:N`.
    display: String,
    /// The bus address (`unix:path=…`).
    bus_address: String,
    /// Helper processes in start order (killed in reverse).
    processes: Vec<Supervised>,
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
        for dir in ["run", "data", "cache", "config", "logs", "keyring-home"] {
            std::fs::create_dir_all(root_path.join(dir))
                .with_context(|| format!("cannot create {dir} in the session directory"))?;
        }
        set_mode_0700(&root_path.join("run"))?;

        let mut processes = Vec::new();
        let display = start_xvfb(&root_path, &mut processes).await?;
        let (bus_process, bus_address) = start_bus(&root_path, "session", &display).await?;
        processes.push(bus_process);
        let bus = zbus::connection::Builder::address(bus_address.as_str())
            .build()
            .await
            .with_context(|| format!("cannot connect to the session bus {bus_address}"))?;
        let mut session = DesktopSession {
            root: Some(root),
            root_path,
            display,
            bus_address,
            processes,
            notifications: None,
            watcher: None,
            bus,
        };
        if options.keyring {
            session.start_keyring().await?;
        }
        match &options.notifications {
            NotificationDaemon::Fake(capabilities) => {
                let capabilities: Vec<&str> = capabilities.iter().map(String::as_str).collect();
                session.notifications =
                    Some(NotificationServer::start(&session.bus_address, &capabilities).await?);
            }
            NotificationDaemon::Dunst => session.start_dunst().await?,
            NotificationDaemon::None => {}
        }
        if options.tray_watcher {
            session.watcher = Some(StatusNotifierWatcher::start(&session.bus_address).await?);
        }
        Ok(session)
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
    pub fn envs(&self) -> Vec<(String, String)> {
        let dir = |name: &str| self.root_path.join(name).display().to_string();
        let mut envs = vec![
            ("DISPLAY".to_owned(), self.display.clone()),
            (
                "DBUS_SESSION_BUS_ADDRESS".to_owned(),
                self.bus_address.clone(),
            ),
            ("XDG_RUNTIME_DIR".to_owned(), dir("run")),
            ("XDG_DATA_HOME".to_owned(), dir("data")),
            ("XDG_CACHE_HOME".to_owned(), dir("cache")),
            ("XDG_CONFIG_HOME".to_owned(), dir("config")),
            ("NO_AT_BRIDGE".to_owned(), "1".to_owned()),
            ("GDK_BACKEND".to_owned(), "x11".to_owned()),
        ];
        if self.processes.iter().any(|p| p.name() == "gnome-keyring") {
            envs.push((
                "GNOME_KEYRING_CONTROL".to_owned(),
                format!("{}/keyring", dir("run")),
            ));
        }
        envs
    }

    /// Variables removed from a child's environment: the machine's own display, bus and
    /// keyring must never be reached.
    pub const REMOVED_ENV: [&'static str; 6] = [
        "WAYLAND_DISPLAY",
        "XAUTHORITY",
        "GNOME_KEYRING_CONTROL",
        "DBUS_SYSTEM_BUS_ADDRESS",
        "SESSION_MANAGER",
        "XDG_SESSION_TYPE",
    ];

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
            START_TIMEOUT,
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
            START_TIMEOUT,
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

    /// Polls until `name` is owned on the bus (no signal to wait for when it may
    /// already be owned), failing after `timeout` with `log` shown.
    async fn wait_name(&self, name: &str, timeout: Duration, log: &Path) -> Result<()> {
        let deadline = tokio::time::Instant::now() + timeout;
        while !self.name_has_owner(name).await? {
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{name} did not appear on the session bus within {timeout:?}; log ({}):\n{}",
                    log.display(),
                    log_tail(log, 30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(())
    }

    async fn start_keyring(&mut self) -> Result<()> {
        let log = self.logs_dir().join("gnome-keyring.log");
        let mut command = self.command("gnome-keyring-daemon");
        command
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("HOME", self.root_path.join("keyring-home"));
        let mut process = Supervised::spawn(
            "gnome-keyring",
            command,
            &log,
            Pipes {
                stdin: true,
                stdout: false,
            },
        )?;
        let mut stdin = process
            .child_mut()
            .and_then(|child| child.stdin.take())
            .context("gnome-keyring's stdin is piped")?;
        stdin
            .write_all(KEYRING_PASSWORD.as_bytes())
            .await
            .context("the keyring password can be written")?;
        drop(stdin);
        self.processes.push(process);
        self.wait_name("org.freedesktop.secrets", START_TIMEOUT, &log)
            .await
    }

    async fn start_dunst(&mut self) -> Result<()> {
        let log = self.logs_dir().join("dunst.log");
        let config = self.root_path.join("dunstrc");
        std::fs::write(&config, DUNSTRC).context("dunstrc can be written")?;
        let mut command = self.command("dunst");
        command.arg("-config").arg(&config);
        let process = Supervised::spawn("dunst", command, &log, Pipes::default())?;
        self.processes.push(process);
        self.wait_name(super::notifications::NAME, START_TIMEOUT, &log)
            .await
    }

    /// Kills everything now (also done on drop).
    pub async fn stop(mut self) {
        self.notifications = None;
        self.watcher = None;
        while let Some(mut process) = self.processes.pop() {
            process.kill_group().await;
        }
    }
}

impl Drop for DesktopSession {
    fn drop(&mut self) {
        self.notifications = None;
        self.watcher = None;
        // Reverse start order: clients before the bus, the bus before X.
        while let Some(process) = self.processes.pop() {
            drop(process);
        }
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

fn set_mode_0700(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot chmod 700 {}", path.display()))
}

async fn start_xvfb(root: &Path, processes: &mut Vec<Supervised>) -> Result<String> {
    let log = root.join("logs").join("xvfb.log");
    let mut command = tokio::process::Command::new("Xvfb");
    command.args([
        "-displayfd",
        "1",
        "-screen",
        "0",
        SCREEN,
        "-nolisten",
        "tcp",
        "-noreset",
    ]);
    let mut process = Supervised::spawn(
        "Xvfb",
        command,
        &log,
        Pipes {
            stdin: false,
            stdout: true,
        },
    )?;
    let stdout = process.take_stdout()?;
    processes.push(process);
    let number = read_line_until(
        stdout,
        START_TIMEOUT,
        "Xvfb's display number (-displayfd)",
        &log,
        |line| line.parse::<u32>().ok(),
    )
    .await?;
    Ok(format!(":{number}"))
}

/// Starts a private `dbus-daemon` named `name` (its socket, config and log under `root`)
/// and returns it with its address: the session bus, or a stand-in system bus
/// ([`super::system_bus`]).
pub(super) async fn start_bus(
    root: &Path,
    name: &str,
    display: &str,
) -> Result<(Supervised, String)> {
    let (log, socket) = match name {
        // The names the session's logs and runtime dir always had.
        "session" => (
            root.join("logs").join("dbus-daemon.log"),
            root.join("run").join("bus"),
        ),
        other => (
            root.join("logs").join(format!("dbus-daemon-{other}.log")),
            root.join("run").join(format!("bus-{other}")),
        ),
    };
    let config = root.join(format!("dbus-{name}.conf"));
    // No <standard_session_servicedirs/>: no activation of the machine's services.
    let text = format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:path={}</listen>
  <auth>EXTERNAL</auth>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        socket.display()
    );
    std::fs::write(&config, text).context("the bus configuration can be written")?;
    let mut command = tokio::process::Command::new("dbus-daemon");
    command
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--print-address"])
        .env("DISPLAY", display);
    let mut process = Supervised::spawn(
        "dbus-daemon",
        command,
        &log,
        Pipes {
            stdin: false,
            stdout: true,
        },
    )?;
    let stdout = process.take_stdout()?;
    let address = read_line_until(
        stdout,
        START_TIMEOUT,
        &format!("the {name} bus address (dbus-daemon --print-address)"),
        &log,
        |line| line.starts_with("unix:").then(|| line.to_owned()),
    )
    .await?;
    Ok((process, address))
}

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
