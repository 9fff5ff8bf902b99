//! Retry rules: what to do after a statement failed, and backoff with full jitter. Pure.

use std::time::Duration;

use drfailover_mysql::{ErrorClass, QueryFailure};
use rand::Rng;

/// What the client does after a failed statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Certainly not executed and the connection (or node) is at fault: retry on the writer,
    /// after reporting the endpoint.
    RetryNotExecuted,
    /// Sent, connection lost, statement marked idempotent and not retried yet: retry once.
    RetryIdempotent,
    /// Sent, connection lost: the outcome is unknown. Never replay.
    OutcomeUnknown,
    /// Rejected by a read-only node (fenced or demoted): not executed; retry on the new writer.
    RetryReadOnly,
    /// A real error for the caller (SQL error, lock timeout, …); the connection is fine.
    Fail,
}

/// Decide what to do after `failure`.
pub fn verdict(
    failure: &QueryFailure,
    idempotent: bool,
    already_retried_after_send: bool,
) -> Verdict {
    match failure {
        QueryFailure::NotSent(e) => match e.class() {
            ErrorClass::ConnectionLost | ErrorClass::Timeout => Verdict::RetryNotExecuted,
            _ => Verdict::Fail,
        },
        QueryFailure::Sent(e) => match e.class() {
            ErrorClass::ConnectionLost | ErrorClass::Timeout => {
                if idempotent && !already_retried_after_send {
                    Verdict::RetryIdempotent
                } else {
                    Verdict::OutcomeUnknown
                }
            }
            ErrorClass::ReadOnly => Verdict::RetryReadOnly,
            _ => Verdict::Fail,
        },
    }
}

/// Exponential backoff with full jitter: attempt `n` sleeps a uniform random time in
/// `[0, min(cap, base * 2^n)]`, so many clients retrying together spread out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Backoff {
    /// First ceiling.
    pub base: Duration,
    /// Largest ceiling.
    pub cap: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Backoff {
            base: Duration::from_millis(2),
            cap: Duration::from_millis(500),
        }
    }
}

impl Backoff {
    /// The ceiling for attempt `n` (0-based).
    pub fn ceiling(&self, attempt: u32) -> Duration {
        let factor = 1u32.checked_shl(attempt.min(20)).unwrap_or(u32::MAX);
        self.base.saturating_mul(factor).min(self.cap)
    }

    /// A jittered delay for attempt `n`.
    pub fn delay(&self, attempt: u32) -> Duration {
        let ceiling = self.ceiling(attempt);
        let nanos = rand::thread_rng().gen_range(0..=ceiling.as_nanos() as u64);
        Duration::from_nanos(nanos)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drfailover_mysql::Error;

    fn lost() -> Error {
        Error::from_server(2013, "HY000", "Lost connection")
    }

    #[test]
    fn not_sent_connection_errors_are_retried() {
        assert_eq!(
            verdict(&QueryFailure::NotSent(lost()), false, false),
            Verdict::RetryNotExecuted
        );
    }

    #[test]
    fn sent_then_lost_is_outcome_unknown_unless_idempotent_once() {
        let f = QueryFailure::Sent(lost());
        assert_eq!(verdict(&f, false, false), Verdict::OutcomeUnknown);
        assert_eq!(verdict(&f, true, false), Verdict::RetryIdempotent);
        assert_eq!(verdict(&f, true, true), Verdict::OutcomeUnknown);
    }

    #[test]
    fn read_only_rejection_is_retried_and_sql_errors_are_not() {
        let ro = Error::from_server(1290, "HY000", "read-only");
        assert_eq!(
            verdict(&QueryFailure::Sent(ro), false, false),
            Verdict::RetryReadOnly
        );
        let sql = Error::from_server(1064, "42000", "syntax");
        assert_eq!(
            verdict(&QueryFailure::Sent(sql), true, false),
            Verdict::Fail
        );
        let dl = Error::from_server(1213, "40001", "deadlock");
        assert_eq!(
            verdict(&QueryFailure::Sent(dl), false, false),
            Verdict::Fail
        );
    }

    #[test]
    fn backoff_grows_to_the_cap_and_jitters_below_it() {
        let b = Backoff::default();
        assert_eq!(b.ceiling(0), Duration::from_millis(2));
        assert_eq!(b.ceiling(3), Duration::from_millis(16));
        assert_eq!(b.ceiling(30), Duration::from_millis(500));
        let delays: Vec<_> = (0..100).map(|_| b.delay(10)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(500)));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 50, "not jittered");
    }
}
