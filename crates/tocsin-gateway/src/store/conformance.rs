//! The behaviour every [`Store`] must have, written once against the trait so each
//! backend (SQLite now, PostgreSQL later) runs the same checks on a real database.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};

use chrono::Utc;
use tocsin_protocol::frames::ProposalResponse;
use tocsin_protocol::notification::{EmailReceived, ProposalCreated};
use tocsin_protocol::{Kind, Notification, NotificationData, Position, StreamName, Urgency};

use super::*;

/// Records what the store fans out, to check order and commit-before-fan-out.
#[derive(Default)]
pub struct Recorder {
    /// (stream, offset) in fan-out order.
    pub seen: Mutex<Vec<(String, u64)>>,
    /// Woken at each fan-out: publishers are answered before their batch is fanned
    /// out, so a test that saw every answer waits here for the last fan-out.
    delivered: tokio::sync::Notify,
}

impl Recorder {
    /// Waits (at most 10 s) until `count` notifications of `stream` were fanned out.
    async fn wait_for(&self, stream: &str, count: usize) {
        let seen = || {
            self.seen
                .lock()
                .expect("not poisoned")
                .iter()
                .filter(|(s, _)| s == stream)
                .count()
        };
        let wait = async {
            loop {
                let woken = self.delivered.notified();
                if seen() >= count {
                    return;
                }
                woken.await;
            }
        };
        tokio::time::timeout(std::time::Duration::from_secs(10), wait)
            .await
            .expect("every answered append is fanned out");
    }
}

impl Fanout for Recorder {
    fn deliver(&self, notifications: &[Arc<StoredNotification>]) {
        let mut seen = self.seen.lock().expect("not poisoned");
        seen.extend(
            notifications
                .iter()
                .map(|n| (n.stream.to_string(), n.offset)),
        );
        drop(seen);
        self.delivered.notify_waiters();
    }
}

fn email(title: &str) -> Notification {
    Notification {
        url: None,
        id: uuid::Uuid::now_v7().to_string(),
        data: NotificationData::EmailReceived(EmailReceived {
            extra: Default::default(),
            subject: title.into(),
            from: "Me Martin".into(),
            dossier_number: Some("2026-0142".into()),
            message_id: None,
            has_attachments: false,
        }),
        created_at: Utc::now(),
        urgency: Urgency::Normal,
        title: title.into(),
        body: String::new(),
    }
}

fn request(stream: &StreamName, title: &str, key: Option<&str>) -> AppendRequest {
    AppendRequest {
        stream: stream.clone(),
        tenant: Some("dupont".into()),
        notification: email(title),
        idempotency: key.map(|key| IdempotencyKey {
            scope: "k1".into(),
            key: key.into(),
        }),
        deliver_at: None,
        actor: "key:k1".into(),
    }
}

/// Creates the firm `dupont` and two of its users, returning their ids.
pub async fn seed(store: &dyn Store) -> (String, String) {
    store
        .create_tenant("dupont", "Cabinet Dupont")
        .await
        .expect("tenant");
    let mut ids = Vec::new();
    for email in ["marie@dupont.example", "claire@dupont.example"] {
        let user = store
            .create_user(NewUser {
                id: uuid::Uuid::now_v7().to_string(),
                tenant: "dupont".into(),
                email: email.into(),
                name: String::new(),
                role: "lawyer".into(),
                password_hash: None,
                external: false,
            })
            .await
            .expect("user");
        ids.push(user.id);
    }
    (ids.remove(0), ids.remove(0))
}

/// Concurrent appends get gap-free offsets, fanned out in offset order.
pub async fn offsets_are_consecutive_under_concurrency(store: Arc<dyn Store>, recorder: &Recorder) {
    let stream = StreamName::Tenant("dupont".into());
    let tasks: Vec<_> = (0..200)
        .map(|i| {
            let store = store.clone();
            let stream = stream.clone();
            tokio::spawn(async move {
                store
                    .append(vec![request(&stream, &format!("n{i}"), None)])
                    .await
            })
        })
        .collect();
    let mut offsets = Vec::new();
    for task in tasks {
        offsets.push(task.await.expect("joins").expect("appends")[0].offset);
    }
    offsets.sort_unstable();
    assert_eq!(offsets, (1..=200).collect::<Vec<u64>>());
    recorder.wait_for("tenant:dupont", 200).await;
    let seen: Vec<u64> = recorder
        .seen
        .lock()
        .expect("lock")
        .iter()
        .filter(|(s, _)| *s == "tenant:dupont")
        .map(|(_, o)| *o)
        .collect();
    assert_eq!(
        seen,
        (1..=200).collect::<Vec<u64>>(),
        "fan-out in offset order"
    );
    let state = store.stream_state(&stream).await.expect("state");
    assert_eq!((state.head, state.first), (200, 1));
}

