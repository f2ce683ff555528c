//! `backup`, `restore`, `doctor` and upgrades, on real gateway processes and real
//! SQLite files: a backup taken under continuous publishing is consistent and slows
//! nobody; a restore is refused under a serving gateway, keeps the old files aside,
//! and makes clients rebuild exactly when the backup is an older history; doctor
//! passes a healthy directory and names what fails; a database of the schema in
//! `tests/fixtures/` opens, migrates and serves its data.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use tocsin_e2e::binary::{gateway_binary, workspace_root};
use tocsin_e2e::gateway::PASSWORD;
use tocsin_e2e::publisher::{email, email_with_body};
use tocsin_e2e::{Gateway, GatewayOptions, UserFixture, WsClient, stream};
use tocsin_protocol::frames::StreamStatus;
use tocsin_protocol::{Position, StreamName};

/// The stream the tests publish to.
const FIRM: &str = "tenant:dupont";

async fn dupont() -> Gateway {
    Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await
}

/// Runs `tocsin-gateway --data-dir DIR ARGS…` to completion; may fail.
async fn cli(data_dir: &Path, args: &[&str]) -> Output {
    let output = tokio::process::Command::new(gateway_binary())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove(tocsin_harness::env::DATA_DIR)
        .env("NO_COLOR", "1")
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output();
    tokio::time::timeout(Duration::from_secs(120), output)
        .await
        .unwrap_or_else(|_| panic!("tocsin-gateway {args:?} took over 2 minutes"))
        .expect("tocsin-gateway can be run")
}

