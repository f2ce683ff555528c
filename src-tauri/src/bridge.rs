//! The bridge from the engine to the user: renders each [`EngineEvent`] (state,
//! tray, panel events, OS notifications shown, and closed once read elsewhere or
//! once their deadline is acknowledged) and turns notification clicks back into
//! engine commands (mark read, acknowledge), the notification's link opened, or
//! panel navigation. Events that arrive together (a replay of thousands)
//! are handled as one batch: the last counts, one snapshot, one tray update.
//!
//! Everything it knows comes through the engine's door: its events, and its
//! handle's queries (a notification by id, the counts before the first event).

use std::collections::{BTreeSet, HashSet};

use tauri::{AppHandle, Emitter, Manager};
use tocsin_client::engine::{Command, EngineHandle};
use tocsin_client::events::{ConnectionState, EngineEvent};
use tocsin_client::policy::Toast;
use tocsin_client::store::{Counts, Tab};
use tocsin_protocol::frames::ClientFrame;
use tokio::sync::mpsc;

use crate::error::AppError;
use crate::ipc::{self, EVENT_ACTION_RESULT, EVENT_NEW_ITEMS, Item, Navigate, NewItems, View};
use crate::notifier::{Notifier, ToastClick};
use crate::panel::{self, PANEL};
use crate::state::AppState;
use crate::toast::{self, ACTION_ACKNOWLEDGE, ACTION_DEFAULT, ACTION_MARK_READ, ToastContent};
use crate::{link, view};

/// At most this many events are handled before the view is refreshed once.
const BATCH: usize = 512;

/// What one batch of events changed.
#[derive(Default)]
struct Batch {
    /// Tabs whose lists changed.
    tabs: BTreeSet<Tab>,
    /// Live notifications, for the panel's live region.
    new_items: Vec<Item>,
    /// OS notifications to show.
    toasts: Vec<ToastContent>,
    /// Notifications that became read (or were retracted): their toasts are closed.
    read: Vec<String>,
    /// Deadlines that became acknowledged: their alerts' toasts are closed.
    acknowledged: Vec<String>,
    /// The engine's last counts in the batch (each supersedes the one before).
    counts: Option<Counts>,
}

/// One running engine, as the bridge sees it.
struct Engine {
    /// Its handle, for queries.
    handle: EngineHandle,
    /// Its session's [`crate::state::Session::id`].
    session: u64,
}

/// Renders the events of session `session`'s engine until it stops.
pub async fn run(
    app: AppHandle,
    engine: EngineHandle,
    session: u64,
    mut events: mpsc::Receiver<EngineEvent>,
) {
    let engine = Engine {
        handle: engine,
        session,
    };
    // The counts before the first `Counts` event (a resumed inbox has unread items
    // before anything happens). Read here, before any event is handled: an event
    // handled first and then overwritten by this older answer would stay wrong.
    match engine.handle.counts().await {
        Ok(counts) => view::set_counts(&app, session, &counts),
        Err(err) => tracing::warn!(%err, "cannot read the unread counts"),
    }
    while let Some(first) = events.recv().await {
        let mut batch = Batch::default();
        handle(&app, &engine, first, &mut batch).await;
        for _ in 1..BATCH {
            match events.try_recv() {
                Ok(event) => handle(&app, &engine, event, &mut batch).await,
                Err(_) => break,
            }
        }
        flush(&app, &engine, batch).await;
    }
    tracing::debug!("engine events ended");
}

