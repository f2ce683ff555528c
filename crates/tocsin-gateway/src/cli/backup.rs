//! `backup FILE` and `restore FILE`: the commands around `store/sqlite/backup.rs`
//! (what they copy and why epochs are kept or renewed is written there).

use std::path::{Path, PathBuf};

use clap::Args;

use crate::config::Config;
use crate::store::sqlite::backup::{self, Epochs};
use crate::store::sqlite::serve_lock::ServeLock;

/// Flags of `backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// The file to write (e.g. /var/backups/tocsin/tocsin-2026-12-02.db). The database
    /// only: back up config.toml (it holds the secrets) separately.
    pub file: PathBuf,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
}

/// Flags of `restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// A file made by `tocsin-gateway backup`.
    pub file: PathBuf,
}

/// `backup`: works while the gateway serves (it goes on publishing meanwhile).
pub fn run_backup(data_dir: &Path, args: &BackupArgs) -> anyhow::Result<()> {
    let database = database_of(data_dir)?;
    let report = backup::backup(&database, &args.file, args.force)?;
    println!(
        "backed up {} to {} ({} bytes, {} steps of {} pages, longest step {:.1} ms, {:.1} s in all)",
        database.display(),
        report.file.display(),
        report.bytes,
        report.steps,
        backup::PAGES_PER_STEP,
        report.max_step.as_secs_f64() * 1000.0,
        report.elapsed.as_secs_f64()
    );
    Ok(())
}

/// `restore`: only while no gateway serves the data dir.
pub fn run_restore(data_dir: &Path, args: &RestoreArgs) -> anyhow::Result<()> {
    let database = database_of(data_dir)?;
    // Held until the restored file is in place: a `serve` started meanwhile refuses.
    let _lock = ServeLock::exclusive(&database)?;
    let report = backup::restore(&database, &args.file)?;
    println!(
        "restored {} from {}",
        database.display(),
        args.file.display()
    );
    for path in &report.aside {
        println!("kept aside: {}", path.display());
    }
    match report.epochs {
        Epochs::Kept => println!(
            "epochs kept: the old database was the same history as the backup, so clients \
             resume where they were"
        ),
        Epochs::Renewed { streams, reason } => println!(
            "new epochs for {streams} streams ({reason}): every client is told \
             `recovered: false` and rebuilds its inbox from history"
        ),
    }
    println!("start the gateway now; delete the files kept aside once it serves as expected");
    Ok(())
}

fn database_of(data_dir: &Path) -> anyhow::Result<PathBuf> {
    let config = Config::load(data_dir).map_err(|err| {
        anyhow::anyhow!(
            "{err:#} (restoring onto a new machine? put your saved config.toml in {} first, \
             or run `tocsin-gateway init`)",
            data_dir.display()
        )
    })?;
    config.database_path(data_dir, "backup/restore")
}