/// A batch with one bad item stores nothing and fans out nothing.
pub async fn batches_are_atomic(store: Arc<dyn Store>, recorder: &Recorder) {
    let stream = StreamName::User("nobody".into());
    let before = recorder.seen.lock().expect("lock").len();
    let mut bad = request(&stream, "proposal to all", None);
    bad.stream = StreamName::All;
    bad.tenant = None;
    bad.notification.data = NotificationData::ProposalCreated(ProposalCreated {
        extra: Default::default(),
        proposal_id: "p-1".into(),
        starts_at: Utc::now().fixed_offset(),
        ends_at: None,
        proposed_by: "Me Martin".into(),
        location: None,
        conversation_id: None,
        dossier_number: None,
    });
    let result = store.append(vec![request(&stream, "ok", None), bad]).await;
    assert!(matches!(result, Err(StoreError::Invalid(_))), "{result:?}");
    assert_eq!(store.stream_state(&stream).await.expect("state").head, 0);
    assert_eq!(recorder.seen.lock().expect("lock").len(), before);
    let ok = store
        .append(vec![request(&stream, "after", None)])
        .await
        .expect("appends");
    assert_eq!(ok[0].offset, 1, "the failed batch consumed no offset");
}

/// A publish the store refuses (here: a notification id already stored) fails alone:
/// publishes committed with it in one batch are stored, in order, and a refused batch
/// publish stores none of its items. A key repeated inside one batch publish is
/// stored once.
pub async fn a_refused_publish_fails_alone(store: Arc<dyn Store>) {
    let stream = StreamName::User("mixed".into());
    let taken = store
        .append(vec![request(&stream, "first", None)])
        .await
        .expect("first")[0]
        .id
        .clone();
    let tasks: Vec<_> = (0..60)
        .map(|i| {
            let (store, stream, taken) = (store.clone(), stream.clone(), taken.clone());
            tokio::spawn(async move {
                let mut batch = vec![request(&stream, &format!("n{i}"), None)];
                match i % 20 {
                    // A batch publish whose second item reuses a stored id.
                    7 => {
                        let mut again = request(&stream, "again", None);
                        again.notification.id = taken;
                        batch.push(again);
                    }
                    // A single publish reusing it.
                    13 => batch[0].notification.id = taken,
                    _ => {}
                }
                (i, store.append(batch).await)
            })
        })
        .collect();
    let mut offsets = Vec::new();
    for task in tasks {
        let (i, result) = task.await.expect("joins");
        match i % 20 {
            7 | 13 => assert!(result.is_err(), "publish {i} reuses an id: {result:?}"),
            _ => {
                offsets.push(result.expect("a neighbour of a refused publish is stored")[0].offset)
            }
        }
    }
    offsets.sort_unstable();
    assert_eq!(
        offsets,
        (2..=55).collect::<Vec<u64>>(),
        "gap-free, nothing of the refused"
    );
    let key = "twice-in-one";
    let both = store
        .append(vec![
            request(&stream, "one", Some(key)),
            request(&stream, "one", Some(key)),
        ])
        .await
        .expect("a repeated key in one batch");
    assert!(!both[0].duplicate && both[1].duplicate, "{both:?}");
    assert_eq!(
        (both[1].id.as_str(), both[1].offset),
        (both[0].id.as_str(), 56)
    );
    assert_eq!(store.stream_state(&stream).await.expect("state").head, 56);
}

/// A retried idempotency key returns the first result and stores nothing new.
pub async fn idempotency_keys_store_once(store: Arc<dyn Store>) {
    let stream = StreamName::User("idem".into());
    let first = store
        .append(vec![request(&stream, "a", Some("mail-1"))])
        .await
        .expect("first")[0]
        .clone();
    let again = store
        .append(vec![request(&stream, "a", Some("mail-1"))])
        .await
        .expect("again")[0]
        .clone();
    assert!(!first.duplicate && again.duplicate);
    assert_eq!((again.id, again.offset), (first.id, first.offset));
    assert_eq!(store.stream_state(&stream).await.expect("state").head, 1);
}

