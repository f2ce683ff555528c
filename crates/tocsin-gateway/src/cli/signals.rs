//! The signals `serve` answers: SIGTERM and SIGINT shut down gracefully (every
//! WebSocket closed with 4000, in-flight requests finished); SIGHUP reads the TLS
//! certificate again (`systemctl reload`, a certbot deploy hook) or, without `[tls]`,
//! only logs that there is nothing to reload — the unit's `ExecReload` must never stop
//! a gateway, and SIGHUP's default action would.
//!
//! They are registered by [`Signals::watch`] before "listening on" is printed: a
//! script that signals the gateway as soon as it reads that line is handled, not
//! killed by the default action.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::listener::Tls;

/// The registered signal streams, waiting for [`Signals::spawn`].
pub struct Signals {
    #[cfg(unix)]
    term: tokio::signal::unix::Signal,
    #[cfg(unix)]
    interrupt: tokio::signal::unix::Signal,
    #[cfg(unix)]
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    /// Registers the handlers now (needs the runtime).
    #[cfg(unix)]
    pub fn watch() -> anyhow::Result<Signals> {
        use tokio::signal::unix::{SignalKind, signal};
        let watch = |kind: SignalKind, name: &str| {
            signal(kind).map_err(|err| anyhow::anyhow!("cannot watch {name}: {err}"))
        };
        Ok(Signals {
            term: watch(SignalKind::terminate(), "SIGTERM")?,
            interrupt: watch(SignalKind::interrupt(), "SIGINT")?,
            hangup: watch(SignalKind::hangup(), "SIGHUP")?,
        })
    }

    /// Off Unix: Ctrl-C only, registered when first polled.
    #[cfg(not(unix))]
    pub fn watch() -> anyhow::Result<Signals> {
        Ok(Signals {})
    }

    /// Answers the signals until shutdown: cancels `shutdown` at the first SIGTERM or
    /// SIGINT; each SIGHUP asks `tls` to reload.
    #[cfg(unix)]
    pub fn spawn(self, shutdown: CancellationToken, tls: Option<Arc<Tls>>) {
        let Signals {
            mut term,
            mut interrupt,
            mut hangup,
        } = self;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = term.recv() => break,
                    _ = interrupt.recv() => break,
                    _ = hangup.recv() => reload(tls.as_deref()),
                }
            }
            tracing::info!("shutting down: closing connections with going_away");
            shutdown.cancel();
        });
    }

    /// Off Unix: Ctrl-C shuts down.
    #[cfg(not(unix))]
    pub fn spawn(self, shutdown: CancellationToken, _tls: Option<Arc<Tls>>) {
        tokio::spawn(async move {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutting down: closing connections with going_away");
            shutdown.cancel();
        });
    }
}

/// What a SIGHUP does.
#[cfg(unix)]
fn reload(tls: Option<&Tls>) {
    match tls {
        Some(tls) => {
            tracing::info!(cert = %tls.cert_path().display(), "SIGHUP: reading the TLS certificate again");
            tls.request_reload();
        }
        None => tracing::info!("SIGHUP: nothing to reload (no [tls] in config.toml)"),
    }
}
