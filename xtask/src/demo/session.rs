//! The play: the desktop app and the terminal listener signed in as Marie, the
//! scenario published step by step, and with `--once` the checks that everything
//! arrived. The app is started first (it is the slowest to come up) and stopped last
//! of the two, before the gateway.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Result, bail};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::desktop::Desktop;
use super::display;
use super::headless::Headless;
use super::listener::{self, Listener, ListenerEvent};
use super::scenario::{self, CLAIRE, MARIE, PASSWORD, Played, Step};
use super::screenshots::Screenshots;
use super::web::WebApp;

/// Time between two scripted publishes without `--once`, so a person can follow.
const PACE: Duration = Duration::from_secs(3);
/// How long each notification may take to reach the listener and the app.
const DELIVERY_TIMEOUT: Duration = Duration::from_secs(30);
/// Time for dunst and the panel to draw before a screenshot.
const SETTLE: Duration = Duration::from_millis(1200);
/// Timeout of each HTTP call to the gateway.
const HTTP_TIMEOUT: Duration = Duration::from_secs(10);

/// The gateway to play against.
#[derive(Debug)]
pub struct Play<'a> {
    /// Its base URL.
    pub url: &'a str,
    /// The firm's publishing key.
    pub api_key: &'a str,
    /// Its log, shown in the intro.
    pub log_path: &'a Path,
    /// Its data dir (the metrics token is in its config.toml).
    pub data_dir: &'a Path,
    /// Its binary, for the CLI example.
    pub binary: &'a Path,
    /// The web SDK's examples, served against this gateway.
    pub web: &'a WebApp,
    /// Play once without pauses, check, exit.
    pub once: bool,
    /// Ctrl-C.
    pub interrupted: &'a CancellationToken,
}

/// How to run the desktop app, when it runs.
#[derive(Debug)]
pub struct AppPlan<'a> {
    /// The built `tocsin-desktop`.
    pub binary: PathBuf,
    /// Its `--home` (profile, settings, local database, logs).
    pub home: PathBuf,
    /// Its output.
    pub log: PathBuf,
    /// The private session to run it in (`None`: the developer's display).
    pub headless: Option<&'a Headless>,
    /// Where screenshots go (with `--headless`).
    pub screenshots: Option<PathBuf>,
}

/// The app while the scenario plays.
struct App<'a> {
    /// The process.
    desktop: Desktop,
    /// Its private session, if any.
    headless: Option<&'a Headless>,
    /// The screenshots taken in that session.
    screenshots: Option<Screenshots>,
}

impl App<'_> {
    /// Takes a screenshot named `name` after letting the screen settle (headless only).
    async fn screenshot(&mut self, name: &str) -> Result<()> {
        if let (Some(session), Some(shots)) = (self.headless, self.screenshots.as_mut()) {
            tokio::time::sleep(SETTLE).await;
            shots.take(session, name).await?;
        }
        Ok(())
    }
}

/// Starts the app (if planned) and the listener, plays the scenario, then (unless
/// `once`) waits for Ctrl-C; the app and the listener are always stopped.
pub async fn run(play: Play<'_>, plan: Option<AppPlan<'_>>) -> Result<()> {
    print_intro(&play)?;
    let mut app = match plan {
        Some(plan) => Some(start_app(&play, plan).await?),
        None => None,
    };
    let outcome = listen_and_play(&play, app.as_mut()).await;
    let stopped = match app {
        Some(app) => app.desktop.stop().await,
        None => Ok(()),
    };
    outcome.and(stopped)
}

/// Starts the app signed in as Marie, its screenshots directory emptied.
async fn start_app<'a>(play: &Play<'_>, plan: AppPlan<'a>) -> Result<App<'a>> {
    let screenshots = plan
        .screenshots
        .as_deref()
        .map(Screenshots::prepare)
        .transpose()?;
    let desktop = Desktop::start(
        &plan.binary,
        &plan.home,
        &plan.log,
        play.url,
        (MARIE, PASSWORD),
        plan.headless,
    )
    .await?;
    println!("  its log: {}", desktop.log().display());
    Ok(App {
        desktop,
        headless: plan.headless,
        screenshots,
    })
}

