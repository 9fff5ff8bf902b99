//! Every policy of the client (docs/ARCHITECTURE.md), without servers and without sleeping:
//! time is an `Instant` the tests move by hand.

use super::*;

const MS: Duration = Duration::from_millis(1);

fn policy(failback: bool) -> Policy {
    Policy {
        tracker: TrackerConfig {
            interval: 200 * MS,
            suspect_interval: 10 * MS,
            fall: 3,
            rise: 2,
        },
        failback,
        failover_timeout: 10_000 * MS,
        probe_timeout: 200 * MS,
        connect_timeout: 1000 * MS,
    }
}

/// Deterministic jitter: always the ceiling.
fn ceiling(d: Duration) -> Duration {
    d
}

/// A lifecycle whose first probes have started (as the monitor does before observing).
fn lifecycle(n: usize, failback: bool) -> (Lifecycle, Instant) {
    let now = Instant::now();
    let mut l = Lifecycle::with_jitter(policy(failback), n, now, ceiling);
    for i in 0..n {
        assert_eq!(l.due_at(i, now), now, "every endpoint is probed at start");
        l.probe_started(i, now, false);
    }
    (l, now)
}

use OutcomeClass::{ReadOnly, Refused, TimedOut, Up};

fn kinds(fx: &[Effect]) -> Vec<EventKind> {
    fx.iter()
        .filter_map(|e| match e {
            Effect::Publish(n) => Some(n.kind),
            _ => None,
        })
        .collect()
}

/// `fx` publishes `writer` (of `generation`) before it aborts endpoint `old`'s connections, so
/// the statements aborted retry against the new writer.
fn assert_published_before_abort(
    fx: &[Effect],
    writer: Option<usize>,
    generation: u64,
    old: usize,
) {
    let set = fx
        .iter()
        .position(|e| *e == Effect::SetWriter { writer, generation })
        .unwrap_or_else(|| panic!("no SetWriter {writer:?} in {fx:?}"));
    let abort = fx
        .iter()
        .position(|e| *e == Effect::AbortEndpoint(old))
        .unwrap_or_else(|| panic!("endpoint {old} not aborted in {fx:?}"));
    assert!(set < abort, "{fx:?}");
}

