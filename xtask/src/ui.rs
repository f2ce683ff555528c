//! The panel's web front end (`ui/`): installed with `npm ci` and built with Vite into
//! `ui/dist`, which the desktop crate embeds at compile time (Tauri's `frontendDist`).
//! So the UI is built before any cargo command that compiles `tocsin-desktop`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::process::{self, repo_root, run_step};

/// The oldest Node.js major version Vite 8 runs on.
const MIN_NODE_MAJOR: u32 = 20;

/// The `ui/` directory.
fn ui_dir() -> PathBuf {
    repo_root().join("ui")
}

/// Checks Node.js and npm are there and recent enough, with what to do if not.
fn check_node() -> Result<()> {
    let output = process::tool("node")
        .arg("--version")
        .output()
        .context("Node.js is needed to build the panel: install Node.js 20 or newer (https://nodejs.org) and run again")?;
    let version = String::from_utf8_lossy(&output.stdout);
    let major: u32 = version
        .trim()
        .trim_start_matches('v')
        .split('.')
        .next()
        .and_then(|m| m.parse().ok())
        .unwrap_or(0);
    if major < MIN_NODE_MAJOR {
        bail!(
            "Node.js {} is too old to build the panel: install Node.js {MIN_NODE_MAJOR} or newer",
            version.trim()
        );
    }
    Ok(())
}

/// Installs the locked npm packages when `node_modules` is missing or older than
/// the lock file.
pub fn install() -> Result<()> {
    check_node()?;
    let dir = ui_dir();
    let lock = dir.join("package-lock.json");
    let installed = dir.join("node_modules").join(".package-lock.json");
    let fresh = match (std::fs::metadata(&lock), std::fs::metadata(&installed)) {
        (Ok(lock), Ok(installed)) => match (lock.modified(), installed.modified()) {
            (Ok(lock), Ok(installed)) => installed >= lock,
            _ => false,
        },
        _ => false,
    };
    if fresh {
        return Ok(());
    }
    let mut npm = process::tool("npm");
    npm.args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir);
    run_step("ui: npm ci", &mut npm)
}

/// Builds `ui/dist`.
pub fn build() -> Result<()> {
    install()?;
    let mut npm = process::tool("npm");
    npm.args(["run", "build"]).current_dir(ui_dir());
    run_step("ui: build", &mut npm)
}

/// Type-checks the UI and runs its unit tests.
pub fn test() -> Result<()> {
    install()?;
    let mut check = process::tool("npm");
    check.args(["run", "check"]).current_dir(ui_dir());
    run_step("ui: svelte-check", &mut check)?;
    let mut test = process::tool("npm");
    test.args(["test"]).current_dir(ui_dir());
    run_step("ui: unit tests", &mut test)
}
