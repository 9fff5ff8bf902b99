//! Retry pauses: exponential backoff with full jitter and a cap, the one rule every retry
//! loop of the workspace uses (statement retries and down endpoints in the client, webhooks,
//! the announcers). Retry `n` (0-based) waits a uniform random time in
//! `[0, min(cap, base × 2^n)]`, so many clients or orchestrators retrying together spread out
//! instead of hammering a server in lock-step.

use std::time::Duration;

use rand::Rng;

/// An exponential backoff with full jitter. `Copy`; every method is O(1) and never blocks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// The ceiling of the first retry's pause.
    pub base: Duration,
    /// The largest ceiling.
    pub cap: Duration,
}

impl Backoff {
    /// A backoff from `base`, doubling up to `cap`.
    pub const fn new(base: Duration, cap: Duration) -> Backoff {
        Backoff { base, cap }
    }

    /// The ceiling of retry `n` (0-based): `min(cap, base × 2^n)`.
    pub fn ceiling(&self, retry: u32) -> Duration {
        let factor = 1u32.checked_shl(retry.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// The pause before retry `n`: uniform in `[0, ceiling(n)]` (a thread-local random draw).
    pub fn delay(&self, retry: u32) -> Duration {
        full_jitter(self.ceiling(retry))
    }

    /// The pause before retry `n` for a draw `unit` in `[0, 1]` (clamped): `ceiling(n) ×
    /// unit`. For callers that inject the randomness (tests, pure state machines).
    pub fn delay_for(&self, retry: u32, unit: f64) -> Duration {
        self.ceiling(retry).mul_f64(unit.clamp(0.0, 1.0))
    }
}

/// A uniform random duration in `[0, ceiling]`: the jitter of [`Backoff::delay`].
pub fn full_jitter(ceiling: Duration) -> Duration {
    let nanos = rand::thread_rng().gen_range(0..=ceiling.as_nanos().min(u64::MAX as u128) as u64);
    Duration::from_nanos(nanos)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceilings_double_up_to_the_cap() {
        let b = Backoff::new(Duration::from_millis(2), Duration::from_millis(500));
        assert_eq!(b.ceiling(0), Duration::from_millis(2));
        assert_eq!(b.ceiling(3), Duration::from_millis(16));
        assert_eq!(b.ceiling(8), Duration::from_millis(500));
        assert_eq!(b.ceiling(u32::MAX), Duration::from_millis(500));
    }

    #[test]
    fn pauses_are_spread_over_the_whole_range_below_the_ceiling() {
        let b = Backoff::new(Duration::from_millis(2), Duration::from_millis(500));
        let pauses: Vec<Duration> = (0..400).map(|_| b.delay(10)).collect();
        assert!(pauses.iter().all(|p| *p <= Duration::from_millis(500)));
        assert!(pauses.iter().any(|p| *p < Duration::from_millis(100)));
        assert!(pauses.iter().any(|p| *p > Duration::from_millis(400)));
        assert_eq!(b.delay_for(10, 0.5), Duration::from_millis(250));
        assert_eq!(b.delay_for(10, 7.0), Duration::from_millis(500));
    }
}
