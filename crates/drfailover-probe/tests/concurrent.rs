//! A [`ProbeSet`] probes every node at once from one thread: a frozen node's deadline never
//! delays the others' results. Real servers; bounds are generous (a shared, noisy machine).

use std::time::{Duration, Instant};

use drfailover_mysql::ConnectOptions;
use drfailover_probe::{Check, Deadline, MonitorProbe, OutcomeClass, ProbeSet};
use drfailover_testkit::{Node, Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

fn topology() -> Topology {
    Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"))
}

fn monitor(node: &Node) -> MonitorProbe {
    MonitorProbe::new(
        ConnectOptions::tcp(node.ip().to_string(), node.port())
            .user(APP_USER)
            .password(APP_PASSWORD)
            .database(APP_DATABASE),
    )
}

#[test]
fn a_frozen_node_does_not_delay_the_others() {
    let mut topo = topology();
    let mut set = ProbeSet::new(vec![monitor(topo.node(0)), monitor(topo.node(1))]);
    // Both connected and answering first.
    let first = set.probe_all(&[
        (0, Check::Role, Deadline::after(Duration::from_secs(2))),
        (1, Check::Role, Deadline::after(Duration::from_secs(2))),
    ]);
    assert_eq!(first[0].class, OutcomeClass::Up, "{:?}", first[0]);
    assert_eq!(first[1].class, OutcomeClass::ReadOnly, "{:?}", first[1]);
    assert!(first[1].role.as_ref().is_some_and(|r| r.read_only));

    topo.freeze(0).unwrap();
    let long = Duration::from_millis(1500);
    let started = Instant::now();
    set.start(0, Check::Role, Deadline::after(long));
    set.start(1, Check::Role, Deadline::after(long));
    let woken = set.wait(None, None);
    let replica_after = started.elapsed();
    assert_eq!(woken.finished.len(), 1, "{woken:?}");
    let (i, obs) = &woken.finished[0];
    assert_eq!(*i, 1, "the live replica answers first: {woken:?}");
    assert_eq!(obs.class, OutcomeClass::ReadOnly, "{obs:?}");
    assert!(
        replica_after < long / 2,
        "the replica's answer waited for the frozen node: {replica_after:?}"
    );
    assert!(set.is_running(0));
    let woken = set.wait(None, None);
    let frozen_after = started.elapsed();
    assert_eq!(woken.finished.len(), 1, "{woken:?}");
    let (i, obs) = &woken.finished[0];
    assert_eq!((*i, obs.class), (0, OutcomeClass::TimedOut), "{obs:?}");
    assert!(
        frozen_after >= long - Duration::from_millis(5),
        "{frozen_after:?}"
    );
    assert!(
        frozen_after < long + Duration::from_secs(1),
        "{frozen_after:?}"
    );
    assert!(!set.any_running());
    topo.thaw(0).unwrap();
    // The frozen node's probe reconnects after its connection was abandoned.
    let again = set.probe_all(&[(0, Check::Ping, Deadline::after(Duration::from_secs(3)))]);
    assert_eq!(again[0].class, OutcomeClass::Up, "{:?}", again[0]);
}

#[test]
fn a_batch_mixes_checks_and_a_dead_node() {
    let mut topo = topology();
    let mut set = ProbeSet::new(vec![monitor(topo.node(0)), monitor(topo.node(1))]);
    topo.kill9(0).unwrap();
    let d = || Deadline::after(Duration::from_secs(2));
    let results = set.probe_all(&[
        (0, Check::Role, d()),
        (1, Check::Query("SELECT 1".into()), d()),
    ]);
    assert_eq!(results[0].class, OutcomeClass::Refused, "{:?}", results[0]);
    assert_eq!(results[1].class, OutcomeClass::Up, "{:?}", results[1]);
    assert_eq!(results[1].detail, "1 rows");
    assert!(set.probe(1).is_connected() && !set.probe(0).is_connected());
}

#[test]
fn a_doorbell_interrupts_the_wait() {
    use std::io::Write;
    use std::os::fd::AsRawFd;
    let mut topo = topology();
    let mut set = ProbeSet::new(vec![monitor(topo.node(0))]);
    topo.freeze(0).unwrap();
    let (mut ring, bell) = std::os::unix::net::UnixStream::pair().unwrap();
    set.start(0, Check::Role, Deadline::after(Duration::from_secs(3)));
    let ringer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(100));
        ring.write_all(b"x").unwrap();
    });
    let started = Instant::now();
    let woken = set.wait(None, Some(bell.as_raw_fd()));
    assert!(woken.doorbell && woken.finished.is_empty(), "{woken:?}");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    assert!(set.is_running(0));
    ringer.join().unwrap();
    set.cancel(0);
    assert!(!set.any_running());
    topo.thaw(0).unwrap();
}
