//! `drfailover orchestrate | topology | switchover | ack`: the orchestrator from the command
//! line (see the drfailover-orchestrator crate).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_notify::Notifier;
use drfailover_orchestrator::http::{self, Snapshot};
use drfailover_orchestrator::{Config, Orchestrator};

/// Arguments of `drfailover orchestrate`.
#[derive(clap::Args, Debug)]
pub struct OrchestrateArgs {
    /// The configuration file (TOML; see docs/orchestrator.md).
    config: PathBuf,
    /// Serve /status, /metrics, /ack and /switchover here (overrides `listen` in the file).
    #[arg(long)]
    listen: Option<String>,
    /// Print events as JSON lines instead of text.
    #[arg(long)]
    json: bool,
}

/// Arguments of `drfailover topology`.
#[derive(clap::Args, Debug)]
pub struct TopologyArgs {
    /// The configuration file.
    config: PathBuf,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

/// Arguments of `drfailover switchover`.
#[derive(clap::Args, Debug)]
pub struct SwitchoverArgs {
    /// The configuration file (used when no orchestrator runs: then this command takes the
    /// lock and acts itself).
    #[arg(long)]
    config: Option<PathBuf>,
    /// Ask a running orchestrator instead: its HTTP address, e.g. `127.0.0.1:9090`.
    #[arg(long)]
    daemon: Option<String>,
    /// The replica to promote.
    #[arg(long)]
    to: String,
}

/// Arguments of `drfailover ack`.
#[derive(clap::Args, Debug)]
pub struct AckArgs {
    /// The running orchestrator's HTTP address, e.g. `127.0.0.1:9090`.
    #[arg(long)]
    daemon: String,
}

fn load(path: &std::path::Path) -> Result<Config, ExitCode> {
    Config::load(path).map_err(|e| {
        eprintln!("drfailover: {e}");
        ExitCode::from(2)
    })
}

fn notifier(json: bool) -> Arc<Notifier> {
    let n = Arc::new(
        Notifier::new(4096, std::process::id() as u64, Instant::now()).expect("notifier thread"),
    );
    n.subscribe(move |e| {
        let line = if json { e.to_json() } else { e.summary() };
        let _ = writeln!(std::io::stdout().lock(), "{line}");
    });
    n
}

/// `drfailover orchestrate CONFIG`: check the topology, then watch and act until Ctrl-C.
pub fn orchestrate(args: OrchestrateArgs) -> ExitCode {
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let listen = args.listen.clone().or_else(|| config.listen.clone());
    let notifier = notifier(args.json);
    if let Err(e) = config.attach_sinks(&notifier) {
        eprintln!("drfailover: {e}");
        return ExitCode::from(2);
    }
    let mut orch = Orchestrator::new(config, notifier.clone(), std::process::id() as u64);
    if let Err(e) = orch.start() {
        eprintln!("drfailover: refusing to manage this topology:\n{e}");
        notifier.close(Duration::from_secs(1));
        return ExitCode::from(2);
    }
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        let _ = ctrlc::set_handler(move || stop.store(true, Ordering::SeqCst));
    }
    let (tx, rx) = crossbeam_channel::bounded(16);
    let snapshot = Arc::new(Mutex::new(Snapshot::default()));
    let server = match listen {
        Some(addr) => match TcpListener::bind(&addr) {
            Ok(l) => {
                let (snapshot, stop) = (snapshot.clone(), stop.clone());
                let timeout = orch.config().settings.catchup_timeout * 2;
                Some(std::thread::spawn(move || {
                    http::serve(l, snapshot, tx, stop, timeout)
                }))
            }
            Err(e) => {
                eprintln!("drfailover: cannot listen on {addr}: {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    eprintln!(
        "drfailover: orchestrating {} nodes (primary {})",
        orch.config().nodes.len(),
        orch.core()
            .primary()
            .map_or("?".into(), |p| orch.config().nodes[p].name.clone())
    );
    orch.run_with(&stop, &rx, |o| {
        let mut s = snapshot.lock().unwrap_or_else(|p| p.into_inner());
        s.status = o.status_json().to_string();
        s.metrics = o.metrics_text();
    });
    stop.store(true, Ordering::SeqCst);
    if let Some(server) = server {
        let _ = server.join();
    }
    notifier.close(Duration::from_secs(1));
    ExitCode::SUCCESS
}

/// `drfailover topology CONFIG`: what the orchestrator sees, once. Changes nothing.
pub fn topology(args: TopologyArgs) -> ExitCode {
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let notifier = Arc::new(Notifier::new(16, 0, Instant::now()).expect("notifier thread"));
    let mut orch = Orchestrator::new(config, notifier.clone(), 0);
    orch.observe_only();
    let status = orch.status_json();
    notifier.close(Duration::from_millis(100));
    if args.json {
        println!("{status}");
    } else {
        println!(
            "analysis: {}  primary: {}",
            status["analysis"].as_str().unwrap_or("?"),
            status["primary"].as_str().unwrap_or("none")
        );
        if let Some(f) = status["facts"].as_str().filter(|f| !f.is_empty()) {
            println!("facts: {f}");
        }
        println!(
            "{:<10} {:<22} {:<12} {:<22} {:<24} IO/SQL",
            "NODE", "ADDRESS", "STATE", "FOLLOWS", "GTID"
        );
        for n in status["nodes"].as_array().into_iter().flatten() {
            let f = &n["facts"];
            println!(
                "{:<10} {:<22} {:<12} {:<22} {:<24} {}",
                n["name"].as_str().unwrap_or(""),
                n["address"].as_str().unwrap_or(""),
                n["state"].as_str().unwrap_or(""),
                f["replicating_from"].as_str().unwrap_or("-"),
                f["gtid_current_pos"]
                    .as_str()
                    .unwrap_or(f["error"].as_str().unwrap_or("")),
                match (f["io_thread"].as_str(), f["sql_thread"].as_bool()) {
                    (Some(io), Some(sql)) => format!("{io}/{}", if sql { "Yes" } else { "No" }),
                    _ => "-".into(),
                }
            );
        }
    }
    if status["analysis"] == "healthy" {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// POST to a running orchestrator; the body of its answer.
fn post(daemon: &str, path: &str, timeout: Duration) -> Result<String, String> {
    let mut s = TcpStream::connect(daemon).map_err(|e| format!("{daemon}: {e}"))?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(Duration::from_secs(5)));
    write!(
        s,
        "POST {path} HTTP/1.1\r\nhost: {daemon}\r\ncontent-length: 0\r\nconnection: close\r\n\r\n"
    )
    .map_err(|e| format!("{daemon}: {e}"))?;
    let mut answer = String::new();
    s.take(1 << 20)
        .read_to_string(&mut answer)
        .map_err(|e| format!("{daemon}: {e}"))?;
    let (head, body) = answer.split_once("\r\n\r\n").unwrap_or((&answer, ""));
    if head.starts_with("HTTP/1.1 200") {
        Ok(body.trim().to_string())
    } else {
        Err(body.trim().to_string())
    }
}

/// `drfailover switchover --to NODE`: through a running orchestrator (`--daemon`) or
/// directly (`--config`, taking the lock itself).
pub fn switchover(args: SwitchoverArgs) -> ExitCode {
    let result = match (&args.daemon, &args.config) {
        (Some(d), _) => post(
            d,
            &format!("/switchover?to={}", args.to),
            Duration::from_secs(120),
        ),
        (None, Some(path)) => {
            let config = match load(path) {
                Ok(c) => c,
                Err(code) => return code,
            };
            let notifier = notifier(false);
            let mut orch = Orchestrator::new(config, notifier.clone(), std::process::id() as u64);
            let r = orch.start().and_then(|()| orch.switchover(&args.to));
            notifier.close(Duration::from_secs(1));
            r
        }
        (None, None) => Err("give --daemon ADDRESS or --config FILE".into()),
    };
    match result {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("drfailover: switchover: {e}");
            ExitCode::from(1)
        }
    }
}

/// `drfailover ack --daemon ADDRESS`: lift the anti-flapping block.
pub fn ack(args: AckArgs) -> ExitCode {
    match post(&args.daemon, "/ack", Duration::from_secs(10)) {
        Ok(text) => {
            println!("{text}");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("drfailover: ack: {e}");
            ExitCode::from(1)
        }
    }
}
