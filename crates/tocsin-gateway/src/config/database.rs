//! Which database the gateway serves: a SQLite file in the data dir (the default, for
//! one node) or a PostgreSQL server shared by several nodes. Written either
//! `database = "tocsin.db"` / `database = "postgres://…"`, or as a table:
//!
//! ```toml
//! [database]
//! url = "postgres://tocsin@db.cabinet.local/tocsin"
//! max_connections = 16
//! ```

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

/// The `database` setting as written in config.toml.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum DatabaseSetting {
    /// A SQLite file (relative to the data dir unless absolute) or a PostgreSQL URL.
    Location(String),
    /// `[database]`: a URL and the pool's size.
    Table(DatabaseTable),
}

/// The `[database]` table.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct DatabaseTable {
    /// `postgres://user[:password]@host[:port]/database[?sslmode=verify-full…]`, or a
    /// SQLite file.
    pub url: String,
    /// PostgreSQL connections this node may open (its writer uses one at a time).
    #[serde(default = "default_max_connections")]
    pub max_connections: u32,
}

fn default_max_connections() -> u32 {
    16
}

impl Default for DatabaseSetting {
    fn default() -> Self {
        DatabaseSetting::Location("tocsin.db".to_owned())
    }
}

/// The database, resolved.
#[derive(Debug, Clone, PartialEq)]
pub enum Database {
    /// The SQLite file.
    Sqlite(PathBuf),
    /// A PostgreSQL server.
    Postgres {
        /// Its URL, credentials included: never log it, log [`Database::describe`].
        url: String,
        /// The pool's size.
        max_connections: u32,
    },
}

/// Whether a location names a PostgreSQL server rather than a file.
fn is_postgres_url(location: &str) -> bool {
    location.starts_with("postgres://") || location.starts_with("postgresql://")
}

impl DatabaseSetting {
    /// A setting from `--database` / `TOCSIN_DATABASE` (a file or a URL).
    pub fn from_flag(location: String) -> DatabaseSetting {
        DatabaseSetting::Location(location)
    }

    /// The database this names, files relative to `data_dir`.
    pub fn resolve(&self, data_dir: &Path) -> Database {
        let (location, max_connections) = match self {
            DatabaseSetting::Location(location) => (location, default_max_connections()),
            DatabaseSetting::Table(table) => (&table.url, table.max_connections),
        };
        if is_postgres_url(location) {
            return Database::Postgres {
                url: location.clone(),
                max_connections,
            };
        }
        let path = PathBuf::from(location);
        Database::Sqlite(if path.is_absolute() {
            path
        } else {
            data_dir.join(path)
        })
    }

    /// Checks what parses but cannot work.
    pub fn validate(&self) -> anyhow::Result<()> {
        if let DatabaseSetting::Table(table) = self {
            anyhow::ensure!(
                table.max_connections >= 2,
                "database.max_connections must be at least 2 (the writer holds one while it commits)"
            );
        }
        if let Database::Postgres { url, .. } = self.resolve(Path::new(".")) {
            url::Url::parse(&url).map_err(|err| {
                anyhow::anyhow!(
                    "the database URL is not valid ({err}); write it as postgres://user:password@host:5432/database"
                )
            })?;
        }
        Ok(())
    }
}

impl Database {
    /// What to show of it in logs and errors: the file, or the server and database
    /// without credentials.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(path) => path.display().to_string(),
            Database::Postgres { url, .. } => redact(url),
        }
    }

    /// The SQLite file, or an error for a command that only works on one.
    pub fn sqlite_file(&self, command: &str) -> anyhow::Result<PathBuf> {
        match self {
            Database::Sqlite(path) => Ok(path.clone()),
            Database::Postgres { .. } => anyhow::bail!(
                "`{command}` works on the SQLite file, and this gateway uses PostgreSQL ({}): use PostgreSQL's own tools (pg_dump, pg_restore, pg_amcheck; see docs/OPERATIONS.md, \"Several nodes on PostgreSQL\")",
                self.describe()
            ),
        }
    }
}

/// A PostgreSQL URL without its user's password.
fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut parsed) => {
            if parsed.password().is_some() {
                let _ = parsed.set_password(Some("***"));
            }
            parsed.to_string()
        }
        Err(_) => "(an invalid PostgreSQL URL)".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn files_urls_and_tables_resolve() {
        let dir = Path::new("/var/lib/tocsin");
        let file = DatabaseSetting::Location("tocsin.db".into());
        assert_eq!(file.resolve(dir), Database::Sqlite(dir.join("tocsin.db")));
        let url = DatabaseSetting::Location("postgres://u:secret@db/tocsin".into());
        let resolved = url.resolve(dir);
        assert!(matches!(
            resolved,
            Database::Postgres {
                max_connections: 16,
                ..
            }
        ));
        assert_eq!(resolved.describe(), "postgres://u:***@db/tocsin");
        assert!(resolved.sqlite_file("backup").is_err());
        let table: DatabaseSetting =
            toml::from_str::<toml::Table>("url = \"postgresql://db/t\"\nmax_connections = 4")
                .map(|t| toml::Value::Table(t).try_into().expect("a table"))
                .expect("parses");
        assert!(matches!(
            table.resolve(dir),
            Database::Postgres {
                max_connections: 4,
                ..
            }
        ));
    }

    #[test]
    fn a_pool_too_small_for_the_writer_is_refused() {
        let table = DatabaseSetting::Table(DatabaseTable {
            url: "postgres://db/t".into(),
            max_connections: 1,
        });
        assert!(table.validate().is_err());
    }
}
