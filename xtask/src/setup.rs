//! `cargo xtask setup`: installs what the build and the tests need beyond Rust.
//!
//! On Debian and Ubuntu the missing packages of [`SYSTEM_PACKAGES`] are installed with
//! apt (as root, or through `sudo -n`; never prompting). Elsewhere the list is printed
//! for the developer to install and the command carries on. Then `cargo-nextest`,
//! `tauri-driver` and `cargo-deny` are installed if they do not answer (the last two
//! at a pinned version), and schemathesis (PyPI, pinned) into a virtualenv at
//! `.tools/schemathesis` for the OpenAPI test.

use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::process::{self, header};

/// A system package the workspace needs, and why.
#[derive(Debug, Clone, Copy)]
pub struct SystemPackage {
    /// The Debian/Ubuntu package name.
    pub name: &'static str,
    /// Why the workspace needs it; printed when it is missing.
    pub why: &'static str,
}

/// Every Debian/Ubuntu package the workspace needs.
///
/// Extend this list when a crate gains a system dependency, with the reason. SQLite is not here because
/// rusqlite bundles it; OpenSSL's headers are only for Tauri's build tooling, the
/// runtime TLS is rustls.
pub const SYSTEM_PACKAGES: &[SystemPackage] = &[
    SystemPackage {
        name: "build-essential",
        why: "a C compiler and make: rusqlite's bundled SQLite and ring (rustls) compile C code",
    },
    SystemPackage {
        name: "pkg-config",
        why: "lets -sys crates find system libraries (GTK, WebKit, D-Bus)",
    },
    SystemPackage {
        name: "file",
        why: "Tauri's build tooling inspects binaries with it",
    },
    SystemPackage {
        name: "libwebkit2gtk-4.1-dev",
        why: "the desktop app's webview (Tauri 2 on Linux: WebKitGTK 4.1 and GTK 3)",
    },
    SystemPackage {
        name: "libayatana-appindicator3-dev",
        why: "the desktop app's tray icon (StatusNotifierItem through libayatana-appindicator)",
    },
    SystemPackage {
        name: "librsvg2-dev",
        why: "SVG icon loading in GTK, linked by the desktop app",
    },
    SystemPackage {
        name: "libssl-dev",
        why: "headers some of Tauri's build-time crates link against",
    },
    SystemPackage {
        name: "libxdo-dev",
        why: "keyboard/menu support that Tauri's menu layer (muda) links on Linux",
    },
    SystemPackage {
        name: "libdbus-1-dev",
        why: "D-Bus headers for the desktop app's single-instance and secret-store crates",
    },
    SystemPackage {
        // The distribution's current major (15 on Debian 12, 16 on Ubuntu 24.04): the
        // harness runs the newest one installed under /usr/lib/postgresql.
        name: "postgresql",
        why: "a real PostgreSQL server: the PostgreSQL store's tests start a throwaway cluster (initdb)",
    },
    SystemPackage {
        name: "haproxy",
        why: "the load balancer the cluster test puts in front of three gateway nodes, configured as OPERATIONS.md says",
    },
    SystemPackage {
        name: "util-linux",
        why: "unshare and mount: the full-disk test serves from a tmpfs in a private mount namespace",
    },
    SystemPackage {
        name: "dbus-daemon",
        why: "private session buses for the secret-store, notification and tray tests",
    },
    SystemPackage {
        name: "dbus-bin",
        why: "dbus-send: the harness asks the private bus whether the keyring and dunst are up",
    },
    SystemPackage {
        name: "dbus-x11",
        why: "dbus-launch, which parts of the GTK stack expect in a headless session",
    },
    SystemPackage {
        name: "gnome-keyring",
        why: "a real Secret Service (the OS keyring on Linux) for the client's secret-store test",
    },
    SystemPackage {
        name: "libsecret-tools",
        why: "secret-tool: the keyring tests check what the clients stored from outside",
    },
    SystemPackage {
        name: "keyutils",
        why: "keyctl: a fresh kernel session keyring for the keyring tests",
    },
    SystemPackage {
        name: "xvfb",
        why: "a virtual display: the desktop app's tests and `demo --headless` run it there",
    },
    SystemPackage {
        name: "xauth",
        why: "X authority files for the virtual display",
    },
    SystemPackage {
        name: "dunst",
        why: "a real notification daemon that renders popups for the screenshots",
    },
    SystemPackage {
        name: "libnotify-bin",
        why: "notify-send: checks the fake notification server against a known client",
    },
    SystemPackage {
        name: "webkit2gtk-driver",
        why: "WebKitWebDriver: the panel's end-to-end tests drive the real webview",
    },
    SystemPackage {
        name: "chromium",
        why: "a real browser: the web tests (CORS, the web SDK, web notifications) run pages in headless Chromium",
    },
    SystemPackage {
        name: "chromium-driver",
        why: "chromedriver, of Chromium's version: the web tests drive Chromium over WebDriver",
    },
    SystemPackage {
        name: "imagemagick",
        why: "`import`: whole-screen screenshots of the app for the test artifacts",
    },
    SystemPackage {
        name: "x11-apps",
        why: "small X clients the headless desktop session is checked with",
    },
    SystemPackage {
        name: "at-spi2-core",
        why: "the accessibility bus WebKitGTK expects; without it the webview logs errors",
    },
    SystemPackage {
        name: "python3-icalendar",
        why: "an outside iCalendar parser: the calendar feed's tests read the feed with it",
    },
    SystemPackage {
        name: "systemd",
        why: "systemd-analyze: the service unit's test verifies it and scores its confinement",
    },
    SystemPackage {
        name: "prometheus",
        why: "promtool: the metrics test checks /metrics with it, and the alert rules in docs/OPERATIONS.md",
    },
    SystemPackage {
        name: "openssl",
        why: "openssl s_client and x509: the TLS tests check protocol versions and the fingerprint `init` prints",
    },
    SystemPackage {
        name: "curl",
        why: "curl: the ops guide's test runs docs/OPERATIONS.md's checks (readyz, metrics) as written",
    },
    SystemPackage {
        name: "python3-venv",
        why: "a virtualenv for schemathesis (PyPI), which the OpenAPI test runs against a live gateway",
    },
    SystemPackage {
        name: "lintian",
        why: "the package test checks the .debs `cargo xtask bundle` builds against Debian policy",
    },
    SystemPackage {
        name: "dpkg-dev",
        why: "dpkg-shlibdeps: `cargo xtask bundle` computes each package's Depends from its binary",
    },
    SystemPackage {
        name: "binutils",
        why: "objcopy and readelf: `cargo xtask bundle` strips the binaries and splits their debug info",
    },
    SystemPackage {
        name: "testssl.sh",
        why: "testssl: the TLS test scans the gateway's protocols and cipher suites from outside",
    },
];

