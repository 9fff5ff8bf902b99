//! `drfailover`: see what the library sees, and watch a real failover happen.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod demo;
mod probe;

/// Failover-aware MySQL/MariaDB client: command-line tools.
#[derive(Parser, Debug)]
#[command(name = "drfailover", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Start a throwaway primary + replica on loopback, write through the library, kill -9 the
    /// primary, promote the replica, and print the failover timeline.
    Demo(demo::Args),
    /// Probe every endpoint of a DSN once: role, latency, outcome class.
    Probe(probe::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Demo(args) => demo::run(args),
        Command::Probe(args) => probe::run(args),
    }
}
