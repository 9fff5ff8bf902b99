//! `drfailover-bench`: failover unavailability, per-query overhead and scaling, measured on
//! real local servers. Prints Markdown tables and writes JSON. `--help` lists the options.
//!
//! Timings on a shared 2-core machine are noisy: compare ratios within one run.

mod failover;
mod footprint;
mod handwritten;
mod haproxy;
mod orchestrator;
mod orchestrator_chaos;
mod orchestrator_process;
mod overhead;
#[allow(dead_code)] // shared with the other benchmarks, which use other parts
mod stats;
mod storm;
mod svg;

use std::sync::Arc;
use std::time::Duration;

use drfailover_conn::Client;
use drfailover_testkit::Topology;
use serde_json::json;

use failover::{Fault, Rig, Via};
use overhead::Design;

struct Args {
    chaos: Option<usize>,
    trials: usize,
    quick: bool,
    json: Option<String>,
    only: Option<String>,
    storm_clients: usize,
    via: Option<String>,
    faults: Option<String>,
}

/// What `--help` prints.
const HELP: &str = "\
drfailover-bench: failover unavailability (drfailover, HAProxy, a hand-written C monitor),
per-query overhead and scaling, the C ABI's overhead, footprint, the reconnect storm and the
orchestrator, all on real local MariaDB servers. Prints Markdown tables.

usage: cargo run --release -p drfailover-bench -- [OPTIONS]

  (no option)          everything, 20 trials per scenario (about 25 min; writes the SVGs in docs/)
  --quick              about 1 min: the library's failover under kill -9 and SIGSTOP, per-query
                       overhead and scaling, footprint, the orchestrator under kill -9; 3 trials,
                       short windows; no SVG written
  --only PART          one part: failover | overhead | c-abi | footprint | storm | orchestrator
                       | orchestrator-dns (combine with --quick for fewer trials)
  --trials N           trials per scenario (default 20; 3 with --quick)
  --via DESIGN         failover through one design only: library | haproxy | handwritten
                       (HAProxy rows need `haproxy`, installed by scripts/deps)
  --faults SUBSTRING   failover scenarios whose name contains SUBSTRING
  --storm-clients N    clients in the reconnect storm (default 500)
  --json PATH          also write every figure as JSON
  --chaos N            N mixed failovers under 16 writers, then data checks (about 3 min for 100);
                       exit 0 only with no acknowledged write lost or duplicated. With
                       --only orchestrator: N orchestrated faults, the kinds in turn, a fresh
                       topology each (about 16 s per fault); needs the drfailover binary
                       (cargo build --release -p drfailover-cli)
  -h, --help           this text

The DNS announcers are measured by the other binary:
  cargo run --release -p drfailover-bench --bin drfailover-bench-dns -- --help";

/// The parts `--quick` runs when no `--only` is given.
const QUICK_PARTS: [&str; 4] = ["failover", "overhead", "footprint", "orchestrator"];

impl Args {
    /// Whether part `name` runs (also true for `alias`, a name `--only` accepts for it).
    fn runs(&self, name: &str, alias: &[&str]) -> bool {
        match self.only.as_deref() {
            Some(only) => only == name || alias.contains(&only),
            None => !self.quick || QUICK_PARTS.contains(&name),
        }
    }
}

fn args() -> Args {
    let mut a = Args {
        chaos: None,
        trials: 20,
        quick: false,
        json: None,
        only: None,
        storm_clients: 500,
        via: None,
        faults: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--trials" => a.trials = it.next().and_then(|v| v.parse().ok()).expect("--trials N"),
            "--quick" => a.quick = true,
            "--json" => a.json = it.next(),
            "--only" => a.only = it.next(),
            "--via" => a.via = it.next(),
            "--faults" => a.faults = it.next(),
            "--storm-clients" => {
                a.storm_clients = it
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--storm-clients N")
            }
            "--chaos" => {
                a.chaos = Some(
                    it.next()
                        .and_then(|v| v.parse().ok())
                        .expect("--chaos N (failovers)"),
                )
            }
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            "--bench" => {} // passed by `cargo bench`
            other => {
                eprintln!("unknown argument {other}; see --help");
                std::process::exit(2);
            }
        }
    }
    if a.quick {
        a.trials = a.trials.min(3);
    }
    a
}

fn main() {
    let args = args();
    if let Some(failovers) = args.chaos {
        if args.only.as_deref() == Some("orchestrator") {
            std::process::exit(orchestrator_chaos(failovers));
        }
        std::process::exit(chaos(failovers));
    }
    let mut report = serde_json::Map::new();
    let machine = format!(
        "{} cores, {}",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        drfailover_mysql::client_version()
    );
    println!(
        "# drfailover benchmarks\n\nmachine: {machine}; trials per scenario: {}\n",
        args.trials
    );
    report.insert("machine".into(), json!(machine));
    if args.runs("failover", &[]) {
        report.insert("failover".into(), failover_table(&args));
    }
    if args.runs("overhead", &[]) {
        report.insert("overhead".into(), overhead_tables(&args));
    }
    if args.runs("c-abi", &["overhead"]) && !(args.quick && args.only.is_none()) {
        report.insert("c_abi_overhead".into(), c_abi_table(&args));
    }
    if args.runs("footprint", &[]) {
        report.insert("footprint".into(), footprint_table(&args));
    }
    if args.runs("storm", &[]) {
        report.insert("storm".into(), storm_table(&args));
    }
    if args.runs("orchestrator", &["orchestrator-dns"]) {
        report.insert("orchestrator".into(), orchestrator_table(&args));
    }
    if let Some(path) = &args.json {
        std::fs::write(path, serde_json::to_string_pretty(&report).expect("json"))
            .expect("write json");
        println!("\nJSON written to {path}");
    }
}

