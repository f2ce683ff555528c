//! Assembling and running the gateway: `open` builds the state from a `Config`,
//! `serve` runs it on a bound listener until the shutdown token is cancelled.
//! The binary parses flags and binds; the library never reads the environment.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tocsin_protocol::CloseCode;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::auth::{AccessTokens, Authenticator, ExternalVerifier};
use crate::config::{Config, Database};
use crate::hub::Hub;
use crate::state::AppState;
use crate::store::Store;
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;

/// The issuer of the gateway's own access tokens.
pub const ISSUER: &str = "tocsin-gateway";

/// How long shutdown waits for sessions to send their close frames.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Opens the store and builds the shared state.
pub async fn open(
    config: Config,
    data_dir: &Path,
    shutdown: CancellationToken,
) -> anyhow::Result<AppState> {
    // Before the store: a certificate that cannot serve stops the start at once.
    let tls = match &config.tls {
        Some(tls) => Some(Arc::new(crate::listener::Tls::from_config(
            tls,
            data_dir,
            crate::clock::Clock::system(),
        )?)),
        None => None,
    };
    let hub = Hub::new();
    let store = open_store(&config, data_dir, hub.clone()).await?;
    let access = AccessTokens::new(
        config.auth.jwt_secret.as_bytes(),
        ISSUER,
        Duration::from_secs(config.auth.access_token_ttl_secs),
    );
    let external = match &config.auth.external {
        Some(external) => {
            Some(ExternalVerifier::new(external.clone()).map_err(anyhow::Error::msg)?)
        }
        None => None,
    };
    let auth = Arc::new(Authenticator::new(access, external));
    let metrics_listener = crate::metrics_serve::bind(&config)?;
    let mut state = AppState::new(Arc::new(config), store, hub, auth, shutdown);
    state.tls = tls;
    state.metrics_listener = Arc::new(std::sync::Mutex::new(metrics_listener));
    Ok(state)
}

/// Opens the database the config names, for serving.
async fn open_store(
    config: &Config,
    data_dir: &Path,
    hub: Arc<Hub>,
) -> anyhow::Result<Arc<dyn Store>> {
    let database = config.database(data_dir);
    Ok(match &database {
        Database::Sqlite(path) => Arc::new(
            SqliteStore::serve(path, &config.sqlite_synchronous, hub)
                .map_err(|err| anyhow::anyhow!("{err}"))?,
        ),
        Database::Postgres {
            url,
            max_connections,
        } => {
            let store = PgStore::serve(url, *max_connections, hub.clone())
                .await
                .map_err(|err| {
                    anyhow::anyhow!(
                        "cannot open the PostgreSQL database {}: {err}",
                        database.describe()
                    )
                })?;
            hub.set_relay(store.relay());
            tracing::info!(database = %database.describe(), "serving a PostgreSQL database, with the other nodes");
            Arc::new(store)
        }
    })
}

/// Serves HTTP and WebSocket on `listener` until `state.shutdown` is cancelled, then
/// drains: every session closes with 4000 going_away (sessions watch child tokens of
/// the shutdown token), and this returns once they are gone or after a timeout.
pub async fn serve(listener: TcpListener, state: AppState) -> anyhow::Result<()> {
    let metrics = crate::metrics_serve::start(&state)?;
    let pruner = tokio::spawn(prune_loop(state.clone()));
    let scheduler = tokio::spawn(crate::deadlines::scheduler::Scheduler::of(&state).run());
    let webhooks = tokio::spawn(crate::webhooks::Deliverer::of(&state)?.run());
    let audit_stop = CancellationToken::new();
    let audit_writer = state
        .audit_writer
        .lock()
        .map_err(|_| anyhow::anyhow!("the audit writer's lock is poisoned"))?
        .take()
        .map(|writer| tokio::spawn(writer.run(audit_stop.clone())));
    let app = crate::api::router(state.clone());
    let limits = crate::listener::ConnectionLimits {
        handshake_timeout: Duration::from_millis(state.config.http.handshake_timeout_ms.max(1)),
        per_ip: crate::listener::PerIp::new(state.config.http.max_connections_per_ip),
        tls: state.tls.clone(),
    };
    if let Some(tls) = state.tls.clone() {
        // Ends at the shutdown token.
        tokio::spawn(tls.watch(state.shutdown.clone()));
    }
    crate::listener::accept_loop(listener, app, limits, state.shutdown.clone()).await;
    state.hub.close_all(
        CloseCode::GoingAway,
        "the gateway is shutting down; reconnect and resume",
    );
    state.sessions.close();
    if tokio::time::timeout(DRAIN_TIMEOUT, state.sessions.wait())
        .await
        .is_err()
    {
        tracing::warn!("some WebSocket sessions did not close in time");
    }
    pruner.abort();
    metrics.abort();
    // The scheduler stops at the shutdown token; a step it was applying either
    // committed or stays planned for the next start.
    let _ = scheduler.await;
    // An attempt cut short is tried again on the next start (it stays undelivered).
    webhooks.abort();
    // Delivery receipts of the last moments are written before the store closes.
    audit_stop.cancel();
    if let Some(writer) = audit_writer {
        let _ = writer.await;
    }
    // Sessions are gone, so nothing writes any more: fold the WAL into the database
    // file, so a stopped gateway's data is one file.
    state.store.close().await;
    tracing::info!("gateway stopped");
    Ok(())
}

/// Deletes what is older than retention, at the configured interval.
async fn prune_loop(state: AppState) {
    let mut interval =
        tokio::time::interval(Duration::from_secs(state.config.prune_interval_secs.max(1)));
    loop {
        interval.tick().await;
        let cutoff =
            chrono::Utc::now() - chrono::Duration::seconds(state.config.retention_secs as i64);
        match state.store.prune(cutoff).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(count, "pruned notifications past retention"),
            Err(err) => tracing::error!(error = %err, "pruning failed; will retry"),
        }
        prune_audit(&state).await;
    }
}

/// Deletes each firm's audit records older than its `audit_retention_days`.
async fn prune_audit(state: &AppState) {
    let tenants = match state.store.list_users(None).await {
        Ok(users) => users
            .into_iter()
            .map(|user| user.tenant)
            .collect::<std::collections::BTreeSet<_>>(),
        Err(err) => {
            tracing::error!(error = %err, "cannot list firms to prune their audit trails");
            return;
        }
    };
    for tenant in tenants {
        let Ok(settings) =
            crate::deadlines::declare::firm_settings(state.store.as_ref(), &tenant).await
        else {
            continue;
        };
        let days = i64::from(settings.settings.audit_retention_days);
        let cutoff = state.clock.now() - chrono::Duration::days(days);
        match state.store.prune_audit(&tenant, cutoff).await {
            Ok(0) => {}
            Ok(count) => tracing::info!(tenant, count, "pruned audit records past retention"),
            Err(err) => tracing::error!(tenant, error = %err, "pruning the audit trail failed"),
        }
    }
}
