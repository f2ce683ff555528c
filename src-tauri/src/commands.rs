//! The app's IPC commands (docs/DESKTOP_IPC.md). Thin: each validates its input and
//! calls the module that owns the work. Only the panel window may call them
//! (capabilities/panel.json).

use tauri::{AppHandle, Manager, State};
use tocsin_client::engine::{Command, EngineHandle};
use tocsin_client::store::Tab;
use tocsin_protocol::Kind;
use tocsin_protocol::frames::ProposalResponse;

use crate::error::AppError;
use crate::ipc::{
    CalendarFeedView, CalendarRevoked, DeadlineRowView, Item, Navigate, PreferencesView, Snapshot,
};
use crate::link::{self, LinkError};
use crate::prefs::{self, Pause};
use crate::state::AppState;
use crate::{calendar, panel, session};

/// The most items one `list_items` call returns.
const MAX_PAGE: u32 = 200;
/// The most ids one `mark_read` names: one action, one frame of bounded size.
const MAX_MARK_READ: usize = 1000;
/// The most deadlines one `acknowledge` names (the engine splits them into frames).
const MAX_ACKNOWLEDGE: usize = 500;

/// What the panel shows outside the lists.
#[tauri::command]
pub fn snapshot(state: State<'_, AppState>) -> Snapshot {
    state.snapshot()
}

/// Where the panel should open, once.
#[tauri::command]
pub fn take_navigation(state: State<'_, AppState>) -> Option<Navigate> {
    state.lock().navigation.take()
}

/// A page of a tab's items, newest first (deadlines: soonest due first).
#[tauri::command]
pub async fn list_items(
    state: State<'_, AppState>,
    tab: Tab,
    limit: u32,
    before: Option<String>,
) -> Result<Vec<Item>, AppError> {
    let engine = signed_in(&state)?;
    let limit = limit.clamp(1, MAX_PAGE) as usize;
    let items = if tab == Tab::Deadlines {
        // By due date: one list, no pages (it is as long as the unread deadlines).
        engine.deadlines(limit).await
    } else {
        let cursor = match before {
            Some(id) => engine
                .get(id)
                .await
                .map_err(AppError::internal)?
                .map(|item| item.cursor()),
            None => None,
        };
        engine.list(Some(tab), limit, cursor).await
    }
    .map_err(AppError::internal)?;
    let mut listed = Vec::with_capacity(items.len());
    for item in &items {
        let status = match &item.notification.data {
            tocsin_protocol::NotificationData::ProposalCreated(p) => engine
                .proposal_status(p.proposal_id.clone())
                .await
                .map_err(AppError::internal)?,
            _ => None,
        };
        listed.extend(Item::from_inbox(item, status));
    }
    Ok(listed)
}

/// The Deadlines tab: one row per deadline, soonest due first, with what its latest
/// alert says and links to.
#[tauri::command]
pub async fn list_deadlines(
    state: State<'_, AppState>,
    limit: u32,
) -> Result<Vec<DeadlineRowView>, AppError> {
    let engine = signed_in(&state)?;
    let limit = limit.clamp(1, MAX_PAGE) as usize;
    let rows = engine
        .deadline_rows(limit)
        .await
        .map_err(AppError::internal)?;
    let mut listed = Vec::with_capacity(rows.len());
    for row in rows {
        let latest = engine
            .get(row.latest_alert_id.clone())
            .await
            .map_err(AppError::internal)?;
        listed.push(DeadlineRowView::new(
            row,
            latest.as_ref().map(|item| &item.notification),
        ));
    }
    Ok(listed)
}

/// Acknowledges deadlines ("Pris en compte", for the whole firm): applied here at
/// once, offline too, and sent when connected. Who took them in arrives as
/// `items-changed` (deadlines); a refusal as `action-result`.
#[tauri::command]
pub async fn acknowledge(
    state: State<'_, AppState>,
    deadline_ids: Vec<String>,
) -> Result<(), AppError> {
    if deadline_ids.is_empty() {
        return Ok(());
    }
    if deadline_ids.len() > MAX_ACKNOWLEDGE {
        return Err(AppError::new(
            "invalid_input",
            "acknowledge at most 500 deadlines at once",
        ));
    }
    to_engine(&state, Command::Acknowledge { deadline_ids }).await
}

/// A new calendar (ICS) feed URL for the signed-in user; the previous one stops
/// working.
#[tauri::command]
pub async fn rotate_calendar_feed(app: AppHandle) -> Result<CalendarFeedView, AppError> {
    calendar::rotate(&app).await
}

/// Turns the calendar feed off.
#[tauri::command]
pub async fn revoke_calendar_feed(app: AppHandle) -> Result<CalendarRevoked, AppError> {
    calendar::revoke(&app).await
}

/// The engine, or "not signed in".
fn signed_in(state: &AppState) -> Result<EngineHandle, AppError> {
    state
        .engine()
        .ok_or_else(|| AppError::not_signed_in(state.locale()))
}

/// Sends a command to the engine, or says the user is not signed in.
async fn to_engine(state: &AppState, command: Command) -> Result<(), AppError> {
    let engine = signed_in(state)?;
    if engine.send(command).await {
        Ok(())
    } else {
        Err(AppError::new(
            "engine_stopped",
            "the connection engine has stopped: restart Tocsin",
        ))
    }
}

