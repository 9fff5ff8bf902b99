//! I/O: one observation round — every node probed at the same time (one short-lived scoped
//! thread per node, each bounded by its own deadline), plus the leadership lock.
//!
//! Each node has a [`NodeLink`]: a reused admin connection for probes and actions, and a
//! separate session that holds the orchestrators' lock (`GET_LOCK`) on that node. The lock
//! session lives as long as the orchestrator; when the process dies the server releases it,
//! so another orchestrator can take over.

use std::sync::{Condvar, Mutex};
use std::time::{Duration, Instant};

use drfailover_mysql::{ConnectOptions, Connection, Deadline, Error, QueryResult, ReplicaStatus};
use drfailover_probe::OutcomeClass;

use crate::facts::{NodeFacts, NodeProbe, ReplicaFacts, Round};
use crate::gtid::{GtidPos, GtidState};

const FACTS_SQL: &str = "SELECT @@server_id, @@read_only, @@log_bin, @@gtid_strict_mode, \
     @@gtid_binlog_pos, @@gtid_binlog_state, @@gtid_slave_pos, @@gtid_current_pos, \
     @@rpl_semi_sync_master_enabled, @@rpl_semi_sync_master_wait_point, \
     @@rpl_semi_sync_slave_enabled, @@rpl_semi_sync_master_timeout";
/// Status variables are read on writable nodes only: reading global status walks every
/// connection under a lock logins also take (cheap for one orchestrator, not for thousands).
const SEMI_SYNC_STATUS_SQL: &str = "SELECT VARIABLE_NAME, VARIABLE_VALUE FROM \
     information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME IN \
     ('RPL_SEMI_SYNC_MASTER_STATUS', 'RPL_SEMI_SYNC_MASTER_CLIENTS')";

/// While another probe of the round is still running (a primary that does not answer), a
/// replica's status is read again this often, so that when its primary went silent is known
/// to this precision rather than to the round's.
const RESAMPLE: Duration = Duration::from_millis(20);

/// The connections to one node.
#[derive(Debug)]
pub struct NodeLink {
    options: ConnectOptions,
    conn: Option<Connection>,
    lock: Option<Connection>,
    /// Why the node's host name did not resolve (then it is never connected to).
    unresolved: Option<String>,
}

impl NodeLink {
    /// A link that connects with `options` on first use.
    pub fn new(options: ConnectOptions) -> NodeLink {
        NodeLink {
            options,
            conn: None,
            lock: None,
            unresolved: None,
        }
    }

    /// Resolve the node's host name once, within `timeout`, so that the client library
    /// only ever gets an address (its own lookup has no deadline). An IP address is kept
    /// as is. Blocks up to `timeout`; a lookup still running then is abandoned on its own
    /// thread (it ends when the system resolver gives up) and the node counts as
    /// unreachable (class `unresolved`).
    pub fn resolve(&mut self, timeout: Duration) -> Result<(), String> {
        let host = self.options.host.clone();
        if host.parse::<std::net::IpAddr>().is_ok() {
            return Ok(());
        }
        let (tx, rx) = std::sync::mpsc::channel();
        let lookup = (host.clone(), self.options.port);
        let spawned = std::thread::Builder::new()
            .name("drfailover-resolve".into())
            .spawn(move || {
                use std::net::ToSocketAddrs;
                let _ = tx.send(lookup.to_socket_addrs().map(|a| a.collect::<Vec<_>>()));
            });
        let result = match spawned {
            Err(e) => Err(format!("cannot resolve `{host}`: {e}")),
            Ok(_) => match rx.recv_timeout(timeout) {
                Ok(Ok(addrs)) => addrs
                    .iter()
                    .find(|a| a.is_ipv4())
                    .or(addrs.first())
                    .map(|a| a.ip().to_string())
                    .ok_or_else(|| format!("`{host}` has no address")),
                Ok(Err(e)) => Err(format!("cannot resolve `{host}`: {e}")),
                Err(_) => Err(format!(
                    "cannot resolve `{host}`: no answer within {} ms",
                    timeout.as_millis()
                )),
            },
        };
        match result {
            Ok(ip) => {
                self.options.host = ip;
                self.unresolved = None;
                Ok(())
            }
            Err(e) => {
                self.unresolved = Some(e.clone());
                Err(e)
            }
        }
    }

