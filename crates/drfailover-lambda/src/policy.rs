//! The decision, as a pure function of what has been observed so far: [`next`] looks at the
//! trigger, the configuration's one switch (promote or not), the [`Facts`] gathered and the
//! time left, and names the one next [`NextAction`]: observe something, act, wait, or finish with
//! an [`InvocationOutcome`] or a [`Refusal`]. The executor ([`crate::handler`]) performs the step,
//! records what it saw in the facts, and asks again. No I/O, no clock: `now` is a parameter.
//!
//! The order is the guard rail:
//! 1. verify the primary: it has failed only if RDS reports it failed, or the database probe
//!    fails *and* RDS does not report it available;
//! 2. read the PRIMARY record: if it no longer names the primary, someone else acted;
//! 3. make the secondary writable: promote it when configured and it is still a replica
//!    (once per invocation; a promotion already under way counts), then wait until the probe
//!    sees it writable, bounded by the deadline;
//! 4. only then swap the record pair (compare-and-swap).

use std::time::{Duration, Instant};

use crate::rds::{DbInstance, PromoteReply};

/// What a bounded database probe (connect, handshake, `@@read_only`) saw.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum DbSeen {
    /// Up and writable (`@@read_only = 0`, `@@innodb_read_only = 0`).
    Writable,
    /// Up and read-only.
    ReadOnly,
    /// Not answering: refused, timed out, handshake or login failed. The detail names the
    /// stage and never holds a secret.
    Unreachable(String),
}

impl DbSeen {
    /// One word for messages: `writable`, `read-only`, `unreachable`.
    pub fn as_str(&self) -> &'static str {
        match self {
            DbSeen::Writable => "writable",
            DbSeen::ReadOnly => "read-only",
            DbSeen::Unreachable(_) => "unreachable",
        }
    }
}

/// What the PRIMARY failover record names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RecordSeen {
    /// The configured primary: nobody has failed over yet.
    NamesPrimary,
    /// The secondary: the swap is done.
    NamesSecondary,
    /// Something else (values as found).
    NamesOther(Vec<String>),
}

/// What the swap did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SwapResult {
    /// This invocation's change batch was accepted (change id).
    Swapped(String),
    /// The PRIMARY record was changed by someone else before ours applied (as found).
    ChangedByOther(RecordSeen),
}

/// Everything observed during one invocation. `None`: not observed yet.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Facts {
    /// The database probe of the primary.
    pub primary_db: Option<DbSeen>,
    /// RDS's view of the primary (`Some(None)`: RDS does not know it).
    pub primary_rds: Option<Option<DbInstance>>,
    /// The PRIMARY record before any action.
    pub record: Option<RecordSeen>,
    /// RDS's view of the secondary, refreshed while waiting.
    pub secondary_rds: Option<Option<DbInstance>>,
    /// The latest database probe of the secondary.
    pub secondary_db: Option<DbSeen>,
    /// This invocation's `PromoteReadReplica`, if it sent one.
    pub promotion: Option<PromoteReply>,
    /// The swap, once done.
    pub swap: Option<SwapResult>,
}

/// The next thing to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NextAction {
    /// Probe the primary's database.
    ProbePrimary,
    /// `DescribeDBInstances` of the primary.
    DescribePrimary,
    /// Read the PRIMARY record set.
    ReadRecord,
    /// `DescribeDBInstances` of the secondary.
    DescribeSecondary,
    /// Probe the secondary's database.
    ProbeSecondary,
    /// `PromoteReadReplica` of the secondary.
    Promote,
    /// Wait `Duration`, then probe the secondary (and describe it) again.
    WaitForWritable(Duration),
    /// Swap the failover pair, compare-and-swap on the PRIMARY record.
    Swap,
    /// End the invocation without error, with what it came to.
    Finish(InvocationOutcome),
    /// Stop: an error to return (Lambda retries the event, then its DLQ gets it). Nothing
    /// was pointed at a node that is not writable.
    Refuse(Refusal),
}

/// Why the primary is considered failed, or not.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PrimaryVerdict {
    /// True when the failover must go on.
    pub failed: bool,
    /// The facts, in words: `probe: unreachable (…); RDS: stopped`.
    pub because: String,
}

/// How an invocation ended without error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum InvocationOutcome {
    /// The primary is healthy: nothing changed.
    NoAction(PrimaryVerdict),
    /// The PRIMARY record no longer named the primary when first read: someone else acted,
    /// nothing changed.
    AlreadyDone(RecordSeen),
    /// The secondary is writable and the record pair names it as PRIMARY: by this invocation
    /// (`Swapped`) or, in a race, by another (`ChangedByOther`).
    FailedOver {
        /// Why the primary was considered failed.
        verdict: PrimaryVerdict,
        /// Whether this invocation's `PromoteReadReplica` was accepted.
        promoted: bool,
        /// Whether this invocation swapped the record pair or found it swapped by another.
        swap: SwapResult,
    },
}

