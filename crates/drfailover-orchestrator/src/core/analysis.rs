//! Analysis: typed facts about the primary, classified by one flat table of rules.
//!
//! [`PrimaryFacts`] holds what a round says about the primary (counts and booleans, and what
//! each reachable replica says). [`RULES`] names the situation: every rule whose `matches`
//! holds is a candidate and the one with the lowest `priority` wins. Each [`Code`] has its own
//! recovery function in `recovery.rs`. To change when something happens, change its rule
//! here; to change what happens, change its recovery function.

use std::fmt;

use drfailover_probe::OutcomeClass;

use super::reasons::{joined, NoPrimary, NodeRef, Witness};
use super::NodeId;
use crate::facts::IoState;

/// What the core concluded from the latest round (the analysis code and its facts).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Analysis {
    /// No round seen yet.
    Starting,
    /// The primary answers and is writable.
    Healthy {
        /// The primary this is about (index in the configuration).
        primary: NodeId,
    },
    /// No primary can be named; nothing is done automatically.
    NoPrimary {
        /// Why no primary can be named.
        reason: NoPrimary,
    },
    /// The primary failed some probes, not yet `fall` (or no reachable replica can confirm).
    PrimarySuspect {
        /// The primary this is about (index in the configuration).
        primary: NodeId,
        /// What the round saw of it and its replicas.
        facts: PrimaryFacts,
    },
    /// Only the orchestrator lost the primary: replicas still receive from it. No failover.
    PrimaryUnreachable {
        /// The primary this is about (index in the configuration).
        primary: NodeId,
        /// What the round saw of it and its replicas.
        facts: PrimaryFacts,
    },
    /// The orchestrator cannot reach the primary and every reachable replica lost it too.
    DeadPrimary {
        /// The primary this is about (index in the configuration).
        primary: NodeId,
        /// What the round saw of it and its replicas.
        facts: PrimaryFacts,
    },
}

impl Analysis {
    /// Stable code, e.g. `dead_primary` (for `/status`, metrics and logs).
    pub fn code(&self) -> &'static str {
        match self {
            Analysis::Starting => "starting",
            Analysis::Healthy { .. } => "healthy",
            Analysis::NoPrimary { .. } => "no_primary",
            Analysis::PrimarySuspect { .. } => "primary_suspect",
            Analysis::PrimaryUnreachable { .. } => "primary_unreachable",
            Analysis::DeadPrimary { .. } => "dead_primary",
        }
    }
}

/// What one round says about the primary. Built by the core before any rule runs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrimaryFacts {
    /// The primary as the core knows it.
    pub primary: NodeRef,
    /// It answered this round.
    pub reached: bool,
    /// It answered and is writable.
    pub writable: bool,
    /// Consecutive failed probes.
    pub failures: u32,
    /// `failures` reached the policy's `fall`, or the crash is confirmed (`crash_confirmed`)
    /// or the silence is (`silence_confirmed`).
    pub enough_failures: bool,
    /// The primary refused or dropped the connection (a process gone, not a silent host) and
    /// every reachable replica's IO thread lost it too: a crash, with no `fall` rounds to
    /// wait. Silent faults (time-outs, replicas merely not hearing) never set it.
    pub crash_confirmed: bool,
    /// The primary failed [`SILENCE_CONFIRM_FAILURES`] probes in a row (or `fall`, if fewer)
    /// and every reachable replica lost it too: nothing (no event, no heartbeat) arrived for
    /// two heartbeat periods, timed by the replicas' status read while the primary's probe
    /// was running. A primary that is slow but alive still sends heartbeats, so a replica
    /// still receiving never lets this hold.
    pub silence_confirmed: bool,
    /// The class of its latest failed probe.
    pub last_failure: OutcomeClass,
    /// Every reachable replica of the primary and what it says.
    pub witnesses: Vec<(NodeRef, Witness)>,
    /// The first writable node that is neither the primary nor a former primary.
    pub other_writer: Option<NodeId>,
}

impl PrimaryFacts {
    /// Reachable replicas of the primary.
    pub fn replicas(&self) -> usize {
        self.witnesses.len()
    }

