//! Where desktop tests save what a human should look at (screenshots):
//! `$TOCSIN_TEST_ARTIFACTS` when set, else `<workspace>/target/test-artifacts/`.

use std::path::PathBuf;

use anyhow::{Context, Result};

use crate::binary::workspace_root;

/// The environment variable naming the artifacts directory.
pub const ARTIFACTS_ENV: &str = tocsin_harness::env::TEST_ARTIFACTS;

/// The artifacts directory, created if missing.
pub fn artifacts_dir() -> Result<PathBuf> {
    let dir = match std::env::var_os(ARTIFACTS_ENV) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join("target").join("test-artifacts"),
    };
    std::fs::create_dir_all(&dir)
        .with_context(|| format!("cannot create the artifacts directory {}", dir.display()))?;
    Ok(dir)
}

/// The path of artifact `name` (e.g. `panel-fr.png`) in [`artifacts_dir`].
pub fn artifact(name: &str) -> Result<PathBuf> {
    Ok(artifacts_dir()?.join(name))
}
