//! `drfailover probe DSN`: one-shot health check of every endpoint.

use std::process::ExitCode;
use std::time::Duration;

use drfailover_conn::Config;
use drfailover_probe::{Deadline, MonitorProbe};

/// Arguments of `drfailover probe`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// `mysql://user[:password]@host1:port,host2:port/db?key=value…` (password_env=VAR keeps
    /// the password off the command line).
    dsn: String,
    /// Deadline of each probe in milliseconds.
    #[arg(long, default_value_t = 500)]
    timeout_ms: u64,
}

/// Exit 0 when a writable endpoint was found, 1 when not, 2 for a usage or config error.
pub fn run(args: Args) -> ExitCode {
    let config = match Config::from_dsn(&args.dsn) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("drfailover probe: {e}");
            return ExitCode::from(2);
        }
    };
    println!(
        "{:<28} {:<22} {:>10}  DETAIL",
        "ENDPOINT", "OUTCOME", "LATENCY"
    );
    let mut writer = false;
    for endpoint in &config.endpoints {
        let mut opts = drfailover_mysql::ConnectOptions::tcp(endpoint.host.clone(), endpoint.port)
            .user(config.user.clone())
            .password(config.password.clone());
        opts.database = config.database.clone();
        let obs =
            MonitorProbe::new(opts).role(Deadline::after(Duration::from_millis(args.timeout_ms)));
        writer |= obs.writable();
        println!(
            "{:<28} {:<22} {:>8.2}ms  {}",
            endpoint.to_string(),
            obs.class.as_str(),
            obs.latency.as_secs_f64() * 1000.0,
            obs.detail
        );
    }
    if writer {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}
