//! Graceful shutdown: SIGTERM closes every WebSocket with 4000 (going away: reconnect
//! elsewhere and resume) and the process exits 0.

use std::collections::BTreeMap;
use std::time::Duration;

use tocsin_e2e::{Gateway, GatewayOptions, STEP, WsClient};

#[tokio::test]
async fn sigterm_closes_every_client_with_4000_and_exits_0() {
    let mut gw = Gateway::start(GatewayOptions::with_tenants(&[(
        "dupont",
        &["marie", "paul"],
    )]))
    .await;
    let api = gw.api();
    let marie = api.login(gw.user("dupont", 0)).await.access_token;
    let paul = api.login(gw.user("dupont", 1)).await.access_token;
    let (mut first, _, _) = WsClient::connect_ready(&gw.ws_url(), &marie, BTreeMap::new()).await;
    let (mut second, _, _) = WsClient::connect_ready(&gw.ws_url(), &paul, BTreeMap::new()).await;

    gw.terminate();
    for (name, client) in [("marie", &mut first), ("paul", &mut second)] {
        let (closed, _) = client.expect_close(STEP).await;
        assert_eq!(
            closed.code,
            Some(4000),
            "{name} is told going_away: {closed:?}"
        );
    }
    let status = gw.wait_exit(Duration::from_secs(15)).await;
    assert!(
        status.success(),
        "a graceful shutdown exits 0, got {status}"
    );
}
