//! The environment variables and install locations the harness reads, in one place.

/// Overrides where PostgreSQL's server binaries (`initdb`, `postgres`, `pg_isready`)
/// are looked up; otherwise Debian's `/usr/lib/postgresql/<major>/bin`, newest first.
pub const PG_BIN_DIR: &str = "TOCSIN_PG_BIN_DIR";

/// Where Debian's `postgresql-<major>` packages put the server binaries.
pub const DEBIAN_PG_ROOT: &str = "/usr/lib/postgresql";

/// The unprivileged account a cluster runs as when the harness runs as root
/// (`initdb` refuses root); the Debian package creates it.
pub const PG_SYSTEM_USER: &str = "postgres";
