//! The harness itself on real servers: replication, semi-sync, fencing, faults, cleanup.

use std::time::{Duration, Instant};

use drfailover_mysql::{ConnectOptions, Connection, ErrorClass};
use drfailover_testkit::{eventually, NodeRole, Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

fn app_options(topo: &Topology, i: usize) -> ConnectOptions {
    let n = topo.node(i);
    ConnectOptions::tcp(n.ip().to_string(), n.port())
        .user(APP_USER)
        .password(APP_PASSWORD)
        .database(APP_DATABASE)
}

fn app(topo: &Topology, i: usize) -> Result<Connection, drfailover_mysql::Error> {
    Connection::connect(&app_options(topo, i))
}

#[test]
fn primary_replica_replicates_with_semi_sync_and_fences_the_app_user() {
    let started = Instant::now();
    let topo = Topology::primary_replica().expect("topology");
    eprintln!("topology up in {:?}", started.elapsed());

    let status = topo
        .node(0)
        .sql("SHOW STATUS LIKE 'Rpl_semi_sync_master_status'")
        .unwrap();
    assert_eq!(status.text(0, 1), Some("ON"));
    let wait_point = topo
        .node(0)
        .sql_value("SELECT @@rpl_semi_sync_master_wait_point")
        .unwrap();
    assert_eq!(wait_point.as_deref(), Some("AFTER_SYNC"));

    let mut p = app(&topo, 0).expect("app connects to primary");
    p.query("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(20))")
        .unwrap();
    p.query("INSERT INTO t VALUES (1, 'one'), (2, NULL)")
        .unwrap();
    topo.wait_replicated(0, 1).unwrap();

    let mut r = app(&topo, 1).expect("app connects to replica");
    let rows = r.query("SELECT id, v FROM t ORDER BY id").unwrap();
    assert_eq!(rows.num_rows(), 2);
    assert_eq!(rows.text(0, 1), Some("one"));
    assert!(rows.is_null(1, 1));
    let err = r.query("INSERT INTO t VALUES (3, 'x')").unwrap_err();
    assert_eq!(err.class(), ErrorClass::ReadOnly, "{err}");

    // Fencing the primary binds the app user too (no READ ONLY ADMIN).
    topo.fence(0).unwrap();
    let err = p.query("INSERT INTO t VALUES (4, 'y')").unwrap_err();
    assert_eq!(err.errno(), 1290, "{err}");
}

#[test]
fn kill9_then_promote_then_restart_old_primary_as_replica() {
    let mut topo = Topology::primary_replica().expect("topology");
    let mut p = app(&topo, 0).unwrap();
    p.query("CREATE TABLE t (id INT PRIMARY KEY)").unwrap();
    p.query("INSERT INTO t VALUES (1)").unwrap();
    topo.wait_replicated(0, 1).unwrap();

    topo.kill9(0).unwrap();
    let err = p.query("INSERT INTO t VALUES (2)").unwrap_err();
    assert_eq!(err.class(), ErrorClass::ConnectionLost, "{err}");
    assert!(app(&topo, 0).is_err(), "a killed node refuses connections");

    let t = Instant::now();
    topo.promote(1).unwrap();
    eprintln!("promotion took {:?}", t.elapsed());
    let mut q = app(&topo, 1).unwrap();
    q.query("INSERT INTO t VALUES (2)").unwrap();

    let t = Instant::now();
    topo.restart(0, NodeRole::Replica, Some(1)).unwrap();
    eprintln!("restart took {:?}", t.elapsed());
    topo.wait_replicated(1, 0).unwrap();
    let ro = topo.node(0).sql_value("SELECT @@read_only").unwrap();
    assert_eq!(ro.as_deref(), Some("1"));
    let n = topo
        .node(0)
        .sql_value("SELECT COUNT(*) FROM app.t")
        .unwrap();
    assert_eq!(n.as_deref(), Some("2"));
}

#[test]
fn frozen_server_times_out_within_the_deadline_and_thaws() {
    let mut topo = Topology::primary_replica().expect("topology");
    topo.freeze(0).unwrap();
    let opts = app_options(&topo, 0);
    let t = Instant::now();
    let err = Connection::connect_within(
        &opts,
        drfailover_mysql::Deadline::after(Duration::from_millis(150)),
    )
    .unwrap_err();
    let took = t.elapsed();
    assert_eq!(err.class(), ErrorClass::Timeout, "{err}");
    assert!(
        took < Duration::from_secs(2),
        "deadline not honoured: {took:?}"
    );
    topo.thaw(0).unwrap();
    assert!(app(&topo, 0).is_ok());
}

#[test]
fn dropping_a_topology_leaves_no_server_running() {
    let topo = Topology::primary_replica().expect("topology");
    let pids: Vec<u32> = topo.nodes().iter().filter_map(|n| n.pid()).collect();
    assert_eq!(pids.len(), 2);
    drop(topo);
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "mariadbd {pid} survived the topology"
        );
    }
}