/// Installs the missing system packages and cargo tools.
pub fn run() -> Result<()> {
    header("setup: system packages");
    install_system_packages(SYSTEM_PACKAGES)?;
    header("setup: cargo tools");
    ensure_nextest()?;
    ensure_tauri_driver()?;
    header("setup: python tools");
    ensure_schemathesis()?;
    if crate::advisories::snapshot_present() {
        ensure_cargo_deny()
    } else {
        println!("no advisory database snapshot: cargo-deny is not needed (see deny.toml)");
        Ok(())
    }
}

/// Installs the missing packages on Debian/Ubuntu; elsewhere prints them.
fn install_system_packages(packages: &[SystemPackage]) -> Result<()> {
    if !is_debian_like() {
        println!("Not a Debian/Ubuntu system: make sure the equivalents of these are installed:");
        for package in packages {
            println!("  {:<16} {}", package.name, package.why);
        }
        return Ok(());
    }
    let missing: Vec<SystemPackage> = packages
        .iter()
        .copied()
        .filter(|package| !is_installed(package.name))
        .collect();
    if missing.is_empty() {
        let names: Vec<&str> = packages.iter().map(|package| package.name).collect();
        println!("all installed: {}", names.join(" "));
        return Ok(());
    }
    for package in &missing {
        println!("missing {:<16} {}", package.name, package.why);
    }
    let names: Vec<&str> = missing.iter().map(|package| package.name).collect();
    let privileged = Privileged::detect().with_context(|| {
        format!(
            "installing packages needs root; run `sudo apt-get install {}` yourself",
            names.join(" ")
        )
    })?;
    process::run_step("apt-get update", &mut privileged.apt_get(["update"]))?;
    let mut install = privileged.apt_get(["install", "-y", "--no-install-recommends"]);
    install.args(&names);
    process::run_step("apt-get install", &mut install)
}

/// True on Debian and its derivatives (Ubuntu included), where dpkg and apt exist.
fn is_debian_like() -> bool {
    Path::new("/etc/debian_version").exists()
        && process::succeeds(Command::new("dpkg-query").arg("--version"))
}

/// True when dpkg reports the package as installed (`install ok installed`).
fn is_installed(package: &str) -> bool {
    let output = Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", package])
        .output();
    match output {
        Ok(output) if output.status.success() => {
            status_means_installed(&String::from_utf8_lossy(&output.stdout))
        }
        _ => false,
    }
}

/// Reads dpkg's `${Status}`: `install ok installed` is installed; `deinstall ok
/// config-files` (removed, configuration kept) and `unknown ok not-installed` are not.
fn status_means_installed(status: &str) -> bool {
    status.split_whitespace().last() == Some("installed")
}

