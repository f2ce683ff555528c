//! The gateway's systemd unit (src-tauri/packaging/tocsin-gateway.service, shipped in
//! the .deb) checked by systemd itself: `systemd-analyze verify` accepts it (with the
//! real binary at its ExecStart), and `systemd-analyze security` scores its
//! confinement at most 2.0 ("OK"; an unconfined service scores ~9.6).

use std::process::Command;

/// systemd's exposure score the unit must stay under, in tenths (an integer for
/// `--threshold`: 20 is 2.0; the unit scores 1.2 on Debian 12).
const MAX_EXPOSURE: &str = "20";

/// The unit with ExecStart pointing at the binary under test, written to a temp dir.
fn unit_under_test() -> (tempfile::TempDir, std::path::PathBuf) {
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../src-tauri/packaging/tocsin-gateway.service"
    ))
    .expect("the unit file");
    let binary = tocsin_e2e::binary::gateway_binary();
    let unit = unit.replace("/usr/bin/tocsin-gateway", &binary.display().to_string());
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("tocsin-gateway.service");
    std::fs::write(&path, unit).expect("written");
    (dir, path)
}

fn systemd_analyze() -> Command {
    let found = Command::new("systemd-analyze").arg("--version").output();
    assert!(
        found.is_ok_and(|out| out.status.success()),
        "systemd-analyze is missing: run `cargo xtask setup` (it installs Debian's systemd package)"
    );
    Command::new("systemd-analyze")
}

#[test]
fn systemd_accepts_the_unit_and_scores_it_confined() {
    let (_dir, unit) = unit_under_test();
    let verified = systemd_analyze()
        .arg("verify")
        .arg(&unit)
        .output()
        .expect("systemd-analyze runs");
    let said = String::from_utf8_lossy(&verified.stderr).into_owned()
        + &String::from_utf8_lossy(&verified.stdout);
    assert!(
        verified.status.success() && said.trim().is_empty(),
        "verify: {said}"
    );

    let scored = systemd_analyze()
        .args(["security", "--offline=true", "--no-pager"])
        .arg(format!("--threshold={MAX_EXPOSURE}"))
        .arg(&unit)
        .output()
        .expect("systemd-analyze runs");
    let report = String::from_utf8_lossy(&scored.stdout);
    assert!(
        scored.status.success(),
        "exposure above {MAX_EXPOSURE}:\n{report}{}",
        String::from_utf8_lossy(&scored.stderr)
    );
    for setting in [
        "ProtectSystem=strict",
        "NoNewPrivileges=true",
        "ReadWritePaths=/var/lib/tocsin",
    ] {
        let text = std::fs::read_to_string(&unit).expect("unit");
        assert!(text.contains(setting), "the unit keeps {setting}");
    }
}
