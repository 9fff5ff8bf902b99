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
use drfailover_probe::{Check, Deadline, MonitorProbe, Observation, ProbeSet};

use crate::lifecycle::{Effect, Lifecycle, Notice, Policy};
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
    /// The failover lifecycle: every decision; this thread only carries out its effects.
    life: Lifecycle,
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
            life: Lifecycle::new(Policy::from_config(config), n, now),
            doorbell,
            resolver,
            names,
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
            self.life.probe_started(i);
            self.observed(i, obs.clone());
        }
        let _ = first_round.send(FirstRound { observations });
        loop {
            self.refresh_names();
            let now = Instant::now();
            let mut next = now + self.shared.config.probe_interval;
            for i in 0..self.probes.len() {
                if self.probes.is_running(i) {
                    continue;
                }
                let due = self.life.due_at(i, now);
                if due <= now {
                    self.start_probe(i);
                } else {
                    next = next.min(due);
                }
            }
            for name in self.names.iter().flatten() {
                next = next.min(name.next_resolve);
            }
            if let Some(at) = self.life.next_deadline() {
                next = next.min(at);
            }
            let woken = self
                .probes
                .wait(Some(next), Some(self.doorbell.as_raw_fd()));
            if woken.doorbell {
                let mut sink = [0u8; 64];
                while matches!(self.doorbell.read(&mut sink), Ok(n) if n > 0) {}
            }
            loop {
                let effects = match self.wake.try_recv() {
                    Ok(Wake::Shutdown) | Err(crossbeam_channel::TryRecvError::Disconnected) => {
                        return
                    }
                    Ok(Wake::Failure(i)) => {
                        self.resolve_soon(i);
                        self.life.statement_failed(i, Instant::now())
                    }
                    Ok(Wake::ReadOnly(i)) => self.life.read_only(i, Instant::now()),
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                };
                self.apply(effects);
            }
            // Results in the order they came: a dead writer is acted on before the others.
            for (i, obs) in woken.finished {
                self.observed(i, obs);
            }
            let effects = self.life.tick(Instant::now());
            self.apply(effects);
        }
    }

    /// Start probing endpoint `i`, with the budget the lifecycle gives it.
    fn start_probe(&mut self, i: usize) {
        self.life.probe_started(i);
        let budget = self
            .life
            .probe_budget(i, !self.probes.probe(i).is_connected());
        self.probes.start(i, Check::Role, Deadline::after(budget));
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
                    if self.life.writer().is_none() {
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
                .event(EventKind::DnsChanged, self.life.generation())
                .endpoint(name)
                .reason(format!("{old} -> {ip}")),
        );
        // If it was the writer, this drops it (connections to the old address: idle ones close
        // now, leased ones on release); the probe started next may adopt the new address.
        let effects = self.life.address_changed(i, Instant::now());
        self.apply(effects);
    }

    /// Act on the result of a probe of endpoint `i`.
    fn observed(&mut self, i: usize, obs: Observation) {
        Counters::bump(&self.shared.counters.probes);
        let effects =
            self.life
                .observe(i, obs.class, obs.writable(), &reason(&obs), Instant::now());
        self.apply(effects);
    }

    /// Carry out the lifecycle's effects, in order.
    fn apply(&mut self, effects: Vec<Effect>) {
        for effect in effects {
            match effect {
                Effect::SetWriter { writer, generation } => {
                    self.shared.set_writer(writer, generation);
                    match writer {
                        Some(w) => {
                            log::info!(target: "drfailover", "writer {} (generation {generation})", self.shared.endpoint_name(w))
                        }
                        None => {
                            log::warn!(target: "drfailover", "no writer (generation {generation})")
                        }
                    }
                }
                Effect::CloseStale(generation) => self.shared.pool.close_stale(generation),
                Effect::AbortEndpoint(i) => {
                    // In-flight abort: whatever is still leased to a dead node is blocked on
                    // it; shut those sockets now.
                    let n = self.shared.pool.abort_endpoint(i);
                    self.shared
                        .counters
                        .aborted
                        .fetch_add(n as u64, std::sync::atomic::Ordering::Relaxed);
                }
                Effect::Status {
                    endpoint,
                    health,
                    writable,
                    outcome,
                } => {
                    let mut status = self.shared.status();
                    let s = &mut status[endpoint];
                    s.health = health;
                    s.writable = writable;
                    s.last_outcome = Some(outcome);
                }
                Effect::WriterLost => self.names_follow_ttl(),
                Effect::FailoverCounted => Counters::bump(&self.shared.counters.failovers),
                Effect::Publish(notice) => self.publish(notice),
            }
        }
    }

    fn publish(&self, n: Notice) {
        let name = |i: usize| self.shared.endpoint_name(i);
        let mut event = self.shared.event(n.kind, n.generation);
        match n.kind {
            EventKind::EndpointDown => {
                let endpoint = n.endpoint.map(name).unwrap_or_default();
                log::warn!(target: "drfailover", "endpoint {endpoint} down: {}", n.reason);
                event = event.endpoint(endpoint);
            }
            EventKind::EndpointUp => {
                let endpoint = n.endpoint.map(name).unwrap_or_default();
                log::info!(target: "drfailover", "endpoint {endpoint} up");
                event = event.endpoint(endpoint);
            }
            EventKind::SplitBrain => {
                let others: Vec<String> = n.others.iter().map(|&i| name(i)).collect();
                log::error!(target: "drfailover", "split brain: {} also writable", others.join(", "));
                event = event
                    .writers(n.old_writer.map(name), None)
                    .endpoint(others.join(","));
            }
            EventKind::FailoverCompleted => {
                let (old, new) = (n.old_writer.map(name), n.new_writer.map(name));
                log::warn!(target: "drfailover", "failover {} -> {} in {:?}", old.as_deref().unwrap_or("none"), new.as_deref().unwrap_or("none"), n.duration.unwrap_or_default());
                event = event.writers(old, new);
            }
            _ => {
                event = event.writers(n.old_writer.map(name), n.new_writer.map(name));
                if let Some(i) = n.endpoint {
                    event = event.endpoint(name(i));
                }
            }
        }
        if let Some(d) = n.duration {
            event = event.duration(d);
        }
        if !n.reason.is_empty() {
            event = event.reason(n.reason);
        }
        self.shared.notifier.publish(event);
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