/// How apt is run with root rights.
#[derive(Debug, Clone, Copy)]
enum Privileged {
    /// xtask already runs as root.
    Root,
    /// Through `sudo -n`, which fails rather than prompting for a password.
    Sudo,
}

impl Privileged {
    /// Root directly, else a password-less `sudo`, else an error.
    fn detect() -> Result<Privileged> {
        let uid = Command::new("id")
            .arg("-u")
            .output()
            .context("running `id -u`")?;
        if String::from_utf8_lossy(&uid.stdout).trim() == "0" {
            return Ok(Privileged::Root);
        }
        if process::succeeds(Command::new("sudo").args(["-n", "true"])) {
            return Ok(Privileged::Sudo);
        }
        bail!("not root, and `sudo -n` is not allowed without a password");
    }

    /// A non-interactive `apt-get` with these arguments.
    fn apt_get<const N: usize>(self, args: [&str; N]) -> Command {
        let mut command = match self {
            Privileged::Root => Command::new("apt-get"),
            Privileged::Sudo => {
                // sudo resets the environment, so the variable travels through `env`.
                let mut sudo = Command::new("sudo");
                sudo.args(["-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]);
                sudo
            }
        };
        command.env("DEBIAN_FRONTEND", "noninteractive").args(args);
        command
    }
}

/// Installs cargo-nextest unless `cargo nextest --version` already works.
fn ensure_nextest() -> Result<()> {
    if process::succeeds(&mut process::cargo(["nextest", "--version"])) {
        println!("cargo-nextest is installed");
        return Ok(());
    }
    process::run_step(
        "install cargo-nextest",
        &mut process::cargo(["install", "cargo-nextest", "--locked"]),
    )
}

/// The schemathesis release the OpenAPI test's flags and config file are written for
/// (its CLI changed a lot between 3.x and 4.x).
const SCHEMATHESIS_VERSION: &str = "4.32.5";

/// Installs schemathesis [`SCHEMATHESIS_VERSION`] into `.tools/schemathesis` (a
/// virtualenv: Debian's Python refuses `pip install` outside one) unless it is there.
fn ensure_schemathesis() -> Result<()> {
    let venv = process::repo_root().join(".tools/schemathesis");
    let binary = venv.join("bin/schemathesis");
    let version = Command::new(&binary).arg("--version").output();
    if let Ok(output) = version
        && output.status.success()
        && String::from_utf8_lossy(&output.stdout).contains(SCHEMATHESIS_VERSION)
    {
        println!("schemathesis {SCHEMATHESIS_VERSION} is installed");
        return Ok(());
    }
    process::run_step(
        "create the schemathesis virtualenv",
        Command::new("python3").arg("-m").arg("venv").arg(&venv),
    )?;
    process::run_step(
        "pip install schemathesis",
        Command::new(venv.join("bin/pip")).args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("schemathesis=={SCHEMATHESIS_VERSION}"),
        ]),
    )
}

/// Installs tauri-driver (the WebDriver bridge to the desktop app's webview) unless
/// it is on the PATH; the panel's end-to-end tests need it.
fn ensure_tauri_driver() -> Result<()> {
    if process::succeeds(process::tool("tauri-driver").arg("--help")) {
        println!("tauri-driver is installed");
        return Ok(());
    }
    process::run_step(
        "install tauri-driver",
        &mut process::cargo(["install", "tauri-driver", "--version", "2.1.0", "--locked"]),
    )
}

/// The cargo-deny release the advisories step and `deny.toml` are written for. Its
/// config keys and flags change between releases (0.20 folded `--disable-fetch` into
/// `--offline`), so it is pinned. Building it takes about 7 minutes on 2 cores, once.
const CARGO_DENY_VERSION: &str = "0.20.2";

/// Installs cargo-deny [`CARGO_DENY_VERSION`] unless `cargo deny --version` already
/// reports it (an older or newer one is replaced).
fn ensure_cargo_deny() -> Result<()> {
    let installed = process::cargo(["deny", "--version"]).output();
    let wanted = format!("cargo-deny {CARGO_DENY_VERSION}");
    if let Ok(output) = installed
        && output.status.success()
        && String::from_utf8_lossy(&output.stdout).trim() == wanted
    {
        println!("{wanted} is installed");
        return Ok(());
    }
    process::run_step(
        "install cargo-deny",
        &mut process::cargo([
            "install",
            "cargo-deny",
            "--version",
            CARGO_DENY_VERSION,
            "--locked",
        ]),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_status_is_read_strictly() {
        assert!(status_means_installed("install ok installed"));
        assert!(!status_means_installed("deinstall ok config-files"));
        assert!(!status_means_installed("unknown ok not-installed"));
        assert!(!status_means_installed(""));
    }

    #[test]
    fn every_package_says_why() {
        for package in SYSTEM_PACKAGES {
            assert!(!package.name.is_empty() && !package.why.is_empty());
        }
    }
}
