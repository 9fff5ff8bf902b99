//! Starting over a failover a predecessor left unfinished: what a (re)started orchestrator
//! may believe from the state a predecessor saved ([`SavedState`]) and from a first round in
//! which the primary does not answer. Pure: the state comes in typed (read by
//! `state_file.rs`), the wall-clock time as a number; out comes a [`Resumption`] (the core
//! then manages the topology as if it had watched the primary die) or the start-up problems.
//!
//! The rule: a topology whose only problems are those an interrupted failover leaves (the
//! primary refusing connections or not answering, a node detached or already writable,
//! replicas still pointing at the dead primary) is managed, never refused. The primary's last healthy facts are trusted
//! only when they name the primary the replicas follow and are younger than the configured
//! age; otherwise the zero-loss gate has no proof and says why ([`Distrust`]).

use std::collections::BTreeSet;
use std::fmt;
use std::time::Duration;

use drfailover_probe::OutcomeClass;

use crate::facts::{NodeFacts, NodeProbe, Round};
use crate::gtid::{GtidPos, GtidState};

use super::analysis::Analysis;
use super::reasons::{NoPrimary, NodeRef};
use super::{Core, NodeId, Problem};

/// The primary as a predecessor last saw it healthy: what the zero-loss gate and the
/// candidate choice need of it. Never a secret.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedPrimary {
    /// The configured node name.
    pub name: String,
    /// Its configured `host:port` (a renamed or moved node is not the same primary).
    pub address: String,
    /// `@@server_id`.
    pub server_id: u32,
    /// `@@rpl_semi_sync_master_enabled`.
    pub semi_sync_enabled: bool,
    /// `Rpl_semi_sync_master_status = ON`.
    pub semi_sync_active: bool,
    /// `@@rpl_semi_sync_master_wait_point = AFTER_SYNC`.
    pub after_sync: bool,
    /// `@@gtid_binlog_state` (errant transactions are judged against it).
    pub binlog_state: GtidState,
    /// What its most advanced replica had received in the same round: some replica must
    /// still hold at least this, or the saved facts are not about this history.
    pub replicated: GtidPos,
    /// When it was seen so, milliseconds since the Unix epoch.
    pub seen_at_unix_ms: u64,
}

/// How far a promotion had gone when its state was last saved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PromotionStep {
    /// Decided; nothing changed yet (or the replicas are being cut off, the candidate
    /// catching up).
    Started,
    /// The candidate applied everything and was detached (`RESET SLAVE ALL`).
    Detached,
    /// The candidate was made writable; the others not yet repointed.
    Writable,
}

impl PromotionStep {
    /// Stable name (the state file and messages).
    pub fn as_str(self) -> &'static str {
        match self {
            PromotionStep::Started => "started",
            PromotionStep::Detached => "detached",
            PromotionStep::Writable => "writable",
        }
    }

    /// The step named `text` ([`PromotionStep::as_str`]).
    pub fn parse(text: &str) -> Option<PromotionStep> {
        [
            PromotionStep::Started,
            PromotionStep::Detached,
            PromotionStep::Writable,
        ]
        .into_iter()
        .find(|s| s.as_str() == text)
    }
}

/// A promotion in progress, as saved before its first change and after its main steps.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SavedPromotion {
    /// The dead primary's name.
    pub old_primary: String,
    /// The candidate's name.
    pub candidate: String,
    /// What the candidate had received when it was chosen.
    pub candidate_received: GtidPos,
    /// The last step saved.
    pub step: PromotionStep,
    /// When the promotion started, milliseconds since the Unix epoch.
    pub started_at_unix_ms: u64,
}

/// Everything a successor needs (the state file's content).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SavedState {
    /// The primary last seen healthy.
    pub primary: Option<SavedPrimary>,
    /// The promotion in progress, if one was.
    pub promotion: Option<SavedPromotion>,
    /// Old primaries not fenced or rejoined yet (names): fenced on sight.
    pub former_primaries: Vec<String>,
}

/// What the start-up found of a predecessor's state.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Loaded {
    /// No `state_dir` is configured.
    NotConfigured,
    /// The directory holds no state file.
    Missing,
    /// The file could not be read or parsed (the reason, never the content).
    Unreadable(String),
    /// The state.
    Found(SavedState),
}

