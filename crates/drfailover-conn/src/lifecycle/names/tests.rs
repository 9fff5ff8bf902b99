//! Every rule of the DNS schedule, without servers and without sleeping: time is an `Instant`
//! the tests move by hand, jitter is deterministic (always its ceiling).

use std::net::{IpAddr, Ipv4Addr};

use drfailover_notify::EventKind;
use drfailover_probe::{Health, OutcomeClass, TrackerConfig};

use super::super::Policy;
use super::*;

const MS: Duration = Duration::from_millis(1);
const A: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 1));
const B: IpAddr = IpAddr::V4(Ipv4Addr::new(10, 0, 0, 2));

fn policy() -> Policy {
    Policy {
        tracker: TrackerConfig {
            interval: 200 * MS,
            suspect_interval: 10 * MS,
            fall: 3,
            rise: 2,
        },
        failback: false,
        failover_timeout: 10_000 * MS,
        probe_timeout: 200 * MS,
        connect_timeout: 1000 * MS,
    }
}

fn names() -> NamePolicy {
    NamePolicy {
        min_ttl: 1000 * MS,
        max_ttl: 30_000 * MS,
        floor: 10 * MS,
    }
}

/// Always the ceiling: "up to 10 % down" is exactly 10 % down.
fn ceiling(d: Duration) -> Duration {
    d
}

/// Endpoint 0 is an IP address, endpoint 1 a name (due at once).
fn lifecycle() -> (Lifecycle, Instant) {
    let now = Instant::now();
    let l =
        Lifecycle::with_jitter(policy(), 2, now, ceiling).with_names(&[false, true], names(), now);
    (l, now)
}

fn kinds(fx: &[Effect]) -> Vec<EventKind> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Publish(n) => Some(n.kind),
            _ => None,
        })
        .collect()
}

/// Name 1 resolved to `ip` (TTL `ttl`) at `now`, and endpoint 0 is the writer when `writer`.
fn resolved(ttl: Duration, writer: bool) -> (Lifecycle, Instant) {
    let (mut l, now) = lifecycle();
    if writer {
        l.probe_started(0, now, false);
        l.observe(0, OutcomeClass::Up, true, "", now);
        assert_eq!(l.writer(), Some(0));
    }
    assert_eq!(l.names_due(now), [1]);
    let fx = l.name_resolved(1, Ok((A, ttl)), now);
    assert!(fx.contains(&Effect::Retarget {
        endpoint: 1,
        old: None,
        new: A
    }));
    (l, now)
}

#[test]
fn only_names_are_resolved_and_a_name_has_no_address_before_its_first_answer() {
    let (mut l, now) = lifecycle();
    assert!(l.has_address(0));
    assert!(!l.has_address(1));
    assert_eq!(l.next_name_at(), Some(now));
    assert_eq!(l.names_due(now), [1]);
    assert!(l.awaiting_first_answer(1));
    assert!(!l.awaiting_first_answer(0));
    l.name_resolved(1, Ok((A, 5000 * MS)), now);
    assert!(l.has_address(1));
    assert!(!l.awaiting_first_answer(1));
}

#[test]
fn one_query_per_name_in_flight() {
    let (mut l, now) = lifecycle();
    assert_eq!(l.names_due(now), [1]);
    assert!(l.names_due(now + 60_000 * MS).is_empty(), "still in flight");
    assert_eq!(l.next_name_at(), None);
}

#[test]
fn with_a_writer_the_ttl_is_clamped_and_jittered_down_by_up_to_a_tenth() {
    // 5 s TTL: asked again at 4.5 s (the full 10 % jitter), not before.
    let (mut l, now) = resolved(5000 * MS, true);
    assert_eq!(l.next_name_at(), Some(now + 4500 * MS));
    assert!(l.names_due(now + 4499 * MS).is_empty());
    assert_eq!(l.names_due(now + 4500 * MS), [1]);
    // A 100 ms TTL is clamped up to dns_min_ttl (1 s).
    let (l, now) = resolved(100 * MS, true);
    assert_eq!(l.next_name_at(), Some(now + 900 * MS));
    // A 1 h TTL is clamped down to dns_max_ttl (30 s).
    let (l, now) = resolved(3_600_000 * MS, true);
    assert_eq!(l.next_name_at(), Some(now + 27_000 * MS));
}

