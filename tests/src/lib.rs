//! Test harness: real `mariadbd` topologies on loopback, with fault injection.
//!
//! [`Topology::primary_replica`] starts a primary and a replica (GTID replication, semi-sync
//! with `AFTER_SYNC`, an app user with table privileges only) in a temporary directory, each
//! node on its own loopback address and the same port. Operations: kill -9, SIGSTOP/SIGCONT,
//! restart (optionally as a replica of the other node), promote, fence.
//!
//! Everything is torn down when the [`Topology`] drops — also when a test panics — and every
//! `mariadbd` is started with `PR_SET_PDEATHSIG=SIGKILL` from a long-lived spawner thread, so
//! even a test process killed outright leaves no server behind.
//!
//! Missing MariaDB is an error with a clear message, never a skip. Tests wait on conditions
//! with [`eventually`] and [`EventLog`], never with fixed sleeps before assertions.

mod addr;
pub mod bind;
pub mod cprog;
mod direct;
pub mod dnsmasq;
pub mod http_recorder;
pub mod metadata_server;
pub mod moto;
mod netns;
mod node;
mod primary_fault;
pub mod program;
mod require;
mod spawner;
pub mod tls;
mod topology;
pub mod wait;
mod writes;

pub use addr::free_loopback_port;
pub use direct::{DirectAck, DirectWriter};
pub use netns::Lab;
pub use node::{Node, NodeRole};
pub use primary_fault::PrimaryFault;
pub use require::{mariadb_binaries, MariaDbBinaries};
pub use spawner::detach_servers;
pub use topology::{
    Topology, ADMIN_PASSWORD, ADMIN_USER, APP_DATABASE, APP_PASSWORD, APP_USER, REPL_PASSWORD,
    REPL_USER,
};
pub use wait::{eventually, EventLog};
pub use writes::{WriteLedger, WriteOutcome, Writers};

/// Write an executable shell script (mode 0755) to `path`, for hook tests.
pub fn write_script(path: &std::path::Path, body: impl AsRef<str>) -> std::io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::write(path, body.as_ref())?;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755))
}
