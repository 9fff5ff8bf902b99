//! The orchestrator loop: observe every node, let the core decide, execute, announce —
//! and the small state the HTTP endpoint and the CLI read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use drfailover_mysql::Deadline;
use drfailover_notify::{Event, EventKind, Notifier};

use crate::config::Config;
use crate::control::{Outcome, Reply, Request, Ticket};
use crate::core::{
    Action, Analysis, Core, Loaded, NodeId, Notice, Problem, PromotionStep, SavedPromotion,
    SavedState, SwitchoverPlan,
};
use crate::execute::{Executor, SwitchoverError};
use crate::facts::{NodeProbe, Round};
use crate::fence_retry::FenceRetry;
use crate::leadership::{Leadership, LockAction, MINORITY_ROUNDS};
use crate::observe::{observe_all, NodeLink};
use crate::state_file::StateFile;
use crate::switchover::{Report, SwitchoverJob};

/// Publishes the core's notices as events (`client_id`, generation, node labels). Cheap to
/// clone; shared with the switchover thread.
#[derive(Clone)]
struct Publisher {
    notifier: Arc<Notifier>,
    id: u64,
    names: Arc<[String]>,
    labels: Arc<[String]>,
}

impl Publisher {
    fn publish(&self, notice: Notice, generation: u64) {
        let name = |id: Option<NodeId>| id.map(|i| self.names[i].clone());
        let mut event = Event::new(notice.kind, self.id, generation, self.notifier.epoch())
            .reason(notice.reason);
        if let Some(n) = notice.node {
            event = event.endpoint(self.labels[n].clone());
        }
        if let Some((old, new)) = notice.writers {
            event = event.writers(name(old), name(new));
        }
        if let Some(d) = notice.duration {
            event = event.duration(d);
        }
        self.notifier.publish(event);
    }
}

pub use crate::metrics::Figures;

/// Observation rounds at start-up before a node that does not answer is refused.
pub const START_ATTEMPTS: u32 = 3;

/// A running orchestrator over one topology.
pub struct Orchestrator {
    config: Config,
    links: Vec<NodeLink>,
    core: Core,
    publisher: Publisher,
    figures: Figures,
    last_round: Option<Round>,
    resolved: bool,
    switchover: Option<SwitchoverJob>,
    /// When the last switchover completed, unless acknowledged since (anti-flapping).
    last_switchover: Option<Instant>,
    /// When to give the locks back (a minority held too long).
    leadership: Leadership,
    sink_stats: crate::config::SinkStats,
    /// When a failing fence command may run again.
    fence_retry: FenceRetry,
    /// Sockets to the primary that hung up and woke the loop (not watched again).
    hung_up: Vec<std::os::fd::RawFd>,
    /// When an idle connection to the primary last hung up (the crash as first seen).
    primary_hangup: Option<Instant>,
    /// Where the state for a successor is saved (`state_dir`), if anywhere.
    state_file: Option<StateFile>,
    /// The state as last saved, and when.
    saved: Option<(SavedState, Instant)>,
}

/// A healthy primary's saved facts are rewritten at least this often (their age is what a
/// successor checks against `state_max_age_s`); a change is saved at once.
const STATE_REFRESH: Duration = Duration::from_secs(1);

/// Milliseconds since the Unix epoch (the state file's clock).
fn unix_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

impl Orchestrator {
    /// An orchestrator for `config`, publishing events to `notifier` (as `client_id = id`).
    /// Connects nothing yet.
    pub fn new(config: Config, notifier: Arc<Notifier>, id: u64) -> Orchestrator {
        let links = (0..config.nodes.len())
            .map(|i| NodeLink::new(config.connect_options(i)))
            .collect();
        let core = Core::new(config.nodes.clone(), config.policy.clone());
        let publisher = Publisher {
            notifier,
            id,
            names: config.nodes.iter().map(|n| n.name.clone()).collect(),
            labels: config.nodes.iter().map(|n| n.label()).collect(),
        };
        Orchestrator {
            links,
            core,
            publisher,
            figures: Figures::default(),
            last_round: None,
            resolved: false,
            switchover: None,
            last_switchover: None,
            leadership: Leadership::default(),
            sink_stats: Default::default(),
            fence_retry: FenceRetry::default(),
            hung_up: Vec::new(),
            primary_hangup: None,
            state_file: config.state_dir.as_deref().map(StateFile::in_dir),
            saved: None,
            config,
        }
    }

    /// Resolve every node's host name once, all at the same time, each within
    /// `max(probe_timeout, 2 s)` (see [`NodeLink::resolve`]). A name that does not resolve
    /// makes its node unreachable, with the reason. Names are not resolved again: restart
    /// the orchestrator after a node's address changed.
    fn resolve_hosts(&mut self) {
        if self.resolved {
            return;
        }
        self.resolved = true;
        let timeout = self.config.probe_timeout.max(Duration::from_secs(2));
        std::thread::scope(|s| {
            for link in self.links.iter_mut() {
                s.spawn(move || {
                    let _ = link.resolve(timeout);
                });
            }
        });
    }

