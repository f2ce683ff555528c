//! `cargo xtask test`: the one command the README gives and CI runs.
//!
//! Steps, in order, stopping at the first failure: setup, `cargo fmt --check`,
//! clippy with warnings denied, build every binary, doc tests, the real keyring test,
//! nextest. The binaries
//! are built first, into the one default target directory, so the end-to-end tests
//! start the already-built gateway (its path is passed in `TOCSIN_GATEWAY_BIN`) instead
//! of building it again under a test's timeout.

use anyhow::Result;
use clap::Args;

use crate::process::{self, cargo, run_step};
use crate::setup;

/// The environment variable that tells the end-to-end tests which gateway binary to run.
pub const GATEWAY_BIN_ENV: &str = "TOCSIN_GATEWAY_BIN";

/// Options of `cargo xtask test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Skip installing system packages and cargo tools.
    #[arg(long)]
    no_setup: bool,
    /// Skip the fmt and clippy checks.
    #[arg(long)]
    quick: bool,
}

/// Runs the pipeline.
pub fn run(args: &TestArgs) -> Result<()> {
    if !args.no_setup {
        setup::run()?;
    }
    if !args.quick {
        run_step("fmt", &mut cargo(["fmt", "--all", "--", "--check"]))?;
        run_step(
            "clippy",
            &mut cargo([
                "clippy",
                "--workspace",
                "--all-targets",
                "--",
                "-D",
                "warnings",
            ]),
        )?;
    }
    run_step("build", &mut cargo(["build", "--workspace", "--bins"]))?;
    let gateway = process::gateway_binary()?;
    println!("{GATEWAY_BIN_ENV}={}", gateway.display());

    // Doc tests first: nextest's summary line is then the run's last word.
    run_step(
        "doc tests",
        cargo(["test", "--workspace", "--doc"]).env(GATEWAY_BIN_ENV, &gateway),
    )?;
    run_step("secret store (real keyring)", &mut keyring_test())?;
    let mut nextest = cargo(["nextest", "run", "--workspace", "--no-fail-fast"]);
    if running_in_ci() {
        nextest.args(["--profile", "ci"]);
    }
    run_step("nextest", nextest.env(GATEWAY_BIN_ENV, &gateway))?;
    println!("==> all steps passed");
    Ok(())
}

/// True when the `CI` variable is set (GitHub Actions, GitLab and most others set it).
fn running_in_ci() -> bool {
    std::env::var_os("CI").is_some_and(|value| !value.is_empty() && value != "false")
}

/// The client's secret-store tests against a real Secret Service: a private session
/// bus (dbus-run-session) with gnome-keyring unlocked by a throwaway password and
/// home, so nothing touches the developer's own keyring. `TOCSIN_REQUIRE_KEYRING`
/// turns the test's "no keyring here" skip into a failure.
fn keyring_test() -> std::process::Command {
    let script = r#"eval "$(printf pass | env HOME="$(mktemp -d)" gnome-keyring-daemon --unlock --components=secrets)"; export TOCSIN_REQUIRE_KEYRING=1; exec "$0" test -p tocsin-client --lib -- secrets::"#;
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = process::tool("dbus-run-session");
    command.args(["--", "sh", "-c", script]).arg(cargo);
    command
}
