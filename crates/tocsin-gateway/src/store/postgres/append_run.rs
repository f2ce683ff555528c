//! A run of plain publishes in one round trip: the writer hands consecutive append
//! commands here, which sends them to the `tocsin_append` function (migration 0003)
//! as arrays, one element per notification.
//!
//! Statement by statement (`ops.rs`), one publish costs the writer seven round trips
//! (savepoint, idempotency lookup, head advance, insert, idempotency insert, audit,
//! release); the batch's time grew with them and capped durable publishes at a
//! fraction of SQLite's rate. The function runs the same statements on the server,
//! each request in a subtransaction of its own, and answers per notification.
//!
//! "Plain" leaves out what has more to do than those statements: scheduled publishes
//! (stored in the schedule, not the log) and proposals (their bookkeeping row). Those
//! keep the statement-by-statement path, so both paths stay tested by the store suite.

use std::sync::Arc;

use chrono::Utc;
use sqlx::PgConnection;
use tocsin_protocol::{NotificationData, StreamName};

use super::writer::{Command, Pending};
use crate::store::time::{new_epoch, to_us};
use crate::store::{AppendRequest, Appended, StoreError, StoredNotification};

/// Whether an append command can go through [`apply`]: every request is stored now
/// (no delivery time still to come) and none is a proposal. (A time that is future
/// here may be past by the time [`apply`] runs, never the other way round.)
pub fn is_plain(command: &Command) -> bool {
    let Command::Append { batch, .. } = command else {
        return false;
    };
    let now = Utc::now();
    batch.iter().all(|request| {
        request.deliver_at.is_none_or(|at| at <= now)
            && !matches!(
                request.notification.data,
                NotificationData::ProposalCreated(_) | NotificationData::ProposalStatusChanged(_)
            )
    })
}

/// One notification as `tocsin_append` takes it.
struct Encoded {
    stream: String,
    payload: String,
    idem_scope: Option<String>,
    idem_key: Option<String>,
    user_id: Option<String>,
    detail: Option<String>,
}

impl Encoded {
    /// Encodes one request; fails when its notification cannot be serialised.
    fn new(request: &AppendRequest) -> Result<Encoded, StoreError> {
        let notification = &request.notification;
        let payload = serde_json::to_string(notification)
            .map_err(|err| StoreError::Invalid(format!("notification cannot be encoded: {err}")))?;
        let stream = request.stream.to_string();
        // The audit detail, as audit::published writes it.
        let detail = request.tenant.as_ref().map(|_| {
            serde_json::json!({
                "kind": notification.data.kind_name(),
                "title": notification.title,
                "urgency": notification.urgency,
                "stream": stream,
            })
            .to_string()
        });
        Ok(Encoded {
            payload,
            idem_scope: request.idempotency.as_ref().map(|i| i.scope.clone()),
            idem_key: request.idempotency.as_ref().map(|i| i.key.clone()),
            user_id: match &request.stream {
                StreamName::User(id) => Some(id.clone()),
                _ => None,
            },
            detail,
            stream,
        })
    }
}

/// One row of `tocsin_append`'s answer: a stored (or known) notification, or the
/// failure of a whole command.
#[derive(sqlx::FromRow)]
struct Answer {
    /// The 1-based index of the notification (of a failed command's first one).
    o_index: i32,
    o_sqlstate: Option<String>,
    o_message: Option<String>,
    o_id: Option<String>,
    o_stream: Option<String>,
    o_epoch: Option<String>,
    o_offset: Option<i64>,
    o_duplicate: Option<bool>,
}

/// A command of the run and what became of it before the call.
struct Slot {
    reply: tokio::sync::oneshot::Sender<Result<Vec<Appended>, StoreError>>,
    requests: Vec<AppendRequest>,
    /// Its notifications, or why they could not be encoded (then not sent).
    encoded: Result<Vec<Encoded>, StoreError>,
    /// The 0-based index of its first notification in the call's arrays.
    first: usize,
}

/// Applies a run of plain append commands in one call, pushing every command's
/// pending answer (in order) and the new notifications to fan out. An `Err` is the
/// call's own failure (the connection), which fails the whole transaction.
pub async fn apply(
    conn: &mut PgConnection,
    run: Vec<Command>,
    pending: &mut Vec<Pending>,
    delivered: &mut Vec<Arc<StoredNotification>>,
) -> Result<(), StoreError> {
    let mut slots = Vec::with_capacity(run.len());
    let mut sent = 0;
    for command in run {
        let Command::Append { batch, reply } = command else {
            unreachable!("the writer hands only appends here (is_plain)");
        };
        let encoded: Result<Vec<Encoded>, StoreError> = batch.iter().map(Encoded::new).collect();
        let first = sent;
        sent += encoded.as_ref().map_or(0, Vec::len);
        slots.push(Slot {
            reply,
            requests: batch,
            encoded,
            first,
        });
    }
    let answers = match call(conn, &slots).await {
        Ok(answers) => answers,
        Err(err) => {
            for slot in slots {
                pending.push(Pending::Append(slot.reply, Err(err.clone())));
            }
            return Err(err);
        }
    };
    let mut answers = answers.into_iter().peekable();
    for slot in slots {
        let result = match &slot.encoded {
            Err(err) => Err(err.clone()),
            Ok(encoded) => {
                let range = slot.first + 1..=slot.first + encoded.len();
                let mine: Vec<Answer> = std::iter::from_fn(|| {
                    answers
                        .next_if(|a| usize::try_from(a.o_index).is_ok_and(|i| range.contains(&i)))
                })
                .collect();
                settle(&slot.requests, encoded, mine, delivered)
            }
        };
        pending.push(Pending::Append(slot.reply, result));
    }
    Ok(())
}

