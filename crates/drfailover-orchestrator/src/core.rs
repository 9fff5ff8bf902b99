//! The decision core: observation rounds in, an [`Analysis`], [`Action`]s and [`Notice`]s
//! out. Pure — no I/O, no clock reads (time comes with each [`Round`]), never blocks — so
//! every rule is unit-tested without servers.
//!
//! Each [`Core::step`] works in three stages (see `docs/ARCHITECTURE.md`, "The
//! orchestrator's state machine"):
//! 1. **facts**: the round updates each node's track (`track.rs`) and the core builds the
//!    typed [`PrimaryFacts`];
//! 2. **analysis**: one flat rule table ([`analysis::RULES`]) names the situation;
//! 3. **recovery**: the code's own recovery function (`recovery.rs`) decides, using candidate
//!    choice (`candidate.rs`), the zero-loss gate (`gate.rs`) and repair (`repair.rs`).
//!
//! Call contract: feed every round to [`Core::step`]; perform the returned actions in order
//! and report each back ([`Core::failover_finished`], [`Core::fenced`], [`Core::rejoined`],
//! [`Core::switchover_finished`]); publish the notices. Every step re-reads the world first,
//! so an orchestrator that dies half-way is finished by the next one from what it observes.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::{Duration, Instant};

use drfailover_notify::EventKind;

use crate::facts::{NodeFacts, NodeProbe, Round};
use crate::gtid::GtidPos;
use crate::policy::{NodeSpec, Policy};
use crate::step_error::{StepError, SwitchoverError};

pub mod analysis;
mod candidate;
mod gate;
mod reasons;
mod recovery;
mod repair;
pub mod resume;
mod switchover;
pub mod sync_guard;
mod track;
mod validate;

pub use analysis::{Analysis, Code, PrimaryFacts};
pub use reasons::{Blocked, Excluded, Exclusion, NoPrimary, NodeRef, Risk, Risks, Witness};
pub use resume::{
    Distrust, Interrupted, Loaded, PromotionStep, Resumption, SavedPrimary, SavedPromotion,
    SavedState,
};
pub use switchover::SwitchoverRefused;
pub use sync_guard::{SyncFacts, SyncGuard, HOLD_TIMEOUT_MS};
pub use validate::Problem;

use track::Track;

pub use crate::facts::NodeId;

/// What led to a failover: the facts about the dead primary and the replicas left out.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverGrounds {
    /// What the round saw of the primary and its replicas.
    pub primary: PrimaryFacts,
    /// Replicas that may not be promoted, with why.
    pub excluded: Vec<Exclusion>,
}

impl fmt::Display for FailoverGrounds {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.primary)?;
        if !self.excluded.is_empty() {
            write!(
                f,
                "; not promotable: {}",
                reasons::joined(&self.excluded, "; ")
            )?;
        }
        Ok(())
    }
}

/// A promotion the executor is to carry out, in this order: fence the old primary (when it
/// may be alive and a fence command is configured), stop the candidate receiving, wait until
/// it applied everything it received (bounded), detach it, make it writable, repoint the
/// others, enable semi-sync on it, announce.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FailoverPlan {
    /// The dead primary.
    pub old_primary: NodeId,
    /// The replica to promote.
    pub candidate: NodeId,
    /// What the candidate had received when it was chosen: it must still have at least
    /// this when it is promoted.
    pub candidate_received: GtidPos,
    /// The old primary did not refuse connections (frozen, partitioned): it may be alive.
    pub old_may_be_alive: bool,
    /// Other replicas to repoint to the candidate.
    pub repoint: Vec<NodeId>,
    /// The analysis facts that led here.
    pub facts: FailoverGrounds,
    /// When the zero-loss gate could not prove safety and `allow_data_loss` is set: the risks.
    pub risk: Option<Risks>,
    /// When the primary was first seen failing (for detection and failover durations).
    pub suspected_at: Instant,
}

/// A planned switchover: fence the primary (`read_only=1`), wait until the target applied
/// its final position, promote the target, repoint everyone including the old primary.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SwitchoverPlan {
    /// The current primary.
    pub old_primary: NodeId,
    /// The replica to promote.
    pub target: NodeId,
    /// Other replicas to repoint.
    pub repoint: Vec<NodeId>,
}

