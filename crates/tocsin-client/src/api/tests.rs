//! The API client against a tiny axum server that answers like the gateway (same
//! routes, same `ErrorBody` shapes), mounted under a path prefix, plus servers that
//! misbehave: odd answers, silence, bad TLS.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Query, RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};
use tocsin_protocol::http::{LoginRequest, LogoutRequest, PublishRequest, RefreshRequest};
use tocsin_protocol::{ErrorCode, Kind, StreamName};

use super::*;

/// What the fake gateway saw.
#[derive(Debug, Default)]
struct Seen {
    user_agent: Option<String>,
    history_query: Option<String>,
    logouts: Vec<String>,
}

type Shared = Arc<Mutex<Seen>>;

fn seen(shared: &Shared) -> std::sync::MutexGuard<'_, Seen> {
    shared.lock().expect("lock")
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    (status, Json(json!({"code": code, "message": message}))).into_response()
}

fn tokens(refresh_token: &str) -> Value {
    json!({
        "access_token": "at_1",
        "refresh_token": refresh_token,
        "expires_in": 900,
        "user": {"id": "u1", "email": "marie@dupont.fr", "tenant": "dupont", "role": "lawyer"},
        "added_later": true
    })
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)?
        .to_str()
        .ok()?
        .strip_prefix("Bearer ")
}

async fn login(
    State(shared): State<Shared>,
    headers: HeaderMap,
    Json(req): Json<LoginRequest>,
) -> Response {
    seen(&shared).user_agent = headers
        .get(header::USER_AGENT)
        .and_then(|value| value.to_str().ok())
        .map(str::to_owned);
    if req.device_name.trim().is_empty() {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "device_name must be 1-128 bytes",
        );
    }
    if req.email == "marie@dupont.fr" && req.password == "pw" {
        Json(tokens("tsr_1")).into_response()
    } else {
        error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "wrong email or password",
        )
    }
}

async fn refresh(Json(req): Json<RefreshRequest>) -> Response {
    match req.refresh_token.as_str() {
        "tsr_1" => Json(tokens("tsr_2")).into_response(),
        "tsr_busy" => (
            StatusCode::TOO_MANY_REQUESTS,
            [(header::RETRY_AFTER, "2")],
            Json(json!({"code": "rate_limited", "message": "slow down", "retry_after_ms": 1500})),
        )
            .into_response(),
        _ => error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "refresh token already used; the device session is revoked",
        ),
    }
}

async fn logout(State(shared): State<Shared>, Json(req): Json<LogoutRequest>) -> StatusCode {
    seen(&shared).logouts.push(req.refresh_token);
    StatusCode::NO_CONTENT
}

async fn history(
    State(shared): State<Shared>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    if bearer(&headers) != Some("at_1") {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "expired token");
    }
    seen(&shared).history_query = raw;
    let Some(Ok(stream)) = params.get("stream").map(|s| s.parse::<StreamName>()) else {
        return error(
            StatusCode::UNPROCESSABLE_ENTITY,
            "invalid_request",
            "bad stream",
        );
    };
    if stream.to_string() == "tenant:other" {
        return error(
            StatusCode::FORBIDDEN,
            "forbidden",
            "you may not read this stream",
        );
    }
    let after: u64 = params
        .get("after")
        .and_then(|a| a.parse().ok())
        .unwrap_or(0);
    Json(json!({
        "stream": stream,
        "epoch": "03be77a1c9d2e4f5",
        "first": 1,
        "head": 9,
        "notifications": [{
            "offset": after + 1,
            "read": true,
            "notification": {
                "id": "0193a4f5-1c2d-7e3f-8a4b-5c6d7e8f9a0b",
                "kind": "system-notification",
                "data": {"level": "warning", "code": "backup-late"},
                "created_at": "2026-11-21T08:00:00Z",
                "urgency": "high",
                "title": "Sauvegarde en retard",
                "body": ""
            }
        }],
        "next_after": after + 1
    }))
    .into_response()
}

