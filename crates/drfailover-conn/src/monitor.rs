//! The monitor thread: probes every endpoint, tracks health, chooses the writer, bumps the
//! generation, aborts in-flight work on a dead writer, and raises events. One per client.

use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use drfailover_notify::EventKind;
use drfailover_probe::{Deadline, Health, HealthTracker, MonitorProbe, Observation, TrackerConfig};

use crate::retry::Backoff;
use crate::selection::{select_writer, Candidate};
use crate::shared::{Counters, Shared, Wake};

/// Resolution state of an endpoint given by name.
#[cfg_attr(not(feature = "dns"), allow(dead_code))]
struct Name {
    host: String,
    current: Option<std::net::IpAddr>,
    next_resolve: Instant,
    last_resolve: Option<Instant>,
}

#[cfg(feature = "dns")]
type Resolver = crate::dns::Dns;
#[cfg(not(feature = "dns"))]
type Resolver = ();

/// A resolver when some endpoint is a host name and DNS support is built in.
pub(crate) fn resolver_for(config: &crate::Config) -> Result<Option<Resolver>, crate::Error> {
    let names = config
        .endpoints
        .iter()
        .any(|e| e.host.parse::<std::net::IpAddr>().is_err());
    #[cfg(feature = "dns")]
    {
        if names {
            return crate::dns::Dns::new(config).map(Some);
        }
    }
    let _ = names;
    Ok(None)
}

pub(crate) struct Monitor {
    shared: Arc<Shared>,
    #[cfg_attr(not(feature = "dns"), allow(dead_code))]
    resolver: Option<Resolver>,
    /// Per endpoint: `Some` when it is a host name resolved by `resolver`.
    names: Vec<Option<Name>>,
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
    /// Per endpoint: while it is down, the earliest time to try it again, and how many
    /// attempts have failed in a row (jittered exponential backoff, so a fleet of clients
    /// does not reconnect to a restarted server in lock-step).
    retry_at: Vec<Instant>,
    down_attempts: Vec<u32>,
}

/// What the first probe round found, sent to `Client::connect`.
#[derive(Debug, Clone)]
pub(crate) struct FirstRound {
    pub observations: Vec<Observation>,
}

impl Monitor {
    pub fn new(shared: Arc<Shared>, wake: Receiver<Wake>, resolver: Option<Resolver>) -> Monitor {
        let config = &shared.config;
        let tracker_config = TrackerConfig {
            interval: config.probe_interval,
            suspect_interval: config.failover_probe_interval,
            fall: config.fall,
            rise: config.rise,
        };
        let now = Instant::now();
        let n = config.endpoints.len();
        let names = config
            .endpoints
            .iter()
            .map(|e| {
                (resolver.is_some() && e.host.parse::<std::net::IpAddr>().is_err()).then(|| Name {
                    host: e.host.clone(),
                    current: None,
                    next_resolve: now,
                    last_resolve: None,
                })
            })
            .collect();
        Monitor {
            probes: (0..n)
                .map(|i| MonitorProbe::new(shared.options(i)))
                .collect(),
            resolver,
            names,
            trackers: vec![HealthTracker::new(tracker_config, now); n],
            writable: vec![false; n],
            writer: None,
            generation: 0,
            failover: None,
            failover_failed_reported: false,
            split_brain: Vec::new(),
            last_round: now,
            retry_at: vec![now; n],
            down_attempts: vec![0; n],
            shared,
            wake,
        }
    }

