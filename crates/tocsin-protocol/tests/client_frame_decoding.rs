//! Property tests of client-frame decoding: what the gateway does with every text frame
//! a client sends (`serde_json::from_str::<ClientFrame>` in tocsin-gateway's
//! `ws::session::classify`, whose error becomes a protocol-violation close).
//!
//! The inputs are arbitrary bytes (as the text a WebSocket text frame carries),
//! JSON-shaped soup and JSON values built from the frames' own tags and field names, and
//! valid frames mutated byte by byte or field by field. For every input, decoding never
//! panics and a refusal is an `Err` that says something (never an I/O error); whatever is
//! accepted is a frame that encodes and decodes back to itself. Valid frames round-trip
//! exactly.
//!
//! Each property runs [`DEFAULT_CASES`] cases, about a second in all on a debug build;
//! `PROPTEST_CASES=100000 cargo test -p tocsin-protocol --test client_frame_decoding`
//! searches longer.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{FileFailurePersistence, RngAlgorithm, TestCaseError};
use serde_json::{Map, Value};
use tocsin_protocol::frames::{ClientFrame, ProposalResponse};
use tocsin_protocol::notification::Presence;
use tocsin_protocol::{Kind, Position, StreamName};

/// Cases per property unless `PROPTEST_CASES` says otherwise: enough to reach every
/// variant and field many times, few enough for the test suite's time.
const DEFAULT_CASES: u32 = 1024;

/// Every `type` tag a client frame can carry.
const TAGS: &[&str] = &[
    "auth",
    "hello",
    "mark_read",
    "mark_all_read",
    "proposal_respond",
    "join",
    "leave",
    "typing",
    "presence",
    "refresh",
    "ping",
];

/// Every field name of every client frame, and of the positions inside `hello`.
const FIELDS: &[&str] = &[
    "type",
    "token",
    "positions",
    "client",
    "id",
    "notification_ids",
    "kind",
    "proposal_id",
    "response",
    "conversation_id",
    "position",
    "active",
    "status",
    "access_token",
    "epoch",
    "offset",
];

/// String values the decoder gives meaning to (enum names, stream names valid and not),
/// so that generated JSON gets past the first check more often than random text would.
const WORDS: &[&str] = &[
    "accept",
    "reject",
    "online",
    "away",
    "busy",
    "offline",
    "email-received",
    "typing-indicator",
    "message-read",
    "all",
    "user:u1",
    "tenant:dupont",
    "conversation:c-1",
    "user:",
    "room:1",
    "user:a b",
];

/// The gateway's decoder, exactly as `classify` calls it on a text frame.
fn decode(text: &str) -> Result<ClientFrame, serde_json::Error> {
    serde_json::from_str(text)
}

fn encode(frame: &ClientFrame) -> String {
    serde_json::to_string(frame).expect("a client frame always serialises")
}

/// The property every input must have: an accepted text is a frame that survives an
/// encode/decode round trip unchanged; a refused one is an ordinary error with a message
/// (the gateway puts it in the close frame's explanation).
fn check_decoding(text: &str) -> Result<(), TestCaseError> {
    match decode(text) {
        Ok(frame) => {
            let again = decode(&encode(&frame));
            prop_assert_eq!(again.ok(), Some(frame), "accepted from {:?}", text);
        }
        Err(err) => {
            prop_assert!(!err.is_io(), "decoding a string reported I/O: {err}");
            prop_assert!(!err.to_string().is_empty(), "an error without a message");
        }
    }
    Ok(())
}

/// [`DEFAULT_CASES`] unless `PROPTEST_CASES` is set; a failing case is saved in
/// `client_frame_decoding.proptest-regressions` beside this file and tried first on the
/// next runs (commit it with the fix). XorShift, not the default ChaCha: on a debug
/// build ChaCha's unoptimised SIMD took two thirds of the run (perf), and these tests
/// need variety, not cryptographic randomness.
fn config() -> ProptestConfig {
    let mut config = ProptestConfig {
        rng_algorithm: RngAlgorithm::XorShift,
        failure_persistence: Some(Box::new(FileFailurePersistence::WithSource(
            "proptest-regressions",
        ))),
        ..ProptestConfig::default()
    };
    if std::env::var_os("PROPTEST_CASES").is_none() {
        config.cases = DEFAULT_CASES;
    }
    config
}

