//! The writer's transactional operations: appending notifications, applying client
//! actions at most once, pruning. Each runs inside the writer's open transaction.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use chrono::Utc;
use rusqlite::{Connection, OptionalExtension, params};
use serde_json::json;
use tocsin_protocol::frames::ProposalResponse;
use tocsin_protocol::notification::{ProposalStatus, ProposalStatusChanged};
use tocsin_protocol::{
    ErrorBody, ErrorCode, Kind, Notification, NotificationData, Position, StreamName, Urgency,
};

use super::reads::clamp_i64;
use super::time::{from_us, new_epoch, to_us};
use crate::store::{
    ActionCommand, ActionKey, ActionOutcome, AppendRequest, Appended, ReadEffect, StoreError,
    StoredNotification,
};

/// Appends every request, in order; `fresh` receives what must be fanned out.
pub fn append_all(
    conn: &Connection,
    batch: Vec<AppendRequest>,
    fresh: &mut Vec<Arc<StoredNotification>>,
) -> Result<Vec<Appended>, StoreError> {
    batch
        .into_iter()
        .map(|request| append_one(conn, request, fresh))
        .collect()
}

/// Appends one notification: idempotency check, offset from the stream's head,
/// insert, proposal bookkeeping.
pub(super) fn append_one(
    conn: &Connection,
    request: AppendRequest,
    fresh: &mut Vec<Arc<StoredNotification>>,
) -> Result<Appended, StoreError> {
    let stream_name = request.stream.to_string();
    if let Some(idem) = &request.idempotency {
        let known = conn
            .prepare_cached(
                "SELECT i.notification_id, i.stream, i.offset, s.epoch FROM idempotency i
                 JOIN streams s ON s.name = i.stream WHERE i.scope = ?1 AND i.key = ?2",
            )?
            .query_row(params![idem.scope, idem.key], |row| {
                Ok((
                    row.get::<_, String>(0)?,
                    row.get::<_, String>(1)?,
                    row.get::<_, i64>(2)?,
                    row.get::<_, String>(3)?,
                ))
            })
            .optional()?;
        if let Some((id, stream, offset, epoch)) = known {
            let stream = stream
                .parse::<StreamName>()
                .map_err(|err| StoreError::Internal(err.to_string()))?;
            return Ok(Appended {
                id,
                stream,
                epoch,
                offset: offset as u64,
                duplicate: true,
                deliver_at: None,
            });
        }
    }
    if let Some(at) = request.deliver_at.filter(|at| *at > Utc::now()) {
        return super::schedule::schedule_publish(conn, request, at);
    }
    let (epoch, head) = ensure_stream(conn, &stream_name)?;
    let offset = head + 1;
    conn.prepare_cached("UPDATE streams SET head = ?2 WHERE name = ?1")?
        .execute(params![stream_name, offset])?;
    let notification = &request.notification;
    let payload = serde_json::to_string(notification)
        .map_err(|err| StoreError::Invalid(format!("notification cannot be encoded: {err}")))?;
    let created_us = to_us(notification.created_at);
    conn.prepare_cached(
        "INSERT INTO notifications (stream, offset, id, kind, created_us, payload) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
    )?
    .execute(params![stream_name, offset, notification.id, notification.data.kind_name(), created_us, payload])?;
    if let Some(idem) = &request.idempotency {
        conn.prepare_cached(
            "INSERT INTO idempotency (scope, key, notification_id, stream, offset, created_us) VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
        )?
        .execute(params![idem.scope, idem.key, notification.id, stream_name, offset, created_us])?;
    }
    track_proposal(conn, &request, &stream_name)?;
    super::audit::published(conn, &request)?;
    let epoch: Arc<str> = Arc::from(epoch);
    fresh.push(Arc::new(StoredNotification {
        stream: request.stream.clone(),
        epoch: epoch.clone(),
        offset: offset as u64,
        id: notification.id.clone(),
        kind: notification.kind(),
        payload: Arc::from(payload),
        retracted_at: None,
    }));
    Ok(Appended {
        id: notification.id.clone(),
        stream: request.stream,
        epoch: epoch.to_string(),
        offset: offset as u64,
        duplicate: false,
        deliver_at: None,
    })
}

/// Creates the stream row with a fresh epoch if missing; returns `(epoch, head)`.
pub fn ensure_stream(conn: &Connection, stream: &str) -> Result<(String, i64), StoreError> {
    // Read first: every publish but a stream's first finds the row, and then needs
    // neither the insert attempt nor a fresh random epoch.
    let select = "SELECT epoch, head FROM streams WHERE name = ?1";
    let read = |conn: &Connection| {
        conn.prepare_cached(select)?
            .query_row(params![stream], |row| Ok((row.get(0)?, row.get(1)?)))
            .optional()
    };
    if let Some(row) = read(conn)? {
        return Ok(row);
    }
    // OR IGNORE: a pooled connection may create the same stream concurrently.
    conn.prepare_cached(
        "INSERT OR IGNORE INTO streams (name, epoch, head, first) VALUES (?1, ?2, 0, 1)",
    )?
    .execute(params![stream, new_epoch()])?;
    read(conn)?.ok_or_else(|| StoreError::Internal(format!("stream {stream} vanished")))
}

