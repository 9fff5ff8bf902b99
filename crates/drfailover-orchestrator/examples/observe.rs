//! Print what the orchestrator sees of a topology (analysis, primary, every node), once,
//! changing nothing: `observe mysql://user@host1:port,host2:port/` (password in `MYSQL_PWD`).
//! Needs an account that may read replication status (`SLAVE MONITOR`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use drfailover_notify::Notifier;
use drfailover_orchestrator::{Config, Orchestrator};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::args()
        .nth(1)
        .ok_or("usage: observe mysql://user@host1:port,host2:port/")?;
    let rest = url
        .strip_prefix("mysql://")
        .ok_or("the URL starts with mysql://")?;
    let (user, hosts) = rest
        .split_once('@')
        .ok_or("the URL names a user: user@hosts")?;
    let user = user.split(':').next().unwrap_or(user);
    let hosts = hosts.split('/').next().unwrap_or(hosts);
    let mut text = format!("[credentials]\nuser = \"{user}\"\npassword_env = \"MYSQL_PWD\"\n");
    for (i, host) in hosts.split(',').enumerate() {
        let (h, p) = host.rsplit_once(':').unwrap_or((host, "3306"));
        text.push_str(&format!(
            "\n[[node]]\nname = \"node{}\"\nhost = \"{h}\"\nport = {p}\n",
            i + 1
        ));
    }
    let config = Config::parse(&text)?;
    let notifier = Arc::new(Notifier::new(16, 0, Instant::now())?);
    let mut orchestrator = Orchestrator::new(config, notifier.clone(), 0);
    orchestrator.observe_only();
    println!("{:#}", orchestrator.status_json());
    notifier.close(Duration::from_millis(100));
    Ok(())
}
