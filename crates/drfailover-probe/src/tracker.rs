//! Per-endpoint health state machine with Route 53 semantics. Pure: the caller passes `now`.

use std::time::{Duration, Instant};

use crate::OutcomeClass;

/// Thresholds and intervals of a [`HealthTracker`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TrackerConfig {
    /// Time between probes of a healthy (or down) endpoint.
    pub interval: Duration,
    /// Time between probes of a suspect endpoint (after a failure).
    pub suspect_interval: Duration,
    /// Consecutive soft failures (timeouts, …) that take an endpoint down.
    pub fall: u32,
    /// Consecutive successes that bring a down endpoint back up.
    pub rise: u32,
}

impl Default for TrackerConfig {
    /// 200 ms interval, 3 failures down, 2 successes up: with 200 ms probe deadlines a
    /// silent node is declared down within about 1 s.
    fn default() -> Self {
        TrackerConfig {
            interval: Duration::from_millis(200),
            suspect_interval: Duration::from_millis(10),
            fall: 3,
            rise: 2,
        }
    }
}

/// An endpoint's health.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Health {
    /// Not probed yet.
    Unknown,
    /// Answering.
    Up,
    /// A failure was seen; probed again quickly; still counted as up for routing.
    Suspect,
    /// Declared down.
    Down,
}

impl Health {
    /// Stable lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            Health::Unknown => "unknown",
            Health::Up => "up",
            Health::Suspect => "suspect",
            Health::Down => "down",
        }
    }
}

/// A change of [`Health`] caused by an observation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Transition {
    /// State before.
    pub from: Health,
    /// State after.
    pub to: Health,
    /// The outcome that caused it.
    pub cause: OutcomeClass,
}

/// Health of one endpoint. Cheap (`Copy`-sized); all methods are O(1) and never block.
#[derive(Clone, Debug)]
pub struct HealthTracker {
    config: TrackerConfig,
    state: Health,
    failures: u32,
    successes: u32,
    next_probe: Instant,
}

impl HealthTracker {
    /// A tracker in state `Unknown`, due for a probe at `now`.
    pub fn new(config: TrackerConfig, now: Instant) -> Self {
        HealthTracker {
            config,
            state: Health::Unknown,
            failures: 0,
            successes: 0,
            next_probe: now,
        }
    }

    /// Current state.
    pub fn state(&self) -> Health {
        self.state
    }

    /// When the next probe is due.
    pub fn next_probe_at(&self) -> Instant {
        self.next_probe
    }

    /// Failed observations in a row since the last success (0 after a success). O(1).
    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }

    /// Whether routing may use the endpoint (`Up` or `Suspect`).
    pub fn is_usable(&self) -> bool {
        matches!(self.state, Health::Up | Health::Suspect)
    }

    /// Feed one probe result observed at `now`.
    pub fn observe(&mut self, class: OutcomeClass, now: Instant) -> Option<Transition> {
        let from = self.state;
        if class.is_alive() {
            self.failures = 0;
            self.successes = self.successes.saturating_add(1);
            self.state = match from {
                Health::Unknown | Health::Up | Health::Suspect => Health::Up,
                Health::Down if self.successes >= self.config.rise => Health::Up,
                Health::Down => Health::Down,
            };
        } else {
            self.successes = 0;
            self.failures = self.failures.saturating_add(1);
            let down = class.is_hard_failure() || self.failures >= self.config.fall;
            self.state = if down || from == Health::Down {
                Health::Down
            } else {
                Health::Suspect
            };
        }
        self.next_probe = now
            + match self.state {
                Health::Suspect => self.config.suspect_interval,
                _ => self.config.interval,
            };
        self.transition(from, class)
    }

    /// Application traffic saw a hard failure (refused, connection lost) on this endpoint:
    /// become `Suspect` at once and make a probe due now. The probe decides whether it is down.
    pub fn report_hard_failure(&mut self, now: Instant) -> Option<Transition> {
        let from = self.state;
        if matches!(from, Health::Up | Health::Unknown) {
            self.state = Health::Suspect;
        }
        self.next_probe = now;
        self.transition(from, OutcomeClass::ConnectionLost)
    }

    fn transition(&self, from: Health, cause: OutcomeClass) -> Option<Transition> {
        (from != self.state).then_some(Transition {
            from,
            to: self.state,
            cause,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tracker() -> (HealthTracker, Instant) {
        let now = Instant::now();
        (HealthTracker::new(TrackerConfig::default(), now), now)
    }

    #[test]
    fn first_success_is_up() {
        let (mut t, now) = tracker();
        let tr = t.observe(OutcomeClass::Up, now).unwrap();
        assert_eq!((tr.from, tr.to), (Health::Unknown, Health::Up));
        assert_eq!(t.next_probe_at(), now + Duration::from_millis(200));
    }

    #[test]
    fn timeouts_go_down_after_fall_consecutive_failures() {
        let (mut t, now) = tracker();
        t.observe(OutcomeClass::Up, now);
        assert_eq!(
            t.observe(OutcomeClass::TimedOut, now).unwrap().to,
            Health::Suspect
        );
        assert_eq!(t.next_probe_at(), now + Duration::from_millis(10));
        assert!(t.is_usable());
        assert_eq!(t.observe(OutcomeClass::TimedOut, now), None);
        let tr = t.observe(OutcomeClass::TimedOut, now).unwrap();
        assert_eq!((tr.to, tr.cause), (Health::Down, OutcomeClass::TimedOut));
        assert!(!t.is_usable());
    }

    #[test]
    fn a_success_resets_the_failure_count() {
        let (mut t, now) = tracker();
        t.observe(OutcomeClass::Up, now);
        t.observe(OutcomeClass::TimedOut, now);
        t.observe(OutcomeClass::TimedOut, now);
        t.observe(OutcomeClass::Up, now);
        t.observe(OutcomeClass::TimedOut, now);
        t.observe(OutcomeClass::TimedOut, now);
        assert_eq!(t.state(), Health::Suspect);
    }

    #[test]
    fn refused_is_down_at_once() {
        let (mut t, now) = tracker();
        t.observe(OutcomeClass::Up, now);
        assert_eq!(
            t.observe(OutcomeClass::Refused, now).unwrap().to,
            Health::Down
        );
    }

    #[test]
    fn down_needs_rise_successes_to_come_back() {
        let (mut t, now) = tracker();
        t.observe(OutcomeClass::Refused, now);
        assert_eq!(t.observe(OutcomeClass::Up, now), None);
        assert_eq!(t.state(), Health::Down);
        assert_eq!(
            t.observe(OutcomeClass::ReadOnly, now).unwrap().to,
            Health::Up
        );
    }

    #[test]
    fn hard_failure_from_traffic_makes_suspect_and_probe_due_now() {
        let (mut t, now) = tracker();
        t.observe(OutcomeClass::Up, now);
        let later = now + Duration::from_millis(50);
        assert_eq!(t.report_hard_failure(later).unwrap().to, Health::Suspect);
        assert_eq!(t.next_probe_at(), later);
        assert_eq!(
            t.observe(OutcomeClass::Refused, later).unwrap().to,
            Health::Down
        );
    }
}
