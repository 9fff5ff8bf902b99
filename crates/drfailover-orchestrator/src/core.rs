//! The decision core: observation rounds and time in, an analysis, actions and notices out.
//! Pure — no I/O, no clock reads (time comes with each [`Round`]) — so every rule is unit
//! tested without servers.
//!
//! `observe → analyse (named conditions with their facts) → decide → execute → observe`:
//! the executor performs the [`Action`]s and reports back with
//! [`Core::failover_finished`], [`Core::switchover_finished`], [`Core::rejoined`] and
//! [`Core::fenced`]. Every step re-reads the world first, so an orchestrator that dies
//! half-way is finished by the next one from what it observes.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use drfailover_notify::EventKind;
use drfailover_probe::OutcomeClass;

use crate::facts::{IoState, NodeFacts, NodeProbe, Round};
use crate::gtid::{describe_ranges, GtidPos};
use crate::policy::{NodeSpec, Policy};

/// Index of a node in the configuration.
pub type NodeId = usize;

/// What the core concluded from the latest round (the analysis code and its facts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Analysis {
    /// No round seen yet.
    Starting,
    /// The primary answers and is writable.
    Healthy {
        /// The primary.
        primary: NodeId,
    },
    /// No primary can be named (reason says why); nothing is done automatically.
    NoPrimary {
        /// Why.
        reason: String,
    },
    /// The primary failed some probes, not yet enough (or the replicas have not yet
    /// stopped receiving).
    PrimarySuspect {
        /// The primary.
        primary: NodeId,
        /// The facts.
        facts: String,
    },
    /// Only the orchestrator lost the primary: replicas still receive from it. No failover.
    PrimaryUnreachable {
        /// The primary.
        primary: NodeId,
        /// The facts.
        facts: String,
    },
    /// The orchestrator cannot reach the primary and every reachable replica lost it too.
    DeadPrimary {
        /// The primary.
        primary: NodeId,
        /// The facts.
        facts: String,
    },
    /// More than one writable node.
    SplitBrain {
        /// The writable nodes.
        writers: Vec<NodeId>,
    },
}

impl Analysis {
    /// Stable code, e.g. `dead_primary`.
    pub fn code(&self) -> &'static str {
        match self {
            Analysis::Starting => "starting",
            Analysis::Healthy { .. } => "healthy",
            Analysis::NoPrimary { .. } => "no_primary",
            Analysis::PrimarySuspect { .. } => "primary_suspect",
            Analysis::PrimaryUnreachable { .. } => "primary_unreachable",
            Analysis::DeadPrimary { .. } => "dead_primary",
            Analysis::SplitBrain { .. } => "split_brain",
        }
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
    pub facts: String,
    /// When the zero-loss gate could not prove safety and `allow_data_loss` is set: the risk.
    pub risk: Option<String>,
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
        /// The node.
        node: NodeId,
        /// Why.
        reason: String,
    },
    /// Point a replica at the primary (`MASTER_USE_GTID=slave_pos`).
    Repoint {
        /// The replica.
        node: NodeId,
        /// The primary.
        to: NodeId,
    },
    /// Run the announcers for a primary promoted elsewhere (idempotent: an announcer that
    /// finds its record current does nothing).
    Announce {
        /// The previous primary.
        old: NodeId,
        /// The primary now.
        new: NodeId,
    },
    /// Attach a fenced old primary to the new primary as a replica (`master_demote_to_slave`).
    Rejoin {
        /// The old primary.
        node: NodeId,
        /// The primary.
        to: NodeId,
    },
}

/// Something to tell the world (becomes a drfailover-notify event).
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

#[derive(Clone, Debug, Default)]
struct Track {
    facts: Option<NodeFacts>,
    failures: u32,
    last_class: Option<OutcomeClass>,
    /// (heartbeats, read position, received) last time it changed, and when.
    progress: Option<(u64, (String, u64), String)>,
    progress_at: Option<Instant>,
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
    failovers: u64,
}

