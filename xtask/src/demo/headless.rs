//! `--headless`: a private desktop session for the app on a machine without a screen.
//!
//! Xvfb (a virtual 1280×800 screen; it picks a free display itself with
//! `-displayfd`), a session bus of its own with no service activation (nothing of the
//! machine's is started behind the demo's back), gnome-keyring's Secret Service
//! unlocked with a throwaway password and home (the app keeps its refresh token
//! there), and dunst, which draws OS notifications on the virtual screen so the
//! screenshots show them. Runtime and XDG directories are temporary; `HOME` is left
//! alone. Everything is stopped by [`Headless::stop`], or killed on drop.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::child::Supervised;

/// How long each helper may take to come up.
const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long each helper may take to exit after SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(3);
/// The virtual screen.
const SCREEN: &str = "1280x800x24";
/// The throwaway keyring's password.
const KEYRING_PASSWORD: &str = "tocsin-demo";
/// The Secret Service's bus name.
const SECRETS_NAME: &str = "org.freedesktop.secrets";
/// The notification daemon's bus name.
const NOTIFICATIONS_NAME: &str = "org.freedesktop.Notifications";
/// Variables of the developer's own session a child must not see.
const REMOVED_ENV: [&str; 5] = [
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "GNOME_KEYRING_CONTROL",
    "SESSION_MANAGER",
    "XDG_SESSION_TYPE",
];

/// A running private session.
#[derive(Debug)]
pub struct Headless {
    /// The session's directory (runtime, XDG dirs, configs, logs).
    dir: PathBuf,
    /// `:N`.
    pub display: String,
    /// The bus address.
    bus_address: String,
    /// Helpers in start order (stopped in reverse).
    helpers: Vec<Supervised>,
}

impl Headless {
    /// Starts Xvfb, the bus, the keyring and dunst under `dir`.
    pub async fn start(dir: &Path) -> Result<Headless> {
        for sub in ["run", "data", "config", "cache", "keyring-home", "logs"] {
            std::fs::create_dir_all(dir.join(sub))
                .with_context(|| format!("creating {}", dir.join(sub).display()))?;
        }
        private_to_owner(&dir.join("run"))?;
        let mut helpers = Vec::new();

        let mut xvfb = Command::new("Xvfb");
        xvfb.args(["-displayfd", "1", "-screen", "0", SCREEN])
            .args(["-nolisten", "tcp", "-noreset"]);
        let mut xvfb = Supervised::spawn("Xvfb", xvfb, &dir.join("logs/xvfb.log"), false, true)?;
        let number = xvfb
            .read_line("its display number", START_TIMEOUT, |line| {
                line.parse::<u32>().ok()
            })
            .await;
        helpers.push(xvfb);
        let display = format!(":{}", number?);

        let config = dir.join("session-bus.conf");
        std::fs::write(&config, bus_config(&dir.join("run/bus")))
            .with_context(|| format!("writing {}", config.display()))?;
        let mut bus = Command::new("dbus-daemon");
        bus.arg(format!("--config-file={}", config.display()))
            .args(["--nofork", "--print-address=1"])
            .env("DISPLAY", &display);
        let mut bus = Supervised::spawn(
            "dbus-daemon",
            bus,
            &dir.join("logs/dbus-daemon.log"),
            false,
            true,
        )?;
        let address = bus
            .read_line("the bus address", START_TIMEOUT, |line| {
                line.starts_with("unix:").then(|| line.to_owned())
            })
            .await;
        helpers.push(bus);

        let mut session = Headless {
            dir: dir.to_owned(),
            display,
            bus_address: address?,
            helpers,
        };
        session.start_keyring().await?;
        session.start_dunst().await?;
        Ok(session)
    }

    /// The variables a program needs to run in this session.
    pub fn envs(&self) -> Vec<(&'static str, OsString)> {
        let dir = |name: &str| self.dir.join(name).into_os_string();
        vec![
            ("DISPLAY", self.display.clone().into()),
            ("DBUS_SESSION_BUS_ADDRESS", self.bus_address.clone().into()),
            ("XDG_RUNTIME_DIR", dir("run")),
            ("XDG_DATA_HOME", dir("data")),
            ("XDG_CONFIG_HOME", dir("config")),
            ("XDG_CACHE_HOME", dir("cache")),
            ("GNOME_KEYRING_CONTROL", dir("run/keyring")),
            ("NO_AT_BRIDGE", "1".into()),
            ("GDK_BACKEND", "x11".into()),
        ]
    }

    /// A command for `program` inside the session (and nowhere else).
    pub fn command(&self, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new(program);
        for name in REMOVED_ENV {
            command.env_remove(name);
        }
        command.envs(self.envs());
        command
    }

