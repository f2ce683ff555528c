//! The access token a session connects with, renewed with the refresh token from the
//! secret store before it expires (over HTTP, then handed to the open socket).

use std::time::Duration;

use tokio::time::Instant;

use super::Engine;
use crate::api::ApiError;
use crate::events::EngineEvent;
use crate::gateway::Gateway;

/// An access token is renewed when less than this is left of it.
pub(crate) const RENEW_BEFORE: Duration = Duration::from_secs(60);

/// What the engine knows of its tokens.
#[derive(Debug, Default)]
pub(crate) struct Tokens {
    /// The current access token and when it expires.
    access: Option<(String, Instant)>,
    /// 4100 closes since the last good session: one refresh is tried, not more.
    invalid_token_strikes: u32,
}

impl Tokens {
    /// The access token, if one is held.
    pub(crate) fn access(&self) -> Option<&str> {
        self.access.as_ref().map(|(token, _)| token.as_str())
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
        if self
            .tokens
            .renew_at()
            .is_some_and(|renew| renew > Instant::now())
        {
            return Ok(());
        }
        self.refresh_access().await
    }

    /// Trades the stored refresh token for a new pair, storing the rotated token first.
    pub(crate) async fn refresh_access(&mut self) -> Result<(), TokenFailure> {
        let stored = self
            .secrets
            .get(&self.config.account)
            .map_err(|err| TokenFailure::SignedOut(format!("the secret store failed: {err}")))?;
        let Some(refresh_token) = stored else {
            return Err(TokenFailure::SignedOut(
                "not signed in on this device".into(),
            ));
        };
        match self.gateway.refresh(&refresh_token).await {
            Ok(tokens) => {
                if let Err(err) = self
                    .secrets
                    .set(&self.config.account, &tokens.refresh_token)
                {
                    self.emit(EngineEvent::Warning(format!(
                        "could not save the renewed sign-in ({err}); you may have to sign in again after a restart"
                    )))
                    .await;
                }
                let expires = Instant::now() + Duration::from_secs(tokens.expires_in);
                self.tokens.access = Some((tokens.access_token, expires));
                Ok(())
            }
            Err(ApiError::Unauthorized(message)) => Err(TokenFailure::SignedOut(message)),
            Err(err) => Err(TokenFailure::Transient(err.to_string())),
        }
    }
}