    /// Of those, the ones still receiving from it.
    pub fn receiving(&self) -> usize {
        self.witnesses
            .iter()
            .filter(|(_, w)| !w.lost_primary())
            .count()
    }
}

impl fmt::Display for PrimaryFacts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} failed {} probe(s) ({}); ",
            self.primary, self.failures, self.last_failure
        )?;
        if self.crash_confirmed {
            f.write_str("crash confirmed by every replica's IO thread; ")?;
        } else if self.silence_confirmed {
            f.write_str("silence confirmed by every replica; ")?;
        }
        f.write_str("replicas: ")?;
        if self.witnesses.is_empty() {
            f.write_str("none reachable")?;
            if self.enough_failures {
                f.write_str("; no reachable replica can confirm")?;
            }
            return Ok(());
        }
        // Those that lost the primary first, then those still receiving.
        let (lost, receiving): (Vec<_>, Vec<_>) =
            self.witnesses.iter().partition(|(_, w)| w.lost_primary());
        let lines: Vec<String> = lost
            .iter()
            .chain(receiving.iter())
            .map(|(n, w)| format!("{n}: {w}"))
            .collect();
        f.write_str(&joined(&lines, "; "))
    }
}

/// An analysis code: the name of the situation, with one recovery function each.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Code {
    /// The primary is not writable and another node (not a former primary) is: someone
    /// promoted it.
    PromotedElsewhere,
    /// The primary answered and is writable.
    Healthy,
    /// The primary answered and is read-only.
    PrimaryReadOnly,
    /// The primary failed fewer than `fall` probes.
    PrimarySuspect,
    /// The primary failed `fall` probes and no replica of it is reachable to confirm.
    NoWitness,
    /// The primary failed `fall` probes and some replica still receives from it.
    PrimaryUnreachable,
    /// The primary failed `fall` probes and every reachable replica lost it.
    DeadPrimary,
}

/// One row of the rule table.
pub struct Rule {
    /// The situation this rule names.
    pub code: Code,
    /// Lower wins when several rules match.
    pub priority: u8,
    /// What the situation is, in a sentence (for logs and documentation).
    pub description: &'static str,
    /// Whether the facts show this situation.
    pub matches: fn(&PrimaryFacts) -> bool,
}

/// The rule table.
pub const RULES: &[Rule] = &[
    Rule {
        code: Code::PromotedElsewhere,
        priority: 1,
        description: "the primary is not writable and another node (not a former primary) is: someone promoted it",
        matches: |f| !f.writable && f.other_writer.is_some(),
    },
    Rule {
        code: Code::Healthy,
        priority: 2,
        description: "the primary answers and is writable",
        matches: |f| f.reached && f.writable,
    },
    Rule {
        code: Code::PrimaryReadOnly,
        priority: 3,
        description: "the primary answers but is read-only",
        matches: |f| f.reached && !f.writable,
    },
    Rule {
        code: Code::PrimarySuspect,
        priority: 4,
        description: "the primary failed fewer than `fall` probes",
        matches: |f| !f.reached && !f.enough_failures,
    },
    Rule {
        code: Code::NoWitness,
        priority: 5,
        description: "the primary failed `fall` probes and no replica of it is reachable to confirm",
        matches: |f| !f.reached && f.enough_failures && f.replicas() == 0,
    },
    Rule {
        code: Code::PrimaryUnreachable,
        priority: 6,
        description: "the primary failed `fall` probes but a replica still receives from it",
        matches: |f| !f.reached && f.enough_failures && f.receiving() > 0,
    },
    Rule {
        code: Code::DeadPrimary,
        priority: 7,
        description: "the primary failed `fall` probes and every reachable replica lost it",
        matches: |f| !f.reached && f.enough_failures && f.replicas() > 0 && f.receiving() == 0,
    },
];

/// The rule that names the situation `facts` show: the matching rule with the lowest
/// priority. O(rules).
pub fn classify(facts: &PrimaryFacts) -> &'static Rule {
    RULES
        .iter()
        .filter(|rule| (rule.matches)(facts))
        .min_by_key(|rule| rule.priority)
        .expect("the rules cover every combination of reached, writable and failures")
}

