//! The example systemd unit is valid: `systemd-analyze verify` accepts it, with
//! ExecStart pointed at the binary just built (verify checks that it exists).
//! Skipped, saying so, where systemd-analyze is missing.

mod common;

use std::process::Command;

#[test]
fn example_unit_passes_systemd_analyze_verify() {
    if Command::new("systemd-analyze")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: no systemd-analyze on this machine");
        return;
    }
    let unit = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/examples/systemd/gopherdiscovery.service"
    ))
    .unwrap();
    assert!(unit.contains("ExecStart=/usr/local/bin/gopherdiscovery serve"));
    for option in [
        "NoNewPrivileges=yes",
        "ProtectSystem=strict",
        "DynamicUser=yes",
        "RestrictAddressFamilies=",
    ] {
        assert!(unit.contains(option), "{option} missing");
    }
    let dir = common::Scratch::new("systemd");
    let path = dir.0.join("gopherdiscovery.service");
    std::fs::write(
        &path,
        unit.replace("/usr/local/bin/gopherdiscovery", common::bin()),
    )
    .unwrap();
    let out = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "systemd-analyze verify: {err}");
    assert!(
        !err.contains("gopherdiscovery.service:"),
        "warnings about the unit: {err}"
    );
}