/// Read marks apply only to visible notifications, at most once per action id.
pub async fn actions_apply_once_and_respect_visibility(store: Arc<dyn Store>, marie: &str) {
    let mine = StreamName::User(marie.to_owned());
    let other = StreamName::User("someone-else".into());
    let visible = store
        .append(vec![request(&mine, "mine", None)])
        .await
        .expect("mine")[0]
        .id
        .clone();
    let hidden = store
        .append(vec![request(&other, "theirs", None)])
        .await
        .expect("theirs")[0]
        .id
        .clone();
    let key = ActionKey {
        session_id: None,
        user_id: marie.to_owned(),
        action_id: "a-1".into(),
    };
    let streams = vec![mine.clone()];
    let outcome = store
        .mark_read(key.clone(), &streams, &[visible.clone(), hidden.clone()])
        .await
        .expect("marks");
    let data = outcome.result.expect("ok");
    assert_eq!(data["read"], serde_json::json!([visible]));
    assert_eq!(data["not_found"], serde_json::json!([hidden]));
    assert!(!outcome.replayed);
    let again = store
        .mark_read(key, &streams, std::slice::from_ref(&visible))
        .await
        .expect("replay");
    assert!(again.replayed && again.effect.is_none());
    assert_eq!(again.result.expect("same answer"), data);
    let counts = store.unread_counts(marie, &streams).await.expect("counts");
    assert!(counts.is_empty(), "{counts:?}");
    let theirs = store
        .unread_counts("someone-else", &[other])
        .await
        .expect("counts");
    assert_eq!(
        theirs,
        vec![(Kind::EmailReceived, 1)],
        "marie's action did not touch their state"
    );
}

/// "Mark all read" with the positions the user saw marks exactly those, in the
/// epochs they were seen in: what was published after the click stays unread, and a
/// stream the user cannot read or whose epoch changed is left alone.
pub async fn mark_all_read_marks_only_what_was_seen(store: Arc<dyn Store>, marie: &str) {
    let mine = StreamName::User(format!("{marie}-seen"));
    let firm = StreamName::Tenant("seen-firm".into());
    let hidden = StreamName::User("someone-else-seen".into());
    for title in ["vu 1", "vu 2", "pas vu"] {
        store
            .append(vec![
                request(&mine, title, None),
                request(&firm, title, None),
            ])
            .await
            .expect("stored");
    }
    store
        .append(vec![request(&hidden, "theirs", None)])
        .await
        .expect("stored");
    let epoch = |stream: &StreamName| {
        let store = store.clone();
        let stream = stream.clone();
        async move { store.stream_state(&stream).await.expect("state").epoch }
    };
    let up_to = BTreeMap::from([
        (
            mine.clone(),
            Position {
                epoch: epoch(&mine).await,
                offset: 2,
            },
        ),
        (
            firm.clone(),
            Position {
                epoch: "an-older-epoch".into(),
                offset: 3,
            },
        ),
        (
            hidden.clone(),
            Position {
                epoch: epoch(&hidden).await,
                offset: 1,
            },
        ),
    ]);
    let key = ActionKey {
        session_id: None,
        user_id: marie.to_owned(),
        action_id: "all-seen".into(),
    };
    let streams = vec![mine.clone(), firm.clone()];
    let outcome = store
        .mark_all_read(key, &streams, None, Some(up_to))
        .await
        .expect("applied");
    let data = outcome.result.expect("ok");
    assert_eq!(data["marked"], 2, "{data}");
    let mut skipped: Vec<String> =
        serde_json::from_value(data["skipped"].clone()).expect("a list of streams");
    skipped.sort();
    let mut expected = vec![firm.to_string(), hidden.to_string()];
    expected.sort();
    assert_eq!(skipped, expected);
    let Some(ReadEffect::ReadAll {
        up_to: Some(applied),
        ..
    }) = outcome.effect
    else {
        panic!("pushed by positions: {:?}", outcome.effect)
    };
    assert_eq!(applied.keys().collect::<Vec<_>>(), [&mine]);
    let counts = store.unread_counts(marie, &streams).await.expect("counts");
    assert_eq!(
        counts,
        vec![(Kind::EmailReceived, 4)],
        "'pas vu' and the firm's 3 stay unread"
    );
    let unread = store
        .read_unread_range(marie, &mine, 0, 3, 10)
        .await
        .expect("unread range");
    let offsets: Vec<u64> = unread.iter().map(|item| item.offset).collect();
    assert_eq!(
        offsets,
        [3],
        "a rebuild fetching unread items first gets 'pas vu' only"
    );
    let theirs = store
        .unread_counts("someone-else-seen", std::slice::from_ref(&hidden))
        .await
        .expect("counts");
    assert_eq!(theirs, vec![(Kind::EmailReceived, 1)]);
}

