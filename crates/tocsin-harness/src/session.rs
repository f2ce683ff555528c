//! A private X/D-Bus session: its own X server, session bus, runtime and XDG
//! directories, and optionally gnome-keyring's Secret Service and dunst. The end-to-end
//! desktop tests, the desktop benchmark and `cargo xtask demo --headless` all run the
//! desktop app in one of these.
//!
//! Sessions run side by side without stepping on each other: Xvfb picks a free display
//! itself (`-displayfd`), the bus listens on a socket in the session's own
//! `XDG_RUNTIME_DIR`, and the bus has **no service activation**, so nothing of the
//! machine's (dunst, gnome-keyring, at-spi) is started behind the caller's back: a
//! session "without a notification server" really has none. The real home is never
//! touched and `HOME` is left alone (it would hide `~/.cargo`). Every helper is stopped
//! by [`PrivateSession::stop`] or killed on drop; the directory belongs to the caller,
//! who decides whether to keep it (a failed test keeps its logs).

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use crate::process::{Pipes, Supervised};

/// How long each helper may take to come up.
pub const START_TIMEOUT: Duration = Duration::from_secs(20);
/// How long each helper may take to exit after SIGTERM in [`PrivateSession::stop`].
const STOP_GRACE: Duration = Duration::from_secs(3);
/// The virtual screen: wide enough for the panel beside the notification popups.
pub const SCREEN: &str = "1280x800x24";
/// The Secret Service's bus name, owned by gnome-keyring once it is ready.
pub const SECRETS_NAME: &str = "org.freedesktop.secrets";
/// The notification daemon's bus name, owned by dunst once it is ready.
pub const NOTIFICATIONS_NAME: &str = "org.freedesktop.Notifications";
/// The name the keyring helper is supervised under (its presence adds
/// `GNOME_KEYRING_CONTROL` to [`PrivateSession::envs`]).
const KEYRING_HELPER: &str = "gnome-keyring";

/// Variables removed from a child's environment: the machine's own display, buses and
/// keyring must never be reached from inside the session.
pub const REMOVED_ENV: [&str; 6] = [
    "WAYLAND_DISPLAY",
    "XAUTHORITY",
    "GNOME_KEYRING_CONTROL",
    "DBUS_SYSTEM_BUS_ADDRESS",
    "SESSION_MANAGER",
    "XDG_SESSION_TYPE",
];

/// What a session runs besides X and the bus.
#[derive(Debug, Clone, Default)]
pub struct SessionConfig {
    /// Run gnome-keyring's Secret Service, unlocked with this throwaway password (the
    /// app keeps its refresh token there); `None`: no Secret Service at all.
    pub keyring_password: Option<String>,
    /// Run dunst with this `dunstrc`, drawing notifications on the virtual screen (for
    /// screenshots); `None`: the caller brings its own notification server, or none.
    pub dunstrc: Option<String>,
}

/// A running private session.
#[derive(Debug)]
pub struct PrivateSession {
    /// The session's directory (runtime, XDG dirs, configs, logs), the caller's.
    dir: PathBuf,
    /// `:N`.
    display: String,
    /// The bus address (`unix:path=…`).
    bus_address: String,
    /// Helpers in start order, stopped in reverse: clients before the bus, the bus
    /// before X.
    helpers: Vec<Supervised>,
}

