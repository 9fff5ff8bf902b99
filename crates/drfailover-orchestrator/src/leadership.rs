//! When an orchestrator that is not the leader gives its locks back (docs/ARCHITECTURE.md,
//! "Orchestrator"). Leadership is the lock held on a majority of the nodes; every orchestrator
//! takes whatever lock is free each round. With a primary gone, two orchestrators can each hold
//! a minority (one lock each of the two replicas) and neither would ever lead: no failover.
//! So an orchestrator that holds some locks but no majority for [`MINORITY_ROUNDS`] rounds in a
//! row releases them all and takes none for a random time between one and three probe
//! intervals (different for each orchestrator, so one of them gathers the majority). A leader
//! never releases. Pure and clock-injected; the daemon closes the lock sessions.

use std::time::{Duration, Instant};

/// Rounds in a row with a minority of the locks before they are released.
pub const MINORITY_ROUNDS: u32 = 2;

/// The yielding state of one orchestrator.
#[derive(Clone, Debug, Default)]
pub struct Leadership {
    minority_rounds: u32,
    hold_off_until: Option<Instant>,
}

/// What to do after a round.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LockAction {
    /// Keep what is held; take what is free next round.
    Keep,
    /// Release every lock now and take none until the given instant.
    ReleaseUntil(Instant),
}

impl Leadership {
    /// Whether this round may take locks (`false` while holding off). Cheap.
    pub fn may_take(&self, now: Instant) -> bool {
        self.hold_off_until.is_none_or(|until| now >= until)
    }

    /// A round ended holding `held` of `nodes` locks (`leader`: a majority). `jitter` in
    /// `[0, 1)` picks the hold-off within one to three `interval`s. Cheap.
    pub fn after_round(
        &mut self,
        held: usize,
        nodes: usize,
        leader: bool,
        now: Instant,
        interval: Duration,
        jitter: f64,
    ) -> LockAction {
        if leader || held == 0 || held * 2 > nodes {
            self.minority_rounds = 0;
            return LockAction::Keep;
        }
        self.minority_rounds += 1;
        if self.minority_rounds < MINORITY_ROUNDS {
            return LockAction::Keep;
        }
        self.minority_rounds = 0;
        let until = now + interval.mul_f64(1.0 + 2.0 * jitter.clamp(0.0, 1.0));
        self.hold_off_until = Some(until);
        LockAction::ReleaseUntil(until)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INTERVAL: Duration = Duration::from_millis(200);

    #[test]
    fn a_leader_and_an_orchestrator_without_locks_keep_going() {
        let mut l = Leadership::default();
        let t = Instant::now();
        for i in 0..5 {
            let now = t + INTERVAL * i;
            assert_eq!(
                l.after_round(2, 3, true, now, INTERVAL, 0.5),
                LockAction::Keep
            );
            assert_eq!(
                l.after_round(0, 3, false, now, INTERVAL, 0.5),
                LockAction::Keep
            );
            assert!(l.may_take(now));
        }
    }

    #[test]
    fn a_minority_held_for_two_rounds_is_released_and_not_retaken_during_the_hold_off() {
        let mut l = Leadership::default();
        let t = Instant::now();
        assert_eq!(
            l.after_round(1, 3, false, t, INTERVAL, 0.0),
            LockAction::Keep
        );
        let second = t + INTERVAL;
        let LockAction::ReleaseUntil(until) = l.after_round(1, 3, false, second, INTERVAL, 0.5)
        else {
            panic!("a minority held for two rounds is released");
        };
        assert_eq!(until, second + INTERVAL * 2);
        assert!(!l.may_take(second));
        assert!(!l.may_take(until - Duration::from_millis(1)));
        assert!(l.may_take(until));
    }

    #[test]
    fn a_minority_interrupted_by_leadership_starts_counting_again() {
        let mut l = Leadership::default();
        let t = Instant::now();
        assert_eq!(
            l.after_round(1, 3, false, t, INTERVAL, 0.0),
            LockAction::Keep
        );
        assert_eq!(
            l.after_round(3, 3, true, t, INTERVAL, 0.0),
            LockAction::Keep
        );
        assert_eq!(
            l.after_round(1, 3, false, t, INTERVAL, 0.0),
            LockAction::Keep
        );
    }

    #[test]
    fn half_of_an_even_topology_is_a_minority() {
        let mut l = Leadership::default();
        let t = Instant::now();
        l.after_round(2, 4, false, t, INTERVAL, 0.0);
        assert!(matches!(
            l.after_round(2, 4, false, t, INTERVAL, 0.0),
            LockAction::ReleaseUntil(_)
        ));
    }

    #[test]
    fn the_hold_off_stays_within_one_to_three_intervals_whatever_the_jitter() {
        let t = Instant::now();
        for jitter in [-1.0, 0.0, 0.3, 0.999, 5.0] {
            let mut l = Leadership::default();
            l.after_round(1, 3, false, t, INTERVAL, jitter);
            let LockAction::ReleaseUntil(until) = l.after_round(1, 3, false, t, INTERVAL, jitter)
            else {
                panic!("released");
            };
            let hold = until - t;
            assert!(
                hold >= INTERVAL && hold <= INTERVAL * 3,
                "{hold:?} for {jitter}"
            );
        }
    }
}