/// How a failed data check starts its message (a result, not a harness failure).
const DATA_CHECK_FAILED: &str = "DATA CHECK FAILED";

fn failover_table(args: &Args) -> serde_json::Value {
    const THREADS: usize = 4;
    println!("## Failover unavailability (ms)\n");
    println!("{THREADS} writer threads, small autocommit INSERTs, default detection settings (probe every 200 ms, 200 ms deadline, 3 failures); per thread the gap from the last acknowledged write before the fault to the first after, minus any delay the harness imposed.\n");
    println!("| fault | p50 | p99 | max | samples | target | promotion p50 (harness) | failed statements per trial |\n|---|---|---|---|---|---|---|---|");
    let scenarios = [
        (Fault::Kill, "p99 ≤ 50"),
        (Fault::KillDelayed(Duration::from_millis(500)), "p99 ≤ 50"),
        (Fault::Stop, "≤ 1000 + 50"),
        (Fault::Blackhole, "≤ 1000 + 50"),
        (Fault::DnsFlip(1), "≤ TTL + 50 = 1050"),
        (Fault::DnsCrashFlip(1), "≤ TTL + 50 = 1050"),
        (Fault::DnsFlip(5), "≤ TTL + 50 = 5050"),
        (Fault::DnsCrashFlip(5), "≤ TTL + 50 = 5050"),
        (Fault::StopPromoted, "p99 ≤ 30"),
        (Fault::BlackholePromoted, "p99 ≤ 30"),
        (
            Fault::StopThenWritable(Duration::ZERO),
            "– (floor: probe interval + probe deadline, the detection budget)",
        ),
        (
            Fault::StopThenWritable(Duration::from_millis(500)),
            "p99 ≤ 30",
        ),
        (
            Fault::StopThenWritable(Duration::from_millis(1500)),
            "p99 ≤ 30",
        ),
    ];
    let mut out = Vec::new();
    let haproxy_scenarios: Vec<(Fault, &str)> = scenarios.to_vec();
    let runs: Vec<(Via, Fault, &str)> = scenarios
        .iter()
        .map(|(f, t)| (Via::Library, *f, *t))
        .chain(
            haproxy_scenarios
                .iter()
                .map(|(f, t)| (Via::Haproxy, *f, *t)),
        )
        .chain(scenarios.iter().map(|(f, t)| (Via::HandWritten, *f, *t)))
        .filter(|(via, _, _)| {
            args.via
                .as_deref()
                .is_none_or(|v| format!("{via:?}").eq_ignore_ascii_case(v))
        })
        .filter(|(via, fault, _)| {
            // The hand-written design and HAProxy run the original five scenarios.
            *via == Via::Library
                || !matches!(
                    fault,
                    Fault::DnsFlip(5)
                        | Fault::DnsCrashFlip(_)
                        | Fault::StopThenWritable(_)
                        | Fault::StopPromoted
                        | Fault::BlackholePromoted
                )
        })
        .filter(|(_, fault, _)| {
            args.faults
                .as_deref()
                .is_none_or(|f| fault.name().contains(f))
        })
        // --quick alone: the library under kill -9 and SIGSTOP.
        .filter(|(via, fault, _)| {
            !args.quick
                || args.via.is_some()
                || args.faults.is_some()
                || (*via == Via::Library && matches!(fault, Fault::Kill | Fault::Stop))
        })
        .collect();
    let mut via_shown = None;
    let mut data_checked = 0;
    // kill -9 and SIGSTOP (both promoted at once) per design, for the picture.
    let mut pictured: Vec<(String, Vec<f64>)> = Vec::new();
    for (via, fault, target) in runs {
        if via_shown != Some(via) {
            if via == Via::Haproxy {
                println!("\nThe same faults through HAProxy (mode tcp, option mysql-check, standby as backup, inter 200 fastinter 100 fall 3 rise 2, on-marked-down shutdown-sessions; clients reconnect after any error; for the DNS flip one server by name, re-resolved every 1 s):\n");
                println!("| fault (HAProxy) | p50 | p99 | max | samples | target | promotion p50 (harness) | failed statements per trial |\n|---|---|---|---|---|---|---|---|");
            }
            if via == Via::HandWritten {
                println!("\nThe same faults through the hand-written design (bench/c/handwritten.c: one connection behind a global mutex, a monitor thread pinging every {} ms, reconnect by host name, blind retry after a lost connection; connect timeout 1 s, read/write timeouts 2 s). The name flips to the new primary the moment it is promoted (best case: no resolver cache):\n", handwritten::INTERVAL_MS);
                println!("| fault (hand-written) | p50 | p99 | max | samples | target | promotion p50 (harness) | failed statements per trial | blind retries per trial |\n|---|---|---|---|---|---|---|---|---|");
            }
            via_shown = Some(via);
        }
        let result = Rig::start(fault, via).and_then(|mut rig| {
            let mut samples = Vec::new();
            for _ in 0..args.trials {
                samples.extend(rig.trial(fault, THREADS)?);
            }
            // The library's data after all trials of the scenario (the peers retry blindly
            // or lose track of outcomes by design: their rows are not checked).
            if via == Via::Library {
                rig.verify()
                    .map_err(|e| format!("{DATA_CHECK_FAILED}: {e}"))?;
                data_checked += 1;
            }
            Ok((samples, rig.promotions, rig.failed, rig.blind_retries))
        });
        match result {
            Ok((samples, promotions, failed, blind)) => {
                let (p50, p99, max) = stats::summary(&samples);
                let (promo, _, _) = stats::summary(&promotions);
                if matches!(fault, Fault::Kill | Fault::Stop) {
                    let ms = samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
                    let design = match via {
                        Via::Library => "drfailover",
                        Via::Haproxy => "HAProxy",
                        Via::HandWritten => "hand-written",
                    };
                    let kind = if fault == Fault::Kill {
                        "kill -9"
                    } else {
                        "SIGSTOP"
                    };
                    pictured.push((format!("{design}: {kind}"), ms));
                }
                let mean = |v: &[u64]| v.iter().sum::<u64>() as f64 / v.len().max(1) as f64;
                let (failed_mean, blind_mean) = (mean(&failed), mean(&blind));
                let blind_cell = if via == Via::HandWritten {
                    format!(" {blind_mean:.1} |")
                } else {
                    String::new()
                };
                println!(
                    "| {} | {p50:.1} | {p99:.1} | {max:.1} | {} | {target} | {promo:.1} | {failed_mean:.1} |{blind_cell}",
                    fault.name(),
                    samples.len()
                );
                out.push(json!({ "via": format!("{via:?}"), "fault": fault.name(), "p50_ms": p50, "p99_ms": p99, "max_ms": max, "samples": samples.len(), "promotion_p50_ms": promo, "failed_statements_per_trial": failed_mean, "blind_retries_per_trial": blind_mean }));
            }
            // A design that never gets writes going again is a result, not a harness failure.
            Err(e) if e.contains(failover::NEVER_RESUMED) => {
                println!(
                    "| {} | never | never | never | 0 | {target} | – | – | writes {} |",
                    fault.name(),
                    failover::NEVER_RESUMED
                );
                out.push(json!({ "via": format!("{via:?}"), "fault": fault.name(), "never_resumed": true }));
            }
            Err(e) if e.starts_with(DATA_CHECK_FAILED) => {
                println!("| {} | – | – | – | 0 | {e} |", fault.name());
                out.push(json!({ "via": format!("{via:?}"), "fault": fault.name(), "error": e }));
            }
            Err(e) => {
                println!("| {} | – | – | – | 0 | not run: {e} |", fault.name());
                out.push(json!({ "via": format!("{via:?}"), "fault": fault.name(), "error": e }));
            }
        }
    }
    if data_checked > 0 {
        println!(
            "\nData checked after each library scenario; passed in {data_checked} (every acknowledged write present on the final primary, none twice, no row neither acknowledged nor reported outcome-unknown); a failure is shown in its row."
        );
    }
    // Only a run of every fault draws the picture (a filtered run would overwrite it with a
    // part of it).
    if args.faults.is_none() && !args.quick && !pictured.is_empty() {
        let series: Vec<(&str, Vec<f64>)> = pictured
            .iter()
            .map(|(name, v)| (name.as_str(), v.clone()))
            .collect();
        svg::write_doc(
            "failover.svg",
            &svg::cdf_svg(
                "Unavailability per writer thread, promoted at once (CDF, ms)",
                &series,
            ),
        );
    }
    json!(out)
}

