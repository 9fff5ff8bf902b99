//! Retry rules: what to do after a statement failed, and backoff with full jitter. Pure.

use std::time::Duration;

use drfailover_mysql::{ErrorClass, QueryFailure};
pub use drfailover_notify::backoff::Backoff;

/// What the client does after a failed statement.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RetryDecision {
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
) -> RetryDecision {
    match failure {
        QueryFailure::NotSent(e) => match e.class() {
            ErrorClass::ConnectionLost | ErrorClass::Timeout => RetryDecision::RetryNotExecuted,
            _ => RetryDecision::Fail,
        },
        QueryFailure::Sent(e) => match e.class() {
            ErrorClass::ConnectionLost | ErrorClass::Timeout => {
                if idempotent && !already_retried_after_send {
                    RetryDecision::RetryIdempotent
                } else {
                    RetryDecision::OutcomeUnknown
                }
            }
            ErrorClass::ReadOnly => RetryDecision::RetryReadOnly,
            _ => RetryDecision::Fail,
        },
    }
}

/// The pause rule for retrying a statement on the new writer: the workspace's one backoff
/// (full jitter), from 2 ms up to 500 ms.
pub const STATEMENT_BACKOFF: Backoff =
    Backoff::new(Duration::from_millis(2), Duration::from_millis(500));

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
            RetryDecision::RetryNotExecuted
        );
    }

    #[test]
    fn sent_then_lost_is_outcome_unknown_unless_idempotent_once() {
        let f = QueryFailure::Sent(lost());
        assert_eq!(verdict(&f, false, false), RetryDecision::OutcomeUnknown);
        assert_eq!(verdict(&f, true, false), RetryDecision::RetryIdempotent);
        assert_eq!(verdict(&f, true, true), RetryDecision::OutcomeUnknown);
    }

    #[test]
    fn read_only_rejection_is_retried_and_sql_errors_are_not() {
        let ro = Error::from_server(1290, "HY000", "read-only");
        assert_eq!(
            verdict(&QueryFailure::Sent(ro), false, false),
            RetryDecision::RetryReadOnly
        );
        let sql = Error::from_server(1064, "42000", "syntax");
        assert_eq!(
            verdict(&QueryFailure::Sent(sql), true, false),
            RetryDecision::Fail
        );
        let dl = Error::from_server(1213, "40001", "deadlock");
        assert_eq!(
            verdict(&QueryFailure::Sent(dl), false, false),
            RetryDecision::Fail
        );
    }

    #[test]
    fn statement_backoff_grows_to_the_cap_and_jitters_below_it() {
        let b = STATEMENT_BACKOFF;
        assert_eq!(b.ceiling(0), Duration::from_millis(2));
        assert_eq!(b.ceiling(3), Duration::from_millis(16));
        assert_eq!(b.ceiling(30), Duration::from_millis(500));
        let delays: Vec<_> = (0..100).map(|_| b.delay(10)).collect();
        assert!(delays.iter().all(|d| *d <= Duration::from_millis(500)));
        let distinct: std::collections::HashSet<_> = delays.iter().collect();
        assert!(distinct.len() > 50, "not jittered");
    }
}
