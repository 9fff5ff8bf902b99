//! `drfailover-bench-preload`: figures for `libdrfailover-preload.so`, with and without it
//! in the same run.
//!
//!     cargo build --release -p drfailover-preload
//!     cargo run --release -p drfailover-bench --bin drfailover-bench-preload [-- --trials N]
//!         [--faults kill9,sigstop,switchover]   (only these failover rows, nothing else)
//!
//! 1. Failover: a plain libmariadb program of ours (4 threads of autocommit INSERTs, one line
//!    per acknowledged write) through kill -9 + promotion, SIGSTOP + promotion and a
//!    switchover (fence + promotion), with and without the preload: statements failed,
//!    whether it kept working, per thread the time from the new primary becoming writable to
//!    its next acknowledged write (p50/p99/max), acknowledged writes lost or executed twice.
//!    Also Debian's sysbench (oltp_insert, 8 threads, --db-ps-mode=auto) through kill -9.
//! 2. Overhead with nothing failing: sysbench oltp_point_select, 4 threads, 5 alternating
//!    runs with and without; instructions per statement (`SELECT 1`) under callgrind.
//! 3. A picture: acknowledged writes per 100 ms through a kill -9, with and without
//!    (`docs/preload-failover.svg`).

#[path = "stats.rs"]
#[allow(dead_code)]
mod stats;
#[path = "svg.rs"]
#[allow(dead_code)]
mod svg;

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_testkit::{
    Topology, ADMIN_PASSWORD, ADMIN_USER, APP_DATABASE, APP_PASSWORD, APP_USER,
};

const THREADS: usize = 4;

#[derive(Clone, Copy, PartialEq)]
enum Fault {
    Kill9,
    Freeze,
    Switchover,
}

impl Fault {
    fn name(self) -> &'static str {
        match self {
            Fault::Kill9 => "kill -9",
            Fault::Freeze => "SIGSTOP",
            Fault::Switchover => "switchover",
        }
    }
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

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

fn build(source: &Path, out: &Path) -> PathBuf {
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "libmariadb"])
        .output()
        .expect("pkg-config (install pkg-config libmariadb-dev)");
    let flags = String::from_utf8_lossy(&flags.stdout).to_string();
    let ok = Command::new("cc")
        .args(["-std=c11", "-D_GNU_SOURCE", "-O2", "-g", "-pthread"])
        .arg(source)
        .args(flags.split_whitespace())
        .arg("-o")
        .arg(out)
        .status()
        .expect("cc")
        .success();
    assert!(ok, "compiling {} failed", source.display());
    out.to_path_buf()
}

/// A program whose stdout lines are stamped on arrival.
struct Run {
    child: std::process::Child,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
}

