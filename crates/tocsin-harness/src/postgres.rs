//! A throwaway PostgreSQL cluster: `initdb` in a temporary directory (as the
//! unprivileged `postgres` account when run as root), a server on a free port of
//! 127.0.0.1, stopped and deleted on drop. It can be stopped, killed and started
//! again on the same port and data, for the tests that restart the database.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use nix::sys::signal::{Signal, kill};
use nix::unistd::{Gid, Pid, Uid, User};

use crate::env;

/// The role every test cluster's URL signs in as (trust authentication, local only).
pub const ROLE: &str = "tocsin";

/// How long a server may take to accept connections after it was started.
const READY_TIMEOUT: Duration = Duration::from_secs(60);

/// A running (or stopped) throwaway cluster.
#[derive(Debug)]
pub struct PgCluster {
    /// Data directory (`data/`), socket directory and server log; deleted on drop.
    dir: tempfile::TempDir,
    /// Where `initdb`, `postgres` and `pg_isready` are.
    bin: PathBuf,
    port: u16,
    /// The account the server runs as, when the harness runs as root.
    owner: Option<(Uid, Gid)>,
    /// The postmaster, while it runs.
    server: Option<Child>,
}

impl PgCluster {
    /// Creates a cluster and starts its server. Fails, saying what to install, when
    /// PostgreSQL's server binaries are missing.
    pub fn start() -> Result<PgCluster> {
        let bin = bin_dir()?;
        let owner = unprivileged_owner()?;
        let dir = tempfile::Builder::new()
            .prefix("tocsin-pg-")
            .tempdir()
            .context("cannot create the cluster's temporary directory")?;
        if let Some((uid, gid)) = owner {
            nix::unistd::chown(dir.path(), Some(uid), Some(gid))
                .context("cannot give the cluster directory to the postgres account")?;
        }
        let mut cluster = PgCluster {
            dir,
            bin,
            port: free_port()?,
            owner,
            server: None,
        };
        cluster.initdb()?;
        cluster.start_server()?;
        Ok(cluster)
    }

    /// The URL of database `postgres` (always present).
    pub fn url(&self) -> String {
        self.database_url("postgres")
    }

    /// The URL of one database of this cluster.
    pub fn database_url(&self, database: &str) -> String {
        format!("postgres://{ROLE}@127.0.0.1:{}/{database}", self.port)
    }

    /// The port the server listens on (kept across restarts).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Creates an empty database and returns its URL, so tests sharing one cluster
    /// do not see each other's rows.
    pub fn create_database(&self, name: &str) -> Result<String> {
        let status = self
            .command("createdb")
            .args([
                "-h",
                "127.0.0.1",
                "-p",
                &self.port.to_string(),
                "-U",
                ROLE,
                name,
            ])
            .status()
            .context("cannot run createdb")?;
        if !status.success() {
            bail!(
                "createdb {name} failed ({status}); server log:\n{}",
                self.log_tail()
            );
        }
        Ok(self.database_url(name))
    }

    /// Stops the server with a fast shutdown (clients disconnected, data flushed).
    pub fn stop(&mut self) -> Result<()> {
        self.signal_and_wait(Signal::SIGINT)
    }

    /// Kills the postmaster with SIGKILL, as a crash would: its backends exit on their
    /// own once they notice, and the next start runs crash recovery.
    pub fn kill(&mut self) -> Result<()> {
        self.signal_and_wait(Signal::SIGKILL)
    }

    /// Starts the server again on the same data and port.
    pub fn restart(&mut self) -> Result<()> {
        if self.server.is_some() {
            self.stop()?;
        }
        self.start_server()
    }

