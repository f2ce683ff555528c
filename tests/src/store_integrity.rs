//! The database under an operator's hands: an older copy restored, the WAL deleted
//! while serving, a stopped gateway's files, an empty or damaged file at start,
//! another process holding the write lock. Nothing acknowledged is lost silently, and
//! every refusal says what happened and what to do.

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin_e2e::publisher::{email, email_with_body};
use tocsin_e2e::{Gateway, GatewayOptions, STEP, WsClient, poll_until, stream};
use tocsin_protocol::ErrorCode;

async fn dupont() -> Gateway {
    Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await
}

/// Publishes `count` mails to the firm's stream; returns their ids.
async fn publish_many(gw: &Gateway, count: usize, label: &str) -> Vec<String> {
    let api = gw.api();
    let mut ids = Vec::with_capacity(count);
    for n in 0..count {
        let request = email("tenant:dupont", &format!("{label} #{n}"));
        ids.push(api.publish_ok(gw.key("dupont"), &request).await.id);
    }
    ids
}

/// Every id the history API holds for the firm's stream, oldest first.
async fn history_ids(gw: &Gateway) -> Vec<String> {
    let api = gw.api();
    let token = api.login(gw.user("dupont", 0)).await.access_token;
    let page = api
        .history_ok(&token, "tenant:dupont", None, Some(500))
        .await;
    page.notifications
        .into_iter()
        .map(|item| item.notification.id)
        .collect()
}

async fn stop_gracefully(gw: &mut Gateway) {
    gw.terminate();
    assert!(gw.wait_exit(Duration::from_secs(20)).await.success());
}

fn remove_wal_files(gw: &Gateway) {
    for suffix in ["-wal", "-shm"] {
        let path = format!("{}{suffix}", gw.database_path().display());
        match std::fs::remove_file(&path) {
            Ok(()) => {}
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => panic!("{path} can be removed: {err}"),
        }
    }
}

/// The attack: a client held offsets up to 10; the database was restored from a copy
/// taken at head 5; 8 new notifications got offsets 6–13 and the client, resuming
/// from 10, received only 11–13. The gateway now recognises the older copy and gives
/// the stream a new epoch: the client is told to rebuild, and history has everything.
#[tokio::test]
async fn an_older_copy_of_the_database_makes_clients_rebuild_instead_of_skipping() {
    let mut gw = dupont().await;
    publish_many(&gw, 5, "before the backup").await;
    stop_gracefully(&mut gw).await;
    let backup = gw.data_dir().join("backup.db");
    std::fs::copy(gw.database_path(), &backup).expect("the backup is one file");

    gw.restart().await;
    publish_many(&gw, 5, "after the backup").await;
    let api = gw.api();
    let token = api.login(gw.user("dupont", 0)).await.access_token;
    let (client, welcome, catch_up) =
        WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    drop(client);
    let firm = welcome
        .streams
        .iter()
        .find(|status| status.stream == stream("tenant:dupont"))
        .expect("subscribed to the firm")
        .clone();
    assert_eq!(firm.head, 10);
    let held = catch_up.positions[&stream("tenant:dupont")].clone();
    assert_eq!(held.offset, 10, "the client holds offsets 1-10");

    gw.kill_hard().await;
    std::fs::copy(&backup, gw.database_path()).expect("the backup is restored");
    remove_wal_files(&gw);
    gw.restart().await;
    let after_restore = publish_many(&gw, 8, "after the restore").await;

    let api = gw.api();
    let token = api.login(gw.user("dupont", 0)).await.access_token;
    let positions = BTreeMap::from([(stream("tenant:dupont"), held.clone())]);
    let (_client, welcome, catch_up) =
        WsClient::connect_ready(&gw.ws_url(), &token, positions).await;
    let firm = welcome
        .streams
        .iter()
        .find(|status| status.stream == stream("tenant:dupont"))
        .expect("subscribed to the firm");
    assert!(
        !firm.recovered && firm.epoch != held.epoch,
        "the restored stream has a new epoch and the client must rebuild: {firm:?}"
    );
    assert!(
        catch_up.notifications.is_empty(),
        "nothing is replayed from a position of the lost timeline"
    );
    let history = history_ids(&gw).await;
    assert_eq!(history.len(), 13);
    assert_eq!(
        history[5..],
        after_restore[..],
        "history holds the 8 new ones at offsets 6-13"
    );
    assert!(
        gw.log_tail(40)
            .contains("OLDER than the one this gateway last served"),
        "the operator is told: {}",
        gw.log_tail(40)
    );
}

