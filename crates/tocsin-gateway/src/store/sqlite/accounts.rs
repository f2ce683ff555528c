//! Firms, users, API keys, device sessions and conversation membership.
//!
//! Reads run on pooled connections. Changes run on the writer thread, each inside its
//! own savepoint of the writer's transaction (so a change of several statements, like
//! rotating a refresh token or replacing a conversation's members, is atomic without a
//! transaction of its own), and are answered only once that transaction committed.

use chrono::{DateTime, Utc};
use rusqlite::{Connection, OptionalExtension, Row, params};

use super::time::{from_us, to_us};
use crate::store::{
    ApiKey, Conversation, NewApiKey, NewSession, NewUser, RotateOutcome, StoreError, Tenant, User,
};

fn is_unique_violation(err: &rusqlite::Error) -> bool {
    matches!(err, rusqlite::Error::SqliteFailure(code, _)
        if code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_PRIMARYKEY
        || code.extended_code == rusqlite::ffi::SQLITE_CONSTRAINT_UNIQUE)
}

/// Adds a firm.
pub fn create_tenant(conn: &Connection, slug: &str, name: &str) -> Result<Tenant, StoreError> {
    conn.execute(
        "INSERT INTO tenants (slug, name, created_us) VALUES (?1, ?2, ?3)",
        params![slug, name, to_us(Utc::now())],
    )
    .map_err(|err| {
        if is_unique_violation(&err) {
            StoreError::Conflict(format!("a firm with slug '{slug}' already exists"))
        } else {
            err.into()
        }
    })?;
    Ok(Tenant {
        slug: slug.to_owned(),
        name: name.to_owned(),
    })
}

/// A firm by slug.
pub fn tenant(conn: &Connection, slug: &str) -> Result<Option<Tenant>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT slug, name FROM tenants WHERE slug = ?1")?
        .query_row(params![slug], |row| {
            Ok(Tenant {
                slug: row.get(0)?,
                name: row.get(1)?,
            })
        })
        .optional()?)
}

/// Adds a user to an existing firm.
pub fn create_user(conn: &Connection, user: NewUser) -> Result<User, StoreError> {
    if tenant(conn, &user.tenant)?.is_none() {
        return Err(StoreError::NotFound(format!(
            "no firm '{}': add it first with `tocsin-gateway tenant add {}`",
            user.tenant, user.tenant
        )));
    }
    let normalized = crate::email::normalize(&user.email);
    let email = (!normalized.is_empty()).then_some(normalized.as_str());
    conn.execute(
        "INSERT INTO users (id, tenant, email, name, role, password_hash, external, created_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        params![
            user.id,
            user.tenant,
            email,
            user.name,
            user.role,
            user.password_hash,
            user.external,
            to_us(Utc::now())
        ],
    )
    .map_err(|err| {
        if is_unique_violation(&err) {
            StoreError::Conflict(format!(
                "a user with this id or email ({}) already exists",
                user.email
            ))
        } else {
            err.into()
        }
    })?;
    Ok(User {
        id: user.id,
        tenant: user.tenant,
        email: normalized,
        name: user.name,
        role: user.role,
        password_hash: user.password_hash,
        disabled: false,
    })
}

const USER_COLUMNS: &str = "id, tenant, COALESCE(email, ''), name, role, password_hash, disabled";

fn user_from_row(row: &Row<'_>) -> rusqlite::Result<User> {
    Ok(User {
        id: row.get(0)?,
        tenant: row.get(1)?,
        email: row.get(2)?,
        name: row.get(3)?,
        role: row.get(4)?,
        password_hash: row.get(5)?,
        disabled: row.get(6)?,
    })
}

/// One user matching a `WHERE` clause with one parameter.
pub fn user_where(
    conn: &Connection,
    clause: &str,
    value: &str,
) -> Result<Option<User>, StoreError> {
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {clause}");
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(params![value], user_from_row)
        .optional()?)
}

/// A user of `tenant` whose id, else whose email, is `who`.
pub fn firm_user(conn: &Connection, tenant: &str, who: &str) -> Result<Option<User>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE tenant = ?1 AND (id = ?2 OR email = ?3)
         ORDER BY id = ?2 DESC LIMIT 1"
    );
    Ok(conn
        .prepare_cached(&sql)?
        .query_row(
            params![tenant, who, crate::email::normalize(who)],
            user_from_row,
        )
        .optional()?)
}

