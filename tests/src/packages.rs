//! The Debian packages `cargo xtask bundle` builds (`cargo xtask test` builds them and
//! names them in `TOCSIN_GATEWAY_DEB`, `…_DBGSYM_DEB`, `…_DEB_UPGRADE`): contents,
//! sizes, lintian, and the gateway package installed, upgraded, removed and purged
//! for real with dpkg.
//!
//! The throwaway root is this machine's own `/` under an overlayfs whose upper layer
//! is a tmpfs, mounted in a private mount namespace (`unshare --mount`) and entered
//! with `nsenter` + `chroot`: the real dpkg, adduser, runuser and package database,
//! and nothing leaks (the namespace and its tmpfs vanish with the holder process).
//! mmdebstrap would need the Debian mirror; `dpkg --root` a whole minimal system.
//! The root gets a fresh tmpfs `/run`, so the first install sees no systemd (the
//! chroot path of the scripts). Then the test plays systemd: `/run/systemd/system`
//! and a `systemctl` stand-in first on `PATH` that runs the unit's `ExecStart` as its
//! `User=` with its `Environment=` (systemd cannot run here) and logs each call.
//! Needs root (CI's container is root) and dpkg, lintian: missing, the tests fail in
//! CI and say what to do elsewhere, never skip silently there.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use tocsin_e2e::http::Api;
use tocsin_e2e::{STEP, WsClient, poll_until, publisher};
use tocsin_harness::env;

/// The issue's target for the server package.
const MAX_GATEWAY_DEB_BYTES: u64 = 15 * 1024 * 1024;
/// The firm's user's password in the throwaway root.
const PASSWORD: &str = "correct horse battery";

/// The packages under test, or `None` (with the reason printed) outside CI.
fn packages() -> Option<(PathBuf, PathBuf, PathBuf)> {
    let named = |var: &str| std::env::var_os(var).map(PathBuf::from);
    let in_ci = std::env::var_os("CI").is_some_and(|v| !v.is_empty() && v != "false");
    match (
        named(env::GATEWAY_DEB),
        named(env::GATEWAY_DBGSYM_DEB),
        named(env::GATEWAY_DEB_UPGRADE),
    ) {
        (Some(deb), Some(dbgsym), Some(upgrade)) => Some((deb, dbgsym, upgrade)),
        _ => {
            let why = format!(
                "{}, {} and {} are not set: `cargo xtask test` builds the packages and sets them (or run `cargo xtask bundle --gateway-only` twice, the second time with `--version-suffix +upgrade1`, and set them yourself)",
                env::GATEWAY_DEB,
                env::GATEWAY_DBGSYM_DEB,
                env::GATEWAY_DEB_UPGRADE
            );
            assert!(!in_ci, "{why}");
            eprintln!("SKIPPED: {why}");
            None
        }
    }
}