fn text(output: &Output) -> String {
    format!(
        "status {:?}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

async fn cli_ok(data_dir: &Path, args: &[&str]) -> String {
    let output = cli(data_dir, args).await;
    assert!(
        output.status.success(),
        "{args:?} failed: {}",
        text(&output)
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

async fn stop_gracefully(gw: &mut Gateway) {
    gw.terminate();
    assert!(gw.wait_exit(Duration::from_secs(20)).await.success());
}

/// Publishes `count` notifications of about `body` bytes in batches; returns their ids.
async fn preload(gw: &Gateway, count: usize, body: usize) -> Vec<String> {
    let api = gw.api();
    let mut ids = Vec::with_capacity(count);
    let mut n = 0;
    while n < count {
        let batch: Vec<_> = (n..count.min(n + 500))
            .map(|i| email_with_body(FIRM, &format!("preload #{i}"), body))
            .collect();
        n += batch.len();
        let results = api.publish_batch_ok(gw.key("dupont"), batch).await;
        ids.extend(results.into_iter().map(|result| result.id));
    }
    ids
}

/// One acknowledged publish of the continuous publisher.
struct Timed {
    id: String,
    started: Instant,
    answered: Instant,
}

/// Publishes one notification after another until `stop`; every one must succeed.
fn publish_continuously(
    gw: &Gateway,
    stop: Arc<AtomicBool>,
) -> tokio::task::JoinHandle<Vec<Timed>> {
    let api = gw.api();
    let key = gw.key("dupont").to_owned();
    tokio::spawn(async move {
        let mut done = Vec::new();
        let mut n = 0;
        while !stop.load(Ordering::Relaxed) {
            n += 1;
            let started = Instant::now();
            let reply = api
                .publish_ok(&key, &email(FIRM, &format!("live #{n}")))
                .await;
            done.push(Timed {
                id: reply.id,
                started,
                answered: Instant::now(),
            });
        }
        done
    })
}

/// Every notification id in a database file, and its `integrity_check`.
fn ids_in(file: &Path) -> (String, BTreeSet<String>) {
    let conn =
        rusqlite::Connection::open_with_flags(file, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)
            .expect("the backup opens");
    let check: String = conn
        .query_row("PRAGMA integrity_check", [], |row| row.get(0))
        .expect("checks");
    let ids = conn
        .prepare("SELECT id FROM notifications")
        .expect("prepares")
        .query_map([], |row| row.get(0))
        .expect("reads")
        .collect::<Result<_, _>>()
        .expect("reads");
    (check, ids)
}

/// Takes a backup while a publisher publishes without pause, on a database of
/// `preloaded` notifications; returns (longest backup step as printed, longest
/// publish during the backup).
async fn backup_under_load(preloaded: usize) -> (String, Duration) {
    let gw = dupont().await;
    let old = preload(&gw, preloaded, 600).await;
    let stop = Arc::new(AtomicBool::new(false));
    let publisher = publish_continuously(&gw, stop.clone());
    // Let it run a little first, so the backup starts mid-stream.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let file = gw.data_dir().join("backup.db");
    let backup_started = Instant::now();
    let out = cli_ok(gw.data_dir(), &["backup", file.to_str().expect("utf-8")]).await;
    let backup_ended = Instant::now();
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let live = publisher
        .await
        .expect("every publish during the backup succeeded");

    let (check, ids) = ids_in(&file);
    assert_eq!(check, "ok", "the backup passes integrity_check");
    let missing = old.iter().filter(|id| !ids.contains(*id)).count();
    assert_eq!(missing, 0, "every preloaded notification is in the backup");
    let before: Vec<&Timed> = live
        .iter()
        .filter(|timed| timed.answered < backup_started)
        .collect();
    assert!(
        !before.is_empty(),
        "some were acknowledged before the backup"
    );
    for timed in &before {
        assert!(
            ids.contains(&timed.id),
            "{} was acknowledged before the backup started, and is in it",
            timed.id
        );
    }
    let during: Vec<Duration> = live
        .iter()
        .filter(|timed| timed.answered > backup_started && timed.started < backup_ended)
        .map(|timed| timed.answered - timed.started)
        .collect();
    assert!(
        !during.is_empty(),
        "publishing went on during the backup: {out}"
    );
    let slowest = during.iter().max().copied().unwrap_or_default();
    let mut sorted = during.clone();
    sorted.sort();
    let p99 = sorted[(sorted.len() * 99 / 100).min(sorted.len() - 1)];
    // For comparison: the same publisher before the backup started.
    let slowest_before = before
        .iter()
        .map(|timed| timed.answered - timed.started)
        .max()
        .unwrap_or_default();
    println!(
        "backup of {preloaded} notifications: {}; {} publishes during it, the slowest \
         {slowest:?}, p99 {p99:?} (before it: {} publishes, the slowest {slowest_before:?})",
        out.trim(),
        during.len(),
        before.len()
    );
    assert!(
        slowest < Duration::from_secs(1),
        "publishes stay fast during a backup: the slowest took {slowest:?}"
    );
    let longest = out
        .split("longest step ")
        .nth(1)
        .and_then(|rest| rest.split(',').next())
        .unwrap_or("?")
        .to_owned();
    (longest, slowest)
}

#[tokio::test]
async fn a_backup_under_continuous_publishing_is_consistent_and_slows_nobody() {
    backup_under_load(5_000).await;
}

/// The measurement in docs/OPERATIONS.md: run by hand with `--run-ignored only`.
#[tokio::test]
#[ignore = "a measurement (100k notifications), not a check"]
async fn measure_a_backup_of_100k_notifications() {
    let (step, slowest) = backup_under_load(100_000).await;
    println!("100k notifications: longest step {step}, slowest publish {slowest:?}");
}

#[tokio::test]
async fn a_restore_is_refused_while_the_gateway_serves_and_a_backup_never_overwrites() {
    let gw = dupont().await;
    preload(&gw, 10, 100).await;
    let file = gw.data_dir().join("backup.db");
    let file = file.to_str().expect("utf-8");
    cli_ok(gw.data_dir(), &["backup", file]).await;

    let again = cli(gw.data_dir(), &["backup", file]).await;
    let said = text(&again);
    assert!(
        !again.status.success() && said.contains("already exists") && said.contains("--force"),
        "an existing file is not replaced without --force: {said}"
    );
    cli_ok(gw.data_dir(), &["backup", file, "--force"]).await;

    let refused = cli(gw.data_dir(), &["restore", file]).await;
    let said = text(&refused);
    assert!(
        !refused.status.success()
            && said.contains("is serving")
            && said.contains(&format!("pid {}", gw.pid()))
            && said.contains("Stop it first"),
        "says a gateway serves, which, and what to do: {said}"
    );
    assert!(
        aside_files(gw.data_dir()).is_empty(),
        "nothing was moved: {:?}",
        aside_files(gw.data_dir())
    );
    gw.api()
        .publish_ok(gw.key("dupont"), &email(FIRM, "still serving"))
        .await;
}

/// Files `restore` kept aside in the data dir.
fn aside_files(dir: &Path) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .expect("reads the data dir")
        .map(|entry| entry.expect("an entry").path())
        .filter(|path| path.to_string_lossy().contains(".before-restore-"))
        .collect()
}

/// The firm stream's status in a welcome.
fn firm_status(streams: &[StreamStatus]) -> StreamStatus {
    streams
        .iter()
        .find(|status| status.stream == stream(FIRM))
        .expect("subscribed to the firm")
        .clone()
}

/// Connects marie with `positions`; returns the firm's status and what was replayed.
async fn resume(
    gw: &Gateway,
    positions: BTreeMap<StreamName, Position>,
) -> (StreamStatus, usize, Position) {
    let token = gw.api().login(gw.user("dupont", 0)).await.access_token;
    let (client, welcome, catch_up) =
        WsClient::connect_ready(&gw.ws_url(), &token, positions).await;
    client.close().await;
    let replayed = catch_up.notifications.len();
    let held = catch_up.positions[&stream(FIRM)].clone();
    (firm_status(&welcome.streams), replayed, held)
}

#[tokio::test]
async fn restoring_an_older_backup_keeps_the_old_files_and_makes_clients_rebuild() {
    let mut gw = dupont().await;
    let in_backup = preload(&gw, 5, 100).await;
    let file = gw.data_dir().join("backup.db");
    cli_ok(gw.data_dir(), &["backup", file.to_str().expect("utf-8")]).await;
    preload(&gw, 5, 100).await;
    let (_, _, held) = resume(&gw, BTreeMap::new()).await;
    assert_eq!(
        held.offset, 10,
        "the client holds offsets 1-10, past the backup's 5"
    );
    stop_gracefully(&mut gw).await;

    let out = cli_ok(gw.data_dir(), &["restore", file.to_str().expect("utf-8")]).await;
    assert!(out.contains("new epochs for"), "{out}");
    let aside = aside_files(gw.data_dir());
    assert!(
        aside
            .iter()
            .any(|path| !path.to_string_lossy().ends_with(".lineage")),
        "the old database is kept aside: {aside:?}"
    );

    gw.restart().await;
    let positions = BTreeMap::from([(stream(FIRM), held.clone())]);
    let (firm, replayed, _) = resume(&gw, positions).await;
    assert!(
        !firm.recovered && firm.epoch != held.epoch && firm.head == 5,
        "a position past the backup's head is not trusted: {firm:?}"
    );
    assert_eq!(replayed, 0, "nothing is replayed from the lost timeline");
    // The client rebuilds from history: exactly what the backup held.
    let api = gw.api();
    let token = api.login(gw.user("dupont", 0)).await.access_token;
    let page = api.history_ok(&token, FIRM, None, Some(100)).await;
    let rebuilt: Vec<String> = page
        .notifications
        .into_iter()
        .map(|item| item.notification.id)
        .collect();
    assert_eq!(rebuilt, in_backup);
    // And goes on in the new epoch without missing the next one.
    let next = api
        .publish_ok(gw.key("dupont"), &email(FIRM, "after the restore"))
        .await;
    let positions = BTreeMap::from([(
        stream(FIRM),
        Position {
            epoch: firm.epoch.clone(),
            offset: 5,
        },
    )]);
    let token = api.login(gw.user("dupont", 0)).await.access_token;
    let (client, welcome, catch_up) =
        WsClient::connect_ready(&gw.ws_url(), &token, positions).await;
    assert!(firm_status(&welcome.streams).recovered);
    assert_eq!(catch_up.notifications.len(), 1);
    assert_eq!(catch_up.notifications[0].notification.id, next.id);
    client.close().await;
    assert!(
        !gw.log_tail(60).contains("OLDER than the one"),
        "restore already renewed the epochs; the start had nothing to do: {}",
        gw.log_tail(60)
    );
}

#[tokio::test]
async fn a_backup_restored_with_nothing_since_keeps_epochs_and_clients_resume() {
    let mut gw = dupont().await;
    preload(&gw, 5, 100).await;
    let (_, _, held) = resume(&gw, BTreeMap::new()).await;
    stop_gracefully(&mut gw).await;
    let file = gw.data_dir().join("backup.db");
    let file = file.to_str().expect("utf-8");
    cli_ok(gw.data_dir(), &["backup", file]).await;

    let out = cli_ok(gw.data_dir(), &["restore", file]).await;
    assert!(
        out.contains("epochs kept"),
        "the same history is proven: {out}"
    );
    gw.restart().await;
    let positions = BTreeMap::from([(stream(FIRM), held.clone())]);
    let (firm, replayed, _) = resume(&gw, positions).await;
    assert!(
        firm.recovered && firm.epoch == held.epoch && firm.head == 5,
        "the same history keeps its epoch: {firm:?}"
    );
    assert_eq!(replayed, 0);
}

#[tokio::test]
async fn doctor_passes_a_healthy_data_dir_and_names_what_fails() {
    let mut gw = dupont().await;
    preload(&gw, 150, 2000).await;
    let healthy = cli(gw.data_dir(), &["doctor"]).await;
    let said = String::from_utf8_lossy(&healthy.stdout).into_owned();
    println!("{said}");
    assert!(healthy.status.success(), "{}", text(&healthy));
    for check in [
        "config",
        "permissions",
        "integrity",
        "schema",
        "clock",
        "disk",
        "serving",
    ] {
        assert!(said.contains(check), "doctor checks {check}: {said}");
    }
    assert!(
        said.lines().all(|line| line.starts_with("ok ")),
        "all ok on a healthy dir: {said}"
    );

    let config = gw.data_dir().join("config.toml");
    set_mode(&config, 0o644);
    let open = cli(gw.data_dir(), &["doctor"]).await;
    let said = text(&open);
    assert!(
        !open.status.success()
            && said.lines().any(|line| line.starts_with("FAIL")
                && line.contains("config.toml")
                && line.contains("chmod 600")),
        "a config readable by others fails, with the fix: {said}"
    );
    set_mode(&config, 0o600);

    stop_gracefully(&mut gw).await;
    let database = gw.database_path();
    let mut bytes = std::fs::read(&database).expect("reads");
    for page in 20..28 {
        bytes[page * 4096..(page + 1) * 4096].fill(0x5a);
    }
    std::fs::write(&database, &bytes).expect("damages it");
    let damaged = cli(gw.data_dir(), &["doctor"]).await;
    let said = text(&damaged);
    assert!(
        !damaged.status.success()
            && said
                .lines()
                .any(|line| line.starts_with("FAIL  integrity") && line.contains("restore")),
        "a damaged database fails, with what to do: {said}"
    );
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

/// What the fixture generator recorded beside the database.
#[derive(Debug, Serialize, Deserialize)]
struct FixtureFacts {
    /// `user_version` of the fixture.
    schema: i64,
    /// The firm's publisher key.
    key: String,
    /// The user: id, email (password [`PASSWORD`]).
    user_id: String,
    email: String,
    /// The firm stream's notification ids, oldest first.
    notifications: Vec<String>,
    /// A declared deadline.
    deadline_id: String,
}

/// The fixture of the schema this build writes today (migration 10).
const FIXTURE: &str = "tests/fixtures/schema-10.db";

fn fixture_path() -> PathBuf {
    workspace_root().join(FIXTURE)
}

fn facts_path() -> PathBuf {
    fixture_path().with_extension("json")
}

/// Makes `tests/fixtures/schema-N.db` (+ `.json`) with today's schema: a firm, a user,
/// a key, three notifications and a deadline, through the real gateway. When a
/// migration is added, run this once *before* it lands (`cargo nextest run -p
/// tocsin-e2e --run-ignored only -E 'test(make_the_schema_fixture)'`), rename the
/// files for the schema they hold, and point [`FIXTURE`] at the new one: the upgrade
/// test then opens the previous release's file with the new code.
#[tokio::test]
#[ignore = "generates the fixture; run by hand before a schema change"]
async fn make_the_schema_fixture() {
    let mut gw = dupont().await;
    let api = gw.api();
    let mut notifications = Vec::new();
    for title in [
        "Jugement rendu",
        "Conclusions adverses reçues",
        "Audience renvoyée",
    ] {
        notifications.push(
            api.publish_ok(gw.key("dupont"), &email(FIRM, title))
                .await
                .id,
        );
    }
    let marie = gw.user("dupont", 0).clone();
    let due = (chrono::Utc::now() + chrono::Duration::days(30)).to_rfc3339();
    let body = serde_json::from_value(serde_json::json!({
        "deadline_type": "Délai d'appel",
        "due_at": due,
        "owner": marie.email,
        "dossier_number": "2026-0142",
    }))
    .expect("a deadline request");
    let reply = api
        .put_deadline(gw.key("dupont"), "appel-2026-0142", &body)
        .await;
    assert!(reply.status.is_success(), "{} {}", reply.status, reply.body);
    stop_gracefully(&mut gw).await;

    let path = fixture_path();
    std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir");
    let _ = std::fs::remove_file(&path);
    let conn = rusqlite::Connection::open(gw.database_path()).expect("opens");
    let schema: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("reads");
    // VACUUM INTO: a compact single file, no WAL beside it.
    conn.execute("VACUUM INTO ?1", [path.to_str().expect("utf-8")])
        .expect("writes the fixture");
    let facts = FixtureFacts {
        schema,
        key: gw.key("dupont").to_owned(),
        user_id: marie.id,
        email: marie.email,
        notifications,
        deadline_id: "appel-2026-0142".into(),
    };
    std::fs::write(
        facts_path(),
        serde_json::to_string_pretty(&facts).expect("json"),
    )
    .expect("writes");
}

#[tokio::test]
async fn a_database_of_the_previous_schema_opens_migrates_and_serves_its_data() {
    let facts: FixtureFacts =
        serde_json::from_str(&std::fs::read_to_string(facts_path()).expect("the fixture's facts"))
            .expect("parses");
    let mut gw = dupont().await;
    // Its own database is thrown away: no need for a clean stop.
    gw.kill_hard().await;
    // The data dir's own database and lineage give way to the old file, as in an
    // upgrade in place.
    for suffix in ["", "-wal", "-shm", ".lineage"] {
        let _ = std::fs::remove_file(format!("{}{suffix}", gw.database_path().display()));
    }
    std::fs::copy(fixture_path(), gw.database_path()).expect("copies the fixture");
    gw.restart().await;

    let api = gw.api();
    let marie = UserFixture {
        id: facts.user_id.clone(),
        email: facts.email.clone(),
        password: PASSWORD.to_owned(),
        tenant: "dupont".into(),
    };
    let token = api.login(&marie).await.access_token;
    let page = api.history_ok(&token, FIRM, None, Some(100)).await;
    let ids: Vec<String> = page
        .notifications
        .into_iter()
        .map(|item| item.notification.id)
        .collect();
    assert_eq!(
        ids, facts.notifications,
        "the old file's notifications are served"
    );
    let deadline = api.deadline_ok(&facts.key, &facts.deadline_id).await;
    assert_eq!(deadline.owner, facts.user_id);
    api.publish_ok(&facts.key, &email(FIRM, "after the upgrade"))
        .await;
    stop_gracefully(&mut gw).await;

    let conn = rusqlite::Connection::open(gw.database_path()).expect("opens");
    let schema: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("reads");
    assert!(
        schema >= facts.schema,
        "migrated to this build's schema ({schema})"
    );
}
