//! The accept loop. axum's `serve` sets no header-read timeout, so a client that
//! opens a socket and trickles bytes would hold it forever; this loop serves each
//! connection with hyper directly, with a header-read (handshake) timeout, and
//! shuts down gracefully: stop accepting, let in-flight requests finish.

use std::net::SocketAddr;
use std::time::Duration;

use axum::extract::ConnectInfo;
use axum::{Extension, Router};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto::Builder;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

/// How long a client may take to send a request's headers (including the WebSocket
/// upgrade request) before its connection is dropped.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);

/// How long in-flight HTTP requests get to finish at shutdown.
const GRACE: Duration = Duration::from_secs(10);

/// Accepts connections until `shutdown` is cancelled, then drains.
pub async fn accept_loop(listener: TcpListener, app: Router, shutdown: CancellationToken) {
    let mut builder = Builder::new(TokioExecutor::new());
    builder
        .http1()
        .timer(TokioTimer::new())
        .header_read_timeout(HEADER_READ_TIMEOUT);
    let graceful = GracefulShutdown::new();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = shutdown.cancelled() => break,
        };
        let (stream, peer) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                // Out of file descriptors and the like: log, breathe, keep serving.
                tracing::error!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        // Small frames (pings, acks) must not wait for Nagle.
        let _ = stream.set_nodelay(true);
        let service = TowerToHyperService::new(with_peer(&app, peer));
        let connection = builder
            .serve_connection_with_upgrades(TokioIo::new(stream), service)
            .into_owned();
        let connection = graceful.watch(connection);
        tokio::spawn(async move {
            if let Err(err) = connection.await {
                tracing::debug!(error = %err, "HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(GRACE, graceful.shutdown())
        .await
        .is_err()
    {
        tracing::warn!("some HTTP requests were still running at shutdown");
    }
}

/// The app for one connection: each of its requests carries the TCP peer as
/// `ConnectInfo<SocketAddr>` (what `axum::serve` would add; this loop serves with
/// hyper directly, so it adds it itself). The peer is the only source address the
/// gateway trusts: `X-Forwarded-For` and the like are client-written.
fn with_peer(app: &Router, peer: SocketAddr) -> Router {
    // `Router::layer` wraps each route anew per connection (microseconds); the
    // idiomatic `tower::ServiceExt::map_request` would need `tower` as a dependency.
    app.clone().layer(Extension(ConnectInfo(peer)))
}