/// The attack: `tocsin.db-wal` deleted while serving lost every acknowledged
/// notification and user at the next restart, while publishes kept getting 201.
#[tokio::test]
async fn deleting_the_wal_while_serving_refuses_writes_and_loses_nothing() {
    let mut gw = dupont().await;
    let acknowledged = publish_many(&gw, 60, "acknowledged").await;
    let wal = format!("{}-wal", gw.database_path().display());
    std::fs::remove_file(&wal).expect("the WAL exists while serving");

    // The writer looks at its files once a second: readiness fails within that.
    let api = gw.api();
    poll_until(STEP, "readiness to fail after the deletion", || async {
        (api.get("/readyz").await.status.as_u16() == 503).then_some(())
    })
    .await;
    let refused = api
        .publish(
            gw.key("dupont"),
            &email("tenant:dupont", "after the deletion"),
        )
        .await;
    assert_eq!(refused.status.as_u16(), 503, "{:?}", refused.body);
    let error = refused.error();
    assert_eq!(error.code, ErrorCode::Unavailable);
    assert!(
        error.message.contains("write-ahead log") && error.message.contains("Restart"),
        "says what happened and what to do: {}",
        error.message
    );
    let ready = api.get("/readyz").await;
    assert_eq!(
        ready.status.as_u16(),
        503,
        "readiness fails: {:?}",
        ready.body
    );

    gw.kill_hard().await;
    gw.restart().await;
    assert_eq!(
        history_ids(&gw).await,
        acknowledged,
        "every acknowledged notification (and the user) survived"
    );
}

/// A gateway stopped with SIGTERM leaves one self-contained file: deleting the WAL
/// and shared-memory files afterwards loses nothing.
#[tokio::test]
async fn a_stopped_gateway_keeps_everything_in_the_database_file() {
    let mut gw = dupont().await;
    let acknowledged = publish_many(&gw, 20, "kept").await;
    stop_gracefully(&mut gw).await;
    remove_wal_files(&gw);
    gw.restart().await;
    assert_eq!(history_ids(&gw).await, acknowledged);
}

/// The attack: a 0-byte database in an initialised data dir started empty (every
/// login 401); a file with pages overwritten started, then history answered 500.
#[tokio::test]
async fn an_empty_or_damaged_database_is_refused_at_start_with_what_to_do() {
    let mut gw = dupont().await;
    let api = gw.api();
    for n in 0..150 {
        let request = email_with_body("tenant:dupont", &format!("page filler #{n}"), 2000);
        api.publish_ok(gw.key("dupont"), &request).await;
    }
    stop_gracefully(&mut gw).await;
    let database = gw.database_path();
    let good = std::fs::read(&database).expect("reads");
    assert!(good.len() > 40 * 4096, "enough pages to damage some");

    std::fs::write(&database, b"").expect("truncates");
    let log = gw.serve_expecting_refusal().await;
    assert!(
        log.contains("empty file") && log.contains("backup"),
        "says the file is empty and how to restore: {log}"
    );

    let mut damaged = good.clone();
    for page in 20..28 {
        let at = page * 4096;
        damaged[at..at + 4096].fill(0x5a);
    }
    std::fs::write(&database, &damaged).expect("writes");
    let log = gw.serve_expecting_refusal().await;
    assert!(
        log.contains("damaged") && log.contains("backup"),
        "says the file is damaged and how to restore: {log}"
    );

    std::fs::write(&database, &good).expect("the backup is restored");
    gw.restart().await;
    assert_eq!(history_ids(&gw).await.len(), 150);
}