/// Why an invocation stopped with an error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// The secondary is not writable and this function may not or cannot make it so.
    SecondaryNotWritable(String),
    /// The secondary did not become writable before the deadline.
    NotWritableInTime(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::SecondaryNotWritable(why) => {
                write!(
                    f,
                    "the secondary is not writable, DNS left unchanged: {why}"
                )
            }
            Refusal::NotWritableInTime(why) => write!(
                f,
                "the secondary did not become writable before the deadline, DNS left \
                 unchanged: {why}"
            ),
        }
    }
}

/// How often the secondary is probed while it is being promoted (one `SELECT` on an open
/// connection each time).
pub const WRITABLE_POLL: Duration = Duration::from_millis(50);

fn describe_rds(rds: &Option<DbInstance>) -> String {
    match rds {
        None => "not found".into(),
        Some(i) => match &i.replica_source {
            Some(source) => format!("{} (replica of {source})", i.status),
            None => i.status.clone(),
        },
    }
}

fn describe_db(db: &DbSeen) -> String {
    match db {
        DbSeen::Unreachable(why) => format!("unreachable ({why})"),
        other => other.as_str().to_string(),
    }
}

/// Whether the primary has failed, from its probe and RDS's view. Pure.
pub fn verdict(db: &DbSeen, rds: &Option<DbInstance>) -> PrimaryVerdict {
    let rds_failed = rds.as_ref().is_some_and(DbInstance::is_failed);
    let rds_available = rds.as_ref().is_some_and(DbInstance::is_available);
    let failed = rds_failed || (*db != DbSeen::Writable && !rds_available);
    PrimaryVerdict {
        failed,
        because: format!("probe: {}; RDS: {}", describe_db(db), describe_rds(rds)),
    }
}