    /// The admin connection, opened within `deadline` if needed. An idle connection the
    /// server closed or reset (one non-blocking `poll`) is replaced first, so a crashed
    /// server shows as refused at once rather than as one lost query.
    pub fn connection(&mut self, deadline: Deadline) -> Result<&mut Connection, Error> {
        if self
            .conn
            .as_ref()
            .is_some_and(|c| c.abort_handle().looks_dead())
        {
            self.conn = None;
        }
        if self.conn.is_none() {
            self.conn = Some(Connection::connect_within(&self.options, deadline)?);
        }
        Ok(self.conn.as_mut().expect("connected above"))
    }

    /// Run `sql` on the admin connection within `deadline`; a failed connection is dropped
    /// (and reopened next time).
    pub fn run(&mut self, sql: &str, deadline: Deadline) -> Result<QueryResult, Error> {
        let result = self
            .connection(deadline)
            .and_then(|c| c.query_within(sql, deadline));
        if let Err(e) = &result {
            if e.errno() >= 2000 || matches!(e.class(), drfailover_mysql::ErrorClass::Timeout) {
                self.conn = None;
            }
        }
        result
    }

    /// A new, separate connection to the node (for work alongside the admin connection).
    pub fn open_extra(&self, deadline: Deadline) -> Result<Connection, Error> {
        Connection::connect_within(&self.options, deadline)
    }

    /// Run `sql` and return the first column of the first row as text.
    pub fn value(&mut self, sql: &str, deadline: Deadline) -> Result<Option<String>, Error> {
        let r = self.run(sql, deadline)?;
        Ok(r.text(0, 0).map(str::to_string))
    }

    /// The session id of the lock connection, if open (excluded when fencing).
    pub fn lock_session(&mut self, deadline: Deadline) -> Option<String> {
        let lock = self.lock.as_mut()?;
        match lock.query_within("SELECT CONNECTION_ID()", deadline) {
            Ok(r) => r.text(0, 0).map(str::to_string),
            Err(_) => {
                self.lock = None;
                None
            }
        }
    }

    /// Hold (or take) the lock `name` on this node. Never waits for another holder.
    fn hold_lock(&mut self, name: &str, deadline: Deadline) -> bool {
        if self.lock.is_none() {
            match Connection::connect_within(&self.options, deadline) {
                Ok(c) => self.lock = Some(c),
                Err(_) => return false,
            }
        }
        let lock = self.lock.as_mut().expect("opened above");
        let Ok(quoted) = lock.escape_literal(name) else {
            return false;
        };
        let sql = format!(
            "SELECT IF(IS_USED_LOCK('{quoted}') = CONNECTION_ID(), 1, GET_LOCK('{quoted}', 0))"
        );
        match lock.query_within(&sql, deadline) {
            Ok(r) => r.text(0, 0) == Some("1"),
            Err(_) => {
                self.lock = None;
                false
            }
        }
    }

    /// The sockets of the idle connections to this node (admin and lock), for
    /// [`wait_for_hangup`] between rounds. Cheap.
    pub fn watch_fds(&self) -> Vec<std::os::fd::RawFd> {
        [&self.conn, &self.lock]
            .into_iter()
            .flatten()
            .map(|c| c.abort_handle().fd())
            .filter(|&fd| fd >= 0)
            .collect()
    }

    /// Give the orchestrators' lock on this node back (its session is closed; the server
    /// releases the lock). The next round with a lock name takes it again if it is free.
    pub fn release_lock(&mut self) {
        self.lock = None;
    }

    /// Drop both connections (the lock is released by the server).
    pub fn close(&mut self) {
        self.conn = None;
        self.lock = None;
    }

    fn observe(&mut self, deadline: Deadline) -> NodeProbe {
        if let Some(why) = &self.unresolved {
            return NodeProbe::Failed {
                class: OutcomeClass::Unresolved,
                detail: why.clone(),
            };
        }
        match self.read_facts(deadline) {
            Ok(f) => NodeProbe::Reached(Box::new(f)),
            Err(e) => {
                self.conn = None;
                NodeProbe::Failed {
                    class: OutcomeClass::from_error(&e),
                    detail: e.to_string(),
                }
            }
        }
    }