/// Why a predecessor's facts about the primary are not used as proof.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Distrust {
    /// No `state_dir` is configured: nothing was saved.
    NotConfigured,
    /// No state file.
    Missing,
    /// The state file is unreadable.
    Unreadable(String),
    /// The state names no primary seen healthy.
    NoPrimaryRecorded,
    /// The state's primary is not the node the replicas follow (or not configured as saved).
    OtherPrimary {
        /// `name (host:port)` as saved.
        saved: String,
        /// The primary the topology shows.
        actual: NodeRef,
    },
    /// The facts are older than `state_max_age_s`.
    Stale {
        /// Their age at start-up.
        age: Duration,
        /// The configured bound.
        max: Duration,
    },
    /// The facts are dated in the future (a clock moved back, or a foreign file).
    FromTheFuture {
        /// How far ahead.
        ahead: Duration,
    },
}

impl fmt::Display for Distrust {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Distrust::NotConfigured => f.write_str("no state_dir is configured"),
            Distrust::Missing => f.write_str("no state file was left by a predecessor"),
            Distrust::Unreadable(why) => write!(f, "the state file is unusable: {why}"),
            Distrust::NoPrimaryRecorded => {
                f.write_str("the state file records no primary seen healthy")
            }
            Distrust::OtherPrimary { saved, actual } => write!(
                f,
                "the state file's primary {saved} is not the node the replicas follow ({actual})"
            ),
            Distrust::Stale { age, max } => write!(
                f,
                "the state file's facts are {} s old (state_max_age_s = {})",
                age.as_secs(),
                max.as_secs()
            ),
            Distrust::FromTheFuture { ahead } => write!(
                f,
                "the state file's facts are dated {} s in the future",
                ahead.as_secs()
            ),
        }
    }
}

/// A promotion a predecessor left unfinished, resolved to configured nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interrupted {
    /// The candidate it chose.
    pub candidate: NodeRef,
    /// What the candidate had received when chosen.
    pub candidate_received: GtidPos,
    /// The last step saved.
    pub step: PromotionStep,
    /// Time since it started, at start-up.
    pub age: Duration,
}

/// What the core takes over at start-up when the primary does not answer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resumption {
    /// The primary the topology shows (unreachable).
    pub primary: NodeRef,
    /// The saved facts' age when trusted, or why they are not.
    pub facts: Result<Duration, Distrust>,
    /// The predecessor's promotion, when one was in progress for this primary.
    pub promotion: Option<Interrupted>,
    /// A node already writable (a promotion that got that far).
    pub writable: Option<NodeRef>,
    /// Read-only nodes without replication (detached by a promotion).
    pub detached: Vec<NodeRef>,
}

impl fmt::Display for Resumption {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "the primary {} does not answer at start-up",
            self.primary
        )?;
        if let Some(w) = &self.writable {
            write!(f, "; {w} is writable")?;
        }
        if !self.detached.is_empty() {
            write!(
                f,
                "; detached: {}",
                super::reasons::joined(&self.detached, ", ")
            )?;
        }
        if let Some(p) = &self.promotion {
            write!(
                f,
                "; a predecessor's promotion of {} (received {}) stopped after step `{}`, {} s ago: \
                 finishing it",
                p.candidate,
                p.candidate_received,
                p.step.as_str(),
                p.age.as_secs()
            )?;
        }
        match &self.facts {
            Ok(age) => write!(
                f,
                "; the primary's last healthy facts ({} s old) come from the state file",
                age.as_secs()
            ),
            Err(why) => write!(
                f,
                "; no proof of what the primary acknowledged ({why}): no automatic promotion"
            ),
        }
    }
}

/// What the core keeps of a resumption until the primary question is settled.
#[derive(Clone, Debug, Default)]
pub(super) struct Restored {
    /// Why the saved facts are not proof (`None`: they are, see `replicated`).
    pub distrust: Option<Distrust>,
    /// What some replica must still hold (trusted facts only).
    pub replicated: Option<GtidPos>,
    /// The predecessor's unfinished promotion.
    pub promotion: Option<Interrupted>,
}

/// Facts dated this far ahead of the local clock are refused (clocks of one host move back
/// by less).
const FUTURE_TOLERANCE: Duration = Duration::from_secs(60);

/// Problems an interrupted failover leaves behind: anything else is refused as before.
fn left_by_a_failover(p: &Problem) -> bool {
    matches!(
        p,
        Problem::Unreachable { .. }
            | Problem::NoWriter
            | Problem::Detached { .. }
            | Problem::ChainedReplica { .. }
    )
}

