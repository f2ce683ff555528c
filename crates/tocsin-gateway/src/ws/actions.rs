//! Client frames during the live phase: actions answered by `result`, typing and
//! presence relayed live, in-band token refresh.

use chrono::Utc;
use serde_json::json;
use tocsin_protocol::frames::{ClientFrame, MAX_ACTION_ID_LEN, ServerFrame};
use tocsin_protocol::notification::{Presence, TypingIndicator, UserStatus};
use tocsin_protocol::{CloseCode, ErrorBody, ErrorCode, NotificationData, Position, StreamName};

use super::session::{End, Session, instant_of};
use super::socket::encode;
use crate::access::{can_read, conversation_stream, resolve_user};
use crate::store::{ActionKey, ActionOutcome, ReadEffect, StoreError};

/// The most ids one `mark_read` may carry.
const MAX_MARK_READ: usize = 500;

type Answer = Result<serde_json::Value, ErrorBody>;

impl Session {
    /// Handles one client frame of the live phase.
    pub async fn handle_frame(&mut self, frame: ClientFrame) -> Result<(), End> {
        if let Some(id) = frame.action_id()
            && (id.is_empty() || id.len() > MAX_ACTION_ID_LEN)
        {
            return Err(End::violation(format!(
                "action ids must be 1-{MAX_ACTION_ID_LEN} characters"
            )));
        }
        // Membership first: an action is checked against the conversations the user
        // is a member of now, not when the wake-up was queued.
        self.apply_membership().await?;
        if !matches!(frame, ClientFrame::Hello { .. } | ClientFrame::Auth { .. })
            && let Some(refused) = self.check_rate()?
        {
            // A ping over the limit simply gets no pong; an action gets a refusal.
            let Some(id) = frame.action_id() else {
                return Ok(());
            };
            return self.send_result(id.to_owned(), Err(refused)).await;
        }
        let (id, answer) = match frame {
            ClientFrame::Auth { .. } => {
                return Err(End::violation(
                    "already authenticated; use refresh to renew the token",
                ));
            }
            ClientFrame::Hello { .. } => {
                return Err(End::violation("hello was already sent on this connection"));
            }
            ClientFrame::Ping {} => return self.send(&ServerFrame::Pong {}).await,
            ClientFrame::MarkRead {
                id,
                notification_ids,
            } => {
                let answer = self.mark_read(&id, notification_ids).await?;
                (id, answer)
            }
            ClientFrame::MarkAllRead { id, kind, up_to } => {
                let outcome = self
                    .state
                    .store
                    .mark_all_read(self.key(&id), &self.streams(), kind, up_to)
                    .await;
                let answer = self.apply(outcome)?;
                (id, answer)
            }
            ClientFrame::ProposalRespond {
                id,
                proposal_id,
                response,
            } => {
                let outcome = self
                    .state
                    .store
                    .respond_proposal(
                        self.key(&id),
                        &self.streams(),
                        &self.user.tenant.clone(),
                        &proposal_id,
                        response,
                    )
                    .await;
                let answer = self.apply(outcome)?;
                (id, answer)
            }
            ClientFrame::Acknowledge {
                id,
                notification_ids,
            } => {
                let answer = self.acknowledge(&id, notification_ids).await?;
                (id, answer)
            }
            ClientFrame::Shown {
                id,
                notification_ids,
            } => {
                let answer = self.record_shown(&id, notification_ids).await?;
                (id, answer)
            }
            ClientFrame::Join {
                id,
                conversation_id,
                position,
            } => {
                let answer = self.join(&conversation_id, position).await?;
                (id, answer)
            }
            ClientFrame::Leave {
                id,
                conversation_id,
            } => {
                let stream = conversation_stream(&self.user.tenant, &conversation_id);
                self.state.hub.unsubscribe(&self.handle, &stream);
                let was = self.cursors.remove(&stream).is_some();
                (id, Ok(json!({ "left": was })))
            }
            ClientFrame::Typing {
                id,
                conversation_id,
                active,
            } => {
                let answer = self.typing(conversation_id, active);
                (id, answer)
            }
            ClientFrame::Presence { id, status } => {
                self.presence(status);
                (id, Ok(json!({})))
            }
            ClientFrame::Refresh { id, access_token } => {
                let answer = self.refresh(&access_token).await;
                (id, answer)
            }
        };
        self.send_result(id, answer).await
    }

