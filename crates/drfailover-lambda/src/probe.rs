//! The database probe: one authenticated connection per node, kept between probes, reading
//! `@@read_only` and `@@innodb_read_only` (drfailover-probe's role probe). Each probe is
//! bounded by its deadline even against a frozen server.

use std::time::Duration;

use drfailover_mysql::{ConnectOptions, Secret};
use drfailover_probe::{Deadline, MonitorProbe, OutcomeClass};

use crate::config::DbEndpoint;
use crate::policy::DbSeen;

/// Probes one node. Holds one database connection once it has connected.
#[derive(Debug)]
pub struct DbProbe {
    probe: MonitorProbe,
    timeout: Duration,
    login_refused: bool,
}

impl DbProbe {
    /// A probe of `endpoint` as `user`. No I/O until [`DbProbe::check`].
    pub fn new(endpoint: &DbEndpoint, user: &str, password: &Secret, timeout: Duration) -> DbProbe {
        let mut options = ConnectOptions::tcp(endpoint.host.clone(), endpoint.port);
        options.user = user.to_string();
        options.password = password.clone();
        options.connect_timeout = timeout;
        DbProbe {
            probe: MonitorProbe::new(options),
            timeout,
            login_refused: false,
        }
    }

    /// Connect (when not connected), then read the node's role. Blocks for at most the probe
    /// timeout, cut at `until` when that comes first.
    pub fn check(&mut self, until: std::time::Instant) -> DbSeen {
        let deadline = Deadline::at(until.min(std::time::Instant::now() + self.timeout));
        let seen = self.probe.role(deadline);
        self.login_refused = seen.class == OutcomeClass::AuthFailed;
        match (seen.class, seen.role.as_ref()) {
            (OutcomeClass::Up, Some(role)) if role.writable() => DbSeen::Writable,
            (OutcomeClass::Up | OutcomeClass::ReadOnly | OutcomeClass::Lagging, Some(_)) => {
                DbSeen::ReadOnly
            }
            (class, _) => DbSeen::Unreachable(format!("{}: {}", class.as_str(), seen.detail)),
        }
    }

    /// Whether the server refused the account at the latest [`DbProbe::check`]. Pure.
    pub fn login_refused(&self) -> bool {
        self.login_refused
    }
}