/// The orchestrator promotes (no harness help): fault → writable, the application's
/// unavailability, switchover pause, data; the anchors' documented defaults beside; an SVG CDF.
fn orchestrator_table(args: &Args) -> serde_json::Value {
    use orchestrator::OrchFault;
    const THREADS: usize = 4;
    println!("\n## Orchestrator: automatic failover (ms)\n");
    println!("Primary + 2 semi-sync replicas (AFTER_SYNC, heartbeat set to {} ms by the orchestrator), default orchestrator settings (probe every 200 ms, 200 ms deadline, fall 3 — 2 when every replica confirms the silence — re-probe every 20 ms while suspect, replicas re-read every 20 ms while a probe is pending), {THREADS} writer threads through a drfailover client (probe every 200 ms); the fault at a random moment; a fresh topology per trial. *Writable*: fault → the orchestrator made the new primary writable. *Unavailability*: per writer thread, the longest gap between consecutive acknowledged writes that ends after the fault. *Lost*: acknowledged writes missing on the new primary. *Fenced acks*: writes a client connected straight to the old primary sent after the promotion and got acknowledged (SIGSTOP/blackhole, thawed/healed after the promotion).\n", drfailover_orchestrator::policy::Policy::default().heartbeat_period.as_millis());
    println!("| fault | writable p50 | p99 | max | unavailability p50 | p99 | max | samples | failed / trial | unknown / trial | lost | fenced acks |\n|---|---|---|---|---|---|---|---|---|---|---|---|");
    let mut out = Vec::new();
    let mut cdf: Vec<(&str, Vec<f64>)> = Vec::new();
    let mut splits: Vec<String> = Vec::new();
    let dns_only = args.only.as_deref() == Some("orchestrator-dns");
    // DRFAILOVER_BENCH_FAULTS (an investigation): only those fault trials, nothing else.
    let faults_only = std::env::var_os("DRFAILOVER_BENCH_FAULTS").is_some();
    let faults = if dns_only {
        Vec::new()
    } else {
        // DRFAILOVER_BENCH_FAULTS=stop,blackhole limits the kinds (for investigations).
        let only = std::env::var("DRFAILOVER_BENCH_FAULTS").unwrap_or_default();
        [OrchFault::Kill, OrchFault::Stop, OrchFault::Blackhole]
            .into_iter()
            .filter(|f| !args.quick || args.only.is_some() || *f == OrchFault::Kill)
            .filter(|f| {
                only.is_empty() || only.split(',').any(|o| f.name().to_lowercase().contains(o))
            })
            .collect()
    };
    for fault in faults {
        let mut writable = Vec::new();
        let mut gaps = Vec::new();
        let mut parts: [Vec<Duration>; 4] = Default::default();
        let (mut failed, mut unknown, mut lost, mut fenced, mut errors) = (0, 0, 0, 0, Vec::new());
        for _ in 0..args.trials {
            match orchestrator::trial(fault, THREADS) {
                Ok(t) => {
                    let b = t.breakdown;
                    for (i, d) in [b.detect, b.confirm, b.catchup, b.promote]
                        .into_iter()
                        .enumerate()
                    {
                        parts[i].push(d);
                    }
                    writable.push(t.writable);
                    gaps.extend(t.gaps);
                    failed += t.failed;
                    unknown += t.unknown;
                    lost += t.lost;
                    fenced += t.fenced_acks;
                }
                Err(e) => errors.push(e),
            }
        }
        let (w50, w99, wmax) = stats::summary(&writable);
        let (g50, g99, gmax) = stats::summary(&gaps);
        let n = writable.len().max(1) as f64;
        println!(
            "| {} | {w50:.1} | {w99:.1} | {wmax:.1} | {g50:.1} | {g99:.1} | {gmax:.1} | {} | {:.1} | {:.1} | {lost} | {fenced} |",
            fault.name(),
            gaps.len(),
            failed as f64 / n,
            unknown as f64 / n
        );
        let median = |v: &[Duration]| stats::summary(v).0;
        let split: Vec<f64> = parts.iter().map(|p| median(p)).collect();
        splits.push(format!(
            "- {}: detect {:.1}, confirm {:.1}, catch-up {:.1}, promote {:.1}; client repoint (unavailability - writable) {:.1}",
            fault.name(),
            split[0],
            split[1],
            split[2],
            split[3],
            g50 - w50
        ));
        for e in &errors {
            println!("\n(trial failed: {e})\n");
        }
        cdf.push((
            fault.name(),
            gaps.iter().map(|d| d.as_secs_f64() * 1e3).collect(),
        ));
        out.push(json!({ "fault": fault.name(), "writable_p50_ms": w50, "writable_p99_ms": w99, "writable_max_ms": wmax, "unavailability_p50_ms": g50, "unavailability_p99_ms": g99, "unavailability_max_ms": gmax, "samples": gaps.len(), "trials": writable.len(), "failed_per_trial": failed as f64 / n, "unknown_per_trial": unknown as f64 / n, "lost": lost, "fenced_acks": fenced, "errors": errors, "breakdown_p50_ms": { "detect": split[0], "confirm": split[1], "catchup": split[2], "promote": split[3], "client_repoint": g50 - w50 } }));
    }
    if !splits.is_empty() {
        println!(
            "\nWhere the time to writable goes (medians, ms; from the orchestrator's events):\n"
        );
        for line in &splits {
            println!("{line}");
        }
    }
    let threads = 8;
    // DRFAILOVER_BENCH_FAULTS=switchover: the switchovers only.
    let switchover_too = std::env::var("DRFAILOVER_BENCH_FAULTS")
        .is_ok_and(|only| only.split(',').any(|o| o == "switchover"));
    if faults_only && !switchover_too {
        return json!(out);
    }
    if args.quick && args.only.is_none() {
        println!(
            "\n(--quick: switchover, DNS and the anchors' table are left to --only orchestrator)"
        );
        return json!(out);
    }
    let switched = if dns_only {
        Err("skipped (--only orchestrator-dns)".into())
    } else {
        orchestrator::switchovers(args.trials, threads)
    };
    match switched {
        Ok((pauses, failed, unknown, lost)) => {
            if std::env::var_os("DRFAILOVER_BENCH_EVENTS").is_some() {
                let mut ms: Vec<u128> = pauses.iter().map(|d| d.as_millis()).collect();
                ms.sort_unstable();
                eprintln!("switchover pauses (ms, sorted): {ms:?}");
            }
            let (p50, p99, max) = stats::summary(&pauses);
            println!("\nPlanned switchover (`drfailover switchover`), {} switchovers back and forth under {threads} writer threads: longest per-thread pause p50 {p50:.1} / p99 {p99:.1} / max {max:.1} ms; failed statements {failed}; outcome unknown {unknown}; acknowledged writes lost {lost}.", pauses.len());
            out.push(json!({ "switchover": { "count": pauses.len(), "pause_p50_ms": p50, "pause_p99_ms": p99, "pause_max_ms": max, "failed": failed, "unknown": unknown, "lost": lost } }));
        }
        Err(e) => println!("\nswitchover: not run: {e}"),
    }
    if faults_only {
        return json!(out);
    }
    let mut answered = Vec::new();
    let mut first_write = Vec::new();
    let mut dns_lost = 0;
    let mut dns_errors = Vec::new();
    for _ in 0..args.trials {
        match orchestrator::dns_trial(1, THREADS) {
            Ok((a, w, l)) => {
                answered.push(a);
                first_write.push(w);
                dns_lost += l;
            }
            Err(e) => dns_errors.push(e),
        }
    }
    let (a50, a99, amax) = stats::summary(&answered);
    let (w50, w99, wmax) = stats::summary(&first_write);
    println!("\nThrough DNS (kill -9; the orchestrator announces with an RFC 2136 update to a real BIND, TTL 1 s; {THREADS} writers through a client configured only by the name, resolving through that BIND), {} trials: promotion → the name answers the new address p50 {a50:.1} / p99 {a99:.1} / max {amax:.1} ms; promotion → first acknowledged write through the name p50 {w50:.1} / p99 {w99:.1} / max {wmax:.1} ms (target ≤ TTL + 100 = 1100); acknowledged writes lost {dns_lost}.", answered.len());
    for e in &dns_errors {
        println!("\n(DNS trial failed: {e})");
    }
    out.push(json!({ "dns_ttl_1s": { "trials": answered.len(), "answers_p50_ms": a50, "answers_p99_ms": a99, "answers_max_ms": amax, "first_write_p50_ms": w50, "first_write_p99_ms": w99, "first_write_max_ms": wmax, "lost": dns_lost, "errors": dns_errors } }));
    println!(
        "\nThe anchors' documented defaults (detection + promotion, before clients follow):\n"
    );
    println!("| tool | default failover time | from |\n|---|---|---|");
    for (tool, time, from) in [
        ("orchestrator (openark)", "≥ 5 s polls; detection bounded by the replicas' `slave_net_timeout` (60 s default)", "docs/configuration-discovery-basic.md (`InstancePollSeconds: 5`), docs/failure-detection.md"),
        ("MaxScale mariadbmon", "≈ 25 s worst case: (`monitor_interval` 2 s + `backend_connect_timeout` 3 s) × `failcount` 5", "MaxScale MariaDB Monitor documentation"),
        ("MHA", "≈ 12 s: `ping_interval` 3 s, master declared dead after 4 failed pings", "mha4mysql wiki, Parameters"),
        ("MySQL Group Replication", "≈ 10 s: suspicion after 5 s + `group_replication_member_expel_timeout` 5 s", "MySQL 8.0 manual, group replication failure detection"),
        ("RDS Multi-AZ", "60–120 s", "Amazon RDS User Guide, Multi-AZ failover"),
        ("Route 53 health-check failover", "interval 30 s (fast: 10 s) × failure threshold 3 + TTL", "Amazon Route 53 Developer Guide, health checks"),
    ] {
        println!("| {tool} | {time} | {from} |");
    }
    if args.quick {
        return json!(out);
    }
    svg::write_doc(
        "orchestrator-failover.svg",
        &svg::cdf_svg(
            "Application unavailability when the orchestrator fails over (CDF, ms)",
            &cdf,
        ),
    );
    json!(out)
}

