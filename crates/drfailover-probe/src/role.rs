use std::time::Instant;

use drfailover_mysql::{ConnectOptions, Connection, Deadline};

use crate::{Observation, OutcomeClass, Role};

const ROLE_SQL: &str = "SELECT @@global.read_only, @@global.innodb_read_only";
const ROLE_SQL_NO_INNODB: &str = "SELECT @@global.read_only, 0";

/// An authenticated probe of one endpoint on a dedicated monitor connection that is reused
/// across probes (reopened only after a failure). `Send`; use from one thread.
#[derive(Debug)]
pub struct RoleProbe {
    options: ConnectOptions,
    conn: Option<Connection>,
    has_innodb_read_only: bool,
}

impl RoleProbe {
    /// A probe for the server `options` points at. Does not connect until the first probe.
    pub fn new(options: ConnectOptions) -> Self {
        RoleProbe {
            options,
            conn: None,
            has_innodb_read_only: true,
        }
    }

    /// The options this probe connects with.
    pub fn options(&self) -> &ConnectOptions {
        &self.options
    }

    /// Point the probe at a new address (after a DNS change); drops the monitor connection.
    pub fn retarget(&mut self, host: String, port: u16) {
        self.options.host = host;
        self.options.port = port;
        self.conn = None;
    }

    /// Probe once: connect if needed, then read the role. Blocks at most until `deadline`.
    /// Any failure drops the monitor connection so the next probe starts clean.
    pub fn probe(&mut self, deadline: Deadline) -> Observation {
        let started = Instant::now();
        let result = self.probe_inner(deadline);
        let latency = started.elapsed();
        match result {
            Ok(role) => Observation {
                class: if role.writable() {
                    OutcomeClass::Up
                } else {
                    OutcomeClass::ReadOnly
                },
                latency,
                role: Some(role),
                detail: String::new(),
            },
            Err(e) => {
                self.conn = None;
                Observation {
                    class: OutcomeClass::from_error(&e),
                    latency,
                    role: None,
                    detail: e.to_string(),
                }
            }
        }
    }

    fn probe_inner(&mut self, deadline: Deadline) -> Result<Role, drfailover_mysql::Error> {
        if self.conn.is_none() {
            self.conn = Some(Connection::connect_within(&self.options, deadline)?);
        }
        let conn = self.conn.as_mut().expect("connected above");
        let sql = if self.has_innodb_read_only {
            ROLE_SQL
        } else {
            ROLE_SQL_NO_INNODB
        };
        let result = match conn.query_within(sql, deadline) {
            Err(e) if e.errno() == 1193 && self.has_innodb_read_only => {
                // Unknown system variable: a server without innodb_read_only.
                self.has_innodb_read_only = false;
                conn.query_within(ROLE_SQL_NO_INNODB, deadline)?
            }
            other => other?,
        };
        let flag = |col| result.text(0, col).is_some_and(|v| v != "0");
        Ok(Role {
            read_only: flag(0),
            innodb_read_only: flag(1),
        })
    }
}
