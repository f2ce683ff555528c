//! `/metrics` against the real binary: scraped during a scenario (a connection, live
//! deliveries, a duplicate, a wrong API key, a resume that recovers and one that does
//! not, a disconnect), each counter moved by exactly what happened; the text passes
//! Prometheus's own checker (`promtool check metrics`, Debian's `prometheus`); the
//! token guards it on the main port, and `[metrics] listen` serves it without one.
//! The alert rules docs/OPERATIONS.md gives are checked with `promtool check rules`.

use std::collections::BTreeMap;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Duration;

use tocsin_e2e::publisher::email;
use tocsin_e2e::{Gateway, GatewayOptions, STEP, WsClient, poll_until, position};

/// `promtool`, required: `cargo xtask setup` installs Debian's `prometheus` for it.
fn promtool() -> Command {
    let found = Command::new("promtool").arg("--version").output();
    assert!(
        found.is_ok_and(|out| out.status.success()),
        "promtool is missing: run `cargo xtask setup` (it installs Debian's prometheus package)"
    );
    Command::new("promtool")
}

/// The `[metrics] token` that `init` wrote into the gateway's config.
fn metrics_token(gw: &Gateway) -> String {
    let text = std::fs::read_to_string(gw.data_dir().join("config.toml")).expect("config");
    let config: toml::Table = text.parse().expect("config parses");
    config["metrics"]["token"]
        .as_str()
        .expect("init writes a metrics token")
        .to_owned()
}

async fn scrape_with(url: &str, token: Option<&str>) -> (u16, String) {
    let mut request = reqwest::Client::new().get(url);
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    let response = request.send().await.expect("the gateway answers");
    let status = response.status().as_u16();
    (status, response.text().await.expect("a body"))
}

/// The samples of one scrape: `name{labels}` → value.
struct Scrape(Vec<(String, BTreeMap<String, String>, f64)>);

impl Scrape {
    fn parse(text: &str) -> Scrape {
        let mut samples = Vec::new();
        for line in text
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let (series, value) = line.rsplit_once(' ').expect("`series value`");
            let value: f64 = value.parse().expect("a number");
            let (name, labels) = match series.split_once('{') {
                Some((name, rest)) => {
                    let inner = rest.strip_suffix('}').expect("labels close");
                    let labels = inner
                        .split("\",")
                        .filter(|pair| !pair.is_empty())
                        .map(|pair| {
                            let (key, value) = pair.split_once("=\"").expect("key=\"value\"");
                            (key.to_owned(), value.trim_end_matches('"').to_owned())
                        })
                        .collect();
                    (name.to_owned(), labels)
                }
                None => (series.to_owned(), BTreeMap::new()),
            };
            samples.push((name, labels, value));
        }
        Scrape(samples)
    }

    /// The sum of the samples of `name` whose labels include `labels` (0 if none).
    fn get(&self, name: &str, labels: &[(&str, &str)]) -> f64 {
        self.0
            .iter()
            .filter(|(n, have, _)| {
                n == name
                    && labels
                        .iter()
                        .all(|(k, v)| have.get(*k).map(String::as_str) == Some(*v))
            })
            .map(|(_, _, value)| value)
            .sum()
    }
}

struct Scraper {
    url: String,
    token: String,
}

impl Scraper {
    async fn scrape(&self) -> Scrape {
        let (status, text) = scrape_with(&self.url, Some(&self.token)).await;
        assert_eq!(status, 200, "{text}");
        Scrape::parse(&text)
    }