    /// The decision core (analysis, primary, generation).
    pub fn core(&self) -> &Core {
        &self.core
    }

    /// The figures so far.
    pub fn figures(&self) -> &Figures {
        &self.figures
    }

    /// The configuration this orchestrator was built from (nodes, policy, settings).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// Observe once without taking the lock and without acting (`drfailover topology`).
    pub fn observe_only(&mut self) -> Round {
        self.resolve_hosts();
        let round = observe_all(&mut self.links, self.config.probe_timeout, None);
        self.core.step(&round);
        self.last_round = Some(round.clone());
        round
    }

    /// Check the topology before managing it (see [`Core::validate`]; a node that does not
    /// answer is looked at again, [`START_ATTEMPTS`] rounds in all, before it is refused) and
    /// make sure every replica sends heartbeats often enough for the detection budget (sets
    /// `MASTER_HEARTBEAT_PERIOD` when `set_heartbeat_period`, else says what to change).
    /// Changes nothing on any server when a problem is found. Blocks up to a few probe
    /// timeouts.
    pub fn start(&mut self) -> Result<(), String> {
        self.resolve_hosts();
        let mut attempt = 1;
        let (round, primary) = loop {
            let round = observe_all(&mut self.links, self.config.probe_timeout, None);
            match self.core.validate(&round) {
                Ok(primary) => break (round, primary),
                // A node that did not answer one probe may be busy: look again a few times
                // before refusing (every other problem is refused at once).
                Err(problems)
                    if attempt < START_ATTEMPTS
                        && problems
                            .iter()
                            .all(|p| matches!(p, Problem::Unreachable { .. })) =>
                {
                    attempt += 1;
                    std::thread::sleep(self.config.probe_interval);
                }
                Err(problems) => {
                    let loaded = self
                        .state_file
                        .as_ref()
                        .map_or(Loaded::NotConfigured, StateFile::load);
                    let problems = match self.core.resume_former(&round, problems, &loaded) {
                        Ok(former) => {
                            let text = format!(
                                "starting with old primaries down: {} (fenced on sight)",
                                former
                                    .iter()
                                    .map(ToString::to_string)
                                    .collect::<Vec<_>>()
                                    .join(", ")
                            );
                            log::warn!(target: "drfailover", "{text}");
                            self.publish(Notice {
                                kind: EventKind::StepCompleted,
                                node: None,
                                writers: None,
                                reason: text,
                                duration: None,
                            });
                            self.last_round = Some(round);
                            return Ok(());
                        }
                        Err(problems) => problems,
                    };
                    let resumed = self.core.resume(
                        &round,
                        problems,
                        loaded,
                        unix_ms(),
                        self.config.state_max_age,
                    );
                    return match resumed {
                        Ok(resumption) => {
                            // No heartbeat change here: restarting a cut-off replica's IO
                            // thread would attach it to the old primary again.
                            let text = format!("resuming: {resumption}");
                            log::warn!(target: "drfailover", "{text}");
                            self.publish(Notice {
                                kind: EventKind::StepCompleted,
                                node: Some(resumption.primary.id),
                                writers: None,
                                reason: text,
                                duration: None,
                            });
                            // The first round that holds the lock decides (and adopts or
                            // finishes what it finds): not this one, which holds none.
                            self.last_round = Some(round);
                            Ok(())
                        }
                        Err(problems) => Err(problems
                            .iter()
                            .map(ToString::to_string)
                            .collect::<Vec<_>>()
                            .join("\n")),
                    };
                }
            }
        };
        let want = self.config.policy.heartbeat_period;
        let mut slow = Vec::new();
        for (i, probe) in round.nodes.iter().enumerate() {
            if let NodeProbe::Reached(f) = probe {
                if let Some(r) = f.replica() {
                    if r.heartbeat_period > want + Duration::from_millis(1) {
                        slow.push((i, r.heartbeat_period));
                    }
                }
            }
        }
        if !slow.is_empty() && !self.config.set_heartbeat_period {
            return Err(slow
                .iter()
                .map(|(i, p)| {
                    format!(
                        "{}: heartbeat period {:.3} s is longer than heartbeat_period_ms = {}: run \
                         STOP SLAVE; CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD={:.3}; START SLAVE \
                         (or set set_heartbeat_period = true)",
                        self.config.nodes[*i].label(),
                        p.as_secs_f64(),
                        want.as_millis(),
                        want.as_secs_f64()
                    )
                })
                .collect::<Vec<_>>()
                .join("\n"));
        }
        let changed: Vec<usize> = slow.iter().map(|(i, _)| *i).collect();
        let changed_any = !changed.is_empty();
        for (i, old) in slow {
            let sql = format!(
                "CHANGE MASTER TO MASTER_HEARTBEAT_PERIOD={:.3}",
                want.as_secs_f64()
            );
            let deadline = Deadline::after(self.config.settings.step_timeout);
            for s in ["STOP SLAVE", &sql, "START SLAVE"] {
                self.links[i].run(s, deadline).map_err(|e| {
                    format!(
                        "{}: setting the heartbeat period: {e}",
                        self.config.nodes[i].label()
                    )
                })?;
            }
            self.publish(Notice {
                kind: EventKind::StepCompleted,
                node: Some(i),
                writers: None,
                reason: format!(
                    "heartbeat period {:.3} s -> {:.3} s (detection budget)",
                    old.as_secs_f64(),
                    want.as_secs_f64()
                ),
                duration: None,
            });
        }
        for i in changed {
            let (result, _) = self.executor_run(|ex| ex.wait_replicating(i));
            result.map_err(|e| {
                format!(
                    "{}: after setting the heartbeat period: {e}",
                    self.config.nodes[i].label()
                )
            })?;
        }
        let round = if changed_any {
            observe_all(&mut self.links, self.config.probe_timeout, None)
        } else {
            round
        };
        self.core.step(&round);
        debug_assert_eq!(self.core.primary(), Some(primary));
        Ok(())
    }