impl Core {
    /// Take over a topology the start-up check refused with `problems` (from `round`) when
    /// they are what an interrupted failover leaves: the primary — the node the replicas
    /// follow, or the one `loaded` names when none follows anyone — does not answer, and
    /// every other problem is a detached, writable or still-attached node. The primary's
    /// facts come from `loaded` when they are about that primary and at most `max_age` old
    /// at `now_unix_ms`. Afterwards the core is in `no_primary` until rounds show the
    /// primary dead (then the usual failover, with the gate's proof from the saved facts) or
    /// someone's promotion (adopted; a predecessor's is finished). `Err`: the problems,
    /// unchanged, when it is not such a topology. Pure.
    pub fn resume(
        &mut self,
        round: &Round,
        problems: Vec<Problem>,
        loaded: Loaded,
        now_unix_ms: u64,
        max_age: Duration,
    ) -> Result<Resumption, Vec<Problem>> {
        if !problems.iter().all(left_by_a_failover) {
            return Err(problems);
        }
        let state = match &loaded {
            Loaded::Found(s) => Some(s),
            _ => None,
        };
        let reached = |i: NodeId| match &round.nodes[i] {
            NodeProbe::Reached(f) => Some(&**f),
            NodeProbe::Failed { .. } => None,
        };
        let followed: BTreeSet<NodeId> = (0..self.nodes.len())
            .filter_map(reached)
            .filter_map(|f| self.master_of(f))
            .collect();
        let saved_primary = state
            .and_then(|s| s.primary.as_ref())
            .and_then(|p| self.nodes.iter().position(|n| n.name == p.name));
        let writers: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&i| reached(i).is_some_and(|f| !f.read_only))
            .collect();
        // A predecessor's promotion whose candidate is the one writer: its old primary is the
        // primary to take over, whoever the replicas already follow.
        let promoted_from = state
            .and_then(|s| s.promotion.as_ref())
            .filter(|p| writers.len() == 1 && self.nodes[writers[0]].name == p.candidate)
            .and_then(|p| self.nodes.iter().position(|n| n.name == p.old_primary));
        let primary = match (promoted_from, followed.len(), saved_primary) {
            (Some(p), _, _) => p,
            (None, 1, _) => *followed.iter().next().expect("one"),
            (None, 0, Some(p)) => p,
            _ => return Err(problems),
        };
        // Gone as a dead, frozen or cut-off server is: an answer that refuses this
        // orchestrator (credentials, TLS, too many connections) or an unresolved name is a
        // configuration problem, refused as before; so is a round that reached nobody.
        let gone = matches!(
            round.nodes[primary],
            NodeProbe::Failed {
                class: OutcomeClass::Refused
                    | OutcomeClass::ConnectionLost
                    | OutcomeClass::TimedOut,
                ..
            }
        );
        let anyone = (0..self.nodes.len()).any(|i| reached(i).is_some());
        if !gone || !anyone || writers.len() > 1 {
            return Err(problems);
        }
        let facts = self.trust(primary, state, &loaded, now_unix_ms, max_age);
        let promotion = state
            .and_then(|s| s.promotion.as_ref())
            .filter(|p| p.old_primary == self.nodes[primary].name)
            .and_then(|p| {
                let candidate = self.nodes.iter().position(|n| n.name == p.candidate)?;
                Some(Interrupted {
                    candidate: self.node_ref(candidate),
                    candidate_received: p.candidate_received.clone(),
                    step: p.step,
                    age: Duration::from_millis(now_unix_ms.saturating_sub(p.started_at_unix_ms)),
                })
            });
        let detached = (0..self.nodes.len())
            .filter(|&i| reached(i).is_some_and(|f| f.read_only && f.replica().is_none()))
            .map(|i| self.node_ref(i))
            .collect();
        let (distrust, replicated) = match &facts {
            Ok((_, saved)) => {
                self.primary_last_seen = Some(NodeFacts {
                    server_id: saved.server_id,
                    log_bin: true,
                    gtid_strict_mode: true,
                    semi_sync_master_enabled: saved.semi_sync_enabled,
                    semi_sync_master_active: saved.semi_sync_active,
                    semi_sync_after_sync: saved.after_sync,
                    binlog_state: saved.binlog_state.clone(),
                    ..NodeFacts::default()
                });
                (None, Some(saved.replicated.clone()))
            }
            Err(why) => (Some(why.clone()), None),
        };
        self.restored = Some(Restored {
            distrust,
            replicated,
            promotion: promotion.clone(),
        });
        self.primary = Some(primary);
        self.analysis = Analysis::NoPrimary {
            reason: NoPrimary::PrimaryGoneAtStart(self.node_ref(primary)),
        };
        Ok(Resumption {
            primary: self.node_ref(primary),
            facts: facts.map(|(age, _)| age),
            promotion,
            writable: writers.first().map(|&w| self.node_ref(w)),
            detached,
        })
    }

    /// The saved facts about `primary` and their age, or why they cannot be used.
    fn trust<'s>(
        &self,
        primary: NodeId,
        state: Option<&'s SavedState>,
        loaded: &Loaded,
        now_unix_ms: u64,
        max_age: Duration,
    ) -> Result<(Duration, &'s SavedPrimary), Distrust> {
        let state = match loaded {
            Loaded::NotConfigured => return Err(Distrust::NotConfigured),
            Loaded::Missing => return Err(Distrust::Missing),
            Loaded::Unreadable(why) => return Err(Distrust::Unreadable(why.clone())),
            Loaded::Found(_) => state.expect("found"),
        };
        let saved = state.primary.as_ref().ok_or(Distrust::NoPrimaryRecorded)?;
        let spec = &self.nodes[primary];
        if saved.name != spec.name || saved.address != spec.address() {
            return Err(Distrust::OtherPrimary {
                saved: format!("{} ({})", saved.name, saved.address),
                actual: self.node_ref(primary),
            });
        }
        if saved.seen_at_unix_ms > now_unix_ms + FUTURE_TOLERANCE.as_millis() as u64 {
            return Err(Distrust::FromTheFuture {
                ahead: Duration::from_millis(saved.seen_at_unix_ms - now_unix_ms),
            });
        }
        let age = Duration::from_millis(now_unix_ms.saturating_sub(saved.seen_at_unix_ms));
        if age > max_age {
            return Err(Distrust::Stale { age, max: max_age });
        }
        Ok((age, saved))
    }

    /// The healthy primary's facts to save for a successor (`None` unless the analysis is
    /// healthy): its semi-sync state and binlog state, and what its most advanced replica
    /// received, seen at `now_unix_ms`. Pure; allocates the record.
    pub fn saved_primary(&self, now_unix_ms: u64) -> Option<SavedPrimary> {
        let Analysis::Healthy { primary } = self.analysis else {
            return None;
        };
        // Seen as the writable primary (not as the replica it was before a promotion).
        let facts = self.tracks[primary]
            .facts
            .as_ref()
            .filter(|f| !f.read_only)?;
        let replicated = (0..self.nodes.len())
            .filter(|&i| i != primary)
            .filter_map(|i| self.tracks[i].facts.as_ref())
            .filter(|f| self.master_of(f) == Some(primary))
            .map(|f| f.received().clone())
            .max_by_key(GtidPos::total)
            .unwrap_or_default();
        Some(SavedPrimary {
            name: self.nodes[primary].name.clone(),
            address: self.nodes[primary].address(),
            server_id: facts.server_id,
            semi_sync_enabled: facts.semi_sync_master_enabled,
            semi_sync_active: facts.semi_sync_master_active,
            after_sync: facts.semi_sync_after_sync,
            binlog_state: facts.binlog_state.clone(),
            replicated,
            seen_at_unix_ms: now_unix_ms,
        })
    }

    /// Take over a sound topology the start-up check refused only because old primaries
    /// the saved state names (`former_primaries`) do not answer: the one writable node,
    /// which every reached replica follows, is the primary, and those nodes are fenced on
    /// sight. Returns them; `Err`: the problems, unchanged, otherwise. Pure.
    pub fn resume_former(
        &mut self,
        round: &Round,
        problems: Vec<Problem>,
        loaded: &Loaded,
    ) -> Result<Vec<NodeRef>, Vec<Problem>> {
        let Loaded::Found(state) = loaded else {
            return Err(problems);
        };
        let failed: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&i| matches!(round.nodes[i], NodeProbe::Failed { .. }))
            .collect();
        let writers: Vec<NodeId> = (0..self.nodes.len())
            .filter(|&i| matches!(&round.nodes[i], NodeProbe::Reached(f) if !f.read_only))
            .collect();
        let former = |i: &NodeId| state.former_primaries.contains(&self.nodes[*i].name);
        let only_unreachable = problems
            .iter()
            .all(|p| matches!(p, Problem::Unreachable { .. }));
        match writers.as_slice() {
            [w] if only_unreachable && !failed.is_empty() && failed.iter().all(former) => {
                self.primary = Some(*w);
                for &f in &failed {
                    self.fence_on_sight.insert(f);
                }
                Ok(failed.iter().map(|&f| self.node_ref(f)).collect())
            }
            _ => Err(problems),
        }
    }

    /// The old primaries to save for a successor (names of those fenced on sight).
    pub fn former_primaries(&self) -> Vec<String> {
        self.fence_on_sight
            .iter()
            .map(|&i| self.nodes[i].name.clone())
            .collect()
    }

    /// The unfinished promotion taken over at start-up, while it is still pending.
    pub(super) fn interrupted(&self) -> Option<&Interrupted> {
        self.restored.as_ref().and_then(|r| r.promotion.as_ref())
    }
}
