//! Firms, users, API keys, device sessions and conversation membership on PostgreSQL.
//!
//! Reads run on pooled connections. A change of several statements (rotating a refresh
//! token, replacing a conversation's members) runs in a transaction of its own — a
//! savepoint when the caller already holds one — so it is atomic however it is called.
//!
//! Unlike SQLite's single writer, several nodes change these tables at once: wherever a
//! change reads a row and decides a write from it, that row is locked first (`FOR
//! UPDATE`) or the write re-checks its condition (`UPDATE … WHERE …`, which PostgreSQL
//! re-evaluates on the newest row version after waiting for a concurrent writer).

use chrono::{DateTime, Utc};
use sqlx::{Connection, PgConnection};

use super::error::is_unique_violation;
use crate::store::time::{from_us, to_us};
use crate::store::{
    ApiKey, Conversation, NewApiKey, NewSession, NewUser, RotateOutcome, StoreError, Tenant, User,
};

/// Adds a firm.
pub async fn create_tenant(
    conn: &mut PgConnection,
    slug: &str,
    name: &str,
) -> Result<Tenant, StoreError> {
    // A savepoint: a duplicate is an expected answer, and must not leave the caller's
    // transaction aborted. A concurrent insert of the same slug waits for the first
    // to commit and then fails as a duplicate, answered as on SQLite.
    let mut tx = conn.begin().await?;
    sqlx::query("INSERT INTO tenants (slug, name, created_us) VALUES ($1, $2, $3)")
        .bind(slug)
        .bind(name)
        .bind(to_us(Utc::now()))
        .execute(&mut *tx)
        .await
        .map_err(|err| {
            if is_unique_violation(&err) {
                StoreError::Conflict(format!("a firm with slug '{slug}' already exists"))
            } else {
                err.into()
            }
        })?;
    tx.commit().await?;
    Ok(Tenant {
        slug: slug.to_owned(),
        name: name.to_owned(),
    })
}

/// A firm by slug.
pub async fn tenant(conn: &mut PgConnection, slug: &str) -> Result<Option<Tenant>, StoreError> {
    let row: Option<(String, String)> =
        sqlx::query_as("SELECT slug, name FROM tenants WHERE slug = $1")
            .bind(slug)
            .fetch_optional(&mut *conn)
            .await?;
    Ok(row.map(|(slug, name)| Tenant { slug, name }))
}

/// Adds a user to an existing firm.
pub async fn create_user(conn: &mut PgConnection, user: NewUser) -> Result<User, StoreError> {
    if tenant(conn, &user.tenant).await?.is_none() {
        return Err(StoreError::NotFound(format!(
            "no firm '{}': add it first with `tocsin-gateway tenant add {}`",
            user.tenant, user.tenant
        )));
    }
    let normalized = crate::email::normalize(&user.email);
    let email = (!normalized.is_empty()).then_some(normalized.as_str());
    // The id's primary key and the unique index on lower(email) refuse duplicates,
    // also between concurrent transactions (the second waits for the first's commit).
    // In a savepoint, so the refusal leaves the caller's transaction usable.
    let mut tx = conn.begin().await?;
    sqlx::query(
        "INSERT INTO users (id, tenant, email, name, role, password_hash, external, created_us)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&user.id)
    .bind(&user.tenant)
    .bind(email)
    .bind(&user.name)
    .bind(&user.role)
    .bind(&user.password_hash)
    .bind(user.external)
    .bind(to_us(Utc::now()))
    .execute(&mut *tx)
    .await
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
    tx.commit().await?;
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

/// A row of [`USER_COLUMNS`].
type UserRow = (String, String, String, String, String, Option<String>, bool);

fn user_from_row((id, tenant, email, name, role, password_hash, disabled): UserRow) -> User {
    User {
        id,
        tenant,
        email,
        name,
        role,
        password_hash,
        disabled,
    }
}

/// One user matching a `WHERE` clause with one parameter, `$1` (SQLite's `?1` is
/// accepted too, so both stores are called with the same clauses). The clause may end
/// with a locking clause (`id = $1 FOR UPDATE`).
pub async fn user_where(
    conn: &mut PgConnection,
    clause: &str,
    value: &str,
) -> Result<Option<User>, StoreError> {
    let clause = match clause {
        // SQLite's email column is COLLATE NOCASE; here the comparison is on lower(),
        // which is also what the unique index users_email is on (an index lookup, not a
        // scan of every user at each sign-in).
        "email = ?1" | "email = $1" => "lower(email) = lower($1)".to_owned(),
        other => other.replace("?1", "$1"),
    };
    let sql = format!("SELECT {USER_COLUMNS} FROM users WHERE {clause}");
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(user_from_row))
}

/// A user of `tenant` whose id, else whose email, is `who`.
pub async fn firm_user(
    conn: &mut PgConnection,
    tenant: &str,
    who: &str,
) -> Result<Option<User>, StoreError> {
    firm_user_locking(conn, tenant, who, "").await
}

/// [`firm_user`], with a locking clause appended (`""` for none).
async fn firm_user_locking(
    conn: &mut PgConnection,
    tenant: &str,
    who: &str,
    locking: &'static str,
) -> Result<Option<User>, StoreError> {
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE tenant = $1 AND (id = $2 OR lower(email) = lower($3))
         ORDER BY id = $2 DESC LIMIT 1 {locking}"
    );
    let row: Option<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .bind(who)
        .bind(crate::email::normalize(who))
        .fetch_optional(&mut *conn)
        .await?;
    Ok(row.map(user_from_row))
}

