//! Byte-level mutations of encoded messages, for the property tests of every decoder
//! that reads what a client or a publisher sends (the gateway's frame and publish body
//! tests, this crate's own). Behind the `fuzz` feature: only test builds enable it.

use proptest::prelude::*;
use proptest::sample::{Index, select};

/// One edit of an encoded message.
#[derive(Debug, Clone)]
pub enum ByteEdit {
    /// Flip one bit of one byte (invalid UTF-8 included).
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

/// Any edit; inserted bytes favour JSON's punctuation and literals' letters, which
/// turn a valid message into an almost-valid one more often than random bytes do.
pub fn byte_edit() -> impl Strategy<Value = ByteEdit> {
    let byte = prop_oneof![any::<u8>(), select(b"{}[]\":,\\ 0-en".to_vec())];
    prop_oneof![
        (any::<Index>(), 0..8u8).prop_map(|(at, bit)| ByteEdit::Flip(at, bit)),
        any::<Index>().prop_map(ByteEdit::Delete),
        (any::<Index>(), byte).prop_map(|(at, byte)| ByteEdit::Insert(at, byte)),
        any::<Index>().prop_map(ByteEdit::Truncate),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| ByteEdit::Repeat(a, b)),
    ]
}

/// Applies an edit (an empty message stays empty).
pub fn apply_byte_edit(bytes: &mut Vec<u8>, edit: &ByteEdit) {
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

/// One edit of a message as a JSON object: the decoder's view of a confused or hostile
/// sender that gets the syntax right and the content wrong.
#[derive(Debug, Clone)]
pub enum FieldEdit {
    /// Drop one field.
    Remove(Index),
    /// Give one field a value of any shape (a number where a string goes, …).
    Replace(Index, serde_json::Value),
    /// Add a field, known or not.
    Add(String, serde_json::Value),
}

/// Any field edit, with new keys drawn from `keys` and values from what `values`
/// makes (called once per use).
pub fn field_edit<K, V>(keys: K, values: impl Fn() -> V) -> impl Strategy<Value = FieldEdit>
where
    K: Strategy<Value = String> + 'static,
    V: Strategy<Value = serde_json::Value> + 'static,
{
    prop_oneof![
        any::<Index>().prop_map(FieldEdit::Remove),
        (any::<Index>(), values()).prop_map(|(at, value)| FieldEdit::Replace(at, value)),
        (keys, values()).prop_map(|(key, value)| FieldEdit::Add(key, value)),
    ]
}

/// Applies a field edit (removing or replacing in an empty object does nothing).
pub fn apply_field_edit(object: &mut serde_json::Map<String, serde_json::Value>, edit: FieldEdit) {
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

/// How many cases a property runs when `PROPTEST_CASES` does not say: a second or two
/// per decoder in a debug build, so CI runs every property on every change.
pub const DEFAULT_CASES: u32 = 1024;

/// The properties' configuration: XorShift (proptest's default generator took two
/// thirds of the run time in a debug build), failures kept beside the test's source.
pub fn config() -> ProptestConfig {
    use proptest::test_runner::{FileFailurePersistence, RngAlgorithm};
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

/// Any short text: control characters, quotes, backslashes and non-ASCII included.
pub fn text() -> impl Strategy<Value = String> {
    "(?s).{0,24}"
}

/// The words a decoder knows (its field names, tags, enum values): drawn often, they
/// reach its deeper branches more often than random text does.
#[derive(Debug, Clone, Copy)]
pub struct Vocabulary {
    /// Field names, used as object keys.
    pub fields: &'static [&'static str],
    /// Other known strings (tags, enum values), used as keys and values.
    pub words: &'static [&'static str],
}

/// A JSON value of any shape, its strings and keys often from `vocabulary`.
pub fn json_value(vocabulary: Vocabulary) -> impl Strategy<Value = serde_json::Value> {
    use serde_json::Value;
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        select(vocabulary.words).prop_map(Value::from),
        text().prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 4, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((json_key(vocabulary), inner), 0..4)
                .prop_map(|fields| Value::Object(fields.into_iter().collect())),
        ]
    })
}

/// An object key: a known field, a known word, or any text.
pub fn json_key(vocabulary: Vocabulary) -> impl Strategy<Value = String> {
    prop_oneof![
        select(vocabulary.fields).prop_map(str::to_owned),
        select(vocabulary.words).prop_map(str::to_owned),
        text(),
    ]
}
