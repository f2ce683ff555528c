//! The browser path end to end, in a real headless Chromium (chromedriver): a page
//! served from origin A, which the gateway allows, `fetch`es `GET /v1/history` with a
//! user's bearer token and reads the JSON, and opens `new WebSocket(…, "tocsin.v1")`,
//! authenticates in the first frame and reads `welcome`; the same page from origin B,
//! not allowed, sees its `fetch` rejected by CORS and its WebSocket refused. The page
//! server serves ES modules Chromium runs. `web_cors.rs` checks the headers themselves.

use std::time::Duration;

use serde_json::json;
use tocsin_e2e::browser::{Chromium, ChromiumOptions, PageServer};
use tocsin_e2e::desktop::within;
use tocsin_e2e::publisher::email;
use tocsin_e2e::{Gateway, GatewayOptions};

/// The whole test, Chromium's start included.
const LIMIT: Duration = Duration::from_secs(120);

const PAGE: &str = "<!doctype html><html><head><meta charset=\"utf-8\">\
    <title>A firm's web app</title></head><body><p>Tocsin browser test</p></body></html>";

/// `fetch(url)` with a bearer token: `{status, body}` or `{error}` when it rejects.
const FETCH: &str = r"
    const [url, token] = arguments;
    return fetch(url, { headers: { authorization: 'Bearer ' + token } }).then(
        async (response) => ({ status: response.status, body: await response.json() }),
        (error) => ({ error: String(error) }),
    );";

/// A `tocsin.v1` WebSocket: `auth`, `hello`, then the first frame back (`welcome`),
/// or how it ended.
const WEBSOCKET: &str = r"
    const [url, token] = arguments;
    return new Promise((resolve) => {
        const socket = new WebSocket(url, 'tocsin.v1');
        const timer = setTimeout(() => resolve({ error: 'no frame within 10 s' }), 10000);
        socket.onopen = () => {
            socket.send(JSON.stringify({ type: 'auth', token }));
            socket.send(JSON.stringify({ type: 'hello', positions: {} }));
        };
        socket.onmessage = (event) => {
            clearTimeout(timer);
            resolve({ protocol: socket.protocol, frame: JSON.parse(event.data) });
            socket.close(1000);
        };
        socket.onclose = (event) => {
            clearTimeout(timer);
            resolve({ error: 'closed ' + event.code });
        };
    });";

#[tokio::test]
async fn a_page_on_an_allowed_origin_reads_history_and_opens_a_websocket_another_origin_cannot() {
    let allowed = PageServer::with_files(&[("/index.html", PAGE)])
        .await
        .expect("page server A");
    let other = PageServer::with_files(&[("/index.html", PAGE)])
        .await
        .expect("page server B");
    let gw = Gateway::start(GatewayOptions {
        allowed_origins: Some(vec![allowed.origin().to_owned()]),
        ..GatewayOptions::with_tenants(&[("dupont", &["marie"])])
    })
    .await;
    let marie = gw.user("dupont", 0);
    let token = gw.api().login(marie).await.access_token;
    let published = gw
        .api()
        .publish_ok(
            gw.key("dupont"),
            &email(&marie.stream(), "read in a browser"),
        )
        .await;
    let history = format!(
        "{}/v1/history?stream={}",
        gw.base_url(),
        marie.stream().replace(':', "%3A")
    );

    let browser = Chromium::launch(&ChromiumOptions::headless())
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
    within(LIMIT, async {
        // Origin A, allowed: the JSON comes through.
        let read = browser
            .run_on(
                &allowed.url("/index.html"),
                FETCH,
                vec![json!(history), json!(token)],
            )
            .await?;
        assert_eq!(read["status"], 200, "fetch from the allowed origin: {read}");
        assert!(
            read["body"]["notifications"]
                .to_string()
                .contains(&published.id),
            "the history read in the page has the notification: {read}"
        );

        let ws = browser
            .run(WEBSOCKET, vec![json!(gw.ws_url()), json!(token)])
            .await?;
        assert_eq!(ws["protocol"], "tocsin.v1", "{ws}");
        assert_eq!(
            ws["frame"]["type"], "welcome",
            "the first frame is welcome: {ws}"
        );

        // Origin B, not allowed, in a second tab: fetch rejects (the preflight was
        // refused), the WebSocket is refused at the upgrade.
        let first = browser.window().await?;
        let tab = browser.new_tab().await?;
        browser.switch_to(&tab).await?;
        assert_eq!(browser.windows().await?.len(), 2);
        let refused = browser
            .run_on(
                &other.url("/index.html"),
                FETCH,
                vec![json!(history), json!(token)],
            )
            .await?;
        assert!(
            refused["error"]
                .as_str()
                .is_some_and(|e| e.contains("Failed to fetch")),
            "fetch from an origin not allowed must reject: {refused}"
        );
        let console = browser.console_log().await?.join("\n");
        assert!(
            console.contains("CORS policy"),
            "Chromium says why (CORS), not a network failure: {console}"
        );
        let ws = browser
            .run(WEBSOCKET, vec![json!(gw.ws_url()), json!(token)])
            .await?;
        assert!(
            ws["error"]
                .as_str()
                .is_some_and(|e| e.starts_with("closed")),
            "a WebSocket from an origin not allowed must be refused: {ws}"
        );
        let left = browser.close_window().await?;
        assert_eq!(left, vec![first.clone()]);
        browser.switch_to(&first).await?;
        assert!(browser.url().await?.starts_with(allowed.origin()));
        Ok::<(), anyhow::Error>(())
    })
    .await;
    browser.quit().await.expect("Chromium stops");
}