async fn unread(headers: HeaderMap) -> Response {
    if bearer(&headers) != Some("at_1") {
        return error(StatusCode::UNAUTHORIZED, "unauthorized", "expired token");
    }
    Json(json!({
        "total": 6,
        "by_kind": {"email-received": 3, "deadline-alert": 2, "kind-from-the-future": 1}
    }))
    .into_response()
}

async fn publish(headers: HeaderMap, Json(req): Json<PublishRequest>) -> Response {
    if !bearer(&headers).is_some_and(|token| token.starts_with("tsk_")) {
        return error(
            StatusCode::UNAUTHORIZED,
            "unauthorized",
            "publishing needs an API key",
        );
    }
    let duplicate = req.idempotency_key.as_deref() == Some("dup");
    let status = if duplicate {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let answer = json!({
        "id": "0193a4f3-0a1b-7c2d-8e3f-4a5b6c7d8e9f",
        "stream": "user:0193a4f2-6c1e-7b42-9d0a-5e8f1c2b3a4d",
        "epoch": "9f1c2a7e5b3d4c60",
        "offset": 42,
        "duplicate": duplicate
    });
    (status, Json(answer)).into_response()
}

/// A gateway's routes.
fn gateway(shared: Shared) -> Router {
    Router::new()
        .route("/v1/auth/login", post(login))
        .route("/v1/auth/refresh", post(refresh))
        .route("/v1/auth/logout", post(logout))
        .route("/v1/history", get(history))
        .route("/v1/unread", get(unread))
        .route("/v1/publish", post(publish))
        .with_state(shared)
}

/// The same routes answering what no gateway should, or what a proxy might.
fn odd() -> Router {
    Router::new()
        .route(
            "/v1/auth/login",
            post(|| async { (StatusCode::INTERNAL_SERVER_ERROR, "internal oops") }),
        )
        .route(
            "/v1/auth/refresh",
            post(|| async {
                (
                    StatusCode::TEMPORARY_REDIRECT,
                    [(header::LOCATION, "http://elsewhere.example/")],
                )
            }),
        )
        .route(
            "/v1/unread",
            get(|| async { (StatusCode::OK, "<html>hello</html>") }),
        )
        .route(
            "/v1/history",
            get(|| async { error(StatusCode::SERVICE_UNAVAILABLE, "unavailable", "disk full") }),
        )
        .route(
            "/v1/publish",
            post(|| async { error(StatusCode::FORBIDDEN, "brand_new_code", "a new refusal") }),
        )
}

/// Serves the fake gateway under `/tocsin/` and the odd one under `/odd/`.
async fn serve() -> (SocketAddr, Shared) {
    let shared = Shared::default();
    let app = Router::new()
        .nest("/tocsin", gateway(shared.clone()))
        .nest("/odd", odd());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (addr, shared)
}

fn client(addr: SocketAddr, prefix: &str) -> ApiClient {
    let url = ServerUrl::parse(&format!("http://{addr}/{prefix}")).expect("url");
    ApiClient::new(url)
}

#[tokio::test]
async fn login_refresh_logout() {
    let (addr, shared) = serve().await;
    let api = client(addr, "tocsin");

    let tokens = api
        .login("marie@dupont.fr", "pw", "Laptop — Marie")
        .await
        .expect("login");
    assert_eq!(tokens.access_token, "at_1");
    assert_eq!(tokens.refresh_token, "tsr_1");
    assert_eq!(tokens.expires_in, 900);
    assert_eq!(tokens.user.tenant, "dupont");
    assert_eq!(
        seen(&shared).user_agent.as_deref(),
        Some(concat!("tocsin-client/", env!("CARGO_PKG_VERSION")))
    );

    let renewed = api.refresh("tsr_1").await.expect("refresh");
    assert_eq!(renewed.refresh_token, "tsr_2");

    api.logout("tsr_2").await.expect("logout");
    assert_eq!(seen(&shared).logouts, vec!["tsr_2".to_owned()]);
}

#[tokio::test]
async fn refusals_carry_the_gateway_message() {
    let (addr, _) = serve().await;
    let api = client(addr, "tocsin");

    match api.login("marie@dupont.fr", "wrong", "Laptop").await {
        Err(ApiError::Unauthorized(message)) => assert_eq!(message, "wrong email or password"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    match api.refresh("tsr_reused").await {
        Err(ApiError::Unauthorized(message)) => assert!(message.contains("revoked"), "{message}"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    match api.login("marie@dupont.fr", "pw", "  ").await {
        Err(ApiError::Server { status: 422, body }) => {
            assert_eq!(body.code, ErrorCode::InvalidRequest);
            assert!(body.message.contains("device_name"), "{}", body.message);
        }
        other => panic!("expected a 422, got {other:?}"),
    }
    match api.refresh("tsr_busy").await {
        Err(ApiError::RateLimited { retry_after }) => {
            assert_eq!(retry_after, Duration::from_millis(1500));
        }
        other => panic!("expected RateLimited, got {other:?}"),
    }
}

#[tokio::test]
async fn history_sends_the_token_and_encodes_the_stream() {
    let (addr, shared) = serve().await;
    let api = client(addr, "tocsin");
    let stream: StreamName = "user:a+b@x.fr".parse().expect("stream");

    let page = api
        .history("at_1", &stream, 5, 2, false)
        .await
        .expect("history");
    assert_eq!(page.stream, stream, "'+' survived the query string");
    assert_eq!((page.first, page.head), (1, 9));
    assert_eq!(page.notifications.len(), 1);
    assert_eq!(page.notifications[0].offset, 6);
    assert!(page.notifications[0].read);
    assert_eq!(
        page.notifications[0].notification.kind(),
        Kind::SystemNotification
    );
    assert_eq!(page.next_after, Some(6));
    let query = seen(&shared).history_query.clone().expect("query");
    assert_eq!(query, "stream=user%3Aa%2Bb%40x.fr&after=5&limit=2");

    match api.history("at_old", &stream, 0, 100, false).await {
        Err(ApiError::Unauthorized(message)) => assert_eq!(message, "expired token"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    let other: StreamName = "tenant:other".parse().expect("stream");
    match api.history("at_1", &other, 0, 100, false).await {
        Err(ApiError::Server { status: 403, body }) => assert_eq!(body.code, ErrorCode::Forbidden),
        other => panic!("expected a 403, got {other:?}"),
    }
}

#[tokio::test]
async fn unread_counts_kinds_it_does_not_know_together() {
    let (addr, _) = serve().await;
    let api = client(addr, "tocsin");
    let counts = api.unread("at_1").await.expect("unread");
    assert_eq!(counts.total, 6);
    assert_eq!(counts.by_kind.len(), 3);
    assert_eq!(counts.by_kind.get(&Kind::Unknown), Some(&1));
    assert_eq!(counts.by_kind.get(&Kind::EmailReceived), Some(&3));
    assert_eq!(counts.by_kind.get(&Kind::DeadlineAlert), Some(&2));
}

#[tokio::test]
async fn publish_with_an_api_key() {
    let (addr, _) = serve().await;
    let api = client(addr, "tocsin");
    let mut request: PublishRequest = serde_json::from_value(json!({
        "to": "user:marie@dupont.fr",
        "kind": "system-notification",
        "data": {"level": "info"},
        "title": "Hello"
    }))
    .expect("request");

    let stored = api.publish("tsk_k", &request).await.expect("publish");
    assert_eq!(stored.offset, 42);
    assert!(!stored.duplicate);

    request.idempotency_key = Some("dup".into());
    let again = api.publish("tsk_k", &request).await.expect("publish");
    assert!(again.duplicate, "a 200 duplicate is a success too");

    assert!(matches!(
        api.publish("at_1", &request).await,
        Err(ApiError::Unauthorized(_))
    ));
}

#[tokio::test]
async fn odd_answers_are_sorted() {
    let (addr, _) = serve().await;
    let api = client(addr, "odd");
    let stream: StreamName = "all".parse().expect("stream");

    match api.login("a", "b", "c").await {
        Err(ApiError::Server { status: 500, body }) => {
            assert_eq!(body.code, ErrorCode::Internal);
            assert!(body.message.contains("internal oops"), "{}", body.message);
        }
        other => panic!("expected a 500, got {other:?}"),
    }
    match api.refresh("tsr_1").await {
        Err(ApiError::Protocol(message)) => {
            assert!(message.contains("elsewhere.example"), "{message}")
        }
        other => panic!("expected a refused redirect, got {other:?}"),
    }
    assert!(matches!(
        api.unread("at_1").await,
        Err(ApiError::Protocol(_))
    ));
    match api.history("at_1", &stream, 0, 10, false).await {
        Err(err @ ApiError::Server { status: 503, .. }) => {
            assert!(err.is_transient());
            assert!(err.to_string().contains("disk full"), "{err}");
        }
        other => panic!("expected a 503, got {other:?}"),
    }
    match api.publish("tsk_k", &sample_publish()).await {
        Err(ApiError::Server { status: 403, body }) => {
            assert_eq!(
                body.code,
                ErrorCode::Internal,
                "unknown codes read as internal"
            );
            assert_eq!(body.message, "a new refusal");
        }
        other => panic!("expected a 403, got {other:?}"),
    }
    match api.logout("tsr_1").await {
        Err(ApiError::Server { status: 404, body }) => assert_eq!(body.code, ErrorCode::NotFound),
        other => panic!("expected a 404, got {other:?}"),
    }
}

fn sample_publish() -> PublishRequest {
    serde_json::from_value(json!({
        "to": "all", "kind": "system-notification", "data": {"level": "info"}, "title": "t"
    }))
    .expect("request")
}

#[tokio::test]
async fn a_closed_port_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = listener.local_addr().expect("addr");
    drop(listener);
    let api = client(addr, "");
    match api.login("a", "b", "c").await {
        Err(err @ ApiError::Unreachable { .. }) => {
            let text = err.to_string();
            assert!(
                text.starts_with(&format!("cannot reach http://{addr}/v1/auth/login: ")),
                "{text}"
            );
            assert!(matches!(
                err,
                ApiError::Unreachable {
                    maybe_delivered: false,
                    ..
                }
            ));
            assert!(err.is_transient());
        }
        other => panic!("expected Unreachable, got {other:?}"),
    }
}

#[tokio::test(start_paused = true)]
async fn a_silent_server_times_out() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((socket, _)) = listener.accept().await {
            held.push(socket);
        }
    });
    let api = client(addr, "");
    match api.refresh("tsr_1").await {
        Err(ApiError::Unreachable {
            reason,
            maybe_delivered,
            ..
        }) => {
            assert!(reason.contains("timed out"), "{reason}");
            assert!(maybe_delivered, "the request was sent: it may have arrived");
        }
        other => panic!("expected a timeout, got {other:?}"),
    }
}

/// A TLS server with a self-signed certificate for `localhost`.
async fn serve_self_signed() -> SocketAddr {
    use tokio_rustls::rustls;
    let certified =
        rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(certified.signing_key.serialize_der().into());
    let config = rustls::ServerConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("versions")
    .with_no_client_auth()
    .with_single_cert(vec![certified.cert.der().clone()], key)
    .expect("server config");
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move { acceptor.accept(socket).await });
        }
    });
    addr
}

#[tokio::test]
async fn an_untrusted_certificate_is_reported_with_its_fingerprint() {
    let addr = serve_self_signed().await;
    let url = ServerUrl::parse(&format!("https://localhost:{}/", addr.port())).expect("url");
    match ApiClient::new(url).login("a", "b", "c").await {
        Err(err @ ApiError::UntrustedCertificate { .. }) => {
            let message = err.to_string();
            assert!(message.contains("not trusted"), "{message}");
            assert!(message.contains("SHA-256 fingerprint"), "{message}");
        }
        other => panic!("expected an untrusted certificate, got {other:?}"),
    }
}

#[tokio::test]
async fn https_to_a_plain_http_server_is_a_tls_error() {
    let (addr, _) = serve().await;
    let url = ServerUrl::parse(&format!("https://{addr}/tocsin/")).expect("url");
    match ApiClient::new(url)
        .login("marie@dupont.fr", "pw", "c")
        .await
    {
        Err(ApiError::Tls { .. }) => {}
        other => panic!("expected a TLS error, got {other:?}"),
    }
}
