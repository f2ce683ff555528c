//! The raw-socket baseline of the fanout scenario: what one core can push through
//! loopback TCP with one `write()` per delivery and nothing else.
//!
//! A tiny writer process ([`writer_main`], the hidden `raw-writer` subcommand) runs
//! pinned to the gateway's core, accepts the load generator's connections, and on
//! "go" writes one WebSocket text frame of the gateway's notification size to every
//! socket, round after round, with one blocking `write()` each. The load side
//! ([`baseline`]) reads and counts bytes. Deliveries per second here are the ceiling a
//! gateway that writes each delivery separately could reach on this machine, measured
//! in the same run as the gateway's figure so that both see the same machine.

use std::io::{BufRead, Write};
use std::net::{SocketAddr, TcpListener};
use std::process::Stdio;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use futures_util::StreamExt;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};

use crate::client::source_ip;
use crate::clock;

/// The hidden subcommand that runs the writer: `tocsin-bench raw-writer <connections>
/// <frame payload bytes> <paced rounds> <burst rounds>`.
pub const WRITER_COMMAND: &str = "raw-writer";

/// Connections being opened at once (below the writer's listen backlog).
const CONNECT_CONCURRENCY: usize = 64;
/// Bytes the load side reads at a time per connection, as the bench client does.
const READ_BUFFER: usize = 4096;
/// The longest the whole measurement may take before it is declared stuck.
const DEADLINE: Duration = Duration::from_secs(120);

/// A pause between paced rounds: long enough for the readers to go idle, as they are
/// between two broadcasts at a few per second.
const PACED_PAUSE: Duration = Duration::from_millis(200);

/// What the baseline measured.
#[derive(Debug, Clone, Copy)]
pub struct Baseline {
    /// Milliseconds to write one frame to every socket when the readers were idle (the
    /// median of the paced rounds): the floor of one broadcast's p99 latency.
    pub paced_round_ms: f64,
    /// The writer's CPU per write in the paced rounds, µs.
    pub paced_cpu_us: f64,
    /// The writer's CPU per write in the burst, µs.
    pub burst_cpu_us: f64,
    /// Frames received per second, first write to last byte.
    pub deliveries_per_s: f64,
    /// Frames written per second as the writer timed itself.
    pub writer_per_s: f64,
    /// Bytes on the wire per frame (WebSocket header included).
    pub wire_bytes: usize,
}

/// One unmasked WebSocket text frame (server → client) with `payload` bytes.
fn text_frame(payload: usize) -> Vec<u8> {
    let mut frame = Vec::with_capacity(payload + 10);
    frame.push(0x81);
    if payload < 126 {
        frame.push(u8::try_from(payload).unwrap_or(0));
    } else if let Ok(short) = u16::try_from(payload) {
        frame.push(126);
        frame.extend_from_slice(&short.to_be_bytes());
    } else {
        frame.push(127);
        frame.extend_from_slice(&(payload as u64).to_be_bytes());
    }
    frame.resize(frame.len() + payload, b'x');
    frame
}

