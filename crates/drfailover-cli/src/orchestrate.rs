//! `drfailover orchestrate | topology | switchover | ack`: the orchestrator from the command
//! line (see the drfailover-orchestrator crate).

use std::io::Write;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_notify::Notifier;
use drfailover_orchestrator::control::ControlToken;
use drfailover_orchestrator::http::{self, ControlEndpoint, Limits, Snapshot};
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
    /// Log level of the diagnostics printed on stderr (sink failures, …): error, warn,
    /// info, debug, trace or off.
    #[arg(long, default_value = "info")]
    log_level: log::LevelFilter,
    /// Print the diagnostics on stderr as JSON lines.
    #[arg(long)]
    log_json: bool,
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
    /// File holding the orchestrator's control token (its `control_token_file`), sent as
    /// `Authorization: Bearer` with `--daemon`.
    #[arg(long)]
    token_file: Option<PathBuf>,
}

/// Arguments of `drfailover ack`.
#[derive(clap::Args, Debug)]
pub struct AckArgs {
    /// The running orchestrator's HTTP address, e.g. `127.0.0.1:9090`.
    #[arg(long)]
    daemon: String,
    /// File holding the orchestrator's control token (its `control_token_file`).
    #[arg(long)]
    token_file: Option<PathBuf>,
}

/// Install the stderr logger: `level`, text or JSON lines. Sink failures (hooks, webhooks,
/// SNS, full queues) are reported through it.
fn install_logger(level: log::LevelFilter, json: bool) {
    let mut builder = env_logger::Builder::new();
    builder
        .filter_level(level)
        .target(env_logger::Target::Stderr);
    if json {
        builder.format(|out, record| {
            let line = serde_json::json!({
                "ts": out.timestamp_millis().to_string(),
                "level": record.level().as_str(),
                "target": record.target(),
                "message": record.args().to_string(),
            });
            writeln!(out, "{line}")
        });
    }
    let _ = builder.try_init();
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

/// Bind the control endpoint at `addr`: refused on a non-loopback address without a
/// control token (anyone who reaches it could otherwise read the topology and, were the
/// token optional, move the primary).
fn bind_control(addr: &str, config: &Config) -> Result<TcpListener, String> {
    let listener = TcpListener::bind(addr).map_err(|e| format!("cannot listen on {addr}: {e}"))?;
    let public = listener
        .local_addr()
        .map_or(true, |a| !a.ip().is_loopback());
    if public && config.control_token.is_none() {
        return Err(format!(
            "refusing to listen on {addr}: it is not a loopback address and no \
             control_token_file is configured (set one in [orchestrator], or listen on \
             127.0.0.1)"
        ));
    }
    if public {
        log::warn!(target: "drfailover", "listening on {addr}: the control token travels in clear text (plain HTTP): keep this network trusted");
    }
    Ok(listener)
}

/// `drfailover orchestrate CONFIG`: check the topology, then watch and act until Ctrl-C.
pub fn orchestrate(args: OrchestrateArgs) -> ExitCode {
    let config = match load(&args.config) {
        Ok(c) => c,
        Err(code) => return code,
    };
    install_logger(args.log_level, args.log_json);
    // The endpoint is checked and bound before anything else: a refusal changes nothing.
    let listener = match args.listen.clone().or_else(|| config.listen.clone()) {
        None => None,
        Some(addr) => match bind_control(&addr, &config) {
            Ok(l) => Some(l),
            Err(e) => {
                eprintln!("drfailover: {e}");
                return ExitCode::from(2);
            }
        },
    };
    let notifier = notifier(args.json);
    let sink_stats = match config.attach_sinks(&notifier) {
        Ok(stats) => stats,
        Err(e) => {
            eprintln!("drfailover: {e}");
            return ExitCode::from(2);
        }
    };
    let mut orch = Orchestrator::new(config, notifier.clone(), std::process::id() as u64);
    orch.set_sink_stats(sink_stats);
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
    let server = listener.map(|l| {
        let settings = &orch.config().settings;
        let answer_timeout = settings.catchup_timeout * 2;
        let endpoint = ControlEndpoint {
            snapshot: snapshot.clone(),
            requests: tx,
            token: orch.config().control_token.clone(),
            limits: Limits {
                answer_timeout,
                connection_timeout: answer_timeout
                    + settings.catchup_timeout
                    + settings.step_timeout * 10
                    + settings.announce_timeout * 4,
                ..Limits::default()
            },
        };
        let stop = stop.clone();
        std::thread::spawn(move || {
            if let Err(e) = http::serve(l, endpoint, stop) {
                log::error!(target: "drfailover", "HTTP endpoint stopped: {e}");
            }
        })
    });
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

fn token(path: Option<&Path>) -> Result<Option<ControlToken>, String> {
    path.map(|p| ControlToken::from_file(p).map_err(|e| format!("--token-file {e}")))
        .transpose()
}

/// POST to a running orchestrator (with the control token, if any); the body of its answer.
/// Blocks up to `timeout`.
fn post(
    daemon: &str,
    path: &str,
    token: Option<&ControlToken>,
    timeout: Duration,
) -> Result<String, String> {
    let url = if daemon.starts_with("http://") || daemon.starts_with("https://") {
        format!("{}{path}", daemon.trim_end_matches('/'))
    } else {
        format!("http://{daemon}{path}")
    };
    let shown = drfailover_notify::redact_url(daemon);
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into();
    let mut request = agent.post(&url);
    if let Some(t) = token {
        request = request.header("authorization", &format!("Bearer {}", t.expose()));
    }
    let mut answer = request
        .send_empty()
        .map_err(|e| format!("{shown}: {}", drfailover_notify::redact_url(&e.to_string())))?;
    let body = answer
        .body_mut()
        .with_config()
        .limit(1 << 20)
        .read_to_string()
        .map_err(|e| format!("{shown}: {e}"))?;
    if answer.status().is_success() {
        Ok(body.trim().to_string())
    } else {
        Err(format!("{} {}", answer.status().as_u16(), body.trim()))
    }
}

/// `drfailover switchover --to NODE`: through a running orchestrator (`--daemon`) or
/// directly (`--config`, taking the lock itself).
pub fn switchover(args: SwitchoverArgs) -> ExitCode {
    let result = match (&args.daemon, &args.config) {
        (Some(d), _) => token(args.token_file.as_deref()).and_then(|t| {
            let to =
                percent_encoding::utf8_percent_encode(&args.to, percent_encoding::NON_ALPHANUMERIC);
            post(
                d,
                &format!("/switchover?to={to}"),
                t.as_ref(),
                Duration::from_secs(300),
            )
        }),
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
    let answer = token(args.token_file.as_deref())
        .and_then(|t| post(&args.daemon, "/ack", t.as_ref(), Duration::from_secs(10)));
    match answer {
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