/// Users, optionally of one firm, by email.
pub async fn list_users(
    conn: &mut PgConnection,
    tenant: Option<&str>,
) -> Result<Vec<User>, StoreError> {
    // COLLATE "C" and NULLS FIRST: SQLite's order (byte order, NULL smallest), not the
    // database locale's. Stored emails are already case-folded, so NOCASE adds nothing.
    let sql = format!(
        "SELECT {USER_COLUMNS} FROM users WHERE $1::TEXT IS NULL OR tenant = $1
         ORDER BY tenant COLLATE \"C\", email COLLATE \"C\" NULLS FIRST"
    );
    let rows: Vec<UserRow> = sqlx::query_as(sqlx::AssertSqlSafe(sql))
        .bind(tenant)
        .fetch_all(&mut *conn)
        .await?;
    Ok(rows.into_iter().map(user_from_row).collect())
}

/// Stores an API key's hash.
pub async fn create_api_key(conn: &mut PgConnection, key: NewApiKey) -> Result<(), StoreError> {
    if let Some(slug) = &key.tenant
        && tenant(conn, slug).await?.is_none()
    {
        return Err(StoreError::NotFound(format!("no firm '{slug}'")));
    }
    sqlx::query(
        "INSERT INTO api_keys (key_id, secret_hash, tenant, name, created_us, admin)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&key.key_id)
    .bind(&key.secret_hash)
    .bind(&key.tenant)
    .bind(&key.name)
    .bind(to_us(Utc::now()))
    .bind(key.admin)
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// A row of `api_keys`, in [`api_key_from_row`]'s order.
type ApiKeyRow = (String, String, Option<String>, String, bool, i64, bool);

fn api_key_from_row(
    (key_id, secret_hash, tenant, name, revoked, created_us, admin): ApiKeyRow,
) -> ApiKey {
    ApiKey {
        key_id,
        secret_hash,
        tenant,
        name,
        revoked,
        created_at: from_us(created_us),
        admin,
    }
}

/// An API key by id.
pub async fn api_key(conn: &mut PgConnection, key_id: &str) -> Result<Option<ApiKey>, StoreError> {
    let row: Option<ApiKeyRow> = sqlx::query_as(
        "SELECT key_id, secret_hash, tenant, name, revoked, created_us, admin FROM api_keys
         WHERE key_id = $1",
    )
    .bind(key_id)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(row.map(api_key_from_row))
}

/// Every API key.
pub async fn list_api_keys(conn: &mut PgConnection) -> Result<Vec<ApiKey>, StoreError> {
    let rows: Vec<ApiKeyRow> = sqlx::query_as(
        "SELECT key_id, secret_hash, tenant, name, revoked, created_us, admin FROM api_keys
         ORDER BY created_us",
    )
    .fetch_all(&mut *conn)
    .await?;
    Ok(rows.into_iter().map(api_key_from_row).collect())
}

/// Revokes a key.
pub async fn revoke_api_key(conn: &mut PgConnection, key_id: &str) -> Result<bool, StoreError> {
    Ok(
        sqlx::query("UPDATE api_keys SET revoked = TRUE WHERE key_id = $1")
            .bind(key_id)
            .execute(&mut *conn)
            .await?
            .rows_affected()
            > 0,
    )
}

/// Opens a device session.
///
/// Its foreign key check takes a `FOR KEY SHARE` lock on the user's row until commit;
/// disabling and erasing lock that row `FOR UPDATE` first (`governance.rs`), so either
/// they wait for this session and then revoke or delete it, or this insert waits for
/// them (and, after an erasure, fails on the missing user, as on SQLite).
pub async fn create_session(
    conn: &mut PgConnection,
    session: NewSession,
) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO sessions (id, user_id, device_name, refresh_hash, expires_us, created_us)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&session.id)
    .bind(&session.user_id)
    .bind(&session.device_name)
    .bind(&session.refresh_hash)
    .bind(to_us(session.expires_at))
    .bind(to_us(Utc::now()))
    .execute(&mut *conn)
    .await?;
    Ok(())
}

