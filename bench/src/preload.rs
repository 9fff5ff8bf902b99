//! `drfailover-bench-preload`: figures for `libdrfailover-preload.so`, with and without it
//! in the same run.
//!
//! ```text
//! cargo build --release -p drfailover-preload
//! cargo run --release -p drfailover-bench --bin drfailover-bench-preload [-- --trials N]
//!     [--faults kill9,sigstop,switchover]   (only these faults' rows, no overhead)
//!     [--programs]                          (only sysbench's and legacy_monitor.c's rows)
//!     [--overhead] [--pairs N]              (only the overhead, N sysbench pairs)
//!     [--probe-interval-ms N]               (the monitor's probe interval, default 200, the library's)
//! ```
//!
//! 1. Failover: a plain libmariadb program of ours (4 threads of autocommit INSERTs, one line
//!    per acknowledged write) through kill -9 + promotion, SIGSTOP + promotion and a
//!    switchover (fence + promotion), with and without the preload: statements failed,
//!    whether it kept working, per thread the time from the new primary becoming writable to
//!    its next acknowledged write (p50/p99/max), acknowledged writes lost or executed twice.
//!    Debian's sysbench, unmodified (oltp_insert prepared and oltp_write_only unprepared, 8
//!    threads), through the same faults: statements failed, whether it kept running, and the
//!    time from the new primary becoming writable to the first statement it ran there; and
//!    c-examples/legacy_monitor.c built unchanged, with its own summary and a data check.
//! 2. Overhead with nothing failing: sysbench oltp_point_select, 4 threads, pairs of 6 s runs (their steady
//!    seconds 2 to 6) without and with (7 by default, the order alternating), each pair's throughput ratio,
//!    CPU time per statement (program + server, from `/proc`) and the machine's load, the
//!    median, quartiles and pooled ratios, and whether ≤ 1 % is shown for each;
//!    instructions per statement (`SELECT 1`) under callgrind.
//! 3. A picture: acknowledged writes per 100 ms through a kill -9, with and without
//!    (`docs/preload-failover.svg`).

#[path = "stats.rs"]
#[allow(dead_code)]
mod stats;
#[path = "svg.rs"]
#[allow(dead_code)]
mod svg;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use drfailover_testkit::program::{
    acked_writer_args, build_c, check_acks, create_ack_table, sysbench_args, sysbench_number,
    Program,
};
use drfailover_testkit::{
    PrimaryFault, Topology, ADMIN_PASSWORD, ADMIN_USER, APP_PASSWORD, APP_USER,
};

const THREADS: u32 = 4;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// `libdrfailover_preload.so` next to this binary (same cargo profile), or exit with how to
/// build it.
fn preload_library() -> PathBuf {
    let exe = std::env::current_exe().expect("current exe");
    let lib = exe
        .parent()
        .expect("profile dir")
        .join("libdrfailover_preload.so");
    if !lib.exists() {
        eprintln!(
            "{} is missing: build it first with `cargo build --release -p drfailover-preload` (same profile as this benchmark)",
            lib.display()
        );
        std::process::exit(2);
    }
    lib
}

/// Start `program`, or the error as text.
fn spawn(program: &Path, args: &[String], env: &[(String, String)]) -> Result<Program, String> {
    Program::spawn(program, args, env)
}

/// Wait for `program` to exit (killed after `timeout`: `None`); its status and lines.
fn finish(mut program: Program, timeout: Duration) -> (Option<ExitStatus>, Vec<(Instant, String)>) {
    let status = program.wait(timeout).ok();
    (status, program.lines())
}

struct Trial {
    failed: usize,
    survived: bool,
    /// Per thread: new primary writable → its next acknowledged write (None: never).
    gaps: Vec<Option<Duration>>,
    lost: usize,
    repeated: usize,
    /// Acknowledged writes per 100 ms from the fault, for the picture.
    timeline: Vec<(f64, usize)>,
}

/// The monitor's `probe_interval_ms` (`--probe-interval-ms`, default 200, the library's).
static PROBE_INTERVAL_MS: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(200);

fn env_for(topo: &Topology, preload: Option<&Path>) -> Vec<(String, String)> {
    let interval = PROBE_INTERVAL_MS.load(std::sync::atomic::Ordering::Relaxed);
    match preload {
        Some(lib) => vec![
            ("LD_PRELOAD".into(), lib.to_string_lossy().into_owned()),
            (
                "DRFAILOVER_DSN".into(),
                topo.dsn(&format!(
                    "probe_interval_ms={interval}&failover_timeout_ms=20000"
                )),
            ),
        ],
        None => vec![],
    }
}

fn failover_trial(
    writer: &Path,
    fault: PrimaryFault,
    preload: Option<&Path>,
) -> Result<Trial, String> {
    let mut topo = Topology::primary_replica()?;
    create_ack_table(&topo, 0)?;
    topo.wait_semi_sync_clients(0, 1)?;
    let args = acked_writer_args(&topo, 0, THREADS, 5.0, "auto");
    let run = spawn(writer, &args, &env_for(&topo, preload))?;
    run.wait_for("ack ", 300, Duration::from_secs(30))
        .map_err(|e| format!("the program did not start writing: {e}"))?;
    // A random moment 1–1.2 s later (the picture shows the second before the fault).
    std::thread::sleep(Duration::from_millis(1000 + rand::random::<u64>() % 200));
    let fault_at = Instant::now();
    fault.inflict(&mut topo)?;
    let writable_at = Instant::now();
    let (status, lines) = finish(run, Duration::from_secs(30));
    if fault == PrimaryFault::Freeze {
        topo.thaw(0)?;
    }
    let failed = lines.iter().filter(|(_, l)| l.starts_with("fail ")).count();
    let mut gaps = vec![None; THREADS as usize];
    for (at, line) in &lines {
        if let Some(id) = line
            .strip_prefix("ack ")
            .and_then(|i| i.parse::<i64>().ok())
        {
            let thread = (id / 1_000_000_000) as usize;
            if *at >= writable_at
                && (1..=gaps.len()).contains(&thread)
                && gaps[thread - 1].is_none()
            {
                gaps[thread - 1] = Some(*at - writable_at);
            }
        }
    }
    let (lost, repeated) = if fault == PrimaryFault::Kill9 || preload.is_some() {
        let check = check_acks(&topo, 1, &lines)?;
        (check.lost.len(), check.repeated.len())
    } else {
        (0, 0)
    };
    let mut timeline = Vec::new();
    let start = fault_at - Duration::from_millis(1000);
    for bin in 0..40 {
        let lo = start + Duration::from_millis(100 * bin);
        let hi = lo + Duration::from_millis(100);
        let n = lines
            .iter()
            .filter(|(at, l)| l.starts_with("ack ") && *at >= lo && *at < hi)
            .count();
        timeline.push((bin as f64 * 100.0 - 1000.0, n));
    }
    Ok(Trial {
        failed,
        survived: status.is_some_and(|s| s.success()) && gaps.iter().all(Option::is_some),
        gaps,
        lost,
        repeated,
        timeline,
    })
}