    /// An action this gateway does not know: refused without closing, so a newer
    /// client keeps its connection (and learns to stop sending it).
    pub async fn refuse_unknown(&mut self, id: String, kind: String) -> Result<(), End> {
        if let Some(limited) = self.check_rate()? {
            return self.send_result(id, Err(limited)).await;
        }
        let refused = ErrorBody::new(
            ErrorCode::Unsupported,
            format!(
                "this gateway does not know the action '{kind}'; it was not applied (upgrade the gateway)"
            ),
        );
        self.send_result(id, Err(refused)).await
    }

    fn key(&self, action_id: &str) -> ActionKey {
        ActionKey {
            user_id: self.user.id.clone(),
            session_id: self.handle.session_id.clone(),
            action_id: action_id.to_owned(),
        }
    }

    /// The durable streams this connection reads.
    fn streams(&self) -> Vec<StreamName> {
        self.cursors.keys().cloned().collect()
    }

    async fn send(&mut self, frame: &ServerFrame) -> Result<(), End> {
        self.writer
            .send(frame)
            .await
            .map_err(|stop| self.stop(stop))
    }

    async fn send_result(&mut self, id: String, answer: Answer) -> Result<(), End> {
        let frame = match answer {
            Ok(data) => ServerFrame::Result {
                id,
                ok: true,
                data: Some(data),
                error: None,
            },
            Err(error) => {
                crate::metrics::refused(error.code.as_str(), crate::metrics::Surface::WebSocket);
                ServerFrame::Result {
                    id,
                    ok: false,
                    data: None,
                    error: Some(error),
                }
            }
        };
        self.send(&frame).await
    }

    /// Governs client actions: over the rate, an action is refused with a
    /// `rate_limited` result; persistently over it (more refusals in a row than the
    /// burst) the connection is closed with a retry delay.
    fn check_rate(&mut self) -> Result<Option<ErrorBody>, End> {
        let Err(not_until) = self.limiter.check() else {
            self.strikes = 0;
            return Ok(None);
        };
        let wait = not_until.wait_time_from(governor::clock::Clock::now(
            &governor::clock::DefaultClock::default(),
        ));
        self.strikes += 1;
        let limits = &self.state.config.websocket;
        if self.strikes > limits.actions_burst {
            let retry_ms =
                1000 * u64::from(limits.actions_burst) / u64::from(limits.actions_per_second);
            tracing::warn!(conn = self.handle.id, user = %self.user.id, "client action flood; closing");
            return Err(End::Close(
                CloseCode::RateLimited,
                format!("retry_after_ms={}", retry_ms.max(1000)),
            ));
        }
        let mut refused = ErrorBody::new(
            ErrorCode::RateLimited,
            "too many actions; this one was not applied, send it again after retry_after_ms",
        );
        refused.retry_after_ms = Some(wait.as_millis().max(1) as u64);
        Ok(Some(refused))
    }