/// A proposal can be answered once; the second answer is a conflict.
pub async fn proposals_are_answered_once(store: Arc<dyn Store>, marie: &str, claire: &str) {
    let stream = StreamName::Tenant("dupont".into());
    let mut created = request(&stream, "RDV", None);
    created.notification.data = NotificationData::ProposalCreated(ProposalCreated {
        extra: Default::default(),
        proposal_id: "p-42".into(),
        starts_at: Utc::now().fixed_offset(),
        ends_at: None,
        proposed_by: "M. Client".into(),
        location: None,
        conversation_id: None,
        dossier_number: None,
    });
    store.append(vec![created]).await.expect("created");
    let streams = vec![stream.clone()];
    let key = |user: &str, id: &str| ActionKey {
        session_id: None,
        user_id: user.to_owned(),
        action_id: id.to_owned(),
    };
    let accepted = store
        .respond_proposal(
            key(marie, "r1"),
            &streams,
            "dupont",
            "p-42",
            ProposalResponse::Accept,
        )
        .await
        .expect("responds");
    assert_eq!(accepted.result.expect("accepted")["status"], "accepted");
    let late = store
        .respond_proposal(
            key(claire, "r2"),
            &streams,
            "dupont",
            "p-42",
            ProposalResponse::Reject,
        )
        .await
        .expect("responds");
    let error = late.result.expect_err("already answered");
    assert_eq!(error.code, tocsin_protocol::ErrorCode::Conflict);
    let other_firm = store
        .respond_proposal(
            key(claire, "r3"),
            &streams,
            "martin",
            "p-42",
            ProposalResponse::Accept,
        )
        .await
        .expect("responds");
    assert_eq!(
        other_firm.result.expect_err("not visible").code,
        tocsin_protocol::ErrorCode::NotFound
    );
}

/// Pruning moves a stream's first offset; offsets keep growing after it.
pub async fn pruning_moves_first(store: Arc<dyn Store>) {
    let stream = StreamName::User("old".into());
    store
        .append(vec![
            request(&stream, "1", None),
            request(&stream, "2", None),
        ])
        .await
        .expect("appends");
    let pruned = store
        .prune(Utc::now() + chrono::Duration::seconds(1))
        .await
        .expect("prunes");
    assert!(pruned >= 2);
    let state = store.stream_state(&stream).await.expect("state");
    assert_eq!((state.head, state.first), (2, 3));
    let next = store
        .append(vec![request(&stream, "3", None)])
        .await
        .expect("appends");
    assert_eq!(next[0].offset, 3);
    assert!(
        store
            .read_range(&stream, 0, 3, 10)
            .await
            .expect("reads")
            .iter()
            .all(|n| n.offset == 3)
    );
}

