//! Silent failures, split brain, and many failovers under load — through the public API.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_conn::{Client, Config, Error, Event, EventKind};
use drfailover_testkit::{eventually, EventLog, NodeRole, Topology};

const FAST: &str = "probe_interval_ms=50&failover_timeout_ms=30000&pool_size=32";

/// Writer threads inserting unique ids, recording what was acknowledged and what is unknown.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u64>>>,
    unknown: Arc<Mutex<Vec<u64>>>,
    errors: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Load {
    fn start(client: &Arc<Client>, threads: usize) -> Load {
        let next = Arc::new(AtomicU64::new(1));
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
        let unknown: Arc<Mutex<Vec<u64>>> = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let handles = (0..threads)
            .map(|_| {
                let (client, next) = (client.clone(), next.clone());
                let (stop, acked, unknown, errors) = (
                    stop.clone(),
                    Arc::clone(&acked),
                    Arc::clone(&unknown),
                    Arc::clone(&errors),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        match client.query(&format!("INSERT INTO t (id) VALUES ({id})")) {
                            Ok(_) => acked.lock().unwrap().push(id),
                            Err(Error::OutcomeUnknown(_)) => unknown.lock().unwrap().push(id),
                            Err(e) => {
                                errors.lock().unwrap().push(format!("{id}: {e}"));
                                std::thread::sleep(Duration::from_millis(5));
                            }
                        }
                    }
                })
            })
            .collect();
        Load {
            stop,
            acked,
            unknown,
            errors,
            threads: handles,
        }
    }

    fn acked_count(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Wait until `n` more writes than now were acknowledged (bounded).
    fn wait_progress(&self, n: usize, within: Duration) -> Duration {
        let target = self.acked_count() + n;
        let t = Instant::now();
        eventually(
            &format!("{n} more acknowledged writes"),
            within,
            || match self.acked_count() >= target {
                true => Ok(()),
                false => Err(format!(
                    "first error: {:?}",
                    self.errors.lock().unwrap().first()
                )),
            },
        );
        t.elapsed()
    }

    fn stop(self) -> (Vec<u64>, Vec<u64>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads {
            t.join().unwrap();
        }
        let take = |m: &Arc<Mutex<Vec<u64>>>| m.lock().unwrap().clone();
        (
            take(&self.acked),
            take(&self.unknown),
            self.errors.lock().unwrap().clone(),
        )
    }
}

/// Every acknowledged write is on `node`; every row there was acknowledged or unknown.
fn verify(topo: &Topology, node: usize, acked: &[u64], unknown: &[u64]) {
    topo.node(node)
        .assert_writes("SELECT id FROM app.t", acked, unknown);
}

fn recording_client(dsn: &str) -> (Arc<Client>, EventLog<Event>) {
    let events = EventLog::new();
    let e2 = events.clone();
    let client = Client::builder(Config::from_dsn(dsn).unwrap())
        .on_event(move |e| e2.push(e.clone()))
        .connect()
        .unwrap();
    client.wait_ready(Duration::from_secs(5)).unwrap();
    client
        .query("CREATE TABLE IF NOT EXISTS t (id BIGINT PRIMARY KEY)")
        .unwrap();
    (Arc::new(client), events)
}