/// Debian's sysbench `test` against node 0 of `topo` (10,000 rows), with `env` added.
fn sysbench(
    topo: &Topology,
    user: &str,
    password: &str,
    test: &str,
    rest: &[&str],
    env: &[(String, String)],
) -> Result<Program, String> {
    let args = sysbench_args(topo, user, password, test, 10_000, rest);
    spawn(Path::new("/usr/bin/sysbench"), &args, env)
}

fn timeline_svg(title: &str, series: &[(&str, Vec<(f64, usize)>)]) -> String {
    let (w, h, left, right, top, bottom) = (760.0, 360.0, 60.0, 200.0, 40.0, 50.0);
    let max = series
        .iter()
        .flat_map(|(_, v)| v.iter().map(|(_, n)| *n))
        .max()
        .unwrap_or(1)
        .max(1) as f64;
    let (x0, x1) = (-1000.0, 3000.0);
    let sx = |x: f64| left + (x - x0) / (x1 - x0) * (w - left - right);
    let sy = |y: f64| h - bottom - y / max * (h - top - bottom);
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" font-family=\"sans-serif\" font-size=\"12\">\n<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n<text x=\"{left}\" y=\"22\" font-size=\"15\">{title}</text>\n"
    );
    for i in 0..=4 {
        let x = x0 + (x1 - x0) * i as f64 / 4.0;
        svg.push_str(&format!(
            "<line x1=\"{0}\" y1=\"{top}\" x2=\"{0}\" y2=\"{1}\" stroke=\"#ddd\"/><text x=\"{0}\" y=\"{2}\" text-anchor=\"middle\">{x:.0}</text>\n",
            sx(x),
            h - bottom,
            h - bottom + 16.0
        ));
        let y = max * i as f64 / 4.0;
        svg.push_str(&format!(
            "<line x1=\"{left}\" y1=\"{0}\" x2=\"{1}\" y2=\"{0}\" stroke=\"#ddd\"/><text x=\"{2}\" y=\"{3}\" text-anchor=\"end\">{y:.0}</text>\n",
            sy(y),
            w - right,
            left - 6.0,
            sy(y) + 4.0
        ));
    }
    svg.push_str(&format!(
        "<line x1=\"{0}\" y1=\"{top}\" x2=\"{0}\" y2=\"{1}\" stroke=\"#000\" stroke-dasharray=\"4 3\"/><text x=\"{2}\" y=\"{3}\">fault</text>\n<text x=\"{4}\" y=\"{5}\" text-anchor=\"middle\">milliseconds after the fault</text>\n<text x=\"14\" y=\"{6}\" transform=\"rotate(-90 14 {6})\" text-anchor=\"middle\">acknowledged writes per 100 ms</text>\n",
        sx(0.0),
        h - bottom,
        sx(0.0) + 4.0,
        top + 12.0,
        (left + w - right) / 2.0,
        h - 12.0,
        (top + h - bottom) / 2.0
    ));
    let colors = ["#1f77b4", "#d62728", "#2ca02c"];
    for (i, (name, points)) in series.iter().enumerate() {
        let path: Vec<String> = points
            .iter()
            .map(|(x, n)| format!("{:.1},{:.1}", sx(*x + 50.0), sy(*n as f64)))
            .collect();
        svg.push_str(&format!(
            "<polyline fill=\"none\" stroke=\"{c}\" stroke-width=\"2\" points=\"{p}\"/>\n<line x1=\"{lx}\" y1=\"{ly}\" x2=\"{lx2}\" y2=\"{ly}\" stroke=\"{c}\" stroke-width=\"2\"/><text x=\"{tx}\" y=\"{ty}\">{name}</text>\n",
            c = colors[i % colors.len()],
            p = path.join(" "),
            lx = w - right + 15.0,
            lx2 = w - right + 35.0,
            ly = top + 20.0 + 20.0 * i as f64,
            tx = w - right + 40.0,
            ty = top + 24.0 + 20.0 * i as f64,
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

fn main() {
    let mut trials = 5usize;
    let mut pairs = 7usize;
    let mut faults = PrimaryFault::ALL.to_vec();
    // `--faults`: only the failover rows asked for; `--overhead`: only the overhead.
    let (mut failover_only, mut overhead_only, mut programs_only) = (false, false, false);
    let usage = "usage: drfailover-bench-preload [--trials N] [--faults kill9,sigstop,switchover] [--programs] [--overhead] [--pairs N] [--probe-interval-ms N]";
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--trials" => {
                trials = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--trials N")
            }
            "--pairs" => {
                pairs = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--pairs N (0: callgrind only)")
            }
            "-h" | "--help" => {
                println!(
                    "drfailover-bench-preload: libdrfailover-preload.so with and without it in one \
                     run (failover of a plain libmariadb program and sysbench, overhead).\n\n\
                     usage: cargo build --release -p drfailover-preload\n       \
                     cargo run --release -p drfailover-bench --bin drfailover-bench-preload -- [--trials N] [--faults LIST] [--programs] [--overhead] [--pairs N]\n\n  \
                     --trials N       trials per failover scenario (default 5)\n  \
                     --faults LIST    only these faults' rows (no overhead), comma-separated: kill9,sigstop,switchover\n  \
                     --programs       only the rows of programs nobody here wrote (sysbench, legacy_monitor.c; with --faults: those faults)\n  \
                     --overhead       only the overhead with nothing failing (sysbench pairs, callgrind)\n  \
                     --pairs N        with/without sysbench pairs of the overhead (default 7; 0: callgrind only)\n  \
                     --probe-interval-ms N  the monitor's probe_interval_ms in DRFAILOVER_DSN (default 200, the library's)"
                );
                return;
            }
            "--faults" => {
                failover_only = true;
                let list = args.next().unwrap_or_default();
                faults = list
                    .split(',')
                    .map(|f| match f {
                        "kill9" => PrimaryFault::Kill9,
                        "sigstop" => PrimaryFault::Freeze,
                        "switchover" => PrimaryFault::Switchover,
                        other => {
                            eprintln!(
                                "unknown fault {other}; --faults takes kill9,sigstop,switchover"
                            );
                            std::process::exit(2);
                        }
                    })
                    .collect();
            }
            "--overhead" => overhead_only = true,
            "--programs" => programs_only = true,
            "--probe-interval-ms" => {
                let ms = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .filter(|&n: &u64| n > 0)
                    .expect("--probe-interval-ms N (at least 1)");
                PROBE_INTERVAL_MS.store(ms, std::sync::atomic::Ordering::Relaxed);
            }
            "--bench" => {}
            other => {
                eprintln!("unknown argument {other}; {usage}");
                std::process::exit(2);
            }
        }
    }
    if overhead_only && (failover_only || programs_only) {
        eprintln!("--overhead excludes --faults and --programs; {usage}");
        std::process::exit(2);
    }
    let lib = preload_library();
    let dir = std::env::temp_dir().join(format!("drfailover-bench-preload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let build = |source: &str, name: &str| {
        build_c(&root().join(source), &dir.join(name), None).unwrap_or_else(|e| {
            eprintln!("{e}");
            std::process::exit(2)
        })
    };
    let writer = build(
        "crates/drfailover-preload/tests/c/acked_writer.c",
        "acked_writer",
    );
    let select = build("bench/c/preload_select.c", "preload_select");
    let legacy = build("c-examples/legacy_monitor.c", "legacy_monitor");
    println!(
        "load average at the start: {}; monitor probe_interval_ms={}",
        load_average(),
        PROBE_INTERVAL_MS.load(std::sync::atomic::Ordering::Relaxed)
    );

    if !overhead_only && !programs_only {
        failover_rows(&writer, &lib, &faults, trials);
    }
    if !overhead_only {
        sysbench_rows(&lib, &faults, trials);
        legacy_rows(&legacy, &lib, &faults, trials);
    }
    if !failover_only && !programs_only {
        overhead(&lib, &select, pairs, &dir);
    }
    println!("load average at the end: {}", load_average());
    let _ = std::fs::remove_dir_all(&dir);
}

/// `/proc/loadavg`'s three load averages.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|l| l.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// The failover table: per fault, 1 trial without the preload and `trials` with it.
fn failover_rows(writer: &Path, lib: &Path, faults: &[PrimaryFault], trials: usize) {
    println!("== failover: an unmodified libmariadb program (4 threads of autocommit INSERTs), {trials} trials with the preload, 1 without ==");
    println!(
        "{:<11} {:<8} {:>7} {:>9} {:>9} {:>9} {:>9} {:>6} {:>8}",
        "fault", "preload", "failed", "worked", "p50 ms", "p99 ms", "max ms", "lost", "twice"
    );
    let mut picture: Vec<(&str, Vec<(f64, usize)>)> = Vec::new();
    for fault in faults.iter().copied() {
        for with in [false, true] {
            let n = if with { trials } else { 1 };
            let (mut failed, mut worked, mut gaps, mut lost, mut twice, mut never) =
                (0, 0, Vec::new(), 0, 0, 0);
            for _ in 0..n {
                match failover_trial(writer, fault, with.then_some(lib)) {
                    Ok(t) => {
                        failed += t.failed;
                        worked += usize::from(t.survived);
                        never += t.gaps.iter().filter(|g| g.is_none()).count();
                        gaps.extend(t.gaps.iter().flatten().copied());
                        lost += t.lost;
                        twice += t.repeated;
                        if fault == PrimaryFault::Kill9
                            && picture.len() < 2
                            && picture.iter().all(|(w, _)| {
                                *w != if with { "with the preload" } else { "without" }
                            })
                        {
                            picture.push((
                                if with { "with the preload" } else { "without" },
                                t.timeline,
                            ));
                        }
                    }
                    Err(e) => println!("  trial failed: {e}"),
                }
            }
            let (p50, p99, max) = stats::summary(&gaps);
            let fmt = |v: f64| {
                if v.is_nan() {
                    "never".to_owned()
                } else {
                    format!("{v:.1}")
                }
            };
            println!(
                "{:<11} {:<8} {:>7} {:>6}/{:<2} {:>9} {:>9} {:>9} {:>6} {:>8}{}",
                fault.name(),
                if with { "yes" } else { "no" },
                failed,
                worked,
                n,
                fmt(p50),
                fmt(p99),
                fmt(max),
                lost,
                twice,
                if never > 0 {
                    format!("  ({never} thread(s) never wrote again)")
                } else {
                    String::new()
                }
            );
        }
    }
    if picture.len() == 2 {
        picture.sort_by_key(|(n, _)| *n != "without");
        svg::write_doc(
            "preload-failover.svg",
            &timeline_svg(
                "kill -9 + promotion: an unmodified program, with and without the preload",
                &picture,
            ),
        );
    }
}

/// Debian's sysbench `oltp_insert` through a kill -9, without and with the preload.
/// Debian's sysbench, unmodified, through each of `faults`: per workload and fault one run
/// without the preload and `trials` with it. Prints statements that failed with a lost
/// connection (sysbench counts each as a reconnect) and other ignored errors, whether it
/// exited normally, and the time from the new primary becoming writable to the first
/// statement the program ran there. sysbench prints nothing per statement, so that moment is
/// read on the new primary: its `Com_insert` + `Com_update` + `Com_delete` counters, polled
/// on a connection of the benchmark's own (each poll a fraction of a millisecond; replication
/// has stopped by then, so only clients move them). Blocks ~10 s a run.
fn sysbench_rows(lib: &Path, faults: &[PrimaryFault], trials: usize) {
    println!("\n== Debian's sysbench, unmodified: 8 threads, --mysql-ignore-errors=2013,1213,1020,1205 (2013 as the task runs it, the rest sysbench's own default list), {trials} trials with the preload, 1 without ==");
    println!("  next statement: new primary writable → the first statement sysbench ran there (its counters, polled)");
    println!(
        "  {:<32} {:<11} {:<8} {:>7} {:>8} {:>7} {:>9} {:>9} {:>9}",
        "workload", "fault", "preload", "failed", "ignored", "worked", "p50 ms", "p99 ms", "max ms"
    );
    for (test, ps_mode) in [("oltp_insert", "auto"), ("oltp_write_only", "disable")] {
        for &fault in faults {
            for with in [false, true] {
                let runs = if with { trials } else { 1 };
                let (mut failed, mut ignored, mut worked) = (None::<u64>, None::<u64>, 0usize);
                let (mut gaps, mut problems) = (Vec::new(), Vec::new());
                for _ in 0..runs {
                    match sysbench_trial(lib, test, ps_mode, fault, with) {
                        Ok(t) => {
                            let add = |sum: Option<u64>, n: Option<u64>| match (sum, n) {
                                (Some(a), Some(b)) => Some(a + b),
                                (a, b) => a.or(b),
                            };
                            failed = add(failed, t.failed);
                            ignored = add(ignored, t.ignored);
                            worked += usize::from(t.worked);
                            match t.next_statement {
                                Some(gap) => gaps.push(gap),
                                None => problems
                                    .push("never ran a statement on the new primary".to_owned()),
                            }
                            if !t.worked {
                                problems.push(t.exit);
                            }
                        }
                        Err(e) => problems.push(format!("trial failed: {e}")),
                    }
                }
                let (p50, p99, max) = stats::summary(&gaps);
                let ms = |v: f64| gap_ms(&gaps, v);
                println!(
                    "  {:<32} {:<11} {:<8} {:>7} {:>8} {:>7} {:>9} {:>9} {:>9}{}",
                    format!("{test} ps-mode={ps_mode}"),
                    fault.name(),
                    if with { "yes" } else { "no" },
                    failed.map_or("–".to_owned(), |n| n.to_string()),
                    ignored.map_or("–".to_owned(), |n| n.to_string()),
                    format!("{worked}/{runs}"),
                    ms(p50),
                    ms(p99),
                    ms(max),
                    problems_note(problems)
                );
            }
        }
    }
}

/// `c-examples/legacy_monitor.c`, built unchanged (a service as written today: one connection
/// behind a global mutex, a monitor thread pinging it, a blind retry after a lost connection),
/// through each of `faults`: per fault one run without the preload and `trials` with it.
/// Prints its own summary figures (acknowledged and failed writes, its longest pause after
/// the fault), the time from the new primary becoming writable to its first statement there
/// (counters polled as for sysbench), and the data check: its acknowledged writes missing on
/// the new primary. Blocks ~4 s a run.
fn legacy_rows(program: &Path, lib: &Path, faults: &[PrimaryFault], trials: usize) {
    println!("\n== c-examples/legacy_monitor.c, unchanged: one INSERT every 2 ms, 3 s after the fault, {trials} trials with the preload, 1 without ==");
    println!(
        "  {:<11} {:<8} {:>7} {:>11} {:>9} {:>9} {:>16} {:>6}",
        "fault",
        "preload",
        "failed",
        "acknowledged",
        "p50 ms",
        "p99 ms",
        "longest pause ms",
        "lost"
    );
    for &fault in faults {
        for with in [false, true] {
            let runs = if with { trials } else { 1 };
            let (mut failed, mut acked, mut lost) = (0u64, 0u64, 0u64);
            let (mut gaps, mut pauses, mut problems) = (Vec::new(), Vec::new(), Vec::new());
            for _ in 0..runs {
                match legacy_trial(program, lib, fault, with) {
                    Ok(t) => {
                        failed += t.failed;
                        acked += t.acked;
                        lost += t.lost;
                        pauses.push(t.longest_pause_ms);
                        match t.next_statement {
                            Some(gap) => gaps.push(gap),
                            None => problems.push("never wrote on the new primary".to_owned()),
                        }
                    }
                    Err(e) => problems.push(format!("trial failed: {e}")),
                }
            }
            let (p50, p99, _) = stats::summary(&gaps);
            let ms = |v: f64| gap_ms(&gaps, v);
            let longest = pauses.iter().copied().fold(f64::NAN, f64::max);
            println!(
                "  {:<11} {:<8} {:>7} {:>11} {:>9} {:>9} {:>16} {:>6}{}",
                fault.name(),
                if with { "yes" } else { "no" },
                failed,
                acked,
                ms(p50),
                ms(p99),
                if longest.is_nan() {
                    "–".to_owned()
                } else {
                    format!("{longest:.0}")
                },
                lost,
                problems_note(problems)
            );
        }
    }
}

/// A gap in milliseconds for a table, or `never` when no trial had one.
fn gap_ms(gaps: &[Duration], ms: f64) -> String {
    if gaps.is_empty() {
        "never".to_owned()
    } else {
        format!("{ms:.1}")
    }
}

/// What went wrong in a row's trials, each kind once, for the end of its line.
fn problems_note(mut problems: Vec<String>) -> String {
    problems.sort();
    problems.dedup();
    if problems.is_empty() {
        String::new()
    } else {
        format!("  ({})", problems.join("; "))
    }
}

/// One run of `legacy_monitor` through one fault.
struct LegacyTrial {
    acked: u64,
    failed: u64,
    /// Its own figure: the longest gap between acknowledged writes after the fault.
    longest_pause_ms: f64,
    /// Acknowledged writes missing on the new primary.
    lost: u64,
    /// New primary writable → its first statement there.
    next_statement: Option<Duration>,
}

fn legacy_trial(
    program: &Path,
    lib: &Path,
    fault: PrimaryFault,
    with: bool,
) -> Result<LegacyTrial, String> {
    let mut topo = Topology::primary_replica()?;
    topo.wait_semi_sync_clients(0, 1)?;
    let node = topo.node(0);
    let args = vec![
        format!("{}:{}", node.ip(), node.port()),
        APP_USER.to_owned(),
        drfailover_testkit::APP_DATABASE.to_owned(),
        "3".to_owned(),
    ];
    let mut env = env_for(&topo, with.then_some(lib));
    env.push(("MYSQL_PWD".into(), APP_PASSWORD.into()));
    let run = spawn(program, &args, &env)?;
    run.wait_for("READY", 1, Duration::from_secs(30))
        .map_err(|e| format!("legacy_monitor did not start: {e}"))?;
    let AfterFault {
        next_statement,
        status,
        lines,
    } = through_fault(&mut topo, fault, run, 3, 15)?;
    let summary = lines
        .iter()
        .find_map(|(_, l)| l.strip_prefix("before (hand-written monitor): "))
        .ok_or_else(|| match status {
            None => "it hung (killed after 15 s)".to_owned(),
            Some(s) => format!("no summary (it ended with {s})"),
        })?
        .to_owned();
    let number_before = |word: &str| -> Option<f64> {
        let mut previous = None;
        for token in summary.split([' ', ',', ';']) {
            if token == word {
                return previous;
            }
            previous = token.parse().ok();
        }
        None
    };
    let acked = number_before("acknowledged").unwrap_or(0.0) as u64;
    let failed = number_before("failed").unwrap_or(0.0) as u64;
    let longest_pause_ms = number_before("ms").unwrap_or(f64::NAN);
    // Writes go to one table, ids in order; what the program saw acknowledged and the new
    // primary lacks is lost (it never re-inserts an id it saw acknowledged).
    let rows = topo
        .node(1)
        .sql_value(&format!(
            "SELECT COUNT(*) FROM {}.t",
            drfailover_testkit::APP_DATABASE
        ))?
        .and_then(|n| n.parse::<u64>().ok())
        .unwrap_or(0);
    Ok(LegacyTrial {
        acked,
        failed,
        longest_pause_ms,
        lost: acked.saturating_sub(rows),
        next_statement,
    })
}

/// One sysbench run through one fault.
struct SysbenchTrial {
    /// Statements that failed with a lost connection (sysbench's `reconnects:`; `None`: it
    /// printed no summary).
    failed: Option<u64>,
    /// Other errors sysbench ignored (deadlocks, lock waits: `ignored errors:`).
    ignored: Option<u64>,
    /// It exited normally.
    worked: bool,
    /// How it ended, for the report.
    exit: String,
    /// New primary writable → the first statement it ran for the program.
    next_statement: Option<Duration>,
}

fn sysbench_trial(
    lib: &Path,
    test: &str,
    ps_mode: &str,
    fault: PrimaryFault,
    with: bool,
) -> Result<SysbenchTrial, String> {
    let mut topo = Topology::primary_replica()?;
    let prep = sysbench(&topo, ADMIN_USER, ADMIN_PASSWORD, test, &["prepare"], &[])?;
    let (status, _) = finish(prep, Duration::from_secs(120));
    if !status.is_some_and(|s| s.success()) {
        return Err(format!("sysbench prepare ended with {status:?}"));
    }
    topo.wait_replicated(0, 1)?;
    topo.wait_semi_sync_clients(0, 1)?;
    if fault == PrimaryFault::Switchover {
        // The harness's fence is a bare `SET GLOBAL read_only=1`: under oltp_write_only its
        // pending global lock and a transaction's row-lock wait can block each other until
        // the row lock times out (50 s by default; the orchestrator's own fence ends such
        // sessions instead). 1 s here: the waiting statement fails with 1205 (ignored).
        topo.node(0).sql("SET GLOBAL innodb_lock_wait_timeout=1")?;
    }
    let run = sysbench(
        &topo,
        APP_USER,
        APP_PASSWORD,
        test,
        &[
            "--threads=8",
            "--time=6",
            "--report-interval=1",
            &format!("--db-ps-mode={ps_mode}"),
            "--mysql-ignore-errors=2013,1213,1020,1205",
            "run",
        ],
        &env_for(&topo, with.then_some(lib)),
    )?;
    run.wait_for("[ 2s ]", 1, Duration::from_secs(60))
        .map_err(|e| format!("sysbench did not start: {e}"))?;
    let AfterFault {
        next_statement,
        status,
        lines,
    } = through_fault(&mut topo, fault, run, 6, 30)?;
    let number = |label: &str| sysbench_number(&lines, label).map(|n| n as u64);
    Ok(SysbenchTrial {
        failed: number("reconnects:"),
        ignored: number("ignored errors:"),
        worked: status.is_some_and(|s| s.success()),
        exit: match status {
            Some(s) if s.success() => "exit 0".into(),
            Some(s) => format!("sysbench ended with {s}"),
            None => "sysbench hung (killed after 30 s)".into(),
        },
        next_statement,
    })
}

/// What a program went through in [`through_fault`].
struct AfterFault {
    /// New primary writable → the first statement the program ran there.
    next_statement: Option<Duration>,
    /// How it exited (`None`: killed after the bound).
    status: Option<ExitStatus>,
    /// Its stdout lines.
    lines: Vec<(Instant, String)>,
}

/// Inflict `fault` on `topo` while `run` (a program of nobody here) writes to node 0: the
/// time from node 1 becoming writable to the first statement the program ran there (looked
/// for `watch_s` seconds), then the program's exit (killed after `exit_s` seconds) and its
/// lines; a frozen node is thawed afterwards. Blocks up to both bounds.
fn through_fault(
    topo: &mut Topology,
    fault: PrimaryFault,
    run: Program,
    watch_s: u64,
    exit_s: u64,
) -> Result<AfterFault, String> {
    let mut watch = topo.node(1).admin()?;
    fault.inflict(topo)?;
    let writable_at = Instant::now();
    let next_statement =
        first_statement_after(&mut watch, writable_at, Duration::from_secs(watch_s));
    let (status, lines) = finish(run, Duration::from_secs(exit_s));
    if fault == PrimaryFault::Freeze {
        topo.thaw(0)?;
    }
    Ok(AfterFault {
        next_statement,
        status,
        lines,
    })
}

/// The time from `since` until the server behind `conn` has run one more client
/// `INSERT`/`UPDATE`/`DELETE` than when first asked (`None`: none within `limit`). Polls as
/// fast as the server answers.
fn first_statement_after(
    conn: &mut drfailover_mysql::Connection,
    since: Instant,
    limit: Duration,
) -> Option<Duration> {
    let mut count = || {
        conn.query(
            "SELECT SUM(VARIABLE_VALUE) FROM information_schema.GLOBAL_STATUS \
             WHERE VARIABLE_NAME IN ('COM_INSERT', 'COM_UPDATE', 'COM_DELETE')",
        )
        .ok()
        .and_then(|r| r.text(0, 0).and_then(|t| t.parse::<u64>().ok()))
    };
    let before = count()?;
    while since.elapsed() < limit {
        if count()? > before {
            return Some(since.elapsed());
        }
    }
    None
}

/// Statements per second of a sysbench run in its steady state: the mean of its per-second
/// reports (`--report-interval=1`: `[ 3s ] thds: 4 tps: … qps: 81234.56 …`) after the first
/// second, which holds the start (connects, statements prepared, the preload's monitor
/// finding the writer) and is a one-off cost, not throughput. NaN without such reports.
fn steady_statements_per_second<'a>(lines: impl Iterator<Item = &'a str>) -> f64 {
    let per_second: Vec<f64> = lines
        .filter_map(|l| {
            let rest = l.trim().strip_prefix('[')?;
            let (second, rest) = rest.split_once("s ]")?;
            let second: u32 = second.trim().parse().ok()?;
            let qps = rest.split("qps:").nth(1)?.split_whitespace().next()?;
            (second >= 2).then(|| qps.parse::<f64>().ok()).flatten()
        })
        .collect();
    if per_second.is_empty() {
        return f64::NAN;
    }
    per_second.iter().sum::<f64>() / per_second.len() as f64
}

