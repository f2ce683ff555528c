//! `cargo xtask bundle`: the Debian packages, put together with `dpkg-deb`.
//!
//! - `tocsin-gateway`: the server. The stripped release gateway (`/usr/bin`), its
//!   systemd unit (`/lib/systemd/system`, not enabled), the maintainer scripts of
//!   `src-tauri/packaging/gateway/` (the `tocsin` user, `/var/lib/tocsin` 0700, `init`
//!   on an empty data dir; a graceful restart on upgrade; data deleted on purge only),
//!   `Depends` from `dpkg-shlibdeps` (libc and libgcc: no GUI library). No conffile: the
//!   gateway reads `config.toml` from its data dir, which `init` writes with this
//!   installation's secrets, so no package may ship it.
//! - `tocsin`: the desktop app (stripped `tocsin-desktop`, menu entry, icons),
//!   `Depends` from `dpkg-shlibdeps`, `Recommends: tocsin-gateway` (a one-machine firm).
//! - `tocsin-gateway-dbgsym` and `tocsin-dbgsym`: the debug info split off each binary
//!   (`objcopy --only-keep-debug`, line tables: `[profile.release]` builds with
//!   `debug = "line-tables-only"`) at `/usr/lib/debug/.build-id/xx/yyyy.debug`, where
//!   gdb, `eu-addr2line` and debuginfod look, so a crash's backtrace can be symbolised.
//!
//! `--gateway-only` skips the desktop app's release build (WebKit and Tauri: about 9
//! minutes on 2 cores), which CI does not need; `--version-suffix` repacks the same
//! binaries under a higher version, which is how the package test gets an upgrade
//! without a second build (cargo finds the release build fresh).
//!
//! Tauri's bundler is no longer used: it makes one package per app with the gateway
//! as a sidecar, cannot split debug info or run `dpkg-shlibdeps`, needs tauri-cli
//! (minutes to install) and hid the maintainer scripts behind its config. `dpkg-deb
//! --root-owner-group` builds in seconds from a staged tree this module fully controls.

mod deb;
mod debug;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::process::{self, cargo, repo_root, run_step};
use crate::{setup, ui};

use deb::Package;

/// Options of `cargo xtask bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Skip installing system packages and cargo tools.
    #[arg(long)]
    no_setup: bool,
    /// Build only the server packages (tocsin-gateway and its dbgsym), not the desktop
    /// app's.
    #[arg(long)]
    gateway_only: bool,
    /// Appended to the workspace version, e.g. `+ci1`: the same binaries repacked as
    /// a newer package (0.1.0+ci1 > 0.1.0), to test upgrades.
    #[arg(long, value_parser = parse_suffix)]
    version_suffix: Option<String>,
}

/// What one run built.
#[derive(Debug)]
pub struct Built {
    /// The `tocsin-gateway` package.
    pub gateway: PathBuf,
    /// Its debug symbols.
    pub gateway_dbgsym: PathBuf,
}

/// Builds the packages and shows what is in them.
pub fn run(args: &BundleArgs) -> Result<()> {
    if !args.no_setup {
        setup::run()?;
    }
    build(args.gateway_only, args.version_suffix.as_deref()).map(|_| ())
}