/// Applies one event to the state and the batch.
async fn handle(app: &AppHandle, engine: &Engine, event: EngineEvent, batch: &mut Batch) {
    let state = app.state::<AppState>();
    let locale = state.locale();
    match event {
        EngineEvent::State(connection) => {
            let refused = matches!(connection, ConnectionState::SignedOut { .. });
            state.lock().set_connection(connection);
            if refused {
                crate::session::forget_refused(app);
            }
        }
        EngineEvent::Notification {
            notification,
            replay,
            toast,
            ..
        } => {
            if let Some(tab) = Tab::of(notification.kind()) {
                batch.tabs.insert(tab);
            }
            if !replay && let Some(item) = Item::from_notification(&notification, false, None) {
                batch.new_items.push(item);
            }
            if let Some(Toast::Show { .. }) = toast {
                batch
                    .toasts
                    .push(toast::for_notification(&notification, locale));
            }
        }
        EngineEvent::CatchUp { toasts, .. } => {
            batch.tabs.extend(Tab::ALL);
            for toast in toasts {
                match toast {
                    Toast::Show {
                        notification_id, ..
                    } => {
                        if let Some(n) = load(engine, notification_id).await {
                            batch.toasts.push(toast::for_notification(&n, locale));
                        }
                    }
                    Toast::Summary { count, by_kind } => {
                        batch
                            .toasts
                            .push(toast::for_summary(count, &by_kind, locale));
                    }
                    Toast::Silent => {}
                }
            }
        }
        EngineEvent::Counts(counts) => {
            batch.counts = Some(counts);
            batch.tabs.extend(Tab::ALL);
        }
        EngineEvent::ActionResult { action, error, .. } => {
            if let Some(error) = &error {
                tracing::warn!(code = ?error.code, message = %error.message, "the gateway refused an action");
            }
            let result = match to_tell(action.as_deref(), error.is_some()) {
                Told::Nothing => None,
                Told::Proposal(proposal_id) => {
                    batch.tabs.insert(Tab::Proposals);
                    Some((ipc::ActionKind::Proposal, Some(proposal_id), Vec::new()))
                }
                Told::RefusedAcknowledgement(alert_ids) => {
                    // Undone by the engine already: the rows are redrawn, and the
                    // panel says why next to them.
                    batch.tabs.insert(Tab::Deadlines);
                    let deadline_ids = deadlines_of_alerts(engine, alert_ids).await;
                    Some((ipc::ActionKind::Acknowledge, None, deadline_ids))
                }
            };
            if let Some((kind, proposal_id, deadline_ids)) = result {
                let result = ipc::ActionResult {
                    action: kind,
                    ok: error.is_none(),
                    error: error.map(|e| AppError::new("refused", e.message)),
                    proposal_id,
                    deadline_ids,
                };
                if panel::is_open(app)
                    && let Err(err) = app.emit_to(PANEL, EVENT_ACTION_RESULT, result)
                {
                    tracing::debug!(%err, "panel did not take the action result");
                }
            }
        }
        // Progress: the notifications it fetched are stored, not announced one by one;
        // the engine sends its counts after each page, so the badge follows. The
        // progress itself is not shown in the panel yet: the log says how far it got.
        EngineEvent::Rebuilding {
            stream,
            unread_only,
            fetched,
            retained,
        } => {
            tracing::debug!(%stream, unread_only, fetched, retained, "rebuilding from history");
        }
        EngineEvent::Read(ids) => {
            batch.read.extend(ids);
            batch.tabs.extend(Tab::ALL);
        }
        // Retracted by the firm: gone from the lists, and its toast is closed (and not
        // shown, if it came in this batch) exactly as for a notification read.
        EngineEvent::Retracted(ids) => {
            batch.new_items.retain(|item| !ids.contains(&item.id));
            batch.toasts.retain(|toast| {
                toast
                    .notification_id
                    .as_ref()
                    .is_none_or(|id| !ids.contains(id))
            });
            batch.read.extend(ids);
            batch.tabs.extend(Tab::ALL);
        }
        EngineEvent::Acknowledged { deadline_ids } => {
            batch.acknowledged.extend(deadline_ids);
            batch.tabs.insert(Tab::Deadlines);
        }
        EngineEvent::Warning(warning) => tracing::warn!(%warning, "engine warning"),
    }
}

/// What the panel is told of an action the gateway answered.
#[derive(Debug, PartialEq, Eq)]
enum Told {
    /// Nothing (mark read: the counts say it all; an accepted acknowledgement: its
    /// row shows who took it in).
    Nothing,
    /// A proposal response, accepted or not: its buttons wait for it.
    Proposal(String),
    /// A refused acknowledgement (undone here), of these alerts.
    RefusedAcknowledgement(Vec<String>),
}

/// Sorts an answered action (as the engine queued it) by what the panel is told.
fn to_tell(action: Option<&ClientFrame>, refused: bool) -> Told {
    match action {
        Some(ClientFrame::ProposalRespond { proposal_id, .. }) => {
            Told::Proposal(proposal_id.clone())
        }
        Some(ClientFrame::Acknowledge {
            notification_ids, ..
        }) if refused => Told::RefusedAcknowledgement(notification_ids.clone()),
        _ => Told::Nothing,
    }
}

/// The firm's deadline a notification is an alert of.
fn deadline_of(notification: &tocsin_protocol::Notification) -> Option<&str> {
    match &notification.data {
        tocsin_protocol::NotificationData::DeadlineAlert(alert) => Some(&alert.deadline_id),
        _ => None,
    }
}

