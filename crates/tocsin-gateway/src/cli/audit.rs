//! `audit export`: a firm's audit trail as CSV or JSON lines on stdout — what a firm
//! hands its insurer when a deadline is disputed ("told on the 3rd at 09:00 on two
//! devices, seen at 09:02, acknowledged at 09:05"). Reads the database directly, so it
//! works with the gateway stopped.

use std::io::Write;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use clap::{Args, Subcommand, ValueEnum};
use tocsin_protocol::audit::AuditRecord;

use crate::store::{AuditFilter, Store};

/// `audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Write the audit trail of a firm (optionally one dossier, deadline or user).
    Export(ExportArgs),
}

/// The output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum Format {
    /// One header line, then one line per record (RFC 4180 quoting).
    Csv,
    /// One JSON object per line.
    Json,
}

/// `audit export` flags.
#[derive(Debug, Args)]
pub struct ExportArgs {
    /// The firm.
    #[arg(long)]
    tenant: String,
    /// Only this dossier's records.
    #[arg(long)]
    dossier: Option<String>,
    /// Only this deadline's records (the firm's id).
    #[arg(long)]
    deadline: Option<String>,
    /// Only this user's (id or email).
    #[arg(long)]
    user: Option<String>,
    /// From (RFC 3339).
    #[arg(long)]
    from: Option<DateTime<Utc>>,
    /// Until, exclusive (RFC 3339).
    #[arg(long)]
    to: Option<DateTime<Utc>>,
    /// `csv` or `json`.
    #[arg(long, value_enum, default_value = "csv")]
    format: Format,
}

/// Runs `audit export`.
pub async fn run(store: Arc<dyn Store>, command: AuditCommand) -> anyhow::Result<()> {
    let AuditCommand::Export(args) = command;
    anyhow::ensure!(
        store.tenant(&args.tenant).await?.is_some(),
        "no firm '{}' (see `tenant add`)",
        args.tenant
    );
    let user_id = match &args.user {
        Some(who) => Some(
            store
                .firm_user(&args.tenant, who)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no user '{who}' in firm '{}'", args.tenant))?
                .id,
        ),
        None => None,
    };
    let mut filter = AuditFilter {
        tenant: args.tenant.clone(),
        dossier: args.dossier.clone(),
        user_id,
        deadline_id: args.deadline.clone(),
        from: args.from,
        to: args.to,
        after: None,
        limit: 5_000,
    };
    let mut out = std::io::stdout().lock();
    if matches!(args.format, Format::Csv) {
        writeln!(
            out,
            "id,at,event,notification_id,deadline_id,dossier,user_id,device,actor,kind,title"
        )?;
    }
    let mut count = 0usize;
    loop {
        let page = store.audit(filter.clone()).await?;
        let Some(last) = page.last().map(|r| r.id) else {
            break;
        };
        for record in &page {
            match args.format {
                Format::Csv => writeln!(out, "{}", csv_line(record))?,
                Format::Json => writeln!(out, "{}", serde_json::to_string(record)?)?,
            }
        }
        count += page.len();
        filter.after = Some(last);
    }
    eprintln!("{count} audit records of firm '{}'", args.tenant);
    Ok(())
}

fn csv_line(record: &AuditRecord) -> String {
    let detail = |field: &str| {
        record
            .detail
            .as_ref()
            .and_then(|d| d[field].as_str())
            .unwrap_or_default()
            .to_owned()
    };
    let fields = [
        record.id.to_string(),
        record.at.to_rfc3339(),
        record.event.as_str().to_owned(),
        record.notification_id.clone().unwrap_or_default(),
        record.deadline_id.clone().unwrap_or_default(),
        record.dossier.clone().unwrap_or_default(),
        record.user_id.clone().unwrap_or_default(),
        record.device.clone().unwrap_or_default(),
        record.actor.clone().unwrap_or_default(),
        detail("kind"),
        detail("title"),
    ];
    fields
        .iter()
        .map(|f| quote(f))
        .collect::<Vec<_>>()
        .join(",")
}

/// RFC 4180: quoted when it holds a comma, a quote or a line break; quotes doubled.
/// A leading `=`, `+`, `-` or `@` gets a `'` so a spreadsheet shows the text
/// instead of running it as a formula (a title comes from the firm's software).
fn quote(field: &str) -> String {
    let safe = if field.starts_with(['=', '+', '-', '@']) {
        format!("'{field}")
    } else {
        field.to_owned()
    };
    if safe.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", safe.replace('"', "\"\""))
    } else {
        safe
    }
}

#[cfg(test)]
mod tests {
    use super::quote;

    #[test]
    fn fields_are_quoted_and_formulas_defused() {
        assert_eq!(quote("plain"), "plain");
        assert_eq!(quote("Dupont, Martin"), "\"Dupont, Martin\"");
        assert_eq!(quote("dit \"urgent\""), "\"dit \"\"urgent\"\"\"");
        assert_eq!(quote("=HYPERLINK(\"x\")"), "\"'=HYPERLINK(\"\"x\"\")\"");
    }
}
