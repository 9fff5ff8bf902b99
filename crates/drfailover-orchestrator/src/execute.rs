//! I/O: carry out the core's actions against the servers, one bounded step at a time, each
//! reported as a notice. Every step is idempotent (safe to repeat after a crash half-way).

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use std::sync::atomic::{AtomicBool, Ordering};

use drfailover_mysql::{Connection, Deadline, Error, ReplicaStatus, Secret};
use drfailover_notify::EventKind;

use crate::control::Ticket;
use crate::core::{FailoverPlan, NodeId, Notice, PromotionStep, SwitchoverPlan};
use crate::gtid::GtidPos;
use crate::observe::NodeLink;
use crate::policy::NodeSpec;
pub use crate::step_error::SwitchoverError;
use crate::step_error::{Awaited, FenceCommandFailure, StepError, StepFailure};

/// A STONITH program: given the node as JSON on stdin, it makes sure the node can no longer
/// accept writes (power off, detach the volume, revoke its security group). Exit 0 = done.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FenceCommand {
    /// The program (run directly, no shell).
    pub program: PathBuf,
    /// Its arguments, passed as they are (no shell).
    pub args: Vec<String>,
    /// Killed after this long (and the fence counts as failed).
    pub timeout: Duration,
}

/// How the executor works.
#[derive(Clone, Debug)]
pub struct Settings {
    /// Bound of one ordinary step (a statement or two).
    pub step_timeout: Duration,
    /// Bound of the candidate's catch-up (`MASTER_GTID_WAIT`); promotion is abandoned after.
    pub catchup_timeout: Duration,
    /// STONITH, run before promoting when the old primary may be alive.
    pub fence_command: Option<FenceCommand>,
    /// Replication account for attaching an old primary (`CHANGE MASTER TO master_user=…`).
    pub replication: Option<(String, Secret)>,
    /// `MASTER_HEARTBEAT_PERIOD` set on every replica the orchestrator points.
    pub heartbeat_period: Duration,
    /// The orchestrators' own MySQL user: its sessions (other orchestrators' locks) survive
    /// fencing.
    pub admin_user: String,
    /// Wait this long for a replica to attach before enabling semi-sync on a new primary.
    pub semi_sync_wait: Duration,
    /// Announcers run after every promotion, in order, each bounded by `announce_timeout`.
    pub announcers: Vec<std::sync::Arc<dyn drfailover_dns::Announcer>>,
    /// Bound of one announcer's run.
    pub announce_timeout: Duration,
}

/// Carries out actions on `links` (indexed like `nodes`), reporting through `report`.
pub struct Executor<'a> {
    /// Connections, one per node.
    pub links: &'a mut [NodeLink],
    /// The configured nodes, indexed like `links`.
    pub nodes: &'a [NodeSpec],
    /// Timeouts, credentials, announcers and the fence command.
    pub settings: &'a Settings,
    /// Where notices go.
    pub report: &'a mut dyn FnMut(Notice),
}

/// Fault injection for tests: when the environment variable `DRFAILOVER_FAILPOINT` names
/// this point, the process exits at once (as if killed), leaving the promotion half-done;
/// `NAME:sleep_ms=N` pauses there for N ms instead (to open a race window on purpose).
/// Never set it in production.
fn failpoint(name: &str) {
    let Ok(value) = std::env::var("DRFAILOVER_FAILPOINT") else {
        return;
    };
    let (point, action) = value.split_once(':').unwrap_or((&value, ""));
    if point != name {
        return;
    }
    match action.strip_prefix("sleep_ms=").map(str::parse::<u64>) {
        Some(Ok(ms)) => {
            eprintln!("drfailover: failpoint {name}: pausing {ms} ms");
            std::thread::sleep(Duration::from_millis(ms));
        }
        _ => {
            eprintln!("drfailover: failpoint {name}: exiting now");
            std::process::exit(137);
        }
    }
}

