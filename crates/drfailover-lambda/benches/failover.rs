//! How long the failover function takes, end to end, on the test rig (the real `bootstrap`
//! under cargo-lambda's runtime emulator, moto for RDS/Route 53/SNS behind the recording
//! proxy, real `mariadbd` nodes): per run, the primary is killed (and reported stopped to
//! RDS), an alarm event is sent, and the bench times
//!
//! - event received → Route 53 change accepted (the function's own clock, from its reply:
//!   when the change request returned);
//! - event sent → Route 53 change request arrived (the harness's clock, at the proxy);
//! - event sent → first write through the library (drfailover-conn) by the record's name,
//!   resolved through a real DNS server (dnsmasq, TTL 1 s) that serves what Route 53 holds:
//!   the harness copies the PRIMARY record's new value into it when the change is accepted.
//!
//! The harness's RDS promotes the replica as soon as `PromoteReadReplica` arrives (a real RDS
//! promotion takes minutes; that time would add to every figure), and Route 53's propagation
//! to its name servers (INSYNC, typically well under a minute) is not modelled.
//!
//! Every run checks the data: each write the library acknowledged is on the new primary once.
//! Runs: `DRFAILOVER_BENCH_RUNS` (default 20). `cargo bench -p drfailover-lambda`.

#[path = "../tests/rig/mod.rs"]
mod rig;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_conn::Client;
use drfailover_testkit::dnsmasq::DnsServer;
use drfailover_testkit::wait::within;
use drfailover_testkit::{APP_DATABASE, APP_PASSWORD, APP_USER};
use rig::{alarm_event, Options, Rig, RECORD};

struct Run {
    received_to_submitted: Duration,
    sent_to_accepted: Duration,
    sent_to_first_write: Duration,
}

fn one_run() -> Result<Run, String> {
    let rig = Rig::start(Options {
        promotion_delay: Duration::ZERO,
        ..Options::default()
    });
    let (ip0, ip1, port) = {
        let t = rig.topology.lock().unwrap();
        (t.node(0).ip(), t.node(1).ip(), t.node(0).port())
    };
    let dns = Arc::new(DnsServer::start(&[(RECORD, ip0)], 1)?);
    {
        let dns = dns.clone();
        *rig.on_record_change.lock().unwrap() = Some(Box::new(move || {
            if let Err(e) = dns.set(&[(RECORD, ip1)]) {
                eprintln!("DNS mirror: {e}");
            }
        }));
    }
    let client = Client::connect_dsn(&format!(
        "mysql://{APP_USER}:{APP_PASSWORD}@{RECORD}:{port}/{APP_DATABASE}?nameserver={}&dns_min_ttl_ms=100&failover_timeout_ms=60000",
        dns.address()
    ))
    .map_err(|e| e.to_string())?;
    client
        .wait_ready(Duration::from_secs(20))
        .map_err(|e| e.to_string())?;
    client
        .query("CREATE TABLE bench_writes (id BIGINT PRIMARY KEY)")
        .map_err(|e| e.to_string())?;
    rig.topology.lock().unwrap().wait_replicated(0, 1)?;

    // A writer through the library, by name, all along.
    let stop = Arc::new(AtomicBool::new(false));
    let acked: Arc<Mutex<Vec<(u64, Instant)>>> = Arc::default();
    let writer = {
        let (stop, acked) = (stop.clone(), acked.clone());
        std::thread::spawn(move || {
            let mut id = 0u64;
            while !stop.load(Ordering::Relaxed) {
                id += 1;
                if client
                    .query(&format!("INSERT INTO bench_writes VALUES ({id})"))
                    .is_ok()
                {
                    acked.lock().unwrap().push((id, Instant::now()));
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        })
    };
    within(Duration::from_secs(20), || {
        (acked.lock().unwrap().len() >= 20).then_some(())
    })
    .ok_or("no writes before the fault")?;

    rig.kill_primary();
    let sent = Instant::now();
    let (status, reply) = rig.emulator.invoke(&alarm_event("ALARM"));
    if status != 200 || reply["outcome"] != "failed-over" {
        return Err(format!("invocation: {status} {reply}"));
    }
    let accepted = rig
        .proxy
        .accepted("ChangeResourceRecordSets")
        .first()
        .map(|s| s.at)
        .ok_or("no accepted change")?;
    let first_write = within(Duration::from_secs(60), || {
        acked
            .lock()
            .unwrap()
            .iter()
            .find(|(_, at)| *at > sent)
            .map(|(_, at)| *at)
    })
    .ok_or("no write through the library within 60 s of the event")?;
    stop.store(true, Ordering::Relaxed);
    writer.join().map_err(|_| "writer panicked")?;

    // Every acknowledged write is on the new primary, once.
    let acked = acked.lock().unwrap().clone();
    let t = rig.topology.lock().unwrap();
    let stored = t
        .node(1)
        .sql_value(&format!(
            "SELECT COUNT(*) FROM {APP_DATABASE}.bench_writes WHERE id IN ({})",
            acked
                .iter()
                .map(|(id, _)| id.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ))?
        .unwrap_or_default();
    if stored != acked.len().to_string() {
        return Err(format!(
            "{} writes acknowledged, {stored} on the new primary",
            acked.len()
        ));
    }
    let received_to_submitted = Duration::from_millis(
        reply["change_accepted_ms"]
            .as_u64()
            .ok_or("no change_accepted_ms in the reply")?,
    );
    Ok(Run {
        received_to_submitted,
        sent_to_accepted: accepted - sent,
        sent_to_first_write: first_write - sent,
    })
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

fn main() {
    let runs: usize = std::env::var("DRFAILOVER_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let mut results = Vec::new();
    for i in 0..runs {
        match one_run() {
            Ok(run) => {
                eprintln!(
                    "run {}: received→accepted {:?}, sent→arrived {:?}, sent→first write {:?}",
                    i + 1,
                    run.received_to_submitted,
                    run.sent_to_accepted,
                    run.sent_to_first_write
                );
                results.push(run);
            }
            Err(e) => panic!("run {}: {e}", i + 1),
        }
    }
    println!(
        "\ndrfailover-lambda, {runs} runs (kill -9 of the primary, alarm event, promotion at once):"
    );
    println!("| measure | p50 | p99 | max |");
    println!("|---|---|---|---|");
    for (name, pick) in [
        (
            "event received → Route 53 change accepted (function clock)",
            (|r: &Run| r.received_to_submitted) as fn(&Run) -> Duration,
        ),
        (
            "event sent → Route 53 change request arrived (harness clock)",
            |r: &Run| r.sent_to_accepted,
        ),
        (
            "event sent → first write by name through the library (TTL 1 s)",
            |r: &Run| r.sent_to_first_write,
        ),
    ] {
        let mut samples: Vec<Duration> = results.iter().map(pick).collect();
        samples.sort();
        println!(
            "| {name} | {} ms | {} ms | {} ms |",
            percentile(&samples, 50.0).as_millis(),
            percentile(&samples, 99.0).as_millis(),
            samples.last().copied().unwrap_or_default().as_millis()
        );
    }
}