    async fn mark_read(&mut self, id: &str, ids: Vec<String>) -> Result<Answer, End> {
        if ids.is_empty() || ids.len() > MAX_MARK_READ {
            return Ok(Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("mark_read takes 1-{MAX_MARK_READ} notification ids"),
            )));
        }
        let outcome = self
            .state
            .store
            .mark_read(self.key(id), &self.streams(), &ids)
            .await;
        self.apply(outcome)
    }

    async fn record_shown(&mut self, id: &str, ids: Vec<String>) -> Result<Answer, End> {
        if ids.is_empty() || ids.len() > MAX_MARK_READ {
            return Ok(Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("shown takes 1-{MAX_MARK_READ} notification ids"),
            )));
        }
        let outcome = self
            .state
            .store
            .record_shown(self.key(id), &self.streams(), &ids)
            .await;
        self.apply(outcome)
    }

    async fn acknowledge(&mut self, id: &str, ids: Vec<String>) -> Result<Answer, End> {
        if ids.is_empty() || ids.len() > MAX_MARK_READ {
            return Ok(Err(ErrorBody::new(
                ErrorCode::InvalidRequest,
                format!("acknowledge takes 1-{MAX_MARK_READ} notification ids"),
            )));
        }
        let outcome = self
            .state
            .store
            .acknowledge(
                self.key(id),
                &self.streams(),
                &self.user.tenant.clone(),
                self.handle.session_id.as_deref(),
                &ids,
            )
            .await;
        self.apply(outcome)
    }

    /// Turns a store outcome into an answer, pushing read state to the user's devices.
    fn apply(&mut self, outcome: Result<ActionOutcome, StoreError>) -> Result<Answer, End> {
        let outcome = match outcome {
            Ok(outcome) => outcome,
            // Transient refusals keep their code, so the client's outbox retries them.
            Err(
                err @ (StoreError::DiskFull | StoreError::Unusable(_) | StoreError::Unreachable(_)),
            ) => {
                return Ok(Err(ErrorBody::new(ErrorCode::Unavailable, err.to_string())));
            }
            Err(err @ StoreError::Busy) => {
                return Ok(Err(ErrorBody::new(ErrorCode::StoreBusy, err.to_string())));
            }
            Err(err) => {
                tracing::error!(error = %err, "client action failed");
                return Ok(Err(ErrorBody::new(
                    ErrorCode::Internal,
                    "the gateway could not apply this action; retry later",
                )));
            }
        };
        if let Some(effect) = outcome.effect {
            let frame = match effect {
                ReadEffect::Acknowledged {
                    acknowledgements,
                    users,
                    streams,
                } => {
                    // Everyone involved sees it, on every device, and every reader of
                    // the alerts (applied idempotently by those told twice).
                    let frame = encode(&ServerFrame::Acknowledged { acknowledgements });
                    for user in users {
                        self.state.hub.send_to_user(&user, frame.clone());
                    }
                    for stream in streams {
                        self.state
                            .hub
                            .send_ephemeral(&stream, frame.clone(), self.handle.id);
                    }
                    self.state.webhook_wake.notify_one();
                    return Ok(outcome.result);
                }
                ReadEffect::Read(notification_ids) => ServerFrame::Read { notification_ids },
                ReadEffect::ReadAll {
                    kind,
                    before,
                    up_to,
                } => ServerFrame::ReadAll {
                    kind,
                    before,
                    up_to,
                },
            };
            self.state.hub.send_to_user(&self.user.id, encode(&frame));
        }
        Ok(outcome.result)
    }

    async fn join(
        &mut self,
        conversation_id: &str,
        position: Option<Position>,
    ) -> Result<Answer, End> {
        let stream = conversation_stream(&self.user.tenant, conversation_id);
        let allowed = can_read(self.state.store.as_ref(), &self.user, &stream).await;
        match allowed {
            Ok(true) => {}
            Ok(false) => {
                return Ok(Err(ErrorBody::new(
                    ErrorCode::Forbidden,
                    format!("you are not a member of conversation '{conversation_id}'"),
                )));
            }
            Err(err) => return Ok(Err(err.body)),
        }
        let (status, replay_from) = self.subscribe(&stream, position.as_ref()).await?;
        if let Some(after) = replay_from {
            self.send_range(&stream, after, status.head, true).await?;
        }
        Ok(serde_json::to_value(&status)
            .map_err(|err| ErrorBody::new(ErrorCode::Internal, err.to_string())))
    }

    fn typing(&mut self, conversation_id: String, active: bool) -> Answer {
        let stream = conversation_stream(&self.user.tenant, &conversation_id);
        if !self.cursors.contains_key(&stream) {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                "join the conversation before sending typing",
            ));
        }
        let frame = ServerFrame::Ephemeral {
            stream: stream.clone(),
            at: Utc::now(),
            data: NotificationData::TypingIndicator(TypingIndicator {
                conversation_id,
                user_id: self.user.id.clone(),
                active,
            }),
        };
        self.state
            .hub
            .send_ephemeral(&stream, encode(&frame), self.handle.id);
        Ok(json!({}))
    }

    fn presence(&mut self, status: Presence) {
        let stream = StreamName::Tenant(self.user.tenant.clone());
        let frame = ServerFrame::Ephemeral {
            stream: stream.clone(),
            at: Utc::now(),
            data: NotificationData::UserStatus(UserStatus {
                user_id: self.user.id.clone(),
                status,
            }),
        };
        self.state
            .hub
            .send_ephemeral(&stream, encode(&frame), self.handle.id);
    }

    async fn refresh(&mut self, token: &str) -> Answer {
        let identity = self
            .state
            .auth
            .verify(token)
            .await
            .map_err(|err| ErrorBody::new(ErrorCode::Unauthorized, err.to_string()))?;
        if identity.user_id != self.user.id || identity.tenant != self.user.tenant {
            return Err(ErrorBody::new(
                ErrorCode::Forbidden,
                "the new token is for another user; reconnect instead",
            ));
        }
        // Same checks as at connect: the device session is still signed in, the
        // account still enabled.
        resolve_user(self.state.store.as_ref(), &identity)
            .await
            .map_err(|err| err.body)?;
        self.token_expiry = instant_of(identity.expires_at);
        Ok(json!({ "expires_at": identity.expires_at }))
    }
}
