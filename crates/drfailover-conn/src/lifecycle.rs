//! The failover lifecycle as one pure state machine: endpoint health, writer choice,
//! generations, in-flight abort, events, backoff and the probe schedule. Inputs are probe
//! observations, statement errors, address changes and time (always passed in: the clock is
//! injected); outputs are [`Effect`]s the monitor thread carries out. No I/O, no locks, no
//! sleeping: every client policy (docs/ARCHITECTURE.md, "The client's failover lifecycle") is
//! unit-tested here without servers.

use std::time::{Duration, Instant};

use drfailover_notify::EventKind;
use drfailover_probe::{Health, HealthTracker, OutcomeClass, TrackerConfig};

use crate::retry::Backoff;
use crate::selection::{select_writer, Candidate};

/// The policy knobs, from [`crate::Config`].
#[derive(Clone, Copy, Debug)]
pub(crate) struct Policy {
    pub tracker: TrackerConfig,
    pub failback: bool,
    pub failover_timeout: Duration,
    /// Probe deadline of endpoints in use (bounds silent-fault detection).
    pub probe_timeout: Duration,
    /// Login deadline of a probe of an endpoint not in use (down or not yet seen).
    pub connect_timeout: Duration,
}

impl Policy {
    pub fn from_config(config: &crate::Config) -> Policy {
        Policy {
            tracker: TrackerConfig {
                interval: config.probe_interval,
                suspect_interval: config.failover_probe_interval,
                fall: config.fall,
                rise: config.rise,
            },
            failback: config.failback,
            failover_timeout: config.failover_timeout,
            probe_timeout: config.probe_timeout,
            connect_timeout: config.connect_timeout,
        }
    }
}

/// An event to publish; endpoints are indices (the monitor names them).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Notice {
    pub kind: EventKind,
    pub generation: u64,
    pub endpoint: Option<usize>,
    /// Extra endpoints (split brain: the other writable nodes).
    pub others: Vec<usize>,
    pub old_writer: Option<usize>,
    pub new_writer: Option<usize>,
    pub duration: Option<Duration>,
    pub reason: String,
}

impl Notice {
    fn new(kind: EventKind, generation: u64) -> Notice {
        Notice {
            kind,
            generation,
            endpoint: None,
            others: Vec::new(),
            old_writer: None,
            new_writer: None,
            duration: None,
            reason: String::new(),
        }
    }
}

/// What the monitor must do, in order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum Effect {
    /// Publish the writer (and generation) to callers.
    SetWriter {
        writer: Option<usize>,
        generation: u64,
    },
    /// Close connections of generations before this one (idle now, leased on release).
    CloseStale(u64),
    /// Shut down the sockets of connections to this endpoint (in-flight abort).
    AbortEndpoint(usize),
    /// Publish an event.
    Publish(Notice),
    /// Record the endpoint's state for `Client::state`.
    Status {
        endpoint: usize,
        health: Health,
        writable: bool,
        outcome: OutcomeClass,
    },
    /// The writer was lost: names should be asked again as soon as their TTL allows.
    WriterLost,
    /// A failover completed (for the counter).
    FailoverCounted,
    /// Endpoint `endpoint`'s name now resolves to `new` (was `old`; `None` on the first
    /// answer): new connections and probes go there (see [`names`]).
    Retarget {
        endpoint: usize,
        old: Option<std::net::IpAddr>,
        new: std::net::IpAddr,
    },
}