impl Executor<'_> {
    fn name(&self, id: NodeId) -> &str {
        &self.nodes[id].name
    }

    /// A failure of `kind` on `node`.
    fn failure(&self, node: NodeId, kind: StepFailure) -> StepError {
        StepError::new(node, &self.nodes[node].name, kind)
    }

    /// The client library's error `e` on `node`, the replication password masked (a syntax
    /// error echoes the statement).
    fn server_error(&self, node: NodeId, e: &Error) -> StepError {
        let mut message = e.to_string();
        if let Some((_, password)) = &self.settings.replication {
            if !password.is_empty() {
                message = message.replace(password.expose(), "***");
            }
        }
        self.failure(
            node,
            StepFailure::Server {
                errno: e.errno(),
                class: e.class(),
                message,
            },
        )
    }

    /// Run one named step on `node`, timed and reported (completed or failed).
    fn step<T>(
        &mut self,
        node: NodeId,
        what: &str,
        body: impl FnOnce(&mut Self) -> Result<T, StepError>,
    ) -> Result<T, StepError> {
        let started = Instant::now();
        let result = body(self);
        let (kind, reason) = match &result {
            Ok(_) => (EventKind::StepCompleted, what.to_string()),
            Err(e) => (EventKind::StepFailed, format!("{what}: {e}")),
        };
        (self.report)(Notice {
            kind,
            node: Some(node),
            writers: None,
            reason,
            duration: Some(started.elapsed()),
        });
        result
    }

    fn sql(
        &mut self,
        node: NodeId,
        statements: &[&str],
        budget: Duration,
    ) -> Result<(), StepError> {
        let deadline = Deadline::after(budget);
        for s in statements {
            if let Err(e) = self.links[node].run(s, deadline) {
                return Err(self.server_error(node, &e));
            }
        }
        Ok(())
    }

    /// Run statements that hold the replication password on `node`: a failure reports the
    /// error number only (a server message may quote part of the statement).
    fn sql_with_secret(
        &mut self,
        node: NodeId,
        statements: &[&str],
        budget: Duration,
    ) -> Result<(), StepError> {
        let deadline = Deadline::after(budget);
        for s in statements {
            if let Err(e) = self.links[node].run(s, deadline) {
                return Err(self.failure(
                    node,
                    StepFailure::ServerWithheld {
                        errno: e.errno(),
                        class: e.class(),
                    },
                ));
            }
        }
        Ok(())
    }

    /// `value` as an SQL string literal for `node`, escaped by the client library on that
    /// node's connection (its character set and `NO_BACKSLASH_ESCAPES` mode), quotes
    /// included. Connects if needed (bounded by the step timeout).
    fn literal(&mut self, node: NodeId, value: &str) -> Result<String, StepError> {
        let deadline = Deadline::after(self.settings.step_timeout);
        let escaped = self.links[node]
            .connection(deadline)
            .and_then(|c| c.escape_literal(value));
        escaped
            .map(|escaped| format!("'{escaped}'"))
            .map_err(|e| self.server_error(node, &e))
    }

    /// The first column of the first row of `sql` on `node` ("" for none).
    fn value(&mut self, node: NodeId, sql: &str, budget: Duration) -> Result<String, StepError> {
        let value = self.links[node].value(sql, Deadline::after(budget));
        value
            .map(Option::unwrap_or_default)
            .map_err(|e| self.server_error(node, &e))
    }

    /// `SHOW SLAVE STATUS` on `node`, `Err` when it cannot be read.
    fn replica_status(&mut self, node: NodeId) -> Result<ReplicaStatus, StepError> {
        let t = self.settings.step_timeout;
        let r = self.links[node].run("SHOW SLAVE STATUS", Deadline::after(t));
        let r = r.map_err(|e| self.server_error(node, &e))?;
        Ok(ReplicaStatus::first(&r).unwrap_or_default())
    }

    /// What `node` received, when it is a replica (`None` when it is not).
    fn replicates(&mut self, node: NodeId) -> Result<Option<GtidPos>, StepError> {
        let t = self.settings.step_timeout;
        let r = self.links[node].run("SHOW SLAVE STATUS", Deadline::after(t));
        let r = r.map_err(|e| self.server_error(node, &e))?;
        match ReplicaStatus::first(&r) {
            Some(status) => GtidPos::parse(&status.gtid_io_pos)
                .map(Some)
                .map_err(|why| self.failure(node, StepFailure::BadPosition(why))),
            None => Ok(None),
        }
    }

    /// Run the fence command for `plan`'s old primary when it may be alive and a command is
    /// configured; reported as a step. Blocks up to the command's timeout.
    pub fn fence_old_primary(&mut self, plan: &FailoverPlan) -> Result<(), StepError> {
        let Some(cmd) = self.settings.fence_command.clone() else {
            return Ok(());
        };
        if !plan.old_may_be_alive {
            return Ok(());
        }
        let old = plan.old_primary;
        let what = format!("fence command for {} (it may be alive)", self.name(old));
        self.step(old, &what, |ex| ex.run_fence_command(&cmd, old))
    }

    /// Promote `plan.candidate` (after [`Executor::fence_old_primary`]). Returns once it is
    /// writable (repointing the others and announcing are the caller's). Each failure
    /// stops the promotion before `read_only=0`. `progress` is told when the candidate is
    /// detached and when it is writable (the caller saves it for a successor).
    pub fn failover(
        &mut self,
        plan: &FailoverPlan,
        progress: &mut dyn FnMut(PromotionStep),
    ) -> Result<(), StepError> {
        let c = plan.candidate;
        let t = self.settings.step_timeout;
        // Cut the old primary off from every replica first: a replica still attached could
        // acknowledge a write the old primary takes after it thaws or heals (semi-sync), and
        // that write would never reach the new primary. Once no replica receives, the old
        // primary's commits wait for an acknowledgement that never comes, until it is fenced.
        self.cut_off(plan)?;
        // Stop receiving, then apply everything received: a semi-sync replica acknowledges
        // on receipt, and RESET SLAVE ALL deletes relay logs.
        if self.replicates(c)?.is_some() {
            // The SQL thread first: in GTID mode, starting a thread while both are stopped
            // discards the relay log (what the backlog test checks). Started while the IO
            // thread still exists, it keeps the relay log.
            self.step(c, "apply the relay log (START SLAVE SQL_THREAD)", |ex| {
                ex.sql(c, &["START SLAVE SQL_THREAD"], t)
            })?;
            self.step(
                c,
                "stop receiving (KILL the IO thread; STOP SLAVE IO_THREAD)",
                |ex| ex.stop_receiving(c, true),
            )?;
            let received = self.replicates(c)?.unwrap_or_default();
            if !received.covers(&plan.candidate_received) {
                return Err(self.failure(
                    c,
                    StepFailure::ReceivedLess {
                        now: received.to_string(),
                        before: plan.candidate_received.to_string(),
                    },
                ));
            }
            let what = format!("apply everything received ({received})");
            self.step(c, &what, |ex| ex.wait_applied(c, &received.to_string()))?;
            self.step(c, "detach (STOP SLAVE; RESET SLAVE ALL)", |ex| {
                ex.sql(c, &["STOP SLAVE", "RESET SLAVE ALL"], t)
            })?;
            progress(PromotionStep::Detached);
            failpoint("after_detach");
        }
        // Semi-sync master stays off until a replica is attached: with none, the first
        // commit would stall for rpl_semi_sync_master_timeout.
        self.step(c, "make writable (read_only=0)", |ex| {
            ex.sql(
                c,
                &[
                    "SET GLOBAL rpl_semi_sync_master_enabled=0",
                    "SET GLOBAL read_only=0",
                ],
                t,
            )
        })?;
        progress(PromotionStep::Writable);
        failpoint("after_writable");
        Ok(())
    }

    /// Stop every other replica of `plan` from receiving from the old primary, then check
    /// that none of them received more than the candidate meanwhile (the choice stands).
    /// A replica that cannot be reached is reported and skipped (only a fence command closes
    /// that gap); one that received more abandons the promotion: the next round re-decides
    /// with positions that no longer move.
    fn cut_off(&mut self, plan: &FailoverPlan) -> Result<(), StepError> {
        let c = plan.candidate;
        let old = self.name(plan.old_primary).to_string();
        for &r in &plan.repoint {
            let what = format!("stop receiving from {old} (cut it off from acknowledgers)");
            if self
                .step(r, &what, |ex| ex.stop_receiving(r, false))
                .is_err()
            {
                continue;
            }
            let Ok(Some(received)) = self.replicates(r) else {
                continue;
            };
            if !plan.candidate_received.covers(&received) {
                return Err(self.failure(
                    c,
                    StepFailure::Overtaken {
                        by: r,
                        by_name: self.name(r).to_string(),
                        received: received.to_string(),
                        candidate: plan.candidate_received.to_string(),
                    },
                ));
            }
        }
        Ok(())
    }

    /// Run every announcer for the promotion of `new` (from `old`), in order, each bounded.
    /// A failure is reported and never undoes or blocks anything.
    pub fn announce(&mut self, old: Option<NodeId>, new: NodeId) {
        let address = |id: NodeId| {
            drfailover_dns::NodeAddress::new(&self.nodes[id].name, &self.nodes[id].host)
        };
        let change = drfailover_dns::WriterChange {
            old_writer: old.map(address),
            new_writer: address(new),
        };
        for announcer in self.settings.announcers.clone() {
            let what = format!("announce {}", announcer.describe());
            let deadline = Instant::now() + self.settings.announce_timeout;
            let _ = self.step(new, &what, |_| {
                announcer
                    .announce(&change, deadline)
                    .map(|outcome| format!("{outcome:?}"))
                    .map_err(|e| StepError::new(new, "", StepFailure::Announcer(e.to_string())))
            });
        }
    }

    /// After a promotion: repoint `others` to `primary`, then enable semi-sync on it once a
    /// replica is attached. Failures are reported, never undone.
    pub fn settle(&mut self, primary: NodeId, others: &[NodeId]) {
        for &r in others {
            let _ = self.repoint(r, primary);
        }
        let _ = self.enable_semi_sync(primary);
    }

    /// `SET GLOBAL rpl_semi_sync_master_enabled=1` once a replica is attached, then wait
    /// (bounded) until semi-sync is active.
    pub fn enable_semi_sync(&mut self, primary: NodeId) -> Result<(), StepError> {
        let wait = self.settings.semi_sync_wait;
        let t = self.settings.step_timeout;
        self.step(primary, "enable semi-sync (AFTER_SYNC)", |ex| {
            let started = Instant::now();
            loop {
                let dumps = ex.value(
                    primary,
                    "SELECT COUNT(*) FROM information_schema.PROCESSLIST WHERE COMMAND LIKE 'Binlog Dump%'",
                    t,
                )?;
                if dumps != "0" {
                    break;
                }
                if started.elapsed() > wait {
                    return Err(ex.failure(
                        primary,
                        StepFailure::TimedOut {
                            waiting_for: Awaited::ReplicaAttached,
                            after: wait,
                        },
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
            let hold = format!(
                "SET GLOBAL rpl_semi_sync_master_timeout={}",
                crate::core::HOLD_TIMEOUT_MS
            );
            ex.sql(
                primary,
                &[
                    &hold,
                    "SET GLOBAL rpl_semi_sync_master_wait_point=AFTER_SYNC",
                    "SET GLOBAL rpl_semi_sync_master_enabled=1",
                ],
                t,
            )?;
            loop {
                let on = ex.value(
                    primary,
                    "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME='RPL_SEMI_SYNC_MASTER_STATUS'",
                    t,
                )?;
                if on == "ON" {
                    return Ok(());
                }
                if started.elapsed() > wait {
                    return Err(ex.failure(
                        primary,
                        StepFailure::TimedOut {
                            waiting_for: Awaited::SemiSyncActive,
                            after: wait,
                        },
                    ));
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    }

    /// Hold `primary`'s commits until a replica acknowledges them:
    /// `rpl_semi_sync_master_timeout` = [`crate::core::HOLD_TIMEOUT_MS`]. One statement,
    /// bounded by the step timeout.
    pub fn hold_commits(&mut self, primary: NodeId) -> Result<(), StepError> {
        let t = self.settings.step_timeout;
        let sql = format!(
            "SET GLOBAL rpl_semi_sync_master_timeout={}",
            crate::core::HOLD_TIMEOUT_MS
        );
        self.step(
            primary,
            "hold commits until a replica acknowledges (rpl_semi_sync_master_timeout held by the orchestrator)",
            |ex| ex.sql(primary, &[&sql], t),
        )
    }

    /// Put the server's own `rpl_semi_sync_master_timeout` (`ms`) back on `node` (a clean
    /// exit). One statement, bounded by the step timeout.
    pub fn restore_timeout(&mut self, node: NodeId, ms: u64) -> Result<(), StepError> {
        let t = self.settings.step_timeout;
        let sql = format!("SET GLOBAL rpl_semi_sync_master_timeout={ms}");
        self.step(
            node,
            &format!("rpl_semi_sync_master_timeout restored to {ms} ms"),
            |ex| ex.sql(node, &[&sql], t),
        )
    }

    /// Switch `primary` to asynchronous replication (`rpl_semi_sync_master_enabled=0`, which
    /// also releases the commits waiting for an acknowledgement). The event says zero-loss
    /// protection is suspended, and why. Bounded by the step timeout.
    pub fn suspend_semi_sync(&mut self, primary: NodeId, reason: &str) -> Result<(), StepError> {
        let t = self.settings.step_timeout;
        let what = format!(
            "zero-loss protection suspended: asynchronous replication on {} ({reason}); it \
             resumes when a replica can acknowledge",
            self.name(primary)
        );
        self.step(primary, &what, |ex| {
            ex.sql(primary, &["SET GLOBAL rpl_semi_sync_master_enabled=0"], t)
        })
    }

    /// `CHANGE MASTER TO` pointing `on` at `to`, every literal escaped on `on`'s
    /// connection; with `credentials`, the replication account too.
    fn change_master(
        &mut self,
        on: NodeId,
        to: NodeId,
        credentials: bool,
    ) -> Result<String, StepError> {
        let (host, port) = (self.nodes[to].host.clone(), self.nodes[to].port);
        let mut sql = format!(
            "CHANGE MASTER TO master_host={}, master_port={port}, master_use_gtid=slave_pos, \
             master_heartbeat_period={:.3}, master_connect_retry=1",
            self.literal(on, &host)?,
            self.settings.heartbeat_period.as_secs_f64()
        );
        if credentials {
            if let Some((user, password)) = self.settings.replication.clone() {
                sql.push_str(&format!(
                    ", master_user={}, master_password={}",
                    self.literal(on, &user)?,
                    self.literal(on, password.expose())?
                ));
            }
        }
        Ok(sql)
    }

    /// Wait (bounded by the catch-up timeout) until `node` applied GTID position `pos`.
    fn wait_applied(&mut self, node: NodeId, pos: &str) -> Result<(), StepError> {
        let bound = self.settings.catchup_timeout;
        let sql = format!(
            "SELECT MASTER_GTID_WAIT({}, {})",
            self.literal(node, pos)?,
            bound.as_secs_f64()
        );
        if self.value(node, &sql, bound + self.settings.step_timeout)? == "0" {
            Ok(())
        } else {
            Err(self.failure(
                node,
                StepFailure::TimedOut {
                    waiting_for: Awaited::Applied(pos.to_string()),
                    after: bound,
                },
            ))
        }
    }

    /// Stop `node`'s IO thread at once. `STOP SLAVE IO_THREAD` alone takes ~2 s when the
    /// primary is frozen or unreachable (the server re-signals a blocked receiver only every
    /// 2 s, because a signal can be missed); killing the receiver's session, again every few
    /// milliseconds until it is gone, ends it in milliseconds.
    ///
    /// Once its session is gone the receiver takes nothing more, but the thread may still be
    /// exiting: a semi-sync replica's receiver first tries to connect to the old primary to
    /// kill its dump thread, for up to `rpl_semi_sync_slave_kill_conn_timeout` (default 5 s;
    /// lowered to 1 s here). With `wait_stopped` the statement
    /// `STOP SLAVE IO_THREAD` then waits for that exit (needed before detaching);
    /// without, it is left to the next step that changes replication.
    fn stop_receiving(&mut self, node: NodeId, wait_stopped: bool) -> Result<(), StepError> {
        let t = self.settings.step_timeout;
        // Not every server has it (semi-sync as a plugin not loaded): ignore a failure.
        let _ = self.links[node].run(
            "SET GLOBAL rpl_semi_sync_slave_kill_conn_timeout = LEAST(@@rpl_semi_sync_slave_kill_conn_timeout, 1)",
            Deadline::after(t),
        );
        let started = Instant::now();
        loop {
            let ids = self.links[node].run(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE COMMAND = 'Slave_IO'",
                Deadline::after(t),
            );
            let ids = ids.map_err(|e| self.server_error(node, &e))?;
            let ids: Vec<String> = (0..ids.num_rows())
                .filter_map(|r| ids.text(r, 0).map(str::to_string))
                .collect();
            if ids.is_empty() {
                break;
            }
            if started.elapsed() > t {
                return Err(self.failure(
                    node,
                    StepFailure::TimedOut {
                        waiting_for: Awaited::IoThreadGone,
                        after: t,
                    },
                ));
            }
            for id in ids {
                match self.links[node].run(&format!("KILL {id}"), Deadline::after(t)) {
                    Ok(_) => {}
                    Err(e) if e.errno() == 1094 => {}
                    Err(e) => return Err(self.server_error(node, &e)),
                }
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        if wait_stopped {
            self.sql(node, &["STOP SLAVE IO_THREAD"], t)?;
        }
        Ok(())
    }

    /// Point replica `node` at `to` (keeps its replication account), start it, and wait
    /// (bounded by the step timeout) until both its threads run.
    pub fn repoint(&mut self, node: NodeId, to: NodeId) -> Result<(), StepError> {
        let t = self.settings.step_timeout;
        let what = format!("repoint to {} (replicating)", self.name(to));
        self.step(node, &what, |ex| {
            let change = ex.change_master(node, to, false)?;
            ex.stop_receiving(node, false)?;
            ex.sql(node, &["STOP SLAVE", &change, "START SLAVE"], t)?;
            ex.wait_replicating(node)
        })
    }

    /// Wait until `node`'s IO and SQL threads both run (bounded by the step timeout).
    pub fn wait_replicating(&mut self, node: NodeId) -> Result<(), StepError> {
        let t = self.settings.step_timeout;
        let started = Instant::now();
        loop {
            let status = self.replica_status(node)?;
            if status.replicating() {
                return Ok(());
            }
            if started.elapsed() > t {
                let seen = format!(
                    "IO {:?}, SQL running {}, {}",
                    status.io,
                    status.sql_running,
                    status.last_errors()
                );
                return Err(self.failure(
                    node,
                    StepFailure::TimedOut {
                        waiting_for: Awaited::Replicating(seen),
                        after: t,
                    },
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Kill (`KILL SOFT CONNECTION`) every session on `conn`'s server except the
    /// orchestrators' own (and `conn`). Returns how many were killed.
    ///
    /// Soft, because a hard kill of a session waiting for a semi-sync acknowledgement makes
    /// it skip the wait, and when it leads a binlog group commit the whole group commits
    /// and its *other* sessions get OK (a write sent after the promotion could be
    /// acknowledged by the fenced node). A soft kill shuts the client's socket at once (the
    /// client gets 2013) but leaves the commit waiting.
    fn kill_sessions(
        admin_user: &str,
        conn: &mut Connection,
        deadline: Deadline,
    ) -> Result<usize, Error> {
        let admin = conn.escape_literal(admin_user)?;
        let sessions = conn.query_within(
            &format!(
                "SELECT ID FROM information_schema.PROCESSLIST WHERE ID <> CONNECTION_ID() \
                 AND USER NOT IN ('system user', 'event_scheduler', '{admin}') \
                 AND COMMAND <> 'Killed'"
            ),
            deadline,
        )?;
        let mut killed = 0;
        for row in 0..sessions.num_rows() {
            let Some(id) = sessions.text(row, 0) else {
                continue;
            };
            // 1094: the session ended meanwhile.
            match conn.query_within(&format!("KILL SOFT CONNECTION {id}"), deadline) {
                Ok(_) => killed += 1,
                Err(e) if e.errno() == 1094 => {}
                Err(e) => return Err(e),
            }
        }
        Ok(killed)
    }

    /// Fence `node` so that it acknowledges no write, then make it read-only:
    ///
    /// 1. `SET GLOBAL read_only=1` starts first (on the node's admin connection). Until it
    ///    takes effect its pending global read lock holds every *new* write before it can
    ///    commit; it waits for the commits in progress, which on a cut-off primary wait for a
    ///    semi-sync acknowledgement that never comes.
    /// 2. Once it is pending, every application session is killed (soft: sockets shut, the
    ///    clients get "connection lost", never OK; the commits keep waiting).
    /// 3. Only then semi-sync master is switched off, which releases those commits — into
    ///    closed sockets — so `read_only=1` takes effect in milliseconds instead of after
    ///    `rpl_semi_sync_master_timeout`. Semi-sync master is restored afterwards.
    ///
    /// Sessions that connect meanwhile are killed on every pass (2 ms apart) until
    /// `read_only=1` took effect. Bounded by the step timeout.
    pub fn fence(&mut self, node: NodeId, reason: &str) -> Result<(), StepError> {
        let t = self.settings.step_timeout;
        let started = Instant::now();
        let deadline = Deadline::after(t);
        let label = self.nodes[node].name.clone();
        let result = (|| -> Result<usize, StepError> {
            let admin = self.settings.admin_user.clone();
            let e = |e: Error| {
                StepError::new(
                    node,
                    &label,
                    StepFailure::Server {
                        errno: e.errno(),
                        class: e.class(),
                        message: e.to_string(),
                    },
                )
            };
            let mut killer = self.links[node].open_extra(deadline).map_err(e)?;
            let semi_sync_was = killer
                .query_within("SELECT @@rpl_semi_sync_master_enabled", deadline)
                .map_err(e)?
                .text(0, 0)
                == Some("1");
            let setter_id = self.links[node]
                .value("SELECT CONNECTION_ID()", deadline)
                .map_err(e)?
                .unwrap_or_default();
            let done = AtomicBool::new(false);
            let link = &mut self.links[node];
            let (set, killed) = std::thread::scope(|s| {
                let setter = s.spawn(|| {
                    let r = link.run("SET GLOBAL read_only=1", deadline);
                    done.store(true, Ordering::SeqCst);
                    r
                });
                let pass = |killer: &mut Connection| -> Result<(usize, bool), Error> {
                    // Is the setter waiting for its lock (or finished)? Only then are new
                    // writes held before commit, and the session list below complete.
                    let pending = done.load(Ordering::SeqCst)
                        || killer
                            .query_within(
                                &format!(
                                    "SELECT STATE FROM information_schema.PROCESSLIST \
                                     WHERE ID = {setter_id}"
                                ),
                                deadline,
                            )?
                            .text(0, 0)
                            .is_some_and(|state| state.contains("lock"));
                    if !pending {
                        return Ok((0, false));
                    }
                    Ok((Self::kill_sessions(&admin, killer, deadline)?, true))
                };
                let mut killed = 0;
                let mut released = false;
                let mut failure = None;
                while !done.load(Ordering::SeqCst) && !deadline.expired() {
                    match pass(&mut killer) {
                        Ok((n, complete)) => {
                            killed += n;
                            if complete && !released && !done.load(Ordering::SeqCst) {
                                // Every session that could be inside a commit is killed:
                                // release the commits waiting for an acknowledgement.
                                released = true;
                                if let Err(err) = killer.query_within(
                                    "SET GLOBAL rpl_semi_sync_master_enabled=0",
                                    deadline,
                                ) {
                                    failure = Some(err);
                                    break;
                                }
                            }
                        }
                        Err(err) => {
                            failure = Some(err);
                            break;
                        }
                    }
                    std::thread::sleep(Duration::from_millis(2));
                }
                (setter.join(), failure.map(Err).unwrap_or(Ok(killed)))
            });
            let mut killed = killed.map_err(e)?;
            set.map_err(|_| StepError::new(node, &label, StepFailure::Panicked))?
                .map_err(e)?;
            // Sessions that arrived while read_only was being set.
            killed += Self::kill_sessions(&admin, &mut killer, deadline).map_err(e)?;
            if semi_sync_was {
                killer
                    .query_within("SET GLOBAL rpl_semi_sync_master_enabled=1", deadline)
                    .map_err(e)?;
            }
            Ok(killed)
        })();
        let (kind, text) = match &result {
            Ok(killed) => (
                EventKind::Fenced,
                format!("read_only=1, {killed} session(s) killed: {reason}"),
            ),
            Err(e) => (EventKind::StepFailed, format!("fence: {e}")),
        };
        (self.report)(Notice {
            kind,
            node: Some(node),
            writers: None,
            reason: text,
            duration: Some(started.elapsed()),
        });
        result.map(|_| ())
    }

    /// Attach fenced old primary `node` to `to` as a replica (`master_demote_to_slave=1`).
    pub fn rejoin(&mut self, node: NodeId, to: NodeId) -> Result<(), StepError> {
        if self.settings.replication.is_none() {
            let what = format!(
                "rejoin {} to {} (it stays fenced)",
                self.name(node),
                self.name(to)
            );
            let missing = self.failure(node, StepFailure::NoReplicationCredentials);
            return self.step(node, &what, |_| Err::<(), _>(missing));
        }
        let t = self.settings.step_timeout;
        let what = format!("rejoin as a replica of {}", self.name(to));
        self.step(node, &what, |ex| {
            ex.sql(
                node,
                &[
                    "SET GLOBAL read_only=1",
                    "SET GLOBAL rpl_semi_sync_master_enabled=0",
                    "STOP SLAVE",
                ],
                t,
            )?;
            let change = format!(
                "{}, master_demote_to_slave=1",
                ex.change_master(node, to, true)?
            );
            ex.sql_with_secret(node, &[&change], t)?;
            ex.sql(node, &["START SLAVE"], t)
        })
    }

    /// Wait until `node` applied `pos`, in slices of at most 100 ms, for at most `bound`;
    /// gives up at once when `ticket` is cancelled (then `Err` says why).
    fn catch_up(
        &mut self,
        node: NodeId,
        pos: &str,
        bound: Duration,
        ticket: &Ticket,
    ) -> Result<(), StepError> {
        let started = Instant::now();
        let literal = self.literal(node, pos)?;
        let t = self.settings.step_timeout;
        loop {
            if let Some(why) = ticket.cancelled() {
                return Err(self.failure(node, StepFailure::Cancelled(why)));
            }
            let slice = bound
                .saturating_sub(started.elapsed())
                .min(Duration::from_millis(100));
            let sql = format!(
                "SELECT MASTER_GTID_WAIT({literal}, {:.3})",
                slice.as_secs_f64()
            );
            if self.value(node, &sql, slice + t)? == "0" {
                return Ok(());
            }
            if started.elapsed() >= bound {
                return Err(self.failure(
                    node,
                    StepFailure::TimedOut {
                        waiting_for: Awaited::Applied(pos.to_string()),
                        after: bound,
                    },
                ));
            }
        }
    }

    /// Planned switchover: wait until the target caught up (cancellable through `ticket`:
    /// nothing is changed until then), commit the ticket, fence the primary, wait until the
    /// target applied its final position, promote the target, repoint the old primary and
    /// the others, then announce. `Err` tells whether anything was changed.
    pub fn switchover(
        &mut self,
        plan: &SwitchoverPlan,
        ticket: &Ticket,
    ) -> Result<(), SwitchoverError> {
        let (old, new) = (plan.old_primary, plan.target);
        let t = self.settings.step_timeout;
        let unchanged = SwitchoverError::Unchanged;
        // Catch up while the primary still takes writes, so the pause after fencing covers
        // only the last few transactions: repeat while a round takes longer than 20 ms (a
        // replica that applies slower than the primary writes), at most 10 rounds.
        let bound = self.settings.catchup_timeout;
        for _ in 0..10 {
            let now_pos = self
                .value(old, "SELECT @@gtid_binlog_pos", t)
                .map_err(unchanged)?;
            let started = Instant::now();
            let what = format!("catch up before fencing ({})", gtid_or_none(&now_pos));
            self.step(new, &what, |ex| ex.catch_up(new, &now_pos, bound, ticket))
                .map_err(unchanged)?;
            if started.elapsed() < Duration::from_millis(20) {
                break;
            }
        }
        if let Err(why) = ticket.commit() {
            return Err(unchanged(self.failure(old, StepFailure::Cancelled(why))));
        }
        let failed = SwitchoverError::Failed;
        self.step(old, "fence for switchover (read_only=1)", |ex| {
            ex.sql(old, &["SET GLOBAL read_only=1"], t)
        })
        .map_err(failed)?;
        let final_pos = self
            .value(old, "SELECT @@gtid_binlog_pos", t)
            .map_err(failed)?;
        let what = format!("catch up to {}", gtid_or_none(&final_pos));
        let caught_up = self.step(new, &what, |ex| ex.wait_applied(new, &final_pos));
        if let Err(e) = caught_up {
            // Nothing was promoted: give the old primary its writes back.
            let _ = self.sql(old, &["SET GLOBAL read_only=0"], t);
            return Err(SwitchoverError::Reverted(e));
        }
        self.step(new, "detach and make writable", |ex| {
            ex.sql(
                new,
                &[
                    "STOP SLAVE",
                    "RESET SLAVE ALL",
                    "SET GLOBAL rpl_semi_sync_master_enabled=0",
                    "SET GLOBAL read_only=0",
                ],
                t,
            )
        })
        .map_err(failed)?;
        let what = format!("attach old primary to {}", self.name(new));
        if self.settings.replication.is_some() {
            let _ = self.step(old, &what, |ex| {
                ex.sql(
                    old,
                    &["SET GLOBAL rpl_semi_sync_master_enabled=0", "STOP SLAVE"],
                    t,
                )?;
                let change = format!(
                    "{}, master_demote_to_slave=1",
                    ex.change_master(old, new, true)?
                );
                ex.sql_with_secret(old, &[&change], t)?;
                ex.sql(old, &["START SLAVE"], t)
            });
        } else {
            let what = format!("{what} (it stays read-only)");
            let missing = self.failure(old, StepFailure::NoReplicationCredentials);
            let _ = self.step(old, &what, |_| -> Result<(), StepError> { Err(missing) });
        }
        self.settle(new, &plan.repoint);
        self.announce(Some(old), new);
        Ok(())
    }

    fn run_fence_command(&mut self, cmd: &FenceCommand, node: NodeId) -> Result<(), StepError> {
        let spec = &self.nodes[node];
        let input = serde_json::json!({
            "name": spec.name,
            "host": spec.host,
            "port": spec.port,
        })
        .to_string();
        let mut child = Command::new(&cmd.program)
            .args(&cmd.args)
            .env("DRFAILOVER_NODE", &spec.name)
            .env("DRFAILOVER_HOST", &spec.host)
            .env("DRFAILOVER_PORT", spec.port.to_string())
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| {
                fence_failure(node, spec, cmd, FenceCommandFailure::Start(e.to_string()))
            })?;
        // Written from a thread of its own, never joined: a command that never reads its
        // stdin cannot hold the orchestrator past the timeout (the write ends with an error
        // once the command is gone).
        if let Some(mut stdin) = child.stdin.take() {
            std::thread::spawn(move || {
                let _ = stdin.write_all(input.as_bytes());
                let _ = stdin.write_all(b"\n");
            });
        }
        Self::wait_fence_command(&mut child, cmd)
            .map_err(|failure| fence_failure(node, spec, cmd, failure))
    }

    /// Wait for the fence command `child`, killing it after its timeout.
    fn wait_fence_command(
        child: &mut std::process::Child,
        cmd: &FenceCommand,
    ) -> Result<(), FenceCommandFailure> {
        let started = Instant::now();
        loop {
            let exited = child
                .try_wait()
                .map_err(|e| FenceCommandFailure::Start(e.to_string()))?;
            if let Some(status) = exited {
                return if status.success() {
                    Ok(())
                } else {
                    Err(FenceCommandFailure::Exited(status.to_string()))
                };
            }
            if started.elapsed() > cmd.timeout {
                let _ = child.kill();
                let _ = child.wait();
                return Err(FenceCommandFailure::Killed(cmd.timeout));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// The fence command `cmd` for `node` failed with `failure`.
fn fence_failure(
    node: NodeId,
    spec: &NodeSpec,
    cmd: &FenceCommand,
    failure: FenceCommandFailure,
) -> StepError {
    StepError::new(
        node,
        &spec.name,
        StepFailure::FenceCommand {
            program: cmd.program.display().to_string(),
            failure,
        },
    )
}

/// A GTID position for a step's name: the position, or "no transaction yet" when it is empty.
fn gtid_or_none(pos: &str) -> &str {
    if pos.is_empty() {
        "no transaction yet"
    } else {
        pos
    }
}
