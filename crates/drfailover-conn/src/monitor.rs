//! The monitor thread: probes every endpoint, tracks health, chooses the writer, bumps the
//! generation, aborts in-flight work on a dead writer, and raises events. One per client.

use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use drfailover_notify::EventKind;
use drfailover_probe::{Deadline, Health, HealthTracker, MonitorProbe, Observation, TrackerConfig};

use crate::selection::{select_writer, Candidate};
use crate::shared::{Counters, Shared, Wake};

pub(crate) struct Monitor {
    shared: Arc<Shared>,
    wake: Receiver<Wake>,
    probes: Vec<MonitorProbe>,
    trackers: Vec<HealthTracker>,
    writable: Vec<bool>,
    writer: Option<usize>,
    generation: u64,
    /// When the current writer was lost, and which it was (for failover events).
    failover: Option<(Instant, Option<usize>)>,
    failover_failed_reported: bool,
    split_brain: Vec<usize>,
    last_round: Instant,
}

/// What the first probe round found, sent to `Client::connect`.
#[derive(Debug, Clone)]
pub(crate) struct FirstRound {
    pub observations: Vec<Observation>,
}

impl Monitor {
    pub fn new(shared: Arc<Shared>, wake: Receiver<Wake>) -> Monitor {
        let config = &shared.config;
        let tracker_config = TrackerConfig {
            interval: config.probe_interval,
            suspect_interval: config.failover_probe_interval,
            fall: config.fall,
            rise: config.rise,
        };
        let now = Instant::now();
        let n = config.endpoints.len();
        Monitor {
            probes: shared
                .endpoint_options
                .iter()
                .map(|o| MonitorProbe::new(o.clone()))
                .collect(),
            trackers: vec![HealthTracker::new(tracker_config, now); n],
            writable: vec![false; n],
            writer: None,
            generation: 0,
            failover: None,
            failover_failed_reported: false,
            split_brain: Vec::new(),
            last_round: now,
            shared,
            wake,
        }
    }

    pub fn run(mut self, first_round: SyncSender<FirstRound>) {
        let observations = (0..self.probes.len()).map(|i| self.probe(i)).collect();
        self.decide();
        self.last_round = Instant::now();
        let _ = first_round.send(FirstRound { observations });
        loop {
            let now = Instant::now();
            let mut next = self
                .trackers
                .iter()
                .map(HealthTracker::next_probe_at)
                .min()
                .unwrap_or(now + self.shared.config.probe_interval);
            if self.writer.is_none() {
                next = next.min(self.last_round + self.shared.config.failover_probe_interval);
            }
            match self.wake.recv_timeout(next.saturating_duration_since(now)) {
                Ok(Wake::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Wake::Failure(i)) => {
                    self.trackers[i].report_hard_failure(Instant::now());
                }
                Ok(Wake::ReadOnly(i)) => {
                    self.writable[i] = false;
                    self.trackers[i].report_hard_failure(Instant::now());
                }
                Err(RecvTimeoutError::Timeout) => {}
            }
            self.round();
        }
    }

    /// Probe every endpoint that is due (all of them while there is no writer), then decide.
    fn round(&mut self) {
        let all = self.writer.is_none();
        for i in 0..self.probes.len() {
            if all || self.trackers[i].next_probe_at() <= Instant::now() {
                self.probe(i);
                // A dead writer is acted on before the other endpoints are probed.
                if Some(i) == self.writer && !self.writable_and_usable(i) {
                    self.decide();
                }
            }
        }
        self.decide();
        self.last_round = Instant::now();
    }

    fn writable_and_usable(&self, i: usize) -> bool {
        self.writable[i] && self.trackers[i].is_usable()
    }

    fn probe(&mut self, i: usize) -> Observation {
        let obs = self.probes[i].role(Deadline::after(self.shared.config.probe_timeout));
        Counters::bump(&self.shared.counters.probes);
        let transition = self.trackers[i].observe(obs.class, Instant::now());
        // A live node's role is what the probe just read. A failed probe does not erase the
        // last known role: the writer survives a single slow probe (suspect) and is dropped
        // when the tracker declares it down (after `fall` failures, at once when refused).
        if obs.class.is_alive() {
            self.writable[i] = obs.writable();
        } else if self.trackers[i].state() == Health::Down {
            self.writable[i] = false;
        }
        {
            let mut status = self.shared.status();
            let s = &mut status[i];
            s.health = self.trackers[i].state();
            s.writable = self.writable[i];
            s.last_outcome = Some(obs.class);
        }
        if let Some(t) = transition {
            let name = self.shared.endpoint_name(i);
            match t.to {
                Health::Down => {
                    log::warn!(target: "drfailover", "endpoint {name} down: {} {}", obs.class, obs.detail);
                    // In-flight abort: whatever is still leased to a dead node (the writer, or
                    // the writer just lost) is blocked on it; shut those sockets now.
                    let n = self.shared.pool.abort_endpoint(i);
                    self.shared
                        .counters
                        .aborted
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                    self.shared.notifier.publish(
                        self.shared
                            .event(EventKind::EndpointDown, self.generation)
                            .endpoint(name)
                            .reason(reason(&obs)),
                    );
                }
                Health::Up if t.from == Health::Down => {
                    log::info!(target: "drfailover", "endpoint {name} up");
                    self.shared.notifier.publish(
                        self.shared
                            .event(EventKind::EndpointUp, self.generation)
                            .endpoint(name)
                            .reason(obs.class.as_str()),
                    );
                }
                _ => {}
            }
        }
        obs
    }

