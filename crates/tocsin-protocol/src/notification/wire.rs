//! How [`NotificationData`] reads and writes `kind` + `data`, forward compatibly.
//!
//! A derived adjacently tagged enum refuses a kind it does not know, so one new kind
//! from a newer gateway made a whole `notification` frame unreadable (the client saw
//! a hole and reconnected in a loop) and a stored row of it broke `GET /v1/history`
//! after a rollback. Here reading never fails on the kind or the shape of `data`:
//! what cannot be typed is kept as [`NotificationData::Unknown`] and written back
//! byte-for-byte equivalent. Publishers still get a precise error:
//! [`NotificationData::check_typed`] says what is wrong with an unknown kind or with
//! data of a known kind.

use serde::de::Error as _;
use serde::ser::SerializeMap;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;

use super::{Kind, NotificationData, UnknownData};

impl NotificationData {
    /// Types `data` as `kind`'s shape; an error says which field is wrong. Reads
    /// through a reference, so that the caller keeps `data` when it does not fit.
    pub fn typed(kind: Kind, data: &Value) -> Result<NotificationData, serde_json::Error> {
        fn typed<'a, T: Deserialize<'a>>(data: &'a Value) -> Result<T, serde_json::Error> {
            T::deserialize(data)
        }
        Ok(match kind {
            Kind::EmailReceived => NotificationData::EmailReceived(typed(data)?),
            Kind::DossierUpdated => NotificationData::DossierUpdated(typed(data)?),
            Kind::DeadlineAlert => NotificationData::DeadlineAlert(typed(data)?),
            Kind::SystemNotification => NotificationData::SystemNotification(typed(data)?),
            Kind::ProposalCreated => NotificationData::ProposalCreated(typed(data)?),
            Kind::ProposalStatusChanged => NotificationData::ProposalStatusChanged(typed(data)?),
            Kind::ConversationMessage => NotificationData::ConversationMessage(typed(data)?),
            Kind::TypingIndicator => NotificationData::TypingIndicator(typed(data)?),
            Kind::UserStatus => NotificationData::UserStatus(typed(data)?),
            Kind::MessageRead => NotificationData::MessageRead(typed(data)?),
            Kind::Unknown => {
                return Err(serde_json::Error::custom(
                    "'unknown' is not a kind a notification can have",
                ));
            }
        })
    }

    /// Reads `kind` + `data` leniently: typed when this build can, kept as received
    /// otherwise.
    pub fn from_parts(kind: String, data: Value) -> NotificationData {
        match Kind::parse(&kind) {
            Some(known) => NotificationData::typed(known, &data)
                .unwrap_or(NotificationData::Unknown(UnknownData { kind, data })),
            None => NotificationData::Unknown(UnknownData { kind, data }),
        }
    }

    /// For publishers: `Err` says why this data is not something the gateway may
    /// store — a kind this build does not know, or data of the wrong shape.
    pub fn check_typed(&self) -> Result<(), String> {
        let NotificationData::Unknown(UnknownData { kind, data }) = self else {
            return Ok(());
        };
        match Kind::parse(kind) {
            Some(known) => match NotificationData::typed(known, data) {
                Ok(_) => Ok(()),
                Err(err) => Err(format!("data of kind '{kind}' is not valid: {err}")),
            },
            None => {
                let known: Vec<&str> = Kind::ALL.iter().map(|k| k.as_str()).collect();
                Err(format!(
                    "unknown kind '{kind}'; the kinds are {}",
                    known.join(", ")
                ))
            }
        }
    }

    /// The data as JSON (what goes under `data` on the wire).
    fn data_value(&self) -> Result<Value, serde_json::Error> {
        match self {
            NotificationData::EmailReceived(d) => serde_json::to_value(d),
            NotificationData::DossierUpdated(d) => serde_json::to_value(d),
            NotificationData::DeadlineAlert(d) => serde_json::to_value(d),
            NotificationData::SystemNotification(d) => serde_json::to_value(d),
            NotificationData::ProposalCreated(d) => serde_json::to_value(d),
            NotificationData::ProposalStatusChanged(d) => serde_json::to_value(d),
            NotificationData::ConversationMessage(d) => serde_json::to_value(d),
            NotificationData::TypingIndicator(d) => serde_json::to_value(d),
            NotificationData::UserStatus(d) => serde_json::to_value(d),
            NotificationData::MessageRead(d) => serde_json::to_value(d),
            NotificationData::Unknown(u) => Ok(u.data.clone()),
        }
    }
}

/// `kind` and `data` as read; `data` may be absent (unknown kinds without data).
#[derive(Deserialize)]
struct Parts {
    kind: String,
    #[serde(default)]
    data: Value,
}

impl<'de> Deserialize<'de> for NotificationData {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let parts = Parts::deserialize(deserializer)?;
        Ok(NotificationData::from_parts(parts.kind, parts.data))
    }
}

impl Serialize for NotificationData {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        // A map, not a struct: it is flattened into `Notification` and the frames.
        let data = self.data_value().map_err(serde::ser::Error::custom)?;
        let mut map = serializer.serialize_map(Some(2))?;
        map.serialize_entry("kind", self.kind_name())?;
        map.serialize_entry("data", &data)?;
        map.end()
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::Notification;

    fn notification(kind: &str, data: Value) -> Value {
        json!({"id":"n1","kind":kind,"created_at":"2026-11-21T09:00:00Z",
               "urgency":"high","title":"Nouveau","body":"b","data":data})
    }

    #[test]
    fn a_kind_from_a_newer_gateway_is_kept_and_written_back_as_received() {
        let sent = notification("deadline-escalated", json!({"to":"u2","level":3}));
        let n: Notification = serde_json::from_value(sent.clone()).expect("parses");
        assert_eq!(n.kind(), Kind::Unknown);
        assert_eq!(n.data.kind_name(), "deadline-escalated");
        assert_eq!(n.title, "Nouveau");
        assert_eq!(serde_json::to_value(&n).expect("serialises"), sent);
    }

    #[test]
    fn data_a_known_kind_cannot_type_is_kept_too() {
        // A rolled-back gateway reading what a newer one stored: `from` became optional.
        let sent = notification("email-received", json!({"subject":"x"}));
        let n: Notification = serde_json::from_value(sent.clone()).expect("parses");
        assert_eq!(n.kind(), Kind::Unknown);
        assert_eq!(serde_json::to_value(&n).expect("serialises"), sent);
        let why = n.data.check_typed().expect_err("not publishable");
        assert!(
            why.contains("email-received") && why.contains("from"),
            "{why}"
        );
    }

    #[test]
    fn unknown_fields_of_known_kinds_are_kept() {
        let sent = notification(
            "email-received",
            json!({"subject":"s","from":"f","has_attachments":false,"ged_ref":{"id":42}}),
        );
        let n: Notification = serde_json::from_value(sent.clone()).expect("parses");
        let NotificationData::EmailReceived(mail) = &n.data else {
            panic!("typed: {:?}", n.data)
        };
        assert_eq!(mail.extra["ged_ref"], json!({"id":42}));
        assert_eq!(serde_json::to_value(&n).expect("serialises"), sent);
    }

    #[test]
    fn publishers_are_told_which_kinds_exist() {
        let data = NotificationData::from_parts("mail".into(), Value::Null);
        let why = data.check_typed().expect_err("unknown");
        assert!(
            why.contains("'mail'") && why.contains("email-received"),
            "{why}"
        );
        let typed =
            NotificationData::from_parts("system-notification".into(), json!({"level":"info"}));
        assert_eq!(typed.check_typed(), Ok(()));
    }
}
