//! The workspace's binaries for the tests, found (and the gateway built when stale)
//! by [`tocsin_harness::binary`]; a binary that cannot be had fails the test.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

/// The environment variable that names a prebuilt gateway binary.
pub const GATEWAY_BIN_ENV: &str = tocsin_harness::env::GATEWAY_BIN;

/// The path of the gateway binary, built at most once per test process.
pub fn gateway_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        tocsin_harness::binary::gateway_binary().unwrap_or_else(|err| panic!("{err:?}"))
    })
}

/// The workspace root.
pub fn workspace_root() -> PathBuf {
    tocsin_harness::binary::workspace_root().unwrap_or_else(|err| panic!("{err:?}"))
}

/// The `tocsin` terminal client, built beside the gateway when missing.
pub fn client_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        tocsin_harness::binary::client_binary().unwrap_or_else(|err| panic!("{err:?}"))
    })
}
