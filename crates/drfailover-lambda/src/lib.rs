//! The failover function of the AWS architecture (CloudWatch alarm → EventBridge → Lambda →
//! Route 53 + SNS), built on drfailover's own parts: it verifies the primary by asking the
//! database itself (drfailover-probe) as well as RDS, promotes the read replica when told
//! to, waits until the replica is writable, swaps the Route 53 failover record pair with a
//! compare-and-swap (drfailover-dns's Route 53 code) and publishes one SNS message saying
//! what it saw and did.
//!
//! - [`config`]: the environment variables;
//! - [`event`]: the EventBridge events accepted (alarm state changes, RDS instance events);
//! - [`policy`]: the decision, a pure function of the facts observed so far;
//! - [`handler`]: the executor: performs the steps the policy names, reports to SNS;
//! - [`rds`]: the RDS query API (`DescribeDBInstances`, `PromoteReadReplica`);
//! - [`record_pair`]: the Route 53 failover pair, read and swapped;
//! - [`report`]: the outcome's summary, the SNS subject and attributes;
//! - [`probe`]: the bounded database probe;
//! - [`logger`]: log lines on stderr (CloudWatch Logs in Lambda).
//!
//! Idempotent: the same event twice, or two invocations at once, make one promotion (RDS
//! refuses a second `PromoteReadReplica`; the function then waits for the first) and one DNS
//! change (the swap is one atomic batch that deletes the records exactly as read, so a
//! second batch is refused). Every error is returned to the runtime, never swallowed.
//!
//! The binary (`bootstrap`, for the `provided.al2023` runtime) is `src/main.rs`; deployment
//! is described in `docs/aws/README.md`.

pub mod config;
mod error;
pub mod event;
pub mod handler;
pub mod logger;
pub mod policy;
pub mod probe;
pub mod rds;
pub mod record_pair;
pub mod report;

pub use config::Config;
pub use error::LambdaError;
