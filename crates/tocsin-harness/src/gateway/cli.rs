//! The gateway's admin CLI run to completion (`init`, `tenant add`, `user add`, `key
//! create`, any operator command), and the fixtures a test asks for made with it.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::options::{PASSWORD, TenantFixture, TenantSpec, UserFixture};
use crate::env;

/// How long one CLI command may take (argon2 in a debug build is slow).
const CLI_TIMEOUT: Duration = Duration::from_secs(60);

/// `binary --data-dir data_dir` with a clean environment: none of the gateway's own
/// variables, no colour escapes.
pub fn command(binary: &Path, data_dir: &Path) -> Command {
    let mut command = Command::new(binary);
    gateway_args(&mut command, data_dir);
    command
}

/// The data dir and a clean environment, whatever runs the binary (it may be
/// `taskset` executing it).
pub fn gateway_args(command: &mut Command, data_dir: &Path) {
    command.arg("--data-dir").arg(data_dir);
    clean_env(command);
}

/// Removes the gateway's own variables and asks for a log without colour escapes.
pub fn clean_env(command: &mut Command) {
    for name in env::GATEWAY_OWN_ENV {
        command.env_remove(name);
    }
    command.env("NO_COLOR", "1");
}

/// Runs one CLI command to completion and returns its stdout; an error carries its
/// exit status and stderr.
pub async fn run(
    binary: &Path,
    data_dir: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<String> {
    let mut child = command(binary, data_dir)
        .args(args)
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .with_context(|| {
            format!(
                "cannot start tocsin-gateway {args:?} ({})",
                binary.display()
            )
        })?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        // A write error means the command exited without reading; its exit status and
        // stderr, checked below, say why better than "broken pipe" would.
        let _ = pipe.write_all(text.as_bytes()).await;
        drop(pipe);
    }
    let output = tokio::time::timeout(CLI_TIMEOUT, child.wait_with_output())
        .await
        .with_context(|| format!("tocsin-gateway {args:?} took over {CLI_TIMEOUT:?}"))?
        .with_context(|| format!("cannot read the output of tocsin-gateway {args:?}"))?;
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    if !output.status.success() {
        bail!(
            "tocsin-gateway {args:?} failed ({}):\nstdout: {stdout}\nstderr: {}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    Ok(stdout)
}

/// Creates the firm `spec` with its users and a publishing key.
pub async fn create_tenant(
    binary: &Path,
    data_dir: &Path,
    spec: &TenantSpec,
) -> Result<TenantFixture> {
    let name = format!("Cabinet {}", spec.slug);
    run(
        binary,
        data_dir,
        &["tenant", "add", &spec.slug, "--name", &name],
        None,
    )
    .await?;
    let mut users = Vec::new();
    for spec_user in &spec.users {
        let (local, role) = spec_user.split_once(':').unwrap_or((spec_user, "lawyer"));
        let email = format!("{local}@{}.example", spec.slug);
        let args = [
            "user",
            "add",
            "--tenant",
            &spec.slug,
            "--email",
            &email,
            "--name",
            local,
            "--role",
            role,
            "--password-stdin",
        ];
        let out = run(binary, data_dir, &args, Some(&format!("{PASSWORD}\n"))).await?;
        users.push(UserFixture {
            id: last_line(&out, "user add")?,
            email,
            password: PASSWORD.to_owned(),
            tenant: spec.slug.clone(),
        });
    }
    let args = ["key", "create", "--tenant", &spec.slug, "--name", "e2e"];
    let out = run(binary, data_dir, &args, None).await?;
    Ok(TenantFixture {
        slug: spec.slug.clone(),
        key: last_line(&out, "key create")?,
        users,
    })
}

/// The last non-empty stdout line of a CLI command (its documented result: an id, a
/// key).
pub fn last_line(stdout: &str, what: &str) -> Result<String> {
    stdout
        .lines()
        .map(str::trim)
        .rfind(|line| !line.is_empty())
        .map(str::to_owned)
        .with_context(|| format!("`{what}` printed nothing on stdout"))
}
