//! The app's side of a running engine: commands in, through one cheap handle.

use std::sync::{Arc, Mutex};

use tocsin_protocol::Kind;
use tocsin_protocol::frames::ProposalResponse;
use tokio::sync::mpsc;

use tocsin_protocol::notification::ProposalStatus;

use super::SharedAccess;
use super::tokens::RENEW_BEFORE;
use crate::store::{Counts, DeadlineRow, InboxItem, ListCursor, LocalStore, StoreError, Tab};

/// What the app asks of the engine.
#[derive(Debug)]
pub enum Command {
    /// Mark notifications read (on every device).
    MarkRead(Vec<String>),
    /// Mark everything (of a kind) read.
    MarkAllRead(Option<Kind>),
    /// Accept or reject a proposal.
    Respond {
        /// The proposal.
        proposal_id: String,
        /// The answer.
        response: ProposalResponse,
    },
    /// Acknowledge deadlines ("Pris en compte") for the whole firm, by the firm's
    /// deadline ids ([`DeadlineRow::deadline_id`], or a `deadline-alert`'s
    /// `data.deadline_id`): the engine sends the alerts it holds for them. Distinct
    /// from marking them read. Deadlines with no alert held are ignored.
    Acknowledge {
        /// The deadlines.
        deadline_ids: Vec<String>,
    },
    /// These notifications were shown as OS notifications on this device: reported
    /// to the gateway's audit trail (it records deadline alerts), queued like any
    /// action so an offline display is reported once back.
    ReportShown {
        /// The notifications shown.
        notification_ids: Vec<String>,
    },
    /// The user edited their notification preferences: decide later toasts with these.
    SetPreferences(Box<crate::policy::Preferences>),
    /// The network changed (new Wi-Fi, VPN up) or the machine woke up: reconnect now.
    NetworkChanged,
    /// Stop the engine.
    Shutdown,
}

/// The app's side of a running engine.
#[derive(Clone)]
pub struct EngineHandle {
    /// Commands to the engine task.
    commands: mpsc::Sender<Command>,
    /// The local store; the app reads it through the queries below.
    store: Arc<Mutex<LocalStore>>,
    /// The engine's access token, as it last renewed or dropped it.
    access: SharedAccess,
}

impl EngineHandle {
    pub(crate) fn new(
        commands: mpsc::Sender<Command>,
        store: Arc<Mutex<LocalStore>>,
        access: SharedAccess,
    ) -> Self {
        EngineHandle {
            commands,
            store,
            access,
        }
    }

    /// The engine's access token, for the app's own calls to the gateway's HTTP API
    /// (the calendar feed, `crate::api::ApiClient`), while it holds one good for at
    /// least another minute; `None` otherwise (not connected yet, or offline long
    /// enough for it to expire: the engine renews it on its next connection). Never a
    /// refresh of the app's own: the refresh token is single-use, and only the engine
    /// presents it.
    pub fn access_token(&self) -> Option<String> {
        let access = self
            .access
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        access
            .as_ref()
            .filter(|(_, expires)| tokio::time::Instant::now() + RENEW_BEFORE < *expires)
            .map(|(token, _)| token.clone())
    }

    /// Sends a command; false when the engine has stopped.
    pub async fn send(&self, command: Command) -> bool {
        self.commands.send(command).await.is_ok()
    }

    /// One page of the inbox, newest first: a tab's, or everything's; `before`
    /// continues after the last item of the previous page.
    pub async fn list(
        &self,
        tab: Option<Tab>,
        limit: usize,
        before: Option<ListCursor>,
    ) -> anyhow::Result<Vec<InboxItem>> {
        self.read(move |store| match tab {
            Some(tab) => store.list_tab(tab, limit, before.as_ref()),
            None => store.list(None, limit, before.as_ref()),
        })
        .await
    }

    /// One notification of the inbox, if held.
    pub async fn get(&self, id: String) -> anyhow::Result<Option<InboxItem>> {
        self.read(move |store| store.get(&id)).await
    }

    /// Deadline alerts by due date, soonest first, one item per alert (see
    /// [`EngineHandle::deadline_rows`] for one row per deadline).
    pub async fn deadlines(&self, limit: usize) -> anyhow::Result<Vec<InboxItem>> {
        self.read(move |store| store.deadlines_by_due_date(limit))
            .await
    }

    /// The Deadlines panel: one row per deadline (its alerts grouped, its
    /// acknowledgements), soonest due first.
    pub async fn deadline_rows(&self, limit: usize) -> anyhow::Result<Vec<DeadlineRow>> {
        self.read(move |store| store.deadline_rows(limit)).await
    }

    /// A proposal's local status, if known.
    pub async fn proposal_status(&self, id: String) -> anyhow::Result<Option<ProposalStatus>> {
        self.read(move |store| store.proposal_status(&id)).await
    }

    /// What the badge, the tray and the status line show.
    pub async fn counts(&self) -> anyhow::Result<Counts> {
        self.read(|store| store.counts()).await
    }

    /// The engine's local store itself, for tests that check what it stored and
    /// queued. Apps go through the queries above: they must not hold its lock or
    /// write to it behind the engine.
    #[cfg(any(test, feature = "testing"))]
    pub fn local_store(&self) -> Arc<Mutex<LocalStore>> {
        self.store.clone()
    }

    /// Runs a query on the local store off the async workers.
    async fn read<R: Send + 'static>(
        &self,
        query: impl FnOnce(&LocalStore) -> Result<R, StoreError> + Send + 'static,
    ) -> anyhow::Result<R> {
        super::on_store(&self.store, move |store| Ok(query(store)?)).await
    }
}
