//! When the program's own statements say the writer should be probed now: statements are in
//! flight and none has completed for longer than the writer's stall bound (see [`super::stall`]).
//! Pure and clock-injected; the monitor reads the gauge ([`crate::activity`]) and passes it in.
//!
//! - While statements run, or some completed since the last look, the gauge is looked at
//!   again within half a stall bound (at most two wake-ups per bound; a stop is seen within
//!   1.5 bounds of the last completion). With nothing in flight and nothing
//!   completed since the last look, no extra wake-up is asked for.
//! - Statements in flight and no completion for a stall bound: probe the writer now (unless a
//!   probe of it already runs: that probe is the witness), and the other endpoints too (a node
//!   promoted meanwhile is then already known writable when the writer's probe stalls). The
//!   stall rule then decides, on the combined evidence: that probe (or the one already
//!   running) unanswered for half a stall bound makes the writer stalled
//!   ([`super::stall::RoundTrip::witnessed_stall_bound`]); one answered in time (a
//!   legitimately long statement) changes nothing.
//! - At most one such probe per quiet spell: after it, nothing more is asked until a statement
//!   completes or none is in flight; the writer's normal probe schedule runs meanwhile. A long
//!   report query thus costs at most one extra probe.

use std::time::{Duration, Instant};

use crate::activity::Reading;

/// What the gauge's latest look asks of the monitor.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Look {
    /// The statements have just made no progress for a whole stall bound (once per quiet
    /// spell): the writer's running probe, or the one asked for now, confirms a stall in half
    /// a bound.
    pub stuck: bool,
    /// Probe the writer now.
    pub probe_now: bool,
    /// Look at the gauge again by then (`None`: no extra wake-up).
    pub next_look: Option<Instant>,
}

/// The progress of the program's statements, as seen by successive looks at the gauge.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Witness {
    /// The completion count at the last look (`None` before the first).
    completed: Option<u32>,
    /// When a look last saw progress (a completion, or nothing in flight).
    progress_at: Instant,
    /// The probe of this quiet spell was asked for (or one was already running).
    asked: bool,
}

impl Witness {
    pub fn new(now: Instant) -> Witness {
        Witness {
            completed: None,
            progress_at: now,
            asked: false,
        }
    }

    /// Look at `reading` at `now`. `bound`: the writer's stall bound; `probe_running`: a probe
    /// of the writer is outstanding. O(1).
    pub fn look(
        &mut self,
        reading: Reading,
        now: Instant,
        bound: Duration,
        probe_running: bool,
    ) -> Look {
        let completed_since = self.completed.is_some_and(|c| c != reading.completed);
        if self.completed.is_none() || completed_since || reading.in_flight == 0 {
            self.completed = Some(reading.completed);
            self.progress_at = now;
            self.asked = false;
            let active = completed_since || reading.in_flight > 0;
            return Look {
                stuck: false,
                probe_now: false,
                next_look: active.then(|| now + bound / 2),
            };
        }
        if self.asked {
            return Look {
                stuck: false,
                probe_now: false,
                next_look: None,
            };
        }
        let quiet_until = self.progress_at + bound;
        if now < quiet_until {
            return Look {
                stuck: false,
                probe_now: false,
                next_look: Some(quiet_until),
            };
        }
        self.asked = true;
        Look {
            stuck: true,
            probe_now: !probe_running,
            next_look: None,
        }
    }

    /// Forget the current spell (the writer changed or is gone): the next look starts afresh.
    pub fn reset(&mut self, now: Instant) {
        self.progress_at = now;
        self.asked = false;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);
    const BOUND: Duration = Duration::from_millis(20);

    fn reading(in_flight: u32, completed: u32) -> Reading {
        Reading {
            in_flight,
            completed,
        }
    }