#[test]
fn frozen_writer_is_abandoned_and_its_return_is_split_brain_without_flip_flop() {
    let mut topo =
        Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"));
    let (client, events) = recording_client(&topo.dsn(FAST));
    let load = Load::start(&client, 4);
    load.wait_progress(200, Duration::from_secs(10));
    let g1 = client.state().generation;

    topo.freeze(0).unwrap();
    let frozen = Instant::now();
    // In-flight statements are blocked on the frozen server until the monitor declares it
    // down and shuts their sockets; then they report outcome unknown, never success.
    let g = client
        .wait_generation(g1, Duration::from_secs(2))
        .map(|_| ());
    assert!(
        g.is_err(),
        "no writable node yet, the generation must not move"
    );
    assert!(
        !client.state().ready,
        "a frozen writer must be declared down within the budget"
    );
    let detected = frozen.elapsed();
    topo.promote(1).unwrap();
    let g2 = client.wait_generation(g1, Duration::from_secs(10)).unwrap();
    let resumed = load.wait_progress(50, Duration::from_secs(10));
    eprintln!("SIGSTOP: writer abandoned within {detected:?}; writes resumed {resumed:?} after the promotion");
    assert_eq!(
        client.state().writer.unwrap().to_string(),
        topo.node(1).addr().to_string()
    );
    assert!(
        client.stats().aborted > 0 || !load.unknown.lock().unwrap().is_empty(),
        "in-flight work was not aborted"
    );

    // The old primary comes back, still writable: split brain. Keep the current writer.
    topo.thaw(0).unwrap();
    events.wait_for("split_brain", Duration::from_secs(10), |e| {
        e.kind == EventKind::SplitBrain
    });
    load.wait_progress(200, Duration::from_secs(10));
    assert_eq!(
        client.state().generation,
        g2,
        "flip-flopped back to the old primary"
    );
    assert_eq!(
        client.state().writer.unwrap().to_string(),
        topo.node(1).addr().to_string()
    );
    let (acked, unknown, errors) = load.stop();
    assert!(errors.is_empty(), "{errors:?}");
    // Writes acknowledged before the freeze were semi-sync replicated; after it, all went to
    // the new primary: every acknowledged write is there.
    verify(&topo, 1, &acked, &unknown);
    client.close();
}

