//! The conn layer on real servers, through its public API only.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_conn::{Client, Error, EventKind};
use drfailover_testkit::{eventually, Topology};

const FAST: &str = "probe_interval_ms=50&probe_timeout_ms=200&failover_timeout_ms=20000";

fn topology() -> Topology {
    Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB topology: {e}"))
}

#[test]
fn follows_the_writer_through_kill9_and_promotion() {
    let mut topo = topology();
    let kinds = Arc::new(Mutex::new(Vec::new()));
    let k = kinds.clone();
    let config = drfailover_conn::Config::from_dsn(&topo.dsn(FAST)).unwrap();
    let client = Client::builder(config)
        .on_event(move |e| k.lock().unwrap().push(e.clone()))
        .connect()
        .expect("connect");
    let g1 = client.wait_ready(Duration::from_secs(5)).expect("writer");
    assert_eq!(
        client.state().writer.unwrap().to_string(),
        topo.node(0).addr().to_string()
    );
    client
        .query("CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(20))")
        .unwrap();

    let next_id = Arc::new(AtomicU64::new(1));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let unknown = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = Arc::new(client);
    let writers: Vec<_> = (0..4)
        .map(|_| {
            let (client, next_id, acked, unknown, stop) = (
                client.clone(),
                next_id.clone(),
                acked.clone(),
                unknown.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    match client.query(&format!("INSERT INTO t VALUES ({id}, 'w')")) {
                        Ok(_) => acked.lock().unwrap().push(id),
                        Err(Error::OutcomeUnknown(_)) => unknown.lock().unwrap().push(id),
                        Err(e) => panic!("write {id} failed: {e}"),
                    }
                }
            })
        })
        .collect();
    wait_for_writes(&acked, 20);
    let before = acked.lock().unwrap().len();
    assert!(before > 0, "no writes before the fault");

    topo.kill9(0).unwrap();
    let killed_at = Instant::now();
    topo.promote(1).unwrap();
    let g2 = client
        .wait_generation(g1, Duration::from_secs(10))
        .expect("new generation");
    assert!(g2 > g1);
    // Writes succeed again on the new primary.
    let resumed = acked.lock().unwrap().len();
    eventually(
        "writes resume on the new primary",
        Duration::from_secs(10),
        || match acked.lock().unwrap().len() {
            n if n > resumed => Ok(()),
            n => Err(format!("{n} acknowledged, none since the failover")),
        },
    );
    eprintln!("writes resumed {:?} after the kill", killed_at.elapsed());
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    assert_eq!(
        client.state().writer.unwrap().to_string(),
        topo.node(1).addr().to_string()
    );

    // Every acknowledged write is on the new primary; nothing ran twice (primary key).
    let acked = acked.lock().unwrap().clone();
    topo.node(1)
        .assert_writes("SELECT id FROM app.t", &acked, &unknown.lock().unwrap());
    assert!(acked.len() > before, "no writes after the failover");

    client.close();
    let kinds: Vec<EventKind> = kinds.lock().unwrap().iter().map(|e| e.kind).collect();
    assert!(kinds.contains(&EventKind::Connected), "{kinds:?}");
    assert!(kinds.contains(&EventKind::EndpointDown), "{kinds:?}");
    assert!(kinds.contains(&EventKind::FailoverCompleted), "{kinds:?}");
    let stats = client.stats();
    assert_eq!(stats.failovers, 1);
    assert_eq!(
        stats.outcome_unknown as usize,
        unknown.lock().unwrap().len()
    );
}

#[test]
fn never_writes_to_a_read_only_replica() {
    let mut topo = topology();
    let client = Client::connect_dsn(&topo.dsn(FAST)).expect("connect");
    client.wait_ready(Duration::from_secs(5)).unwrap();
    client.query("CREATE TABLE t (id INT PRIMARY KEY)").unwrap();
    topo.kill9(0).unwrap();
    // The replica stays read-only: no writer may be adopted, writes wait and then fail.
    writer_declared_down(&client);
    assert!(
        client.wait_ready(Duration::from_millis(500)).is_err(),
        "adopted a read-only node: {:?}",
        client.state()
    );
    let client = Client::connect_dsn(&topo.dsn("failover_timeout_ms=300")).expect("connect");
    match client.query("INSERT INTO t VALUES (1)") {
        Err(Error::NoWriter { .. }) => {}
        other => panic!("expected NoWriter, got {other:?}"),
    }
    let n = topo
        .node(1)
        .sql_value("SELECT COUNT(*) FROM app.t")
        .unwrap();
    assert_eq!(n.as_deref(), Some("0"));
}

