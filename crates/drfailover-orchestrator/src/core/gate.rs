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
    /// A predecessor's interrupted choice goes first when it still covers everything.
    pub(super) fn pick_candidate(
        &self,
        eligible: &[NodeId],
        examined: &[NodeId],
        risks: &mut Vec<Risk>,
    ) -> Option<NodeId> {
        let covers_all = |c: NodeId| {
            examined
                .iter()
                .all(|&o| self.received(c).covers(&self.received(o)))
        };
        let chosen_before = self
            .interrupted()
            .map(|p| p.candidate.id)
            .filter(|c| eligible.contains(c));
        let complete = chosen_before
            .into_iter()
            .chain(eligible.iter().copied())
            .find(|&c| covers_all(c));
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
    /// that may have acknowledged but cannot be examined this round. With facts a
    /// predecessor saved: some `examined` replica must hold what a replica had received
    /// then, and every node never seen answering counts as a possible acknowledger.
    pub(super) fn primary_risks(
        &self,
        round: &Round,
        primary: NodeId,
        examined: &[NodeId],
        risks: &mut Vec<Risk>,
    ) {
        let restored = self.restored.as_ref();
        match (
            &self.primary_last_seen,
            restored.and_then(|r| r.distrust.clone()),
        ) {
            (None, Some(why)) => risks.push(Risk::FactsDistrusted {
                primary: self.node_ref(primary),
                why,
            }),
            (None, None) => risks.push(Risk::PrimaryNeverSeen(self.node_ref(primary))),
            (Some(p), _) if !(p.semi_sync_master_enabled && p.semi_sync_master_active) => risks
                .push(Risk::SemiSyncInactive {
                    primary: self.node_ref(primary),
                    enabled: p.semi_sync_master_enabled,
                    active: p.semi_sync_master_active,
                }),
            (Some(p), _) if !p.semi_sync_after_sync => {
                risks.push(Risk::AfterCommit(self.node_ref(primary)))
            }
            (Some(_), _) => {}
        }
        if let Some(replicated) = restored.and_then(|r| r.replicated.as_ref()) {
            if !examined
                .iter()
                .any(|&o| self.received(o).covers(replicated))
            {
                risks.push(Risk::SavedPositionMissing {
                    primary: self.node_ref(primary),
                    replicated: replicated.clone(),
                    examined: examined
                        .iter()
                        .map(|&o| (self.node_ref(o), self.received(o)))
                        .collect(),
                });
            }
        }
        for (id, track) in self.tracks.iter().enumerate() {
            let never_seen = restored.is_some() && track.facts.is_none();
            let was_acker = id != primary
                && (never_seen
                    || track.facts.as_ref().is_some_and(|f| {
                        f.semi_sync_slave_enabled && self.master_of(f) == Some(primary)
                    }));
            if was_acker && !matches!(round.nodes[id], NodeProbe::Reached(_)) {
                risks.push(Risk::AckerUnreachable(self.node_ref(id)));
            }
        }
    }
}
