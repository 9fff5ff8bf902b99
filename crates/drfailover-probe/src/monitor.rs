//! Probes on a dedicated, reused monitor connection: ping, query, role.

use std::time::{Duration, Instant};

use drfailover_mysql::{
    ConnectOptions, Connection, Deadline, Done, Error, IoState, NonBlockingStep, PollSet,
    QueryResult, Ready, ReplicaStatus, Wait,
};

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

/// What a probe checks.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Check {
    /// Authenticated `mysql_ping`.
    Ping,
    /// Run a statement (e.g. `SELECT 1`); up when it succeeds.
    Query(String),
    /// Read the node's role ([`MonitorProbe::role`]).
    Role,
}

/// Progress of a probe driven step by step ([`MonitorProbe::start`]).
#[derive(Debug)]
pub enum Progress {
    /// Waiting on the monitor connection: call [`MonitorProbe::resume`] once it is ready,
    /// or [`MonitorProbe::expire`] when the probe's deadline passes first.
    Waiting(Wait),
    /// The probe ended.
    Finished(Observation),
}

/// Where a running probe is.
#[derive(Debug)]
enum Phase {
    Connecting,
    Ping,
    Query,
    RoleQuery,
    SlaveStatus(Role),
}

impl Phase {
    fn what(&self) -> &'static str {
        match self {
            Phase::Connecting => "connect",
            Phase::Ping => "ping",
            Phase::Query | Phase::RoleQuery | Phase::SlaveStatus(_) => "query",
        }
    }
}

#[derive(Debug)]
struct Run {
    check: Check,
    deadline: Deadline,
    started: Instant,
    phase: Phase,
}

/// Authenticated probes of one endpoint over a dedicated monitor connection, opened on first
/// use and reused across probes (reopened only after a failure). Every call is bounded by a
/// millisecond [`Deadline`]. `Send`; use from one thread at a time.
///
/// Two ways to run a probe: the blocking calls ([`MonitorProbe::ping`], [`MonitorProbe::query`],
/// [`MonitorProbe::role`]) block until the probe ends or its deadline passes; or step by step
/// ([`MonitorProbe::start`], [`MonitorProbe::resume`]) so one thread drives many probes at once
/// (see [`crate::ProbeSet`]).
#[derive(Debug)]
pub struct MonitorProbe {
    options: ConnectOptions,
    conn: Option<Connection>,
    role_sql: &'static str,
    replication_visible: bool,
    max_lag: Option<Duration>,
    run: Option<Run>,
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
            run: None,
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

    /// Log in with these credentials from the next login on (the open monitor connection, if
    /// any, stays). `cleartext`: allow the clear-text plugin (RDS IAM tokens). Never blocks.
    pub fn set_credentials(
        &mut self,
        user: String,
        password: drfailover_mysql::Secret,
        cleartext: bool,
    ) {
        self.options.user = user;
        self.options.password = password;
        self.options.cleartext_plugin = cleartext;
    }

    /// Point the probe at a new address (after a DNS change); drops the monitor connection
    /// and abandons a probe in progress (it never reports).
    pub fn retarget(&mut self, host: String, port: u16) {
        self.options.host = host;
        self.options.port = port;
        self.cancel();
    }

    /// Abandon the probe in progress, if any, and close the monitor connection. Never blocks.
    pub fn cancel(&mut self) {
        if let Some(conn) = self.conn.as_mut() {
            conn.abandon();
        }
        self.conn = None;
        self.run = None;
    }

    /// Whether the monitor connection is currently open (a probe then needs no login).
    pub fn is_connected(&self) -> bool {
        self.conn.is_some()
            && !matches!(
                self.run,
                Some(Run {
                    phase: Phase::Connecting,
                    ..
                })
            )
    }

    /// Whether a probe started with [`MonitorProbe::start`] is still running.
    pub fn is_running(&self) -> bool {
        self.run.is_some()
    }

    /// The deadline of the probe in progress.
    pub fn deadline(&self) -> Option<Deadline> {
        self.run.as_ref().map(|r| r.deadline)
    }

