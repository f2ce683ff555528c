//! Read state and unread counts, and the panel's tabs.
//!
//! Read state is the server's (PROTOCOL.md §4.7); the engine applies its `read` and
//! `read_all` pushes here, and applies the user's own actions here at once for an
//! optimistic UI (the same calls). Marks can arrive before the notification they
//! cover (a `read` push while this device is still replaying); they are remembered
//! and applied when it is persisted.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use rusqlite::{OptionalExtension, params};
use serde::{Deserialize, Serialize};
use tocsin_protocol::{Kind, Position, StreamName};

use super::error::StoreError;
use super::{LocalStore, now_us, offset_from_sql, offset_to_sql};

/// The counts the app shows: unread per tab (the badge), critical deadlines nobody
/// acknowledged (the tray's mark) and actions still queued for the gateway (the
/// status line).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Counts {
    /// Unread per tab; every tab is present.
    pub unread: BTreeMap<Tab, u64>,
    /// Unread critical deadline alerts (one per alert). Kept for compatibility; the
    /// tray's mark follows `unacknowledged_critical_deadlines`, since reading an alert
    /// is not taking its deadline in.
    pub unread_critical_deadlines: u64,
    /// Distinct deadlines with a critical alert held that nobody acknowledged (this
    /// device's pending acknowledgement counts as one): the tray's orange mark.
    pub unacknowledged_critical_deadlines: u64,
    /// Actions not yet answered by the gateway.
    pub outbox: usize,
}

/// A tab of the panel. Every stored kind belongs to exactly one tab, so the tabs'
/// unread counts add up to the badge's total; ephemeral kinds belong to none.
///
/// `conversation-message` goes under [`Tab::Emails`]: it is a message to read like a
/// mail, and a kind without a tab would leave unread items the user cannot reach.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Tab {
    /// Mail and conversation messages.
    Emails,
    /// Changes to dossiers (case files).
    Dossiers,
    /// Procedural deadline alerts.
    Deadlines,
    /// Appointment proposals and their answers.
    Proposals,
    /// Notices from the firm's systems and the gateway.
    System,
}

impl Tab {
    /// Every tab, in the panel's order.
    pub const ALL: [Tab; 5] = [
        Tab::Emails,
        Tab::Dossiers,
        Tab::Deadlines,
        Tab::Proposals,
        Tab::System,
    ];

    /// The tab a kind is shown under; `None` for ephemeral kinds (never stored).
    pub fn of(kind: Kind) -> Option<Tab> {
        match kind {
            Kind::EmailReceived | Kind::ConversationMessage => Some(Tab::Emails),
            Kind::DossierUpdated => Some(Tab::Dossiers),
            Kind::DeadlineAlert => Some(Tab::Deadlines),
            Kind::ProposalCreated | Kind::ProposalStatusChanged => Some(Tab::Proposals),
            // A kind from a newer gateway is a generic notice until this build knows it
            // (the store keeps it as `unknown`; its payload keeps the real name).
            Kind::SystemNotification | Kind::Unknown => Some(Tab::System),
            Kind::TypingIndicator | Kind::UserStatus | Kind::MessageRead => None,
        }
    }

    /// The kinds shown under this tab (the inverse of [`Tab::of`]).
    pub fn kinds(self) -> &'static [Kind] {
        match self {
            Tab::Emails => &[Kind::EmailReceived, Kind::ConversationMessage],
            Tab::Dossiers => &[Kind::DossierUpdated],
            Tab::Deadlines => &[Kind::DeadlineAlert],
            Tab::Proposals => &[Kind::ProposalCreated, Kind::ProposalStatusChanged],
            Tab::System => &[Kind::SystemNotification, Kind::Unknown],
        }
    }

    /// A stable lowercase name (`emails`, …), as serialised.
    pub fn as_str(self) -> &'static str {
        match self {
            Tab::Emails => "emails",
            Tab::Dossiers => "dossiers",
            Tab::Deadlines => "deadlines",
            Tab::Proposals => "proposals",
            Tab::System => "system",
        }
    }
}