#[test]
fn lab_topology_replicates_and_blackhole_silences_the_primary() {
    let topo = Topology::primary_replica_in_lab().expect("lab topology");
    assert!(topo.node(0).ip().to_string().starts_with("169.254."));
    let mut p = app(&topo, 0).expect("app reaches the primary in the lab");
    p.query("CREATE TABLE t (id INT PRIMARY KEY)").unwrap();
    p.query("INSERT INTO t VALUES (1)").unwrap();
    topo.wait_replicated(0, 1).unwrap();

    topo.blackhole(0).unwrap();
    let opts = app_options(&topo, 0);
    let t = Instant::now();
    let err = Connection::connect_within(
        &opts,
        drfailover_mysql::Deadline::after(Duration::from_millis(200)),
    )
    .unwrap_err();
    assert_eq!(err.class(), ErrorClass::Timeout, "{err}");
    assert!(t.elapsed() < Duration::from_secs(2));
    // The replica (not blackholed) still answers.
    assert!(app(&topo, 1).is_ok());
    topo.heal(0).unwrap();
    assert!(app(&topo, 0).is_ok());
}

#[test]
fn a_crashed_server_is_reported_with_its_error_log() {
    let topo = Topology::primary_replica().expect("topology");
    let pid = topo.node(1).pid().expect("running");
    // SIGSEGV runs mariadbd's own fatal-signal handler, as a real crash would.
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGSEGV,
    )
    .unwrap();
    let err = eventually(
        "the crashed server stops answering",
        Duration::from_secs(10),
        || match topo.node(1).sql("SELECT 1") {
            Err(e) => Ok(e),
            Ok(_) => Err("still answers".to_string()),
        },
    );
    assert!(err.contains("has died"), "{err}");
    assert!(err.contains("got signal 11"), "{err}");
}

/// The result buffer (names, values, NULLs, NUL terminators, shapes) on a real server.
#[test]
fn query_results_keep_names_values_and_nulls() {
    let topo = Topology::primary_replica().expect("topology");
    let mut c = app(&topo, 0).unwrap();
    let r = c
        .query("SELECT 1 AS one, NULL AS nothing, '' AS empty, 'héllo' AS word")
        .unwrap();
    assert_eq!((r.num_rows(), r.num_fields()), (1, 4));
    assert_eq!(r.field_name(0), Some("one"));
    assert_eq!(r.field_name_with_nul(3), Some(&b"word\0"[..]));
    assert_eq!(r.column("empty"), Some(2));
    assert_eq!(r.text(0, 0), Some("1"));
    assert!(r.is_null(0, 1) && r.value(0, 1).is_none());
    assert_eq!(r.value_with_nul(0, 2), Some(&b"\0"[..]));
    assert_eq!(r.text(0, 3), Some("héllo"));
    assert!(r.value(1, 0).is_none() && r.value(0, 4).is_none() && !r.is_null(0, 4));

    c.query("CREATE TABLE shapes (id INT PRIMARY KEY, v VARCHAR(300) NULL)")
        .unwrap();
    let inserted = c
        .query(
            "INSERT INTO shapes SELECT seq, IF(seq % 3 = 0, NULL, REPEAT('x', seq % 300)) \
             FROM seq_1_to_2000",
        )
        .unwrap();
    assert_eq!(inserted.affected_rows(), 2000);
    assert_eq!(inserted.num_fields(), 0);
    let all = c.query("SELECT id, v FROM shapes ORDER BY id").unwrap();
    assert_eq!(all.num_rows(), 2000);
    for row in 0..2000 {
        let id: usize = all.text(row, 0).unwrap().parse().unwrap();
        assert_eq!(id, row + 1);
        if id.is_multiple_of(3) {
            assert!(all.is_null(row, 1));
        } else {
            assert_eq!(all.value(row, 1).unwrap().len(), id % 300);
            assert_eq!(all.value_with_nul(row, 1).unwrap().last(), Some(&0));
        }
    }
    let none = c.query("SELECT id FROM shapes WHERE id < 0").unwrap();
    assert_eq!((none.num_rows(), none.num_fields()), (0, 1));
    assert_eq!(none.field_name(0), Some("id"));
}