impl Run {
    fn spawn(program: &Path, args: &[String], env: &[(String, String)]) -> Run {
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let out = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        Run { child, lines }
    }
    fn count(&self, prefix: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, l)| l.starts_with(prefix))
            .count()
    }
    fn wait_for(&self, prefix: &str, n: usize, timeout: Duration) -> bool {
        let deadline = Instant::now() + timeout;
        while self.count(prefix) < n {
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        true
    }
    /// Wait up to `timeout`; `None` when it had to be killed.
    fn finish(
        mut self,
        timeout: Duration,
    ) -> (Option<std::process::ExitStatus>, Vec<(Instant, String)>) {
        let deadline = Instant::now() + timeout;
        let status = loop {
            if let Ok(Some(s)) = self.child.try_wait() {
                break Some(s);
            }
            if Instant::now() > deadline {
                let _ = self.child.kill();
                let _ = self.child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        std::thread::sleep(Duration::from_millis(100));
        let lines = self.lines.lock().unwrap().clone();
        (status, lines)
    }
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

fn env_for(topo: &Topology, preload: Option<&Path>) -> Vec<(String, String)> {
    match preload {
        Some(lib) => vec![
            ("LD_PRELOAD".into(), lib.to_string_lossy().into_owned()),
            (
                "DRFAILOVER_DSN".into(),
                topo.dsn("probe_interval_ms=100&failover_timeout_ms=20000"),
            ),
        ],
        None => vec![],
    }
}

fn failover_trial(writer: &Path, fault: Fault, preload: Option<&Path>) -> Result<Trial, String> {
    let mut topo = Topology::primary_replica()?;
    topo.node(0).sql(&format!(
        "CREATE TABLE {APP_DATABASE}.preload_acks (n BIGINT AUTO_INCREMENT PRIMARY KEY, id BIGINT NOT NULL, thread INT NOT NULL, KEY (id))"
    ))?;
    topo.wait_semi_sync_clients(0, 1)?;
    let node = topo.node(0);
    let args: Vec<String> = vec![
        node.ip().to_string(),
        node.port().to_string(),
        APP_USER.into(),
        APP_PASSWORD.into(),
        APP_DATABASE.into(),
        THREADS.to_string(),
        "5".into(),
        "auto".into(),
    ];
    let run = Run::spawn(writer, &args, &env_for(&topo, preload));
    if !run.wait_for("ack ", 300, Duration::from_secs(30)) {
        return Err("the program did not start writing".into());
    }
    // A random moment 1–1.2 s later (the picture shows the second before the fault).
    std::thread::sleep(Duration::from_millis(1000 + rand::random::<u64>() % 200));
    let fault_at = Instant::now();
    match fault {
        Fault::Kill9 => {
            topo.kill9(0)?;
            topo.promote(1)?;
        }
        Fault::Freeze => {
            topo.freeze(0)?;
            topo.promote_fast(1)?;
        }
        Fault::Switchover => {
            topo.fence(0)?;
            topo.wait_replicated(0, 1)?;
            topo.promote(1)?;
        }
    }
    let writable_at = Instant::now();
    let (status, lines) = run.finish(Duration::from_secs(30));
    if fault == Fault::Freeze {
        topo.thaw(0)?;
    }
    let failed = lines.iter().filter(|(_, l)| l.starts_with("fail ")).count();
    let mut gaps = vec![None; THREADS];
    for (at, line) in &lines {
        if let Some(id) = line
            .strip_prefix("ack ")
            .and_then(|i| i.parse::<i64>().ok())
        {
            let thread = (id / 1_000_000_000) as usize;
            if *at >= writable_at && (1..=THREADS).contains(&thread) && gaps[thread - 1].is_none() {
                gaps[thread - 1] = Some(*at - writable_at);
            }
        }
    }
    let acked: Vec<i64> = lines
        .iter()
        .filter_map(|(_, l)| l.strip_prefix("ack ")?.parse().ok())
        .collect();
    let (lost, repeated) = if fault == Fault::Kill9 || preload.is_some() {
        let rows = topo
            .node(1)
            .sql(&format!("SELECT id FROM {APP_DATABASE}.preload_acks"))?;
        let mut seen = std::collections::HashMap::<i64, usize>::new();
        for r in 0..rows.num_rows() {
            if let Some(id) = rows.text(r, 0).and_then(|t| t.parse().ok()) {
                *seen.entry(id).or_default() += 1;
            }
        }
        (
            acked.iter().filter(|id| !seen.contains_key(id)).count(),
            seen.values().filter(|&&n| n > 1).count(),
        )
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

fn sysbench(
    topo: &Topology,
    user: &str,
    password: &str,
    test: &str,
    rest: &[&str],
    env: &[(String, String)],
) -> Run {
    let node = topo.node(0);
    let mut args: Vec<String> = vec![
        test.into(),
        format!("--mysql-host={}", node.ip()),
        format!("--mysql-port={}", node.port()),
        format!("--mysql-user={user}"),
        format!("--mysql-password={password}"),
        format!("--mysql-db={APP_DATABASE}"),
        "--tables=1".into(),
        "--table-size=10000".into(),
    ];
    args.extend(rest.iter().map(|s| s.to_string()));
    Run::spawn(Path::new("/usr/bin/sysbench"), &args, env)
}

fn summary_number(lines: &[(Instant, String)], label: &str) -> Option<f64> {
    lines
        .iter()
        .find_map(|(_, l)| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
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
    let mut faults = vec![Fault::Kill9, Fault::Freeze, Fault::Switchover];
    // `--faults` runs only the failover rows asked for.
    let mut failover_only = false;
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        match a.as_str() {
            "--trials" => {
                trials = args
                    .next()
                    .and_then(|v| v.parse().ok())
                    .expect("--trials N")
            }
            "-h" | "--help" => {
                println!(
                    "drfailover-bench-preload: libdrfailover-preload.so with and without it in one \
                     run (failover of a plain libmariadb program and sysbench, overhead).\n\n\
                     usage: cargo build --release -p drfailover-preload\n       \
                     cargo run --release -p drfailover-bench --bin drfailover-bench-preload -- [--trials N] [--faults LIST]\n\n  \
                     --trials N       trials per scenario (default 5)\n  \
                     --faults LIST    only these failover rows, comma-separated: kill9,sigstop,switchover"
                );
                return;
            }
            "--faults" => {
                failover_only = true;
                let list = args.next().unwrap_or_default();
                faults = list
                    .split(',')
                    .map(|f| match f {
                        "kill9" => Fault::Kill9,
                        "sigstop" => Fault::Freeze,
                        "switchover" => Fault::Switchover,
                        other => {
                            eprintln!(
                                "unknown fault {other}; --faults takes kill9,sigstop,switchover"
                            );
                            std::process::exit(2);
                        }
                    })
                    .collect();
            }
            "--bench" => {}
            other => {
                eprintln!("unknown argument {other}; usage: drfailover-bench-preload [--trials N] [--faults kill9,sigstop,switchover]");
                std::process::exit(2);
            }
        }
    }
    let lib = preload_library();
    let dir = std::env::temp_dir().join(format!("drfailover-bench-preload-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let writer = build(
        &root().join("crates/drfailover-preload/tests/c/acked_writer.c"),
        &dir.join("acked_writer"),
    );
    let select = build(
        &root().join("bench/c/preload_select.c"),
        &dir.join("preload_select"),
    );

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
                match failover_trial(&writer, fault, with.then_some(lib.as_path())) {
                    Ok(t) => {
                        failed += t.failed;
                        worked += usize::from(t.survived);
                        never += t.gaps.iter().filter(|g| g.is_none()).count();
                        gaps.extend(t.gaps.iter().flatten().copied());
                        lost += t.lost;
                        twice += t.repeated;
                        if fault == Fault::Kill9
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

    if failover_only {
        return;
    }
    println!("\n== sysbench oltp_insert, 8 threads, --db-ps-mode=auto, --mysql-ignore-errors=2013, through kill -9 ==");
    for with in [false, true] {
        let result = (|| -> Result<String, String> {
            let mut topo = Topology::primary_replica()?;
            let prep = sysbench(
                &topo,
                ADMIN_USER,
                ADMIN_PASSWORD,
                "oltp_insert",
                &["prepare"],
                &[],
            );
            let (_, _) = prep.finish(Duration::from_secs(120));
            topo.wait_replicated(0, 1)?;
            let run = sysbench(
                &topo,
                APP_USER,
                APP_PASSWORD,
                "oltp_insert",
                &[
                    "--threads=8",
                    "--time=8",
                    "--report-interval=1",
                    "--db-ps-mode=auto",
                    "--mysql-ignore-errors=2013",
                    "run",
                ],
                &env_for(&topo, with.then_some(lib.as_path())),
            );
            if !run.wait_for("[ 2s ]", 1, Duration::from_secs(60)) {
                return Err("sysbench did not start".into());
            }
            topo.kill9(0)?;
            topo.promote(1)?;
            let (status, lines) = run.finish(Duration::from_secs(60));
            let after = lines
                .iter()
                .filter(|(_, l)| l.starts_with("[ 6s ]") || l.starts_with("[ 7s ]"))
                .map(|(_, l)| l.split(" qps:").next().unwrap_or("").to_owned())
                .collect::<Vec<_>>();
            Ok(format!(
                "exit {}, statements failed (reconnects + ignored errors) {}, after the failover: {:?}",
                status.map_or("killed (hung)".to_owned(), |s| s.to_string()),
                summary_number(&lines, "reconnects:").unwrap_or(f64::NAN) + summary_number(&lines, "ignored errors:").unwrap_or(f64::NAN),
                after
            ))
        })();
        println!(
            "  {:<17} {}",
            if with { "with the preload" } else { "without" },
            result.unwrap_or_else(|e| format!("trial failed: {e}"))
        );
    }

    println!("\n== overhead, nothing failing: sysbench oltp_point_select, 4 threads, 5 s runs alternating ==");
    let topo = Topology::primary_replica().expect("topology");
    let prep = sysbench(
        &topo,
        ADMIN_USER,
        ADMIN_PASSWORD,
        "oltp_point_select",
        &["prepare"],
        &[],
    );
    let _ = prep.finish(Duration::from_secs(120));
    let (mut without, mut with) = (Vec::new(), Vec::new());
    for round in 0..5 {
        for preload in [false, true] {
            let run = sysbench(
                &topo,
                APP_USER,
                APP_PASSWORD,
                "oltp_point_select",
                &["--threads=4", "--time=5", "run"],
                &env_for(&topo, preload.then_some(lib.as_path())),
            );
            let (_, lines) = run.finish(Duration::from_secs(60));
            let qps = lines
                .iter()
                .find_map(|(_, l)| l.trim().strip_prefix("queries:"))
                .and_then(|r| r.split('(').nth(1))
                .and_then(|r| r.split_whitespace().next())
                .and_then(|n| n.parse::<f64>().ok())
                .unwrap_or(f64::NAN);
            println!(
                "  round {} {:<17} {qps:>10.0} statements/s",
                round + 1,
                if preload {
                    "with the preload"
                } else {
                    "without"
                }
            );
            if preload {
                with.push(qps)
            } else {
                without.push(qps)
            }
        }
    }
    let mean = |v: &[f64]| v.iter().sum::<f64>() / v.len() as f64;
    println!(
        "  mean: without {:.0}, with {:.0}: ratio {:.4}",
        mean(&without),
        mean(&with),
        mean(&with) / mean(&without)
    );

    println!("\n== instructions per statement (SELECT 1, one connection; valgrind --tool=callgrind, main thread, run_statements only) ==");
    let node = topo.node(0);
    let per_statement = |preload: bool| -> Result<f64, String> {
        let mut totals = Vec::new();
        for n in [2000u64, 4000] {
            let out = dir.join(format!("cg-{preload}-{n}"));
            let _ = std::fs::remove_dir_all(&out);
            std::fs::create_dir_all(&out).map_err(|e| e.to_string())?;
            let status = Command::new("valgrind")
                .args([
                    "--tool=callgrind",
                    "--separate-threads=yes",
                    "--toggle-collect=run_statements",
                ])
                .arg(format!("--callgrind-out-file={}/cg.out", out.display()))
                .arg(&select)
                .args([
                    node.ip().to_string(),
                    node.port().to_string(),
                    APP_USER.into(),
                    APP_PASSWORD.into(),
                    APP_DATABASE.into(),
                    n.to_string(),
                ])
                .envs(env_for(&topo, preload.then_some(lib.as_path())))
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .map_err(|e| format!("valgrind: {e} (apt-get install valgrind)"))?;
            if !status.success() {
                return Err(format!("callgrind run failed: {status}"));
            }
            // The main thread's file is the one with the run_statements loop: thread 1.
            let text = std::fs::read_to_string(out.join("cg.out-01")).map_err(|e| e.to_string())?;
            let total: f64 = text
                .lines()
                .find_map(|l| {
                    l.strip_prefix("totals:")
                        .or_else(|| l.strip_prefix("summary:"))
                })
                .and_then(|t| t.split_whitespace().next())
                .and_then(|t| t.parse().ok())
                .ok_or("no totals in the callgrind output")?;
            totals.push(total);
        }
        Ok((totals[1] - totals[0]) / 2000.0)
    };
    match (per_statement(false), per_statement(true)) {
        (Ok(a), Ok(b)) => println!(
            "  without {a:.0}, with {b:.0}: +{:.0} instructions per statement ({:+.2} %)",
            b - a,
            (b / a - 1.0) * 100.0
        ),
        (a, b) => println!("  not measured: {a:?} {b:?}"),
    }
    let _ = std::fs::remove_dir_all(&dir);
}