/// The C ABI against raw libmariadb, from C: runs scripts/bench-c-overhead (it builds the
/// shared library and a C program, and uses one throwaway topology) and turns its table into
/// JSON rows.
fn c_abi_table(args: &Args) -> serde_json::Value {
    let (rounds, n) = if args.quick {
        ("3", "5000")
    } else {
        ("7", "20000")
    };
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/bench-c-overhead");
    println!();
    let out = match std::process::Command::new(&script)
        .args([rounds, n])
        .output()
    {
        Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout).to_string(),
        Ok(o) => {
            let e = format!(
                "{} failed: {}",
                script.display(),
                String::from_utf8_lossy(&o.stderr)
            );
            println!("## C ABI overhead\n\nnot run: {e}");
            return json!({ "error": e });
        }
        Err(e) => {
            println!("## C ABI overhead\n\nnot run: {e}");
            return json!({ "error": e.to_string() });
        }
    };
    print!("{out}");
    let rows: Vec<serde_json::Value> = out
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let f: Vec<&str> = l.trim_matches('|').split('|').map(str::trim).collect();
            Some(json!({
                "statement": f.first()?.trim_matches('`'),
                "mode": f.get(1)?,
                "statements_per_s": f.get(2)?.parse::<f64>().ok(),
                "raw_over_mode": f.get(3)?.parse::<f64>().ok(),
                "client_instructions_per_statement": f.get(4)?.parse::<u64>().ok(),
            }))
        })
        .collect();
    json!(rows)
}