/// Builds the gateway (and unless `gateway_only`, the desktop) packages, version
/// suffixed with `suffix`, into `<target>/release/bundle/deb/`.
pub fn build(gateway_only: bool, suffix: Option<&str>) -> Result<Built> {
    let target = process::target_dir()?;
    run_step(
        "build the gateway (release)",
        &mut cargo(["build", "--release", "-p", "tocsin-gateway"]),
    )?;
    if !gateway_only {
        ui::build()?;
        // As `cargo tauri build` builds it: the panel's assets served from the binary.
        run_step(
            "build the desktop app (release)",
            &mut cargo([
                "build",
                "--release",
                "-p",
                "tocsin-desktop",
                "--features",
                "tauri/custom-protocol",
            ]),
        )?;
    }
    let version = format!("{}{}", env!("CARGO_PKG_VERSION"), suffix.unwrap_or(""));
    let arch = dpkg_architecture()?;
    let release = target.join("release");
    let out_dir = release.join("bundle").join("deb");
    let work = release.join("bundle").join("stage");
    std::fs::create_dir_all(&out_dir)?;
    let (gateway, gateway_dbgsym) = gateway_packages(&release, &work, &out_dir, &version, &arch)?;
    let mut built = vec![gateway.clone(), gateway_dbgsym.clone()];
    if !gateway_only {
        let (desktop, desktop_dbgsym) =
            desktop_packages(&release, &work, &out_dir, &version, &arch)?;
        built.extend([desktop, desktop_dbgsym]);
    }
    for deb in &built {
        show(deb)?;
    }
    println!("==> sizes");
    for deb in &built {
        let size = std::fs::metadata(deb)?.len();
        println!("{:>8} KiB  {}", size.div_ceil(1024), deb.display());
    }
    println!("Install with: sudo apt install {}", built[0].display());
    Ok(Built {
        gateway,
        gateway_dbgsym,
    })
}

/// `tocsin-gateway` and `tocsin-gateway-dbgsym`.
fn gateway_packages(
    release: &Path,
    work: &Path,
    out_dir: &Path,
    version: &str,
    arch: &str,
) -> Result<(PathBuf, PathBuf)> {
    let root = repo_root();
    let packaging = root.join("src-tauri/packaging");
    let name = "tocsin-gateway";
    let split = debug::split(&release.join(name), &work.join(name))?;
    let mut package = Package::new(work, name, version, arch)?;
    package.add(&split.stripped, &format!("usr/bin/{name}"), 0o755)?;
    package.add(
        &packaging.join("tocsin-gateway.service"),
        "lib/systemd/system/tocsin-gateway.service",
        0o644,
    )?;
    package.add(
        &packaging.join("gateway/README.Debian"),
        &format!("usr/share/doc/{name}/README.Debian"),
        0o644,
    )?;
    package.docs(&packaging.join("copyright"))?;
    package.add(
        &packaging.join("gateway/lintian-overrides"),
        &format!("usr/share/lintian/overrides/{name}"),
        0o644,
    )?;
    for script in ["postinst", "prerm", "postrm"] {
        package.script(script, &packaging.join("gateway").join(script))?;
    }
    let depends = shlibdeps(&split.stripped)?;
    let deb = package.build(
        out_dir,
        &format!(
            "Depends: {depends}, adduser\n\
             Section: net\n\
             Priority: optional\n\
             Description: Tocsin notification gateway (server)\n \
             Tocsin pushes a law firm's notifications (mail linked to a dossier,\n \
             procedural deadlines, appointment proposals) to every desktop of the right\n \
             person, durably and in order. This package is the self-hosted gateway:\n \
             one binary with an embedded SQLite database, built-in TLS and accounts,\n \
             and its systemd unit. It needs no graphical library.\n"
        ),
    )?;
    let dbgsym = debug::package(&split, name, version, arch, work, out_dir)?;
    Ok((deb, dbgsym))
}

/// `tocsin` (the desktop app) and `tocsin-dbgsym`.
fn desktop_packages(
    release: &Path,
    work: &Path,
    out_dir: &Path,
    version: &str,
    arch: &str,
) -> Result<(PathBuf, PathBuf)> {
    let root = repo_root();
    let packaging = root.join("src-tauri/packaging");
    let name = "tocsin";
    let split = debug::split(
        &release.join("tocsin-desktop"),
        &work.join("tocsin-desktop"),
    )?;
    let mut package = Package::new(work, name, version, arch)?;
    package.add(&split.stripped, "usr/bin/tocsin-desktop", 0o755)?;
    // Named as Tauri's bundler named it (the product name), so menus keep the entry.
    package.add(
        &packaging.join("tocsin-desktop.desktop"),
        "usr/share/applications/Tocsin.desktop",
        0o644,
    )?;
    for (file, size) in [
        ("32x32", "32x32"),
        ("64x64", "64x64"),
        ("128x128", "128x128"),
        ("128x128@2x", "256x256"),
        ("512x512", "512x512"),
    ] {
        package.add(
            &root.join("icons").join(format!("{file}.png")),
            &format!("usr/share/icons/hicolor/{size}/apps/tocsin-desktop.png"),
            0o644,
        )?;
    }
    package.docs(&packaging.join("copyright"))?;
    package.add(
        &packaging.join("desktop-lintian-overrides"),
        &format!("usr/share/lintian/overrides/{name}"),
        0o644,
    )?;
    let depends = shlibdeps(&split.stripped)?;
    let deb = package.build(
        out_dir,
        &format!(
            "Depends: {depends}\n\
             Recommends: tocsin-gateway\n\
             Section: net\n\
             Priority: optional\n\
             Description: Tocsin notification desktop app\n \
             The tray app a lawyer keeps running all day: an unread badge, OS\n \
             notifications (critical deadlines stay until acknowledged) and a panel,\n \
             fed by a Tocsin gateway. For a one-machine firm, install tocsin-gateway\n \
             too.\n"
        ),
    )?;
    let dbgsym = debug::package(&split, name, version, arch, work, out_dir)?;
    Ok((deb, dbgsym))
}