/// Disabling signs every device out; erasing deletes the user's data and leaves the
/// firm's proof under an anonymised id, without their id, email or device name.
pub async fn users_are_disabled_and_erased(store: Arc<dyn Store>) {
    let lea = store
        .create_user(NewUser {
            id: uuid::Uuid::now_v7().to_string(),
            tenant: "dupont".into(),
            email: "lea@dupont.example".into(),
            name: "Léa".into(),
            role: "lawyer".into(),
            password_hash: None,
            external: false,
        })
        .await
        .expect("user");
    let expires = Utc::now() + chrono::Duration::days(1);
    for (id, hash) in [("lea-1", "lea-h1"), ("lea-2", "lea-h2")] {
        store
            .create_session(NewSession {
                id: id.into(),
                user_id: lea.id.clone(),
                device_name: "Portable — Léa".into(),
                refresh_hash: hash.into(),
                expires_at: expires,
            })
            .await
            .expect("session");
    }
    assert_eq!(
        store
            .set_user_disabled(&lea.id, true)
            .await
            .expect("disables"),
        2
    );
    assert!(
        store
            .user_by_id(&lea.id)
            .await
            .expect("reads")
            .expect("kept")
            .disabled
    );
    assert!(!store.session_active("lea-1").await.expect("reads"));
    assert_eq!(
        store
            .set_user_disabled(&lea.id, false)
            .await
            .expect("enables"),
        0
    );
    assert!(
        !store
            .user_by_id(&lea.id)
            .await
            .expect("reads")
            .expect("kept")
            .disabled
    );
    assert!(
        !store.session_active("lea-2").await.expect("reads"),
        "enabling brings no session back"
    );
    assert!(matches!(
        store.set_user_disabled("nobody", true).await,
        Err(StoreError::NotFound(_))
    ));

    let stream = StreamName::User(lea.id.clone());
    store
        .create_session(NewSession {
            id: "lea-3".into(),
            user_id: lea.id.clone(),
            device_name: "Portable — Léa".into(),
            refresh_hash: "lea-h3".into(),
            expires_at: expires,
        })
        .await
        .expect("session");
    let sent = store
        .append(vec![request(&stream, "for lea@dupont.example", None)])
        .await
        .expect("appends");
    let action = ActionKey {
        user_id: lea.id.clone(),
        session_id: Some("lea-3".into()),
        action_id: "lea-read".into(),
    };
    store
        .mark_read(action, std::slice::from_ref(&stream), &[sent[0].id.clone()])
        .await
        .expect("reads");

    let anonymised = store.erase_user(&lea.id).await.expect("erases");
    assert!(anonymised.starts_with("erased:"), "{anonymised}");
    assert!(store.user_by_id(&lea.id).await.expect("reads").is_none());
    assert!(
        store
            .user_by_email("lea@dupont.example")
            .await
            .expect("reads")
            .is_none()
    );
    assert!(!store.session_active("lea-3").await.expect("reads"));
    assert!(
        store
            .read_range(&stream, 0, 10, 10)
            .await
            .expect("reads")
            .is_empty(),
        "the personal stream is gone"
    );
    let filter = |user_id: &str| AuditFilter {
        tenant: "dupont".into(),
        dossier: None,
        user_id: Some(user_id.to_owned()),
        deadline_id: None,
        from: None,
        to: None,
        after: None,
        limit: 100,
    };
    assert!(
        store
            .audit(filter(&lea.id))
            .await
            .expect("reads")
            .is_empty()
    );
    let proof = store.audit(filter(&anonymised)).await.expect("reads");
    let events: Vec<_> = proof.iter().map(|r| r.event).collect();
    assert_eq!(
        events,
        [
            tocsin_protocol::audit::AuditEvent::Published,
            tocsin_protocol::audit::AuditEvent::Read
        ]
    );
    let text = serde_json::to_string(&proof).expect("serialises");
    for personal in [lea.id.as_str(), "lea@dupont.example", "Léa"] {
        assert!(!text.contains(personal), "{personal} left in {text}");
    }
    assert_eq!(proof[1].device.as_deref(), Some("device 1"));
    assert!(matches!(
        store.erase_user(&lea.id).await,
        Err(StoreError::NotFound(_))
    ));
}

/// No grace window: a rotated-away token is a replay at once.
const NO_GRACE: std::time::Duration = std::time::Duration::ZERO;

/// The token just rotated away, within the grace window, is answered once as the same
/// rotation; a second time it is a replay, and the session is revoked.
pub async fn a_lost_refresh_answer_gets_one_retry_within_the_grace(
    store: Arc<dyn Store>,
    marie: &str,
) {
    let expires = Utc::now() + chrono::Duration::days(1);
    let grace = std::time::Duration::from_secs(60);
    store
        .create_session(NewSession {
            id: "g1".into(),
            user_id: marie.to_owned(),
            device_name: "laptop".into(),
            refresh_hash: "g-h1".into(),
            expires_at: expires,
        })
        .await
        .expect("session");
    let rotated = RotateOutcome::Rotated {
        session_id: "g1".into(),
        user_id: marie.to_owned(),
    };
    let rotate = |old: &'static str, new: &'static str| {
        let store = store.clone();
        async move {
            store
                .rotate_session(old, new, expires, grace)
                .await
                .expect("answers")
        }
    };
    assert_eq!(rotate("g-h1", "g-h2").await, rotated, "the first refresh");
    assert_eq!(rotate("g-h1", "g-h2").await, rotated, "its retry, once");
    assert!(store.session_active("g1").await.expect("active"));
    assert_eq!(
        rotate("g-h1", "g-h2").await,
        RotateOutcome::Reused {
            session_id: "g1".into()
        },
        "a second retry is a replay"
    );
    assert!(!store.session_active("g1").await.expect("inactive"));
}

