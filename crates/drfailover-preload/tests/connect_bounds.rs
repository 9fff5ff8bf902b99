//! A connect the library makes for a program is bounded even when the node it chose froze
//! after the choice and before its greeting: the program gets its usual connect error within
//! the library's bounds instead of waiting forever.

mod common;

use std::time::Duration;

use common::*;
use drfailover_testkit::Topology;

/// The writer is frozen (SIGSTOP) while the monitor, probing every 30 s, still believes it
/// healthy: the program's next connect (no connect timeout of its own) goes there, waits at
/// most the DSN's `connect_timeout_ms` (rounded up to the client library's whole seconds) for
/// the greeting, and then, with no other writer, fails after `failover_timeout_ms`.
#[test]
fn a_connect_to_a_writer_frozen_before_its_greeting_ends_within_the_bounds() {
    let dir = tempfile::tempdir().expect("temp dir");
    let program = build_c_program("connect_on_signal", dir.path(), None);
    let mut topo = Topology::primary_replica().expect("MariaDB topology (install mariadb-server)");
    let go = dir.path().join("go");
    let args = node_args(&topo, 0, &[&go.to_string_lossy()]);
    let mut env = preload_env(&topo);
    env.retain(|(k, _)| k != "DRFAILOVER_DSN");
    env.push((
        "DRFAILOVER_DSN".into(),
        topo.dsn("probe_interval_ms=30000&connect_timeout_ms=1000&failover_timeout_ms=3000"),
    ));
    let mut running = Program::spawn(&program, &args, &env).expect("start the program");
    running
        .wait_for("connected", 1, Duration::from_secs(60))
        .unwrap();
    topo.freeze(0).expect("SIGSTOP the primary");
    std::fs::write(&go, b"").expect("signal the program");
    let status = running.wait(Duration::from_secs(60));
    topo.thaw(0).expect("SIGCONT the primary");
    let status = status.unwrap_or_else(|e| {
        panic!("the second connect never returned (waiting for a frozen node's greeting): {e}")
    });
    assert!(status.success(), "{status}; stderr:\n{}", running.stderr());
    let line = running
        .lines()
        .into_iter()
        .map(|(_, l)| l)
        .find(|l| l.starts_with("second "))
        .expect("the program reported its second connect");
    let words: Vec<&str> = line.split_whitespace().collect();
    assert_eq!(words[1], "fail", "connected to a frozen node? {line}");
    let elapsed_ms: f64 = words[3].parse().expect("elapsed ms");
    println!("{line}");
    // One bounded handshake (1 s) plus the wait for another writer (3 s), with room for a
    // loaded machine; an unbounded one never returns at all.
    assert!(
        elapsed_ms < 15_000.0,
        "the connect took {elapsed_ms} ms: {line}"
    );
}
