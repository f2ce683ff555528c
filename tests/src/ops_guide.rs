//! docs/OPERATIONS.md's "Self-host on a Debian VPS in ten minutes", run as written:
//! the ```sh blocks between `<!-- guide:begin -->` and `<!-- guide:end -->`, in order,
//! as one `bash` script (`set -euo pipefail`), so the guide cannot rot.
//!
//! The script runs inside a temp root: the guide's absolute paths (`/var/lib/tocsin`,
//! `/etc/letsencrypt`, `/etc/cron.d`, `/etc/systemd/system`, `/lib/systemd/system`,
//! `/var/backups/tocsin`, `/etc/prometheus`) are rewritten under it, and the guide's
//! port 7850 becomes a free one. The host name stays as written: curl resolves it to
//! 127.0.0.1 and trusts the throwaway CA through a `.curlrc` (`$CURL_HOME`), so the
//! guide's `curl` lines run unchanged.
//!
//! Shimmed (small scripts first on `PATH`, written by this test), for what a CI
//! container cannot or must not do:
//! - `sudo`: drops its options (`-u USER`, …) and runs the rest as the test's user;
//! - `apt`/`apt-get`: `install ./….deb` installs the gateway binary under test as the
//!   root's `usr/bin/tocsin-gateway` and the shipped unit
//!   (src-tauri/packaging/tocsin-gateway.service, paths rewritten) as
//!   `lib/systemd/system/tocsin-gateway.service`, then does what the package's postinst
//!   does to the data dir (`init` into an empty `var/lib/tocsin`, 0700; the real
//!   scripts are tested by tests/src/packages.rs); other packages (certbot) are no-ops;
//! - `useradd`/`adduser`: no-ops (no users are created);
//! - `install`: drops `-o`/`-g` (ownership) and runs the real `install`, modes kept;
//! - `certbot certonly -d HOST --deploy-hook HOOK`: a throwaway CA signs a leaf for HOST
//!   with the real `openssl`, written as Let's Encrypt does (`live/HOST/fullchain.pem`,
//!   `privkey.pem`, …), then HOOK runs with `RENEWED_LINEAGE` like certbot's;
//! - `systemctl`: `enable --now`/`start` runs the unit's `ExecStart` with its
//!   `Environment=` in the background (log and pid in the root's `run/`) and waits,
//!   within a deadline, until it logs "listening on"; `reload` sends SIGHUP; `stop`
//!   SIGTERM; `status`/`is-active` check the pid; `daemon-reload` does nothing;
//! - cron: nothing runs the /etc/cron.d file; the test runs its command line once.
//!
//! After the script, a renewal (the certbot shim again, a new CA and leaf) runs the
//! guide's deploy hook with the gateway serving: its `systemctl reload` must SIGHUP the
//! gateway, which then serves the new leaf (read back with `openssl s_client`).
//!
//! Real: the gateway binary (init, tenant, user, key, serve, publish, backup, restore,
//! doctor), TLS with a CA-signed chain, HTTP, openssl, curl, sed, and
//! `systemd-analyze verify` on the installed unit. The test checks what the guide
//! promises: `/readyz` 200 over TLS trusted through the CA, the test notification
//! published, `/metrics` 200 with the token, `doctor` passing, a nightly backup file that
//! `restore` accepts into a fresh data dir (integrity, schema) with the firm's user in
//! it, and the unit accepted by systemd.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use tocsin_e2e::binary::{gateway_binary, workspace_root};

/// The guide's host name and port, as written in the doc.
const HOST: &str = "tocsin.cabinet-dupont.fr";
const GUIDE_PORT: &str = "7850";
/// What the test types at the guide's password prompt.
const PASSWORD: &str = "correct horse battery staple";
/// The absolute paths the guide writes to, rewritten under the temp root.
const ROOTED: &[&str] = &[
    "/var/lib/tocsin",
    "/var/backups/tocsin",
    "/etc/letsencrypt",
    "/etc/cron.d",
    "/etc/systemd/system",
    "/lib/systemd/system",
    "/etc/prometheus",
];