    /// Authenticated ping (`mysql_ping`) on the monitor connection. Blocks until `deadline`.
    pub fn ping(&mut self, deadline: Deadline) -> Observation {
        self.run_to_end(Check::Ping, deadline)
    }

    /// Run `sql` (e.g. `SELECT 1`) on the monitor connection; up when it succeeds. Blocks
    /// until `deadline`.
    pub fn query(&mut self, sql: &str, deadline: Deadline) -> Observation {
        self.run_to_end(Check::Query(sql.to_string()), deadline)
    }

    /// Read the node's role: `read_only`, `innodb_read_only`, GTID position, semi-sync
    /// master status, and (when the user may see it: `SLAVE MONITOR`) replica status and lag.
    /// Two round trips on the monitor connection. Blocks until `deadline`.
    pub fn role(&mut self, deadline: Deadline) -> Observation {
        self.run_to_end(Check::Role, deadline)
    }

    fn run_to_end(&mut self, check: Check, deadline: Deadline) -> Observation {
        let mut progress = self.start(check, deadline);
        let mut set = PollSet::new();
        loop {
            let wait = match progress {
                Progress::Finished(obs) => return obs,
                Progress::Waiting(wait) => wait,
            };
            set.clear();
            set.add_wait(wait);
            let left = deadline.remaining();
            if left.is_zero() {
                return self.expire();
            }
            let library = wait.library_timeout().filter(|t| *t < left);
            let n = match set.poll(Some(library.unwrap_or(left))) {
                Ok(n) => n,
                Err(e) => {
                    progress = self.fail(Error::connection_lost(format!("poll failed: {e}")));
                    continue;
                }
            };
            progress = match set.ready(0) {
                Some(ready) => self.resume(ready),
                None if n == 0 && library.is_some() => self.resume(Ready::timeout()),
                None => Progress::Waiting(wait),
            };
        }
    }

    /// Start a probe without blocking (connecting first if needed). A probe already running
    /// is abandoned. Drive it with [`MonitorProbe::resume`]; call [`MonitorProbe::expire`]
    /// when `deadline` passes before it finishes.
    pub fn start(&mut self, check: Check, deadline: Deadline) -> Progress {
        if self.run.is_some() {
            self.cancel();
        }
        let started = Instant::now();
        if deadline.expired() {
            return self.finish_err(started, Error::timeout("probe"));
        }
        let connecting = self.conn.is_none();
        self.run = Some(Run {
            check,
            deadline,
            started,
            phase: Phase::Connecting,
        });
        if connecting {
            match Connection::start_connect(&self.options) {
                Ok((conn, step)) => {
                    self.conn = Some(conn);
                    self.after(step)
                }
                Err(e) => self.fail(e),
            }
        } else {
            self.begin_check()
        }
    }

    /// Continue the running probe with what became ready. Never blocks.
    pub fn resume(&mut self, ready: Ready) -> Progress {
        let Some(conn) = self.conn.as_mut() else {
            return self.fail(Error::connection_lost("probe: no monitor connection"));
        };
        let step = conn.resume(ready);
        self.after(step)
    }

    /// The running probe's deadline passed: it ends as [`OutcomeClass::TimedOut`] and the
    /// monitor connection is closed. Never blocks.
    pub fn expire(&mut self) -> Observation {
        let what = self.run.as_ref().map_or("probe", |r| r.phase.what());
        if let Some(conn) = self.conn.as_mut() {
            conn.abandon();
        }
        match self.fail(Error::timeout(what)) {
            Progress::Finished(obs) => obs,
            Progress::Waiting(_) => unreachable!("a failure finishes the probe"),
        }
    }

    fn begin_check(&mut self) -> Progress {
        let (Some(run), Some(conn)) = (self.run.as_mut(), self.conn.as_mut()) else {
            return self.fail(Error::connection_lost("probe: no monitor connection"));
        };
        let step = match &run.check {
            Check::Ping => {
                run.phase = Phase::Ping;
                conn.start_ping()
            }
            Check::Query(sql) => {
                run.phase = Phase::Query;
                conn.start_query(sql)
            }
            Check::Role => {
                run.phase = Phase::RoleQuery;
                conn.start_query(self.role_sql)
            }
        };
        self.after(step)
    }

