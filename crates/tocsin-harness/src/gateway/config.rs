//! `config.toml` as `init` wrote it, edited with a test's overrides.

use std::path::Path;

use anyhow::{Context, Result};

use super::options::GatewayOptions;

/// Applies `options`' overrides to the `config.toml` at `path`; fields left `None`
/// keep the value `init` wrote.
pub fn apply(path: &Path, options: &GatewayOptions) -> Result<()> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("init did not write {}", path.display()))?;
    let mut config: toml::Table = text
        .parse()
        .with_context(|| format!("init's {} does not parse", path.display()))?;
    let top = [
        ("retention_secs", options.retention_secs),
        ("prune_interval_secs", options.prune_interval_secs),
    ];
    set_all(&mut config, None, &top)?;
    if let Some(database) = &options.database {
        config.insert("database".into(), toml::Value::String(database.clone()));
    }
    let websocket = [
        ("heartbeat_interval_ms", options.heartbeat_interval_ms),
        ("heartbeat_timeout_ms", options.heartbeat_timeout_ms),
        ("auth_timeout_ms", options.auth_timeout_ms),
        ("max_message_bytes", options.max_message_bytes),
        ("queue_capacity", options.queue_capacity),
        ("max_connections_per_user", options.max_connections_per_user),
        ("actions_per_second", options.actions_per_second),
        ("actions_burst", options.actions_burst),
    ];
    set_all(&mut config, Some("websocket"), &websocket)?;
    if let Some(origins) = &options.allowed_origins {
        let list = origins.iter().cloned().map(toml::Value::String).collect();
        table(&mut config, "websocket")?.insert("allowed_origins".into(), toml::Value::Array(list));
    }
    let http = [
        ("publish_per_second", options.publish_per_second),
        ("publish_burst", options.publish_burst),
        ("max_connections_per_ip", options.max_connections_per_ip),
        ("handshake_timeout_ms", options.handshake_timeout_ms),
    ];
    set_all(&mut config, Some("http"), &http)?;
    let login = [
        ("per_ip_per_second", options.login_per_ip_per_second),
        ("per_ip_burst", options.login_per_ip_burst),
        ("max_concurrent_hashes", options.login_max_concurrent_hashes),
        ("hash_queue_wait_ms", options.login_hash_queue_wait_ms),
    ];
    set_all(&mut config, Some("login"), &login)?;
    set_all(
        &mut config,
        Some("deadlines"),
        &[("late_after_secs", options.late_after_secs)],
    )?;
    let auth = [
        ("refresh_grace_secs", options.refresh_grace_secs),
        ("access_token_ttl_secs", options.access_token_ttl_secs),
    ];
    set_all(&mut config, Some("auth"), &auth)?;
    if let Some(external) = &options.external_auth {
        let mut external_table = toml::Table::new();
        external_table.insert("algorithm".into(), "HS256".into());
        external_table.insert("secret".into(), external.secret.clone().into());
        external_table.insert("issuer".into(), external.issuer.clone().into());
        external_table.insert("audience".into(), external.audience.clone().into());
        external_table.insert("leeway_secs".into(), integer(external.leeway_secs)?);
        external_table.insert("user_claim".into(), "sub".into());
        external_table.insert("tenant_claim".into(), "tenant".into());
        table(&mut config, "auth")?.insert("external".into(), toml::Value::Table(external_table));
    }
    write(path, &config)
}

/// Sets `database` in the `config.toml` at `path` (another node reaching the same
/// database through a proxy).
pub fn set_database(path: &Path, url: &str) -> Result<()> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    let mut config: toml::Table = text
        .parse()
        .with_context(|| format!("{} does not parse", path.display()))?;
    config.insert("database".into(), toml::Value::String(url.to_owned()));
    write(path, &config)
}

fn write(path: &Path, config: &toml::Table) -> Result<()> {
    let text = toml::to_string(config).context("the edited config does not serialise")?;
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Sets each `(key, Some(value))` in `[section]` (or at the top when `None`).
fn set_all(
    config: &mut toml::Table,
    section: Option<&str>,
    values: &[(&str, Option<u64>)],
) -> Result<()> {
    for (key, value) in values {
        let Some(value) = value else { continue };
        let value = integer(*value)?;
        match section {
            None => config.insert((*key).to_owned(), value),
            Some(name) => table(config, name)?.insert((*key).to_owned(), value),
        };
    }
    Ok(())
}

/// The `[name]` table, created when missing.
fn table<'a>(config: &'a mut toml::Table, name: &str) -> Result<&'a mut toml::Table> {
    config
        .entry(name)
        .or_insert_with(|| toml::Value::Table(toml::Table::new()))
        .as_table_mut()
        .with_context(|| format!("[{name}] in config.toml is not a table"))
}

fn integer(value: u64) -> Result<toml::Value> {
    let value = i64::try_from(value).with_context(|| format!("{value} does not fit TOML"))?;
    Ok(toml::Value::Integer(value))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_land_in_their_tables_and_the_rest_stays() -> Result<()> {
        let dir = tempfile::tempdir()?;
        let path = dir.path().join("config.toml");
        std::fs::write(&path, "listen = \"x\"\n[websocket]\nqueue_capacity = 1\n")?;
        let options = GatewayOptions {
            queue_capacity: Some(7),
            publish_burst: Some(3),
            retention_secs: Some(60),
            ..GatewayOptions::default()
        };
        apply(&path, &options)?;
        let config: toml::Table = std::fs::read_to_string(&path)?.parse()?;
        assert_eq!(config["listen"].as_str(), Some("x"));
        assert_eq!(config["retention_secs"].as_integer(), Some(60));
        assert_eq!(config["websocket"]["queue_capacity"].as_integer(), Some(7));
        assert_eq!(config["http"]["publish_burst"].as_integer(), Some(3));
        Ok(())
    }
}
