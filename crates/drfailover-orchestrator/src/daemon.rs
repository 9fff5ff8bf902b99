//! The orchestrator loop: observe every node, let the core decide, execute, announce —
//! and the small state the HTTP endpoint and the CLI read.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, Sender};
use drfailover_mysql::Deadline;
use drfailover_notify::{Event, EventKind, Notifier};

use crate::config::Config;
use crate::core::{Action, Analysis, Core, NodeId, Notice};
use crate::execute::Executor;
use crate::facts::{NodeProbe, Round};
use crate::observe::{observe_all, NodeLink};

/// A request to the running loop (from the HTTP endpoint or the CLI).
#[derive(Debug)]
pub enum Request {
    /// Lift the anti-flapping block.
    Ack(Sender<Result<String, String>>),
    /// Switch the primary over to the named node.
    Switchover(String, Sender<Result<String, String>>),
}

/// Figures for `/metrics` and `/status`.
#[derive(Clone, Debug, Default)]
pub struct Figures {
    /// Failovers performed.
    pub failovers: u64,
    /// Switchovers performed.
    pub switchovers: u64,
    /// First failed probe → failover decided, of the last failover.
    pub last_detection: Option<Duration>,
    /// Failover decided → new primary writable, of the last failover.
    pub last_promotion: Option<Duration>,
    /// Failover blocked notices given.
    pub blocked: u64,
}

/// A running orchestrator over one topology.
pub struct Orchestrator {
    config: Config,
    links: Vec<NodeLink>,
    core: Core,
    notifier: Arc<Notifier>,
    id: u64,
    figures: Figures,
    last_round: Option<Round>,
    resolved: bool,
}

