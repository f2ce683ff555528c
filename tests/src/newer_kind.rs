//! What a newer gateway leaves in the database: a notification of a kind this build
//! does not know. The gateway refuses to publish one (422: it knows only its own
//! kinds), so tests write it into the stopped gateway's SQLite file instead — as a
//! newer gateway rolled back to this one would have left it.

use serde_json::json;

use crate::gateway::Gateway;

/// The kind a newer gateway stored.
pub const NEWER_KIND: &str = "deadline-escalated";
/// The title the rewritten notification gets.
pub const NEWER_TITLE: &str = "Délai d'appel escaladé";

/// Rewrites the stored notification `id` as one of [`NEWER_KIND`] with its own data
/// (`escalated_to`, `level`) and the title [`NEWER_TITLE`]; its id, stream, offset,
/// time, urgency and body stay. The gateway must be stopped (`terminate` +
/// `wait_exit`: at SIGTERM it folds its WAL into the file, which is then the whole
/// database).
pub fn rewrite_as_newer_kind(gw: &Gateway, id: &str) {
    let db = rusqlite::Connection::open(gw.database_path()).expect("the database opens");
    let payload: String = db
        .query_row(
            "SELECT payload FROM notifications WHERE id = ?1",
            [id],
            |row| row.get(0),
        )
        .expect("the notification is stored");
    let mut payload: serde_json::Value = serde_json::from_str(&payload).expect("JSON");
    payload["kind"] = NEWER_KIND.into();
    payload["data"] = json!({"deadline_id": "d-9", "escalated_to": "u-associate", "level": 2});
    payload["title"] = NEWER_TITLE.into();
    db.execute(
        "UPDATE notifications SET kind = ?2, payload = ?3 WHERE id = ?1",
        rusqlite::params![id, NEWER_KIND, payload.to_string()],
    )
    .expect("rewritten");
}
