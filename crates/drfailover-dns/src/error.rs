//! Why an announcement failed. Messages name the part at fault and never carry a secret.

use std::fmt;

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
    /// A failure every announcer classifies the same way — configuration, credentials,
    /// refused, rejected, no answer in time, a server error retries did not clear — in the
    /// workspace's one classification of failed remote calls ([`drfailover_aws::AwsError`]),
    /// for DNS servers and AWS APIs alike.
    #[error(transparent)]
    Call(#[from] drfailover_aws::AwsError),
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
        /// The DNS server's address (and the key, when one signed the update).
        target: String,
        /// The zone named in the update.
        zone: String,
    },
    /// The name is not inside the zone (NOTZONE).
    #[error("{target}: NOTZONE: {name} is not within zone {zone}")]
    NotZone {
        /// The DNS server's address (and the key, when one signed the update).
        target: String,
        /// The managed name the update was for.
        name: String,
        /// The zone the update named.
        zone: String,
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
}

impl AnnounceError {
    /// True for a failed compare-and-swap (someone else changed the record).
    pub fn is_conflict(&self) -> bool {
        matches!(self, AnnounceError::PrerequisiteFailed { .. })
    }

    /// The error code of a refused or rejected request: the AWS error code
    /// (`ResourceNotFoundException`, …) or the DNS response code (`REFUSED`, `FORMERR`, …).
    pub fn code(&self) -> Option<&str> {
        match self {
            AnnounceError::Call(e) => e.code(),
            _ => None,
        }
    }
}

impl From<drfailover_aws::retry::Exhausted> for AnnounceError {
    fn from(e: drfailover_aws::retry::Exhausted) -> Self {
        drfailover_aws::AwsError::from(e).into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use drfailover_aws::AwsError;

    #[test]
    fn the_code_of_a_refused_or_rejected_call_and_none_otherwise() {
        let rejected = AnnounceError::Call(AwsError::Rejected {
            target: "rds".into(),
            code: "DBInstanceNotFound".into(),
            reason: "DBInstanceNotFound (HTTP 404): DBInstance db9 not found".into(),
        });
        assert_eq!(rejected.code(), Some("DBInstanceNotFound"));
        assert_eq!(
            rejected.to_string(),
            "rds: rejected: DBInstanceNotFound (HTTP 404): DBInstance db9 not found"
        );
        assert_eq!(
            AnnounceError::Call(AwsError::Config("x".into())).code(),
            None
        );
        assert_eq!(
            AnnounceError::Tsig {
                target: "dns".into(),
                failure: TsigFailure::BadSig
            }
            .code(),
            None
        );
    }
}
