//! The monitor thread: probes every endpoint, tracks health, chooses the writer, bumps the
//! generation, aborts in-flight work on a dead writer, and raises events. One per client.
//!
//! Every endpoint is probed concurrently from this one thread (a [`ProbeSet`]): each probe
//! has its own deadline and its result is acted on as soon as it comes, so a frozen node never
//! delays noticing another node's change. Wake-ups from application threads (a statement saw
//! the writer die) ring a doorbell socket that the same `poll(2)` watches, so they are acted
//! on at once, even while probes are in flight.
//!
//! Host names are resolved on the same thread without blocking it: lookups run on the
//! client's current-thread runtime ([`crate::dns`]), driven between polls (the poll sleeps at
//! most a tenth of the lookup's age while one runs), so a silent DNS server never delays a probe. When
//! to resolve is the lifecycle's decision (`lifecycle/names.rs`). The C client is only ever
//! given an address resolved here (except with `ssl_mode=VERIFY_IDENTITY`, see
//! [`Monitor::retarget`]); a name that does not resolve is an endpoint that is down.

use std::io::Read;
use std::net::IpAddr;
use std::os::fd::AsRawFd;
use std::os::unix::net::UnixStream;
use std::sync::mpsc::SyncSender;
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;
use drfailover_notify::EventKind;
use drfailover_probe::{Check, Deadline, MonitorProbe, Observation, ProbeSet};

use crate::lifecycle::{Effect, Lifecycle, NamePolicy, Notice, Policy};
use crate::shared::{Counters, Shared, Wake};

#[cfg(feature = "dns")]
type Resolver = crate::dns::Dns;
#[cfg(not(feature = "dns"))]
type Resolver = ();

/// A lookup's answer: the address and its remaining TTL, or why it failed.
type Answer = Result<(IpAddr, Duration), String>;

/// A resolver when some endpoint is a host name and DNS support is built in. (Without the
/// `dns` feature, [`crate::Config::validate`] refuses host names.)
pub(crate) fn resolver_for(config: &crate::Config) -> Result<Option<Resolver>, crate::Error> {
    let names = config.endpoints.iter().any(|e| e.is_name());
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
    /// Per endpoint: its host name when `resolver` resolves it.
    #[cfg_attr(not(feature = "dns"), allow(dead_code))]
    hosts: Vec<Option<String>>,
    wake: Receiver<Wake>,
    /// Readable when `wake` has messages (see [`crate::shared::Shared::wake`]).
    doorbell: UnixStream,
    probes: ProbeSet,
    /// Per endpoint: the credentials ticket its probe last logged in with.
    tickets: Vec<crate::login::Ticket>,
    /// The failover lifecycle: every decision; this thread only carries out its effects.
    life: Lifecycle,
}

/// What the first round found, sent to `Client::connect`: per endpoint its first probe's
/// observation (`None`: its name did not resolve, or it was not needed — see
/// `Pending::done`).
#[derive(Debug, Clone)]
pub(crate) struct FirstRound {
    pub observations: Vec<Option<Observation>>,
}

/// The first round in progress.
struct Pending {
    tx: SyncSender<FirstRound>,
    /// When it ends whatever is missing (see [`first_round_wait`]).
    deadline: Instant,
    observations: Vec<Option<Observation>>,
    /// Per endpoint: its first outcome is known (a probe ended, or its name did not resolve).
    seen: Vec<bool>,
}

