//! Admin subcommands: `init`, `tenant`, `user`, `key`. They open the same SQLite file
//! as a running gateway (WAL lets both work at once).

use std::io::{BufRead, Write};
use std::path::Path;
use std::sync::Arc;

use base64::Engine;
use clap::Subcommand;

use crate::auth::{hash_password, new_api_key};
use crate::config::{CONFIG_FILE, Config, Database, initial_config_text, metrics_config_text};
use crate::store::postgres::PgStore;
use crate::store::sqlite::SqliteStore;
use crate::store::{Fanout, NewApiKey, NewUser, Store, StoredNotification};

/// `tenant …`.
#[derive(Debug, Subcommand)]
pub enum TenantCommand {
    /// Add a firm.
    Add {
        /// Short unique name: lowercase letters, digits and '-'.
        slug: String,
        /// Display name, e.g. "Cabinet Dupont".
        #[arg(long)]
        name: String,
    },
}

/// `user …`.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Add a user (prints the new id on the last line).
    Add {
        /// The user's firm.
        #[arg(long)]
        tenant: String,
        /// Their email (their sign-in name).
        #[arg(long)]
        email: String,
        /// Display name.
        #[arg(long, default_value = "")]
        name: String,
        /// admin, partner, lawyer or staff.
        #[arg(long, default_value = "lawyer")]
        role: String,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users.
    List {
        /// Only this firm's.
        #[arg(long)]
        tenant: Option<String>,
    },
    /// `disable`, `enable`, `delete --erase` (cli/users.rs).
    #[command(flatten)]
    Govern(super::users::GovernCommand),
}

/// `key …`.
#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    /// Create a publisher key (printed once, alone on the last line of stdout).
    Create {
        /// The firm it publishes for.
        #[arg(long, required_unless_present = "global", conflicts_with = "global")]
        tenant: Option<String>,
        /// A key for every firm (and the `all` stream).
        #[arg(long)]
        global: bool,
        /// A label.
        #[arg(long, default_value = "")]
        name: String,
        /// May also read the firm's audit trail (`GET /v1/audit`); give it to the
        /// firm's administrator, not to a mail monitor.
        #[arg(long)]
        admin: bool,
    },
    /// Revoke a key by its id (the part after `tsk_`, before the next `_`).
    Revoke {
        /// The key id.
        key_id: String,
    },
    /// List keys (never their secrets).
    List,
}

/// Nothing is connected to an admin process: fan-out goes nowhere.
struct NoFanout;

impl Fanout for NoFanout {
    fn deliver(&self, _: &[Arc<StoredNotification>]) {}
}

/// `init`: creates the data dir and config.toml (never overwrites one); with
/// `--tls-self-signed`, a self-signed pair and `[tls]` too.
pub fn init(data_dir: &Path, args: &super::tls::InitArgs) -> anyhow::Result<()> {
    let path = data_dir.join(CONFIG_FILE);
    anyhow::ensure!(
        !path.exists(),
        "{} already exists; remove it first if you really want new secrets (every session is then signed out)",
        path.display()
    );
    std::fs::create_dir_all(data_dir)?;
    restrict(data_dir, 0o700)?;
    let tls = super::tls::self_signed_for_init(data_dir, args)?;
    let secret: [u8; 48] = rand::random();
    let secret = base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(secret);
    let metrics_token = hex::encode(rand::random::<[u8; 24]>());
    let text = initial_config_text(&secret) + &metrics_config_text(&metrics_token);
    let text = text
        + &tls
            .as_ref()
            .map(|tls| tls.config_text())
            .unwrap_or_default();
    std::fs::write(&path, text)?;
    restrict(&path, 0o600)?;
    let config = Config::load(data_dir)?;
    // Create and migrate the database now, so the first `serve` has nothing to do.
    let store = SqliteStore::open(
        &config.database_path(data_dir, "init")?,
        &config.sqlite_synchronous,
        Arc::new(NoFanout),
    )
    .map_err(|err| anyhow::anyhow!("{err}"))?;
    drop(store);
    eprintln!("initialised {}", data_dir.display());
    println!("{}", path.display());
    if let Some(tls) = &tls {
        tls.print(data_dir, config.listen);
    }
    Ok(())
}

#[cfg(unix)]
fn restrict(path: &Path, mode: u32) -> anyhow::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
    Ok(())
}

#[cfg(not(unix))]
fn restrict(_: &Path, _: u32) -> anyhow::Result<()> {
    Ok(())
}