/// A node that is promoted while the frozen writer is only suspect (one probe timed out, not yet
/// declared down) is adopted at once: only a *healthy* writer is kept (docs/ARCHITECTURE.md,
/// "Writer selection").
#[test]
fn a_replica_promoted_while_the_frozen_writer_is_only_suspect_is_adopted_at_once() {
    let mut topo =
        Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"));
    // A long probe deadline: the frozen writer stays suspect for seconds before it could be
    // declared down, so the promotion is seen while it is only suspect.
    let (client, events) =
        recording_client(&topo.dsn(
            "probe_interval_ms=50&probe_timeout_ms=1500&failover_timeout_ms=30000&pool_size=32",
        ));
    let load = Load::start(&client, 4);
    load.wait_progress(200, Duration::from_secs(10));
    let g1 = client.state().generation;
    topo.freeze(0).unwrap();
    eventually(
        "the frozen writer is suspect",
        Duration::from_secs(10),
        || match client.state().endpoints[0].health {
            drfailover_conn::Health::Suspect => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
    topo.promote_fast(1).unwrap();
    let g2 = client.wait_generation(g1, Duration::from_secs(10)).unwrap();
    assert_eq!(g2, g1 + 1);
    assert_eq!(
        client.state().writer.unwrap().to_string(),
        topo.node(1).addr().to_string()
    );
    let resumed = load.wait_progress(50, Duration::from_secs(10));
    eprintln!("promoted while the writer was suspect: writes resumed {resumed:?} after");
    // Events reach subscribers on the notifier thread, possibly after the writes resumed.
    events.wait_for("failover_completed", Duration::from_secs(10), |e| {
        e.kind == EventKind::FailoverCompleted
    });
    {
        let kinds: Vec<EventKind> = events.all().iter().map(|e| e.kind).collect();
        let completed = kinds
            .iter()
            .position(|k| *k == EventKind::FailoverCompleted)
            .expect("failover_completed");
        assert!(
            kinds[..completed]
                .iter()
                .all(|k| !matches!(k, EventKind::EndpointDown | EventKind::SplitBrain)),
            "adopted only after the writer was declared down, or called split brain: {kinds:?}"
        );
    }
    // The old primary comes back still writable: split brain, never a flip back.
    topo.detach_replication(1).unwrap();
    topo.thaw(0).unwrap();
    events.wait_for("split_brain", Duration::from_secs(10), |e| {
        e.kind == EventKind::SplitBrain
    });
    load.wait_progress(200, Duration::from_secs(10));
    assert_eq!(client.state().generation, g2, "flip-flopped back");
    let (acked, unknown, errors) = load.stop();
    assert!(errors.is_empty(), "{errors:?}");
    verify(&topo, 1, &acked, &unknown);
    client.close();
}

/// The program's own statements are the earliest witness of a frozen writer: when statements
/// reported through [`Client::activity`] stop completing, the writer is probed at once, and a
/// node promoted meanwhile is adopted long before the writer's next scheduled probe (a minute
/// away here).
#[test]
fn statements_that_stop_completing_get_a_frozen_writer_left_before_its_next_scheduled_probe() {
    let mut topo =
        Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"));
    let (client, _events) = recording_client(&topo.dsn(
        "probe_interval_ms=60000&probe_timeout_ms=1000&failover_timeout_ms=30000&pool_size=32",
    ));
    let activity = client.activity();
    let next = Arc::new(AtomicU64::new(1));
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
    let unknown: Arc<Mutex<Vec<u64>>> = Arc::default();
    let threads: Vec<_> = (0..4)
        .map(|_| {
            let (client, activity, next, stop) =
                (client.clone(), activity.clone(), next.clone(), stop.clone());
            let (acked, unknown) = (acked.clone(), unknown.clone());
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    activity.started();
                    let result = client.query(&format!("INSERT INTO t (id) VALUES ({id})"));
                    activity.finished();
                    match result {
                        Ok(_) => acked.lock().unwrap().push(id),
                        Err(Error::OutcomeUnknown(_)) => unknown.lock().unwrap().push(id),
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
            })
        })
        .collect();
    let acked_now = || acked.lock().unwrap().len();
    eventually("writes acknowledged", Duration::from_secs(10), || {
        (acked_now() >= 200)
            .then_some(())
            .ok_or(format!("{} acknowledged", acked_now()))
    });
    let g1 = client.state().generation;
    topo.freeze(0).unwrap();
    topo.promote_fast(1).unwrap();
    let promoted = Instant::now();
    // The writer's next scheduled probe is a minute away: only the statements' witness can
    // get the promoted node adopted within this bound.
    let g2 = client.wait_generation(g1, Duration::from_secs(20)).unwrap();
    eprintln!(
        "frozen writer left {:?} after the promotion",
        promoted.elapsed()
    );
    assert_eq!(g2, g1 + 1);
    assert_eq!(
        client.state().writer.unwrap().to_string(),
        topo.node(1).addr().to_string()
    );
    let before = acked_now();
    eventually(
        "writes resumed on the new writer",
        Duration::from_secs(10),
        || {
            (acked_now() >= before + 50)
                .then_some(())
                .ok_or(format!("{} acknowledged", acked_now()))
        },
    );
    stop.store(true, Ordering::Relaxed);
    for t in threads {
        t.join().unwrap();
    }
    let (acked, unknown) = (
        acked.lock().unwrap().clone(),
        unknown.lock().unwrap().clone(),
    );
    verify(&topo, 1, &acked, &unknown);
    client.close();
}

#[test]
fn blackholed_writer_is_abandoned_for_the_promoted_replica() {
    let topo = Topology::primary_replica_in_lab()
        .unwrap_or_else(|e| panic!("cannot start lab topology: {e}"));
    let (client, _events) = recording_client(&topo.dsn(FAST));
    let load = Load::start(&client, 4);
    load.wait_progress(200, Duration::from_secs(10));
    let g1 = client.state().generation;
    topo.blackhole(0).unwrap();
    let t = Instant::now();
    while client.state().ready {
        assert!(
            t.elapsed() < Duration::from_secs(5),
            "blackholed writer not declared down"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    let detected = t.elapsed();
    topo.promote(1).unwrap();
    client.wait_generation(g1, Duration::from_secs(10)).unwrap();
    let resumed = load.wait_progress(50, Duration::from_secs(10));
    eprintln!("blackhole: writer abandoned after {detected:?}; writes resumed {resumed:?} after the promotion");
    let (acked, unknown, errors) = load.stop();
    assert!(errors.is_empty(), "{errors:?}");
    verify(&topo, 1, &acked, &unknown);
    client.close();
}

/// A login begun just as the writer went silent (its SYN dropped) is given up when the client
/// leaves that writer — its socket is shut down with the leased ones — instead of holding the
/// statement for the whole `connect_timeout_ms` (here 20 s).
#[test]
fn a_login_to_a_writer_that_goes_silent_is_given_up_when_the_writer_is_left() {
    let topo = Topology::primary_replica_in_lab()
        .unwrap_or_else(|e| panic!("cannot start lab topology: {e}"));
    topo.node(0)
        .sql("CREATE TABLE app.login (id BIGINT PRIMARY KEY)")
        .unwrap();
    topo.wait_replicated(0, 1).unwrap();
    let client =
        Client::connect_dsn(&topo.dsn("connect_timeout_ms=20000&failover_timeout_ms=30000"))
            .unwrap();
    client.wait_ready(Duration::from_secs(10)).unwrap();
    assert_eq!(client.stats().connects, 0, "the pool opens lazily");
    topo.blackhole(0).unwrap();
    topo.promote_fast(1).unwrap();
    // The client still believes in node 0: this statement's login goes there and hangs.
    let t = Instant::now();
    client
        .query("INSERT INTO login (id) VALUES (1)")
        .unwrap_or_else(|e| panic!("after {:?}: {e}", t.elapsed()));
    let took = t.elapsed();
    eprintln!("the statement whose login hung on the silent writer completed after {took:?}");
    assert!(
        took < Duration::from_secs(10),
        "the login to the silent writer was held {took:?} (connect_timeout_ms is 20 s)"
    );
    let row = topo
        .node(1)
        .sql_value("SELECT COUNT(*) FROM app.login WHERE id = 1")
        .unwrap();
    assert_eq!(row.as_deref(), Some("1"), "the write is on the new writer");
    let writer = client.state().writer.expect("a writer");
    assert_eq!(writer.port, topo.node(1).port(), "{writer:?}");
    assert_eq!(writer.host, topo.node(1).ip().to_string(), "{writer:?}");
    client.close();
}

#[test]
fn sixteen_threads_through_ten_failovers_lose_nothing_and_replay_nothing() {
    let mut topo =
        Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"));
    let (client, events) = recording_client(&topo.dsn(FAST));
    let load = Load::start(&client, 16);
    let (mut primary, mut replica) = (0usize, 1usize);
    for round in 1..=10 {
        load.wait_progress(100, Duration::from_secs(20));
        let g = client.state().generation;
        topo.kill9(primary).unwrap();
        topo.promote(replica).unwrap();
        client
            .wait_generation(g, Duration::from_secs(20))
            .unwrap_or_else(|e| panic!("round {round}: no failover: {e}"));
        load.wait_progress(100, Duration::from_secs(20));
        // The old primary returns as a replica of the new one (crash recovery truncates what
        // was never acknowledged), semi-sync back on before the next fault.
        topo.restart(primary, NodeRole::Replica, Some(replica))
            .unwrap();
        topo.node(replica)
            .sql("SET GLOBAL rpl_semi_sync_master_enabled=1")
            .unwrap();
        topo.wait_semi_sync_clients(replica, 1).unwrap();
        topo.wait_replicated(replica, primary).unwrap();
        std::mem::swap(&mut primary, &mut replica);
    }
    load.wait_progress(100, Duration::from_secs(20));
    let (acked, unknown, errors) = load.stop();
    // A replayed INSERT would surface as a duplicate-key error here: there must be none.
    assert!(
        errors.is_empty(),
        "{} errors, e.g. {:?}",
        errors.len(),
        errors.first()
    );
    verify(&topo, primary, &acked, &unknown);
    let completed = events
        .matching(|e| e.kind == EventKind::FailoverCompleted)
        .len();
    assert_eq!(completed, 10);
    assert_eq!(client.stats().failovers, 10);
    assert_eq!(client.stats().outcome_unknown as usize, unknown.len());
    eprintln!(
        "10 failovers: {} acknowledged, {} outcome unknown, 0 lost, 0 replayed",
        acked.len(),
        unknown.len()
    );
    client.close();
}