/// A version suffix: what dpkg accepts in an upstream version after its digits.
fn parse_suffix(suffix: &str) -> Result<String, String> {
    let valid = !suffix.is_empty()
        && suffix
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '+' | '~'))
        && suffix.starts_with(['.', '+', '~']);
    if valid {
        Ok(suffix.to_owned())
    } else {
        Err(format!(
            "'{suffix}' is not a version suffix: start with '+', '.' or '~', then letters, digits, '.', '+', '~' (e.g. +ci1)"
        ))
    }
}

/// The `Depends` a binary's shared libraries need, as `dpkg-shlibdeps` computes it.
/// It wants a `debian/control` naming the package; a throwaway one is enough.
fn shlibdeps(binary: &Path) -> Result<String> {
    let dir = tempfile::tempdir()?;
    std::fs::create_dir(dir.path().join("debian"))?;
    std::fs::write(
        dir.path().join("debian/control"),
        "Source: tocsin\n\nPackage: tocsin\nArchitecture: any\n",
    )?;
    let output = process::tool("dpkg-shlibdeps")
        .arg("-O")
        .arg(binary)
        .current_dir(dir.path())
        .output()
        .context("running dpkg-shlibdeps (package dpkg-dev; `cargo xtask setup` installs it)")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "dpkg-shlibdeps {} failed ({}): {}",
            binary.display(),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    stdout
        .lines()
        .find_map(|line| line.strip_prefix("shlibs:Depends="))
        .map(|depends| depends.trim().to_owned())
        .with_context(|| format!("dpkg-shlibdeps printed no shlibs:Depends: {stdout}"))
}

/// `dpkg --print-architecture` (amd64, arm64…).
fn dpkg_architecture() -> Result<String> {
    let output = process::tool("dpkg")
        .arg("--print-architecture")
        .output()
        .context("running `dpkg --print-architecture` (a Debian or Ubuntu system is needed)")?;
    let arch = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    if !output.status.success() || arch.is_empty() {
        bail!("`dpkg --print-architecture` failed ({})", output.status);
    }
    Ok(arch)
}

/// Prints a package's control fields and files (directories left out).
fn show(deb: &Path) -> Result<()> {
    run_step(
        &format!("package {}", deb.display()),
        process::tool("dpkg-deb").arg("--info").arg(deb),
    )?;
    let listing = process::tool("dpkg-deb")
        .arg("--contents")
        .arg(deb)
        .output()
        .context("running `dpkg-deb --contents`")?;
    for line in String::from_utf8_lossy(&listing.stdout).lines() {
        if !line.starts_with('d') {
            println!("{line}");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::parse_suffix;

    #[test]
    fn suffixes_sort_after_the_plain_version_or_are_refused() {
        assert!(parse_suffix("+ci1").is_ok());
        assert!(parse_suffix("~rc1").is_ok());
        assert!(parse_suffix("ci1").is_err());
        assert!(parse_suffix("+a b").is_err());
        assert!(parse_suffix("").is_err());
    }
}
