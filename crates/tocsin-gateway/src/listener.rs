//! The accept loop. axum's `serve` sets no header-read timeout, so a client that
//! opens a socket and trickles bytes would hold it forever; this loop serves each
//! connection with hyper directly, with a deadline for the first byte and then for the
//! headers (the handshake), a cap of open connections per source address, a backoff
//! when `accept` fails, and a graceful shutdown: stop accepting, let in-flight
//! requests finish. With `[tls]`, `listener/tls.rs` runs the TLS handshake between
//! the first byte and hyper, inside the same deadline.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

mod per_ip;
pub mod tls;

pub use per_ip::PerIp;
pub use tls::Tls;

/// How long in-flight HTTP requests get to finish at shutdown.
const GRACE: Duration = Duration::from_secs(10);
/// The first and the longest pause after a failed `accept` (out of file descriptors):
/// doubling in between, so a gateway at its limit neither spins nor floods its log.
const ACCEPT_BACKOFF: (Duration, Duration) = (Duration::from_millis(10), Duration::from_secs(1));

/// What the accept loop enforces on every connection.
#[derive(Clone)]
pub struct ConnectionLimits {
    /// How long a client may take to send its first byte, and then a request's headers
    /// (including the WebSocket upgrade request), before its connection is dropped.
    pub handshake_timeout: Duration,
    /// Open connections per source address.
    pub per_ip: Arc<PerIp>,
    /// HTTPS and WSS instead of plain HTTP: the handshake must also finish within
    /// `handshake_timeout` of the accept.
    pub tls: Option<Arc<Tls>>,
}

/// Accepts connections until `shutdown` is cancelled, then drains.
pub async fn accept_loop(
    listener: TcpListener,
    app: Router,
    limits: ConnectionLimits,
    shutdown: CancellationToken,
) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(limits.handshake_timeout);
    let builder = Arc::new(builder);
    let graceful = GracefulShutdown::new();
    let mut backoff = ACCEPT_BACKOFF.0;
    let failures = Throttled::default();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                failures.log(|count| tracing::error!(error = %err, count, "accept failed (out of file descriptors? raise LimitNOFILE); backing off"));
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(ACCEPT_BACKOFF.1);
                continue;
            }
        };
        backoff = ACCEPT_BACKOFF.0;
        let connection = Connection {
            app: app.clone(),
            builder: builder.clone(),
            graceful: graceful.watcher(),
            limits: limits.clone(),
            shutdown: shutdown.clone(),
        };
        tokio::spawn(connection.serve(stream, peer));
    }
    drop(listener);
    if tokio::time::timeout(GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some HTTP requests were still running at shutdown");
    }
}

/// What serving one accepted connection needs.
struct Connection {
    app: Router,
    builder: Arc<Builder<TokioExecutor>>,
    /// Counts this connection in the graceful shutdown from its acceptance on.
    graceful: Watcher,
    limits: ConnectionLimits,
    /// A connection still waiting for its first byte at shutdown just closes.
    shutdown: CancellationToken,
}