/// Runs `program args`, panicking with its output unless it succeeds; returns stdout.
fn run(program: &str, args: &[&str]) -> String {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{program} cannot run ({e}): `cargo xtask setup` installs it"));
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}):\n{stdout}{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

fn field(deb: &Path, name: &str) -> String {
    run("dpkg-deb", &["-f", &deb.display().to_string(), name])
        .trim()
        .to_owned()
}

#[test]
fn packages_hold_what_they_should_and_the_server_one_is_small() {
    let Some((deb, dbgsym, _)) = packages() else {
        return;
    };
    for package in [&deb, &dbgsym] {
        let size = std::fs::metadata(package).expect("the package").len();
        println!(
            "{}: {} KiB, installed {} KiB",
            package.display(),
            size.div_ceil(1024),
            field(package, "Installed-Size")
        );
        println!(
            "{}",
            run("dpkg-deb", &["--contents", &package.display().to_string()])
        );
    }
    let size = std::fs::metadata(&deb).expect("the package").len();
    assert!(
        size < MAX_GATEWAY_DEB_BYTES,
        "the server package is {size} bytes, over 15 MB"
    );
    let listing = run("dpkg-deb", &["--contents", &deb.display().to_string()]);
    for file in [
        "./usr/bin/tocsin-gateway",
        "./lib/systemd/system/tocsin-gateway.service",
        "./usr/share/doc/tocsin-gateway/copyright",
    ] {
        assert!(
            listing.contains(file),
            "{file} is in the package:\n{listing}"
        );
    }
    let depends = field(&deb, "Depends");
    assert!(
        depends.contains("libc6"),
        "Depends from dpkg-shlibdeps: {depends}"
    );
    for gui in ["gtk", "webkit", "appindicator"] {
        assert!(
            !depends.contains(gui),
            "no GUI library on a server: {depends}"
        );
    }
    // The stripped binary's build id names the dbgsym's file.
    let dir = tempfile::tempdir().expect("tempdir");
    run(
        "dpkg-deb",
        &[
            "-x",
            &deb.display().to_string(),
            &dir.path().display().to_string(),
        ],
    );
    let binary = dir.path().join("usr/bin/tocsin-gateway");
    let sections = run("readelf", &["-S", &binary.display().to_string()]);
    assert!(!sections.contains(".debug_line"), "the binary is stripped");
    let notes = run("readelf", &["-n", &binary.display().to_string()]);
    let id = notes
        .lines()
        .find_map(|line| line.trim().strip_prefix("Build ID: "))
        .expect("a build id")
        .trim()
        .to_owned();
    assert_eq!(field(&dbgsym, "Build-Ids"), id);
    let symbols = run("dpkg-deb", &["--contents", &dbgsym.display().to_string()]);
    let path = format!("./usr/lib/debug/.build-id/{}/{}.debug", &id[..2], &id[2..]);
    assert!(symbols.contains(&path), "{path} in the dbgsym:\n{symbols}");
}

#[test]
fn lintian_accepts_the_packages() {
    let Some((deb, dbgsym, _)) = packages() else {
        return;
    };
    // Every accepted tag is overridden, with its reason, in the package's
    // lintian-overrides (src-tauri/packaging/gateway/lintian-overrides).
    let output = Command::new("lintian")
        .args(["--tag-display-limit", "0", "--fail-on", "warning"])
        .arg(&deb)
        .arg(&dbgsym)
        .output()
        .expect("lintian is missing: `cargo xtask setup` installs it");
    let said = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success() && said.trim().is_empty(),
        "lintian: {said}{}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// The systemctl stand-in installed in the throwaway root (see the module doc).
const SYSTEMCTL: &str = r#"#!/bin/bash
# systemctl stand-in (tests/src/packages.rs): runs tocsin-gateway.service's ExecStart
# as its User with its Environment, and logs every call in /run/systemctl-shim/calls.
set -euo pipefail
state=/run/systemctl-shim
mkdir -p "$state"
echo "$*" >> "$state/calls"
unit=/lib/systemd/system/tocsin-gateway.service
wants=/etc/systemd/system/multi-user.target.wants
alive() {
  [ -f "$state/pid" ] || return 1
  local pid; pid=$(cat "$state/pid")
  [ -d "/proc/$pid" ] && ! grep -q '^State:.*Z' "/proc/$pid/status"
}
start() {
  alive && return 0
  local user exec_start
  user=$(sed -n 's/^User=//p' "$unit")
  exec_start=$(sed -n 's/^ExecStart=//p' "$unit")
  mapfile -t envs < <(sed -n 's/^Environment=//p' "$unit")
  : > "$state/log"
  setpriv --reuid="$user" --regid="$user" --init-groups \
    env -i PATH=/usr/bin:/bin "${envs[@]}" $exec_start >>"$state/log" 2>&1 </dev/null &
  echo $! > "$state/pid"
  for _ in $(seq 300); do
    grep -q 'listening on' "$state/log" && return 0
    alive || { echo "systemctl shim: the gateway exited:" >&2; cat "$state/log" >&2; exit 1; }
    sleep 0.05
  done
  echo "systemctl shim: not listening after 15 s" >&2; cat "$state/log" >&2; exit 1
}
stop() {
  alive || return 0
  local pid; pid=$(cat "$state/pid")
  kill -TERM "$pid"
  for _ in $(seq 400); do alive || { rm -f "$state/pid"; return 0; }; sleep 0.05; done
  echo "systemctl shim: the gateway did not stop within 20 s" >&2; exit 1
}
args=(); now=0
for arg in "$@"; do
  case "$arg" in --now) now=1 ;; --*) ;; *) args+=("$arg") ;; esac
done
case "${args[0]}" in
  daemon-reload) ;;
  is-active) alive ;;
  start) start ;;
  stop) stop ;;
  restart) stop; start ;;
  enable) mkdir -p "$wants"; ln -sf "$unit" "$wants/tocsin-gateway.service"; [ "$now" = 0 ] || start ;;
  disable) rm -f "$wants/tocsin-gateway.service"; [ "$now" = 0 ] || stop ;;
  *) echo "systemctl shim: ${args[0]} not shimmed" >&2; exit 2 ;;
esac
"#;

/// The throwaway root: a holder process in its own mount namespace, the overlay at
/// `<mount>/root` there.
struct Throwaway {
    holder: Child,
    root: PathBuf,
    _dir: tempfile::TempDir,
}

