//! Probe one server every way this crate knows, with 200 ms deadlines. Exit 0 when the
//! server answered as a live MySQL server (writable, read-only or lagging), 1 when it did not
//! (refused, timed out, credentials rejected…), 2 for a usage error.
//!
//!     MYSQL_PWD=secret cargo run -p drfailover-probe --example check -- 127.0.0.1:3306 app

use std::net::ToSocketAddrs;
use std::process::ExitCode;
use std::time::Duration;

use drfailover_mysql::ConnectOptions;
use drfailover_probe::handshake::probe_handshake;
use drfailover_probe::tcp::probe_tcp;
use drfailover_probe::{Deadline, MonitorProbe, Observation};

fn show(name: &str, obs: &Observation) {
    println!(
        "{name:<10} {:<20} {:>9.3} ms  {}",
        obs.class.as_str(),
        obs.latency.as_secs_f64() * 1e3,
        obs.detail
    );
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [addr, user, ..] = args.as_slice() else {
        eprintln!("usage: check HOST:PORT USER   (password in MYSQL_PWD)");
        return ExitCode::from(2);
    };
    match check(addr, user) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("check: {e}");
            ExitCode::from(2)
        }
    }
}

/// Runs every probe and prints what it saw; `Ok(true)` when the role probe found a live server.
fn check(addr: &str, user: &str) -> Result<bool, Box<dyn std::error::Error>> {
    let deadline = || Deadline::after(Duration::from_millis(200));
    let socket = addr.to_socket_addrs()?.next().ok_or("no address")?;
    show("tcp", &probe_tcp(socket, deadline()));
    let (obs, greeting) = probe_handshake(socket, deadline());
    show("handshake", &obs);
    if let Some(g) = greeting {
        println!(
            "           server {} connection id {}",
            g.server_version, g.connection_id
        );
    }
    let (host, port) = addr.rsplit_once(':').ok_or("HOST:PORT expected")?;
    let opts = ConnectOptions::tcp(host, port.parse()?)
        .user(user)
        .password(std::env::var("MYSQL_PWD").unwrap_or_default());
    let mut monitor = MonitorProbe::new(opts).max_lag(Duration::from_secs(10));
    show("ping", &monitor.ping(deadline()));
    show("query", &monitor.query("SELECT 1", deadline()));
    let role = monitor.role(deadline());
    show("role", &role);
    let alive = role.class.is_alive();
    if let Some(r) = role.role {
        println!(
            "           writable={} gtid={} semi_sync_master={:?} replica={:?}",
            r.writable(),
            r.gtid_position.unwrap_or_default(),
            r.semi_sync_master,
            r.replication
        );
    }
    Ok(alive)
}
