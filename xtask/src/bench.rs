//! `cargo xtask bench`: builds the gateway, the desktop app and the load generator,
//! then runs `tocsin-bench` (crates/tocsin-bench) with the binaries it measures.
//!
//! Real runs use release builds, as users run them. `--smoke` (what CI runs, to keep
//! the tool working) uses the debug builds `cargo xtask test` already made: its figures
//! mean nothing, and CI should not build the world a second time for them.

use std::ffi::OsString;
use std::path::PathBuf;

use anyhow::Result;
use clap::Args;

use crate::pipeline;
use crate::process::{self, cargo, run_step};
use crate::ui;

/// `cargo xtask bench` flags; the rest go to `tocsin-bench` as they are.
#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Tiny sizes, one run, debug builds: checks the tool works (CI).
    #[arg(long)]
    smoke: bool,
    /// Use the binaries already built; do not run cargo or npm.
    #[arg(long)]
    no_build: bool,
    /// Flags for tocsin-bench (`--full`, `--runs N`, `--only idle,fanout`, `--out F`);
    /// `cargo xtask bench -- --help` lists them.
    #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
    rest: Vec<OsString>,
}

/// Builds what is measured and runs the benchmarks.
pub fn run(args: &BenchArgs) -> Result<()> {
    let profile = if args.smoke { "debug" } else { "release" };
    let desktop = wants_desktop(&args.rest);
    if !args.no_build {
        let mut build = cargo(["build", "-p", "tocsin-gateway", "-p", "tocsin-bench"]);
        if desktop {
            // The app embeds the panel's built front end.
            ui::build()?;
            build.args(["-p", "tocsin-desktop"]);
        }
        if !args.smoke {
            build.arg("--release");
        }
        run_step(&format!("bench: build ({profile})"), &mut build)?;
    }
    let dir = process::target_dir()?.join(profile);
    let binary =
        |name: &str| -> PathBuf { dir.join(format!("{name}{}", std::env::consts::EXE_SUFFIX)) };
    let mut bench = process::tool(binary(tocsin_harness::env::BENCH_BINARY));
    bench
        .env(
            tocsin_harness::env::GATEWAY_BIN,
            binary(tocsin_harness::env::GATEWAY_BINARY),
        )
        .env(
            tocsin_harness::env::DESKTOP_BIN,
            binary(tocsin_harness::env::DESKTOP_BINARY),
        );
    if args.smoke {
        bench.arg("--smoke");
    }
    if pipeline::running_in_ci() {
        // As for the tests: in CI the desktop scenario fails rather than skips.
        bench.env(pipeline::REQUIRE_DESKTOP_ENV, "1");
    }
    bench.args(&args.rest);
    run_step("bench", &mut bench)
}

/// Whether the run includes the desktop scenario (all do, unless `--only` leaves it out).
fn wants_desktop(rest: &[OsString]) -> bool {
    let args: Vec<String> = rest
        .iter()
        .map(|a| a.to_string_lossy().into_owned())
        .collect();
    let only = args.iter().enumerate().find_map(|(i, arg)| {
        arg.strip_prefix("--only=")
            .map(str::to_owned)
            .or_else(|| (arg == "--only").then(|| args.get(i + 1).cloned().unwrap_or_default()))
    });
    only.is_none_or(|list| list.split(',').any(|name| name == "desktop"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(list: &[&str]) -> Vec<OsString> {
        list.iter().map(OsString::from).collect()
    }

    #[test]
    fn the_desktop_app_is_built_only_when_its_scenario_runs() {
        assert!(wants_desktop(&args(&[])));
        assert!(wants_desktop(&args(&["--only", "idle,desktop"])));
        assert!(!wants_desktop(&args(&["--only", "idle,fanout"])));
        assert!(!wants_desktop(&args(&["--only=replay"])));
    }
}
