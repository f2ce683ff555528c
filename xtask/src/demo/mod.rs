//! `cargo xtask demo`: a newcomer's first look at Tocsin, on a real gateway.
//!
//! It builds the gateway, provisions a throwaway firm in a temporary data directory
//! with the gateway's own admin subcommands, starts `serve`, signs in as Marie,
//! opens her WebSocket and prints what arrives while it publishes a scripted
//! scenario. With `--once` it checks every scripted notification arrived and exits,
//! which is how CI proves the demo (and the happy path of the gateway) works.
//!
//! # Layout
//! - [`gateway`]: the gateway process (admin subcommands, `serve` child).
//! - [`scenario`]: the scripted notifications and their publisher.
//! - [`listener`]: sign-in and the WebSocket client that prints frames.
//! - [`display`]: one readable line per frame.
//! - [`http`]: JSON calls and the gateway's error bodies.
//! - [`interrupt`]: Ctrl-C, caught before any child process starts.

mod display;
mod gateway;
mod http;
mod interrupt;
mod listener;
mod scenario;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::process::{self, cargo, run_step};
use crate::setup;
use gateway::{GatewayCli, RunningGateway};
use listener::{Listener, ListenerEvent};
use scenario::{CLAIRE, MARIE, PASSWORD, TENANT};

/// Time between two scripted publishes, so a person can follow.
const PACE: Duration = Duration::from_secs(2);
/// With `--once`: how long every scripted notification may take to arrive once the
/// scenario is published.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Timeout of each HTTP call to the gateway.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// Options of `cargo xtask demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Play the scenario once, check every notification arrived, and exit.
    #[arg(long)]
    once: bool,
    /// Skip installing system packages and cargo tools.
    #[arg(long)]
    no_setup: bool,
}

/// Builds the gateway and runs the demo.
pub fn run(args: &DemoArgs) -> Result<()> {
    if !args.no_setup {
        setup::run()?;
    }
    run_step("build", &mut cargo(["build", "-p", "tocsin-gateway"]))?;
    let binary = process::gateway_binary()?;
    process::header("demo");
    let runtime = tokio::runtime::Runtime::new().context("starting the tokio runtime")?;
    runtime.block_on(demo(binary, args.once))
}

/// Provisions a firm, serves it, plays the scenario; the gateway is always stopped.
async fn demo(binary: PathBuf, once: bool) -> Result<()> {
    let interrupted = interrupt::listen()?;
    let data_dir = tempfile::Builder::new()
        .prefix("tocsin-demo-")
        .tempdir()
        .context("creating a temporary data directory")?;
    let log_path = data_dir.path().join("gateway.log");
    println!(
        "# a throwaway data dir, deleted on exit: export TOCSIN_DATA_DIR={}",
        data_dir.path().display()
    );
    let cli = GatewayCli::new(binary, data_dir.path().to_owned());
    let outcome = async {
        let api_key = provision(&cli).await?;
        let gateway = cli.serve(&log_path).await?;
        let played = session(&gateway.url, &api_key, &log_path, once, &interrupted).await;
        let stopped = stop(gateway).await;
        played?;
        stopped
    }
    .await;
    if outcome.is_err() {
        eprintln!(
            "--- last lines of the gateway's log ({}) ---",
            log_path.display()
        );
        eprintln!("{}", gateway::log_tail(&log_path, 30));
    }
    outcome
}

/// Creates the firm, its two lawyers and a publishing key; returns the key.
async fn provision(cli: &GatewayCli) -> Result<String> {
    cli.admin(&["init"], None).await?;
    cli.admin(&["tenant", "add", TENANT, "--name", "Cabinet Dupont"], None)
        .await?;
    let password_line = format!("{PASSWORD}\n");
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
        cli.admin(&args, Some(&password_line)).await?;
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
    Ok(key)
}

/// Signs in as Marie, listens, and plays the scenario (then, unless `once`, waits for
/// Ctrl-C).
async fn session(
    url: &str,
    api_key: &str,
    log_path: &Path,
    once: bool,
    interrupted: &CancellationToken,
) -> Result<()> {
    print_intro(url, api_key, log_path)?;
    let http = reqwest::Client::builder().timeout(HTTP_TIMEOUT).build()?;
    let tokens = listener::login(&http, url, MARIE, PASSWORD).await?;
    // Connected and welcomed before the first publish: hello without positions means
    // "live from now", so nothing published earlier would be shown.
    let (listener, welcome) = Listener::connect(http.clone(), url, tokens).await?;
    println!("{}", display::welcome_line(&welcome));
    let (stop_listener, stop) = oneshot::channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let mut listening = tokio::spawn(listener.run(stop, events_tx));

    let scenario = scenario::notifications(chrono::Utc::now())?;
    let play = async {
        let ids = scenario::play(&http, url, api_key, &scenario, PACE).await?;
        if once {
            wait_for_delivery(events, ids).await
        } else {
            println!(
                "Scenario done. Publish your own with the curl command above; Ctrl-C to stop."
            );
            std::future::pending().await
        }
    };
    let mut listener_ended = false;
    let outcome = tokio::select! {
        outcome = play => outcome,
        ended = &mut listening => {
            listener_ended = true;
            match ended {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(error.context("the WebSocket listener stopped")),
                Err(panic) => Err(panic.into()),
            }
        }
        () = interrupted.cancelled() => {
            println!("\nCtrl-C: stopping the gateway.");
            if once {
                Err(anyhow::anyhow!("interrupted before every notification arrived"))
            } else {
                Ok(())
            }
        }
    };
    if !listener_ended {
        // A polite close before the gateway goes.
        let _ = stop_listener.send(());
        let _ = tokio::time::timeout(Duration::from_secs(5), listening).await;
    }
    outcome
}

/// With `--once`: waits until every published id has been seen on the socket.
async fn wait_for_delivery(
    mut events: mpsc::UnboundedReceiver<ListenerEvent>,
    published: Vec<String>,
) -> Result<()> {
    let mut missing: HashSet<String> = published.iter().cloned().collect();
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    while !missing.is_empty() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(ListenerEvent::Notification(id))) => {
                missing.remove(&id);
            }
            Ok(None) => bail!(
                "the listener stopped with {} notifications missing",
                missing.len()
            ),
            Err(_) => bail!(
                "{} of {} notifications did not arrive within {DELIVERY_TIMEOUT:?}",
                missing.len(),
                published.len()
            ),
        }
    }
    println!("demo ok: {} notifications delivered", published.len());
    Ok(())
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

/// What the user needs to play along: URL, accounts, key, a publish command.
fn print_intro(url: &str, api_key: &str, log_path: &Path) -> Result<()> {
    let body = scenario::curl_example_body()?;
    println!();
    println!("Tocsin gateway  {url}   (log: {})", log_path.display());
    println!("Users           {MARIE}, {CLAIRE} — password: {PASSWORD}");
    println!("API key         {api_key}");
    println!("Publish your own notification to Marie:");
    println!("  curl -sS -X POST {url}/v1/publish \\");
    println!("    -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' \\");
    println!("    -d '{body}'");
    println!();
    println!("→ the firm's software publishing with the API key; ← what Marie's socket receives");
    Ok(())
}
