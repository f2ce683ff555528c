//! Property tests of what a publish body goes through before any lookup: its bytes
//! decoded exactly as `ApiJson<PublishRequest>` decodes them (`axum::Json::from_bytes`,
//! a rejection turned into an [`AppError`]), then [`validate`].
//!
//! The inputs are arbitrary bytes, JSON values of any shape built from the request's
//! field names and values, and valid requests of every kind with fields near their
//! limits, sent as they are or mutated field by field (removed, replaced by junk of
//! any type or by huge strings, added, written twice) or byte by byte. For every
//! input nothing panics; an accepted request keeps every documented limit; a refusal
//! is a 4xx with a message. For requests built field by field, [`validate`] accepts
//! exactly those within the limits.
//!
//! Each property runs [`tocsin_protocol::fuzz::DEFAULT_CASES`] cases, about a second and a half in all on
//! one thread of a debug build; `PROPTEST_CASES=100000 cargo test -p tocsin-gateway
//! --lib publish::validate` searches longer.

use axum::Json;
use chrono::{DateTime, FixedOffset};
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value, json};
use tocsin_protocol::fuzz::{
    FieldEdit, Vocabulary, apply_byte_edit, apply_field_edit, byte_edit, config, field_edit,
    json_key, json_value, text,
};
use tocsin_protocol::notification::{
    ConversationMessage, DeadlineAlert, DeadlineUrgency, DossierAction, DossierUpdated,
    EmailReceived, MessageRead, Presence, ProposalCreated, ProposalStatus, ProposalStatusChanged,
    SystemLevel, SystemNotification, TypingIndicator, UserStatus,
};
use tocsin_protocol::{Kind, NotificationData, Urgency};

use super::*;

/// The longest idempotency key, as the API documents it (not the constant under test).
const DOCUMENTED_KEY_LEN: usize = 200;

/// Every field name of a publish request and of its kinds' data.
const FIELDS: &[&str] = &[
    "to",
    "tenant",
    "kind",
    "data",
    "title",
    "body",
    "urgency",
    "idempotency_key",
    "subject",
    "from",
    "dossier_number",
    "message_id",
    "has_attachments",
    "action",
    "deadline_id",
    "deadline_type",
    "due_at",
    "time_zone",
    "remaining_days",
    "level",
    "proposal_id",
    "starts_at",
    "proposed_by",
    "status",
    "conversation_id",
    "user_id",
    "active",
    "notification_ids",
];

/// String values the decoder gives meaning to, so that generated JSON gets past the
/// first check more often than random text would.
const WORDS: &[&str] = &[
    "email-received",
    "dossier-updated",
    "deadline-alert",
    "system-notification",
    "proposal-created",
    "proposal-status-changed",
    "conversation-message",
    "typing-indicator",
    "user-status",
    "message-read",
    "low",
    "critical",
    "created",
    "status_changed",
    "error",
    "accepted",
    "online",
    "2026-11-22T18:00:00+01:00",
    "2026-13-45T99:00:00Z",
    "user:marie@dupont.fr",
    "tenant:dupont",
    "all",
];

/// What the JSON strategies draw keys and words from.
const VOCABULARY: Vocabulary = Vocabulary {
    fields: FIELDS,
    words: WORDS,
};

/// Targets of each form; `to` is not checked here, but a real one keeps the bodies
/// realistic.
const TARGETS: &[&str] = &["user:u1", "tenant:dupont", "conversation:c-1", "all"];

/// Characters of one to four bytes, Unicode spaces `trim` removes and a zero-width
/// space it keeps: byte lengths, character counts and trimmed lengths all differ.
const FILL: &[char] = &['a', 'é', '€', '😀', ' ', '\u{3000}', '\u{200b}'];

/// What may surround a title; `trim` removes all but the zero-width space.
const SPACES: &[&str] = &[
    " ", "\t", "\r\n", "\u{a0}", "\u{2028}", "\u{3000}", "\u{200b}",
];

/// The gateway's decoding of a publish body, as `ApiJson<PublishRequest>` runs it
/// once the body is read, its rejection turned into the handler's answer.
fn decode(body: &[u8]) -> Result<PublishRequest, AppError> {
    Json::<PublishRequest>::from_bytes(body)
        .map(|Json(request)| request)
        .map_err(AppError::from)
}