/// The writer process: accept, wait for "go", write round after round, report.
///
/// Protocol on its stdio: prints `listening <port>`, then `accepted` once every
/// connection is in; reads `go`; writes the paced rounds, [`PACED_PAUSE`] apart, and
/// prints `paced <µs>` with the median round; reads `go` again, writes the burst
/// rounds back to back and prints `done <µs>`; exits when stdin closes (keeping the
/// sockets open until the reader has everything).
pub fn writer_main(args: &[String]) -> Result<()> {
    let number = |index: usize, what: &str| -> Result<usize> {
        args.get(index)
            .and_then(|arg| arg.parse().ok())
            .with_context(|| {
                format!("raw-writer: argument {index} ({what}) is missing or not a number")
            })
    };
    let connections = number(0, "connections")?;
    let payload = number(1, "frame payload bytes")?;
    let paced = number(2, "paced rounds")?;
    let rounds = number(3, "burst rounds")?;
    let frame = text_frame(payload);

    let listener = TcpListener::bind("127.0.0.1:0").context("raw-writer: binding")?;
    let port = listener.local_addr()?.port();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "listening {port}")?;
    stdout.flush()?;
    let mut sockets = Vec::with_capacity(connections);
    while sockets.len() < connections {
        let (socket, _) = listener.accept().context("raw-writer: accepting")?;
        // As the gateway does: each frame leaves at once.
        socket.set_nodelay(true)?;
        sockets.push(socket);
    }
    writeln!(stdout, "accepted")?;
    stdout.flush()?;

    let mut stdin = std::io::stdin().lock();
    let mut line = String::new();
    stdin.read_line(&mut line)?;
    let mut paced_us = Vec::with_capacity(paced);
    let mut paced_cpu = 0.0;
    for _ in 0..paced {
        let cpu = cpu_us()?;
        std::thread::sleep(PACED_PAUSE);
        let started = Instant::now();
        for socket in &mut sockets {
            socket.write_all(&frame)?;
        }
        paced_us.push(started.elapsed().as_micros());
        paced_cpu += cpu_us()? - cpu;
    }
    paced_us.sort_unstable();
    let median = paced_us.get(paced_us.len() / 2).copied().unwrap_or(0);
    writeln!(stdout, "paced {median} {paced_cpu}")?;
    stdout.flush()?;
    stdin.read_line(&mut line)?;
    let started = Instant::now();
    let cpu = cpu_us()?;
    for _ in 0..rounds {
        for socket in &mut sockets {
            // One write() per delivery: the frame is far below the socket buffer, so
            // write_all never loops unless the reader fell a whole buffer behind.
            socket.write_all(&frame)?;
        }
    }
    let burst_cpu = cpu_us()? - cpu;
    writeln!(stdout, "done {} {burst_cpu}", started.elapsed().as_micros())?;
    stdout.flush()?;
    // Until the load side is done reading (it closes our stdin).
    let mut rest = Vec::new();
    let _ = std::io::Read::read_to_end(&mut stdin, &mut rest);
    drop(sockets);
    Ok(())
}

/// This process's user + system CPU so far, µs.
fn cpu_us() -> Result<f64> {
    use nix::sys::resource::{UsageWho, getrusage};
    let usage = getrusage(UsageWho::RUSAGE_SELF).context("getrusage")?;
    let micros = |time: nix::sys::time::TimeVal| time.tv_sec() as f64 * 1e6 + time.tv_usec() as f64;
    Ok(micros(usage.user_time()) + micros(usage.system_time()))
}

/// Two numbers from a line of the writer.
fn two(line: &str) -> Result<(f64, f64)> {
    let mut fields = line.split_whitespace().map(str::parse::<f64>);
    match (fields.next(), fields.next()) {
        (Some(Ok(first)), Some(Ok(second))) => Ok((first, second)),
        _ => bail!("the raw-socket writer said '{line}', expected two numbers"),
    }
}

/// This very binary, pinned to `cpus` when given (`taskset -c`), to run one of its
/// hidden subcommands beside the gateway. Through /proc: it still runs if a rebuild
/// replaced the file.
pub fn this_binary(cpus: Option<&str>) -> tokio::process::Command {
    let exe = std::path::PathBuf::from(format!("/proc/{}/exe", std::process::id()));
    match cpus {
        Some(cpus) => {
            let mut pinned = tokio::process::Command::new("taskset");
            pinned.arg("-c").arg(cpus).arg(&exe);
            pinned
        }
        None => tokio::process::Command::new(&exe),
    }
}

