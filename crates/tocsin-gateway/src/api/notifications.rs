//! `DELETE /v1/notifications/{id}`: the publishing firm retracts a misdirected
//! notification. The store replaces its content and records who retracted it
//! (`store/sqlite/retract.rs`); here the connections subscribed to its stream are told
//! at once, so each client removes it from its inbox and closes its OS notification.
//! Clients offline now learn it when they connect (replay and the list after
//! `caught_up`, `ws/delivery.rs`).

use axum::Json;
use axum::extract::State;
use tocsin_protocol::frames::Retraction;
use tocsin_protocol::http::RetractResponse;
use tocsin_protocol::{ServerFrame, StreamName};

use super::extract::{ApiPath, Publisher};
use crate::error::AppError;
use crate::state::AppState;
use crate::store::RetractRequest;

/// `DELETE /v1/notifications/{id}`: an admin key of the notification's firm, or the
/// key that published it. Repeating it answers the same (`already: true`).
#[utoipa::path(
    delete,
    path = "/v1/notifications/{id}",
    tag = "publish",
    params(("id" = String, Path, description = "The notification's id, as the publish answered it")),
    security(("api_key" = [])),
    responses((status = 200, description = "Retracted: its content is gone and clients remove it", body = RetractResponse))
)]
pub async fn retract(
    State(state): State<AppState>,
    publisher: Publisher,
    ApiPath(id): ApiPath<String>,
) -> Result<Json<RetractResponse>, AppError> {
    let request = RetractRequest {
        notification_id: id,
        tenant: publisher.key.tenant.clone(),
        // A global key acts for every firm, as it does for the admin routes.
        admin: publisher.key.admin || publisher.key.tenant.is_none(),
        actor: format!("key:{}", publisher.key.key_id),
    };
    let done = state.store.retract(request).await?;
    let result = match (&done.stream, done.already) {
        (_, true) => "already",
        (None, false) => "withdrawn",
        (Some(stream), false) => {
            announce(&state, stream, &done);
            "retracted"
        }
    };
    crate::metrics::retracted(result);
    tracing::info!(
        notification = %done.notification_id,
        key = %publisher.key.key_id,
        result,
        "notification retracted"
    );
    Ok(Json(RetractResponse {
        id: done.notification_id,
        stream: done.stream,
        retracted_at: done.at,
        already: done.already,
    }))
}

/// Tells every connection subscribed to the stream.
fn announce(state: &AppState, stream: &StreamName, done: &crate::store::Retracted) {
    let frame = crate::ws::encode_frame(&ServerFrame::Retracted {
        retractions: vec![Retraction {
            notification_id: done.notification_id.clone(),
            stream: stream.clone(),
            epoch: done.epoch.clone(),
            offset: done.offset,
            at: done.at,
        }],
    });
    state.hub.send_to_stream(stream, frame);
}
