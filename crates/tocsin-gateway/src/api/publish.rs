//! `POST /v1/publish` and `/v1/publish/batch`: validate, resolve the target within
//! the key's firm, store durably (2xx only after commit), answer with the position.

mod validate;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::Utc;
use tocsin_protocol::http::{
    BatchPublishRequest, BatchPublishResponse, MAX_BATCH, PublishRequest, PublishResponse,
};
use tocsin_protocol::{Notification, StreamName};

use super::extract::{ApiJson, Publisher};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::{AppendRequest, Appended, IdempotencyKey, User};
use validate::{Validated, validate};

/// `POST /v1/publish`.
#[utoipa::path(
    post,
    path = "/v1/publish",
    tag = "publish",
    request_body = PublishRequest,
    security(("api_key" = [])),
    responses((status = 201, description = "Stored and sent", body = PublishResponse),
        (status = 200, description = "A retry of an idempotency key: the first result, nothing new stored", body = PublishResponse),
        (status = 202, description = "Scheduled (`deliver_at` in the future)", body = PublishResponse))
)]
pub async fn publish(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiJson(request): ApiJson<PublishRequest>,
) -> Result<(StatusCode, Json<PublishResponse>), AppError> {
    check_rate(&state, &publisher, 1)?;
    let append = prepare(&state, &publisher, request).await?;
    let kind = append.notification.data.kind();
    let mut appended = state.store.append(vec![append]).await?;
    let appended = appended
        .pop()
        .ok_or_else(|| AppError::internal("append returned nothing"))?;
    count_published(kind, &appended);
    let status = match (appended.deliver_at, appended.duplicate) {
        (Some(_), _) => {
            state.schedule_wake.notify_one();
            StatusCode::ACCEPTED
        }
        (None, true) => StatusCode::OK,
        (None, false) => StatusCode::CREATED,
    };
    Ok((status, Json(response(appended))))
}

/// `POST /v1/publish/batch`: all stored in one transaction, or none.
#[utoipa::path(
    post,
    path = "/v1/publish/batch",
    tag = "publish",
    request_body = BatchPublishRequest,
    security(("api_key" = [])),
    responses((status = 201, description = "All stored, in one transaction", body = BatchPublishResponse),
        (status = 200, description = "Every item was a retry of its idempotency key", body = BatchPublishResponse))
)]
pub async fn publish_batch(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiJson(request): ApiJson<BatchPublishRequest>,
) -> Result<(StatusCode, Json<BatchPublishResponse>), AppError> {
    let count = request.notifications.len();
    if count == 0 {
        return Err(AppError::invalid(
            "the batch is empty; send 1 to 500 notifications",
        ));
    }
    if count > MAX_BATCH {
        return Err(AppError::too_large(format!(
            "a batch holds at most {MAX_BATCH} notifications, this one has {count}; split it"
        )));
    }
    check_rate(&state, &publisher, count as u32)?;
    let mut batch = Vec::with_capacity(count);
    for (index, request) in request.notifications.into_iter().enumerate() {
        let append = prepare(&state, &publisher, request)
            .await
            .map_err(|mut err| {
                err.body.message = format!(
                    "notification #{index}: {}; nothing was stored",
                    err.body.message
                );
                err
            })?;
        batch.push(append);
    }
    let kinds: Vec<_> = batch.iter().map(|a| a.notification.data.kind()).collect();
    let appended = state.store.append(batch).await?;
    for (kind, appended) in kinds.into_iter().zip(&appended) {
        count_published(kind, appended);
    }
    let results: Vec<PublishResponse> = appended.into_iter().map(response).collect();
    if results.iter().any(|result| result.deliver_at.is_some()) {
        state.schedule_wake.notify_one();
    }
    Ok((StatusCode::CREATED, Json(BatchPublishResponse { results })))
}

/// Counts a stored publish in `tocsin_publishes_total` (refusals are counted with
/// their error code by `AppError`).
fn count_published(kind: tocsin_protocol::notification::Kind, appended: &Appended) {
    let result = match (appended.deliver_at, appended.duplicate) {
        (Some(_), _) => "scheduled",
        (None, true) => "duplicate",
        (None, false) => "stored",
    };
    crate::metrics::published(kind.as_str(), result);
}

fn response(appended: Appended) -> PublishResponse {
    PublishResponse {
        id: appended.id,
        stream: appended.stream,
        epoch: appended.epoch,
        offset: appended.offset,
        duplicate: appended.duplicate,
        deliver_at: appended.deliver_at,
    }
}

fn check_rate(state: &AppState, publisher: &Publisher, count: u32) -> Result<(), AppError> {
    let Some(n) = std::num::NonZeroU32::new(count) else {
        return Ok(());
    };
    match state.publish_limiter.check_key_n(&publisher.key.key_id, n) {
        Ok(Ok(())) => Ok(()),
        Ok(Err(not_until)) => {
            let wait = not_until.wait_time_from(governor::clock::Clock::now(
                &governor::clock::DefaultClock::default(),
            ));
            tracing::warn!(key = %publisher.key.key_id, "publish rate limit reached");
            Err(AppError::rate_limited(
                wait.as_millis().max(1) as u64,
                "this API key publishes faster than http.publish_per_second allows; retry after the delay",
            ))
        }
        Err(_) => Err(AppError::too_large(
            "this batch is larger than the key's whole burst allowance (http.publish_burst)",
        )),
    }
}

