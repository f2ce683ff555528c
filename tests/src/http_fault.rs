//! An HTTP/1.1 proxy on 127.0.0.1 that forwards everything (WebSocket upgrades
//! included) but can lose exactly the answer to one path: the request reaches the
//! gateway and is acted on, the client sees its connection close without a reply —
//! a timeout on a flaky network, or a laptop lid closed at the wrong moment.

use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};

/// A running proxy.
pub struct HttpFault {
    /// `127.0.0.1:PORT` clients connect to.
    pub addr: String,
    /// Answers still to lose.
    to_lose: Arc<AtomicU32>,
    /// Answers lost so far.
    lost: Arc<AtomicU32>,
}

impl HttpFault {
    /// Starts forwarding to `upstream` (`ip:port`), losing answers to `path` on demand.
    pub async fn start(upstream: String, path: &'static str) -> HttpFault {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("binds");
        let addr = listener.local_addr().expect("bound").to_string();
        let to_lose = Arc::new(AtomicU32::new(0));
        let lost = Arc::new(AtomicU32::new(0));
        let (lose, count) = (to_lose.clone(), lost.clone());
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let upstream = upstream.clone();
                let (lose, count) = (lose.clone(), count.clone());
                tokio::spawn(async move {
                    let _ = relay(client, &upstream, path, &lose, &count).await;
                });
            }
        });
        HttpFault {
            addr,
            to_lose,
            lost,
        }
    }

    /// Loses the answers to the next `count` requests of the path.
    pub fn lose_next(&self, count: u32) {
        self.to_lose.store(count, Ordering::SeqCst);
    }

    /// How many answers were lost.
    pub fn lost(&self) -> u32 {
        self.lost.load(Ordering::SeqCst)
    }
}

/// One HTTP message: its head (start line and headers, with the blank line) and body.
struct Message {
    head: Vec<u8>,
    body: Vec<u8>,
    first_line: String,
    upgrade: bool,
}

async fn relay(
    client: TcpStream,
    upstream: &str,
    path: &str,
    to_lose: &AtomicU32,
    lost: &AtomicU32,
) -> std::io::Result<()> {
    let server = TcpStream::connect(upstream).await?;
    let mut client = BufReader::new(client);
    let mut server = BufReader::new(server);
    loop {
        let Some(request) = read_message(&mut client).await? else {
            return Ok(());
        };
        server.get_mut().write_all(&request.head).await?;
        server.get_mut().write_all(&request.body).await?;
        let Some(response) = read_message(&mut server).await? else {
            return Ok(());
        };
        let target = request.first_line.split(' ').nth(1).unwrap_or_default();
        let lose = target.split('?').next() == Some(path)
            && to_lose
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok();
        if lose {
            lost.fetch_add(1, Ordering::SeqCst);
            return Ok(());
        }
        client.get_mut().write_all(&response.head).await?;
        client.get_mut().write_all(&response.body).await?;
        if request.upgrade && response.first_line.contains(" 101 ") {
            // A WebSocket from here on: bytes both ways, whatever is buffered first.
            let (buffered_client, buffered_server) =
                (client.buffer().to_vec(), server.buffer().to_vec());
            let (mut client, mut server) = (client.into_inner(), server.into_inner());
            server.write_all(&buffered_client).await?;
            client.write_all(&buffered_server).await?;
            tokio::io::copy_bidirectional(&mut client, &mut server).await?;
            return Ok(());
        }
    }
}

/// Reads one message with a `Content-Length` (or no) body; `None` at a clean EOF.
async fn read_message(from: &mut BufReader<TcpStream>) -> std::io::Result<Option<Message>> {
    let mut head = Vec::new();
    let mut first_line = String::new();
    let mut length = 0usize;
    let mut upgrade = false;
    loop {
        let mut line = String::new();
        if from.read_line(&mut line).await? == 0 {
            return Ok(None);
        }
        head.extend_from_slice(line.as_bytes());
        if first_line.is_empty() {
            first_line = line.trim_end().to_owned();
            continue;
        }
        if line == "\r\n" {
            break;
        }
        let lower = line.to_ascii_lowercase();
        if let Some(value) = lower.strip_prefix("content-length:") {
            length = value.trim().parse().unwrap_or(0);
        }
        if lower.starts_with("upgrade:") {
            upgrade = true;
        }
        assert!(
            !lower.starts_with("transfer-encoding:"),
            "the fault proxy does not relay chunked bodies"
        );
    }
    let mut body = vec![0; length];
    from.read_exact(&mut body).await?;
    Ok(Some(Message {
        head,
        body,
        first_line,
        upgrade,
    }))
}