/// The attack: another process holding SQLite's write lock gave 500 `internal` after
/// 5 s while `/readyz` said 200. Now: 503 `store_busy` with Retry-After, readiness
/// says so, and publishing works again once the lock is released.
#[tokio::test]
async fn another_process_holding_the_write_lock_gets_store_busy_not_internal() {
    let gw = dupont().await;
    let api = gw.api();
    api.publish_ok(gw.key("dupont"), &email("tenant:dupont", "before"))
        .await;
    let locker = rusqlite::Connection::open(gw.database_path()).expect("opens");
    locker
        .execute_batch("BEGIN IMMEDIATE")
        .expect("takes the write lock");

    let refused = api
        .publish(gw.key("dupont"), &email("tenant:dupont", "while locked"))
        .await;
    assert_eq!(refused.status.as_u16(), 503, "{:?}", refused.body);
    assert!(
        refused.headers.contains_key("retry-after"),
        "Retry-After is set: {:?}",
        refused.headers
    );
    let error = refused.error();
    assert_eq!(error.code, ErrorCode::StoreBusy);
    assert!(error.message.contains("write lock"), "{}", error.message);
    let ready = api.get("/readyz").await;
    assert_eq!(ready.status.as_u16(), 503);
    assert!(
        ready.body.to_string().contains("write lock"),
        "{}",
        ready.body
    );

    locker.execute_batch("ROLLBACK").expect("releases the lock");
    poll_until(STEP, "readiness after the lock is released", || async {
        (api.get("/readyz").await.status.as_u16() == 200).then_some(())
    })
    .await;
    api.publish_ok(gw.key("dupont"), &email("tenant:dupont", "after"))
        .await;
}

/// A whole data directory restored from an older copy, lineage file included: the
/// gateway cannot tell, and its stream keeps its epoch. The real client engine, which
/// held offsets 1–10 of the lost timeline, finds other notifications at offsets it
/// holds and re-syncs that stream instead of keeping its old rows silently: the new
/// 6–8 reach its inbox, and what it had received stays there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_finds_the_new_timeline_after_a_whole_data_dir_was_restored() {
    use tocsin_client::api::{ApiClient, ServerUrl};
    use tocsin_client::secrets::SecretStore;
    use tocsin_e2e::client::{ClientOptions, TestClient};

    const LONG: Duration = Duration::from_secs(30);
    let mut gw = dupont().await;
    publish_many(&gw, 5, "before the backup").await;
    stop_gracefully(&mut gw).await;
    let data = gw.data_dir().to_owned();
    let lineage = data.join("tocsin.db.lineage");
    std::fs::copy(gw.database_path(), data.join("backup.db")).expect("backs up");
    std::fs::copy(&lineage, data.join("backup.lineage")).expect("backs up the lineage too");

    gw.restart().await;
    let lost = publish_many(&gw, 5, "lost timeline").await;
    let marie = gw.user("dupont", 0).clone();
    let base = format!("http://{}", gw.addr());
    let client = TestClient::sign_in(&base, &marie, ClientOptions::default()).await;
    poll_until(LONG, "offsets 1-10 in the local inbox", || async {
        (client.inbox().len() == 10).then_some(())
    })
    .await;
    let (home, secrets) = client.stop().await;

    gw.kill_hard().await;
    std::fs::copy(data.join("backup.db"), gw.database_path()).expect("restores");
    std::fs::copy(data.join("backup.lineage"), &lineage).expect("restores the lineage");
    remove_wal_files(&gw);
    gw.restart_on_same_port().await;
    let new_timeline = publish_many(&gw, 3, "new timeline").await;

    // The restored database forgot the device session: sign in again, same local store.
    let server = ServerUrl::parse(&base).expect("a loopback URL");
    let tokens = ApiClient::new(server.clone())
        .login(&marie.email, &marie.password, "e2e client")
        .await
        .expect("login works");
    secrets
        .set("account", &tokens.refresh_token)
        .expect("memory store");
    let client = TestClient::start_in(server, home, secrets, ClientOptions::default());
    let inbox = poll_until(LONG, "the new timeline in the local inbox", || async {
        let ids: Vec<String> = client
            .inbox()
            .into_iter()
            .map(|item| item.notification.id)
            .collect();
        new_timeline
            .iter()
            .all(|id| ids.contains(id))
            .then_some(ids)
    })
    .await;
    assert!(
        lost.iter().all(|id| inbox.contains(id)),
        "what the lawyer had received stays in the inbox"
    );
    client.stop().await;
}