/// One endpoint's state.
#[derive(Clone, Debug)]
struct EndpointState {
    tracker: HealthTracker,
    /// The latest probe saw it writable (kept through a single failed probe).
    writable: bool,
    last_outcome: Option<OutcomeClass>,
    /// While down: the earliest time to try again, and failed attempts in a row.
    retry_at: Instant,
    down_attempts: u32,
    /// Probe at the next opportunity, whatever the schedule says.
    due_now: bool,
    last_probe: Instant,
    /// Role history for telling a promotion from split brain (see [`Lifecycle::promotion`]).
    role: RoleSeen,
    /// When its running probe started (`None`: no probe running).
    probe_since: Option<Instant>,
    /// Its running probe logs in first (its time is not a round-trip; it never means a stall
    /// before the probe deadline).
    probe_logs_in: bool,
    /// The program's statements asked for its next probe (see [`witness`]); taken by the
    /// next probe start, cleared when the writer or the endpoint's address changes.
    witness_asked: bool,
    /// Its running probe was asked for by the program's statements, or was already running
    /// when they were found stuck (no progress for a whole stall bound): half a bound of
    /// silence then confirms the stall ([`stall::RoundTrip::witnessed_stall_bound`]), for the
    /// rest of that probe. Set anew at every probe start.
    probe_witnessed: bool,
    /// Round-trips of its live probes (when its running probe means a stall: [`stall`]).
    round_trip: RoundTrip,
    /// Where in `[1/2, 1]` of the fast interval its next fast probe falls (drawn per probe,
    /// in thousandths; never sooner than `failover_probe_interval`), so that many clients do
    /// not probe in lock-step.
    spread: u32,
}

/// What probes saw of an endpoint's role over time: enough to tell a node that was just
/// promoted from one that was writable all along.
#[derive(Clone, Copy, Debug, Default)]
struct RoleSeen {
    /// A live probe (or a rejected write) saw it read-only, and no probe saw it writable since.
    read_only: bool,
    /// When a probe saw it writable right after it had been seen read-only.
    became_writable_at: Option<Instant>,
    /// The latest live probe that saw it writable (for the writer: its latest confirmation).
    confirmed_at: Option<Instant>,
    /// The first failure (probe or statement) since it last answered.
    failing_since: Option<Instant>,
    /// When a write it refused as read-only was last reported (see [`REFUSAL_HOLD`]).
    refused_at: Option<Instant>,
}

/// The lifecycle of one client's endpoints. Cheap; every method is O(endpoints).
pub(crate) struct Lifecycle {
    policy: Policy,
    endpoints: Vec<EndpointState>,
    writer: Option<usize>,
    generation: u64,
    /// When the writer was lost and which it was.
    failover: Option<(Instant, Option<usize>)>,
    failover_failed_reported: bool,
    split_brain: Vec<usize>,
    /// Uniform random duration in `[0, ceiling]` (full jitter); injected for tests.
    jitter: fn(Duration) -> Duration,
    /// The DNS schedule of endpoints given by name (see [`names`]).
    names: names::Names,
    /// When the client started (the start of its first search for a writer).
    created: Instant,
    /// The progress of the program's statements on the writer (see [`witness`]).
    witness: witness::Witness,
}

/// While the writer is missing or suspect, the others are probed every
/// `max(failover_probe_interval, elapsed / FAST_PROBE_DECAY)` (capped at `probe_interval`): a
/// promotion made `t` after the writer was lost is seen within about `t / 60`, and a long
/// outage does not keep a fleet probing at the fast rate (a reconnect storm against a
/// restarting server). The clock restarts when a suspect writer is finally declared down:
/// from then on a promotion is likely soon (an orchestrator's detection is about as fast), so
/// it is looked for at the fast rate again. The divisor trades how soon a promotion is seen
/// against the probe load of a long outage; docs/benchmarks.md ("Client: reconnect storm")
/// and docs/benchmarks-history.md have the figures behind the choice.
const FAST_PROBE_DECAY: u32 = 60;

/// How long after a node refused a write as read-only a probe's "writable" from it is not
/// believed. MariaDB's `SET GLOBAL read_only=1` refuses writes (its internal flag is set while
/// it holds the global read lock) before `@@global.read_only` reads 1 (the variable is
/// published after the lock is released): a probe in between reads the node writable, and
/// believing it would make the fenced node the writer again (a new generation whose writes are
/// refused). Within the hold the node keeps the role the refusal gave it; a node truly made
/// writable again is adopted by the first probe after the hold.
pub(crate) const REFUSAL_HOLD: Duration = Duration::from_millis(500);

/// Uniform random duration in `[0, ceiling]` (the workspace's one jitter rule).
pub(crate) fn random_jitter(ceiling: Duration) -> Duration {
    drfailover_notify::backoff::full_jitter(ceiling)
}

impl Lifecycle {
    pub fn new(policy: Policy, endpoints: usize, now: Instant) -> Lifecycle {
        Lifecycle::with_jitter(policy, endpoints, now, random_jitter)
    }

