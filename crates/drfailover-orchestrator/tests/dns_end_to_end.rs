//! End to end through DNS: the orchestrator promotes, announces through a real BIND (RFC 2136
//! + TSIG), and a drfailover client configured only by name follows it. Data checked.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_conn::{Client, Error};
use drfailover_notify::{Event, EventKind, Notifier};
use drfailover_orchestrator::{Config, Orchestrator};
use drfailover_testkit::bind::BindServer;
use drfailover_testkit::{Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

#[test]
fn orchestrator_promotes_updates_bind_and_a_client_by_name_follows() {
    let mut topo = Topology::primary_replicas(2)
        .unwrap_or_else(|e| panic!("cannot start MariaDB topology: {e}"));
    let primary_ip = IpAddr::V4(topo.node(0).ip());
    let bind = BindServer::start("example.test", &[("db", primary_ip)], 1)
        .unwrap_or_else(|e| panic!("cannot start BIND: {e}"));
    let mut text = topo.orchestrator_config("", "", &[]);
    text.push_str(&format!("\n[[announce]]\n{}", bind.rfc2136_announcer("db")));
    let config = Config::parse(&text).unwrap_or_else(|e| panic!("config: {e}"));
    let notifier = Arc::new(Notifier::new(1024, 1, Instant::now()).unwrap());
    let events: Arc<Mutex<Vec<(Instant, Event)>>> = Arc::default();
    let ev = events.clone();
    notifier.subscribe(move |e| {
        eprintln!("orchestrator: {}", e.summary());
        ev.lock().unwrap().push((Instant::now(), e.clone()));
    });
    let mut orch = Orchestrator::new(config, notifier.clone(), 1);
    orch.start()
        .unwrap_or_else(|e| panic!("orchestrator refused to start: {e}"));
    let stop = Arc::new(AtomicBool::new(false));
    let (_tx, rx) = crossbeam_channel::bounded(1);
    let s = stop.clone();
    let runner = std::thread::spawn(move || orch.run(&s, &rx));

    // A client that knows only the name, resolving through BIND.
    let dsn = format!(
        "mysql://{APP_USER}:{APP_PASSWORD}@db.{}:{}/{APP_DATABASE}?nameserver={}&probe_interval_ms=50&failover_timeout_ms=30000",
        bind.zone(),
        topo.node(0).port(),
        bind.address()
    );
    let client = Arc::new(Client::connect_dsn(&dsn).expect("client by name"));
    client
        .wait_ready(Duration::from_secs(10))
        .expect("writer by name");
    client
        .query("CREATE TABLE t (id BIGINT PRIMARY KEY)")
        .expect("create");
    let next = Arc::new(AtomicU64::new(1));
    let acked: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let unknown: Arc<Mutex<Vec<u64>>> = Arc::default();
    let failed: Arc<Mutex<Vec<String>>> = Arc::default();
    let writing = Arc::new(AtomicBool::new(true));
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (client, next, acked, unknown, failed, writing) = (
                client.clone(),
                next.clone(),
                acked.clone(),
                unknown.clone(),
                failed.clone(),
                writing.clone(),
            );
            std::thread::spawn(move || {
                while writing.load(Ordering::Relaxed) {
                    let id = next.fetch_add(1, Ordering::Relaxed);
                    match client.query(&format!("INSERT INTO t VALUES ({id})")) {
                        Ok(_) => acked.lock().unwrap().push((id, Instant::now())),
                        Err(Error::OutcomeUnknown(_)) => unknown.lock().unwrap().push(id),
                        Err(e) => failed.lock().unwrap().push(format!("{id}: {e}")),
                    }
                }
            })
        })
        .collect();
    let t = Instant::now();
    while acked.lock().unwrap().len() < 200 {
        assert!(t.elapsed() < Duration::from_secs(20), "no writes by name");
        std::thread::sleep(Duration::from_millis(5));
    }

    topo.kill9(0).unwrap();
    let t = Instant::now();
    let (writable_at, new_writer) = loop {
        let found = events
            .lock()
            .unwrap()
            .iter()
            .find(|(_, e)| e.kind == EventKind::FailoverCompleted)
            .map(|(at, e)| (*at, e.new_writer.clone().unwrap()));
        if let Some(f) = found {
            break f;
        }
        assert!(t.elapsed() < Duration::from_secs(20), "no failover");
        std::thread::sleep(Duration::from_millis(5));
    };
    let new_index = topo
        .nodes()
        .iter()
        .position(|n| n.name() == new_writer)
        .unwrap();
    // The announcement happened, and the client wrote to the new primary through the name.
    let t = Instant::now();
    let first_after = loop {
        let first = acked
            .lock()
            .unwrap()
            .iter()
            .find(|(_, at)| *at > writable_at)
            .map(|(_, at)| *at);
        if let Some(at) = first {
            break at;
        }
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "no write through the name after the promotion; failed: {:?}",
            failed.lock().unwrap().iter().take(3).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(2));
    };
    eprintln!(
        "promotion -> first acknowledged write through the name: {:?}",
        first_after - writable_at
    );
    let t = Instant::now();
    while !events.lock().unwrap().iter().any(|(_, e)| {
        e.kind == EventKind::StepCompleted && e.reason.starts_with("announce rfc2136")
    }) {
        assert!(
            t.elapsed() < Duration::from_secs(10),
            "no announce step completed"
        );
        std::thread::sleep(Duration::from_millis(5));
    }
    std::thread::sleep(Duration::from_millis(300));
    writing.store(false, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    client.close();
    stop.store(true, Ordering::SeqCst);
    runner.join().unwrap();
    notifier.close(Duration::from_secs(1));

    let failed = failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "failed statements: {failed:?}");
    let r = topo.node(new_index).sql("SELECT id FROM app.t").unwrap();
    let present: HashSet<u64> = (0..r.num_rows())
        .map(|i| r.text(i, 0).unwrap().parse().unwrap())
        .collect();
    let acked: Vec<u64> = acked.lock().unwrap().iter().map(|(id, _)| *id).collect();
    let lost: Vec<&u64> = acked.iter().filter(|id| !present.contains(id)).collect();
    assert!(lost.is_empty(), "{} acknowledged writes lost", lost.len());
    let unknown: HashSet<u64> = unknown.lock().unwrap().iter().copied().collect();
    let known: HashSet<u64> = acked.iter().copied().chain(unknown).collect();
    assert!(present.iter().all(|id| known.contains(id)), "phantom rows");
}

