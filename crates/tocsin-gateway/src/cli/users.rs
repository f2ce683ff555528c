//! `user disable|enable|delete --erase`: governing users from the shell.
//!
//! Why these refuse while a gateway serves the data dir (`user enable` excepted): the
//! CLI works on the database file, so it could revoke the user's sessions and mark
//! them disabled, but not close the sockets they have open on the running gateway —
//! a disabled user would keep receiving notifications until their access token
//! expired. Only the gateway can close its own sockets, so while it serves, the admin
//! API (`POST /v1/users/{user}/disable`, `DELETE /v1/users/{user}?erase=true`) is the
//! one way, and the refusal says how. (`user enable` closes nothing, so it works on a
//! served dir too.) Stopped, the CLI does the same through the same store methods.

use std::path::Path;
use std::sync::Arc;

use clap::Subcommand;

use crate::config::Config;
use crate::store::sqlite::serve_lock::{self, Holder};
use crate::store::{Store, User};

/// `user disable|enable|delete`, flattened into `user …`.
#[derive(Debug, Subcommand)]
pub enum GovernCommand {
    /// Disable a user who must stop receiving notifications: every device signed out,
    /// sign-in refused; their data stays. Run it with the gateway stopped (while it
    /// serves, use POST /v1/users/{email}/disable, which also closes their sockets).
    Disable {
        /// Their email.
        email: String,
    },
    /// Enable a disabled user again (they sign in anew).
    Enable {
        /// Their email.
        email: String,
    },
    /// Erase a user who left the firm (GDPR): account, sessions, read state and
    /// personal stream are deleted; the audit trail and acknowledgements keep an
    /// anonymised id. There is no deletion that keeps the data: use `disable` for that.
    Delete {
        /// Their email.
        email: String,
        /// Confirms that their personal data is erased for good.
        #[arg(long)]
        erase: bool,
    },
}

/// Refuses, before the database is opened, what this command may not do: a delete
/// without `--erase`, or a change the running gateway must make itself (a gateway
/// serving the database holds `tocsin.db.lock`: store/sqlite/serve_lock.rs).
pub fn preflight(data_dir: &Path, command: &GovernCommand) -> anyhow::Result<()> {
    let (email, method, path) = match command {
        GovernCommand::Enable { .. } => return Ok(()),
        GovernCommand::Delete { erase: false, .. } => anyhow::bail!(
            "deleting a user erases their personal data for good (account, device sessions, read state, personal stream; the audit trail keeps an anonymised id): add --erase to do that, or use `user disable` to keep their data"
        ),
        GovernCommand::Disable { email } => (email, "POST", format!("/v1/users/{email}/disable")),
        GovernCommand::Delete { email, .. } => {
            (email, "DELETE", format!("/v1/users/{email}?erase=true"))
        }
    };
    let config = Config::load(data_dir)?;
    if let crate::config::Database::Postgres { .. } = config.database(data_dir) {
        // Nodes hold the users' connections and nothing here can see whether any
        // serves: the admin API closes them on every node at once.
        anyhow::bail!(
            "this gateway uses PostgreSQL, and only the serving nodes can close {email}'s open connections at once. \
             Ask them through the admin API with an admin key (tocsin-gateway key create --tenant <firm> --admin): \
             curl -X {method} -H 'Authorization: Bearer <admin key>' '<gateway URL>{path}'"
        );
    }
    let database = config.database_path(data_dir, "user")?;
    match serve_lock::holder(&database)? {
        Holder::Nobody => Ok(()),
        Holder::Serving(pid) => {
            let pid = pid.map(|pid| format!(" (pid {pid})")).unwrap_or_default();
            anyhow::bail!(
                "a gateway{pid} is serving {} right now, and only it can close {email}'s open connections at once. \
                 Ask it through its admin API with an admin key (tocsin-gateway key create --tenant <firm> --admin): \
                 curl -X {method} -H 'Authorization: Bearer <admin key>' '<gateway URL>{path}' — or stop the gateway and run this again",
                data_dir.display()
            )
        }
        Holder::Restoring => anyhow::bail!(
            "a restore of {} is in progress; run this again once it is done",
            database.display()
        ),
    }
}

/// Runs a governing command on the (stopped gateway's) store.
pub async fn govern(store: Arc<dyn Store>, command: GovernCommand) -> anyhow::Result<()> {
    match command {
        GovernCommand::Disable { email } => {
            let user = find(store.as_ref(), &email).await?;
            let revoked = store.set_user_disabled(&user.id, true).await?;
            eprintln!(
                "disabled {} of firm {}: {revoked} device session(s) signed out; sign-in is refused until `user enable {}`",
                user.email, user.tenant, user.email
            );
            println!("{}", user.id);
        }
        GovernCommand::Enable { email } => {
            let user = find(store.as_ref(), &email).await?;
            store.set_user_disabled(&user.id, false).await?;
            eprintln!(
                "enabled {} of firm {}: they can sign in again",
                user.email, user.tenant
            );
            println!("{}", user.id);
        }
        GovernCommand::Delete { email, erase } => {
            anyhow::ensure!(erase, "add --erase (see `user delete --help`)");
            let user = find(store.as_ref(), &email).await?;
            let anonymised = store.erase_user(&user.id).await?;
            eprintln!(
                "erased {} of firm {}: account, sessions, read state and personal stream deleted; the audit trail names them {anonymised}",
                user.email, user.tenant
            );
            println!("{anonymised}");
        }
    }
    Ok(())
}

/// The user with this email (in its one spelling), or an error saying where to look.
async fn find(store: &dyn Store, email: &str) -> anyhow::Result<User> {
    store
        .user_by_email(&crate::email::normalize(email.trim()))
        .await?
        .ok_or_else(|| {
            anyhow::anyhow!("no user with email '{email}'; see `tocsin-gateway user list`")
        })
}
