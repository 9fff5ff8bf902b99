//! Why one executor step failed, typed: the node it ran on and the kind of failure, so the
//! core and the daemon decide on the kind (see docs/ARCHITECTURE.md, "Orchestrator"); text is
//! made only by `Display`, at the edge (events, logs, replies).

use std::fmt;
use std::time::Duration;

use drfailover_mysql::ErrorClass;

use crate::facts::NodeId;

/// A failed step: where, and what went wrong.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepError {
    /// The node the step ran on.
    pub node: NodeId,
    /// Its name, for the text.
    pub name: String,
    /// What went wrong.
    pub kind: StepFailure,
}

/// What went wrong in a step.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StepFailure {
    /// The server could not be reached, the connection broke, or a statement was refused.
    /// `message` is the client library's, with the replication password masked.
    Server {
        /// The MySQL/MariaDB error number (0 when the client wrapper made the error).
        errno: u32,
        /// What kind of failure it is.
        class: ErrorClass,
        /// The client library's message (no secret).
        message: String,
    },
    /// A statement holding the replication password was refused: the server's message is
    /// withheld (it may quote the statement).
    ServerWithheld {
        /// The MySQL/MariaDB error number.
        errno: u32,
        /// What kind of failure it is.
        class: ErrorClass,
    },
    /// A bounded wait ran out.
    TimedOut {
        /// What was awaited.
        waiting_for: Awaited,
        /// How long it waited before giving up.
        after: Duration,
    },
    /// The candidate now reports less received than it did at the decision (its relay log
    /// was discarded?): the promotion is abandoned.
    ReceivedLess {
        /// Received now.
        now: String,
        /// Received at the decision.
        before: String,
    },
    /// Another replica received more than the candidate since the decision: the promotion is
    /// abandoned and the next round decides again.
    Overtaken {
        /// The replica that received more.
        by: NodeId,
        /// Its name, for the text.
        by_name: String,
        /// What it received.
        received: String,
        /// What the candidate had received.
        candidate: String,
    },
    /// A GTID position the server reported could not be read.
    BadPosition(String),
    /// A switchover was cancelled or abandoned before it changed anything (why).
    Cancelled(String),
    /// `[replication]` credentials are needed and not configured.
    NoReplicationCredentials,
    /// The fence command did not confirm the fence.
    FenceCommand {
        /// The program's path, for the text.
        program: String,
        /// How it failed.
        failure: FenceCommandFailure,
    },
    /// An announcer failed (its own error's text).
    Announcer(String),
    /// The thread setting `read_only=1` during a fence panicked.
    Panicked,
}

/// What a bounded wait awaited.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Awaited {
    /// A replica attached (a binlog dump thread), before enabling semi-sync.
    ReplicaAttached,
    /// Semi-sync active on the primary.
    SemiSyncActive,
    /// The node applied a GTID position.
    Applied(String),
    /// The replica's IO thread gone after `KILL`.
    IoThreadGone,
    /// Both replication threads running; what the replica last reported.
    Replicating(String),
}

/// How the fence command failed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FenceCommandFailure {
    /// It could not be started or waited for (the OS error's text).
    Start(String),
    /// It exited unsuccessfully (its exit status).
    Exited(String),
    /// It ran past its timeout and was killed.
    Killed(Duration),
}

impl StepError {
    /// A failure of `kind` on node `node` named `name`.
    pub fn new(node: NodeId, name: &str, kind: StepFailure) -> StepError {
        StepError {
            node,
            name: name.to_string(),
            kind,
        }
    }