#[test]
fn wrong_password_is_an_auth_error_not_a_dead_node() {
    let topo = topology();
    let dsn = topo
        .dsn("")
        .replace(drfailover_testkit::APP_PASSWORD, "wrong");
    match Client::connect_dsn(&dsn) {
        Err(Error::Auth(e)) => assert!(!e.to_string().contains("wrong"), "{e}"),
        other => panic!("expected Auth, got {other:?}"),
    }
}

#[test]
fn verify_identity_uses_tls_and_never_adopts_a_node_it_cannot_verify() {
    let mut topo = Topology::primary_replica_tls()
        .unwrap_or_else(|e| panic!("cannot start TLS topology: {e}"));
    let ca = topo.pki().unwrap().ca.clone();
    let dsn = topo.dsn(&format!(
        "{FAST}&ssl_mode=VERIFY_IDENTITY&ssl_ca={}",
        ca.display()
    ));
    let client = Client::connect_dsn(&dsn).expect("connect with TLS");
    client.wait_ready(Duration::from_secs(5)).unwrap();
    let cipher = client
        .query("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
        .unwrap();
    assert!(
        cipher.text(0, 1).is_some_and(|c| !c.is_empty()),
        "pool connection is not encrypted"
    );
    // Node 1's certificate names another address: it must never become the writer.
    let state = client.state();
    assert_eq!(
        state.endpoints[1].last_outcome,
        Some(drfailover_conn::OutcomeClass::TlsFailed),
        "{state:?}"
    );
    topo.kill9(0).unwrap();
    topo.promote(1).unwrap();
    writer_declared_down(&client);
    assert!(
        client.wait_ready(Duration::from_millis(700)).is_err(),
        "adopted a writer whose certificate does not verify"
    );
    // The same setup with VERIFY_CA (chain only) fails over normally.
    let dsn = topo.dsn(&format!(
        "{FAST}&ssl_mode=VERIFY_CA&ssl_ca={}",
        ca.display()
    ));
    let client = Client::connect_dsn(&dsn).expect("connect with VERIFY_CA");
    client.wait_ready(Duration::from_secs(5)).unwrap();
    assert_eq!(
        client.state().writer.unwrap().to_string(),
        topo.node(1).addr().to_string()
    );
    // Every endpoint failing verification is a clear TLS error at connect.
    let other = topo.pki().unwrap().other_ca.clone();
    let dsn = format!(
        "mysql://{}:{}@{}/app?ssl_mode=VERIFY_CA&ssl_ca={}",
        drfailover_testkit::APP_USER,
        drfailover_testkit::APP_PASSWORD,
        topo.node(1).addr(),
        other.display()
    );
    assert!(matches!(Client::connect_dsn(&dsn), Err(Error::Tls(_))));
}

#[test]
fn init_statements_run_on_every_new_connection_including_after_failover() {
    let mut topo = topology();
    let dsn = topo.dsn(&format!(
        "{FAST}&init=SET%20time_zone%3D%27%2B03%3A00%27&init=SET%20sql_mode%3D%27ANSI_QUOTES%27"
    ));
    let client = Client::connect_dsn(&dsn).unwrap();
    let g = client.wait_ready(Duration::from_secs(5)).unwrap();
    let check = |client: &Client| {
        let r = client
            .query("SELECT @@session.time_zone, @@session.sql_mode")
            .unwrap();
        assert_eq!(r.text(0, 0), Some("+03:00"));
        assert_eq!(r.text(0, 1), Some("ANSI_QUOTES"));
    };
    check(&client);
    topo.kill9(0).unwrap();
    topo.promote(1).unwrap();
    client.wait_generation(g, Duration::from_secs(10)).unwrap();
    // Several connections (concurrent leases force new ones) all carry the session state.
    let leases: Vec<_> = (0..3)
        .map(|_| client.lease(Duration::from_secs(5)).unwrap())
        .collect();
    for mut lease in leases {
        let r = lease.conn().query("SELECT @@session.time_zone").unwrap();
        assert_eq!(r.text(0, 0), Some("+03:00"));
        client.release(lease);
    }
    check(&client);
    // A broken init statement is reported, not ignored.
    let bad =
        Client::connect_dsn(&topo.dsn("init=SET%20no_such_variable%3D1&failover_timeout_ms=2000"))
            .unwrap();
    match bad.query("SELECT 1") {
        Err(Error::Server(e)) => assert_eq!(e.errno(), 1193, "{e}"),
        other => panic!("expected the init statement's error, got {other:?}"),
    }
}

#[test]
fn fail_back_happens_only_when_configured() {
    let topo = topology();
    let stay = Client::connect_dsn(&topo.dsn(FAST)).unwrap();
    let back = Client::connect_dsn(&topo.dsn(&format!("{FAST}&failback=true"))).unwrap();
    stay.wait_ready(Duration::from_secs(5)).unwrap();
    let g = back.wait_ready(Duration::from_secs(5)).unwrap();
    let writer = |c: &Client| c.state().writer.map(|w| w.to_string());
    let (n0, n1) = (
        topo.node(0).addr().to_string(),
        topo.node(1).addr().to_string(),
    );
    // Switch the writer to node 1: fence node 0, promote node 1.
    topo.fence(0).unwrap();
    topo.wait_replicated(0, 1).unwrap();
    topo.promote(1).unwrap();
    let g2 = back.wait_generation(g, Duration::from_secs(10)).unwrap();
    stay.wait_generation(g, Duration::from_secs(10)).unwrap();
    assert_eq!(writer(&back).as_deref(), Some(n1.as_str()));
    // Node 0 (higher priority) becomes writable again.
    topo.node(0).sql("SET GLOBAL read_only=0").unwrap();
    back.wait_generation(g2, Duration::from_secs(10))
        .expect("fail-back when configured");
    assert_eq!(writer(&back).as_deref(), Some(n0.as_str()));
    std::thread::sleep(Duration::from_millis(500));
    assert_eq!(
        writer(&stay).as_deref(),
        Some(n1.as_str()),
        "failed back without failback=true"
    );
}

/// A fleet of clients must not hammer a dead or restarting server in lock-step: while there is
/// no writer the monitor runs a round every `failover_probe_interval_ms`, but an endpoint that
/// is down is retried with jittered exponential backoff (up to `probe_interval_ms`). Counted
/// here as TCP connections to an endpoint that accepts and hangs up at once.
#[test]
fn a_down_endpoint_is_retried_with_backoff_not_on_every_fast_round() {
    use std::net::TcpListener;
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let attempts = Arc::new(AtomicU64::new(0));
    let counted = attempts.clone();
    std::thread::spawn(move || {
        for conn in listener.incoming() {
            counted.fetch_add(1, Ordering::Relaxed);
            drop(conn); // hang up before the greeting: connection lost, a hard failure
        }
    });
    let dsn = format!(
        "mysql://app@127.0.0.1:{port}/app?probe_interval_ms=200&failover_probe_interval_ms=10\
         &failover_timeout_ms=60000"
    );
    let client = Client::connect_dsn(&dsn).expect("a client starts without a writer");
    let settle = attempts.load(Ordering::Relaxed);
    let window = Duration::from_secs(2);
    std::thread::sleep(window);
    let n = attempts.load(Ordering::Relaxed) - settle;
    // Every fast round would be ~200 attempts in 2 s; backoff to a 200 ms ceiling with full
    // jitter averages one per ~100 ms (~20).
    assert!(
        n >= 3,
        "the down endpoint was not retried at all ({n} attempts)"
    );
    assert!(n <= 60, "{n} attempts in {window:?}: no backoff");
    assert!(client.stats().probes >= n);
    client.close();
}

/// Waits (up to 20 s) until the writers have `n` acknowledged writes, so that writes are in
/// flight when the fault hits however slow the machine is.
fn wait_for_writes(acked: &Mutex<Vec<u64>>, n: usize) {
    eventually(
        &format!("{n} acknowledged writes"),
        Duration::from_secs(20),
        || match acked.lock().unwrap().len() {
            have if have >= n => Ok(()),
            have => Err(format!("{have} so far")),
        },
    );
}

/// Wait until `client` has declared its first endpoint (the killed writer) down.
fn writer_declared_down(client: &Client) {
    eventually(
        "the killed writer is declared down",
        Duration::from_secs(10),
        || match client.state().endpoints[0].health {
            drfailover_conn::Health::Down => Ok(()),
            other => Err(format!("{other:?}")),
        },
    );
}

/// The server's own answer for `opts` (a direct connection, no drfailover client in between).
fn direct_error(opts: &drfailover_mysql::ConnectOptions, sql: Option<&str>) -> (u32, String) {
    let e = match drfailover_mysql::Connection::connect(opts) {
        Err(e) => e,
        Ok(mut conn) => conn
            .query(sql.expect("connected: a statement to fail"))
            .expect_err("the statement must fail"),
    };
    (e.errno(), e.sqlstate().to_string())
}

#[test]
fn server_errors_reach_the_caller_unchanged() {
    use drfailover_testkit::{APP_DATABASE, APP_PASSWORD, APP_USER};
    let topo = topology();
    let node = topo.node(0);
    let direct = || {
        drfailover_mysql::ConnectOptions::tcp(node.ip().to_string(), node.port())
            .user(APP_USER)
            .password(APP_PASSWORD)
            .database(APP_DATABASE)
    };
    let dsn = topo.dsn("");
    let (head, _) = dsn.rsplit_once('/').unwrap();

    // An unknown database: the server says 1044 / 42000 (this user may not see it), and so
    // does the client — not a made-up 1045 / 28000.
    let server = direct_error(&direct().database("no_such_db"), None);
    assert_eq!(server, (1044, "42000".to_string()));
    match Client::connect_dsn(&format!("{head}/no_such_db")) {
        Err(e @ Error::Auth(_)) => {
            assert_eq!((e.errno(), e.sqlstate().to_string()), server, "{e}");
            assert!(e.to_string().contains("no_such_db"), "{e}");
        }
        other => panic!("expected Auth, got {other:?}"),
    }

    // A wrong password: 1045 / 28000, as the server says.
    let server = direct_error(&direct().password("wrong"), None);
    assert_eq!(server, (1045, "28000".to_string()));
    match Client::connect_dsn(&dsn.replace(APP_PASSWORD, "wrong")) {
        Err(e @ Error::Auth(_)) => assert_eq!((e.errno(), e.sqlstate().to_string()), server),
        other => panic!("expected Auth, got {other:?}"),
    }

    // A write rejected as read-only (the writer was fenced and nothing was promoted): after
    // failover_timeout_ms the caller gets NoWriter carrying the server's 1290 unchanged.
    let client = Client::connect_dsn(&topo.dsn("failover_timeout_ms=500")).expect("connect");
    client.wait_ready(Duration::from_secs(5)).unwrap();
    client
        .query("CREATE TABLE ro (id INT PRIMARY KEY)")
        .unwrap();
    client.query("INSERT INTO ro VALUES (1)").unwrap();
    node.sql("SET GLOBAL read_only=1").unwrap();
    let server = direct_error(&direct(), Some("INSERT INTO ro VALUES (3)"));
    assert_eq!(server.0, 1290);
    match client.query("INSERT INTO ro VALUES (2)") {
        Err(e @ Error::NoWriter { .. }) => {
            assert_eq!((e.errno(), e.sqlstate().to_string()), server, "{e}")
        }
        other => panic!("expected NoWriter carrying 1290, got {other:?}"),
    }
    // Data: only the acknowledged row is there.
    let rows = node
        .sql_value("SELECT GROUP_CONCAT(id) FROM app.ro")
        .unwrap();
    assert_eq!(rows.as_deref(), Some("1"));
    client.close();
}
