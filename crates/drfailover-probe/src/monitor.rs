//! Probes on a dedicated, reused monitor connection: ping, query, role.

use std::time::{Duration, Instant};

use drfailover_mysql::{ConnectOptions, Connection, Deadline, Error, QueryResult};

use crate::{Observation, OutcomeClass, Replication, Role};

/// Role variables in one round trip (MariaDB). Unknown variables (MySQL) fall back below.
///
/// System variables only: any read of global *status* (`information_schema.GLOBAL_STATUS`,
/// `SHOW GLOBAL STATUS`) makes the server sum every connection's counters under the lock that
/// new connections also take, so with hundreds of clients probing, logins stall (measured: a
/// restarted primary filled up with 2000 stuck logins; see the reconnect storm benchmark).
const ROLE_SQL: &str = "SELECT @@global.read_only, @@global.innodb_read_only, \
     @@global.gtid_current_pos, @@global.rpl_semi_sync_master_enabled";
const ROLE_SQL_PORTABLE: &str = "SELECT @@global.read_only, @@global.innodb_read_only, NULL, NULL";
const ROLE_SQL_MINIMAL: &str = "SELECT @@global.read_only, 0, NULL, NULL";

/// Authenticated probes of one endpoint over a dedicated monitor connection, opened on first
/// use and reused across probes (reopened only after a failure). Every call is bounded by a
/// millisecond [`Deadline`]. `Send`; use from one thread at a time.
#[derive(Debug)]
pub struct MonitorProbe {
    options: ConnectOptions,
    conn: Option<Connection>,
    role_sql: &'static str,
    replication_visible: bool,
    max_lag: Option<Duration>,
}

impl MonitorProbe {
    /// A probe for the server `options` points at. Does not connect until the first probe.
    pub fn new(options: ConnectOptions) -> Self {
        MonitorProbe {
            options,
            conn: None,
            role_sql: ROLE_SQL,
            replication_visible: true,
            max_lag: None,
        }
    }

    /// Classify a replica as [`OutcomeClass::Lagging`] when its lag exceeds `max_lag`, or when
    /// its replication threads are stopped (builder style).
    pub fn max_lag(mut self, max_lag: Duration) -> Self {
        self.max_lag = Some(max_lag);
        self
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

    /// Whether the monitor connection is currently open.
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
    }