/// Refresh tokens rotate; a rotated-away token revokes its session.
pub async fn refresh_tokens_rotate_and_detect_reuse(store: Arc<dyn Store>, marie: &str) {
    let expires = Utc::now() + chrono::Duration::days(1);
    store
        .create_session(NewSession {
            id: "s1".into(),
            user_id: marie.to_owned(),
            device_name: "laptop".into(),
            refresh_hash: "h1".into(),
            expires_at: expires,
        })
        .await
        .expect("session");
    assert!(store.session_active("s1").await.expect("active"));
    let rotated = store
        .rotate_session("h1", "h2", expires, NO_GRACE)
        .await
        .expect("rotates");
    assert_eq!(
        rotated,
        RotateOutcome::Rotated {
            session_id: "s1".into(),
            user_id: marie.to_owned()
        }
    );
    assert_eq!(
        store
            .rotate_session("h1", "h3", expires, NO_GRACE)
            .await
            .expect("reuse"),
        RotateOutcome::Reused {
            session_id: "s1".into()
        }
    );
    assert_eq!(
        store
            .rotate_session("h2", "h4", expires, NO_GRACE)
            .await
            .expect("revoked"),
        RotateOutcome::Invalid
    );
    assert!(
        !store.session_active("s1").await.expect("inactive"),
        "reuse signed the device out"
    );
}

/// Conversations belong to one firm; members must be of that firm.
pub async fn conversations_stay_in_their_firm(store: Arc<dyn Store>, marie: &str) {
    store
        .create_tenant("martin", "Cabinet Martin")
        .await
        .expect("tenant");
    let members = store
        .set_members("c-1", "dupont", &["marie@dupont.example".into()])
        .await
        .expect("members");
    assert_eq!(members, vec![marie.to_owned()]);
    let stolen = store.set_members("c-1", "martin", &[]).await;
    assert!(
        matches!(stolen, Err(StoreError::Forbidden(_))),
        "{stolen:?}"
    );
    let foreign = store
        .set_members("c-2", "martin", &["marie@dupont.example".into()])
        .await;
    assert!(
        matches!(foreign, Err(StoreError::NotFound(_))),
        "{foreign:?}"
    );
    assert_eq!(
        store.user_conversations(marie).await.expect("list"),
        vec!["c-1".to_owned()]
    );
}

/// A deadline of marie with two planned reminders, one already due.
async fn planned_deadline(store: &dyn Store, marie: &str, id: &str) -> DeadlineState {
    let now = Utc::now();
    let record = DeadlineRecord {
        tenant: "dupont".into(),
        external_id: id.into(),
        deadline_type: "Délai d'appel".into(),
        due_at: (now + chrono::Duration::days(3)).fixed_offset(),
        time_zone: "Europe/Paris".into(),
        owner: marie.into(),
        backup: None,
        dossier_number: Some("2026-0142".into()),
        dossier_title: None,
        url: None,
        policy: None,
        escalation: None,
        status: tocsin_protocol::deadline::DeadlineStatus::Open,
        revision: 0,
        created_at: now,
        updated_at: now,
    };
    let step = |at, label: &str| NewStep {
        at,
        kind: StepKind::Reminder,
        step: 0,
        label: Some(label.into()),
        urgency: Some(tocsin_protocol::notification::DeadlineUrgency::Warning),
        state: tocsin_protocol::deadline::StepState::Planned,
    };
    let created = store
        .upsert_deadline(DeadlineUpsert {
            record,
            expected_revision: None,
            plan: Some(vec![
                step(now - chrono::Duration::seconds(1), "J-3"),
                step(now + chrono::Duration::days(1), "J-2"),
            ]),
        })
        .await
        .expect("declared");
    assert!(created);
    store
        .deadline("dupont", id)
        .await
        .expect("read")
        .expect("stored")
}

/// What the scheduler would send for a due step.
fn send(step: &ScheduleStep, marie: &str) -> Firing {
    Firing {
        step_id: step.id,
        outcome: tocsin_protocol::deadline::StepState::Sent,
        late: false,
        appends: vec![request(&StreamName::User(marie.into()), "reminder", None)],
        recipients: vec![marie.into()],
        follow_ups: Vec::new(),
    }
}

