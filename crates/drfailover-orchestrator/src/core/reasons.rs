//! The typed reasons behind the core's decisions, and their text. Decisions and tests match
//! on the variants; the text is made only here, for events and logs.

use std::fmt;
use std::time::Duration;

use crate::facts::IoState;
use crate::gtid::{describe_ranges, GtidPos, GtidRange};

use super::NodeId;

/// A node as a decision names it: its index in the configuration and its name (for text).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRef {
    /// Index in the configuration.
    pub id: NodeId,
    /// The configured name (`db1`).
    pub name: String,
}

impl fmt::Display for NodeRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)
    }
}

/// What a reachable replica says about its primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Witness {
    /// It has no replication connection any more.
    NotReplicating,
    /// Its IO thread is not connected (`Connecting` or stopped).
    IoThread(IoState),
    /// Connected, but nothing (no event, no heartbeat) arrived for two heartbeat periods.
    Silent {
        /// Time since its replication progress last moved.
        silent: Duration,
        /// Its heartbeat period.
        heartbeat: Duration,
    },
    /// It still receives from the primary.
    Receiving {
        /// Time since its replication progress last moved.
        last: Duration,
    },
}

impl Witness {
    /// Whether this replica lost its primary too.
    pub fn lost_primary(&self) -> bool {
        !matches!(self, Witness::Receiving { .. })
    }
}

impl fmt::Display for Witness {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Witness::NotReplicating => f.write_str("not replicating"),
            Witness::IoThread(io) => write!(f, "io thread {}", format!("{io:?}").to_lowercase()),
            Witness::Silent { silent, heartbeat } => write!(
                f,
                "nothing received for {} ms (heartbeat {} ms)",
                silent.as_millis(),
                heartbeat.as_millis()
            ),
            Witness::Receiving { last } => {
                write!(f, "still receiving (last {} ms ago)", last.as_millis())
            }
        }
    }
}

/// Why a replica is not a promotion candidate, in the order the rules are checked.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Excluded {
    /// Configured `never_promote`.
    NeverPromote,
    /// It has transactions the primary never had (errant transactions).
    Errant(Vec<GtidRange>),
    /// Its binary log is disabled: it could not serve replicas.
    NoBinlog,
    /// Its SQL thread stopped on an error (the errno).
    SqlError(u32),
    /// Its apply lag exceeds `max_promotion_lag`.
    Lag {
        /// `Seconds_Behind_Master`.
        behind_secs: u64,
        /// The configured limit.
        limit: Duration,
    },
}

impl fmt::Display for Excluded {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Excluded::NeverPromote => f.write_str("never_promote"),
            Excluded::Errant(ranges) => {
                write!(f, "errant transactions {}", describe_ranges(ranges))
            }
            Excluded::NoBinlog => f.write_str("binary log disabled"),
            Excluded::SqlError(errno) => write!(f, "SQL thread error {errno}"),
            Excluded::Lag { behind_secs, limit } => {
                write!(f, "{behind_secs} s behind (limit {} s)", limit.as_secs())
            }
        }
    }
}

/// A replica left out of the choice, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exclusion {
    /// The replica left out.
    pub node: NodeRef,
    /// Why it may not be promoted.
    pub why: Excluded,
}

impl fmt::Display for Exclusion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.node, self.why)
    }
}

/// Why the zero-loss gate cannot prove that a promotion loses no acknowledged write.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Risk {
    /// The best eligible candidate lacks what other replicas received.
    CandidateBehind {
        /// The candidate that would be promoted.
        best: NodeRef,
        /// What it received.
        at: GtidPos,
        /// The replicas that received more, with what they received.
        ahead: Vec<(NodeRef, GtidPos)>,
    },
    /// The primary was never seen alive by this orchestrator: its semi-sync state is unknown.
    PrimaryNeverSeen(NodeRef),
    /// The primary was last seen with semi-sync inactive.
    SemiSyncInactive {
        /// The primary this is about.
        primary: NodeRef,
        /// `rpl_semi_sync_master_enabled`.
        enabled: bool,
        /// `Rpl_semi_sync_master_status`.
        active: bool,
    },
    /// The primary used semi-sync `AFTER_COMMIT`.
    AfterCommit(NodeRef),
    /// A replica that may have acknowledged transactions cannot be examined.
    AckerUnreachable(NodeRef),
    /// The primary was not seen alive by this orchestrator and no predecessor's facts
    /// can stand in for it.
    FactsDistrusted {
        /// The primary this is about.
        primary: NodeRef,
        /// Why the saved facts are not proof.
        why: super::resume::Distrust,
    },
    /// No examined replica holds what the saved facts say a replica had received: the
    /// facts contradict the servers.
    SavedPositionMissing {
        /// The primary this is about.
        primary: NodeRef,
        /// What a replica had received when the facts were saved.
        replicated: GtidPos,
        /// What each examined replica holds now.
        examined: Vec<(NodeRef, GtidPos)>,
    },
}

