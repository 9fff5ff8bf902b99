//! End to end through DNS: the orchestrator promotes, announces through a real BIND (RFC 2136
//! + TSIG), and a drfailover client configured only by name follows it. Data checked.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use drfailover_conn::{Client, Error};
use drfailover_notify::{Event, EventKind, Notifier};
use drfailover_orchestrator::{Config, Orchestrator};
use drfailover_testkit::bind::BindServer;
use drfailover_testkit::{
    eventually, EventLog, Topology, WriteOutcome, Writers, APP_DATABASE, APP_PASSWORD, APP_USER,
};

/// An orchestrator for `topo` announcing name `db` of `bind`'s zone, running on a thread,
/// its events logged.
struct Announcing {
    events: EventLog<Event>,
    stop: Arc<AtomicBool>,
    runner: JoinHandle<()>,
    notifier: Arc<Notifier>,
}

impl Announcing {
    /// Start it (blocks for its start-up checks); panics when it refuses.
    fn start(topo: &Topology, bind: &BindServer) -> Announcing {
        let mut text = topo.orchestrator_config("", "", &[]);
        text.push_str(&format!("\n[[announce]]\n{}", bind.rfc2136_announcer("db")));
        let config = Config::parse(&text).unwrap_or_else(|e| panic!("config: {e}"));
        let notifier = Arc::new(Notifier::new(1024, 1, Instant::now()).unwrap());
        let events = EventLog::new();
        let log = events.clone();
        notifier.subscribe(move |e| {
            eprintln!("orchestrator: {}", e.summary());
            log.push(e.clone());
        });
        let mut orch = Orchestrator::new(config, notifier.clone(), 1);
        orch.start()
            .unwrap_or_else(|e| panic!("orchestrator refused to start: {e}"));
        let stop = Arc::new(AtomicBool::new(false));
        let running = stop.clone();
        let runner = std::thread::spawn(move || {
            let (_requests, rx) = crossbeam_channel::bounded(1);
            orch.run(&running, &rx);
        });
        Announcing {
            events,
            stop,
            runner,
            notifier,
        }
    }

    /// A step whose description starts with `prefix` completed, waiting up to `within`.
    fn wait_step(&self, prefix: &str, within: Duration) -> (Instant, Event) {
        self.events
            .find_within(within, |e| {
                e.kind == EventKind::StepCompleted && e.reason.starts_with(prefix)
            })
            .unwrap_or_else(|| {
                panic!(
                    "no `{prefix}` step within {within:?}; events: {:?}",
                    self.events
                        .all()
                        .iter()
                        .map(Event::summary)
                        .collect::<Vec<_>>()
                )
            })
    }

    /// Stop it and wait for its thread. Blocks for its round in progress.
    fn stop(self) {
        self.stop.store(true, Ordering::SeqCst);
        self.runner.join().unwrap();
        self.notifier.close(Duration::from_secs(1));
    }
}

#[test]
fn orchestrator_promotes_updates_bind_and_a_client_by_name_follows() {
    let mut topo = Topology::primary_replicas(2)
        .unwrap_or_else(|e| panic!("cannot start MariaDB topology: {e}"));
    let primary_ip = IpAddr::V4(topo.node(0).ip());
    let bind = BindServer::start("example.test", &[("db", primary_ip)], 1)
        .unwrap_or_else(|e| panic!("cannot start BIND: {e}"));
    let orchestrator = Announcing::start(&topo, &bind);

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
    let writer = client.clone();
    let writers = Writers::start(4, move |id| {
        match writer.query(&format!("INSERT INTO t VALUES ({id})")) {
            Ok(_) => WriteOutcome::Acknowledged,
            Err(Error::OutcomeUnknown(_)) => WriteOutcome::Unknown,
            Err(e) => WriteOutcome::Failed(e.to_string()),
        }
    });
    writers.wait_acknowledged(200, Duration::from_secs(20));

    topo.kill9(0).unwrap();
    let (writable_at, completed) = orchestrator
        .events
        .find_within(Duration::from_secs(20), |e| {
            e.kind == EventKind::FailoverCompleted
        })
        .expect("no failover");
    let new_writer = completed.new_writer.expect("the promoted node's name");
    let new_index = topo
        .nodes()
        .iter()
        .position(|n| n.name() == new_writer)
        .unwrap();
    // The announcement happened, and the client wrote to the new primary through the name.
    let first_after = writers.acknowledged().first_after(
        "a write through the name after the promotion",
        writable_at,
        Duration::from_secs(20),
    );
    eprintln!(
        "promotion -> first acknowledged write through the name: {:?}",
        first_after - writable_at
    );
    orchestrator.wait_step("announce rfc2136", Duration::from_secs(10));
    std::thread::sleep(Duration::from_millis(300));
    let ledger = writers.stop();
    client.close();
    orchestrator.stop();

    assert!(
        ledger.failed.is_empty(),
        "failed statements: {:?}",
        ledger.failed
    );
    topo.node(new_index).assert_writes(
        "SELECT id FROM app.t",
        &ledger.acknowledged,
        &ledger.unknown,
    );
}

#[test]
fn a_primary_promoted_by_hand_is_adopted_and_announced_to_bind() {
    let topo = Topology::primary_replicas(2)
        .unwrap_or_else(|e| panic!("cannot start MariaDB topology: {e}"));
    let bind = BindServer::start("example.test", &[("db", IpAddr::V4(topo.node(0).ip()))], 1)
        .unwrap_or_else(|e| panic!("cannot start BIND: {e}"));
    let orchestrator = Announcing::start(&topo, &bind);

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
    eventually(
        "BIND answers the promoted node's address",
        Duration::from_secs(30),
        || match bind.query(&format!("db.{}", bind.zone()), "A") {
            Ok(answer) if answer == [new_ip.clone()] => Ok(()),
            other => Err(format!("BIND answers {other:?}, not {new_ip}")),
        },
    );
    orchestrator.wait_step("adopted", Duration::from_secs(5));
    orchestrator.wait_step("announce rfc2136", Duration::from_secs(5));
    orchestrator.stop();
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