/// Keeps the proposals table in step with proposal notifications, so a lawyer's
/// answer can be checked against the proposal's current state.
fn track_proposal(
    conn: &Connection,
    request: &AppendRequest,
    stream: &str,
) -> Result<(), StoreError> {
    match &request.notification.data {
        NotificationData::ProposalCreated(created) => {
            let Some(tenant) = &request.tenant else {
                return Err(StoreError::Invalid(
                    "proposals belong to a firm: publish proposal-created to a user, tenant or conversation, not to all".into(),
                ));
            };
            conn.prepare_cached(
                "INSERT INTO proposals (tenant, proposal_id, stream, status) VALUES (?1, ?2, ?3, 'pending')
                 ON CONFLICT (tenant, proposal_id) DO UPDATE SET stream = excluded.stream, status = 'pending', responded_by = NULL",
            )?
            .execute(params![tenant, created.proposal_id, stream])?;
        }
        NotificationData::ProposalStatusChanged(changed) => {
            if let Some(tenant) = &request.tenant {
                conn.prepare_cached(
                    "UPDATE proposals SET status = ?3 WHERE tenant = ?1 AND proposal_id = ?2",
                )?
                .execute(params![
                    tenant,
                    changed.proposal_id,
                    changed.status.as_str()
                ])?;
            }
        }
        _ => {}
    }
    Ok(())
}