fn overhead_tables(args: &Args) -> serde_json::Value {
    let topo = Topology::primary_replica().expect("topology");
    let client = Arc::new(Client::connect_dsn(&topo.dsn("pool_size=32")).expect("client"));
    client.wait_ready(Duration::from_secs(5)).expect("writer");
    client
        .query("CREATE TABLE kv (id INT PRIMARY KEY, v VARCHAR(32))")
        .expect("create");
    let values: Vec<String> = (1..=1000).map(|i| format!("({i}, 'value-{i}')")).collect();
    client
        .query(&format!("INSERT INTO kv VALUES {}", values.join(",")))
        .expect("fill");
    let dur = Duration::from_millis(if args.quick { 300 } else { 1000 });
    let mut out = serde_json::Map::new();

    let rounds = if args.quick { 3 } else { 5 };
    println!(
        "\n## Per-query overhead (1 thread, statements/s; median of {rounds} interleaved rounds)\n"
    );
    println!(
        "| statement | raw connection | drfailover | ratio raw/drfailover |\n|---|---|---|---|"
    );
    let mut rows = Vec::new();
    for (name, sql) in [
        ("SELECT 1", "SELECT 1"),
        ("point select (PK)", "SELECT v FROM kv WHERE id = 500"),
    ] {
        let m = overhead::interleaved(
            &topo,
            &client,
            &[Design::Raw, Design::Library],
            1,
            sql,
            dur,
            rounds,
        );
        let ratio = m[0] / m[1];
        println!("| {name} | {:.0} | {:.0} | {ratio:.3} |", m[0], m[1]);
        rows.push(
            json!({ "statement": name, "raw_qps": m[0], "drfailover_qps": m[1], "ratio": ratio }),
        );
    }
    out.insert("per_query".into(), json!(rows));

    println!("\n## Scaling (point select, statements/s; median of {rounds} interleaved rounds)\n");
    println!("| threads | raw per-thread | drfailover | global mutex | drfailover/raw | global mutex/raw |\n|---|---|---|---|---|---|");
    let mut rows = Vec::new();
    let thread_counts: &[usize] = if args.quick {
        &[1, 4, 16]
    } else {
        &[1, 2, 4, 8, 16]
    };
    for &threads in thread_counts {
        let sql = "SELECT v FROM kv WHERE id = 500";
        let m = overhead::interleaved(
            &topo,
            &client,
            &[Design::Raw, Design::Library, Design::GlobalMutex],
            threads,
            sql,
            dur,
            rounds,
        );
        let (raw, lib, mutex) = (m[0], m[1], m[2]);
        println!(
            "| {threads} | {raw:.0} | {lib:.0} | {mutex:.0} | {:.3} | {:.3} |",
            lib / raw,
            mutex / raw
        );
        rows.push(json!({ "threads": threads, "raw_qps": raw, "drfailover_qps": lib, "global_mutex_qps": mutex }));
    }
    out.insert("scaling".into(), json!(rows));

    let ns = overhead::lease_release_ns(&client, if args.quick { 20_000 } else { 200_000 });
    println!("\n## Pool\n\nlease + release (no statement): {ns:.0} ns per pair");
    out.insert("lease_release_ns".into(), json!(ns));
    json!(out)
}

