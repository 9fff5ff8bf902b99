//! Name resolution with `hickory-resolver`, on one current-thread Tokio runtime owned by the
//! client's monitor thread: no worker threads, no global runtime. Answers are cached for their
//! TTL (at most `dns_max_ttl_ms`); the monitor decides when to ask again.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::Resolver;

use crate::{Config, Error};

/// What a lookup gives: the address and how long it is valid, or why it failed.
pub(crate) type Answer = Result<(IpAddr, Duration), String>;

/// Bounds of how long the monitor's `poll(2)` may sleep while a lookup runs (the runtime is
/// driven — answers read, timers fired — between polls): a tenth of the youngest lookup's age
/// within these bounds, so a prompt answer is seen within a millisecond or two and a server
/// that never answers costs a few dozen wake-ups a second, not hundreds.
const STEP_MIN: Duration = Duration::from_millis(1);
const STEP_MAX: Duration = Duration::from_millis(50);

/// A resolver plus the runtime that drives it. Used from the monitor thread only. Lookups
/// never block that thread: [`Dns::start`] spawns one on the runtime, and [`Dns::step`]
/// drives every running lookup without waiting (the monitor calls it between its polls).
pub(crate) struct Dns {
    runtime: tokio::runtime::Runtime,
    resolver: Resolver<TokioRuntimeProvider>,
    max_ttl: Duration,
    timeout: Duration,
    /// Running lookups: the endpoint index and the task.
    running: Vec<(usize, tokio::task::JoinHandle<Answer>)>,
    /// When the youngest running lookup started.
    youngest: Instant,
}

impl Dns {
    /// A resolver for `config`: its `nameserver` if set, else the system's (`/etc/resolv.conf`).
    pub fn new(config: &Config) -> Result<Dns, Error> {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .map_err(|e| Error::System(format!("DNS runtime: {e}")))?;
        let _entered = runtime.enter();
        let mut builder = match config.nameserver {
            Some(addr) => {
                let mut server = NameServerConfig::udp_and_tcp(addr.ip());
                for connection in &mut server.connections {
                    connection.port = addr.port();
                }
                Resolver::builder_with_config(
                    ResolverConfig::from_name_servers(vec![server]),
                    TokioRuntimeProvider::default(),
                )
            }
            None => Resolver::builder(TokioRuntimeProvider::default()).map_err(|e| {
                Error::Config(format!("cannot read the system DNS configuration: {e}"))
            })?,
        };
        let options = builder.options_mut();
        // No lower clamp in the cache: while no writer is known the monitor asks again the
        // moment the real TTL runs out (it applies `dns_min_ttl_ms` itself otherwise).
        options.positive_min_ttl = None;
        options.positive_max_ttl = Some(config.dns_max_ttl);
        options.negative_max_ttl = Some(config.dns_min_ttl);
        options.timeout = config.dns_timeout;
        options.attempts = 2;
        let resolver = builder
            .build()
            .map_err(|e| Error::Config(format!("DNS resolver: {e}")))?;
        Ok(Dns {
            runtime,
            resolver,
            max_ttl: config.dns_max_ttl,
            timeout: config.dns_timeout,
            running: Vec::new(),
            youngest: Instant::now(),
        })
    }

    /// The longest a lookup can run: twice `dns_timeout_ms` (two attempts).
    pub fn bound(config: &Config) -> Duration {
        config.dns_timeout * 2
    }

    /// Start resolving `host` for endpoint `i` (IPv4 preferred). Never blocks; the answer
    /// comes from a later [`Dns::step`], within [`Dns::bound`] (then as "timed out").
    pub fn start(&mut self, i: usize, host: &str) {
        // The lifecycle schedules queries by TTL itself; the resolver's cache would answer a
        // query made a little early with the old record and a TTL rounded up to whole
        // seconds, hiding a flip for up to a second more. Ask the server every time.
        self.resolver.clear_cache();
        let (resolver, host, max_ttl, bound) = (
            self.resolver.clone(),
            host.to_string(),
            self.max_ttl,
            self.timeout * 2,
        );
        let task = self.runtime.spawn(async move {
            let lookup = tokio::time::timeout(bound, resolver.lookup_ip(host.as_str())).await;
            let lookup = match lookup {
                Ok(Ok(lookup)) => lookup,
                Ok(Err(e)) if e.is_nx_domain() => {
                    return Err(format!("cannot resolve `{host}`: no such name (NXDOMAIN)"))
                }
                Ok(Err(e)) if e.is_no_records_found() => {
                    return Err(format!("cannot resolve `{host}`: no address record"))
                }
                Ok(Err(e)) => return Err(format!("cannot resolve `{host}`: {e}")),
                Err(_) => {
                    return Err(format!(
                        "cannot resolve `{host}`: no answer within {} ms",
                        bound.as_millis()
                    ))
                }
            };
            let ip = lookup
                .iter()
                .find(IpAddr::is_ipv4)
                .or_else(|| lookup.iter().next())
                .ok_or_else(|| format!("cannot resolve `{host}`: no address"))?;
            let ttl = lookup
                .valid_until()
                .saturating_duration_since(Instant::now())
                .min(max_ttl);
            Ok((ip, ttl))
        });
        self.running.push((i, task));
        self.youngest = Instant::now();
    }

    /// When the running lookups should be driven next ([`Dns::step`]), if any runs: soon
    /// after a lookup starts, less often the longer it takes.
    pub fn next_step(&self, now: Instant) -> Option<Instant> {
        if self.running.is_empty() {
            return None;
        }
        let age = now.saturating_duration_since(self.youngest);
        Some(now + (age / 10).clamp(STEP_MIN, STEP_MAX))
    }

    /// Drive the running lookups without blocking (read what the sockets hold, fire expired
    /// timers) and return those that ended, as `(endpoint, answer)`. Cost: a few
    /// non-blocking system calls.
    pub fn step(&mut self) -> Vec<(usize, Answer)> {
        if self.running.is_empty() {
            return Vec::new();
        }
        // Each yield lets the scheduler run the woken tasks and then poll the I/O and time
        // drivers with a zero timeout: a socket read, then the task that reads it.
        self.runtime.block_on(async {
            for _ in 0..3 {
                tokio::task::yield_now().await;
            }
        });
        let mut ended = Vec::new();
        let mut i = 0;
        while i < self.running.len() {
            if self.running[i].1.is_finished() {
                let (endpoint, task) = self.running.swap_remove(i);
                let answer = self
                    .runtime
                    .block_on(task)
                    .unwrap_or_else(|e| Err(format!("DNS lookup failed: {e}")));
                ended.push((endpoint, answer));
            } else {
                i += 1;
            }
        }
        ended
    }
}