/// Users, optionally of one firm, by email.
pub fn list_users(conn: &Connection, tenant: Option<&str>) -> Result<Vec<User>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE ?1 IS NULL OR tenant = ?1 ORDER BY tenant, email"
    );
    let mut statement = conn.prepare_cached(&sql)?;
    let rows = statement.query_map(params![tenant], user_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Stores an API key's hash.
pub fn create_api_key(conn: &Connection, key: NewApiKey) -> Result<(), StoreError> {
    if let Some(slug) = &key.tenant
        && tenant(conn, slug)?.is_none()
    {
        return Err(StoreError::NotFound(format!("no firm '{slug}'")));
    }
    conn.execute(
        "INSERT INTO api_keys (key_id, secret_hash, tenant, name, created_us, admin) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![key.key_id, key.secret_hash, key.tenant, key.name, to_us(Utc::now()), key.admin],
    )?;
    Ok(())
}

fn api_key_from_row(row: &Row<'_>) -> rusqlite::Result<ApiKey> {
    Ok(ApiKey {
        key_id: row.get(0)?,
        secret_hash: row.get(1)?,
        tenant: row.get(2)?,
        name: row.get(3)?,
        revoked: row.get(4)?,
        created_at: from_us(row.get(5)?),
        admin: row.get(6)?,
    })
}

/// An API key by id.
pub fn api_key(conn: &Connection, key_id: &str) -> Result<Option<ApiKey>, StoreError> {
    Ok(conn
        .prepare_cached("SELECT key_id, secret_hash, tenant, name, revoked, created_us, admin FROM api_keys WHERE key_id = ?1")?
        .query_row(params![key_id], api_key_from_row)
        .optional()?)
}

/// Every API key.
pub fn list_api_keys(conn: &Connection) -> Result<Vec<ApiKey>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT key_id, secret_hash, tenant, name, revoked, created_us, admin FROM api_keys ORDER BY created_us",
    )?;
    let rows = statement.query_map([], api_key_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// Revokes a key.
pub fn revoke_api_key(conn: &Connection, key_id: &str) -> Result<bool, StoreError> {
    Ok(conn.execute(
        "UPDATE api_keys SET revoked = 1 WHERE key_id = ?1",
        params![key_id],
    )? > 0)
}

/// Opens a device session.
pub fn create_session(conn: &Connection, session: NewSession) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO sessions (id, user_id, device_name, refresh_hash, expires_us, created_us)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        params![
            session.id,
            session.user_id,
            session.device_name,
            session.refresh_hash,
            to_us(session.expires_at),
            to_us(Utc::now())
        ],
    )?;
    Ok(())
}

/// Rotates a session's refresh token: `old_hash` becomes the previous one, `new_hash`
/// the current one. The previous token presented again within `grace_us` of that
/// rotation, the first time, is answered as a rotation to the same successor (the
/// caller derives it from the token, so it is the same): a refresh whose answer was lost
/// costs nothing, and two concurrent refreshes of one device both get it. Any other use
/// of a rotated token — later, or a second time — is a replay: the session is revoked.
pub fn rotate_session(
    conn: &Connection,
    old_hash: &str,
    new_hash: &str,
    expires_at: DateTime<Utc>,
    grace_us: i64,
) -> Result<RotateOutcome, StoreError> {
    let now = to_us(Utc::now());
    let current: Option<(String, String, i64, bool)> = conn
        .query_row(
            "SELECT id, user_id, expires_us, revoked FROM sessions WHERE refresh_hash = ?1",
            params![old_hash],
            |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?, row.get(3)?)),
        )
        .optional()?;
    match current {
        Some((id, user_id, expires_us, false)) if expires_us > now => {
            conn.execute(
                "UPDATE sessions SET previous_hash = refresh_hash, refresh_hash = ?2, expires_us = ?3,
                     rotated_us = ?4, grace_used = 0
                 WHERE id = ?1",
                params![id, new_hash, to_us(expires_at), now],
            )?;
            Ok(RotateOutcome::Rotated {
                session_id: id,
                user_id,
            })
        }
        Some(_) => Ok(RotateOutcome::Invalid),
        None => rotated_away(conn, old_hash, now, grace_us),
    }
}