/// Whether a primary not `reached`, whose latest probe failed with `last_failure`, crashed
/// as far as `witnesses` can tell: it refused or dropped the connection (something answered
/// for its host: the process is gone) and at least one replica is reachable and every
/// reachable replica's IO thread is reconnecting to it (not merely stopped). O(replicas).
pub fn crash_confirmed(
    reached: bool,
    last_failure: OutcomeClass,
    witnesses: &[(NodeRef, Witness)],
) -> bool {
    !reached
        && matches!(
            last_failure,
            OutcomeClass::Refused | OutcomeClass::ConnectionLost
        )
        && !witnesses.is_empty()
        && witnesses
            .iter()
            .all(|(_, w)| matches!(w, Witness::IoThread(IoState::Connecting)))
}

/// Consecutive failed probes of a primary that, with every reachable replica having lost it,
/// make it dead without waiting for `fall` (see [`silence_confirmed`]).
pub const SILENCE_CONFIRM_FAILURES: u32 = 2;

/// Whether a primary not `reached`, which failed `failures` probes in a row, went silent as
/// far as `witnesses` can tell: at least `needed` failures, at least one replica reachable,
/// and every reachable replica lost it (IO thread not connected, or nothing received for two
/// heartbeat periods). O(replicas).
pub fn silence_confirmed(
    reached: bool,
    failures: u32,
    needed: u32,
    witnesses: &[(NodeRef, Witness)],
) -> bool {
    !reached
        && failures >= needed
        && !witnesses.is_empty()
        && witnesses.iter().all(|(_, w)| w.lost_primary())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(reached: bool, writable: bool, enough: bool, witnesses: Vec<Witness>) -> PrimaryFacts {
        let node = |id: NodeId| NodeRef {
            id,
            name: format!("db{}", id + 1),
        };
        PrimaryFacts {
            primary: node(0),
            reached,
            writable,
            failures: if enough { 3 } else { 1 },
            enough_failures: enough,
            crash_confirmed: false,
            silence_confirmed: false,
            last_failure: OutcomeClass::TimedOut,
            witnesses: witnesses
                .into_iter()
                .enumerate()
                .map(|(i, w)| (node(i + 1), w))
                .collect(),
            other_writer: None,
        }
    }

    #[test]
    fn every_combination_has_exactly_one_winning_rule() {
        let lost = Witness::NotReplicating;
        let receiving = Witness::Receiving {
            last: std::time::Duration::ZERO,
        };
        for reached in [false, true] {
            for writable in [false, reached] {
                for enough in [false, true] {
                    for witnesses in [
                        vec![],
                        vec![lost.clone()],
                        vec![lost.clone(), receiving.clone()],
                    ] {
                        let mut f = facts(reached, writable, enough, witnesses);
                        classify(&f);
                        f.other_writer = Some(2);
                        classify(&f);
                    }
                }
            }
        }
        let priorities: std::collections::BTreeSet<u8> = RULES.iter().map(|r| r.priority).collect();
        assert_eq!(priorities.len(), RULES.len(), "priorities are distinct");
    }

    #[test]
    fn the_table_names_each_situation() {
        let lost = Witness::IoThread(crate::facts::IoState::Connecting);
        let receiving = Witness::Receiving {
            last: std::time::Duration::ZERO,
        };
        assert_eq!(
            classify(&facts(true, true, false, vec![])).code,
            Code::Healthy
        );
        assert_eq!(
            classify(&facts(true, false, false, vec![])).code,
            Code::PrimaryReadOnly
        );
        assert_eq!(
            classify(&facts(false, false, false, vec![])).code,
            Code::PrimarySuspect
        );
        assert_eq!(
            classify(&facts(false, false, true, vec![])).code,
            Code::NoWitness
        );
        assert_eq!(
            classify(&facts(false, false, true, vec![lost.clone(), receiving])).code,
            Code::PrimaryUnreachable
        );
        assert_eq!(
            classify(&facts(false, false, true, vec![lost.clone()])).code,
            Code::DeadPrimary
        );
        let mut elsewhere = facts(false, false, true, vec![lost]);
        elsewhere.other_writer = Some(2);
        assert_eq!(classify(&elsewhere).code, Code::PromotedElsewhere);
    }
}
