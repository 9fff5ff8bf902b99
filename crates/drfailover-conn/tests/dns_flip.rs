//! A DNS failover record (real dnsmasq, TTL 1 s) flipping between two real nodes.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_conn::{Client, Config, Error, Event, EventKind};
use drfailover_testkit::dnsmasq::DnsServer;
use drfailover_testkit::{
    eventually, Topology, WriteOutcome, Writers, APP_DATABASE, APP_PASSWORD, APP_USER,
};

const NAME: &str = "db.drfailover.test";

fn app_connections(topo: &Topology, node: usize) -> u64 {
    topo.node(node)
        .sql_value("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER = 'app'")
        .unwrap()
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn client_follows_a_flipped_dns_record_to_the_new_writer() {
    let topo = Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"));
    let (ip0, ip1) = (topo.node(0).ip(), topo.node(1).ip());
    let dns = DnsServer::start(&[(NAME, ip0)], 1).unwrap_or_else(|e| panic!("{e}"));
    let dsn = format!(
        "mysql://{APP_USER}:{APP_PASSWORD}@{NAME}:{}/{APP_DATABASE}?nameserver={}&dns_min_ttl_ms=100&probe_interval_ms=50&failover_timeout_ms=20000",
        topo.node(0).port(),
        dns.address()
    );
    let events: Arc<Mutex<Vec<(Instant, Event)>>> = Arc::default();
    let e2 = events.clone();
    let client = Arc::new(
        Client::builder(Config::from_dsn(&dsn).unwrap())
            .on_event(move |e| e2.lock().unwrap().push((Instant::now(), e.clone())))
            .connect()
            .unwrap(),
    );
    client.wait_ready(Duration::from_secs(5)).unwrap();
    assert_eq!(client.state().endpoints[0].address, Some(ip0.into()));
    client
        .query("CREATE TABLE t (id BIGINT PRIMARY KEY)")
        .unwrap();

    let writer = client.clone();
    let writers = Writers::start(4, move |id| {
        match writer.query(&format!("INSERT INTO t VALUES ({id})")) {
            Ok(_) => WriteOutcome::Acknowledged,
            Err(Error::OutcomeUnknown(_)) => WriteOutcome::Unknown,
            Err(e) => WriteOutcome::Failed(e.to_string()),
        }
    });
    let acked = writers.acknowledged().clone();
    // Writes in flight before the switchover (however slow the machine is).
    writers.wait_acknowledged(20, Duration::from_secs(20));
    assert!(app_connections(&topo, 0) > 0);

    // Switchover: fence the old primary, let the replica apply everything, promote it, flip
    // the record. Writes rejected as read-only in between are retried, not lost.
    topo.fence(0).unwrap();
    topo.wait_replicated(0, 1).unwrap();
    topo.promote(1).unwrap();
    dns.set(&[(NAME, ip1)]).unwrap();
    let flipped = Instant::now();
    let first_after = acked.first_after(
        "a write acknowledged after the DNS flip",
        flipped,
        Duration::from_secs(10),
    ) - flipped;
    eprintln!("DNS flip (TTL 1 s) -> first acknowledged write on the new address: {first_after:?}");
    std::thread::sleep(Duration::from_millis(300));
    let ledger = writers.stop();
    assert!(
        ledger.failed.is_empty(),
        "writes failed: {:?}",
        ledger.failed
    );

    let state = client.state();
    assert_eq!(state.endpoints[0].address, Some(ip1.into()));
    assert!(state.ready && state.generation >= 2, "{state:?}");
    let events = events.lock().unwrap();
    let dns_changed = events
        .iter()
        .find(|(_, e)| e.kind == EventKind::DnsChanged)
        .expect("dns_changed event");
    assert_eq!(dns_changed.1.reason, format!("{ip0} -> {ip1}"));
    // Every acknowledged write is on the new primary; nothing else is there.
    topo.node(1).assert_writes(
        "SELECT id FROM app.t",
        &ledger.acknowledged,
        &ledger.unknown,
    );
    // Connections to the old address were closed (idle at once, leased on release).
    eventually(
        "the connections to the old address are closed",
        Duration::from_secs(5),
        || match app_connections(&topo, 0) {
            0 => Ok(()),
            open => Err(format!("{open} still open")),
        },
    );
    client.close();
}

#[test]
fn unresolvable_names_are_reported_not_fatal() {
    let dns = DnsServer::start(&[], 1).unwrap_or_else(|e| panic!("{e}"));
    let dsn = format!(
        "mysql://app@nowhere.drfailover.test:3306/app?nameserver={}&failover_timeout_ms=200&dns_timeout_ms=200",
        dns.address()
    );
    let client =
        Client::connect_dsn(&dsn).expect("a client starts even when a name does not resolve");
    assert!(matches!(
        client.query("SELECT 1"),
        Err(Error::NoWriter { .. })
    ));
    assert!(Config::from_dsn("mysql://app@h/db?nameserver=not-an-ip").is_err());
}
