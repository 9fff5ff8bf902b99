//! The CLI connects with the library's own mapping from configuration to connection options:
//! `ssl_mode=REQUIRED` against a server without TLS is refused by `drfailover probe` (it used
//! to be dropped, and the probe succeeded in plain text).

use std::process::Command;

use drfailover_testkit::Topology;

#[test]
fn probe_honours_ssl_mode_from_the_dsn() {
    let topo = Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"));
    let probe = |extra: &str| {
        Command::new(env!("CARGO_BIN_EXE_drfailover"))
            .args(["probe", "--json", &topo.dsn(extra)])
            .output()
            .expect("run drfailover probe")
    };
    let plain = probe("ssl_mode=DISABLED");
    let stdout = String::from_utf8_lossy(&plain.stdout);
    assert_eq!(plain.status.code(), Some(0), "{stdout}");
    assert!(stdout.contains("\"writer\""), "{stdout}");

    let required = probe("ssl_mode=REQUIRED");
    let stdout = String::from_utf8_lossy(&required.stdout);
    assert_eq!(
        required.status.code(),
        Some(1),
        "no writer over TLS expected: {stdout}"
    );
    assert!(stdout.contains("tls_failed"), "{stdout}");
}