/// The ```sh blocks of the guide's section, in order, each dedented by its fence's
/// indentation (the blocks sit in a numbered list).
fn guide_blocks(doc: &str) -> Vec<String> {
    let begin = doc
        .find("<!-- guide:begin -->")
        .expect("docs/OPERATIONS.md has <!-- guide:begin -->");
    let end = doc
        .find("<!-- guide:end -->")
        .expect("docs/OPERATIONS.md has <!-- guide:end -->");
    let mut blocks = Vec::new();
    let mut current: Option<(usize, String)> = None;
    for line in doc[begin..end].lines() {
        let trimmed = line.trim_start();
        let indent = line.len() - trimmed.len();
        match &mut current {
            None if trimmed == "```sh" => current = Some((indent, String::new())),
            Some(_) if trimmed == "```" => {
                blocks.push(current.take().expect("open block").1);
            }
            Some((fence, text)) => {
                let strip = indent.min(*fence);
                text.push_str(&line[strip..]);
                text.push('\n');
            }
            None => {}
        }
    }
    assert!(current.is_none(), "an unclosed ```sh block in the guide");
    blocks
}

/// Rewrites the guide's absolute paths under `root` (each occurrence once: only where
/// a path starts, not inside one already rewritten) and its port.
fn rewrite(script: &str, root: &Path, port: u16) -> String {
    let root = root.display().to_string();
    let mut out = String::with_capacity(script.len() * 2);
    let mut rest = script;
    'scan: while !rest.is_empty() {
        let starts_path = !out
            .chars()
            .last()
            .is_some_and(|c| c.is_alphanumeric() || "/._-$".contains(c));
        if starts_path {
            for prefix in ROOTED {
                if rest.starts_with(prefix) {
                    out.push_str(&root);
                    out.push_str(prefix);
                    rest = &rest[prefix.len()..];
                    continue 'scan;
                }
            }
        }
        let c = rest.chars().next().expect("not empty");
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out.replace(&format!(":{GUIDE_PORT}"), &format!(":{port}"))
}

/// A port free on 127.0.0.1 right now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

fn require_tool(tool: &str, version_arg: &str) {
    let found = Command::new(tool).arg(version_arg).output();
    assert!(
        found.is_ok_and(|out| out.status.success()),
        "{tool} is missing: run `cargo xtask setup` (it installs what the ops guide's test needs)"
    );
}

/// The shims, each a small documented bash script.
const SHIMS: &[(&str, &str)] = &[
    (
        "sudo",
        r#"#!/bin/bash
# sudo: no privileges in CI; drop sudo's options (-u USER, -E, …) and run the rest.
while [ $# -gt 0 ]; do
  case "$1" in
    -u|-g) shift 2 ;;
    --) shift; break ;;
    -*) shift ;;
    *) break ;;
  esac
done
exec "$@"
"#,
    ),
    (
        "apt",
        r#"#!/bin/bash
# apt install ./x.deb: install the gateway under test and the shipped unit in the root.
set -euo pipefail
[ "$1" = install ] || { echo "apt shim: only install" >&2; exit 2; }
shift
for package in "$@"; do
  case "$package" in
    -*) ;;
    *.deb)
      install -d "$GUIDE_ROOT/usr/bin" "$GUIDE_ROOT/lib/systemd/system"
      ln -sf "$GUIDE_GATEWAY_BIN" "$GUIDE_ROOT/usr/bin/tocsin-gateway"
      sed -e "s#/usr/bin/tocsin-gateway#$GUIDE_ROOT/usr/bin/tocsin-gateway#" \
          -e "s#/var/lib/tocsin#$GUIDE_ROOT/var/lib/tocsin#g" \
          "$GUIDE_UNIT" > "$GUIDE_ROOT/lib/systemd/system/tocsin-gateway.service"
      # The postinst's init, on an empty data dir only.
      data="$GUIDE_ROOT/var/lib/tocsin"
      install -d -m 0700 "$data"
      if [ -z "$(ls -A "$data")" ]; then "$GUIDE_GATEWAY_BIN" --data-dir "$data" init >/dev/null; fi
      echo "apt shim: installed $package (tocsin-gateway, tocsin-gateway.service)" ;;
    certbot) install -d "$GUIDE_ROOT/etc/letsencrypt"; echo "apt shim: certbot (shimmed)" ;;
    *) echo "apt shim: $package skipped" ;;
  esac
