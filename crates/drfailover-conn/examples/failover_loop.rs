//! Write through a failover-aware client for a while, printing events as they happen.
//! Kill the primary and promote the replica while it runs to watch it follow the writer
//! (`scripts/lab up` starts servers that stay up and prints the commands for both).
//!
//!     cargo run -p drfailover-conn --example failover_loop -- \
//!         'mysql://app@db1:3306,db2:3306/app?password_env=MYSQL_PWD' [SECONDS]

use std::time::{Duration, Instant};

use drfailover_conn::{Client, Config, Error};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let dsn = args.first().ok_or("usage: failover_loop DSN [SECONDS]")?;
    let seconds: f64 = args.get(1).map_or(Ok(3.0), |s| s.parse())?;
    let client = Client::builder(Config::from_dsn(dsn)?)
        .on_event(|e| println!("event: {}", e.summary()))
        .connect()?;
    client.wait_ready(Duration::from_secs(5))?;
    client.query("CREATE TABLE IF NOT EXISTS failover_loop (id BIGINT PRIMARY KEY AUTO_INCREMENT, at TIMESTAMP(6))")?;
    let (mut ok, mut unknown) = (0u64, 0u64);
    let until = Instant::now() + Duration::from_secs_f64(seconds);
    while Instant::now() < until {
        match client.query("INSERT INTO failover_loop (at) VALUES (NOW(6))") {
            Ok(_) => ok += 1,
            Err(Error::OutcomeUnknown(e)) => {
                unknown += 1;
                println!("outcome unknown (not replayed): {e}");
            }
            Err(e) => return Err(e.into()),
        }
    }
    let stats = client.stats();
    println!(
        "{ok} writes acknowledged, {unknown} outcome unknown; writer {:?}, failovers {}",
        client.state().writer.map(|w| w.to_string()),
        stats.failovers
    );
    Ok(())
}