/// `old_hash` is no session's current token: the grace window's one retry, a replay
/// (revoke), or unknown.
fn rotated_away(
    conn: &Connection,
    old_hash: &str,
    now: i64,
    grace_us: i64,
) -> Result<RotateOutcome, StoreError> {
    let retried: Option<(String, String)> = conn
        .query_row(
            "UPDATE sessions SET grace_used = 1
             WHERE previous_hash = ?1 AND revoked = 0 AND grace_used = 0
                 AND rotated_us >= ?2 AND expires_us > ?3
             RETURNING id, user_id",
            params![old_hash, now.saturating_sub(grace_us), now],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )
        .optional()?;
    if let Some((session_id, user_id)) = retried {
        return Ok(RotateOutcome::Rotated {
            session_id,
            user_id,
        });
    }
    let reused: Option<String> = conn
        .query_row(
            "UPDATE sessions SET revoked = 1 WHERE previous_hash = ?1 RETURNING id",
            params![old_hash],
            |row| row.get(0),
        )
        .optional()?;
    Ok(match reused {
        Some(session_id) => RotateOutcome::Reused { session_id },
        None => RotateOutcome::Invalid,
    })
}

/// Whether a session is signed in.
pub fn session_active(conn: &Connection, session_id: &str) -> Result<bool, StoreError> {
    Ok(conn
        .prepare_cached("SELECT revoked = 0 AND expires_us > ?2 FROM sessions WHERE id = ?1")?
        .query_row(params![session_id, to_us(Utc::now())], |row| row.get(0))
        .optional()?
        .unwrap_or(false))
}

/// Revokes a session by its current refresh token; returns its id.
pub fn revoke_session(conn: &Connection, refresh_hash: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .query_row(
            "UPDATE sessions SET revoked = 1 WHERE refresh_hash = ?1 RETURNING id",
            params![refresh_hash],
            |row| row.get(0),
        )
        .optional()?)
}

/// Replaces a conversation's members (creating it in `tenant` on first use).
pub fn set_members(
    conn: &Connection,
    conversation_id: &str,
    tenant: &str,
    members: &[String],
) -> Result<Vec<String>, StoreError> {
    let owner: Option<String> = conn
        .query_row(
            "SELECT tenant FROM conversations WHERE id = ?1",
            params![conversation_id],
            |row| row.get(0),
        )
        .optional()?;
    match owner {
        Some(owner) if owner != tenant => {
            return Err(StoreError::Forbidden(format!(
                "conversation '{conversation_id}' belongs to another firm; choose another id"
            )));
        }
        Some(_) => {}
        None => {
            let known: bool = conn.query_row(
                "SELECT EXISTS (SELECT 1 FROM tenants WHERE slug = ?1)",
                params![tenant],
                |row| row.get(0),
            )?;
            if !known {
                return Err(StoreError::NotFound(format!("no firm '{tenant}'")));
            }
            conn.execute(
                "INSERT INTO conversations (id, tenant, created_us) VALUES (?1, ?2, ?3)",
                params![conversation_id, tenant, to_us(Utc::now())],
            )?;
        }
    }
    let mut ids = Vec::with_capacity(members.len());
    for member in members {
        // Looked up inside the conversation's firm only, like a publish target.
        match firm_user(conn, tenant, member)? {
            Some(user) => ids.push(user.id),
            None => {
                return Err(StoreError::NotFound(format!(
                    "no user '{member}' in firm '{tenant}'; members must be users of the conversation's firm"
                )));
            }
        }
    }
    ids.sort();
    ids.dedup();
    conn.execute(
        "DELETE FROM conversation_members WHERE conversation_id = ?1",
        params![conversation_id],
    )?;
    for id in &ids {
        conn.execute(
            "INSERT INTO conversation_members (conversation_id, user_id) VALUES (?1, ?2)",
            params![conversation_id, id],
        )?;
    }
    Ok(ids)
}

/// A conversation with its members.
pub fn conversation(
    conn: &Connection,
    conversation_id: &str,
) -> Result<Option<Conversation>, StoreError> {
    let tenant: Option<String> = conn
        .prepare_cached("SELECT tenant FROM conversations WHERE id = ?1")?
        .query_row(params![conversation_id], |row| row.get(0))
        .optional()?;
    let Some(tenant) = tenant else {
        return Ok(None);
    };
    let mut statement = conn.prepare_cached(
        "SELECT user_id FROM conversation_members WHERE conversation_id = ?1 ORDER BY user_id",
    )?;
    let members = statement
        .query_map(params![conversation_id], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(Some(Conversation {
        id: conversation_id.to_owned(),
        tenant,
        members,
    }))
}

/// Conversations a user belongs to.
pub fn user_conversations(conn: &Connection, user_id: &str) -> Result<Vec<String>, StoreError> {
    let mut statement = conn.prepare_cached(
        "SELECT conversation_id FROM conversation_members WHERE user_id = ?1 ORDER BY conversation_id",
    )?;
    let ids = statement
        .query_map(params![user_id], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    Ok(ids)
}
