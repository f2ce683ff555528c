//! The OpenAPI document against the real binary: `/v1/openapi.json` is OpenAPI 3.1,
//! the same as `tocsin-gateway openapi` prints, and every operation it lists is
//! served (none answers the router's bare 404/405); then **schemathesis** (PyPI,
//! installed by `cargo xtask setup` into `.tools/schemathesis`) generates requests
//! for every operation from the document, with an admin API key, a user's token and
//! the metrics token, and checks each answer: no 5xx, every status, content type,
//! header and body as documented. Bounded: a fixed seed, 20 examples per operation,
//! one worker, a time limit.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::Value;
use tocsin_e2e::binary::{gateway_binary, workspace_root};
use tocsin_e2e::{Gateway, GatewayOptions};

/// Where `cargo xtask setup` installs schemathesis (a virtualenv at the workspace
/// root); `TOCSIN_SCHEMATHESIS` names another binary.
fn schemathesis() -> PathBuf {
    let path = std::env::var_os(tocsin_harness::env::SCHEMATHESIS)
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace_root().join(".tools/schemathesis/bin/schemathesis"));
    assert!(
        path.is_file(),
        "schemathesis is missing at {}: run `cargo xtask setup` (it installs it from PyPI into .tools/schemathesis)",
        path.display()
    );
    path
}

/// The longest a schemathesis run may take (it takes ~35 s on two cores).
const SCHEMATHESIS_LIMIT: Duration = Duration::from_secs(600);

async fn document(gw: &Gateway) -> Value {
    let reply = reqwest::get(format!("{}/v1/openapi.json", gw.base_url()))
        .await
        .expect("the document is served");
    assert_eq!(reply.status(), 200);
    let content_type = reply.headers()["content-type"].to_str().unwrap_or_default();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    reply.json().await.expect("the document is JSON")
}

/// `/v1/deadlines/{id}` with each parameter filled in.
fn concrete(path: &str) -> String {
    let mut out = String::new();
    let mut rest = path;
    while let Some(start) = rest.find('{') {
        out.push_str(&rest[..start]);
        let end = rest[start..]
            .find('}')
            .map_or(rest.len(), |end| start + end + 1);
        out.push_str("probe");
        rest = &rest[end..];
    }
    out.push_str(rest);
    out
}

#[tokio::test]
async fn the_document_is_openapi_3_1_and_every_operation_in_it_is_served() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let served = document(&gw).await;
    assert!(
        served["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        served["openapi"]
    );
    let printed = Command::new(gateway_binary())
        .arg("openapi")
        .output()
        .expect("tocsin-gateway openapi runs");
    assert!(printed.status.success());
    let printed: Value = serde_json::from_slice(&printed.stdout).expect("it prints JSON");
    assert_eq!(
        printed, served,
        "the CLI prints the document the gateway serves"
    );

    let paths = served["paths"].as_object().expect("paths");
    assert!(paths.len() >= 20, "{} paths", paths.len());
    let client = reqwest::Client::new();
    for (path, item) in paths {
        for method in item.as_object().expect("a path item").keys() {
            let method: reqwest::Method = method.to_uppercase().parse().expect("a method");
            let url = format!("{}{}", gw.base_url(), concrete(path));
            let reply = client
                .request(method.clone(), &url)
                .send()
                .await
                .expect("answered");
            let status = reply.status().as_u16();
            let body = reply.text().await.unwrap_or_default();
            // The router's own "no such route" is an empty 404 or a 405: a handler's
            // refusal (no credential, unknown id) always has a body.
            assert!(
                status != 405 && !(status == 404 && body.is_empty()),
                "{method} {path} is documented but not served: {status} {body:?}"
            );
        }
    }
}

#[tokio::test]
async fn schemathesis_finds_no_server_error_and_no_answer_the_document_does_not_describe() {
    let tool = schemathesis();
    let gw = Gateway::start(GatewayOptions::with_tenants(&[(
        "dupont",
        &["marie:admin", "leaver"],
    )]))
    .await;
    let admin_key = gw.create_key("dupont", true).await;
    let marie = gw.user("dupont", 0).clone();
    let leaver = gw.user("dupont", 1).clone();
    let token = gw.api().login(&marie).await.access_token;
    // A deadline for the operations on `/v1/deadlines/{id}` to find.
    let declared = reqwest::Client::new()
        .put(format!("{}/v1/deadlines/appel-1", gw.base_url()))
        .bearer_auth(&admin_key)
        .json(&serde_json::json!({
            "owner": marie.email, "deadline_type": "appel",
            "due_at": "2030-03-01T18:00:00+01:00", "dossier_number": "2026-0142"
        }))
        .send()
        .await
        .expect("declared");
    assert_eq!(declared.status(), 201);
    let config_text = std::fs::read_to_string(gw.data_dir().join("config.toml")).expect("config");
    let config: toml::Table = config_text.parse().expect("config parses");
    let metrics_token = config["metrics"]["token"]
        .as_str()
        .expect("a metrics token");

    let dir = tempfile::tempdir().expect("tempdir");
    // The user routes act on `leaver` (a run may disable and erase them); marie's token
    // stays good for the whole run.
    let settings = format!(
        r#"[auth.openapi.api_key]
bearer = "{admin_key}"
[auth.openapi.user_token]
bearer = "{token}"
[auth.openapi.metrics_token]
bearer = "{metrics_token}"
[[operations]]
include-path-regex = "^/v1/users/"
parameters = {{ user = "{}" }}
[[operations]]
include-path = "/v1/deadlines/{{id}}"
parameters = {{ id = "appel-1" }}
"#,
        leaver.email
    );
    let config_path = dir.path().join("schemathesis.toml");
    std::fs::write(&config_path, settings).expect("config written");
    let run = tokio::process::Command::new(&tool)
        .current_dir(dir.path())
        .env("NO_COLOR", "1")
        .arg("--config-file")
        .arg(&config_path)
        .args(["run", &format!("{}/v1/openapi.json", gw.base_url())])
        .args([
            "--checks",
            "not_a_server_error,status_code_conformance,content_type_conformance,response_headers_conformance,response_schema_conformance",
            "--max-examples",
            "20",
            "--seed",
            "1",
            "--workers",
            "1",
            "--request-timeout",
            "10",
        ])
        .kill_on_drop(true)
        .output();
    let output = tokio::time::timeout(SCHEMATHESIS_LIMIT, run)
        .await
        .expect("schemathesis finished within its limit")
        .expect("schemathesis ran");
    let report = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "schemathesis found failures:\n{report}\n{}\ngateway log:\n{}",
        String::from_utf8_lossy(&output.stderr),
        gw.log_tail(40)
    );
    let operations: usize = document(&gw).await["paths"]
        .as_object()
        .expect("paths")
        .values()
        .map(|item| item.as_object().map_or(0, |methods| methods.len()))
        .sum();
    // Every operation but the document's own URL, which schemathesis leaves out.
    let tested = operations - 1;
    assert!(
        report.contains(&format!("Tested: {tested}")),
        "schemathesis did not test all {tested} operations:\n{report}"
    );
    let ready = reqwest::get(format!("{}/readyz", gw.base_url()))
        .await
        .expect("still answering");
    assert_eq!(
        ready.status(),
        200,
        "the gateway is still ready after the run"
    );
    assert!(
        !gw.log_tail(10_000).contains("panicked"),
        "the gateway panicked during the run"
    );
}
