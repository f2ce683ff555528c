//! The command line: `init`, `serve`, and the admin subcommands. Each takes
//! `--data-dir` (else `TOCSIN_DATA_DIR`, else the per-user data dir).

mod admin;
mod audit;
mod backup;
mod doctor;
mod publish;
mod serve;
mod signals;
mod tls;
mod users;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

/// Tocsin's self-hosted notification gateway.
#[derive(Debug, Parser)]
#[command(name = "tocsin-gateway", version, about)]
pub struct Cli {
    /// The data directory (config.toml and the SQLite file).
    #[arg(long, env = "TOCSIN_DATA_DIR", global = true)]
    pub data_dir: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Create the data directory and a config file with generated secrets.
    Init(tls::InitArgs),
    /// Run the gateway.
    Serve(serve::ServeArgs),
    /// Manage firms.
    #[command(subcommand)]
    Tenant(admin::TenantCommand),
    /// Manage users.
    #[command(subcommand)]
    User(admin::UserCommand),
    /// Manage publisher API keys.
    #[command(subcommand)]
    Key(admin::KeyCommand),
    /// Export a firm's audit trail.
    #[command(subcommand)]
    Audit(audit::AuditCommand),
    /// Copy the database to FILE, while the gateway serves (config.toml not included).
    Backup(backup::BackupArgs),
    /// Put a backup in place of the database (the gateway stopped; the old one kept aside).
    Restore(backup::RestoreArgs),
    /// Check the data directory: one line per check, exit code 1 when one fails.
    Doctor,
    /// Publish one notification through the running gateway (for scripts; the API key
    /// in TOCSIN_API_KEY).
    Publish(publish::PublishArgs),
    /// Print the HTTP API's OpenAPI 3.1 document (the same as GET /v1/openapi.json),
    /// e.g. to generate a client without a running gateway.
    Openapi,
}

/// Runs the command line; errors are printed for humans, with exit code 1.
pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let data_dir = match cli.data_dir.clone().map_or_else(default_data_dir, Ok) {
        Ok(dir) => dir,
        Err(err) => return fail(err),
    };
    let result = match cli.command {
        Command::Init(args) => admin::init(&data_dir, &args),
        Command::Serve(args) => serve::run(&data_dir, args),
        Command::Tenant(command) => {
            admin::run_blocking(&data_dir, |store| admin::tenant(store, command))
        }
        Command::User(command) => {
            let preflight = match &command {
                admin::UserCommand::Govern(govern) => users::preflight(&data_dir, govern),
                _ => Ok(()),
            };
            preflight
                .and_then(|()| admin::run_blocking(&data_dir, |store| admin::user(store, command)))
        }
        Command::Key(command) => admin::run_blocking(&data_dir, |store| admin::key(store, command)),
        Command::Audit(command) => {
            admin::run_blocking(&data_dir, |store| audit::run(store, command))
        }
        Command::Backup(args) => backup::run_backup(&data_dir, &args),
        Command::Restore(args) => backup::run_restore(&data_dir, &args),
        Command::Doctor => doctor::run(&data_dir),
        Command::Publish(args) => publish::run(&data_dir, args),
        Command::Openapi => print_openapi(),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => fail(err),
    }
}

fn print_openapi() -> anyhow::Result<()> {
    println!("{}", crate::api::openapi_document().to_pretty_json()?);
    Ok(())
}

fn fail(err: anyhow::Error) -> ExitCode {
    eprintln!("error: {err:#}");
    ExitCode::FAILURE
}

/// The per-user data dir (e.g. `~/.local/share/tocsin` on Linux).
fn default_data_dir() -> anyhow::Result<PathBuf> {
    directories::ProjectDirs::from("", "", "tocsin")
        .map(|dirs| dirs.data_dir().to_owned())
        .ok_or_else(|| anyhow::anyhow!("no home directory: pass --data-dir or set TOCSIN_DATA_DIR"))
}
