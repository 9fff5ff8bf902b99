//! One recovery function per analysis [`Code`]: what the core does about each situation the
//! rule table names. Actions are emitted only when this orchestrator holds the lock.

use std::time::Instant;

use drfailover_notify::EventKind;
use drfailover_probe::OutcomeClass;

use crate::facts::{NodeProbe, Round};

use super::analysis::{Analysis, Code, PrimaryFacts};
use super::reasons::{Blocked, NoPrimary, Risks};
use super::{Action, Core, Decision, FailoverGrounds, FailoverPlan, NodeId, Notice};

impl Core {
    /// Run the recovery function of `code`.
    pub(super) fn recover(
        &mut self,
        code: Code,
        round: &Round,
        facts: PrimaryFacts,
        decision: &mut Decision,
    ) {
        match code {
            Code::PromotedElsewhere => self.adopt_promoted_elsewhere(round, facts, decision),
            Code::Healthy => self.keep_healthy(round, facts.primary.id, decision),
            Code::PrimaryReadOnly => {
                self.analysis = Analysis::NoPrimary {
                    reason: NoPrimary::PrimaryReadOnly(facts.primary),
                }
            }
            Code::PrimarySuspect | Code::NoWitness => {
                self.analysis = Analysis::PrimarySuspect {
                    primary: facts.primary.id,
                    facts,
                }
            }
            Code::PrimaryUnreachable => self.report_unreachable(facts, decision),
            Code::DeadPrimary => self.fail_over(round, facts, decision),
        }
    }

    /// Someone (a person, another orchestrator, an earlier run of this one) promoted another
    /// node: follow it, and (when leading) run the announcers so DNS names it too — they are
    /// idempotent, so a promotion already announced costs one look at the record. The old
    /// primary is fenced on sight from now on.
    fn adopt_promoted_elsewhere(
        &mut self,
        round: &Round,
        facts: PrimaryFacts,
        decision: &mut Decision,
    ) {
        let old = facts.primary.id;
        let new = facts
            .other_writer
            .expect("the rule matched on another writer");
        // A predecessor's promotion of this very node, stopped after it was made writable:
        // finish it (repoint the others, semi-sync on, announce), not just follow it.
        let finish = self
            .interrupted()
            .filter(|p| p.candidate.id == new)
            .map(|p| {
                format!(
                    "; finishing the promotion a predecessor stopped after step `{}`",
                    p.step.as_str()
                )
            })
            .unwrap_or_default();
        self.adopt(new, old);
        self.restored = None;
        decision.notices.push(Notice {
            writers: Some((Some(old), Some(new))),
            ..Notice::new(
                EventKind::StepCompleted,
                Some(new),
                format!(
                    "adopted {} as primary: writable while {} is {}{finish}",
                    self.name(new),
                    self.name(old),
                    if facts.reached {
                        "read-only"
                    } else {
                        "unreachable"
                    }
                ),
            )
        });
        if round.leader && !finish.is_empty() {
            let repoint = (0..self.nodes.len())
                .filter(|&i| i != old && i != new)
                .filter(|&i| matches!(round.nodes[i], NodeProbe::Reached(_)))
                .collect();
            decision
                .actions
                .push(Action::FinishPromotion { old, new, repoint });
        } else if round.leader {
            decision.actions.push(Action::Announce { old, new });
        }
    }

    /// The primary answers and is writable: remember how it was seen (the zero-loss gate
    /// needs it) and repair the rest of the topology.
    fn keep_healthy(&mut self, round: &Round, primary: NodeId, decision: &mut Decision) {
        self.primary_last_seen = self.tracks[primary].facts.clone();
        self.restored = None;
        if !matches!(self.analysis, Analysis::Healthy { .. }) {
            self.said.clear();
        }
        self.analysis = Analysis::Healthy { primary };
        self.repair(round, primary, decision);
    }

    /// Only the orchestrator lost the primary: say so once per episode, do nothing.
    fn report_unreachable(&mut self, facts: PrimaryFacts, decision: &mut Decision) {
        let primary = facts.primary.id;
        let text = format!("no failover: only the orchestrator lost the primary; {facts}");
        self.analysis = Analysis::PrimaryUnreachable { primary, facts };
        self.say(
            decision,
            "unreachable".into(),
            Notice::new(EventKind::PrimaryUnreachable, Some(primary), text),
        );
    }