done
"#,
    ),
    (
        "useradd",
        r#"#!/bin/bash
# useradd: CI creates no system users; files stay the test user's.
echo "useradd shim: $*"
"#,
    ),
    (
        "install",
        r#"#!/bin/bash
# install: drop -o/-g (no other users in CI), keep modes; the real install does the rest.
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    -o|-g) shift 2 ;;
    *) args+=("$1"); shift ;;
  esac
done
exec /usr/bin/install "${args[@]}"
"#,
    ),
    (
        "certbot",
        r#"#!/bin/bash
# certbot certonly -d HOST --deploy-hook HOOK: a throwaway CA ($GUIDE_CA_DIR) signs a
# leaf for HOST with openssl, laid out as Let's Encrypt does; then HOOK runs.
set -euo pipefail
host=; hook=
while [ $# -gt 0 ]; do
  case "$1" in
    -d|--domain|--domains) host=$2; shift 2 ;;
    --deploy-hook) hook=$2; shift 2 ;;
    *) shift ;;
  esac
done
[ -n "$host" ] || { echo "certbot shim: no -d HOST" >&2; exit 2; }
ca=$GUIDE_CA_DIR
live=$GUIDE_ROOT/etc/letsencrypt/live/$host
install -d -m 0700 "$ca" "$live"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 \
  -subj "/CN=Tocsin guide throwaway CA" -keyout "$ca/ca.key" -out "$ca/ca.pem" 2>/dev/null
openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
  -subj "/CN=$host" -keyout "$live/privkey.pem" -out "$ca/leaf.csr" 2>/dev/null
printf 'subjectAltName=DNS:%s\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n' "$host" > "$ca/leaf.ext"
openssl x509 -req -in "$ca/leaf.csr" -CA "$ca/ca.pem" -CAkey "$ca/ca.key" -CAcreateserial \
  -days 90 -extfile "$ca/leaf.ext" -out "$live/cert.pem" 2>/dev/null
cp "$ca/ca.pem" "$live/chain.pem"
cat "$live/cert.pem" "$live/chain.pem" > "$live/fullchain.pem"
echo "certbot shim: certificate for $host in $live"
if [ -n "$hook" ]; then RENEWED_LINEAGE=$live RENEWED_DOMAINS=$host "$hook"; fi
"#,
    ),
    (
        "systemctl",
        r#"#!/bin/bash
# systemctl for tocsin-gateway: runs the installed unit's ExecStart with its
# Environment= in the background; reload = SIGHUP, stop = SIGTERM; status/is-active
# check the pid.
set -euo pipefail
run=$GUIDE_ROOT/run
pidfile=$run/tocsin-gateway.pid
log=$run/tocsin-gateway.log
install -d "$run"
alive() { [ -f "$pidfile" ] && kill -0 "$(cat "$pidfile")" 2>/dev/null; }
unit() {
  for dir in "$GUIDE_ROOT/etc/systemd/system" "$GUIDE_ROOT/lib/systemd/system"; do
    [ -f "$dir/tocsin-gateway.service" ] && { echo "$dir/tocsin-gateway.service"; return; }
  done
  echo "systemctl shim: tocsin-gateway.service is not installed" >&2; exit 5
}
start() {
  alive && return 0
  local file; file=$(unit)
  local exec; exec=$(sed -n 's/^ExecStart=//p' "$file")
  local envs; envs=$(sed -n 's/^Environment=//p' "$file")
  : > "$log"
  # shellcheck disable=SC2086
  env $envs $exec >>"$log" 2>&1 </dev/null &
  echo $! > "$pidfile"
  # Wait for readiness within a deadline, as a human would before the next step.
  for _ in $(seq 1 300); do
    grep -q "listening on" "$log" && return 0
    alive || { echo "systemctl shim: tocsin-gateway exited:" >&2; cat "$log" >&2; exit 1; }
    sleep 0.05
  done
  echo "systemctl shim: tocsin-gateway not listening after 15 s:" >&2; cat "$log" >&2; exit 1
}
quiet=
args=()
for arg in "$@"; do
  case "$arg" in
    --quiet|-q) quiet=1 ;;
    --no-pager) ;;
    *) args+=("$arg") ;;
  esac
