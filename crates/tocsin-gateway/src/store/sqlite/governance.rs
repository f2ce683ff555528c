//! Governing users: disabling (every device session revoked with it) and erasing a
//! user who left the firm (GDPR). Both run on the writer, in one savepoint of its
//! transaction, so an erasure is all or nothing.
//!
//! What an erasure keeps is the firm's proof (docs/OPERATIONS.md, "Users who leave the
//! firm"): audit records and acknowledgements stay, under an anonymised id
//! `erased:<16 hex digits>` drawn at random once per erasure — random, not a hash of
//! the old id, so the firm's software, which knows the old id, cannot link it back.
//! The device names in them ("Portable — Marie") become `device 1`, `device 2`, …,
//! which still tells the devices apart without naming anyone.

use rusqlite::{Connection, params};

use super::accounts::user_where;
use crate::store::StoreError;

fn unknown(user_id: &str) -> StoreError {
    StoreError::NotFound(format!(
        "no user '{user_id}'; see `tocsin-gateway user list`"
    ))
}

/// Disables or enables a user; disabling revokes every device session of theirs.
/// Returns how many sessions were still signed in.
pub fn set_disabled(conn: &Connection, user_id: &str, disabled: bool) -> Result<u64, StoreError> {
    let changed = conn.execute(
        "UPDATE users SET disabled = ?2 WHERE id = ?1",
        params![user_id, disabled],
    )?;
    if changed == 0 {
        return Err(unknown(user_id));
    }
    if !disabled {
        // Enabling does not bring sessions back: the user signs in again.
        return Ok(0);
    }
    let revoked = conn.execute(
        "UPDATE sessions SET revoked = 1 WHERE user_id = ?1 AND revoked = 0 AND expires_us > ?2",
        params![user_id, super::time::to_us(chrono::Utc::now())],
    )?;
    Ok(revoked as u64)
}

/// Erases a user: their account, device sessions, memberships, read state, client
/// actions, calendar feed and personal stream (with its notifications) are deleted;
/// their audit records, acknowledgements and deadlines name the returned anonymised
/// id instead, without their email or device names.
pub fn erase(conn: &Connection, user_id: &str) -> Result<String, StoreError> {
    let user = user_where(conn, "id = ?1", user_id)?.ok_or_else(|| unknown(user_id))?;
    let anonymised = format!("erased:{}", hex::encode(rand::random::<[u8; 8]>()));
    let stream = format!("user:{user_id}");
    for sql in [
        "DELETE FROM sessions WHERE user_id = ?1",
        "DELETE FROM conversation_members WHERE user_id = ?1",
        "DELETE FROM reads WHERE user_id = ?1",
        "DELETE FROM client_actions WHERE user_id = ?1",
        "DELETE FROM calendar_feeds WHERE user_id = ?1",
    ] {
        conn.execute(sql, params![user_id])?;
    }
    for sql in [
        "DELETE FROM notifications WHERE stream = ?1",
        "DELETE FROM idempotency WHERE stream = ?1",
        "DELETE FROM proposals WHERE stream = ?1",
        "DELETE FROM retractions WHERE stream = ?1",
        "DELETE FROM streams WHERE name = ?1",
    ] {
        conn.execute(sql, params![stream])?;
    }
    anonymise_proof(conn, &user.tenant, user_id, &user.email, &anonymised)?;
    conn.execute("DELETE FROM users WHERE id = ?1", params![user_id])?;
    Ok(anonymised)
}

/// Replaces the user's id, email and device names in what the firm keeps as proof.
fn anonymise_proof(
    conn: &Connection,
    tenant: &str,
    user_id: &str,
    email: &str,
    anonymised: &str,
) -> Result<(), StoreError> {
    let by_id = params![tenant, user_id, anonymised];
    conn.execute(
        "UPDATE audit SET user_id = ?3 WHERE tenant = ?1 AND user_id = ?2",
        by_id,
    )?;
    conn.execute(
        "UPDATE audit SET actor = 'user:' || ?3 WHERE tenant = ?1 AND actor = 'user:' || ?2",
        by_id,
    )?;
    // A publish to their stream names it in its detail (`"stream":"user:<id>"`). The
    // whole quoted value is replaced, not the bare id: an identity provider's subject
    // may be as short as "42", which other records' details may well contain.
    conn.execute(
        "UPDATE audit SET detail = replace(detail, '\"user:' || ?2 || '\"', '\"user:' || ?3 || '\"')
         WHERE tenant = ?1 AND user_id = ?3",
        by_id,
    )?;
    // Their email where a title quoted it, in their own records only: elsewhere it
    // could be part of a longer address ("ma@…" inside "emma@…").
    if !email.is_empty() {
        conn.execute(
            "UPDATE audit SET detail = replace(detail, ?2, ?3) WHERE tenant = ?1 AND user_id = ?3",
            params![tenant, email, anonymised],
        )?;
    }
    conn.execute(
        "UPDATE acknowledgements SET user_id = ?3, session_id = NULL WHERE tenant = ?1 AND user_id = ?2",
        by_id,
    )?;
    conn.execute(
        "UPDATE proposals SET responded_by = ?3 WHERE tenant = ?1 AND responded_by = ?2",
        by_id,
    )?;
    conn.execute(
        "UPDATE deadlines SET owner = ?3 WHERE tenant = ?1 AND owner = ?2",
        by_id,
    )?;
    conn.execute(
        "UPDATE deadlines SET backup = ?3 WHERE tenant = ?1 AND backup = ?2",
        by_id,
    )?;
    let devices: Vec<String> = conn
        .prepare(
            "SELECT device FROM audit WHERE tenant = ?1 AND user_id = ?2 AND device IS NOT NULL
             UNION SELECT device FROM acknowledgements WHERE tenant = ?1 AND user_id = ?2 AND device IS NOT NULL
             ORDER BY 1",
        )?
        .query_map(params![tenant, anonymised], |row| row.get(0))?
        .collect::<Result<_, _>>()?;
    for (index, device) in devices.iter().enumerate() {
        let label = format!("device {}", index + 1);
        let rename = params![tenant, anonymised, device, label];
        conn.execute(
            "UPDATE audit SET device = ?4 WHERE tenant = ?1 AND user_id = ?2 AND device = ?3",
            rename,
        )?;
        conn.execute(
            "UPDATE acknowledgements SET device = ?4 WHERE tenant = ?1 AND user_id = ?2 AND device = ?3",
            rename,
        )?;
    }
    Ok(())
}