/// The page server as the web SDK's tests use it: a directory of ES modules (`.mjs`
/// importing `.js`, with a source map) and an in-memory page, each with the content
/// type a browser needs to run it.
#[tokio::test]
async fn the_page_server_serves_modules_chromium_runs() {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let write = |name: &str, text: &str| {
        std::fs::write(dir.path().join(name), text).expect("a file to serve");
    };
    write(
        "index.html",
        "<!doctype html><meta charset=\"utf-8\"><title>modules</title>\
         <script type=\"module\" src=\"/app.mjs\"></script>",
    );
    write(
        "app.mjs",
        "import { answer } from './lib.js';\nwindow.answer = answer;\n",
    );
    write(
        "lib.js",
        "export const answer = 42;\n//# sourceMappingURL=lib.js.map\n",
    );
    write("lib.js.map", r#"{"version":3,"sources":[],"mappings":""}"#);
    let pages = PageServer::builder()
        .dir(dir.path())
        .file("/memory.html", PAGE)
        .start()
        .await
        .expect("the page server");

    for (path, expected) in [
        ("/", "text/html; charset=utf-8"),
        ("/app.mjs", "text/javascript; charset=utf-8"),
        ("/lib.js", "text/javascript; charset=utf-8"),
        ("/lib.js.map", "application/json"),
        ("/memory.html", "text/html; charset=utf-8"),
    ] {
        let answer = reqwest::get(pages.url(path))
            .await
            .expect("the page server answers");
        assert_eq!(answer.status(), 200, "{path}");
        assert_eq!(answer.headers()["content-type"], expected, "{path}");
        assert_eq!(answer.headers()["cache-control"], "no-store", "{path}");
    }
    let missing = reqwest::get(pages.url("/nothing.js"))
        .await
        .expect("answers");
    assert_eq!(missing.status(), 404);

    let browser = Chromium::launch(&ChromiumOptions::headless())
        .await
        .unwrap_or_else(|err| panic!("{err:#}"));
    within(LIMIT, async {
        browser.navigate(&pages.url("/")).await?;
        browser
            .wait_until("the module ran", Duration::from_secs(10), async |page| {
                let answer = page
                    .execute("return window.answer ?? null;", Vec::new())
                    .await?;
                Ok((answer == 42).then_some(()))
            })
            .await?;
        browser.navigate(&pages.url("/memory.html")).await?;
        assert_eq!(browser.title().await?, "A firm's web app");
        Ok::<(), anyhow::Error>(())
    })
    .await;
    browser.quit().await.expect("Chromium stops");
}
