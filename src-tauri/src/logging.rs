//! Logs: a daily-rotated file in the app's log dir (seven days kept), plus stderr.
//! `TOCSIN_LOG` sets the filter (default `info`).

use std::path::Path;

use tracing_appender::non_blocking::WorkerGuard;
use tracing_appender::rolling::{Builder, Rotation};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// How many daily files are kept.
const KEEP_FILES: usize = 7;

/// Starts logging to `dir`; keep the guard alive as long as the app runs (dropping
/// it flushes the file).
pub fn init(dir: &Path) -> anyhow::Result<WorkerGuard> {
    std::fs::create_dir_all(dir)?;
    let appender = Builder::new()
        .rotation(Rotation::DAILY)
        .filename_prefix("tocsin-desktop")
        .filename_suffix("log")
        .max_log_files(KEEP_FILES)
        .build(dir)?;
    let (file, guard) = tracing_appender::non_blocking(appender);
    let filter =
        || EnvFilter::try_from_env("TOCSIN_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(file)
                .with_ansi(false)
                .with_filter(filter()),
        )
        .with(
            tracing_subscriber::fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter()),
        )
        .try_init()?;
    Ok(guard)
}