/// Opens the store and runs an admin command on a small runtime.
pub fn run_blocking<F, Fut>(data_dir: &Path, command: F) -> anyhow::Result<()>
where
    F: FnOnce(Arc<dyn Store>) -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<()>>,
{
    let config = Config::load(data_dir)?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let database = config.database(data_dir);
        let store: Arc<dyn Store> = match &database {
            Database::Sqlite(path) => Arc::new(
                SqliteStore::open(path, &config.sqlite_synchronous, Arc::new(NoFanout))
                    .map_err(|err| anyhow::anyhow!("{err}"))?,
            ),
            // The nodes' hubs do not hear of what an admin command stores; nothing it
            // does is pushed to devices (firms, users, keys).
            Database::Postgres {
                url,
                max_connections,
            } => Arc::new(
                PgStore::connect(url, (*max_connections).min(4), Arc::new(NoFanout))
                    .await
                    .map_err(|err| anyhow::anyhow!("cannot open {}: {err}", database.describe()))?,
            ),
        };
        command(store).await
    })
}

fn valid_slug(slug: &str) -> bool {
    !slug.is_empty()
        && slug.len() <= 64
        && slug
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
}

/// `tenant add`.
pub async fn tenant(store: Arc<dyn Store>, command: TenantCommand) -> anyhow::Result<()> {
    match command {
        TenantCommand::Add { slug, name } => {
            anyhow::ensure!(
                valid_slug(&slug),
                "a slug is 1-64 lowercase letters, digits and '-', e.g. cabinet-dupont"
            );
            anyhow::ensure!(!name.trim().is_empty(), "--name must not be empty");
            store.create_tenant(&slug, name.trim()).await?;
            println!("{slug}");
        }
    }
    Ok(())
}

/// `user add|list|disable|enable|delete`.
pub async fn user(store: Arc<dyn Store>, command: UserCommand) -> anyhow::Result<()> {
    match command {
        UserCommand::Govern(command) => super::users::govern(store, command).await?,
        UserCommand::Add {
            tenant,
            email,
            name,
            role,
            password_stdin,
        } => {
            let email = email.trim().to_owned();
            anyhow::ensure!(
                email.contains('@') && !email.contains(char::is_whitespace) && email.len() <= 254,
                "'{email}' is not an email address"
            );
            anyhow::ensure!(
                matches!(role.as_str(), "admin" | "partner" | "lawyer" | "staff"),
                "--role must be admin, partner, lawyer or staff (partners receive the escalations of deadlines nobody acknowledged)"
            );
            let password = read_password(password_stdin)?;
            anyhow::ensure!(
                password.chars().count() >= 8,
                "the password must have at least 8 characters"
            );
            let hash = hash_password(&password).map_err(|err| anyhow::anyhow!("{err}"))?;
            let user = store
                .create_user(NewUser {
                    id: uuid::Uuid::now_v7().to_string(),
                    tenant,
                    email,
                    name,
                    role,
                    password_hash: Some(hash),
                    external: false,
                })
                .await?;
            eprintln!("added {} ({}) to {}", user.email, user.role, user.tenant);
            println!("{}", user.id);
        }
        UserCommand::List { tenant } => {
            let mut out = std::io::stdout().lock();
            for user in store.list_users(tenant.as_deref()).await? {
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    user.id, user.tenant, user.email, user.role, user.name
                )?;
            }
        }
    }
    Ok(())
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    let first = rpassword::prompt_password("Password: ")?;
    let second = rpassword::prompt_password("Again: ")?;
    anyhow::ensure!(first == second, "the two passwords differ");
    Ok(first)
}

/// `key create|revoke|list`.
pub async fn key(store: Arc<dyn Store>, command: KeyCommand) -> anyhow::Result<()> {
    match command {
        KeyCommand::Create {
            tenant,
            global,
            name,
            admin,
        } => {
            let tenant = if global { None } else { tenant };
            let key = new_api_key();
            store
                .create_api_key(NewApiKey {
                    key_id: key.key_id.clone(),
                    secret_hash: key.secret_hash.clone(),
                    tenant: tenant.clone(),
                    name,
                    admin,
                })
                .await?;
            let scope = tenant.map_or_else(
                || "every firm (global)".to_owned(),
                |t| format!("firm '{t}'"),
            );
            eprintln!(
                "created key {} for {scope}; it is shown only now, store it safely:",
                key.key_id
            );
            println!("{}", key.full_key);
        }
        KeyCommand::Revoke { key_id } => {
            anyhow::ensure!(
                store.revoke_api_key(&key_id).await?,
                "no key with id '{key_id}' (see `key list`)"
            );
            eprintln!("revoked {key_id}");
        }
        KeyCommand::List => {
            let mut out = std::io::stdout().lock();
            for key in store.list_api_keys().await? {
                let tenant = key.tenant.as_deref().unwrap_or("(global)");
                let state = match (key.revoked, key.admin) {
                    (true, _) => "revoked",
                    (false, true) => "active,admin",
                    (false, false) => "active",
                };
                writeln!(
                    out,
                    "{}\t{}\t{}\t{}\t{}",
                    key.key_id,
                    tenant,
                    state,
                    key.created_at.to_rfc3339(),
                    key.name
                )?;
            }
        }
    }
    Ok(())
}
