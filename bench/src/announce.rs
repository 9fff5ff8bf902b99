//! `drfailover-bench-dns`: how long announcing a new writer takes.
//!
//!     cargo run --release -p drfailover-bench --bin drfailover-bench-dns -- [--updates N] [--json PATH]
//!
//! - RFC 2136: N compare-and-swap updates (TSIG HMAC-SHA256, old writer known) to a real BIND
//!   9 on loopback, over UDP and over TCP, each timed from the call to `announce` to its
//!   return (BIND has applied the update when it answers); then the time until a real
//!   resolver (hickory, no cache) pointed at BIND answers the new address.
//! - Route 53 against moto on loopback: `announce` (ListResourceRecordSets +
//!   ChangeResourceRecordSets + GetChange until INSYNC, all SigV4-signed), and the change
//!   request alone (ChangeResourceRecordSets + INSYNC). moto is a Python server: this measures
//!   our client plus moto, not AWS (whose change propagation takes seconds).
//!
//! Prints a Markdown table. Timings on a shared 2-core machine are noisy.

#[path = "stats.rs"]
#[allow(dead_code)]
mod stats;

use std::time::{Duration, Instant};

use drfailover_dns::aws::credentials::load_credentials;
use drfailover_dns::aws::AwsClient;
use drfailover_dns::retry::RetryPolicy;
use drfailover_dns::route53::{RecordSet, Route53Announcer};
use drfailover_dns::{
    AnnounceOutcome, Announcer, AnnouncerConfig, NodeAddress, Route53Config, WriterChange,
};
use drfailover_testkit::bind::BindServer;
use drfailover_testkit::moto::MotoServer;
use serde_json::json;

fn change(old: &str, new: &str) -> WriterChange {
    WriterChange {
        old_writer: Some(NodeAddress::new("old", old)),
        new_writer: NodeAddress::new("new", new),
    }
}

fn address(i: usize) -> String {
    format!("127.0.{}.{}", 1 + i / 250, 1 + i % 250)
}

fn soon() -> Instant {
    Instant::now() + Duration::from_secs(10)
}

/// The RFC 2136 announcer of `db` on `server` (UDP, or TCP only when `tcp`).
fn rfc2136_announcer(server: &BindServer, tcp: bool) -> Box<dyn Announcer> {
    let mut config = match toml::from_str(&server.rfc2136_announcer("db")) {
        Ok(AnnouncerConfig::Rfc2136(config)) => config,
        other => panic!("the testkit's announcer table: {other:?}"),
    };
    config.tcp = tcp;
    AnnouncerConfig::Rfc2136(config)
        .build()
        .expect("rfc2136 announcer")
}

/// N alternating compare-and-swap updates; returns their latencies.
fn rfc2136_updates(server: &BindServer, tcp: bool, n: usize) -> Vec<Duration> {
    let announcer = rfc2136_announcer(server, tcp);
    let mut current = announcer.current(soon()).expect("read the record")[0]
        .trim_start_matches("A ")
        .to_string();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let next = address(i + if tcp { 500 } else { 0 });
        let started = Instant::now();
        let outcome = announcer
            .announce(&change(&current, &next), soon())
            .expect("update");
        samples.push(started.elapsed());
        assert!(matches!(outcome, AnnounceOutcome::Changed { .. }));
        current = next;
    }
    samples
}

/// Update, then poll a fresh resolver until it answers the new address.
fn rfc2136_visible(server: &BindServer, n: usize) -> Vec<Duration> {
    let announcer = rfc2136_announcer(server, false);
    let mut current = announcer.current(soon()).expect("read")[0]
        .trim_start_matches("A ")
        .to_string();
    let mut samples = Vec::with_capacity(n);
    for i in 0..n {
        let next = address(1000 + i);
        let started = Instant::now();
        announcer
            .announce(&change(&current, &next), soon())
            .expect("update");
        loop {
            if server.query("db.example.test", "A").expect("query") == [next.clone()] {
                break;
            }
            assert!(started.elapsed() < Duration::from_secs(10), "never visible");
        }
        samples.push(started.elapsed());
        current = next;
    }
    samples
}

