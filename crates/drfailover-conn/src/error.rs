use std::time::Duration;

/// Everything a [`crate::Client`] call can fail with.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The DSN or a configuration value is malformed; the message names the offending part.
    #[error("configuration error: {0}")]
    Config(String),
    /// The server rejected the credentials (1045/1698). Not retried in a loop.
    #[error("authentication failed: {0}")]
    Auth(drfailover_mysql::Error),
    /// TLS could not be established or the server certificate did not verify
    /// (`ssl_mode`, `ssl_ca`). Not retried in a loop.
    #[error("TLS failed: {0}")]
    Tls(drfailover_mysql::Error),
    /// No writable node became available within the caller's budget.
    #[error("no writer available after {waited:?}{}", last.as_ref().map(|l| format!(": {l}")).unwrap_or_default())]
    NoWriter {
        /// How long the call waited.
        waited: Duration,
        /// The last error seen while waiting, if any, exactly as the server or client library
        /// reported it (e.g. 1290 when the old writer rejected the write as read-only); its
        /// errno and SQLSTATE are this error's [`Error::errno`] and [`Error::sqlstate`].
        last: Option<drfailover_mysql::Error>,
    },
    /// Every pooled connection stayed leased for the whole wait while a writer was available
    /// (the pool is too small for the load, or leases are not given back).
    #[error("all {pool_size} pool connections stayed in use for {waited:?} (the writer is up)")]
    PoolTimeout {
        /// How long the call waited.
        waited: Duration,
        /// The pool's size (`pool_size`).
        pool_size: usize,
    },
    /// The connection died after the statement was sent: it may or may not have run. Never
    /// replayed (unless marked idempotent).
    #[error("outcome unknown: the connection was lost after the statement was sent: {0}")]
    OutcomeUnknown(drfailover_mysql::Error),
    /// The server returned an error for the statement (SQL error, lock timeout, …).
    #[error("{0}")]
    Server(drfailover_mysql::Error),
    /// The statement left an explicit transaction open on a pooled connection; it was rolled
    /// back. Use a leased connection for explicit transactions.
    #[error(
        "explicit transactions need a leased connection; the open transaction was rolled back"
    )]
    TransactionNotAllowed,
    /// The client was closed.
    #[error("client is closed")]
    Closed,
    /// An operating-system resource (a thread) could not be created.
    #[error("system error: {0}")]
    System(String),
}

impl Error {
    /// The MySQL errno behind the error, unchanged from the server or client library, or 0.
    pub fn errno(&self) -> u32 {
        self.mysql_error().map_or(0, |e| e.errno())
    }

    /// The SQLSTATE behind the error, unchanged, or `HY000` (general error) when there is no
    /// MySQL error behind it.
    pub fn sqlstate(&self) -> &str {
        self.mysql_error().map_or("HY000", |e| e.sqlstate())
    }

    fn mysql_error(&self) -> Option<&drfailover_mysql::Error> {
        match self {
            Error::Auth(e) | Error::Tls(e) | Error::OutcomeUnknown(e) | Error::Server(e) => Some(e),
            Error::NoWriter { last, .. } => last.as_ref(),
            _ => None,
        }
    }
}
