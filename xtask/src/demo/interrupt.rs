//! Ctrl-C, caught from the moment the demo starts.
//!
//! The gateway runs in its own process group, so a Ctrl-C reaches xtask only; xtask
//! must therefore catch it before the gateway starts, or dying on the signal would
//! leave the gateway running. On Unix the handler is installed synchronously here.

use anyhow::Result;
use tokio_util::sync::CancellationToken;

/// Installs the handler; the token is cancelled at the first Ctrl-C.
pub fn listen() -> Result<CancellationToken> {
    let token = CancellationToken::new();
    let cancel = token.clone();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupts = signal(SignalKind::interrupt())?;
        tokio::spawn(async move {
            if interrupts.recv().await.is_some() {
                cancel.cancel();
            }
        });
    }
    #[cfg(not(unix))]
    tokio::spawn(async move {
        if tokio::signal::ctrl_c().await.is_ok() {
            cancel.cancel();
        }
    });
    Ok(token)
}
