//! The DNS half of the lifecycle: when to resolve each endpoint given by host name, and what
//! an answer (or its absence) changes. Pure and clock-injected like the rest of the
//! lifecycle; the monitor asks [`Lifecycle::names_due`], runs the lookups (never blocking its
//! loop) and feeds the results to [`Lifecycle::name_resolved`].
//!
//! Rules:
//! - With a writer: ask again after the answer's TTL clamped to `dns_min_ttl_ms ..=
//!   dns_max_ttl_ms`, minus up to 10 % jitter (clients that resolved together do not re-ask
//!   together).
//! - With no writer: ask again the moment the answer's real TTL runs out, whatever the clamps
//!   say (a DNS failover record flips within its TTL), but at least
//!   `failover_probe_interval_ms` after the previous answer.
//! - Never more than one query per name in flight, and at most one per TTL.
//! - A failed resolution is retried after `dns_min_ttl_ms`. A name that never resolved has no
//!   address: it is an endpoint that is down (`endpoint_down` with the reason), never probed,
//!   and no connection is ever opened to it. A name that resolved before keeps its address.
//! - A changed address: retarget the endpoint ([`Effect::Retarget`]), forget the old
//!   address's health and backoff, and probe it at once.
//! - A statement failure on a named endpoint: ask again as soon as the answer held can have
//!   changed (its TTL ran out).

use std::net::IpAddr;
use std::time::{Duration, Instant};

use drfailover_probe::OutcomeClass;

use super::{Effect, Lifecycle};

/// The DNS schedule's settings.
#[derive(Clone, Copy, Debug)]
pub(crate) struct NamePolicy {
    /// `dns_min_ttl_ms`: lower clamp of the TTL with a writer; retry delay after a failure.
    pub min_ttl: Duration,
    /// `dns_max_ttl_ms`: upper clamp of the TTL.
    pub max_ttl: Duration,
    /// `failover_probe_interval_ms`: the shortest time between two queries for one name.
    pub floor: Duration,
}

impl NamePolicy {
    pub fn from_config(config: &crate::Config) -> NamePolicy {
        NamePolicy {
            min_ttl: config.dns_min_ttl,
            max_ttl: config.dns_max_ttl,
            floor: config.failover_probe_interval,
        }
    }
}

/// One name's resolution state.
#[derive(Clone, Debug)]
struct NameState {
    /// The address in use (`None` until the first answer).
    current: Option<IpAddr>,
    /// When to ask again while a writer is known (clamped TTL, jittered down).
    next_resolve: Instant,
    /// When the last answer's real TTL runs out (at least `floor` after it): the earliest a
    /// new query can tell more.
    valid_until: Instant,
    /// A query is running.
    in_flight: bool,
}

/// Every endpoint's name state (`None`: the endpoint is an IP address).
#[derive(Clone, Debug, Default)]
pub(crate) struct Names {
    policy: Option<NamePolicy>,
    names: Vec<Option<NameState>>,
}

/// Some slack after a TTL runs out, so the server's answer has certainly expired too.
const AFTER_EXPIRY: Duration = Duration::from_millis(2);

impl Lifecycle {
    /// Declare which endpoints are host names (resolved by the monitor) and the schedule's
    /// settings. Every name is due at `now`.
    pub fn with_names(mut self, named: &[bool], policy: NamePolicy, now: Instant) -> Lifecycle {
        self.names = Names {
            policy: Some(policy),
            names: named
                .iter()
                .map(|&n| {
                    n.then_some(NameState {
                        current: None,
                        next_resolve: now,
                        valid_until: now,
                        in_flight: false,
                    })
                })
                .collect(),
        };
        self
    }

    /// Whether endpoint `i` has an address to probe and connect to (an IP endpoint, or a name
    /// that resolved at least once).
    pub fn has_address(&self, i: usize) -> bool {
        match self.names.names.get(i) {
            Some(Some(name)) => name.current.is_some(),
            _ => true,
        }
    }

    /// Whether endpoint `i` is a name whose first resolution has not ended yet.
    pub fn awaiting_first_answer(&self, i: usize) -> bool {
        matches!(self.names.names.get(i), Some(Some(n)) if n.current.is_none() && n.in_flight)
    }

    /// When name `i` (not in flight) should be asked next.
    fn name_due_at(&self, name: &NameState) -> Instant {
        if self.writer.is_none() {
            name.next_resolve.min(name.valid_until)
        } else {
            name.next_resolve
        }
    }

    /// The names to resolve now; each is marked in flight until [`Lifecycle::name_resolved`].
    pub fn names_due(&mut self, now: Instant) -> Vec<usize> {
        let mut due = Vec::new();
        for i in 0..self.names.names.len() {
            let Some(name) = &self.names.names[i] else {
                continue;
            };
            if !name.in_flight && self.name_due_at(name) <= now {
                due.push(i);
            }
        }
        for &i in &due {
            if let Some(name) = self.names.names[i].as_mut() {
                name.in_flight = true;
            }
        }
        due
    }

    /// When the next name falls due (`None`: none is waiting, all are in flight or IPs).
    pub fn next_name_at(&self) -> Option<Instant> {
        self.names
            .names
            .iter()
            .flatten()
            .filter(|n| !n.in_flight)
            .map(|n| self.name_due_at(n))
            .min()
    }

    /// A statement failed on endpoint `i`: if it is a name, ask again as soon as its answer
    /// can have changed (its TTL ran out); never more than once per TTL.
    pub fn name_suspect(&mut self, i: usize) {
        if let Some(Some(name)) = self.names.names.get_mut(i) {
            name.next_resolve = name.next_resolve.min(name.valid_until);
        }
    }

    /// The lookup of name `i` ended at `now`: `Ok((address, real remaining TTL))` or the
    /// reason it failed (timed out, no such name, no address).
    pub fn name_resolved(
        &mut self,
        i: usize,
        result: Result<(IpAddr, Duration), String>,
        now: Instant,
    ) -> Vec<Effect> {
        let Some(policy) = self.names.policy else {
            return Vec::new();
        };
        let jitter = self.jitter;
        let Some(Some(name)) = self.names.names.get_mut(i) else {
            return Vec::new();
        };
        name.in_flight = false;
        match result {
            Ok((ip, ttl)) => {
                name.valid_until = now + ttl.max(policy.floor) + AFTER_EXPIRY;
                let clamped = ttl.clamp(policy.min_ttl, policy.max_ttl);
                name.next_resolve = now + clamped - jitter(clamped / 10);
                let old = name.current.replace(ip);
                if old == Some(ip) {
                    return Vec::new();
                }
                let mut fx = vec![Effect::Retarget {
                    endpoint: i,
                    old,
                    new: ip,
                }];
                fx.extend(self.address_changed(i, now));
                fx
            }
            Err(reason) => {
                name.valid_until = now + policy.min_ttl;
                name.next_resolve = name.valid_until;
                if name.current.is_some() {
                    // Keep the address that worked; the probes say whether it still does.
                    return Vec::new();
                }
                // No address at all: down (an event the first time), never probed.
                let reason = format!("{}: {reason}", OutcomeClass::Unresolved.as_str());
                self.observe(i, OutcomeClass::Unresolved, false, &reason, now)
            }
        }
    }
}

#[cfg(test)]
mod tests;
