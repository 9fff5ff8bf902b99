//! Safe RAII wrapper over the MySQL / MariaDB C client (`mysqlclient-sys`).
//!
//! What it adds over the raw C API:
//! - [`Connection`] owns a `MYSQL *` and closes it on drop; it is `Send` (one thread at a
//!   time) but not `Sync`.
//! - Millisecond deadlines for connect and query ([`Connection::connect_within`],
//!   [`Connection::query_within`]) built on the MariaDB non-blocking API and `poll(2)`, so a
//!   server that accepts TCP and never answers cannot hang the caller.
//! - [`Connection::query_checked`] tells a statement that was never sent apart from one that was
//!   sent and then lost: the base of "never replay a write whose outcome is unknown".
//! - Many connections driven from one thread: [`Connection::start_connect`],
//!   [`Connection::start_query`], [`Connection::start_ping`] return a [`NonBlockingStep`]; a [`PollSet`]
//!   waits for many [`Wait`]s in one `poll(2)`, and [`Connection::resume`] continues each.
//! - [`AbortHandle`]: shut a connection's socket down from another thread so a call blocked in
//!   `read()` returns at once (in-flight abort).
//! - [`Error::class`]: MySQL/MariaDB errnos sorted into classes a failover layer acts on.
//! - [`ReplicaStatus`]: the one typed reading of `SHOW [ALL] SLAVES STATUS` rows.
//!
//! Blocking: every method that talks to the server blocks the calling thread; the `_within`
//! variants block at most until their deadline. Costs: one `MYSQL` handle (~ a few KiB) per
//! connection; results are copied once into a single buffer per result set.
//!
//! ```no_run
//! use drfailover_mysql::{ConnectOptions, Connection};
//! let opts = ConnectOptions::tcp("127.0.0.1", 3306).user("app").password("secret");
//! let mut conn = Connection::connect(&opts)?;
//! let result = conn.query("SELECT 1")?;
//! assert_eq!(result.value(0, 0), Some(&b"1"[..]));
//! # Ok::<(), drfailover_mysql::Error>(())
//! ```
#![allow(unsafe_code)] // This crate is the safe wrapper over the C client: unsafe lives here.

mod connection;
mod deadline;
mod error;
mod nonblocking;
mod options;
mod replica_status;
mod result;
mod socket;

pub use connection::{Connection, Done, NonBlockingStep, QueryFailure};
pub use deadline::Deadline;
pub use error::{classify as classify_errno, Error, ErrorClass};
pub use nonblocking::{PollSet, Ready, Wait};
pub use options::{ConnectOptions, Secret, SslMode};
pub use replica_status::{IoState, ReplicaStatus};
pub use result::QueryResult;
pub use socket::{AbortHandle, OwnedAbortHandle};

/// The version string of the linked C client library (e.g. `"10.11.19"` style for MariaDB
/// Connector/C it reports its own version). Cheap; does not block.
pub fn client_version() -> String {
    connection::client_info()
}

#[cfg(test)]
mod thread_safety {
    #[test]
    fn connection_moves_between_threads_and_results_are_shared() {
        fn sendable<T: Send>() {}
        fn shared<T: Send + Sync>() {}
        sendable::<crate::Connection>();
        shared::<crate::QueryResult>();
        shared::<crate::Error>();
        shared::<crate::AbortHandle>();
    }
}
