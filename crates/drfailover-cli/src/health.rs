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

use std::net::TcpListener;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use drfailover_conn::Config;
use drfailover_http::{with_type, StatusCode};
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

/// A request's place among the `max_concurrent`, released when it ends (also on panic).
struct Place(Arc<Server>);

impl Drop for Place {
    fn drop(&mut self) {
        self.0.busy.fetch_sub(1, Ordering::SeqCst);
    }
}

fn json_answer(ok: bool, body: String) -> drfailover_http::Response {
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    with_type(status, "application/json", body)
}

impl Server {
    fn observe(&self, i: usize) -> drfailover_probe::Observation {
        let mut probe = self.probes[i].lock().unwrap_or_else(|e| e.into_inner());
        probe.role(Deadline::after(self.timeout))
    }

    /// A place among the `max_concurrent` requests, if one is free.
    fn place(self: &Arc<Self>) -> Option<Place> {
        let taken = self.busy.fetch_add(1, Ordering::SeqCst);
        let place = Place(self.clone());
        (taken < self.max_concurrent).then_some(place)
    }

    /// Answer `path?query`. Blocks for the probes (each within the probe deadline).
    fn answer(&self, path: &str, query: &str) -> drfailover_http::Response {
        let node = &self.config.endpoints[0];
        match path {
            "/writer" => {
                let obs = self.observe(0);
                json_answer(obs.writable(), endpoints::to_json(node, &obs).to_string())
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
                json_answer(ok, endpoints::to_json(node, &obs).to_string())
            }
            "/health" => {
                let list: Vec<_> = (0..self.config.endpoints.len())
                    .map(|i| endpoints::to_json(&self.config.endpoints[i], &self.observe(i)))
                    .collect();
                json_answer(true, json!({ "endpoints": list }).to_string())
            }
            _ => with_type(
                StatusCode::NOT_FOUND,
                "application/json",
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
    let timeout = Duration::from_millis(args.timeout_ms);
    let server = Arc::new(Server {
        probes: config
            .endpoints
            .iter()
            .map(|e| Mutex::new(endpoints::monitor(&config, e)))
            .collect(),
        config,
        timeout,
        busy: AtomicUsize::new(0),
        max_concurrent: args.max_concurrent.max(1),
    });
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    eprintln!(
        "drfailover health-server: listening on {} for {} (/writer, /replica?max_lag=N, /health)",
        args.listen, server.config.endpoints[0]
    );
    // A request probes each endpoint at most once, each within `timeout`.
    let probes = u32::try_from(server.config.endpoints.len()).unwrap_or(u32::MAX);
    let limits = drfailover_http::Limits {
        head_timeout: Duration::from_secs(2),
        connection_timeout: Duration::from_secs(10) + timeout.saturating_mul(probes),
        ..drfailover_http::Limits::default()
    };
    let served = drfailover_http::serve(listener, limits, stop, move |req| {
        let server = server.clone();
        let path = req.uri().path().to_string();
        let query = req.uri().query().unwrap_or("").to_string();
        async move {
            let Some(place) = server.place() else {
                return json_answer(false, "{\"error\":\"busy\"}".to_string());
            };
            drfailover_http::run_blocking(move || place.0.answer(&path, &query))
                .await
                .unwrap_or_else(|| {
                    json_answer(false, "{\"error\":\"the check failed\"}".to_string())
                })
        }
    });
    if let Err(e) = served {
        eprintln!("drfailover health-server: {e}");
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}