/// Rotates a session's refresh token: `old_hash` becomes the previous one, `new_hash`
/// the current one. The previous token presented again within `grace_us` of that
/// rotation, the first time, is answered as a rotation to the same successor (the
/// caller derives it from the token, so it is the same): a refresh whose answer was lost
/// costs nothing, and two concurrent refreshes of one device both get it. Any other use
/// of a rotated token — later, or a second time — is a replay: the session is revoked.
pub async fn rotate_session(
    conn: &mut PgConnection,
    old_hash: &str,
    new_hash: &str,
    expires_at: DateTime<Utc>,
    grace_us: i64,
) -> Result<RotateOutcome, StoreError> {
    let now = to_us(Utc::now());
    let mut tx = conn.begin().await?;
    // FOR UPDATE: two nodes presenting the same token at once must not both rotate (the
    // second would make the new token its own "previous" and lose the old one). The
    // second waits here for the first's commit; PostgreSQL then re-checks the WHERE on
    // the rotated row, finds the token no longer current, and it goes on as a retry or
    // a replay below, exactly as the later of two presentations on SQLite.
    let current: Option<(String, String, i64, bool)> = sqlx::query_as(
        "SELECT id, user_id, expires_us, revoked FROM sessions WHERE refresh_hash = $1
         FOR UPDATE",
    )
    .bind(old_hash)
    .fetch_optional(&mut *tx)
    .await?;
    let outcome = match current {
        Some((id, user_id, expires_us, false)) if expires_us > now => {
            sqlx::query(
                "UPDATE sessions SET previous_hash = refresh_hash, refresh_hash = $2, expires_us = $3,
                     rotated_us = $4, grace_used = FALSE
                 WHERE id = $1",
            )
            .bind(&id)
            .bind(new_hash)
            .bind(to_us(expires_at))
            .bind(now)
            .execute(&mut *tx)
            .await?;
            RotateOutcome::Rotated {
                session_id: id,
                user_id,
            }
        }
        Some(_) => RotateOutcome::Invalid,
        None => rotated_away(&mut tx, old_hash, now, grace_us).await?,
    };
    tx.commit().await?;
    Ok(outcome)
}

