//! Credentials from AWS Secrets Manager (`secret_arn`), against moto's server and real MariaDB:
//! a rotation during a failover costs no statement, a deleted or malformed secret is a clear
//! configuration error while open connections keep working, and throttling is retried within
//! bounds.
//!
//! AWS keys: fixed test keys in the process environment (moto accepts any); instance metadata
//! is disabled so nothing ever reaches 169.254.169.254.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_conn::{Client, Error};
use drfailover_testkit::http_recorder::HttpServer;
use drfailover_testkit::moto::{use_test_keys, MotoServer};
use drfailover_testkit::{Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

const FAST: &str = "probe_interval_ms=50&probe_timeout_ms=200&failover_timeout_ms=20000";

fn moto() -> MotoServer {
    MotoServer::start().unwrap_or_else(|e| panic!("cannot start moto_server: {e}"))
}

fn topology() -> Topology {
    Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB topology: {e}"))
}

fn db_secret(password: &str) -> String {
    serde_json::json!({"engine": "mariadb", "username": APP_USER, "password": password}).to_string()
}

fn create_secret(moto: &MotoServer, name: &str, secret_string: &str) -> String {
    use_test_keys();
    moto.create_secret(name, secret_string)
        .unwrap_or_else(|e| panic!("{e}"))
}

/// A DSN over the topology's nodes with no user or password: they come from the secret.
fn secret_dsn(topo: &Topology, arn: &str, endpoint: &str, extra: &str) -> String {
    format!(
        "mysql://{}/{APP_DATABASE}?secret_arn={arn}&secret_endpoint={endpoint}&{extra}",
        topo.hosts()
    )
}

/// A login with `password` straight to node `i`: its errno (0 on success).
fn login_errno(topo: &Topology, i: usize, password: &str) -> u32 {
    let node = topo.node(i);
    let opts = drfailover_mysql::ConnectOptions::tcp(node.ip().to_string(), node.port())
        .user(APP_USER)
        .password(password);
    match drfailover_mysql::Connection::connect(&opts) {
        Ok(_) => 0,
        Err(e) => e.errno(),
    }
}

#[test]
fn rotation_during_a_failover_fails_no_statement_and_loses_no_write() {
    let moto = moto();
    let arn = create_secret(&moto, "app-db", &db_secret(APP_PASSWORD));
    let mut topo = topology();
    let client = Client::connect_dsn(&secret_dsn(&topo, &arn, &moto.endpoint(), FAST))
        .expect("connect with the secret");
    let g1 = client.wait_ready(Duration::from_secs(10)).expect("writer");
    client
        .query("CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(20))")
        .unwrap();

    let next_id = Arc::new(AtomicU64::new(1));
    let acked = Arc::new(Mutex::new(Vec::new()));
    let unknown = Arc::new(Mutex::new(Vec::new()));
    let failed = Arc::new(Mutex::new(Vec::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let client = Arc::new(client);
    let writers: Vec<_> = (0..8)
        .map(|_| {
            let (client, next_id, acked, unknown, failed, stop) = (
                client.clone(),
                next_id.clone(),
                acked.clone(),
                unknown.clone(),
                failed.clone(),
                stop.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let id = next_id.fetch_add(1, Ordering::Relaxed);
                    match client.query(&format!("INSERT INTO t VALUES ({id}, 'w')")) {
                        Ok(_) => acked.lock().unwrap().push(id),
                        // The writer died with the statement in flight: not a rotation failure,
                        // and never replayed.
                        Err(Error::OutcomeUnknown(_)) => unknown.lock().unwrap().push(id),
                        Err(e) => failed.lock().unwrap().push(format!("{id}: {e}")),
                    }
                }
            })
        })
        .collect();
    let acks = || acked.lock().unwrap().len();
    let wait_acks = |more_than: usize| {
        let t = Instant::now();
        while acked.lock().unwrap().len() <= more_than && t.elapsed() < Duration::from_secs(30) {
            std::thread::sleep(Duration::from_millis(5));
        }
        acked.lock().unwrap().len()
    };
    let before = wait_acks(50);
    assert!(before > 50, "too few writes before the rotation: {before}");

    // Rotation, as a rotation Lambda does it: the new password stored in the secret, then set
    // on the server (replicated to the replica), and the old one refused from then on.
    let rotated_at = Instant::now();
    let new_password = "rotated-pw-2";
    moto.put_secret_value(&arn, &db_secret(new_password))
        .unwrap();
    for host in ["127.%", "169.254.%"] {
        topo.node(0)
            .sql(&format!(
                "ALTER USER '{APP_USER}'@'{host}' IDENTIFIED BY '{new_password}'"
            ))
            .unwrap();
    }
    topo.wait_replicated(0, 1).unwrap();
    for i in 0..2 {
        assert_eq!(
            login_errno(&topo, i, APP_PASSWORD),
            1045,
            "old password on node {i}"
        );
        assert_eq!(
            login_errno(&topo, i, new_password),
            0,
            "new password on node {i}"
        );
    }
    let after_rotation = wait_acks(acks() + 20);

    // The failover, within the same minute: every connection logs in again, on the new writer.
    topo.kill9(0).unwrap();
    topo.promote(1).unwrap();
    client
        .wait_generation(g1, Duration::from_secs(20))
        .expect("new generation");
    let after_failover = wait_acks(acks() + 50);
    assert!(
        rotated_at.elapsed() < Duration::from_secs(60),
        "rotation and failover took {:?}: not the same minute",
        rotated_at.elapsed()
    );
    stop.store(true, Ordering::Relaxed);
    for w in writers {
        w.join().unwrap();
    }
    eprintln!(
        "acked: {before} before the rotation, {after_rotation} after it, {after_failover} after the failover; {} outcome unknown",
        unknown.lock().unwrap().len()
    );
    let failed = failed.lock().unwrap().clone();
    assert!(failed.is_empty(), "statements failed: {failed:?}");
    assert!(
        after_failover > after_rotation,
        "no writes after the failover"
    );
    assert_eq!(
        client.state().writer.unwrap().to_string(),
        topo.node(1).addr().to_string()
    );

    // Every acknowledged write is on the new primary, once (primary key).
    topo.node(1).assert_writes(
        "SELECT id FROM app.t",
        &acked.lock().unwrap(),
        &unknown.lock().unwrap(),
    );
    let stats = client.stats();
    assert_eq!(stats.failovers, 1);
    client.close();
}

#[test]
fn deleted_or_malformed_secret_is_a_config_error_and_open_connections_keep_working() {
    let moto = moto();
    let topo = topology();
    let arn = create_secret(&moto, "app-db", &db_secret(APP_PASSWORD));
    let dsn = secret_dsn(&topo, &arn, &moto.endpoint(), FAST);
    let client = Client::connect_dsn(&dsn).expect("connect");
    client.wait_ready(Duration::from_secs(10)).unwrap();
    client.query("CREATE TABLE d (id INT PRIMARY KEY)").unwrap();

    moto.delete_secret(&arn).unwrap();
    // The running client keeps its connections and credentials.
    for id in 1..=20 {
        client
            .query(&format!("INSERT INTO d VALUES ({id})"))
            .unwrap();
    }
    // A new client: a configuration error naming the key and the ARN, never the password.
    let started = Instant::now();
    match Client::connect_dsn(&dsn) {
        Err(Error::Config(m)) => {
            assert!(m.contains("`secret_arn`") && m.contains(&arn), "{m}");
            assert!(!m.contains(APP_PASSWORD), "{m}");
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // An unknown ARN likewise.
    let missing = arn.replace("app-db", "no-such-secret");
    match Client::connect_dsn(&secret_dsn(&topo, &missing, &moto.endpoint(), FAST)) {
        Err(Error::Config(m)) => assert!(m.contains(&missing), "{m}"),
        other => panic!("expected a configuration error, got {other:?}"),
    }

    // Malformed: not JSON, or no password. The error names the field, never the value.
    for (name, secret, why) in [
        (
            "not-json",
            format!("user={APP_USER} pw={APP_PASSWORD}"),
            "not a JSON object",
        ),
        (
            "no-password",
            serde_json::json!({"username": APP_USER, "pass": APP_PASSWORD}).to_string(),
            "no `password`",
        ),
    ] {
        let arn = create_secret(&moto, name, &secret);
        match Client::connect_dsn(&secret_dsn(&topo, &arn, &moto.endpoint(), FAST)) {
            Err(Error::Config(m)) => {
                assert!(m.contains(&arn) && m.contains(why), "{m}");
                assert!(!m.contains(APP_PASSWORD), "{m}");
            }
            other => panic!("{name}: expected a configuration error, got {other:?}"),
        }
    }
    let n = client.query("SELECT COUNT(*) FROM d").unwrap();
    assert_eq!(n.text(0, 0), Some("20"));
    client.close();
}

#[test]
fn throttling_is_retried_within_bounds() {
    let moto = moto();
    let topo = topology();
    let arn = create_secret(&moto, "app-db", &db_secret(APP_PASSWORD));
    // moto's real GetSecretValue answer, served after two throttling replies.
    let answer = moto.get_secret_value(&arn).unwrap();
    let throttled = (
        400,
        r#"{"__type":"ThrottlingException","message":"Rate exceeded"}"#.to_string(),
    );
    let server =
        HttpServer::start_with_replies(vec![throttled.clone(), throttled.clone(), (200, answer)]);
    let started = Instant::now();
    let client = Client::connect_dsn(&secret_dsn(&topo, &arn, &server.url(""), FAST))
        .expect("connect after throttling");
    eprintln!(
        "secret fetched after 2 throttling replies in {:?}",
        started.elapsed()
    );
    assert_eq!(server.received().len(), 3);
    client.wait_ready(Duration::from_secs(10)).unwrap();
    client.query("SELECT 1").unwrap();
    client.close();

    // Throttled for good: a clear error within the fetch budget (5 s), not a hang.
    let server = HttpServer::start_with_replies(vec![throttled]);
    let started = Instant::now();
    match Client::connect_dsn(&secret_dsn(&topo, &arn, &server.url(""), FAST)) {
        Err(Error::Config(m)) => {
            assert!(m.contains(&arn) && m.contains("ThrottlingException"), "{m}");
        }
        other => panic!("expected a configuration error, got {other:?}"),
    }
    let took = started.elapsed();
    let attempts = server.received().len();
    eprintln!("gave up after {attempts} throttled attempts in {took:?}");
    assert!((2..=5).contains(&attempts), "{attempts} attempts");
    assert!(took < Duration::from_secs(8), "{took:?}");

    // A secret that names the host (as RDS-managed ones do) serves a configuration without one.
    let node = topo.node(0);
    let arn = create_secret(
        &moto,
        "with-host",
        &serde_json::json!({"username": APP_USER, "password": APP_PASSWORD,
            "host": node.ip().to_string(), "port": node.port()})
        .to_string(),
    );
    let mut config = drfailover_conn::Config::new();
    for (k, v) in [
        ("secret_arn", arn.as_str()),
        ("secret_endpoint", &moto.endpoint()),
        ("database", APP_DATABASE),
    ] {
        config.set(k, v).unwrap();
    }
    let client = Client::connect(config).expect("connect to the secret's host");
    client.wait_ready(Duration::from_secs(10)).unwrap();
    assert_eq!(
        client.state().writer.unwrap().to_string(),
        node.addr().to_string()
    );
    client.close();
}

#[test]
fn secret_keys_without_a_secret_are_clear() {
    use_test_keys();
    let err = Client::connect_dsn("mysql://127.0.0.1:9/app?secret_arn=app-db")
        .unwrap_err()
        .to_string();
    // A bare name has no region: the message says what to set.
    assert!(
        err.contains("secret_arn") && err.contains("region"),
        "{err}"
    );
    let err = drfailover_conn::Config::from_dsn("mysql://h/app?secret_endpoint=ftp://x")
        .unwrap_err()
        .to_string();
    assert!(err.contains("secret_endpoint"), "{err}");
}

/// The monitor never fetches: when its probe is refused (its connection was cut after a
/// rotation), it marks the credentials stale; a caller waiting for a writer fetches them and
/// the monitor's next login uses them.
#[test]
fn a_refused_probe_gets_new_credentials_through_a_waiting_caller() {
    let moto = moto();
    let topo = topology();
    let arn = create_secret(&moto, "app-db", &db_secret(APP_PASSWORD));
    let client = Client::connect_dsn(&secret_dsn(
        &topo,
        &arn,
        &moto.endpoint(),
        "probe_interval_ms=50&probe_timeout_ms=200&failover_timeout_ms=20000&fall=2",
    ))
    .expect("connect");
    client.wait_ready(Duration::from_secs(10)).unwrap();
    client.query("CREATE TABLE m (id INT PRIMARY KEY)").unwrap();
    client.query("INSERT INTO m VALUES (1)").unwrap();

    let new_password = "rotated-for-probes";
    moto.put_secret_value(&arn, &db_secret(new_password))
        .unwrap();
    for i in 0..2 {
        for host in ["127.%", "169.254.%"] {
            topo.node(i)
                .sql_batch(&[
                    "SET sql_log_bin=0",
                    &format!("ALTER USER '{APP_USER}'@'{host}' IDENTIFIED BY '{new_password}'"),
                ])
                .unwrap();
        }
    }
    // Cut every session of the app user: the monitor's and the pool's. The monitor logs in
    // again with the old password and is refused.
    let started = Instant::now();
    while !client.state().endpoints[0]
        .last_outcome
        .is_some_and(|o| o == drfailover_conn::OutcomeClass::AuthFailed)
    {
        for i in 0..2 {
            let ids = topo
                .node(i)
                .sql(&format!(
                    "SELECT id FROM information_schema.processlist WHERE user = '{APP_USER}'"
                ))
                .unwrap();
            for r in 0..ids.num_rows() {
                let _ = topo
                    .node(i)
                    .sql(&format!("KILL CONNECTION {}", ids.text(r, 0).unwrap()));
            }
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the monitor's probe was never refused: {:?}",
            client.state()
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    // Refused probes take the writer down (credentials are not fetched by the monitor).
    while client.state().ready {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the writer stayed up with refused probes: {:?}",
            client.state()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // A statement now waits for a writer, renews the credentials while it waits, and succeeds:
    // the monitor's next login uses them and finds the writer again.
    let t = Instant::now();
    client
        .query("INSERT INTO m VALUES (2)")
        .expect("insert after the rotation");
    eprintln!("statement after the refused probe took {:?}", t.elapsed());
    assert_eq!(
        client.state().endpoints[0].last_outcome,
        Some(drfailover_conn::OutcomeClass::Up)
    );
    let n = topo
        .node(0)
        .sql_value("SELECT COUNT(*) FROM app.m")
        .unwrap();
    assert_eq!(n.as_deref(), Some("2"));
    client.close();
}
