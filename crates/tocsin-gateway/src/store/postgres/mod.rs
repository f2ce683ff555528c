//! The PostgreSQL store (`--database postgres://…`): several gateway nodes share one
//! database. Changes that raise notifications go through the node's writer task
//! (`writer.rs`, batched, in commit order); other changes run in their own
//! transaction on the pool; reads use the pool.

mod accounts;
mod actions;
mod append_run;
mod audit;
mod cluster;
mod deadlines;
mod error;
mod governance;
mod listener;
mod ops;
mod reads;
mod retract;
mod schedule;
mod store;
mod webhooks;
mod writer;

pub use store::PgStore;

use sqlx::PgPool;
use sqlx::postgres::PgPoolOptions;

use crate::store::StoreError;

/// Connects a pool and brings the schema to the latest version (sqlx's migrator
/// takes an advisory lock, so nodes starting together migrate once).
pub async fn connect_and_migrate(url: &str, max_connections: u32) -> Result<PgPool, StoreError> {
    let pool = PgPoolOptions::new()
        .max_connections(max_connections)
        .acquire_timeout(std::time::Duration::from_secs(5))
        .connect(url)
        .await?;
    sqlx::migrate!("migrations/postgres")
        .run(&pool)
        .await
        .map_err(|err| StoreError::Internal(format!("PostgreSQL schema upgrade failed: {err}")))?;
    Ok(pool)
}

/// For unit tests: a throwaway cluster and a migrated pool on a database of it.
#[cfg(test)]
pub async fn test_pool() -> (tocsin_harness::postgres::PgCluster, PgPool) {
    let cluster = tocsin_harness::postgres::PgCluster::start().expect("PostgreSQL starts");
    let url = cluster.create_database("unit").expect("database");
    let pool = connect_and_migrate(&url, 8).await.expect("migrated");
    (cluster, pool)
}

#[cfg(test)]
mod tests {
    use super::connect_and_migrate;

    /// Nodes started together migrate one schema once: the migrator's advisory lock
    /// makes the second wait, then find nothing to do.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn nodes_starting_together_migrate_once() {
        let cluster = tocsin_harness::postgres::PgCluster::start().expect("PostgreSQL starts");
        let url = cluster.create_database("together").expect("database");
        let (a, b) = tokio::join!(connect_and_migrate(&url, 2), connect_and_migrate(&url, 2));
        let (a, _b) = (a.expect("first node"), b.expect("second node"));
        let applied: Vec<(i64,)> =
            sqlx::query_as("SELECT version FROM _sqlx_migrations ORDER BY version")
                .fetch_all(&a)
                .await
                .expect("the migrations table");
        assert_eq!(applied, [(1,), (2,), (3,)]);
        let reopened = connect_and_migrate(&url, 2).await.expect("a restart");
        let (tables,): (i64,) = sqlx::query_as(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'",
        )
        .fetch_one(&reopened)
        .await
        .expect("tables");
        assert!(tables >= 20, "the whole schema is there: {tables} tables");
    }
}