/// Work for the executor.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Promote a replica (see [`FailoverPlan`]).
    Failover(FailoverPlan),
    /// `read_only=1` and kill application sessions on a node that must not write.
    Fence {
        /// The node to act on (index in the configuration).
        node: NodeId,
        /// Why it must not write (for the event).
        reason: String,
    },
    /// Point a replica at the primary (`MASTER_USE_GTID=slave_pos`).
    Repoint {
        /// The replica to repoint.
        node: NodeId,
        /// The primary it is to replicate from.
        to: NodeId,
    },
    /// Finish a promotion a predecessor stopped after making `new` writable: repoint
    /// `repoint` to it, enable semi-sync on it once a replica is attached, announce.
    FinishPromotion {
        /// The previous primary.
        old: NodeId,
        /// The promoted node.
        new: NodeId,
        /// The other reachable nodes to repoint.
        repoint: Vec<NodeId>,
    },
    /// Run the announcers for a primary promoted elsewhere and adopted (idempotent: an
    /// announcer that finds its record current does nothing).
    Announce {
        /// The previous primary.
        old: NodeId,
        /// The primary now.
        new: NodeId,
    },
    /// Hold the primary's commits until a replica acknowledges them: set
    /// `rpl_semi_sync_master_timeout` to [`HOLD_TIMEOUT_MS`] (see [`SyncGuard`]).
    HoldCommits {
        /// The primary whose commits are held.
        node: NodeId,
    },
    /// Switch the primary to asynchronous replication (`rpl_semi_sync_master_enabled=0`):
    /// zero-loss protection is suspended until [`Action::ResumeSemiSync`].
    SuspendSemiSync {
        /// The primary switched to asynchronous replication.
        node: NodeId,
        /// Why (for the event).
        reason: String,
    },
    /// Enable semi-sync on the primary again: a replica can acknowledge.
    ResumeSemiSync {
        /// The primary whose semi-sync is enabled again.
        node: NodeId,
    },
    /// Attach a fenced old primary to the new primary as a replica (`master_demote_to_slave`).
    Rejoin {
        /// The old primary.
        node: NodeId,
        /// The primary this is about.
        to: NodeId,
    },
}

/// Something to tell the world: the text edge of the core's typed decisions (becomes a
/// drfailover-notify event).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Notice {
    /// Event kind.
    pub kind: EventKind,
    /// The node concerned.
    pub node: Option<NodeId>,
    /// Old and new primary, where it applies.
    pub writers: Option<(Option<NodeId>, Option<NodeId>)>,
    /// Why, with the facts.
    pub reason: String,
    /// How long something took, where it applies.
    pub duration: Option<Duration>,
}

impl Notice {
    fn new(kind: EventKind, node: Option<NodeId>, reason: impl Into<String>) -> Notice {
        Notice {
            kind,
            node,
            writers: None,
            reason: reason.into(),
            duration: None,
        }
    }
}

/// The outcome of one [`Core::step`].
#[derive(Clone, Debug, Default)]
pub struct Decision {
    /// Actions to perform now, in order (only when this orchestrator leads).
    pub actions: Vec<Action>,
    /// Notices to publish.
    pub notices: Vec<Notice>,
}

/// The pure decision core. Create with [`Core::new`], feed every round to [`Core::step`].
#[derive(Debug)]
pub struct Core {
    nodes: Vec<NodeSpec>,
    policy: Policy,
    tracks: Vec<Track>,
    primary: Option<NodeId>,
    /// The primary's facts when it was last reached.
    primary_last_seen: Option<NodeFacts>,
    suspected_at: Option<Instant>,
    last_failover: Option<Instant>,
    acknowledged: bool,
    generation: u64,
    /// Old primaries: fence the moment they are reachable.
    fence_on_sight: BTreeSet<NodeId>,
    /// Of those, the ones fenced since they were last unreachable.
    fenced: BTreeSet<NodeId>,
    /// Old primaries that cannot rejoin, with the transactions only they have.
    held_back: BTreeMap<NodeId, String>,
    /// Notices already given in the current episode (not repeated every round).
    said: BTreeSet<String>,
    analysis: Analysis,
    /// Why the latest round's dead primary was not failed over, if it was not.
    blocked: Option<Blocked>,
    failovers: u64,
    /// The semi-sync fallback.
    sync: SyncGuard,
    /// What was taken over at start-up from a predecessor (see [`Core::resume`]), until the
    /// primary is seen healthy or replaced.
    restored: Option<resume::Restored>,
}