#[test]
fn a_primary_promoted_by_hand_is_adopted_and_announced_to_bind() {
    let topo = Topology::primary_replicas(2)
        .unwrap_or_else(|e| panic!("cannot start MariaDB topology: {e}"));
    let bind = BindServer::start("example.test", &[("db", IpAddr::V4(topo.node(0).ip()))], 1)
        .unwrap_or_else(|e| panic!("cannot start BIND: {e}"));
    let mut text = topo.orchestrator_config("", "", &[]);
    text.push_str(&format!("\n[[announce]]\n{}", bind.rfc2136_announcer("db")));
    let config = Config::parse(&text).unwrap_or_else(|e| panic!("config: {e}"));
    let notifier = Arc::new(Notifier::new(1024, 1, Instant::now()).unwrap());
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let ev = events.clone();
    notifier.subscribe(move |e| {
        eprintln!("orchestrator: {}", e.summary());
        ev.lock().unwrap().push(e.clone());
    });
    let mut orch = Orchestrator::new(config, notifier.clone(), 1);
    orch.start()
        .unwrap_or_else(|e| panic!("orchestrator refused to start: {e}"));
    let stop = Arc::new(AtomicBool::new(false));
    let (_tx, rx) = crossbeam_channel::bounded(1);
    let s = stop.clone();
    let runner = std::thread::spawn(move || orch.run(&s, &rx));

    // Data written on the old primary before the hand promotion.
    topo.node(0)
        .sql_batch(&[
            "CREATE TABLE app.h (id BIGINT PRIMARY KEY)",
            "INSERT INTO app.h VALUES (1), (2), (3)",
        ])
        .unwrap();
    topo.wait_replicated(0, 1).unwrap();
    // A person promotes node2: the old primary read-only first, then node2 detached and
    // writable.
    topo.node(0).sql("SET GLOBAL read_only=1").unwrap();
    topo.node(1)
        .sql_batch(&["STOP SLAVE", "RESET SLAVE ALL", "SET GLOBAL read_only=0"])
        .unwrap();
    let new_ip = topo.node(1).ip().to_string();
    let t = Instant::now();
    loop {
        let answer = bind.query(&format!("db.{}", bind.zone()), "A");
        if answer.as_deref() == Ok(std::slice::from_ref(&new_ip)) {
            break;
        }
        assert!(
            t.elapsed() < Duration::from_secs(30),
            "BIND still answers {answer:?} for the name, not {new_ip}; events: {:?}",
            events
                .lock()
                .unwrap()
                .iter()
                .map(|e| e.summary())
                .collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    stop.store(true, Ordering::SeqCst);
    runner.join().unwrap();
    notifier.close(Duration::from_secs(1));
    let events = events.lock().unwrap().clone();
    assert!(
        events
            .iter()
            .any(|e| e.kind == EventKind::StepCompleted && e.reason.starts_with("adopted")),
        "no adoption event"
    );
    assert!(
        events.iter().any(|e| e.kind == EventKind::StepCompleted
            && e.reason.starts_with("announce rfc2136")),
        "no announce step"
    );
    let r = topo.node(1).sql("SELECT COUNT(*) FROM app.h").unwrap();
    assert_eq!(
        r.text(0, 0),
        Some("3"),
        "the rows written before the promotion"
    );
    assert_eq!(
        topo.node(1)
            .sql_value("SELECT @@read_only")
            .unwrap()
            .as_deref(),
        Some("0")
    );
}