    pub fn with_jitter(
        policy: Policy,
        endpoints: usize,
        now: Instant,
        jitter: fn(Duration) -> Duration,
    ) -> Lifecycle {
        Lifecycle {
            endpoints: (0..endpoints)
                .map(|_| EndpointState {
                    tracker: HealthTracker::new(policy.tracker, now),
                    writable: false,
                    last_outcome: None,
                    retry_at: now,
                    down_attempts: 0,
                    due_now: true,
                    last_probe: now,
                    role: RoleSeen::default(),
                    probe_since: None,
                    probe_logs_in: false,
                    witness_asked: false,
                    probe_witnessed: false,
                    round_trip: RoundTrip::default(),
                    spread: 1000,
                })
                .collect(),
            policy,
            writer: None,
            generation: 0,
            failover: None,
            failover_failed_reported: false,
            split_brain: Vec::new(),
            jitter,
            names: names::Names::default(),
            created: now,
            witness: witness::Witness::new(now),
        }
    }

    #[cfg_attr(not(feature = "dns"), allow(dead_code))] // the DNS schedule asks
    pub fn writer(&self) -> Option<usize> {
        self.writer
    }

    pub fn generation(&self) -> u64 {
        self.generation
    }

    pub fn health(&self, i: usize) -> Health {
        self.endpoints[i].tracker.state()
    }

    /// When endpoint `i` should be probed next: its tracker's schedule; every
    /// `failover_probe_interval` while there is no writer; a down endpoint not before its
    /// backoff; at once when something asked for it.
    pub fn due_at(&self, i: usize, now: Instant) -> Instant {
        let e = &self.endpoints[i];
        if e.due_now {
            return now;
        }
        let mut at = e.tracker.next_probe_at();
        if let Some(fast) = self.fast_interval(i, now) {
            let early = fast / 2;
            let spread = (fast - early).mul_f64(f64::from(e.spread) / 1000.0);
            let gap = (early + spread).max(self.policy.tracker.suspect_interval);
            at = at.min(e.last_probe + gap);
        }
        if e.tracker.state() == Health::Down {
            at = at.max(e.retry_at);
        }
        at
    }

    /// The fast probe interval of endpoint `i` while the writer is missing or suspect (see
    /// [`FAST_PROBE_DECAY`]); `None` while the writer is healthy or `i` is the writer.
    fn fast_interval(&self, i: usize, now: Instant) -> Option<Duration> {
        let since = match self.writer {
            None => self.failover.map_or(self.created, |(since, _)| since),
            Some(_) if self.writer_troubled_and_not(i, now) => {
                let w = self.writer?;
                let stalled = self.writer_stalls_at().filter(|&at| at <= now);
                self.endpoints[w]
                    .role
                    .failing_since
                    .or(stalled)
                    .unwrap_or(now)
            }
            Some(_) => return None,
        };
        let decayed = now.saturating_duration_since(since) / FAST_PROBE_DECAY;
        let t = &self.policy.tracker;
        Some(decayed.clamp(t.suspect_interval, t.interval.max(t.suspect_interval)))
    }

    /// The deadline budget of a probe of `i` starting now: `connect_timeout` for a login to an
    /// endpoint not in use (a loaded server is not abandoned mid-login), else `probe_timeout`.
    pub fn probe_budget(&self, i: usize, needs_login: bool) -> Duration {
        let idle = matches!(self.health(i), Health::Down | Health::Unknown);
        if needs_login && idle {
            self.policy.probe_timeout.max(self.policy.connect_timeout)
        } else {
            self.policy.probe_timeout
        }
    }

    /// A probe of `i` starts at `now`; `logs_in`: it opens a new connection first.
    pub fn probe_started(&mut self, i: usize, now: Instant, logs_in: bool) {
        let e = &mut self.endpoints[i];
        e.due_now = false;
        e.probe_since = Some(now);
        e.probe_logs_in = logs_in;
        e.probe_witnessed = std::mem::take(&mut e.witness_asked);
    }