    pub fn run(mut self, first_round: SyncSender<FirstRound>) {
        self.refresh_names();
        let observations = (0..self.probes.len()).map(|i| self.probe(i)).collect();
        self.decide();
        self.last_round = Instant::now();
        let _ = first_round.send(FirstRound { observations });
        loop {
            let now = Instant::now();
            let mut next = (0..self.trackers.len())
                .map(|i| self.next_probe_at(i))
                .min()
                .unwrap_or(now + self.shared.config.probe_interval);
            if self.writer.is_none() {
                next = next.min(self.last_round + self.shared.config.failover_probe_interval);
            }
            for name in self.names.iter().flatten() {
                next = next.min(name.next_resolve);
            }
            match self.wake.recv_timeout(next.saturating_duration_since(now)) {
                Ok(Wake::Shutdown) | Err(RecvTimeoutError::Disconnected) => return,
                Ok(Wake::Failure(i)) => {
                    self.trackers[i].report_hard_failure(Instant::now());
                    self.resolve_soon(i);
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

    /// A failure on a named endpoint: re-resolve it soon (at most once per `dns_min_ttl_ms`).
    fn resolve_soon(&mut self, i: usize) {
        let min_ttl = self.shared.config.dns_min_ttl;
        if let Some(name) = self.names[i].as_mut() {
            let earliest = name.last_resolve.map_or(Instant::now(), |t| t + min_ttl);
            name.next_resolve = name.next_resolve.min(earliest.max(Instant::now()));
        }
    }

    /// Re-resolve the names that are due; an address change retargets the endpoint.
    fn refresh_names(&mut self) {
        #[cfg(feature = "dns")]
        for i in 0..self.names.len() {
            let Some(name) = self.names[i].as_mut() else {
                continue;
            };
            if Instant::now() < name.next_resolve {
                continue;
            }
            let Some(resolver) = self.resolver.as_ref() else {
                continue;
            };
            let host = name.host.clone();
            name.last_resolve = Some(Instant::now());
            match resolver.resolve(&host) {
                Ok((ip, ttl)) => {
                    name.next_resolve = Instant::now() + ttl;
                    let old = name.current.replace(ip);
                    if old != Some(ip) {
                        self.retarget(i, old, ip);
                    }
                }
                Err(e) => {
                    name.next_resolve = Instant::now() + self.shared.config.dns_min_ttl;
                    log::warn!(target: "drfailover", "{e}");
                }
            }
        }
    }

    /// Endpoint `i` now resolves to `ip`: new connections and probes go there; the old
    /// address is no longer trusted as writer until a probe sees the new one writable.
    #[cfg_attr(not(feature = "dns"), allow(dead_code))]
    fn retarget(&mut self, i: usize, old: Option<std::net::IpAddr>, ip: std::net::IpAddr) {
        let port = self.shared.config.endpoints[i].port;
        // VERIFY_IDENTITY checks the certificate against the host connected to: keep the name
        // (the C client resolves it) so the certificate is checked against the name.
        if self.shared.config.ssl_mode != drfailover_mysql::SslMode::VerifyIdentity {
            self.shared.endpoint_options[i]
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .host = ip.to_string();
            self.probes[i].retarget(ip.to_string(), port);
        } else {
            let name = self.shared.config.endpoints[i].host.clone();
            self.probes[i].retarget(name, port);
        }
        {
            let mut status = self.shared.status();
            status[i].address = Some(ip);
        }
        let Some(old) = old else {
            return; // first resolution: nothing changed
        };
        let name = self.shared.endpoint_name(i);
        log::warn!(target: "drfailover", "{name} now resolves to {ip} (was {old})");
        self.shared.notifier.publish(
            self.shared
                .event(EventKind::DnsChanged, self.generation)
                .endpoint(name)
                .reason(format!("{old} -> {ip}")),
        );
        let config = TrackerConfig {
            interval: self.shared.config.probe_interval,
            suspect_interval: self.shared.config.failover_probe_interval,
            fall: self.shared.config.fall,
            rise: self.shared.config.rise,
        };
        self.trackers[i] = HealthTracker::new(config, Instant::now());
        self.retry_at[i] = Instant::now();
        self.down_attempts[i] = 0;
        self.writable[i] = false;
        // If it was the writer, this drops it (connections to the old address: idle ones close
        // now, leased ones on release); the probe below may adopt the new address at once.
        self.decide();
        self.probe(i);
        self.decide();
    }

    /// Probe every endpoint that is due (all of them while there is no writer, except down
    /// ones still backing off), then decide.
    fn round(&mut self) {
        self.refresh_names();
        let all = self.writer.is_none();
        for i in 0..self.probes.len() {
            let now = Instant::now();
            let backing_off = self.trackers[i].state() == Health::Down && self.retry_at[i] > now;
            if !backing_off && (all || self.next_probe_at(i) <= now) {
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

    /// A down endpoint is tried again after a jittered, growing pause: from
    /// `failover_probe_interval` up to `probe_interval`, uniform below that ceiling.
    fn back_off_if_down(&mut self, i: usize) {
        if self.trackers[i].state() != Health::Down {
            self.down_attempts[i] = 0;
            return;
        }
        let backoff = Backoff {
            base: self.shared.config.failover_probe_interval,
            cap: self.shared.config.probe_interval,
        };
        self.retry_at[i] = Instant::now() + backoff.delay(self.down_attempts[i]);
        self.down_attempts[i] = self.down_attempts[i].saturating_add(1);
    }

    /// When endpoint `i` is due by its own schedule (a down endpoint: not before its backoff).
    fn next_probe_at(&self, i: usize) -> Instant {
        let at = self.trackers[i].next_probe_at();
        if self.trackers[i].state() == Health::Down {
            at.max(self.retry_at[i])
        } else {
            at
        }
    }

    fn writable_and_usable(&self, i: usize) -> bool {
        self.writable[i] && self.trackers[i].is_usable()
    }

    fn probe(&mut self, i: usize) -> Observation {
        let obs = self.probes[i].role(Deadline::after(self.shared.config.probe_timeout));
        Counters::bump(&self.shared.counters.probes);
        let transition = self.trackers[i].observe(obs.class, Instant::now());
        self.back_off_if_down(i);
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
                    // Drop it as writer first, so the statements aborted below retry against
                    // the next writer instead of reconnecting to the dead one.
                    if Some(i) == self.writer {
                        self.decide();
                    }
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
