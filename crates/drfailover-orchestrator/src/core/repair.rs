//! Keeping one writer: split brain and former primaries writable again are fenced; with a
//! healthy primary, former primaries rejoin when their history allows and replicas that
//! follow anyone else are repointed.

use drfailover_notify::EventKind;

use crate::facts::{NodeProbe, Round};
use crate::gtid::describe_ranges;

use super::{Action, Core, Decision, NodeId, Notice};

impl Core {
    /// Writable nodes other than the primary (`writers`, excluding the primary): with a
    /// writable primary, any other writer that is not a former primary is split brain and is
    /// fenced (former primaries are left to [`Core::repair`]); without one, a former primary
    /// writable again is fenced on sight.
    pub(super) fn guard_writers(
        &mut self,
        round: &Round,
        primary: NodeId,
        primary_writable: bool,
        writers: &[NodeId],
        decision: &mut Decision,
    ) {
        for &w in writers.iter().filter(|&&w| w != primary) {
            let former = self.fence_on_sight.contains(&w);
            if former && !primary_writable && round.leader {
                decision.actions.push(Action::Fence {
                    node: w,
                    reason: format!(
                        "{} is a former primary and writable again; fenced on sight",
                        self.name(w)
                    ),
                });
            } else if !former && primary_writable {
                let reason = format!(
                    "{} is writable while {} is the primary: split brain, fencing {}",
                    self.name(w),
                    self.name(primary),
                    self.name(w)
                );
                decision
                    .notices
                    .push(Notice::new(EventKind::SplitBrain, Some(w), reason.clone()));
                if round.leader {
                    decision.actions.push(Action::Fence { node: w, reason });
                }
            }
        }
    }

    /// Healthy primary: fence former primaries on sight, rejoin those that may, repoint
    /// replicas that follow anyone else.
    pub(super) fn repair(&mut self, round: &Round, primary: NodeId, decision: &mut Decision) {
        let primary_state = self.tracks[primary]
            .facts
            .as_ref()
            .map(|f| f.binlog_state.clone())
            .unwrap_or_default();
        for id in 0..self.nodes.len() {
            if id == primary {
                continue;
            }
            let NodeProbe::Reached(f) = &round.nodes[id] else {
                continue;
            };
            if self.fence_on_sight.contains(&id) {
                if !self.fenced.contains(&id) || !f.read_only {
                    if round.leader {
                        decision.actions.push(Action::Fence {
                            node: id,
                            reason: format!(
                                "{} is a former primary, reachable again",
                                self.name(id)
                            ),
                        });
                    }
                    continue;
                }
                if self.master_of(f) == Some(primary) {
                    // Already following the new primary (rejoined by someone).
                    self.fence_on_sight.remove(&id);
                    self.fenced.remove(&id);
                    continue;
                }
                let extra = f.binlog_state.missing_from(&primary_state, None);
                if !extra.is_empty() {
                    let list = describe_ranges(&extra);
                    if self.held_back.get(&id) != Some(&list) {
                        self.held_back.insert(id, list.clone());
                        decision.notices.push(Notice::new(
                            EventKind::Fenced,
                            Some(id),
                            format!(
                                "{} stays fenced: it has transactions the primary {} never received: {list} \
                                 (what the promotion lost; recover them by hand)",
                                self.name(id),
                                self.name(primary)
                            ),
                        ));
                    }
                } else if self.policy.rejoin_old_primary && round.leader {
                    decision.actions.push(Action::Rejoin {
                        node: id,
                        to: primary,
                    });
                }
                continue;
            }
            if let Some(rep) = f.replica() {
                let follows = self.node_at(&rep.master_host, rep.master_port);
                if follows != Some(primary) && round.leader {
                    decision.actions.push(Action::Repoint {
                        node: id,
                        to: primary,
                    });
                }
            }
        }
    }
}
