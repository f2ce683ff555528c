//! The access token a session connects with, renewed with the refresh token before it
//! expires (over HTTP, then handed to the open socket).
//!
//! The refresh token is single-use: each renewal rotates it, and presenting an old
//! one outside the gateway's short grace window revokes the device. So the newest
//! refresh token is kept in memory as soon as it arrives and is the one presented
//! from then on, even when the secret store failed to save it (a locked keyring, a
//! full disk); saving is retried at every later renewal and session, and the user is
//! warned once that a restart would need a new sign-in until it succeeds. A renewal
//! whose answer was lost (a timeout) is retried with the same token: the gateway's
//! grace window returns the same successor.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;

use super::Engine;
use crate::api::ApiError;
use crate::events::EngineEvent;
use crate::gateway::Gateway;

/// An access token is renewed when less than this is left of it.
pub(crate) const RENEW_BEFORE: Duration = Duration::from_secs(60);
/// A renewal that failed for a transient reason is tried again this much later, on
/// the open socket, while the access token is still good.
pub(crate) const RENEW_RETRY: Duration = Duration::from_secs(5);

/// The engine's access token as [`super::EngineHandle::access_token`] reads it, for
/// the app's own HTTP calls (the calendar feed): a copy, so a caller never holds the
/// engine up, and never a refresh of its own (the refresh token is single-use).
pub(crate) type SharedAccess = Arc<Mutex<Option<(String, Instant)>>>;

/// What the engine knows of its tokens.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    /// The current access token and when it expires.
    access: Option<(String, Instant)>,
    /// The same, published for the app's handle.
    published: SharedAccess,
    /// 4100 closes since the last good session: one refresh is tried, not more.
    invalid_token_strikes: u32,
    /// The newest refresh token, once one was received (the secret store's copy may
    /// be older when saving it failed).
    refresh: Option<String>,
    /// True while `refresh` is not saved in the secret store.
    unsaved: bool,
    /// The user was told that saving failed.
    warned_unsaved: bool,
}

impl Tokens {
    /// The access token, if one is held.
    pub(crate) fn access(&self) -> Option<&str> {
        self.access.as_ref().map(|(token, _)| token.as_str())
    }

    /// When the held access token expires.
    pub(crate) fn expires_at(&self) -> Option<Instant> {
        self.access.as_ref().map(|(_, expires)| *expires)
    }

    /// When the held access token must be renewed.
    pub(crate) fn renew_at(&self) -> Option<Instant> {
        self.access
            .as_ref()
            .map(|(_, expires)| *expires - RENEW_BEFORE)
    }

    /// Drops the access token: the next connection renews it first.
    pub(crate) fn forget_access(&mut self) {
        self.access = None;
        self.publish();
    }

    /// Where the access token is published for the app's handle.
    pub(crate) fn shared(&self) -> SharedAccess {
        self.published.clone()
    }

    /// Copies the access token (or its absence) to [`Tokens::shared`].
    fn publish(&self) {
        let mut published = self
            .published
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        published.clone_from(&self.access);
    }

    /// A session went live: a later 4100 may try a refresh again.
    pub(crate) fn session_good(&mut self) {
        self.invalid_token_strikes = 0;
    }

    /// Counts a 4100 close; true when it is the first since the last good session.
    pub(crate) fn first_invalid_token(&mut self) -> bool {
        self.invalid_token_strikes += 1;
        self.invalid_token_strikes == 1
    }
}

/// Why there is no access token.
pub(crate) enum TokenFailure {
    /// The refresh was refused: sign in again.
    SignedOut(String),
    /// The gateway could not be reached or failed: retry later.
    Transient(String),
}

impl<G: Gateway> Engine<G> {
    /// Makes sure an access token valid for at least [`RENEW_BEFORE`] is held.
    pub(crate) async fn ensure_access(&mut self) -> Result<(), TokenFailure> {
        self.save_refresh_token().await;
        if self
            .tokens
            .renew_at()
            .is_some_and(|renew| renew > Instant::now())
        {
            return Ok(());
        }
        self.refresh_access().await
    }

    /// Trades the newest refresh token for a new pair; the rotated token is held in
    /// memory at once and saved to the secret store.
    pub(crate) async fn refresh_access(&mut self) -> Result<(), TokenFailure> {
        let refresh_token = self.current_refresh_token()?;
        match self.gateway.refresh(&refresh_token).await {
            Ok(tokens) => {
                self.tokens.refresh = Some(tokens.refresh_token);
                self.tokens.unsaved = true;
                self.save_refresh_token().await;
                let expires = Instant::now() + Duration::from_secs(tokens.expires_in);
                self.tokens.access = Some((tokens.access_token, expires));
                self.tokens.publish();
                Ok(())
            }
            Err(ApiError::Unauthorized(message)) => Err(TokenFailure::SignedOut(message)),
            Err(err) => Err(TokenFailure::Transient(err.to_string())),
        }
    }

    /// The refresh token to present: the one held in memory, else the saved one.
    fn current_refresh_token(&self) -> Result<String, TokenFailure> {
        if let Some(held) = &self.tokens.refresh {
            return Ok(held.clone());
        }
        let stored = self
            .secrets
            .get(&self.config.account)
            .map_err(|err| TokenFailure::SignedOut(format!("the secret store failed: {err}")))?;
        stored.ok_or_else(|| TokenFailure::SignedOut("not signed in on this device".into()))
    }

    /// Saves the held refresh token if it is not saved yet. The first failure is
    /// told to the user; the next calls retry quietly.
    pub(crate) async fn save_refresh_token(&mut self) {
        let (Some(token), true) = (&self.tokens.refresh, self.tokens.unsaved) else {
            return;
        };
        match self.secrets.set(&self.config.account, token) {
            Ok(()) => {
                if self.tokens.warned_unsaved {
                    tracing::info!("the renewed sign-in is saved again");
                }
                self.tokens.unsaved = false;
                self.tokens.warned_unsaved = false;
            }
            Err(err) if !self.tokens.warned_unsaved => {
                self.tokens.warned_unsaved = true;
                tracing::warn!(%err, "cannot save the renewed refresh token; keeping it in memory");
                self.emit(EngineEvent::Warning(format!(
                    "could not save the renewed sign-in ({err}); it is kept in memory and saving is retried, but quitting now would need a new sign-in"
                )))
                .await;
            }
            Err(err) => tracing::debug!(%err, "the refresh token is still not saved"),
        }
    }
}
