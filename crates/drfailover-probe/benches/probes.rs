//! Probe costs and detection times on real servers. Prints Markdown tables; asserts nothing.
//!
//!     cargo bench -p drfailover-probe            # needs root for the blackhole rows
//!
//! Detection mirrors the client's monitor for one endpoint with the default settings (probe
//! interval 200 ms, deadline 200 ms, 3 failures): the fault lands at a random moment and the
//! time until the tracker says `Down` is measured. No application traffic: this is the
//! probe-only path (traffic makes a crash visible at the first failed call).

use std::time::{Duration, Instant};

use drfailover_mysql::ConnectOptions;
use drfailover_probe::handshake::probe_handshake;
use drfailover_probe::tcp::probe_tcp;
use drfailover_probe::{Deadline, Health, HealthTracker, MonitorProbe, Observation, TrackerConfig};
use drfailover_testkit::{NodeRole, Topology, APP_DATABASE, APP_PASSWORD, APP_USER};
use rand::Rng;

const SAMPLES: usize = 2000;
const TRIALS: usize = 10;
const PROBE_DEADLINE: Duration = Duration::from_millis(200);

fn monitor(topo: &Topology, i: usize) -> MonitorProbe {
    let n = topo.node(i);
    MonitorProbe::new(
        ConnectOptions::tcp(n.ip().to_string(), n.port())
            .user(APP_USER)
            .password(APP_PASSWORD)
            .database(APP_DATABASE),
    )
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

/// `pace`: pause between samples (unauthenticated connects pile up server-side otherwise).
fn cost(name: &str, samples: usize, pace: Duration, mut probe: impl FnMut() -> Observation) {
    for _ in 0..20 {
        probe();
    }
    let mut us: Vec<f64> = (0..samples)
        .map(|_| {
            std::thread::sleep(pace);
            let obs = probe();
            assert!(obs.class.is_alive(), "{name}: {obs:?}");
            obs.latency.as_secs_f64() * 1e6
        })
        .collect();
    us.sort_by(f64::total_cmp);
    println!(
        "| {name} | {:.0} | {:.0} | {samples} |",
        percentile(&us, 0.5),
        percentile(&us, 0.99)
    );
}

/// Run the monitor loop for one endpoint; inject the fault at a random moment; return the
/// time from the fault to `Down`.
fn detect(probe: &mut MonitorProbe, fault: impl FnOnce()) -> Duration {
    let config = TrackerConfig::default();
    let mut tracker = HealthTracker::new(config, Instant::now());
    tracker.observe(
        probe.role(Deadline::after(PROBE_DEADLINE)).class,
        Instant::now(),
    );
    let fault_at = Instant::now() + Duration::from_millis(rand::thread_rng().gen_range(0..200));
    let mut fault = Some(fault);
    let mut injected = None;
    loop {
        let now = Instant::now();
        if injected.is_none() && now >= fault_at {
            (fault.take().expect("once"))();
            injected = Some(Instant::now());
        }
        let next = tracker.next_probe_at().min(if injected.is_none() {
            fault_at
        } else {
            tracker.next_probe_at()
        });
        if next > now {
            std::thread::sleep(next - now);
            continue;
        }
        if now >= tracker.next_probe_at() {
            let obs = probe.role(Deadline::after(PROBE_DEADLINE));
            tracker.observe(obs.class, Instant::now());
            if tracker.state() == Health::Down {
                if let Some(at) = injected {
                    return at.elapsed();
                }
                panic!("went down before the fault: {obs:?}");
            }
        }
    }
}

fn row(name: &str, mut ms: Vec<f64>) {
    ms.sort_by(f64::total_cmp);
    println!(
        "| {name} | {:.0} | {:.0} | {:.0} | {} |",
        percentile(&ms, 0.5),
        percentile(&ms, 0.99),
        ms.last().copied().unwrap_or(0.0),
        ms.len()
    );
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return; // `cargo test --benches` lists benchmarks; nothing to list.
    }
    let mut topo = Topology::primary_replica().expect("topology");
    println!("## Probe cost on loopback (µs)\n");
    println!("| probe | median | p99 | samples |\n|---|---|---|---|");
    let addr = topo.node(0).addr();
    let (few, pace) = (300, Duration::from_millis(2));
    cost("tcp connect", few, pace, || {
        probe_tcp(addr, Deadline::after(PROBE_DEADLINE))
    });
    cost("handshake (greeting)", few, pace, || {
        probe_handshake(addr, Deadline::after(PROBE_DEADLINE)).0
    });
    let mut m = monitor(&topo, 0);
    let none = Duration::ZERO;
    cost("ping (reused connection)", SAMPLES, none, || {
        m.ping(Deadline::after(PROBE_DEADLINE))
    });
    cost("query SELECT 1 (reused)", SAMPLES, none, || {
        m.query("SELECT 1", Deadline::after(PROBE_DEADLINE))
    });
    cost("role, primary (2 round trips)", SAMPLES, none, || {
        m.role(Deadline::after(PROBE_DEADLINE))
    });
    let mut r = monitor(&topo, 1);
    cost("role, replica (2 round trips)", SAMPLES, none, || {
        r.role(Deadline::after(PROBE_DEADLINE))
    });

    println!("\n## Detection time with default settings (ms from fault to Down)\n");
    println!("interval 200 ms, deadline 200 ms, fall 3; probe-only (no application traffic)\n");
    println!("| fault | p50 | p99 | max | trials |\n|---|---|---|---|---|");
    let mut kill = Vec::new();
    for _ in 0..TRIALS {
        let mut probe = monitor(&topo, 0);
        let t = detect(&mut probe, || topo.kill9(0).expect("kill"));
        kill.push(t.as_secs_f64() * 1e3);
        topo.restart(0, NodeRole::Primary, None).expect("restart");
    }
    row("kill -9", kill);
    let mut stop = Vec::new();
    for _ in 0..TRIALS {
        let mut probe = monitor(&topo, 0);
        let t = detect(&mut probe, || topo.freeze(0).expect("freeze"));
        stop.push(t.as_secs_f64() * 1e3);
        topo.thaw(0).expect("thaw");
    }
    row("SIGSTOP", stop);
    drop(topo);
    match Topology::primary_replica_in_lab() {
        Ok(lab) => {
            let mut hole = Vec::new();
            for _ in 0..TRIALS {
                let mut probe = monitor(&lab, 0);
                let t = detect(&mut probe, || lab.blackhole(0).expect("blackhole"));
                hole.push(t.as_secs_f64() * 1e3);
                lab.heal(0).expect("heal");
            }
            row("blackhole (iptables DROP in a netns)", hole);
        }
        Err(e) => println!("| blackhole | – | – | – | not run: {e} |"),
    }
}