    /// The primary is dead: promote the best candidate, unless something blocks it.
    fn fail_over(&mut self, round: &Round, facts: PrimaryFacts, decision: &mut Decision) {
        let primary = facts.primary.id;
        self.analysis = Analysis::DeadPrimary {
            primary,
            facts: facts.clone(),
        };
        match self.plan_failover(round, &facts) {
            Ok(plan) => decision.actions.push(Action::Failover(plan)),
            Err(blocked) => {
                let text = blocked.describe(&facts.primary, &facts);
                self.blocked = Some(blocked);
                self.say(
                    decision,
                    format!("blocked:{text}"),
                    Notice::new(EventKind::FailoverBlocked, Some(primary), text),
                );
            }
        }
    }

    /// The failover plan for a dead primary, or why there is none. Checks, in order: the
    /// lock, anti-flapping, the candidates, the zero-loss gate.
    fn plan_failover(&self, round: &Round, facts: &PrimaryFacts) -> Result<FailoverPlan, Blocked> {
        let now = round.at;
        let primary = facts.primary.id;
        if !round.leader {
            return Err(Blocked::NotLeader);
        }
        if self.flap_blocked(now) {
            return Err(Blocked::AntiFlapping {
                since: self
                    .last_failover
                    .map_or(Default::default(), |t| now.saturating_duration_since(t)),
                period: self.policy.anti_flap,
            });
        }
        let examined = self.examined(round, facts);
        let choice = self.choose(&examined);
        let mut risks = Vec::new();
        let Some(candidate) = self.pick_candidate(&choice.eligible, &examined, &mut risks) else {
            return Err(Blocked::NoCandidate(choice.excluded));
        };
        self.primary_risks(round, primary, &examined, &mut risks);
        let risk = (!risks.is_empty()).then_some(Risks(risks));
        if let Some(risk) = risk.clone().filter(|_| !self.policy.allow_data_loss) {
            return Err(Blocked::DataLossRisk(risk));
        }
        Ok(FailoverPlan {
            old_primary: primary,
            candidate_received: self.received(candidate),
            candidate,
            old_may_be_alive: !self.tracks[primary]
                .last_failure
                .is_some_and(OutcomeClass::is_hard_failure),
            repoint: examined.into_iter().filter(|&r| r != candidate).collect(),
            facts: FailoverGrounds {
                primary: facts.clone(),
                excluded: choice.excluded,
            },
            risk,
            suspected_at: self.suspected_at.unwrap_or(now),
        })
    }

    /// The replicas examined for a promotion: every reachable node that followed the
    /// primary, plus detached read-only nodes (a promotion left half-done by an orchestrator
    /// that died).
    fn examined(&self, round: &Round, facts: &PrimaryFacts) -> Vec<NodeId> {
        let primary = facts.primary.id;
        let mut examined: Vec<NodeId> = facts.witnesses.iter().map(|(n, _)| n.id).collect();
        for (id, track) in self.tracks.iter().enumerate() {
            let detached = id != primary
                && matches!(round.nodes[id], NodeProbe::Reached(_))
                && track
                    .facts
                    .as_ref()
                    .is_some_and(|f| f.read_only && f.replica().is_none())
                && !self.fence_on_sight.contains(&id);
            if detached {
                examined.push(id);
            }
        }
        examined
    }

    /// Make `new` the primary in place of `old` (which is fenced on sight if different).
    pub(super) fn adopt(&mut self, new: NodeId, old: NodeId) {
        self.primary = Some(new);
        if new != old {
            self.fence_on_sight.insert(old);
            self.fenced.remove(&old);
        }
        self.primary_last_seen = self.tracks[new].facts.clone();
        self.suspected_at = None;
        self.generation += 1;
        self.said.clear();
    }

    /// The time the primary was first seen failing in this episode, set at `now` if unset.
    pub(super) fn suspect_since(&mut self, now: Instant) -> Instant {
        *self.suspected_at.get_or_insert(now)
    }
}