    /// Act on the end (or suspension) of one connection step.
    fn after(&mut self, step: NonBlockingStep) -> Progress {
        let result = match step {
            NonBlockingStep::Wait(wait) => return Progress::Waiting(wait),
            NonBlockingStep::Done(result) => result,
        };
        let Some(run) = self.run.as_mut() else {
            return self.fail(Error::invalid_argument("probe: not running"));
        };
        let phase = std::mem::replace(&mut run.phase, Phase::Connecting);
        match (phase, result) {
            (Phase::Connecting, Ok(_)) => self.begin_check(),
            (Phase::Ping, Ok(_)) => self.succeed(OutcomeClass::Up, None, String::new()),
            (Phase::Query, Ok(done)) => {
                let rows = match done {
                    Done::Rows(r) => r.num_rows(),
                    _ => 0,
                };
                self.succeed(OutcomeClass::Up, None, format!("{rows} rows"))
            }
            // Unknown system variable or table: a server without MariaDB's extras.
            (Phase::RoleQuery, Err(e))
                if (e.errno() == 1193 || e.errno() == 1109 || e.errno() == 1146)
                    && self.role_sql != ROLE_SQL_MINIMAL =>
            {
                self.role_sql = if self.role_sql == ROLE_SQL {
                    ROLE_SQL_PORTABLE
                } else {
                    ROLE_SQL_MINIMAL
                };
                self.begin_check()
            }
            (Phase::RoleQuery, Ok(done)) => {
                let role = match &done {
                    Done::Rows(r) => parse_role(r),
                    _ => Role::default(),
                };
                if !self.replication_visible {
                    return self.role_found(role);
                }
                let Some(conn) = self.conn.as_mut() else {
                    return self.fail(Error::connection_lost("probe: no monitor connection"));
                };
                let step = conn.start_query("SHOW SLAVE STATUS");
                if let Some(run) = self.run.as_mut() {
                    run.phase = Phase::SlaveStatus(role);
                }
                self.after(step)
            }
            (Phase::SlaveStatus(mut role), Ok(done)) => {
                if let Done::Rows(status) = &done {
                    role.replication = parse_replication(status);
                }
                self.role_found(role)
            }
            // No SLAVE MONITOR / REPLICATION CLIENT privilege: role without lag.
            (Phase::SlaveStatus(role), Err(e)) if e.errno() == 1227 => {
                self.replication_visible = false;
                self.role_found(role)
            }
            (_, Err(e)) => self.fail(e),
        }
    }

    fn role_found(&mut self, role: Role) -> Progress {
        let class = classify_role(&role, self.max_lag);
        let detail = match &role.replication {
            Some(r) => format!(
                "replica io={} sql={} lag={}",
                r.io_running,
                r.sql_running,
                r.seconds_behind.map_or("NULL".into(), |s| format!("{s}s"))
            ),
            None => String::new(),
        };
        self.succeed(class, Some(role), detail)
    }

    fn succeed(&mut self, class: OutcomeClass, role: Option<Role>, detail: String) -> Progress {
        let started = self.run.take().map_or_else(Instant::now, |r| r.started);
        Progress::Finished(Observation {
            class,
            latency: started.elapsed(),
            role,
            detail,
            error: None,
        })
    }

    fn fail(&mut self, e: Error) -> Progress {
        let started = self.run.as_ref().map_or_else(Instant::now, |r| r.started);
        self.finish_err(started, e)
    }

    fn finish_err(&mut self, started: Instant, e: Error) -> Progress {
        self.run = None;
        self.conn = None;
        Progress::Finished(Observation {
            class: OutcomeClass::from_error(&e),
            latency: started.elapsed(),
            role: None,
            detail: e.to_string(),
            error: Some(e),
        })
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
    let s = ReplicaStatus::first(status)?;
    Some(Replication {
        io_running: s.io == IoState::Running,
        sql_running: s.sql_running,
        seconds_behind: s.seconds_behind,
        gtid_io_position: status.column("Gtid_IO_Pos").map(|_| s.gtid_io_pos),
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