fn footprint_table(args: &Args) -> serde_json::Value {
    let topo = Topology::primary_replica().expect("topology");
    let idle = Duration::from_secs(if args.quick { 2 } else { 5 });
    println!("\n## Footprint per client (two endpoints, one pooled connection, default probe settings)\n");
    println!("| clients in the process | threads | RSS (KiB) | idle CPU (% of one core) |\n|---|---|---|---|");
    let mut rows = Vec::new();
    for clients in [1, 100] {
        let (threads, rss, cpu) = footprint::per_client(&topo, clients, idle);
        println!("| {clients} | {threads:.1} | {rss:.0} | {cpu:.3} |");
        rows.push(json!({ "clients": clients, "threads_per_client": threads, "rss_kib_per_client": rss, "idle_cpu_percent_per_client": cpu }));
    }
    json!(rows)
}

fn storm_table(args: &Args) -> serde_json::Value {
    let clients = if args.quick {
        args.storm_clients.min(100)
    } else {
        args.storm_clients
    };
    let (app, outage) = (Duration::from_millis(100), Duration::from_secs(1));
    println!(
        "\n## Reconnect storm ({clients} clients, writer killed and restarted in place after {} ms)\n",
        outage.as_millis()
    );
    println!("Each client: default settings, one application thread issuing `SELECT 1` every {} ms. Connection attempts are TCP SYNs to the restarted server, captured by tcpdump on loopback (kernel timestamps), per 10 ms window from the server's first SYN-ACK; recovery is from that SYN-ACK to each client's first successful statement.\n", app.as_millis());
    match storm::run(clients, app, outage) {
        Ok(s) => {
            let (p50, p99, max) = s.recovery();
            println!("| clients | attempts after restart | peak per 10 ms | 50% within | 90% within | all within | attempts/s while down | recovered p50 / p99 / max (ms) | not recovered | aborted logins | max used connections |\n|---|---|---|---|---|---|---|---|---|---|---|");
            println!(
                "| {} | {} | {} | {:.0} ms | {:.0} ms | {:.0} ms | {:.0} | {p50:.1} / {p99:.1} / {max:.1} | {} | {} | {} |",
                s.clients,
                s.total(),
                s.peak(),
                s.ms_until(0.5),
                s.ms_until(0.9),
                s.ms_until(1.0),
                s.attempts_while_down_per_s,
                s.not_recovered,
                s.aborted_connects,
                s.max_used_connections,
            );
            println!(
                "\nattempts per 10 ms window after the restart (first 40): {}",
                s.head(40)
            );
            let ms: Vec<f64> = s.recovered.iter().map(|d| d.as_secs_f64() * 1e3).collect();
            if !args.quick {
                svg::write_doc(
                    "storm-recovery.svg",
                    &svg::cdf_svg(
                        &format!(
                        "Reconnect storm, {clients} clients: restart to first statement (CDF, ms)"
                    ),
                        &[("recovery", ms)],
                    ),
                );
            }
            let timeline: Vec<String> = s.timeline.iter().map(u64::to_string).collect();
            println!(
                "\nattempts per 100 ms from the kill (the server listened again after {} ms): {}",
                s.listening_after.as_millis(),
                timeline.join(" ")
            );
            if s.capture_dropped > 0 {
                println!(
                    "\nthe capture dropped {} packets: counts are a lower bound",
                    s.capture_dropped
                );
            }
            json!({
                "clients": s.clients,
                "app_interval_ms": s.app_interval.as_millis() as u64,
                "outage_ms": outage.as_millis() as u64,
                "attempts_after_restart": s.total(),
                "peak_per_10ms": s.peak(),
                "ms_until_50pct": s.ms_until(0.5),
                "ms_until_90pct": s.ms_until(0.9),
                "ms_until_all": s.ms_until(1.0),
                "attempts_per_s_while_down": s.attempts_while_down_per_s,
                "per_10ms": s.per_window,
                "per_100ms_from_kill": s.timeline,
                "listening_after_ms": s.listening_after.as_millis() as u64,
                "recovered_ms": { "p50": p50, "p99": p99, "max": max },
                "not_recovered": s.not_recovered,
                "aborted_connects": s.aborted_connects,
                "max_used_connections": s.max_used_connections,
                "capture_dropped": s.capture_dropped,
            })
        }
        Err(e) => {
            println!("not run: {e}");
            json!({ "error": e })
        }
    }
}

