//! `cargo xtask test`: the one command the README gives and CI runs.
//!
//! Steps, in order, stopping at the first failure: setup, the panel's type check and
//! unit tests, the web SDK's type check, unit tests and size budget, both builds (the
//! desktop crate embeds the panel; the browser tests serve the SDK), the generated
//! TypeScript protocol types' freshness, `cargo fmt --check`, clippy
//! with warnings denied, the advisory check of Cargo.lock (cargo-deny, offline, against
//! a RustSec snapshot: see `deny.toml`), build every binary, doc tests, the real
//! keyring test, the Debian packages (the release gateway, packed twice: the second
//! time under a higher version, for the package test's upgrade; ~7 min on 2 cores,
//! nearly all of it the release build), nextest. The binaries are built first, into
//! the one default target directory, so the end-to-end tests start the already-built
//! gateway and desktop app
//! (their paths are passed in `TOCSIN_GATEWAY_BIN` and `TOCSIN_DESKTOP_BIN`) instead of
//! building them again under a test's timeout.

use std::time::Instant;

use anyhow::Result;
use clap::Args;
use tocsin_harness::env;

use crate::process::{self, cargo, run_step};
use crate::{advisories, bundle, gen_types, sdk, setup, ui};

/// The environment variable that tells the end-to-end tests which gateway binary to run.
pub const GATEWAY_BIN_ENV: &str = tocsin_harness::env::GATEWAY_BIN;
/// The environment variable that tells the desktop tests which app binary to run.
pub const DESKTOP_BIN_ENV: &str = tocsin_harness::env::DESKTOP_BIN;
/// Set in CI: a desktop test that cannot find what it needs fails instead of skipping.
pub const REQUIRE_DESKTOP_ENV: &str = tocsin_harness::env::REQUIRE_DESKTOP;

/// Options of `cargo xtask test`.
#[derive(Debug, Args)]
pub struct TestArgs {
    /// Skip installing system packages and cargo tools.
    #[arg(long)]
    no_setup: bool,
    /// Skip the generated-types, fmt and clippy checks.
    #[arg(long)]
    quick: bool,
}

/// Runs the pipeline.
pub fn run(args: &TestArgs) -> Result<()> {
    if !args.no_setup {
        setup::run()?;
    }
    if !args.quick {
        ui::test()?;
        sdk::test()?;
    }
    ui::build()?;
    // The browser tests serve sdk/web/dist to Chromium.
    sdk::build()?;
    if !args.quick {
        gen_types::check()?;
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
    advisories::check()?;
    run_step("build", &mut cargo(["build", "--workspace", "--bins"]))?;
    let gateway = process::gateway_binary()?;
    let desktop = process::desktop_binary()?;
    println!("{GATEWAY_BIN_ENV}={}", gateway.display());
    println!("{DESKTOP_BIN_ENV}={}", desktop.display());

    // Doc tests first: nextest's summary line is then the run's last word.
    run_step(
        "doc tests",
        cargo(["test", "--workspace", "--doc"]).env(GATEWAY_BIN_ENV, &gateway),
    )?;
    run_step("secret store (real keyring)", &mut keyring_test())?;
    let packages = build_packages()?;
    let mut nextest = cargo(["nextest", "run", "--workspace", "--no-fail-fast"]);
    if running_in_ci() {
        nextest.args(["--profile", "ci"]);
        nextest.env(REQUIRE_DESKTOP_ENV, "1");
    }
    nextest
        .env(GATEWAY_BIN_ENV, &gateway)
        .env(DESKTOP_BIN_ENV, &desktop)
        .env(env::GATEWAY_DEB, &packages.first.gateway)
        .env(env::GATEWAY_DBGSYM_DEB, &packages.first.gateway_dbgsym)
        .env(env::GATEWAY_DEB_UPGRADE, &packages.upgrade.gateway);
    run_step("nextest", &mut nextest)?;
    println!("==> all steps passed");
    Ok(())
}

/// The version suffix of the package the package test upgrades to.
const UPGRADE_SUFFIX: &str = "+upgrade1";

/// The gateway's packages at the workspace version and repacked at a higher one.
struct Packages {
    first: bundle::Built,
    upgrade: bundle::Built,
}

/// `cargo xtask bundle --gateway-only`, then again with [`UPGRADE_SUFFIX`] (cargo
/// finds the release build fresh: the same binary, repacked). Only the server
/// packages: the desktop's release build would add ~9 minutes to CI for a package
/// the tests do not install. Timed, for the CI budget.
fn build_packages() -> Result<Packages> {
    let started = Instant::now();
    let first = bundle::build(true, None)?;
    let upgrade = bundle::build(true, Some(UPGRADE_SUFFIX))?;
    println!("==> packages built in {} s", started.elapsed().as_secs());
    Ok(Packages { first, upgrade })
}

/// True when the `CI` variable is set (GitHub Actions, GitLab and most others set it).
pub fn running_in_ci() -> bool {
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