    /// The gauge of the program's statements read `reading` at `now` (see [`witness`]): when
    /// statements are in flight and none completed for the writer's stall bound, the writer
    /// (and every other endpoint) is probed at once. Returns when to look at the gauge again
    /// (`None`: no extra wake-up). O(1).
    pub fn statements(
        &mut self,
        reading: crate::activity::Reading,
        now: Instant,
    ) -> Option<Instant> {
        let Some(w) = self.writer else {
            self.witness.reset(now);
            return None;
        };
        let e = &mut self.endpoints[w];
        let bound = e.round_trip.stall_bound(self.policy.probe_timeout);
        let look = self
            .witness
            .look(reading, now, bound, e.probe_since.is_some());
        if look.stuck && e.probe_since.is_some() {
            e.probe_witnessed = true;
        }
        if look.probe_now {
            e.witness_asked = true;
            self.endpoints.iter_mut().for_each(|e| e.due_now = true);
        }
        look.next_look
    }

    /// The next moment a decision falls due without any input: the failover timeout (if a
    /// failover is running and not yet reported), or the writer's running probe turning it
    /// stalled (when still ahead of `now`).
    pub fn next_deadline(&self, now: Instant) -> Option<Instant> {
        let timeout = match self.failover {
            Some((since, _)) if !self.failover_failed_reported => {
                Some(since + self.policy.failover_timeout)
            }
            _ => None,
        };
        let stall = self.writer_stalls_at().filter(|&at| at > now);
        timeout.into_iter().chain(stall).min()
    }

    /// A probe of `i` ended at `now` with `class`; `writable` is what it read.
    pub fn observe(
        &mut self,
        i: usize,
        class: OutcomeClass,
        writable: bool,
        reason: &str,
        now: Instant,
    ) -> Vec<Effect> {
        let mut fx = Vec::new();
        let e = &mut self.endpoints[i];
        e.last_probe = now;
        e.last_outcome = Some(class);
        let started = e.probe_since.take();
        if let Some(since) = started {
            if class.is_alive() && !e.probe_logs_in {
                e.round_trip.sample(now.saturating_duration_since(since));
            }
        }
        // "Writable" read within REFUSAL_HOLD of a write refused there is not believed.
        let held = writable
            && e.role
                .refused_at
                .is_some_and(|refused| started.unwrap_or(now) < refused + REFUSAL_HOLD);
        e.spread = (self.jitter)(Duration::from_micros(1000)).as_micros() as u32;
        let transition = e.tracker.observe(class, now);
        // Backoff of a down endpoint: jittered, growing from the suspect interval to the
        // probe interval, so a fleet does not reconnect to a restarted server in lock-step.
        if e.tracker.state() == Health::Down {
            let backoff = Backoff::new(
                self.policy.tracker.suspect_interval,
                self.policy.tracker.interval,
            );
            e.retry_at = now + (self.jitter)(backoff.ceiling(e.down_attempts));
            e.down_attempts = e.down_attempts.saturating_add(1);
        } else {
            e.down_attempts = 0;
        }
        // A live node's role is what the probe just read. A failed probe does not erase the
        // last known role: the writer survives a single slow probe (suspect) and is dropped
        // when the tracker declares it down (after `fall` failures, at once when refused).
        // (A role held by a refusal changes neither: the node answered, the refusal stands.)
        if !class.is_alive() {
            if e.tracker.state() == Health::Down {
                e.writable = false;
            }
            self.note_role(i, None, now);
        } else if !held {
            e.writable = writable;
            self.note_role(i, Some(writable), now);
        }
        let e = &self.endpoints[i];
        fx.push(Effect::Status {
            endpoint: i,
            health: e.tracker.state(),
            writable: e.writable,
            outcome: class,
        });
        if let Some(t) = transition {
            match t.to {
                Health::Down => {
                    // Drop it as writer first, so the statements aborted below retry against
                    // the next writer instead of reconnecting to the dead one.
                    if Some(i) == self.writer {
                        self.decide(now, &mut fx);
                    }
                    fx.push(Effect::AbortEndpoint(i));
                    let mut n = Notice::new(EventKind::EndpointDown, self.generation);
                    n.endpoint = Some(i);
                    n.reason = reason.to_string();
                    fx.push(Effect::Publish(n));
                }
                Health::Up if t.from == Health::Down => {
                    let mut n = Notice::new(EventKind::EndpointUp, self.generation);
                    n.endpoint = Some(i);
                    n.reason = class.as_str().to_string();
                    fx.push(Effect::Publish(n));
                }
                _ => {}
            }
        }
        self.decide(now, &mut fx);
        fx
    }