    fn publish(&self, notice: Notice) {
        self.publisher.publish(notice, self.core.generation());
    }

    /// One round: observe (taking the lock), decide, act. Returns whether anything was done
    /// (the caller then observes again at once). Blocks for the round plus any actions.
    pub fn tick(&mut self) -> bool {
        let may_take = self.leadership.may_take(Instant::now());
        let round = observe_all(
            &mut self.links,
            self.config.probe_timeout,
            may_take.then_some(self.config.lock_name.as_str()),
        );
        self.yield_minority(&round);
        if self.switchover_committed() {
            // The switchover committed before this round ended: the round may show its fence
            // (a read-only primary) half-way; the core must not take that for a fault.
            self.last_round = Some(round);
            return false;
        }
        let decision = self.core.step(&round);
        self.last_round = Some(round);
        for n in decision.notices {
            if n.kind == EventKind::FailoverBlocked {
                self.figures.blocked += 1;
            }
            self.publish(n);
        }
        if !self.switchover_may_go_on(&decision.actions) {
            // The switchover committed meanwhile: it owns the topology until it ends.
            return false;
        }
        let acted = !decision.actions.is_empty();
        for action in decision.actions {
            self.execute(action);
        }
        self.save_primary();
        acted
    }

    /// Save the healthy primary's facts for a successor when they changed, or when the
    /// saved ones are older than [`STATE_REFRESH`]. Blocks on the write (two `fsync`s), at
    /// most about once a second.
    fn save_primary(&mut self) {
        if self.state_file.is_none() {
            return;
        }
        let Some(primary) = self.core.saved_primary(unix_ms()) else {
            return;
        };
        let fresh = self.saved.as_ref().is_some_and(|(s, at)| {
            at.elapsed() < STATE_REFRESH
                && s.promotion.is_none()
                && s.former_primaries == self.core.former_primaries()
                && s.primary.as_ref().is_some_and(|p| {
                    // The primary's own transactions move all the time: not a change.
                    let own = Some(p.server_id);
                    crate::core::SavedPrimary {
                        seen_at_unix_ms: primary.seen_at_unix_ms,
                        replicated: primary.replicated.clone(),
                        binlog_state: primary.binlog_state.clone(),
                        ..p.clone()
                    } == primary
                        && p.binlog_state
                            .missing_from(&primary.binlog_state, own)
                            .is_empty()
                        && primary
                            .binlog_state
                            .missing_from(&p.binlog_state, own)
                            .is_empty()
                })
        });
        if !fresh {
            self.save_state(SavedState {
                primary: Some(primary),
                promotion: None,
                former_primaries: self.core.former_primaries(),
            });
        }
    }

    /// Replace the saved state; a failure is an event (the orchestrator goes on: only a
    /// successor's proof is lost).
    fn save_state(&mut self, state: SavedState) {
        let Some(file) = &self.state_file else {
            return;
        };
        match file.save(&state) {
            Ok(()) => self.saved = Some((state, Instant::now())),
            Err(e) => {
                self.saved = None;
                self.state_not_saved(&e);
            }
        }
    }

    /// Say that the state for a successor could not be saved (a `step_failed` event).
    fn state_not_saved(&self, e: &impl std::fmt::Display) {
        self.publish(Notice {
            kind: EventKind::StepFailed,
            node: None,
            writers: None,
            reason: format!("saving the state for a successor: {e}"),
            duration: None,
        });
    }