/// The first documented limit a request breaks, if any: the specification the
/// properties hold [`validate`] to, written apart from it.
fn broken_limit(request: &PublishRequest) -> Option<&'static str> {
    let title = request.title.trim();
    // Bytes, as the gateway counts and docs/PROTOCOL.md says.
    let key_len = request.idempotency_key.as_ref().map(String::len);
    if request.data.kind() == Kind::Unknown {
        Some("a kind (or a shape of data) the gateway does not store")
    } else if request.data.kind().is_ephemeral() {
        Some("an ephemeral kind")
    } else if title.is_empty() {
        Some("a blank title")
    } else if title.len() > MAX_TITLE_LEN {
        Some("a title too long")
    } else if request.body.len() > MAX_BODY_LEN {
        Some("a body too long")
    } else if key_len.is_some_and(|len| !(1..=DOCUMENTED_KEY_LEN).contains(&len)) {
        Some("an idempotency key of the wrong length")
    } else if request.url.as_deref().is_some_and(url_refused) {
        Some("a url that is not a page or an application link")
    } else {
        None
    }
}

fn check_accepted(request: &PublishRequest, valid: &Validated) -> Result<(), TestCaseError> {
    prop_assert_eq!(broken_limit(request), None, "accepted: {:?}", request);
    prop_assert_eq!(valid.title.as_str(), request.title.trim());
    Ok(())
}

/// A refusal blames the request (4xx) and says why: the publisher reads the message.
fn check_refused(err: &AppError) -> Result<(), TestCaseError> {
    prop_assert!(
        err.status.is_client_error(),
        "{} for a bad request: {}",
        err.status,
        err.body.message
    );
    prop_assert!(
        !err.body.message.trim().is_empty(),
        "a refusal without a message"
    );
    Ok(())
}

/// The property every body must have, whatever its bytes.
fn check_body(body: &[u8]) -> Result<(), TestCaseError> {
    let decoded = decode(body);
    // The handler decodes through serde_path_to_error (for the field path in its
    // message); plain `serde_json::from_slice` must accept exactly the same bodies.
    let plain = serde_json::from_slice::<PublishRequest>(body);
    prop_assert_eq!(decoded.is_ok(), plain.is_ok(), "{:?}", plain.err());
    match decoded.and_then(|request| validate(&request).map(|valid| (request, valid))) {
        Ok((request, valid)) => check_accepted(&request, &valid),
        Err(err) => check_refused(&err),
    }
}

// ---- Valid requests -------------------------------------------------------------

fn at(text: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(text).expect("a valid date")
}

/// Typed data of a kind, as an emitter would send it.
fn example_data(kind: Kind) -> NotificationData {
    let text = |s: &str| s.to_owned();
    match kind {
        Kind::EmailReceived => NotificationData::EmailReceived(EmailReceived {
            extra: Default::default(),
            subject: text("Conclusions"),
            from: text("Me Martin"),
            dossier_number: Some(text("2026-0142")),
            message_id: None,
            has_attachments: true,
        }),
        Kind::DossierUpdated => NotificationData::DossierUpdated(DossierUpdated {
            extra: Default::default(),
            dossier_number: text("2026-0142"),
            action: DossierAction::StatusChanged,
            dossier_title: None,
            status: Some(text("clos")),
            previous_status: Some(text("ouvert")),
            document_name: None,
        }),
        Kind::DeadlineAlert => NotificationData::DeadlineAlert(DeadlineAlert {
            extra: Default::default(),
            deadline_id: text("d-9"),
            deadline_type: text("appel"),
            due_at: at("2026-11-22T18:00:00+01:00"),
            time_zone: text("Europe/Paris"),
            urgency: DeadlineUrgency::Critical,
            remaining_days: -1,
            dossier_number: None,
            dossier_title: None,
            working_days_left: None,
            reminder: None,
            late: false,
            escalation: None,
        }),
        Kind::SystemNotification => NotificationData::SystemNotification(SystemNotification {
            extra: Default::default(),
            level: SystemLevel::Error,
            code: Some(text("backup-failed")),
        }),
        Kind::ProposalCreated => NotificationData::ProposalCreated(ProposalCreated {
            extra: Default::default(),
            proposal_id: text("p-1"),
            starts_at: at("2026-11-23T10:00:00+01:00"),
            ends_at: Some(at("2026-11-23T11:00:00+01:00")),
            proposed_by: text("Me Martin"),
            location: None,
            conversation_id: Some(text("c-1")),
            dossier_number: None,
        }),
        Kind::ProposalStatusChanged => {
            NotificationData::ProposalStatusChanged(ProposalStatusChanged {
                extra: Default::default(),
                proposal_id: text("p-1"),
                status: ProposalStatus::Accepted,
                responded_by: Some(text("u1")),
                conversation_id: None,
            })
        }
        Kind::ConversationMessage => NotificationData::ConversationMessage(ConversationMessage {
            extra: Default::default(),
            conversation_id: text("c-1"),
            message_id: text("m-1"),
            from: text("Marie"),
            excerpt: text("Bonjour"),
        }),
        Kind::TypingIndicator => NotificationData::TypingIndicator(TypingIndicator {
            conversation_id: text("c-1"),
            user_id: text("u1"),
            active: true,
        }),
        Kind::UserStatus => NotificationData::UserStatus(UserStatus {
            user_id: text("u1"),
            status: Presence::Busy,
        }),
        Kind::MessageRead => NotificationData::MessageRead(MessageRead {
            conversation_id: text("c-1"),
            user_id: text("u1"),
            notification_ids: vec![text("n1"), text("n2")],
        }),
        Kind::Unknown => NotificationData::from_parts(text("deadline-escalated"), json!({})),
    }
}