    /// A statement saw a hard failure (RST/EOF, refused) on `i`: suspect at once, probe now;
    /// when it is the writer, every endpoint is probed now (the failover starts at once).
    pub fn statement_failed(&mut self, i: usize, now: Instant) -> Vec<Effect> {
        self.endpoints[i].tracker.report_hard_failure(now);
        let role = &mut self.endpoints[i].role;
        role.failing_since = role.failing_since.or(Some(now));
        if Some(i) == self.writer {
            self.endpoints.iter_mut().for_each(|e| e.due_now = true);
        } else {
            self.endpoints[i].due_now = true;
        }
        let mut fx = Vec::new();
        self.decide(now, &mut fx);
        fx
    }

    /// A write was rejected as read-only on `i`: it is not the writer any more; re-check now.
    /// When `i` was the writer (a switchover or a fence), every endpoint is probed now: the
    /// new writer may already be writable.
    pub fn read_only(&mut self, i: usize, now: Instant) -> Vec<Effect> {
        self.endpoints[i].writable = false;
        self.endpoints[i].role.refused_at = Some(now);
        self.note_role(i, Some(false), now);
        self.statement_failed(i, now)
    }

    /// Endpoint `i`'s name resolves to a new address: start afresh (its old address's health
    /// and backoff never delay trying the new one) and probe it now.
    pub fn address_changed(&mut self, i: usize, now: Instant) -> Vec<Effect> {
        let e = &mut self.endpoints[i];
        e.tracker = HealthTracker::new(self.policy.tracker, now);
        e.retry_at = now;
        e.down_attempts = 0;
        e.writable = false;
        e.due_now = true;
        e.role = RoleSeen::default();
        e.probe_since = None;
        e.witness_asked = false;
        e.round_trip = RoundTrip::default();
        let mut fx = Vec::new();
        self.decide(now, &mut fx);
        fx
    }

    /// Time passed: report a failover that exceeded its timeout.
    pub fn tick(&mut self, now: Instant) -> Vec<Effect> {
        let mut fx = Vec::new();
        self.decide(now, &mut fx);
        fx
    }

