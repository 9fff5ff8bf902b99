//! The orchestrator against real MariaDB: a primary and two semi-sync replicas on loopback
//! (or in a network namespace of the test's own), real faults, and data checks after every
//! failover.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;
use drfailover_conn::{Client, Error};
use drfailover_notify::{Event, EventKind, Notifier};
use drfailover_orchestrator::control::Answer;
use drfailover_orchestrator::{Config, Orchestrator, Outcome, Request};
use drfailover_testkit::{eventually, EventLog, Topology, ADMIN_PASSWORD, ADMIN_USER};

fn topology(replicas: usize) -> Topology {
    Topology::primary_replicas(replicas)
        .unwrap_or_else(|e| panic!("cannot start MariaDB topology: {e}"))
}

/// A configuration for `topo` (fast settings), plus `extra` lines in `[orchestrator]`.
fn config_text(topo: &Topology, extra: &str, node_extra: &[(usize, &str)]) -> String {
    topo.orchestrator_config(extra, "", node_extra)
}

struct Running {
    stop: Arc<AtomicBool>,
    handle: Option<JoinHandle<Orchestrator>>,
    events: EventLog<Event>,
    /// `/status` of the latest round, and the number of rounds so far.
    status: Arc<Mutex<(serde_json::Value, u64)>>,
    requests: Sender<Request>,
    notifier: Arc<Notifier>,
}