/// `--chaos N`: N failovers of random kinds under 16 writer threads on one topology (in a lab
/// namespace), then the data checks. Exit 0 only with zero lost acknowledged writes, zero
/// duplicates, zero failed writes other than outcome-unknown.
fn chaos(failovers: usize) -> i32 {
    use rand::Rng;
    const THREADS: usize = 16;
    let started = std::time::Instant::now();
    println!("# drfailover chaos run: {failovers} failovers, {THREADS} writer threads\n");
    let mut rig = match Rig::start(Fault::Blackhole, Via::Library) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("chaos: cannot start: {e}");
            return 1;
        }
    };
    let mut by_kind: std::collections::BTreeMap<&str, Vec<Duration>> = Default::default();
    let mut slowest: std::collections::BTreeMap<&str, (Duration, Duration)> = Default::default();
    let mut rng = rand::thread_rng();
    for n in 1..=failovers {
        let (kind, fault) = match rng.gen_range(0..4) {
            0 => ("kill -9", Fault::Kill),
            1 => (
                "kill -9, delayed promotion (subtracted)",
                Fault::KillDelayed(Duration::from_millis(rng.gen_range(50..500))),
            ),
            2 => ("SIGSTOP", Fault::Stop),
            _ => ("blackhole", Fault::Blackhole),
        };
        match rig.trial(fault, THREADS) {
            Ok(gaps) => {
                // The slowest trial of each kind, with the harness's promotion time in it
                // (part of the gap unless subtracted): tells a slow client from a slow server.
                let worst = gaps.iter().max().copied().unwrap_or_default();
                let promotion = rig.promotions.last().copied().unwrap_or_default();
                // DRFAILOVER_BENCH_EVENTS: explain a slow trial (events, slow statements).
                if worst > Duration::from_millis(500) && kind.starts_with("kill") {
                    let report = rig.trace_report();
                    if !report.is_empty() {
                        eprintln!(
                            "chaos: failover {n} ({kind}) slowest thread {:.1} ms; trace from the fault:\n{report}",
                            worst.as_secs_f64() * 1e3
                        );
                    }
                }
                let entry = slowest
                    .entry(kind)
                    .or_insert((Duration::ZERO, Duration::ZERO));
                if worst > entry.0 {
                    *entry = (worst, promotion);
                }
                by_kind.entry(kind).or_default().extend(gaps)
            }
            Err(e) => {
                eprintln!("chaos: failover {n} ({kind}) failed: {e}");
                return 1;
            }
        }
        if n % 10 == 0 {
            eprintln!(
                "chaos: {n}/{failovers} failovers, {:.0} s",
                started.elapsed().as_secs_f64()
            );
        }
    }
    println!("| fault | p50 (ms) | p99 (ms) | max (ms) | samples | promotion in the slowest trial (ms, harness) |\n|---|---|---|---|---|---|");
    for (kind, gaps) in &by_kind {
        let (p50, p99, max) = stats::summary(gaps);
        let promotion = slowest
            .get(kind)
            .map_or(0.0, |(_, p)| p.as_secs_f64() * 1e3);
        println!(
            "| {kind} | {p50:.1} | {p99:.1} | {max:.1} | {} | {promotion:.1} |",
            gaps.len()
        );
    }
    match rig.verify() {
        Ok((rows, acked, unknown)) => {
            println!(
                "\n{failovers} failovers in {:.0} s: {acked} writes acknowledged, {unknown} outcome unknown, \
                 {rows} rows on the final primary; 0 acknowledged writes lost, 0 duplicates, 0 crashes.",
                started.elapsed().as_secs_f64()
            );
            0
        }
        Err(e) => {
            println!("\n{DATA_CHECK_FAILED}: {e}");
            1
        }
    }
}