// ---- Valid frames -------------------------------------------------------------------

/// Any text, control characters, quotes, backslashes and non-ASCII included.
fn text() -> impl Strategy<Value = String> {
    "(?s).{0,24}"
}

fn stream_name() -> impl Strategy<Value = StreamName> {
    let id = "[A-Za-z0-9_.@+|:-]{1,128}";
    prop_oneof![
        Just(StreamName::All),
        id.prop_map(StreamName::User),
        id.prop_map(StreamName::Tenant),
        id.prop_map(StreamName::Conversation),
    ]
}

fn position() -> impl Strategy<Value = Position> {
    (text(), any::<u64>()).prop_map(|(epoch, offset)| Position { epoch, offset })
}

fn kind() -> impl Strategy<Value = Kind> {
    select(Kind::ALL.to_vec())
}

fn presence() -> impl Strategy<Value = Presence> {
    select(vec![
        Presence::Online,
        Presence::Away,
        Presence::Busy,
        Presence::Offline,
    ])
}

fn proposal_response() -> impl Strategy<Value = ProposalResponse> {
    select(vec![ProposalResponse::Accept, ProposalResponse::Reject])
}

/// Every variant of [`ClientFrame`], with every optional field both present and absent.
fn client_frame() -> impl Strategy<Value = ClientFrame> {
    prop_oneof![
        text().prop_map(|token| ClientFrame::Auth { token }),
        (
            prop::collection::btree_map(stream_name(), position(), 0..4),
            prop::option::of(text()),
        )
            .prop_map(|(positions, client)| ClientFrame::Hello { positions, client }),
        (text(), prop::collection::vec(text(), 0..4)).prop_map(|(id, notification_ids)| {
            ClientFrame::MarkRead {
                id,
                notification_ids,
            }
        }),
        (text(), prop::option::of(kind()))
            .prop_map(|(id, kind)| ClientFrame::MarkAllRead { id, kind }),
        (text(), text(), proposal_response()).prop_map(|(id, proposal_id, response)| {
            ClientFrame::ProposalRespond {
                id,
                proposal_id,
                response,
            }
        }),
        (text(), text(), prop::option::of(position())).prop_map(
            |(id, conversation_id, position)| ClientFrame::Join {
                id,
                conversation_id,
                position,
            }
        ),
        (text(), text()).prop_map(|(id, conversation_id)| ClientFrame::Leave {
            id,
            conversation_id
        }),
        (text(), text(), any::<bool>()).prop_map(|(id, conversation_id, active)| {
            ClientFrame::Typing {
                id,
                conversation_id,
                active,
            }
        }),
        (text(), presence()).prop_map(|(id, status)| ClientFrame::Presence { id, status }),
        (text(), text()).prop_map(|(id, access_token)| ClientFrame::Refresh { id, access_token }),
        Just(ClientFrame::Ping {}),
    ]
}

// ---- JSON-shaped input --------------------------------------------------------------