fn notice(fx: &[Effect], kind: EventKind) -> Notice {
    fx.iter()
        .find_map(|e| match e {
            Effect::Publish(n) if n.kind == kind => Some(n.clone()),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no {kind:?} in {fx:?}"))
}

/// Primary 0 writable, replica 1 read-only: 0 is adopted (generation 1, `connected`).
fn started(failback: bool) -> (Lifecycle, Instant) {
    let (mut l, now) = lifecycle(2, failback);
    let fx = l.observe(0, Up, true, "", now);
    assert_eq!(kinds(&fx), [EventKind::Connected]);
    assert!(fx.contains(&Effect::SetWriter {
        writer: Some(0),
        generation: 1
    }));
    assert!(fx.contains(&Effect::CloseStale(1)));
    let fx = l.observe(1, ReadOnly, false, "", now);
    assert!(kinds(&fx).is_empty());
    assert_eq!((l.writer(), l.generation()), (Some(0), 1));
    (l, now)
}

#[test]
fn a_node_becomes_writer_only_when_a_probe_just_saw_it_writable() {
    let (mut l, now) = lifecycle(2, false);
    l.observe(1, ReadOnly, false, "", now);
    l.observe(0, ReadOnly, false, "", now);
    assert_eq!(l.writer(), None);
    // Alive but a failed role read (not alive) never makes a writer either.
    l.observe(0, TimedOut, true, "", now);
    assert_eq!(l.writer(), None);
    l.observe(1, Up, true, "", now);
    assert_eq!(l.writer(), Some(1));
}

#[test]
fn endpoint_order_is_priority_at_start() {
    let (mut l, now) = lifecycle(2, false);
    // Both writable in one round: the first seen is adopted, then the higher-priority one
    // is reported as split brain rather than flipped to.
    l.observe(1, Up, true, "", now);
    let fx = l.observe(0, Up, true, "", now);
    assert_eq!(l.writer(), Some(1));
    assert_eq!(notice(&fx, EventKind::SplitBrain).others, [0]);
}

#[test]
fn a_crash_is_acted_on_at_the_first_refused_probe_with_abort_and_events_in_order() {
    let (mut l, now) = started(false);
    let t = now + 50 * MS;
    let fx = l.observe(0, Refused, false, "refused", t);
    assert_eq!(
        kinds(&fx),
        [EventKind::FailoverStarted, EventKind::EndpointDown]
    );
    // The writer is withdrawn before in-flight work on it is aborted.
    assert_published_before_abort(&fx, None, 1, 0);
    assert!(fx.contains(&Effect::WriterLost));
    assert_eq!(notice(&fx, EventKind::FailoverStarted).old_writer, Some(0));
    // The replica is promoted and seen writable: failover completed, generation 2.
    let t2 = t + 30 * MS;
    let fx = l.observe(1, Up, true, "", t2);
    assert_eq!(kinds(&fx), [EventKind::FailoverCompleted]);
    let done = notice(&fx, EventKind::FailoverCompleted);
    assert_eq!((done.old_writer, done.new_writer), (Some(0), Some(1)));
    assert_eq!(done.duration, Some(30 * MS));
    assert!(fx.contains(&Effect::FailoverCounted));
    assert!(fx.contains(&Effect::CloseStale(2)));
    assert_eq!((l.writer(), l.generation()), (Some(1), 2));
}

#[test]
fn a_silent_writer_survives_single_timeouts_and_is_dropped_after_fall() {
    let (mut l, now) = started(false);
    let mut t = now;
    for n in 1..=2 {
        t += 200 * MS;
        let fx = l.observe(0, TimedOut, false, "timed out", t);
        assert_eq!(l.writer(), Some(0), "after {n} timeouts");
        assert!(kinds(&fx).is_empty());
        // A suspect is probed again quickly.
        assert_eq!(l.due_at(0, t), t + 10 * MS);
    }
    t += 200 * MS;
    let fx = l.observe(0, TimedOut, false, "timed out", t);
    assert_eq!(l.writer(), None);
    assert_eq!(
        kinds(&fx),
        [EventKind::FailoverStarted, EventKind::EndpointDown]
    );
    assert_eq!(notice(&fx, EventKind::EndpointDown).reason, "timed out");
}

#[test]
fn split_brain_keeps_the_current_writer_reports_once_and_never_flip_flops() {
    let (mut l, now) = started(false);
    // The replica is seen becoming writable: the writer is asked at once, and its answer
    // (healthy, writable) makes it split brain.
    let t = now + 200 * MS;
    let fx = l.observe(1, Up, true, "", t);
    assert!(
        kinds(&fx).is_empty(),
        "judged before the writer answered: {fx:?}"
    );
    assert_eq!(l.due_at(0, t), t, "the writer is probed at once");
    l.probe_started(0, t, false);
    let fx = l.observe(0, Up, true, "", t + MS);
    assert_eq!(kinds(&fx), [EventKind::SplitBrain]);
    let sb = notice(&fx, EventKind::SplitBrain);
    assert_eq!((sb.old_writer, sb.others.as_slice()), (Some(0), &[1][..]));
    for k in 2..6 {
        let fx = l.observe(1, Up, true, "", now + k * 200 * MS);
        let fx2 = l.observe(0, Up, true, "", now + k * 200 * MS);
        assert!(kinds(&fx).is_empty() && kinds(&fx2).is_empty());
        assert_eq!((l.writer(), l.generation()), (Some(0), 1));
    }
    // The writer turning suspect later does not make the split-brain node a promotion.
    let t = now + 1300 * MS;
    let fx = l.observe(0, TimedOut, false, "timed out", t);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    let fx = l.observe(1, Up, true, "", t + 10 * MS);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    assert_eq!((l.writer(), l.generation()), (Some(0), 1));
}

#[test]
fn a_node_writable_all_along_is_never_adopted_over_a_suspect_writer() {
    // Both writable from the start: split brain, the first seen kept.
    let (mut l, now) = lifecycle(2, false);
    l.observe(0, Up, true, "", now);
    let fx = l.observe(1, Up, true, "", now);
    assert_eq!(kinds(&fx), [EventKind::SplitBrain]);
    let t = now + 200 * MS;
    l.observe(0, TimedOut, false, "timed out", t);
    let fx = l.observe(1, Up, true, "", t + 10 * MS);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    assert_eq!((l.writer(), l.generation()), (Some(0), 1));
    // Declared down after `fall` failures: then, and only then, an ordinary failover.
    l.observe(0, TimedOut, false, "timed out", t + 210 * MS);
    let fx = l.observe(0, TimedOut, false, "timed out", t + 420 * MS);
    assert!(kinds(&fx).contains(&EventKind::FailoverCompleted), "{fx:?}");
    assert_eq!(l.writer(), Some(1));
}

#[test]
fn a_promotion_seen_while_the_writer_is_suspect_is_adopted_at_once() {
    let (mut l, now) = started(false);
    // The writer's probe times out: suspect, still the writer.
    let t = now + 200 * MS;
    let fx = l.observe(0, TimedOut, false, "timed out", t);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    assert_eq!(l.writer(), Some(0));
    // The replica, seen read-only before, is now writable: a promotion. Adopted at once.
    let t2 = t + 10 * MS;
    let fx = l.observe(1, Up, true, "", t2);
    assert_eq!(
        kinds(&fx),
        [EventKind::FailoverStarted, EventKind::FailoverCompleted]
    );
    assert_eq!((l.writer(), l.generation()), (Some(1), 2));
    let done = notice(&fx, EventKind::FailoverCompleted);
    assert_eq!((done.old_writer, done.new_writer), (Some(0), Some(1)));
    assert_eq!(
        done.duration,
        Some(10 * MS),
        "from the writer's first failure"
    );
    assert_eq!(done.reason, PROMOTION_REASON);
    assert!(fx.contains(&Effect::FailoverCounted));
    assert!(fx.contains(&Effect::CloseStale(2)));
    // The old writer's leased connections are aborted, after the new writer is published.
    assert_published_before_abort(&fx, Some(1), 2, 0);
    // No split brain is reported against the old writer, whose role is unknown now; when it is
    // declared down later, that is an endpoint event only (no second failover).
    assert!(!kinds(&fx).contains(&EventKind::SplitBrain));
    l.observe(0, TimedOut, false, "timed out", t2 + 200 * MS);
    let fx = l.observe(0, TimedOut, false, "timed out", t2 + 400 * MS);
    assert_eq!(kinds(&fx), [EventKind::EndpointDown]);
    assert_eq!((l.writer(), l.generation()), (Some(1), 2));
}

#[test]
fn a_promotion_seen_before_the_writer_fails_waits_for_the_writers_answer() {
    let (mut l, now) = started(false);
    // The writer froze; the replica is promoted and seen writable first. The writer has not
    // failed a probe yet: nothing is decided, but the writer is asked at once.
    let t = now + 100 * MS;
    let fx = l.observe(1, Up, true, "", t);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    assert_eq!(l.writer(), Some(0));
    assert_eq!(l.due_at(0, t), t);
    // Its probe times out: the promotion is adopted then, not after `fall` failures.
    let fx = l.observe(0, TimedOut, false, "timed out", t + 200 * MS);
    assert_eq!(
        kinds(&fx),
        [EventKind::FailoverStarted, EventKind::FailoverCompleted]
    );
    assert_eq!((l.writer(), l.generation()), (Some(1), 2));
    assert!(fx.contains(&Effect::AbortEndpoint(0)));
}

#[test]
fn a_statement_failure_makes_the_writer_suspect_for_the_promotion_rule() {
    let (mut l, now) = started(false);
    let t = now + 50 * MS;
    l.statement_failed(0, t);
    let fx = l.observe(1, Up, true, "", t + 5 * MS);
    assert!(kinds(&fx).contains(&EventKind::FailoverCompleted), "{fx:?}");
    assert_eq!(l.writer(), Some(1));
}

#[test]
fn a_healthy_writer_is_never_left_for_a_promotion() {
    let (mut l, now) = started(false);
    // The replica becomes writable, the writer answers healthy: split brain, kept.
    l.observe(1, Up, true, "", now + 100 * MS);
    let fx = l.observe(0, Up, true, "", now + 110 * MS);
    assert_eq!(kinds(&fx), [EventKind::SplitBrain]);
    assert_eq!((l.writer(), l.generation()), (Some(0), 1));
    // The replica goes read-only and writable again (a second promotion) while the writer
    // stays healthy: pending, then split brain again once the writer answers; never a flip.
    l.observe(1, ReadOnly, false, "", now + 300 * MS);
    let fx = l.observe(1, Up, true, "", now + 500 * MS);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    let fx = l.observe(0, Up, true, "", now + 510 * MS);
    assert_eq!(kinds(&fx), [EventKind::SplitBrain]);
    assert_eq!((l.writer(), l.generation()), (Some(0), 1));
}

#[test]
fn the_old_writer_is_not_readopted_after_a_promotion_unless_failback() {
    for failback in [false, true] {
        let (mut l, now) = started(failback);
        let t = now + 200 * MS;
        l.observe(0, TimedOut, false, "timed out", t);
        l.observe(1, Up, true, "", t + 10 * MS);
        assert_eq!(l.writer(), Some(1));
        // The old writer thaws, still writable.
        let t2 = t + 300 * MS;
        let fx = l.observe(0, Up, true, "", t2);
        if failback {
            assert_eq!((l.writer(), l.generation()), (Some(0), 3), "{fx:?}");
        } else {
            assert_eq!(kinds(&fx), [EventKind::SplitBrain]);
            // Even if the new writer turns suspect: the old one was writable all along.
            l.observe(1, TimedOut, false, "timed out", t2 + 200 * MS);
            let fx = l.observe(0, Up, true, "", t2 + 210 * MS);
            assert!(kinds(&fx).is_empty(), "{fx:?}");
            assert_eq!((l.writer(), l.generation()), (Some(1), 2));
        }
    }
}

#[test]
fn while_the_writer_is_suspect_the_others_are_probed_fast() {
    let (mut l, now) = started(false);
    let t = now + 200 * MS;
    l.observe(1, ReadOnly, false, "", t);
    l.probe_started(1, t, false);
    assert_eq!(
        l.due_at(1, t),
        t + 200 * MS,
        "healthy writer: normal interval"
    );
    l.observe(0, TimedOut, false, "timed out", t + MS);
    assert_eq!(l.due_at(1, t + MS), t + 10 * MS, "suspect writer: fast");
    l.observe(0, Up, true, "", t + 2 * MS);
    assert_eq!(
        l.due_at(1, t + 2 * MS),
        t + 200 * MS,
        "writer answered: normal again"
    );
}

#[test]
fn no_automatic_failback_unless_configured() {
    for failback in [false, true] {
        let (mut l, now) = started(failback);
        l.observe(0, Refused, false, "", now);
        l.observe(1, Up, true, "", now);
        assert_eq!(l.writer(), Some(1));
        // The old primary comes back writable (rise = 2 successes).
        let t = now + 400 * MS;
        l.observe(0, Up, true, "", t);
        let fx = l.observe(0, Up, true, "", t + 200 * MS);
        if failback {
            assert_eq!(l.writer(), Some(0));
            assert_eq!(l.generation(), 3);
            assert!(kinds(&fx).contains(&EventKind::FailoverCompleted), "{fx:?}");
        } else {
            assert_eq!(l.writer(), Some(1));
            assert_eq!(l.generation(), 2);
            assert!(kinds(&fx).contains(&EventKind::SplitBrain), "{fx:?}");
        }
    }
}

#[test]
fn every_writer_change_bumps_the_generation_and_closes_older_connections() {
    let (mut l, now) = started(false);
    l.observe(0, Refused, false, "", now);
    let fx = l.observe(1, Up, true, "", now);
    assert!(fx.contains(&Effect::CloseStale(2)));
    l.observe(1, Refused, false, "", now);
    l.observe(0, Up, true, "", now);
    let fx = l.observe(0, Up, true, "", now);
    assert_eq!(l.generation(), 3);
    assert!(fx.contains(&Effect::CloseStale(3)), "{fx:?}");
}

#[test]
fn a_down_endpoint_backs_off_with_a_growing_capped_pause() {
    let (mut l, now) = started(false);
    let mut t = now;
    let mut pauses = Vec::new();
    for _ in 0..7 {
        l.observe(0, Refused, false, "", t);
        let due = l.due_at(0, t);
        pauses.push(due.saturating_duration_since(t));
        t = due;
    }
    // Ceilings 10, 20, 40, 80, 160 ms, then capped at the 200 ms probe interval. (While no
    // writer is known a down node is still probed no faster than its backoff.)
    assert_eq!(
        pauses,
        [10, 20, 40, 80, 160, 200, 200].map(|ms| ms * MS).to_vec()
    );
}

#[test]
fn a_changed_address_is_probed_at_once_whatever_the_backoff() {
    let (mut l, now) = started(false);
    for k in 0..6 {
        l.observe(0, Refused, false, "", now + k * MS);
    }
    assert!(l.due_at(0, now + 6 * MS) > now + 6 * MS);
    let t = now + 7 * MS;
    l.address_changed(0, t);
    assert_eq!(l.due_at(0, t), t);
    assert_eq!(l.health(0), Health::Unknown);
    l.probe_started(0, t, false);
    assert!(l.due_at(0, t) >= t);
}

#[test]
fn a_statement_failure_on_the_writer_makes_every_endpoint_due_now() {
    let (mut l, now) = started(false);
    let t = now + 20 * MS;
    assert!(l.due_at(1, t) > t);
    let fx = l.statement_failed(0, t);
    assert!(kinds(&fx).is_empty(), "suspect is still routable: {fx:?}");
    assert_eq!((l.due_at(0, t), l.due_at(1, t)), (t, t));
    // On a non-writer only that endpoint.
    let (mut l, now) = started(false);
    let t = now + 20 * MS;
    l.statement_failed(1, t);
    assert_eq!(l.due_at(1, t), t);
    assert!(l.due_at(0, t) > t);
}

#[test]
fn a_read_only_rejection_drops_the_writer_at_once() {
    let (mut l, now) = started(false);
    let fx = l.read_only(0, now);
    assert_eq!(l.writer(), None);
    assert_eq!(kinds(&fx), [EventKind::FailoverStarted]);
    // It is still alive: its idle connections are closed, not aborted.
    assert!(fx.contains(&Effect::CloseStale(u64::MAX)), "{fx:?}");
    assert_eq!(l.due_at(0, now), now);
    // The new writer may already be writable (a switchover): every endpoint is probed now.
    assert_eq!(l.due_at(1, now), now);
}

#[test]
fn a_node_that_refused_a_write_is_not_made_writer_again_by_a_probe_read_just_after() {
    // A switchover: the fence refuses statements before `@@global.read_only` reads 1, so the
    // probe asked for by the refusal still reads the node writable.
    let (mut l, now) = started(false);
    l.read_only(0, now + MS);
    assert_eq!((l.writer(), l.generation()), (None, 1));
    l.probe_started(0, now + 2 * MS, false);
    let fx = l.observe(0, Up, true, "", now + 3 * MS);
    assert_eq!(
        (l.writer(), l.generation()),
        (None, 1),
        "the refusal stands: {fx:?}"
    );
    assert!(
        !fx.iter().any(|e| matches!(e, Effect::SetWriter { .. })),
        "{fx:?}"
    );
    // Still probed at the fast interval meanwhile: the promoted node is adopted.
    let t = now + 3 * MS;
    assert!(l.due_at(0, t) <= t + 10 * MS, "{:?}", l.due_at(0, t) - t);
    l.probe_started(1, now + 4 * MS, false);
    l.observe(1, Up, true, "", now + 5 * MS);
    assert_eq!((l.writer(), l.generation()), (Some(1), 2));
}

#[test]
fn a_node_made_writable_again_after_a_refusal_is_adopted_after_the_hold() {
    // Fenced, then made writable again, nothing else writable.
    let (mut l, now) = started(false);
    let refused = now + MS;
    l.read_only(0, refused);
    l.probe_started(0, refused + REFUSAL_HOLD - MS, false);
    l.observe(0, Up, true, "", refused + REFUSAL_HOLD);
    assert_eq!(l.writer(), None, "read within the hold");
    l.probe_started(0, refused + REFUSAL_HOLD, false);
    l.observe(0, Up, true, "", refused + REFUSAL_HOLD + MS);
    assert_eq!((l.writer(), l.generation()), (Some(0), 2));
}

#[test]
fn a_failover_that_finds_no_writer_is_reported_once_after_its_timeout() {
    let (mut l, now) = started(false);
    l.observe(0, Refused, false, "", now);
    assert_eq!(l.next_deadline(now), Some(now + 10_000 * MS));
    assert!(kinds(&l.tick(now + 9_999 * MS)).is_empty());
    let fx = l.tick(now + 10_000 * MS);
    assert_eq!(kinds(&fx), [EventKind::FailoverFailed]);
    assert_eq!(notice(&fx, EventKind::FailoverFailed).old_writer, Some(0));
    assert!(kinds(&l.tick(now + 20_000 * MS)).is_empty());
    assert_eq!(l.next_deadline(now + 20_000 * MS), None);
}

#[test]
fn with_no_writer_every_endpoint_is_probed_at_the_fast_interval() {
    let (mut l, now) = lifecycle(2, false);
    l.observe(0, ReadOnly, false, "", now);
    l.probe_started(0, now, false);
    assert_eq!(l.due_at(0, now), now + 10 * MS);
    l.observe(1, Up, true, "", now);
    l.probe_started(0, now, false);
    assert_eq!(l.due_at(0, now), now + 200 * MS);
}

#[test]
fn a_login_to_an_endpoint_not_in_use_gets_the_connect_timeout() {
    let (mut l, now) = started(false);
    assert_eq!(
        l.probe_budget(0, true),
        200 * MS,
        "writer: detection budget"
    );
    assert_eq!(l.probe_budget(0, false), 200 * MS);
    l.observe(1, Refused, false, "", now);
    assert_eq!(
        l.probe_budget(1, true),
        1000 * MS,
        "down: not abandoned mid-login"
    );
    assert_eq!(l.probe_budget(1, false), 200 * MS);
    let (fresh, _) = lifecycle(1, false);
    assert_eq!(fresh.probe_budget(0, true), 1000 * MS);
}

#[test]
fn an_endpoint_that_comes_back_is_announced_after_rise_successes() {
    let (mut l, now) = started(false);
    l.observe(1, Refused, false, "", now);
    let fx = l.observe(1, ReadOnly, false, "", now);
    assert!(kinds(&fx).is_empty());
    let fx = l.observe(1, ReadOnly, false, "", now);
    assert_eq!(kinds(&fx), [EventKind::EndpointUp]);
    assert_eq!(notice(&fx, EventKind::EndpointUp).endpoint, Some(1));
}

#[test]
fn fast_probing_without_a_writer_slows_down_as_the_outage_lasts() {
    // The writer refused (killed): no writer. The replica is probed every 10 ms at first,
    // then at a sixtieth of the time since the writer was lost, never slower than 200 ms.
    let (mut l, now) = started(false);
    l.observe(0, Refused, false, "refused", now);
    assert_eq!(l.writer(), None);
    for (elapsed, interval) in [(0, 10), (600, 10), (1200, 20), (6000, 100), (20000, 200)] {
        let t = now + elapsed * MS;
        l.probe_started(1, t, false);
        l.observe(1, ReadOnly, false, "", t);
        assert_eq!(
            l.due_at(1, t),
            t + interval * MS,
            "{elapsed} ms into the outage"
        );
    }
    // A promotion 2.4 s into the outage is adopted at its first probe, ≤ 40 ms later.
    let t = now + 2400 * MS;
    l.observe(1, ReadOnly, false, "", t);
    let next = l.due_at(1, t);
    assert_eq!(next, t + 40 * MS);
    l.probe_started(1, t, false);
    let fx = l.observe(1, Up, true, "", next);
    assert_eq!(kinds(&fx), [EventKind::FailoverCompleted]);
    assert_eq!(l.writer(), Some(1));
}

#[test]
fn fast_probes_are_spread_over_the_second_half_of_the_interval() {
    fn floor(_: Duration) -> Duration {
        Duration::ZERO
    }
    let now = Instant::now();
    let mut l = Lifecycle::with_jitter(policy(false), 2, now, floor);
    l.probe_started(1, now, false);
    // Never sooner than failover_probe_interval (10 ms), even at the bottom of the spread.
    l.observe(1, ReadOnly, false, "", now);
    assert_eq!(l.due_at(1, now), now + 10 * MS);
    l.probe_started(1, now, false);
    let t = now + 2400 * MS;
    l.observe(1, ReadOnly, false, "", t);
    // No writer for 2.4 s: a 40 ms interval, drawn from [20, 40] ms (here its floor).
    assert_eq!(l.due_at(1, t), t + 20 * MS);
}

#[test]
fn while_the_writer_is_suspect_fast_probing_counts_from_its_first_failure() {
    let (mut l, now) = started(false);
    let first_failure = now + 200 * MS;
    l.observe(0, TimedOut, false, "timed out", first_failure);
    let t = first_failure + 1500 * MS;
    l.observe(0, TimedOut, false, "timed out", t - MS); // still suspect (fall = 3)
    assert_eq!(l.writer(), Some(0));
    l.probe_started(1, t, false);
    l.observe(1, ReadOnly, false, "", t);
    // 1.5 s since the first failure (not since the client's start): 25 ms.
    assert_eq!(l.due_at(1, t), t + 25 * MS);
}

/// `started`, then `rounds` probes of the writer answering in `rtt` each, `interval` apart;
/// returns the time of the last answer.
fn writer_answering_in(l: &mut Lifecycle, now: Instant, rtt: Duration, rounds: u32) -> Instant {
    let mut t = now;
    for _ in 0..rounds {
        t += 100 * MS;
        l.probe_started(0, t, false);
        t += rtt;
        l.observe(0, Up, true, "", t);
    }
    t
}

#[test]
fn a_promotion_is_adopted_over_a_writer_whose_probe_stalls_beyond_its_bound() {
    let (mut l, now) = started(false);
    let t = writer_answering_in(&mut l, now, MS, 20);
    // The writer's next probe gets no answer (frozen); the replica is promoted.
    let probe = t + 100 * MS;
    l.probe_started(0, probe, false);
    let bound = stall::STALL_FLOOR;
    assert_eq!(
        l.next_deadline(probe),
        Some(probe + bound),
        "the monitor wakes when the writer's probe turns it stalled"
    );
    // Seen becoming writable before the bound: pending, nothing decided.
    let fx = l.observe(1, Up, true, "", probe + 5 * MS);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    assert_eq!(l.writer(), Some(0));
    assert_eq!(l.next_deadline(probe + 5 * MS), Some(probe + bound));
    // At the bound: adopted, the old writer's in-flight statements aborted after the new
    // writer is published, the failover timed from the stalled probe's start.
    let fx = l.tick(probe + bound);
    assert_eq!(
        kinds(&fx),
        [EventKind::FailoverStarted, EventKind::FailoverCompleted]
    );
    assert_eq!((l.writer(), l.generation()), (Some(1), 2));
    assert_published_before_abort(&fx, Some(1), 2, 0);
    // The stalled writer is a suspect now, and its status says so before the events go out
    // (what the preload library's in-flight abort reads).
    assert_eq!(l.health(0), Health::Suspect);
    let status = fx
        .iter()
        .position(|e| {
            matches!(
                e,
                Effect::Status {
                    endpoint: 0,
                    health: Health::Suspect,
                    writable: false,
                    ..
                }
            )
        })
        .expect("the old writer's status");
    let published = fx
        .iter()
        .position(|e| matches!(e, Effect::Publish(_)))
        .unwrap();
    assert!(status < published, "{fx:?}");
    let done = notice(&fx, EventKind::FailoverCompleted);
    assert_eq!(done.duration, Some(bound));
    assert_eq!(done.reason, PROMOTION_REASON);
    // The old writer's late answer, still writable: split brain, no flip back.
    let fx = l.observe(0, Up, true, "", probe + 300 * MS);
    assert_eq!(kinds(&fx), [EventKind::SplitBrain]);
    assert_eq!((l.writer(), l.generation()), (Some(1), 2));
}

#[test]
fn while_the_writers_probe_is_stalled_the_others_are_probed_fast() {
    let (mut l, now) = started(false);
    let t = writer_answering_in(&mut l, now, MS, 20);
    l.probe_started(1, t, false);
    l.observe(1, ReadOnly, false, "", t);
    assert_eq!(
        l.due_at(1, t),
        t + 200 * MS,
        "healthy writer: normal interval"
    );
    let probe = t + 50 * MS;
    l.probe_started(0, probe, false);
    let stalled = probe + stall::STALL_FLOOR;
    assert_eq!(
        l.due_at(1, stalled - MS),
        t + 200 * MS,
        "within the bound: normal interval"
    );
    assert_eq!(l.due_at(1, stalled), t + 10 * MS, "stalled: fast");
    // The replica answers read-only: nothing to adopt, the writer stays.
    let fx = l.observe(1, ReadOnly, false, "", stalled);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    l.observe(0, Up, true, "", stalled + 5 * MS);
    assert_eq!(
        l.due_at(1, stalled + 5 * MS),
        stalled + 200 * MS,
        "writer answered: normal again"
    );
}

#[test]
fn a_slow_writer_answering_within_its_bound_is_kept_against_a_wrongly_promoted_node() {
    // The writer has been answering in 15 ms (a loaded server): its bound is longer than the
    // floor. A replica wrongly made writable is seen while the writer's probe is 25 ms old:
    // the writer is kept, and its answer makes the replica split brain.
    let (mut l, now) = started(false);
    let t = writer_answering_in(&mut l, now, 15 * MS, 20);
    let probe = t + 100 * MS;
    l.probe_started(0, probe, false);
    let stalls_at = l.next_deadline(probe).expect("a stall deadline");
    assert!(
        stalls_at >= probe + 30 * MS,
        "a 15 ms writer gets at least 2 round-trips: {:?}",
        stalls_at - probe
    );
    let fx = l.observe(1, Up, true, "", probe + 25 * MS);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    let fx = l.tick(probe + 25 * MS);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    assert_eq!(l.writer(), Some(0));
    let fx = l.observe(0, Up, true, "", probe + 28 * MS);
    assert_eq!(kinds(&fx), [EventKind::SplitBrain]);
    assert_eq!((l.writer(), l.generation()), (Some(0), 1));
    // Its next probe stalls past the bound: the node, now split brain, is not a promotion.
    let probe = probe + 150 * MS;
    l.probe_started(0, probe, false);
    let fx = l.tick(probe + 190 * MS);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    let fx = l.observe(1, Up, true, "", probe + 195 * MS);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    assert_eq!((l.writer(), l.generation()), (Some(0), 1));
}

#[test]
fn a_writer_whose_probe_logs_in_is_not_stalled_before_the_probe_deadline() {
    // The writer's probe connection was lost: its next probe logs in first (TCP + handshake,
    // far longer than a query's round-trip). A promotion seen meanwhile waits for the
    // writer's answer or its probe deadline, as without the stall rule.
    let (mut l, now) = started(false);
    let t = writer_answering_in(&mut l, now, MS, 20);
    let probe = t + 100 * MS;
    l.probe_started(0, probe, true);
    assert_eq!(l.next_deadline(probe), Some(probe + 200 * MS));
    let fx = l.observe(1, Up, true, "", probe + 5 * MS);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    let fx = l.tick(probe + 150 * MS);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    assert_eq!(l.writer(), Some(0));
    // The login's time is no round-trip sample: the bound stays the floor afterwards.
    l.observe(0, Up, true, "", probe + 150 * MS);
    let next = probe + 250 * MS;
    l.probe_started(0, next, false);
    assert_eq!(l.next_deadline(next), Some(next + stall::STALL_FLOOR));
}

fn gauge(in_flight: u32, completed: u32) -> crate::activity::Reading {
    crate::activity::Reading {
        in_flight,
        completed,
    }
}

#[test]
fn statements_that_stop_completing_get_the_writer_probed_at_once_then_the_stall_rule_adopts() {
    let (mut l, now) = started(false);
    let t = writer_answering_in(&mut l, now, MS, 20);
    assert!(l.due_at(0, t) > t, "the writer was just probed");
    // Statements complete: looked at again within the stall bound, nothing else.
    assert_eq!(
        l.statements(gauge(4, 100), t),
        Some(t + stall::STALL_FLOOR / 2)
    );
    let quiet = t + 2 * MS;
    assert_eq!(
        l.statements(gauge(4, 130), quiet),
        Some(quiet + stall::STALL_FLOOR / 2)
    );
    assert!(l.due_at(0, quiet) > quiet);
    // The writer freezes: statements in flight, none completing for the bound.
    let frozen = quiet + stall::STALL_FLOOR;
    assert_eq!(l.statements(gauge(4, 130), frozen), None);
    assert_eq!(l.due_at(0, frozen), frozen, "the writer is probed at once");
    assert_eq!(l.due_at(1, frozen), frozen, "and the others");
    l.probe_started(0, frozen, false);
    // That probe stalls too (half a bound: the statements were already stuck for a whole
    // one); the replica is seen becoming writable: adopted.
    let stalled = frozen + stall::STALL_FLOOR / 2;
    assert_eq!(l.next_deadline(frozen), Some(stalled));
    let fx = replica_seen_writable_at_the_stall_is_adopted(&mut l, stalled);
    assert_published_before_abort(&fx, Some(1), 2, 0);
}

/// With the writer (endpoint 0) stalled at `stalled`, the others are probed fast, and the
/// replica (1) seen writable just after is adopted: generation 2. Returns the effects.
fn replica_seen_writable_at_the_stall_is_adopted(
    l: &mut Lifecycle,
    stalled: Instant,
) -> Vec<Effect> {
    assert!(
        l.due_at(1, stalled) <= stalled,
        "the others are probed fast"
    );
    let fx = l.observe(1, Up, true, "", stalled + MS);
    assert_replica_adopted(l, &fx);
    fx
}

/// `fx` is the failover to the replica (endpoint 1), now writer of generation 2.
fn assert_replica_adopted(l: &Lifecycle, fx: &[Effect]) {
    assert_eq!(
        kinds(fx),
        [EventKind::FailoverStarted, EventKind::FailoverCompleted]
    );
    assert_eq!((l.writer(), l.generation()), (Some(1), 2));
}

#[test]
fn a_probe_already_running_when_the_statements_get_stuck_confirms_the_stall_in_half_a_bound() {
    let (mut l, now) = started(false);
    let t = writer_answering_in(&mut l, now, MS, 20);
    l.statements(gauge(4, 100), t);
    // The writer's scheduled probe starts; the writer freezes just after.
    let probe = t + 15 * MS;
    l.probe_started(0, probe, false);
    assert_eq!(l.next_deadline(probe), Some(probe + stall::STALL_FLOOR));
    // The statements have made no progress for a bound: that running probe is the witness,
    // and half a bound of it unanswered is enough.
    let stuck = t + stall::STALL_FLOOR;
    assert_eq!(l.statements(gauge(4, 100), stuck), None);
    assert_eq!(l.next_deadline(stuck), Some(probe + stall::STALL_FLOOR / 2));
    replica_seen_writable_at_the_stall_is_adopted(&mut l, probe + stall::STALL_FLOOR / 2);
}

#[test]
fn a_node_made_writable_while_a_long_statement_runs_wins_over_a_writer_whose_probe_is_half_a_bound_late(
) {
    // The trade-off of the half bound: the statements' silence counts as half the evidence,
    // so a live writer whose probe is late by half a bound is left for a node seen becoming
    // writable at that moment (one whose probe answers in time is kept, see below).
    let (mut l, now) = started(false);
    let t = writer_answering_in(&mut l, now, MS, 20);
    l.statements(gauge(1, 5), t);
    let stuck = t + stall::STALL_FLOOR;
    assert_eq!(l.statements(gauge(1, 5), stuck), None);
    l.probe_started(0, stuck, false);
    let fx = l.observe(1, Up, true, "", stuck + MS);
    assert!(
        kinds(&fx).is_empty(),
        "pending until the writer's probe says: {fx:?}"
    );
    let fx = l.tick(stuck + stall::STALL_FLOOR / 2);
    assert_replica_adopted(&l, &fx);
}

#[test]
fn only_the_probe_of_the_stuck_moment_gets_half_a_bound_and_a_login_never_does() {
    let (mut l, now) = started(false);
    let t = writer_answering_in(&mut l, now, MS, 20);
    l.statements(gauge(1, 5), t);
    let stuck = t + stall::STALL_FLOOR;
    l.statements(gauge(1, 5), stuck);
    // A probe that logs in is no round-trip: the deadline, witnessed or not.
    l.probe_started(0, stuck, true);
    assert_eq!(l.next_deadline(stuck), Some(stuck + l.policy.probe_timeout));
    l.observe(0, Up, true, "", stuck + MS);
    // The statement still runs; the writer's next scheduled probe gets the whole bound.
    let next = l.due_at(0, stuck + MS);
    assert_eq!(l.statements(gauge(1, 5), next), None);
    l.probe_started(0, next, false);
    assert_eq!(l.next_deadline(next), Some(next + stall::STALL_FLOOR));
}

#[test]
fn a_long_statement_on_a_writer_that_answers_in_time_changes_nothing() {
    let (mut l, now) = started(false);
    let t = writer_answering_in(&mut l, now, MS, 20);
    l.statements(gauge(1, 5), t);
    let quiet = t + stall::STALL_FLOOR;
    assert_eq!(l.statements(gauge(1, 5), quiet), None);
    assert_eq!(l.due_at(0, quiet), quiet, "one probe for the quiet spell");
    l.probe_started(0, quiet, false);
    let fx = l.observe(0, Up, true, "", quiet + MS);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    // The statement keeps running: no more probes than the normal schedule.
    for step in 1..=50u32 {
        let at = quiet + MS + step * MS;
        assert_eq!(l.statements(gauge(1, 5), at), None);
        assert_eq!(l.due_at(0, at), quiet + MS + 200 * MS, "step {step}");
    }
    assert_eq!((l.writer(), l.generation()), (Some(0), 1));
}

#[test]
fn statements_never_make_a_node_writer_that_no_probe_saw_writable() {
    let (mut l, now) = started(false);
    let t = writer_answering_in(&mut l, now, MS, 20);
    l.statements(gauge(8, 1), t);
    let quiet = t + stall::STALL_FLOOR;
    l.statements(gauge(8, 1), quiet);
    l.probe_started(0, quiet, false);
    // The writer's probe stalls; the replica still answers read-only: no writer change.
    let stalled = quiet + 5 * stall::STALL_FLOOR;
    let fx = l.tick(stalled);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    let fx = l.observe(1, ReadOnly, false, "", stalled);
    assert!(kinds(&fx).is_empty(), "{fx:?}");
    assert_eq!((l.writer(), l.generation()), (Some(0), 1));
}

#[test]
fn without_a_writer_the_statements_ask_for_nothing() {
    let (mut l, now) = lifecycle(2, false);
    assert_eq!(l.statements(gauge(3, 0), now), None);
    assert_eq!(l.statements(gauge(3, 0), now + 500 * MS), None);
}
