//! CORS on the gateway, as a browser's `fetch` from a firm's web app on another
//! origin sees it (with reqwest sending what the browser would): a preflight and a
//! read of history from an origin in `websocket.allowed_origins` get the CORS headers;
//! a preflight from any other origin is refused 403 with the error body naming the
//! setting, and counted in `/metrics`; publish and admin routes, which take API keys,
//! never answer CORS. The real-browser counterpart is `browser_smoke.rs`.

use reqwest::Method;
use reqwest::header::HeaderMap;
use tocsin_e2e::publisher::email;
use tocsin_e2e::{Gateway, GatewayOptions};
use tocsin_protocol::ErrorBody;

const APP: &str = "https://app.cabinet-dupont.example";
const OTHER: &str = "https://evil.example";

async fn gateway() -> Gateway {
    Gateway::start(GatewayOptions {
        allowed_origins: Some(vec![APP.to_owned()]),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    })
    .await
}

fn header<'a>(headers: &'a HeaderMap, name: &str) -> &'a str {
    headers
        .get(name)
        .and_then(|value| value.to_str().ok())
        .unwrap_or_default()
}

/// The comma-separated tokens of header `name`, lower-cased.
fn tokens(headers: &HeaderMap, name: &str) -> Vec<String> {
    headers
        .get_all(name)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(','))
        .map(|token| token.trim().to_ascii_lowercase())
        .filter(|token| !token.is_empty())
        .collect()
}

/// What a browser sends before a `fetch` with a bearer token or a JSON body.
async fn preflight(gw: &Gateway, path: &str, origin: &str, method: &str) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::OPTIONS, format!("{}{path}", gw.base_url()))
        .header("origin", origin)
        .header("access-control-request-method", method)
        .header(
            "access-control-request-headers",
            "authorization,content-type",
        )
        .send()
        .await
        .expect("the gateway answers a preflight")
}

