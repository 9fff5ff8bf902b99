//! `drfailover-topo`: run a program against a fresh primary + replica, with a fault.
//!
//!     drfailover-topo [--fault kill9|freeze|readonly|none] [--promote-delay-ms N] [--timeout-s N]
//!                     [--sql STATEMENT]... -- PROGRAM [ARGS...]
//!
//! The program gets `DRFAILOVER_TEST_DSN` (app user, both nodes) and `MYSQL_PWD` in its
//! environment; in its arguments `{dsn}`, `{host}` (the primary's `ip:port`) and `{user}` are
//! replaced. Its stdout is echoed. When it prints a line
//! `READY`, the primary gets the fault and the replica is promoted (after the delay); with
//! `readonly` the primary is only made read-only (`SET GLOBAL read_only=1`, as a fence does)
//! and nothing is promoted. Exits
//! with the program's status (124 on timeout); servers are always stopped and removed.
//! Used by ctest for the C suite; MariaDB missing is a failure, never a skip.

use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

use drfailover_testkit::{Topology, APP_PASSWORD, APP_USER};

/// What `--help` prints.
const HELP: &str = "\
drfailover-topo: run a program against a fresh MariaDB primary + replica on loopback, with a
fault when the program prints a line READY; servers are removed when it exits. About 2 s plus
the program's own time. Used by ctest for the C suite.

usage: drfailover-topo [--fault kill9|freeze|readonly|none] [--promote-delay-ms N] [--timeout-s N]
                       [--sql STATEMENT]... -- PROGRAM [ARGS...]

  --fault F             at READY: kill9 or freeze the primary and promote the replica, or
                        readonly (SET GLOBAL read_only=1, nothing promoted), or none (default kill9)
  --promote-delay-ms N  wait this long between the fault and the promotion (default 0)
  --timeout-s N         kill the program after N s, exit 124 (default 120)
  --sql STATEMENT       run on the primary (as root) before the program starts (repeatable)

The program gets DRFAILOVER_TEST_DSN and MYSQL_PWD; {dsn}, {host} (the primary's ip:port) and
{user} in its arguments are replaced. Exits with the program's status.";

struct Options {
    fault: String,
    promote_delay: Duration,
    timeout: Duration,
    sql: Vec<String>,
    program: Vec<String>,
}

fn parse() -> Result<Options, String> {
    let mut o = Options {
        fault: "kill9".into(),
        promote_delay: Duration::ZERO,
        timeout: Duration::from_secs(120),
        sql: Vec::new(),
        program: Vec::new(),
    };
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
        match a.as_str() {
            "--fault" => o.fault = value("--fault")?,
            "--promote-delay-ms" => {
                o.promote_delay = Duration::from_millis(
                    value("--promote-delay-ms")?
                        .parse()
                        .map_err(|e| format!("{e}"))?,
                )
            }
            "--timeout-s" => {
                o.timeout =
                    Duration::from_secs(value("--timeout-s")?.parse().map_err(|e| format!("{e}"))?)
            }
            "--sql" => o.sql.push(value("--sql")?),
            "-h" | "--help" => {
                println!("{HELP}");
                std::process::exit(0);
            }
            "--" => {
                o.program = args.collect();
                break;
            }
            other => return Err(format!("unknown option {other}")),
        }
    }
    if o.program.is_empty() {
        return Err("usage: drfailover-topo [--fault kill9|freeze|readonly|none] [--promote-delay-ms N] [--timeout-s N] [--sql SQL]... -- PROGRAM [ARGS...]".into());
    }
    if !["kill9", "freeze", "readonly", "none"].contains(&o.fault.as_str()) {
        return Err(format!("unknown fault {}", o.fault));
    }
    Ok(o)
}

fn run(o: Options) -> Result<i32, String> {
    let mut topo = Topology::primary_replica()?;
    for statement in &o.sql {
        topo.node(0).sql(statement)?;
    }
    topo.wait_replicated(0, 1)?;
    let dsn = topo.dsn("probe_interval_ms=50&failover_timeout_ms=30000");
    let host = topo.node(0).addr().to_string();
    let args: Vec<String> = o.program[1..]
        .iter()
        .map(|a| {
            a.replace("{dsn}", &dsn)
                .replace("{host}", &host)
                .replace("{user}", APP_USER)
        })
        .collect();
    let mut child = Command::new(&o.program[0])
        .args(&args)
        .env("DRFAILOVER_TEST_DSN", &dsn)
        .env("MYSQL_PWD", APP_PASSWORD)
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|e| format!("spawn {}: {e}", o.program[0]))?;
    let stdout = child.stdout.take().expect("piped");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            println!("{line}");
            if line.trim() == "READY" {
                let _ = tx.send(());
            }
        }
    });
    let started = Instant::now();
    let mut faulted = false;
    loop {
        if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
            std::thread::sleep(Duration::from_millis(50));
            return Ok(status.code().unwrap_or(128));
        }
        if !faulted && rx.try_recv().is_ok() {
            faulted = true;
            match o.fault.as_str() {
                "kill9" => topo.kill9(0)?,
                "freeze" => topo.freeze(0)?,
                "readonly" => {
                    topo.node(0).sql("SET GLOBAL read_only=1")?;
                }
                _ => {}
            }
            if o.fault == "readonly" {
                eprintln!("drfailover-topo: made the primary read-only (nothing promoted)");
            } else if o.fault != "none" {
                eprintln!("drfailover-topo: {} the primary", o.fault);
                std::thread::sleep(o.promote_delay);
                topo.promote(1)?;
                eprintln!("drfailover-topo: promoted the replica");
            }
        }
        if started.elapsed() > o.timeout {
            let _ = child.kill();
            let _ = child.wait();
            eprintln!("drfailover-topo: program timed out after {:?}", o.timeout);
            return Ok(124);
        }
        std::thread::sleep(Duration::from_millis(2));
    }
}

fn main() -> ExitCode {
    let options = match parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!("drfailover-topo: {e}");
            return ExitCode::from(2);
        }
    };
    match run(options) {
        Ok(code) => ExitCode::from(code.clamp(0, 255) as u8),
        Err(e) => {
            eprintln!("drfailover-topo: {e}");
            ExitCode::from(1)
        }
    }
}
