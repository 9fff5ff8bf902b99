//! Name resolution with `hickory-resolver`, on one current-thread Tokio runtime owned by the
//! client's monitor thread: no worker threads, no global runtime. Answers are cached for their
//! TTL (at most `dns_max_ttl_ms`); the monitor decides when to ask again.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use hickory_resolver::config::{NameServerConfig, ResolverConfig};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::Resolver;

use crate::{Config, Error};

/// A resolver plus the runtime that drives it. Used from the monitor thread only.
pub(crate) struct Dns {
    runtime: tokio::runtime::Runtime,
    resolver: Resolver<TokioRuntimeProvider>,
    max_ttl: Duration,
    timeout: Duration,
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
        })
    }

    /// Resolve `host` (IPv4 preferred) and say how long the answer is valid (its real
    /// remaining TTL, at most `dns_max_ttl_ms`). Blocks up to about twice `dns_timeout_ms`.
    pub fn resolve(&self, host: &str) -> Result<(IpAddr, Duration), String> {
        // The monitor schedules queries by TTL itself; the resolver's cache would answer a
        // query made a little early with the old record and a TTL rounded up to whole
        // seconds, hiding a flip for up to a second more. Ask the server every time.
        self.resolver.clear_cache();
        let lookup = self.runtime.block_on(async {
            tokio::time::timeout(self.timeout * 2, self.resolver.lookup_ip(host)).await
        });
        let lookup = match lookup {
            Ok(Ok(lookup)) => lookup,
            Ok(Err(e)) => return Err(format!("resolve {host}: {e}")),
            Err(_) => return Err(format!("resolve {host}: timed out")),
        };
        let ip = lookup
            .iter()
            .find(IpAddr::is_ipv4)
            .or_else(|| lookup.iter().next())
            .ok_or_else(|| format!("resolve {host}: no address"))?;
        let ttl = lookup
            .valid_until()
            .saturating_duration_since(Instant::now())
            .min(self.max_ttl);
        Ok((ip, ttl))
    }
}