impl Core {
    /// A core for `nodes` with `policy`. Nothing is known until the first round.
    pub fn new(nodes: Vec<NodeSpec>, policy: Policy) -> Core {
        let tracks = vec![Track::default(); nodes.len()];
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
            failovers: 0,
        }
    }

    /// The configured nodes.
    pub fn nodes(&self) -> &[NodeSpec] {
        &self.nodes
    }

    /// The policy.
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

    fn say(&mut self, decision: &mut Decision, key: String, notice: Notice) {
        if self.said.insert(key) {
            decision.notices.push(notice);
        }
    }

    /// Check a first round before managing the topology: every node reached, exactly one
    /// writable node, every other node a GTID replica of it (no strangers, no multi-source),
    /// strict GTID mode and binary logs everywhere. Returns the primary, or every problem
    /// found (nothing is changed on any server either way).
    pub fn validate(&self, round: &Round) -> Result<NodeId, Vec<String>> {
        let mut problems = Vec::new();
        let mut writers = Vec::new();
        for (id, probe) in round.nodes.iter().enumerate() {
            let label = self.nodes[id].label();
            match probe {
                NodeProbe::Failed { class, detail } => {
                    problems.push(format!("{label}: unreachable ({class}: {detail})"))
                }
                NodeProbe::Reached(f) => {
                    if !f.read_only {
                        writers.push(id);
                    }
                    if !f.gtid_strict_mode {
                        problems.push(format!(
                            "{label}: gtid_strict_mode is OFF (set gtid_strict_mode=1 in its configuration)"
                        ));
                    }
                    if !f.log_bin {
                        problems.push(format!(
                            "{label}: binary log disabled (start it with --log-bin and --log-slave-updates)"
                        ));
                    }
                    if f.replication.len() > 1 {
                        problems.push(format!(
                            "{label}: multi-source replication ({} connections) is not managed",
                            f.replication.len()
                        ));
                    }
                    if let Some(r) = f.replica() {
                        if !r.using_gtid {
                            problems.push(format!(
                                "{label}: replicates without GTID (run CHANGE MASTER TO master_use_gtid=slave_pos)"
                            ));
                        }
                        if self.node_at(&r.master_host, r.master_port).is_none() {
                            problems.push(format!(
                                "{label}: replicates from {}:{}, which is not a configured node",
                                r.master_host, r.master_port
                            ));
                        }
                    }
                }
            }
        }
        let primary = match writers.as_slice() {
            [one] => Some(*one),
            [] => {
                problems.push("no writable node: cannot tell which node is the primary".into());
                None
            }
            many => {
                let names: Vec<String> = many.iter().map(|&i| self.nodes[i].label()).collect();
                problems.push(format!(
                    "{} writable nodes ({}): two writers; fence all but one (SET GLOBAL read_only=1)",
                    many.len(),
                    names.join(", ")
                ));
                None
            }
        };
        if let Some(p) = primary {
            for (id, probe) in round.nodes.iter().enumerate() {
                if let NodeProbe::Reached(f) = probe {
                    if id != p && self.master_of(f) != Some(p) && f.replica().is_some() {
                        problems.push(format!(
                            "{}: replicates from another replica; only replicas of the primary {} are managed",
                            self.nodes[id].label(),
                            self.nodes[p].name
                        ));
                    } else if id != p && f.replica().is_none() {
                        problems.push(format!(
                            "{}: read-only but not replicating from the primary {}",
                            self.nodes[id].label(),
                            self.nodes[p].name
                        ));
                    }
                }
            }
        }
        match primary {
            Some(p) if problems.is_empty() => Ok(p),
            _ => Err(problems),
        }
    }

    /// Take in one round and decide. Actions come only when `round.leader`.
    pub fn step(&mut self, round: &Round) -> Decision {
        let mut decision = Decision::default();
        let now = round.at;
        self.update_tracks(round);
        let reached: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&i| matches!(round.nodes[i], NodeProbe::Reached(_)))
            .collect();
        let writers: Vec<NodeId> = reached
            .iter()
            .copied()
            .filter(|&i| self.tracks[i].facts.as_ref().is_some_and(|f| !f.read_only))
            .collect();

        // Name the primary at start, or adopt one promoted elsewhere.
        let primary = match self.primary {
            Some(p) => p,
            None => match self.identify(&writers) {
                Ok(p) => {
                    self.primary = Some(p);
                    p
                }
                Err(reason) => {
                    self.analysis = Analysis::NoPrimary { reason };
                    return decision;
                }
            },
        };
        let primary_reached = reached.contains(&primary);
        let primary_writable = writers.contains(&primary);

        // Writable nodes other than the primary.
        for &w in writers.iter().filter(|&&w| w != primary) {
            if self.fence_on_sight.contains(&w) {
                // A former primary writable again. With a healthy primary, `repair` fences it.
                if !primary_writable && round.leader {
                    decision.actions.push(Action::Fence {
                        node: w,
                        reason: format!(
                            "{} is a former primary and writable again; fenced on sight",
                            self.name(w)
                        ),
                    });
                }
            } else if primary_writable {
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
            } else {
                // The primary is gone or read-only and another node is writable: someone (a
                // person, another orchestrator, a previous incarnation of this one) promoted
                // it. Follow.
                let old = primary;
                self.adopt(w, old, now);
                decision.notices.push(Notice {
                    writers: Some((Some(old), Some(w))),
                    ..Notice::new(
                        EventKind::StepCompleted,
                        Some(w),
                        format!(
                            "adopted {} as primary: writable while {} is {}",
                            self.name(w),
                            self.name(old),
                            if primary_reached {
                                "read-only"
                            } else {
                                "unreachable"
                            }
                        ),
                    )
                });
                return decision;
            }
        }

        if primary_reached {
            self.tracks[primary].failures = 0;
            self.suspected_at = None;
            if primary_writable {
                self.primary_last_seen = self.tracks[primary].facts.clone();
                if !matches!(self.analysis, Analysis::Healthy { .. }) {
                    self.said.clear();
                }
                self.analysis = Analysis::Healthy { primary };
                self.repair(round, primary, &mut decision);
            } else {
                self.analysis = Analysis::NoPrimary {
                    reason: format!(
                        "the primary {} is read-only (fenced by someone?); no automatic action",
                        self.name(primary)
                    ),
                };
            }
            return decision;
        }

        // The primary did not answer.
        let track = &self.tracks[primary];
        let class = track.last_class.unwrap_or(OutcomeClass::TimedOut);
        let failures = track.failures;
        let suspected_at = *self.suspected_at.get_or_insert(now);
        let enough = failures >= self.policy.fall;
        let replicas: Vec<NodeId> = reached
            .iter()
            .copied()
            .filter(|&i| {
                i != primary
                    && self.tracks[i]
                        .facts
                        .as_ref()
                        .is_some_and(|f| self.master_of(f) == Some(primary))
            })
            .collect();
        let mut receiving = Vec::new();
        let mut lost = Vec::new();
        for &r in &replicas {
            let (agrees, fact) = self.replica_lost_primary(r, now);
            if agrees {
                lost.push(fact);
            } else {
                receiving.push(fact);
            }
        }
        let facts = format!(
            "{} failed {failures} probe(s) ({class}); replicas: {}",
            self.name(primary),
            if replicas.is_empty() {
                "none reachable".to_string()
            } else {
                lost.iter()
                    .chain(receiving.iter())
                    .cloned()
                    .collect::<Vec<_>>()
                    .join("; ")
            }
        );
        if !enough {
            self.analysis = Analysis::PrimarySuspect { primary, facts };
            return decision;
        }
        if replicas.is_empty() {
            self.analysis = Analysis::PrimarySuspect {
                primary,
                facts: format!("{facts}; no reachable replica can confirm"),
            };
            return decision;
        }
        if !receiving.is_empty() {
            self.analysis = Analysis::PrimaryUnreachable {
                primary,
                facts: facts.clone(),
            };
            if failures < self.policy.fall {
                // A hard failure the replicas have not noticed yet: give them a moment
                // before saying "only the orchestrator lost it".
                return decision;
            }
            self.say(
                &mut decision,
                "unreachable".into(),
                Notice::new(
                    EventKind::PrimaryUnreachable,
                    Some(primary),
                    format!("no failover: only the orchestrator lost the primary; {facts}"),
                ),
            );
            return decision;
        }
        self.analysis = Analysis::DeadPrimary {
            primary,
            facts: facts.clone(),
        };
        self.decide_failover(round, primary, replicas, facts, suspected_at, &mut decision);
        decision
    }

    fn identify(&self, writers: &[NodeId]) -> Result<NodeId, String> {
        match writers {
            [one] => Ok(*one),
            [] => {
                // No writer: the node the replicas follow, if they agree on one.
                let masters: BTreeSet<NodeId> = self
                    .tracks
                    .iter()
                    .filter_map(|t| t.facts.as_ref())
                    .filter_map(|f| self.master_of(f))
                    .collect();
                match masters.len() {
                    1 => Ok(*masters.iter().next().expect("one")),
                    0 => Err("no writable node and no replica following a configured node".into()),
                    _ => Err("no writable node, and the replicas follow different nodes".into()),
                }
            }
            many => Err(format!(
                "split brain: {} writable nodes ({})",
                many.len(),
                many.iter()
                    .map(|&i| self.name(i).to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            )),
        }
    }

    fn update_tracks(&mut self, round: &Round) {
        for (id, probe) in round.nodes.iter().enumerate() {
            let track = &mut self.tracks[id];
            match probe {
                NodeProbe::Reached(f) => {
                    track.failures = 0;
                    track.last_class = None;
                    let key = f.replica().map(|r| {
                        (
                            r.heartbeats,
                            r.read_position.clone(),
                            r.received.to_string(),
                        )
                    });
                    if key != track.progress || track.progress_at.is_none() {
                        track.progress = key;
                        track.progress_at = Some(round.at);
                    }
                    track.facts = Some((**f).clone());
                }
                NodeProbe::Failed { class, .. } => {
                    track.failures = track.failures.saturating_add(1);
                    track.last_class = Some(*class);
                    if self.fence_on_sight.contains(&id) {
                        self.fenced.remove(&id);
                    }
                }
            }
        }
    }

    /// Whether replica `r` lost its primary: IO thread not connected, or nothing received
    /// (no event, no heartbeat) for two heartbeat periods. With the fact, for messages.
    fn replica_lost_primary(&self, r: NodeId, now: Instant) -> (bool, String) {
        let track = &self.tracks[r];
        let Some(rep) = track.facts.as_ref().and_then(NodeFacts::replica) else {
            return (true, format!("{}: not replicating", self.name(r)));
        };
        if rep.io != IoState::Running {
            return (
                true,
                format!("{}: IO thread {:?}", self.name(r), rep.io).to_lowercase(),
            );
        }
        let period = if rep.heartbeat_period.is_zero() {
            self.policy.heartbeat_period
        } else {
            rep.heartbeat_period
        };
        let silent = track
            .progress_at
            .map_or(Duration::ZERO, |t| now.saturating_duration_since(t));
        if silent >= period * 2 {
            (
                true,
                format!(
                    "{}: nothing received for {} ms (heartbeat {} ms)",
                    self.name(r),
                    silent.as_millis(),
                    period.as_millis()
                ),
            )
        } else {
            (
                false,
                format!(
                    "{}: still receiving (last {} ms ago)",
                    self.name(r),
                    silent.as_millis()
                ),
            )
        }
    }

    fn block(&mut self, decision: &mut Decision, primary: NodeId, reason: String) {
        let key = format!("blocked:{reason}");
        self.say(
            decision,
            key,
            Notice::new(EventKind::FailoverBlocked, Some(primary), reason),
        );
    }

    fn decide_failover(
        &mut self,
        round: &Round,
        primary: NodeId,
        replicas: Vec<NodeId>,
        facts: String,
        suspected_at: Instant,
        decision: &mut Decision,
    ) {
        let now = round.at;
        if !round.leader {
            let reason = format!(
                "dead primary {}, but another orchestrator holds the lock: it acts",
                self.name(primary)
            );
            self.block(decision, primary, reason);
            return;
        }
        if self.flap_blocked(now) {
            let since = self
                .last_failover
                .map_or(0, |t| now.saturating_duration_since(t).as_secs());
            let reason = format!(
                "dead primary {} ({facts}), but the last failover was {since} s ago \
                 (anti-flapping period {} s): run `drfailover ack` to allow another",
                self.name(primary),
                self.policy.anti_flap.as_secs()
            );
            self.block(decision, primary, reason);
            return;
        }
        // Examined: every reachable node that followed the primary, plus detached read-only
        // nodes (a promotion left half-done by an orchestrator that died).
        let mut examined = replicas.clone();
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
        let received = |id: NodeId| -> GtidPos {
            self.tracks[id]
                .facts
                .as_ref()
                .map(|f| f.received().clone())
                .unwrap_or_default()
        };
        let mut excluded = Vec::new();
        let mut eligible = Vec::new();
        for &id in &examined {
            let f = self.tracks[id]
                .facts
                .as_ref()
                .expect("examined nodes were reached");
            let spec = &self.nodes[id];
            let errant = self.primary_last_seen.as_ref().map(|p| {
                f.binlog_state
                    .missing_from(&p.binlog_state, Some(p.server_id))
            });
            let lag = f.replica().and_then(|r| r.seconds_behind);
            if spec.never_promote {
                excluded.push(format!("{}: never_promote", spec.name));
            } else if let Some(errant) = errant.filter(|e| !e.is_empty()) {
                excluded.push(format!(
                    "{}: errant transactions {}",
                    spec.name,
                    describe_ranges(&errant)
                ));
            } else if !f.log_bin {
                excluded.push(format!("{}: binary log disabled", spec.name));
            } else if f.replica().is_some_and(|r| r.last_sql_errno != 0) {
                excluded.push(format!(
                    "{}: SQL thread error {}",
                    spec.name,
                    f.replica().map_or(0, |r| r.last_sql_errno)
                ));
            } else if let (Some(limit), Some(lag)) = (self.policy.max_promotion_lag, lag) {
                if Duration::from_secs(lag) > limit {
                    excluded.push(format!(
                        "{}: {lag} s behind (limit {} s)",
                        spec.name,
                        limit.as_secs()
                    ));
                } else {
                    eligible.push(id);
                }
            } else {
                eligible.push(id);
            }
        }
        // Most received first; then priority; then configuration order.
        eligible.sort_by_key(|&id| {
            (
                std::cmp::Reverse(received(id).total()),
                std::cmp::Reverse(self.nodes[id].priority),
                id,
            )
        });
        let complete = eligible
            .iter()
            .copied()
            .find(|&c| examined.iter().all(|&o| received(c).covers(&received(o))));
        let mut risks = Vec::new();
        let candidate = match (complete, eligible.first()) {
            (Some(c), _) => c,
            (None, Some(&best)) => {
                let ahead: Vec<String> = examined
                    .iter()
                    .filter(|&&o| !received(best).covers(&received(o)))
                    .map(|&o| format!("{} received {}", self.name(o), received(o)))
                    .collect();
                risks.push(format!(
                    "{} (the best eligible, at {}) lacks what others received: {}",
                    self.name(best),
                    received(best),
                    ahead.join("; ")
                ));
                best
            }
            (None, None) => {
                let reason = format!(
                    "dead primary {}: no candidate to promote ({})",
                    self.name(primary),
                    if excluded.is_empty() {
                        "no reachable replica".to_string()
                    } else {
                        excluded.join("; ")
                    }
                );
                self.block(decision, primary, reason);
                return;
            }
        };
        // Zero-loss gate.
        match &self.primary_last_seen {
            None => risks.push(format!(
                "{} was never seen alive by this orchestrator: its semi-sync state is unknown",
                self.name(primary)
            )),
            Some(p) => {
                if !(p.semi_sync_master_enabled && p.semi_sync_master_active) {
                    risks.push(format!(
                        "{} was last seen with semi-sync inactive (enabled={}, status={}): \
                         commits may have been acknowledged that no replica received",
                        self.name(primary),
                        p.semi_sync_master_enabled,
                        if p.semi_sync_master_active {
                            "ON"
                        } else {
                            "OFF"
                        }
                    ));
                } else if !p.semi_sync_after_sync {
                    risks.push(format!(
                        "{} used semi-sync AFTER_COMMIT: commits become visible before a replica has them",
                        self.name(primary)
                    ));
                }
            }
        }
        for (id, track) in self.tracks.iter().enumerate() {
            let was_acker = id != primary
                && track.facts.as_ref().is_some_and(|f| {
                    f.semi_sync_slave_enabled && self.master_of(f) == Some(primary)
                });
            if was_acker && !matches!(round.nodes[id], NodeProbe::Reached(_)) {
                risks.push(format!(
                    "{} may have acknowledged transactions and cannot be examined (unreachable)",
                    self.name(id)
                ));
            }
        }
        let risk = (!risks.is_empty()).then(|| risks.join("; "));
        if let Some(risk) = &risk {
            if !self.policy.allow_data_loss {
                let reason = format!(
                    "dead primary {}: not promoting automatically, acknowledged writes could be lost: {risk} \
                     (set allow_data_loss = true to promote anyway)",
                    self.name(primary)
                );
                self.block(decision, primary, reason);
                return;
            }
        }
        let repoint: Vec<NodeId> = examined
            .iter()
            .copied()
            .filter(|&r| r != candidate)
            .collect();
        let facts = if excluded.is_empty() {
            facts
        } else {
            format!("{facts}; not promotable: {}", excluded.join("; "))
        };
        let old_may_be_alive = !self.tracks[primary]
            .last_class
            .is_some_and(OutcomeClass::is_hard_failure);
        decision.actions.push(Action::Failover(FailoverPlan {
            old_primary: primary,
            candidate_received: received(candidate),
            candidate,
            old_may_be_alive,
            repoint,
            facts,
            risk,
            suspected_at,
        }));
    }

    /// Healthy primary: fence old primaries on sight, rejoin those that may, repoint
    /// replicas that follow anyone else.
    fn repair(&mut self, round: &Round, primary: NodeId, decision: &mut Decision) {
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

    fn adopt(&mut self, new: NodeId, old: NodeId, _now: Instant) {
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

    /// The executor promoted `plan.candidate` (`Ok`) or gave up (`Err`, with why) at `now`.
    /// On success the candidate is the primary, the old one is fenced on sight, and
    /// anti-flapping starts.
    pub fn failover_finished(
        &mut self,
        plan: &FailoverPlan,
        result: Result<(), String>,
        now: Instant,
    ) -> Vec<Notice> {
        match result {
            Ok(()) => {
                self.adopt(plan.candidate, plan.old_primary, now);
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

    /// Plan a switchover to `target` (by name). The primary must be healthy and the target a
    /// replica of it, replicating, not excluded.
    pub fn plan_switchover(&self, target: &str) -> Result<SwitchoverPlan, String> {
        let target_id = self
            .nodes
            .iter()
            .position(|n| n.name == target)
            .ok_or_else(|| {
                format!(
                    "no node named `{target}` (nodes: {})",
                    self.nodes
                        .iter()
                        .map(|n| n.name.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            })?;
        let Analysis::Healthy { primary } = self.analysis else {
            return Err(format!(
                "the topology is not healthy ({}): no switchover",
                self.analysis.code()
            ));
        };
        if primary == target_id {
            return Err(format!("{target} is already the primary"));
        }
        let f = self.tracks[target_id]
            .facts
            .as_ref()
            .ok_or_else(|| format!("{target} was never reached"))?;
        let rep = f
            .replica()
            .filter(|_| self.master_of(f) == Some(primary))
            .ok_or_else(|| format!("{target} is not a replica of the primary"))?;
        if rep.io != IoState::Running || !rep.sql_running {
            return Err(format!(
                "{target} is not replicating (IO {:?}, SQL running {})",
                rep.io, rep.sql_running
            ));
        }
        if self.nodes[target_id].never_promote {
            return Err(format!("{target} is marked never_promote"));
        }
        if let Some(p) = self.tracks[primary].facts.as_ref() {
            let errant = f
                .binlog_state
                .missing_from(&p.binlog_state, Some(p.server_id));
            if !errant.is_empty() {
                return Err(format!(
                    "{target} has errant transactions: {}",
                    describe_ranges(&errant)
                ));
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

    /// The executor finished a switchover (`Ok`: the target is the primary and the old one
    /// a replica of it).
    pub fn switchover_finished(&mut self, plan: &SwitchoverPlan, result: &Result<(), String>) {
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
