//! `drfailover`: see what the library sees, and watch a real failover happen.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod dns;
mod endpoints;
mod health;
mod orchestrate;
mod probe;
mod watch;

/// Failover-aware MySQL/MariaDB client: command-line tools.
#[derive(Parser, Debug)]
#[command(name = "drfailover", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// The narrated failover demo is a program of its own: run `scripts/demo` (or
    /// `cargo run -p drfailover-demo -- --help`).
    #[command(hide = true, disable_help_flag = true)]
    Demo {
        /// Whatever was given (not used: the demo is `drfailover-demo`).
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Probe every endpoint of a DSN once: role, lag, latency, outcome class. Exit 0 when a
    /// writer was found, 1 when not, 2 for a usage or configuration error.
    Probe(probe::Args),
    /// Follow a DSN live: endpoint states, writer, generation and events as they happen.
    Watch(watch::Args),
    /// Serve HTTP health checks that know MySQL roles: /writer, /replica?max_lag=N, /health.
    HealthServer(health::Args),
    /// Show or set the DNS record(s) of the `[[announce]]` tables of an orchestrator's file.
    Dns(dns::Args),
    /// Run the orchestrator: detect a dead primary, promote the replica that has everything,
    /// fence the old primary, repoint the others, announce.
    Orchestrate(orchestrate::OrchestrateArgs),
    /// Show what the orchestrator sees (roles, positions, replication), once. Exit 0 when
    /// healthy.
    Topology(orchestrate::TopologyArgs),
    /// Planned switchover to a replica: no acknowledged write lost, clients see no failure.
    Switchover(orchestrate::SwitchoverArgs),
    /// Lift the anti-flapping block of a running orchestrator.
    Ack(orchestrate::AckArgs),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo { .. } => {
            eprintln!(
                "drfailover: the demo is a program of its own: run scripts/demo \
                 (or cargo run -p drfailover-demo -- --help)"
            );
            ExitCode::from(2)
        }
        Command::Probe(args) => probe::run(args),
        Command::Watch(args) => watch::run(args),
        Command::HealthServer(args) => health::run(args),
        Command::Dns(args) => dns::run(args),
        Command::Orchestrate(args) => orchestrate::orchestrate(args),
        Command::Topology(args) => orchestrate::topology(args),
        Command::Switchover(args) => orchestrate::switchover(args),
        Command::Ack(args) => orchestrate::ack(args),
    }
}
