//! `tocsin-bench`: the load generator behind `cargo xtask bench`.
//!
//! It pins itself to the load core, raises its file-descriptor limit, and runs each
//! scenario against a fresh release gateway pinned to the other core, printing one JSON
//! line per scenario on stdout (and appending it to `--out`) and a human summary on
//! stderr. docs/BENCHMARKS.md explains every figure.

mod client;
mod clock;
mod fixture;
mod mempeer;
mod procfs;
mod publisher;
mod rawsocket;
mod report;
mod scenarios;
mod stats;

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::Parser;

use scenarios::{Ctx, Scale};

/// Benchmarks of the Tocsin gateway and desktop app (docs/BENCHMARKS.md).
#[derive(Debug, Parser)]
#[command(name = "tocsin-bench")]
struct Cli {
    /// Tiny sizes and one run: checks the tool works; the figures mean nothing.
    #[arg(long, conflicts_with = "full")]
    smoke: bool,
    /// Also the largest sizes (50k idle connections).
    #[arg(long)]
    full: bool,
    /// Runs per measurement; medians and spread are reported (smoke: 1).
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// Only these scenarios (comma-separated).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// The core(s) the gateway runs on (`taskset -c` syntax).
    #[arg(long, default_value = "0")]
    gateway_cpus: String,
    /// The core this load generator runs on.
    #[arg(long, default_value_t = 1)]
    load_cpu: usize,
    /// Do not pin anything (on a one-core machine, or to see unpinned figures).
    #[arg(long)]
    no_pin: bool,
    /// Idle connection counts instead of the scale's (e.g. `--sizes 1000,5000`).
    #[arg(long, value_delimiter = ',')]
    sizes: Vec<usize>,
    /// Also append the JSON lines to this file.
    #[arg(long)]
    out: Option<PathBuf>,
    /// The gateway's database: `sqlite` (its file in the data dir) or `postgres` (a
    /// throwaway PostgreSQL cluster started for the run, one database per scenario).
    #[arg(long, default_value = "sqlite", value_parser = ["sqlite", "postgres"])]
    database: String,
}

fn main() -> ExitCode {
    // The fanout scenario's raw-socket writer: this same binary, pinned to the gateway's
    // core, started by the scenario itself (not for people, so not in --help).
    let args: Vec<String> = std::env::args().collect();
    if args.get(1).map(String::as_str) == Some(rawsocket::WRITER_COMMAND) {
        return match rawsocket::writer_main(&args[2..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("tocsin-bench raw-writer: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    // The unicast scenario's in-memory peer, started the same way.
    if args.get(1).map(String::as_str) == Some(mempeer::PEER_COMMAND) {
        return match mempeer::peer_main(&args[2..]) {
            Ok(()) => ExitCode::SUCCESS,
            Err(error) => {
                eprintln!("tocsin-bench mem-peer: {error:#}");
                ExitCode::FAILURE
            }
        };
    }
    let cli = Cli::parse();
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("tocsin-bench: {error:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(cli: Cli) -> Result<()> {
    clock::start();
    let cores = std::thread::available_parallelism().map_or(1, usize::from);
    let pin = !cli.no_pin && cores >= 2;
    if !cli.no_pin && !pin {
        eprintln!("tocsin-bench: one core only: the gateway and the load share it (not pinned)");
    }
    if pin {
        // Before the runtime exists, so that every thread of ours inherits the core.
        pin_self(cli.load_cpu)?;
    }
    let fd_limit = raise_fd_limit()?;
    let scale = if cli.smoke {
        Scale::Smoke
    } else if cli.full {
        Scale::Full
    } else {
        Scale::Normal
    };
    let postgres = match cli.database.as_str() {
        // Not pinned: PostgreSQL's processes run where the kernel puts them (the
        // figures say so, docs/BENCHMARKS.md).
        "postgres" => Some(Arc::new(
            tocsin_harness::postgres::PgCluster::start()
                .context("starting the benchmark's PostgreSQL cluster")?,
        )),
        _ => None,
    };
    let ctx = Ctx {
        scale,
        runs: if cli.smoke { 1 } else { cli.runs.max(1) },
        gateway_cpus: pin.then(|| cli.gateway_cpus.clone()),
        sizes: cli.sizes.clone(),
        fd_limit,
        postgres,
        databases: Default::default(),
    };
    let names: Vec<String> = if cli.only.is_empty() {
        scenarios::ALL.iter().map(|s| (*s).to_owned()).collect()
    } else {
        cli.only.clone()
    };
    for name in &names {
        anyhow::ensure!(
            scenarios::ALL.contains(&name.as_str()),
            "unknown scenario '{name}'; the scenarios are: {}",
            scenarios::ALL.join(", ")
        );
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("starting the load generator's runtime")?;
    let mut summary = String::new();
    let mut failed: Vec<String> = Vec::new();
    for name in &names {
        eprintln!(
            "tocsin-bench: running {name} ({scale:?}, {} run(s))…",
            ctx.runs
        );
        // A failed scenario is reported and the others still run: a long run should
        // not lose every figure to one failure. The exit status still says it failed.
        let mut report = match runtime.block_on(scenarios::run(name, &ctx)) {
            Ok(report) => report,
            Err(error) => {
                eprintln!("tocsin-bench: {name} failed: {error:#}");
                summary.push_str(&format!("── {name} ──\n  FAILED: {error:#}\n"));
                failed.push(name.clone());
                continue;
            }
        };
        report.param("database", ctx.database_name());
        let line = report.json_line();
        println!("{line}");
        if let Some(path) = &cli.out {
            let mut file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("opening {}", path.display()))?;
            writeln!(file, "{line}").with_context(|| format!("writing {}", path.display()))?;
        }
        eprint!("{}", report.human());
        summary.push_str(&report.human());
    }
    eprintln!("\n════ summary ════\n{summary}");
    anyhow::ensure!(
        failed.is_empty(),
        "these scenarios failed: {}",
        failed.join(", ")
    );
    Ok(())
}

/// Pins this process (and every thread it will start) to `cpu`.
fn pin_self(cpu: usize) -> Result<()> {
    let mut set = nix::sched::CpuSet::new();
    set.set(cpu)
        .with_context(|| format!("core {cpu} does not exist"))?;
    nix::sched::sched_setaffinity(nix::unistd::Pid::from_raw(0), &set)
        .with_context(|| format!("pinning the load generator to core {cpu}"))?;
    Ok(())
}

/// Enough descriptors for 50k connections on each side (the gateway inherits them).
/// Returns the limit in force.
fn raise_fd_limit() -> Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    const WANTED: u64 = 200_000;
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).context("reading RLIMIT_NOFILE")?;
    if soft >= WANTED {
        return Ok(soft);
    }
    // Raising the hard limit needs CAP_SYS_RESOURCE (root); otherwise use what we have.
    if setrlimit(Resource::RLIMIT_NOFILE, WANTED, WANTED.max(hard)).is_err() {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard).context("raising RLIMIT_NOFILE")?;
        return Ok(hard);
    }
    Ok(WANTED)
}
