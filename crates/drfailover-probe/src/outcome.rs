use std::time::Duration;

use drfailover_mysql::{Error, ErrorClass};

/// What a probe found, in classes the rest of the library acts on without parsing strings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum OutcomeClass {
    /// Alive and writable.
    Up,
    /// Alive and read-only (`@@read_only=1` or `@@innodb_read_only=1`).
    ReadOnly,
    /// Alive, a replica, lagging beyond the configured limit.
    Lagging,
    /// Connection refused (RST): nothing listens — the process is gone.
    Refused,
    /// An established connection was closed or reset mid-probe.
    ConnectionLost,
    /// The deadline expired (frozen server, dropped packets).
    TimedOut,
    /// The server answered something that is not MySQL protocol.
    ProtocolError,
    /// Credentials rejected (1045/1698): a configuration problem, not a dead node.
    AuthFailed,
    /// TLS failed or the server certificate did not verify (2026): a configuration problem
    /// (or an impostor), not a dead node.
    TlsFailed,
    /// The server is out of connection slots (1040).
    TooManyConnections,
    /// The endpoint's host name did not resolve (no answer within the DNS deadline, no such
    /// name, no address): there is no address to probe, so it counts as down at once.
    Unresolved,
}

impl OutcomeClass {
    /// The node answered as a live MySQL server.
    pub fn is_alive(self) -> bool {
        matches!(
            self,
            OutcomeClass::Up | OutcomeClass::ReadOnly | OutcomeClass::Lagging
        )
    }

    /// A failure that proves the node is gone (no need to wait for more failures).
    pub fn is_hard_failure(self) -> bool {
        matches!(
            self,
            OutcomeClass::Refused | OutcomeClass::ConnectionLost | OutcomeClass::Unresolved
        )
    }

    /// Stable lower-case name, for logs, events and JSON.
    pub fn as_str(self) -> &'static str {
        match self {
            OutcomeClass::Up => "up",
            OutcomeClass::ReadOnly => "read_only",
            OutcomeClass::Lagging => "lagging",
            OutcomeClass::Refused => "refused",
            OutcomeClass::ConnectionLost => "connection_lost",
            OutcomeClass::TimedOut => "timed_out",
            OutcomeClass::ProtocolError => "protocol_error",
            OutcomeClass::AuthFailed => "auth_failed",
            OutcomeClass::TlsFailed => "tls_failed",
            OutcomeClass::TooManyConnections => "too_many_connections",
            OutcomeClass::Unresolved => "unresolved",
        }
    }

    /// The class of a client error: its [`ErrorClass`] (the one errno table, owned by
    /// drfailover-mysql) and, for a failed connect, the OS errno (refused = RST).
    pub fn from_error(e: &Error) -> OutcomeClass {
        if e.refused() {
            return OutcomeClass::Refused;
        }
        OutcomeClass::from_class(e.class())
    }

    /// The outcome a failure of class `class` means for a probe.
    pub fn from_class(class: ErrorClass) -> OutcomeClass {
        match class {
            ErrorClass::Timeout => OutcomeClass::TimedOut,
            ErrorClass::Auth => OutcomeClass::AuthFailed,
            ErrorClass::Tls => OutcomeClass::TlsFailed,
            ErrorClass::TooManyConnections => OutcomeClass::TooManyConnections,
            ErrorClass::ReadOnly => OutcomeClass::ReadOnly,
            ErrorClass::ConnectionLost => OutcomeClass::ConnectionLost,
            _ => OutcomeClass::ProtocolError,
        }
    }
}

impl std::fmt::Display for OutcomeClass {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What a role probe read from a node.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Role {
    /// `@@read_only`.
    pub read_only: bool,
    /// `@@innodb_read_only` (false where the variable does not exist).
    pub innodb_read_only: bool,
    /// `@@gtid_current_pos` (MariaDB), if available.
    pub gtid_position: Option<String>,
    /// `@@rpl_semi_sync_master_enabled`: whether the node is configured as a semi-sync
    /// primary. (Whether semi-sync is *active* right now is a status variable, and reading
    /// global status costs the server a pass over every connection, so probes do not.)
    pub semi_sync_master: Option<bool>,
    /// Replica status, when the node replicates and the user may see it (`SLAVE MONITOR`).
    pub replication: Option<Replication>,
}

/// Replica status from `SHOW SLAVE STATUS`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Replication {
    /// `Slave_IO_Running = Yes`.
    pub io_running: bool,
    /// `Slave_SQL_Running = Yes`.
    pub sql_running: bool,
    /// `Seconds_Behind_Master` (`None` when NULL, e.g. the SQL thread is stopped).
    pub seconds_behind: Option<u64>,
    /// `Gtid_IO_Pos`.
    pub gtid_io_position: Option<String>,
}

impl Role {
    /// Writable: neither flag set.
    pub fn writable(&self) -> bool {
        !self.read_only && !self.innodb_read_only
    }
}

/// One probe's result: class, latency, role when alive, and a human detail (never secrets).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Observation {
    /// The outcome class.
    pub class: OutcomeClass,
    /// Time the probe took.
    pub latency: Duration,
    /// Role variables, when the probe read them.
    pub role: Option<Role>,
    /// What happened, e.g. the server error message.
    pub detail: String,
    /// The client error behind a failed probe (typed: errno, SQLSTATE, class, OS errno), when
    /// it came from the MySQL client; `None` for successes and pure-Rust probes.
    pub error: Option<Error>,
}

impl Observation {
    /// Whether this observation shows a live, writable node.
    pub fn writable(&self) -> bool {
        self.class == OutcomeClass::Up && self.role.as_ref().is_some_and(Role::writable)
    }
}
