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
//! - [`demo`]: `cargo xtask demo`, a real gateway and a terminal listener.

mod demo;
mod pipeline;
mod process;
mod setup;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// `cargo xtask`: setup, test and demo commands for the Tocsin workspace.
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
    /// Start a throwaway gateway, publish a scripted scenario and print what arrives.
    Demo(demo::DemoArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Setup => setup::run(),
        Command::Test(args) => pipeline::run(&args),
        Command::Demo(args) => demo::run(&args),
    };
    match outcome {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("xtask: error: {error:#}");
            ExitCode::FAILURE
        }
    }
}