#[test]
fn the_jitter_is_drawn_from_zero_to_a_tenth() {
    fn none(_: Duration) -> Duration {
        Duration::ZERO
    }
    let now = Instant::now();
    let mut l =
        Lifecycle::with_jitter(policy(), 2, now, none).with_names(&[false, true], names(), now);
    l.probe_started(0, now, false);
    l.observe(0, OutcomeClass::Up, true, "", now);
    l.names_due(now);
    l.name_resolved(1, Ok((A, 5000 * MS)), now);
    assert_eq!(l.next_name_at(), Some(now + 5000 * MS));
}

#[test]
fn without_a_writer_a_name_is_asked_again_when_its_real_ttl_runs_out() {
    // 100 ms TTL (below dns_min_ttl): with no writer, asked again just after 100 ms.
    let (mut l, now) = resolved(100 * MS, false);
    assert_eq!(l.next_name_at(), Some(now + 102 * MS));
    assert!(l.names_due(now + 101 * MS).is_empty());
    assert_eq!(l.names_due(now + 102 * MS), [1]);
}

#[test]
fn losing_the_writer_moves_the_next_query_to_the_real_ttl() {
    let (mut l, now) = resolved(100 * MS, true);
    assert_eq!(l.next_name_at(), Some(now + 900 * MS));
    // The writer is refused: no writer now, and nothing else to do for it.
    l.observe(0, OutcomeClass::Refused, false, "refused", now + 50 * MS);
    assert_eq!(l.writer(), None);
    assert_eq!(l.next_name_at(), Some(now + 102 * MS));
}

#[test]
fn without_a_writer_queries_stay_at_least_the_failover_probe_interval_apart() {
    // TTL 0: not asked again before failover_probe_interval (10 ms).
    let (mut l, now) = resolved(Duration::ZERO, false);
    assert_eq!(l.next_name_at(), Some(now + 12 * MS));
    assert!(l.names_due(now + 11 * MS).is_empty());
    assert_eq!(l.names_due(now + 12 * MS), [1]);
}

#[test]
fn a_statement_failure_asks_again_once_the_ttl_ran_out_not_before() {
    let (mut l, now) = resolved(5000 * MS, true);
    assert_eq!(l.next_name_at(), Some(now + 4500 * MS));
    l.name_suspect(1);
    // Not earlier than the answer's expiry: one query per TTL.
    assert_eq!(l.next_name_at(), Some(now + 4500 * MS));
    let (mut l, now) = resolved(100 * MS, true);
    l.name_suspect(1);
    assert_eq!(l.next_name_at(), Some(now + 102 * MS));
    l.name_suspect(0); // an IP endpoint: nothing to resolve
    assert_eq!(l.next_name_at(), Some(now + 102 * MS));
}

