//! Who may read which stream: a user reads their own stream, their firm's, `all`, and
//! the conversations they are a member of. Nothing else, whatever ids are sent.

use tocsin_protocol::StreamName;

use crate::auth::Identity;
use crate::error::AppError;
use crate::store::{NewUser, Store, StoreError, User};

/// The key of a firm's conversation, and the id inside its stream name:
/// `<firm>:<id>`. Conversation ids are the firm's own (its software chooses them), so
/// two firms may both have `dossier-42`; the key keeps them apart, and another firm's
/// conversation is never found, only unknown. (A slug has no `:`, so the first one
/// separates them.)
pub fn conversation_key(tenant: &str, conversation_id: &str) -> String {
    format!("{tenant}:{conversation_id}")
}

/// The firm's own id of a conversation key (what its software wrote).
pub fn conversation_id(key: &str) -> &str {
    key.split_once(':').map_or(key, |(_, id)| id)
}

/// A firm's conversation's stream.
pub fn conversation_stream(tenant: &str, conversation_id: &str) -> StreamName {
    StreamName::Conversation(conversation_key(tenant, conversation_id))
}

/// The streams a user reads.
pub async fn readable_streams(store: &dyn Store, user: &User) -> Result<Vec<StreamName>, AppError> {
    let mut streams = vec![
        StreamName::User(user.id.clone()),
        StreamName::Tenant(user.tenant.clone()),
        StreamName::All,
    ];
    for id in store.user_conversations(&user.id).await? {
        streams.push(StreamName::Conversation(id));
    }
    Ok(streams)
}

/// Whether a user may read a stream.
pub async fn can_read(
    store: &dyn Store,
    user: &User,
    stream: &StreamName,
) -> Result<bool, AppError> {
    Ok(match stream {
        StreamName::User(id) => *id == user.id,
        StreamName::Tenant(slug) => *slug == user.tenant,
        StreamName::All => true,
        StreamName::Conversation(id) => match store.conversation(id).await? {
            Some(conversation) => {
                conversation.tenant == user.tenant && conversation.members.contains(&user.id)
            }
            None => false,
        },
    })
}

/// What a disabled user is told, at sign-in and on every use of a token.
pub const DISABLED_ACCOUNT: &str = "this account is disabled; ask your firm's administrator";

/// The stored user a verified identity speaks for. External identities get a shadow
/// user on first sight (their firm must exist); a token whose firm does not match the
/// stored user's is refused.
pub async fn resolve_user(store: &dyn Store, identity: &Identity) -> Result<User, AppError> {
    let existing = store.user_by_id(&identity.user_id).await?;
    let user = match existing {
        Some(user) => user,
        None if identity.external => {
            if !tocsin_protocol::stream::is_valid_id(&identity.user_id) {
                return Err(AppError::forbidden(
                    "the token's user claim must be 1-128 letters, digits and -_.@+|: to name a stream",
                ));
            }
            if store.tenant(&identity.tenant).await?.is_none() {
                return Err(AppError::forbidden(format!(
                    "firm '{}' (from the token's tenant claim) is unknown to this gateway; add it with `tocsin-gateway tenant add`",
                    identity.tenant
                )));
            }
            let created = store
                .create_user(NewUser {
                    id: identity.user_id.clone(),
                    tenant: identity.tenant.clone(),
                    email: identity.email.clone().unwrap_or_default(),
                    name: String::new(),
                    role: identity.role.clone(),
                    password_hash: None,
                    external: true,
                })
                .await;
            match created {
                Ok(user) => user,
                // The same person's other device (or a reconnect) created it first.
                Err(StoreError::Conflict(message)) => store
                    .user_by_id(&identity.user_id)
                    .await?
                    .ok_or(StoreError::Conflict(message))?,
                Err(err) => return Err(err.into()),
            }
        }
        None => {
            return Err(AppError::unauthorized(
                "this account no longer exists; sign in again",
            ));
        }
    };
    // Before the session check: disabling revokes every session too, and "disabled"
    // is the answer that tells the user what to do (not "sign in again").
    if user.disabled {
        crate::metrics::auth_failed(crate::metrics::AuthFailure::DisabledAccount);
        return Err(AppError::forbidden(DISABLED_ACCOUNT));
    }
    if let Some(session_id) = &identity.session_id
        && !store.session_active(session_id).await?
    {
        return Err(AppError::unauthorized(
            "this device was signed out; sign in again",
        ));
    }
    if user.tenant != identity.tenant {
        return Err(AppError::forbidden(
            "the token's firm does not match the user's firm",
        ));
    }
    Ok(user)
}