/// `--only orchestrator --chaos N`: N orchestrated faults, the kinds in turn, data checked per
/// trial; a table per kind and a CDF of fault → writable (docs/orchestrator-chaos.svg).
/// Returns the exit code: 1 when any trial broke a promise (or could not run).
fn orchestrator_chaos(trials: usize) -> i32 {
    use orchestrator_chaos::ChaosFault;
    let started = std::time::Instant::now();
    println!(
        "# drfailover orchestrated chaos: {trials} faults, 16 writer threads through the library + 1 client pinned to the old primary\n"
    );
    let mut results: std::collections::BTreeMap<ChaosFault, Vec<orchestrator_chaos::ChaosTrial>> =
        Default::default();
    let mut errors = Vec::new();
    // DRFAILOVER_BENCH_FAULTS=name,name (an investigation): only the kinds whose table name
    // contains one of them.
    let only = std::env::var("DRFAILOVER_BENCH_FAULTS").unwrap_or_default();
    let kinds: Vec<ChaosFault> = ChaosFault::ALL
        .into_iter()
        .filter(|k| only.is_empty() || only.split(',').any(|o| k.name().contains(o)))
        .collect();
    for n in 0..trials {
        let fault = kinds[n % kinds.len()];
        match orchestrator_chaos::trial(fault) {
            Ok(t) => {
                eprintln!(
                    "chaos {}/{trials} {}: writable {:?}, lost {}, old acks {}, promotions {}, writable nodes {}",
                    n + 1,
                    fault.name(),
                    t.writable.map(|d| d.as_millis()),
                    t.lost,
                    t.old_acks,
                    t.promotions,
                    t.writable_nodes
                );
                results.entry(fault).or_default().push(t);
            }
            Err(e) => {
                eprintln!(
                    "chaos {}/{trials} {}: could not run: {e}",
                    n + 1,
                    fault.name()
                );
                errors.push(format!("{}: {e}", fault.name()));
            }
        }
    }
    println!("| fault | trials | promoted | writable p50 | p99 | max (ms) | lost | old-primary acks | false failovers | trials with writable nodes ≠ expected |\n|---|---|---|---|---|---|---|---|---|---|");
    let mut broken = !errors.is_empty();
    let mut cdf: Vec<(&str, Vec<f64>)> = Vec::new();
    for (fault, ts) in &results {
        let writable: Vec<Duration> = ts.iter().filter_map(|t| t.writable).collect();
        let (p50, p99, max) = stats::summary(&writable);
        let lost: u64 = ts.iter().map(|t| t.lost).sum();
        let old: u64 = ts.iter().map(|t| t.old_acks).sum();
        let false_failovers = ts.iter().filter(|t| t.false_failover).count();
        // One writer after a promotion (or the untouched primary after a partition); at most
        // one when the zero-loss gate may refuse.
        let off = ts
            .iter()
            .filter(|t| {
                if fault.must_promote() || *fault == ChaosFault::PartitionFromOrchestrator {
                    t.writable_nodes != 1
                } else {
                    t.writable_nodes > 1
                }
            })
            .count();
        let missing = ts
            .iter()
            .filter(|t| fault.must_promote() && t.promotions != 1)
            .count();
        broken |= lost > 0 || old > 0 || false_failovers > 0 || off > 0 || missing > 0;
        println!(
            "| {} | {} | {} | {p50:.1} | {p99:.1} | {max:.1} | {lost} | {old} | {false_failovers} | {off} |",
            fault.name(),
            ts.len(),
            writable.len()
        );
        if !writable.is_empty() {
            cdf.push((
                fault.name(),
                writable.iter().map(|d| d.as_secs_f64() * 1e3).collect(),
            ));
        }
    }
    for e in &errors {
        println!("\n(trial could not run: {e})");
    }
    println!(
        "\n{} trials in {:.0} s; load average at the end: {}",
        results.values().map(Vec::len).sum::<usize>(),
        started.elapsed().as_secs_f64(),
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .trim()
    );
    if !cdf.is_empty() {
        svg::write_doc(
            "orchestrator-chaos.svg",
            &svg::cdf_svg(
                "Orchestrated faults: fault → new primary writable (ms)",
                &cdf,
            ),
        );
    }
    i32::from(broken)
}
