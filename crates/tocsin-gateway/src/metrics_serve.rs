//! What keeps `/metrics` served and its histograms bounded: the recorder's upkeep
//! (folding recorded samples into the histograms, else they pile up between scrapes)
//! and the optional private `[metrics] listen` address.

use std::time::Duration;

use tokio::task::JoinHandle;

use crate::config::Config;
use crate::state::AppState;

/// How often recorded histogram samples are folded in.
const UPKEEP: Duration = Duration::from_secs(5);

/// Binds `[metrics] listen`, if set. A failure stops the start: an operator who asked
/// for it would otherwise scrape nothing and not know why.
pub fn bind(config: &Config) -> anyhow::Result<Option<std::net::TcpListener>> {
    let Some(listen) = config.metrics.listen else {
        return Ok(None);
    };
    let listener = std::net::TcpListener::bind(listen).map_err(|err| {
        anyhow::anyhow!(
            "cannot listen for metrics on {listen} ([metrics] listen): {err}; free the port or change it"
        )
    })?;
    listener.set_nonblocking(true)?;
    Ok(Some(listener))
}

/// Serves the bound `[metrics] listen` socket, if any, and runs the upkeep; abort at
/// shutdown.
pub fn start(state: &AppState) -> anyhow::Result<JoinHandle<()>> {
    let listener = state
        .metrics_listener
        .lock()
        .map_err(|_| anyhow::anyhow!("the metrics listener's lock is poisoned"))?
        .take()
        .map(tokio::net::TcpListener::from_std)
        .transpose()?;
    let state = state.clone();
    Ok(tokio::spawn(async move {
        if let Some(listener) = listener {
            let address = listener.local_addr().ok();
            tracing::info!(?address, "metrics served without a token on this address");
            let app = crate::api::metrics::private_router(state.clone());
            let shutdown = state.shutdown.clone();
            tokio::spawn(async move {
                let served = axum::serve(listener, app)
                    .with_graceful_shutdown(shutdown.cancelled_owned())
                    .await;
                if let Err(err) = served {
                    tracing::error!(error = %err, "the metrics listener stopped");
                }
            });
        }
        let mut upkeep = tokio::time::interval(UPKEEP);
        loop {
            upkeep.tick().await;
            state.metrics.run_upkeep();
        }
    }))
}