impl Orchestrator {
    /// An orchestrator for `config`, publishing events to `notifier` (as `client_id = id`).
    /// Connects nothing yet.
    pub fn new(config: Config, notifier: Arc<Notifier>, id: u64) -> Orchestrator {
        let links = (0..config.nodes.len())
            .map(|i| NodeLink::new(config.connect_options(i)))
            .collect();
        let core = Core::new(config.nodes.clone(), config.policy.clone());
        Orchestrator {
            config,
            links,
            core,
            notifier,
            id,
            figures: Figures::default(),
            last_round: None,
            resolved: false,
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

    /// The configuration.
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

    /// Check the topology before managing it (see [`Core::validate`]) and make sure every
    /// replica sends heartbeats often enough for the detection budget (sets
    /// `MASTER_HEARTBEAT_PERIOD` when `set_heartbeat_period`, else says what to change).
    /// Changes nothing on any server when a problem is found. Blocks up to a few probe
    /// timeouts.
    pub fn start(&mut self) -> Result<(), String> {
        self.resolve_hosts();
        let round = observe_all(&mut self.links, self.config.probe_timeout, None);
        let primary = self.core.validate(&round).map_err(|p| {
            p.iter()
                .map(ToString::to_string)
                .collect::<Vec<_>>()
                .join("\n")
        })?;
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
        let name = |id: Option<NodeId>| id.map(|i| self.config.nodes[i].name.clone());
        let mut event = Event::new(
            notice.kind,
            self.id,
            self.core.generation(),
            self.notifier.epoch(),
        )
        .reason(notice.reason);
        if let Some(n) = notice.node {
            event = event.endpoint(self.config.nodes[n].label());
        }
        if let Some((old, new)) = notice.writers {
            event = event.writers(name(old), name(new));
        }
        if let Some(d) = notice.duration {
            event = event.duration(d);
        }
        self.notifier.publish(event);
    }

    /// One round: observe (taking the lock), decide, act. Returns whether anything was done
    /// (the caller then observes again at once). Blocks for the round plus any actions.
    pub fn tick(&mut self) -> bool {
        let round = observe_all(
            &mut self.links,
            self.config.probe_timeout,
            Some(&self.config.lock_name),
        );
        let decision = self.core.step(&round);
        self.last_round = Some(round);
        for n in decision.notices {
            if n.kind == EventKind::FailoverBlocked {
                self.figures.blocked += 1;
            }
            self.publish(n);
        }
        let acted = !decision.actions.is_empty();
        for action in decision.actions {
            self.execute(action);
        }
        acted
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
                let (result, notices) = self.executor_run(|ex| ex.failover(&plan));
                for n in notices {
                    self.publish(n);
                }
                let writable = Instant::now();
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
                        ex.announce(Some(plan.old_primary), plan.candidate);
                        ex.settle(plan.candidate, &plan.repoint)
                    });
                    for n in notices {
                        self.publish(n);
                    }
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
            Action::Announce { old, new } => {
                let (_, notices) = self.executor_run(|ex| ex.announce(Some(old), new));
                for n in notices {
                    self.publish(n);
                }
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

    /// Switch the primary over to the node named `target`: refuses unless this orchestrator
    /// holds the lock and the topology is healthy. Blocks for the whole switchover.
    pub fn switchover(&mut self, target: &str) -> Result<String, String> {
        self.resolve_hosts();
        let round = observe_all(
            &mut self.links,
            self.config.probe_timeout,
            Some(&self.config.lock_name),
        );
        let decision = self.core.step(&round);
        for n in decision.notices {
            self.publish(n);
        }
        if !round.leader {
            return Err("another orchestrator holds the lock on a majority of the nodes: ask it (drfailover switchover --daemon URL)".into());
        }
        let plan = self.core.plan_switchover(target)?;
        let started = Instant::now();
        self.publish(Notice {
            kind: EventKind::FailoverStarted,
            node: Some(plan.target),
            writers: Some((Some(plan.old_primary), None)),
            reason: format!("switchover to {target} requested"),
            duration: None,
        });
        let (result, notices) = self.executor_run(|ex| ex.switchover(&plan));
        for n in notices {
            self.publish(n);
        }
        self.core.switchover_finished(&plan, &result);
        let took = started.elapsed();
        match &result {
            Ok(()) => {
                self.figures.switchovers += 1;
                self.publish(Notice {
                    kind: EventKind::FailoverCompleted,
                    node: Some(plan.target),
                    writers: Some((Some(plan.old_primary), Some(plan.target))),
                    reason: format!("switchover to {target} done"),
                    duration: Some(took),
                });
            }
            Err(e) => self.publish(Notice {
                kind: EventKind::FailoverFailed,
                node: Some(plan.target),
                writers: Some((Some(plan.old_primary), None)),
                reason: format!("switchover to {target}: {e}"),
                duration: Some(took),
            }),
        }
        result.map(|()| format!("{target} is the primary ({} ms)", took.as_millis()))
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
            let acted = self.tick();
            after_round(self);
            while let Ok(req) = requests.try_recv() {
                match req {
                    Request::Ack(reply) => {
                        self.core.acknowledge();
                        self.publish(Notice {
                            kind: EventKind::StepCompleted,
                            node: None,
                            writers: None,
                            reason: "anti-flapping block acknowledged".into(),
                            duration: None,
                        });
                        let _ = reply.send(Ok("acknowledged".into()));
                    }
                    Request::Switchover(target, reply) => {
                        let _ = reply.send(self.switchover(&target));
                    }
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
                std::thread::sleep(wait);
            }
        }
        for link in &mut self.links {
            link.close();
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

    /// `/metrics`: Prometheus text format.
    pub fn metrics_text(&self) -> String {
        let mut m = String::new();
        let mut gauge = |name: &str, help: &str, kind: &str, lines: Vec<(String, f64)>| {
            m.push_str(&format!("# HELP {name} {help}\n# TYPE {name} {kind}\n"));
            for (labels, v) in lines {
                m.push_str(&format!("{name}{labels} {v}\n"));
            }
        };
        let f = &self.figures;
        gauge(
            "drfailover_orchestrator_failovers_total",
            "Automatic failovers performed.",
            "counter",
            vec![(String::new(), f.failovers as f64)],
        );
        gauge(
            "drfailover_orchestrator_switchovers_total",
            "Planned switchovers performed.",
            "counter",
            vec![(String::new(), f.switchovers as f64)],
        );
        gauge(
            "drfailover_orchestrator_failovers_blocked_total",
            "Failovers refused (zero-loss gate, anti-flapping, no candidate, not the leader).",
            "counter",
            vec![(String::new(), f.blocked as f64)],
        );
        gauge(
            "drfailover_orchestrator_last_detection_seconds",
            "First failed probe to failover decision, last failover.",
            "gauge",
            vec![(
                String::new(),
                f.last_detection.map_or(f64::NAN, |d| d.as_secs_f64()),
            )],
        );
        gauge(
            "drfailover_orchestrator_last_promotion_seconds",
            "Failover decision to new primary writable, last failover.",
            "gauge",
            vec![(
                String::new(),
                f.last_promotion.map_or(f64::NAN, |d| d.as_secs_f64()),
            )],
        );
        gauge(
            "drfailover_orchestrator_leader",
            "1 when this orchestrator holds the lock on a majority of the nodes.",
            "gauge",
            vec![(
                String::new(),
                f64::from(u8::from(self.last_round.as_ref().is_some_and(|r| r.leader))),
            )],
        );
        let mut up = Vec::new();
        let mut writable = Vec::new();
        let mut primary = Vec::new();
        for (i, n) in self.config.nodes.iter().enumerate() {
            let label = format!("{{node=\"{}\"}}", n.name);
            let probe = self.last_round.as_ref().map(|r| &r.nodes[i]);
            let reached = matches!(probe, Some(NodeProbe::Reached(_)));
            let w = matches!(probe, Some(NodeProbe::Reached(f)) if !f.read_only);
            up.push((label.clone(), f64::from(u8::from(reached))));
            writable.push((label.clone(), f64::from(u8::from(w))));
            primary.push((label, f64::from(u8::from(self.core.primary() == Some(i)))));
        }
        gauge(
            "drfailover_orchestrator_node_up",
            "1 when the node answered the last probe.",
            "gauge",
            up,
        );
        gauge(
            "drfailover_orchestrator_node_writable",
            "1 when the node is writable (read_only=0).",
            "gauge",
            writable,
        );
        gauge(
            "drfailover_orchestrator_node_primary",
            "1 for the node the orchestrator takes as primary.",
            "gauge",
            primary,
        );
        m
    }
}
