//! A minimal W3C WebDriver client over reqwest, independent of the driver behind it:
//! the desktop tests drive the panel's webview through tauri-driver
//! ([`crate::desktop::webdriver`]), the browser tests headless Chromium through
//! chromedriver ([`crate::browser`]). It owns the session's commands (elements by CSS,
//! clicks, text and attributes, typing, scripts, navigation, windows and tabs,
//! permissions, the console log), the waits (a condition polled under a deadline,
//! with a screenshot when it times out), screenshots and the W3C errors.
//!
//! Launching a driver and opening the session with its capabilities is each driver's
//! own: [`open_session`] takes the capabilities and [`wait_ready`] the process.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use base64::Engine as _;
use serde_json::{Value, json};
use tocsin_harness::process::Supervised;

/// The W3C element reference key.
pub const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// How long a driver may take to answer `/status`.
pub const DRIVER_TIMEOUT: Duration = Duration::from_secs(20);
/// How long one command may take.
pub const COMMAND_TIMEOUT: Duration = Duration::from_secs(30);

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

/// A reqwest client for a driver on 127.0.0.1 (never through a proxy).
pub fn driver_client() -> Result<reqwest::Client> {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .context("a reqwest client")
}

/// Sends one WebDriver command and unwraps `value`, turning a W3C error into `Err`.
pub async fn send(
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

/// Polls the driver's `/status` until it answers, failing early when the driver
/// (`name`, for messages) exits.
pub async fn wait_ready(
    http: &reqwest::Client,
    base: &str,
    driver: &mut Supervised,
    name: &str,
) -> Result<()> {
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
                "{name} exited at start; log ({}):\n{}",
                driver.log().display(),
                driver.log_tail(30)
            );
        }
        if tokio::time::Instant::now() >= deadline {
            bail!(
                "{name} did not answer /status within {DRIVER_TIMEOUT:?}; log:\n{}",
                driver.log_tail(30)
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// How a [`Session`] takes its screenshots.
#[derive(Clone, Debug)]
pub enum Screenshots {
    /// The window's rectangle (asked over WebDriver) cut out of this X display's
    /// screen: WebKit's own `/screenshot` never answers with GL compositing off,
    /// which the desktop app turns off (see `desktop/webdriver.rs`).
    XScreen {
        /// `DISPLAY`.
        display: String,
    },
    /// WebDriver's `GET /screenshot` (a base64 PNG of the viewport): Chromium
    /// renders headless, with no screen to cut from.
    WebDriver,
}

/// `POST /session` with `capabilities` (the W3C `{"alwaysMatch": …}` object) on the
/// driver at `base`; `context` is added to an error (e.g. the driver's log tail).
pub async fn open_session(
    http: &reqwest::Client,
    base: &str,
    capabilities: Value,
    timeout: Duration,
    screenshots: Screenshots,
    context: impl FnOnce() -> String,
) -> Result<Session> {
    let value = send(
        http,
        reqwest::Method::POST,
        &format!("{base}/session"),
        Some(json!({ "capabilities": capabilities })),
        timeout,
    )
    .await
    .with_context(context)?;
    let id = value["sessionId"]
        .as_str()
        .with_context(|| format!("no sessionId in {value}"))?;
    Ok(Session {
        wire: Wire {
            http: http.clone(),
            session_url: format!("{base}/session/{id}"),
        },
        screenshots,
        capabilities: value["capabilities"].clone(),
        open: true,
    })
}

/// One WebDriver session: every command the tests send to a page.
pub struct Session {
    /// The session's requests.
    wire: Wire,
    /// How screenshots are taken.
    screenshots: Screenshots,
    /// What the driver answered at `POST /session`.
    capabilities: Value,
    /// Not deleted yet.
    open: bool,
}

/// A browser window or tab, by its WebDriver handle.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct WindowHandle(pub String);

impl Session {
    /// The capabilities the driver answered with (browser version, `goog:…`).
    pub fn capabilities(&self) -> &Value {
        &self.capabilities
    }

    /// Sends a command on this session: `path` is relative to `/session/{id}` (e.g.
    /// `"/url"`), for what this client does not wrap.
    pub async fn command(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        self.wire.call(method, path, body).await
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
            async |session| session.try_find(css).await,
        )
        .await
    }

    /// Waits until no element matches `css`, up to `timeout`.
    pub async fn wait_gone(&self, css: &str, timeout: Duration) -> Result<()> {
        self.wait_until(
            &format!("no element matching `{css}`"),
            timeout,
            async |session| Ok(session.find_all(css).await?.is_empty().then_some(())),
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
            async |session| {
                let Some(element) = session.try_find(css).await? else {
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
        self.wait_until(&format!("`{css}` text {what}"), timeout, async |session| {
            let Some(element) = session.try_find(css).await? else {
                return Ok(None);
            };
            let text = element.text().await?;
            Ok(accept(&text).then_some(text))
        })
        .await
    }

    /// Calls `probe` until it returns `Some`, up to `timeout` (the harness's `poll`:
    /// errors from `probe`, a stale element while the UI re-renders, are retried and
    /// the last one reported), with a screenshot when time runs out.
    pub async fn wait_until<T>(
        &self,
        what: &str,
        timeout: Duration,
        mut probe: impl AsyncFnMut(&Session) -> Result<Option<T>>,
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
        let saved = match crate::desktop::artifacts::artifact(&name) {
            Ok(path) => self.screenshot(&path).await.map(|()| path),
            Err(err) => Err(err),
        };
        match saved {
            Ok(path) => format!("the page then: {}", path.display()),
            Err(err) => format!("no screenshot: {err:#}"),
        }
    }

    /// Waits until the page has no running CSS animation or transition, then for two
    /// animation frames: what a screenshot then shows is what a user sees.
    pub async fn wait_settled(&self, timeout: Duration) -> Result<()> {
        self.wait_until("the page to stop animating", timeout, async |session| {
            let running = session
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
    /// result (a returned promise is awaited by the driver).
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

    /// Runs an async `script`: it must call `arguments[arguments.length - 1](result)`
    /// within the session's script timeout.
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

    /// Sets the session's script timeout (how long [`Session::execute_async`] and a
    /// promise returned to [`Session::execute`] may take; W3C's default is 30 s).
    pub async fn set_script_timeout(&self, timeout: Duration) -> Result<()> {
        let millis = u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX);
        self.wire
            .call(
                reqwest::Method::POST,
                "/timeouts",
                Some(json!({ "script": millis })),
            )
            .await
            .map(|_| ())
    }

    /// Loads `url` in the current window and waits for it to load.
    pub async fn navigate(&self, url: &str) -> Result<()> {
        self.wire
            .call(reqwest::Method::POST, "/url", Some(json!({ "url": url })))
            .await
            .with_context(|| format!("navigating to {url}"))
            .map(|_| ())
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

    /// The page's title.
    pub async fn title(&self) -> Result<String> {
        let value = self.wire.call(reqwest::Method::GET, "/title", None).await?;
        Ok(value.as_str().unwrap_or_default().to_owned())
    }

    /// The current window's handle.
    pub async fn window(&self) -> Result<WindowHandle> {
        let value = self
            .wire
            .call(reqwest::Method::GET, "/window", None)
            .await?;
        let handle = value
            .as_str()
            .with_context(|| format!("a window handle, not {value}"))?;
        Ok(WindowHandle(handle.to_owned()))
    }

    /// Every open window and tab's handle.
    pub async fn windows(&self) -> Result<Vec<WindowHandle>> {
        let value = self
            .wire
            .call(reqwest::Method::GET, "/window/handles", None)
            .await?;
        value
            .as_array()
            .with_context(|| format!("window handles, not {value}"))?
            .iter()
            .map(|handle| {
                handle
                    .as_str()
                    .map(|h| WindowHandle(h.to_owned()))
                    .with_context(|| format!("a window handle, not {handle}"))
            })
            .collect()
    }

    /// Opens a new tab (`about:blank`) and returns its handle; the current window
    /// stays the one commands go to until [`Session::switch_to`].
    pub async fn new_tab(&self) -> Result<WindowHandle> {
        let value = self
            .wire
            .call(
                reqwest::Method::POST,
                "/window/new",
                Some(json!({"type": "tab"})),
            )
            .await
            .context("opening a new tab")?;
        let handle = value["handle"]
            .as_str()
            .with_context(|| format!("no handle in {value}"))?;
        Ok(WindowHandle(handle.to_owned()))
    }

    /// Sends the next commands to window or tab `handle`.
    pub async fn switch_to(&self, handle: &WindowHandle) -> Result<()> {
        self.wire
            .call(
                reqwest::Method::POST,
                "/window",
                Some(json!({"handle": handle.0})),
            )
            .await
            .with_context(|| format!("switching to window {}", handle.0))
            .map(|_| ())
    }

    /// Closes the current window or tab and returns the handles left open; switch
    /// to one of them before the next command.
    pub async fn close_window(&self) -> Result<Vec<WindowHandle>> {
        let value = self
            .wire
            .call(reqwest::Method::DELETE, "/window", None)
            .await
            .context("closing the current window")?;
        Ok(value
            .as_array()
            .map(|handles| {
                handles
                    .iter()
                    .filter_map(|h| h.as_str().map(|h| WindowHandle(h.to_owned())))
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Sets a permission for the current page's origin (W3C Permissions' WebDriver
    /// extension, which chromedriver implements), e.g. `("notifications",
    /// "granted")`.
    pub async fn set_permission(&self, name: &str, state: &str) -> Result<()> {
        self.wire
            .call(
                reqwest::Method::POST,
                "/permissions",
                Some(json!({"descriptor": {"name": name}, "state": state})),
            )
            .await
            .with_context(|| format!("setting permission {name} to {state}"))
            .map(|_| ())
    }

    /// The browser's console messages since the last call, one `LEVEL message` line
    /// each (chromedriver's legacy `/se/log` with `goog:loggingPrefs`); an error
    /// when the driver does not offer it.
    pub async fn console_log(&self) -> Result<Vec<String>> {
        let value = self
            .wire
            .call(
                reqwest::Method::POST,
                "/se/log",
                Some(json!({"type": "browser"})),
            )
            .await
            .context("reading the browser's console log")?;
        Ok(value
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .map(|entry| {
                        format!(
                            "{} {}",
                            entry["level"].as_str().unwrap_or("?"),
                            entry["message"].as_str().unwrap_or_default()
                        )
                    })
                    .collect()
            })
            .unwrap_or_default())
    }

    /// Saves a screenshot of the page as a PNG file (see [`Screenshots`]).
    pub async fn screenshot(&self, path: &Path) -> Result<()> {
        match &self.screenshots {
            Screenshots::XScreen { display } => self.screenshot_x(display, path).await,
            Screenshots::WebDriver => {
                let value = self
                    .wire
                    .call(reqwest::Method::GET, "/screenshot", None)
                    .await
                    .context("taking a screenshot")?;
                let png = base64::engine::general_purpose::STANDARD
                    .decode(value.as_str().unwrap_or_default())
                    .context("the screenshot is not base64")?;
                std::fs::write(path, png).with_context(|| format!("writing {}", path.display()))
            }
        }
    }

    /// The window's rectangle cut out of the X screen with ImageMagick's `import`.
    async fn screenshot_x(&self, display: &str, path: &Path) -> Result<()> {
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
                .env("DISPLAY", display)
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

    /// Ends the session (`DELETE /session/{id}`); once only.
    pub async fn delete(&mut self) -> Result<()> {
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