/// Sends the run's notifications to `tocsin_append`.
async fn call(conn: &mut PgConnection, slots: &[Slot]) -> Result<Vec<Answer>, StoreError> {
    let mut command = Vec::new();
    let (mut stream, mut id, mut kind, mut created_us, mut payload) =
        (Vec::new(), Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let (mut idem_scope, mut idem_key, mut tenant) = (Vec::new(), Vec::new(), Vec::new());
    let (mut deadline_id, mut dossier, mut user_id) = (Vec::new(), Vec::new(), Vec::new());
    let (mut actor, mut detail, mut new_epochs) = (Vec::new(), Vec::new(), Vec::new());
    for (number, slot) in slots.iter().enumerate() {
        let Ok(encoded) = &slot.encoded else { continue };
        for (request, encoded) in slot.requests.iter().zip(encoded) {
            let notification = &request.notification;
            command.push(i32::try_from(number).unwrap_or(i32::MAX));
            stream.push(encoded.stream.as_str());
            id.push(notification.id.as_str());
            kind.push(notification.data.kind_name());
            created_us.push(to_us(notification.created_at));
            payload.push(encoded.payload.as_str());
            idem_scope.push(encoded.idem_scope.as_deref());
            idem_key.push(encoded.idem_key.as_deref());
            tenant.push(request.tenant.as_deref());
            deadline_id.push(notification.data.deadline_id());
            dossier.push(notification.data.dossier_number());
            user_id.push(encoded.user_id.as_deref());
            actor.push(request.actor.as_str());
            detail.push(encoded.detail.as_deref());
            new_epochs.push(new_epoch());
        }
    }
    if command.is_empty() {
        return Ok(Vec::new());
    }
    let answers = sqlx::query_as::<_, Answer>(
        "SELECT * FROM tocsin_append($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
    )
    .bind(command)
    .bind(stream)
    .bind(id)
    .bind(kind)
    .bind(created_us)
    .bind(payload)
    .bind(idem_scope)
    .bind(idem_key)
    .bind(tenant)
    .bind(deadline_id)
    .bind(dossier)
    .bind(user_id)
    .bind(actor)
    .bind(detail)
    .bind(new_epochs)
    .fetch_all(&mut *conn)
    .await?;
    Ok(answers)
}

/// One command's answer from its rows: its failure, or one `Appended` per request
/// (new ones also queued for fan-out, in order).
fn settle(
    requests: &[AppendRequest],
    encoded: &[Encoded],
    rows: Vec<Answer>,
    delivered: &mut Vec<Arc<StoredNotification>>,
) -> Result<Vec<Appended>, StoreError> {
    if let Some(failed) = rows.iter().find(|row| row.o_sqlstate.is_some()) {
        return Err(super::error::caught(
            failed.o_sqlstate.as_deref().unwrap_or_default(),
            failed.o_message.as_deref().unwrap_or_default(),
        ));
    }
    if rows.len() != requests.len() {
        return Err(StoreError::Internal(format!(
            "tocsin_append answered {} rows for {} notifications",
            rows.len(),
            requests.len()
        )));
    }
    let mut fresh = Vec::new();
    let mut appended = Vec::with_capacity(requests.len());
    for ((request, encoded), row) in requests.iter().zip(encoded).zip(rows) {
        let missing = || StoreError::Internal("tocsin_append left a column empty".into());
        let (id, epoch) = (
            row.o_id.ok_or_else(missing)?,
            row.o_epoch.ok_or_else(missing)?,
        );
        let offset = u64::try_from(row.o_offset.ok_or_else(missing)?).map_err(|_| missing())?;
        if row.o_duplicate.ok_or_else(missing)? {
            let stream = super::ops::parse_stream(&row.o_stream.ok_or_else(missing)?)?;
            appended.push(Appended {
                id,
                stream,
                epoch,
                offset,
                duplicate: true,
                deliver_at: None,
            });
            continue;
        }
        let epoch: Arc<str> = Arc::from(epoch);
        fresh.push(Arc::new(StoredNotification {
            stream: request.stream.clone(),
            epoch: epoch.clone(),
            offset,
            id: id.clone(),
            kind: request.notification.kind(),
            payload: Arc::from(encoded.payload.as_str()),
            retracted_at: None,
        }));
        appended.push(Appended {
            id,
            stream: request.stream.clone(),
            epoch: epoch.to_string(),
            offset,
            duplicate: false,
            deliver_at: None,
        });
    }
    delivered.extend(fresh);
    Ok(appended)
}