/// Applies a client action at most once per (user, action id).
pub fn apply_action(
    conn: &Connection,
    key: &ActionKey,
    streams: &[StreamName],
    action: ActionCommand,
    fresh: &mut Vec<Arc<StoredNotification>>,
) -> Result<ActionOutcome, StoreError> {
    let known: Option<String> = conn
        .prepare_cached("SELECT result FROM client_actions WHERE user_id = ?1 AND action_id = ?2")?
        .query_row(params![key.user_id, key.action_id], |row| row.get(0))
        .optional()?;
    if let Some(stored) = known {
        let result = decode_result(&stored)?;
        return Ok(ActionOutcome {
            result,
            replayed: true,
            effect: None,
        });
    }
    let visible: HashSet<String> = streams.iter().map(ToString::to_string).collect();
    let (result, effect) = match action {
        ActionCommand::MarkRead(ids) => mark_read(conn, key, &visible, &ids)?,
        ActionCommand::MarkAllRead { kind, up_to: None } => {
            mark_all_read(conn, key, streams, kind)?
        }
        ActionCommand::MarkAllRead {
            kind,
            up_to: Some(up_to),
        } => mark_all_read_up_to(conn, key, &visible, kind, up_to)?,
        ActionCommand::RespondProposal {
            tenant,
            proposal_id,
            response,
        } => (
            respond_proposal(conn, key, &visible, &tenant, &proposal_id, response, fresh)?,
            None,
        ),
        ActionCommand::Shown(ids) => (
            super::audit::shown(conn, key, &visible, &ids, to_us(Utc::now()))?,
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
            super::deadlines::acknowledge(conn, &who, &visible, &ids)?
        }
    };
    conn.prepare_cached("INSERT INTO client_actions (user_id, action_id, result, created_us) VALUES (?1, ?2, ?3, ?4)")?
        .execute(params![key.user_id, key.action_id, encode_result(&result), to_us(Utc::now())])?;
    Ok(ActionOutcome {
        result,
        replayed: false,
        effect,
    })
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
fn mark_read(
    conn: &Connection,
    key: &ActionKey,
    visible: &HashSet<String>,
    ids: &[String],
) -> Result<(ActionResult, Option<ReadEffect>), StoreError> {
    let now = to_us(Utc::now());
    let mut read = Vec::new();
    let mut not_found = Vec::new();
    let mut find = conn.prepare_cached("SELECT stream FROM notifications WHERE id = ?1")?;
    let mut insert = conn.prepare_cached(
        "INSERT OR IGNORE INTO reads (user_id, notification_id, read_us) VALUES (?1, ?2, ?3)",
    )?;
    for id in ids {
        let stream: Option<String> = find.query_row(params![id], |row| row.get(0)).optional()?;
        match stream {
            Some(stream) if visible.contains(&stream) => {
                if insert.execute(params![key.user_id, id, now])? > 0 {
                    super::audit::read_one(conn, &key.user_id, key.session_id.as_deref(), id, now)?;
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
fn mark_all_read(
    conn: &Connection,
    key: &ActionKey,
    streams: &[StreamName],
    kind: Option<Kind>,
) -> Result<(ActionResult, Option<ReadEffect>), StoreError> {
    let before = Utc::now();
    let before_us = to_us(before);
    let mut statement = conn.prepare_cached(
        "INSERT OR IGNORE INTO reads (user_id, notification_id, read_us)
         SELECT ?1, id, ?2 FROM notifications
         WHERE stream = ?3 AND created_us <= ?2 AND (?4 IS NULL OR kind = ?4)",
    )?;
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
        )?;
        count += statement.execute(params![key.user_id, before_us, name, kind_name])?;
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
fn mark_all_read_up_to(
    conn: &Connection,
    key: &ActionKey,
    visible: &HashSet<String>,
    kind: Option<Kind>,
    up_to: BTreeMap<StreamName, Position>,
) -> Result<(ActionResult, Option<ReadEffect>), StoreError> {
    let now = to_us(Utc::now());
    let mut epoch_of = conn.prepare_cached("SELECT epoch FROM streams WHERE name = ?1")?;
    let mut mark = conn.prepare_cached(
        "INSERT OR IGNORE INTO reads (user_id, notification_id, read_us)
         SELECT ?1, id, ?2 FROM notifications
         WHERE stream = ?3 AND offset <= ?4 AND (?5 IS NULL OR kind = ?5)",
    )?;
    let mut newest = conn.prepare_cached(
        "SELECT max(created_us) FROM notifications
         WHERE stream = ?1 AND offset <= ?2 AND (?3 IS NULL OR kind = ?3)",
    )?;
    let (mut count, mut newest_us, mut applied, mut skipped) =
        (0, 0i64, BTreeMap::new(), Vec::new());
    for (stream, position) in up_to {
        let name = stream.to_string();
        let epoch: Option<String> = epoch_of
            .query_row(params![name], |row| row.get(0))
            .optional()?;
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
        )?;
        count += mark.execute(params![key.user_id, now, name, offset, kind_name])?;
        let created: Option<i64> =
            newest.query_row(params![name, offset, kind_name], |row| row.get(0))?;
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
fn respond_proposal(
    conn: &Connection,
    key: &ActionKey,
    visible: &HashSet<String>,
    tenant: &str,
    proposal_id: &str,
    response: ProposalResponse,
    fresh: &mut Vec<Arc<StoredNotification>>,
) -> Result<ActionResult, StoreError> {
    let row: Option<(String, String, Option<String>)> = conn
        .prepare_cached("SELECT stream, status, responded_by FROM proposals WHERE tenant = ?1 AND proposal_id = ?2")?
        .query_row(params![tenant, proposal_id], |row| Ok((row.get(0)?, row.get(1)?, row.get(2)?)))
        .optional()?;
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
    conn.prepare_cached("UPDATE proposals SET status = ?3, responded_by = ?4 WHERE tenant = ?1 AND proposal_id = ?2")?
        .execute(params![tenant, proposal_id, new_status.as_str(), key.user_id])?;
    let conversation_id = match stream.parse::<StreamName>() {
        // The firm's own id, as its software and the clients know it.
        Ok(StreamName::Conversation(key)) => Some(crate::access::conversation_id(&key).to_owned()),
        _ => None,
    };
    let stream_name = stream
        .parse::<StreamName>()
        .map_err(|err| StoreError::Internal(err.to_string()))?;
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
    let appended = append_one(
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
    )?;
    Ok(Ok(json!({
        "proposal_id": proposal_id,
        "status": new_status.as_str(),
        "notification_id": appended.id,
        "offset": appended.offset,
    })))
}

/// Deletes notifications (and idempotency keys, action records) created before the
/// cut-off and moves each touched stream's `first` offset.
pub fn prune(conn: &Connection, cutoff_us: i64) -> Result<u64, StoreError> {
    let deleted = conn
        .prepare_cached("DELETE FROM notifications WHERE created_us < ?1")?
        .execute(params![cutoff_us])?;
    conn.prepare_cached("DELETE FROM idempotency WHERE created_us < ?1")?
        .execute(params![cutoff_us])?;
    conn.prepare_cached("DELETE FROM client_actions WHERE created_us < ?1")?
        .execute(params![cutoff_us])?;
    // A retraction is later than its notification: older ones refer to pruned ones.
    conn.prepare_cached("DELETE FROM retractions WHERE at_us < ?1")?
        .execute(params![cutoff_us])?;
    if deleted > 0 {
        // A read is always later than its notification, so reads older than the
        // cut-off only refer to pruned notifications.
        conn.prepare_cached("DELETE FROM reads WHERE read_us < ?1")?
            .execute(params![cutoff_us])?;
        conn.prepare_cached(
            "UPDATE streams SET first = COALESCE(
                (SELECT MIN(offset) FROM notifications n WHERE n.stream = streams.name), head + 1)",
        )?
        .execute([])?;
    }
    Ok(deleted as u64)
}
