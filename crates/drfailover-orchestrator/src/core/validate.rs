//! The start-up check: a first round must show a topology the core can manage before it
//! manages anything. [`Problem`] names each thing wrong, with the node's label.

use std::fmt;

use drfailover_probe::OutcomeClass;

use crate::facts::{NodeProbe, Round};

use super::{Core, NodeId};

/// One thing that keeps the core from managing the topology.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Problem {
    /// A node did not answer.
    Unreachable {
        /// `name (host:port)`.
        node: String,
        /// How the probe failed.
        class: OutcomeClass,
        /// The error message (never a secret).
        detail: String,
    },
    /// `gtid_strict_mode` is off.
    GtidStrictModeOff(String),
    /// The binary log is disabled.
    NoBinlog(String),
    /// More than one replication connection.
    MultiSource {
        /// `name (host:port)`.
        node: String,
        /// How many connections.
        connections: usize,
    },
    /// It replicates without GTID.
    NoGtid(String),
    /// It replicates from an address that is not a configured node.
    StrangerMaster {
        /// `name (host:port)`.
        node: String,
        /// The master's `host:port`.
        master: String,
    },
    /// No writable node.
    NoWriter,
    /// Several writable nodes (their labels).
    SeveralWriters(Vec<String>),
    /// It replicates from another replica.
    ChainedReplica {
        /// `name (host:port)`.
        node: String,
        /// The primary's name.
        primary: String,
    },
    /// It is read-only but does not replicate.
    Detached {
        /// `name (host:port)`.
        node: String,
        /// The primary's name.
        primary: String,
    },
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Problem::Unreachable {
                node,
                class,
                detail,
            } => write!(f, "{node}: unreachable ({class}: {detail})"),
            Problem::GtidStrictModeOff(node) => write!(
                f,
                "{node}: gtid_strict_mode is OFF (set gtid_strict_mode=1 in its configuration)"
            ),
            Problem::NoBinlog(node) => write!(
                f,
                "{node}: binary log disabled (start it with --log-bin and --log-slave-updates)"
            ),
            Problem::MultiSource { node, connections } => write!(
                f,
                "{node}: multi-source replication ({connections} connections) is not managed"
            ),
            Problem::NoGtid(node) => write!(
                f,
                "{node}: replicates without GTID (run CHANGE MASTER TO master_use_gtid=slave_pos)"
            ),
            Problem::StrangerMaster { node, master } => write!(
                f,
                "{node}: replicates from {master}, which is not a configured node"
            ),
            Problem::NoWriter => {
                f.write_str("no writable node: cannot tell which node is the primary")
            }
            Problem::SeveralWriters(labels) => write!(
                f,
                "{} writable nodes ({}): two writers; fence all but one (SET GLOBAL read_only=1)",
                labels.len(),
                labels.join(", ")
            ),
            Problem::ChainedReplica { node, primary } => write!(
                f,
                "{node}: replicates from another replica; only replicas of the primary {primary} are managed"
            ),
            Problem::Detached { node, primary } => write!(
                f,
                "{node}: read-only but not replicating from the primary {primary}"
            ),
        }
    }
}

impl Core {
    /// Check a first round before managing the topology: every node reached, exactly one
    /// writable node, every other node a GTID replica of it (no strangers, no multi-source),
    /// strict GTID mode and binary logs everywhere. Returns the primary, or every problem
    /// found (nothing is changed on any server either way). Pure.
    pub fn validate(&self, round: &Round) -> Result<NodeId, Vec<Problem>> {
        let mut problems = Vec::new();
        let mut writers = Vec::new();
        for (id, probe) in round.nodes.iter().enumerate() {
            let node = self.nodes[id].label();
            match probe {
                NodeProbe::Failed { class, detail } => problems.push(Problem::Unreachable {
                    node,
                    class: *class,
                    detail: detail.clone(),
                }),
                NodeProbe::Reached(f) => {
                    if !f.read_only {
                        writers.push(id);
                    }
                    if !f.gtid_strict_mode {
                        problems.push(Problem::GtidStrictModeOff(node.clone()));
                    }
                    if !f.log_bin {
                        problems.push(Problem::NoBinlog(node.clone()));
                    }
                    if f.replication.len() > 1 {
                        problems.push(Problem::MultiSource {
                            node: node.clone(),
                            connections: f.replication.len(),
                        });
                    }
                    if let Some(r) = f.replica() {
                        if !r.using_gtid {
                            problems.push(Problem::NoGtid(node.clone()));
                        }
                        if self.node_at(&r.master_host, r.master_port).is_none() {
                            problems.push(Problem::StrangerMaster {
                                node,
                                master: format!("{}:{}", r.master_host, r.master_port),
                            });
                        }
                    }
                }
            }
        }
        let primary = match writers.as_slice() {
            [one] => Some(*one),
            [] => {
                problems.push(Problem::NoWriter);
                None
            }
            many => {
                problems.push(Problem::SeveralWriters(
                    many.iter().map(|&i| self.nodes[i].label()).collect(),
                ));
                None
            }
        };
        if let Some(p) = primary {
            for (id, probe) in round.nodes.iter().enumerate() {
                let NodeProbe::Reached(f) = probe else {
                    continue;
                };
                if id == p {
                    continue;
                }
                let node = self.nodes[id].label();
                let primary = self.nodes[p].name.clone();
                if f.replica().is_none() {
                    problems.push(Problem::Detached { node, primary });
                } else if self.master_of(f) != Some(p) {
                    problems.push(Problem::ChainedReplica { node, primary });
                }
            }
        }
        match primary {
            Some(p) if problems.is_empty() => Ok(p),
            _ => Err(problems),
        }
    }
}