/// A due step fires once: a second firing of it (a retry, another node) stores
/// nothing; a re-plan cancels what was planned, and a cancelled step never fires.
pub async fn schedule_steps_fire_once(store: Arc<dyn Store>, marie: &str) {
    planned_deadline(store.as_ref(), marie, "appel-1").await;
    let due = store.due_steps(Utc::now(), 100).await.expect("due");
    assert_eq!(due.len(), 1, "only the past step is due");
    let step = due[0].step.clone();
    let stream = StreamName::User(marie.into());
    let before = store.stream_state(&stream).await.expect("state").head;
    assert_eq!(
        store.fire(vec![send(&step, marie)]).await.expect("fired"),
        1
    );
    assert_eq!(
        store.fire(vec![send(&step, marie)]).await.expect("fired"),
        0
    );
    assert_eq!(
        store.stream_state(&stream).await.expect("state").head,
        before + 1
    );
    let state = store
        .deadline("dupont", "appel-1")
        .await
        .expect("read")
        .expect("stored");
    let sent = &state.steps[0];
    assert_eq!(sent.state, tocsin_protocol::deadline::StepState::Sent);
    assert_eq!(sent.notification_ids.len(), 1);
    assert!(
        store
            .due_steps(Utc::now(), 100)
            .await
            .expect("due")
            .is_empty()
    );

    // Re-planned: the planned J-2 is cancelled, and firing it now does nothing.
    let planned = state.steps[1].clone();
    let mut record = state.record.clone();
    record.due_at = (Utc::now() + chrono::Duration::days(10)).fixed_offset();
    store
        .upsert_deadline(DeadlineUpsert {
            record,
            expected_revision: Some(state.record.revision),
            plan: Some(Vec::new()),
        })
        .await
        .expect("re-planned");
    assert_eq!(
        store
            .fire(vec![send(&planned, marie)])
            .await
            .expect("fired"),
        0
    );
    let state = store
        .deadline("dupont", "appel-1")
        .await
        .expect("read")
        .expect("stored");
    assert_eq!(
        state.steps[1].state,
        tocsin_protocol::deadline::StepState::Cancelled
    );
    assert_eq!(state.record.revision, 2);
    // A stale revision is a conflict, not a silent overwrite.
    let stale = store
        .upsert_deadline(DeadlineUpsert {
            record: state.record.clone(),
            expected_revision: Some(1),
            plan: None,
        })
        .await;
    assert!(matches!(stale, Err(StoreError::Conflict(_))), "{stale:?}");
    assert!(
        store
            .cancel_deadline(
                "dupont",
                "appel-1",
                tocsin_protocol::deadline::DeadlineStatus::Done
            )
            .await
            .expect("cancelled")
    );
    assert!(
        !store
            .cancel_deadline(
                "martin",
                "appel-1",
                tocsin_protocol::deadline::DeadlineStatus::Done
            )
            .await
            .expect("another firm's id is unknown")
    );
}

/// A publish with `deliver_at` is held until its step fires, then stored once; its
/// idempotency key answers the same id before and after.
pub async fn scheduled_publishes_are_stored_when_fired(store: Arc<dyn Store>) {
    let stream: StreamName = "user:scheduled".parse().expect("name");
    let mut held = request(&stream, "later", Some("sched-1"));
    held.deliver_at = Some(Utc::now() + chrono::Duration::milliseconds(500));
    let first = store.append(vec![held.clone()]).await.expect("scheduled");
    assert!(first[0].deliver_at.is_some() && !first[0].duplicate);
    let again = store.append(vec![held.clone()]).await.expect("scheduled");
    assert!(again[0].duplicate && again[0].id == first[0].id);
    assert_eq!(
        store.stream_state(&stream).await.expect("state").head,
        0,
        "held"
    );
    // Asked as of a second later: the step is due then (no waiting in the test).
    let later = Utc::now() + chrono::Duration::seconds(1);
    let due = store
        .due_steps(later, 100)
        .await
        .expect("due")
        .into_iter()
        .find(|d| d.step.kind == StepKind::Publish)
        .expect("the scheduled publish is due a second later");
    let firing = Firing {
        step_id: due.step.id,
        outcome: tocsin_protocol::deadline::StepState::Sent,
        late: false,
        appends: Vec::new(),
        recipients: Vec::new(),
        follow_ups: Vec::new(),
    };
    assert_eq!(store.fire(vec![firing.clone()]).await.expect("fired"), 1);
    assert_eq!(store.fire(vec![firing]).await.expect("fired"), 0);
    let state = store.stream_state(&stream).await.expect("state");
    assert_eq!(state.head, 1, "stored once");
    let after = store.append(vec![held]).await.expect("a retry");
    assert_eq!(
        (after[0].id.as_str(), after[0].offset),
        (first[0].id.as_str(), 1)
    );
    assert!(after[0].duplicate && after[0].deliver_at.is_none());
}

fn retract_as(id: &str, tenant: Option<&str>, admin: bool, actor: &str) -> RetractRequest {
    RetractRequest {
        notification_id: id.to_owned(),
        tenant: tenant.map(str::to_owned),
        admin,
        actor: actor.to_owned(),
    }
}

