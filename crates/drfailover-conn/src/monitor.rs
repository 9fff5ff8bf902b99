//! The monitor thread: probes every endpoint, tracks health, chooses the writer, bumps the
//! generation, aborts in-flight work on a dead writer, and raises events. One per client.
//!
//! Every endpoint is probed concurrently from this one thread (a [`ProbeSet`]): each probe
//! has its own deadline and its result is acted on as soon as it comes, so a frozen node never
//! delays noticing another node's change. Wake-ups from application threads (a statement saw
//! the writer die) ring a doorbell socket that the same `poll(2)` watches, so they are acted
//! on at once, even while probes are in flight.

use std::io::Read;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use drfailover_notify::EventKind;
use drfailover_probe::{
    Check, Deadline, Health, HealthTracker, MonitorProbe, Observation, ProbeSet, TrackerConfig,
};

use crate::retry::Backoff;
use crate::selection::{select_writer, Candidate};
use crate::shared::{Counters, Shared, Wake};

/// Resolution state of an endpoint given by name.
#[cfg_attr(not(feature = "dns"), allow(dead_code))]
struct Name {
    host: String,
    current: Option<std::net::IpAddr>,
    next_resolve: Instant,
    /// When the last answer's real TTL runs out (the earliest a new query can tell more).
    valid_until: Instant,
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
    /// Readable when `wake` has messages (see [`crate::shared::Shared::wake`]).
    doorbell: UnixStream,
    probes: ProbeSet,
    /// Per endpoint: probe at the next turn of the loop, whatever the schedule says.
    due_now: Vec<bool>,
    /// Per endpoint: when its last probe ended.
    last_probe: Vec<Instant>,
    trackers: Vec<HealthTracker>,
    writable: Vec<bool>,
    writer: Option<usize>,
    generation: u64,
    /// When the current writer was lost, and which it was (for failover events).
    failover: Option<(Instant, Option<usize>)>,
    failover_failed_reported: bool,
    split_brain: Vec<usize>,
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
    pub fn new(
        shared: Arc<Shared>,
        wake: Receiver<Wake>,
        doorbell: UnixStream,
        resolver: Option<Resolver>,
    ) -> Monitor {
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
                    valid_until: now,
                })
            })
            .collect();
        Monitor {
            probes: ProbeSet::new(
                (0..n)
                    .map(|i| MonitorProbe::new(shared.options(i)))
                    .collect(),
            ),
            due_now: vec![true; n],
            last_probe: vec![now; n],
            doorbell,
            resolver,
            names,
            trackers: vec![HealthTracker::new(tracker_config, now); n],
            writable: vec![false; n],
            writer: None,
            generation: 0,
            failover: None,
            failover_failed_reported: false,
            split_brain: Vec::new(),
            retry_at: vec![now; n],
            down_attempts: vec![0; n],
            shared,
            wake,
        }
    }

    pub fn run(mut self, first_round: SyncSender<FirstRound>) {
        self.refresh_names();
        // First round: every endpoint at once, each by the probe deadline.
        let deadline = Deadline::after(self.shared.config.probe_timeout);
        let batch: Vec<_> = (0..self.probes.len())
            .map(|i| (i, Check::Role, deadline))
            .collect();
        let observations = self.probes.probe_all(&batch);
        for (i, obs) in observations.iter().enumerate() {
            self.observed(i, obs.clone());
        }
        self.decide();
        self.due_now.iter_mut().for_each(|d| *d = false);
        let _ = first_round.send(FirstRound { observations });
        loop {
            self.refresh_names();
            let now = Instant::now();
            let mut next = now + self.shared.config.probe_interval;
            for i in 0..self.probes.len() {
                if self.probes.is_running(i) {
                    continue;
                }
                let due = self.due_at(i, now);
                if due <= now {
                    self.start_probe(i);
                } else {
                    next = next.min(due);
                }
            }
            for name in self.names.iter().flatten() {
                next = next.min(name.next_resolve);
            }
            if let Some((since, _)) = self.failover {
                if !self.failover_failed_reported {
                    next = next.min(since + self.shared.config.failover_timeout);
                }
            }
            let woken = self
                .probes
                .wait(Some(next), Some(self.doorbell.as_raw_fd()));
            if woken.doorbell {
                let mut sink = [0u8; 64];
                while matches!(self.doorbell.read(&mut sink), Ok(n) if n > 0) {}
            }
            loop {
                match self.wake.try_recv() {
                    Ok(Wake::Shutdown) | Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        return
                    }
                    Ok(Wake::Failure(i)) => self.statement_failed(i),
                    Ok(Wake::ReadOnly(i)) => {
                        self.writable[i] = false;
                        self.trackers[i].report_hard_failure(Instant::now());
                        self.due_now[i] = true;
                    }
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                }
            }
            for (i, obs) in woken.finished {
                self.observed(i, obs);
                // A dead writer is acted on at once, before any other result.
                if Some(i) == self.writer && !self.writable_and_usable(i) {
                    self.decide();
                }
            }
            self.decide();
        }
    }

    /// Application traffic saw a hard failure (RST/EOF, refused) on endpoint `i`: it becomes
    /// suspect and is probed now; if it is the writer, every other endpoint is probed now too,
    /// so the failover starts at once instead of at the next scheduled probe.
    fn statement_failed(&mut self, i: usize) {
        self.trackers[i].report_hard_failure(Instant::now());
        self.resolve_soon(i);
        if Some(i) == self.writer {
            self.due_now.iter_mut().for_each(|d| *d = true);
        } else {
            self.due_now[i] = true;
        }
        // A probe already in flight on a dead node ends within its deadline (at once on
        // RST/EOF); a fresh one is not needed on top of it.
    }

    /// Start probing endpoint `i`. A probe that has to log in again (its monitor connection
    /// was lost) on an endpoint not in use (down, or not yet seen) gets `connect_timeout`, so a
    /// loaded server is not abandoned mid-login; otherwise `probe_timeout`, which bounds how
    /// fast a silent writer is noticed.
    fn start_probe(&mut self, i: usize) {
        self.due_now[i] = false;
        let config = &self.shared.config;
        let login = !self.probes.probe(i).is_connected();
        let idle = matches!(self.trackers[i].state(), Health::Down | Health::Unknown);
        let budget = if login && idle {
            config.probe_timeout.max(config.connect_timeout)
        } else {
            config.probe_timeout
        };
        self.probes.start(i, Check::Role, Deadline::after(budget));
    }

    /// When endpoint `i` should be probed next: its tracker's schedule; every
    /// `failover_probe_interval` while there is no writer; a down endpoint not before its
    /// backoff (but at once after its address changed).
    fn due_at(&self, i: usize, now: Instant) -> Instant {
        if self.due_now[i] {
            return now;
        }
        let mut at = self.trackers[i].next_probe_at();
        if self.writer.is_none() {
            at = at.min(self.last_probe[i] + self.shared.config.failover_probe_interval);
        }
        if self.trackers[i].state() == Health::Down {
            at = at.max(self.retry_at[i]);
        }
        at
    }

    /// A failure on a named endpoint: ask again as soon as the answer held can have changed
    /// (its TTL ran out); never more than once per TTL.
    fn resolve_soon(&mut self, i: usize) {
        if let Some(name) = self.names[i].as_mut() {
            name.next_resolve = name.next_resolve.min(name.valid_until);
        }
    }

    /// No writer: every name is asked again the moment its answer's real TTL runs out,
    /// whatever the clamps say (a DNS failover record flips within its TTL).
    fn names_follow_ttl(&mut self) {
        for name in self.names.iter_mut().flatten() {
            name.next_resolve = name.next_resolve.min(name.valid_until);
        }
    }

    /// Re-resolve the names that are due; an address change retargets the endpoint.
    ///
    /// Schedule: with a writer, after the answer's TTL clamped to `dns_min_ttl_ms ..=
    /// dns_max_ttl_ms`, minus up to 10 % jitter (clients that resolved together do not
    /// re-ask together); with no writer, the moment the real TTL runs out (at least
    /// `failover_probe_interval_ms` apart). Either way at most one query per name per TTL.
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
            match resolver.resolve(&host) {
                Ok((ip, valid_for)) => {
                    let now = Instant::now();
                    let config = &self.shared.config;
                    // The resolver's cache answers until the TTL runs out: ask just after.
                    let floor = config.failover_probe_interval;
                    name.valid_until = now + valid_for.max(floor) + Duration::from_millis(2);
                    let clamped = valid_for.clamp(config.dns_min_ttl, config.dns_max_ttl);
                    name.next_resolve = now + jitter_down(clamped);
                    if self.writer.is_none() {
                        name.next_resolve = name.next_resolve.min(name.valid_until);
                    }
                    let old = name.current.replace(ip);
                    if old != Some(ip) {
                        self.retarget(i, old, ip);
                    }
                }
                Err(e) => {
                    let now = Instant::now();
                    name.valid_until = now + self.shared.config.dns_min_ttl;
                    name.next_resolve = name.valid_until;
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
            self.probes.retarget(i, ip.to_string(), port);
        } else {
            let name = self.shared.config.endpoints[i].host.clone();
            self.probes.retarget(i, name, port);
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
        // The old address's backoff never delays trying the new one: probe it now.
        self.retry_at[i] = Instant::now();
        self.down_attempts[i] = 0;
        self.writable[i] = false;
        self.due_now[i] = true;
        // If it was the writer, this drops it (connections to the old address: idle ones close
        // now, leased ones on release); the probe started next may adopt the new address.
        self.decide();
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

    fn writable_and_usable(&self, i: usize) -> bool {
        self.writable[i] && self.trackers[i].is_usable()
    }

    /// Act on the result of a probe of endpoint `i`.
    fn observed(&mut self, i: usize, obs: Observation) {
        self.last_probe[i] = Instant::now();
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
                    self.names_follow_ttl();
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

/// Upper bound on how long the first probe round can take (all endpoints are probed at once).
pub(crate) fn first_round_budget(shared: &Shared) -> Duration {
    shared.config.probe_timeout + Duration::from_secs(1)
}

/// `d` minus a uniform random part of up to a tenth of it.
#[cfg_attr(not(feature = "dns"), allow(dead_code))]
fn jitter_down(d: Duration) -> Duration {
    use rand::Rng;
    let tenth = (d / 10).as_nanos() as u64;
    d - Duration::from_nanos(rand::thread_rng().gen_range(0..=tenth))
}
