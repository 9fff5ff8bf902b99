//! Events on real failovers: a stuck subscriber never delays failover; webhooks and command
//! hooks receive the failover.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_conn::{Client, Config, Event, EventKind};
use drfailover_testkit::http_recorder::HttpServer;
use drfailover_testkit::{eventually, Topology};

const FAST: &str = "probe_interval_ms=50&probe_timeout_ms=200&failover_timeout_ms=20000";

fn topology() -> Topology {
    Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB topology: {e}"))
}

#[test]
fn a_subscriber_sleeping_5s_does_not_delay_failover() {
    let mut topo = topology();
    let slow_calls = Arc::new(AtomicU64::new(0));
    let calls = slow_calls.clone();
    let slow = Client::builder(Config::from_dsn(&topo.dsn(FAST)).unwrap())
        .on_event(move |_| {
            calls.fetch_add(1, Ordering::SeqCst);
            std::thread::sleep(Duration::from_secs(5));
        })
        .connect()
        .unwrap();
    let plain = Client::connect_dsn(&topo.dsn(FAST)).unwrap();
    let g_slow = slow.wait_ready(Duration::from_secs(5)).unwrap();
    let g_plain = plain.wait_ready(Duration::from_secs(5)).unwrap();
    // The slow subscriber gets stuck in its 5 s sleep on the `connected` event (delivered by
    // the notifier thread: wait for it, bounded, rather than race it).
    eventually(
        "the connected event",
        Duration::from_secs(5),
        || match slow_calls.load(Ordering::SeqCst) {
            0 => Err("not delivered yet".to_string()),
            _ => Ok(()),
        },
    );
    assert_eq!(slow_calls.load(Ordering::SeqCst), 1);

    topo.kill9(0).unwrap();
    let killed = Instant::now();
    topo.promote(1).unwrap();
    let (a, b) = std::thread::scope(|s| {
        let a = s.spawn(|| {
            slow.wait_generation(g_slow, Duration::from_secs(20))
                .unwrap();
            killed.elapsed()
        });
        let b = s.spawn(|| {
            plain
                .wait_generation(g_plain, Duration::from_secs(20))
                .unwrap();
            killed.elapsed()
        });
        (a.join().unwrap(), b.join().unwrap())
    });
    eprintln!("failover with a 5 s subscriber: {a:?}; without: {b:?}");
    assert!(
        a < Duration::from_secs(3),
        "a stuck subscriber delayed failover: {a:?}"
    );
    // Writes work on the new writer while the subscriber still sleeps.
    slow.query("CREATE TABLE t (id INT)").unwrap();
    assert!(
        slow_calls.load(Ordering::SeqCst) <= 2,
        "callbacks overlapped"
    );
    let t = Instant::now();
    slow.close();
    assert!(
        t.elapsed() < Duration::from_secs(12),
        "close must wait for the callback, bounded"
    );
}

#[test]
fn webhooks_and_hooks_receive_the_failover() {
    let mut topo = topology();
    let http = HttpServer::start(vec![200]);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("hook.sh");
    let log = dir.path().join("hook.log");
    drfailover_testkit::write_script(&script, format!("#!/bin/sh\necho \"$DRFAILOVER_EVENT $DRFAILOVER_OLD_WRITER $DRFAILOVER_NEW_WRITER\" >> {}\n", log.display())).unwrap();
    let dsn = format!(
        "{}&webhook_url={}&slack_webhook_url={}&hook_command={}",
        topo.dsn(FAST),
        http.url("/generic/token"),
        http.url("/slack/T/B/token"),
        script.display()
    );
    let events: Arc<Mutex<Vec<Event>>> = Arc::default();
    let e2 = events.clone();
    let client = Client::builder(Config::from_dsn(&dsn).unwrap())
        .on_event(move |e| e2.lock().unwrap().push(e.clone()))
        .connect()
        .unwrap();
    let g = client.wait_ready(Duration::from_secs(5)).unwrap();
    topo.kill9(0).unwrap();
    topo.promote(1).unwrap();
    client.wait_generation(g, Duration::from_secs(20)).unwrap();
    let (old, new) = (
        topo.node(0).addr().to_string(),
        topo.node(1).addr().to_string(),
    );
    // Deliveries are asynchronous: wait for them (bounded).
    let completed = |reqs: &[(String, String)]| {
        reqs.iter()
            .filter(|(_, b)| b.contains("failover_completed"))
            .count()
    };
    eventually(
        "both webhooks and the hook get failover_completed",
        Duration::from_secs(10),
        || {
            let posted = completed(&http.received());
            let hooked = std::fs::read_to_string(&log)
                .unwrap_or_default()
                .contains("failover_completed");
            if posted >= 2 && hooked {
                Ok(())
            } else {
                Err(format!("webhooks {posted}/2, hook {hooked}"))
            }
        },
    );
    client.close();
    let received = http.received();
    let generic = received
        .iter()
        .find(|(line, body)| {
            line.starts_with("POST /generic/token") && body.contains("failover_completed")
        })
        .unwrap_or_else(|| panic!("generic webhook missed the failover: {received:?}"));
    let json: serde_json::Value = serde_json::from_str(&generic.1).unwrap();
    assert_eq!(json["old_writer"], old.as_str());
    assert_eq!(json["new_writer"], new.as_str());
    assert!(received
        .iter()
        .any(|(line, body)| line.starts_with("POST /slack/T/B/token")
            && body.contains("\"text\"")
            && body.contains(&new)));
    let hook_log = std::fs::read_to_string(&log).unwrap();
    assert!(
        hook_log
            .lines()
            .any(|l| l == format!("failover_completed {old} {new}")),
        "{hook_log}"
    );
    // The callback saw the same kinds, in order.
    let kinds: Vec<EventKind> = events.lock().unwrap().iter().map(|e| e.kind).collect();
    let pos = |k| {
        kinds
            .iter()
            .position(|x| *x == k)
            .unwrap_or_else(|| panic!("{k:?} missing: {kinds:?}"))
    };
    assert!(pos(EventKind::Connected) < pos(EventKind::EndpointDown));
    assert!(pos(EventKind::FailoverStarted) < pos(EventKind::FailoverCompleted));
}
