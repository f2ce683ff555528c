//! The `tocsin` terminal client as an operator runs it: `login`, then `listen --json`
//! killed with SIGKILL and started again resumes from its persisted positions —
//! printing what it missed once, and nothing it had already printed.

use std::process::Stdio;
use std::time::Duration;

use tocsin_e2e::binary::client_binary;
use tocsin_e2e::publisher::email;
use tocsin_e2e::{Gateway, GatewayOptions};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout, Command};

const STEP: Duration = Duration::from_secs(30);

/// A `tocsin` command with its own home, kept away from any real keyring: with no
/// session bus the client falls back to its 0600 token file.
fn tocsin(home: &std::path::Path) -> Command {
    let mut command = Command::new(client_binary());
    command
        .arg("--home")
        .arg(home)
        .env(
            "DBUS_SESSION_BUS_ADDRESS",
            "unix:path=/nonexistent/tocsin-e2e-bus",
        )
        .env_remove(tocsin_harness::env::CLIENT_HOME)
        .kill_on_drop(true);
    command
}

/// Starts `tocsin listen --json` and waits until it reports being live on stderr.
async fn listen(home: &std::path::Path) -> (Child, Lines<BufReader<ChildStdout>>) {
    let mut child = tocsin(home)
        .args(["listen", "--json"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tocsin listen starts");
    let stdout = child.stdout.take().expect("piped");
    let mut status = BufReader::new(child.stderr.take().expect("piped")).lines();
    let live = async {
        while let Some(line) = status.next_line().await.expect("stderr readable") {
            if line.starts_with("connected (live)") {
                return;
            }
        }
        panic!("tocsin listen exited before connecting");
    };
    tokio::time::timeout(STEP, live)
        .await
        .expect("tocsin listen connects");
    // Keep draining its status lines so it never blocks on a full pipe.
    tokio::spawn(async move { while let Ok(Some(_)) = status.next_line().await {} });
    (child, BufReader::new(stdout).lines())
}

/// The next printed notification: (id, replay).
async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> (String, bool) {
    let line = tokio::time::timeout(STEP, lines.next_line())
        .await
        .expect("a line within the deadline")
        .expect("stdout readable")
        .expect("tocsin listen is still running");
    let value: serde_json::Value = serde_json::from_str(&line).expect("one JSON object per line");
    let id = value["notification"]["id"]
        .as_str()
        .expect("a notification id")
        .to_owned();
    (id, value["replay"].as_bool().expect("a replay flag"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_listener_resumes_from_its_persisted_positions() {
    let gw = Gateway::start(GatewayOptions::with_tenants(&[("dupont", &["marie"])])).await;
    let marie = gw.user("dupont", 0).clone();
    let api = gw.api();
    let home = tempfile::tempdir().expect("tempdir");

    let mut login = tocsin(home.path())
        .args([
            "login",
            "--server",
            &format!("http://{}", gw.addr()),
            "--email",
            &marie.email,
            "--password-stdin",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("tocsin login starts");
    let mut stdin = login.stdin.take().expect("piped");
    stdin
        .write_all(format!("{}\n", marie.password).as_bytes())
        .await
        .expect("password sent");
    drop(stdin);
    let output = login.wait_with_output().await.expect("login ends");
    assert!(
        output.status.success(),
        "login: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("0600"),
        "says where the token went without a keyring"
    );

    let (mut first_run, mut lines) = listen(home.path()).await;
    let mut seen = Vec::new();
    for n in 0..3 {
        let sent = api
            .publish_ok(
                gw.key("dupont"),
                &email(&marie.stream(), &format!("before #{n}")),
            )
            .await;
        let (id, replay) = next_line(&mut lines).await;
        assert_eq!(
            (id.as_str(), replay),
            (sent.id.as_str(), false),
            "printed live"
        );
        seen.push(id);
    }
    first_run.kill().await.expect("SIGKILL");

    let mut missed = Vec::new();
    for n in 0..4 {
        missed.push(
            api.publish_ok(
                gw.key("dupont"),
                &email(&marie.stream(), &format!("while down #{n}")),
            )
            .await
            .id,
        );
    }
    let (_second_run, mut lines) = listen(home.path()).await;
    for expected in &missed {
        let (id, replay) = next_line(&mut lines).await;
        assert!(
            !seen.contains(&id),
            "{id} was already printed before the kill"
        );
        assert_eq!(
            (&id, replay),
            (expected, true),
            "the missed ones, once, in order"
        );
    }
    let live = api
        .publish_ok(gw.key("dupont"), &email(&marie.stream(), "after"))
        .await;
    assert_eq!(
        next_line(&mut lines).await,
        (live.id, false),
        "then live again, nothing else"
    );
}