/// A request of a kind that every check accepts.
fn valid_request(kind: Kind) -> PublishRequest {
    PublishRequest {
        url: None,
        to: "user:marie@dupont.fr".to_owned(),
        tenant: Some("dupont".to_owned()),
        data: example_data(kind),
        title: " Nouveau mail\n".to_owned(),
        body: "Conclusions reçues".to_owned(),
        urgency: Some(Urgency::High),
        idempotency_key: Some("mail-77".to_owned()),
        deliver_at: None,
    }
}

fn body_of(request: &PublishRequest) -> Vec<u8> {
    serde_json::to_vec(request).expect("a request always serialises")
}

/// Exactly `bytes` bytes of `fill`, topped up with `a` where `fill` is wider than
/// the space left.
fn fill_to(fill: char, bytes: usize) -> String {
    let mut text: String = std::iter::repeat_n(fill, bytes / fill.len_utf8()).collect();
    while text.len() < bytes {
        text.push('a');
    }
    text
}

/// Text within three bytes of `limit`, either side.
fn near(limit: usize) -> impl Strategy<Value = String> {
    (select(FILL), limit - 3..=limit + 3).prop_map(|(fill, bytes)| fill_to(fill, bytes))
}

fn spaces() -> impl Strategy<Value = String> {
    prop::collection::vec(select(SPACES), 0..4).prop_map(|spaces| spaces.concat())
}

/// Short, blank or near the limit, often padded with spaces `trim` removes.
fn title() -> impl Strategy<Value = String> {
    let core = prop_oneof![4 => text(), 1 => Just(String::new()), 2 => near(MAX_TITLE_LEN)];
    (spaces(), core, spaces()).prop_map(|(before, core, after)| format!("{before}{core}{after}"))
}

fn body() -> impl Strategy<Value = String> {
    prop_oneof![3 => text(), 1 => near(MAX_BODY_LEN)]
}

fn idempotency_key() -> impl Strategy<Value = String> {
    prop_oneof![Just(String::new()), text(), near(DOCUMENTED_KEY_LEN)]
}

fn target() -> impl Strategy<Value = String> {
    prop_oneof![select(TARGETS).prop_map(str::to_owned), text(),]
}

fn urgency() -> impl Strategy<Value = Urgency> {
    select(vec![
        Urgency::Low,
        Urgency::Normal,
        Urgency::High,
        Urgency::Critical,
    ])
}

/// Stored kinds mostly: an ephemeral one is refused before anything else is checked.
fn kind() -> impl Strategy<Value = Kind> {
    let (ephemeral, stored): (Vec<Kind>, Vec<Kind>) =
        Kind::ALL.into_iter().partition(|kind| kind.is_ephemeral());
    prop_oneof![8 => select(stored), 2 => select(ephemeral), 1 => Just(Kind::Unknown)]
}

/// Links a publisher may send, and whether PROTOCOL.md §4 lets them through.
const URLS: &[(&str, bool)] = &[
    ("https://ged.cabinet.fr/dossiers/2026-0142", true),
    ("secib://dossier/2026-0142", true),
    ("javascript:alert(1)", false),
    ("data:text/html,x", false),
    ("file:///etc/passwd", false),
    ("/dossiers/2026-0142", false),
    ("https://", false),
];

