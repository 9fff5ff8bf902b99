//! Bounded retries with the workspace's one backoff (exponential, full jitter, capped:
//! [`drfailover_notify::backoff`]), kept inside a deadline. Pure: the clock and the random
//! draw are parameters.

use std::time::{Duration, Instant};

use drfailover_notify::backoff::Backoff;

/// How many attempts, how long each may take, and how long to wait between them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RetryPolicy {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// The longest one attempt may take (cut shorter by the deadline).
    pub per_attempt: Duration,
    /// The wait after the first failure; doubled after each further one.
    pub base_delay: Duration,
    /// The longest wait between two attempts.
    pub max_delay: Duration,
}

impl RetryPolicy {
    /// The ceiling of the wait after `failed` attempts (≥ 1): `base × 2^(failed−1)`, capped.
    pub fn backoff(&self, failed: u32) -> Duration {
        Backoff::new(self.base_delay, self.max_delay).ceiling(failed.saturating_sub(1))
    }

    /// After `failed` failed attempts at `now`: the wait before the next attempt, or `None`
    /// when no attempt is left or the next one could not start before `deadline`. `jitter` in
    /// `[0, 1]` picks the wait in `[0, backoff]` (full jitter) so that two racing clients do
    /// not retry in step.
    pub fn next_delay(
        &self,
        failed: u32,
        now: Instant,
        deadline: Instant,
        jitter: f64,
    ) -> Option<Duration> {
        if failed >= self.attempts.max(1) {
            return None;
        }
        let delay = Backoff::new(self.base_delay, self.max_delay)
            .delay_for(failed.saturating_sub(1), jitter);
        // Leave the next attempt at least a few milliseconds of its own.
        (now + delay + Duration::from_millis(5) < deadline).then_some(delay)
    }

    /// How long the attempt starting at `now` may take: `per_attempt`, cut at `deadline`.
    /// `None` when the deadline has passed.
    pub fn attempt_budget(&self, now: Instant, deadline: Instant) -> Option<Duration> {
        let left = deadline.checked_duration_since(now)?;
        (!left.is_zero()).then(|| left.min(self.per_attempt))
    }
}

/// What one attempt came to; `E` is the caller's error type.
#[derive(Debug)]
pub enum AttemptOutcome<T, E = crate::AwsError> {
    /// Done: the value.
    Done(T),
    /// Failed for good: not retried.
    Fail(E),
    /// Worth another attempt: (reason, whether it was a timeout or socket error).
    Retry(String, bool),
}

/// Why [`run`] gave up after retryable failures.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Exhausted {
    /// The server, as given to [`run`].
    pub target: String,
    /// Attempts made.
    pub attempts: u32,
    /// Time spent.
    pub elapsed: Duration,
    /// The last attempt's failure.
    pub last: String,
    /// Whether the last failure was a timeout or socket error (else an error reply).
    pub network: bool,
}

impl From<Exhausted> for crate::AwsError {
    fn from(e: Exhausted) -> Self {
        if e.network {
            crate::AwsError::Timeout {
                target: e.target,
                attempts: e.attempts,
                elapsed: e.elapsed,
                last: e.last,
            }
        } else {
            crate::AwsError::Server {
                target: e.target,
                reason: format!("{} after {} attempt(s)", e.last, e.attempts),
            }
        }
    }
}

/// Run `attempt` (given its time budget) under `policy` until it is done, fails for good, or
/// the attempts or `deadline` run out; returns the value and the attempts made. `target`
/// names the server in errors. Blocks (sleeps between attempts) until `deadline` at most.
pub fn run<T, E: From<Exhausted>>(
    policy: &RetryPolicy,
    target: &str,
    deadline: Instant,
    mut attempt: impl FnMut(Duration) -> AttemptOutcome<T, E>,
) -> Result<(T, u32), E> {
    let started = Instant::now();
    let mut failed = 0u32;
    let mut last = ("deadline passed before the first attempt".to_string(), true);
    while let Some(budget) = policy.attempt_budget(Instant::now(), deadline) {
        match attempt(budget) {
            AttemptOutcome::Done(value) => return Ok((value, failed + 1)),
            AttemptOutcome::Fail(error) => return Err(error),
            AttemptOutcome::Retry(reason, network) => {
                failed += 1;
                log::debug!("{target}: attempt {failed} failed: {reason}");
                last = (reason, network);
            }
        }
        match policy.next_delay(failed, Instant::now(), deadline, jitter()) {
            Some(delay) => std::thread::sleep(delay),
            None => break,
        }
    }
    let (reason, network) = last;
    Err(E::from(Exhausted {
        target: target.to_string(),
        attempts: failed,
        elapsed: started.elapsed(),
        last: reason,
        network,
    }))
}

/// A uniform draw in `[0, 1)` for [`RetryPolicy::next_delay`].
pub fn jitter() -> f64 {
    rand::random::<f64>()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 4,
            per_attempt: Duration::from_secs(1),
            base_delay: Duration::from_millis(100),
            max_delay: Duration::from_millis(300),
        }
    }

    #[test]
    fn backoff_doubles_and_caps() {
        let p = policy();
        assert_eq!(p.backoff(1), Duration::from_millis(100));
        assert_eq!(p.backoff(2), Duration::from_millis(200));
        assert_eq!(p.backoff(3), Duration::from_millis(300));
        assert_eq!(p.backoff(30), Duration::from_millis(300));
    }

    #[test]
    fn stops_at_attempts_and_deadline() {
        let p = policy();
        let now = Instant::now();
        let far = now + Duration::from_secs(60);
        assert_eq!(
            p.next_delay(1, now, far, 1.0),
            Some(Duration::from_millis(100))
        );
        assert_eq!(
            p.next_delay(2, now, far, 0.5),
            Some(Duration::from_millis(100))
        );
        assert_eq!(p.next_delay(1, now, far, 0.0), Some(Duration::ZERO));
        assert_eq!(p.next_delay(4, now, far, 0.5), None);
        // A wait that would end at the deadline is not taken.
        assert_eq!(
            p.next_delay(1, now, now + Duration::from_millis(90), 1.0),
            None
        );
    }

    #[test]
    fn attempt_budget_is_cut_by_deadline() {
        let p = policy();
        let now = Instant::now();
        assert_eq!(
            p.attempt_budget(now, now + Duration::from_millis(200)),
            Some(Duration::from_millis(200))
        );
        assert_eq!(
            p.attempt_budget(now, now + Duration::from_secs(5)),
            Some(Duration::from_secs(1))
        );
        assert_eq!(p.attempt_budget(now, now), None);
    }
}
