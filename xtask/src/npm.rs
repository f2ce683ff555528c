//! The workspace's Node.js packages (`ui/`, the panel; `sdk/web/`, the browser SDK):
//! Node.js checked once, `npm ci` when `node_modules` is missing or older than the
//! lock file, and `npm run <script>` as a `==> step`.

use std::path::PathBuf;

use anyhow::{Context, Result, bail};

use crate::process::{self, repo_root, run_step};

/// The oldest Node.js major version Vite 8 (the panel) and Vitest 4 run on.
const MIN_NODE_MAJOR: u32 = 20;

/// A directory with a package.json and a package-lock.json.
#[derive(Debug, Clone, Copy)]
pub struct Package {
    /// Its path from the repository root.
    pub dir: &'static str,
    /// The prefix of its steps' names (`ui`, `sdk`).
    pub label: &'static str,
}

impl Package {
    /// The package's directory.
    pub fn path(self) -> PathBuf {
        repo_root().join(self.dir)
    }

    /// Installs the locked npm packages when `node_modules` is missing or older than
    /// the lock file.
    pub fn install(self) -> Result<()> {
        check_node()?;
        let dir = self.path();
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
        run_step(&format!("{}: npm ci", self.label), &mut npm)
    }

    /// Runs `npm run <script>`, named `<label>: <what>` in the log.
    pub fn run(self, script: &str, what: &str) -> Result<()> {
        self.install()?;
        let mut npm = process::tool("npm");
        npm.args(["run", script]).current_dir(self.path());
        run_step(&format!("{}: {what}", self.label), &mut npm)
    }
}

/// Checks Node.js and npm are there and recent enough, with what to do if not.
fn check_node() -> Result<()> {
    let output = process::tool("node")
        .arg("--version")
        .output()
        .context("Node.js is needed to build the panel and the web SDK: install Node.js 20 or newer (https://nodejs.org) and run again")?;
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
            "Node.js {} is too old to build the panel and the web SDK: install Node.js {MIN_NODE_MAJOR} or newer",
            version.trim()
        );
    }
    Ok(())
}