impl Connection {
    /// Checks the address's cap and the first byte, then serves HTTP (and upgrades).
    async fn serve(self, stream: TcpStream, peer: SocketAddr) {
        let Some(slot) = self.limits.per_ip.acquire(peer.ip()) else {
            refuse_over_cap(stream, peer, self.limits.per_ip.max()).await;
            return;
        };
        // hyper's header timeout starts at the first byte: a socket that never sends
        // one would be held forever.
        let deadline = tokio::time::Instant::now() + self.limits.handshake_timeout;
        let mut first = [0_u8; 1];
        let first_byte = tokio::time::timeout_at(deadline, stream.peek(&mut first));
        let sent = tokio::select! {
            sent = first_byte => sent,
            () = self.shutdown.cancelled() => return,
        };
        match sent {
            Ok(Ok(read)) if read > 0 => {}
            // Closed before a byte (a TCP health probe) or failed: nothing to count.
            Ok(_) => return,
            Err(_) => {
                tracing::debug!(%peer, "closed a connection that sent nothing in time");
                crate::metrics::refused("handshake_timeout", crate::metrics::Surface::Connection);
                return;
            }
        }
        // Small frames (pings, acks) must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        match self.limits.tls.clone() {
            None => self.serve_http(stream, peer).await,
            Some(tls) => {
                let accepted = tls
                    .accept(stream, peer, first[0], deadline, &self.shutdown)
                    .await;
                if let Some(stream) = accepted {
                    self.serve_http(stream, peer).await;
                }
            }
        }
        drop(slot);
    }

    /// Serves HTTP (and upgrades) on a plain or TLS stream.
    async fn serve_http<I>(self, stream: I, peer: SocketAddr)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let service = TowerToHyperService::new(WithPeer {
            app: self.app,
            peer,
        });
        let connection = self
            .builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = self.graceful.watch(connection);
        if let Err(err) = connection.await {
            tracing::debug!(error = %err, "HTTP connection ended with an error");
        }
    }
}

/// Answers a connection over its address's cap with a short 503 and closes it.
async fn refuse_over_cap(mut stream: TcpStream, peer: SocketAddr, max: usize) {
    crate::metrics::refused("too_many_connections", crate::metrics::Surface::Connection);
    static REFUSALS: Throttled = Throttled::new();
    REFUSALS.log(|count| {
        tracing::warn!(%peer, max, count, "connection refused: too many open connections from this address (http.max_connections_per_ip)")
    });
    let body = format!(
        r#"{{"code":"unavailable","message":"too many open connections from your address (at most {max}); close some, or ask the administrator to raise http.max_connections_per_ip"}}"#
    );
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nRetry-After: 5\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let write = async {
        stream.write_all(response.as_bytes()).await?;
        stream.shutdown().await
    };
    let _ = tokio::time::timeout(Duration::from_secs(1), write).await;
}

/// The app for one connection: each of its requests carries the TCP peer as
/// `ConnectInfo<SocketAddr>` (what `axum::serve` would add; this loop serves with
/// hyper directly, so it adds it itself). The peer is the only source address the
/// gateway trusts: `X-Forwarded-For` and the like are client-written. (A router
/// re-layered per connection cost ~7 µs per connection; this is a field write.)
#[derive(Clone)]
struct WithPeer {
    app: Router,
    peer: SocketAddr,
}

impl<B> tower::Service<axum::http::Request<B>> for WithPeer
where
    Router: tower::Service<axum::http::Request<B>>,
{
    type Response = <Router as tower::Service<axum::http::Request<B>>>::Response;
    type Error = <Router as tower::Service<axum::http::Request<B>>>::Error;
    type Future = <Router as tower::Service<axum::http::Request<B>>>::Future;

    fn poll_ready(
        &mut self,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Result<(), Self::Error>> {
        tower::Service::<axum::http::Request<B>>::poll_ready(&mut self.app, cx)
    }

    fn call(&mut self, mut request: axum::http::Request<B>) -> Self::Future {
        request.extensions_mut().insert(ConnectInfo(self.peer));
        self.app.call(request)
    }
}

/// A log line at most once a second, with how many events it stands for.
#[derive(Default)]
struct Throttled {
    /// Events since the last line.
    count: AtomicU64,
    /// When the last line was written (ms since the Unix epoch).
    last_ms: AtomicU64,
}

impl Throttled {
    const fn new() -> Throttled {
        Throttled {
            count: AtomicU64::new(0),
            last_ms: AtomicU64::new(0),
        }
    }

    fn log(&self, line: impl FnOnce(u64)) {
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let now = chrono::Utc::now().timestamp_millis().max(0) as u64;
        let last = self.last_ms.load(Ordering::Relaxed);
        if now.saturating_sub(last) >= 1000
            && self
                .last_ms
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            self.count.store(0, Ordering::Relaxed);
            line(count);
        }
    }
}
