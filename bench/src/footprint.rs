//! Footprint: threads, resident memory and idle CPU per client, read from /proc/self.

use std::time::{Duration, Instant};

use drfailover_conn::Client;
use drfailover_testkit::Topology;

fn status_field(name: &str) -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

/// CPU time (user + system) of this process so far.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit_once(") ").map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of /proc/pid/stat (11 and 12 after the name).
    let ticks: u64 = [11, 12]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    Duration::from_secs_f64(ticks as f64 / 100.0) // USER_HZ is 100 on Linux
}

/// (threads, RSS KiB, idle CPU %) added per client, with `clients` clients each holding one
/// pooled connection, idle for `idle`.
pub fn per_client(topo: &Topology, clients: usize, idle: Duration) -> (f64, f64, f64) {
    let (threads0, rss0) = (status_field("Threads:"), status_field("VmRSS:"));
    let list: Vec<Client> = (0..clients)
        .map(|_| {
            let c = Client::connect_dsn(&topo.dsn("")).expect("client");
            c.wait_ready(Duration::from_secs(10)).expect("writer");
            c.query("SELECT 1").expect("query");
            c
        })
        .collect();
    let (threads1, rss1) = (status_field("Threads:"), status_field("VmRSS:"));
    let cpu0 = cpu_time();
    let t = Instant::now();
    std::thread::sleep(idle);
    let cpu = cpu_time().saturating_sub(cpu0).as_secs_f64() / t.elapsed().as_secs_f64() * 100.0;
    drop(list);
    let n = clients as f64;
    (
        (threads1 as f64 - threads0 as f64) / n,
        (rss1 as f64 - rss0 as f64) / n,
        cpu / n,
    )
}
