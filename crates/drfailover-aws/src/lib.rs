//! The AWS side of drfailover, in one place:
//!
//! - [`CredentialChain`]: the one credential chain (environment, shared files and profile,
//!   ECS/EKS container endpoint, EC2 instance metadata IMDSv2), cached and renewed before the
//!   keys expire ([`credentials`], [`metadata`], [`chain`]);
//! - [`AwsClient`]: SigV4-signed requests (`aws-sigv4`) over `ureq`, each attempt bounded,
//!   throttling and 5xx retried with jittered backoff inside a deadline ([`retry`]);
//! - [`secrets`]: database credentials from Secrets Manager (`GetSecretValue`);
//! - [`rds_iam`]: RDS IAM authentication tokens, generated locally.
//!
//! Used by the announcers (Route 53, SNS) and by the client library's logins. Blocking I/O,
//! no async runtime, no thread of its own. Secrets, keys and tokens never appear in `Debug`,
//! `Display`, errors or logs.

pub mod chain;
mod client;
pub mod credentials;
mod error;
mod identity;
pub mod metadata;
pub mod rds_iam;
pub mod retry;
pub mod secrets;

pub use chain::CredentialChain;
pub use client::{child_text, parse_error, xml_escape, ApiError, AwsClient};
pub use error::AwsError;