impl PrivateSession {
    /// Starts Xvfb, the bus and what `config` asks for, everything under `dir`.
    pub async fn start(dir: &Path, config: &SessionConfig) -> Result<PrivateSession> {
        for sub in ["run", "data", "config", "cache", "keyring-home", "logs"] {
            let path = dir.join(sub);
            std::fs::create_dir_all(&path)
                .with_context(|| format!("cannot create {}", path.display()))?;
        }
        private_to_owner(&dir.join("run"))?;
        let mut helpers = Vec::new();
        let display = start_xvfb(dir, &mut helpers).await?;
        let (bus, bus_address) = start_bus(dir, "session", &display).await?;
        helpers.push(bus);
        let mut session = PrivateSession {
            dir: dir.to_owned(),
            display,
            bus_address,
            helpers,
        };
        if let Some(password) = &config.keyring_password {
            session.start_keyring(password).await?;
        }
        if let Some(dunstrc) = &config.dunstrc {
            session.start_dunst(dunstrc).await?;
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

    /// The session's directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// `XDG_RUNTIME_DIR` (0700).
    pub fn runtime_dir(&self) -> PathBuf {
        self.dir.join("run")
    }

    /// Where helpers' logs go.
    pub fn logs_dir(&self) -> PathBuf {
        self.dir.join("logs")
    }

    /// The variables a program needs to run in this session.
    pub fn envs(&self) -> Vec<(&'static str, OsString)> {
        let dir = |name: &str| self.dir.join(name).into_os_string();
        let mut envs = vec![
            ("DISPLAY", self.display.clone().into()),
            ("DBUS_SESSION_BUS_ADDRESS", self.bus_address.clone().into()),
            ("XDG_RUNTIME_DIR", dir("run")),
            ("XDG_DATA_HOME", dir("data")),
            ("XDG_CONFIG_HOME", dir("config")),
            ("XDG_CACHE_HOME", dir("cache")),
            // No accessibility bus (there is none) and X11 even where Wayland is the
            // machine's default: the session has no compositor.
            ("NO_AT_BRIDGE", "1".into()),
            ("GDK_BACKEND", "x11".into()),
        ];
        if self.helpers.iter().any(|h| h.name() == KEYRING_HELPER) {
            envs.push(("GNOME_KEYRING_CONTROL", dir("run/keyring")));
        }
        envs
    }

    /// A tokio command for `program` inside the session (and nowhere else).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        for name in REMOVED_ENV {
            command.env_remove(name);
        }
        command.envs(self.envs());
        command
    }

    /// A std command for `program` inside the session.
    pub fn std_command(&self, program: impl AsRef<OsStr>) -> std::process::Command {
        let mut command = std::process::Command::new(program);
        for name in REMOVED_ENV {
            command.env_remove(name);
        }
        command.envs(self.envs());
        command
    }

    /// True when `name` has an owner on the session bus (`dbus-send`, so the
    /// harness needs no D-Bus library of its own).
    pub async fn name_has_owner(&self, name: &str) -> Result<bool> {
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
            .with_context(|| format!("dbus-send did not answer within {START_TIMEOUT:?}"))?
            .context("cannot run dbus-send (package dbus-bin): run `cargo xtask setup`")?;
        if !output.status.success() {
            bail!(
                "dbus-send NameHasOwner {name} failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr).trim()
            );
        }
        Ok(String::from_utf8_lossy(&output.stdout).contains("boolean true"))
    }

    /// Stops the helpers gracefully, last started first.
    pub async fn stop(mut self) {
        while let Some(mut helper) = self.helpers.pop() {
            // A helper that will not stop is killed with its group: nothing is left.
            let _ = helper.stop(STOP_GRACE).await;
        }
    }

    /// Kills the helpers now, last started first (also done on drop).
    pub async fn kill(mut self) {
        while let Some(mut helper) = self.helpers.pop() {
            helper.kill_group().await;
        }
    }

    /// gnome-keyring's Secret Service, unlocked with `password` and a throwaway home.
    /// In the foreground (so it stays a child and is stopped with the session), where
    /// it prints nothing: it is ready once it owns its name on the bus.
    async fn start_keyring(&mut self, password: &str) -> Result<()> {
        let log = self.logs_dir().join("gnome-keyring.log");
        let mut command = self.command("gnome-keyring-daemon");
        command
            .args(["--foreground", "--unlock", "--components=secrets"])
            .env("HOME", self.dir.join("keyring-home"));
        let pipes = Pipes {
            stdin: true,
            stdout: false,
        };
        let mut keyring = Supervised::spawn(KEYRING_HELPER, command, &log, pipes)?;
        let mut stdin = keyring.take_stdin()?;
        // The password is read up to end of file: write it, then close the pipe.
        let written = stdin.write_all(password.as_bytes()).await;
        drop(stdin);
        self.helpers.push(keyring);
        written.context("cannot write the keyring's password to gnome-keyring-daemon")?;
        self.wait_for_name(SECRETS_NAME).await
    }

    /// dunst, drawing notifications on the virtual screen.
    async fn start_dunst(&mut self, dunstrc: &str) -> Result<()> {
        let config = self.dir.join("dunstrc");
        std::fs::write(&config, dunstrc)
            .with_context(|| format!("cannot write {}", config.display()))?;
        let mut command = self.command("dunst");
        command.arg("-config").arg(&config);
        let log = self.logs_dir().join("dunst.log");
        let dunst = Supervised::spawn("dunst", command, &log, Pipes::default())?;
        self.helpers.push(dunst);
        self.wait_for_name(NOTIFICATIONS_NAME).await
    }

