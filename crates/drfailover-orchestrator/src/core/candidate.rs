//! Candidate choice: which examined replicas may be promoted ([`Excluded`] says why not),
//! and which of them is best (most received, then priority, then configuration order).

use std::cmp::Reverse;
use std::time::Duration;

use crate::facts::NodeFacts;
use crate::gtid::GtidPos;

use super::reasons::{Excluded, Exclusion};
use super::{Core, NodeId};

/// The outcome of the choice.
pub(super) struct Choice {
    /// Eligible replicas, best first.
    pub eligible: Vec<NodeId>,
    /// The others, with why.
    pub excluded: Vec<Exclusion>,
}

impl Core {
    /// What node `id` has received (empty when never reached).
    pub(super) fn received(&self, id: NodeId) -> GtidPos {
        self.tracks[id]
            .facts
            .as_ref()
            .map(|f| f.received().clone())
            .unwrap_or_default()
    }

    /// Why replica `facts` of node `id` may not be promoted, if it may not. The checks run
    /// in the order of [`Excluded`]'s variants; the first that fails is the reason.
    fn exclusion(&self, id: NodeId, facts: &NodeFacts) -> Option<Excluded> {
        let errant = self.primary_last_seen.as_ref().map(|p| {
            facts
                .binlog_state
                .missing_from(&p.binlog_state, Some(p.server_id))
        });
        let lag = facts.replica().and_then(|r| r.seconds_behind);
        if self.nodes[id].never_promote {
            return Some(Excluded::NeverPromote);
        }
        if let Some(errant) = errant.filter(|e| !e.is_empty()) {
            return Some(Excluded::Errant(errant));
        }
        if !facts.log_bin {
            return Some(Excluded::NoBinlog);
        }
        if let Some(errno) = facts
            .replica()
            .map(|r| r.last_sql_errno)
            .filter(|&e| e != 0)
        {
            return Some(Excluded::SqlError(errno));
        }
        match (self.policy.max_promotion_lag, lag) {
            (Some(limit), Some(lag)) if Duration::from_secs(lag) > limit => Some(Excluded::Lag {
                behind_secs: lag,
                limit,
            }),
            _ => None,
        }
    }

    /// Sort `examined` (all reached) into eligible (best first) and excluded.
    pub(super) fn choose(&self, examined: &[NodeId]) -> Choice {
        let mut eligible = Vec::new();
        let mut excluded = Vec::new();
        for &id in examined {
            let Some(facts) = self.tracks[id].facts.as_ref() else {
                continue;
            };
            match self.exclusion(id, facts) {
                Some(why) => excluded.push(Exclusion {
                    node: self.node_ref(id),
                    why,
                }),
                None => eligible.push(id),
            }
        }
        eligible.sort_by_key(|&id| {
            (
                Reverse(self.received(id).total()),
                Reverse(self.nodes[id].priority),
                id,
            )
        });
        Choice { eligible, excluded }
    }
}