/// Whether a `url` must be refused: the verdict of [`URLS`] for the links listed
/// there; for others (byte edits of them), at least every one that would run code or
/// read a file once the URL parser has dropped the leading spaces and controls.
fn url_refused(url: &str) -> bool {
    if let Some((_, ok)) = URLS.iter().find(|(known, _)| *known == url) {
        return !ok;
    }
    let opened = url
        .trim_start_matches(|c: char| c <= ' ')
        .to_ascii_lowercase()
        .replace(['\t', '\n', '\r'], "");
    ["javascript:", "vbscript:", "data:", "file:"]
        .iter()
        .any(|scheme| opened.starts_with(scheme))
}

fn url() -> impl Strategy<Value = Option<String>> {
    prop::option::of(select(URLS).prop_map(|(url, _)| url.to_owned()))
}

/// A request of any kind (ephemeral ones too), every field within, at or just past
/// its limit.
fn publish_request() -> impl Strategy<Value = PublishRequest> {
    (
        kind(),
        (target(), prop::option::of(text())),
        (title(), body()),
        prop::option::of(urgency()),
        (prop::option::of(idempotency_key()), url()),
    )
        .prop_map(
            |(kind, (to, tenant), (title, body), urgency, (idempotency_key, url))| PublishRequest {
                url,
                to,
                tenant,
                data: example_data(kind),
                title,
                body,
                urgency,
                idempotency_key,
                deliver_at: None,
            },
        )
}

// ---- JSON-shaped input ----------------------------------------------------------

/// A string at or past one of the limits, or far past the largest.
fn huge_string() -> impl Strategy<Value = Value> {
    prop_oneof![
        near(DOCUMENTED_KEY_LEN),
        near(MAX_TITLE_LEN),
        near(MAX_BODY_LEN),
        Just(fill_to('😀', 4 * MAX_BODY_LEN)),
    ]
    .prop_map(Value::from)
}

/// What a field may be replaced with: anything, now and then a huge string.
fn field_value() -> impl Strategy<Value = Value> {
    prop_oneof![6 => json_value(VOCABULARY), 1 => huge_string()]
}

/// An object shaped like a publish body: a known kind, known fields at the top and
/// in `data`, values of any shape.
fn publish_like_object() -> impl Strategy<Value = Value> {
    let fields = || prop::collection::btree_map(json_key(VOCABULARY), field_value(), 0..6);
    (select(WORDS), fields(), fields()).prop_map(|(kind, top, data)| {
        let mut object: Map<String, Value> = top.into_iter().collect();
        object.insert("kind".into(), kind.into());
        object.insert("data".into(), Value::Object(data.into_iter().collect()));
        Value::Object(object)
    })
}

// ---- Mutations of valid requests ------------------------------------------------

/// Applies an edit inside `data` when asked and `data` is still an object, else at
/// the top: the kind's fields are decoded by a different path (serde's buffered
/// `flatten`) than the request's own.
fn edit_body(body: &mut Map<String, Value>, in_data: bool, edit: FieldEdit) {
    match body.get_mut("data") {
        Some(Value::Object(data)) if in_data => apply_field_edit(data, edit),
        _ => apply_field_edit(body, edit),
    }
}

/// The object's JSON with one of its fields written twice, the extra copy first and
/// with another value: a `Map` cannot hold that, a hand-written body can.
fn with_duplicate(object: &Map<String, Value>, at: &Index, value: &Value) -> String {
    let text = Value::Object(object.clone()).to_string();
    if object.is_empty() {
        return text;
    }
    let key = object.keys().nth(at.index(object.len())).expect("in range");
    format!("{{{}:{value},{}", Value::from(key.as_str()), &text[1..])
}