    /// Whether the node could not be reached or its connection broke (as opposed to a
    /// refusal, a bound or a decision).
    pub fn unreachable(&self) -> bool {
        matches!(
            self.kind,
            StepFailure::Server {
                class: ErrorClass::ConnectionLost | ErrorClass::Timeout,
                ..
            }
        )
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = &self.name;
        match &self.kind {
            StepFailure::Server { message, .. } => write!(f, "{name}: {message}"),
            StepFailure::ServerWithheld { errno, class } => write!(
                f,
                "{name}: error {errno} ({class:?}; message withheld: the statement holds the \
                 replication password)"
            ),
            StepFailure::TimedOut { waiting_for, after } => {
                let ms = after.as_millis();
                match waiting_for {
                    Awaited::ReplicaAttached => write!(
                        f,
                        "{name}: no replica attached within {ms} ms; semi-sync stays off (the \
                         next failover will refuse to promote automatically)"
                    ),
                    Awaited::SemiSyncActive => {
                        write!(f, "{name}: semi-sync not active within {ms} ms")
                    }
                    Awaited::Applied(pos) => {
                        write!(f, "{name} did not apply {pos} within {ms} ms")
                    }
                    Awaited::IoThreadGone => {
                        write!(f, "{name}: the IO thread survived {ms} ms of KILL")
                    }
                    Awaited::Replicating(status) => {
                        write!(f, "{name}: not replicating after {ms} ms: {status}")
                    }
                }
            }
            StepFailure::ReceivedLess { now, before } => write!(
                f,
                "{name} now reports having received {now}, less than the {before} seen before \
                 (relay log discarded?)"
            ),
            StepFailure::Overtaken {
                by_name,
                received,
                candidate,
                ..
            } => write!(
                f,
                "{by_name} received {received} since the decision, more than the {candidate} of \
                 {name}; the next round decides again"
            ),
            StepFailure::BadPosition(why) => write!(f, "{name}: unreadable GTID position: {why}"),
            StepFailure::Cancelled(why) => write!(f, "abandoned: {why}"),
            StepFailure::NoReplicationCredentials => {
                write!(f, "no [replication] credentials configured")
            }
            StepFailure::FenceCommand { program, failure } => match failure {
                FenceCommandFailure::Start(why) => write!(f, "{program}: {why}"),
                FenceCommandFailure::Exited(status) => write!(f, "{program} exited with {status}"),
                FenceCommandFailure::Killed(after) => {
                    write!(f, "{program} killed after {} ms", after.as_millis())
                }
            },
            StepFailure::Announcer(why) => f.write_str(why),
            StepFailure::Panicked => write!(f, "{name}: read_only thread panicked"),
        }
    }
}

impl std::error::Error for StepError {}

/// Why a switchover did not complete.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwitchoverError {
    /// It could not start (why); nothing was changed.
    NotStarted(String),
    /// A step failed before anything was changed (cancelled, or catch-up failed).
    Unchanged(StepError),
    /// The target did not catch up once the primary was fenced: the old primary was made
    /// writable again; nothing was promoted.
    Reverted(StepError),
    /// A step failed after the topology began changing.
    Failed(StepError),
}

impl SwitchoverError {
    /// Whether the topology is as it was before the switchover.
    pub fn unchanged(&self) -> bool {
        matches!(
            self,
            SwitchoverError::NotStarted(_) | SwitchoverError::Unchanged(_)
        )
    }
}

impl std::fmt::Display for SwitchoverError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SwitchoverError::NotStarted(why) => write!(f, "{why}; nothing changed"),
            SwitchoverError::Unchanged(e) => write!(f, "{e}; nothing changed"),
            SwitchoverError::Reverted(e) => write!(f, "{e}; the old primary is writable again"),
            SwitchoverError::Failed(e) => write!(f, "{e}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lost_connection_or_a_deadline_is_unreachable_a_refusal_is_not() {
        let server = |class| {
            StepError::new(
                1,
                "db2",
                StepFailure::Server {
                    errno: 2013,
                    class,
                    message: "lost".into(),
                },
            )
        };
        assert!(server(ErrorClass::ConnectionLost).unreachable());
        assert!(server(ErrorClass::Timeout).unreachable());
        assert!(!server(ErrorClass::Sql).unreachable());
        assert!(!StepError::new(1, "db2", StepFailure::NoReplicationCredentials).unreachable());
    }

    #[test]
    fn only_a_switchover_stopped_before_any_change_left_the_topology_unchanged() {
        let e = || StepError::new(1, "db2", StepFailure::Cancelled("client gone".into()));
        assert!(SwitchoverError::NotStarted("busy".into()).unchanged());
        assert!(SwitchoverError::Unchanged(e()).unchanged());
        assert!(!SwitchoverError::Reverted(e()).unchanged());
        assert!(!SwitchoverError::Failed(e()).unchanged());
        assert_eq!(
            SwitchoverError::Unchanged(e()).to_string(),
            "abandoned: client gone; nothing changed"
        );
    }

    #[test]
    fn the_text_names_the_node_and_never_a_withheld_message() {
        let e = StepError::new(
            0,
            "db1",
            StepFailure::ServerWithheld {
                errno: 1064,
                class: ErrorClass::Sql,
            },
        );
        let text = e.to_string();
        assert!(text.starts_with("db1: error 1064"), "{text}");
        assert!(text.contains("withheld"), "{text}");
    }
}
