//! `cargo xtask demo`: a newcomer's first look at Tocsin, for real.
//!
//! It builds the gateway and the desktop app, provisions a throwaway firm in a
//! temporary data directory with the gateway's own admin subcommands, starts `serve`,
//! starts the desktop app signed in as Marie (its panel open), opens a terminal
//! WebSocket listener as Marie too, serves the web SDK's examples (signed in as Marie,
//! their URLs printed), and publishes a scripted scenario: the listener prints each
//! notification, the app shows it (tray badge, panel, OS notification), and so do the
//! web pages a person opens.
//!
//! Where the app runs:
//! - on the developer's display when there is one;
//! - with `--headless`, on a private virtual screen (see [`headless`]), with a
//!   screenshot after each step in `target/demo-screenshots/`;
//! - with neither, nowhere: the demo says so and runs with the terminal listener only.
//!
//! With `--once` it plays the scenario without pauses, checks that every notification
//! reached the listener and the app's local database (and that the screenshots were
//! written), stops everything and exits: that is how CI proves the demo, and the
//! happy path from publish to desktop, works.
//!
//! # Layout
//! - [`gateway`]: the gateway process (admin subcommands, `serve` child).
//! - [`desktop`]: the app process; [`inbox`]: reading its local database.
//! - [`headless`]: the harness's private X session, the demo's way; [`screenshots`]: what it looks like.
//! - [`session`]: the play itself (listener, app, steps, checks).
//! - [`scenario`]: the scripted notifications and how one is published.
//! - [`listener`]: sign-in and the WebSocket client that prints frames.
//! - [`display`]: one readable line per frame.
//! - [`http`]: JSON calls and the gateway's error bodies.
//! - [`interrupt`]: Ctrl-C, caught before any child process starts.
//! - [`web`]: the web SDK's examples, served as the firm's web app (its origin allowed).

mod desktop;
mod display;
mod gateway;
mod headless;
mod http;
mod inbox;
mod interrupt;
mod listener;
mod scenario;
mod screenshots;
mod session;
mod web;

use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::process::{self, cargo, run_step};
use crate::{sdk, setup, ui};
use gateway::{GatewayCli, RunningGateway};
use scenario::{CLAIRE, MARIE, PASSWORD, TENANT};
use session::{AppPlan, Play};
use web::WebApp;

/// Options of `cargo xtask demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Play the scenario once without pauses, check every notification arrived, exit.
    #[arg(long)]
    once: bool,
    /// Run the desktop app on a private virtual screen (Xvfb) and save screenshots
    /// to target/demo-screenshots/ (for machines without a display, and CI).
    #[arg(long)]
    headless: bool,
    /// Skip installing system packages and cargo tools.
    #[arg(long)]
    no_setup: bool,
}

/// Where the desktop app runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AppMode {
    /// Not at all: terminal listener only.
    Absent,
    /// On the developer's display.
    OnDisplay,
    /// On a private Xvfb screen, with screenshots.
    Headless,
}

/// Builds what the demo needs and runs it.
pub fn run(args: &DemoArgs) -> Result<()> {
    if !args.no_setup {
        setup::run()?;
    }
    let mode = if args.headless {
        AppMode::Headless
    } else if has_display() {
        AppMode::OnDisplay
    } else {
        println!(
            "No display here (neither DISPLAY nor WAYLAND_DISPLAY is set), so the desktop \
             app cannot open.\nTo see it anyway, run `cargo xtask demo --headless`: the app \
             runs on a virtual screen (Xvfb) and the demo saves screenshots of each step.\n\
             Continuing with the terminal listener only."
        );
        AppMode::Absent
    };
    // The web examples are served from sdk/web's build.
    sdk::build()?;
    if mode == AppMode::Absent {
        run_step("build", &mut cargo(["build", "-p", "tocsin-gateway"]))?;
    } else {
        // The desktop crate embeds ui/dist at compile time.
        ui::build()?;
        run_step(
            "build",
            &mut cargo(["build", "-p", "tocsin-gateway", "-p", "tocsin-desktop"]),
        )?;
    }
    let gateway = process::gateway_binary()?;
    let app = match mode {
        AppMode::Absent => None,
        AppMode::OnDisplay | AppMode::Headless => Some(process::desktop_binary()?),
    };
    let screenshots = process::target_dir()?.join("demo-screenshots");
    process::header("demo");
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(demo(gateway, app, mode, screenshots, args.once))
}

/// True when a graphical session is there to show the app.
fn has_display() -> bool {
    ["DISPLAY", "WAYLAND_DISPLAY"]
        .iter()
        .any(|name| std::env::var_os(name).is_some_and(|value| !value.is_empty()))
}

