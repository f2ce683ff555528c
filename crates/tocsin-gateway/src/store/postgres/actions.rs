//! The writer's client actions on PostgreSQL: applying a client action at most once
//! per (user, action id) — mark read, mark all read, answer a proposal, shown,
//! acknowledge — and pruning. Each runs inside the writer's open transaction (its
//! own savepoint).
//!
//! SQLite had one writer, so "read, then decide a write" could not race. Here the
//! nodes' writer batches are serialized by the batch advisory lock, but the functions
//! do not rely on it: the action id is claimed by its primary key before the action
//! runs, and a proposal's row is locked before its status is checked.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use serde_json::json;
use sqlx::PgConnection;
use tocsin_protocol::frames::ProposalResponse;
use tocsin_protocol::notification::{ProposalStatus, ProposalStatusChanged};
use tocsin_protocol::{
    ErrorBody, ErrorCode, Kind, Notification, NotificationData, Position, StreamName, Urgency,
};

use super::ops::parse_stream;
use super::reads::clamp_i64;
use crate::store::time::{from_us, to_us};
use crate::store::{
    ActionCommand, ActionKey, ActionOutcome, AppendRequest, ReadEffect, StoreError,
    StoredNotification,
};

/// Applies a client action at most once per (user, action id).
///
/// The same action may reach two nodes at once (a client retrying on another
/// connection). The action id is claimed first, by inserting its `client_actions`
/// row (the result filled in at the end): a second transaction claiming the same id
/// waits on the primary key until the first ends, then either finds the row (the
/// first committed: it answers the stored result, as a replay) or claims it (the
/// first rolled back). So an action runs at most once and the loser answers exactly
/// like a replay.
pub async fn apply_action(
    conn: &mut PgConnection,
    key: &ActionKey,
    streams: &[StreamName],
    action: ActionCommand,
    fresh: &mut Vec<Arc<StoredNotification>>,
) -> Result<ActionOutcome, StoreError> {
    if let Some(replayed) = replay(conn, key).await? {
        return Ok(replayed);
    }
    let claimed = sqlx::query(
        "INSERT INTO client_actions (user_id, action_id, result, created_us) VALUES ($1, $2, '', $3)
         ON CONFLICT (user_id, action_id) DO NOTHING",
    )
    .bind(&key.user_id)
    .bind(&key.action_id)
    .bind(to_us(Utc::now()))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if claimed == 0 {
        // Claimed by a transaction that committed since our first look.
        return replay(conn, key).await?.ok_or_else(|| {
            StoreError::Internal(format!("action {} claimed but not recorded", key.action_id))
        });
    }
    let visible: HashSet<String> = streams.iter().map(ToString::to_string).collect();
    let (result, effect) = match action {
        ActionCommand::MarkRead(ids) => mark_read(conn, key, &visible, &ids).await?,
        ActionCommand::MarkAllRead { kind, up_to: None } => {
            mark_all_read(conn, key, streams, kind).await?
        }
        ActionCommand::MarkAllRead {
            kind,
            up_to: Some(up_to),
        } => mark_all_read_up_to(conn, key, &visible, kind, up_to).await?,
        ActionCommand::RespondProposal {
            tenant,
            proposal_id,
            response,
        } => (
            respond_proposal(conn, key, &visible, &tenant, &proposal_id, response, fresh).await?,
            None,
        ),
        ActionCommand::Shown(ids) => (
            super::audit::shown(conn, key, &visible, &ids, to_us(Utc::now())).await?,
            None,
        ),
        ActionCommand::Acknowledge {
            tenant,
            session_id,
            ids,
        } => {
            let who = super::deadlines::Acknowledger {
                user_id: &key.user_id,
                tenant: &tenant,
                session_id: session_id.as_deref(),
            };
            super::deadlines::acknowledge(conn, &who, &visible, &ids).await?
        }
    };
    sqlx::query(
        "UPDATE client_actions SET result = $3, created_us = $4 WHERE user_id = $1 AND action_id = $2",
    )
    .bind(&key.user_id)
    .bind(&key.action_id)
    .bind(encode_result(&result))
    .bind(to_us(Utc::now()))
    .execute(&mut *conn)
    .await?;
    Ok(ActionOutcome {
        result,
        replayed: false,
        effect,
    })
}

