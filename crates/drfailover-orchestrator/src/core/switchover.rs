//! Planning an operator's switchover: the primary must be healthy and the target a
//! replicating replica of it that may be promoted. [`SwitchoverRefused`] says why not.

use std::fmt;

use crate::facts::IoState;
use crate::gtid::{describe_ranges, GtidRange};

use super::{Analysis, Core, SwitchoverPlan};

/// Why a switchover cannot be planned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwitchoverRefused {
    /// No node has that name.
    UnknownNode {
        /// The name asked for.
        target: String,
        /// The configured names.
        known: Vec<String>,
    },
    /// The topology is not healthy (the analysis code).
    NotHealthy(&'static str),
    /// The target is already the primary.
    AlreadyPrimary(String),
    /// The target was never reached.
    NeverReached(String),
    /// The target is not a replica of the primary.
    NotAReplica(String),
    /// The target's replication threads are not both running.
    NotReplicating {
        /// The node asked to become the primary.
        target: String,
        /// Its IO thread.
        io: IoState,
        /// Whether its SQL thread runs.
        sql_running: bool,
    },
    /// The target is configured `never_promote`.
    NeverPromote(String),
    /// The target has transactions the primary never had.
    Errant {
        /// The node asked to become the primary.
        target: String,
        /// The errant ranges.
        ranges: Vec<GtidRange>,
    },
}

impl fmt::Display for SwitchoverRefused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SwitchoverRefused::UnknownNode { target, known } => {
                write!(f, "no node named `{target}` (nodes: {})", known.join(", "))
            }
            SwitchoverRefused::NotHealthy(code) => {
                write!(f, "the topology is not healthy ({code}): no switchover")
            }
            SwitchoverRefused::AlreadyPrimary(t) => write!(f, "{t} is already the primary"),
            SwitchoverRefused::NeverReached(t) => write!(f, "{t} was never reached"),
            SwitchoverRefused::NotAReplica(t) => write!(f, "{t} is not a replica of the primary"),
            SwitchoverRefused::NotReplicating {
                target,
                io,
                sql_running,
            } => write!(
                f,
                "{target} is not replicating (IO {io:?}, SQL running {sql_running})"
            ),
            SwitchoverRefused::NeverPromote(t) => write!(f, "{t} is marked never_promote"),
            SwitchoverRefused::Errant { target, ranges } => write!(
                f,
                "{target} has errant transactions: {}",
                describe_ranges(ranges)
            ),
        }
    }
}

impl Core {
    /// Plan a switchover to `target` (by name). The primary must be healthy and the target a
    /// replica of it, replicating, not excluded. Pure and cheap; nothing is changed.
    pub fn plan_switchover(&self, target: &str) -> Result<SwitchoverPlan, SwitchoverRefused> {
        let name = || target.to_string();
        let target_id = self
            .nodes
            .iter()
            .position(|n| n.name == target)
            .ok_or_else(|| SwitchoverRefused::UnknownNode {
                target: name(),
                known: self.nodes.iter().map(|n| n.name.clone()).collect(),
            })?;
        let Analysis::Healthy { primary } = self.analysis else {
            return Err(SwitchoverRefused::NotHealthy(self.analysis.code()));
        };
        if primary == target_id {
            return Err(SwitchoverRefused::AlreadyPrimary(name()));
        }
        let f = self.tracks[target_id]
            .facts
            .as_ref()
            .ok_or_else(|| SwitchoverRefused::NeverReached(name()))?;
        let rep = f
            .replica()
            .filter(|_| self.master_of(f) == Some(primary))
            .ok_or_else(|| SwitchoverRefused::NotAReplica(name()))?;
        if rep.io != IoState::Running || !rep.sql_running {
            return Err(SwitchoverRefused::NotReplicating {
                target: name(),
                io: rep.io,
                sql_running: rep.sql_running,
            });
        }
        if self.nodes[target_id].never_promote {
            return Err(SwitchoverRefused::NeverPromote(name()));
        }
        if let Some(p) = self.tracks[primary].facts.as_ref() {
            let errant = f
                .binlog_state
                .missing_from(&p.binlog_state, Some(p.server_id));
            if !errant.is_empty() {
                return Err(SwitchoverRefused::Errant {
                    target: name(),
                    ranges: errant,
                });
            }
        }
        let repoint = (0..self.nodes.len())
            .filter(|&i| i != primary && i != target_id)
            .filter(|&i| {
                self.tracks[i]
                    .facts
                    .as_ref()
                    .is_some_and(|f| self.master_of(f) == Some(primary))
            })
            .collect();
        Ok(SwitchoverPlan {
            old_primary: primary,
            target: target_id,
            repoint,
        })
    }
}

impl From<SwitchoverRefused> for String {
    fn from(refused: SwitchoverRefused) -> String {
        refused.to_string()
    }
}