/// Marks notifications read (here at once, on the gateway when connected).
#[tauri::command]
pub async fn mark_read(state: State<'_, AppState>, ids: Vec<String>) -> Result<(), AppError> {
    if ids.is_empty() {
        return Ok(());
    }
    if ids.len() > MAX_MARK_READ {
        return Err(AppError::new(
            "invalid_input",
            "mark at most 1000 notifications at once",
        ));
    }
    to_engine(&state, Command::MarkRead(ids)).await
}

/// Marks a tab (or everything) read.
#[tauri::command]
pub async fn mark_all_read(state: State<'_, AppState>, tab: Option<Tab>) -> Result<(), AppError> {
    // The engine applies each locally at once and reports the new counts, which the
    // bridge turns into a `state` event: nothing to recount here.
    let kinds: Vec<Option<Kind>> = match tab {
        None => vec![None],
        Some(tab) => tab.kinds().iter().copied().map(Some).collect(),
    };
    for kind in kinds {
        if kind == Some(Kind::Unknown) {
            // A "read all of kind X" names X on the wire, and the gateway matches it
            // against the names it stored: "unknown" matches none of a newer
            // gateway's kinds (it stored "deadline-escalated"), so the gateway and the
            // other devices would keep them unread. By id they are marked everywhere.
            let ids = unread_ids(&state, Kind::Unknown).await?;
            for chunk in ids.chunks(MAX_MARK_READ) {
                to_engine(&state, Command::MarkRead(chunk.to_vec())).await?;
            }
            continue;
        }
        to_engine(&state, Command::MarkAllRead(kind)).await?;
    }
    Ok(())
}

/// The ids of the unread notifications of `kind` held here, newest first. The
/// engine lists by tab: the kind's tab is read page by page and filtered here (a
/// kind this build does not know is one of the System tab's two kinds, and system
/// notices are few).
async fn unread_ids(state: &AppState, kind: Kind) -> Result<Vec<String>, AppError> {
    let engine = signed_in(state)?;
    let Some(tab) = Tab::of(kind) else {
        return Ok(Vec::new());
    };
    let mut ids = Vec::new();
    let mut cursor = None;
    loop {
        let page = engine
            .list(Some(tab), MAX_PAGE as usize, cursor)
            .await
            .map_err(AppError::internal)?;
        let Some(last) = page.last() else {
            return Ok(ids);
        };
        cursor = Some(last.cursor());
        ids.extend(
            page.iter()
                .filter(|item| !item.read && item.notification.kind() == kind)
                .map(|item| item.notification.id.clone()),
        );
    }
}

/// Accepts or rejects a proposal; the outcome arrives as an `action-result` event.
#[tauri::command]
pub async fn respond_proposal(
    state: State<'_, AppState>,
    proposal_id: String,
    response: ProposalResponse,
) -> Result<(), AppError> {
    to_engine(
        &state,
        Command::Respond {
            proposal_id,
            response,
        },
    )
    .await
}

/// Opens a notification's link in the firm's software ("Open" on an item). Takes the
/// notification's id, never a URL: the link is read from the local store and checked
/// again (`link`), so the webview cannot make the app open anything else. A refusal is
/// logged there and answered `no_link`: the panel offers "Open" only on items whose
/// link passed the same check, so only a stale or forged call gets it.
#[tauri::command]
pub async fn open_link(app: AppHandle, id: String) -> Result<(), AppError> {
    let locale = app.state::<AppState>().locale();
    let s = locale.strings();
    link::open_held(&app, &id).await.map_err(|err| match err {
        LinkError::NotSignedIn => AppError::not_signed_in(locale),
        LinkError::Failed(err) => {
            AppError::new("open_failed", format!("{} ({err})", s.err_open_failed))
        }
        LinkError::Store(err) => AppError::internal(err),
        LinkError::NotHeld(_) | LinkError::NoLink | LinkError::Refused(_) => {
            AppError::new("no_link", s.err_no_link)
        }
    })
}

/// Signs in and returns the new snapshot; `fingerprint` is the certificate the user
/// confirmed after an `untrusted_certificate` refusal.
#[tauri::command]
pub async fn sign_in(
    app: AppHandle,
    server: String,
    email: String,
    password: String,
    fingerprint: Option<String>,
) -> Result<Snapshot, AppError> {
    session::sign_in(&app, &server, &email, &password, fingerprint.as_deref()).await?;
    Ok(app.state::<AppState>().snapshot())
}

/// Signs out.
#[tauri::command]
pub async fn sign_out(app: AppHandle) -> Result<(), AppError> {
    session::sign_out(&app).await
}

/// The preferences.
#[tauri::command]
pub fn get_preferences(app: AppHandle) -> PreferencesView {
    prefs::get(&app)
}

/// Saves preferences.
#[tauri::command]
pub async fn set_preferences(
    app: AppHandle,
    prefs: PreferencesView,
) -> Result<PreferencesView, AppError> {
    crate::prefs::set(&app, prefs).await
}

/// Pauses or resumes notifications.
#[tauri::command]
pub async fn pause(app: AppHandle, until: Pause) -> Result<Snapshot, AppError> {
    prefs::pause(&app, until).await?;
    Ok(app.state::<AppState>().snapshot())
}

/// Closes the panel (Esc).
#[tauri::command]
pub fn hide_panel(app: AppHandle) -> Result<(), AppError> {
    // Destroyed after this call has answered, not from inside its own IPC call.
    let handle = app.clone();
    app.run_on_main_thread(move || {
        if let Err(err) = panel::close(&handle) {
            tracing::warn!(%err, "cannot close the panel");
        }
    })
    .map_err(AppError::internal)
}
