//! The semi-sync fallback, owned by the orchestrator: while it manages a primary, the
//! server's own `rpl_semi_sync_master_timeout` never switches it to asynchronous replication
//! (the timeout is held at [`HOLD_TIMEOUT_MS`]); a commit no replica acknowledges waits.
//! Falling back to asynchronous replication is decided here alone: this orchestrator holds the
//! lock, sees the primary healthy, and no replica has been able to acknowledge for
//! `sync_fallback` (never, when it is `None`). It resumes once a replica can acknowledge again.
//!
//! So a primary the orchestrator cannot reach (frozen, partitioned) blocks its commits instead
//! of acknowledging them after its own timeout; fencing then kills the waiting sessions.
//! Pure: rounds' facts in, actions and notices out, time injected.

use std::time::{Duration, Instant};

use drfailover_notify::EventKind;

use super::{Action, NodeId, Notice};

/// The `rpl_semi_sync_master_timeout` held on a managed primary: 2³² − 1 ms (49 days),
/// effectively infinite, and small enough for every server's arithmetic on it.
pub const HOLD_TIMEOUT_MS: u64 = 4_294_967_295;

/// What one round says about the primary's semi-sync state (the guard's typed input).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SyncFacts {
    /// The primary whose semi-sync this guards (index in the configuration).
    pub node: NodeId,
    /// This orchestrator holds the lock.
    pub leader: bool,
    /// The primary answered and is writable.
    pub healthy: bool,
    /// `@@rpl_semi_sync_master_enabled`.
    pub enabled: bool,
    /// `Rpl_semi_sync_master_status = ON`.
    pub active: bool,
    /// `Rpl_semi_sync_master_clients`: replicas able to acknowledge.
    pub clients: u32,
    /// `@@rpl_semi_sync_master_timeout` (ms).
    pub timeout_ms: u64,
    /// A reachable replica of the primary receives from it with semi-sync enabled: semi-sync
    /// can be resumed.
    pub replica_ready: bool,
}

/// The guard's memory between rounds.
#[derive(Clone, Debug, Default)]
pub struct SyncGuard {
    /// `None`: never fall back (strict zero loss).
    fallback: Option<Duration>,
    /// The server's own timeout, last seen before it was held (restored on a clean exit).
    original_ms: Option<u64>,
    /// Nodes seen holding the timeout: a different value there later is a change by someone.
    held: std::collections::BTreeSet<NodeId>,
    /// Since when the primary has had no replica able to acknowledge.
    unacknowledged_since: Option<Instant>,
    /// The primary this guard switched to asynchronous replication (until it resumes).
    suspended: Option<NodeId>,
    /// A hold or resume was asked for this node and not yet seen done (not repeated).
    pending: Option<(NodeId, &'static str)>,
    /// The "commits wait" notice was given for this episode.
    waiting_said: bool,
}

impl SyncGuard {
    /// A guard that falls back after `fallback` without acknowledgement (`None`: never).
    pub fn new(fallback: Option<Duration>) -> SyncGuard {
        SyncGuard {
            fallback,
            ..SyncGuard::default()
        }
    }

    /// The server's own timeout to put back on a clean exit, if one was seen.
    pub fn original_timeout_ms(&self) -> Option<u64> {
        self.original_ms
    }

    /// Whether zero-loss protection is suspended on `node` by this guard.
    pub fn suspended(&self, node: NodeId) -> bool {
        self.suspended == Some(node)
    }

    /// The executor switched `node` to asynchronous replication.
    pub fn suspend_done(&mut self, node: NodeId) {
        self.suspended = Some(node);
        self.pending = None;
    }

    /// The executor resumed semi-sync on `node`.
    pub fn resume_done(&mut self, node: NodeId) {
        if self.suspended == Some(node) {
            self.suspended = None;
        }
        self.pending = None;
        self.unacknowledged_since = None;
    }

    /// An action the executor could not carry out: ask again next round.
    pub fn action_failed(&mut self) {
        self.pending = None;
    }

    /// Take in one round's facts at `now`; `name` names nodes for notices. Actions come only
    /// when `facts.leader` and the primary is healthy. Pure; allocates only what it returns.
    pub fn step(
        &mut self,
        facts: &SyncFacts,
        now: Instant,
        name: impl Fn(NodeId) -> String,
    ) -> (Vec<Action>, Vec<Notice>) {
        let (mut actions, mut notices) = (Vec::new(), Vec::new());
        let node = facts.node;
        if !facts.healthy {
            // Not seen healthy: no decision (a frozen primary's commits keep waiting).
            self.unacknowledged_since = None;
            return (actions, notices);
        }
        if facts.timeout_ms == HOLD_TIMEOUT_MS {
            self.held.insert(node);
            if self.pending == Some((node, "hold")) {
                self.pending = None;
            }
        } else {
            self.original_ms = Some(facts.timeout_ms);
            if self.held.remove(&node) {
                notices.push(Notice::new(
                    EventKind::StepFailed,
                    Some(node),
                    format!(
                        "rpl_semi_sync_master_timeout on {} was changed to {} ms by someone \
                         else: the orchestrator alone decides the fallback to asynchronous \
                         replication; setting it back",
                        name(node),
                        facts.timeout_ms
                    ),
                ));
            }
            if facts.leader && self.pending != Some((node, "hold")) {
                self.pending = Some((node, "hold"));
                actions.push(Action::HoldCommits { node });
            }
        }
        if self.suspended == Some(node) {
            if facts.enabled {
                // Someone enabled it again.
                self.suspended = None;
            } else if facts.leader && facts.replica_ready && self.pending != Some((node, "resume"))
            {
                self.pending = Some((node, "resume"));
                actions.push(Action::ResumeSemiSync { node });
            }
            return (actions, notices);
        }
        let acknowledging = facts.enabled && facts.active && facts.clients > 0;
        if !facts.enabled || acknowledging {
            self.unacknowledged_since = None;
            self.waiting_said = false;
            return (actions, notices);
        }
        let since = *self.unacknowledged_since.get_or_insert(now);
        let waited = now.saturating_duration_since(since);
        match self.fallback {
            None => {
                if !self.waiting_said {
                    self.waiting_said = true;
                    notices.push(Notice::new(
                        EventKind::StepFailed,
                        Some(node),
                        format!(
                            "no replica can acknowledge commits on {}: they wait until one \
                             can (sync_fallback = \"never\")",
                            name(node)
                        ),
                    ));
                }
            }
            Some(after) if waited >= after && facts.leader => {
                if self.pending != Some((node, "suspend")) {
                    self.pending = Some((node, "suspend"));
                    actions.push(Action::SuspendSemiSync {
                        node,
                        reason: format!(
                            "no replica able to acknowledge for {} ms (sync_fallback_ms = {})",
                            waited.as_millis(),
                            after.as_millis()
                        ),
                    });
                }
            }
            Some(_) => {}
        }
        (actions, notices)
    }
}