    #[test]
    fn statements_in_flight_without_progress_for_a_bound_ask_for_a_probe_now() {
        let t = Instant::now();
        let mut w = Witness::new(t);
        let look = w.look(reading(4, 10), t, BOUND, false);
        assert_eq!(
            look,
            Look {
                stuck: false,
                probe_now: false,
                next_look: Some(t + BOUND / 2)
            }
        );
        let look = w.look(reading(4, 10), t + 5 * MS, BOUND, false);
        assert_eq!(
            look.next_look,
            Some(t + BOUND),
            "looks again when the bound is up"
        );
        assert!(!look.probe_now);
        let look = w.look(reading(4, 10), t + BOUND, BOUND, false);
        assert!(look.probe_now && look.stuck, "{look:?}");
        assert_eq!(look.next_look, None);
    }

    #[test]
    fn statements_that_keep_completing_never_ask_for_a_probe() {
        let t = Instant::now();
        let mut w = Witness::new(t);
        for step in 0..100u32 {
            let now = t + BOUND * step;
            let look = w.look(reading(4, step), now, BOUND, false);
            assert!(!look.probe_now, "step {step}");
            assert_eq!(look.next_look, Some(now + BOUND / 2), "step {step}");
        }
    }

    #[test]
    fn a_long_statement_answered_in_time_costs_one_probe_per_quiet_spell() {
        let t = Instant::now();
        let mut w = Witness::new(t);
        w.look(reading(1, 7), t, BOUND, false);
        let mut probes = 0;
        for step in 1..=500u32 {
            let look = w.look(reading(1, 7), t + step * MS, BOUND, false);
            probes += u32::from(look.probe_now);
            if probes > 0 {
                assert_eq!(look.next_look, None, "no extra wake-up after the probe");
            }
        }
        assert_eq!(probes, 1, "one probe for one quiet spell");
        // It completes; a new long statement starts a new spell: one more probe at most.
        let later = t + 600 * MS;
        assert!(!w.look(reading(1, 8), later, BOUND, false).probe_now);
        let mut more = 0;
        for step in 1..=500u32 {
            more += u32::from(
                w.look(reading(1, 8), later + step * MS, BOUND, false)
                    .probe_now,
            );
        }
        assert_eq!(more, 1);
    }

    #[test]
    fn nothing_in_flight_asks_for_no_extra_wake_up() {
        let t = Instant::now();
        let mut w = Witness::new(t);
        for step in 0..100u32 {
            let look = w.look(reading(0, 3), t + step * BOUND, BOUND, false);
            assert_eq!(
                look,
                Look {
                    stuck: false,
                    probe_now: false,
                    next_look: None
                },
                "step {step}"
            );
        }
    }

    #[test]
    fn statements_finished_since_the_last_look_keep_the_looks_going() {
        let t = Instant::now();
        let mut w = Witness::new(t);
        w.look(reading(0, 3), t, BOUND, false);
        let look = w.look(reading(0, 9), t + 50 * MS, BOUND, false);
        assert_eq!(
            look.next_look,
            Some(t + 50 * MS + BOUND / 2),
            "an active program is watched"
        );
        let look = w.look(reading(0, 9), t + 70 * MS, BOUND, false);
        assert_eq!(look.next_look, None, "an idle one is not");
    }

    #[test]
    fn a_probe_already_running_is_the_witness() {
        let t = Instant::now();
        let mut w = Witness::new(t);
        w.look(reading(2, 1), t, BOUND, true);
        let look = w.look(reading(2, 1), t + BOUND, BOUND, true);
        assert_eq!(
            look,
            Look {
                stuck: true,
                probe_now: false,
                next_look: None
            }
        );
        assert!(!w.look(reading(2, 1), t + 3 * BOUND, BOUND, false).probe_now);
    }

    #[test]
    fn the_bound_is_counted_from_the_last_progress_seen() {
        let t = Instant::now();
        let mut w = Witness::new(t);
        w.look(reading(3, 1), t, BOUND, false);
        w.look(reading(3, 2), t + 15 * MS, BOUND, false);
        assert!(!w.look(reading(3, 2), t + 30 * MS, BOUND, false).probe_now);
        assert!(w.look(reading(3, 2), t + 35 * MS, BOUND, false).probe_now);
    }
}
