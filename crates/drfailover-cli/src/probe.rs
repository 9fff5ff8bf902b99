//! `drfailover probe DSN`: one-shot health check of every endpoint.

use std::process::ExitCode;
use std::time::Duration;

use crate::endpoints;

/// Arguments of `drfailover probe`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `mysql://user@host1:port,host2:port/db?password_env=VAR` (keeps the password off the
    /// command line; an inline password also works and is never printed).
    dsn: String,
    /// Deadline of each probe in milliseconds.
    #[arg(long, default_value_t = 500)]
    timeout_ms: u64,
    /// Print JSON (one object with an `endpoints` array) instead of a table.
    #[arg(long)]
    json: bool,
}

/// Exit 0 when a writable endpoint was found, 1 when not, 2 for a usage or config error.
pub fn run(args: Args) -> ExitCode {
    let config = match endpoints::config("probe", &args.dsn) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    let timeout = Duration::from_millis(args.timeout_ms);
    let results: Vec<_> = config
        .endpoints
        .iter()
        .map(|e| (e, endpoints::probe(&config, e, timeout)))
        .collect();
    let writer = results.iter().any(|(_, o)| o.writable());
    if args.json {
        let list: Vec<_> = results
            .iter()
            .map(|(e, o)| endpoints::to_json(e, o))
            .collect();
        println!(
            "{}",
            serde_json::json!({ "writer_found": writer, "endpoints": list })
        );
    } else {
        println!(
            "{:<28} {:<10} {:<22} {:>10} {:>6}  DETAIL",
            "ENDPOINT", "ROLE", "OUTCOME", "LATENCY", "LAG"
        );
        for (e, o) in &results {
            println!(
                "{:<28} {:<10} {:<22} {:>8.2}ms {:>6}  {}",
                e.to_string(),
                endpoints::role_name(o),
                o.class.as_str(),
                o.latency.as_secs_f64() * 1000.0,
                endpoints::lag(o).map_or("-".into(), |l| format!("{l}s")),
                o.detail
            );
        }
    }
    if writer {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