    /// Stops the helpers, last started first.
    pub async fn stop(mut self) {
        while let Some(mut helper) = self.helpers.pop() {
            let _ = helper.stop(STOP_GRACE).await;
        }
    }

    /// gnome-keyring's Secret Service, unlocked with a throwaway password and home.
    /// In the foreground (so it stays a child of the demo and is stopped with it),
    /// where it prints nothing: it is ready once it owns its name on the bus.
    async fn start_keyring(&mut self) -> Result<()> {
        let mut keyring = self.command("gnome-keyring-daemon");
        keyring
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("HOME", self.dir.join("keyring-home"));
        let log = self.dir.join("logs/gnome-keyring.log");
        let mut keyring = Supervised::spawn("gnome-keyring-daemon", keyring, &log, true, false)?;
        let mut stdin = keyring.take_stdin()?;
        // The password is read up to end of file: write it, then close the pipe.
        let written = stdin.write_all(KEYRING_PASSWORD.as_bytes()).await;
        drop(stdin);
        self.helpers.push(keyring);
        written.context("writing the keyring's password")?;
        self.wait_for_name(SECRETS_NAME).await
    }

    /// dunst, drawing notifications on the virtual screen.
    async fn start_dunst(&mut self) -> Result<()> {
        let config = self.dir.join("dunstrc");
        std::fs::write(&config, DUNSTRC)
            .with_context(|| format!("writing {}", config.display()))?;
        let mut dunst = self.command("dunst");
        dunst.arg("-config").arg(&config);
        let log = self.dir.join("logs/dunst.log");
        self.helpers
            .push(Supervised::spawn("dunst", dunst, &log, false, false)?);
        self.wait_for_name(NOTIFICATIONS_NAME).await
    }

    /// Polls until `name` has an owner on the bus; fails with the last helper's log
    /// when it exits or does not get there in time.
    async fn wait_for_name(&mut self, name: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if self.name_has_owner(name).await? {
                return Ok(());
            }
            let Some(helper) = self.helpers.last_mut() else {
                bail!("no helper started");
            };
            if let Some(status) = helper.exited()? {
                bail!("it exited ({status}) before owning {name}{}", helper.tail());
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{name} did not appear on the session bus within {START_TIMEOUT:?}{}",
                    helper.tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// `NameHasOwner`, asked with `dbus-send`.
    async fn name_has_owner(&self, name: &str) -> Result<bool> {
        let output = self
            .command("dbus-send")
            .args([
                "--session",
                "--dest=org.freedesktop.DBus",
                "--type=method_call",
                "--print-reply",
                "/org/freedesktop/DBus",
                "org.freedesktop.DBus.NameHasOwner",
            ])
            .arg(format!("string:{name}"))
            .kill_on_drop(true)
            .output();
        let output = tokio::time::timeout(START_TIMEOUT, output)
            .await
            .context("dbus-send did not answer")?
            .context("could not run dbus-send (package dbus-bin)")?;
        if !output.status.success() {
            bail!(
                "dbus-send failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).contains("boolean true"))
    }
}

/// A session bus listening in the session's runtime dir, without
/// `<standard_session_servicedirs/>`: no activation of the machine's services.
fn bus_config(socket: &Path) -> String {
    format!(
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
    )
}

/// dunst, readable in a screenshot: popups top right, beside the panel (centred,
/// 380 px wide) rather than over it, compact enough for the whole scenario to fit;
/// critical ones in red and kept until dismissed, as on a real desktop.
const DUNSTRC: &str = r##"[global]
    monitor = 0
    follow = none
    width = 380
    height = 200
    origin = top-right
    offset = 16x16
    notification_limit = 0
    padding = 7
    horizontal_padding = 10
    frame_width = 2
    frame_color = "#4c566a"
    separator_color = frame
    gap_size = 5
    font = DejaVu Sans 9
    markup = full
    format = "<b>%s</b>\n%b"
    word_wrap = yes
    icon_position = off
    show_indicators = no

[urgency_low]
    background = "#eceff4"
    foreground = "#2e3440"
    timeout = 30

[urgency_normal]
    background = "#eceff4"
    foreground = "#2e3440"
    timeout = 30

[urgency_critical]
    background = "#b3261e"
    foreground = "#ffffff"
    frame_color = "#6d0f0a"
    timeout = 0
"##;

/// `chmod 700`: `XDG_RUNTIME_DIR` must be private to its owner.
#[cfg(unix)]
fn private_to_owner(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("chmod 700 {}", path.display()))
}

/// Nothing to do where permissions are not Unix modes.
#[cfg(not(unix))]
fn private_to_owner(_path: &Path) -> Result<()> {
    Ok(())
}