impl Throwaway {
    fn new() -> Throwaway {
        let dir = tempfile::tempdir().expect("tempdir");
        let mount = dir.path().display().to_string();
        let script = format!(
            "set -e; m={mount}; mount -t tmpfs tmpfs $m; mkdir $m/upper $m/work $m/root; \
             mount -t overlay overlay -o lowerdir=/,upperdir=$m/upper,workdir=$m/work $m/root; \
             mount --rbind /dev $m/root/dev; mount -t proc proc $m/root/proc; \
             mount -t tmpfs tmpfs $m/root/run; mount -t tmpfs tmpfs $m/root/tmp; \
             echo ready; exec cat"
        );
        let mut holder = Command::new("unshare")
            .args(["--mount", "--propagation", "private", "sh", "-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("unshare (util-linux) runs");
        let mut line = String::new();
        BufReader::new(holder.stdout.as_mut().expect("stdout"))
            .read_line(&mut line)
            .expect("the holder's first line");
        if line.trim() != "ready" {
            let _ = holder.kill();
            let output = holder.wait_with_output().expect("holder output");
            panic!(
                "the throwaway root could not be mounted (root and overlayfs are needed): {}",
                String::from_utf8_lossy(&output.stderr)
            );
        }
        Throwaway {
            holder,
            root: dir.path().join("root"),
            _dir: dir,
        }
    }

    /// A path inside the throwaway root, as seen from outside (through the holder).
    fn path(&self, inside: &str) -> PathBuf {
        let outside = format!("/proc/{}/root{}", self.holder.id(), self.root.display());
        PathBuf::from(outside).join(inside.trim_start_matches('/'))
    }

    /// `sh -c script` as root in the throwaway root; (success, stdout + stderr).
    fn try_sh(&self, script: &str) -> (bool, String) {
        let output = Command::new("nsenter")
            .arg(format!("--target={}", self.holder.id()))
            .args(["--mount", "--", "chroot"])
            .arg(&self.root)
            .args(["/bin/sh", "-c", script])
            .env_clear()
            .env(
                "PATH",
                "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
            )
            .env("LC_ALL", "C.UTF-8")
            .output()
            .expect("nsenter runs");
        let said = String::from_utf8_lossy(&output.stdout).into_owned()
            + &String::from_utf8_lossy(&output.stderr);
        println!("# {script}\n{said}");
        (output.status.success(), said)
    }

    fn sh(&self, script: &str) -> String {
        let (ok, said) = self.try_sh(script);
        assert!(ok, "`{script}` failed in the throwaway root:\n{said}");
        said
    }

    /// The gateway CLI as the `tocsin` user on the package's data dir.
    fn gateway(&self, args: &str) -> String {
        self.sh(&format!(
            "runuser -u tocsin -- tocsin-gateway --data-dir /var/lib/tocsin {args}"
        ))
    }

    fn copy_in(&self, from: &Path) -> String {
        let name = from.file_name().expect("a file name").to_string_lossy();
        std::fs::copy(from, self.path(&format!("/tmp/{name}"))).expect("copied into the root");
        format!("/tmp/{name}")
    }

    fn systemctl_calls(&self) -> String {
        std::fs::read_to_string(self.path("/run/systemctl-shim/calls")).unwrap_or_default()
    }
}

impl Drop for Throwaway {
    fn drop(&mut self) {
        // The gateway, if a failed assertion left it running: the stand-in stops it.
        if self.path("/run/systemctl-shim/pid").exists() {
            let _ = self.try_sh("systemctl stop tocsin-gateway.service");
        }
        drop(self.holder.stdin.take());
        let _ = self.holder.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

#[tokio::test(flavor = "multi_thread")]
async fn gateway_package_installs_upgrades_keeping_data_and_purges_only_on_purge() {
    let Some((deb, _, upgrade)) = packages() else {
        return;
    };
    let uid = run("id", &["-u"]);
    assert_eq!(
        uid.trim(),
        "0",
        "installing packages needs root (CI runs as root)"
    );
    let root = Throwaway::new();
    let deb = root.copy_in(&deb);
    let upgrade = root.copy_in(&upgrade);

    // First install, no systemd: the user, the 0700 data dir, init, the next steps.
    let said = root.sh(&format!("dpkg -i {deb}"));
    assert!(
        said.contains("systemctl enable --now tocsin-gateway"),
        "next steps: {said}"
    );
    let passwd = root.sh("getent passwd tocsin");
    assert!(passwd.contains(":/var/lib/tocsin:"), "home: {passwd}");
    let stat = root.sh("stat -c '%U:%G %a' /var/lib/tocsin /var/lib/tocsin/config.toml");
    assert_eq!(
        stat.lines().collect::<Vec<_>>(),
        ["tocsin:tocsin 700", "tocsin:tocsin 600"]
    );

    // systemd "runs" from now on; the admin provisions the firm and starts the unit.
    std::fs::create_dir_all(root.path("/run/systemd/system")).expect("dir");
    let shim = root.path("/usr/local/sbin/systemctl");
    std::fs::create_dir_all(shim.parent().expect("parent")).expect("dir");
    std::fs::File::create(&shim)
        .and_then(|mut file| file.write_all(SYSTEMCTL.as_bytes()))
        .expect("the stand-in written");
    root.sh("chmod 0755 /usr/local/sbin/systemctl");
    let port = free_port();
    root.gateway(&format!(
        "tenant add dupont --name 'Cabinet Dupont' && runuser -u tocsin -- sed -i 's/^listen = .*/listen = \"127.0.0.1:{port}\"/' /var/lib/tocsin/config.toml"
    ));
    root.sh(&format!(
        "printf '%s\\n' '{PASSWORD}' | runuser -u tocsin -- tocsin-gateway --data-dir /var/lib/tocsin user add --tenant dupont --email marie@dupont.example --password-stdin"
    ));
    let key = root.gateway("key create --tenant dupont --name logiciel");
    // Stdout then stderr: the key is the line that looks like one.
    let key = key
        .lines()
        .find(|line| line.starts_with("tsk_"))
        .unwrap_or_else(|| panic!("no key printed: {key}"))
        .trim()
        .to_owned();
    root.sh("systemctl enable --now tocsin-gateway");

    let base = format!("http://127.0.0.1:{port}");
    let api = Api::new(base.clone());
    let reply = api.login_raw("marie@dupont.example", PASSWORD).await;
    reply.expect_status(200, "login");
    let token = reply.body["access_token"]
        .as_str()
        .expect("a token")
        .to_owned();
    let published = api
        .publish_ok(
            &key,
            &publisher::email("tenant:dupont", "Avant la mise à jour"),
        )
        .await;
    let ws_url = format!("ws://127.0.0.1:{port}{}", tocsin_protocol::WS_PATH);
    let (mut client, _, _) = WsClient::connect_ready(&ws_url, &token, BTreeMap::new()).await;
    let pid_before = std::fs::read_to_string(root.path("/run/systemctl-shim/pid")).expect("pid");

    // The upgrade: the running gateway is restarted gracefully by postinst.
    let said = root.sh(&format!("dpkg -i {upgrade}"));
    assert!(said.contains("restarted"), "postinst restarts: {said}");
    let (closed, _) = client.expect_close(STEP).await;
    assert_eq!(
        closed.code,
        Some(4000),
        "clients are told going away: {closed:?}"
    );
    let pid_after = std::fs::read_to_string(root.path("/run/systemctl-shim/pid")).expect("pid");
    assert_ne!(pid_before, pid_after, "a new gateway process serves");
    let version = root.sh("dpkg-query -W -f='${Version}' tocsin-gateway");
    assert_eq!(version.trim(), "0.1.0+upgrade1");

    // The account (login), the key (a publish) and the notification (history) survived.
    let token = poll_until(STEP, "login after the upgrade", || {
        let api = Api::new(base.clone());
        async move {
            let reply = api.login_raw("marie@dupont.example", PASSWORD).await;
            (reply.status == 200)
                .then(|| reply.body["access_token"].as_str().map(str::to_owned))
                .flatten()
        }
    })
    .await;
    api.publish_ok(
        &key,
        &publisher::email("tenant:dupont", "Après la mise à jour"),
    )
    .await;
    let history = api.history(&token, "tenant:dupont", None, None).await;
    history.expect_status(200, "history");
    let text = history.body.to_string();
    assert!(
        text.contains(&published.id) && text.contains("Après la mise à jour"),
        "history keeps the first notification: {text}"
    );

    // remove: stopped, data kept; purge: data gone.
    let said = root.sh("dpkg -r tocsin-gateway");
    assert!(said.contains("is kept"), "{said}");
    assert!(
        root.systemctl_calls()
            .contains("stop tocsin-gateway.service")
    );
    assert!(
        !root.path("/run/systemctl-shim/pid").exists(),
        "prerm stopped the gateway"
    );
    assert!(
        root.path("/var/lib/tocsin/tocsin.db").exists()
            || root.path("/var/lib/tocsin/config.toml").exists()
    );
    root.sh("dpkg -P tocsin-gateway");
    assert!(
        !root.path("/var/lib/tocsin").exists(),
        "purge deletes the data dir"
    );
    println!("systemctl calls:\n{}", root.systemctl_calls());
}