/// Signs the listener in, plays, and stops the listener.
async fn listen_and_play(play: &Play<'_>, mut app: Option<&mut App<'_>>) -> Result<()> {
    let http = reqwest::Client::builder().timeout(HTTP_TIMEOUT).build()?;
    let tokens = listener::login(&http, play.url, MARIE, PASSWORD).await?;
    // Welcomed before the first publish: hello without positions means "live from
    // now", so nothing published earlier would be shown.
    let (listener, welcome) = Listener::connect(http.clone(), play.url, tokens).await?;
    println!("{}", display::welcome_line(&welcome));
    let streams = welcome.streams.len();
    let (stop_listener, stop) = oneshot::channel();
    let (events_tx, events) = mpsc::unbounded_channel();
    let mut listening = tokio::spawn(listener.run(stop, events_tx));

    let steps = scenario::steps(chrono::Utc::now())?;
    let scripted = async {
        if let Some(app) = app.as_deref_mut() {
            app.desktop.wait_ready(streams).await?;
            println!("the desktop app is signed in as {MARIE} and connected");
            app.screenshot("signed-in").await?;
        }
        let published = publish_steps(play, &http, &steps, app.as_deref_mut()).await?;
        if let Some(app) = app.as_deref_mut() {
            app.screenshot("end").await?;
        }
        if play.once {
            check(events, &published, app.as_deref_mut()).await?;
            play.web.check(play.url).await
        } else {
            println!(
                "\nScenario done. Publish your own with the curl command above; Ctrl-C to stop."
            );
            std::future::pending().await
        }
    };
    let mut listener_ended = false;
    let outcome = tokio::select! {
        outcome = scripted => outcome,
        ended = &mut listening => {
            listener_ended = true;
            match ended {
                Ok(Ok(())) => Ok(()),
                Ok(Err(error)) => Err(error.context("the WebSocket listener stopped")),
                Err(panic) => Err(panic.into()),
            }
        }
        () = play.interrupted.cancelled() => {
            println!("\nCtrl-C: stopping.");
            if play.once {
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

/// What the scenario published, by what Marie's devices should end with.
struct Published {
    /// Published and not retracted: the app must hold these.
    held: Vec<String>,
    /// Published, then retracted: the listener saw them, the app must not hold them.
    retracted: Vec<String>,
}

/// Publishes the steps; after each, waits for the app to store it (or drop it, when
/// retracted) and takes a screenshot. Paced for a person unless `--once`.
async fn publish_steps(
    play: &Play<'_>,
    http: &reqwest::Client,
    steps: &[Step],
    mut app: Option<&mut App<'_>>,
) -> Result<Published> {
    let mut ids = Vec::with_capacity(steps.len());
    let mut retracted = Vec::new();
    let mut previous = Played::default();
    for (index, step) in steps.iter().enumerate() {
        if index > 0 && !play.once {
            tokio::time::sleep(PACE).await;
        }
        println!("\n[{}/{}] {}", index + 1, steps.len(), step.caption);
        let played = scenario::play_step(http, play.url, play.api_key, step, &previous).await?;
        if let Some(app) = app.as_deref_mut() {
            app.desktop
                .wait_stored(&played.delivered, DELIVERY_TIMEOUT)
                .await?;
            app.desktop
                .wait_removed(&played.retracted, DELIVERY_TIMEOUT)
                .await?;
            app.screenshot(step.name).await?;
        }
        ids.extend(played.delivered.iter().cloned());
        // A retracted notification did reach the listener (before it was retracted);
        // the app must no longer hold it.
        ids.retain(|id| !played.retracted.contains(id));
        retracted.extend(played.retracted.iter().cloned());
        previous = played;
    }
    Ok(Published {
        held: ids,
        retracted,
    })
}

/// With `--once`: every published id reached the listener, and the app's database
/// holds every one not retracted, and none retracted, when the app runs; every
/// screenshot was written.
async fn check(
    events: mpsc::UnboundedReceiver<ListenerEvent>,
    published: &Published,
    app: Option<&mut App<'_>>,
) -> Result<()> {
    let all: Vec<String> = [&published.held[..], &published.retracted[..]].concat();
    wait_for_listener(events, &all).await?;
    let ids = &published.held;
    let Some(app) = app else {
        println!(
            "demo ok: {} notifications delivered, {} retracted",
            all.len(),
            published.retracted.len()
        );
        return Ok(());
    };
    app.desktop.wait_stored(ids, DELIVERY_TIMEOUT).await?;
    app.desktop
        .wait_removed(&published.retracted, DELIVERY_TIMEOUT)
        .await?;
    let shots = match &app.screenshots {
        Some(shots) => {
            shots.check()?;
            format!(
                "; {} screenshots in {}",
                shots.count(),
                shots.dir().display()
            )
        }
        None => String::new(),
    };
    println!(
        "demo ok: {} notifications delivered to the terminal listener, {} held by the \
         desktop app, {} retracted and removed from it{shots}",
        all.len(),
        ids.len(),
        published.retracted.len()
    );
    Ok(())
}

/// Waits until every published id has been seen on the listener's socket.
async fn wait_for_listener(
    mut events: mpsc::UnboundedReceiver<ListenerEvent>,
    published: &[String],
) -> Result<()> {
    let mut missing: HashSet<&str> = published.iter().map(String::as_str).collect();
    let deadline = tokio::time::Instant::now() + DELIVERY_TIMEOUT;
    while !missing.is_empty() {
        match tokio::time::timeout_at(deadline, events.recv()).await {
            Ok(Some(ListenerEvent::Notification(id))) => {
                missing.remove(id.as_str());
            }
            Ok(None) => bail!(
                "the listener stopped with {} notifications missing",
                missing.len()
            ),
            Err(_) => bail!(
                "{} of {} notifications did not reach the terminal listener within \
                 {DELIVERY_TIMEOUT:?}",
                missing.len(),
                published.len()
            ),
        }
    }
    Ok(())
}

/// The `[metrics] token` `init` wrote, if it can be read.
fn metrics_token(data_dir: &Path) -> Option<String> {
    let text = std::fs::read_to_string(data_dir.join("config.toml")).ok()?;
    let config: toml::Table = text.parse().ok()?;
    Some(config.get("metrics")?.get("token")?.as_str()?.to_owned())
}

/// What the user needs to play along: URL, accounts, key, a publish command.
fn print_intro(play: &Play<'_>) -> Result<()> {
    let (url, api_key, log_path) = (play.url, play.api_key, play.log_path);
    let body = scenario::curl_example_body()?;
    println!();
    println!("Tocsin gateway  {url}   (log: {})", log_path.display());
    println!("Users           {MARIE}, {CLAIRE} — password: {PASSWORD}");
    println!("API key         {api_key}");
    println!("Publish your own notification to Marie:");
    println!("  curl -sS -X POST {url}/v1/publish \\");
    println!("    -H 'Authorization: Bearer {api_key}' -H 'Content-Type: application/json' \\");
    println!("    -d '{body}'");
    println!("The receipt of the appeal deadline (who was told, who acknowledged, when):");
    println!(
        "  curl -sS {url}/v1/deadlines/{} -H 'Authorization: Bearer {api_key}'",
        scenario::DEADLINE_ID
    );
    println!("The same from a script, with the gateway's CLI:");
    println!(
        "  TOCSIN_API_KEY={api_key} {} publish --gateway {url} --to user:{MARIE} --title 'Sauvegarde terminée'",
        play.binary.display()
    );
    if let Some(token) = metrics_token(play.data_dir) {
        println!("Its Prometheus metrics (connections, deliveries, latency, refusals):");
        println!("  curl -sS {url}/metrics -H 'Authorization: Bearer {token}'");
    }
    println!(
        "The web SDK's examples, signed in as Marie (open them in a browser, several tabs share one connection):"
    );
    println!(
        "  {}   the firm's page with <tocsin-bell>",
        play.web.url("/bell.html")
    );
    println!(
        "  {}   the dossier's conversation in React: messages, the proposal's toast, typing, presence",
        play.web.url("/conversation.html")
    );
    println!();
    println!("→ the firm's software publishing with the API key; ← what Marie's socket receives");
    Ok(())
}