/// The deadlines of these alerts, in order, each once (an acknowledgement names up
/// to five alerts per deadline).
async fn deadlines_of_alerts(engine: &Engine, alert_ids: Vec<String>) -> Vec<String> {
    let mut deadlines: Vec<String> = Vec::new();
    for id in alert_ids {
        if let Some(n) = load(engine, id).await
            && let Some(deadline) = deadline_of(&n)
            && !deadlines.iter().any(|d| d == deadline)
        {
            deadlines.push(deadline.to_owned());
        }
    }
    deadlines
}

/// A notification held by the engine.
async fn load(engine: &Engine, id: String) -> Option<tocsin_protocol::Notification> {
    match engine.handle.get(id).await {
        Ok(item) => item.map(|item| item.notification),
        Err(err) => {
            tracing::warn!(%err, "cannot read a notification to toast it");
            None
        }
    }
}

/// Refreshes the view once for the batch, shows its toasts and closes those of
/// notifications read and deadlines acknowledged meanwhile.
async fn flush(app: &AppHandle, engine: &Engine, batch: Batch) {
    if !batch.toasts.is_empty() || !batch.read.is_empty() || !batch.acknowledged.is_empty() {
        let closing = Closing {
            read: batch.read,
            acknowledged: batch.acknowledged,
        };
        render_toasts(app, batch.toasts, closing).await;
    }
    if let Some(counts) = &batch.counts {
        app.state::<AppState>()
            .lock()
            .set_counts(engine.session, counts);
    }
    view::publish(app);
    if !batch.tabs.is_empty() {
        view::items_changed(app, batch.tabs.into_iter().collect());
    }
    if !batch.new_items.is_empty()
        && panel::is_open(app)
        && let Err(err) = app.emit_to(
            PANEL,
            EVENT_NEW_ITEMS,
            NewItems {
                items: batch.new_items,
            },
        )
    {
        tracing::debug!(%err, "panel did not take new items");
    }
}

/// What a batch takes off the screen.
#[derive(Debug, Default)]
struct Closing {
    /// Notifications read.
    read: Vec<String>,
    /// Deadlines acknowledged.
    acknowledged: Vec<String>,
}

/// Shows toasts and closes read ones on a blocking thread; records whether the
/// notification service answers, so the panel can say why there are none.
async fn render_toasts(app: &AppHandle, toasts: Vec<ToastContent>, closing: Closing) {
    let state = app.state::<AppState>();
    let notifier = state.notifier.clone();
    let shows = !toasts.is_empty();
    let outcome =
        tokio::task::spawn_blocking(move || show_and_close(&*notifier, &toasts, &closing))
            .await
            .unwrap_or_else(|err| Err(err.to_string()));
    // Only showing says whether the service answers: closing has nothing to say
    // when no toast was on screen.
    if shows {
        let shown = outcome
            .as_ref()
            .map(|s| s.deadline_alerts.clone())
            .unwrap_or_default();
        set_notifications_status(app, outcome.map(|_| ()));
        report_shown(app, shown).await;
    }
}

/// Tells the gateway's audit trail which deadline alerts this device showed (what a
/// firm shows its insurer: "it was on her screen at 09:00").
async fn report_shown(app: &AppHandle, notification_ids: Vec<String>) {
    if notification_ids.is_empty() {
        return;
    }
    if let Some(engine) = app.state::<AppState>().engine() {
        engine.send(Command::ReportShown { notification_ids }).await;
    }
}

/// What [`show_and_close`] showed.
#[derive(Debug, Default)]
struct Shown {
    /// The notification ids of the deadline alerts shown.
    deadline_alerts: Vec<String>,
}

/// Shows a batch's toasts, except those of notifications read or deadlines
/// acknowledged in the same batch (on the phone while this desktop was catching up:
/// nothing to take in any more), then closes the toasts of every notification read
/// and every deadline acknowledged. Blocking. The result is the last toast's, with the
/// deadline alerts shown.
fn show_and_close(
    notifier: &dyn Notifier,
    toasts: &[ToastContent],
    closing: &Closing,
) -> Result<Shown, String> {
    let mut shown = Shown::default();
    let read_ids: HashSet<&str> = closing.read.iter().map(String::as_str).collect();
    let acknowledged: BTreeSet<&str> = closing.acknowledged.iter().map(String::as_str).collect();
    let mut last = Ok(());
    for toast in toasts {
        let read = toast
            .notification_id
            .as_deref()
            .is_some_and(|id| read_ids.contains(id));
        let taken_in = toast
            .deadline_id
            .as_deref()
            .is_some_and(|id| acknowledged.contains(id));
        if read || taken_in {
            continue;
        }
        last = notifier.show(toast);
        match &last {
            Err(err) => {
                tracing::warn!(%err, summary = %toast.summary, "cannot show an OS notification")
            }
            Ok(()) => {
                if let (Some(_), Some(id)) = (&toast.deadline_id, &toast.notification_id) {
                    shown.deadline_alerts.push(id.clone());
                }
            }
        }
    }
    for id in &closing.read {
        if let Err(err) = notifier.close(id) {
            // Gone already (dismissed meanwhile), or no service: nothing to undo.
            tracing::debug!(%err, id, "cannot close an OS notification");
        }
    }
    for deadline in acknowledged {
        if let Err(err) = notifier.close_deadline(deadline) {
            tracing::debug!(%err, deadline, "cannot close an acknowledged deadline's OS notification");
        }
    }
    last.map(|()| shown)
}