/// Validates a request, then resolves its target into a stream of the key's firm. The
/// checks come first so that a malformed request costs no lookup.
async fn prepare(
    state: &AppState,
    publisher: &Publisher,
    request: PublishRequest,
) -> Result<AppendRequest, AppError> {
    let Validated { title } = validate(&request)?;
    let deliver_at = scheduled_time(state, request.deliver_at)?;
    let (stream, tenant) = resolve_target(state, publisher, &request).await?;
    let idempotency = request.idempotency_key.map(|key| IdempotencyKey {
        scope: publisher.key.key_id.clone(),
        key,
    });
    let notification = Notification {
        url: request.url,
        id: uuid::Uuid::now_v7().to_string(),
        urgency: request
            .urgency
            .unwrap_or_else(|| request.data.default_urgency()),
        data: request.data,
        created_at: Utc::now(),
        title,
        body: request.body,
    };
    Ok(AppendRequest {
        stream,
        tenant,
        notification,
        idempotency,
        deliver_at,
        actor: format!("key:{}", publisher.key.key_id),
    })
}

/// How far ahead a publish may be scheduled.
const MAX_SCHEDULE_AHEAD_DAYS: i64 = 366;

/// `deliver_at`, if in the future (a past one is delivered now) and at most a year
/// ahead.
fn scheduled_time(
    state: &AppState,
    deliver_at: Option<chrono::DateTime<Utc>>,
) -> Result<Option<chrono::DateTime<Utc>>, AppError> {
    let now = state.clock.now();
    match deliver_at {
        Some(at) if at > now + chrono::Duration::days(MAX_SCHEDULE_AHEAD_DAYS) => {
            Err(AppError::invalid(format!(
                "deliver_at {at} is more than {MAX_SCHEDULE_AHEAD_DAYS} days ahead; schedule it later, or declare a deadline (PUT /v1/deadlines/{{id}})"
            )))
        }
        Some(at) if at > now => Ok(Some(at)),
        _ => Ok(None),
    }
}

/// Turns `to` into a stream and its firm, refusing anything outside the key's firm.
async fn resolve_target(
    state: &AppState,
    publisher: &Publisher,
    request: &PublishRequest,
) -> Result<(StreamName, Option<String>), AppError> {
    let key_tenant = publisher.key.tenant.as_deref();
    let stream: StreamName =
        request
            .to
            .parse()
            .map_err(|err: tocsin_protocol::stream::InvalidStreamName| {
                AppError::invalid(format!("to: {err}"))
            })?;
    match &stream {
        StreamName::All => {
            if key_tenant.is_some() {
                return Err(AppError::forbidden(
                    "only a global key may publish to all; use tenant:<your slug>",
                ));
            }
            Ok((stream, None))
        }
        StreamName::Tenant(slug) => {
            if key_tenant.is_some_and(|own| own != slug) {
                return Err(AppError::forbidden(format!(
                    "this key publishes for another firm, not '{slug}'"
                )));
            }
            if state.store.tenant(slug).await?.is_none() {
                return Err(AppError::not_found(format!("no firm '{slug}'")));
            }
            let slug = slug.clone();
            Ok((stream, Some(slug)))
        }
        StreamName::Conversation(id) => {
            let firm = publishing_firm(publisher, request)?;
            // Looked up by the firm's key: another firm's conversation of the same id
            // is another conversation, and an absent one is simply unknown.
            let key = crate::access::conversation_key(&firm, id);
            let conversation = state.store.conversation(&key).await?.ok_or_else(|| {
                AppError::not_found(format!(
                    "no conversation '{id}' in your firm; create it with PUT /v1/conversations/{id}/members"
                ))
            })?;
            Ok((StreamName::Conversation(key), Some(conversation.tenant)))
        }
        StreamName::User(who) => {
            let firm = publishing_firm(publisher, request)?;
            let user = firm_user(state, &firm, who)
                .await?
                .ok_or_else(|| AppError::not_found(format!("no user '{who}' in your firm")))?;
            Ok((StreamName::User(user.id), Some(user.tenant)))
        }
    }
}

/// The one firm a `user:` or `conversation:` target is looked up in: the key's own,
/// or the one a global key names in `tenant`.
fn publishing_firm(publisher: &Publisher, request: &PublishRequest) -> Result<String, AppError> {
    match (publisher.key.tenant.as_deref(), request.tenant.as_deref()) {
        (Some(own), None) => Ok(own.to_owned()),
        (Some(own), Some(named)) if named == own => Ok(own.to_owned()),
        (Some(_), Some(named)) => Err(AppError::forbidden(format!(
            "this key publishes for another firm, not '{named}'"
        ))),
        (None, Some(named)) => Ok(named.to_owned()),
        (None, None) => Err(AppError::invalid(
            "a global key must name the target's firm: add \"tenant\": \"<slug>\" to the request",
        )),
    }
}

/// A firm's user by id or email, through the short-lived cache.
async fn firm_user(state: &AppState, firm: &str, who: &str) -> Result<Option<User>, AppError> {
    // Keyed by firm and target as written: the same text names different users (or
    // nobody) in different firms.
    let cache_key = format!("{firm}\u{0}{who}");
    if let Some(user) = state.lookups.users.get(&cache_key) {
        return Ok(Some(user));
    }
    let user = state.store.firm_user(firm, who).await?;
    // A user's id and firm never change: a cached row can only be stale in fields
    // the publish path does not read.
    if let Some(user) = &user {
        state.lookups.users.insert(&cache_key, user.clone());
    }
    Ok(user)
}
