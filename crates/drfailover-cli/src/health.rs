//! `drfailover health-server`: HTTP health checks that know MySQL roles, for load balancers
//! and DNS failover checks (the job Percona's clustercheck does).
//!
//! - `GET /writer`: 200 only if the node is up and writable; 503 otherwise.
//! - `GET /replica?max_lag=N`: 200 only if the node is an up replica with both threads
//!   running and lag ≤ N seconds (default 10); 503 otherwise.
//! - `GET /health`: 200 with JSON for every endpoint of the DSN.
//!
//! "The node" is the DSN's first endpoint (run one health-server next to each database).
//! Every request probes with a bounded deadline, so a hung database never hangs the check.

use std::io::{BufRead, BufReader, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drfailover_conn::Config;
use drfailover_probe::{Deadline, MonitorProbe, OutcomeClass};
use serde_json::json;

use crate::endpoints;

/// Arguments of `drfailover health-server`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Address to listen on, e.g. `0.0.0.0:9200`.
    #[arg(long)]
    listen: String,
    /// `mysql://user@host:port/db?password_env=VAR` — the first host is the node checked.
    dsn: String,
    /// Deadline of each probe in milliseconds.
    #[arg(long, default_value_t = 500)]
    timeout_ms: u64,
    /// Most requests handled at once; more get 503 at once.
    #[arg(long, default_value_t = 32)]
    max_concurrent: usize,
}

struct Server {
    config: Config,
    /// One reused monitor connection per endpoint.
    probes: Vec<Mutex<MonitorProbe>>,
    timeout: Duration,
    busy: AtomicUsize,
    max_concurrent: usize,
}

fn respond(stream: &mut TcpStream, status: u16, body: &str) {
    let reason = if status == 200 {
        "OK"
    } else if status == 404 {
        "Not Found"
    } else {
        "Service Unavailable"
    };
    let _ = write!(
        stream,
        "HTTP/1.1 {status} {reason}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
        body.len()
    );
}

impl Server {
    fn observe(&self, i: usize) -> drfailover_probe::Observation {
        let mut probe = self.probes[i].lock().unwrap_or_else(|e| e.into_inner());
        probe.role(Deadline::after(self.timeout))
    }

    fn handle(&self, mut stream: TcpStream) {
        let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
        let mut line = String::new();
        if BufReader::new(&stream).read_line(&mut line).is_err() {
            return;
        }
        let target = line.split_whitespace().nth(1).unwrap_or("/").to_string();
        let (path, query) = target.split_once('?').unwrap_or((&target, ""));
        let node = &self.config.endpoints[0];
        match path {
            "/writer" => {
                let obs = self.observe(0);
                let body = endpoints::to_json(node, &obs).to_string();
                respond(&mut stream, if obs.writable() { 200 } else { 503 }, &body);
            }
            "/replica" => {
                let max_lag: u64 = query
                    .split('&')
                    .find_map(|kv| kv.strip_prefix("max_lag="))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(10);
                let obs = self.observe(0);
                let replication = obs.role.as_ref().and_then(|r| r.replication.as_ref());
                let ok = obs.class == OutcomeClass::ReadOnly
                    && replication.is_some_and(|r| {
                        r.io_running
                            && r.sql_running
                            && r.seconds_behind.is_some_and(|s| s <= max_lag)
                    });
                let body = endpoints::to_json(node, &obs).to_string();
                respond(&mut stream, if ok { 200 } else { 503 }, &body);
            }
            "/health" => {
                let list: Vec<_> = (0..self.config.endpoints.len())
                    .map(|i| endpoints::to_json(&self.config.endpoints[i], &self.observe(i)))
                    .collect();
                respond(&mut stream, 200, &json!({ "endpoints": list }).to_string());
            }
            _ => respond(
                &mut stream,
                404,
                "{\"error\":\"try /writer, /replica?max_lag=N or /health\"}",
            ),
        }
    }
}

/// Serve until Ctrl-C; exit 2 for a bad DSN or address.
pub fn run(args: Args) -> ExitCode {
    let config = match endpoints::config("health-server", &args.dsn) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let listener = match TcpListener::bind(&args.listen) {
        Ok(l) => l,
        Err(e) => {
            eprintln!(
                "drfailover health-server: cannot listen on {}: {e}",
                args.listen
            );
            return ExitCode::from(2);
        }
    };
    let server = Arc::new(Server {
        probes: config
            .endpoints
            .iter()
            .map(|e| Mutex::new(endpoints::monitor(&config, e)))
            .collect(),
        config,
        timeout: Duration::from_millis(args.timeout_ms),
        busy: AtomicUsize::new(0),
        max_concurrent: args.max_concurrent.max(1),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    let _ = listener.set_nonblocking(true);
    eprintln!(
        "drfailover health-server: listening on {} for {} (/writer, /replica?max_lag=N, /health)",
        args.listen, server.config.endpoints[0]
    );
    while !stop.load(Ordering::SeqCst) {
        match listener.accept() {
            Ok((mut stream, _)) => {
                let _ = stream.set_nonblocking(false);
                if server.busy.fetch_add(1, Ordering::SeqCst) >= server.max_concurrent {
                    server.busy.fetch_sub(1, Ordering::SeqCst);
                    respond(&mut stream, 503, "{\"error\":\"busy\"}");
                    continue;
                }
                let server = server.clone();
                std::thread::spawn(move || {
                    server.handle(stream);
                    server.busy.fetch_sub(1, Ordering::SeqCst);
                });
            }
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => {
                std::thread::sleep(Duration::from_millis(5))
            }
            Err(_) => std::thread::sleep(Duration::from_millis(5)),
        }
    }
    ExitCode::SUCCESS
}