/// The stored answer of an action applied before.
async fn replay(
    conn: &mut PgConnection,
    key: &ActionKey,
) -> Result<Option<ActionOutcome>, StoreError> {
    let known: Option<String> = sqlx::query_scalar(
        "SELECT result FROM client_actions WHERE user_id = $1 AND action_id = $2",
    )
    .bind(&key.user_id)
    .bind(&key.action_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some(stored) = known else {
        return Ok(None);
    };
    Ok(Some(ActionOutcome {
        result: decode_result(&stored)?,
        replayed: true,
        effect: None,
    }))
}

type ActionResult = Result<serde_json::Value, ErrorBody>;

fn encode_result(result: &ActionResult) -> String {
    match result {
        Ok(data) => json!({ "ok": true, "data": data }).to_string(),
        Err(error) => json!({ "ok": false, "error": error }).to_string(),
    }
}

fn decode_result(text: &str) -> Result<ActionResult, StoreError> {
    let value: serde_json::Value = serde_json::from_str(text)
        .map_err(|err| StoreError::Internal(format!("stored action result: {err}")))?;
    if value["ok"].as_bool() == Some(true) {
        return Ok(Ok(value["data"].clone()));
    }
    let error: ErrorBody = serde_json::from_value(value["error"].clone())
        .map_err(|err| StoreError::Internal(format!("stored action error: {err}")))?;
    Ok(Err(error))
}

/// Marks the visible ones among `ids` read. Ids of streams the user cannot read are
/// reported as not found, exactly like unknown ids, so they reveal nothing.
///
/// The read is audited only when this transaction inserted it: a concurrent insert
/// of the same read makes ours wait and then do nothing, so it is audited once.
async fn mark_read(
    conn: &mut PgConnection,
    key: &ActionKey,
    visible: &HashSet<String>,
    ids: &[String],
) -> Result<(ActionResult, Option<ReadEffect>), StoreError> {
    let now = to_us(Utc::now());
    let mut read = Vec::new();
    let mut not_found = Vec::new();
    for id in ids {
        let stream: Option<String> =
            sqlx::query_scalar("SELECT stream FROM notifications WHERE id = $1")
                .bind(id)
                .fetch_optional(&mut *conn)
                .await?;
        match stream {
            Some(stream) if visible.contains(&stream) => {
                let inserted = sqlx::query(
                    "INSERT INTO reads (user_id, notification_id, read_us) VALUES ($1, $2, $3)
                     ON CONFLICT (user_id, notification_id) DO NOTHING",
                )
                .bind(&key.user_id)
                .bind(id)
                .bind(now)
                .execute(&mut *conn)
                .await?
                .rows_affected();
                if inserted > 0 {
                    super::audit::read_one(conn, &key.user_id, key.session_id.as_deref(), id, now)
                        .await?;
                }
                read.push(id.clone());
            }
            _ => not_found.push(id.clone()),
        }
    }
    let data = json!({ "read": read, "not_found": not_found });
    let effect = (!read.is_empty()).then_some(ReadEffect::Read(read));
    Ok((Ok(data), effect))
}

/// Marks everything visible created up to now read (of one kind, when given).
async fn mark_all_read(
    conn: &mut PgConnection,
    key: &ActionKey,
    streams: &[StreamName],
    kind: Option<Kind>,
) -> Result<(ActionResult, Option<ReadEffect>), StoreError> {
    let before = Utc::now();
    let before_us = to_us(before);
    let mut count = 0;
    for stream in streams {
        let name = stream.to_string();
        let kind_name = kind.map(Kind::as_str);
        let range = (i64::MAX, before_us, kind_name);
        super::audit::read_range(
            conn,
            &key.user_id,
            key.session_id.as_deref(),
            &name,
            range,
            before_us,
        )
        .await?;
        count += sqlx::query(
            "INSERT INTO reads (user_id, notification_id, read_us)
             SELECT $1, id, $2 FROM notifications
             WHERE stream = $3 AND created_us <= $2 AND ($4::TEXT IS NULL OR kind = $4)
             ON CONFLICT (user_id, notification_id) DO NOTHING",
        )
        .bind(&key.user_id)
        .bind(before_us)
        .bind(&name)
        .bind(kind_name)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    }
    let data = json!({ "marked": count, "before": before });
    let effect = ReadEffect::ReadAll {
        kind,
        before,
        up_to: None,
    };
    Ok((Ok(data), Some(effect)))
}

/// Marks read what the user saw: per visible stream of `up_to` still in the epoch
/// the client saw, every notification at or before its offset (of one kind, when
/// given). Streams the user cannot read are skipped like streams whose epoch
/// changed, so the answer reveals nothing about them.
async fn mark_all_read_up_to(
    conn: &mut PgConnection,
    key: &ActionKey,
    visible: &HashSet<String>,
    kind: Option<Kind>,
    up_to: BTreeMap<StreamName, Position>,
) -> Result<(ActionResult, Option<ReadEffect>), StoreError> {
    let now = to_us(Utc::now());
    let (mut count, mut newest_us, mut applied, mut skipped) =
        (0, 0i64, BTreeMap::new(), Vec::new());
    for (stream, position) in up_to {
        let name = stream.to_string();
        let epoch: Option<String> = sqlx::query_scalar("SELECT epoch FROM streams WHERE name = $1")
            .bind(&name)
            .fetch_optional(&mut *conn)
            .await?;
        if !visible.contains(&name) || epoch.as_deref() != Some(position.epoch.as_str()) {
            skipped.push(name);
            continue;
        }
        let offset = clamp_i64(position.offset);
        let kind_name = kind.map(Kind::as_str);
        let range = (offset, i64::MAX, kind_name);
        super::audit::read_range(
            conn,
            &key.user_id,
            key.session_id.as_deref(),
            &name,
            range,
            now,
        )
        .await?;
        count += sqlx::query(
            "INSERT INTO reads (user_id, notification_id, read_us)
             SELECT $1, id, $2 FROM notifications
             WHERE stream = $3 AND stream_offset <= $4 AND ($5::TEXT IS NULL OR kind = $5)
             ON CONFLICT (user_id, notification_id) DO NOTHING",
        )
        .bind(&key.user_id)
        .bind(now)
        .bind(&name)
        .bind(offset)
        .bind(kind_name)
        .execute(&mut *conn)
        .await?
        .rows_affected();
        let created: Option<i64> = sqlx::query_scalar(
            "SELECT max(created_us) FROM notifications
             WHERE stream = $1 AND stream_offset <= $2 AND ($3::TEXT IS NULL OR kind = $3)",
        )
        .bind(&name)
        .bind(offset)
        .bind(kind_name)
        .fetch_one(&mut *conn)
        .await?;
        newest_us = newest_us.max(created.unwrap_or(0));
        applied.insert(stream, position);
    }
    let before = from_us(newest_us);
    let data = json!({ "marked": count, "before": before, "skipped": skipped });
    let effect = ReadEffect::ReadAll {
        kind,
        before,
        up_to: Some(applied),
    };
    Ok((Ok(data), Some(effect)))
}

/// Answers a pending proposal and stores the `proposal-status-changed` notification
/// in the proposal's stream, in the same transaction.
async fn respond_proposal(
    conn: &mut PgConnection,
    key: &ActionKey,
    visible: &HashSet<String>,
    tenant: &str,
    proposal_id: &str,
    response: ProposalResponse,
    fresh: &mut Vec<Arc<StoredNotification>>,
) -> Result<ActionResult, StoreError> {
    // FOR UPDATE: two users (or devices) answering at once must not both find it
    // pending. The second waits here until the first commits, then reads the row as
    // the first left it (READ COMMITTED re-reads a locked row) and is told it was
    // already answered.
    let row: Option<(String, String, Option<String>)> = sqlx::query_as(
        "SELECT stream, status, responded_by FROM proposals
         WHERE tenant = $1 AND proposal_id = $2 FOR UPDATE",
    )
    .bind(tenant)
    .bind(proposal_id)
    .fetch_optional(&mut *conn)
    .await?;
    let Some((stream, status, responded_by)) = row.filter(|(stream, ..)| visible.contains(stream))
    else {
        return Ok(Err(ErrorBody::new(
            ErrorCode::NotFound,
            format!(
                "no proposal '{proposal_id}' is visible to you; check the id in the proposal-created notification"
            ),
        )));
    };
    if status != "pending" {
        let by = responded_by
            .map(|user| format!(" by user {user}"))
            .unwrap_or_default();
        return Ok(Err(ErrorBody::new(
            ErrorCode::Conflict,
            format!("proposal '{proposal_id}' was already {status}{by}; nothing was changed"),
        )));
    }
    let (new_status, title) = match response {
        ProposalResponse::Accept => (ProposalStatus::Accepted, "Appointment proposal accepted"),
        ProposalResponse::Reject => (ProposalStatus::Rejected, "Appointment proposal rejected"),
    };
    sqlx::query(
        "UPDATE proposals SET status = $3, responded_by = $4 WHERE tenant = $1 AND proposal_id = $2",
    )
    .bind(tenant)
    .bind(proposal_id)
    .bind(new_status.as_str())
    .bind(&key.user_id)
    .execute(&mut *conn)
    .await?;
    let stream_name = parse_stream(&stream)?;
    let conversation_id = match &stream_name {
        // The firm's own id, as its software and the clients know it.
        StreamName::Conversation(key) => Some(crate::access::conversation_id(key).to_owned()),
        _ => None,
    };
    let notification = Notification {
        url: None,
        id: uuid::Uuid::now_v7().to_string(),
        data: NotificationData::ProposalStatusChanged(ProposalStatusChanged {
            extra: Default::default(),
            proposal_id: proposal_id.to_owned(),
            status: new_status,
            responded_by: Some(key.user_id.clone()),
            conversation_id,
        }),
        created_at: Utc::now(),
        urgency: Urgency::Normal,
        title: title.to_owned(),
        body: String::new(),
    };
    let appended = super::ops::append_one(
        conn,
        AppendRequest {
            stream: stream_name,
            tenant: Some(tenant.to_owned()),
            notification,
            idempotency: None,
            deliver_at: None,
            actor: format!("user:{}", key.user_id),
        },
        fresh,
    )
    .await?;
    Ok(Ok(json!({
        "proposal_id": proposal_id,
        "status": new_status.as_str(),
        "notification_id": appended.id,
        "offset": appended.offset,
    })))
}

/// Deletes notifications (and idempotency keys, action records) created before the
/// cut-off and moves each touched stream's `first` offset.
///
/// Run it on the writer, under its batch lock, as SQLite does: it updates stream rows
/// that concurrent batches lock too, and without the batch lock the two could
/// deadlock.
pub async fn prune(conn: &mut PgConnection, cutoff_us: i64) -> Result<u64, StoreError> {
    let deleted = sqlx::query("DELETE FROM notifications WHERE created_us < $1")
        .bind(cutoff_us)
        .execute(&mut *conn)
        .await?
        .rows_affected();
    for sql in [
        "DELETE FROM idempotency WHERE created_us < $1",
        "DELETE FROM client_actions WHERE created_us < $1",
        // A retraction is later than its notification: older ones refer to pruned ones.
        "DELETE FROM retractions WHERE at_us < $1",
    ] {
        sqlx::query(sql).bind(cutoff_us).execute(&mut *conn).await?;
    }
    if deleted > 0 {
        // A read is always later than its notification, so reads older than the
        // cut-off only refer to pruned notifications.
        sqlx::query("DELETE FROM reads WHERE read_us < $1")
            .bind(cutoff_us)
            .execute(&mut *conn)
            .await?;
        // Only rows whose `first` changes are written (PostgreSQL would otherwise
        // write a new version of, and lock, every stream row).
        sqlx::query(
            "UPDATE streams s SET first = m.first FROM (
                 SELECT st.name, COALESCE(
                     (SELECT MIN(stream_offset) FROM notifications n WHERE n.stream = st.name),
                     st.head + 1) AS first
                 FROM streams st) m
             WHERE m.name = s.name AND s.first <> m.first",
        )
        .execute(&mut *conn)
        .await?;
    }
    Ok(deleted)
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use sqlx::PgPool;

    use super::*;

    fn key(user: &str, action: &str) -> ActionKey {
        ActionKey {
            user_id: user.to_owned(),
            session_id: None,
            action_id: action.to_owned(),
        }
    }

    fn respond(response: ProposalResponse) -> ActionCommand {
        ActionCommand::RespondProposal {
            tenant: "acme".to_owned(),
            proposal_id: "p1".to_owned(),
            response,
        }
    }

    async fn pending_proposal(pool: &PgPool) {
        sqlx::query(
            "INSERT INTO proposals (tenant, proposal_id, stream, status)
             VALUES ('acme', 'p1', 'tenant:acme', 'pending')",
        )
        .execute(pool)
        .await
        .expect("proposal");
    }

    async fn status_changes(pool: &PgPool) -> i64 {
        sqlx::query_scalar(
            "SELECT COUNT(*) FROM notifications WHERE kind = 'proposal-status-changed'",
        )
        .fetch_one(pool)
        .await
        .expect("count")
    }

    /// Runs `action` in its own transaction on another pool connection, committing
    /// when it succeeds.
    fn spawn_action(
        pool: &PgPool,
        key: ActionKey,
        action: ActionCommand,
    ) -> tokio::task::JoinHandle<ActionOutcome> {
        let pool = pool.clone();
        tokio::spawn(async move {
            let mut tx = pool.begin().await.expect("begin");
            let streams = [StreamName::Tenant("acme".into())];
            let outcome = apply_action(&mut tx, &key, &streams, action, &mut Vec::new())
                .await
                .expect("applied");
            tx.commit().await.expect("commit");
            outcome
        })
    }

    #[tokio::test]
    async fn a_proposal_answered_while_another_answer_is_uncommitted_is_already_answered() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        pending_proposal(&pool).await;
        let streams = [StreamName::Tenant("acme".into())];
        let mut first = pool.begin().await.expect("begin");
        let mut fresh = Vec::new();
        let accepted = apply_action(
            &mut first,
            &key("u1", "a1"),
            &streams,
            respond(ProposalResponse::Accept),
            &mut fresh,
        )
        .await
        .expect("applied");
        assert!(accepted.result.is_ok(), "{:?}", accepted.result);
        assert_eq!(fresh.len(), 1);
        // The second answer, from another user, must wait for the first to commit.
        let second = spawn_action(&pool, key("u2", "a2"), respond(ProposalResponse::Reject));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !second.is_finished(),
            "the second answer did not wait for the lock"
        );
        first.commit().await.expect("commit");
        let rejected = second.await.expect("task");
        let error = rejected.result.expect_err("already answered");
        assert_eq!(error.code, ErrorCode::Conflict);
        assert!(
            error.message.contains("already accepted by user u1"),
            "{}",
            error.message
        );
        assert_eq!(status_changes(&pool).await, 1);
        let (status, by): (String, Option<String>) =
            sqlx::query_as("SELECT status, responded_by FROM proposals WHERE proposal_id = 'p1'")
                .fetch_one(&pool)
                .await
                .expect("proposal");
        assert_eq!((status.as_str(), by.as_deref()), ("accepted", Some("u1")));
    }

    #[tokio::test]
    async fn two_concurrent_answers_to_a_proposal_make_one_answer() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        pending_proposal(&pool).await;
        let a = spawn_action(&pool, key("u1", "a1"), respond(ProposalResponse::Accept));
        let b = spawn_action(&pool, key("u2", "a2"), respond(ProposalResponse::Reject));
        let (a, b) = (a.await.expect("task"), b.await.expect("task"));
        let oks = [&a, &b].iter().filter(|o| o.result.is_ok()).count();
        assert_eq!(oks, 1, "{:?} / {:?}", a.result, b.result);
        let loser = if a.result.is_ok() { &b } else { &a };
        let error = loser.result.as_ref().expect_err("loser");
        assert_eq!(error.code, ErrorCode::Conflict);
        assert!(error.message.contains("was already"), "{}", error.message);
        assert_eq!(status_changes(&pool).await, 1);
    }

    #[tokio::test]
    async fn the_same_action_id_on_two_connections_runs_once_and_replays() {
        let (_cluster, pool) = crate::store::postgres::test_pool().await;
        pending_proposal(&pool).await;
        let streams = [StreamName::Tenant("acme".into())];
        let mut first = pool.begin().await.expect("begin");
        let applied = apply_action(
            &mut first,
            &key("u1", "same"),
            &streams,
            respond(ProposalResponse::Accept),
            &mut Vec::new(),
        )
        .await
        .expect("applied");
        assert!(!applied.replayed);
        let again = spawn_action(&pool, key("u1", "same"), respond(ProposalResponse::Accept));
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(
            !again.is_finished(),
            "the duplicate did not wait for the claim"
        );
        first.commit().await.expect("commit");
        let again = again.await.expect("task");
        assert!(again.replayed);
        assert_eq!(again.result, applied.result);
        assert_eq!(status_changes(&pool).await, 1);
    }
}