impl fmt::Display for Risk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Risk::CandidateBehind { best, at, ahead } => {
                let ahead: Vec<String> = ahead
                    .iter()
                    .map(|(n, pos)| format!("{n} received {pos}"))
                    .collect();
                write!(
                    f,
                    "{best} (the best eligible, at {at}) lacks what others received: {}",
                    ahead.join("; ")
                )
            }
            Risk::PrimaryNeverSeen(p) => write!(
                f,
                "{p} was never seen alive by this orchestrator: its semi-sync state is unknown"
            ),
            Risk::SemiSyncInactive {
                primary,
                enabled,
                active,
            } => write!(
                f,
                "{primary} was last seen with semi-sync inactive (enabled={enabled}, status={}): \
                 commits may have been acknowledged that no replica received",
                if *active { "ON" } else { "OFF" }
            ),
            Risk::AfterCommit(p) => write!(
                f,
                "{p} used semi-sync AFTER_COMMIT: commits become visible before a replica has them"
            ),
            Risk::AckerUnreachable(n) => write!(
                f,
                "{n} may have acknowledged transactions and cannot be examined (unreachable)"
            ),
            Risk::FactsDistrusted { primary, why } => write!(
                f,
                "{primary} was never seen alive by this orchestrator and {why}: its semi-sync \
                 state is unknown"
            ),
            Risk::SavedPositionMissing {
                primary,
                replicated,
                examined,
            } => {
                let held: Vec<String> = examined
                    .iter()
                    .map(|(n, pos)| format!("{n} holds {pos}"))
                    .collect();
                write!(
                    f,
                    "the saved facts about {primary} say a replica had received {replicated}, \
                     but no replica holds it ({}): the state file contradicts the servers",
                    if held.is_empty() {
                        "none examined".to_string()
                    } else {
                        held.join("; ")
                    }
                )
            }
        }
    }
}

/// The risks of one promotion (never empty when present).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Risks(pub Vec<Risk>);

impl fmt::Display for Risks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        join(f, &self.0, "; ")
    }
}

/// Why a dead primary is not failed over automatically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Blocked {
    /// Another orchestrator holds the majority lock: it acts.
    NotLeader,
    /// The last failover is younger than the anti-flapping period and not acknowledged.
    AntiFlapping {
        /// Time since the last failover.
        since: Duration,
        /// The anti-flapping period.
        period: Duration,
    },
    /// No replica may be promoted (none reachable, or every one excluded).
    NoCandidate(Vec<Exclusion>),
    /// The zero-loss gate cannot prove safety and `allow_data_loss` is off.
    DataLossRisk(Risks),
}

impl Blocked {
    /// The notice text, naming the dead primary and the facts that led here.
    pub fn describe(&self, primary: &NodeRef, facts: &dyn fmt::Display) -> String {
        match self {
            Blocked::NotLeader => {
                format!("dead primary {primary}, but another orchestrator holds the lock: it acts")
            }
            Blocked::AntiFlapping { since, period } => format!(
                "dead primary {primary} ({facts}), but the last failover was {} s ago \
                 (anti-flapping period {} s): run `drfailover ack` to allow another",
                since.as_secs(),
                period.as_secs()
            ),
            Blocked::NoCandidate(excluded) => format!(
                "dead primary {primary}: no candidate to promote ({})",
                if excluded.is_empty() {
                    "no reachable replica".to_string()
                } else {
                    joined(excluded, "; ")
                }
            ),
            Blocked::DataLossRisk(risks) => format!(
                "dead primary {primary}: not promoting automatically, acknowledged writes could \
                 be lost: {risks} (set allow_data_loss = true to promote anyway)"
            ),
        }
    }
}

/// Why no primary can be named; nothing is done automatically.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoPrimary {
    /// No writable node, and no replica follows a configured node.
    NoWriterNoReplica,
    /// No writable node, and the replicas follow different nodes.
    ReplicasDisagree,
    /// Several writable nodes and no primary known yet.
    SeveralWriters(Vec<NodeRef>),
    /// The primary answers but is read-only (fenced by someone?).
    PrimaryReadOnly(NodeRef),
    /// The primary did not answer when this orchestrator started (a failover may have been
    /// interrupted): it is watched like a failing primary.
    PrimaryGoneAtStart(NodeRef),
}

impl fmt::Display for NoPrimary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NoPrimary::NoWriterNoReplica => {
                f.write_str("no writable node and no replica following a configured node")
            }
            NoPrimary::ReplicasDisagree => {
                f.write_str("no writable node, and the replicas follow different nodes")
            }
            NoPrimary::SeveralWriters(writers) => write!(
                f,
                "split brain: {} writable nodes ({})",
                writers.len(),
                joined(writers, ", ")
            ),
            NoPrimary::PrimaryReadOnly(p) => write!(
                f,
                "the primary {p} is read-only (fenced by someone?); no automatic action"
            ),
            NoPrimary::PrimaryGoneAtStart(p) => write!(
                f,
                "the primary {p} did not answer at start-up; watching it as a failing primary"
            ),
        }
    }
}

/// `items` rendered and joined with `sep`.
pub(crate) fn joined<T: fmt::Display>(items: &[T], sep: &str) -> String {
    items.iter().map(T::to_string).collect::<Vec<_>>().join(sep)
}

fn join<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T], sep: &str) -> fmt::Result {
    f.write_str(&joined(items, sep))
}