/// The next step. `promote` is the configuration's `PROMOTE_READ_REPLICA`; `deadline` is
/// when the work must stop. Pure.
pub fn next(facts: &Facts, promote: bool, now: Instant, deadline: Instant) -> NextAction {
    let Some(primary_db) = &facts.primary_db else {
        return NextAction::ProbePrimary;
    };
    let Some(primary_rds) = &facts.primary_rds else {
        return NextAction::DescribePrimary;
    };
    let verdict = verdict(primary_db, primary_rds);
    if !verdict.failed {
        return NextAction::Finish(InvocationOutcome::NoAction(verdict));
    }
    let Some(record) = &facts.record else {
        return NextAction::ReadRecord;
    };
    if *record != RecordSeen::NamesPrimary {
        return NextAction::Finish(InvocationOutcome::AlreadyDone(record.clone()));
    }
    let Some(secondary_rds) = &facts.secondary_rds else {
        return NextAction::DescribeSecondary;
    };
    let Some(secondary_db) = &facts.secondary_db else {
        return NextAction::ProbeSecondary;
    };
    let promoted = facts.promotion == Some(PromoteReply::Accepted);
    if *secondary_db == DbSeen::Writable {
        return match &facts.swap {
            None => NextAction::Swap,
            Some(swap) => NextAction::Finish(InvocationOutcome::FailedOver {
                verdict,
                promoted,
                swap: swap.clone(),
            }),
        };
    }
    let seen = format!(
        "secondary probe: {}; RDS: {}",
        describe_db(secondary_db),
        describe_rds(secondary_rds)
    );
    let Some(instance) = secondary_rds else {
        return NextAction::Refuse(Refusal::SecondaryNotWritable(seen));
    };
    let promotion_under_way = facts.promotion.is_some() || !instance.is_available();
    if promotion_under_way {
        if instance.is_failed() {
            return NextAction::Refuse(Refusal::SecondaryNotWritable(seen));
        }
        return if now + WRITABLE_POLL < deadline {
            NextAction::WaitForWritable(WRITABLE_POLL)
        } else {
            NextAction::Refuse(Refusal::NotWritableInTime(seen))
        };
    }
    if instance.replica_source.is_some() || *secondary_db == DbSeen::ReadOnly {
        if promote {
            return NextAction::Promote;
        }
        return NextAction::Refuse(Refusal::SecondaryNotWritable(format!(
            "{seen}; PROMOTE_READ_REPLICA is false"
        )));
    }
    NextAction::Refuse(Refusal::SecondaryNotWritable(seen))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn instance(status: &str, source: Option<&str>) -> Option<DbInstance> {
        Some(DbInstance {
            id: "x".into(),
            status: status.into(),
            replica_source: source.map(str::to_string),
            address: None,
        })
    }

    fn down() -> DbSeen {
        DbSeen::Unreachable("connect: refused".into())
    }

    fn failed_primary() -> Facts {
        Facts {
            primary_db: Some(down()),
            primary_rds: Some(instance("stopped", None)),
            record: Some(RecordSeen::NamesPrimary),
            ..Facts::default()
        }
    }

    #[test]
    fn verdicts() {
        // Healthy, or the probe fails but RDS says available: no failover.
        assert!(!verdict(&DbSeen::Writable, &instance("available", None)).failed);
        assert!(!verdict(&down(), &instance("available", None)).failed);
        // The probe fails and RDS does not say available.
        assert!(verdict(&down(), &instance("rebooting", None)).failed);
        assert!(verdict(&down(), &None).failed);
        assert!(verdict(&DbSeen::ReadOnly, &instance("modifying", None)).failed);
        // RDS says failed, whatever the probe saw.
        let v = verdict(&DbSeen::Writable, &instance("failed", None));
        assert!(v.failed);
        assert_eq!(v.because, "probe: writable; RDS: failed");
    }

    #[test]
    fn observes_in_order_and_stops_on_a_healthy_primary() {
        let t = Instant::now();
        let far = t + Duration::from_secs(30);
        let mut facts = Facts::default();
        assert_eq!(next(&facts, true, t, far), NextAction::ProbePrimary);
        facts.primary_db = Some(DbSeen::Writable);
        assert_eq!(next(&facts, true, t, far), NextAction::DescribePrimary);
        facts.primary_rds = Some(instance("available", None));
        assert!(matches!(
            next(&facts, true, t, far),
            NextAction::Finish(InvocationOutcome::NoAction(_))
        ));
    }

    #[test]
    fn someone_else_acted() {
        let t = Instant::now();
        let mut facts = failed_primary();
        facts.record = None;
        assert_eq!(
            next(&facts, true, t, t + Duration::from_secs(9)),
            NextAction::ReadRecord
        );
        facts.record = Some(RecordSeen::NamesSecondary);
        assert_eq!(
            next(&facts, true, t, t + Duration::from_secs(9)),
            NextAction::Finish(InvocationOutcome::AlreadyDone(RecordSeen::NamesSecondary))
        );
    }

    #[test]
    fn promotes_once_then_waits_then_swaps() {
        let t = Instant::now();
        let far = t + Duration::from_secs(30);
        let mut facts = failed_primary();
        assert_eq!(next(&facts, true, t, far), NextAction::DescribeSecondary);
        facts.secondary_rds = Some(instance("available", Some("db1")));
        assert_eq!(next(&facts, true, t, far), NextAction::ProbeSecondary);
        facts.secondary_db = Some(DbSeen::ReadOnly);
        assert_eq!(next(&facts, true, t, far), NextAction::Promote);
        // Without the switch: refused, never pointed at a read-only node.
        assert!(matches!(
            next(&facts, false, t, far),
            NextAction::Refuse(Refusal::SecondaryNotWritable(_))
        ));
        facts.promotion = Some(PromoteReply::Accepted);
        assert_eq!(
            next(&facts, true, t, far),
            NextAction::WaitForWritable(WRITABLE_POLL)
        );
        // Out of time: refused.
        assert!(matches!(
            next(&facts, true, far, far),
            NextAction::Refuse(Refusal::NotWritableInTime(_))
        ));
        facts.secondary_db = Some(DbSeen::Writable);
        assert_eq!(next(&facts, true, t, far), NextAction::Swap);
        facts.swap = Some(SwapResult::Swapped("C1".into()));
        let NextAction::Finish(InvocationOutcome::FailedOver { promoted, .. }) =
            next(&facts, true, t, far)
        else {
            panic!()
        };
        assert!(promoted);
    }

    #[test]
    fn a_promotion_under_way_is_waited_for_not_repeated() {
        let t = Instant::now();
        let far = t + Duration::from_secs(30);
        let mut facts = failed_primary();
        facts.secondary_rds = Some(instance("modifying", Some("db1")));
        facts.secondary_db = Some(down());
        assert_eq!(
            next(&facts, true, t, far),
            NextAction::WaitForWritable(WRITABLE_POLL)
        );
        facts.secondary_rds = Some(instance("available", Some("db1")));
        facts.promotion = Some(PromoteReply::AlreadyUnderWay("not a replica".into()));
        assert_eq!(
            next(&facts, true, t, far),
            NextAction::WaitForWritable(WRITABLE_POLL)
        );
    }
}
