//! `GET /v1/history` and `GET /v1/unread`: what a signed-in user may read.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use tocsin_protocol::StreamName;
use tocsin_protocol::http::{HistoryItem, HistoryResponse, MAX_HISTORY_LIMIT, UnreadResponse};

use super::extract::{ApiQuery, SignedIn};
use crate::access::{can_read, readable_streams};
use crate::error::AppError;
use crate::state::AppState;

/// Query of `GET /v1/history`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HistoryQuery {
    /// The stream.
    stream: String,
    /// Return items with offsets after this one (default 0: from the oldest retained).
    #[serde(default)]
    after: u64,
    /// At most this many (default 100, at most 500).
    limit: Option<u32>,
    /// Only what the user has not read (a client rebuilding a stream fetches these
    /// first); `next_after` pages through them the same way.
    #[serde(default)]
    unread: bool,
}

/// `GET /v1/history?stream=…&after=…&limit=…[&unread=true]`.
#[utoipa::path(
    get,
    path = "/v1/history",
    tag = "read",
    params(HistoryQuery),
    security(("user_token" = [])),
    responses((status = 200, description = "A page of a stream the user may read", body = HistoryResponse))
)]
pub async fn history(
    State(state): State<AppState>,
    signed_in: SignedIn,
    ApiQuery(query): ApiQuery<HistoryQuery>,
) -> Result<Json<HistoryResponse>, AppError> {
    let stream: StreamName =
        query
            .stream
            .parse()
            .map_err(|err: tocsin_protocol::stream::InvalidStreamName| {
                AppError::invalid(format!("stream: {err}"))
            })?;
    if !can_read(state.store.as_ref(), &signed_in.user, &stream).await? {
        return Err(AppError::forbidden(format!("you may not read {stream}")));
    }
    let limit = query.limit.unwrap_or(100).clamp(1, MAX_HISTORY_LIMIT);
    let position = state.store.stream_state(&stream).await?;
    let (after, head, user) = (query.after, position.head, &signed_in.user.id);
    let stored = if query.unread {
        state
            .store
            .read_unread_range(user, &stream, after, head, limit)
            .await?
    } else {
        state.store.read_range(&stream, after, head, limit).await?
    };
    // The page is paged by what was read, retracted notifications included (their
    // content is gone, so they are not returned): a page may hold fewer than `limit`.
    let last_read = stored.last().map(|n| n.offset);
    let full_page = stored.len() == limit as usize;
    let stored: Vec<_> = stored
        .into_iter()
        .filter(|n| n.retracted_at.is_none())
        .collect();
    let ids: Vec<String> = stored.iter().map(|n| n.id.clone()).collect();
    let flags = state.store.read_flags(user, &ids).await?;
    let mut notifications = Vec::with_capacity(stored.len());
    for (item, read) in stored.iter().zip(flags) {
        notifications.push(HistoryItem {
            offset: item.offset,
            read,
            notification: item.notification()?,
        });
    }
    let next_after = last_read.filter(|last| full_page && *last < position.head);
    Ok(Json(HistoryResponse {
        stream,
        epoch: position.epoch,
        first: position.first,
        head: position.head,
        notifications,
        next_after,
    }))
}

/// `GET /v1/unread`: unread counts per kind.
#[utoipa::path(
    get,
    path = "/v1/unread",
    tag = "read",
    security(("user_token" = [])),
    responses((status = 200, description = "The user's unread counts", body = UnreadResponse))
)]
pub async fn unread(
    State(state): State<AppState>,
    signed_in: SignedIn,
) -> Result<Json<UnreadResponse>, AppError> {
    let streams = readable_streams(state.store.as_ref(), &signed_in.user).await?;
    let counts = state
        .store
        .unread_counts(&signed_in.user.id, &streams)
        .await?;
    let total = counts.iter().map(|(_, n)| n).sum();
    Ok(Json(UnreadResponse {
        total,
        by_kind: counts.into_iter().collect(),
    }))
}