/// Overhead with nothing failing: `pairs` pairs of 6 s sysbench `oltp_point_select` runs (4
/// threads; their steady 5 s after the first, see [`steady_statements_per_second`]), without
/// and with the preload, the order alternating from pair to pair (a drift of the machine's
/// load weighs on both sides alike); then instructions per statement under callgrind.
fn overhead(lib: &Path, select: &Path, pairs: usize, dir: &Path) {
    println!("\n== overhead, nothing failing: sysbench oltp_point_select, 4 threads, {pairs} pairs of 6 s runs (statements/s: the mean of seconds 2 to 6), order alternating ==");
    let topo = Topology::primary_replica().expect("topology");
    if let Ok(prep) = sysbench(
        &topo,
        ADMIN_USER,
        ADMIN_PASSWORD,
        "oltp_point_select",
        &["prepare"],
        &[],
    ) {
        let _ = finish(prep, Duration::from_secs(120));
    }
    let server = topo.node(0).pid().expect("the primary's pid");
    // One run: statements/s, and the CPU time per statement of the program and the server
    // together (µs). The CPU cost is what the library adds; on a machine shared with other
    // work it moves much less than throughput does, which follows the scheduler.
    let run = |preload: bool| -> (f64, f64) {
        let before = (children_cpu_ticks(), process_cpu_ticks(server));
        let Ok(program) = sysbench(
            &topo,
            APP_USER,
            APP_PASSWORD,
            "oltp_point_select",
            &["--threads=4", "--time=6", "--report-interval=1", "run"],
            &env_for(&topo, preload.then_some(lib)),
        ) else {
            return (f64::NAN, f64::NAN);
        };
        let (_, lines) = finish(program, Duration::from_secs(60));
        let after = (children_cpu_ticks(), process_cpu_ticks(server));
        let queries = |field: usize| {
            lines
                .iter()
                .find_map(|(_, l)| l.trim().strip_prefix("queries:"))
                .and_then(|r| {
                    if field == 0 {
                        r.split_whitespace().next()
                    } else {
                        r.split('(')
                            .nth(1)
                            .and_then(|r| r.split_whitespace().next())
                    }
                })
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(f64::NAN)
        };
        let ticks = match (before, after) {
            ((Some(c0), Some(s0)), (Some(c1), Some(s1))) => (c1 - c0 + s1 - s0) as f64,
            _ => f64::NAN,
        };
        (
            steady_statements_per_second(lines.iter().map(|(_, l)| l.as_str())),
            ticks * 1e6 / ticks_per_second() / queries(0),
        )
    };
    let (mut without, mut with, mut ratios) = (Vec::new(), Vec::new(), Vec::new());
    let mut cpu_ratios = Vec::new();
    let (mut cpu_without, mut cpu_with) = (Vec::new(), Vec::new());
    for pair in 0..pairs {
        let order = if pair % 2 == 0 {
            [false, true]
        } else {
            [true, false]
        };
        let mut qps = [f64::NAN; 2];
        let mut cpu = [f64::NAN; 2];
        for preload in order {
            (qps[usize::from(preload)], cpu[usize::from(preload)]) = run(preload);
        }
        let ratio = qps[1] / qps[0];
        let cpu_ratio = cpu[1] / cpu[0];
        println!(
            "  pair {:>2} ({:<13}) without {:>8.0}  with {:>8.0} statements/s  ratio {ratio:.4}   CPU per statement {:>6.1} / {:>6.1} µs  ratio {cpu_ratio:.4}   load {}",
            pair + 1,
            if pair % 2 == 0 { "without first" } else { "with first" },
            qps[0],
            qps[1],
            cpu[0],
            cpu[1],
            load_average()
        );
        if ratio.is_finite() {
            without.push(qps[0]);
            with.push(qps[1]);
            ratios.push(ratio);
        }
        if cpu_ratio.is_finite() {
            cpu_without.push(cpu[0]);
            cpu_with.push(cpu[1]);
            cpu_ratios.push(cpu_ratio);
        }
    }
    cpu_verdict(&mut cpu_ratios, &cpu_without, &cpu_with);
    if ratios.is_empty() {
        println!("  not measured: no sysbench pair finished");
    } else {
        ratios.sort_by(f64::total_cmp);
        let quantile = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
        let (median, low, high) = (quantile(0.5), quantile(0.25), quantile(0.75));
        let pooled = with.iter().sum::<f64>() / without.iter().sum::<f64>();
        println!(
            "  per-pair ratio with/without ({} pairs): median {median:.4}, quartiles {low:.4}..{high:.4}, min..max {:.4}..{:.4}",
            ratios.len(),
            ratios[0],
            ratios[ratios.len() - 1]
        );
        println!(
            "  pooled: without {:.0}, with {:.0} statements/s in all: ratio {pooled:.4}",
            without.iter().sum::<f64>(),
            with.iter().sum::<f64>()
        );
        if let Some((mean, _, _)) = stats::ratio_interval(&ratios) {
            println!(
                "  throughput cost measured: {:+.2} % (1 - the geometric mean of the per-pair ratios; at most 1 %: {})",
                (1.0 - mean) * 100.0,
                if mean >= 0.99 { "yes" } else { "no" }
            );
        }
        println!(
            "  throughput cost <= 1 % within the 95 % interval: {}",
            verdict(&ratios, |low, _| low >= 0.99, |_, high| high < 0.99)
        );
    }

    println!("\n== instructions per statement (valgrind --tool=callgrind --separate-threads=yes; a 2N- minus an N-statement run, divided by N: starting and exiting cancel out) ==");
    let node = topo.node(0);
    let select_args = |n: u64| -> Vec<String> {
        vec![
            node.ip().to_string(),
            node.port().to_string(),
            APP_USER.into(),
            APP_PASSWORD.into(),
            drfailover_testkit::APP_DATABASE.into(),
            n.to_string(),
        ]
    };
    let point_select_args = |n: u64| -> Vec<String> {
        sysbench_args(
            &topo,
            APP_USER,
            APP_PASSWORD,
            "oltp_point_select",
            10_000,
            &[
                "--threads=1",
                "--time=0",
                &format!("--events={n}"),
                "--db-ps-mode=auto",
                // The same ids in every run: fewer differences in LuaJIT's traces.
                "--rand-seed=1",
                "run",
            ],
        )
    };
    let env = |preload: bool| env_for(&topo, preload.then_some(lib));
    println!("  the worst case: `SELECT 1` on one connection (bench/c/preload_select.c), the main thread, only while in run_statements; 2,000 and 4,000 statements");
    callgrind_comparison(
        dir,
        "select",
        2000,
        (select, &["--toggle-collect=run_statements"]),
        &env,
        &select_args,
        ThreadFile::Main,
    );
    println!("  the program the throughput is measured with: Debian's sysbench oltp_point_select (1 thread, --db-ps-mode=auto: prepared), its worker thread (the busiest thread but the main one), all of it; 4,000 and 8,000 events");
    callgrind_comparison(
        dir,
        "sysbench",
        4000,
        (Path::new("/usr/bin/sysbench"), &[]),
        &env,
        &point_select_args,
        ThreadFile::BusiestWorker,
    );
}

