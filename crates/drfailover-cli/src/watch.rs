//! `drfailover watch DSN`: what the library sees, live.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use drfailover_conn::{Client, ClientState};

use crate::endpoints;

/// Arguments of `drfailover watch`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `mysql://user@host1:port,host2:port/db?password_env=VAR&probe_interval_ms=…`
    dsn: String,
    /// Stop after this many seconds (default: until Ctrl-C).
    #[arg(long)]
    duration_s: Option<f64>,
}

fn clock() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let secs = now.as_secs() % 86_400;
    format!(
        "{:02}:{:02}:{:02}.{:03}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60,
        now.subsec_millis()
    )
}

fn describe(state: &ClientState) -> String {
    let endpoints: Vec<String> = state
        .endpoints
        .iter()
        .map(|e| {
            format!(
                "{} {}{}",
                e.endpoint,
                e.health.as_str(),
                if e.writable { " (writable)" } else { "" }
            )
        })
        .collect();
    format!(
        "writer={} generation={} | {}",
        state
            .writer
            .as_ref()
            .map_or("none".into(), |w| w.to_string()),
        state.generation,
        endpoints.join(" | ")
    )
}

/// Print state changes and events until Ctrl-C; exit 0, or 2 for a bad DSN, 1 if the client
/// cannot start.
pub fn run(args: Args) -> ExitCode {
    let config = match endpoints::config("watch", &args.dsn) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    let flag = stop.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));
    let client = match Client::builder(config)
        .on_event(|e| println!("{} event  {}", clock(), e.summary()))
        .connect()
    {
        Ok(c) => c,
        Err(e) => {
            eprintln!("drfailover watch: {e}");
            return ExitCode::from(1);
        }
    };
    let until = args
        .duration_s
        .map(|s| std::time::Instant::now() + Duration::from_secs_f64(s));
    let mut last = String::new();
    while !stop.load(Ordering::SeqCst) && until.is_none_or(|u| std::time::Instant::now() < u) {
        let now = describe(&client.state());
        if now != last {
            println!("{} state  {now}", clock());
            last = now;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    let stats = client.stats();
    client.close();
    println!(
        "{} stopped: failovers={} probes={} dropped_events={}",
        clock(),
        stats.failovers,
        stats.probes,
        stats.events_dropped
    );
    ExitCode::SUCCESS
}