/// `old_hash` is no session's current token: the grace window's one retry, a replay
/// (revoke), or unknown. Both updates are conditional, so of two concurrent retries
/// only one takes the grace (the other, after waiting for the row, no longer matches
/// `grace_used = FALSE` and is a replay).
async fn rotated_away(
    conn: &mut PgConnection,
    old_hash: &str,
    now: i64,
    grace_us: i64,
) -> Result<RotateOutcome, StoreError> {
    let retried: Option<(String, String)> = sqlx::query_as(
        "UPDATE sessions SET grace_used = TRUE
         WHERE previous_hash = $1 AND NOT revoked AND NOT grace_used
             AND rotated_us >= $2 AND expires_us > $3
         RETURNING id, user_id",
    )
    .bind(old_hash)
    .bind(now.saturating_sub(grace_us))
    .bind(now)
    .fetch_optional(&mut *conn)
    .await?;
    if let Some((session_id, user_id)) = retried {
        return Ok(RotateOutcome::Rotated {
            session_id,
            user_id,
        });
    }
    let reused: Option<String> = sqlx::query_scalar(
        "UPDATE sessions SET revoked = TRUE WHERE previous_hash = $1 RETURNING id",
    )
    .bind(old_hash)
    .fetch_optional(&mut *conn)
    .await?;
    Ok(match reused {
        Some(session_id) => RotateOutcome::Reused { session_id },
        None => RotateOutcome::Invalid,
    })
}

/// Whether a session is signed in.
pub async fn session_active(conn: &mut PgConnection, session_id: &str) -> Result<bool, StoreError> {
    let active: Option<bool> =
        sqlx::query_scalar("SELECT NOT revoked AND expires_us > $2 FROM sessions WHERE id = $1")
            .bind(session_id)
            .bind(to_us(Utc::now()))
            .fetch_optional(&mut *conn)
            .await?;
    Ok(active.unwrap_or(false))
}

/// Revokes a session by its current refresh token; returns its id.
pub async fn revoke_session(
    conn: &mut PgConnection,
    refresh_hash: &str,
) -> Result<Option<String>, StoreError> {
    // One conditional statement: a concurrent rotation makes it wait, then find the
    // token no longer current (None), as if it came after the rotation.
    Ok(sqlx::query_scalar(
        "UPDATE sessions SET revoked = TRUE WHERE refresh_hash = $1 RETURNING id",
    )
    .bind(refresh_hash)
    .fetch_optional(&mut *conn)
    .await?)
}

