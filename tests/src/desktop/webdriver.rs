//! The panel's webview driven over W3C WebDriver: `tauri-driver` (with Debian's
//! `WebKitWebDriver` as the native driver) launches the app, and a minimal client
//! over reqwest finds elements by CSS, clicks, reads text and attributes, types,
//! runs scripts and takes screenshots.
//!
//! How the app is launched (read from tauri-driver 2.1's source): `tauri:options`
//! `{application, args}` becomes `webkitgtk:browserOptions {binary, args}`, and
//! WebKitWebDriver starts `binary args…` with **its own environment** — which is
//! tauri-driver's. So the app's environment (`LANG`, the session's `DISPLAY` and bus)
//! is set on tauri-driver, one tauri-driver per app; its stdin is not the test's
//! (no `--password-stdin` here: sign in through the form). tauri-driver, the native
//! driver, the app and WebKit's processes share one process group, killed together.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use super::app::{AppOptions, desktop_required, require_desktop};
use super::session::DesktopSession;
use tocsin_harness::process::{Pipes, Supervised, free_port, on_path};

/// The W3C element reference key.
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// Debian's WebKitGTK WebDriver.
pub const NATIVE_DRIVER: &str = "/usr/bin/WebKitWebDriver";
/// How long tauri-driver may take to answer `/status`.
const DRIVER_TIMEOUT: Duration = Duration::from_secs(20);
/// How long creating a session (starting the app and its webview) may take.
const SESSION_TIMEOUT: Duration = Duration::from_secs(90);
/// How long one command may take.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

/// The `tauri-driver` binary: on `PATH`, else `~/.cargo/bin/tauri-driver`.
pub fn tauri_driver_binary() -> Option<PathBuf> {
    if on_path("tauri-driver") {
        return Some(PathBuf::from("tauri-driver"));
    }
    let home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cargo")))?;
    let path = home.join("bin").join("tauri-driver");
    path.is_file().then_some(path)
}

/// The desktop binary for a WebDriver test, or `None` after printing why it is
/// skipped (no binary, no tauri-driver, no WebKitWebDriver); panics instead when
/// `TOCSIN_REQUIRE_DESKTOP=1`.
pub fn require_webdriver(test: &str) -> Option<PathBuf> {
    let binary = require_desktop(test, &[NATIVE_DRIVER])?;
    if tauri_driver_binary().is_some() {
        return Some(binary);
    }
    let reason = "tauri-driver is not installed (cargo install tauri-driver --locked)";
    assert!(
        !desktop_required(),
        "{test}: TOCSIN_REQUIRE_DESKTOP=1 but {reason}"
    );
    eprintln!("SKIPPED {test}: {reason} (set TOCSIN_REQUIRE_DESKTOP=1 to fail instead)");
    None
}

/// The request side: one HTTP client and the session's URL.
#[derive(Clone)]
struct Wire {
    /// The client.
    http: reqwest::Client,
    /// `http://127.0.0.1:PORT/session/ID`.
    session_url: String,
}

impl Wire {
    async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.session_url);
        send(&self.http, method, &url, body, COMMAND_TIMEOUT).await
    }
}

/// Sends one WebDriver command and unwraps `value`, turning a W3C error into `Err`.
async fn send(
    http: &reqwest::Client,
    method: reqwest::Method,
    url: &str,
    body: Option<Value>,
    timeout: Duration,
) -> Result<Value> {
    let mut request = http.request(method.clone(), url).timeout(timeout);
    if let Some(body) = body {
        request = request.json(&body);
    } else if method == reqwest::Method::POST {
        request = request.json(&json!({}));
    }
    let response = request
        .send()
        .await
        .with_context(|| format!("WebDriver {method} {url}: no answer"))?;
    let status = response.status();
    let text = response
        .text()
        .await
        .with_context(|| format!("WebDriver {method} {url}: unreadable body"))?;
    let reply: Value = serde_json::from_str(&text)
        .with_context(|| format!("WebDriver {method} {url}: not JSON ({status}): {text}"))?;
    let value = reply.get("value").cloned().unwrap_or(Value::Null);
    if !status.is_success() {
        let error = value["error"].as_str().unwrap_or("unknown error");
        let message = value["message"].as_str().unwrap_or("");
        return Err(WebDriverError {
            error: error.to_owned(),
            message: message.to_owned(),
        })
        .with_context(|| format!("WebDriver {method} {url} ({status})"));
    }
    Ok(value)
}

