//! When a failing fence command may run again: jittered exponential backoff (1 s doubling
//! to 60 s), so a STONITH that keeps failing is not run every round. Pure: the clock and the
//! random draw are parameters.

use std::time::{Duration, Instant};

use drfailover_dns::retry::RetryPolicy;

/// Waits between runs of a failing fence command: 1 s doubling to 60 s (before jitter).
const POLICY: RetryPolicy = RetryPolicy {
    attempts: u32::MAX,
    per_attempt: Duration::MAX,
    base_delay: Duration::from_secs(1),
    max_delay: Duration::from_secs(60),
};

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

    /// A run failed at `now`; `jitter` in `[0, 1)` scales the wait to 50–150 %. Returns the
    /// wait before the next run.
    pub fn failed(&mut self, now: Instant, jitter: f64) -> Duration {
        self.failures += 1;
        let wait = POLICY
            .backoff(self.failures)
            .mul_f64(0.5 + jitter.clamp(0.0, 1.0));
        self.next = Some(now + wait);
        wait
    }

    /// A run succeeded: the next failure starts from 1 s again.
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
    fn waits_double_up_to_a_minute_and_reset_on_success() {
        let t0 = Instant::now();
        let mut r = FenceRetry::default();
        assert!(r.may_run(t0));
        let waits: Vec<Duration> = (0..8).map(|_| r.failed(t0, 0.5)).collect();
        assert_eq!(waits[0], Duration::from_secs(1));
        assert_eq!(waits[1], Duration::from_secs(2));
        assert_eq!(waits[7], Duration::from_secs(60));
        assert!(!r.may_run(t0 + Duration::from_secs(59)));
        assert!(r.may_run(t0 + Duration::from_secs(60)));
        assert_eq!(r.failures(), 8);
        assert_eq!(r.failed(t0, 0.0), Duration::from_secs(30));
        r.succeeded();
        assert!(r.may_run(t0));
        assert_eq!(
            r.failed(t0, 0.999_999),
            Duration::from_secs(1).mul_f64(1.499_999)
        );
    }
}
