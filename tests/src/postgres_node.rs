//! One gateway on PostgreSQL (`database = "postgres://…"`), against a real server
//! (a throwaway cluster per test): what SQLite promises holds — a 2xx publish is
//! committed and survives SIGKILL, replayed once and in order — and a database that
//! goes away is answered with a clear 503 (never a 2xx without a commit), readiness
//! says so, and the same gateway process recovers by itself once it is back; a link
//! that goes silent in the middle of a batch gets every publish in flight a 503.

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin_e2e::publisher::email;
use tocsin_e2e::{
    Gateway, GatewayOptions, WsClient, assert_consecutive, poll_until, position, stream,
};
use tocsin_harness::postgres::PgCluster;
use tocsin_protocol::ErrorCode;

fn on_postgres(cluster: &PgCluster) -> GatewayOptions {
    let url = cluster
        .create_database("tocsin")
        .expect("the database can be created");
    GatewayOptions {
        database: Some(url),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_node_on_postgres_delivers_and_survives_sigkill() {
    let cluster = PgCluster::start().expect("PostgreSQL starts (cargo xtask setup installs it)");
    let mut gw = Gateway::start(on_postgres(&cluster)).await;
    assert!(
        gw.log_tail(60).contains("serving a PostgreSQL database"),
        "the gateway says which database it serves:\n{}",
        gw.log_tail(60)
    );
    let api = gw.api();
    let key = gw.key("dupont").to_owned();
    let marie = gw.user("dupont", 0).clone();
    let token = api.login(&marie).await.access_token;
    let (mut client, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;

    let mut acknowledged = Vec::new();
    for n in 1..=20 {
        acknowledged.push(
            api.publish_ok(&key, &email(&marie.stream(), &format!("mail #{n}")))
                .await,
        );
    }
    let live = client.recv_notifications(20, Duration::from_secs(30)).await;
    let offsets: Vec<u64> = live.iter().map(|d| d.offset).collect();
    assert_consecutive(&offsets, 1, "live delivery from PostgreSQL");
    for (delivered, ack) in live.iter().zip(&acknowledged) {
        assert_eq!(delivered.notification.id, ack.id);
    }

    gw.kill_hard().await;
    gw.restart().await;
    let token = gw.api().login(&marie).await.access_token;
    let epoch = acknowledged[0].epoch.clone();
    let (_client, welcome, catch_up) =
        WsClient::connect_ready(&gw.ws_url(), &token, position(&marie.stream(), &epoch, 0)).await;
    let own = welcome
        .streams
        .iter()
        .find(|s| s.stream == stream(&marie.stream()))
        .expect("welcome lists the user's stream");
    assert!(own.recovered && own.epoch == epoch, "{own:?}");
    let replayed: Vec<&str> = catch_up
        .notifications
        .iter()
        .map(|d| d.notification.id.as_str())
        .collect();
    let expected: Vec<&str> = acknowledged.iter().map(|a| a.id.as_str()).collect();
    assert_eq!(
        replayed, expected,
        "every acknowledged publish, once, in order"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_restart_is_a_clear_503_and_the_node_recovers_by_itself() {
    let mut cluster =
        PgCluster::start().expect("PostgreSQL starts (cargo xtask setup installs it)");
    let gw = Gateway::start(on_postgres(&cluster)).await;
    let api = gw.api();
    let key = gw.key("dupont").to_owned();
    let marie = gw.user("dupont", 0).clone();
    let token = api.login(&marie).await.access_token;
    let (mut client, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    let before = api
        .publish_ok(&key, &email(&marie.stream(), "before"))
        .await;

    cluster.kill().expect("PostgreSQL is killed");
    let refused = api
        .publish(&key, &email(&marie.stream(), "while down"))
        .await;
    assert_eq!(refused.status.as_u16(), 503, "{:?}", refused.body);
    let error = refused.error();
    assert_eq!(error.code, ErrorCode::Unavailable);
    assert!(
        error.message.contains("cannot be reached") && error.message.contains("nothing was stored"),
        "the error says what happened and what to do: {}",
        error.message
    );
    let ready = api.get("/readyz").await;
    assert_eq!(ready.status.as_u16(), 503, "{:?}", ready.body);

    cluster
        .restart()
        .expect("PostgreSQL starts again after the crash");
    poll_until(
        Duration::from_secs(30),
        "readiness after PostgreSQL is back",
        || async { (api.get("/readyz").await.status.as_u16() == 200).then_some(()) },
    )
    .await;
    let after = api.publish_ok(&key, &email(&marie.stream(), "after")).await;
    assert_eq!(
        after.offset,
        before.offset + 1,
        "the refused publish consumed no offset"
    );
    let live = client.recv_notifications(2, Duration::from_secs(30)).await;
    let ids: Vec<&str> = live.iter().map(|d| d.notification.id.as_str()).collect();
    assert_eq!(
        ids,
        [before.id.as_str(), after.id.as_str()],
        "nothing else was delivered"
    );
}

/// A link to the database that stops answering in the middle of the writer's
/// batches (black-holed by a proxy, not refused): every publish in flight then is
/// answered 503 with what to do — none is a 500, none a 2xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishes_in_flight_when_the_database_stops_answering_are_all_503() {
    let cluster = PgCluster::start().expect("PostgreSQL starts (cargo xtask setup installs it)");
    let url = cluster
        .create_database("tocsin")
        .expect("the database can be created");
    let proxy = tocsin_e2e::proxy::Proxy::start(format!("127.0.0.1:{}", cluster.port())).await;
    let through_proxy = url.replace(&format!("127.0.0.1:{}", cluster.port()), &proxy.addr);
    let gw = Gateway::start(GatewayOptions {
        database: Some(through_proxy),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    })
    .await;
    let key = gw.key("dupont").to_owned();
    let marie = gw.user("dupont", 0).clone();
    let api = gw.api();
    // Sixteen publishers back to back keep the writer inside a transaction nearly
    // all the time, so the cut lands in the middle of a batch.
    let acknowledged = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let publishers: Vec<_> = (0..16)
        .map(|p| {
            let (api, key, to) = (api.clone(), key.clone(), marie.stream());
            let acknowledged = acknowledged.clone();
            tokio::spawn(async move {
                let mut n = 0;
                loop {
                    n += 1;
                    let reply = api.publish(&key, &email(&to, &format!("p{p} #{n}"))).await;
                    if reply.status.as_u16() != 201 {
                        return (reply.status.as_u16(), reply.body.to_string());
                    }
                    acknowledged.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                }
            })
        })
        .collect();
    poll_until(Duration::from_secs(30), "publishes flowing", || async {
        (acknowledged.load(std::sync::atomic::Ordering::SeqCst) >= 200).then_some(())
    })
    .await;
    proxy.freeze();
    for publisher in publishers {
        let (status, body) = tokio::time::timeout(Duration::from_secs(60), publisher)
            .await
            .expect("every publish in flight is answered")
            .expect("joins");
        assert_eq!(
            status, 503,
            "a publish in flight when the database stopped answering: {body}"
        );
        assert!(
            body.contains("retry"),
            "the refusal says what to do: {body}"
        );
    }
}
