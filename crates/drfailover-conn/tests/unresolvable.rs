//! A host name that does not resolve never blocks or fails the client: a real DNS server
//! on loopback that never answers (a UDP socket nobody reads) and a real one that says "no
//! such name" (dnsmasq), next to real MariaDB nodes given by IP address. The name is an
//! endpoint that is down (`endpoint_down`, reason `unresolved: …`), `connect` returns within
//! its bound, the writer works, and a lookup hanging in the monitor never delays noticing a
//! failover. Data checks: every acknowledged write is on the new primary, nothing twice.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use drfailover_conn::{Client, Config, Error, Event, EventKind};
use drfailover_testkit::dnsmasq::DnsServer;
use drfailover_testkit::{EventLog, Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

const NAME: &str = "slowname.drfailover.test";

/// A DNS "server" on 127.0.0.1 that receives queries and never answers.
fn silent_dns() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").expect("bind a UDP socket on loopback")
}

type Events = EventLog<Event>;

fn connect(dsn: &str) -> (Client, Events, Duration) {
    let events = Events::new();
    let e2 = events.clone();
    let started = Instant::now();
    let client = Client::builder(Config::from_dsn(dsn).unwrap())
        .on_event(move |e| e2.push(e.clone()))
        .connect()
        .unwrap_or_else(|e| panic!("connect with an unresolvable name failed: {e}"));
    (client, events, started.elapsed())
}

fn name_down(e: &Event) -> bool {
    e.kind == EventKind::EndpointDown
        && e.endpoint.as_deref().is_some_and(|n| n.starts_with(NAME))
        && e.reason.starts_with("unresolved: ")
}

/// One healthy writer by IP address plus one name the server at `nameserver` cannot resolve,
/// in both orders: `connect` is quick (it does not wait for the name once the writer is
/// known), writes work, and the name is reported down with the reason.
fn ip_writer_and_unresolvable_name(nameserver: &str, dns_timeout_ms: u64, why: &str) {
    let topo = Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"));
    let node = topo.node(0).addr().to_string();
    let port = topo.node(0).port();
    for (round, hosts) in [
        format!("{node},{NAME}:{port}"),
        format!("{NAME}:{port},{node}"),
    ]
    .into_iter()
    .enumerate()
    {
        let dsn = format!(
            "mysql://{APP_USER}:{APP_PASSWORD}@{hosts}/{APP_DATABASE}?nameserver={nameserver}&probe_timeout_ms=50&connect_timeout_ms=50&dns_timeout_ms={dns_timeout_ms}"
        );
        let (client, events, took) = connect(&dsn);
        // The bound is probe_timeout + 2 x dns_timeout; with the writer up it is not waited
        // for: well under one dns_timeout even on a loaded machine.
        assert!(
            took < Duration::from_millis(dns_timeout_ms),
            "connect took {took:?} (hosts {hosts})"
        );
        assert!(client.state().ready, "writer known at connect ({hosts})");
        if round == 0 {
            client
                .query("CREATE TABLE t (id BIGINT PRIMARY KEY)")
                .unwrap();
        }
        client
            .query(&format!("INSERT INTO t VALUES ({round})"))
            .unwrap();
        let down = events.wait_for(
            &format!("endpoint_down for {NAME} ({hosts})"),
            Duration::from_millis(2 * dns_timeout_ms + 5000),
            name_down,
        );
        eprintln!("{hosts}: connect {took:?}; {down:?}");
        assert!(down.reason.contains(why), "{down:?}");
        let state = client.state();
        let named = state
            .endpoints
            .iter()
            .find(|s| s.endpoint.host == NAME)
            .unwrap();
        assert_eq!(named.address, None);
        assert_eq!(
            named.last_outcome,
            Some(drfailover_conn::OutcomeClass::Unresolved)
        );
        // Still writing after the name was declared down.
        client
            .query(&format!("INSERT INTO t VALUES ({})", round + 10))
            .unwrap();
    }
    // Data: every write is there once.
    assert_eq!(
        topo.node(0)
            .sql_value("SELECT GROUP_CONCAT(id ORDER BY id) FROM app.t")
            .unwrap()
            .unwrap(),
        "0,1,10,11"
    );
}

#[test]
fn a_silent_dns_server_never_blocks_connect_next_to_an_ip_writer() {
    let dns = silent_dns();
    ip_writer_and_unresolvable_name(
        &dns.local_addr().unwrap().to_string(),
        2000,
        "no answer within 4000 ms",
    );
}

#[test]
fn an_nxdomain_name_next_to_an_ip_writer_is_down_not_fatal() {
    let dns = DnsServer::start(&[], 1).unwrap_or_else(|e| panic!("{e}"));
    ip_writer_and_unresolvable_name(&dns.address().to_string(), 2000, "no such name (NXDOMAIN)");
}

#[test]
fn only_an_unresolvable_name_connects_without_a_writer_within_the_bound() {
    let dns = silent_dns();
    let dsn = format!(
        "mysql://{APP_USER}:{APP_PASSWORD}@{NAME}:3306/{APP_DATABASE}?nameserver={}&probe_timeout_ms=50&dns_timeout_ms=200&failover_timeout_ms=100",
        dns.local_addr().unwrap()
    );
    let (client, events, took) = connect(&dsn);
    // Bound: probe_timeout + 2 x dns_timeout (+ 1 s margin for a loaded machine).
    assert!(
        took >= Duration::from_millis(350) && took < Duration::from_millis(1450),
        "connect took {took:?}"
    );
    events.wait_for(
        "endpoint_down for the name",
        Duration::from_secs(1),
        name_down,
    );
    assert!(matches!(
        client.query("SELECT 1"),
        Err(Error::NoWriter { .. })
    ));
}