    /// Scrapes until `name{labels}` is `expected` (a gauge or counter that moves just
    /// after the event the test waited for, e.g. a disconnect).
    async fn until(&self, name: &str, labels: &[(&str, &str)], expected: f64) -> Scrape {
        poll_until(STEP, &format!("{name}{labels:?} = {expected}"), || async {
            let scrape = self.scrape().await;
            (scrape.get(name, labels) == expected).then_some(scrape)
        })
        .await
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_count_what_happened_and_pass_promtool() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let api = gw.api();
    let key = gw.key("dupont").to_owned();
    let marie = gw.user("dupont", 0).clone();
    let token = api.login(&marie).await.access_token;
    let scraper = Scraper {
        url: format!("http://{}/metrics", gw.addr()),
        token: metrics_token(&gw),
    };
    let before = scraper.scrape().await;
    let delta = |now: &Scrape, name: &str, labels: &[(&str, &str)]| {
        now.get(name, labels) - before.get(name, labels)
    };

    // A connection, three live deliveries, then the same idempotent publish twice.
    let (mut client, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, BTreeMap::new()).await;
    for n in 0..3 {
        api.publish_ok(&key, &email(&marie.stream(), &format!("mail {n}")))
            .await;
    }
    let mut once = email(&marie.stream(), "once");
    once.idempotency_key = Some("metrics-once".into());
    api.publish_ok(&key, &once).await;
    let again = api.publish(&key, &once).await;
    assert_eq!(again.status.as_u16(), 200, "a duplicate: {:?}", again.body);
    client.recv_notifications(4, STEP).await;
    let refused = api
        .publish("tsk_nobody_wrong", &email(&marie.stream(), "x"))
        .await;
    assert_eq!(refused.status.as_u16(), 401);

    let now = scraper
        .until("tocsin_connections_open", &[("tenant", "dupont")], 1.0)
        .await;
    let email_stored = [("kind", "email-received"), ("result", "stored")];
    let email_duplicate = [("kind", "email-received"), ("result", "duplicate")];
    assert_eq!(delta(&now, "tocsin_connects_total", &[]), 1.0);
    assert_eq!(delta(&now, "tocsin_publishes_total", &email_stored), 4.0);
    assert_eq!(delta(&now, "tocsin_publishes_total", &email_duplicate), 1.0);
    let live = [("source", "live")];
    assert_eq!(delta(&now, "tocsin_deliveries_total", &live), 4.0);
    assert_eq!(
        delta(&now, "tocsin_delivery_latency_seconds_count", &[]),
        4.0,
        "one latency sample per live delivery"
    );
    assert_eq!(
        delta(
            &now,
            "tocsin_auth_failures_total",
            &[("reason", "bad_api_key")]
        ),
        1.0
    );
    let unauthorized = [("code", "unauthorized"), ("surface", "http")];
    assert_eq!(delta(&now, "tocsin_refusals_total", &unauthorized), 1.0);
    assert!(
        delta(&now, "tocsin_writer_commit_seconds_count", &[]) >= 4.0,
        "each stored publish went through a commit"
    );
    assert_eq!(now.get("tocsin_store_writable", &[]), 1.0);

    // The client leaves, comes back where it was (recovered), then with a position of
    // another timeline (not recovered: it must rebuild).
    let positions = client.positions();
    client.close().await;
    let now = scraper
        .until("tocsin_connections_open", &[("tenant", "dupont")], 0.0)
        .await;
    assert_eq!(delta(&now, "tocsin_disconnects_total", &[]), 1.0);
    let (client, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, positions).await;
    client.close().await;
    let stale = position(&marie.stream(), "0000000000000000", 3);
    let (client, _, _) = WsClient::connect_ready(&gw.ws_url(), &token, stale).await;
    client.close().await;
    let now = scraper
        .until("tocsin_connections_open", &[("tenant", "dupont")], 0.0)
        .await;
    assert_eq!(
        delta(&now, "tocsin_resumes_total", &[("recovered", "true")]),
        1.0
    );
    assert_eq!(
        delta(&now, "tocsin_resumes_total", &[("recovered", "false")]),
        1.0
    );
    assert_eq!(delta(&now, "tocsin_connects_total", &[]), 3.0);

    // Prometheus's own checker reads the whole text without a complaint.
    let (_, text) = scrape_with(&scraper.url, Some(&scraper.token)).await;
    let mut check = promtool()
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool starts");
    check
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("promtool reads the scrape");
    let checked = check.wait_with_output().expect("promtool ends");
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{text}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
}

#[tokio::test]
async fn metrics_need_the_token_on_the_main_port_and_nothing_on_the_private_address() {
    let mut gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let url = format!("http://{}/metrics", gw.addr());
    let token = metrics_token(&gw);
    let (status, body) = scrape_with(&url, None).await;
    assert_eq!(status, 401, "{body}");
    assert!(
        body.contains("[metrics] token"),
        "says what to send: {body}"
    );
    let (status, _) = scrape_with(&url, Some("not-the-token-at-all")).await;
    assert_eq!(status, 401);
    let (status, body) = scrape_with(&url, Some(&token)).await;
    assert_eq!(status, 200);
    assert!(body.contains("tocsin_build_info{version=\""), "{body}");

    // A second, private address: no token there.
    let free = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port");
    let private = free.local_addr().expect("address");
    drop(free);
    let path = gw.data_dir().join("config.toml");
    let mut config: toml::Table = std::fs::read_to_string(&path)
        .expect("config")
        .parse()
        .expect("parses");
    config["metrics"]
        .as_table_mut()
        .expect("[metrics]")
        .insert("listen".into(), toml::Value::String(private.to_string()));
    std::fs::write(&path, toml::to_string(&config).expect("serialises")).expect("written");
    gw.terminate();
    gw.wait_exit(Duration::from_secs(10)).await;
    gw.restart().await;
    let (status, body) = scrape_with(&format!("http://{private}/metrics"), None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.contains("tocsin_build_info"), "{body}");
}

/// The Prometheus rules docs/OPERATIONS.md tells operators to load: the ```yaml block
/// after "alert rules", valid for `promtool check rules` and naming only metrics the
/// gateway exports.
#[test]
fn the_documented_alert_rules_are_valid() {
    let docs = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/OPERATIONS.md"
    ))
    .expect("docs/OPERATIONS.md");
    let start = docs
        .find("# tocsin-alerts.yml")
        .expect("OPERATIONS.md has the alert rules block (# tocsin-alerts.yml)");
    let rules = &docs[start..];
    let rules = &rules[..rules.find("```").expect("the block ends")];
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("tocsin-alerts.yml");
    std::fs::write(&file, rules).expect("written");
    let checked = promtool()
        .args(["check", "rules"])
        .arg(&file)
        .output()
        .expect("promtool runs");
    assert!(
        checked.status.success(),
        "promtool check rules: {}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    for metric in [
        "up",
        "tocsin_store_writable",
        "tocsin_slow_consumer_disconnects_total",
    ] {
        assert!(rules.contains(metric), "the rules use {metric}");
    }
}
