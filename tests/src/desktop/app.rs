//! The `tocsin-desktop` binary under test: where it is, and the skip rule for
//! machines without it. How to start it inside a session ([`AppOptions`],
//! [`DesktopApp`]) is the harness's ([`tocsin_harness::desktop::app`]).

use std::path::PathBuf;

pub use tocsin_harness::desktop::app::{AppOptions, DesktopApp, SESSION_TOOLS, SignIn};
use tocsin_harness::process::on_path;

/// The environment variable naming a prebuilt desktop binary.
pub const DESKTOP_BIN_ENV: &str = tocsin_harness::env::DESKTOP_BIN;
/// Set to `1` to make a missing binary or tool fail the desktop tests instead of
/// skipping them (CI).
pub const REQUIRE_DESKTOP_ENV: &str = tocsin_harness::env::REQUIRE_DESKTOP;

/// The desktop binary: `$TOCSIN_DESKTOP_BIN`, else `<target>/debug/tocsin-desktop`;
/// `Err` says why there is none (the tests then skip).
pub fn desktop_binary() -> std::result::Result<PathBuf, String> {
    tocsin_harness::binary::desktop_binary().map_err(|err| format!("{err:#}"))
}

/// True when desktop tests must not skip.
pub fn desktop_required() -> bool {
    std::env::var(REQUIRE_DESKTOP_ENV).is_ok_and(|v| v == "1")
}

/// Decides whether `test` can run: `false` after printing why not (missing tools),
/// unless [`REQUIRE_DESKTOP_ENV`] is set, in which case it panics.
pub fn skip_without_tools(test: &str, tools: &[&str]) -> bool {
    let missing: Vec<&str> = SESSION_TOOLS
        .iter()
        .chain(tools)
        .copied()
        .filter(|tool| !on_path(tool))
        .collect();
    if missing.is_empty() {
        return false;
    }
    let reason = format!("missing system tools {missing:?}");
    assert!(
        !desktop_required(),
        "{test}: {REQUIRE_DESKTOP_ENV}=1 but {reason}"
    );
    eprintln!("SKIPPED {test}: {reason} (set {REQUIRE_DESKTOP_ENV}=1 to fail instead)");
    true
}

/// The desktop binary for `test`, or `None` after printing why it is skipped (no
/// binary, missing tools); panics instead when [`REQUIRE_DESKTOP_ENV`] is set, or
/// when [`DESKTOP_BIN_ENV`] names a file that does not exist.
pub fn require_desktop(test: &str, tools: &[&str]) -> Option<PathBuf> {
    if skip_without_tools(test, tools) {
        return None;
    }
    match desktop_binary() {
        Ok(binary) => Some(binary),
        Err(reason) => {
            // A binary named explicitly but missing is a mistake, not a reason to skip.
            let named = std::env::var_os(DESKTOP_BIN_ENV).is_some_and(|v| !v.is_empty());
            assert!(!desktop_required() && !named, "{test}: {reason}");
            eprintln!("SKIPPED {test}: {reason} (set {REQUIRE_DESKTOP_ENV}=1 to fail instead)");
            None
        }
    }
}
