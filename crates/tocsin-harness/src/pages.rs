//! A static page server: directories (a built web SDK, its examples), in-memory files
//! that may change while it serves (a page's `config.json`, a token), and any extra
//! axum routes (the demo's token endpoint), on `127.0.0.1`. Its origin,
//! `http://127.0.0.1:<port>`, is the "firm's web app" a gateway allows (or not) in
//! `websocket.allowed_origins`; two servers are two origins. The browser tests and the
//! demo's web examples both serve through it.
//!
//! Files from a directory are tower-http's `ServeDir`; the content type is set here
//! for what a browser refuses to run when it is wrong (a module script must be
//! JavaScript, and `.mjs`/`.map` are not in every MIME table). Nothing is cached, so a
//! test never runs yesterday's script.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, RwLock};

use anyhow::{Context, Result};
use axum::Router;
use axum::extract::{Request, State};
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use tower::ServiceExt as _;
use tower_http::services::ServeDir;

/// In-memory files by path (`/index.html`), with their content type.
type Files = RwLock<HashMap<String, (HeaderValue, Vec<u8>)>>;

/// What is served.
#[derive(Debug, Default)]
struct Pages {
    files: Files,
    /// Directories by URL prefix (`""` for the root), longest prefix first.
    dirs: Vec<(String, PathBuf)>,
}

/// The content type a browser needs for a file of this name, when it is one of those
/// a page uses.
pub fn content_type(path: &str) -> Option<&'static str> {
    let extension = path.rsplit_once('.').map(|(_, ext)| ext)?;
    Some(match extension {
        "html" | "htm" => "text/html; charset=utf-8",
        "js" | "mjs" | "cjs" => "text/javascript; charset=utf-8",
        "map" | "json" => "application/json",
        "css" => "text/css; charset=utf-8",
        "wasm" => "application/wasm",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "txt" => "text/plain; charset=utf-8",
        _ => return None,
    })
}

/// The type of an in-memory file: by its extension, HTML for a path without one.
fn file_type(path: &str) -> HeaderValue {
    HeaderValue::from_static(content_type(path).unwrap_or("text/html; charset=utf-8"))
}

/// What to serve, before [`PageServerBuilder::start`].
#[derive(Default)]
pub struct PageServerBuilder {
    pages: Pages,
    routes: Option<Router>,
    preferred: Option<String>,
}

impl PageServerBuilder {
    /// Serves the files under `dir` at `/` (`/` itself is its `index.html`).
    pub fn dir(self, dir: impl AsRef<Path>) -> PageServerBuilder {
        self.mount("", dir)
    }

    /// Serves the files under `dir` at `prefix` (`/sdk` → `/sdk/index.js`).
    pub fn mount(mut self, prefix: &str, dir: impl AsRef<Path>) -> PageServerBuilder {
        let prefix = prefix.trim_end_matches('/').to_owned();
        self.pages.dirs.push((prefix, dir.as_ref().to_owned()));
        self.pages
            .dirs
            .sort_by_key(|(prefix, _)| std::cmp::Reverse(prefix.len()));
        self
    }

    /// Serves `body` at `path` (e.g. `/index.html`, or `/` itself), typed by its
    /// extension (HTML for a path without one); in-memory files shadow directories.
    pub fn file(self, path: &str, body: impl Into<Vec<u8>>) -> PageServerBuilder {
        insert(&self.pages.files, path, body.into());
        self
    }

    /// Routes answered before the files (e.g. an endpoint a page calls).
    pub fn routes(mut self, routes: Router) -> PageServerBuilder {
        self.routes = Some(routes);
        self
    }

    /// Listens on `addr` when it is free (a port a person can remember), else on any.
    pub fn listen_preferring(mut self, addr: &str) -> PageServerBuilder {
        self.preferred = Some(addr.to_owned());
        self
    }

