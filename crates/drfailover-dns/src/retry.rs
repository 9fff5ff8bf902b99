//! Bounded retries with jittered exponential backoff (the one implementation lives in
//! `drfailover-aws`), with [`crate::AnnounceError`] as the error of a failed attempt.

pub use drfailover_aws::retry::{jitter, Exhausted, RetryPolicy};

/// What one attempt came to (see [`drfailover_aws::retry::AttemptOutcome`]).
pub type AttemptOutcome<T> = drfailover_aws::retry::AttemptOutcome<T, crate::AnnounceError>;

/// Run `attempt` under `policy` until done, failed for good, or out of attempts or time (see
/// [`drfailover_aws::retry::run`]). Blocks until `deadline` at most.
pub fn run<T>(
    policy: &RetryPolicy,
    target: &str,
    deadline: std::time::Instant,
    attempt: impl FnMut(std::time::Duration) -> AttemptOutcome<T>,
) -> Result<(T, u32), crate::AnnounceError> {
    drfailover_aws::retry::run(policy, target, deadline, attempt)
}