    fn decide(&mut self, now: Instant, fx: &mut Vec<Effect>) {
        let promoted = self.leave_troubled_writer_for_promotion(now, fx);
        let candidates: Vec<Candidate> = self
            .endpoints
            .iter()
            .map(|e| Candidate {
                usable: e.tracker.is_usable(),
                writable: e.writable,
            })
            .collect();
        let current = promoted.map(|(new, _)| new).or(self.writer);
        let mut selection = select_writer(current, &candidates, self.policy.failback);
        if selection.writer != self.writer {
            let old = self.writer;
            if let Some(old) = old {
                if self.failover.is_none() {
                    self.failover = Some((now, Some(old)));
                    self.failover_failed_reported = false;
                    let mut n = Notice::new(EventKind::FailoverStarted, self.generation);
                    n.old_writer = Some(old);
                    n.reason = self.endpoints[old]
                        .last_outcome
                        .map_or("", |c| c.as_str())
                        .to_string();
                    fx.push(Effect::Publish(n));
                }
            }
            self.writer = selection.writer;
            // A quiet spell of the old writer says nothing about the new one.
            self.witness.reset(now);
            for e in &mut self.endpoints {
                e.witness_asked = false;
            }
            match selection.writer {
                Some(new) => {
                    self.generation += 1;
                    fx.push(Effect::SetWriter {
                        writer: Some(new),
                        generation: self.generation,
                    });
                    fx.push(Effect::CloseStale(self.generation));
                    let mut n = match self.failover.take() {
                        Some((since, old)) => {
                            fx.push(Effect::FailoverCounted);
                            let mut n = Notice::new(EventKind::FailoverCompleted, self.generation);
                            n.old_writer = old;
                            n.duration = Some(now.saturating_duration_since(since));
                            n
                        }
                        None => Notice::new(EventKind::Connected, self.generation),
                    };
                    n.new_writer = Some(new);
                    if let Some((_, old)) = promoted {
                        n.reason = PROMOTION_REASON.into();
                        // As on writer-down, after the new writer is published: statements
                        // blocked on the old one fail now and retry against the new one.
                        fx.push(Effect::AbortEndpoint(old));
                    }
                    fx.push(Effect::Publish(n));
                }
                None => {
                    fx.push(Effect::SetWriter {
                        writer: None,
                        generation: self.generation,
                    });
                    fx.push(Effect::WriterLost);
                    if let Some(old) = old {
                        // The old writer's idle connections are useless now.
                        if self.endpoints[old].tracker.state() == Health::Down {
                            fx.push(Effect::AbortEndpoint(old));
                        } else {
                            fx.push(Effect::CloseStale(u64::MAX));
                        }
                    }
                }
            }
        }
        if let Some((since, old)) = self.failover {
            let waited = now.saturating_duration_since(since);
            if !self.failover_failed_reported && waited >= self.policy.failover_timeout {
                self.failover_failed_reported = true;
                let mut n = Notice::new(EventKind::FailoverFailed, self.generation);
                n.old_writer = old;
                n.duration = Some(waited);
                n.reason = "no writable node found within failover_timeout_ms".into();
                fx.push(Effect::Publish(n));
            }
        }
        // A node whose promotion is not yet judged is not split brain (yet): the writer's
        // answer to the probe asked of it decides.
        let pending: Vec<bool> = (0..self.endpoints.len())
            .map(|j| self.pending_promotion(j))
            .collect();
        selection.split_brain.retain(|&j| !pending[j]);
        if selection.split_brain != self.split_brain {
            if !selection.split_brain.is_empty() {
                let mut n = Notice::new(EventKind::SplitBrain, self.generation);
                n.old_writer = selection.writer;
                n.others = selection.split_brain.clone();
                n.reason = "more than one node is writable; keeping the current writer".into();
                fx.push(Effect::Publish(n));
            }
            self.split_brain = selection.split_brain;
        }
    }
}

mod names;
mod stall;
mod witness;
pub(crate) use names::NamePolicy;
use stall::RoundTrip;
/// Reason given with a writer change caused by a promotion seen while the writer was suspect
/// or stalled.
const PROMOTION_REASON: &str =
    "a node became writable while the writer was suspect or stalled (promotion)";

/// A promotion seen while the writer is in trouble (docs/ARCHITECTURE.md, "Writer selection":
/// two writable nodes — keep the current *healthy* writer, never flip-flop):
///
/// - A node seen *becoming* writable (a probe saw it read-only, a later one writable) after the
///   writer last answered as writer is a *pending promotion*: the writer is probed at once, and
///   the node is not called split brain until the writer answers.
/// - The writer answers writable: both are writable while the writer is healthy — split brain
///   (`SPLIT_BRAIN` event), the writer is kept, and this promotion never counts again.
/// - The writer is *in trouble*: *suspect* (its latest probe or a statement failed or timed
///   out) or *stalled* (its running probe has been outstanding beyond a short bound adapted to
///   its recent round-trips, see [`stall`]). Then the promotion is adopted at once (new
///   generation, the old writer's connections aborted: statements in flight there fail with
///   their outcome unknown and are never re-sent; `FAILOVER_STARTED` + `FAILOVER_COMPLETED`),
///   without waiting for the writer to be declared down. The old writer's role must then be
///   seen again: it is not re-adopted while the new writer is usable unless fail-back is
///   configured, so a slow writer that answers later makes no flip back (split brain is
///   reported instead).
/// - A writer that answers within its bound is never left; a node writable all along is never
///   adopted over any writer.
/// - While the writer is in trouble, every other endpoint is probed fast: every
///   `failover_probe_interval` at first, so a promotion is seen within a few ms, slower as the
///   trouble lasts (see [`FAST_PROBE_DECAY`]).
impl Lifecycle {
    /// When the writer's running probe makes it stalled (`None`: no writer, or no probe of
    /// it running).
    fn writer_stalls_at(&self) -> Option<Instant> {
        let e = &self.endpoints[self.writer?];
        let cap = self.policy.probe_timeout;
        let bound = if e.probe_logs_in {
            cap
        } else if e.probe_witnessed {
            e.round_trip.witnessed_stall_bound(cap)
        } else {
            e.round_trip.stall_bound(cap)
        };
        Some(e.probe_since? + bound)
    }

