//! Debian's HAProxy in front of gateway nodes, configured as docs/OPERATIONS.md
//! ("Several nodes on PostgreSQL") tells an IT person to: `leastconn`, no sticky
//! sessions, health checks on `/readyz`, WebSocket tunnels kept open. Only the check
//! interval is shorter (200 ms, one failure marks a node down), so a test sees a dead
//! node leave the pool within a second instead of four.
//!
//! It runs in the foreground (`-db`) as a [`Supervised`] child, its log in the given
//! directory; dropping it stops it.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use tokio::process::Command;

use crate::process::{Pipes, Supervised, free_port};

/// How long HAProxy may take to listen with at least one node up.
const START_TIMEOUT: Duration = Duration::from_secs(20);

/// A running HAProxy.
#[derive(Debug)]
pub struct Haproxy {
    process: Supervised,
    port: u16,
    config: PathBuf,
}

impl Haproxy {
    /// Starts HAProxy on a free port of 127.0.0.1 in front of `nodes`
    /// (`127.0.0.1:PORT` each), writing its config and log under `dir`; returns once
    /// `/readyz` answers 200 through it.
    pub async fn start(nodes: &[&str], dir: &Path) -> Result<Haproxy> {
        let port = free_port()?;
        let config = dir.join("haproxy.cfg");
        std::fs::write(&config, config_text(port, nodes))
            .with_context(|| format!("cannot write {}", config.display()))?;
        let binary = std::env::var_os(crate::env::HAPROXY_BIN)
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(crate::env::HAPROXY_DEFAULT));
        let mut command = Command::new(&binary);
        command.arg("-db").arg("-f").arg(&config);
        let process = Supervised::spawn("haproxy", command, &dir.join("haproxy.log"), Pipes::default())
            .with_context(|| {
                format!(
                    "HAProxy ({}) did not start: `cargo xtask setup` installs Debian's haproxy, or set {}",
                    binary.display(),
                    crate::env::HAPROXY_BIN
                )
            })?;
        let mut haproxy = Haproxy {
            process,
            port,
            config,
        };
        haproxy.wait_ready().await?;
        Ok(haproxy)
    }

    /// `http://127.0.0.1:PORT`, where clients and publishers go.
    pub fn base_url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    /// The configuration it runs with, for a failure message.
    pub fn config(&self) -> &Path {
        &self.config
    }

    /// The end of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.process.log_tail(lines)
    }

    /// Waits until `/readyz` answers 200 through HAProxy (it listens, and one node is
    /// up by its health checks).
    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Some(status) = self.process.try_exited()? {
                bail!(
                    "haproxy exited ({status}) before serving; its log:\n{}",
                    self.process.log_tail(20)
                );
            }
            if readyz_status(self.port).await == Some(200) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "haproxy did not answer /readyz with 200 within {START_TIMEOUT:?}; its log:\n{}",
                    self.process.log_tail(20)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

/// The status of `GET /readyz` on 127.0.0.1:`port` (HTTP/1.0, one request), `None`
/// when nothing answers it within a second.
async fn readyz_status(port: u16) -> Option<u16> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        stream
            .write_all(b"GET /readyz HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
            .await
            .ok()?;
        let mut head = [0u8; 12];
        stream.read_exact(&mut head).await.ok()?;
        // "HTTP/1.x NNN"
        std::str::from_utf8(&head[9..12]).ok()?.parse().ok()
    };
    tokio::time::timeout(Duration::from_secs(1), exchange)
        .await
        .ok()
        .flatten()
}

/// The configuration: docs/OPERATIONS.md's, without TLS, with fast health checks.
fn config_text(port: u16, nodes: &[&str]) -> String {
    let servers: String = nodes
        .iter()
        .enumerate()
        .map(|(i, addr)| format!("    server node{i} {addr} check\n"))
        .collect();
    format!(
        "global
    log stderr format short local0 info
defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 120s
    timeout server 120s
    timeout tunnel 1h
    # A connection to a node that just died (not yet marked down) goes to another.
    retries 3
    option redispatch
frontend tocsin
    bind 127.0.0.1:{port}
    default_backend gateways
backend gateways
    balance leastconn
    option httpchk GET /readyz
    http-check expect status 200
    default-server inter 200ms fall 1 rise 1
{servers}"
    )
}

#[cfg(test)]
mod tests {
    use super::config_text;

    #[test]
    fn the_config_lists_every_node_with_health_checks_on_readyz() {
        let text = config_text(8443, &["127.0.0.1:1001", "127.0.0.1:1002"]);
        assert!(text.contains("bind 127.0.0.1:8443"));
        assert!(text.contains("server node0 127.0.0.1:1001 check"));
        assert!(text.contains("server node1 127.0.0.1:1002 check"));
        assert!(text.contains("option httpchk GET /readyz"));
        assert!(text.contains("balance leastconn"));
    }
}
