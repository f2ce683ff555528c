//! A TCP proxy on 127.0.0.1 that can black-hole its link: while frozen it keeps every
//! socket open but forwards nothing either way — what a dead Wi-Fi or a sleeping NAT
//! looks like to both ends. (tc netem is not available on this kernel.)

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

/// A running proxy.
pub struct Proxy {
    /// `127.0.0.1:PORT` clients connect to.
    pub addr: String,
    /// True while frozen.
    frozen: watch::Sender<bool>,
    /// Set when the accept loop must drop connections made while frozen.
    refuse_new: Arc<AtomicBool>,
}

impl Proxy {
    /// Starts forwarding to `upstream` (`ip:port`).
    pub async fn start(upstream: String) -> Proxy {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("the proxy binds");
        let addr = listener.local_addr().expect("bound").to_string();
        let (frozen, frozen_rx) = watch::channel(false);
        let refuse_new = Arc::new(AtomicBool::new(false));
        let refuse = refuse_new.clone();
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if refuse.load(Ordering::SeqCst) {
                    // A black hole answers nothing: hold the socket, never connect upstream.
                    let mut hold = frozen_rx.clone();
                    tokio::spawn(async move {
                        let _client = client;
                        let _ = hold.wait_for(|frozen| !*frozen).await;
                    });
                    continue;
                }
                let Ok(server) = TcpStream::connect(&upstream).await else {
                    continue;
                };
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pump(client_read, server_write, frozen_rx.clone()));
                tokio::spawn(pump(server_read, client_write, frozen_rx.clone()));
            }
        });
        Proxy {
            addr,
            frozen,
            refuse_new,
        }
    }

    /// Stops forwarding (existing and new connections) without closing anything.
    pub fn freeze(&self) {
        self.refuse_new.store(true, Ordering::SeqCst);
        let _ = self.frozen.send(true);
    }

    /// Forwards again for new connections; connections that were frozen are closed
    /// (their bytes were lost to the black hole).
    pub fn thaw(&self) {
        self.refuse_new.store(false, Ordering::SeqCst);
        let _ = self.frozen.send(false);
    }
}

/// Copies one direction until EOF; once frozen, this link never forwards again.
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    mut frozen: watch::Receiver<bool>,
) {
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = tokio::select! {
            read = from.read(&mut buffer) => read,
            () = async { let _ = frozen.wait_for(|frozen| *frozen).await; } => {
                // Hold both halves open, silently, until thawed; then the link is
                // gone for good, as a TCP connection through a dead network is.
                let _ = frozen.wait_for(|frozen| !*frozen).await.map(|_| ());
                return;
            }
        };
        let Ok(n) = read else { return };
        let is_frozen = *frozen.borrow();
        if n == 0 || is_frozen {
            return;
        }
        if to.write_all(&buffer[..n]).await.is_err() {
            return;
        }
    }
}