impl Core {
    /// A core for `nodes` with `policy`. Nothing is known until the first round.
    pub fn new(nodes: Vec<NodeSpec>, policy: Policy) -> Core {
        let tracks = vec![Track::default(); nodes.len()];
        let policy_sync = policy.sync_fallback;
        Core {
            nodes,
            policy,
            tracks,
            primary: None,
            primary_last_seen: None,
            suspected_at: None,
            last_failover: None,
            acknowledged: true,
            generation: 0,
            fence_on_sight: BTreeSet::new(),
            fenced: BTreeSet::new(),
            held_back: BTreeMap::new(),
            said: BTreeSet::new(),
            analysis: Analysis::Starting,
            blocked: None,
            failovers: 0,
            sync: SyncGuard::new(policy_sync),
            restored: None,
        }
    }

    /// The configured nodes.
    pub fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }

    /// The rules (fall, priorities, zero-loss gate, anti-flapping) this core applies.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// The primary as the core knows it.
    pub fn primary(&self) -> Option<NodeId> {
        self.primary
    }

    /// The latest analysis.
    pub fn analysis(&self) -> &Analysis {
        &self.analysis
    }

    /// Why the latest round's dead primary was not failed over (`None` when it was, or when
    /// the primary is not dead).
    pub fn blocked(&self) -> Option<&Blocked> {
        self.blocked.as_ref()
    }

    /// Number of writer changes so far (failovers and switchovers); events carry it.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Failovers performed by this core.
    pub fn failovers(&self) -> u64 {
        self.failovers
    }

    /// Whether automatic failover is blocked by anti-flapping at `now`.
    pub fn flap_blocked(&self, now: Instant) -> bool {
        !self.acknowledged
            && self
                .last_failover
                .is_some_and(|t| now.saturating_duration_since(t) < self.policy.anti_flap)
    }

    /// Old primaries waiting to be fenced or rejoined, and those held back with their extra
    /// transactions.
    pub fn fencing(&self) -> (Vec<NodeId>, &BTreeMap<NodeId, String>) {
        (
            self.fence_on_sight.iter().copied().collect(),
            &self.held_back,
        )
    }

    /// Whether a former primary has not been fenced since it was last unreachable: the
    /// daemon then observes more often, to shrink the window in which it could take writes.
    pub fn awaiting_fence(&self) -> bool {
        self.fence_on_sight.iter().any(|n| !self.fenced.contains(n))
    }

    /// The latest facts of node `id`, if it was ever reached.
    pub fn facts(&self, id: NodeId) -> Option<&NodeFacts> {
        self.tracks[id].facts.as_ref()
    }

    /// Lift an anti-flapping block (`drfailover ack`).
    pub fn acknowledge(&mut self) {
        self.acknowledged = true;
    }

    fn name(&self, id: NodeId) -> &str {
        &self.nodes[id].name
    }

    fn node_ref(&self, id: NodeId) -> NodeRef {
        NodeRef {
            id,
            name: self.nodes[id].name.clone(),
        }
    }

    /// The node a replica connection points at.
    fn node_at(&self, host: &str, port: u16) -> Option<NodeId> {
        self.nodes
            .iter()
            .position(|n| n.host == host && n.port == port)
    }

    fn master_of(&self, facts: &NodeFacts) -> Option<NodeId> {
        facts
            .replica()
            .and_then(|r| self.node_at(&r.master_host, r.master_port))
    }

    /// Push `notice` unless a notice with `key` was already given in this episode.
    fn say(&mut self, decision: &mut Decision, key: String, notice: Notice) {
        if self.said.insert(key) {
            decision.notices.push(notice);
        }
    }

    /// Take in one round and decide. Actions come only when `round.leader`. Pure; costs a
    /// few allocations per node.
    pub fn step(&mut self, round: &Round) -> Decision {
        let mut decision = Decision::default();
        self.blocked = None;
        for (id, probe) in round.nodes.iter().enumerate() {
            self.tracks[id].observe(probe, self.policy.fall, round.at);
            if matches!(probe, NodeProbe::Failed { .. }) && self.fence_on_sight.contains(&id) {
                self.fenced.remove(&id);
            }
        }
        let writers: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&i| match &round.nodes[i] {
                NodeProbe::Reached(f) => !f.read_only,
                NodeProbe::Failed { .. } => false,
            })
            .collect();
        let primary = match self.primary.map_or_else(|| self.identify(&writers), Ok) {
            Ok(p) => p,
            Err(reason) => {
                self.analysis = Analysis::NoPrimary { reason };
                return decision;
            }
        };
        self.primary = Some(primary);
        if matches!(round.nodes[primary], NodeProbe::Reached(_)) {
            self.suspected_at = None;
        } else {
            self.suspect_since(round.at);
        }
        let facts = self.primary_facts(round, primary, &writers);
        self.guard_writers(round, primary, facts.writable, &writers, &mut decision);
        let rule = analysis::classify(&facts);
        self.recover(rule.code, round, facts, &mut decision);
        self.guard_sync(round, &mut decision);
        decision
    }

    /// The semi-sync fallback's round (see [`SyncGuard`]), on the primary the analysis names
    /// healthy (or on the primary, marked not healthy, otherwise).
    fn guard_sync(&mut self, round: &Round, decision: &mut Decision) {
        let (node, healthy) = match (&self.analysis, self.primary) {
            (Analysis::Healthy { primary }, _) => (*primary, true),
            (_, Some(p)) => (p, false),
            _ => return,
        };
        let facts = match &round.nodes[node] {
            NodeProbe::Reached(f) if healthy => f,
            _ => {
                let idle = SyncFacts {
                    node,
                    leader: round.leader,
                    healthy: false,
                    enabled: false,
                    active: false,
                    clients: 0,
                    timeout_ms: HOLD_TIMEOUT_MS,
                    replica_ready: false,
                };
                let nodes = &self.nodes;
                let _ = self.sync.step(&idle, round.at, |i| nodes[i].name.clone());
                return;
            }
        };
        let replica_ready = (0..self.nodes.len()).filter(|&i| i != node).any(|i| {
            matches!(&round.nodes[i], NodeProbe::Reached(r)
                if r.semi_sync_slave_enabled
                    && self.master_of(r) == Some(node)
                    && r.replica().is_some_and(|rep| rep.io == crate::facts::IoState::Running))
        });
        let input = SyncFacts {
            node,
            leader: round.leader,
            healthy,
            enabled: facts.semi_sync_master_enabled,
            active: facts.semi_sync_master_active,
            clients: facts.semi_sync_master_clients,
            timeout_ms: facts.semi_sync_master_timeout_ms,
            replica_ready,
        };
        let nodes = &self.nodes;
        let (actions, notices) = self.sync.step(&input, round.at, |i| nodes[i].name.clone());
        decision.actions.extend(actions);
        decision.notices.extend(notices);
    }

    /// The semi-sync fallback's state (the timeout to restore on exit, what is suspended).
    pub fn sync_guard(&self) -> &SyncGuard {
        &self.sync
    }

    /// The executor carried out (`Ok`) or failed (`Err`) a semi-sync action.
    pub fn sync_action_done(&mut self, action: &Action, ok: bool) {
        match (action, ok) {
            (Action::SuspendSemiSync { node, .. }, true) => self.sync.suspend_done(*node),
            (Action::ResumeSemiSync { node }, true) => self.sync.resume_done(*node),
            (_, false) => self.sync.action_failed(),
            _ => {}
        }
    }

    /// The primary at start: the one writable node, or else the node every replica follows.
    fn identify(&self, writers: &[NodeId]) -> Result<NodeId, NoPrimary> {
        match writers {
            [one] => Ok(*one),
            [] => {
                let masters: BTreeSet<NodeId> = self
                    .tracks
                    .iter()
                    .filter_map(|t| t.facts.as_ref())
                    .filter_map(|f| self.master_of(f))
                    .collect();
                match masters.len() {
                    1 => Ok(*masters.iter().next().expect("one")),
                    0 => Err(NoPrimary::NoWriterNoReplica),
                    _ => Err(NoPrimary::ReplicasDisagree),
                }
            }
            many => Err(NoPrimary::SeveralWriters(
                many.iter().map(|&i| self.node_ref(i)).collect(),
            )),
        }
    }

    /// The typed facts about `primary` in `round` (the first stage of [`Core::step`]).
    fn primary_facts(&self, round: &Round, primary: NodeId, writers: &[NodeId]) -> PrimaryFacts {
        let now = round.at;
        let reached = matches!(round.nodes[primary], NodeProbe::Reached(_));
        let failures = self.tracks[primary].failures();
        let witnesses = (0..self.nodes.len())
            .filter(|&i| i != primary && matches!(round.nodes[i], NodeProbe::Reached(_)))
            .filter(|&i| {
                self.tracks[i]
                    .facts
                    .as_ref()
                    .is_some_and(|f| self.master_of(f) == Some(primary))
            })
            .map(|r| (self.node_ref(r), self.witness(r, now)))
            .collect::<Vec<_>>();
        let last_failure = self.tracks[primary]
            .last_failure
            .unwrap_or(drfailover_probe::OutcomeClass::TimedOut);
        let crash_confirmed = analysis::crash_confirmed(reached, last_failure, &witnesses);
        let silence_confirmed = analysis::silence_confirmed(
            reached,
            failures,
            self.policy.fall.min(analysis::SILENCE_CONFIRM_FAILURES),
            &witnesses,
        );
        PrimaryFacts {
            primary: self.node_ref(primary),
            reached,
            writable: writers.contains(&primary),
            failures,
            enough_failures: failures >= self.policy.fall || crash_confirmed || silence_confirmed,
            crash_confirmed,
            silence_confirmed,
            last_failure,
            witnesses,
            other_writer: writers
                .iter()
                .copied()
                .find(|&w| w != primary && !self.fence_on_sight.contains(&w)),
        }
    }

    /// What replica `r` says about its primary: it lost it when its IO thread is not
    /// connected or nothing (no event, no heartbeat) arrived for two heartbeat periods.
    fn witness(&self, r: NodeId, now: Instant) -> Witness {
        let track = &self.tracks[r];
        let Some(rep) = track.facts.as_ref().and_then(NodeFacts::replica) else {
            return Witness::NotReplicating;
        };
        if rep.io != crate::facts::IoState::Running {
            return Witness::IoThread(rep.io);
        }
        let heartbeat = if rep.heartbeat_period.is_zero() {
            self.policy.heartbeat_period
        } else {
            rep.heartbeat_period
        };
        let silent = track.silent_for(now);
        if silent >= heartbeat * 2 {
            Witness::Silent { silent, heartbeat }
        } else {
            Witness::Receiving { last: silent }
        }
    }

    /// The executor promoted `plan.candidate` (`Ok`) or gave up (`Err`, with why) at `now`.
    /// On success the candidate is the primary, the old one is fenced on sight, and
    /// anti-flapping starts.
    pub fn failover_finished(
        &mut self,
        plan: &FailoverPlan,
        result: Result<(), StepError>,
        now: Instant,
    ) -> Vec<Notice> {
        match result {
            Ok(()) => {
                self.adopt(plan.candidate, plan.old_primary);
                self.restored = None;
                self.last_failover = Some(now);
                self.acknowledged = false;
                self.failovers += 1;
                self.analysis = Analysis::Healthy {
                    primary: plan.candidate,
                };
                Vec::new()
            }
            Err(why) => vec![Notice {
                writers: Some((Some(plan.old_primary), None)),
                ..Notice::new(
                    EventKind::FailoverFailed,
                    Some(plan.candidate),
                    format!(
                        "promotion of {} stopped: {why}; will re-examine",
                        self.name(plan.candidate)
                    ),
                )
            }],
        }
    }

    /// The executor finished a switchover (`Ok`: the target is the primary and the old one
    /// a replica of it).
    pub fn switchover_finished(
        &mut self,
        plan: &SwitchoverPlan,
        result: &Result<(), SwitchoverError>,
    ) {
        if result.is_ok() {
            self.primary = Some(plan.target);
            self.primary_last_seen = self.tracks[plan.target].facts.clone();
            self.generation += 1;
            self.said.clear();
        }
    }

    /// The executor fenced `node` (`read_only=1`, sessions killed).
    pub fn fenced(&mut self, node: NodeId) {
        if self.fence_on_sight.contains(&node) {
            self.fenced.insert(node);
        }
    }

    /// The executor attached old primary `node` as a replica.
    pub fn rejoined(&mut self, node: NodeId) {
        self.fence_on_sight.remove(&node);
        self.fenced.remove(&node);
        self.held_back.remove(&node);
    }
}

#[cfg(test)]
mod tests;