impl LocalStore {
    /// Marks these notifications read (a `read` push, or the user's own `mark_read`
    /// applied at once). Ids not held yet are remembered and applied when they
    /// arrive. Returns the ids of held notifications that went from unread to read.
    pub fn apply_read(&mut self, ids: &[String]) -> Result<Vec<String>, StoreError> {
        let noted = now_us();
        let tx = self.conn.transaction()?;
        let mut changed = Vec::new();
        {
            let mut mark =
                tx.prepare_cached("UPDATE inbox SET is_read = 1 WHERE id = ?1 AND is_read = 0")?;
            let mut remember = tx.prepare_cached(
                "INSERT OR IGNORE INTO early_reads (id, noted_us)
                 SELECT ?1, ?2 WHERE NOT EXISTS (SELECT 1 FROM inbox WHERE id = ?1)",
            )?;
            for id in ids {
                match mark.execute([id])? {
                    0 => {
                        remember.execute(params![id, noted])?;
                    }
                    _ => changed.push(id.clone()),
                }
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Marks read every notification created at or before `before` (of `kind` when
    /// given): a `read_all` push, or the user's own `mark_all_read` applied at once
    /// with the local time. The cut-off is remembered, so notifications created before
    /// it that arrive later (replay, history) are stored as read. Returns the ids
    /// of held notifications that went from unread to read.
    pub fn apply_read_all(
        &mut self,
        kind: Option<Kind>,
        before: DateTime<Utc>,
    ) -> Result<Vec<String>, StoreError> {
        let kind = kind.map(Kind::as_str).unwrap_or("");
        let before = before.timestamp_micros();
        let tx = self.conn.transaction()?;
        let changed = tx
            .prepare(
                "UPDATE inbox SET is_read = 1
                 WHERE is_read = 0 AND created_us <= ?1 AND (?2 = '' OR kind = ?2) RETURNING id",
            )?
            .query_map(params![before, kind], |row| row.get(0))?
            .collect::<Result<Vec<String>, _>>()?;
        tx.execute(
            "INSERT INTO read_cutoffs (kind, before_us) VALUES (?1, ?2)
             ON CONFLICT (kind) DO UPDATE SET before_us = max(before_us, excluded.before_us)",
            params![kind, before],
        )?;
        tx.commit()?;
        Ok(changed)
    }

    /// Marks read, per stream, every notification at or before its position (in that
    /// position's epoch; of `kind` when given): the user's own "mark all read" with
    /// what they saw, or its `read_all` push. The positions are remembered, so what
    /// arrives later at or before them is stored as read. Returns the ids of held
    /// notifications that went from unread to read.
    pub fn apply_read_up_to(
        &mut self,
        kind: Option<Kind>,
        up_to: &BTreeMap<StreamName, Position>,
    ) -> Result<Vec<String>, StoreError> {
        let kind = kind.map(Kind::as_str).unwrap_or("");
        let tx = self.conn.transaction()?;
        let mut changed = Vec::new();
        {
            let mut mark = tx.prepare_cached(
                "UPDATE inbox SET is_read = 1 WHERE is_read = 0 AND stream = ?1 AND epoch = ?2
                 AND stream_offset <= ?3 AND (?4 = '' OR kind = ?4) RETURNING id",
            )?;
            let mut remember = tx.prepare_cached(
                "INSERT INTO read_marks (stream, epoch, kind, up_to) VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (stream, epoch, kind) DO UPDATE SET up_to = max(up_to, excluded.up_to)",
            )?;
            for (stream, position) in up_to {
                let (stream, offset) = (stream.to_string(), offset_to_sql(position.offset)?);
                let ids = mark.query_map(params![stream, position.epoch, offset, kind], |row| {
                    row.get::<_, String>(0)
                })?;
                for id in ids {
                    changed.push(id?);
                }
                remember.execute(params![stream, position.epoch, kind, offset])?;
            }
        }
        tx.commit()?;
        Ok(changed)
    }

    /// Whether a held notification is read; `None` if it is not held.
    pub fn is_read(&self, id: &str) -> Result<Option<bool>, StoreError> {
        let read = self
            .conn
            .prepare_cached("SELECT is_read FROM inbox WHERE id = ?1")?
            .query_row([id], |row| row.get(0))
            .optional()?;
        Ok(read)
    }

    /// Unread notifications per kind (kinds with none are left out, as in
    /// `GET /v1/unread`).
    pub fn unread_counts(&self) -> Result<BTreeMap<Kind, u64>, StoreError> {
        let mut stmt = self
            .conn
            .prepare_cached("SELECT kind, COUNT(*) FROM inbox WHERE is_read = 0 GROUP BY kind")?;
        let rows = stmt.query_map([], |row| {
            Ok((row.get::<_, String>(0)?, row.get::<_, i64>(1)?))
        })?;
        let mut counts = BTreeMap::new();
        for row in rows {
            let (kind, n) = row?;
            *counts.entry(Kind::parse_lenient(&kind)).or_default() += offset_from_sql(n);
        }
        Ok(counts)
    }

    /// Everything the badge, the tray and the status line show, in one read.
    pub fn counts(&self) -> Result<Counts, StoreError> {
        Ok(Counts {
            unread: self.unread_by_tab()?,
            unread_critical_deadlines: self.unread_critical_deadlines()?,
            unacknowledged_critical_deadlines: self.unacknowledged_critical_deadlines()?,
            outbox: self.outbox_len()?,
        })
    }

    /// Unread notifications per panel tab; every tab is present (0 when none).
    pub fn unread_by_tab(&self) -> Result<BTreeMap<Tab, u64>, StoreError> {
        let mut tabs: BTreeMap<Tab, u64> = Tab::ALL.iter().map(|t| (*t, 0)).collect();
        for (kind, n) in self.unread_counts()? {
            if let Some(tab) = Tab::of(kind) {
                *tabs.entry(tab).or_insert(0) += n;
            }
        }
        Ok(tabs)
    }

    /// How many critical deadline alerts are unread. The tray's mark ("a critical
    /// deadline is unacknowledged", DESIGN.md) is
    /// [`LocalStore::unacknowledged_critical_deadlines`] instead.
    pub fn unread_critical_deadlines(&self) -> Result<u64, StoreError> {
        let n: i64 = self
            .conn
            .prepare_cached(
                "SELECT COUNT(*) FROM inbox WHERE is_read = 0 AND kind = 'deadline-alert'
                 AND json_extract(body, '$.urgency') = 'critical'",
            )?
            .query_row([], |row| row.get(0))?;
        Ok(u64::try_from(n).unwrap_or(0))
    }

    /// All unread notifications: the number on the tray icon.
    pub fn unread_total(&self) -> Result<u64, StoreError> {
        Ok(self.unread_counts()?.values().sum())
    }
}

#[cfg(test)]
mod tests {
    use super::super::testing::*;
    use super::*;
    use tocsin_protocol::notification::ProposalStatus;

    #[test]
    fn mark_all_read_by_position_covers_what_was_seen_even_when_it_arrives_later() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        let stream = user();
        store
            .persist(&[incoming(&stream, "e1", 2, email("seen", 10))])
            .expect("stored");
        let up_to = BTreeMap::from([(
            stream.clone(),
            Position {
                epoch: "e1".into(),
                offset: 2,
            },
        )]);
        assert_eq!(
            store.apply_read_up_to(None, &up_to).expect("marks"),
            ["seen"]
        );
        // Offset 1 was seen on another device and comes in a rebuild; offset 3 was
        // published after the click, though created earlier than the click's time.
        store
            .persist(&[
                incoming(&stream, "e1", 1, email("older", 5)),
                incoming(&stream, "e1", 3, email("unseen", 1)),
                incoming(&stream, "e2", 1, email("new-epoch", 1)),
            ])
            .expect("stored");
        assert_eq!(store.is_read("older").expect("query"), Some(true));
        assert_eq!(store.is_read("unseen").expect("query"), Some(false));
        assert_eq!(store.is_read("new-epoch").expect("query"), Some(false));
    }

    fn sample(store: &mut LocalStore) {
        store
            .persist(&[
                incoming(&user(), "e1", 1, email("mail1", 10)),
                incoming(&user(), "e1", 2, email("mail2", 20)),
                incoming(&user(), "e1", 3, message("msg3", 30)),
                incoming(&user(), "e1", 4, deadline("dl4", 40, 24)),
                incoming(&user(), "e1", 5, proposal("p5", "prop-1", 50)),
                incoming(
                    &user(),
                    "e1",
                    6,
                    proposal_status("p6", "prop-1", ProposalStatus::Accepted, 60),
                ),
                incoming(&user(), "e1", 7, system("sys7", 70)),
            ])
            .expect("persists");
    }

    #[test]
    fn every_stored_kind_has_one_tab_and_tabs_list_their_kinds() {
        for kind in Kind::ALL {
            match Tab::of(kind) {
                Some(tab) => assert!(tab.kinds().contains(&kind), "{kind:?}"),
                None => assert!(kind.is_ephemeral(), "{kind:?} has no tab"),
            }
        }
        for tab in Tab::ALL {
            for kind in tab.kinds() {
                assert_eq!(Tab::of(*kind), Some(tab));
            }
            let json = serde_json::to_string(&tab).expect("serialises");
            assert_eq!(json, format!("\"{}\"", tab.as_str()));
        }
    }

    #[test]
    fn only_unread_critical_deadlines_raise_the_tray_mark() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        let mut warning = deadline("dl-warn", 10, 72);
        warning.urgency = tocsin_protocol::Urgency::Normal;
        store
            .persist(&[
                incoming(&user(), "e1", 1, warning),
                incoming(&user(), "e1", 2, system("sys2", 20)),
            ])
            .expect("persists");
        assert_eq!(store.unread_critical_deadlines().expect("counts"), 0);
        store
            .persist(&[incoming(&user(), "e1", 3, deadline("dl-crit", 30, 20))])
            .expect("persists");
        assert_eq!(store.unread_critical_deadlines().expect("counts"), 1);
        store.apply_read(&["dl-crit".to_owned()]).expect("reads");
        assert_eq!(store.unread_critical_deadlines().expect("counts"), 0);
    }

    #[test]
    fn unread_counts_per_kind_and_tab() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        sample(&mut store);
        let kinds = store.unread_counts().expect("counts");
        assert_eq!(kinds[&Kind::EmailReceived], 2);
        assert_eq!(kinds[&Kind::ConversationMessage], 1);
        assert_eq!(kinds[&Kind::ProposalCreated], 1);
        assert_eq!(kinds.get(&Kind::DossierUpdated), None);
        let tabs = store.unread_by_tab().expect("tabs");
        assert_eq!(tabs[&Tab::Emails], 3);
        assert_eq!(tabs[&Tab::Dossiers], 0);
        assert_eq!(tabs[&Tab::Deadlines], 1);
        assert_eq!(tabs[&Tab::Proposals], 2);
        assert_eq!(tabs[&Tab::System], 1);
        assert_eq!(store.unread_total().expect("total"), 7);
    }

    #[test]
    fn read_marks_apply_once_and_update_counts() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        sample(&mut store);
        let ids = vec!["mail1".to_string(), "dl4".to_string()];
        assert_eq!(store.apply_read(&ids).expect("read").len(), 2);
        assert!(store.apply_read(&ids).expect("read again").is_empty());
        assert_eq!(store.is_read("mail1").expect("read"), Some(true));
        assert_eq!(store.is_read("mail2").expect("read"), Some(false));
        assert_eq!(store.is_read("nope").expect("read"), None);
        let tabs = store.unread_by_tab().expect("tabs");
        assert_eq!(tabs[&Tab::Emails], 2);
        assert_eq!(tabs[&Tab::Deadlines], 0);
        assert_eq!(store.unread_total().expect("total"), 5);
    }

