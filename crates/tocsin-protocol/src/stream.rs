//! Stream names and positions.
//!
//! Every stored notification lives in exactly one stream at one `(epoch, offset)`.
//! Offsets start at 1 and grow by one per stream; the epoch is an opaque string that
//! changes only if the stream's history is lost, so an offset is meaningful only
//! together with its epoch.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// The longest id accepted inside a stream name, in bytes.
pub const MAX_STREAM_ID_LEN: usize = 128;
/// The longest id in a stream name. A conversation's stream carries its firm before
/// its id (`conversation:<firm>:<id>`: two firms may use the same id), so it can be a
/// slug (64) and a colon longer than any id.
pub const MAX_STREAM_NAME_ID_LEN: usize = MAX_STREAM_ID_LEN + 65;

/// A stream a notification can be published to and a client can read.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum StreamName {
    /// One user's private stream, by user id.
    User(String),
    /// One firm's stream, by tenant slug.
    Tenant(String),
    /// A conversation's stream; readable by its members only.
    Conversation(String),
    /// Every user of every firm on this gateway (platform notices).
    All,
}

impl StreamName {
    /// The stream's kind as written before the colon (`user`, `tenant`, …).
    pub fn prefix(&self) -> &'static str {
        match self {
            StreamName::User(_) => "user",
            StreamName::Tenant(_) => "tenant",
            StreamName::Conversation(_) => "conversation",
            StreamName::All => "all",
        }
    }
}

impl fmt::Display for StreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StreamName::User(id) => write!(f, "user:{id}"),
            StreamName::Tenant(slug) => write!(f, "tenant:{slug}"),
            StreamName::Conversation(id) => write!(f, "conversation:{id}"),
            StreamName::All => f.write_str("all"),
        }
    }
}

/// Why a string is not a stream name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InvalidStreamName(pub String);

impl fmt::Display for InvalidStreamName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for InvalidStreamName {}

/// The characters an id may use besides ASCII letters and digits. Emails, slugs,
/// UUIDs and identity-provider subjects such as `auth0|42` fit; nothing here needs
/// escaping in JSON or URLs' query values beyond `+`, `|` and `@`.
pub const ID_PUNCTUATION: &[u8] = b"-_.@+|:";

/// True for a valid id inside a stream name: 1-128 ASCII letters, digits and
/// [`ID_PUNCTUATION`].
pub fn is_valid_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_STREAM_ID_LEN
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || ID_PUNCTUATION.contains(&b))
}

impl FromStr for StreamName {
    type Err = InvalidStreamName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        if s == "all" {
            return Ok(StreamName::All);
        }
        let Some((prefix, id)) = s.split_once(':') else {
            return Err(InvalidStreamName(format!(
                "'{s}' is not a stream: use user:<id>, tenant:<slug>, conversation:<id> or all"
            )));
        };
        let well_formed = !id.is_empty()
            && id.len() <= MAX_STREAM_NAME_ID_LEN
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || ID_PUNCTUATION.contains(&b));
        if !well_formed {
            return Err(InvalidStreamName(format!(
                "'{s}': the id after '{prefix}:' must be 1-{MAX_STREAM_ID_LEN} characters of letters, digits and -_.@+|:"
            )));
        }
        let id = id.to_owned();
        match prefix {
            "user" => Ok(StreamName::User(id)),
            "tenant" => Ok(StreamName::Tenant(id)),
            "conversation" => Ok(StreamName::Conversation(id)),
            other => Err(InvalidStreamName(format!(
                "'{other}' is not a stream kind: use user, tenant, conversation or all"
            ))),
        }
    }
}

impl Serialize for StreamName {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StreamName {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

/// A stream name is a string on the wire (`user:42`), and so in TypeScript.
#[cfg(feature = "ts")]
impl ts_rs::TS for StreamName {
    type WithoutGenerics = Self;
    type OptionInnerType = Self;

    fn name(_: &ts_rs::Config) -> String {
        "string".to_owned()
    }

    fn inline(cfg: &ts_rs::Config) -> String {
        Self::name(cfg)
    }
}

/// A place in a stream: the last offset a client holds, in a given epoch.
///
/// Offset 0 means "nothing yet" (the stream's first notification has offset 1).
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[cfg_attr(feature = "openapi", derive(utoipa::ToSchema))]
pub struct Position {
    /// The stream's epoch the offset belongs to.
    pub epoch: String,
    /// The last offset held (0 = none).
    pub offset: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stream_names_round_trip() {
        for text in [
            "user:42",
            "tenant:dupont",
            "conversation:c-1",
            "all",
            "user:a@b.fr",
        ] {
            let name: StreamName = text.parse().expect("valid");
            assert_eq!(name.to_string(), text);
        }
    }

    #[test]
    fn bad_stream_names_say_what_is_wrong() {
        let err = "room:1".parse::<StreamName>().expect_err("unknown prefix");
        assert!(err.0.contains("not a stream kind"), "{err}");
        let err = "user:".parse::<StreamName>().expect_err("empty id");
        assert!(err.0.contains("must be"), "{err}");
        assert!("user:auth0|42".parse::<StreamName>().is_ok());
        let err = "user:a\"b".parse::<StreamName>().expect_err("quote");
        assert!(err.0.contains("letters, digits"), "{err}");
        let err = "user:a b".parse::<StreamName>().expect_err("space");
        assert!(err.0.contains("letters, digits"), "{err}");
        assert!("everyone".parse::<StreamName>().is_err());
    }
}
