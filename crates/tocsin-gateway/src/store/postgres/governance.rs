//! Governing users on PostgreSQL: disabling (every device session revoked with it) and
//! erasing a user who left the firm (GDPR). Each runs in a transaction of its own (a
//! savepoint inside the caller's), so an erasure is all or nothing.
//!
//! What an erasure keeps is the firm's proof (docs/OPERATIONS.md, "Users who leave the
//! firm"): audit records and acknowledgements stay, under an anonymised id
//! `erased:<16 hex digits>` drawn at random once per erasure — random, not a hash of
//! the old id, so the firm's software, which knows the old id, cannot link it back.
//! The device names in them ("Portable — Marie") become `device 1`, `device 2`, …,
//! which still tells the devices apart without naming anyone.
//!
//! Both lock the user's row `FOR UPDATE` first. A concurrent `create_session` (or a
//! member insert) holds a `FOR KEY SHARE` lock on that row through its foreign key
//! check until it commits, and the two conflict: either the session committed first
//! and is then revoked (or deleted) here, or its insert waits for this change — as
//! SQLite's single writer ordered them. A plain `UPDATE users SET disabled` would not
//! do: it takes only a `FOR NO KEY UPDATE` lock, which a key share does not wait for.

use sqlx::{Connection, PgConnection};

use super::accounts::user_where;
use crate::store::StoreError;

fn unknown(user_id: &str) -> StoreError {
    StoreError::NotFound(format!(
        "no user '{user_id}'; see `tocsin-gateway user list`"
    ))
}

/// Runs `sql` with `params` bound in order (`$1`, `$2`, …) as text.
async fn run(
    conn: &mut PgConnection,
    sql: &'static str,
    params: &[&str],
) -> Result<u64, StoreError> {
    let mut query = sqlx::query(sql);
    for param in params {
        query = query.bind(*param);
    }
    Ok(query.execute(&mut *conn).await?.rows_affected())
}

/// Disables or enables a user; disabling revokes every device session of theirs.
/// Returns how many sessions were still signed in.
pub async fn set_disabled(
    conn: &mut PgConnection,
    user_id: &str,
    disabled: bool,
) -> Result<u64, StoreError> {
    let mut tx = conn.begin().await?;
    // FOR UPDATE (see the module doc): a session being created for this user is
    // committed before the revocation below looks for sessions, or waits for it.
    let found: Option<String> = sqlx::query_scalar("SELECT id FROM users WHERE id = $1 FOR UPDATE")
        .bind(user_id)
        .fetch_optional(&mut *tx)
        .await?;
    if found.is_none() {
        return Err(unknown(user_id));
    }
    sqlx::query("UPDATE users SET disabled = $2 WHERE id = $1")
        .bind(user_id)
        .bind(disabled)
        .execute(&mut *tx)
        .await?;
    if !disabled {
        // Enabling does not bring sessions back: the user signs in again.
        tx.commit().await?;
        return Ok(0);
    }
    let revoked = sqlx::query(
        "UPDATE sessions SET revoked = TRUE WHERE user_id = $1 AND NOT revoked AND expires_us > $2",
    )
    .bind(user_id)
    .bind(crate::store::time::to_us(chrono::Utc::now()))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    tx.commit().await?;
    Ok(revoked)
}

/// Erases a user: their account, device sessions, memberships, read state, client
/// actions, calendar feed and personal stream (with its notifications) are deleted;
/// their audit records, acknowledgements and deadlines name the returned anonymised
/// id instead, without their email or device names.
pub async fn erase(conn: &mut PgConnection, user_id: &str) -> Result<String, StoreError> {
    let mut tx = conn.begin().await?;
    // First the writers' lock, then the user's row (the order every writer batch takes
    // locks in too: the advisory lock first), see the module doc and super::writer::BATCH_LOCK.
    sqlx::query("SELECT pg_advisory_xact_lock($1)")
        .bind(super::writer::BATCH_LOCK)
        .execute(&mut *tx)
        .await?;
    let user = user_where(&mut tx, "id = $1 FOR UPDATE", user_id)
        .await?
        .ok_or_else(|| unknown(user_id))?;
    let anonymised = format!("erased:{}", hex::encode(rand::random::<[u8; 8]>()));
    let stream = format!("user:{user_id}");
    for sql in [
        "DELETE FROM sessions WHERE user_id = $1",
        "DELETE FROM conversation_members WHERE user_id = $1",
        "DELETE FROM reads WHERE user_id = $1",
        "DELETE FROM client_actions WHERE user_id = $1",
        "DELETE FROM calendar_feeds WHERE user_id = $1",
    ] {
        run(&mut tx, sql, &[user_id]).await?;
    }
    for sql in [
        "DELETE FROM notifications WHERE stream = $1",
        "DELETE FROM idempotency WHERE stream = $1",
        "DELETE FROM proposals WHERE stream = $1",
        "DELETE FROM retractions WHERE stream = $1",
        "DELETE FROM streams WHERE name = $1",
    ] {
        run(&mut tx, sql, &[&stream]).await?;
    }
    anonymise_proof(&mut tx, &user.tenant, user_id, &user.email, &anonymised).await?;
    run(&mut tx, "DELETE FROM users WHERE id = $1", &[user_id]).await?;
    tx.commit().await?;
    Ok(anonymised)
}