    fn read_facts(&mut self, deadline: Deadline) -> Result<NodeFacts, Error> {
        let conn = self.connection(deadline)?;
        let r = conn.query_within(FACTS_SQL, deadline)?;
        let text = |c: usize| r.text(0, c).unwrap_or("").to_string();
        let flag = |c: usize| matches!(r.text(0, c), Some("1") | Some("ON"));
        let gtid_pos = |c: usize| GtidPos::parse(&text(c)).map_err(Error::invalid_argument);
        let mut facts = NodeFacts {
            server_id: text(0).parse().unwrap_or(0),
            read_only: flag(1),
            log_bin: flag(2),
            gtid_strict_mode: flag(3),
            binlog_pos: gtid_pos(4)?,
            binlog_state: GtidState::parse(&text(5)).map_err(Error::invalid_argument)?,
            slave_pos: gtid_pos(6)?,
            current_pos: gtid_pos(7)?,
            semi_sync_master_enabled: flag(8),
            semi_sync_after_sync: text(9).eq_ignore_ascii_case("AFTER_SYNC"),
            semi_sync_slave_enabled: flag(10),
            semi_sync_master_timeout_ms: text(11).parse().unwrap_or(0),
            ..NodeFacts::default()
        };
        facts.replication = read_replication(conn, deadline)?;
        if !facts.replication.is_empty() {
            let at = Instant::now();
            facts.replication_read_at = Some(at);
            facts.progress_seen_at = Some(at);
        }
        if !facts.read_only {
            let s = conn.query_within(SEMI_SYNC_STATUS_SQL, deadline)?;
            for row in 0..s.num_rows() {
                match s.text(row, 0).map(str::to_ascii_uppercase).as_deref() {
                    Some("RPL_SEMI_SYNC_MASTER_STATUS") => {
                        facts.semi_sync_master_active = s.text(row, 1) == Some("ON")
                    }
                    Some("RPL_SEMI_SYNC_MASTER_CLIENTS") => {
                        facts.semi_sync_master_clients =
                            s.text(row, 1).and_then(|v| v.parse().ok()).unwrap_or(0)
                    }
                    _ => {}
                }
            }
        }
        Ok(facts)
    }
}

/// `SHOW ALL SLAVES STATUS`, parsed. One round trip.
fn read_replication(conn: &mut Connection, deadline: Deadline) -> Result<Vec<ReplicaFacts>, Error> {
    let status = conn.query_within("SHOW ALL SLAVES STATUS", deadline)?;
    (0..status.num_rows())
        .map(|row| parse_replica(&status, row))
        .collect()
}

impl NodeLink {
    /// Read a replica's status again every [`RESAMPLE`] while `pending` probes of the round
    /// are running and `until` is not reached, keeping in `facts` the latest status, when it
    /// was read, and when its progress marker was first read. Returns as soon as the last
    /// pending probe ends; stops at the first failed read (the facts of the last good one
    /// stay). One short query per read.
    fn follow_progress(&mut self, facts: &mut NodeFacts, pending: &Pending, until: Instant) {
        while Instant::now() + RESAMPLE < until && pending.wait(RESAMPLE) {
            let deadline = Deadline::at(until);
            let Ok(replication) = self
                .connection(deadline)
                .and_then(|c| read_replication(c, deadline))
            else {
                return;
            };
            let at = Instant::now();
            let before = facts.progress();
            facts.replication = replication;
            facts.replication_read_at = Some(at);
            if facts.progress() != before {
                facts.progress_seen_at = Some(at);
            }
        }
    }
}

/// The probes of a round still running.
struct Pending {
    count: Mutex<usize>,
    changed: Condvar,
}

impl Pending {
    fn new(count: usize) -> Pending {
        Pending {
            count: Mutex::new(count),
            changed: Condvar::new(),
        }
    }

    /// One probe ended.
    fn done(&self) {
        let mut count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        *count = count.saturating_sub(1);
        self.changed.notify_all();
    }

    /// Wait up to `wait` for every probe to end; whether some are still running then.
    fn wait(&self, wait: Duration) -> bool {
        let count = self.count.lock().unwrap_or_else(|e| e.into_inner());
        let (count, _) = self
            .changed
            .wait_timeout_while(count, wait, |c| *c > 0)
            .unwrap_or_else(|e| e.into_inner());
        *count > 0
    }
}