    fn connection(&mut self, deadline: Deadline) -> Result<&mut Connection, Error> {
        if self.conn.is_none() {
            self.conn = Some(Connection::connect_within(&self.options, deadline)?);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    fn observe<T>(
        &mut self,
        deadline: Deadline,
        body: impl FnOnce(&mut Self, Deadline) -> Result<T, Error>,
        classify: impl FnOnce(&T) -> (OutcomeClass, Option<Role>, String),
    ) -> Observation {
        let started = Instant::now();
        let result = body(self, deadline);
        let latency = started.elapsed();
        match result {
            Ok(value) => {
                let (class, role, detail) = classify(&value);
                Observation {
                    class,
                    latency,
                    role,
                    detail,
                }
            }
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

    /// Authenticated ping (`mysql_ping`) on the monitor connection.
    pub fn ping(&mut self, deadline: Deadline) -> Observation {
        self.observe(
            deadline,
            |p, d| p.connection(d)?.ping_within(d),
            |_| (OutcomeClass::Up, None, String::new()),
        )
    }

    /// Run `sql` (e.g. `SELECT 1`) on the monitor connection; up when it succeeds.
    pub fn query(&mut self, sql: &str, deadline: Deadline) -> Observation {
        self.observe(
            deadline,
            |p, d| p.connection(d)?.query_within(sql, d),
            |r: &QueryResult| (OutcomeClass::Up, None, format!("{} rows", r.num_rows())),
        )
    }

    /// Read the node's role: `read_only`, `innodb_read_only`, GTID position, semi-sync
    /// master status, and (when the user may see it: `SLAVE MONITOR`) replica status and lag.
    /// Two round trips on the monitor connection.
    pub fn role(&mut self, deadline: Deadline) -> Observation {
        let max_lag = self.max_lag;
        self.observe(
            deadline,
            |p, d| p.read_role(d),
            |role: &Role| {
                let class = classify_role(role, max_lag);
                let detail = match &role.replication {
                    Some(r) => format!(
                        "replica io={} sql={} lag={}",
                        r.io_running,
                        r.sql_running,
                        r.seconds_behind.map_or("NULL".into(), |s| format!("{s}s"))
                    ),
                    None => String::new(),
                };
                (class, Some(role.clone()), detail)
            },
        )
    }

    fn read_role(&mut self, deadline: Deadline) -> Result<Role, Error> {
        let mut role = loop {
            let sql = self.role_sql;
            match self.connection(deadline)?.query_within(sql, deadline) {
                // Unknown system variable or table: a server without MariaDB's extras.
                Err(e) if e.errno() == 1193 || e.errno() == 1109 || e.errno() == 1146 => {
                    self.role_sql = match sql {
                        ROLE_SQL => ROLE_SQL_PORTABLE,
                        _ if sql == ROLE_SQL_PORTABLE => ROLE_SQL_MINIMAL,
                        _ => return Err(e),
                    };
                }
                other => break parse_role(&other?),
            }
        };
        if self.replication_visible {
            match self
                .connection(deadline)?
                .query_within("SHOW SLAVE STATUS", deadline)
            {
                Ok(status) => role.replication = parse_replication(&status),
                // No SLAVE MONITOR / REPLICATION CLIENT privilege: role without lag.
                Err(e) if e.errno() == 1227 => self.replication_visible = false,
                Err(e) => return Err(e),
            }
        }
        Ok(role)
    }
}

fn parse_role(r: &QueryResult) -> Role {
    let flag = |col| r.text(0, col).is_some_and(|v| v != "0" && v != "OFF");
    Role {
        read_only: flag(0),
        innodb_read_only: flag(1),
        gtid_position: r.text(0, 2).map(str::to_string),
        semi_sync_master: r.text(0, 3).map(|v| v == "1" || v == "ON"),
        replication: None,
    }
}

fn parse_replication(status: &QueryResult) -> Option<Replication> {
    if status.num_rows() == 0 {
        return None;
    }
    let text = |name: &str| status.column(name).and_then(|c| status.text(0, c));
    Some(Replication {
        io_running: text("Slave_IO_Running") == Some("Yes"),
        sql_running: text("Slave_SQL_Running") == Some("Yes"),
        seconds_behind: text("Seconds_Behind_Master").and_then(|v| v.parse().ok()),
        gtid_io_position: text("Gtid_IO_Pos").map(str::to_string),
    })
}

/// Up (writable), ReadOnly, or Lagging (a replica beyond `max_lag` or with stopped threads).
fn classify_role(role: &Role, max_lag: Option<Duration>) -> OutcomeClass {
    if let (Some(limit), Some(r)) = (max_lag, &role.replication) {
        let behind = match r.seconds_behind {
            Some(s) => Duration::from_secs(s) > limit,
            None => true,
        };
        if !r.io_running || !r.sql_running || behind {
            return OutcomeClass::Lagging;
        }
    }
    if role.writable() {
        OutcomeClass::Up
    } else {
        OutcomeClass::ReadOnly
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(lag: Option<u64>, sql: bool) -> Role {
        Role {
            read_only: true,
            replication: Some(Replication {
                io_running: true,
                sql_running: sql,
                seconds_behind: lag,
                gtid_io_position: None,
            }),
            ..Role::default()
        }
    }

    #[test]
    fn lag_classification() {
        let limit = Some(Duration::from_secs(5));
        assert_eq!(
            classify_role(&replica(Some(1), true), limit),
            OutcomeClass::ReadOnly
        );
        assert_eq!(
            classify_role(&replica(Some(9), true), limit),
            OutcomeClass::Lagging
        );
        assert_eq!(
            classify_role(&replica(None, false), limit),
            OutcomeClass::Lagging
        );
        assert_eq!(
            classify_role(&replica(Some(9), true), None),
            OutcomeClass::ReadOnly
        );
        assert_eq!(classify_role(&Role::default(), limit), OutcomeClass::Up);
    }
}
