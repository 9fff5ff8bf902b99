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

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, UdpSocket};

    use super::*;

    fn dns(nameserver: &str, timeout_ms: u64) -> Dns {
        let mut config = Config::new();
        config.set("nameserver", nameserver).unwrap();
        config
            .set("dns_timeout_ms", &timeout_ms.to_string())
            .unwrap();
        Dns::new(&config).unwrap()
    }

    /// Step until the lookups end; every step must return at once.
    fn drive(dns: &mut Dns, within: Duration) -> Vec<(usize, Answer)> {
        let started = Instant::now();
        loop {
            let t = Instant::now();
            let ended = dns.step();
            assert!(
                t.elapsed() < Duration::from_millis(50),
                "a step blocked for {:?}",
                t.elapsed()
            );
            if !ended.is_empty() {
                return ended;
            }
            assert!(started.elapsed() < within, "no answer within {within:?}");
            let next = dns.next_step(Instant::now()).expect("a lookup runs");
            std::thread::sleep(next.saturating_duration_since(Instant::now()));
        }
    }

    #[test]
    fn a_lookup_to_a_silent_server_never_blocks_and_ends_by_its_bound() {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut dns = dns(&silent.local_addr().unwrap().to_string(), 100);
        assert_eq!(dns.next_step(Instant::now()), None);
        let started = Instant::now();
        dns.start(3, "silent.drfailover.test");
        let ended = drive(&mut dns, Duration::from_secs(5));
        let took = started.elapsed();
        assert_eq!(ended.len(), 1);
        assert_eq!(ended[0].0, 3);
        let err = ended[0].1.clone().unwrap_err();
        assert!(err.contains("no answer within 200 ms"), "{err}");
        assert!(took >= Duration::from_millis(200), "{took:?}");
        assert_eq!(dns.next_step(Instant::now()), None);
    }

    #[test]
    fn answers_and_nxdomain_from_a_real_server() {
        let server = drfailover_testkit::dnsmasq::DnsServer::start(
            &[("db.drfailover.test", Ipv4Addr::new(127, 0, 0, 7))],
            5,
        )
        .unwrap_or_else(|e| panic!("{e}"));
        let mut dns = dns(&server.address().to_string(), 1000);
        dns.start(0, "db.drfailover.test");
        dns.start(1, "nowhere.drfailover.test");
        let mut ended = drive(&mut dns, Duration::from_secs(5));
        if ended.len() < 2 {
            ended.extend(drive(&mut dns, Duration::from_secs(5)));
        }
        ended.sort_by_key(|(i, _)| *i);
        let (ip, ttl) = ended[0].1.clone().unwrap();
        assert_eq!(ip, IpAddr::V4(Ipv4Addr::new(127, 0, 0, 7)));
        assert!(
            ttl <= Duration::from_secs(5) && ttl > Duration::from_secs(3),
            "{ttl:?}"
        );
        let err = ended[1].1.clone().unwrap_err();
        assert!(err.contains("no such name (NXDOMAIN)"), "{err}");
    }
}