    /// The writer is suspect, or stalled at `now`.
    fn writer_troubled(&self, now: Instant) -> bool {
        self.writer.is_some_and(|w| {
            self.health(w) == Health::Suspect || self.writer_stalls_at().is_some_and(|at| at <= now)
        })
    }

    /// The writer is in trouble at `now` and `i` is another endpoint (probed fast meanwhile).
    fn writer_troubled_and_not(&self, i: usize, now: Instant) -> bool {
        self.writer.is_some_and(|w| w != i) && self.writer_troubled(now)
    }

    /// Record what was seen of `i`'s role: `Some(writable)` from a live probe or a rejected
    /// write, `None` from a failed probe.
    fn note_role(&mut self, i: usize, writable: Option<bool>, now: Instant) {
        let down = self.health(i) == Health::Down;
        let role = &mut self.endpoints[i].role;
        match writable {
            Some(true) => {
                role.failing_since = None;
                role.confirmed_at = Some(now);
                if role.read_only {
                    role.read_only = false;
                    role.became_writable_at = Some(now);
                    // Promotion or split brain? The writer's next answer tells: ask it now.
                    if let Some(w) = self.writer.filter(|&w| w != i) {
                        self.endpoints[w].due_now = true;
                    }
                }
            }
            Some(false) => {
                role.failing_since = None;
                role.read_only = true;
                role.became_writable_at = None;
            }
            None => {
                role.failing_since = role.failing_since.or(Some(now));
                if down {
                    role.became_writable_at = None;
                }
            }
        }
    }

    /// `j` became writable after the current writer last answered as writer.
    fn pending_promotion(&self, j: usize) -> bool {
        let Some(w) = self.writer.filter(|&w| w != j) else {
            return false;
        };
        let since = self.endpoints[j].role.became_writable_at;
        let confirmed = self.endpoints[w].role.confirmed_at;
        since.is_some_and(|t| confirmed.is_none_or(|c| c < t))
    }

    /// The promoted node to adopt over a writer in trouble at `now`, highest priority first.
    fn promotion(&self, now: Instant) -> Option<usize> {
        if !self.writer_troubled(now) {
            return None;
        }
        (0..self.endpoints.len()).find(|&j| {
            let e = &self.endpoints[j];
            self.pending_promotion(j) && e.tracker.is_usable() && e.writable
        })
    }

    /// When a promotion is to be adopted over the writer in trouble: forget the old writer's
    /// role (it must be seen again) and start the failover from its first failure (or the
    /// start of its stalled probe). Returns (new writer, old writer).
    fn leave_troubled_writer_for_promotion(
        &mut self,
        now: Instant,
        fx: &mut Vec<Effect>,
    ) -> Option<(usize, usize)> {
        let new = self.promotion(now)?;
        let old = self.writer?;
        let e = &mut self.endpoints[old];
        e.writable = false;
        e.role.confirmed_at = None;
        if e.tracker.state() == Health::Up {
            // Stalled: from now on it is a suspect like any writer whose probe failed (its
            // status says so before the writer change is published; its probes decide when
            // it is down).
            e.tracker.report_hard_failure(now);
            e.role.failing_since = e.role.failing_since.or(e.probe_since);
            fx.push(Effect::Status {
                endpoint: old,
                health: e.tracker.state(),
                writable: false,
                outcome: e.last_outcome.unwrap_or(OutcomeClass::TimedOut),
            });
        }
        if self.failover.is_none() {
            let since = e.role.failing_since.unwrap_or(now);
            self.failover = Some((since.min(now), Some(old)));
            self.failover_failed_reported = false;
            let mut n = Notice::new(EventKind::FailoverStarted, self.generation);
            n.old_writer = Some(old);
            n.reason = e.last_outcome.map_or("", |c| c.as_str()).to_string();
            fx.push(Effect::Publish(n));
        }
        Some((new, old))
    }
}

#[cfg(test)]
mod tests;