/// Replaces the user's id, email and device names in what the firm keeps as proof.
async fn anonymise_proof(
    conn: &mut PgConnection,
    tenant: &str,
    user_id: &str,
    email: &str,
    anonymised: &str,
) -> Result<(), StoreError> {
    let by_id = &[tenant, user_id, anonymised];
    run(
        conn,
        "UPDATE audit SET user_id = $3 WHERE tenant = $1 AND user_id = $2",
        by_id,
    )
    .await?;
    run(
        conn,
        "UPDATE audit SET actor = 'user:' || $3 WHERE tenant = $1 AND actor = 'user:' || $2",
        by_id,
    )
    .await?;
    // A publish to their stream names it in its detail (`"stream":"user:<id>"`). The
    // whole quoted value is replaced, not the bare id: an identity provider's subject
    // may be as short as "42", which other records' details may well contain.
    run(
        conn,
        "UPDATE audit SET detail = replace(detail, '\"user:' || $2 || '\"', '\"user:' || $3 || '\"')
         WHERE tenant = $1 AND user_id = $3",
        by_id,
    )
    .await?;
    // Their email where a title quoted it, in their own records only: elsewhere it
    // could be part of a longer address ("ma@…" inside "emma@…").
    if !email.is_empty() {
        run(
            conn,
            "UPDATE audit SET detail = replace(detail, $2, $3) WHERE tenant = $1 AND user_id = $3",
            &[tenant, email, anonymised],
        )
        .await?;
    }
    run(
        conn,
        "UPDATE acknowledgements SET user_id = $3, session_id = NULL WHERE tenant = $1 AND user_id = $2",
        by_id,
    )
    .await?;
    run(
        conn,
        "UPDATE proposals SET responded_by = $3 WHERE tenant = $1 AND responded_by = $2",
        by_id,
    )
    .await?;
    run(
        conn,
        "UPDATE deadlines SET owner = $3 WHERE tenant = $1 AND owner = $2",
        by_id,
    )
    .await?;
    run(
        conn,
        "UPDATE deadlines SET backup = $3 WHERE tenant = $1 AND backup = $2",
        by_id,
    )
    .await?;
    let mut devices: Vec<String> = sqlx::query_scalar(
        "SELECT device FROM audit WHERE tenant = $1 AND user_id = $2 AND device IS NOT NULL
         UNION SELECT device FROM acknowledgements WHERE tenant = $1 AND user_id = $2 AND device IS NOT NULL",
    )
    .bind(tenant)
    .bind(anonymised)
    .fetch_all(&mut *conn)
    .await?;
    // Numbered in byte order, as SQLite's ORDER BY numbered them (not the locale's).
    devices.sort();
    for (index, device) in devices.iter().enumerate() {
        let label = format!("device {}", index + 1);
        let rename = &[tenant, anonymised, device.as_str(), label.as_str()];
        run(
            conn,
            "UPDATE audit SET device = $4 WHERE tenant = $1 AND user_id = $2 AND device = $3",
            rename,
        )
        .await?;
        run(
            conn,
            "UPDATE acknowledgements SET device = $4 WHERE tenant = $1 AND user_id = $2 AND device = $3",
            rename,
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use chrono::Utc;

    use super::*;
    use crate::store::postgres::accounts::{
        create_session, create_tenant, create_user, session_active,
    };
    use crate::store::{NewSession, NewUser};

    #[tokio::test]
    async fn disabling_waits_for_a_session_being_created_and_revokes_it() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        let mut conn = pool.acquire().await.expect("connection");
        create_tenant(&mut conn, "dupont", "Dupont")
            .await
            .expect("firm");
        create_user(
            &mut conn,
            NewUser {
                id: "lea".into(),
                tenant: "dupont".into(),
                email: "lea@dupont.example".into(),
                name: "Léa".into(),
                role: "lawyer".into(),
                password_hash: None,
                external: false,
            },
        )
        .await
        .expect("user");
        let mut signing_in = pool.begin().await.expect("begins");
        create_session(
            &mut signing_in,
            NewSession {
                id: "s1".into(),
                user_id: "lea".into(),
                device_name: "laptop".into(),
                refresh_hash: "h1".into(),
                expires_at: Utc::now() + chrono::Duration::days(1),
            },
        )
        .await
        .expect("session");
        let disabling = tokio::spawn({
            let pool = pool.clone();
            async move {
                let mut conn = pool.acquire().await.expect("connection");
                set_disabled(&mut conn, "lea", true)
                    .await
                    .expect("disables")
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!disabling.is_finished(), "disabling waits for the sign-in");
        signing_in.commit().await.expect("commits");
        assert_eq!(
            disabling.await.expect("joins"),
            1,
            "the new session is revoked"
        );
        assert!(!session_active(&mut conn, "s1").await.expect("reads"));

        // And erasing, with a session being created: it is deleted with the user.
        set_disabled(&mut conn, "lea", false)
            .await
            .expect("enables");
        let mut signing_in = pool.begin().await.expect("begins");
        create_session(
            &mut signing_in,
            NewSession {
                id: "s2".into(),
                user_id: "lea".into(),
                device_name: "laptop".into(),
                refresh_hash: "h2".into(),
                expires_at: Utc::now() + chrono::Duration::days(1),
            },
        )
        .await
        .expect("session");
        let erasing = tokio::spawn({
            let pool = pool.clone();
            async move {
                let mut conn = pool.acquire().await.expect("connection");
                erase(&mut conn, "lea").await
            }
        });
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!erasing.is_finished(), "erasing waits for the sign-in");
        signing_in.commit().await.expect("commits");
        let anonymised = erasing.await.expect("joins").expect("erases");
        assert!(anonymised.starts_with("erased:"), "{anonymised}");
        let left: i64 = sqlx::query_scalar("SELECT count(*) FROM sessions")
            .fetch_one(&pool)
            .await
            .expect("counts");
        assert_eq!(left, 0);
        assert!(matches!(
            erase(&mut conn, "lea").await,
            Err(StoreError::NotFound(_))
        ));
    }
}
