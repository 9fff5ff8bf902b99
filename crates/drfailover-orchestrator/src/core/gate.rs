//! The zero-loss gate: the [`Risk`]s that keep a promotion from being provably lossless.
//! Promote only the replica that received the most, only when semi-sync `AFTER_SYNC` was
//! active on the primary and every replica that could have acknowledged was examined.

use crate::facts::{NodeProbe, Round};

use super::reasons::Risk;
use super::{Core, NodeId};

impl Core {
    /// Pick the candidate among `eligible` (best first): the first that covers everything
    /// every `examined` replica received; failing that the best, with a
    /// [`Risk::CandidateBehind`]. `None` when nothing is eligible.
    pub(super) fn pick_candidate(
        &self,
        eligible: &[NodeId],
        examined: &[NodeId],
        risks: &mut Vec<Risk>,
    ) -> Option<NodeId> {
        let complete = eligible.iter().copied().find(|&c| {
            examined
                .iter()
                .all(|&o| self.received(c).covers(&self.received(o)))
        });
        if complete.is_some() {
            return complete;
        }
        let best = *eligible.first()?;
        let ahead = examined
            .iter()
            .filter(|&&o| !self.received(best).covers(&self.received(o)))
            .map(|&o| (self.node_ref(o), self.received(o)))
            .collect();
        risks.push(Risk::CandidateBehind {
            best: self.node_ref(best),
            at: self.received(best),
            ahead,
        });
        Some(best)
    }

    /// The risks on the primary's side: how it was last seen (semi-sync state), and replicas
    /// that may have acknowledged but cannot be examined this round.
    pub(super) fn primary_risks(&self, round: &Round, primary: NodeId, risks: &mut Vec<Risk>) {
        match &self.primary_last_seen {
            None => risks.push(Risk::PrimaryNeverSeen(self.node_ref(primary))),
            Some(p) if !(p.semi_sync_master_enabled && p.semi_sync_master_active) => {
                risks.push(Risk::SemiSyncInactive {
                    primary: self.node_ref(primary),
                    enabled: p.semi_sync_master_enabled,
                    active: p.semi_sync_master_active,
                })
            }
            Some(p) if !p.semi_sync_after_sync => {
                risks.push(Risk::AfterCommit(self.node_ref(primary)))
            }
            Some(_) => {}
        }
        for (id, track) in self.tracks.iter().enumerate() {
            let was_acker = id != primary
                && track.facts.as_ref().is_some_and(|f| {
                    f.semi_sync_slave_enabled && self.master_of(f) == Some(primary)
                });
            if was_acker && !matches!(round.nodes[id], NodeProbe::Reached(_)) {
                risks.push(Risk::AckerUnreachable(self.node_ref(id)));
            }
        }
    }
}
