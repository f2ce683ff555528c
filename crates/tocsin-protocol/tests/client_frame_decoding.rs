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
//! Each property runs [`tocsin_protocol::fuzz::DEFAULT_CASES`] cases, about a second in all on a debug build;
//! `PROPTEST_CASES=100000 cargo test -p tocsin-protocol --test client_frame_decoding`
//! searches longer.

use std::collections::BTreeMap;

use proptest::prelude::*;
use proptest::sample::select;
use proptest::test_runner::TestCaseError;
use serde_json::{Map, Value};
use tocsin_protocol::frames::{ClientFrame, ProposalResponse};
use tocsin_protocol::fuzz::{
    Vocabulary, apply_byte_edit, apply_field_edit, byte_edit, config, field_edit, json_key,
    json_value, text,
};
use tocsin_protocol::notification::Presence;
use tocsin_protocol::{Kind, Position, StreamName};

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

/// What the JSON strategies draw keys and words from.
const VOCABULARY: Vocabulary = Vocabulary {
    fields: FIELDS,
    words: WORDS,
};

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

// ---- Valid frames -------------------------------------------------------------------

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
            prop::collection::vec(text(), 0..3),
        )
            .prop_map(|(positions, client, features)| ClientFrame::Hello {
                positions,
                client,
                features,
            }),
        (text(), prop::collection::vec(text(), 0..4)).prop_map(|(id, notification_ids)| {
            ClientFrame::MarkRead {
                id,
                notification_ids,
            }
        }),
        (
            text(),
            prop::option::of(kind()),
            prop::option::of(prop::collection::btree_map(stream_name(), position(), 0..4)),
        )
            .prop_map(|(id, kind, up_to)| ClientFrame::MarkAllRead { id, kind, up_to }),
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

/// An object shaped like a client frame: a known (or odd) `type` and known fields with
/// values of any shape.
fn frame_like_object() -> impl Strategy<Value = Value> {
    let tag = prop_oneof![
        4 => select(TAGS).prop_map(Value::from),
        1 => json_value(VOCABULARY),
    ];
    (
        prop::option::weighted(0.95, tag),
        prop::collection::btree_map(json_key(VOCABULARY), json_value(VOCABULARY), 0..6),
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
    fn json_values_decode_consistently(value in prop_oneof![json_value(VOCABULARY), frame_like_object()]) {
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
        edits in prop::collection::vec(field_edit(json_key(VOCABULARY), || json_value(VOCABULARY)), 1..4),
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
            client: None,
            features: Vec::new(),
        }
    );
}
