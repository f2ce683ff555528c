//! Running commands: the repository root, cargo, and `==> step` headers.
//!
//! Every step prints one header before it starts, inherits the terminal so its own
//! output (compiler errors, nextest's summary) is shown unchanged, and turns a
//! non-zero exit into an error that names the step, so the caller stops there.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

/// The workspace root: the parent of this crate's manifest directory.
pub fn repo_root() -> &'static Path {
    let manifest_dir = Path::new(env!("CARGO_MANIFEST_DIR"));
    manifest_dir.parent().unwrap_or(manifest_dir)
}

/// A `cargo` command run from the repository root.
///
/// Uses the cargo that started xtask (`$CARGO`) so the toolchain stays the same, and
/// removes the variables `cargo run` gave xtask about itself: build scripts such as
/// ring's track `CARGO_PKG_NAME` and `CARGO_MANIFEST_DIR`, so leaving them would make
/// every build from xtask and every build from a terminal rebuild half the tree.
pub fn cargo<I, S>(args: I) -> Command
where
    I: IntoIterator<Item = S>,
    S: Into<OsString>,
{
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = tool(program);
    command.args(args.into_iter().map(Into::into));
    command
}

/// Any program run from the repository root, without the variables `cargo run` set
/// for xtask itself (they would make every cargo started below rebuild ring).
pub fn tool(program: impl Into<OsString>) -> Command {
    let mut command = Command::new(program.into());
    command.current_dir(repo_root());
    for (name, _) in std::env::vars_os() {
        if name.to_str().is_some_and(is_set_by_cargo_run) {
            command.env_remove(name);
        }
    }
    command
}

/// True for the variables `cargo run` sets for the program it runs (see "Environment
/// variables Cargo sets for crates"); `CARGO` itself is kept on purpose.
fn is_set_by_cargo_run(name: &str) -> bool {
    name.starts_with("CARGO_PKG_")
        || matches!(
            name,
            "CARGO_MANIFEST_DIR"
                | "CARGO_MANIFEST_PATH"
                | "CARGO_MANIFEST_LINKS"
                | "CARGO_CRATE_NAME"
                | "CARGO_BIN_NAME"
                | "CARGO_PRIMARY_PACKAGE"
                | "OUT_DIR"
        )
}

/// Prints the header that opens a step.
pub fn header(title: &str) {
    println!("==> {title}");
}

/// Runs a command as a named step: prints `==> name: command`, waits, fails on a
/// non-zero exit.
pub fn run_step(name: &str, command: &mut Command) -> Result<()> {
    header(&format!("{name}: {}", describe(command)));
    run(name, command)
}

/// Runs a command with the terminal attached and fails, naming `what`, unless it
/// exits 0.
pub fn run(what: &str, command: &mut Command) -> Result<()> {
    let status = command
        .status()
        .with_context(|| format!("{what}: could not start `{}`", describe(command)))?;
    if !status.success() {
        bail!("{what} failed ({status}): `{}`", describe(command));
    }
    Ok(())
}

/// True when the command starts and exits 0; its output is discarded.
pub fn succeeds(command: &mut Command) -> bool {
    command
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The command as one would type it (program name and arguments, unquoted).
pub fn describe(command: &Command) -> String {
    let program = Path::new(command.get_program())
        .file_name()
        .unwrap_or(command.get_program())
        .to_string_lossy()
        .into_owned();
    std::iter::once(program)
        .chain(
            command
                .get_args()
                .map(|arg| arg.to_string_lossy().into_owned()),
        )
        .collect::<Vec<_>>()
        .join(" ")
}

/// The absolute path of the debug `tocsin-gateway` binary that
/// `cargo build -p tocsin-gateway` produces.
pub fn gateway_binary() -> Result<PathBuf> {
    debug_binary(tocsin_harness::env::GATEWAY_BINARY)
}

/// The absolute path of the debug `tocsin-desktop` binary (the tray app).
pub fn desktop_binary() -> Result<PathBuf> {
    debug_binary(tocsin_harness::env::DESKTOP_BINARY)
}

/// The absolute path of a debug binary of the workspace.
pub fn debug_binary(name: &str) -> Result<PathBuf> {
    Ok(target_dir()?
        .join(tocsin_harness::env::DEBUG_PROFILE)
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX)))
}

/// The target directory, asked of `cargo metadata` so a configured one is honoured.
pub fn target_dir() -> Result<PathBuf> {
    let output = cargo(["metadata", "--format-version", "1", "--no-deps"])
        .stderr(Stdio::inherit())
        .output()
        .context("could not run `cargo metadata`")?;
    if !output.status.success() {
        bail!("`cargo metadata` failed ({})", output.status);
    }
    let metadata: serde_json::Value =
        serde_json::from_slice(&output.stdout).context("`cargo metadata` printed bad JSON")?;
    let Some(target_dir) = metadata["target_directory"].as_str() else {
        bail!("`cargo metadata` did not say where the target directory is");
    };
    Ok(PathBuf::from(target_dir))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn describe_shows_the_command_as_typed() {
        let command = cargo(["fmt", "--all", "--", "--check"]);
        assert!(describe(&command).ends_with("fmt --all -- --check"));
        assert!(repo_root().join("xtask").is_dir());
    }

    #[test]
    fn cargo_run_variables_are_recognised_but_cargo_home_is_kept() {
        assert!(is_set_by_cargo_run("CARGO_PKG_NAME"));
        assert!(is_set_by_cargo_run("CARGO_MANIFEST_DIR"));
        assert!(!is_set_by_cargo_run("CARGO_HOME"));
        assert!(!is_set_by_cargo_run("CARGO_TARGET_DIR"));
        assert!(!is_set_by_cargo_run("CARGO"));
    }
}