    /// Polls until `name` has an owner on the bus (there is no signal to wait for
    /// when it may already be owned); fails with the last helper's log when it exits
    /// or does not get there within [`START_TIMEOUT`].
    async fn wait_for_name(&mut self, name: &str) -> Result<()> {
        let deadline = tokio::time::Instant::now() + START_TIMEOUT;
        loop {
            if self.name_has_owner(name).await? {
                return Ok(());
            }
            let Some(helper) = self.helpers.last_mut() else {
                bail!("no helper was started to own {name}");
            };
            if let Some(status) = helper.try_exited()? {
                bail!(
                    "{} exited ({status}) before owning {name}{}",
                    helper.name(),
                    helper.tail()
                );
            }
            if tokio::time::Instant::now() >= deadline {
                bail!(
                    "{name} did not appear on the session bus within {START_TIMEOUT:?}{}",
                    helper.tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for PrivateSession {
    fn drop(&mut self) {
        // Reverse start order: clients before the bus, the bus before X.
        while let Some(helper) = self.helpers.pop() {
            drop(helper);
        }
    }
}

/// Starts Xvfb on a display it picks itself and returns `:N`; the process joins
/// `helpers` before its answer is read, so a failure still stops it.
async fn start_xvfb(dir: &Path, helpers: &mut Vec<Supervised>) -> Result<String> {
    let log = dir.join("logs").join("xvfb.log");
    let mut command = Command::new("Xvfb");
    command
        .args(["-displayfd", "1", "-screen", "0", SCREEN])
        .args(["-nolisten", "tcp", "-noreset"]);
    let pipes = Pipes {
        stdin: false,
        stdout: true,
    };
    helpers.push(Supervised::spawn("Xvfb", command, &log, pipes)?);
    let Some(xvfb) = helpers.last_mut() else {
        bail!("Xvfb was started but is not supervised");
    };
    let number = xvfb
        .read_line("its display number (-displayfd)", START_TIMEOUT, |line| {
            line.parse::<u32>().ok()
        })
        .await?;
    Ok(format!(":{number}"))
}

/// Starts a private `dbus-daemon` named `name` (its socket, config and log under
/// `dir`) and returns it with its address: the session bus, or a second bus such as
/// the tests' stand-in system bus.
pub async fn start_bus(dir: &Path, name: &str, display: &str) -> Result<(Supervised, String)> {
    let (log, socket) = match name {
        // The names the session's logs and runtime dir always had.
        "session" => (
            dir.join("logs").join("dbus-daemon.log"),
            dir.join("run").join("bus"),
        ),
        other => (
            dir.join("logs").join(format!("dbus-daemon-{other}.log")),
            dir.join("run").join(format!("bus-{other}")),
        ),
    };
    let config = dir.join(format!("dbus-{name}.conf"));
    std::fs::write(&config, bus_config(&socket))
        .with_context(|| format!("cannot write {}", config.display()))?;
    let mut command = Command::new("dbus-daemon");
    command
        .arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--print-address=1"])
        .env("DISPLAY", display);
    let pipes = Pipes {
        stdin: false,
        stdout: true,
    };
    let mut process = Supervised::spawn("dbus-daemon", command, &log, pipes)?;
    let address = process
        .read_line(
            &format!("the {name} bus address (--print-address)"),
            START_TIMEOUT,
            |line| line.starts_with("unix:").then(|| line.to_owned()),
        )
        .await?;
    Ok((process, address))
}

/// A bus listening on `socket`, without `<standard_session_servicedirs/>`: no
/// activation of the machine's services.
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

/// `chmod 700`: `XDG_RUNTIME_DIR` must be private to its owner.
fn private_to_owner(path: &Path) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o700))
        .with_context(|| format!("cannot chmod 700 {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bus_activates_nothing_of_the_machine() {
        let text = bus_config(Path::new("/tmp/x/run/bus"));
        assert!(text.contains("<listen>unix:path=/tmp/x/run/bus</listen>"));
        assert!(!text.contains("servicedir"));
    }
}