/// Replaces a conversation's members (creating it in `tenant` on first use).
pub async fn set_members(
    conn: &mut PgConnection,
    conversation_id: &str,
    tenant: &str,
    members: &[String],
) -> Result<Vec<String>, StoreError> {
    let mut tx = conn.begin().await?;
    // The conversation's row, locked until commit, serialises replacements of its
    // members across nodes: without it two concurrent replacements would each delete
    // the members they see and insert theirs, ending with the union of both lists or
    // a duplicate-key failure.
    let select = "SELECT tenant FROM conversations WHERE id = $1 FOR UPDATE";
    let mut owner: Option<String> = sqlx::query_scalar(select)
        .bind(conversation_id)
        .fetch_optional(&mut *tx)
        .await?;
    if owner.is_none() {
        let known: bool =
            sqlx::query_scalar("SELECT EXISTS (SELECT 1 FROM tenants WHERE slug = $1)")
                .bind(tenant)
                .fetch_one(&mut *tx)
                .await?;
        if !known {
            return Err(StoreError::NotFound(format!("no firm '{tenant}'")));
        }
        // ON CONFLICT DO NOTHING: another node may create it at the same time (this
        // insert then waits for its commit); whoever created it, its row is locked and
        // its firm checked below.
        sqlx::query(
            "INSERT INTO conversations (id, tenant, created_us) VALUES ($1, $2, $3)
             ON CONFLICT (id) DO NOTHING",
        )
        .bind(conversation_id)
        .bind(tenant)
        .bind(to_us(Utc::now()))
        .execute(&mut *tx)
        .await?;
        owner = sqlx::query_scalar(select)
            .bind(conversation_id)
            .fetch_optional(&mut *tx)
            .await?;
    }
    match owner {
        Some(owner) if owner != tenant => {
            return Err(StoreError::Forbidden(format!(
                "conversation '{conversation_id}' belongs to another firm; choose another id"
            )));
        }
        Some(_) => {}
        None => {
            return Err(StoreError::Internal(format!(
                "conversation '{conversation_id}' vanished while its members were set"
            )));
        }
    }
    let mut ids = Vec::with_capacity(members.len());
    for member in members {
        // Looked up inside the conversation's firm only, like a publish target. FOR KEY
        // SHARE: a user being erased concurrently is waited for and then not found
        // (as on SQLite), rather than failing the insert below on its foreign key.
        match firm_user_locking(&mut tx, tenant, member, "FOR KEY SHARE").await? {
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
    sqlx::query("DELETE FROM conversation_members WHERE conversation_id = $1")
        .bind(conversation_id)
        .execute(&mut *tx)
        .await?;
    sqlx::query(
        "INSERT INTO conversation_members (conversation_id, user_id)
         SELECT $1, member FROM unnest($2::TEXT[]) AS member",
    )
    .bind(conversation_id)
    .bind(&ids)
    .execute(&mut *tx)
    .await?;
    tx.commit().await?;
    Ok(ids)
}

/// A conversation with its members.
pub async fn conversation(
    conn: &mut PgConnection,
    conversation_id: &str,
) -> Result<Option<Conversation>, StoreError> {
    let tenant: Option<String> =
        sqlx::query_scalar("SELECT tenant FROM conversations WHERE id = $1")
            .bind(conversation_id)
            .fetch_optional(&mut *conn)
            .await?;
    let Some(tenant) = tenant else {
        return Ok(None);
    };
    // COLLATE "C": SQLite's (byte) order, whatever the database's locale.
    let members: Vec<String> = sqlx::query_scalar(
        "SELECT user_id FROM conversation_members WHERE conversation_id = $1
         ORDER BY user_id COLLATE \"C\"",
    )
    .bind(conversation_id)
    .fetch_all(&mut *conn)
    .await?;
    Ok(Some(Conversation {
        id: conversation_id.to_owned(),
        tenant,
        members,
    }))
}

/// Conversations a user belongs to.
pub async fn user_conversations(
    conn: &mut PgConnection,
    user_id: &str,
) -> Result<Vec<String>, StoreError> {
    Ok(sqlx::query_scalar(
        "SELECT conversation_id FROM conversation_members WHERE user_id = $1
         ORDER BY conversation_id COLLATE \"C\"",
    )
    .bind(user_id)
    .fetch_all(&mut *conn)
    .await?)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::PgPool;

    use super::*;

    /// A firm "dupont" with the user "marie" and her session "s1" on the token "h1".
    async fn marie(pool: &PgPool) {
        let mut conn = pool.acquire().await.expect("connection");
        create_tenant(&mut conn, "dupont", "Dupont")
            .await
            .expect("firm");
        create_user(
            &mut conn,
            NewUser {
                id: "marie".into(),
                tenant: "dupont".into(),
                email: "Marie@Dupont.example".into(),
                name: "Marie".into(),
                role: "lawyer".into(),
                password_hash: None,
                external: false,
            },
        )
        .await
        .expect("user");
        create_session(
            &mut conn,
            NewSession {
                id: "s1".into(),
                user_id: "marie".into(),
                device_name: "laptop".into(),
                refresh_hash: "h1".into(),
                expires_at: Utc::now() + chrono::Duration::days(1),
            },
        )
        .await
        .expect("session");
    }

    /// The first presentation of "h1" in an open transaction on one connection; the
    /// second started on another while the first is uncommitted. Both outcomes.
    async fn race_rotations(pool: &PgPool, grace_us: i64) -> (RotateOutcome, RotateOutcome) {
        let expires = Utc::now() + chrono::Duration::days(1);
        let mut first_tx = pool.begin().await.expect("begins");
        let first = rotate_session(&mut first_tx, "h1", "h2", expires, grace_us)
            .await
            .expect("rotates");
        let second = tokio::spawn({
            let pool = pool.clone();
            async move {
                let mut tx = pool.begin().await.expect("begins");
                let outcome = rotate_session(&mut tx, "h1", "h2", expires, grace_us)
                    .await
                    .expect("answers");
                tx.commit().await.expect("commits");
                outcome
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !second.is_finished(),
            "the second presentation waits for the first's commit"
        );
        first_tx.commit().await.expect("commits");
        (first, second.await.expect("joins"))
    }

    async fn hashes(pool: &PgPool) -> (String, Option<String>, bool, bool) {
        sqlx::query_as(
            "SELECT refresh_hash, previous_hash, grace_used, revoked FROM sessions WHERE id = 's1'",
        )
        .fetch_one(pool)
        .await
        .expect("reads")
    }

    #[tokio::test]
    async fn two_concurrent_presentations_rotate_once_and_the_other_is_a_replay() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        marie(&pool).await;
        let (first, second) = race_rotations(&pool, 0).await;
        let rotated = RotateOutcome::Rotated {
            session_id: "s1".into(),
            user_id: "marie".into(),
        };
        assert_eq!(first, rotated);
        assert_eq!(
            second,
            RotateOutcome::Reused {
                session_id: "s1".into()
            },
            "without a grace window the second presentation is a replay"
        );
        let (current, previous, _, revoked) = hashes(&pool).await;
        assert_eq!((current.as_str(), previous.as_deref()), ("h2", Some("h1")));
        assert!(revoked, "the replay revoked the session");
        let mut conn = pool.acquire().await.expect("connection");
        assert!(!session_active(&mut conn, "s1").await.expect("reads"));
    }

    #[tokio::test]
    async fn two_concurrent_presentations_within_the_grace_are_one_rotation() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        marie(&pool).await;
        let (first, second) = race_rotations(&pool, 60_000_000).await;
        let rotated = RotateOutcome::Rotated {
            session_id: "s1".into(),
            user_id: "marie".into(),
        };
        assert_eq!(first, rotated);
        assert_eq!(second, rotated, "the second is the grace window's retry");
        assert_eq!(
            hashes(&pool).await,
            ("h2".to_owned(), Some("h1".to_owned()), true, false),
            "rotated once: the old token is still the previous one, its grace used"
        );
        let mut conn = pool.acquire().await.expect("connection");
        let expires = Utc::now() + chrono::Duration::days(1);
        assert_eq!(
            rotate_session(&mut conn, "h1", "h2", expires, 60_000_000)
                .await
                .expect("answers"),
            RotateOutcome::Reused {
                session_id: "s1".into()
            },
            "a third presentation is a replay"
        );
        assert!(!session_active(&mut conn, "s1").await.expect("reads"));
    }

    #[tokio::test]
    async fn duplicates_are_refused_as_on_sqlite() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        marie(&pool).await;
        let mut conn = pool.acquire().await.expect("connection");
        let other = |id: &str, email: &str| NewUser {
            id: id.into(),
            tenant: "dupont".into(),
            email: email.into(),
            name: "Other".into(),
            role: "lawyer".into(),
            password_hash: None,
            external: false,
        };
        match create_user(&mut conn, other("marie2", "MARIE@dupont.EXAMPLE")).await {
            Err(StoreError::Conflict(message)) => assert_eq!(
                message,
                "a user with this id or email (MARIE@dupont.EXAMPLE) already exists"
            ),
            other => panic!("an email differing only in case is refused: {other:?}"),
        }
        // Past the normalisation too: the unique index is on lower(email).
        let raw = sqlx::query(
            "INSERT INTO users (id, tenant, email, role, created_us)
             VALUES ('raw', 'dupont', 'MARIE@DUPONT.EXAMPLE', 'lawyer', 0)",
        )
        .execute(&mut *conn)
        .await;
        assert!(
            matches!(&raw, Err(err) if is_unique_violation(err)),
            "{raw:?}"
        );
        assert!(matches!(
            create_user(&mut conn, other("marie", "someone@else.example")).await,
            Err(StoreError::Conflict(_))
        ));
        match create_tenant(&mut conn, "dupont", "Again").await {
            Err(StoreError::Conflict(message)) => {
                assert_eq!(message, "a firm with slug 'dupont' already exists")
            }
            other => panic!("a duplicate firm is refused: {other:?}"),
        }
        // Inside a transaction, a refusal leaves it usable (a savepoint rolled back).
        let mut tx = pool.begin().await.expect("begins");
        assert!(create_tenant(&mut tx, "dupont", "Again").await.is_err());
        create_tenant(&mut tx, "martin", "Martin")
            .await
            .expect("still usable");
        tx.commit().await.expect("commits");
        let found = user_where(&mut conn, "email = ?1", "marie@dupont.example")
            .await
            .expect("reads")
            .expect("found");
        assert_eq!(found.email, "marie@dupont.example");
        let found = firm_user(&mut conn, "dupont", "MARIE@Dupont.example")
            .await
            .expect("reads")
            .expect("found by email");
        assert_eq!(found.id, "marie");
        let users = list_users(&mut conn, Some("dupont")).await.expect("lists");
        assert_eq!(users.len(), 1);
        assert!(list_users(&mut conn, None).await.expect("lists").len() == 1);
        create_api_key(
            &mut conn,
            NewApiKey {
                key_id: "k1".into(),
                secret_hash: "kh".into(),
                tenant: Some("dupont".into()),
                name: "firm software".into(),
                admin: false,
            },
        )
        .await
        .expect("key");
        assert!(matches!(
            create_api_key(
                &mut conn,
                NewApiKey {
                    key_id: "k2".into(),
                    secret_hash: "kh".into(),
                    tenant: Some("nobody".into()),
                    name: "x".into(),
                    admin: false,
                },
            )
            .await,
            Err(StoreError::NotFound(_))
        ));
        assert!(revoke_api_key(&mut conn, "k1").await.expect("revokes"));
        let key = api_key(&mut conn, "k1")
            .await
            .expect("reads")
            .expect("found");
        assert!(key.revoked && !key.admin);
        assert_eq!(list_api_keys(&mut conn).await.expect("lists"), [key]);
        assert_eq!(
            revoke_session(&mut conn, "h1").await.expect("revokes"),
            Some("s1".to_owned())
        );
        assert!(!session_active(&mut conn, "s1").await.expect("reads"));
    }

    #[tokio::test]
    async fn concurrent_member_replacements_do_not_mix() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        marie(&pool).await;
        let mut conn = pool.acquire().await.expect("connection");
        for id in ["a", "b", "c"] {
            create_user(
                &mut conn,
                NewUser {
                    id: id.into(),
                    tenant: "dupont".into(),
                    email: String::new(),
                    name: id.into(),
                    role: "lawyer".into(),
                    password_hash: None,
                    external: false,
                },
            )
            .await
            .expect("user");
        }
        set_members(&mut conn, "conv", "dupont", &["marie".into()])
            .await
            .expect("members");
        let mut first_tx = pool.begin().await.expect("begins");
        set_members(&mut first_tx, "conv", "dupont", &["a".into(), "b".into()])
            .await
            .expect("members");
        let second = tokio::spawn({
            let pool = pool.clone();
            async move {
                let mut tx = pool.begin().await.expect("begins");
                let ids = set_members(&mut tx, "conv", "dupont", &["c".into(), "b".into()])
                    .await
                    .expect("members");
                tx.commit().await.expect("commits");
                ids
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!second.is_finished(), "the second replacement waits");
        first_tx.commit().await.expect("commits");
        assert_eq!(second.await.expect("joins"), ["b", "c"]);
        let conversation = conversation(&mut conn, "conv")
            .await
            .expect("reads")
            .expect("exists");
        assert_eq!(
            conversation.members,
            ["b", "c"],
            "the last replacement only"
        );
        assert_eq!(
            user_conversations(&mut conn, "a").await.expect("reads"),
            Vec::<String>::new()
        );
        assert!(matches!(
            set_members(&mut conn, "conv", "martin", &[]).await,
            Err(StoreError::Forbidden(_))
        ));
    }
}
