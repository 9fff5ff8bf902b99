//! The README's first command, in short mode: a real kill -9 failover with no lost writes.

use std::process::Command;

#[test]
fn demo_short_fails_over_without_losing_acknowledged_writes() {
    let out = Command::new(env!("CARGO_BIN_EXE_drfailover"))
        .args(["demo", "--short"])
        .output()
        .expect("run drfailover demo");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "demo failed ({})\n{stdout}\n{stderr}",
        out.status
    );
    let lost = stdout
        .lines()
        .find(|l| l.contains("acknowledged but lost"))
        .unwrap_or_else(|| panic!("no summary in demo output:\n{stdout}"));
    assert_eq!(lost.split_whitespace().last(), Some("0"), "{stdout}");
    assert!(stdout.contains("event: failover_completed"), "{stdout}");
    assert!(stdout.contains("servers stopped and removed"), "{stdout}");
}

#[test]
fn probe_rejects_a_malformed_dsn_with_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_drfailover"))
        .args(["probe", "mysql://u@h1:notaport/db"])
        .output()
        .expect("run drfailover probe");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("port `notaport`"), "{stderr}");
}