/// Starts the private session (if asked), provisions a firm, serves it and plays;
/// everything started is stopped, whatever happens.
async fn demo(
    gateway_binary: PathBuf,
    app_binary: Option<PathBuf>,
    mode: AppMode,
    screenshots: PathBuf,
    once: bool,
) -> Result<()> {
    let interrupted = interrupt::listen()?;
    let root = tempfile::Builder::new()
        .prefix("tocsin-demo-")
        .tempdir()
        .context("creating a temporary directory")?;
    let data_dir = root.path().join("gateway");
    let log_path = root.path().join("gateway.log");
    let app_log = root.path().join("desktop.log");
    println!(
        "# a throwaway data dir, deleted on exit: export TOCSIN_DATA_DIR={}",
        data_dir.display()
    );
    let cli = GatewayCli::new(gateway_binary.clone(), data_dir.clone());
    let outcome = async {
        // The private session first: a missing package shows before anything else.
        let headless = if mode == AppMode::Headless {
            println!("starting a private desktop session (Xvfb, D-Bus, gnome-keyring, dunst)");
            let session = headless::start(&root.path().join("session")).await?;
            println!("  virtual display {}", session.display());
            Some(session)
        } else {
            None
        };
        let (api_key, people) = provision(&cli).await?;
        let web = WebApp::bind().await?;
        allow_origin(&data_dir, web.origin())?;
        let gateway = cli.serve(&log_path).await?;
        web.serve_for(&gateway.url, &people).await?;
        let app = app_binary.map(|binary| AppPlan {
            binary,
            home: root.path().join("desktop"),
            log: app_log.clone(),
            headless: headless.as_ref(),
            screenshots: (mode == AppMode::Headless).then(|| screenshots.clone()),
        });
        let play = Play {
            url: &gateway.url,
            api_key: &api_key,
            log_path: &log_path,
            data_dir: &data_dir,
            binary: &gateway_binary,
            web: &web,
            once,
            interrupted: &interrupted,
        };
        let played = session::run(play, app).await;
        let stopped = stop(gateway).await;
        if let Some(headless) = headless {
            headless.stop().await;
        }
        played?;
        stopped
    }
    .await;
    if outcome.is_err() {
        for (what, path) in [("desktop app", &app_log), ("gateway", &log_path)] {
            if path.exists() {
                eprintln!(
                    "--- last lines of the {what}'s log ({}) ---",
                    path.display()
                );
                eprintln!("{}", tocsin_harness::process::log_tail(path, 30));
            }
        }
    }
    outcome
}

/// Creates the firm, its two lawyers and a publishing key; returns the key and the
/// lawyers' ids with their names.
async fn provision(cli: &GatewayCli) -> Result<(String, Vec<(String, &'static str)>)> {
    cli.admin(&["init"], None).await?;
    cli.admin(&["tenant", "add", TENANT, "--name", "Cabinet Dupont"], None)
        .await?;
    let password_line = format!("{PASSWORD}\n");
    let mut people = Vec::new();
    for (email, name) in [(MARIE, "Marie Dupont"), (CLAIRE, "Claire Martin")] {
        let args = [
            "user",
            "add",
            "--tenant",
            TENANT,
            "--email",
            email,
            "--name",
            name,
            "--role",
            "lawyer",
            "--password-stdin",
        ];
        people.push((cli.admin(&args, Some(&password_line)).await?, name));
    }
    let key = cli
        .admin(
            &["key", "create", "--tenant", TENANT, "--name", "demo"],
            None,
        )
        .await?;
    if !key.starts_with("tsk_") {
        bail!("`key create` printed `{key}` on its last line, not an API key");
    }
    Ok((key, people))
}

/// Lets the web examples' origin use the gateway (WebSocket and CORS), as an admin
/// adds the firm's web app to `websocket.allowed_origins`.
fn allow_origin(data_dir: &std::path::Path, origin: &str) -> Result<()> {
    println!(
        "# config.toml: [websocket] allowed_origins = [\"{origin}\"]   (the web examples' origin)"
    );
    let options = tocsin_harness::gateway::GatewayOptions {
        allowed_origins: Some(vec![origin.to_owned()]),
        ..Default::default()
    };
    tocsin_harness::gateway::config::apply(&data_dir.join("config.toml"), &options)
}

/// Stops the gateway and requires a clean exit: a graceful shutdown is part of what
/// the demo proves.
async fn stop(gateway: RunningGateway) -> Result<()> {
    let status = gateway.stop().await?;
    if !status.success() {
        bail!("the gateway did not shut down cleanly: {status}");
    }
    Ok(())
}
