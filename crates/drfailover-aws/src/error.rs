//! Why an AWS call or credential lookup failed. Messages name the part at fault (the
//! endpoint, the file, the key, the ARN) and never carry a secret.
//!
//! [`AwsError`] is also the workspace's one classification of failed remote calls:
//! `drfailover-dns` files its DNS servers' failures in the same variants
//! (`AnnounceError::Call`), so a caller tells "not retried" from "retries did not clear it"
//! the same way for every announcer.

use std::time::Duration;

/// A failed AWS call (or DNS server call, in `drfailover-dns`), classified once: wrong
/// configuration or credentials, refused or rejected (not retried), no answer in time or a
/// server error retries did not clear. `Display` names the target and the cause; no variant
/// holds a secret.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AwsError {
    /// The configuration is wrong (a malformed endpoint, a missing region, …).
    #[error("configuration: {0}")]
    Config(String),
    /// Credentials could not be found, read or used.
    #[error("credentials: {0}")]
    Credentials(String),
    /// The API refused the request for these credentials (AccessDenied, HTTP 403).
    #[error("{target}: refused: {reason}")]
    Refused {
        /// The service and endpoint.
        target: String,
        /// The AWS error code.
        code: String,
        /// What the service said.
        reason: String,
    },
    /// The API rejected the request (validation error, unknown resource, …). Not retried.
    #[error("{target}: rejected: {reason}")]
    Rejected {
        /// The service and endpoint.
        target: String,
        /// The AWS error code (`ResourceNotFoundException`, `InvalidChangeBatch`, …).
        code: String,
        /// What the service said.
        reason: String,
    },
    /// No answer in time: every attempt timed out or failed on the network.
    #[error("{target}: no answer after {attempts} attempt(s) in {elapsed:?}: {last}")]
    Timeout {
        /// The service and endpoint.
        target: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last attempt's failure.
        last: String,
    },
    /// The service answered with an error that retries did not clear (throttling, HTTP 5xx),
    /// or an answer we could not use.
    #[error("{target}: {reason}")]
    Server {
        /// The service and endpoint.
        target: String,
        /// What went wrong.
        reason: String,
    },
}

impl AwsError {
    /// The error code of a refused or rejected request (`ResourceNotFoundException`, …; a
    /// DNS response code such as `REFUSED` for a DNS server).
    pub fn code(&self) -> Option<&str> {
        match self {
            AwsError::Refused { code, .. } | AwsError::Rejected { code, .. } => Some(code),
            _ => None,
        }
    }
}