impl Pending {
    /// Done when every endpoint's first outcome is known, or when a writer is known and only
    /// names still waiting for their first answer are missing (a silent DNS server never
    /// holds up a client whose writer is up), or at the deadline.
    fn done(&self, life: &Lifecycle, now: Instant) -> bool {
        let missing = || (0..self.seen.len()).filter(|&i| !self.seen[i]);
        now >= self.deadline
            || missing().next().is_none()
            || (life.writer().is_some() && missing().all(|i| life.awaiting_first_answer(i)))
    }
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
        let hosts: Vec<Option<String>> = config
            .endpoints
            .iter()
            .map(|e| (resolver.is_some() && e.is_name()).then(|| e.host.clone()))
            .collect();
        let named: Vec<bool> = hosts.iter().map(Option::is_some).collect();
        Monitor {
            // A named endpoint's probe is pointed at its address before it ever starts.
            probes: ProbeSet::new(
                config
                    .endpoints
                    .iter()
                    .map(|e| MonitorProbe::new(config.connect_options(e)))
                    .collect(),
            ),
            life: Lifecycle::new(Policy::from_config(config), n, now).with_names(
                &named,
                NamePolicy::from_config(config),
                now,
            ),
            tickets: vec![0; n],
            doorbell,
            resolver,
            hosts,
            shared,
            wake,
        }
    }

    pub fn run(mut self, first_round: SyncSender<FirstRound>) {
        let n = self.probes.len();
        let mut first = Some(Pending {
            tx: first_round,
            deadline: Instant::now() + first_round_wait(&self.shared.config),
            observations: vec![None; n],
            seen: vec![false; n],
        });
        loop {
            self.start_lookups();
            let now = Instant::now();
            let mut next = now + self.shared.config.probe_interval;
            // Statements that stopped completing may ask for probes now. With nothing run since
            // the last look, stop looking until a statement starts (it rings the doorbell).
            let reading = self.shared.activity.read();
            match self.life.statements(reading, now) {
                Some(at) => next = next.min(at),
                None if reading.in_flight == 0 && !self.shared.activity.go_idle(reading) => {
                    next = now;
                }
                None => {}
            }
            for i in 0..n {
                if self.probes.is_running(i) || !self.life.has_address(i) {
                    continue; // a name without an address is never probed
                }
                let due = self.life.due_at(i, now);
                if due <= now {
                    let first_probe = first.as_ref().is_some_and(|f| !f.seen[i]);
                    self.start_probe(i, first_probe);
                } else {
                    next = next.min(due);
                }
            }
            if let Some(at) = self.life.next_name_at() {
                next = next.min(at);
            }
            if let Some(at) = self.life.next_deadline(now) {
                next = next.min(at);
            }
            if let Some(at) = self.dns_next_step(now) {
                next = next.min(at);
            }
            if let Some(f) = &first {
                next = next.min(f.deadline);
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
                        self.life.name_suspect(i);
                        self.life.statement_failed(i, Instant::now())
                    }
                    Ok(Wake::ReadOnly(i)) => self.life.read_only(i, Instant::now()),
                    Err(crossbeam_channel::TryRecvError::Empty) => break,
                };
                self.apply(effects);
            }
            // Results in the order they came: a dead writer is acted on before the others.
            for (i, obs) in woken.finished {
                if let Some(f) = first.as_mut().filter(|f| !f.seen[i]) {
                    f.seen[i] = true;
                    f.observations[i] = Some(obs.clone());
                }
                self.observed(i, obs);
            }
            for (i, answer) in self.dns_step() {
                self.resolved(i, answer);
                if let Some(f) = first.as_mut() {
                    f.seen[i] |= !self.life.has_address(i);
                }
            }
            let effects = self.life.tick(Instant::now());
            self.apply(effects);
            if first
                .as_ref()
                .is_some_and(|f| f.done(&self.life, Instant::now()))
            {
                if let Some(f) = first.take() {
                    let _ = f.tx.send(FirstRound {
                        observations: f.observations,
                    });
                }
            }
        }
    }

    /// Start probing endpoint `i`, with the budget the lifecycle gives it (its first probe:
    /// `probe_timeout_ms`, so that `connect` is bounded by it).
    fn start_probe(&mut self, i: usize, first: bool) {
        debug_assert!(
            self.life.has_address(i),
            "a name is never given to the C client"
        );
        let needs_login = !self.probes.probe(i).is_connected();
        self.life.probe_started(i, Instant::now(), needs_login);
        if needs_login && self.shared.login.is_dynamic() {
            // The current secret or token (never blocks: without keys at hand, the old ones).
            let mut options = self.probes.probe(i).options().clone();
            if let Ok(ticket) =
                self.shared
                    .login
                    .apply(&self.shared.config.endpoints[i], &mut options, false)
            {
                self.tickets[i] = ticket;
                self.probes.probe_mut(i).set_credentials(
                    options.user,
                    options.password,
                    options.cleartext_plugin,
                );
            }
        }
        let budget = if first {
            self.shared.config.probe_timeout
        } else {
            self.life.probe_budget(i, needs_login)
        };
        self.probes.start(i, Check::Role, Deadline::after(budget));
    }

    /// Start the lookups the lifecycle says are due. Never blocks.
    fn start_lookups(&mut self) {
        let due = self.life.names_due(Instant::now());
        #[cfg(feature = "dns")]
        if let Some(resolver) = self.resolver.as_mut() {
            for i in due {
                if let Some(host) = &self.hosts[i] {
                    resolver.start(i, host);
                }
            }
        }
        #[cfg(not(feature = "dns"))]
        let _ = due;
    }

    /// When running lookups must be driven next (the poll sleeps no longer).
    fn dns_next_step(&self, now: Instant) -> Option<Instant> {
        #[cfg(feature = "dns")]
        if let Some(resolver) = &self.resolver {
            return resolver.next_step(now);
        }
        let _ = now;
        None
    }

    /// Drive the running lookups (never blocks) and return those that ended.
    fn dns_step(&mut self) -> Vec<(usize, Answer)> {
        #[cfg(feature = "dns")]
        if let Some(resolver) = self.resolver.as_mut() {
            return resolver.step();
        }
        Vec::new()
    }

    /// A lookup of endpoint `i`'s name ended: the lifecycle decides what it changes.
    fn resolved(&mut self, i: usize, answer: Answer) {
        if let Err(e) = &answer {
            log::warn!(target: "drfailover", "endpoint {}: {e}", self.shared.endpoint_name(i));
        }
        let effects = self.life.name_resolved(i, answer, Instant::now());
        self.apply(effects);
    }

    /// Endpoint `i` now resolves to `ip`: new connections and probes go there. (The lifecycle
    /// has already forgotten the old address's health: it is not trusted as writer until a
    /// probe sees the new one writable.)
    ///
    /// With `ssl_mode=VERIFY_IDENTITY` the C client checks the server certificate against the
    /// host it is given, and Connector/C has no option to connect to one address and verify
    /// another name: connections and probes then get the *name* (only after it resolved here),
    /// and the C client resolves it again with the system resolver (`getaddrinfo`, bounded
    /// only by `/etc/resolv.conf`'s `timeout` × `attempts`). Use IP addresses in the DSN (and
    /// certificates naming them) to avoid that.
    fn retarget(&mut self, i: usize, old: Option<IpAddr>, ip: IpAddr) {
        let port = self.shared.config.endpoints[i].port;
        let host = if self.shared.config.ssl_mode == drfailover_mysql::SslMode::VerifyIdentity {
            self.shared.config.endpoints[i].host.clone()
        } else {
            ip.to_string()
        };
        let mut options = self
            .shared
            .config
            .connect_options(&self.shared.config.endpoints[i]);
        options.host = host.clone();
        *self.shared.endpoint_options[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner()) = Some(options);
        self.probes.retarget(i, host, port);
        self.shared.status()[i].address = Some(ip);
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
    }

    /// Act on the result of a probe of endpoint `i`.
    fn observed(&mut self, i: usize, obs: Observation) {
        Counters::bump(&self.shared.counters.probes);
        if obs.class == drfailover_probe::OutcomeClass::AuthFailed {
            self.shared.login.mark_stale(self.tickets[i]);
        }
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
                // Names follow their real TTL while there is no writer: the lifecycle's name
                // schedule reads the writer itself (lifecycle/names.rs).
                Effect::WriterLost => {}
                Effect::Retarget { endpoint, old, new } => self.retarget(endpoint, old, new),
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

/// How long the monitor's first round may take: one probe deadline, plus, when some
/// endpoint is a host name, the longest lookup (its probe starts when the answer comes).
pub(crate) fn first_round_wait(config: &crate::Config) -> Duration {
    #[cfg(feature = "dns")]
    if config.endpoints.iter().any(|e| e.is_name()) {
        return config.probe_timeout + crate::dns::Dns::bound(config);
    }
    config.probe_timeout
}

/// Upper bound on how long `Client::connect` waits for the first round: the monitor's own
/// bound plus a margin for a loaded machine.
pub(crate) fn first_round_budget(shared: &Shared) -> Duration {
    first_round_wait(&shared.config) + Duration::from_secs(1)
}
