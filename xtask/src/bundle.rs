//! `cargo xtask bundle`: the Debian package with the desktop app (`/usr/bin/
//! tocsin-desktop`, its menu entry and icons), the gateway (`/usr/bin/tocsin-gateway`)
//! and the gateway's systemd unit (`/lib/systemd/system/tocsin-gateway.service`, not
//! enabled).
//!
//! Built with Tauri's own bundler: the release gateway is copied to
//! `src-tauri/binaries/tocsin-gateway-<host triple>` and declared as a sidecar
//! (`externalBin`) by `src-tauri/packaging/tauri.deb.conf.json`, merged with
//! `cargo tauri build --config` only here, so a plain `cargo build` never needs the
//! sidecar. tauri-cli is installed when missing (a few minutes, once). When it cannot
//! be, or with `--dpkg-deb`, the same package is put together with `dpkg-deb`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::process::{self, cargo, repo_root, run_step};
use crate::{setup, ui};

/// The package's dependencies (runtime libraries of the app) when built with
/// dpkg-deb; Tauri's bundler adds the first two itself and the third from the merge
/// config.
const DEPENDS: &str = "libwebkit2gtk-4.1-0, libgtk-3-0, libayatana-appindicator3-1";
/// The merge config, relative to `src-tauri/`.
const MERGE_CONFIG: &str = "packaging/tauri.deb.conf.json";

/// Options of `cargo xtask bundle`.
#[derive(Debug, Args)]
pub struct BundleArgs {
    /// Skip installing system packages and cargo tools.
    #[arg(long)]
    no_setup: bool,
    /// Build the .deb with dpkg-deb directly instead of Tauri's bundler.
    #[arg(long)]
    dpkg_deb: bool,
}

/// Builds the package and shows what is in it.
pub fn run(args: &BundleArgs) -> Result<()> {
    if !args.no_setup {
        setup::run()?;
    }
    ui::build()?;
    let target = process::target_dir()?;
    run_step(
        "build the gateway (release)",
        &mut cargo(["build", "--release", "-p", "tocsin-gateway"]),
    )?;
    let deb = if args.dpkg_deb {
        with_dpkg_deb(&target)?
    } else if tauri_cli_ready() {
        with_tauri(&target)?
    } else {
        println!("tauri-cli is not available: building the package with dpkg-deb instead");
        with_dpkg_deb(&target)?
    };
    show(&deb)
}

/// True when `cargo tauri` answers, after installing tauri-cli if needed.
fn tauri_cli_ready() -> bool {
    if process::succeeds(&mut cargo(["tauri", "--version"])) {
        return true;
    }
    println!("tauri-cli is missing: installing it (takes several minutes, once)");
    let installed = run_step(
        "install tauri-cli",
        &mut cargo(["install", "tauri-cli", "--version", "^2", "--locked"]),
    );
    if let Err(error) = installed {
        println!("could not install tauri-cli: {error:#}");
        return false;
    }
    process::succeeds(&mut cargo(["tauri", "--version"]))
}

/// `cargo tauri build --bundles deb` with the gateway as a sidecar.
fn with_tauri(target: &Path) -> Result<PathBuf> {
    let src_tauri = repo_root().join("src-tauri");
    let triple = host_triple()?;
    let sidecar = src_tauri
        .join("binaries")
        .join(format!("tocsin-gateway-{triple}"));
    let gateway = target.join("release").join("tocsin-gateway");
    std::fs::create_dir_all(src_tauri.join("binaries"))?;
    std::fs::copy(&gateway, &sidecar)
        .with_context(|| format!("copying {} to {}", gateway.display(), sidecar.display()))?;
    let out_dir = target.join("release").join("bundle").join("deb");
    remove_debs(&out_dir)?;
    let mut build = cargo([
        "tauri",
        "build",
        "--ci",
        "--bundles",
        "deb",
        "--config",
        MERGE_CONFIG,
    ]);
    build.current_dir(&src_tauri);
    run_step("bundle (tauri)", &mut build)?;
    find_deb(&out_dir)
}

/// The host's target triple, as `rustc -vV` says.
fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = process::tool(rustc)
        .arg("-vV")
        .output()
        .context("running `rustc -vV`")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(|host| host.trim().to_owned())
        .context("`rustc -vV` did not print the host triple")
}

