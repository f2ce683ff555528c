//! `tocsin-gateway serve`: load the config, apply env and flags, bind, run until
//! SIGINT/SIGTERM, then drain.

use std::net::SocketAddr;
use std::path::Path;

use clap::Args;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::server;

/// Flags of `serve` (each overrides config.toml).
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on, e.g. 0.0.0.0:7850 (port 0 picks a free one).
    #[arg(long, env = "TOCSIN_LISTEN")]
    listen: Option<SocketAddr>,
    /// `human` or `json` log lines on stderr.
    #[arg(long, env = "TOCSIN_LOG_FORMAT")]
    log_format: Option<String>,
    /// The database: a SQLite file, or `postgres://user:password@host/database` for
    /// several nodes (the environment keeps the password out of `ps`). Admin commands
    /// read config.toml's `database`.
    #[arg(long, env = "TOCSIN_DATABASE")]
    database: Option<String>,
}

/// Runs the gateway.
pub fn run(data_dir: &Path, args: ServeArgs) -> anyhow::Result<()> {
    let mut config = Config::load(data_dir)?;
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(format) = args.log_format {
        config.log_format = format;
    }
    if let Some(database) = args.database {
        config.database = crate::config::DatabaseSetting::from_flag(database);
    }
    config.validate()?;
    init_logging(&config.log_format);
    raise_open_files_limit();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(serve(data_dir, config))
}

async fn serve(data_dir: &Path, config: Config) -> anyhow::Result<()> {
    // Before the database is opened, held until `serve` returns: `restore` refuses
    // while it is held (store/sqlite/serve_lock.rs), and a start during a restore is
    // refused.
    let _database_lock = match config.database(data_dir) {
        crate::config::Database::Sqlite(path) => {
            Some(crate::store::sqlite::serve_lock::ServeLock::serving(&path)?)
        }
        crate::config::Database::Postgres { .. } => None,
    };
    let shutdown = CancellationToken::new();
    let listen = config.listen;
    let state = server::open(config, data_dir, shutdown.clone()).await?;
    let listener = bind(listen).map_err(|err| {
        anyhow::anyhow!(
            "cannot listen on {listen}: {err} (is another gateway running? try --listen)"
        )
    })?;
    let local = listener.local_addr()?;
    let signals = super::signals::Signals::watch()?;
    tracing::info!(address = %local, data_dir = %data_dir.display(), "gateway listening");
    // Tests and scripts read this line to learn the port (and the scheme).
    let scheme = if state.tls.is_some() { "https" } else { "http" };
    println!("listening on {scheme}://{local}");
    signals.spawn(shutdown, state.tls.clone());
    server::serve(listener, state).await
}

/// Pending connections the kernel may queue before `accept` (capped by
/// `net.core.somaxconn`). tokio's default of 1024 overflows when a restart sends
/// thousands of clients back at once: dropped SYNs cost each of them a one-second
/// retransmission.
const ACCEPT_BACKLOG: u32 = 4096;

/// Binds the listening socket with [`ACCEPT_BACKLOG`].
fn bind(listen: std::net::SocketAddr) -> std::io::Result<tokio::net::TcpListener> {
    let socket = if listen.is_ipv4() {
        tokio::net::TcpSocket::new_v4()?
    } else {
        tokio::net::TcpSocket::new_v6()?
    };
    // As std and tokio do: a restarted gateway can bind while old connections linger
    // in TIME_WAIT.
    socket.set_reuseaddr(true)?;
    socket.bind(listen)?;
    socket.listen(ACCEPT_BACKLOG)
}

/// Every connection is a file descriptor, and the usual soft limit (1024) is reached by
/// a thousand clients: raise it to the hard limit (systemd's `LimitNOFILE`) at start.
fn raise_open_files_limit() {
    match rlimit::increase_nofile_limit(u64::MAX) {
        Ok(limit) if limit < 8192 => tracing::warn!(
            limit,
            "the open-files limit is low: the gateway can hold about this many connections; raise LimitNOFILE (or ulimit -n)"
        ),
        Ok(limit) => tracing::debug!(limit, "open-files limit"),
        Err(err) => tracing::warn!(error = %err, "cannot raise the open-files limit"),
    }
}

/// Human-readable logs by default, JSON on request; filter with `TOCSIN_LOG`.
fn init_logging(format: &str) {
    let filter = tracing_subscriber::EnvFilter::try_from_env("TOCSIN_LOG")
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr);
    if format == "json" {
        builder.json().init();
    } else {
        builder.init();
    }
}