/// A W3C WebDriver error (`no such element`, `stale element reference`…).
#[derive(Debug, Clone)]
pub struct WebDriverError {
    /// The error code.
    pub error: String,
    /// The driver's message.
    pub message: String,
}

impl std::fmt::Display for WebDriverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.error, self.message)
    }
}

impl std::error::Error for WebDriverError {}

/// True when `err` is the W3C error `code`.
pub fn is_webdriver_error(err: &anyhow::Error, code: &str) -> bool {
    err.downcast_ref::<WebDriverError>()
        .is_some_and(|e| e.error == code)
}

/// A CSS selector for `data-testid="…"`.
pub fn testid(id: &str) -> String {
    format!("[data-testid=\"{id}\"]")
}

/// The app, launched by tauri-driver, and a WebDriver session on its webview.
pub struct WebDriver {
    /// tauri-driver (its group holds WebKitWebDriver, the app and WebKit).
    driver: Supervised,
    /// The session's requests.
    wire: Wire,
    /// `http://127.0.0.1:PORT`.
    base: String,
    /// Still open.
    open: bool,
    /// The X display the app runs on (screenshots are taken from it).
    display: String,
}

impl WebDriver {
    /// Starts tauri-driver inside `session` with the app's environment and opens a
    /// session on `binary` launched with `options`' arguments (the app must show its
    /// panel at start: not `--hidden`).
    pub async fn launch(
        session: &DesktopSession,
        binary: &Path,
        options: &AppOptions,
    ) -> Result<WebDriver> {
        let tauri_driver = tauri_driver_binary()
            .context("tauri-driver is not installed (cargo install tauri-driver --locked)")?;
        let application = std::fs::canonicalize(binary)
            .with_context(|| format!("{} does not exist", binary.display()))?;
        let logs = session.logs_dir();
        let index = std::fs::read_dir(&logs)
            .map(|entries| entries.count())
            .unwrap_or(0);
        let log = logs.join(format!("tauri-driver-{index}.log"));
        let http = reqwest::Client::builder()
            .no_proxy()
            .build()
            .context("a reqwest client")?;

        // Free ports can be taken between the probe and the bind: try a few pairs.
        let mut last_error = None;
        for _attempt in 0..3 {
            let port = free_port()?;
            let native_port = free_port()?;
            let mut command = session.command(&tauri_driver);
            for name in AppOptions::REMOVED_ENV {
                command.env_remove(name);
            }
            command
                .args(["--port", &port.to_string()])
                .args(["--native-port", &native_port.to_string()])
                .args(["--native-driver", NATIVE_DRIVER])
                .envs(options.env());
            let mut driver = Supervised::spawn("tauri-driver", command, &log, Pipes::default())?;
            let base = format!("http://127.0.0.1:{port}");
            match wait_ready(&http, &base, &mut driver).await {
                Ok(()) => {
                    let wire = open_session(&http, &base, &application, options, &driver).await?;
                    return Ok(WebDriver {
                        driver,
                        wire,
                        base,
                        open: true,
                        display: session.display().to_owned(),
                    });
                }
                Err(err) => {
                    driver.kill_group().await;
                    last_error = Some(err);
                }
            }
        }
        Err(last_error.unwrap_or_else(|| anyhow::anyhow!("tauri-driver never started")))
    }

    /// tauri-driver's address.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// tauri-driver's log (the app's and WebKit's output go there too).
    pub fn log(&self) -> &Path {
        self.driver.log()
    }

    /// The last `lines` lines of that log.
    pub fn log_tail(&self, lines: usize) -> String {
        self.driver.log_tail(lines)
    }

    /// The first element matching `css`; an error when there is none.
    pub async fn find(&self, css: &str) -> Result<Element> {
        let value = self
            .wire
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .with_context(|| format!("finding {css}"))?;
        Element::from_value(&self.wire, css, &value)
    }

    /// The first element matching `css`, or `None`.
    pub async fn try_find(&self, css: &str) -> Result<Option<Element>> {
        Ok(self.find_all(css).await?.into_iter().next())
    }