/// The package put together by hand: the app built as `cargo tauri build` builds it
/// (`tauri/custom-protocol`: assets served from the binary), a control file, the
/// binaries, the menu entry, the icons and the unit.
fn with_dpkg_deb(target: &Path) -> Result<PathBuf> {
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
    let version = env!("CARGO_PKG_VERSION");
    let arch = dpkg_architecture()?;
    let out_dir = target.join("release").join("bundle").join("dpkg-deb");
    let stage = out_dir.join(format!("tocsin_{version}_{arch}"));
    if stage.exists() {
        std::fs::remove_dir_all(&stage)?;
    }
    let root = repo_root();
    let release = target.join("release");
    let files: Vec<(PathBuf, String, u32)> = [
        (
            release.join("tocsin-desktop"),
            "usr/bin/tocsin-desktop",
            0o755,
        ),
        (
            release.join("tocsin-gateway"),
            "usr/bin/tocsin-gateway",
            0o755,
        ),
        (
            root.join("src-tauri/packaging/tocsin-desktop.desktop"),
            // Named as Tauri's bundler names it (the product name).
            "usr/share/applications/Tocsin.desktop",
            0o644,
        ),
        (
            root.join("src-tauri/packaging/tocsin-gateway.service"),
            "lib/systemd/system/tocsin-gateway.service",
            0o644,
        ),
    ]
    .into_iter()
    .map(|(from, to, mode)| (from, to.to_owned(), mode))
    .chain(
        [
            ("32x32", "32x32"),
            ("64x64", "64x64"),
            ("128x128", "128x128"),
            ("128x128@2x", "256x256"),
            ("512x512", "512x512"),
        ]
        .into_iter()
        .map(|(file, size)| {
            (
                root.join("icons").join(format!("{file}.png")),
                format!("usr/share/icons/hicolor/{size}/apps/tocsin-desktop.png"),
                0o644,
            )
        }),
    )
    .collect();
    let mut installed_bytes = 0;
    for (from, to, mode) in &files {
        installed_bytes += install(from, &stage.join(to), *mode)?;
    }
    let control = format!(
        "Package: tocsin\n\
         Version: {version}\n\
         Architecture: {arch}\n\
         Maintainer: Tocsin\n\
         Installed-Size: {}\n\
         Depends: {DEPENDS}\n\
         Section: net\n\
         Priority: optional\n\
         Description: Real-time notifications for law firms\n \
         The Tocsin desktop tray app (tocsin-desktop) and the Tocsin gateway\n \
         (tocsin-gateway) with its systemd unit, installed but not enabled.\n",
        installed_bytes.div_ceil(1024)
    );
    let debian = stage.join("DEBIAN");
    std::fs::create_dir_all(&debian)?;
    std::fs::write(debian.join("control"), control)?;
    let deb = out_dir.join(format!("tocsin_{version}_{arch}.deb"));
    let mut build = process::tool("dpkg-deb");
    build
        .args(["--root-owner-group", "--build"])
        .arg(&stage)
        .arg(&deb);
    run_step("bundle (dpkg-deb)", &mut build)?;
    Ok(deb)
}

/// Copies `from` to `to` with `mode`, creating directories; returns its size.
fn install(from: &Path, to: &Path, mode: u32) -> Result<u64> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    let size = std::fs::copy(from, to)
        .with_context(|| format!("copying {} to {}", from.display(), to.display()))?;
    set_mode(to, mode)?;
    Ok(size)
}

/// `chmod mode`.
#[cfg(unix)]
fn set_mode(path: &Path, mode: u32) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
        .with_context(|| format!("chmod {mode:o} {}", path.display()))
}

/// Debian packages are built on Unix only.
#[cfg(not(unix))]
fn set_mode(_path: &Path, _mode: u32) -> Result<()> {
    bail!("building a .deb needs a Unix system")
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

/// Removes earlier packages from `dir`, so the one found after the build is new.
fn remove_debs(dir: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path.extension().is_some_and(|ext| ext == "deb") {
            std::fs::remove_file(&path)
                .with_context(|| format!("removing the old {}", path.display()))?;
        }
    }
    Ok(())
}

/// The one .deb the bundler wrote in `dir`.
fn find_deb(dir: &Path) -> Result<PathBuf> {
    let debs: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("reading {}", dir.display()))?
        .filter_map(|entry| entry.ok().map(|entry| entry.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "deb"))
        .collect();
    match debs.as_slice() {
        [deb] => Ok(deb.clone()),
        [] => bail!("the bundler wrote no .deb in {}", dir.display()),
        _ => bail!("several .deb files in {}: {debs:?}", dir.display()),
    }
}

/// Prints the package's path, size, control fields and files.
fn show(deb: &Path) -> Result<()> {
    let size = std::fs::metadata(deb)?.len();
    run_step(
        "package info",
        process::tool("dpkg-deb").arg("--info").arg(deb),
    )?;
    let listing = process::tool("dpkg-deb")
        .arg("--contents")
        .arg(deb)
        .output()
        .context("running `dpkg-deb --contents`")?;
    println!("==> package files");
    for line in String::from_utf8_lossy(&listing.stdout).lines() {
        // Directories (`drwxr-xr-x …`) add nothing to read.
        if !line.starts_with('d') {
            println!("{line}");
        }
    }
    #[allow(clippy::cast_precision_loss)] // A size for a person to read.
    let megabytes = size as f64 / (1024.0 * 1024.0);
    println!("==> built {} ({megabytes:.1} MB)", deb.display());
    println!("Install with: sudo apt install {}", deb.display());
    Ok(())
}