/// How many callgrind measurements of each side (their median is reported).
const CALLGRIND_RUNS: usize = 5;

/// Which of callgrind's per-thread output files counts.
#[derive(Clone, Copy)]
enum ThreadFile {
    /// The main thread's (`…-01`).
    Main,
    /// The one with the most instructions but the main thread's (a program's worker
    /// thread).
    BusiestWorker,
}

/// Instructions per statement of a program under callgrind, without and with the library:
/// [`CALLGRIND_RUNS`] measurements of each, alternating; each the difference of a `2n`- and an
/// `n`-statement run divided by `n`. Prints the medians, their spread, the difference and the
/// library's own share. `program`: the executable and its callgrind options; `env(preload)`:
/// its environment; `args(n)`: its arguments for `n` statements. Blocks for the runs
/// (minutes).
fn callgrind_comparison(
    dir: &Path,
    name: &str,
    n: u64,
    (exe, options): (&Path, &[&str]),
    env: &dyn Fn(bool) -> Vec<(String, String)>,
    args: &dyn Fn(u64) -> Vec<String>,
    thread: ThreadFile,
) {
    let per_statement = |preload: bool| -> Result<(f64, f64), String> {
        let mut totals = Vec::new();
        for count in [n, 2 * n] {
            let out = dir.join(format!("cg-{name}-{preload}-{count}"));
            let _ = std::fs::remove_dir_all(&out);
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            let status = Command::new("valgrind")
                .args(["--tool=callgrind", "--separate-threads=yes"])
                .args(options)
                .arg(format!("--callgrind-out-file={}/cg.out", out.display()))
                .arg(exe)
                .args(args(count))
                .envs(env(preload))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| format!("valgrind: {e} (apt-get install valgrind)"))?;
            if !status.success() {
                return Err(format!(
                    "callgrind run of {} failed: {status}",
                    exe.display()
                ));
            }
            let mut files = Vec::new();
            for entry in std::fs::read_dir(&out).map_err(|e| e.to_string())? {
                let path = entry.map_err(|e| e.to_string())?.path();
                let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
                let total: f64 = text
                    .lines()
                    .find_map(|l| {
                        l.strip_prefix("totals:")
                            .or_else(|| l.strip_prefix("summary:"))
                    })
                    .and_then(|t| t.split_whitespace().next())
                    .and_then(|t| t.parse().ok())
                    .unwrap_or(0.0); // a thread that never collected
                let main = path.to_string_lossy().ends_with("-01");
                files.push((main, total, self_cost_in(&text, "libdrfailover_preload.so")));
            }
            let chosen = match thread {
                ThreadFile::Main => files.iter().find(|f| f.0),
                ThreadFile::BusiestWorker => files
                    .iter()
                    .filter(|f| !f.0)
                    .max_by(|a, b| a.1.total_cmp(&b.1)),
            };
            let (_, total, own) = chosen
                .filter(|f| f.1 > 0.0)
                .ok_or("no instructions counted in the callgrind output")?;
            totals.push((*total, *own));
        }
        let n = n as f64;
        Ok((
            (totals[1].0 - totals[0].0) / n,
            (totals[1].1 - totals[0].1) / n,
        ))
    };
    // The totals move with the timing of the answers (how often libmariadb's read finds no
    // data yet and polls): several of each show how much of a difference is noise.
    let (mut without, mut with, mut library) = (Vec::new(), Vec::new(), Vec::new());
    for _ in 0..CALLGRIND_RUNS {
        for preload in [false, true] {
            match per_statement(preload) {
                Ok((count, own)) if preload => {
                    with.push(count);
                    library.push(own);
                }
                Ok((count, _)) => without.push(count),
                Err(e) => {
                    println!("    not measured: {e}");
                    return;
                }
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (a, b) = (median(&mut without), median(&mut with));
    println!(
        "    without {a:.0} ({CALLGRIND_RUNS} runs: {:.0}..{:.0}), with {b:.0} ({:.0}..{:.0}): {:+.0} instructions per statement ({:+.2} %)",
        without[0],
        without[without.len() - 1],
        with[0],
        with[with.len() - 1],
        b - a,
        (b / a - 1.0) * 100.0
    );
    let own = median(&mut library);
    println!(
        "    in the library itself (self cost of libdrfailover_preload.so's functions): {own:.0} per statement ({CALLGRIND_RUNS} runs: {:.0}..{:.0}) = {:.2} % of {a:.0}",
        library[0],
        library[library.len() - 1],
        own / a * 100.0
    );
}

/// Whether paired ratios show a cost of at most 1 %: their geometric mean's 95 % confidence
/// interval ([`stats::ratio_interval`]) passes `shown(low, high)` (demonstrated) or
/// `failed(low, high)` (not met); otherwise the pairs do not decide it.
fn verdict(
    ratios: &[f64],
    shown: impl Fn(f64, f64) -> bool,
    failed: impl Fn(f64, f64) -> bool,
) -> String {
    let Some((mean, low, high)) = stats::ratio_interval(ratios) else {
        return "not measured (fewer than 2 pairs)".into();
    };
    let interval =
        format!("geometric mean {mean:.4}, 95 % confidence interval {low:.4}..{high:.4}");
    if shown(low, high) {
        format!("demonstrated ({interval})")
    } else if failed(low, high) {
        format!("not met ({interval})")
    } else {
        format!("not demonstrated: the interval includes both ({interval}; more pairs or a quieter machine)")
    }
}

/// The CPU cost per statement, with over without: per-pair ratios (median, quartiles) and the
/// pooled ratio, and whether a cost of at most 1 % is shown ([`verdict`]).
fn cpu_verdict(ratios: &mut [f64], without: &[f64], with: &[f64]) {
    if ratios.is_empty() {
        println!("  CPU per statement: not measured (no pair finished)");
        return;
    }
    ratios.sort_by(f64::total_cmp);
    let quantile = |q: f64| ratios[((ratios.len() - 1) as f64 * q).round() as usize];
    let (median, low, high) = (quantile(0.5), quantile(0.25), quantile(0.75));
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    let pooled = mean(with) / mean(without);
    println!(
        "  CPU per statement (program + server), with/without ({} pairs): median {median:.4}, quartiles {low:.4}..{high:.4}, pooled {:.1} / {:.1} µs = {pooled:.4}",
        ratios.len(),
        mean(with),
        mean(without)
    );
    println!(
        "  CPU cost <= 1 %: {}",
        verdict(ratios, |_, high| high <= 1.01, |low, _| low > 1.01)
    );
}

/// CPU time (user + system, clock ticks) of this process's waited-for children so far
/// (`/proc/self/stat` cutime + cstime). Reads one small file.
fn children_cpu_ticks() -> Option<u64> {
    stat_ticks("/proc/self/stat", 13)
}

/// CPU time (user + system, clock ticks) of process `pid` so far (`/proc/PID/stat` utime +
/// stime). Reads one small file.
fn process_cpu_ticks(pid: u32) -> Option<u64> {
    stat_ticks(&format!("/proc/{pid}/stat"), 11)
}

/// The sum of the two numbers at `first` and `first + 1` among the fields after the command
/// name of a `/proc/*/stat` file (field 14 of proc(5) is index 11 there).
fn stat_ticks(path: &str, first: usize) -> Option<u64> {
    let text = std::fs::read_to_string(path).ok()?;
    let fields: Vec<&str> = text.rsplit_once(')')?.1.split_whitespace().collect();
    let a: u64 = fields.get(first)?.parse().ok()?;
    let b: u64 = fields.get(first + 1)?.parse().ok()?;
    Some(a + b)
}

/// Clock ticks per second (`sysconf(_SC_CLK_TCK)`).
fn ticks_per_second() -> f64 {
    nix::unistd::sysconf(nix::unistd::SysconfVar::CLK_TCK)
        .ok()
        .flatten()
        .map_or(100.0, |t| t as f64)
}

/// The self cost (first event: instructions) of the functions of the object whose path ends
/// with `object`, from a callgrind output file (name compression, relative positions and
/// the inclusive cost line after each `calls=` handled).
fn self_cost_in(callgrind_out: &str, object: &str) -> f64 {
    let mut names: std::collections::HashMap<String, String> = std::collections::HashMap::new();
    // `ob=(3) /path` defines id 3; `ob=(3)` refers to it.
    let mut resolve = |value: &str| -> String {
        let value = value.trim();
        match value.strip_prefix('(').and_then(|v| v.split_once(')')) {
            Some((id, rest)) if !rest.trim().is_empty() => {
                names.insert(id.to_owned(), rest.trim().to_owned());
                rest.trim().to_owned()
            }
            Some((id, _)) => names.get(id).cloned().unwrap_or_default(),
            None => value.to_owned(),
        }
    };
    let (mut function_object, mut in_object, mut skip_next) = (String::new(), false, false);
    let mut total = 0.0;
    for line in callgrind_out.lines() {
        if let Some(v) = line.strip_prefix("ob=") {
            function_object = resolve(v);
        } else if line.starts_with("fn=") {
            in_object = function_object.ends_with(object);
        } else if let Some(v) = line.strip_prefix("cob=") {
            let _ = resolve(v);
        } else if line.starts_with("calls=") {
            skip_next = true;
        } else if line
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_digit() || c == '+' || c == '-' || c == '*')
        {
            if std::mem::take(&mut skip_next) {
                continue;
            }
            if in_object {
                total += line
                    .split_whitespace()
                    .nth(1)
                    .and_then(|n| n.parse::<f64>().ok())
                    .unwrap_or(0.0);
            }
        }
    }
    total
}

#[cfg(test)]
mod tests {
    use super::steady_statements_per_second;

    #[test]
    fn steady_throughput_is_the_mean_of_the_reports_after_the_first_second() {
        let out = "\
[ 1s ] thds: 4 tps: 50000.00 qps: 50000.00 (r/w/o: 50000.00/0.00/0.00) lat (ms,95%): 0.10 err/s: 0.00 reconn/s: 0.00
[ 2s ] thds: 4 tps: 80000.00 qps: 80000.00 (r/w/o: 80000.00/0.00/0.00) lat (ms,95%): 0.10 err/s: 0.00 reconn/s: 0.00
[ 3s ] thds: 4 tps: 82000.00 qps: 82000.00 (r/w/o: 82000.00/0.00/0.00) lat (ms,95%): 0.10 err/s: 0.00 reconn/s: 0.00
    queries:                             400000 (66666.66 per sec.)";
        assert_eq!(steady_statements_per_second(out.lines()), 81000.0);
        assert!(steady_statements_per_second("queries: 1 (1 per sec.)".lines()).is_nan());
    }
}