/// A JSON value of any shape, its strings and keys often ones the decoder knows.
fn json_value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        select(WORDS).prop_map(Value::from),
        select(TAGS).prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((json_key(), inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

fn json_key() -> impl Strategy<Value = String> {
    prop_oneof![
        select(FIELDS).prop_map(str::to_owned),
        select(WORDS).prop_map(str::to_owned),
        text(),
    ]
}

/// An object shaped like a client frame: a known (or odd) `type` and known fields with
/// values of any shape.
fn frame_like_object() -> impl Strategy<Value = Value> {
    let tag = prop_oneof![
        4 => select(TAGS).prop_map(Value::from),
        1 => json_value(),
    ];
    (
        prop::option::weighted(0.95, tag),
        prop::collection::btree_map(json_key(), json_value(), 0..6),
    )
        .prop_map(|(tag, fields)| {
            let mut object: Map<String, Value> = fields.into_iter().collect();
            if let Some(tag) = tag {
                object.insert("type".into(), tag);
            }
            Value::Object(object)
        })
}

/// Text made of JSON's punctuation, literals and the protocol's words, in any order.
fn json_soup() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        select(vec![
            "{",
            "}",
            "[",
            "]",
            ":",
            ",",
            " ",
            "\"",
            "\\",
            "\\u",
            "\\ud800",
            "null",
            "true",
            "false",
            "-",
            "0",
            "1e999",
            "18446744073709551616",
            "-1",
            "0.5",
        ])
        .prop_map(str::to_owned),
        select(FIELDS).prop_map(|field| format!("\"{field}\"")),
        select(TAGS).prop_map(|tag| format!("\"{tag}\"")),
        select(WORDS).prop_map(|word| format!("\"{word}\"")),
    ];
    prop::collection::vec(token, 0..40).prop_map(|tokens| tokens.concat())
}

// ---- Mutations of valid frames ------------------------------------------------------

/// One edit of a frame's encoded bytes.
#[derive(Debug, Clone)]
enum ByteEdit {
    /// Flip one bit of one byte.
    Flip(Index, u8),
    /// Remove one byte.
    Delete(Index),
    /// Insert one byte (often JSON punctuation) before a position.
    Insert(Index, u8),
    /// Keep only a prefix, as a message cut short would.
    Truncate(Index),
    /// Repeat a stretch right after itself.
    Repeat(Index, Index),
}

fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    let byte = prop_oneof![any::<u8>(), select(b"{}[]\":,\\ 0-en".to_vec())];
    prop_oneof![
        (any::<Index>(), 0..8u8).prop_map(|(at, bit)| ByteEdit::Flip(at, bit)),
        any::<Index>().prop_map(ByteEdit::Delete),
        (any::<Index>(), byte).prop_map(|(at, byte)| ByteEdit::Insert(at, byte)),
        any::<Index>().prop_map(ByteEdit::Truncate),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| ByteEdit::Repeat(a, b)),
    ]
}

fn apply_byte_edit(bytes: &mut Vec<u8>, edit: &ByteEdit) {
    let len = bytes.len();
    if len == 0 {
        return;
    }
    match edit {
        ByteEdit::Flip(at, bit) => bytes[at.index(len)] ^= 1 << bit,
        ByteEdit::Delete(at) => {
            bytes.remove(at.index(len));
        }
        ByteEdit::Insert(at, byte) => bytes.insert(at.index(len + 1), *byte),
        ByteEdit::Truncate(at) => bytes.truncate(at.index(len)),
        ByteEdit::Repeat(a, b) => {
            let (a, b) = (a.index(len), b.index(len));
            let (start, end) = (a.min(b), a.max(b) + 1);
            let stretch = bytes[start..end].to_vec();
            bytes.splice(end..end, stretch);
        }
    }
}

/// One edit of a frame as a JSON object: the decoder's view of a confused or hostile
/// client that gets the syntax right and the content wrong.
#[derive(Debug, Clone)]
enum FieldEdit {
    /// Drop one field (`type` included).
    Remove(Index),
    /// Give one field a value of any shape.
    Replace(Index, Value),
    /// Add a field, known or not.
    Add(String, Value),
}

fn field_edit() -> impl Strategy<Value = FieldEdit> {
    prop_oneof![
        any::<Index>().prop_map(FieldEdit::Remove),
        (any::<Index>(), json_value()).prop_map(|(at, value)| FieldEdit::Replace(at, value)),
        (json_key(), json_value()).prop_map(|(key, value)| FieldEdit::Add(key, value)),
    ]
}

fn apply_field_edit(object: &mut Map<String, Value>, edit: FieldEdit) {
    let keys: Vec<String> = object.keys().cloned().collect();
    match edit {
        FieldEdit::Add(key, value) => {
            object.insert(key, value);
        }
        _ if keys.is_empty() => {}
        FieldEdit::Remove(at) => {
            object.remove(&keys[at.index(keys.len())]);
        }
        FieldEdit::Replace(at, value) => {
            object.insert(keys[at.index(keys.len())].clone(), value);
        }
    }
}

