//! Where the workspace's binaries are: `tocsin-gateway` (built first when it is
//! missing or older than its sources, so a plain `cargo test -p tocsin-e2e` tests
//! current code), the `tocsin` terminal client beside it, and `tocsin-desktop`.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

use anyhow::{Context, Result, bail};

use crate::env;

/// The workspace root: this crate lives in `<root>/crates/tocsin-harness`.
pub fn workspace_root() -> Result<PathBuf> {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .ancestors()
        .nth(2)
        .map(Path::to_path_buf)
        .context("crates/tocsin-harness has no workspace root two levels up")
}

/// Cargo's target directory: `$CARGO_TARGET_DIR` (relative to the root), else
/// `<root>/target`.
pub fn target_dir() -> Result<PathBuf> {
    let root = workspace_root()?;
    Ok(match std::env::var_os(env::CARGO_TARGET_DIR) {
        Some(dir) if PathBuf::from(&dir).is_relative() => root.join(dir),
        Some(dir) => PathBuf::from(dir),
        None => root.join("target"),
    })
}

/// The gateway binary: `$TOCSIN_GATEWAY_BIN` as is, else the debug build, built at
/// most once per process when missing or stale.
pub fn gateway_binary() -> Result<PathBuf> {
    static BINARY: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| locate_or_build_gateway().map_err(|err| format!("{err:#}")))
        .clone()
        .map_err(anyhow::Error::msg)
}

/// The `tocsin` terminal client, built beside the gateway (`cargo build --workspace
/// --bins` builds both); built once when missing.
pub fn client_binary() -> Result<PathBuf> {
    static BINARY: OnceLock<std::result::Result<PathBuf, String>> = OnceLock::new();
    BINARY
        .get_or_init(|| {
            let locate = || {
                let binary = gateway_binary()?.with_file_name(env::CLIENT_BINARY);
                if !binary.is_file() {
                    cargo_build(&["-p", "tocsin-client", "--bin", env::CLIENT_BINARY])?;
                }
                Ok::<_, anyhow::Error>(binary)
            };
            locate().map_err(|err| format!("{err:#}"))
        })
        .clone()
        .map_err(anyhow::Error::msg)
}

/// The desktop binary: `$TOCSIN_DESKTOP_BIN`, else `<target>/debug/tocsin-desktop`;
/// never built here (it needs the UI built first: `cargo xtask test` does both).
pub fn desktop_binary() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env::DESKTOP_BIN).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{}={} is not a file", env::DESKTOP_BIN, path.display());
        }
        return Ok(path);
    }
    let binary = target_dir()?
        .join(env::DEBUG_PROFILE)
        .join(env::DESKTOP_BINARY);
    if !binary.is_file() {
        bail!(
            "{} is unset and {} does not exist (build it: cargo build -p tocsin-desktop)",
            env::DESKTOP_BIN,
            binary.display()
        );
    }
    Ok(binary)
}

fn locate_or_build_gateway() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os(env::GATEWAY_BIN) {
        let path = PathBuf::from(path);
        if !path.is_file() {
            bail!("{}={} is not a file", env::GATEWAY_BIN, path.display());
        }
        return Ok(path);
    }
    let root = workspace_root()?;
    let binary = target_dir()?
        .join(env::DEBUG_PROFILE)
        .join(env::GATEWAY_BINARY);
    if is_stale(&binary, &root) {
        eprintln!("tocsin-harness: building tocsin-gateway (missing or older than its sources)");
        cargo_build(&["-p", "tocsin-gateway", "--bin", env::GATEWAY_BINARY])?;
    }
    if !binary.is_file() {
        bail!(
            "cargo built tocsin-gateway but {} does not exist",
            binary.display()
        );
    }
    Ok(binary)
}

/// `cargo build ARGS` from the workspace root, with the cargo running the tests.
fn cargo_build(args: &[&str]) -> Result<()> {
    let cargo = std::env::var_os(env::CARGO).unwrap_or_else(|| "cargo".into());
    let status = Command::new(cargo)
        .current_dir(workspace_root()?)
        .arg("build")
        .args(args)
        .status()
        .context("cannot start cargo to build a missing binary")?;
    if !status.success() {
        bail!("cargo build {} failed ({status})", args.join(" "));
    }
    Ok(())
}

/// True when the binary is missing or any gateway/protocol source is newer than it.
/// Cargo would find out the same thing, but asking it costs a lock round per test
/// process under nextest; comparing times is enough to avoid testing stale code.
fn is_stale(binary: &Path, root: &Path) -> bool {
    let Some(built) = modified(binary) else {
        return true;
    };
    // Only what the binary is built from: a touched README or test file would make
    // every test process ask cargo again for nothing.
    let sources = [
        root.join("crates/tocsin-gateway/src"),
        root.join("crates/tocsin-gateway/Cargo.toml"),
        root.join("crates/tocsin-protocol/src"),
        root.join("crates/tocsin-protocol/Cargo.toml"),
    ];
    sources
        .iter()
        .filter_map(|path| newest(path))
        .any(|time| time > built)
}

fn modified(path: &Path) -> Option<SystemTime> {
    std::fs::metadata(path).and_then(|m| m.modified()).ok()
}

/// The newest modification time of a file, or of any file under a directory.
fn newest(path: &Path) -> Option<SystemTime> {
    let metadata = std::fs::metadata(path).ok()?;
    if !metadata.is_dir() {
        return metadata.modified().ok();
    }
    std::fs::read_dir(path)
        .ok()?
        .filter_map(Result::ok)
        .filter_map(|entry| newest(&entry.path()))
        .max()
}
