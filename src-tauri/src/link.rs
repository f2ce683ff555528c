//! Deep links: a notification's `url` (a dossier's page in the firm's software,
//! `secib://dossier/2026-0142`) opened with the system's handler — `xdg-open` on Linux
//! — from the panel's "Open" and from a toast's default action.
//!
//! Defence in depth: the gateway refuses dangerous links at publish, and the link is
//! checked here again, with the same rule ([`check_url`]), before anything is opened:
//! a database written by an older gateway, or a gateway that is not ours, must not
//! make a click run `javascript:` or open `file:///`. The URL always comes from the
//! local store, looked up by the notification's id: the webview names an id, never a
//! URL, so a compromised page cannot open anything the firm did not send.

use tauri::{AppHandle, Manager};
use tocsin_protocol::Notification;
use tocsin_protocol::notification::link::check_url;

use crate::state::AppState;

/// Why a notification's link was not opened.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// Not signed in: there is no local store to look the notification up in.
    #[error("not signed in")]
    NotSignedIn,
    /// The notification is not held here.
    #[error("no notification {0} is held here")]
    NotHeld(String),
    /// It has no link.
    #[error("the notification has no link")]
    NoLink,
    /// Its link fails [`check_url`].
    #[error("its link is refused: {0}")]
    Refused(String),
    /// The system's handler could not be started (none installed, none for the scheme).
    #[error("the system could not open the link: {0}")]
    Failed(std::io::Error),
    /// The store could not be read.
    #[error("the local store could not be read: {0}")]
    Store(String),
}

/// The link the panel and the toast may offer: the notification's `url` when it
/// passes [`check_url`].
pub fn openable(notification: &Notification) -> Option<&str> {
    let url = notification.url.as_deref()?;
    check_url(url).ok().map(|()| url)
}

/// Opens `notification`'s link with `opener` once it passed [`check_url`]; `opener`
/// is the system's handler in the app ([`system_open`]), a recorder in unit tests.
pub fn open_with(
    notification: &Notification,
    opener: impl FnOnce(&str) -> std::io::Result<()>,
) -> Result<(), LinkError> {
    let url = notification.url.as_deref().ok_or(LinkError::NoLink)?;
    check_url(url).map_err(LinkError::Refused)?;
    opener(url).map_err(LinkError::Failed)
}

/// The system's URL handler, detached: the browser or the firm's software outlives
/// the call. Blocks up to ~250 ms per launcher tried (`open` waits that long for a
/// launcher that fails at once, to try the next one): call from a blocking thread.
pub fn system_open(url: &str) -> std::io::Result<()> {
    open::that_detached(url)
}

/// Opens the link of the held notification `id` (the panel's "Open", a toast's
/// default action). Every refusal is logged here; callers only decide what to do
/// instead (the toast opens the panel).
pub async fn open_held(app: &AppHandle, id: &str) -> Result<(), LinkError> {
    let outcome = open_held_inner(app, id.to_owned()).await;
    match &outcome {
        Ok(()) => tracing::info!(id, "opened the notification's link"),
        Err(LinkError::NoLink) => tracing::debug!(id, "the notification has no link"),
        Err(err) => tracing::warn!(id, %err, "did not open the notification's link"),
    }
    outcome
}

async fn open_held_inner(app: &AppHandle, id: String) -> Result<(), LinkError> {
    let engine = app
        .state::<AppState>()
        .engine()
        .ok_or(LinkError::NotSignedIn)?;
    let held = engine
        .get(id.clone())
        .await
        .map_err(|err| LinkError::Store(err.to_string()))?
        .ok_or(LinkError::NotHeld(id))?;
    // The handler may take a while (up to ~250 ms per launcher tried).
    tokio::task::spawn_blocking(move || open_with(&held.notification, system_open))
        .await
        .map_err(|err| LinkError::Store(err.to_string()))?
}

#[cfg(test)]
mod tests {
    use super::*;
    use tocsin_client::store::testing;

    fn with_url(url: Option<&str>) -> Notification {
        let mut n = testing::email("n1", 0);
        n.url = url.map(str::to_owned);
        n
    }

    #[test]
    fn a_good_link_reaches_the_opener_exactly() {
        for url in [
            "https://ged.cabinet.fr/dossiers/2026-0142?onglet=pièces&x=1",
            "secib://dossier/2026-0142",
        ] {
            let n = with_url(Some(url));
            assert_eq!(openable(&n), Some(url));
            let mut opened = Vec::new();
            open_with(&n, |u| {
                opened.push(u.to_owned());
                Ok(())
            })
            .expect("opened");
            assert_eq!(opened, vec![url.to_owned()]);
        }
    }

    #[test]
    fn a_dangerous_link_never_reaches_the_opener() {
        for url in [
            "javascript:alert(1)",
            "file:///etc/passwd",
            "data:text/html,<script>alert(1)</script>",
            "/relative/path",
            "https://",
        ] {
            let n = with_url(Some(url));
            assert_eq!(openable(&n), None, "{url}");
            let outcome = open_with(&n, |u| panic!("opened {u}"));
            assert!(matches!(outcome, Err(LinkError::Refused(_))), "{url}");
        }
    }

    #[test]
    fn no_link_is_said_so_and_a_failing_handler_is_reported() {
        assert!(matches!(
            open_with(&with_url(None), |u| panic!("opened {u}")),
            Err(LinkError::NoLink)
        ));
        let failed = open_with(&with_url(Some("secib://dossier/1")), |_| {
            Err(std::io::Error::new(
                std::io::ErrorKind::NotFound,
                "no handler",
            ))
        });
        assert!(matches!(failed, Err(LinkError::Failed(_))));
    }
}