/// Runs the baseline: `connections` sockets, `rounds` frames of `payload` bytes each.
pub async fn baseline(
    cpus: Option<&str>,
    connections: usize,
    payload: usize,
    paced: usize,
    rounds: usize,
) -> Result<Baseline> {
    let wire_bytes = text_frame(payload).len();
    let mut child = this_binary(cpus)
        .arg(WRITER_COMMAND)
        .arg(connections.to_string())
        .arg(payload.to_string())
        .arg(paced.to_string())
        .arg(rounds.to_string())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("starting the raw-socket writer")?;
    let mut stdin = child.stdin.take().context("the writer's stdin")?;
    let stdout = child.stdout.take().context("the writer's stdout")?;
    let mut lines = tokio::io::BufReader::new(stdout).lines();
    let mut expect_line = async |prefix: &str| -> Result<String> {
        let line = tokio::time::timeout(DEADLINE, lines.next_line())
            .await
            .with_context(|| format!("the raw-socket writer did not say '{prefix}' in time"))??
            .with_context(|| format!("the raw-socket writer exited before '{prefix}'"))?;
        match line.strip_prefix(prefix) {
            Some(rest) => Ok(rest.trim().to_owned()),
            None => bail!("the raw-socket writer said '{line}', expected '{prefix}…'"),
        }
    };
    let port: u16 = expect_line("listening").await?.parse()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    let per_socket = (wire_bytes * (paced + rounds)) as u64;
    let received = Arc::new(AtomicU64::new(0));
    let last_byte_us = Arc::new(AtomicU64::new(0));
    let sockets: Vec<Result<tokio::net::TcpStream>> = futures_util::stream::iter(0..connections)
        .map(|index| async move {
            let socket = tokio::net::TcpSocket::new_v4()?;
            socket.bind(SocketAddr::new(source_ip(index), 0))?;
            let stream = socket
                .connect(addr)
                .await
                .context("connecting to the raw-socket writer")?;
            Ok(stream)
        })
        .buffer_unordered(CONNECT_CONCURRENCY)
        .collect()
        .await;
    let mut readers = Vec::with_capacity(connections);
    for socket in sockets {
        let mut socket = socket?;
        let received = received.clone();
        let last_byte_us = last_byte_us.clone();
        readers.push(tokio::spawn(async move {
            let mut buffer = vec![0u8; READ_BUFFER];
            let mut got = 0u64;
            while got < per_socket {
                match socket.read(&mut buffer).await {
                    Ok(0) | Err(_) => break,
                    Ok(n) => {
                        got += n as u64;
                        received.fetch_add(n as u64, Ordering::Relaxed);
                    }
                }
            }
            last_byte_us.fetch_max(clock::now_us(), Ordering::Relaxed);
            got
        }));
    }
    expect_line("accepted").await?;
    stdin.write_all(b"go\n").await?;
    stdin.flush().await?;
    let (paced_us, paced_cpu) = two(&expect_line("paced").await?)?;
    // The paced rounds must be read before the burst's clock starts.
    let paced_bytes = (wire_bytes * paced * connections) as u64;
    let paced_read = async {
        while received.load(Ordering::Relaxed) < paced_bytes {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    };
    tokio::time::timeout(DEADLINE, paced_read)
        .await
        .context("the raw-socket baseline's readers did not get the paced rounds in time")?;
    let started_us = clock::now_us();
    stdin.write_all(b"go\n").await?;
    stdin.flush().await?;
    let (writer_us, burst_cpu) = two(&expect_line("done").await?)?;
    let all_read = async {
        for reader in readers {
            let _ = reader.await;
        }
    };
    tokio::time::timeout(DEADLINE, all_read)
        .await
        .context("the raw-socket baseline's readers did not finish in time")?;
    drop(stdin);
    let _ = child.wait().await;

    let total = received.load(Ordering::Relaxed);
    anyhow::ensure!(
        total == per_socket * connections as u64,
        "the raw-socket baseline received {total} of {} bytes",
        per_socket * connections as u64
    );
    let frames = (connections * rounds) as f64;
    let elapsed_us = last_byte_us
        .load(Ordering::Relaxed)
        .saturating_sub(started_us)
        .max(1);
    Ok(Baseline {
        paced_round_ms: paced_us / 1000.0,
        paced_cpu_us: paced_cpu / (paced * connections).max(1) as f64,
        burst_cpu_us: burst_cpu / (rounds * connections).max(1) as f64,
        deliveries_per_s: frames * 1e6 / elapsed_us as f64,
        writer_per_s: frames * 1e6 / writer_us.max(1.0),
        wire_bytes,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn frames_carry_the_websocket_length_header() {
        assert_eq!(text_frame(100).len(), 102);
        assert_eq!(&text_frame(400)[..4], &[0x81, 126, 1, 144]);
        assert_eq!(text_frame(400).len(), 404);
    }
}