    /// The state saved last, with the promotion of `plan` at `step`.
    fn promotion_state(
        &self,
        plan: &crate::core::FailoverPlan,
        step: PromotionStep,
        started_at_unix_ms: u64,
    ) -> SavedState {
        SavedState {
            primary: self.saved.as_ref().and_then(|(s, _)| s.primary.clone()),
            former_primaries: self.core.former_primaries(),
            promotion: Some(SavedPromotion {
                old_primary: self.config.nodes[plan.old_primary].name.clone(),
                candidate: self.config.nodes[plan.candidate].name.clone(),
                candidate_received: plan.candidate_received.clone(),
                step,
                started_at_unix_ms,
            }),
        }
    }

    fn executor_run<T>(&mut self, f: impl FnOnce(&mut Executor<'_>) -> T) -> (T, Vec<Notice>) {
        let mut notices = Vec::new();
        let mut report = |n: Notice| notices.push(n);
        let mut ex = Executor {
            links: &mut self.links,
            nodes: &self.config.nodes,
            settings: &self.config.settings,
            report: &mut report,
        };
        let out = f(&mut ex);
        (out, notices)
    }

    fn execute(&mut self, action: Action) {
        match action {
            Action::Failover(plan) => {
                let decided = Instant::now();
                let needs_fence =
                    plan.old_may_be_alive && self.config.settings.fence_command.is_some();
                if needs_fence && !self.fence_retry.may_run(decided) {
                    // The fence command failed recently: wait (the next round decides again).
                    return;
                }
                let mut started = Notice {
                    kind: EventKind::FailoverStarted,
                    node: Some(plan.candidate),
                    writers: Some((Some(plan.old_primary), None)),
                    reason: format!(
                        "dead primary: {}; promoting {}",
                        plan.facts, self.config.nodes[plan.candidate].name
                    ),
                    duration: Some(decided.saturating_duration_since(plan.suspected_at)),
                };
                if let Some(risk) = &plan.risk {
                    started
                        .reason
                        .push_str(&format!("; allow_data_loss: writes may be lost: {risk}"));
                }
                self.publish(started);
                if needs_fence {
                    let (fenced, notices) = self.executor_run(|ex| ex.fence_old_primary(&plan));
                    for n in notices {
                        self.publish(n);
                    }
                    if let Err(e) = fenced {
                        let (wait, ceiling) = self
                            .fence_retry
                            .failed(Instant::now(), drfailover_notify::backoff::full_jitter);
                        let retry = format!(
                            " ({} fence failure(s) in a row; next attempt in {} ms, backoff \
                             ceiling {} ms)",
                            self.fence_retry.failures(),
                            wait.as_millis(),
                            ceiling.as_millis()
                        );
                        for mut n in self.core.failover_finished(&plan, Err(e), Instant::now()) {
                            n.reason.push_str(&retry);
                            self.publish(n);
                        }
                        return;
                    }
                    self.fence_retry.succeeded();
                }
                let started_at = unix_ms();
                self.save_state(self.promotion_state(&plan, PromotionStep::Started, started_at));
                let (result, notices) = if self.state_file.is_some() {
                    // Each step is saved as it is reached (before the next one starts).
                    let file = self.state_file.clone();
                    let base = self.promotion_state(&plan, PromotionStep::Started, started_at);
                    let mut failed = Vec::new();
                    let mut save_step = |step: PromotionStep| {
                        let mut state = base.clone();
                        if let Some(p) = state.promotion.as_mut() {
                            p.step = step;
                        }
                        if let Some(Err(e)) = file.as_ref().map(|f| f.save(&state)) {
                            failed.push(e);
                        }
                    };
                    let out = self.executor_run(|ex| ex.failover(&plan, &mut save_step));
                    for e in failed {
                        self.state_not_saved(&e);
                    }
                    out
                } else {
                    self.executor_run(|ex| ex.failover(&plan, &mut |_| {}))
                };
                for n in notices {
                    self.publish(n);
                }
                let writable = Instant::now();
                if result.is_err() {
                    // The next round re-decides from what the servers say.
                    let primary = self.saved.as_ref().and_then(|(s, _)| s.primary.clone());
                    self.save_state(SavedState {
                        primary,
                        promotion: None,
                        former_primaries: self.core.former_primaries(),
                    });
                }
                for n in self.core.failover_finished(&plan, result.clone(), writable) {
                    self.publish(n);
                }
                if result.is_ok() {
                    self.figures.failovers += 1;
                    self.figures.last_detection =
                        Some(decided.saturating_duration_since(plan.suspected_at));
                    self.figures.last_promotion = Some(writable - decided);
                    self.publish(Notice {
                        kind: EventKind::FailoverCompleted,
                        node: Some(plan.candidate),
                        writers: Some((Some(plan.old_primary), Some(plan.candidate))),
                        reason: format!(
                            "{} is the primary (detection {} ms, promotion {} ms)",
                            self.config.nodes[plan.candidate].name,
                            decided
                                .saturating_duration_since(plan.suspected_at)
                                .as_millis(),
                            (writable - decided).as_millis()
                        ),
                        duration: Some(writable.saturating_duration_since(plan.suspected_at)),
                    });
                    let (_, notices) = self.executor_run(|ex| {
                        ex.settle(plan.candidate, &plan.repoint);
                        ex.announce(Some(plan.old_primary), plan.candidate)
                    });
                    for n in notices {
                        self.publish(n);
                    }
                    // Finished (until now a successor would finish it: the promotion is
                    // saved at step `writable`); the new primary's facts are saved at its
                    // first healthy round, the old one is fenced on sight.
                    self.save_state(SavedState {
                        former_primaries: self.core.former_primaries(),
                        ..SavedState::default()
                    });
                }
            }
            Action::Fence { node, reason } => {
                let (result, notices) = self.executor_run(|ex| ex.fence(node, &reason));
                for n in notices {
                    self.publish(n);
                }
                if result.is_ok() {
                    self.core.fenced(node);
                }
            }
            Action::Repoint { node, to } => {
                let (_, notices) = self.executor_run(|ex| ex.repoint(node, to));
                for n in notices {
                    self.publish(n);
                }
            }
            Action::FinishPromotion { old, new, repoint } => {
                let (_, notices) = self.executor_run(|ex| {
                    ex.settle(new, &repoint);
                    ex.announce(Some(old), new)
                });
                for n in notices {
                    self.publish(n);
                }
            }
            Action::Announce { old, new } => {
                let (_, notices) = self.executor_run(|ex| ex.announce(Some(old), new));
                for n in notices {
                    self.publish(n);
                }
            }
            Action::HoldCommits { node } => {
                let (result, notices) = self.executor_run(|ex| ex.hold_commits(node));
                for n in notices {
                    self.publish(n);
                }
                self.core
                    .sync_action_done(&Action::HoldCommits { node }, result.is_ok());
            }
            Action::SuspendSemiSync { node, reason } => {
                let (result, notices) = self.executor_run(|ex| ex.suspend_semi_sync(node, &reason));
                for n in notices {
                    self.publish(n);
                }
                self.core
                    .sync_action_done(&Action::SuspendSemiSync { node, reason }, result.is_ok());
            }
            Action::ResumeSemiSync { node } => {
                let (result, mut notices) = self.executor_run(|ex| ex.enable_semi_sync(node));
                if result.is_ok() {
                    notices.push(Notice {
                        kind: EventKind::StepCompleted,
                        node: Some(node),
                        writers: None,
                        reason: format!(
                            "zero-loss protection resumed: a replica acknowledges commits on {}",
                            self.config.nodes[node].name
                        ),
                        duration: None,
                    });
                }
                for n in notices {
                    self.publish(n);
                }
                self.core
                    .sync_action_done(&Action::ResumeSemiSync { node }, result.is_ok());
            }
            Action::Rejoin { node, to } => {
                let (result, notices) = self.executor_run(|ex| ex.rejoin(node, to));
                for n in notices {
                    self.publish(n);
                }
                if result.is_ok() {
                    self.core.rejoined(node);
                }
            }
        }
    }

    /// Give every lock back when this orchestrator has held a minority of them too long
    /// ([`Leadership`]), so that another orchestrator can gather the majority.
    fn yield_minority(&mut self, round: &Round) {
        let jitter = drfailover_notify::backoff::full_jitter(Duration::from_secs(1)).as_secs_f64();
        let action = self.leadership.after_round(
            round.locks_held,
            self.links.len(),
            round.leader,
            round.at,
            self.config.probe_interval,
            jitter,
        );
        if let LockAction::ReleaseUntil(until) = action {
            for link in &mut self.links {
                link.release_lock();
            }
            self.publish(Notice {
                kind: EventKind::StepCompleted,
                node: None,
                writers: None,
                reason: format!(
                    "locks released: this orchestrator held {} of {} for {MINORITY_ROUNDS} rounds, \
                     no majority; it takes none for {} ms so that another can lead",
                    round.locks_held,
                    self.links.len(),
                    until.saturating_duration_since(round.at).as_millis()
                ),
                duration: None,
            });
        }
    }

    /// Switch the primary over to the node named `target` on this thread (the command
    /// line's `switchover --config`): refuses unless this orchestrator holds the lock and the
    /// topology is healthy. Blocks for the whole switchover.
    pub fn switchover(&mut self, target: &str) -> Result<String, String> {
        self.resolve_hosts();
        let round = observe_all(
            &mut self.links,
            self.config.probe_timeout,
            Some(&self.config.lock_name),
        );
        let decision = self.core.step(&round);
        self.last_round = Some(round);
        for n in decision.notices {
            self.publish(n);
        }
        let plan = self.plan_switchover(target, Instant::now())?;
        let started = Instant::now();
        let publisher = self.publisher.clone();
        let generation = self.core.generation();
        let report = move |n: Notice| publisher.publish(n, generation);
        let result = crate::switchover::run(
            &self.config,
            &mut self.links,
            &plan,
            &Ticket::new(),
            &report,
        );
        match self.switchover_ended(&plan, target, started, result) {
            Outcome::Done(text) => Ok(text),
            Outcome::Refused(e) | Outcome::Failed(e) => Err(e),
        }
    }

    /// Checks before a switchover (leader, anti-flapping, [`Core::plan_switchover`]); on
    /// success publishes that it starts. Pure but for the event.
    fn plan_switchover(&mut self, target: &str, now: Instant) -> Result<SwitchoverPlan, String> {
        if !self.last_round.as_ref().is_some_and(|r| r.leader) {
            return Err("another orchestrator holds the lock on a majority of the nodes: ask it (drfailover switchover --daemon URL)".into());
        }
        let anti_flap = self.config.policy.anti_flap;
        if self.core.flap_blocked(now)
            || self
                .last_switchover
                .is_some_and(|t| now.saturating_duration_since(t) < anti_flap)
        {
            return Err(format!(
                "the primary changed less than {} s ago (anti-flapping): run `drfailover ack` \
                 to allow another change",
                anti_flap.as_secs()
            ));
        }
        let plan = self.core.plan_switchover(target)?;
        self.publish(Notice {
            kind: EventKind::FailoverStarted,
            node: Some(plan.target),
            writers: Some((Some(plan.old_primary), None)),
            reason: format!("switchover to {target} requested"),
            duration: None,
        });
        Ok(plan)
    }

    /// Book a switchover's end: tell the core, count it, publish the outcome.
    fn switchover_ended(
        &mut self,
        plan: &SwitchoverPlan,
        target: &str,
        started: Instant,
        result: Result<(), SwitchoverError>,
    ) -> Outcome {
        let took = started.elapsed();
        self.core.switchover_finished(plan, &result);
        match result {
            Ok(()) => {
                self.figures.switchovers += 1;
                self.last_switchover = Some(Instant::now());
                self.publish(Notice {
                    kind: EventKind::FailoverCompleted,
                    node: Some(plan.target),
                    writers: Some((Some(plan.old_primary), Some(plan.target))),
                    reason: format!("switchover to {target} done"),
                    duration: Some(took),
                });
                Outcome::Done(format!("{target} is the primary ({} ms)", took.as_millis()))
            }
            Err(e) => {
                self.publish(Notice {
                    kind: EventKind::FailoverFailed,
                    node: Some(plan.target),
                    writers: Some((Some(plan.old_primary), None)),
                    reason: format!("switchover to {target}: {e}"),
                    duration: Some(took),
                });
                if e.unchanged() {
                    Outcome::Refused(format!("switchover to {target}: {e}"))
                } else {
                    Outcome::Failed(format!("switchover to {target}: {e}"))
                }
            }
        }
    }

    /// Start a switchover beside the loop, or answer why not.
    fn start_switchover(&mut self, target: String, ticket: Ticket, reply: Reply) {
        if let Some(why) = ticket.cancelled() {
            let _ = reply.send(Outcome::Refused(why));
            return;
        }
        if let Some(job) = &self.switchover {
            let _ = reply.send(Outcome::Refused(format!(
                "a switchover to {} is in progress",
                job.target
            )));
            return;
        }
        let plan = match self.plan_switchover(&target, Instant::now()) {
            Ok(plan) => plan,
            Err(e) => {
                let _ = reply.send(Outcome::Refused(e));
                return;
            }
        };
        let publisher = self.publisher.clone();
        let generation = self.core.generation();
        let report: Report = Arc::new(move |n: Notice| publisher.publish(n, generation));
        match SwitchoverJob::spawn(
            &self.config,
            plan.clone(),
            target.clone(),
            ticket,
            reply,
            report,
        ) {
            Ok(job) => self.switchover = Some(job),
            Err((reply, why)) => {
                let started = Instant::now();
                let outcome = self.switchover_ended(
                    &plan,
                    &target,
                    started,
                    Err(SwitchoverError::NotStarted(why)),
                );
                let _ = reply.send(outcome);
            }
        }
    }

    /// Whether the loop may act on `actions` while a switchover runs. A pending switchover
    /// is abandoned (with an event) as soon as the primary is not healthy or a failover is
    /// decided; a committed one keeps the topology until it ends (then `false`).
    fn switchover_may_go_on(&mut self, actions: &[Action]) -> bool {
        let Some(job) = &self.switchover else {
            return true;
        };
        let healthy = matches!(self.core.analysis(), Analysis::Healthy { primary } if *primary == job.plan.old_primary);
        let failover = actions.iter().any(|a| matches!(a, Action::Failover(_)));
        if healthy && !failover {
            return !job.ticket.committed();
        }
        let why = format!(
            "the primary is not healthy ({}){}",
            self.core.analysis().code(),
            if failover {
                ": failing over instead"
            } else {
                ""
            }
        );
        if !job.ticket.cancel(&why) {
            return false;
        }
        let (target, node, old) = (job.target.clone(), job.plan.target, job.plan.old_primary);
        self.publish(Notice {
            kind: EventKind::FailoverFailed,
            node: Some(node),
            writers: Some((Some(old), None)),
            reason: format!("switchover to {target} abandoned before any change: {why}"),
            duration: None,
        });
        true
    }

    /// Collect a switchover that ended (waiting up to `wait` for it): book it and answer.
    fn collect_switchover(&mut self, wait: Duration) {
        let Some(job) = &mut self.switchover else {
            return;
        };
        let Some(result) = job.finished(wait) else {
            return;
        };
        let job = self.switchover.take().expect("checked above");
        let outcome = self.switchover_ended(&job.plan, &job.target, job.started, result);
        let _ = job.reply.send(outcome);
    }

    /// Whether a switchover owns the topology right now (committed, not yet collected).
    fn switchover_committed(&self) -> bool {
        self.switchover
            .as_ref()
            .is_some_and(|j| j.ticket.committed())
    }

    /// Run rounds until `stop` is set, serving `requests` between rounds. Blocks.
    pub fn run(&mut self, stop: &AtomicBool, requests: &Receiver<Request>) {
        self.resolve_hosts();
        self.run_with(stop, requests, |_| {});
    }

    /// [`Orchestrator::run`], calling `after_round` after every round (e.g. to publish a
    /// [`crate::http::Snapshot`]).
    pub fn run_with(
        &mut self,
        stop: &AtomicBool,
        requests: &Receiver<Request>,
        mut after_round: impl FnMut(&Orchestrator),
    ) {
        while !stop.load(Ordering::SeqCst) {
            let started = Instant::now();
            self.collect_switchover(Duration::ZERO);
            let acted = if self.switchover_committed() {
                // The switchover owns the topology until it ends (bounded steps).
                self.collect_switchover(self.config.probe_interval);
                true
            } else {
                self.tick()
            };
            after_round(self);
            while let Ok(req) = requests.try_recv() {
                match req {
                    Request::Ack(reply) => {
                        self.core.acknowledge();
                        self.last_switchover = None;
                        self.publish(Notice {
                            kind: EventKind::StepCompleted,
                            node: None,
                            writers: None,
                            reason: "anti-flapping block acknowledged".into(),
                            duration: None,
                        });
                        let _ = reply.send(Outcome::Done("acknowledged".into()));
                    }
                    Request::Switchover {
                        target,
                        ticket,
                        reply,
                    } => self.start_switchover(target, ticket, reply),
                }
            }
            if !acted {
                let interval = match self.core.analysis() {
                    Analysis::PrimarySuspect { .. } => self.config.suspect_interval,
                    // A former primary may come back writable: look for it more often.
                    _ if self.core.awaiting_fence() => self
                        .config
                        .probe_interval
                        .min(self.config.suspect_interval * 2),
                    _ => self.config.probe_interval,
                };
                let wait = interval.saturating_sub(started.elapsed());
                self.wait_watching_primary(wait);
            }
        }
        if let Some(job) = &self.switchover {
            job.ticket.cancel("the orchestrator is stopping");
            let bound =
                self.config.settings.catchup_timeout + self.config.settings.step_timeout * 8;
            self.collect_switchover(bound);
        }
        self.restore_semi_sync_timeouts();
        for link in &mut self.links {
            link.close();
        }
    }

    /// A clean exit: put the server's own `rpl_semi_sync_master_timeout` back on every node
    /// last seen holding commits (the server then decides its fallback again). Best effort,
    /// each bounded by the step timeout.
    fn restore_semi_sync_timeouts(&mut self) {
        let Some(original) = self.core.sync_guard().original_timeout_ms() else {
            return;
        };
        let held: Vec<NodeId> = (0..self.config.nodes.len())
            .filter(|&i| {
                self.core
                    .facts(i)
                    .is_some_and(|f| f.semi_sync_master_timeout_ms == crate::core::HOLD_TIMEOUT_MS)
            })
            .collect();
        for node in held {
            let (_, notices) = self.executor_run(|ex| ex.restore_timeout(node, original));
            for n in notices {
                self.publish(n);
            }
        }
    }

    /// Wait `wait` before the next round, returning early (the next round then runs at once)
    /// when an idle connection to the primary hangs up: a crashed server's kernel resets it
    /// the instant the process dies, so the crash is seen then, not at the next round.
    /// Descriptors that already woke the loop once are not watched again (a hang-up is
    /// read by the round that follows, which drops those connections). Blocks up to `wait`.
    fn wait_watching_primary(&mut self, wait: Duration) {
        let fds = match self.core.primary() {
            Some(p) if matches!(self.core.analysis(), Analysis::Healthy { .. }) => {
                self.links[p].watch_fds()
            }
            _ => Vec::new(),
        };
        let fds: Vec<_> = fds
            .into_iter()
            .filter(|fd| !self.hung_up.contains(fd))
            .collect();
        if crate::observe::wait_for_hangup(&fds, wait) {
            self.primary_hangup = Some(Instant::now());
            self.hung_up = fds;
        } else {
            self.hung_up.clear();
        }
    }

    /// `/status`: the analysis, the primary, every node's state, the figures (JSON).
    pub fn status_json(&self) -> serde_json::Value {
        let now = Instant::now();
        let nodes: Vec<serde_json::Value> = self
            .config
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let probe = self.last_round.as_ref().map(|r| &r.nodes[i]);
                let (state, detail) = match probe {
                    Some(NodeProbe::Reached(f)) => (
                        if f.read_only { "read_only" } else { "writable" },
                        serde_json::json!({
                            "server_id": f.server_id,
                            "gtid_current_pos": f.current_pos.to_string(),
                            "gtid_binlog_pos": f.binlog_pos.to_string(),
                            "semi_sync_master": f.semi_sync_master_active,
                            "replicating_from": f.replica().map(|r| format!("{}:{}", r.master_host, r.master_port)),
                            "io_thread": f.replica().map(|r| format!("{:?}", r.io)),
                            "sql_thread": f.replica().map(|r| r.sql_running),
                            "received": f.replica().map(|r| r.received.to_string()),
                            "seconds_behind": f.replica().and_then(|r| r.seconds_behind),
                        }),
                    ),
                    Some(NodeProbe::Failed { class, detail }) => (
                        "unreachable",
                        serde_json::json!({ "class": class.as_str(), "error": detail }),
                    ),
                    None => ("unknown", serde_json::Value::Null),
                };
                serde_json::json!({
                    "name": n.name, "address": n.address(), "state": state,
                    "primary": self.core.primary() == Some(i), "facts": detail,
                })
            })
            .collect();
        let analysis = self.core.analysis();
        let facts = match analysis {
            Analysis::PrimarySuspect { facts, .. }
            | Analysis::PrimaryUnreachable { facts, .. }
            | Analysis::DeadPrimary { facts, .. } => facts.to_string(),
            Analysis::NoPrimary { reason } => reason.to_string(),
            _ => String::new(),
        };
        serde_json::json!({
            "analysis": analysis.code(),
            "facts": facts,
            "primary": self.core.primary().map(|p| self.config.nodes[p].name.clone()),
            "leader": self.last_round.as_ref().is_some_and(|r| r.leader),
            "generation": self.core.generation(),
            "failovers": self.figures.failovers,
            "switchovers": self.figures.switchovers,
            "anti_flap_blocked": self.core.flap_blocked(now),
            "last_detection_ms": self.figures.last_detection.map(|d| d.as_secs_f64() * 1e3),
            "last_promotion_ms": self.figures.last_promotion.map(|d| d.as_secs_f64() * 1e3),
            "nodes": nodes,
        })
    }

    /// `/metrics`: Prometheus text format (see [`crate::metrics`]).
    pub fn metrics_text(&self) -> String {
        let nodes: Vec<crate::metrics::NodeState<'_>> = self
            .config
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| {
                let probe = self.last_round.as_ref().map(|r| &r.nodes[i]);
                crate::metrics::NodeState {
                    name: &n.name,
                    up: matches!(probe, Some(NodeProbe::Reached(_))),
                    writable: matches!(probe, Some(NodeProbe::Reached(f)) if !f.read_only),
                    primary: self.core.primary() == Some(i),
                }
            })
            .collect();
        crate::metrics::render(
            &self.figures,
            self.last_round.as_ref().is_some_and(|r| r.leader),
            &nodes,
            &self.sink_stats.totals(),
        )
    }

    /// Count the event sinks' failures in `/metrics` (from [`Config::attach_sinks`]).
    pub fn set_sink_stats(&mut self, stats: crate::config::SinkStats) {
        self.sink_stats = stats;
    }
}