/// Records the notification service's state.
pub fn set_notifications_status(app: &AppHandle, outcome: Result<(), String>) {
    let state = app.state::<AppState>();
    let locale = state.locale();
    let mut shared = state.lock();
    shared.notifications = match outcome {
        Ok(()) => ipc::NotificationsStatus {
            available: true,
            problem: None,
        },
        Err(err) => ipc::NotificationsStatus {
            available: false,
            problem: Some(format!(
                "{} ({err})",
                locale.strings().no_notification_service
            )),
        },
    };
}

/// Turns notification clicks into actions until the app ends: "Mark as read" and
/// "Acknowledge" (of the alert's deadline) to the engine; "Open" (the default
/// action) opens the notification's link when it has one that may be opened, else —
/// and when the system cannot open it — the panel at it.
pub async fn follow_clicks(app: AppHandle, mut clicks: mpsc::UnboundedReceiver<ToastClick>) {
    while let Some(click) = clicks.recv().await {
        tracing::debug!(?click, "notification clicked");
        if click.action == ACTION_ACKNOWLEDGE {
            if let (Some(id), Some(engine)) =
                (click.notification_id, app.state::<AppState>().engine())
            {
                acknowledge_from_toast(&engine, id).await;
            }
            continue;
        }
        if click.action == ACTION_MARK_READ {
            if let (Some(id), Some(engine)) =
                (click.notification_id, app.state::<AppState>().engine())
            {
                engine.send(Command::MarkRead(vec![id])).await;
            }
            continue;
        }
        // The link is looked up by id in the local store and checked again there;
        // every refusal is logged by `link`.
        if click.action == ACTION_DEFAULT
            && let Some(id) = &click.notification_id
            && link::open_held(&app, id).await.is_ok()
        {
            continue;
        }
        let navigate = Navigate {
            view: View::Inbox,
            tab: click.tab,
            item_id: click.notification_id,
        };
        let app_for_main = app.clone();
        // Windows are created on the main thread.
        if let Err(err) = app.run_on_main_thread(move || {
            if let Err(err) = panel::open(&app_for_main, Some(navigate)) {
                tracing::warn!(%err, "cannot open the panel");
            }
        }) {
            tracing::warn!(%err, "cannot reach the main thread");
        }
    }
}

/// A toast's "Acknowledge": the deadline of the alert it shows, acknowledged through
/// the engine (applied here at once, sent when connected). The toast knows only its
/// notification: the deadline is read from the engine's copy.
async fn acknowledge_from_toast(engine: &EngineHandle, notification_id: String) {
    let deadline = match engine.get(notification_id.clone()).await {
        Ok(Some(item)) => deadline_of(&item.notification).map(str::to_owned),
        Ok(None) => None,
        Err(err) => {
            tracing::warn!(%err, "cannot read the notification to acknowledge");
            return;
        }
    };
    match deadline {
        Some(deadline_id) => {
            engine
                .send(Command::Acknowledge {
                    deadline_ids: vec![deadline_id],
                })
                .await;
        }
        None => tracing::warn!(
            notification_id,
            "Acknowledge on a toast that is not a held deadline alert"
        ),
    }
}

#[cfg(test)]
mod tests {
    use tocsin_client::store::testing;

    use super::*;
    use crate::i18n::Locale;
    use crate::notifier::tests::Recording;

    fn toast_of(id: &str) -> ToastContent {
        toast::for_notification(&testing::email(id, 0), Locale::En)
    }

