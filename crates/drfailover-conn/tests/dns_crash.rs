//! A DNS failover record (real dnsmasq, TTL 1 s) flipped after a *crash*: the primary is
//! killed, the replica promoted (relay log applied first), then the name flipped. While no
//! writer is known the client must ask the name again the moment its real TTL runs out —
//! here `dns_min_ttl_ms=5000` would otherwise hold the stale answer for 5 s — and try the new
//! address at once. Data checks: every acknowledged write is on the new primary, nothing
//! else is there, nothing twice (primary key).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_conn::{Client, Config, Error, EventKind};
use drfailover_testkit::dnsmasq::DnsServer;
use drfailover_testkit::{Topology, WriteOutcome, Writers, APP_DATABASE, APP_PASSWORD, APP_USER};

const NAME: &str = "db.drfailover.test";

#[test]
fn client_follows_a_record_flipped_after_a_crash_within_its_ttl() {
    let mut topo =
        Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"));
    let (ip0, ip1) = (topo.node(0).ip(), topo.node(1).ip());
    let dns = DnsServer::start(&[(NAME, ip0)], 1).unwrap_or_else(|e| panic!("{e}"));
    let dsn = format!(
        "mysql://{APP_USER}:{APP_PASSWORD}@{NAME}:{}/{APP_DATABASE}?nameserver={}&dns_min_ttl_ms=5000&failover_timeout_ms=20000",
        topo.node(0).port(),
        dns.address()
    );
    let events = Arc::new(Mutex::new(Vec::new()));
    let e2 = events.clone();
    let client = Arc::new(
        Client::builder(Config::from_dsn(&dsn).unwrap())
            .on_event(move |e| e2.lock().unwrap().push(e.kind))
            .connect()
            .unwrap(),
    );
    client.wait_ready(Duration::from_secs(5)).unwrap();
    client
        .query("CREATE TABLE t (id BIGINT PRIMARY KEY)")
        .unwrap();

    let writer = client.clone();
    let writers = Writers::start(4, move |id| {
        match writer.query(&format!("INSERT INTO t VALUES ({id})")) {
            Ok(_) => WriteOutcome::Acknowledged,
            Err(Error::OutcomeUnknown(_)) => WriteOutcome::Unknown,
            Err(Error::NoWriter { .. }) => WriteOutcome::NotSent, // not sent anywhere
            Err(e) => WriteOutcome::Failed(e.to_string()),
        }
    });
    let acked = writers.acknowledged().clone();
    // Let the name's answer age past the clamp's reach: the writer is known for > 1 TTL.
    std::thread::sleep(Duration::from_millis(1500));
    assert!(!acked.all().is_empty(), "no write before the crash");

    topo.kill9(0).unwrap();
    topo.promote(1).unwrap();
    dns.set(&[(NAME, ip1)]).unwrap();
    let flipped = Instant::now();
    let first_after = acked.first_after(
        "a write acknowledged after the DNS flip",
        flipped,
        Duration::from_secs(10),
    ) - flipped;
    eprintln!("crash, promote, DNS flip (TTL 1 s): first acknowledged write {first_after:?} after the flip");
    // TTL 1 s plus generous slack for a loaded machine — and far below the 5 s min clamp,
    // which must not apply while no writer is known.
    assert!(
        first_after < Duration::from_millis(3000),
        "the flip was followed after {first_after:?}"
    );
    std::thread::sleep(Duration::from_millis(300));
    let ledger = writers.stop();
    assert!(
        ledger.failed.is_empty(),
        "writes failed: {:?}",
        ledger.failed
    );

    let state = client.state();
    assert_eq!(state.endpoints[0].address, Some(ip1.into()));
    assert!(state.ready, "{state:?}");
    assert!(events.lock().unwrap().contains(&EventKind::DnsChanged));
    topo.node(1).assert_writes(
        "SELECT id FROM app.t",
        &ledger.acknowledged,
        &ledger.unknown,
    );
    client.close();
}
