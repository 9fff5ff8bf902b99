//! Why an announcement failed. Messages name the part at fault and never carry a secret.

use std::fmt;
use std::time::Duration;

/// A TSIG error the server reported (RFC 8945 §5.2): the key or the clock is wrong, not the
/// network. Never retried.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TsigFailure {
    /// BADSIG (16): the MAC did not verify — the secret differs from the server's.
    BadSig,
    /// BADKEY (17): the server does not know this key name or algorithm.
    BadKey,
    /// BADTIME (18): our clock and the server's differ by more than the fudge (300 s).
    BadTime,
    /// Another TSIG error code.
    Other(u16),
}

impl fmt::Display for TsigFailure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TsigFailure::BadSig => write!(
                f,
                "BADSIG: the server could not verify the signature (wrong secret for this key)"
            ),
            TsigFailure::BadKey => write!(
                f,
                "BADKEY: the server does not know this key name or algorithm"
            ),
            TsigFailure::BadTime => write!(
                f,
                "BADTIME: the clocks of this host and the server differ by more than the fudge"
            ),
            TsigFailure::Other(code) => write!(f, "TSIG error {code}"),
        }
    }
}

/// Why an announcer could not do its job. `Display` names the target and the cause; no variant
/// holds a secret.
#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// The configuration is wrong (a missing or malformed key, an out-of-zone name, …).
    #[error("configuration: {0}")]
    Config(String),
    /// A credential (TSIG key file, AWS credentials) could not be read or is malformed.
    #[error("credentials: {0}")]
    Credentials(String),
    /// The server rejected our TSIG signature or key.
    #[error("{target}: update rejected: {failure}")]
    Tsig {
        /// The server and key, e.g. `127.0.0.1:5300 key drfailover`.
        target: String,
        /// The TSIG error.
        failure: TsigFailure,
    },
    /// The server is not authoritative for the zone (NOTAUTH without a TSIG error): wrong
    /// server or wrong zone.
    #[error("{target}: NOTAUTH: the server is not authoritative for zone {zone}")]
    NotAuthoritative {
        /// The server.
        target: String,
        /// The zone named in the update.
        zone: String,
    },
    /// The name is not inside the zone (NOTZONE).
    #[error("{target}: NOTZONE: {name} is not within zone {zone}")]
    NotZone {
        /// The server.
        target: String,
        /// The name.
        name: String,
        /// The zone.
        zone: String,
    },
    /// The server (or API) refused the change: the policy does not grant it to this key or
    /// these credentials (REFUSED, AccessDenied).
    #[error("{target}: refused: {reason}")]
    Refused {
        /// The server or endpoint.
        target: String,
        /// What the server said.
        reason: String,
    },
    /// Compare-and-swap lost: the record no longer holds what this announcer expected, so
    /// someone else changed it. Not retried: an event to raise, not an error to repeat.
    #[error(
        "{name}: someone else changed it: expected [{}], found [{}] ({rcode}); not applied",
        expected.join(", "),
        found.join(", ")
    )]
    PrerequisiteFailed {
        /// The managed name.
        name: String,
        /// What the record had to hold for the change to apply.
        expected: Vec<String>,
        /// What it holds (read right after the refusal; empty when it has no record or the
        /// read failed).
        found: Vec<String>,
        /// The server's answer: YXRRSET, NXRRSET, NXDOMAIN, …
        rcode: String,
    },
    /// The server or API rejected the request as malformed (FORMERR, InvalidChangeBatch,
    /// a validation error). Not retried.
    #[error("{target}: rejected: {reason}")]
    Rejected {
        /// The server or endpoint.
        target: String,
        /// What it said.
        reason: String,
    },
    /// No answer in time: every attempt timed out or the deadline came first.
    #[error("{target}: no answer after {attempts} attempt(s) in {elapsed:?}: {last}")]
    Timeout {
        /// The server or endpoint.
        target: String,
        /// Attempts made.
        attempts: u32,
        /// Time spent.
        elapsed: Duration,
        /// The last attempt's failure (timeout, connection refused, …).
        last: String,
    },
    /// The server answered with an error that retries did not clear (SERVFAIL, throttling,
    /// HTTP 5xx), or an answer we could not use.
    #[error("{target}: {reason}")]
    Server {
        /// The server or endpoint.
        target: String,
        /// What went wrong.
        reason: String,
    },
}

impl AnnounceError {
    /// True for a failed compare-and-swap (someone else changed the record).
    pub fn is_conflict(&self) -> bool {
        matches!(self, AnnounceError::PrerequisiteFailed { .. })
    }
}

impl From<drfailover_aws::retry::Exhausted> for AnnounceError {
    fn from(e: drfailover_aws::retry::Exhausted) -> Self {
        drfailover_aws::AwsError::from(e).into()
    }
}

impl From<drfailover_aws::AwsError> for AnnounceError {
    fn from(e: drfailover_aws::AwsError) -> Self {
        use drfailover_aws::AwsError as A;
        match e {
            A::Config(m) => AnnounceError::Config(m),
            A::Credentials(m) => AnnounceError::Credentials(m),
            A::Refused { target, reason, .. } => AnnounceError::Refused { target, reason },
            A::Rejected { target, reason, .. } => AnnounceError::Rejected { target, reason },
            A::Timeout {
                target,
                attempts,
                elapsed,
                last,
            } => AnnounceError::Timeout {
                target,
                attempts,
                elapsed,
                last,
            },
            A::Server { target, reason } => AnnounceError::Server { target, reason },
        }
    }
}
