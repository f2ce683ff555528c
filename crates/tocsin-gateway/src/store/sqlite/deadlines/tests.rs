//! What a connecting device is told of its user's deadlines (closed ones, and the
//! acknowledgements it should hold), and that finding them is a handful of index
//! lookups: every connection runs these reads before `caught_up`, so one that read all
//! of a firm's deadlines made 10 000 users take minutes to reconnect.

use chrono::Utc;
use rusqlite::{Connection, params};

use super::{acknowledgements_for_user, closed_for_user};
use crate::store::sqlite::migrations;
use crate::store::sqlite::time::to_us;

fn schema() -> Connection {
    let mut conn = Connection::open_in_memory().expect("opens");
    migrations::migrations()
        .to_latest(&mut conn)
        .expect("migrates");
    conn
}

/// A deadline of `tenant`, `status`, last changed `days_ago`.
fn deadline(
    conn: &Connection,
    tenant: &str,
    id: &str,
    owner: &str,
    backup: Option<&str>,
    status: &str,
    days_ago: i64,
) {
    let updated = to_us(Utc::now() - chrono::Duration::days(days_ago));
    conn.execute(
        "INSERT INTO deadlines (tenant, external_id, deadline_type, due_at, due_us, time_zone,
             owner, backup, status, revision, created_us, updated_us)
         VALUES (?1, ?2, 'Délai d''appel', '2026-12-20T12:00:00+01:00', ?3, 'Europe/Paris',
             ?4, ?5, ?6, 1, ?3, ?3)",
        params![tenant, id, updated, owner, backup, status],
    )
    .expect("deadline");
}

/// An escalation step of the deadline that fired and told `recipients`.
fn escalation(conn: &Connection, tenant: &str, id: &str, recipients: &str) {
    conn.execute(
        "INSERT INTO schedule (at_us, kind, state, tenant, deadline_id, recipients, created_us)
         VALUES (?1, 'escalation', 'sent', ?2, ?3, ?4, ?1)",
        params![to_us(Utc::now()), tenant, id, recipients],
    )
    .expect("escalation");
}

fn acknowledged(conn: &Connection, tenant: &str, id: &str, user: &str) {
    conn.execute(
        "INSERT INTO acknowledgements (tenant, deadline_id, user_id, at_us) VALUES (?1, ?2, ?3, ?4)",
        params![tenant, id, user, to_us(Utc::now())],
    )
    .expect("acknowledgement");
}

/// Marie is owner of one, backup of another and was told of a third by an escalation;
/// the rest is not hers, too old, still open or another firm's.
fn firm() -> Connection {
    let conn = schema();
    deadline(&conn, "dupont", "owned", "marie", None, "done", 1);
    deadline(
        &conn,
        "dupont",
        "backed",
        "claire",
        Some("marie"),
        "cancelled",
        2,
    );
    deadline(&conn, "dupont", "escalated", "claire", None, "done", 3);
    escalation(&conn, "dupont", "escalated", r#"["paul","marie"]"#);
    deadline(
        &conn,
        "dupont",
        "claire-only",
        "claire",
        Some("paul"),
        "done",
        1,
    );
    escalation(&conn, "dupont", "claire-only", r#"["paul"]"#);
    deadline(&conn, "dupont", "old", "marie", None, "done", 90);
    deadline(&conn, "dupont", "open", "marie", None, "open", 1);
    deadline(&conn, "martin", "elsewhere", "marie", None, "done", 1);
    acknowledged(&conn, "dupont", "open", "claire");
    acknowledged(&conn, "dupont", "escalated", "paul");
    acknowledged(&conn, "dupont", "claire-only", "claire");
    acknowledged(&conn, "dupont", "firm-published", "marie");
    acknowledged(&conn, "martin", "elsewhere", "claire");
    conn
}

#[test]
fn a_device_learns_of_the_recently_closed_deadlines_its_user_is_involved_in() {
    let conn = firm();
    let closed: Vec<String> = closed_for_user(&conn, "dupont", "marie")
        .expect("reads")
        .into_iter()
        .map(|c| c.deadline_id)
        .collect();
    // Oldest change first.
    assert_eq!(closed, ["escalated", "backed", "owned"]);
    assert!(
        closed_for_user(&conn, "dupont", "nobody")
            .expect("reads")
            .is_empty()
    );
}

#[test]
fn a_device_holds_the_acknowledgements_of_its_users_deadlines_and_its_own() {
    let conn = firm();
    let mut acks: Vec<(String, String)> = acknowledgements_for_user(&conn, "dupont", "marie")
        .expect("reads")
        .into_iter()
        .map(|a| (a.deadline_id, a.user_id))
        .collect();
    acks.sort();
    assert_eq!(
        acks,
        [
            ("escalated".to_string(), "paul".to_string()),
            ("firm-published".into(), "marie".into()),
            ("open".into(), "claire".into()),
        ]
    );
}

/// The plans of both reads: no table read whole, and no range over all of a firm's
/// rows (an index search on the firm alone).
#[test]
fn finding_a_users_deadlines_reads_no_firm_whole() {
    let conn = firm();
    let since = to_us(Utc::now());
    for sql in [super::closed_sql(), super::acknowledgements_sql()] {
        let plan: Vec<String> = conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .expect("plans")
            .query_map(params!["dupont", "marie", since], |row| row.get(3))
            .expect("plans")
            .collect::<Result<_, _>>()
            .expect("plan rows");
        for step in &plan {
            let table = step.split_whitespace().nth(1).unwrap_or("");
            let stored =
                ["d", "s", "a", "deadlines", "schedule", "acknowledgements"].contains(&table);
            assert!(
                !(stored && step.starts_with("SCAN ")),
                "a whole table is read: {step}\nplan: {plan:#?}"
            );
            // The firm's escalations that fired are few: searched by firm alone.
            assert!(
                !step.ends_with("(tenant=?)") || step.contains("schedule_escalated"),
                "all of a firm's rows are read: {step}\nplan: {plan:#?}"
            );
        }
    }
}