    /// Binds (`127.0.0.1:0` unless a free preferred address was given: the kernel's
    /// free port, no probe-then-bind race) and serves until the [`PageServer`] is
    /// dropped.
    pub async fn start(self) -> Result<PageServer> {
        for (_, dir) in &self.pages.dirs {
            anyhow::ensure!(
                dir.is_dir(),
                "{} is not a directory to serve",
                dir.display()
            );
        }
        let listener = match &self.preferred {
            Some(addr) => match tokio::net::TcpListener::bind(addr).await {
                Ok(listener) => listener,
                Err(_) => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
            },
            None => tokio::net::TcpListener::bind("127.0.0.1:0").await?,
        };
        let port = listener
            .local_addr()
            .context("the page server's address")?
            .port();
        let pages = Arc::new(self.pages);
        let files = Router::new().fallback(serve).with_state(pages.clone());
        let router = match self.routes {
            Some(routes) => routes.merge(files),
            None => files,
        };
        let task = tokio::spawn(async move {
            if let Err(err) = axum::serve(listener, router).await {
                eprintln!("the page server stopped: {err}");
            }
        });
        Ok(PageServer {
            origin: format!("http://127.0.0.1:{port}"),
            pages,
            task,
        })
    }
}

fn insert(files: &Files, path: &str, body: Vec<u8>) {
    let mut files = files
        .write()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    files.insert(path.to_owned(), (file_type(path), body));
}

/// One request: an in-memory file, else the directory of the longest matching
/// prefix, with our content type.
async fn serve(State(pages): State<Arc<Pages>>, request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let file = {
        let files = pages
            .files
            .read()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        files.get(&path).cloned()
    };
    let mut response = if let Some((kind, body)) = file {
        ([(CONTENT_TYPE, kind)], body).into_response()
    } else if let Some((prefix, dir)) = pages.dirs.iter().find(|(prefix, _)| {
        prefix.is_empty() || path == *prefix || path.starts_with(&format!("{prefix}/"))
    }) {
        from_dir(dir, prefix, request).await
    } else {
        StatusCode::NOT_FOUND.into_response()
    };
    response
        .headers_mut()
        .insert(CACHE_CONTROL, HeaderValue::from_static("no-store"));
    response
}

/// Serves `request` from `dir`, mounted at `prefix`.
async fn from_dir(dir: &Path, prefix: &str, mut request: Request) -> Response {
    let path = request.uri().path().to_owned();
    let inner = path.strip_prefix(prefix).unwrap_or(&path);
    let inner = if inner.is_empty() { "/" } else { inner }.to_owned();
    let uri = match request.uri().query() {
        Some(query) => format!("{inner}?{query}"),
        None => inner.clone(),
    };
    match uri.parse::<Uri>() {
        Ok(uri) => *request.uri_mut() = uri,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    }
    let mut response = match ServeDir::new(dir).oneshot(request).await {
        Ok(response) => response.into_response(),
        Err(never) => match never {},
    };
    let served = if inner.ends_with('/') {
        format!("{inner}index.html")
    } else {
        inner
    };
    if response.status().is_success()
        && let Some(kind) = content_type(&served)
    {
        response
            .headers_mut()
            .insert(CONTENT_TYPE, HeaderValue::from_static(kind));
    }
    response
}

/// A running page server; stops when dropped.
#[derive(Debug)]
pub struct PageServer {
    /// `http://127.0.0.1:PORT`.
    origin: String,
    /// What it serves (in-memory files can change).
    pages: Arc<Pages>,
    /// The server's task.
    task: tokio::task::JoinHandle<()>,
}

impl PageServer {
    /// What to serve: `PageServer::builder().dir(…).file(…).start().await`.
    pub fn builder() -> PageServerBuilder {
        PageServerBuilder::default()
    }

    /// A server of in-memory files only.
    pub async fn with_files(files: &[(&str, &str)]) -> Result<PageServer> {
        let mut builder = PageServer::builder();
        for (path, body) in files {
            builder = builder.file(path, *body);
        }
        builder.start().await
    }

    /// Serves `body` at `path` from now on (a page's configuration, known only once
    /// the gateway it names serves).
    pub fn set_file(&self, path: &str, body: impl Into<Vec<u8>>) {
        insert(&self.pages.files, path, body.into());
    }

    /// The origin pages served here have: `http://127.0.0.1:PORT` (no trailing
    /// slash: what a browser sends as `Origin`).
    pub fn origin(&self) -> &str {
        &self.origin
    }

    /// The URL of `path` (starting with `/`).
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.origin)
    }
}

impl Drop for PageServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}