/// A retracted notification keeps its slot (offsets stay consecutive) without its
/// content, is not unread any more, is answered the same when retracted again, and is
/// unknown to another firm; a publish-only key retracts only its own; a scheduled
/// publish is withdrawn before it is stored; the audit trail says who retracted.
pub async fn notifications_are_retracted(store: Arc<dyn Store>, marie: &str) {
    let stream: StreamName = format!("user:{marie}").parse().expect("name");
    let before = store.stream_state(&stream).await.expect("state").head;
    let mut sent = store
        .append(vec![
            request(&stream, "Conclusions adverses — Dossier Lefèvre", None),
            request(&stream, "kept", None),
        ])
        .await
        .expect("stored");
    let (wrong, kept) = (sent.remove(0), sent.remove(0));
    let unread = |store: Arc<dyn Store>, stream: StreamName| async move {
        let counts = store
            .unread_counts(marie, std::slice::from_ref(&stream))
            .await
            .expect("counts");
        counts.iter().map(|(_, n)| n).sum::<u64>()
    };
    let unread_before = unread(store.clone(), stream.clone()).await;

    let other_firm = store
        .retract(retract_as(&wrong.id, Some("martin"), true, "key:m1"))
        .await;
    assert!(
        matches!(other_firm, Err(StoreError::NotFound(_))),
        "{other_firm:?}"
    );
    let not_its_own = store
        .retract(retract_as(&wrong.id, Some("dupont"), false, "key:other"))
        .await;
    assert!(
        matches!(not_its_own, Err(StoreError::Forbidden(_))),
        "{not_its_own:?}"
    );

    let done = store
        .retract(retract_as(&wrong.id, Some("dupont"), false, "key:k1"))
        .await
        .expect("its own publisher retracts it");
    assert_eq!(
        (done.stream.as_ref(), done.offset, done.already),
        (Some(&stream), wrong.offset, false)
    );
    let again = store
        .retract(retract_as(&wrong.id, Some("dupont"), true, "key:admin"))
        .await
        .expect("repeated");
    assert!(again.already && again.at == done.at, "{again:?}");

    let range = store
        .read_range(&stream, before, before + 2, 10)
        .await
        .expect("range");
    assert_eq!(
        range.iter().map(|n| n.offset).collect::<Vec<_>>(),
        [wrong.offset, kept.offset],
        "the slot stays"
    );
    assert!(range[0].retracted_at.is_some() && range[1].retracted_at.is_none());
    assert!(
        !range[0].payload.contains("Lefèvre"),
        "the content is gone from the stream: {}",
        range[0].payload
    );
    assert!(
        range[0]
            .slot_frame(true, true)
            .contains(r#""type":"retracted""#)
    );
    assert!(
        range[0]
            .slot_frame(true, false)
            .contains(r#""type":"notification""#)
    );
    assert_eq!(
        unread(store.clone(), stream.clone()).await,
        unread_before - 1
    );
    let unread_range = store
        .read_unread_range(marie, &stream, before, before + 2, 10)
        .await
        .expect("unread");
    assert!(unread_range.iter().all(|n| n.id != wrong.id));
    let recent = store
        .recent_retractions(
            std::slice::from_ref(&stream),
            Utc::now() - chrono::Duration::days(1),
        )
        .await
        .expect("recent");
    assert_eq!(
        recent
            .iter()
            .map(|r| (&r.notification_id[..], r.offset))
            .collect::<Vec<_>>(),
        [(&wrong.id[..], wrong.offset)]
    );

    let mut later = request(&stream, "later", None);
    later.deliver_at = Some(Utc::now() + chrono::Duration::hours(1));
    let held = store.append(vec![later]).await.expect("scheduled");
    let withdrawn = store
        .retract(retract_as(&held[0].id, Some("dupont"), true, "key:admin"))
        .await
        .expect("withdrawn");
    assert!(withdrawn.stream.is_none() && !withdrawn.already);
    assert!(
        store
            .due_steps(Utc::now() + chrono::Duration::hours(2), 100)
            .await
            .expect("due")
            .iter()
            .all(|d| d.step.kind != StepKind::Publish),
        "the withdrawn publish is never stored"
    );

    let trail = store
        .audit(AuditFilter {
            tenant: "dupont".into(),
            dossier: None,
            user_id: Some(marie.to_owned()),
            deadline_id: None,
            from: None,
            to: None,
            after: None,
            limit: 1000,
        })
        .await
        .expect("audit");
    let retracted: Vec<_> = trail
        .iter()
        .filter(|r| r.event == tocsin_protocol::audit::AuditEvent::Retracted)
        .collect();
    assert_eq!(retracted.len(), 1, "{trail:?}");
    assert_eq!(retracted[0].notification_id.as_deref(), Some(&wrong.id[..]));
    assert_eq!(retracted[0].actor.as_deref(), Some("key:k1"));
}
