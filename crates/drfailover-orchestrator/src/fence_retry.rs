//! When a failing fence command may run again: the workspace's backoff
//! ([`drfailover_notify::backoff`], exponential with full jitter), 1 s doubling to a 60 s
//! ceiling, so a STONITH that keeps failing is not run every round. Pure: the clock and the
//! random draw are parameters.

use std::time::{Duration, Instant};

use drfailover_notify::backoff::Backoff;

/// Ceilings of the waits between runs of a failing fence command.
const BACKOFF: Backoff = Backoff::new(Duration::from_secs(1), Duration::from_secs(60));

/// Failed runs in a row and when the next may start.
#[derive(Clone, Debug, Default)]
pub struct FenceRetry {
    failures: u32,
    next: Option<Instant>,
}

impl FenceRetry {
    /// Whether the command may run at `now`.
    pub fn may_run(&self, now: Instant) -> bool {
        self.next.is_none_or(|at| now >= at)
    }

    /// A run failed at `now`; `jitter` picks the wait within a ceiling
    /// ([`drfailover_notify::backoff::full_jitter`] in production). Returns the wait before
    /// the next run and its ceiling.
    pub fn failed(
        &mut self,
        now: Instant,
        jitter: impl FnOnce(Duration) -> Duration,
    ) -> (Duration, Duration) {
        let ceiling = BACKOFF.ceiling(self.failures);
        let wait = jitter(ceiling).min(ceiling);
        self.failures += 1;
        self.next = Some(now + wait);
        (wait, ceiling)
    }

    /// A run succeeded: the next failure starts from the first ceiling again.
    pub fn succeeded(&mut self) {
        *self = FenceRetry::default();
    }

    /// Failed runs in a row.
    pub fn failures(&self) -> u32 {
        self.failures
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_a_minute_and_reset_on_success() {
        let t0 = Instant::now();
        let mut r = FenceRetry::default();
        assert!(r.may_run(t0));
        let ceilings: Vec<Duration> = (0..8).map(|_| r.failed(t0, |c| c).1).collect();
        assert_eq!(ceilings[0], Duration::from_secs(1));
        assert_eq!(ceilings[1], Duration::from_secs(2));
        assert_eq!(ceilings[7], Duration::from_secs(60));
        assert!(!r.may_run(t0 + Duration::from_secs(59)));
        assert!(r.may_run(t0 + Duration::from_secs(60)));
        assert_eq!(r.failures(), 8);
        assert_eq!(r.failed(t0, |c| c / 4).0, Duration::from_secs(15));
        r.succeeded();
        assert!(r.may_run(t0));
        assert_eq!(
            r.failed(t0, |_| Duration::MAX),
            (Duration::from_secs(1), Duration::from_secs(1))
        );
    }
}
