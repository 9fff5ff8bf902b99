//! Why an invocation failed. Every variant is returned to the Lambda runtime (so Lambda
//! retries the event and its dead-letter queue sees the last failure); none holds a secret.

use drfailover_dns::AnnounceError;

use crate::policy::Refusal;

/// Why the function could not do its job.
#[derive(Debug, thiserror::Error)]
pub enum LambdaError {
    /// The environment variables are missing or wrong (named in the message).
    #[error("configuration: {0}")]
    Config(String),
    /// The event is not an EventBridge event this function can read.
    #[error("malformed event: {0}")]
    MalformedEvent(String),
    /// The record sets in Route 53 are not the configured failover pair.
    #[error("route53 record sets: {0}")]
    RecordSets(String),
    /// An AWS API failed (after its retries, inside the deadline); `step` names what the
    /// function was doing.
    #[error("{step}: {source}")]
    Aws {
        /// What the function was doing (`DescribeDBInstances db1`, `swap the record pair`).
        step: String,
        /// The API error.
        source: AnnounceError,
    },
    /// The function refused to point DNS at the secondary.
    #[error("{0}")]
    Refused(Refusal),
}

impl LambdaError {
    /// A short name of the kind of failure, for the SNS message's attributes.
    pub fn kind(&self) -> &'static str {
        match self {
            LambdaError::Config(_) => "configuration",
            LambdaError::MalformedEvent(_) => "malformed-event",
            LambdaError::RecordSets(_) => "record-sets",
            LambdaError::Aws { .. } => "aws-api",
            LambdaError::Refused(_) => "refused",
        }
    }
}
