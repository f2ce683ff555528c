//! Tocsin's project automation, run as `cargo xtask <command>`.
//!
//! Automation lives here, in Rust, rather than in shell scripts: it runs the same on
//! every machine, is checked by the compiler and clippy, and can use the workspace's
//! own crates (the demo speaks the wire protocol through `tocsin-protocol`).
//!
//! # Layout
//! - [`process`]: the repository root, cargo invocations, `==> step` headers.
//! - [`setup`]: system packages (apt) and cargo tools the build and tests need.
//! - [`pipeline`]: `cargo xtask test`, the one command CI and the README give.
//! - [`advisories`]: its advisory check of Cargo.lock (cargo-deny, offline).
//! - [`npm`]: the Node.js packages' install and scripts, shared by the two below.
//! - [`ui`]: installing, checking and building the panel's front end (`ui/`).
//! - [`sdk`]: checking, testing, measuring and building the web SDK (`sdk/web/`).
//! - [`demo`]: `cargo xtask demo`, a real gateway, the desktop app and a terminal
//!   listener.
//! - [`bundle`]: `cargo xtask bundle`, the Debian packages: `tocsin-gateway` (the
//!   server), `tocsin` (the desktop app) and their debug symbols.
//! - [`bench`]: `cargo xtask bench`, the benchmarks (crates/tocsin-bench).
//! - [`gen_types`]: `cargo xtask gen-types`, the web SDK's TypeScript protocol types.

mod advisories;
mod bench;
mod bundle;
mod demo;
mod gen_types;
mod npm;
mod pipeline;
mod process;
mod sdk;
mod setup;
mod ui;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `cargo xtask`: setup, test, demo and bundle commands for the Tocsin workspace.
#[derive(Debug, Parser)]
#[command(
    name = "xtask",
    bin_name = "cargo xtask",
    about,
    disable_version_flag = true
)]
struct Cli {
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
enum Command {
    /// Install the missing system packages (Debian/Ubuntu) and cargo-nextest.
    Setup,
    /// Run everything CI runs: setup, fmt, clippy, build, nextest, doc tests.
    Test(pipeline::TestArgs),
    /// Start a throwaway gateway and the desktop app, and play a scripted scenario.
    Demo(demo::DemoArgs),
    /// Build the Debian packages: tocsin-gateway (server), tocsin (desktop), dbgsym.
    Bundle(bundle::BundleArgs),
    /// Benchmark the release gateway and desktop app (docs/BENCHMARKS.md).
    Bench(bench::BenchArgs),
    /// Write sdk/web/src/protocol/ from tocsin-protocol's types (`--check`: only compare).
    GenTypes(gen_types::GenTypesArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Setup => setup::run(),
        Command::Test(args) => pipeline::run(&args),
        Command::Demo(args) => demo::run(&args),
        Command::Bundle(args) => bundle::run(&args),
        Command::Bench(args) => bench::run(&args),
        Command::GenTypes(args) => gen_types::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