    /// Every element matching `css`, in document order.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let value = self
            .wire
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await
            .with_context(|| format!("finding all {css}"))?;
        value
            .as_array()
            .with_context(|| format!("find all {css}: not an array: {value}"))?
            .iter()
            .map(|v| Element::from_value(&self.wire, css, v))
            .collect()
    }

    /// `find(testid(id))`.
    pub async fn by_testid(&self, id: &str) -> Result<Element> {
        self.find(&testid(id)).await
    }

    /// Waits until an element matches `css`, up to `timeout`.
    pub async fn wait_for(&self, css: &str, timeout: Duration) -> Result<Element> {
        self.wait_until(
            &format!("an element matching `{css}`"),
            timeout,
            async |driver| driver.try_find(css).await,
        )
        .await
    }

    /// Waits until no element matches `css`, up to `timeout`.
    pub async fn wait_gone(&self, css: &str, timeout: Duration) -> Result<()> {
        self.wait_until(
            &format!("no element matching `{css}`"),
            timeout,
            async |driver| Ok(driver.find_all(css).await?.is_empty().then_some(())),
        )
        .await
    }

    /// Waits until the element matching `css` has attribute `name` equal to `value`.
    pub async fn wait_attribute(
        &self,
        css: &str,
        name: &str,
        value: &str,
        timeout: Duration,
    ) -> Result<Element> {
        self.wait_until(
            &format!("`{css}` with {name}={value:?}"),
            timeout,
            async |driver| {
                let Some(element) = driver.try_find(css).await? else {
                    return Ok(None);
                };
                let current = element.attribute(name).await?;
                Ok((current.as_deref() == Some(value)).then_some(element))
            },
        )
        .await
    }

    /// Waits until the text of the element matching `css` satisfies `accept`.
    pub async fn wait_text(
        &self,
        css: &str,
        what: &str,
        timeout: Duration,
        accept: impl Fn(&str) -> bool,
    ) -> Result<String> {
        self.wait_until(&format!("`{css}` text {what}"), timeout, async |driver| {
            let Some(element) = driver.try_find(css).await? else {
                return Ok(None);
            };
            let text = element.text().await?;
            Ok(accept(&text).then_some(text))
        })
        .await
    }

    /// Calls `probe` until it returns `Some`, up to `timeout` (the harness's `poll`:
    /// errors from `probe`, a stale element while the UI re-renders, are retried and
    /// the last one reported), with a screenshot of the screen when time runs out.
    pub async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl AsyncFnMut(&WebDriver) -> Result<Option<T>>,
    ) -> Result<T> {
        match tocsin_harness::desktop::wait::poll(what, timeout, async || probe(self).await).await {
            Ok(value) => Ok(value),
            Err(err) => {
                let shot = self.failure_screenshot().await;
                Err(err.context(shot))
            }
        }
    }

    /// Saves a screenshot after a failed wait, and says where (or why not).
    async fn failure_screenshot(&self) -> String {
        static COUNT: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
        let n = COUNT.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("webdriver-timeout-{}-{n}.png", std::process::id());
        let saved = match super::artifacts::artifact(&name) {
            Ok(path) => self.screenshot(&path).await.map(|()| path),
            Err(err) => Err(err),
        };
        match saved {
            Ok(path) => format!("the panel then: {}", path.display()),
            Err(err) => format!("no screenshot: {err:#}"),
        }
    }

    /// Waits until the page has no running CSS animation or transition, then for two
    /// animation frames: what a screenshot then shows is what a user sees.
    pub async fn wait_settled(&self, timeout: Duration) -> Result<()> {
        self.wait_until("the page to stop animating", timeout, async |driver| {
            let running = driver
                .execute(
                    "return document.getAnimations().filter(a => a.playState === 'running').length;",
                    Vec::new(),
                )
                .await?;
            Ok((running.as_u64() == Some(0)).then_some(()))
        })
        .await?;
        self.execute_async(
            "const done = arguments[arguments.length - 1]; \
             requestAnimationFrame(() => requestAnimationFrame(() => done(true)));",
            Vec::new(),
        )
        .await?;
        Ok(())
    }

    /// Runs `script` (a function body; `arguments[i]` are `args`) and returns its
    /// result.
    pub async fn execute(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.wire
            .call(
                reqwest::Method::POST,
                "/execute/sync",
                Some(json!({"script": script, "args": args})),
            )
            .await
            .with_context(|| format!("executing {script}"))
    }

    /// Runs an async `script`: it must call `arguments[arguments.length - 1](result)`.
    pub async fn execute_async(&self, script: &str, args: Vec<Value>) -> Result<Value> {
        self.wire
            .call(
                reqwest::Method::POST,
                "/execute/async",
                Some(json!({"script": script, "args": args})),
            )
            .await
            .with_context(|| format!("executing (async) {script}"))
    }

    /// The page's HTML.
    pub async fn source(&self) -> Result<String> {
        let value = self
            .wire
            .call(reqwest::Method::GET, "/source", None)
            .await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The current URL.
    pub async fn url(&self) -> Result<String> {
        let value = self.wire.call(reqwest::Method::GET, "/url", None).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// Saves a screenshot of the app's window as a PNG file: the window's rectangle
    /// (asked over WebDriver) cut out of the X screen.
    ///
    /// Not WebDriver's own `/screenshot`: WebKit takes it through the UI process's
    /// GL compositing, which the app turns off (`GDK_GL=disable`, to save ~50 MB
    /// while idle), and it then never answers. What the X server shows is also what
    /// a user sees.
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        let rect = self
            .wire
            .call(reqwest::Method::GET, "/window/rect", None)
            .await
            .context("asking the window's rectangle")?;
        let number = |key: &str| rect[key].as_f64().map(|v| v.round() as i64);
        let (Some(x), Some(y), Some(width), Some(height)) =
            (number("x"), number("y"), number("width"), number("height"))
        else {
            bail!("the window rectangle {rect} lacks x, y, width or height");
        };
        let crop = format!("{width}x{height}+{}+{}", x.max(0), y.max(0));
        let output = tokio::time::timeout(
            Duration::from_secs(20),
            tokio::process::Command::new("import")
                .env("DISPLAY", &self.display)
                .args(["-window", "root", "-crop", &crop, "+repage"])
                .arg(path)
                .kill_on_drop(true)
                .output(),
        )
        .await
        .context("import took too long")?
        .context("ImageMagick's import can be run")?;
        if !output.status.success() {
            bail!(
                "import -crop {crop} {} failed: {}",
                path.display(),
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Ok(())
    }

    /// Ends the WebDriver session, then kills tauri-driver and everything it started.
    pub async fn quit(mut self) -> Result<()> {
        let result = self.delete_session().await;
        self.driver.kill_group().await;
        result
    }

    async fn delete_session(&mut self) -> Result<()> {
        if !self.open {
            return Ok(());
        }
        self.open = false;
        send(
            &self.wire.http,
            reqwest::Method::DELETE,
            &self.wire.session_url,
            None,
            COMMAND_TIMEOUT,
        )
        .await
        .map(|_| ())
    }
}

impl Drop for WebDriver {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- tauri-driver + app log ({}), last lines:\n{}\n---",
                self.driver.log().display(),
                self.driver.log_tail(60)
            );
        }
    }
}