impl Running {
    fn start(text: &str) -> Running {
        let config = Config::parse(text).unwrap_or_else(|e| panic!("config: {e}"));
        let notifier = Arc::new(Notifier::new(4096, 1, Instant::now()).unwrap());
        let events = EventLog::new();
        let ev = events.clone();
        notifier.subscribe(move |e| {
            eprintln!("orchestrator: {}", e.summary());
            ev.push(e.clone());
        });
        let mut orch = Orchestrator::new(config, notifier.clone(), 1);
        orch.start()
            .unwrap_or_else(|e| panic!("orchestrator refused to start: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = crossbeam_channel::bounded(4);
        let s = stop.clone();
        let status = Arc::new(Mutex::new((serde_json::Value::Null, 0)));
        let latest = status.clone();
        let handle = std::thread::spawn(move || {
            orch.run_with(&s, &rx, |o| {
                let mut latest = latest.lock().unwrap();
                *latest = (o.status_json(), latest.1 + 1);
            });
            orch
        });
        Running {
            stop,
            handle: Some(handle),
            events,
            status,
            requests: tx,
            notifier,
        }
    }

    fn events(&self, kind: EventKind) -> Vec<Event> {
        self.events.matching(|e| e.kind == kind)
    }

    fn wait_for(&self, kind: EventKind, timeout: Duration) -> Event {
        self.events
            .wait_for(&format!("{kind:?} event"), timeout, |e| e.kind == kind)
    }

    /// Wait until the orchestrator holds the lock and sees a healthy primary.
    fn wait_healthy(&self) {
        eventually(
            "the orchestrator leads a healthy topology",
            Duration::from_secs(20),
            || {
                let s = self.status.lock().unwrap().0.clone();
                if s["analysis"] == "healthy" && s["leader"] == true {
                    Ok(())
                } else {
                    Err(format!("analysis {} leader {}", s["analysis"], s["leader"]))
                }
            },
        );
    }

    /// Wait until the orchestrator completed two more rounds: it has seen what the test
    /// just did (a round in progress may have started before).
    fn wait_fresh_rounds(&self) {
        let from = self.status.lock().unwrap().1;
        eventually("two more rounds", Duration::from_secs(20), || {
            let now = self.status.lock().unwrap().1;
            if now >= from + 2 {
                Ok(())
            } else {
                Err(format!("{} round(s)", now - from))
            }
        });
    }

    /// Send a request and wait for its outcome (the loop's steps are bounded).
    fn request(&self, (request, answer): (Request, Answer)) -> Outcome {
        self.requests.send(request).unwrap();
        answer.blocking_recv().expect("answer")
    }

    fn stop(&mut self) -> Orchestrator {
        self.stop.store(true, Ordering::SeqCst);
        let orch = self
            .handle
            .take()
            .unwrap()
            .join()
            .expect("orchestrator thread");
        self.notifier.close(Duration::from_secs(1));
        orch
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

/// Writer threads through a drfailover client over every node, recording what was
/// acknowledged, what had an unknown outcome, and what failed otherwise.
struct Load {
    stop: Arc<AtomicBool>,
    acked: Arc<Mutex<Vec<u64>>>,
    unknown: Arc<Mutex<Vec<u64>>>,
    failed: Arc<Mutex<Vec<String>>>,
    threads: Vec<JoinHandle<()>>,
    client: Arc<Client>,
}

impl Load {
    fn start(topo: &Topology, threads: usize) -> Load {
        let dsn = topo.dsn("probe_interval_ms=50&probe_timeout_ms=200&failover_timeout_ms=30000");
        let client = Arc::new(Client::connect_dsn(&dsn).expect("client"));
        client.wait_ready(Duration::from_secs(10)).expect("writer");
        client
            .query("CREATE TABLE IF NOT EXISTS t (id BIGINT PRIMARY KEY, thread INT)")
            .expect("create table");
        let next = Arc::new(AtomicU64::new(1));
        let stop = Arc::new(AtomicBool::new(false));
        let (acked, unknown, failed) = Default::default();
        let mut load = Load {
            stop,
            acked,
            unknown,
            failed,
            threads: Vec::new(),
            client,
        };
        for t in 0..threads {
            let (client, next, stop, acked, unknown, failed) = (
                load.client.clone(),
                next.clone(),
                load.stop.clone(),
                load.acked.clone(),
                load.unknown.clone(),
                load.failed.clone(),
            );
            load.threads.push(std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    match client.query(&format!("INSERT INTO t VALUES ({id}, {t})")) {
                        Ok(_) => acked.lock().unwrap().push(id),
                        Err(Error::OutcomeUnknown(_)) => unknown.lock().unwrap().push(id),
                        Err(e) => failed.lock().unwrap().push(format!("{id}: {e}")),
                    }
                }
            }));
        }
        load
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    /// Wait until `more` further writes are acknowledged (bounded).
    fn wait_progress(&self, more: usize, timeout: Duration) {
        let target = self.acked() + more;
        eventually("the writers progress", timeout, || match self.acked() {
            n if n >= target => Ok(()),
            n => Err(format!(
                "{n} acknowledged of {target}; failed: {:?}",
                self.failed
                    .lock()
                    .unwrap()
                    .iter()
                    .take(5)
                    .collect::<Vec<_>>()
            )),
        });
    }

    fn finish(mut self) -> (Vec<u64>, Vec<u64>, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.threads.drain(..) {
            t.join().unwrap();
        }
        self.client.close();
        (
            self.acked.lock().unwrap().clone(),
            self.unknown.lock().unwrap().clone(),
            self.failed.lock().unwrap().clone(),
        )
    }
}

fn ids_on(topo: &Topology, node: usize) -> Vec<u64> {
    let r = topo
        .node(node)
        .sql("SELECT id FROM app.t")
        .unwrap_or_else(|e| panic!("read {}: {e}", topo.node(node).name()));
    (0..r.num_rows())
        .map(|i| r.text(i, 0).unwrap().parse().unwrap())
        .collect()
}

/// Every acknowledged id is present on `node`; every row there was written by us (acked or
/// unknown outcome): nothing lost, nothing invented.
fn check_data(topo: &Topology, node: usize, acked: &[u64], unknown: &[u64]) {
    let present: HashSet<u64> = ids_on(topo, node).into_iter().collect();
    let lost: Vec<&u64> = acked.iter().filter(|id| !present.contains(id)).collect();
    assert!(
        lost.is_empty(),
        "{} acknowledged writes lost on {} (e.g. {:?})",
        lost.len(),
        topo.node(node).name(),
        &lost[..lost.len().min(10)]
    );
    let known: HashSet<u64> = acked.iter().chain(unknown).copied().collect();
    let phantom: Vec<&u64> = present.iter().filter(|id| !known.contains(id)).collect();
    assert!(phantom.is_empty(), "phantom rows: {phantom:?}");
}

#[test]
fn kill9_under_16_writers_promotes_the_most_advanced_replica_and_loses_nothing() {
    let mut topo = topology(2);
    // node3 has the higher priority but falls behind: the orchestrator must still choose
    // node2, the replica that received the most.
    let text = config_text(&topo, "", &[(2, "priority = 10")]);
    let mut orch = Running::start(&text);
    let load = Load::start(&topo, 16);
    load.wait_progress(200, Duration::from_secs(20));
    topo.node(2).sql("STOP SLAVE IO_THREAD").unwrap();
    load.wait_progress(500, Duration::from_secs(20));

    topo.kill9(0).unwrap();
    let killed = Instant::now();
    let done = orch.wait_for(EventKind::FailoverCompleted, Duration::from_secs(20));
    eprintln!("kill -9 -> failover completed after {:?}", killed.elapsed());
    assert_eq!(done.new_writer.as_deref(), Some(topo.node(1).name()));
    load.wait_progress(500, Duration::from_secs(20));
    let (acked, unknown, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "statements failed other than the in-flight ones: {:?}",
        &failed[..failed.len().min(5)]
    );
    assert!(
        unknown.len() <= 16,
        "{} outcome-unknown for 16 writers",
        unknown.len()
    );
    check_data(&topo, 1, &acked, &unknown);
    // node3 is repointed to node2, catches up, and holds everything too.
    topo.node(2).sql("START SLAVE").unwrap();
    topo.wait_follows(2, 1, Duration::from_secs(20)).unwrap();
    topo.wait_replicated(1, 2).unwrap();
    check_data(&topo, 2, &acked, &unknown);
    std::thread::sleep(Duration::from_millis(500));
    let orchestrator = orch.stop();
    assert_eq!(orchestrator.figures().failovers, 1, "exactly one promotion");
    assert_eq!(orch.events(EventKind::FailoverCompleted).len(), 1);
}

#[test]
fn a_frozen_primary_is_fenced_on_sight_and_acknowledges_nothing_after_promotion() {
    let mut topo = topology(2);
    let dir = tempfile::tempdir().unwrap();
    let fence_log = dir.path().join("fenced.json");
    let script = dir.path().join("stonith.sh");
    drfailover_testkit::write_script(
        &script,
        format!("#!/bin/sh\ncat > {}\n", fence_log.display()),
    )
    .unwrap();
    let fence = format!(
        "[fence]\ncommand = [\"{}\"]\ntimeout_ms = 5000\n",
        script.display()
    );
    let text = topo.orchestrator_config("", &fence, &[]);
    let mut orch = Running::start(&text);
    let load = Load::start(&topo, 4);
    load.wait_progress(200, Duration::from_secs(20));

    // A client connected directly to the primary keeps writing through it all.
    let direct = drfailover_testkit::DirectWriter::start(
        &topo,
        0,
        Duration::from_secs(2),
        10_000_000,
        |id| format!("INSERT INTO t VALUES ({id}, 99)"),
    );
    wait_pinned_writes(&direct);
    topo.freeze(0).unwrap();
    let done = orch.wait_for(EventKind::FailoverCompleted, Duration::from_secs(30));
    let promoted_at = Instant::now();
    let new_index = promoted_index(&topo, &done);
    assert_ne!(new_index, 0);
    assert!(fence_log.exists(), "the fence command ran before promotion");
    let stdin = std::fs::read_to_string(&fence_log).unwrap();
    assert!(
        stdin.contains(topo.node(0).name()),
        "fence command input: {stdin}"
    );
    load.wait_progress(200, Duration::from_secs(20));
    topo.thaw(0).unwrap();
    let fenced = orch.wait_for(EventKind::Fenced, Duration::from_secs(20));
    assert_eq!(
        fenced
            .endpoint
            .as_deref()
            .map(|e| e.starts_with(topo.node(0).name())),
        Some(true)
    );
    std::thread::sleep(Duration::from_secs(1));
    let direct_acked = direct.stop();
    let (acked, unknown, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "failed statements: {:?}",
        &failed[..failed.len().min(5)]
    );
    let late: Vec<u64> = direct_acked
        .iter()
        .filter(|(_, sent, _)| *sent >= promoted_at)
        .map(|(id, _, _)| *id)
        .collect();
    // A write sent to the old primary after the promotion is never acknowledged. (One sent
    // before the freeze may be acknowledged on thaw when a replica's acknowledgement already
    // sat in the frozen server's socket buffer: it is then on the new primary, as
    // check_data proves below.)
    assert!(
        late.is_empty(),
        "the old primary acknowledged writes sent after the promotion: {late:?}"
    );
    assert_eq!(
        topo.node(0)
            .sql_value("SELECT @@read_only")
            .unwrap()
            .as_deref(),
        Some("1")
    );
    let direct_before: Vec<u64> = direct_acked.iter().map(|(id, _, _)| *id).collect();
    let mut all_acked = acked.clone();
    all_acked.extend(&direct_before);
    check_data(&topo, new_index, &all_acked, &unknown_with_direct(&unknown));
    orch.stop();
}

/// Ids the direct client may have written without an answer (its own id range).
fn unknown_with_direct(unknown: &[u64]) -> Vec<u64> {
    let mut v = unknown.to_vec();
    v.extend(10_000_000..10_100_000);
    v
}

#[test]
fn a_partition_between_orchestrator_and_primary_only_is_not_a_failover() {
    let topo = Topology::primary_replicas_in_lab(2)
        .unwrap_or_else(|e| panic!("cannot start MariaDB topology in a lab: {e}"));
    // The default heartbeat period: the shortest silence that confirms a dead primary.
    let default_heartbeat = format!(
        "heartbeat_period_ms = {}",
        drfailover_orchestrator::policy::Policy::default()
            .heartbeat_period
            .as_millis()
    );
    let config =
        config_text(&topo, "", &[]).replace("heartbeat_period_ms = 200", &default_heartbeat);
    assert!(config.contains(&default_heartbeat), "{config}");
    let mut orch = Running::start(&config);
    orch.wait_healthy();
    topo.partition_from_host(0).unwrap();
    let e = orch.wait_for(EventKind::PrimaryUnreachable, Duration::from_secs(20));
    assert!(e.reason.contains("still receiving"), "{}", e.reason);
    std::thread::sleep(Duration::from_secs(3));
    topo.heal_from_host(0).unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let orchestrator = orch.stop();
    assert_eq!(orchestrator.figures().failovers, 0);
    assert!(orch.events(EventKind::FailoverStarted).is_empty());
    assert_eq!(
        topo.node(0)
            .sql_value("SELECT @@read_only")
            .unwrap()
            .as_deref(),
        Some("0")
    );
    for r in 1..3 {
        assert_eq!(
            topo.node(r)
                .sql_value("SELECT @@read_only")
                .unwrap()
                .as_deref(),
            Some("1")
        );
    }
}

#[test]
fn semi_sync_fallen_back_to_async_blocks_automatic_promotion() {
    let mut topo = topology(2);
    topo.node(0)
        .sql("SET GLOBAL rpl_semi_sync_master_enabled=0")
        .unwrap();
    let mut orch = Running::start(&config_text(&topo, "", &[]));
    orch.wait_healthy();
    topo.kill9(0).unwrap();
    let blocked = orch.wait_for(EventKind::FailoverBlocked, Duration::from_secs(20));
    assert!(blocked.reason.contains("semi-sync"), "{}", blocked.reason);
    std::thread::sleep(Duration::from_secs(1));
    let orchestrator = orch.stop();
    assert_eq!(orchestrator.figures().failovers, 0);
    for r in 1..3 {
        assert_eq!(
            topo.node(r)
                .sql_value("SELECT @@read_only")
                .unwrap()
                .as_deref(),
            Some("1")
        );
    }
}

#[test]
fn a_second_failure_inside_the_anti_flapping_period_is_blocked_until_acknowledged() {
    let mut topo = topology(2);
    let mut orch = Running::start(&config_text(&topo, "", &[]));
    let load = Load::start(&topo, 2);
    load.wait_progress(100, Duration::from_secs(20));
    // No write in flight at the kill: the old primary then has nothing the others lack and
    // can come back as a replica (keeping a majority of lock holders for the second failover).
    let (acked, unknown, failed) = load.finish();
    assert!(failed.is_empty(), "{failed:?}");
    topo.kill9(0).unwrap();
    let first = orch.wait_for(EventKind::FailoverCompleted, Duration::from_secs(20));
    let new = first.new_writer.clone().unwrap();
    let new_index = topo.nodes().iter().position(|n| n.name() == new).unwrap();
    let other = 3 - new_index;
    topo.wait_follows(other, new_index, Duration::from_secs(20))
        .unwrap();
    // The old primary comes back: the orchestrator fences it on sight, sees that its history
    // is a prefix of the new primary's, and attaches it as a replica (rejoin).
    topo.node_mut(0)
        .start(drfailover_testkit::NodeRole::Replica)
        .unwrap();
    topo.wait_follows(0, new_index, Duration::from_secs(20))
        .unwrap();
    // The new primary must have semi-sync active, else the zero-loss gate (not
    // anti-flapping) would block.
    topo.wait_semi_sync_clients(new_index, 2).unwrap();
    orch.wait_fresh_rounds();
    topo.kill9(new_index).unwrap();
    let blocked = orch.wait_for(EventKind::FailoverBlocked, Duration::from_secs(20));
    assert!(
        blocked.reason.contains("anti-flapping"),
        "{}",
        blocked.reason
    );
    assert_eq!(orch.events(EventKind::FailoverCompleted).len(), 1);
    let answer = orch.request(Request::ack());
    assert_eq!(answer, Outcome::Done("acknowledged".into()));
    let last = eventually(
        "a second failover after ack",
        Duration::from_secs(20),
        || {
            orch.events(EventKind::FailoverCompleted)
                .get(1)
                .cloned()
                .ok_or_else(|| "one failover so far".to_string())
        },
    );
    let last_index = topo
        .nodes()
        .iter()
        .position(|n| Some(n.name()) == last.new_writer.as_deref())
        .unwrap();
    check_data(&topo, last_index, &acked, &unknown);
    orch.stop();
}

#[test]
fn switchover_under_load_fails_no_statement() {
    let topo = topology(2);
    let mut orch = Running::start(&config_text(&topo, "", &[]));
    let load = Load::start(&topo, 8);
    load.wait_progress(300, Duration::from_secs(20));
    let target = topo.node(2).name().to_string();
    let (request, _ticket, answer) = Request::switchover(&target);
    let answer = orch.request((request, answer));
    assert!(matches!(answer, Outcome::Done(_)), "switchover: {answer:?}");
    load.wait_progress(300, Duration::from_secs(20));
    topo.wait_follows(0, 2, Duration::from_secs(20)).unwrap();
    topo.wait_follows(1, 2, Duration::from_secs(20)).unwrap();
    let (acked, unknown, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "failed statements: {:?}",
        &failed[..failed.len().min(5)]
    );
    assert!(
        unknown.is_empty(),
        "outcome-unknown statements: {unknown:?}"
    );
    check_data(&topo, 2, &acked, &unknown);
    topo.wait_replicated(2, 0).unwrap();
    check_data(&topo, 0, &acked, &unknown);
    orch.stop();
}

#[test]
fn bad_configurations_and_topologies_are_refused_with_a_clear_error_and_nothing_changed() {
    let topo = topology(1);
    let good = config_text(&topo, "", &[]);
    // Wrong password: named, not shown.
    let wrong = good.replace(ADMIN_PASSWORD, "not-the-password-123");
    let config = Config::parse(&wrong).unwrap();
    let notifier = Arc::new(Notifier::new(16, 1, Instant::now()).unwrap());
    let e = Orchestrator::new(config, notifier.clone(), 1)
        .start()
        .unwrap_err();
    assert!(e.contains("auth_failed") || e.contains("1045"), "{e}");
    assert!(!e.contains("not-the-password-123"), "{e}");
    // An unreachable node at start.
    let bogus = format!("{good}\n[[node]]\nname = \"ghost\"\nhost = \"127.0.0.1\"\nport = 9\n");
    let e = Orchestrator::new(Config::parse(&bogus).unwrap(), notifier.clone(), 1)
        .start()
        .unwrap_err();
    assert!(e.contains("ghost") && e.contains("unreachable"), "{e}");
    // A host name that does not resolve (rejected by the resolver itself: nothing is sent
    // anywhere): named, bounded, the node counts as unreachable.
    let unresolvable =
        format!("{good}\n[[node]]\nname = \"nameless\"\nhost = \"no such host!\"\nport = 3306\n");
    let started = Instant::now();
    let e = Orchestrator::new(Config::parse(&unresolvable).unwrap(), notifier.clone(), 1)
        .start()
        .unwrap_err();
    assert!(
        e.contains("nameless") && e.contains("unresolved") && e.contains("cannot resolve"),
        "{e}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // Two writers.
    topo.node(1).sql("SET GLOBAL read_only=0").unwrap();
    let e = Orchestrator::new(Config::parse(&good).unwrap(), notifier.clone(), 1)
        .start()
        .unwrap_err();
    assert!(e.contains("two writers"), "{e}");
    topo.node(1).sql("SET GLOBAL read_only=1").unwrap();
    // Nothing was changed: replication intact, heartbeat untouched (set_heartbeat_period
    // acts only once the topology is accepted).
    let s = topo.node(1).sql("SHOW SLAVE STATUS").unwrap();
    let status = drfailover_mysql::ReplicaStatus::first(&s).expect("still a replica");
    assert_eq!(status.io, drfailover_mysql::IoState::Running);
    // Malformed file and unknown keys.
    let e = Config::parse(&good.replace("fall = 3", "fall = 3\nfalll = 2")).unwrap_err();
    assert!(e.0.contains("falll"), "{e}");
    notifier.close(Duration::from_millis(100));
}

#[test]
fn a_primary_blackholed_from_everyone_fails_over_and_is_fenced_when_healed() {
    let topo = Topology::primary_replicas_in_lab(2)
        .unwrap_or_else(|e| panic!("cannot start MariaDB topology in a lab: {e}"));
    let mut orch = Running::start(&config_text(&topo, "", &[]));
    let load = Load::start(&topo, 4);
    load.wait_progress(200, Duration::from_secs(20));
    topo.blackhole(0).unwrap();
    let cut = Instant::now();
    let done = orch.wait_for(EventKind::FailoverCompleted, Duration::from_secs(30));
    eprintln!("blackhole -> failover completed after {:?}", cut.elapsed());
    let new_index = promoted_index(&topo, &done);
    assert_ne!(new_index, 0);
    load.wait_progress(200, Duration::from_secs(30));
    topo.heal(0).unwrap();
    let fenced = orch.wait_for(EventKind::Fenced, Duration::from_secs(20));
    assert!(
        fenced
            .endpoint
            .as_deref()
            .unwrap_or("")
            .starts_with(topo.node(0).name()),
        "{fenced:?}"
    );
    let (acked, unknown, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "failed statements: {:?}",
        &failed[..failed.len().min(5)]
    );
    assert_eq!(
        topo.node(0)
            .sql_value("SELECT @@read_only")
            .unwrap()
            .as_deref(),
        Some("1"),
        "the healed old primary is fenced"
    );
    check_data(&topo, new_index, &acked, &unknown);
    assert_eq!(orch.stop().figures().failovers, 1);
}

#[test]
fn a_replica_with_a_relay_log_backlog_is_promoted_only_after_applying_it() {
    let mut topo = topology(2);
    // node2 is preferred (priority) and has a backlog: received, not applied.
    let mut orch = Running::start(&config_text(&topo, "", &[(1, "priority = 10")]));
    topo.node(0)
        .sql("CREATE TABLE app.t (id BIGINT PRIMARY KEY, thread INT)")
        .unwrap();
    topo.wait_replicated(0, 1).unwrap();
    topo.node(1).sql("STOP SLAVE SQL_THREAD").unwrap();
    let rows = 3000u64;
    for chunk in 0..(rows / 100) {
        let values: Vec<String> = (0..100)
            .map(|i| format!("({}, 0)", chunk * 100 + i + 1))
            .collect();
        // One transaction per row: a backlog of many events to apply.
        let statements: Vec<String> = values
            .iter()
            .map(|v| format!("INSERT INTO app.t VALUES {v}"))
            .collect();
        topo.node(0)
            .sql_batch(&statements.iter().map(String::as_str).collect::<Vec<_>>())
            .unwrap();
    }
    let applied = topo
        .node(1)
        .sql_value("SELECT COUNT(*) FROM app.t")
        .unwrap()
        .unwrap();
    assert_eq!(applied, "0", "node2 applied nothing yet");
    // node2 must hold everything (received, not applied) for the test's premise: under load
    // its IO thread can trail node3's, and then node3 is rightly the one with everything.
    topo.wait_received(0, 1).unwrap();
    topo.wait_received(0, 2).unwrap();
    topo.kill9(0).unwrap();
    let done = orch.wait_for(EventKind::FailoverCompleted, Duration::from_secs(60));
    assert_eq!(done.new_writer.as_deref(), Some(topo.node(1).name()));
    let applied_step = orch
        .events(EventKind::StepCompleted)
        .into_iter()
        .find(|e| e.reason.starts_with("apply everything received"))
        .expect("catch-up step");
    eprintln!(
        "catch-up of {rows} transactions took {:?} µs",
        applied_step.duration_us
    );
    let acked: Vec<u64> = (1..=rows).collect();
    check_data(&topo, 1, &acked, &[]);
    orch.stop();
}

#[test]
fn a_replica_with_an_errant_transaction_is_never_chosen() {
    let mut topo = topology(2);
    // node3 would win on priority, but it has a transaction the primary never had.
    let mut orch = Running::start(&config_text(&topo, "", &[(2, "priority = 10")]));
    topo.node(0)
        .sql("CREATE TABLE app.t (id BIGINT PRIMARY KEY, thread INT)")
        .unwrap();
    topo.wait_replicated(0, 2).unwrap();
    topo.node(2)
        .sql_batch(&[
            "SET gtid_domain_id=9",
            "CREATE TABLE app.local_only (id INT PRIMARY KEY)",
            "SET gtid_domain_id=0",
        ])
        .unwrap();
    for i in 1..=50 {
        topo.node(0)
            .sql(&format!("INSERT INTO app.t VALUES ({i}, 0)"))
            .unwrap();
    }
    topo.wait_replicated(0, 1).unwrap();
    topo.wait_replicated(0, 2).unwrap();
    orch.wait_fresh_rounds();
    topo.kill9(0).unwrap();
    let started = orch.wait_for(EventKind::FailoverStarted, Duration::from_secs(20));
    assert!(
        started.reason.contains("node3: errant transactions 9-3-1"),
        "{}",
        started.reason
    );
    let done = orch.wait_for(EventKind::FailoverCompleted, Duration::from_secs(20));
    assert_eq!(done.new_writer.as_deref(), Some(topo.node(1).name()));
    let acked: Vec<u64> = (1..=50).collect();
    check_data(&topo, 1, &acked, &[]);
    orch.stop();
}

/// Rows 0..n written on `primary`, each acknowledged.
fn write_ids(topo: &Topology, primary: usize, n: u64) -> Vec<u64> {
    topo.node(primary)
        .sql("CREATE TABLE IF NOT EXISTS app.t (id BIGINT PRIMARY KEY)")
        .unwrap();
    for i in 0..n {
        topo.node(primary)
            .sql(&format!("INSERT INTO app.t VALUES ({i})"))
            .unwrap();
    }
    (0..n).collect()
}

fn read_only(topo: &Topology, node: usize) -> String {
    topo.node(node)
        .sql_value("SELECT @@read_only")
        .unwrap()
        .unwrap_or_default()
}

/// A switchover waiting for a lagging replica runs beside the failover loop: a request
/// cancelled by its client before any change never runs, a second request is refused at
/// once, and a kill -9 of the primary meanwhile is failed over in the normal time (the
/// switchover abandoned, with an event), with true durations in the events.
#[test]
fn a_switchover_waiting_for_a_lagging_replica_never_delays_a_failover() {
    let mut topo = topology(2);
    // The last replica applies 60 s late; it still receives (and acknowledges) at once.
    topo.node(2)
        .sql_batch(&[
            "STOP SLAVE",
            "CHANGE MASTER TO MASTER_DELAY=60",
            "START SLAVE",
        ])
        .unwrap();
    let text = config_text(&topo, "", &[(1, "priority = 10")]);
    let catchup = Config::parse(&text).unwrap().settings.catchup_timeout;
    let orch = Running::start(&text);
    let acked = write_ids(&topo, 0, 100);
    topo.wait_replicated(0, 1).unwrap();
    topo.wait_received(0, 2).unwrap();
    let lagging = topo.node(2).name().to_string();
    let started = |n: usize| {
        let t = Instant::now();
        while orch.events(EventKind::FailoverStarted).len() < n {
            assert!(
                t.elapsed() < Duration::from_secs(20),
                "switchover not started"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    };

    // Cancelled by its client while catching up: nothing changes, ever.
    let (request, ticket, answer) = Request::switchover(&lagging);
    orch.requests.send(request).unwrap();
    started(1);
    assert!(ticket.cancel("the client went away"));
    let outcome = answer.blocking_recv().unwrap();
    assert!(
        matches!(&outcome, Outcome::Refused(why) if why.contains("the client went away")),
        "{outcome:?}"
    );
    assert_eq!(read_only(&topo, 0), "0", "the primary was fenced");
    assert_eq!(read_only(&topo, 2), "1", "the target was promoted");
    assert!(
        !orch
            .events(EventKind::StepCompleted)
            .iter()
            .any(|e| e.reason.contains("fence for switchover")),
        "a cancelled switchover fenced the primary"
    );

    // A switchover that waits for the lagging replica; a second request meanwhile is
    // refused at once.
    let (request, _ticket, answer) = Request::switchover(&lagging);
    orch.requests.send(request).unwrap();
    started(2);
    let asked = Instant::now();
    let (second, _, second_answer) = Request::switchover(topo.node(1).name());
    let second = orch.request((second, second_answer));
    assert!(
        matches!(&second, Outcome::Refused(why) if why.contains("in progress")),
        "{second:?}"
    );
    assert!(asked.elapsed() < catchup / 4, "{:?}", asked.elapsed());

    // The primary dies while the switchover waits: an ordinary failover.
    let killed = Instant::now();
    topo.kill9(0).unwrap();
    let done = orch.wait_for(EventKind::FailoverCompleted, catchup * 3);
    let took = killed.elapsed();
    eprintln!("kill -9 during a switchover: failover completed after {took:?}");
    assert!(
        took < catchup / 2,
        "the failover waited for the switchover: {took:?}"
    );
    assert_eq!(done.new_writer.as_deref(), Some(topo.node(1).name()));
    // The event's duration runs from the first failed probe: close to what the test saw.
    let reported = Duration::from_micros(done.duration_us.unwrap());
    assert!(
        reported <= took && took - reported < Duration::from_secs(2),
        "event says {reported:?}, the test saw {took:?}"
    );
    let outcome = answer.blocking_recv().unwrap();
    assert!(
        matches!(&outcome, Outcome::Refused(why) if why.contains("abandoned")),
        "{outcome:?}"
    );
    assert!(
        orch.events(EventKind::FailoverFailed)
            .iter()
            .any(|e| e.reason.contains("abandoned before any change")),
        "no event for the abandoned switchover"
    );
    check_data(&topo, 1, &acked, &[]);
    assert_eq!(read_only(&topo, 2), "1", "two writers");
}

/// Literals are escaped by the client library: a lock name with a quote and a trailing
/// backslash still leads (and excludes a second orchestrator), and a replication password
/// with `'` and `\` attaches the old primary under `NO_BACKSLASH_ESCAPES`.
#[test]
fn quotes_and_backslashes_in_lock_names_and_passwords_work_under_no_backslash_escapes() {
    let topo = topology(2);
    topo.node(0)
        .sql_batch(&[
            "CREATE USER 'repl_q'@'%' IDENTIFIED BY 'p''w\\\\x\\\\'",
            "GRANT REPLICATION SLAVE ON *.* TO 'repl_q'@'%'",
        ])
        .unwrap();
    for i in 0..3 {
        if i > 0 {
            topo.wait_replicated(0, i).unwrap();
        }
        topo.node(i)
            .sql("SET GLOBAL sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
            .unwrap();
    }
    let base = config_text(&topo, "lock_name = \"x'\\\\\"", &[]);
    let text = base.replace(
        &format!(
            "[replication]\nuser = \"{}\"\npassword = \"{}\"",
            drfailover_testkit::REPL_USER,
            drfailover_testkit::REPL_PASSWORD
        ),
        "[replication]\nuser = \"repl_q\"\npassword = \"p'w\\\\x\\\\\"",
    );
    assert_ne!(text, base, "replication section not found");
    let config = Config::parse(&text).unwrap();
    assert_eq!(config.lock_name, "x'\\");
    assert_eq!(
        config.settings.replication.as_ref().unwrap().1.expose(),
        "p'w\\x\\"
    );
    let a = Running::start(&text);
    let acked = write_ids(&topo, 0, 50);
    let b = Running::start(&text);
    // B never holds the lock while A runs.
    let (request, _, answer) = Request::switchover(topo.node(2).name());
    let refused = b.request((request, answer));
    assert!(
        matches!(&refused, Outcome::Refused(why) if why.contains("another orchestrator holds the lock")),
        "{refused:?}"
    );
    // A leads: the switchover runs and attaches the old primary with the quoted password.
    let (request, _, answer) = Request::switchover(topo.node(2).name());
    let done = a.request((request, answer));
    assert!(matches!(&done, Outcome::Done(_)), "{done:?}");
    topo.wait_follows(0, 2, Duration::from_secs(30)).unwrap();
    topo.wait_follows(1, 2, Duration::from_secs(30)).unwrap();
    check_data(&topo, 2, &acked, &[]);
    topo.wait_replicated(2, 0).unwrap();
    check_data(&topo, 0, &acked, &[]);
}

/// A fence command that hangs is killed at its timeout and counts as failed; one that keeps
/// failing is retried with exponential backoff (not every round); once it succeeds the
/// promotion goes on, losing nothing.
#[test]
fn a_failing_fence_command_is_retried_with_backoff_and_a_hung_one_is_killed() {
    let mut topo = topology(2);
    let dir = tempfile::tempdir().unwrap();
    let runs = dir.path().join("runs.log");
    let mode = dir.path().join("mode");
    std::fs::write(&mode, "hang").unwrap();
    let script = dir.path().join("stonith.sh");
    drfailover_testkit::write_script(
        &script,
        format!(
            // The mode is read before the run is announced: the test changes it as soon as
            // it sees a run, which must not change that run.
            "#!/bin/sh\nmode=$(cat {mode})\necho run >> {runs}\ncase $mode in\n  hang) exec sleep 3600 ;;\n  \
             fail) exit 1 ;;\nesac\ncat >/dev/null\nexit 0\n",
            runs = runs.display(),
            mode = mode.display()
        ),
    )
    .unwrap();
    let fence = format!(
        "[fence]\ncommand = [\"{}\"]\ntimeout_ms = 1000\n",
        script.display()
    );
    let orch = Running::start(&topo.orchestrator_config("", &fence, &[]));
    let acked = write_ids(&topo, 0, 100);
    topo.wait_replicated(0, 1).unwrap();
    topo.wait_replicated(0, 2).unwrap();
    let count = || {
        std::fs::read_to_string(&runs)
            .unwrap_or_default()
            .lines()
            .count()
    };
    let wait_runs = |n: usize| {
        let t = Instant::now();
        while count() < n {
            assert!(t.elapsed() < Duration::from_secs(60), "{} runs", count());
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    topo.freeze(0).unwrap();
    // The hung command is killed at its timeout: a failure.
    wait_runs(1);
    std::fs::write(&mode, "fail").unwrap();
    let killed = orch.wait_for(EventKind::StepFailed, Duration::from_secs(30));
    assert!(
        killed.reason.contains("killed after 1000 ms"),
        "{}",
        killed.reason
    );
    // Then it fails at once, three times: one run per announced wait, whose ceiling doubles
    // (1 s, 2 s, 4 s; the wait is drawn below it), instead of one run per round.
    let first = Instant::now();
    wait_runs(4);
    let spent = first.elapsed();
    let failures = orch.events(EventKind::FailoverFailed);
    let waits: Vec<u64> = failures
        .iter()
        .filter_map(|e| {
            let rest = e.reason.split("next attempt in ").nth(1)?;
            rest.split(' ').next()?.parse().ok()
        })
        .collect();
    eprintln!(
        "runs 2 to 4 of a failing fence command took {spent:?}; announced waits {waits:?} ms"
    );
    for (i, ceiling) in ["1000", "2000", "4000"].iter().enumerate() {
        assert!(
            failures[i]
                .reason
                .contains(&format!("backoff ceiling {ceiling} ms")),
            "{}",
            failures[i].reason
        );
    }
    // Each run waited at least the wait announced by the failure before it.
    let at: Vec<Instant> = orch
        .events
        .timed()
        .into_iter()
        .filter(|(_, e)| e.kind == EventKind::FailoverFailed)
        .map(|(t, _)| t)
        .collect();
    for k in 0..2 {
        assert!(
            at[k + 1] - at[k] + Duration::from_millis(50) >= Duration::from_millis(waits[k]),
            "failure {} came {:?} after the one announcing a {} ms wait",
            k + 1,
            at[k + 1] - at[k],
            waits[k]
        );
    }
    assert!(count() <= failures.len() + 1, "{} runs", count());
    assert!(orch.events(EventKind::FailoverCompleted).is_empty());
    // Once it succeeds, the promotion goes on.
    std::fs::write(&mode, "ok").unwrap();
    let done = orch.wait_for(EventKind::FailoverCompleted, Duration::from_secs(60));
    let new = topo
        .nodes()
        .iter()
        .position(|n| Some(n.name()) == done.new_writer.as_deref())
        .unwrap();
    check_data(&topo, new, &acked, &[]);
    topo.thaw(0).unwrap();
}

/// Announcers run once the promotion is complete: a DNS server that never answers holds up
/// neither the repointing of the other replica nor semi-sync on the new primary.
#[test]
fn a_slow_announcer_runs_after_the_replicas_are_repointed() {
    let mut topo = topology(2);
    let dir = tempfile::tempdir().unwrap();
    // A DNS "server" that reads nothing and never answers.
    let silent = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let key = dir.path().join("tsig.key");
    std::fs::write(
        &key,
        "key \"k\" { algorithm hmac-sha256; secret \"c2VjcmV0LXNlY3JldC1zZWNyZXQtc2VjcmV0LXNlY3I=\"; };\n",
    )
    .unwrap();
    let announce = format!(
        "[[announce]]\nkind = \"rfc2136\"\nserver = \"{}\"\nzone = \"example.test\"\n\
         name = \"db.example.test\"\nkey_file = \"{}\"\n",
        silent.local_addr().unwrap(),
        key.display()
    );
    let text = topo.orchestrator_config("announce_timeout_ms = 3000", &announce, &[]);
    let orch = Running::start(&text);
    let acked = write_ids(&topo, 0, 50);
    topo.wait_replicated(0, 1).unwrap();
    topo.wait_replicated(0, 2).unwrap();
    topo.kill9(0).unwrap();
    let done = orch.wait_for(EventKind::FailoverCompleted, Duration::from_secs(30));
    let new = topo
        .nodes()
        .iter()
        .position(|n| Some(n.name()) == done.new_writer.as_deref())
        .unwrap();
    let position = |what: &str| {
        orch.events
            .all()
            .iter()
            .position(|e| e.reason.contains(what))
    };
    eventually("an announce step", Duration::from_secs(30), || {
        position("announce rfc2136").ok_or_else(|| "not yet".to_string())
    });
    let announced = position("announce rfc2136").unwrap();
    let repointed = position("repoint to").expect("other replica repointed");
    let semi_sync = position("enable semi-sync").expect("semi-sync step");
    assert!(
        repointed < announced && semi_sync < announced,
        "announced at event #{announced}, repointed #{repointed}, semi-sync #{semi_sync}"
    );
    check_data(&topo, new, &acked, &[]);
    drop(silent);
}

/// Wait until the client pinned to the primary's address has written (20 acknowledged).
fn wait_pinned_writes(direct: &drfailover_testkit::DirectWriter) {
    eventually(
        "the pinned client writes",
        Duration::from_secs(20),
        || match direct.acked().len() {
            n if n >= 20 => Ok(()),
            n => Err(format!("{n} acknowledged")),
        },
    );
}

/// The index of the node `done` (a `FailoverCompleted` event) names as the new writer.
fn promoted_index(topo: &Topology, done: &Event) -> usize {
    topo.nodes()
        .iter()
        .position(|n| Some(n.name()) == done.new_writer.as_deref())
        .expect("a replica was promoted")
}

/// `@@rpl_semi_sync_master_timeout` on node `i`.
fn semi_sync_timeout(topo: &Topology, i: usize) -> String {
    topo.node(i)
        .sql_value("SELECT @@rpl_semi_sync_master_timeout")
        .unwrap()
        .unwrap_or_default()
}

/// The hazard the orchestrator's hold removes: a primary frozen past the promotion comes back
/// while the orchestrator cannot reach it (cut off from the host's network), but a client on
/// the same machine still can. Left to itself the server would, after its own 1 s timeout,
/// fall back to asynchronous replication and acknowledge that client's writes, which the new
/// primary never receives. Held, those commits wait until the orchestrator sees the node
/// again and fences it.
#[test]
fn a_primary_frozen_far_longer_than_its_own_semi_sync_timeout_acknowledges_nothing_lost() {
    let mut topo = Topology::primary_replicas_in_lab(2)
        .unwrap_or_else(|e| panic!("cannot start MariaDB topology in a lab: {e}"));
    // The servers' own fallback to asynchronous replication would come after 1 s.
    for i in 0..3 {
        topo.node(i)
            .sql("SET GLOBAL rpl_semi_sync_master_timeout=1000")
            .unwrap();
    }
    topo.allow_app_over_socket(0).unwrap();
    let text = config_text(&topo, "", &[]);
    let mut orch = Running::start(&text);
    let hold = drfailover_orchestrator::core::HOLD_TIMEOUT_MS.to_string();
    eventually(
        "the orchestrator holds the primary's commits",
        Duration::from_secs(20),
        || match semi_sync_timeout(&topo, 0) {
            v if v == hold => Ok(()),
            v => Err(format!("rpl_semi_sync_master_timeout = {v}")),
        },
    );
    let load = Load::start(&topo, 4);
    load.wait_progress(200, Duration::from_secs(20));
    // A client pinned to the primary (its Unix socket: no network cut separates them) keeps
    // writing through it all.
    let direct = drfailover_testkit::DirectWriter::over_socket(&topo, 0, 10_000_000, |id| {
        format!("INSERT INTO t VALUES ({id}, 99)")
    });
    wait_pinned_writes(&direct);
    topo.freeze(0).unwrap();
    let frozen_at = Instant::now();
    let done = orch.wait_for(EventKind::FailoverCompleted, Duration::from_secs(30));
    let promoted_at = Instant::now();
    let new_index = promoted_index(&topo, &done);
    assert_ne!(new_index, 0);
    load.wait_progress(200, Duration::from_secs(20));
    // The orchestrator loses the old primary before it runs again.
    topo.partition_from_host(0).unwrap();
    // The freeze lasts six times the server's own timeout, then the old primary runs, out of
    // the orchestrator's reach, for five times that timeout.
    let freeze = Duration::from_secs(6);
    std::thread::sleep(freeze.saturating_sub(frozen_at.elapsed()));
    topo.thaw(0).unwrap();
    std::thread::sleep(Duration::from_secs(5));
    topo.heal_from_host(0).unwrap();
    orch.wait_for(EventKind::Fenced, Duration::from_secs(20));
    eventually(
        "the old primary is read-only",
        Duration::from_secs(20),
        || match read_only(&topo, 0).as_str() {
            "1" => Ok(()),
            v => Err(format!("read_only = {v}")),
        },
    );
    let direct_acked = direct.stop();
    let (acked, unknown, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "failed statements: {:?}",
        &failed[..failed.len().min(5)]
    );
    let on_new: HashSet<u64> = ids_on(&topo, new_index).into_iter().collect();
    let late: Vec<u64> = direct_acked
        .iter()
        .filter(|(id, _, ok_at)| *ok_at >= promoted_at && !on_new.contains(id))
        .map(|(id, _, _)| *id)
        .collect();
    assert!(
        late.is_empty(),
        "the old primary acknowledged {} write(s) after the promotion that the new primary \
         lacks (e.g. {:?})",
        late.len(),
        &late[..late.len().min(10)]
    );
    let mut all_acked = acked.clone();
    all_acked.extend(direct_acked.iter().map(|(id, _, _)| *id));
    check_data(&topo, new_index, &all_acked, &unknown_with_direct(&unknown));
    orch.stop();
    // A clean exit gives the servers their own timeout back.
    assert_eq!(semi_sync_timeout(&topo, new_index), "1000");
}

/// The user holding the orchestrators' lock `name` on node `i` (`None`: free or unreachable),
/// and its session id.
fn lock_holder(topo: &Topology, i: usize, name: &str) -> Option<(String, String)> {
    let id = topo
        .node(i)
        .sql_value(&format!("SELECT IS_USED_LOCK('{name}')"))
        .ok()??;
    let user = topo
        .node(i)
        .sql_value(&format!(
            "SELECT USER FROM information_schema.PROCESSLIST WHERE ID = {id}"
        ))
        .ok()??;
    Some((user, id))
}

#[test]
fn two_orchestrators_holding_a_minority_of_the_locks_each_still_fail_over() {
    let mut topo = topology(2);
    // A second orchestrators' account, so that who holds which lock can be told apart.
    for i in 0..3 {
        topo.node(i)
            .sql_batch(&[
                "SET sql_log_bin=0",
                "CREATE USER IF NOT EXISTS 'orc2'@'127.%' IDENTIFIED BY 'orc2-secret-pw'",
                "GRANT ALL PRIVILEGES ON *.* TO 'orc2'@'127.%'",
                "SET sql_log_bin=1",
            ])
            .unwrap();
    }
    let text_a = config_text(&topo, "", &[]);
    let text_b = text_a.replace(
        &format!("user = \"{ADMIN_USER}\"\npassword = \"{ADMIN_PASSWORD}\""),
        "user = \"orc2\"\npassword = \"orc2-secret-pw\"",
    );
    assert_ne!(text_a, text_b, "the second orchestrator logs in as orc2");
    let lock = Config::parse(&text_a).unwrap().lock_name;
    let a = Running::start(&text_a);
    a.wait_healthy();
    let b = Running::start(&text_b);
    let load = Load::start(&topo, 4);
    load.wait_progress(200, Duration::from_secs(20));
    // Hand the lock on node 2 to the second orchestrator: end the first one's lock session
    // there until the second takes it. The first keeps nodes 1 and 3 (it leads).
    eventually(
        "the second orchestrator holds the lock on node 2",
        Duration::from_secs(30),
        || match lock_holder(&topo, 1, &lock) {
            Some((user, _)) if user == "orc2" => Ok(()),
            Some((user, id)) => {
                let _ = topo.node(1).sql(&format!("KILL CONNECTION {id}"));
                Err(format!("{user} holds it"))
            }
            None => Err("nobody holds it".into()),
        },
    );
    // At once: with the primary gone each orchestrator holds one of the two remaining locks.
    topo.kill9(0).unwrap();
    let promoted = eventually(
        "one of the orchestrators promotes a replica",
        Duration::from_secs(30),
        || {
            a.events(EventKind::FailoverCompleted)
                .into_iter()
                .chain(b.events(EventKind::FailoverCompleted))
                .next()
                .ok_or_else(|| {
                    format!(
                        "no failover; locks: node 2 {:?}, node 3 {:?}",
                        lock_holder(&topo, 1, &lock).map(|h| h.0),
                        lock_holder(&topo, 2, &lock).map(|h| h.0)
                    )
                })
        },
    );
    let new = promoted_index(&topo, &promoted);
    load.wait_progress(200, Duration::from_secs(20));
    let (acked, unknown, failed) = load.finish();
    assert!(
        failed.is_empty(),
        "failed statements: {:?}",
        &failed[..failed.len().min(5)]
    );
    check_data(&topo, new, &acked, &unknown);
    let both =
        a.events(EventKind::FailoverCompleted).len() + b.events(EventKind::FailoverCompleted).len();
    assert_eq!(
        both, 1,
        "exactly one promotion between the two orchestrators"
    );
}

#[test]
fn a_replica_that_misses_the_first_start_up_probe_is_looked_at_again_before_refusing() {
    let mut topo = topology(2);
    let text = config_text(&topo, "", &[]);
    // A replica frozen through the first start-up round (its probe times out), running again
    // 500 ms later, before the start-up's last look.
    topo.freeze(2).unwrap();
    let pid = topo.node(2).pid().expect("node3 runs").to_string();
    let thaw = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(500));
        let status = std::process::Command::new("kill")
            .args(["-CONT", &pid])
            .status()
            .expect("run kill -CONT");
        assert!(status.success(), "kill -CONT {pid}: {status}");
    });
    let config = Config::parse(&text).unwrap();
    let notifier = Arc::new(Notifier::new(64, 1, Instant::now()).unwrap());
    let mut orch = Orchestrator::new(config, notifier, 1);
    let started = Instant::now();
    let result = orch.start();
    thaw.join().unwrap();
    topo.thaw(2).unwrap();
    assert!(
        result.is_ok(),
        "start refused after {:?}: {}",
        started.elapsed(),
        result.unwrap_err()
    );
    // A node that stays silent is still refused, after the same few looks.
    topo.freeze(1).unwrap();
    let config = Config::parse(&text).unwrap();
    let notifier = Arc::new(Notifier::new(64, 1, Instant::now()).unwrap());
    let mut orch = Orchestrator::new(config, notifier, 1);
    let refused = orch.start().expect_err("a frozen replica is refused");
    topo.thaw(1).unwrap();
    assert!(refused.contains("node2"), "{refused}");
}
