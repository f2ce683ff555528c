//! JSON Schemas (for the gateway's OpenAPI document) of the two wire types whose serde
//! form is hand-written: [`StreamName`] (one string) and [`NotificationData`] (`kind`
//! selecting the shape of `data`). Every other body derives its schema next to its
//! serde attributes.

use std::borrow::Cow;

use utoipa::openapi::schema::{Object, ObjectBuilder, OneOfBuilder, Schema, Type};
use utoipa::openapi::{Ref, RefOr};
use utoipa::{PartialSchema, ToSchema};

use crate::notification::{
    ConversationMessage, DeadlineAlert, DossierUpdated, EmailReceived, Kind, MessageRead,
    NotificationData, ProposalCreated, ProposalStatusChanged, SystemNotification, TypingIndicator,
    UserStatus,
};
use crate::stream::StreamName;

impl PartialSchema for StreamName {
    fn schema() -> RefOr<Schema> {
        ObjectBuilder::new()
            .schema_type(Type::String)
            .pattern(Some("^(user:.+|tenant:.+|conversation:.+|all)$"))
            .description(Some(
                "`user:<id>`, `tenant:<slug>`, `conversation:<firm>:<id>` or `all`",
            ))
            .examples(["user:0193a0c4-7c1e-7000-8000-000000000001", "tenant:dupont"])
            .into()
    }
}

impl ToSchema for StreamName {}

/// The schema name and the `data` schema of each kind a publisher may send.
fn kinds() -> [(Kind, Cow<'static, str>, RefOr<Schema>); 10] {
    fn of<T: ToSchema>(kind: Kind) -> (Kind, Cow<'static, str>, RefOr<Schema>) {
        (kind, T::name(), T::schema())
    }
    [
        of::<EmailReceived>(Kind::EmailReceived),
        of::<DossierUpdated>(Kind::DossierUpdated),
        of::<DeadlineAlert>(Kind::DeadlineAlert),
        of::<SystemNotification>(Kind::SystemNotification),
        of::<ProposalCreated>(Kind::ProposalCreated),
        of::<ProposalStatusChanged>(Kind::ProposalStatusChanged),
        of::<ConversationMessage>(Kind::ConversationMessage),
        of::<TypingIndicator>(Kind::TypingIndicator),
        of::<UserStatus>(Kind::UserStatus),
        of::<MessageRead>(Kind::MessageRead),
    ]
}

/// `{"kind": "<kind>", "data": <that kind's shape>}`.
fn variant(kind: Kind, data: &str) -> Object {
    ObjectBuilder::new()
        .property(
            "kind",
            ObjectBuilder::new()
                .schema_type(Type::String)
                .enum_values(Some([kind.as_str()])),
        )
        .required("kind")
        .property("data", Ref::from_schema_name(data))
        .required("data")
        .build()
}

impl PartialSchema for NotificationData {
    fn schema() -> RefOr<Schema> {
        let mut one_of = OneOfBuilder::new().description(Some(
            "The kind and its typed data. Publishers may send only these kinds; a \
             notification read back may carry a kind a newer gateway added (clients \
             show it from its title and body).",
        ));
        for (kind, name, _) in kinds() {
            one_of = one_of.item(variant(kind, &name));
        }
        Schema::OneOf(one_of.build()).into()
    }
}

impl ToSchema for NotificationData {
    fn schemas(schemas: &mut Vec<(String, RefOr<Schema>)>) {
        for (_, name, schema) in kinds() {
            schemas.push((name.into_owned(), schema));
        }
        EmailReceived::schemas(schemas);
        DossierUpdated::schemas(schemas);
        DeadlineAlert::schemas(schemas);
        SystemNotification::schemas(schemas);
        ProposalCreated::schemas(schemas);
        ProposalStatusChanged::schemas(schemas);
        ConversationMessage::schemas(schemas);
        TypingIndicator::schemas(schemas);
        UserStatus::schemas(schemas);
        MessageRead::schemas(schemas);
    }
}
