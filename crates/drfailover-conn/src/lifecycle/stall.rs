//! When the writer counts as *stalled*: its running probe has been outstanding for longer than
//! a short bound adapted to its recent round-trips (docs/ARCHITECTURE.md, "Writer selection").
//! A stalled writer is treated like a suspect one for the promotion rule only: a node seen
//! becoming writable is adopted over it, and the other endpoints are probed fast meanwhile. It
//! is never declared down for it (that still takes failed probes).
//!
//! The estimate is TCP's retransmission timer (RFC 6298: smoothed round-trip and its mean
//! deviation, gains 1/8 and 1/4); the bound is [`STALL_RTO_MULTIPLE`] times that timeout,
//! never below [`STALL_FLOOR`] (a loaded machine's scheduling hiccups are not a stall) and
//! never above the probe deadline (a probe that times out makes the writer suspect anyway).
//! Without a round-trip yet, and for a probe that logs in first (its time is no round-trip),
//! the bound is the probe deadline.
//!
//! A probe running while the program's statements have made no progress for a whole bound
//! (see [`super::witness`]) needs only half of it ([`RoundTrip::witnessed_stall_bound`]: one
//! retransmission timeout, at least half the floor): the statements' silence is the other
//! half of the evidence. That shortens the time a frozen writer is kept, and makes a false
//! stall of a live writer whose probe is late by half a bound possible while a long statement
//! runs; either still needs a node seen becoming writable to change the writer.

use std::time::Duration;

/// The least time a probe must be outstanding before its node counts as stalled (half of it
/// for a probe the statements' silence backs up, [`RoundTrip::witnessed_stall_bound`]).
pub(crate) const STALL_FLOOR: Duration = Duration::from_millis(20);

/// How many retransmission timeouts (smoothed round-trip + 4 × its deviation) a probe may
/// take before its node counts as stalled.
pub(crate) const STALL_RTO_MULTIPLE: u32 = 2;

/// Smoothed round-trip of one endpoint's live probes. Cheap: two durations.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RoundTrip {
    /// Smoothed round-trip (`None` before the first live probe).
    smoothed: Option<Duration>,
    /// Mean deviation of the round-trip.
    deviation: Duration,
}

impl RoundTrip {
    /// A live probe took `sample`.
    pub fn sample(&mut self, sample: Duration) {
        match self.smoothed {
            None => {
                self.smoothed = Some(sample);
                self.deviation = sample / 2;
            }
            Some(smoothed) => {
                let error = smoothed.abs_diff(sample);
                self.deviation = (self.deviation * 3 + error) / 4;
                self.smoothed = Some((smoothed * 7 + sample) / 8);
            }
        }
    }

    /// How long a probe may be outstanding before its node counts as stalled: within
    /// `[STALL_FLOOR, cap]`, `cap` when nothing is known yet.
    pub fn stall_bound(&self, cap: Duration) -> Duration {
        match self.smoothed {
            None => cap,
            Some(smoothed) => ((smoothed + self.deviation * 4) * STALL_RTO_MULTIPLE)
                .clamp(STALL_FLOOR.min(cap), cap),
        }
    }

    /// The bound of a probe running while the program's statements have made no progress for
    /// a whole stall bound ([`super::witness`]): half a bound (one retransmission timeout, at
    /// least half the floor) without an answer confirms the stall. Without a round-trip yet
    /// there is no timeout to halve: the probe deadline, as for [`RoundTrip::stall_bound`].
    pub fn witnessed_stall_bound(&self, cap: Duration) -> Duration {
        match self.smoothed {
            None => cap,
            Some(_) => (self.stall_bound(cap) / 2).max((STALL_FLOOR / 2).min(cap)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn without_a_round_trip_the_bound_is_the_probe_deadline() {
        assert_eq!(RoundTrip::default().stall_bound(200 * MS), 200 * MS);
    }

    #[test]
    fn a_fast_steady_node_gets_the_floor() {
        let mut rtt = RoundTrip::default();
        for _ in 0..50 {
            rtt.sample(MS / 2);
        }
        assert_eq!(rtt.stall_bound(200 * MS), STALL_FLOOR);
    }

    #[test]
    fn a_slow_or_jittery_node_gets_a_longer_bound_capped_by_the_deadline() {
        let mut slow = RoundTrip::default();
        for _ in 0..50 {
            slow.sample(10 * MS);
        }
        assert!(slow.stall_bound(200 * MS) >= 20 * MS, "{slow:?}");
        let mut slower = RoundTrip::default();
        for _ in 0..50 {
            slower.sample(30 * MS);
        }
        assert!(slower.stall_bound(200 * MS) >= 60 * MS, "{slower:?}");
        let mut jittery = RoundTrip::default();
        for i in 0..50 {
            jittery.sample(if i % 2 == 0 { MS } else { 9 * MS });
        }
        assert!(jittery.stall_bound(200 * MS) > 4 * 5 * MS, "{jittery:?}");
        let mut awful = RoundTrip::default();
        awful.sample(150 * MS);
        assert_eq!(awful.stall_bound(200 * MS), 200 * MS);
    }

    #[test]
    fn a_probe_the_statements_asked_for_gets_half_the_bound() {
        assert_eq!(
            RoundTrip::default().witnessed_stall_bound(200 * MS),
            200 * MS,
            "without a round-trip, the deadline"
        );
        let mut fast = RoundTrip::default();
        for _ in 0..50 {
            fast.sample(MS / 2);
        }
        assert_eq!(fast.witnessed_stall_bound(200 * MS), STALL_FLOOR / 2);
        let mut slow = RoundTrip::default();
        for _ in 0..50 {
            slow.sample(30 * MS);
        }
        assert_eq!(
            slow.witnessed_stall_bound(200 * MS),
            slow.stall_bound(200 * MS) / 2
        );
    }

    #[test]
    fn one_slow_answer_lengthens_the_bound_at_once() {
        let mut rtt = RoundTrip::default();
        for _ in 0..50 {
            rtt.sample(MS);
        }
        let before = rtt.stall_bound(200 * MS);
        rtt.sample(30 * MS);
        assert!(rtt.stall_bound(200 * MS) > before + 20 * MS, "{rtt:?}");
    }
}