// ---- Properties ---------------------------------------------------------------------

proptest! {
    #![proptest_config(config())]

    #[test]
    fn valid_frames_round_trip(frame in client_frame()) {
        let text = encode(&frame);
        let decoded = decode(&text);
        prop_assert!(decoded.is_ok(), "{text} refused: {decoded:?}");
        prop_assert_eq!(decoded.ok(), Some(frame));
    }

    #[test]
    fn arbitrary_bytes_never_panic(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        // A WebSocket text frame is UTF-8 (tungstenite checks before the gateway sees
        // it), so the bytes are read the way a lenient sender would have sent them.
        check_decoding(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn json_soup_never_panics(text in json_soup()) {
        check_decoding(&text)?;
    }

    #[test]
    fn json_values_decode_consistently(value in prop_oneof![json_value(), frame_like_object()]) {
        check_decoding(&value.to_string())?;
    }

    #[test]
    fn byte_edited_frames_decode_consistently(
        frame in client_frame(),
        edits in prop::collection::vec(byte_edit(), 1..4),
    ) {
        let mut bytes = encode(&frame).into_bytes();
        for edit in &edits {
            apply_byte_edit(&mut bytes, edit);
        }
        check_decoding(&String::from_utf8_lossy(&bytes))?;
    }

    #[test]
    fn field_edited_frames_decode_consistently(
        frame in client_frame(),
        edits in prop::collection::vec(field_edit(), 1..4),
    ) {
        let Value::Object(mut object) = serde_json::to_value(&frame).expect("serialises") else {
            panic!("a client frame is a JSON object");
        };
        for edit in edits {
            apply_field_edit(&mut object, edit);
        }
        check_decoding(&Value::Object(object).to_string())?;
    }
}

// ---- Fixed cases the generators are unlikely to reach --------------------------------

/// Nesting far past serde_json's recursion limit (128) is refused, not a stack
/// overflow: a client controls how deep its frame nests, up to the message size limit.
#[test]
fn deep_nesting_is_an_error_not_a_stack_overflow() {
    let depth = 100_000;
    for open in [
        r#"{"type":"auth","token":["#,
        r#"{"a":"#,
        r#"{"type":"hello","positions":{"user:u1":{"epoch":"e","offset":0,"x":"#,
    ] {
        let text = format!("{open}{}", "[".repeat(depth));
        let err = decode(&text).expect_err("refused");
        assert!(err.is_syntax(), "{open}: {err}");
        assert!(err.to_string().contains("recursion limit"), "{open}: {err}");
    }
    let closed = format!(
        r#"{{"type":"ping","x":{}{}}}"#,
        "[".repeat(depth),
        "]".repeat(depth)
    );
    assert!(
        decode(&closed).is_err(),
        "even when every bracket is closed"
    );
    // Refused before any nesting is read: a frame is an object.
    assert!(decode(&"[".repeat(depth)).is_err());
}

/// What an accepted frame may tolerate and what it may not, pinned down: unknown fields
/// are ignored (forward compatibility), a repeated field or a stray value is refused.
#[test]
fn unknown_fields_pass_and_duplicates_fail() {
    let frame = decode(r#"{"type":"ping","from":"the future"}"#).expect("unknown field ignored");
    assert_eq!(frame, ClientFrame::Ping {});
    assert!(decode(r#"{"type":"auth","token":"a","token":"b"}"#).is_err());
    assert!(decode(r#"{"type":"ping"} {"type":"ping"}"#).is_err());
    assert!(decode(r#"{"type":"typing","id":"a","conversation_id":"c","active":"yes"}"#).is_err());
    let empty = decode(r#"{"type":"hello"}"#).expect("positions default to none");
    assert_eq!(
        empty,
        ClientFrame::Hello {
            positions: BTreeMap::new(),
            client: None
        }
    );
}