    fn decide(&mut self) {
        let candidates: Vec<Candidate> = (0..self.probes.len())
            .map(|i| Candidate {
                usable: self.trackers[i].is_usable(),
                writable: self.writable[i],
            })
            .collect();
        let selection = select_writer(self.writer, &candidates, self.shared.config.failback);
        let now = Instant::now();
        if selection.writer != self.writer {
            let old = self.writer;
            if let Some(old) = old {
                if self.failover.is_none() {
                    self.failover = Some((now, Some(old)));
                    self.failover_failed_reported = false;
                    self.shared.notifier.publish(
                        self.shared
                            .event(EventKind::FailoverStarted, self.generation)
                            .writers(Some(self.shared.endpoint_name(old)), None)
                            .reason(
                                self.shared.status()[old]
                                    .last_outcome
                                    .map_or("", |c| c.as_str()),
                            ),
                    );
                }
            }
            self.writer = selection.writer;
            match selection.writer {
                Some(new) => {
                    self.generation += 1;
                    self.shared.set_writer(Some(new), self.generation);
                    self.shared.pool.close_stale(self.generation);
                    let new_name = self.shared.endpoint_name(new);
                    match self.failover.take() {
                        Some((since, old)) => {
                            Counters::bump(&self.shared.counters.failovers);
                            let old_name = old.map(|o| self.shared.endpoint_name(o));
                            log::warn!(target: "drfailover", "failover {} -> {new_name} in {:?}", old_name.as_deref().unwrap_or("none"), since.elapsed());
                            self.shared.notifier.publish(
                                self.shared
                                    .event(EventKind::FailoverCompleted, self.generation)
                                    .writers(old_name, Some(new_name))
                                    .duration(since.elapsed()),
                            );
                        }
                        None => {
                            log::info!(target: "drfailover", "writer {new_name} (generation {})", self.generation);
                            self.shared.notifier.publish(
                                self.shared
                                    .event(EventKind::Connected, self.generation)
                                    .writers(None, Some(new_name)),
                            );
                        }
                    }
                }
                None => {
                    self.shared.set_writer(None, self.generation);
                    if let Some(old) = old {
                        // The old writer's idle connections are useless now.
                        if self.trackers[old].state() == Health::Down {
                            self.shared.pool.abort_endpoint(old);
                        } else {
                            self.shared.pool.close_stale(u64::MAX);
                        }
                    }
                }
            }
        }
        if let Some((since, old)) = self.failover {
            if !self.failover_failed_reported
                && since.elapsed() >= self.shared.config.failover_timeout
            {
                self.failover_failed_reported = true;
                self.shared.notifier.publish(
                    self.shared
                        .event(EventKind::FailoverFailed, self.generation)
                        .writers(old.map(|o| self.shared.endpoint_name(o)), None)
                        .duration(since.elapsed())
                        .reason("no writable node found within failover_timeout_ms"),
                );
            }
        }
        if selection.split_brain != self.split_brain {
            if !selection.split_brain.is_empty() {
                let others: Vec<String> = selection
                    .split_brain
                    .iter()
                    .map(|&i| self.shared.endpoint_name(i))
                    .collect();
                log::error!(target: "drfailover", "split brain: {} also writable", others.join(", "));
                self.shared.notifier.publish(
                    self.shared
                        .event(EventKind::SplitBrain, self.generation)
                        .writers(selection.writer.map(|w| self.shared.endpoint_name(w)), None)
                        .endpoint(others.join(","))
                        .reason("more than one node is writable; keeping the current writer"),
                );
            }
            self.split_brain = selection.split_brain;
        }
    }
}

fn reason(obs: &Observation) -> String {
    if obs.detail.is_empty() {
        obs.class.as_str().to_string()
    } else {
        format!("{}: {}", obs.class.as_str(), obs.detail)
    }
}

/// Upper bound on how long the first probe round can take.
pub(crate) fn first_round_budget(shared: &Shared) -> Duration {
    (shared.config.probe_timeout + Duration::from_millis(50))
        .saturating_mul(shared.config.endpoints.len() as u32)
        + Duration::from_secs(1)
}
