//! Every probe kind against real servers and real faults. Bounds are generous (a shared,
//! noisy 2-core machine): they prove the deadline holds, not how fast it is (see the bench).

use std::net::SocketAddr;
use std::time::Duration;

use drfailover_mysql::{ConnectOptions, Connection};
use drfailover_probe::handshake::probe_handshake;
use drfailover_probe::tcp::probe_tcp;
use drfailover_probe::{Deadline, MonitorProbe, Observation, OutcomeClass};
use drfailover_testkit::wait::within;
use drfailover_testkit::{eventually, Node, Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

const DEADLINE: Duration = Duration::from_millis(150);
/// Deadline plus scheduling slack on a loaded machine.
const BOUND: Duration = Duration::from_millis(150 + 850);

fn topology() -> Topology {
    Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"))
}

fn options(node: &Node, password: &str) -> ConnectOptions {
    ConnectOptions::tcp(node.ip().to_string(), node.port())
        .user(APP_USER)
        .password(password)
        .database(APP_DATABASE)
}

fn monitor(node: &Node) -> MonitorProbe {
    MonitorProbe::new(options(node, APP_PASSWORD))
}

/// The deadline of the probes that must time out (a frozen or blackholed node).
fn short() -> Deadline {
    Deadline::after(DEADLINE)
}

/// The deadline of the probes that must get an answer (up, refused, auth failed, 1040, ...):
/// generous, so that a loaded machine makes them slower, not timed out. Latencies are still
/// asserted where they matter (a refusal stays under `DEADLINE`).
fn deadline() -> Deadline {
    Deadline::after(Duration::from_secs(5))
}

fn assert_class(obs: &Observation, class: OutcomeClass, what: &str) {
    assert_eq!(obs.class, class, "{what}: {obs:?}");
}

fn assert_timed_out_in_bound(obs: &Observation, what: &str) {
    assert_class(obs, OutcomeClass::TimedOut, what);
    assert!(
        obs.latency >= DEADLINE - Duration::from_millis(5),
        "{what} returned early: {obs:?}"
    );
    assert!(obs.latency < BOUND, "{what} overran its deadline: {obs:?}");
}

#[test]
fn alive_nodes_answer_every_probe_kind() {
    let topo = topology();
    let (p, r) = (topo.node(0), topo.node(1));
    assert_class(&probe_tcp(p.addr(), deadline()), OutcomeClass::Up, "tcp");
    let (obs, greeting) = probe_handshake(p.addr(), deadline());
    assert_class(&obs, OutcomeClass::Up, "handshake");
    let greeting = greeting.unwrap();
    assert!(greeting.server_version.contains("MariaDB"), "{greeting:?}");
    assert!(greeting.connection_id > 0);

    let mut m = monitor(p);
    assert_class(&m.ping(deadline()), OutcomeClass::Up, "ping");
    assert_class(&m.query("SELECT 1", deadline()), OutcomeClass::Up, "query");
    let role = m.role(deadline());
    assert_class(&role, OutcomeClass::Up, "role of primary");
    let role = role.role.unwrap();
    assert!(role.writable() && role.replication.is_none(), "{role:?}");
    assert_eq!(role.semi_sync_master, Some(true), "{role:?}");
    // The monitor connection is reused, not reopened.
    let id = |m: &mut MonitorProbe| m.query("SELECT CONNECTION_ID()", deadline()).detail;
    let _ = id(&mut m);
    let conns_before = p
        .sql_value("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER='app'")
        .unwrap();
    for _ in 0..5 {
        assert_class(&m.ping(deadline()), OutcomeClass::Up, "ping again");
    }
    let conns_after = p
        .sql_value("SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE USER='app'")
        .unwrap();
    assert_eq!(conns_before, conns_after);

    let replica = monitor(r).max_lag(Duration::from_secs(5)).role(deadline());
    assert_class(&replica, OutcomeClass::ReadOnly, "role of replica");
    let rep = replica
        .role
        .unwrap()
        .replication
        .expect("replica status visible");
    assert!(rep.io_running && rep.sql_running, "{rep:?}");
    assert_eq!(rep.seconds_behind, Some(0));
}

#[test]
fn killed_node_is_refused_within_milliseconds() {
    let mut topo = topology();
    let mut m = monitor(topo.node(0));
    assert_class(&m.role(deadline()), OutcomeClass::Up, "before");
    let addr: SocketAddr = topo.node(0).addr();
    topo.kill9(0).unwrap();
    // The open monitor connection sees the loss; the next probe is refused.
    let first = m.role(deadline());
    assert!(first.class.is_hard_failure(), "{first:?}");
    for obs in [
        m.role(deadline()),
        m.ping(deadline()),
        probe_tcp(addr, deadline()),
        probe_handshake(addr, deadline()).0,
    ] {
        assert_class(&obs, OutcomeClass::Refused, "after kill -9");
        assert!(obs.latency < DEADLINE, "refusal took {:?}", obs.latency);
    }
}

#[test]
fn frozen_node_times_out_within_the_deadline() {
    let mut topo = topology();
    let mut m = monitor(topo.node(0));
    assert_class(&m.role(deadline()), OutcomeClass::Up, "before");
    let addr = topo.node(0).addr();
    topo.freeze(0).unwrap();
    // The kernel still completes TCP handshakes for a SIGSTOPped server.
    assert_class(
        &probe_tcp(addr, deadline()),
        OutcomeClass::Up,
        "tcp to a frozen server",
    );
    assert_timed_out_in_bound(&m.ping(short()), "ping on the open monitor connection");
    assert_timed_out_in_bound(&m.role(short()), "role (fresh connection)");
    assert_timed_out_in_bound(&probe_handshake(addr, short()).0, "handshake");
    topo.thaw(0).unwrap();
    assert_class(
        &m.role(Deadline::after(Duration::from_secs(5))),
        OutcomeClass::Up,
        "after SIGCONT",
    );
}

#[test]
fn blackholed_node_times_out_within_the_deadline() {
    let topo = Topology::primary_replica_in_lab()
        .unwrap_or_else(|e| panic!("cannot start lab topology: {e}"));
    let mut m = monitor(topo.node(0));
    assert_class(&m.role(deadline()), OutcomeClass::Up, "before");
    let addr = topo.node(0).addr();
    topo.blackhole(0).unwrap();
    assert_timed_out_in_bound(&m.ping(short()), "ping on the open monitor connection");
    assert_timed_out_in_bound(&m.role(short()), "role (fresh connection)");
    assert_timed_out_in_bound(&probe_tcp(addr, short()), "tcp");
    assert_timed_out_in_bound(&probe_handshake(addr, short()).0, "handshake");
    topo.heal(0).unwrap();
    assert_class(
        &m.role(Deadline::after(Duration::from_secs(5))),
        OutcomeClass::Up,
        "after heal",
    );
}

#[test]
fn wrong_password_is_auth_failure_not_down() {
    let topo = topology();
    let mut m = MonitorProbe::new(options(topo.node(0), "not-the-password"));
    for obs in [
        m.role(deadline()),
        m.ping(deadline()),
        m.query("SELECT 1", deadline()),
    ] {
        assert_class(&obs, OutcomeClass::AuthFailed, "wrong password");
        assert!(!obs.detail.contains("not-the-password"), "{obs:?}");
    }
    // Without credentials the node is plainly up.
    assert_class(
        &probe_handshake(topo.node(0).addr(), deadline()).0,
        OutcomeClass::Up,
        "handshake",
    );
}

#[test]
fn exhausted_connections_are_too_many_connections() {
    let topo = topology();
    let p = topo.node(0);
    p.sql("SET GLOBAL max_connections = 3").unwrap();
    // Fill every slot with app connections (root's extra slot does not help the app user).
    let mut held: Vec<Connection> = Vec::new();
    for _ in 0..10 {
        match Connection::connect(&options(p, APP_PASSWORD)) {
            Ok(c) => held.push(c),
            Err(e) => {
                assert_eq!(e.errno(), 1040, "{e}");
                break;
            }
        }
    }
    assert!(!held.is_empty());
    // App slots full: the server usually still greets and refuses the login with 1040 (or,
    // while the rejected session above still holds the extra slot, refuses at the greeting).
    let greeting = probe_handshake(p.addr(), deadline()).0;
    assert!(
        matches!(
            greeting.class,
            OutcomeClass::Up | OutcomeClass::TooManyConnections
        ),
        "handshake, app slots full: {greeting:?}"
    );
    assert_class(
        &monitor(p).role(deadline()),
        OutcomeClass::TooManyConnections,
        "role when full",
    );
    // What MariaDB guarantees (sql/mysqld.cc and sql_acl.cc; the manual's "Too many
    // connections"): it counts a session from accept until its thread has finished. A new
    // connection is refused *at the greeting* (a 1040 error packet instead of the handshake)
    // when that count is already max_connections + 1; below that it is greeted, and a login
    // without SUPER / CONNECTION ADMIN is refused with 1040 *after authentication* when the
    // count exceeds max_connections. A session that was refused or closed keeps counting
    // until its thread winds down, shortly and asynchronously: so "every slot is taken" is
    // only true once such sessions are gone, and a slot they free is free for anyone.
    // Deterministic version: take the extra slot with admin connections until the server
    // refuses one at the greeting; if the handshake probe is still greeted (a winding-down
    // session freed a slot, possibly the probe's own greeted session), take that slot too
    // and look again. Each round holds one more real session, so a few rounds suffice.
    let mut admins = Vec::new();
    let mut greeted = Vec::new();
    let obs = loop {
        take_free_slots(p, &mut admins);
        let (obs, _) = probe_handshake(p.addr(), deadline());
        if obs.class != OutcomeClass::Up {
            break obs;
        }
        greeted.push(obs);
        assert!(
            greeted.len() <= 6,
            "a slot keeps coming free although every session is held \
             ({} admin sessions held): {greeted:?}",
            admins.len()
        );
        // The greeted probe session holds the slot until its thread ends: wait for it.
        admins.push(eventually(
            "the slot the probe was greeted on comes back",
            Duration::from_secs(10),
            || match p.admin() {
                Ok(c) => Ok(c),
                Err(e) if refused_as_full(&e) => Err(e),
                Err(e) => panic!("the slot the probe was greeted on: {e}"),
            },
        ));
    };
    eprintln!(
        "every slot taken after {} round(s) (greeted while a slot was still winding down: {})",
        greeted.len() + 1,
        greeted.len()
    );
    assert!(!admins.is_empty(), "no admin session got the extra slot");
    assert_class(
        &obs,
        OutcomeClass::TooManyConnections,
        "handshake when every slot is taken",
    );
    assert!(obs.detail.contains("1040"), "{obs:?}");
    // The server's own error packet, typed: its errno unchanged. Sent before the handshake,
    // it carries no SQLSTATE (no `#` marker): the SQLSTATE is then the general HY000.
    let e = obs
        .error
        .as_ref()
        .expect("typed error from the error packet");
    assert_eq!((e.errno(), e.sqlstate()), (1040, "HY000"), "{obs:?}");
    drop(admins);
    drop(held);
}

/// Open admin connections (root, which may use the extra slot) until the server refuses one
/// with 1040: at that instant every slot, the extra one included, was counted as taken.
fn take_free_slots(p: &Node, admins: &mut Vec<Connection>) {
    for _ in 0..10 {
        match p.admin() {
            Ok(c) => admins.push(c),
            Err(e) => {
                assert!(refused_as_full(&e), "admin connect when full: {e}");
                return;
            }
        }
    }
    panic!("10 more admin sessions accepted with max_connections = 3");
}

#[test]
fn replica_with_stopped_or_blocked_sql_thread_is_lagging() {
    let topo = topology();
    let (p, r) = (topo.node(0), topo.node(1));
    p.sql("CREATE TABLE app.t (id INT PRIMARY KEY, v INT)")
        .unwrap();
    p.sql("INSERT INTO app.t VALUES (1, 0)").unwrap();
    topo.wait_replicated(0, 1).unwrap();
    let mut probe = monitor(r).max_lag(Duration::from_secs(1));
    assert_class(
        &role_settled(&mut probe, OutcomeClass::ReadOnly),
        OutcomeClass::ReadOnly,
        "caught-up replica",
    );

    // 1. SQL thread stopped: lag is unknown (NULL), the replica is not fit to serve.
    r.sql("STOP SLAVE SQL_THREAD").unwrap();
    p.sql("INSERT INTO app.t VALUES (2, 0)").unwrap();
    let obs = probe.role(deadline());
    assert_class(&obs, OutcomeClass::Lagging, "SQL thread stopped");
    let rep = obs.role.unwrap().replication.unwrap();
    assert!(!rep.sql_running && rep.seconds_behind.is_none(), "{rep:?}");
    r.sql("START SLAVE SQL_THREAD").unwrap();
    topo.wait_replicated(0, 1).unwrap();

    // 2. SQL thread running but blocked behind a local lock: measurable lag grows.
    let mut blocker = r.admin().unwrap();
    blocker.query("BEGIN").unwrap();
    blocker
        .query("SELECT * FROM app.t WHERE id = 1 FOR UPDATE")
        .unwrap();
    p.sql("UPDATE app.t SET v = v + 1 WHERE id = 1").unwrap();
    // The lag grows by the second: probe until it reaches 2 s (bounded), then check all of it.
    let obs = probe_until(&mut probe, Duration::from_secs(30), |obs| {
        let lag = obs.role.as_ref().and_then(|r| r.replication.as_ref());
        lag.and_then(|r| r.seconds_behind).is_some_and(|s| s >= 2)
    });
    assert_class(&obs, OutcomeClass::Lagging, "blocked SQL thread");
    let lag = obs.role.unwrap().replication.unwrap().seconds_behind;
    assert!(lag.is_some_and(|s| s >= 2), "lag {lag:?}");
    blocker.query("ROLLBACK").unwrap();
    topo.wait_replicated(0, 1).unwrap();
    assert_class(
        &role_settled(&mut probe, OutcomeClass::ReadOnly),
        OutcomeClass::ReadOnly,
        "caught up again",
    );
}

/// The role probe's observation once it is `class`, or the last one after 10 s. For a replica
/// that has just caught up: MariaDB's Seconds_Behind_Master goes back to 0 only once the SQL
/// thread has found the end of its relay log, a moment after MASTER_GTID_WAIT returned (seen
/// as "lag=2s" right after catching up on a loaded machine).
fn role_settled(probe: &mut MonitorProbe, class: OutcomeClass) -> Observation {
    probe_until(probe, Duration::from_secs(10), |obs| obs.class == class)
}

/// Role probes until one satisfies `done`; that one, or the last one once `bound` passed (for
/// the caller's assertion to show).
fn probe_until(
    probe: &mut MonitorProbe,
    bound: Duration,
    done: impl Fn(&Observation) -> bool,
) -> Observation {
    let mut last = None;
    let settled = within(bound, || {
        let obs = probe.role(deadline());
        let settled = done(&obs).then(|| obs.clone());
        last = Some(obs);
        settled
    });
    settled.unwrap_or_else(|| last.expect("probed at least once"))
}

/// A login refused with 1040. Refused at the greeting, the client library reports it as 2002
/// ("Received error packet before completion of TLS handshake. ... 1040 - Too many
/// connections") when it would have started TLS; after authentication as 1040 itself.
fn refused_as_full(error: &str) -> bool {
    error.contains("1040") && error.contains("Too many connections")
}