// ---- Properties -----------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn validate_accepts_exactly_the_requests_within_the_limits(request in publish_request()) {
        let decoded = decode(&body_of(&request)).map_err(|err| {
            TestCaseError::fail(format!("a well-formed body refused: {}", err.body.message))
        })?;
        prop_assert_eq!(&decoded, &request);
        match validate(&decoded) {
            Ok(valid) => check_accepted(&decoded, &valid)?,
            Err(err) => {
                prop_assert!(
                    broken_limit(&decoded).is_some(),
                    "refused within the limits: {}",
                    err.body.message
                );
                check_refused(&err)?;
            }
        }
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        check_body(&bytes)?;
    }

    #[test]
    fn json_values_are_checked(value in prop_oneof![json_value(VOCABULARY), publish_like_object()]) {
        check_body(value.to_string().as_bytes())?;
    }

    #[test]
    fn field_edited_requests_are_checked(
        request in publish_request(),
        edits in prop::collection::vec((any::<bool>(), field_edit(json_key(VOCABULARY), field_value)), 1..4),
        duplicate in prop::option::weighted(0.2, (any::<Index>(), field_value())),
    ) {
        let Value::Object(mut object) = serde_json::to_value(&request).expect("serialises")
        else {
            panic!("a publish request is a JSON object");
        };
        for (in_data, edit) in edits {
            edit_body(&mut object, in_data, edit);
        }
        let text = match &duplicate {
            Some((at, value)) => with_duplicate(&object, at, value),
            None => Value::Object(object).to_string(),
        };
        check_body(text.as_bytes())?;
    }

    #[test]
    fn byte_edited_requests_are_checked(
        request in publish_request(),
        edits in prop::collection::vec(byte_edit(), 1..4),
    ) {
        let mut bytes = body_of(&request);
        for edit in &edits {
            apply_byte_edit(&mut bytes, edit);
        }
        check_body(&bytes)?;
    }
}

// ---- Fixed cases ----------------------------------------------------------------

fn stored_kinds() -> impl Iterator<Item = Kind> {
    Kind::ALL.into_iter().filter(|kind| !kind.is_ephemeral())
}

/// Decodes and validates, as the handler does up to the first lookup.
fn accept(request: &PublishRequest) -> Result<Validated, AppError> {
    validate(&decode(&body_of(request))?)
}

#[test]
fn a_valid_request_of_each_stored_kind_is_accepted() {
    for kind in stored_kinds() {
        let valid = accept(&valid_request(kind))
            .unwrap_or_else(|err| panic!("{kind:?} refused: {}", err.body.message));
        assert_eq!(
            valid.title, "Nouveau mail",
            "{kind:?}: the title is trimmed"
        );
    }
}

#[test]
fn ephemeral_kinds_are_refused() {
    for kind in Kind::ALL.into_iter().filter(|kind| kind.is_ephemeral()) {
        let err = accept(&valid_request(kind)).expect_err("refused");
        assert_eq!(err.status.as_u16(), 422, "{kind:?}");
        assert!(err.body.message.contains(kind.as_str()), "{kind:?}");
    }
}

/// Each limit, exactly at and one past it: the limits are inclusive, the title is
/// measured after trimming, every length is counted in bytes.
#[test]
fn limits_are_inclusive_and_in_bytes() {
    let status = |edit: fn(&mut PublishRequest)| {
        let mut request = valid_request(Kind::EmailReceived);
        edit(&mut request);
        accept(&request).err().map(|err| err.status.as_u16())
    };
    assert_eq!(
        status(|r| r.title = format!(" {} ", "a".repeat(MAX_TITLE_LEN))),
        None
    );
    assert_eq!(
        status(|r| r.title = "a".repeat(MAX_TITLE_LEN + 1)),
        Some(422)
    );
    assert_eq!(status(|r| r.title = "\u{3000}\t".to_owned()), Some(422));
    assert_eq!(status(|r| r.body = "a".repeat(MAX_BODY_LEN)), None);
    assert_eq!(status(|r| r.body = "a".repeat(MAX_BODY_LEN + 1)), Some(413));
    assert_eq!(status(|r| r.idempotency_key = None), None);
    assert_eq!(status(|r| r.idempotency_key = Some("k".repeat(200))), None);
    assert_eq!(
        status(|r| r.idempotency_key = Some("k".repeat(201))),
        Some(422)
    );
    assert_eq!(
        status(|r| r.idempotency_key = Some(String::new())),
        Some(422)
    );
    // 257 characters, 514 bytes; 101 characters, 202 bytes: both refused (bytes).
    assert_eq!(status(|r| r.title = "é".repeat(257)), Some(422));
    assert_eq!(
        status(|r| r.idempotency_key = Some("é".repeat(101))),
        Some(422)
    );
}

/// Nesting far past serde_json's recursion limit, in a field the request does not
/// know (buffered by `flatten`) or in `data`, is a 400, not a stack overflow.
#[test]
fn deep_nesting_is_a_client_error_not_a_stack_overflow() {
    for open in [r#"{"x":"#, r#"{"kind":"email-received","data":{"subject":"#] {
        let body = format!("{open}{}", "[".repeat(100_000));
        let err = decode(body.as_bytes()).expect_err("refused");
        assert_eq!(err.status.as_u16(), 400, "{open}: {}", err.body.message);
    }
}
