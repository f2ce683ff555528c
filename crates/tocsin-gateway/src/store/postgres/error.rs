//! What a PostgreSQL failure means to a caller: the server unreachable is a 503 the
//! gateway recovers from by itself, a full disk is `DiskFull`, a lost serialization
//! race is `Busy` (retry), a duplicate key is a conflict; anything else is internal.

use crate::store::StoreError;

/// SQLSTATE classes and codes the store answers differently
/// (https://www.postgresql.org/docs/15/errcodes-appendix.html).
mod sqlstate {
    /// Class 08, connection exception.
    pub const CONNECTION_CLASS: &str = "08";
    /// The server is shutting down or restarting (`admin_shutdown`, `crash_shutdown`,
    /// `cannot_connect_now`).
    pub const SHUTTING_DOWN: [&str; 3] = ["57P01", "57P02", "57P03"];
    /// `disk_full`.
    pub const DISK_FULL: &str = "53100";
    /// `serialization_failure`, `deadlock_detected`.
    pub const RETRY: [&str; 2] = ["40001", "40P01"];
    /// `unique_violation`.
    pub const UNIQUE: &str = "23505";
    /// `read_only_sql_transaction`: a standby, or a primary demoted by a failover.
    pub const READ_ONLY: &str = "25006";
}

impl From<sqlx::Error> for StoreError {
    fn from(err: sqlx::Error) -> Self {
        match &err {
            sqlx::Error::Io(_)
            | sqlx::Error::Tls(_)
            | sqlx::Error::PoolTimedOut
            | sqlx::Error::PoolClosed
            | sqlx::Error::WorkerCrashed => unreachable_now(&err),
            sqlx::Error::Database(db) => {
                let code = db.code().unwrap_or_default();
                from_sqlstate(&code, db.message()).unwrap_or_else(|| {
                    if is_unreachable_state(&code) {
                        unreachable_now(&err)
                    } else {
                        StoreError::Internal(err.to_string())
                    }
                })
            }
            _ => StoreError::Internal(err.to_string()),
        }
    }
}

/// Whether a SQLSTATE says the server is out of reach for now (connection lost,
/// shutting down, or no longer the primary).
fn is_unreachable_state(code: &str) -> bool {
    code.starts_with(sqlstate::CONNECTION_CLASS)
        || sqlstate::SHUTTING_DOWN.contains(&code)
        || code == sqlstate::READ_ONLY
}

/// What a statement's failure means, from its SQLSTATE and message: also for failures
/// a server-side function caught and returned as values (`tocsin_append`). `None`
/// for "out of reach" (the caller words it with the driver's error) and for
/// anything unexpected (internal).
fn from_sqlstate(code: &str, message: &str) -> Option<StoreError> {
    if code == sqlstate::DISK_FULL {
        Some(StoreError::DiskFull)
    } else if sqlstate::RETRY.contains(&code) {
        Some(StoreError::Busy)
    } else if code == sqlstate::UNIQUE {
        Some(StoreError::Conflict(format!("already exists: {message}")))
    } else {
        None
    }
}

/// A failure a server-side function caught: its SQLSTATE and message as returned.
pub fn caught(code: &str, message: &str) -> StoreError {
    from_sqlstate(code, message).unwrap_or_else(|| {
        if is_unreachable_state(code) {
            StoreError::Unreachable(format!(
                "the database server stopped answering ({message}): nothing was stored; retry in a moment"
            ))
        } else {
            StoreError::Internal(format!("database error {code}: {message}"))
        }
    })
}

/// The refusal while PostgreSQL cannot be reached.
fn unreachable_now(err: &sqlx::Error) -> StoreError {
    StoreError::Unreachable(format!(
        "the database server cannot be reached ({err}): nothing was stored; the gateway \
         reconnects by itself, retry in a moment"
    ))
}

/// Whether a failure is a duplicate key (for stores that answer it as "exists").
pub fn is_unique_violation(err: &sqlx::Error) -> bool {
    matches!(err, sqlx::Error::Database(db) if db.code().as_deref() == Some(sqlstate::UNIQUE))
}