#[test]
fn a_dns_server_that_never_answers_never_delays_a_failover() {
    // Lookups of the name hang for 2 x 3 s and are retried 100 ms after failing: the monitor
    // has one in flight nearly all the time, and must keep probing meanwhile (a monitor that
    // waited for each lookup would take up to 6 s to fail over).
    let dns = silent_dns();
    let mut topo =
        Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"));
    let dsn = format!(
        "mysql://{APP_USER}:{APP_PASSWORD}@{},{},{NAME}:3306/{APP_DATABASE}?nameserver={}&dns_timeout_ms=3000&dns_min_ttl_ms=100&failover_timeout_ms=20000",
        topo.node(0).addr(),
        topo.node(1).addr(),
        dns.local_addr().unwrap()
    );
    let (client, events, took) = connect(&dsn);
    assert!(took < Duration::from_secs(2), "connect took {took:?}");
    client.wait_ready(Duration::from_secs(5)).unwrap();
    client
        .query("CREATE TABLE t (id BIGINT PRIMARY KEY)")
        .unwrap();
    let mut acked = Vec::new();
    for id in 1..=20 {
        client
            .query(&format!("INSERT INTO t VALUES ({id})"))
            .unwrap();
        acked.push(id);
    }
    topo.wait_replicated(0, 1).unwrap();
    // Let the first lookup be well under way (it ends after 6 s).
    std::thread::sleep(Duration::from_millis(500));
    topo.kill9(0).unwrap();
    let killed = Instant::now();
    topo.promote(1).unwrap();
    let (at, completed) = events
        .find_within(Duration::from_secs(20), |e| {
            e.kind == EventKind::FailoverCompleted
        })
        .expect("failover completed");
    let took = at - killed;
    eprintln!("kill -9 -> failover_completed with a DNS lookup hanging: {took:?} ({completed:?})");
    assert!(
        took < Duration::from_secs(3),
        "a hanging lookup delayed the failover: {took:?}"
    );
    for id in 21..=30 {
        match client.query(&format!("INSERT INTO t VALUES ({id})")) {
            Ok(_) => acked.push(id),
            Err(e) => panic!("write {id} after the failover: {e}"),
        }
    }
    let on_new: Vec<u64> = topo
        .node(1)
        .sql_value("SELECT GROUP_CONCAT(id ORDER BY id) FROM app.t")
        .unwrap()
        .unwrap()
        .split(',')
        .map(|s| s.parse().unwrap())
        .collect();
    assert_eq!(
        on_new, acked,
        "every acknowledged write on the new primary, once"
    );
}

/// The monitor threads of this process (`drfailover-monitor`, truncated by the kernel) and
/// their CPU time so far (ns, from `/proc/self/task/*/schedstat`).
fn monitor_threads() -> Vec<(String, u64)> {
    let mut out = Vec::new();
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if !comm.starts_with("drfailover-moni") {
            continue;
        }
        let ns = std::fs::read_to_string(path.join("schedstat"))
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        out.push((task.file_name().to_string_lossy().into_owned(), ns));
    }
    out
}

#[test]
fn a_dns_server_that_never_answers_costs_the_monitor_little_cpu() {
    // Lookups hang for 2 x 1 s, retried 1 s after failing: one runs two thirds of the time.
    let dns = silent_dns();
    let before: Vec<String> = monitor_threads().into_iter().map(|(t, _)| t).collect();
    let dsn = format!(
        "mysql://{APP_USER}:{APP_PASSWORD}@{NAME}:3306/{APP_DATABASE}?nameserver={}&probe_timeout_ms=50",
        dns.local_addr().unwrap()
    );
    let (client, _events, _) = connect(&dsn);
    let ours: Vec<(String, u64)> = monitor_threads()
        .into_iter()
        .filter(|(t, _)| !before.contains(t))
        .collect();
    assert!(!ours.is_empty(), "the client's monitor thread");
    let tid = ours[0].0.clone();
    let cpu = || {
        monitor_threads()
            .into_iter()
            .find(|(t, _)| *t == tid)
            .map(|(_, ns)| ns)
            .unwrap()
    };
    let (start, t) = (cpu(), Instant::now());
    std::thread::sleep(Duration::from_secs(3));
    let share = (cpu() - start) as f64 / t.elapsed().as_nanos() as f64;
    eprintln!(
        "monitor CPU with a silent DNS server: {:.3} % of a core over 3 s",
        share * 100.0
    );
    assert!(share < 0.02, "{:.3} % of a core", share * 100.0);
    // No thread beyond the client's two: the lookups ran on the monitor's own runtime.
    let tokio_threads: Vec<String> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .flatten()
        .filter_map(|t| std::fs::read_to_string(t.path().join("comm")).ok())
        .filter(|comm| comm.starts_with("tokio"))
        .collect();
    assert!(tokio_threads.is_empty(), "{tokio_threads:?}");
    drop(client);
}
