//! `tocsin-gateway publish`: one notification from the shell, for the firm's scripts
//! (a nightly backup that failed, a scanner that filed a document). It goes through
//! the running gateway's `POST /v1/publish` with an API key, like the firm's software:
//! writing to the database directly would store it without telling the connected
//! desktops.
//!
//! Without `--gateway`, the address comes from this data dir's `config.toml` (`listen`,
//! `https` with `[tls]`, whose certificate is then trusted, self-signed or not), so on
//! the gateway's own machine a script needs only the key. The key is read from
//! `TOCSIN_API_KEY` rather than a flag, so it does not show in `ps`.

use std::path::Path;
use std::time::Duration;

use clap::Args;
use serde_json::{Value, json};

use crate::config::Config;

/// How long the gateway gets to answer.
const TIMEOUT: Duration = Duration::from_secs(30);

/// Flags of `publish`.
#[derive(Debug, Args)]
pub struct PublishArgs {
    /// Who receives it: `user:<email or id>`, `tenant:<firm>` (everyone) or
    /// `conversation:<id>`.
    #[arg(long)]
    to: String,
    /// The kind: system-notification (default), email-received, dossier-updated,
    /// deadline-alert, … (docs/PROTOCOL.md §8); other kinds need `--data`.
    #[arg(long, default_value = "system-notification")]
    kind: String,
    /// One line.
    #[arg(long)]
    title: String,
    /// Details.
    #[arg(long, default_value = "")]
    body: String,
    /// The kind's data, as JSON (system-notification: `{"level":"info"}` by default).
    #[arg(long)]
    data: Option<String>,
    /// low, normal, high or critical (default: the kind's).
    #[arg(long)]
    urgency: Option<String>,
    /// Where the notification leads in the firm's software.
    #[arg(long)]
    link: Option<String>,
    /// A retry with the same key stores nothing new (a script run twice).
    #[arg(long)]
    idempotency_key: Option<String>,
    /// The publisher API key (`tsk_…`; `tocsin-gateway key create`).
    #[arg(long, env = "TOCSIN_API_KEY", hide_env_values = true)]
    key: String,
    /// The gateway's base URL, e.g. https://tocsin.cabinet.fr:7850 (default: this data
    /// dir's config).
    #[arg(long, env = "TOCSIN_URL")]
    gateway: Option<String>,
}

/// Publishes and prints what the gateway answered; a refusal is an error with the
/// gateway's own message.
pub fn run(data_dir: &Path, args: PublishArgs) -> anyhow::Result<()> {
    let body = request_body(&args)?;
    let (url, client) = target(data_dir, args.gateway.as_deref())?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (status, answer) = runtime.block_on(async {
        let response = client
            .post(format!("{}/v1/publish", url.trim_end_matches('/')))
            .bearer_auth(&args.key)
            .json(&body)
            .send()
            .await
            .map_err(|err| {
                anyhow::anyhow!(
                    "cannot reach the gateway at {url}: {err} (is it running? pass --gateway)"
                )
            })?;
        let status = response.status();
        let answer: Value = response.json().await.unwrap_or(Value::Null);
        Ok::<_, anyhow::Error>((status, answer))
    })?;
    if !status.is_success() {
        let message = answer["message"].as_str().unwrap_or("no explanation given");
        anyhow::bail!("the gateway refused it ({status}): {message}");
    }
    let outcome = match status.as_u16() {
        202 => "scheduled",
        200 => "already published (same idempotency key)",
        _ => "published",
    };
    println!(
        "{outcome}: id {} on {} at offset {}",
        answer["id"].as_str().unwrap_or("?"),
        answer["stream"].as_str().unwrap_or("?"),
        answer["offset"]
    );
    Ok(())
}

/// The `POST /v1/publish` body.
fn request_body(args: &PublishArgs) -> anyhow::Result<Value> {
    let data: Value = match &args.data {
        Some(text) => serde_json::from_str(text)
            .map_err(|err| anyhow::anyhow!("--data is not JSON: {err}"))?,
        None if args.kind == "system-notification" => json!({ "level": "info" }),
        None => anyhow::bail!(
            "--kind {} needs its data: pass --data '{{…}}' (docs/PROTOCOL.md §8 lists each kind's fields)",
            args.kind
        ),
    };
    let mut body = json!({
        "to": args.to,
        "kind": args.kind,
        "data": data,
        "title": args.title,
        "body": args.body,
    });
    for (field, value) in [
        ("urgency", &args.urgency),
        ("url", &args.link),
        ("idempotency_key", &args.idempotency_key),
    ] {
        if let Some(value) = value {
            body[field] = json!(value);
        }
    }
    Ok(body)
}

/// The gateway's base URL and a client for it: `--gateway`, or this data dir's config
/// (its `[tls]` certificate trusted).
fn target(data_dir: &Path, gateway: Option<&str>) -> anyhow::Result<(String, reqwest::Client)> {
    let builder = reqwest::Client::builder().timeout(TIMEOUT);
    if let Some(url) = gateway {
        return Ok((url.to_owned(), builder.build()?));
    }
    let config =
        Config::load(data_dir).map_err(|err| anyhow::anyhow!("{err:#}; or pass --gateway URL"))?;
    let mut address = config.listen;
    // A gateway listening on every address is reached on this machine's loopback.
    if address.ip().is_unspecified() {
        address.set_ip(if address.is_ipv4() {
            std::net::Ipv4Addr::LOCALHOST.into()
        } else {
            std::net::Ipv6Addr::LOCALHOST.into()
        });
    }
    let Some(tls) = &config.tls else {
        return Ok((format!("http://{address}"), builder.build()?));
    };
    let path = tls.cert_path(data_dir);
    let pem = std::fs::read(&path)
        .map_err(|err| anyhow::anyhow!("cannot read {}: {err}", path.display()))?;
    let certificate = reqwest::Certificate::from_pem(&pem)
        .map_err(|err| anyhow::anyhow!("{} is not a PEM certificate: {err}", path.display()))?;
    // The certificate names the gateway's host, not necessarily the loopback this
    // connects to: trust is this one certificate (no public roots), so its name adds
    // nothing.
    let client = builder
        .tls_built_in_root_certs(false)
        .add_root_certificate(certificate)
        .danger_accept_invalid_hostnames(true)
        .build()?;
    Ok((format!("https://{address}"), client))
}
