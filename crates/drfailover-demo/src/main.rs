//! `drfailover-demo` (run by `scripts/demo`): start a throwaway primary + replica on loopback,
//! write through the library, kill -9 the primary, promote the replica (or let the
//! orchestrator do it), and print the failover timeline. It uses the test harness to start
//! the servers, so it is a program of its own: the `drfailover` binary never links the
//! harness.

use std::process::ExitCode;

use clap::Parser;

mod demo;

/// A real failover on local servers, narrated.
#[derive(Parser, Debug)]
#[command(name = "drfailover-demo", version, about, long_about = None)]
struct Cli {
    #[command(flatten)]
    args: demo::Args,
}

fn main() -> ExitCode {
    demo::run(Cli::parse().args)
}
