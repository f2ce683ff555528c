//! Finds the `tocsin-gateway` binary, building it first when it is missing or older
//! than its sources, so that a plain `cargo test -p tocsin-e2e` tests current code.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;
use std::time::SystemTime;

/// The environment variable that names a prebuilt gateway binary; when set, the
/// harness uses it as is and never builds.
pub const GATEWAY_BIN_ENV: &str = "TOCSIN_GATEWAY_BIN";

/// The path of the gateway binary, built at most once per test process.
pub fn gateway_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(locate_or_build)
}

/// The workspace root: this crate lives in `<root>/tests`.
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ has a parent: the workspace root")
        .to_path_buf()
}

fn locate_or_build() -> PathBuf {
    if let Some(path) = std::env::var_os(GATEWAY_BIN_ENV) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{GATEWAY_BIN_ENV}={} is not a file",
            path.display()
        );
        return path;
    }
    let root = workspace_root();
    let target_dir = std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .map(|dir| {
            if dir.is_relative() {
                root.join(dir)
            } else {
                dir
            }
        })
        .unwrap_or_else(|| root.join("target"));
    let binary = target_dir.join("debug").join("tocsin-gateway");
    if is_stale(&binary, &root) {
        build(&root);
    }
    assert!(
        binary.is_file(),
        "cargo built tocsin-gateway but {} does not exist",
        binary.display()
    );
    binary
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

fn build(root: &Path) {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    eprintln!("tocsin-e2e: building tocsin-gateway (missing or older than its sources)");
    let status = Command::new(cargo)
        .current_dir(root)
        .args(["build", "-p", "tocsin-gateway", "--bin", "tocsin-gateway"])
        .status()
        .expect("cargo can be started to build tocsin-gateway");
    assert!(status.success(), "cargo build -p tocsin-gateway failed");
}

/// The `tocsin` terminal client, built beside the gateway (`cargo build --workspace
/// --bins` builds both); built here once when missing.
pub fn client_binary() -> &'static Path {
    static BINARY: OnceLock<PathBuf> = OnceLock::new();
    BINARY.get_or_init(|| {
        let binary = gateway_binary().with_file_name("tocsin");
        if !binary.is_file() {
            let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
            let status = Command::new(cargo)
                .current_dir(workspace_root())
                .args(["build", "-p", "tocsin-client", "--bin", "tocsin"])
                .status()
                .expect("cargo can be started to build tocsin");
            assert!(status.success(), "cargo build -p tocsin-client failed");
        }
        binary
    })
}