fn route53(n: usize) -> (Vec<Duration>, Vec<Duration>) {
    let moto = MotoServer::start().expect("moto_server");
    let env = |name: &str| match name {
        "AWS_ACCESS_KEY_ID" => Some("AKIDBENCH".to_string()),
        "AWS_SECRET_ACCESS_KEY" => Some("bench-secret-not-a-real-one".to_string()),
        _ => None,
    };
    let client = AwsClient::new(
        &moto.endpoint(),
        "route53",
        "us-east-1".into(),
        load_credentials(None, &env).unwrap(),
        RetryPolicy {
            attempts: 3,
            per_attempt: Duration::from_secs(5),
            base_delay: Duration::from_millis(50),
            max_delay: Duration::from_millis(200),
        },
    )
    .unwrap();
    let zone = drfailover_testkit::moto::create_hosted_zone(&client, "example.test.").unwrap();
    let r53 = Route53Announcer::with_env(
        &Route53Config {
            hosted_zone_id: zone,
            name: "db.example.test".into(),
            failover: false,
            ttl: Some(1),
            profile: None,
            region: None,
            endpoint: Some(moto.endpoint()),
            timeout_ms: 5000,
            attempts: 3,
            insync_timeout_ms: 10_000,
            addresses: Default::default(),
        },
        &env,
    )
    .unwrap();
    r53.announce(
        &WriterChange {
            old_writer: None,
            new_writer: NodeAddress::new("first", "10.0.0.1"),
        },
        soon(),
    )
    .unwrap();
    let mut current = "10.0.0.1".to_string();
    let mut announce = Vec::new();
    for i in 0..n {
        let next = format!("10.0.{}.{}", 1 + i / 250, 2 + i % 250);
        let started = Instant::now();
        r53.announce(&change(&current, &next), soon()).unwrap();
        announce.push(started.elapsed());
        current = next;
    }
    let mut change_only = Vec::new();
    for i in 0..n {
        let set = RecordSet {
            name: "db.example.test.".into(),
            rtype: "A".into(),
            set_identifier: None,
            failover: None,
            ttl: Some(1),
            values: vec![format!("10.1.0.{}", 1 + i % 250)],
            health_check_id: None,
            alias: false,
        };
        let started = Instant::now();
        r53.apply(&[("UPSERT", set)], soon()).unwrap();
        change_only.push(started.elapsed());
    }
    (announce, change_only)
}

const HELP: &str = "\
drfailover-bench-dns: how long announcing a new writer takes (RFC 2136 to a real BIND on
loopback over UDP and TCP, Route 53 against moto on loopback). Prints a Markdown table.
About 1 minute with the default 50 updates.

usage: cargo run --release -p drfailover-bench --bin drfailover-bench-dns -- [--updates N] [--json PATH]

  --updates N   updates per row (default 50)
  --json PATH   also write the figures as JSON";

fn main() {
    let mut n = 50usize;
    let mut json_path = None;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--updates" => {
                n = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--updates N")
            }
            "--json" => json_path = args.next(),
            "-h" | "--help" => {
                println!("{HELP}");
                return;
            }
            "--bench" => {}
            other => {
                eprintln!("unknown argument {other}; see bench/src/dns.rs");
                std::process::exit(2);
            }
        }
    }
    let server = BindServer::start("example.test", &[("db", "127.0.0.10".parse().unwrap())], 1)
        .expect("BIND");
    // Warm-up (first TSIG, first sockets).
    rfc2136_updates(&server, false, 3);
    let rows: Vec<(&str, Vec<Duration>)> = vec![
        (
            "RFC 2136 update to BIND, UDP (TSIG, CAS)",
            rfc2136_updates(&server, false, n),
        ),
        (
            "RFC 2136 update to BIND, TCP (TSIG, CAS)",
            rfc2136_updates(&server, true, n),
        ),
        (
            "RFC 2136 update → resolver answers new address",
            rfc2136_visible(&server, n.min(30)),
        ),
    ];
    drop(server);
    let (announce, change_only) = route53(n.min(30));
    let rows: Vec<(&str, Vec<Duration>)> = rows
        .into_iter()
        .chain([
            (
                "Route 53 (moto): announce = List + Change + INSYNC",
                announce,
            ),
            ("Route 53 (moto): Change + GetChange INSYNC", change_only),
        ])
        .collect();
    println!("| what | n | p50 ms | p99 ms | max ms |");
    println!("|---|---:|---:|---:|---:|");
    let mut out = Vec::new();
    for (what, samples) in &rows {
        let (p50, p99, max) = stats::summary(samples);
        println!(
            "| {what} | {} | {p50:.2} | {p99:.2} | {max:.2} |",
            samples.len()
        );
        out.push(json!({ "what": what, "n": samples.len(), "p50_ms": p50, "p99_ms": p99, "max_ms": max }));
    }
    if let Some(path) = json_path {
        std::fs::write(&path, serde_json::to_string_pretty(&out).unwrap()).expect("write JSON");
    }
}
