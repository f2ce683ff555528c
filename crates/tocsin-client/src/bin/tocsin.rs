//! `tocsin`: the terminal client, for operators, scripts and headless checks. It runs
//! the same engine as the desktop app: `tocsin listen` resumes from its persisted
//! positions, survives gateway restarts and prints each notification once; a network
//! change or a resume from sleep (system bus) makes it reconnect at once.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use clap::{Parser, Subcommand};
use tocsin_client::account::{self, Account, App};
use tocsin_client::api::{ApiClient, CertFingerprint, ServerUrl};
use tocsin_client::engine;
use tocsin_client::events::{ConnectionState, EngineEvent};
use tocsin_client::policy::Policy;
use tocsin_client::profile::Profile;
use tocsin_client::secrets;
use tocsin_client::system_signals;
use tocsin_protocol::http::PublishRequest;

/// Tocsin's terminal client.
#[derive(Debug, Parser)]
#[command(name = "tocsin", version, about)]
struct Cli {
    /// Where the client keeps its profile, local database and (without an OS secret
    /// store) its token file. Default: the per-user config and data dirs.
    #[arg(long, env = "TOCSIN_CLIENT_HOME", global = true)]
    home: Option<PathBuf>,
    /// What to do.
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Sign this device in and remember it.
    Login {
        /// The gateway, e.g. https://tocsin.cabinet-dupont.fr (http only to localhost).
        #[arg(long)]
        server: String,
        /// Your email.
        #[arg(long)]
        email: String,
        /// Read the password from the first line of stdin instead of prompting.
        #[arg(long)]
        password_stdin: bool,
        /// A name for this device.
        #[arg(long, default_value = "tocsin terminal")]
        device_name: String,
        /// Trust exactly the certificate with this SHA-256 fingerprint (a
        /// self-signed gateway: the one `init --tls-self-signed` printed).
        #[arg(long, value_name = "AB:CD:…")]
        certificate_fingerprint: Option<CertFingerprint>,
    },
    /// Print notifications as they arrive (and what was missed), until interrupted.
    Listen {
        /// One JSON object per line instead of text.
        #[arg(long)]
        json: bool,
    },
    /// Publish a notification with an API key.
    Send {
        /// The gateway (default: the signed-in one).
        #[arg(long)]
        server: Option<String>,
        /// The publisher API key (tsk_…).
        #[arg(long, env = "TOCSIN_API_KEY")]
        key: String,
        /// user:<id or email>, tenant:<slug>, conversation:<id> or all.
        #[arg(long)]
        to: String,
        /// The kind, e.g. system-notification.
        #[arg(long)]
        kind: String,
        /// One line.
        #[arg(long)]
        title: String,
        /// Details.
        #[arg(long, default_value = "")]
        body: String,
        /// low, normal, high or critical (default: from the kind).
        #[arg(long)]
        urgency: Option<String>,
        /// The kind's data as JSON (default for system-notification: {"level":"info"}).
        #[arg(long)]
        data: Option<String>,
    },
    /// Show who is signed in where, and the local unread counts.
    Status,
    /// Sign this device out (revokes its session on the gateway).
    Logout,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("TOCSIN_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => return fail(err.into()),
    };
    match runtime.block_on(run(cli)) {
        Ok(code) => code,
        Err(err) => fail(err),
    }
}

fn fail(err: anyhow::Error) -> ExitCode {
    eprintln!("error: {err:#}");
    ExitCode::FAILURE
}