#[test]
fn a_name_that_never_resolved_is_down_with_the_reason_and_retried_after_min_ttl() {
    let (mut l, now) = lifecycle();
    l.names_due(now);
    let fx = l.name_resolved(1, Err("cannot resolve `db`: no answer".into()), now);
    assert_eq!(kinds(&fx), [EventKind::EndpointDown]);
    let down = fx
        .iter()
        .find_map(|e| match e {
            Effect::Publish(n) if n.kind == EventKind::EndpointDown => Some(n.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(down.endpoint, Some(1));
    assert_eq!(down.reason, "unresolved: cannot resolve `db`: no answer");
    assert_eq!(l.health(1), Health::Down);
    assert!(!l.has_address(1));
    assert!(!l.awaiting_first_answer(1));
    // Retried after dns_min_ttl, writer or not.
    assert_eq!(l.next_name_at(), Some(now + 1000 * MS));
    assert!(l.names_due(now + 999 * MS).is_empty());
    let later = now + 1000 * MS;
    assert_eq!(l.names_due(later), [1]);
    // A second failure: no second event.
    let fx = l.name_resolved(1, Err("again".into()), later);
    assert!(kinds(&fx).is_empty());
    // It resolves at last: a fresh endpoint, probed at once.
    l.names_due(later + 1000 * MS);
    let fx = l.name_resolved(1, Ok((A, 5000 * MS)), later + 1000 * MS);
    assert!(fx.contains(&Effect::Retarget {
        endpoint: 1,
        old: None,
        new: A
    }));
    assert_eq!(l.health(1), Health::Unknown);
    assert_eq!(l.due_at(1, later + 1000 * MS), later + 1000 * MS);
}

#[test]
fn a_failed_resolution_keeps_an_address_that_worked() {
    let (mut l, now) = resolved(5000 * MS, true);
    let t = now + 4500 * MS;
    assert_eq!(l.names_due(t), [1]);
    let fx = l.name_resolved(1, Err("SERVFAIL".into()), t);
    assert!(fx.is_empty(), "{fx:?}");
    assert!(l.has_address(1));
    assert_eq!(l.next_name_at(), Some(t + 1000 * MS));
}

#[test]
fn the_same_address_changes_nothing() {
    let (mut l, now) = resolved(5000 * MS, true);
    let t = now + 4500 * MS;
    l.names_due(t);
    assert!(l.name_resolved(1, Ok((A, 5000 * MS)), t).is_empty());
    assert_eq!(l.next_name_at(), Some(t + 4500 * MS));
}

#[test]
fn a_changed_address_retargets_and_probes_at_once_with_the_backoff_reset() {
    // Name 1 is the only endpoint that is writable; it becomes the writer.
    let (mut l, now) = resolved(5000 * MS, false);
    l.probe_started(0, now, false);
    l.observe(0, OutcomeClass::ReadOnly, false, "", now);
    l.probe_started(1, now, false);
    l.observe(1, OutcomeClass::Up, true, "", now);
    assert_eq!(l.writer(), Some(1));
    // Its old address dies and backs off.
    let mut t = now;
    for _ in 0..3 {
        t += 10 * MS;
        l.probe_started(1, t, false);
        l.observe(1, OutcomeClass::TimedOut, false, "timed_out", t);
    }
    assert_eq!(l.health(1), Health::Down);
    assert!(l.due_at(1, t) > t, "backing off");
    // The record flips: retarget, forget the old health, probe the new address now.
    let t = now + 5002 * MS;
    assert_eq!(l.names_due(t), [1]);
    let fx = l.name_resolved(1, Ok((B, 5000 * MS)), t);
    assert_eq!(
        fx[0],
        Effect::Retarget {
            endpoint: 1,
            old: Some(A),
            new: B
        }
    );
    assert_eq!(l.health(1), Health::Unknown);
    assert_eq!(l.due_at(1, t), t);
    // Writable at the new address: adopted.
    l.probe_started(1, t, false);
    let fx = l.observe(1, OutcomeClass::Up, true, "", t + MS);
    assert_eq!(l.writer(), Some(1));
    assert!(kinds(&fx).contains(&EventKind::FailoverCompleted), "{fx:?}");
}

#[test]
fn a_changed_address_of_the_writer_drops_it_until_a_probe_sees_the_new_one() {
    let (mut l, now) = resolved(5000 * MS, false);
    l.probe_started(1, now, false);
    l.observe(1, OutcomeClass::Up, true, "", now);
    assert_eq!(l.writer(), Some(1));
    let t = now + 4500 * MS;
    l.names_due(t);
    let fx = l.name_resolved(1, Ok((B, 5000 * MS)), t);
    assert_eq!(l.writer(), None);
    assert!(fx.contains(&Effect::SetWriter {
        writer: None,
        generation: 1
    }));
}

#[test]
fn an_ip_only_lifecycle_resolves_nothing() {
    let now = Instant::now();
    let mut l = Lifecycle::with_jitter(policy(), 2, now, ceiling);
    assert_eq!(l.next_name_at(), None);
    assert!(l.names_due(now).is_empty());
    assert!(l.has_address(0) && l.has_address(1));
    assert!(l.name_resolved(0, Ok((A, MS)), now).is_empty());
}