    #[test]
    fn read_all_respects_kind_and_cut_off() {
        let mut store = LocalStore::open_in_memory().expect("opens");
        sample(&mut store);
        // Only e-mails created at or before t(10): mail1.
        let n = store
            .apply_read_all(Some(Kind::EmailReceived), t(10))
            .expect("read all");
        assert_eq!(n, ["mail1"]);
        assert_eq!(store.is_read("mail2").expect("read"), Some(false));
        // Everything up to t(60), inclusive.
        let n = store.apply_read_all(None, t(60)).expect("read all");
        assert_eq!(n.len(), 5);
        assert_eq!(store.is_read("sys7").expect("read"), Some(false));
        assert_eq!(store.unread_total().expect("total"), 1);
        assert_eq!(store.unread_by_tab().expect("tabs")[&Tab::System], 1);
    }

    #[test]
    fn marks_that_arrive_first_apply_when_the_notification_does() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("store.db");
        {
            let (mut store, _) = LocalStore::open(&path).expect("opens");
            assert!(
                store
                    .apply_read(&["early".into()])
                    .expect("read")
                    .is_empty()
            );
            store
                .apply_read_all(Some(Kind::DeadlineAlert), t(100))
                .expect("read all");
        }
        let (mut store, _) = LocalStore::open(&path).expect("reopens");
        store
            .persist(&[
                incoming(&user(), "e1", 1, email("early", 500)),
                incoming(&user(), "e1", 2, deadline("old-dl", 90, 1)),
                incoming(&user(), "e1", 3, deadline("new-dl", 110, 1)),
                incoming(&user(), "e1", 4, email("old-mail", 90)),
            ])
            .expect("persists");
        assert_eq!(store.is_read("early").expect("read"), Some(true));
        assert_eq!(store.is_read("old-dl").expect("read"), Some(true));
        assert_eq!(store.is_read("new-dl").expect("read"), Some(false));
        assert_eq!(store.is_read("old-mail").expect("read"), Some(false));
    }
}