/// `tocsin_refusals_total{code="forbidden",surface="http"}`, where the WebSocket's
/// Origin refusal is counted too.
async fn forbidden_refusals(gw: &Gateway) -> f64 {
    gw.scrape_metrics()
        .await
        .lines()
        .filter(|line| line.starts_with("tocsin_refusals_total{"))
        .filter(|line| line.contains(r#"code="forbidden""#) && line.contains(r#"surface="http""#))
        .filter_map(|line| line.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum()
}

#[tokio::test]
async fn an_allowed_origin_gets_the_cors_headers_on_preflights_and_reads() {
    let gw = gateway().await;
    let marie = gw.user("dupont", 0);

    for (path, method) in [
        ("/v1/history", "GET"),
        ("/v1/unread", "GET"),
        ("/v1/auth/login", "POST"),
        ("/v1/auth/refresh", "POST"),
        ("/v1/auth/logout", "POST"),
        ("/v1/me/calendar", "POST"),
    ] {
        let answer = preflight(&gw, path, APP, method).await;
        let status = answer.status().as_u16();
        let headers = answer.headers();
        assert!(
            (200..300).contains(&status),
            "preflight {method} {path}: {status} {headers:?}"
        );
        assert_eq!(
            header(headers, "access-control-allow-origin"),
            APP,
            "preflight {method} {path}: {headers:?}"
        );
        let methods = tokens(headers, "access-control-allow-methods");
        assert!(
            methods.contains(&method.to_ascii_lowercase()),
            "{path}: {methods:?}"
        );
        let allowed = tokens(headers, "access-control-allow-headers");
        for needed in ["authorization", "content-type"] {
            assert!(allowed.iter().any(|h| h == needed), "{path}: {allowed:?}");
        }
        assert_eq!(header(headers, "access-control-max-age"), "600", "{path}");
        // Bearer tokens, not cookies: the gateway never invites credentials.
        assert!(
            headers.get("access-control-allow-credentials").is_none(),
            "{path}: {headers:?}"
        );
    }

    let token = gw.api().login(marie).await.access_token;
    let published = gw
        .api()
        .publish_ok(
            gw.key("dupont"),
            &email(&marie.stream(), "read from a web app"),
        )
        .await;
    let answer = reqwest::Client::new()
        .get(format!("{}/v1/history", gw.base_url()))
        .query(&[("stream", marie.stream())])
        .header("origin", APP)
        .bearer_auth(&token)
        .send()
        .await
        .expect("history answers");
    assert_eq!(answer.status(), 200);
    let headers = answer.headers().clone();
    assert_eq!(header(&headers, "access-control-allow-origin"), APP);
    assert!(
        tokens(&headers, "access-control-expose-headers").contains(&"retry-after".to_owned()),
        "{headers:?}"
    );
    // The answer depends on Origin: a cache must not serve it to another origin.
    assert!(
        tokens(&headers, "vary").contains(&"origin".to_owned()),
        "{headers:?}"
    );
    let body: serde_json::Value = answer.json().await.expect("JSON history");
    assert!(
        body.to_string().contains(&published.id),
        "the history has the notification: {body}"
    );

    // A refusal a page must read (401) carries the headers too, or the page sees a
    // network error instead of "sign in again".
    let answer = reqwest::Client::new()
        .get(format!("{}/v1/unread", gw.base_url()))
        .header("origin", APP)
        .bearer_auth("not-a-token")
        .send()
        .await
        .expect("unread answers");
    assert_eq!(answer.status(), 401);
    assert_eq!(header(answer.headers(), "access-control-allow-origin"), APP);
}

#[tokio::test]
async fn a_preflight_from_another_origin_is_refused_403_and_counted() {
    let gw = gateway().await;
    let before = forbidden_refusals(&gw).await;

    let answer = preflight(&gw, "/v1/history", OTHER, "GET").await;
    assert_eq!(answer.status(), 403);
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "{:?}",
        answer.headers()
    );
    let error: ErrorBody = answer.json().await.expect("the gateway's error body");
    assert_eq!(error.code.as_str(), "forbidden", "{error:?}");
    assert!(
        error.message.contains(OTHER)
            && error.message.contains("not allowed")
            && error
                .message
                .contains("add it to websocket.allowed_origins"),
        "the message names the origin and the setting: {}",
        error.message
    );
    assert_eq!(
        forbidden_refusals(&gw).await,
        before + 1.0,
        "the refusal is counted in tocsin_refusals_total{{code=\"forbidden\",surface=\"http\"}}"
    );

    // A simple request from there is served (a native client sends no Origin; a
    // browser keeps the answer from the page) but never granted to that origin.
    let answer = reqwest::Client::new()
        .get(format!("{}/v1/unread", gw.base_url()))
        .header("origin", OTHER)
        .send()
        .await
        .expect("unread answers");
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "{:?}",
        answer.headers()
    );
}

#[tokio::test]
async fn publish_and_admin_routes_never_answer_cors() {
    let gw = gateway().await;
    let marie = gw.user("dupont", 0);

    // The control: this gateway does answer CORS, on a user route.
    let control = preflight(&gw, "/v1/history", APP, "GET").await;
    assert_eq!(
        header(control.headers(), "access-control-allow-origin"),
        APP,
        "a user route answers CORS: {:?}",
        control.headers()
    );

    for (path, method) in [
        ("/v1/publish", "POST"),
        ("/v1/publish/batch", "POST"),
        ("/v1/audit", "GET"),
        ("/v1/users/someone/disable", "POST"),
        ("/v1/deadlines", "GET"),
        ("/v1/webhook", "PUT"),
        ("/v1/conversations/c1/members", "PUT"),
        ("/v1/notifications/n1", "DELETE"),
        ("/metrics", "GET"),
    ] {
        for origin in [APP, OTHER] {
            let answer = preflight(&gw, path, origin, method).await;
            let headers = answer.headers();
            assert!(
                headers.get("access-control-allow-origin").is_none()
                    && headers.get("access-control-allow-methods").is_none(),
                "preflight {method} {path} from {origin} answered CORS ({}): {headers:?}",
                answer.status()
            );
        }
    }

    let answer = gw
        .api()
        .publish_request(gw.key("dupont"), &email(&marie.stream(), "from a script"))
        .header("origin", APP)
        .send()
        .await
        .expect("publish answers");
    assert_eq!(answer.status(), 201);
    assert!(
        answer
            .headers()
            .get("access-control-allow-origin")
            .is_none(),
        "a publish never grants a browser its answer: {:?}",
        answer.headers()
    );
}