async fn run(cli: Cli) -> anyhow::Result<ExitCode> {
    let dirs = Profile::dirs(cli.home)?;
    match cli.command {
        Command::Login {
            server,
            email,
            password_stdin,
            device_name,
            certificate_fingerprint,
        } => {
            let server = ServerUrl::parse(&server)?.with_pin(certificate_fingerprint);
            let password = read_password(password_stdin)?;
            let tokens = account::log_in(&server, &email, &password, &device_name).await?;
            let (store, warning) = secrets::choose(&dirs.config, true);
            if let Some(warning) = warning {
                eprintln!("warning: {warning}");
            }
            account::remember(
                App::Terminal,
                &dirs,
                store.as_ref(),
                &server,
                &email,
                &device_name,
                &tokens,
            )?;
            println!(
                "signed in as {} ({}) at {}",
                tokens.user.email,
                tokens.user.tenant,
                server.as_str()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Listen { json } => listen(&dirs, json).await,
        Command::Send {
            server,
            key,
            to,
            kind,
            title,
            body,
            urgency,
            data,
        } => {
            let server = match server {
                Some(server) => ServerUrl::parse(&server)?,
                None => Profile::load(&dirs.config)?.server_url()?,
            };
            let data = data.unwrap_or_else(|| {
                if kind == "system-notification" {
                    r#"{"level":"info"}"#.to_owned()
                } else {
                    "{}".to_owned()
                }
            });
            let mut request =
                serde_json::json!({"to": to, "kind": kind, "title": title, "body": body});
            request["data"] = serde_json::from_str(&data)
                .map_err(|err| anyhow::anyhow!("--data is not JSON: {err}"))?;
            if let Some(urgency) = urgency {
                request["urgency"] = serde_json::Value::String(urgency);
            }
            let request: PublishRequest = serde_json::from_value(request).map_err(|err| {
                anyhow::anyhow!(
                    "not a valid notification: {err} (see docs/PROTOCOL.md, notification kinds)"
                )
            })?;
            let published = ApiClient::new(server).publish(&key, &request).await?;
            println!(
                "{} {} offset {}",
                published.id, published.stream, published.offset
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::Status => {
            let profile = Profile::load(&dirs.config)?;
            let (store, warning) = secrets::choose(&dirs.config, true);
            let signed_in = account::saved(App::Terminal, &dirs, store.as_ref())?.is_some();
            println!("server:  {}", profile.server);
            println!("user:    {}", profile.email);
            println!("device:  {}", profile.device_name);
            println!(
                "secrets: {}{}",
                store.describe(),
                warning.map(|w| format!(" ({w})")).unwrap_or_default()
            );
            println!(
                "session: {}",
                if signed_in { "signed in" } else { "signed out" }
            );
            let path = dirs.data.join(account::DATABASE_FILE);
            if path.exists() {
                let (local, _) = tocsin_client::store::LocalStore::open(&path)?;
                for (tab, count) in local.unread_by_tab()? {
                    println!("unread:  {tab:?} {count}");
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        Command::Logout => {
            let (store, _) = secrets::choose(&dirs.config, true);
            if let Some(signed_in) = account::saved(App::Terminal, &dirs, store.as_ref())?
                && let Err(err) = account::sign_out(&signed_in, &dirs, store.as_ref()).await?
            {
                eprintln!(
                    "warning: the gateway did not confirm the sign-out ({err}); this device forgot the account anyway"
                );
            }
            println!("signed out");
            Ok(ExitCode::SUCCESS)
        }
    }
}

/// `tocsin listen`: exit 0 on Ctrl-C, 2 when signed out.
async fn listen(dirs: &tocsin_client::profile::Dirs, json: bool) -> anyhow::Result<ExitCode> {
    let account = Account::of_profile(App::Terminal, Profile::load(&dirs.config)?);
    let (store, warning) = secrets::choose(&dirs.config, true);
    if let Some(warning) = warning {
        eprintln!("warning: {warning}");
    }
    let config = account.engine_config(dirs)?;
    let (handle, mut events, task) = engine::start(config, Arc::from(store), Policy::default())?;
    let nudges = system_signals::nudge_engine(handle.clone());
    let mut out = std::io::stdout();
    let outcome = loop {
        let event = tokio::select! {
            event = events.recv() => event,
            _ = tokio::signal::ctrl_c() => {
                // Before the shutdown: a nudge now would only make the engine reconnect.
                nudges.abort();
                handle.send(engine::Command::Shutdown).await;
                let _ = task.await;
                break Ok(ExitCode::SUCCESS);
            }
        };
        let Some(event) = event else {
            break Ok(ExitCode::SUCCESS);
        };
        let signed_out = matches!(event, EngineEvent::State(ConnectionState::SignedOut { .. }));
        if let Err(err) = print_event(&mut out, &event, json) {
            break Err(err);
        }
        if signed_out {
            break Ok(ExitCode::from(2));
        }
    };
    nudges.abort();
    outcome
}

fn print_event(out: &mut impl Write, event: &EngineEvent, json: bool) -> anyhow::Result<()> {
    match event {
        EngineEvent::Notification {
            stream,
            notification,
            replay,
            ..
        } => {
            if json {
                let line = serde_json::json!({"stream": stream, "replay": replay, "notification": notification});
                writeln!(out, "{line}")?;
            } else {
                let time = notification
                    .created_at
                    .with_timezone(&chrono::Local)
                    .format("%H:%M:%S");
                let urgency = format!("{:?}", notification.urgency).to_lowercase();
                // The received name for a kind this build does not know, not "unknown".
                writeln!(
                    out,
                    "{time} [{}] {urgency:<8} {}  ({stream})",
                    notification.data.kind_name(),
                    notification.title
                )?;
            }
            out.flush()?;
        }
        EngineEvent::State(state) => eprintln!("{}", describe_state(state)),
        EngineEvent::CatchUp { missed, .. } if *missed > 0 => {
            eprintln!("caught up: {missed} missed while away")
        }
        EngineEvent::Warning(message) => eprintln!("warning: {message}"),
        EngineEvent::Retracted(ids) => {
            eprintln!("retracted by the firm: {}", ids.join(", "))
        }
        EngineEvent::ActionResult {
            id,
            error: Some(error),
            ..
        } => eprintln!("action {id} refused: {}", error.message),
        _ => {}
    }
    Ok(())
}

fn describe_state(state: &ConnectionState) -> String {
    match state {
        ConnectionState::Connected { tenant, .. } => format!("connected (live) — {tenant}"),
        ConnectionState::Connecting {
            attempt,
            next_retry: Some(at),
        } => {
            format!(
                "connecting… attempt {attempt}, next at {}",
                at.with_timezone(&chrono::Local).format("%H:%M:%S")
            )
        }
        ConnectionState::Connecting {
            attempt,
            next_retry: None,
        } => format!("connecting… attempt {attempt}"),
        ConnectionState::Offline { reason, .. } => format!("offline: {reason}"),
        ConnectionState::SignedOut { reason } => {
            format!("signed out: {reason} — run `tocsin login` again")
        }
    }
}

fn read_password(from_stdin: bool) -> anyhow::Result<String> {
    if from_stdin {
        let mut line = String::new();
        std::io::stdin().lock().read_line(&mut line)?;
        return Ok(line.trim_end_matches(['\r', '\n']).to_owned());
    }
    Ok(rpassword::prompt_password("Password: ")?)
}