fn parse_replica(status: &QueryResult, row: usize) -> Result<ReplicaFacts, Error> {
    let s = ReplicaStatus::from_row(status, row);
    Ok(ReplicaFacts {
        received: GtidPos::parse(&s.gtid_io_pos).map_err(Error::invalid_argument)?,
        last_error: s.last_errors(),
        connection_name: s.connection_name,
        master_host: s.master_host,
        master_port: s.master_port,
        io: s.io,
        sql_running: s.sql_running,
        using_gtid: s.using_gtid,
        heartbeats: s.heartbeats,
        heartbeat_period: s.heartbeat_period,
        read_position: (s.master_log_file, s.read_master_log_pos),
        seconds_behind: s.seconds_behind,
        last_sql_errno: s.last_sql_errno,
    })
}

/// Wait up to `timeout` for any of `fds` (idle connections to the primary) to become
/// readable: on an idle MySQL connection that means the server closed or reset it (a crashed
/// process's kernel answers at once) or killed the session. Returns whether one did. One
/// `poll(2)`; blocks at most `timeout`; with no descriptors it just sleeps.
pub fn wait_for_hangup(fds: &[std::os::fd::RawFd], timeout: Duration) -> bool {
    if fds.is_empty() {
        std::thread::sleep(timeout);
        return false;
    }
    let mut set = drfailover_mysql::PollSet::new();
    for &fd in fds {
        set.add_readable(fd);
    }
    let started = Instant::now();
    loop {
        let left = timeout.saturating_sub(started.elapsed());
        match set.poll(Some(left)) {
            Ok(n) if n > 0 => return true,
            // A signal interrupted the wait: go on waiting for the rest.
            Ok(_) | Err(_) if !left.is_zero() && started.elapsed() < timeout => continue,
            _ => return false,
        }
    }
}

/// Probe every node at the same time, each within `timeout`, and (when `lock` names a lock)
/// take or keep the lock on each. Replicas that answered read their status again every
/// `RESAMPLE` while another node's probe is still running (within `timeout`). Blocks for
/// at most about `timeout` (plus the lock query's own `timeout` on nodes that answered).
pub fn observe_all(links: &mut [NodeLink], timeout: Duration, lock: Option<&str>) -> Round {
    let until = Instant::now() + timeout;
    let pending = Pending::new(links.len());
    let results: Vec<(NodeProbe, bool)> = std::thread::scope(|s| {
        let handles: Vec<_> = links
            .iter_mut()
            .map(|link| {
                let pending = &pending;
                s.spawn(move || {
                    let mut probe = link.observe(Deadline::after(timeout));
                    let held = match (lock, &probe) {
                        (Some(name), NodeProbe::Reached(_)) => {
                            link.hold_lock(name, Deadline::after(timeout))
                        }
                        _ => false,
                    };
                    pending.done();
                    if let NodeProbe::Reached(facts) = &mut probe {
                        if !facts.replication.is_empty() {
                            link.follow_progress(facts, pending, until);
                        }
                    }
                    (probe, held)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| {
                h.join().unwrap_or((
                    NodeProbe::Failed {
                        class: OutcomeClass::ProtocolError,
                        detail: "probe thread panicked".into(),
                    },
                    false,
                ))
            })
            .collect()
    });
    let held = results.iter().filter(|(_, h)| *h).count();
    Round {
        at: Instant::now(),
        leader: lock.is_some() && held * 2 > links.len(),
        locks_held: held,
        nodes: results.into_iter().map(|(p, _)| p).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(host: &str) -> NodeLink {
        NodeLink::new(ConnectOptions::tcp(host.to_string(), 3306))
    }

    #[test]
    fn names_are_resolved_once_to_an_address_and_failures_make_the_node_unreachable() {
        let mut ip = link("192.0.2.7");
        ip.resolve(Duration::from_secs(2)).unwrap();
        assert_eq!(ip.options.host, "192.0.2.7");

        // From /etc/hosts: no DNS traffic.
        let mut local = link("localhost");
        local.resolve(Duration::from_secs(2)).unwrap();
        assert!(
            local.options.host.parse::<std::net::IpAddr>().is_ok(),
            "{}",
            local.options.host
        );

        // Rejected by the resolver itself (not a valid host name): nothing is sent.
        let mut bad = link("no such host!");
        let e = bad.resolve(Duration::from_secs(2)).unwrap_err();
        assert!(e.contains("cannot resolve `no such host!`"), "{e}");
        match bad.observe(Deadline::after(Duration::from_millis(100))) {
            NodeProbe::Failed { class, detail } => {
                assert_eq!(class, OutcomeClass::Unresolved);
                assert_eq!(detail, e);
            }
            other => panic!("observed {other:?}"),
        }
    }
}