    #[test]
    fn toasts_read_in_their_batch_are_not_shown_and_read_ones_are_closed() {
        let notifier = Recording::default();
        show_and_close(
            &notifier,
            &[toast_of("n1"), toast_of("n2")],
            &Closing::default(),
        )
        .expect("shown");
        let n1 = 1;
        // Next batch: n3 arrives and is read at once (the phone), n4 arrives, the
        // summary stands for many, and n1 (on screen) is read elsewhere.
        let summary = toast::for_summary(
            12,
            &std::collections::BTreeMap::from([(tocsin_protocol::Kind::EmailReceived, 12)]),
            Locale::En,
        );
        show_and_close(
            &notifier,
            &[toast_of("n3"), toast_of("n4"), summary],
            &read(&["n3", "n1", "not-shown"]),
        )
        .expect("shown");
        let shown: Vec<Option<String>> = notifier
            .shown
            .lock()
            .expect("lock")
            .iter()
            .map(|t| t.notification_id.clone())
            .collect();
        assert_eq!(
            shown,
            vec![
                Some("n1".to_owned()),
                Some("n2".to_owned()),
                Some("n4".to_owned()),
                None
            ],
            "n3 was read before it was shown"
        );
        assert_eq!(notifier.closed(), vec![n1], "only n1 was on screen");
        // The summary is never closed by a read, whatever it stood for.
        show_and_close(&notifier, &[], &read(&["n2", "n4"])).expect("closed");
        assert_eq!(notifier.closed(), vec![1, 2, 3]);
    }

    fn read(ids: &[&str]) -> Closing {
        Closing {
            read: ids.iter().map(|id| (*id).to_owned()).collect(),
            acknowledged: Vec::new(),
        }
    }

    /// A critical alert's toast of deadline `deadline`.
    fn critical_of(id: &str, deadline: &str) -> ToastContent {
        let mut n = testing::deadline(id, 0, 20);
        if let tocsin_protocol::NotificationData::DeadlineAlert(d) = &mut n.data {
            d.deadline_id = deadline.to_owned();
        }
        toast::for_notification(&n, Locale::En)
    }

    #[test]
    fn an_acknowledged_deadline_closes_its_toast_and_one_in_its_batch_is_not_shown() {
        let notifier = Recording::default();
        show_and_close(
            &notifier,
            &[critical_of("a1", "D1"), critical_of("b1", "D2")],
            &Closing::default(),
        )
        .expect("shown");
        assert_eq!(notifier.shown.lock().expect("lock").len(), 2);
        // D1 acknowledged on the phone; D3's alert arrives in the batch that says it
        // was acknowledged meanwhile (a colleague, while this desktop was offline).
        let closing = Closing {
            read: Vec::new(),
            acknowledged: vec!["D1".to_owned(), "D3".to_owned(), "D1".to_owned()],
        };
        show_and_close(&notifier, &[critical_of("c1", "D3")], &closing).expect("closed");
        assert_eq!(notifier.closed(), vec![1], "D1's toast, once; D2's stays");
        let shown: Vec<Option<String>> = notifier
            .shown
            .lock()
            .expect("lock")
            .iter()
            .map(|t| t.deadline_id.clone())
            .collect();
        assert_eq!(
            shown,
            vec![Some("D1".to_owned()), Some("D2".to_owned())],
            "D3 was taken in before it was shown"
        );
    }

    #[test]
    fn answered_actions_are_told_to_the_panel_by_kind() {
        let proposal = ClientFrame::ProposalRespond {
            id: "a1".into(),
            proposal_id: "p1".into(),
            response: tocsin_protocol::frames::ProposalResponse::Accept,
        };
        assert_eq!(to_tell(Some(&proposal), false), Told::Proposal("p1".into()));
        assert_eq!(to_tell(Some(&proposal), true), Told::Proposal("p1".into()));
        let acknowledge = ClientFrame::Acknowledge {
            id: "a2".into(),
            notification_ids: vec!["n2".into(), "n1".into()],
        };
        assert_eq!(
            to_tell(Some(&acknowledge), true),
            Told::RefusedAcknowledgement(vec!["n2".into(), "n1".into()])
        );
        assert_eq!(
            to_tell(Some(&acknowledge), false),
            Told::Nothing,
            "an accepted acknowledgement shows in its row"
        );
        let read = ClientFrame::MarkRead {
            id: "a3".into(),
            notification_ids: vec!["n1".into()],
        };
        assert_eq!(to_tell(Some(&read), true), Told::Nothing);
        assert_eq!(to_tell(None, true), Told::Nothing, "answered twice");
    }

    #[test]
    fn a_toast_finds_its_deadline_through_its_notification() {
        let alert = testing::alert(
            "n1",
            "appel-2026-0142",
            0,
            tocsin_protocol::notification::DeadlineUrgency::Critical,
            20,
        );
        assert_eq!(deadline_of(&alert), Some("appel-2026-0142"));
        assert_eq!(deadline_of(&testing::email("n2", 0)), None);
    }
}