/// Polls tauri-driver's `/status` (forwarded to the native driver) until it answers.
async fn wait_ready(http: &reqwest::Client, base: &str, driver: &mut Supervised) -> Result<()> {
    let deadline = tokio::time::Instant::now() + DRIVER_TIMEOUT;
    loop {
        let status = http
            .get(format!("{base}/status"))
            .timeout(Duration::from_secs(2))
            .send()
            .await;
        if let Ok(response) = status
            && response.status().is_success()
        {
            return Ok(());
        }
        if !driver.is_running() {
            bail!(
                "tauri-driver exited at start; log ({}):\n{}",
                driver.log().display(),
                driver.log_tail(30)
            );
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "tauri-driver did not answer /status within {DRIVER_TIMEOUT:?}; log:\n{}",
                driver.log_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `POST /session` with `tauri:options`.
async fn open_session(
    http: &reqwest::Client,
    base: &str,
    application: &Path,
    options: &AppOptions,
    driver: &Supervised,
) -> Result<Wire> {
    let capabilities = json!({
        "capabilities": {
            "alwaysMatch": {
                "tauri:options": {
                    "application": application,
                    "args": options.args(),
                }
            }
        }
    });
    let value = send(
        http,
        reqwest::Method::POST,
        &format!("{base}/session"),
        Some(capabilities),
        SESSION_TIMEOUT,
    )
    .await
    .with_context(|| {
        format!(
            "opening a WebDriver session on {} (is the panel shown at start, and the UI \
             embedded in the binary?); tauri-driver log:\n{}",
            application.display(),
            driver.log_tail(40)
        )
    })?;
    let id = value["sessionId"]
        .as_str()
        .with_context(|| format!("no sessionId in {value}"))?;
    Ok(Wire {
        http: http.clone(),
        session_url: format!("{base}/session/{id}"),
    })
}

/// An element of the page.
#[derive(Clone)]
pub struct Element {
    /// The session's requests.
    wire: Wire,
    /// The W3C element id.
    id: String,
    /// The selector it was found by (for messages).
    css: String,
}

impl std::fmt::Debug for Element {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Element")
            .field("css", &self.css)
            .field("id", &self.id)
            .finish()
    }
}

impl Element {
    fn from_value(wire: &Wire, css: &str, value: &Value) -> Result<Element> {
        let id = value[ELEMENT_KEY]
            .as_str()
            .with_context(|| format!("{css}: no element reference in {value}"))?;
        Ok(Element {
            wire: wire.clone(),
            id: id.to_owned(),
            css: css.to_owned(),
        })
    }

    async fn call(
        &self,
        method: reqwest::Method,
        what: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        self.wire
            .call(method, &format!("/element/{}{what}", self.id), body)
            .await
            .with_context(|| format!("`{}`{what}", self.css))
    }

    /// Clicks it.
    pub async fn click(&self) -> Result<()> {
        self.call(reqwest::Method::POST, "/click", None)
            .await
            .map(|_| ())
    }

    /// Its rendered text.
    pub async fn text(&self) -> Result<String> {
        let value = self.call(reqwest::Method::GET, "/text", None).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// Attribute `name`, `None` when absent.
    pub async fn attribute(&self, name: &str) -> Result<Option<String>> {
        let value = self
            .call(reqwest::Method::GET, &format!("/attribute/{name}"), None)
            .await?;
        Ok(match value {
            Value::Null => None,
            Value::String(text) => Some(text),
            other => Some(other.to_string()),
        })
    }

    /// DOM property `name` (e.g. `value`, `disabled`).
    pub async fn property(&self, name: &str) -> Result<Value> {
        self.call(reqwest::Method::GET, &format!("/property/{name}"), None)
            .await
    }

    /// Types `text` into it.
    pub async fn send_keys(&self, text: &str) -> Result<()> {
        self.call(reqwest::Method::POST, "/value", Some(json!({"text": text})))
            .await
            .map(|_| ())
    }

    /// Empties an input.
    pub async fn clear(&self) -> Result<()> {
        self.call(reqwest::Method::POST, "/clear", None)
            .await
            .map(|_| ())
    }

    /// True when displayed.
    pub async fn is_displayed(&self) -> Result<bool> {
        let value = self.call(reqwest::Method::GET, "/displayed", None).await?;
        Ok(value.as_bool().unwrap_or(false))
    }

    /// True when enabled (not `disabled`).
    pub async fn is_enabled(&self) -> Result<bool> {
        let value = self.call(reqwest::Method::GET, "/enabled", None).await?;
        Ok(value.as_bool().unwrap_or(false))
    }

    /// Descendants matching `css`.
    pub async fn find_all(&self, css: &str) -> Result<Vec<Element>> {
        let value = self
            .call(
                reqwest::Method::POST,
                "/elements",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        value
            .as_array()
            .with_context(|| format!("{css}: not an array: {value}"))?
            .iter()
            .map(|v| Element::from_value(&self.wire, css, v))
            .collect()
    }

    /// The first descendant matching `css`.
    pub async fn find(&self, css: &str) -> Result<Element> {
        let value = self
            .call(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await?;
        Element::from_value(&self.wire, css, &value)
    }
}
