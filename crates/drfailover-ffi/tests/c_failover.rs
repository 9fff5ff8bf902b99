//! The proof: a C program linked against libdrfailover.so keeps writing through a kill -9 of
//! the primary and the promotion of the replica, in the same process, and sees the failover
//! in its event callback. Also: no write succeeds while only the read-only replica is left.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use drfailover_testkit::cprog::{built_library_dir, compile_c, monotonic_ns, RunningProgram};
use drfailover_testkit::Topology;

#[derive(Debug, Default)]
struct Transcript {
    ok: Vec<(u64, u64)>,
    unknown: Vec<u64>,
    events: Vec<String>,
    other: Vec<String>,
}

fn record(t: &mut Transcript, line: &str) {
    let parts: Vec<&str> = line.splitn(3, ' ').collect();
    match parts.as_slice() {
        ["ok", id, ns] => t.ok.push((id.parse().unwrap(), ns.parse().unwrap())),
        ["unknown", id, _] => t.unknown.push(id.parse().unwrap()),
        ["event", _, json] => t.events.push(json.to_string()),
        _ => t.other.push(line.to_string()),
    }
}

#[test]
fn c_program_survives_kill9_failover_without_restart() {
    let build = tempfile::tempdir().unwrap();
    let lib_dir = built_library_dir().unwrap_or_else(|e| panic!("{e}"));
    let program = compile_c("tests/c/failover_loop.c", &lib_dir, build.path())
        .unwrap_or_else(|e| panic!("{e}"));
    let mut topo =
        Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"));
    topo.node(0)
        .sql(
            "CREATE TABLE app.t (id INT PRIMARY KEY, at TIMESTAMP(6) DEFAULT CURRENT_TIMESTAMP(6))",
        )
        .unwrap();
    topo.wait_replicated(0, 1).unwrap();

    let dsn = topo.dsn("probe_interval_ms=100&failover_timeout_ms=20000");
    let mut run = RunningProgram::spawn(&program, &[&dsn, "50"]).unwrap();
    let mut t = Transcript::default();

    // Let it write for a while on the primary.
    let deadline = Instant::now() + Duration::from_secs(20);
    while t.ok.len() < 50 {
        let line = run
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("no writes before the fault; stderr:\n{}", run.stderr()));
        record(&mut t, &line);
    }

    topo.kill9(0).unwrap();
    let killed_ns = monotonic_ns();
    // Only the read-only replica is left: nothing may be written to it for a while.
    let replica_rows_at_kill = topo
        .node(1)
        .sql_value("SELECT COUNT(*) FROM app.t")
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let replica_rows_before_promotion = topo
        .node(1)
        .sql_value("SELECT COUNT(*) FROM app.t")
        .unwrap();
    assert_eq!(
        replica_rows_at_kill, replica_rows_before_promotion,
        "rows appeared on the read-only replica"
    );
    let promote_start_ns = monotonic_ns();
    topo.promote(1).unwrap();
    let promoted_ns = monotonic_ns();

    let status = run.wait(Duration::from_secs(60));
    while let Ok(line) = run.lines.try_recv() {
        record(&mut t, &line);
    }
    let status = status.unwrap_or_else(|e| panic!("{e}; stderr:\n{}", run.stderr()));
    assert!(
        status.success(),
        "C program failed ({status}); stderr:\n{}\nlast lines: {:?}",
        run.stderr(),
        t.other
    );
    assert!(t.other.iter().any(|l| l == "done"), "{:?}", t.other);

    // Reverse check: no write succeeded between the kill and the promotion.
    let during: Vec<_> =
        t.ok.iter()
            .filter(|(_, ns)| *ns > killed_ns && *ns < promote_start_ns)
            .collect();
    assert!(
        during.is_empty(),
        "writes succeeded while only a read-only replica existed: {during:?}"
    );

    // The failover was seen by the callback, and writes resumed on the new primary.
    assert!(
        t.events
            .iter()
            .any(|e| e.contains("\"failover_completed\"")),
        "{:?}",
        t.events
    );
    let first_after =
        t.ok.iter()
            .find(|(_, ns)| *ns > killed_ns)
            .expect("a successful write after the kill");
    let after_kill_ms = (first_after.1 - killed_ns) as f64 / 1e6;
    let after_promotion_ms = (first_after.1.saturating_sub(promoted_ns)) as f64 / 1e6;
    eprintln!(
        "kill -9 -> first successful write: {after_kill_ms:.1} ms ({after_promotion_ms:.1} ms after the promotion finished; the harness waited 500 ms before promoting)"
    );

    // Every acknowledged write is on the new primary, none twice (primary key), none lost.
    let rows = topo.node(1).sql("SELECT id FROM app.t").unwrap();
    let present: HashSet<u64> = (0..rows.num_rows())
        .map(|r| rows.text(r, 0).unwrap().parse().unwrap())
        .collect();
    for (id, _) in &t.ok {
        assert!(present.contains(id), "acknowledged write {id} lost");
    }
    let acked: HashSet<u64> = t.ok.iter().map(|(id, _)| *id).collect();
    for id in &present {
        assert!(
            acked.contains(id) || t.unknown.contains(id),
            "row {id} was never reported"
        );
    }
}