    /// The end of the server's log, for an error message.
    pub fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(self.log_path()).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(30)..].join("\n")
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join("server.log")
    }

    fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// One of the cluster's binaries, run as its owner.
    fn command(&self, name: &str) -> Command {
        let mut command = Command::new(self.bin.join(name));
        if let Some((uid, gid)) = self.owner {
            command.uid(uid.as_raw()).gid(gid.as_raw());
        }
        command.stdin(Stdio::null());
        command
    }

    fn initdb(&self) -> Result<()> {
        let output = self
            .command("initdb")
            .arg("-D")
            .arg(self.data_dir())
            .args([
                "-U",
                ROLE,
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .output()
            .context("cannot run initdb")?;
        if !output.status.success() {
            bail!(
                "initdb failed ({}): {}",
                output.status,
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    fn start_server(&mut self) -> Result<()> {
        let log = File::options()
            .create(true)
            .append(true)
            .open(self.log_path())
            .context("cannot open the server log")?;
        if let Some((uid, gid)) = self.owner {
            nix::unistd::chown(&self.log_path(), Some(uid), Some(gid))
                .context("cannot give the server log to the postgres account")?;
        }
        let server = self
            .command("postgres")
            .arg("-D")
            .arg(self.data_dir())
            .args(["-p", &self.port.to_string()])
            .arg("-k")
            .arg(self.dir.path())
            .args(["-c", "listen_addresses=127.0.0.1"])
            // Three nodes with their pools, benchmarks' publishers, and the tests' own.
            .args(["-c", "max_connections=300"])
            .stdout(log.try_clone().context("cannot share the server log")?)
            .stderr(log)
            .spawn()
            .context("cannot start postgres")?;
        self.server = Some(server);
        self.wait_ready()
    }

    /// Polls `pg_isready` until the server accepts connections (or has exited).
    fn wait_ready(&mut self) -> Result<()> {
        let started = Instant::now();
        loop {
            if let Some(server) = self.server.as_mut()
                && let Some(status) = server.try_wait().context("cannot watch postgres")?
            {
                self.server = None;
                bail!(
                    "postgres exited ({status}) at start; its log:\n{}",
                    self.log_tail()
                );
            }
            let ready = self
                .command("pg_isready")
                .args([
                    "-q",
                    "-h",
                    "127.0.0.1",
                    "-p",
                    &self.port.to_string(),
                    "-U",
                    ROLE,
                ])
                .status()
                .context("cannot run pg_isready")?;
            if ready.success() {
                return Ok(());
            }
            if started.elapsed() > READY_TIMEOUT {
                bail!(
                    "postgres did not accept connections within {READY_TIMEOUT:?}; its log:\n{}",
                    self.log_tail()
                );
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn signal_and_wait(&mut self, signal: Signal) -> Result<()> {
        let Some(mut server) = self.server.take() else {
            return Ok(());
        };
        let pid = Pid::from_raw(i32::try_from(server.id()).context("pid out of range")?);
        kill(pid, signal).context("cannot signal postgres")?;
        let deadline = Instant::now() + Duration::from_secs(30);
        while server
            .try_wait()
            .context("cannot watch postgres")?
            .is_none()
        {
            if Instant::now() > deadline {
                let _ = server.kill();
                let _ = server.wait();
                bail!("postgres did not stop within 30 s of {signal}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if signal == Signal::SIGKILL {
            self.wait_backends_gone()?;
        }
        Ok(())
    }

    /// After a SIGKILL of the postmaster its backends linger until they notice; a new
    /// postmaster refuses to start while they hold the shared memory.
    fn wait_backends_gone(&self) -> Result<()> {
        let deadline = Instant::now() + Duration::from_secs(30);
        let pid_file = self.data_dir().join("postmaster.pid");
        while backends_alive(&self.data_dir()) {
            if Instant::now() > deadline {
                bail!("postgres backends still running 30 s after the kill");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = std::fs::remove_file(pid_file);
        Ok(())
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        if let Err(err) = self.stop() {
            eprintln!("stopping the test PostgreSQL cluster: {err:#}");
        }
    }
}

/// Whether any process still runs with its working directory in the data directory
/// (a backend of a killed postmaster).
fn backends_alive(data: &Path) -> bool {
    let Ok(procs) = std::fs::read_dir("/proc") else {
        return false;
    };
    procs
        .flatten()
        .any(|entry| std::fs::read_link(entry.path().join("cwd")).is_ok_and(|cwd| cwd == data))
}

/// The server binaries: `TOCSIN_PG_BIN_DIR`, else the newest Debian install.
fn bin_dir() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os(env::PG_BIN_DIR) {
        return Ok(PathBuf::from(dir));
    }
    let mut majors: Vec<(u32, PathBuf)> = std::fs::read_dir(env::DEBIAN_PG_ROOT)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let major = entry.file_name().to_str()?.parse().ok()?;
            let bin = entry.path().join("bin");
            bin.join("initdb").exists().then_some((major, bin))
        })
        .collect();
    majors.sort();
    match majors.pop() {
        Some((_, bin)) => Ok(bin),
        None => bail!(
            "PostgreSQL's server is not installed (no {}/<version>/bin/initdb): run \
             `cargo xtask setup` (it installs postgresql-15), or set {} to the directory \
             holding initdb",
            env::DEBIAN_PG_ROOT,
            env::PG_BIN_DIR
        ),
    }
}

/// When running as root, the `postgres` account to run the cluster as.
fn unprivileged_owner() -> Result<Option<(Uid, Gid)>> {
    if !Uid::effective().is_root() {
        return Ok(None);
    }
    let user = User::from_name(env::PG_SYSTEM_USER)
        .context("cannot look up the postgres account")?
        .with_context(|| {
            format!(
                "running as root, the cluster needs the unprivileged `{}` account \
                 (created by the postgresql-15 package: run `cargo xtask setup`)",
                env::PG_SYSTEM_USER
            )
        })?;
    Ok(Some((user.uid, user.gid)))
}

/// A port free on 127.0.0.1 right now.
fn free_port() -> Result<u16> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").context("cannot find a free port")?;
    Ok(listener
        .local_addr()
        .context("cannot read the free port")?
        .port())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A cluster starts, survives a kill and a restart on the same port, and is
    /// gone (directory and server) once dropped.
    #[test]
    fn a_cluster_starts_restarts_and_cleans_up() {
        let mut cluster = PgCluster::start().expect("starts");
        let url = cluster.create_database("probe").expect("createdb");
        assert!(url.ends_with("/probe"));
        cluster.kill().expect("killed");
        cluster.restart().expect("restarts after a crash");
        cluster.create_database("probe2").expect("answers again");
        let data = cluster.data_dir();
        drop(cluster);
        assert!(!data.exists());
        assert!(!backends_alive(&data));
    }
}