done
case "${args[0]}" in
  daemon-reload) ;;
  enable) [[ " ${args[*]} " == *" --now "* ]] && start ;;
  start|restart) start ;;
  reload) alive && kill -HUP "$(cat "$pidfile")" ;;
  stop) if alive; then pid=$(cat "$pidfile"); kill -TERM "$pid"; while kill -0 "$pid" 2>/dev/null; do sleep 0.05; done; fi ;;
  is-active) if alive; then [ -n "$quiet" ] || echo active; else [ -n "$quiet" ] || echo inactive; exit 3; fi ;;
  status) if alive; then echo "tocsin-gateway.service: active (running), pid $(cat "$pidfile")"; tail -n 5 "$log"; else echo "tocsin-gateway.service: inactive"; exit 3; fi ;;
  *) echo "systemctl shim: ${args[0]} not shimmed" >&2; exit 2 ;;
esac
"#,
    ),
];

/// Stops the gateway the script started, whatever happens.
struct Stop(PathBuf);

impl Drop for Stop {
    fn drop(&mut self) {
        if let Ok(pid) = std::fs::read_to_string(&self.0) {
            let _ = Command::new("kill").arg(pid.trim()).status();
        }
    }
}

fn said(output: &Output) -> String {
    format!(
        "status {}\n--- stdout\n{}\n--- stderr\n{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    )
}

/// The SHA-256 fingerprint of a PEM certificate, as openssl prints it.
fn fingerprint(pem: &[u8]) -> String {
    let mut child = Command::new("openssl")
        .args(["x509", "-noout", "-fingerprint", "-sha256"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("openssl runs");
    std::io::Write::write_all(&mut child.stdin.take().expect("stdin"), pem).expect("pem");
    let out = child.wait_with_output().expect("openssl x509");
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The fingerprint of the leaf the gateway serves on `port` now, if it answers.
fn served_fingerprint(port: u16) -> Option<String> {
    let out = Command::new("openssl")
        .args(["s_client", "-connect"])
        .arg(format!("127.0.0.1:{port}"))
        .args(["-servername", HOST])
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let begin = text.find("-----BEGIN CERTIFICATE-----")?;
    let end = text.find("-----END CERTIFICATE-----")? + "-----END CERTIFICATE-----".len();
    Some(fingerprint(text[begin..end].as_bytes()))
}

fn gateway(data_dir: &Path, args: &[&str]) -> Output {
    Command::new(gateway_binary())
        .arg("--data-dir")
        .arg(data_dir)
        .args(args)
        .env_remove(tocsin_harness::env::DATA_DIR)
        .stdin(Stdio::null())
        .output()
        .expect("tocsin-gateway runs")
}

#[test]
fn the_debian_vps_guide_runs_as_written() {
    for (tool, arg) in [
        ("curl", "--version"),
        ("openssl", "version"),
        ("systemd-analyze", "--version"),
        ("bash", "--version"),
    ] {
        require_tool(tool, arg);
    }
    let temp = tempfile::tempdir().expect("tempdir");
    let root = temp.path().join("root");
    let shims = temp.path().join("shims");
    let ca_dir = temp.path().join("ca");
    let curl_home = temp.path().join("curl");
    for dir in [&root, &shims, &curl_home] {
        std::fs::create_dir_all(dir).expect("dir");
    }
    // What a Debian system already has.
    for dir in ["etc/cron.d", "etc/systemd/system", "var/backups", "var/lib"] {
        std::fs::create_dir_all(root.join(dir)).expect("dir");
    }
    for (name, text) in SHIMS {
        let path = shims.join(name);
        std::fs::write(&path, text).expect("shim written");
        let mut permissions = std::fs::metadata(&path).expect("shim").permissions();
        std::os::unix::fs::PermissionsExt::set_mode(&mut permissions, 0o755);
        std::fs::set_permissions(&path, permissions).expect("shim executable");
    }
    std::os::unix::fs::symlink(shims.join("apt"), shims.join("apt-get")).expect("apt-get");
    std::os::unix::fs::symlink(shims.join("useradd"), shims.join("adduser")).expect("adduser");

    let port = free_port();
    std::fs::write(
        curl_home.join(".curlrc"),
        format!(
            "cacert = \"{}\"\nresolve = \"{HOST}:{port}:127.0.0.1\"\n",
            ca_dir.join("ca.pem").display()
        ),
    )
    .expect(".curlrc");

    let doc = std::fs::read_to_string(workspace_root().join("docs/OPERATIONS.md"))
        .expect("docs/OPERATIONS.md");
    let blocks = guide_blocks(&doc);
    assert!(
        blocks.len() >= 8,
        "the guide has its steps: {} blocks",
        blocks.len()
    );
    let script = format!(
        "set -euo pipefail\n{}",
        rewrite(&blocks.join("\n"), &root, port)
    );
    let script_path = temp.path().join("guide.sh");
    std::fs::write(&script_path, &script).expect("script");

    let unit = workspace_root().join("src-tauri/packaging/tocsin-gateway.service");
    let path = format!(
        "{}:{}:{}",
        shims.display(),
        root.join("usr/bin").display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let pidfile = root.join("run/tocsin-gateway.pid");
    let _stop = Stop(pidfile.clone());
    let mut child = Command::new("bash")
        .arg(&script_path)
        .current_dir(temp.path())
        .env("PATH", &path)
        .env("GUIDE_ROOT", &root)
        .env("GUIDE_CA_DIR", &ca_dir)
        .env("GUIDE_GATEWAY_BIN", gateway_binary())
        .env("GUIDE_UNIT", &unit)
        .env("CURL_HOME", &curl_home)
        .env_remove(tocsin_harness::env::DATA_DIR)
        .env_remove(tocsin_harness::env::API_KEY)
        .env_remove(tocsin_harness::env::URL)
        .env_remove(tocsin_harness::env::LISTEN)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("bash runs the guide");
    // The password typed at the guide's prompt.
    std::io::Write::write_all(
        &mut child.stdin.take().expect("stdin"),
        format!("{PASSWORD}\n").as_bytes(),
    )
    .expect("password typed");
    let ran = child.wait_with_output().expect("the guide ran");
    let log = std::fs::read_to_string(root.join("run/tocsin-gateway.log")).unwrap_or_default();
    let report = format!(
        "{}\n--- gateway log\n{log}\n--- script\n{script}",
        said(&ran)
    );
    assert!(ran.status.success(), "the guide failed:\n{report}");

    // What the guide promised, checked again from here.
    let stdout = String::from_utf8_lossy(&ran.stdout);
    assert!(stdout.contains("ready"), "readyz answered ready:\n{report}");
    assert!(
        stdout.contains("published: id "),
        "the test notification was published:\n{report}"
    );
    assert!(
        stdout.contains("tocsin_build_info"),
        "the metrics scrape answered:\n{report}"
    );
    let data_dir = root.join("var/lib/tocsin");
    let curl = |args: &[&str]| {
        Command::new("curl")
            .env("CURL_HOME", &curl_home)
            .args(["-sS", "-o", "/dev/null", "-w", "%{http_code}"])
            .args(args)
            .output()
            .expect("curl runs")
    };
    let ready = curl(&[&format!("https://{HOST}:{port}/readyz")]);
    assert_eq!(
        String::from_utf8_lossy(&ready.stdout),
        "200",
        "readyz over TLS trusted through the CA: {}",
        said(&ready)
    );
    let config = std::fs::read_to_string(data_dir.join("config.toml")).expect("config.toml");
    let token = config
        .lines()
        .find_map(|line| line.strip_prefix("token = \""))
        .and_then(|rest| rest.strip_suffix('"'))
        .expect("init wrote a metrics token");
    let metrics = curl(&[
        "-H",
        &format!("Authorization: Bearer {token}"),
        &format!("https://{HOST}:{port}/metrics"),
    ]);
    assert_eq!(
        String::from_utf8_lossy(&metrics.stdout),
        "200",
        "metrics with the token: {}",
        said(&metrics)
    );
    let unauthorised = curl(&[&format!("https://{HOST}:{port}/metrics")]);
    assert_ne!(
        String::from_utf8_lossy(&unauthorised.stdout),
        "200",
        "metrics without the token are refused"
    );

    // A renewal: certbot runs the guide's deploy hook again, now with the gateway
    // serving; the hook's `systemctl reload` sends SIGHUP and the new leaf is served.
    let renewed = Command::new(shims.join("certbot"))
        .args(["renew", "-d", HOST, "--deploy-hook"])
        .arg(root.join("etc/letsencrypt/tocsin-deploy.sh"))
        .env("PATH", &path)
        .env("GUIDE_ROOT", &root)
        .env("GUIDE_CA_DIR", &ca_dir)
        .output()
        .expect("certbot shim");
    assert!(renewed.status.success(), "renewal: {}", said(&renewed));
    let new_leaf = fingerprint(
        &std::fs::read(
            root.join("etc/letsencrypt/live")
                .join(HOST)
                .join("cert.pem"),
        )
        .expect("cert.pem"),
    );
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let served = served_fingerprint(port);
        if served.as_deref() == Some(new_leaf.as_str()) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the renewed certificate is not served after 15 s (served {served:?}, want {new_leaf})"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    let log = std::fs::read_to_string(root.join("run/tocsin-gateway.log")).unwrap_or_default();
    assert!(
        log.contains("SIGHUP: reading the TLS certificate again"),
        "the deploy hook reloaded the gateway (systemctl reload → SIGHUP):\n{log}"
    );

    // The nightly cron line, run once as cron would (`\%` is a literal `%` to cron).
    let cron = std::fs::read_to_string(root.join("etc/cron.d/tocsin-backup")).expect("cron file");
    let line = cron
        .lines()
        .find(|line| !line.trim().is_empty() && !line.starts_with('#'))
        .expect("a cron line");
    let fields: Vec<&str> = line.splitn(7, ' ').collect();
    assert_eq!(
        fields.len(),
        7,
        "minute hour dom month dow user command: {line}"
    );
    assert_eq!(fields[5], "tocsin", "the backup runs as the service user");
    let command = fields[6].replace("\\%", "%");
    let backed_up = Command::new("sh")
        .args(["-c", &command])
        .env(
            "PATH",
            format!("{}:/usr/bin:/bin", root.join("usr/bin").display()),
        )
        .env_remove(tocsin_harness::env::DATA_DIR)
        .output()
        .expect("the cron command runs");
    assert!(
        backed_up.status.success(),
        "cron backup: {}",
        said(&backed_up)
    );
    let backups: Vec<PathBuf> = std::fs::read_dir(root.join("var/backups/tocsin"))
        .expect("backup dir")
        .map(|entry| entry.expect("entry").path())
        .filter(|path| {
            path.file_name()
                .and_then(|name| name.to_str())
                .is_some_and(|name| name.starts_with("tocsin-") && name.ends_with(".db"))
        })
        .collect();
    assert_eq!(backups.len(), 1, "one dated backup: {backups:?}");

    // The backup is a valid one: `restore` (integrity, a Tocsin database, its schema)
    // accepts it into a fresh data dir, which then holds the firm's user.
    let fresh = temp.path().join("restored");
    let init = gateway(&fresh, &["init"]);
    assert!(init.status.success(), "init: {}", said(&init));
    let restored = gateway(&fresh, &["restore", &backups[0].display().to_string()]);
    assert!(restored.status.success(), "restore: {}", said(&restored));
    let users = gateway(&fresh, &["user", "list", "--tenant", "dupont"]);
    assert!(
        users.status.success()
            && String::from_utf8_lossy(&users.stdout).contains("marie.dupont@cabinet-dupont.fr"),
        "the restored backup holds the firm's user: {}",
        said(&users)
    );
    let fresh_doctor = gateway(&fresh, &["doctor"]);
    assert!(
        fresh_doctor.status.success(),
        "doctor on the restored copy: {}",
        said(&fresh_doctor)
    );

    // doctor on the served data dir, and systemd on the installed unit.
    let doctor = gateway(&data_dir, &["doctor"]);
    assert!(doctor.status.success(), "doctor: {}", said(&doctor));
    let installed = root.join("lib/systemd/system/tocsin-gateway.service");
    let verified = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&installed)
        .output()
        .expect("systemd-analyze runs");
    let complaints = String::from_utf8_lossy(&verified.stderr).into_owned()
        + &String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success() && complaints.trim().is_empty(),
        "systemd-analyze verify on the installed unit: {complaints}"
    );

    // The service stops as systemd would stop it.
    let stopped = Command::new(shims.join("systemctl"))
        .args(["stop", "tocsin-gateway"])
        .env("GUIDE_ROOT", &root)
        .output()
        .expect("systemctl shim");
    assert!(stopped.status.success(), "stop: {}", said(&stopped));
}
