//! Announce a new writer after a failover: point a DNS name at it.
//!
//! An orchestrator that has promoted a node calls every configured [`Announcer`] in turn with a
//! [`WriterChange`] (the old writer, if known, and the new one). Each announcer makes the managed
//! record hold the new writer's address, bounded by a deadline, and says what it did
//! ([`AnnounceOutcome`]) or why it could not ([`AnnounceError`]). Announcers never undo or
//! block a promotion: a failure is a value the orchestrator turns into an event.
//!
//! Kinds:
//! - [`rfc2136`]: an RFC 2136 dynamic update signed with TSIG (RFC 8945, HMAC-SHA256), to BIND,
//!   Knot, PowerDNS or any primary that accepts updates. The update is a compare-and-swap: it
//!   carries a prerequisite that the record still holds the old writer's address, so of two
//!   orchestrators racing, only one applies.
//! - [`route53`]: `ChangeResourceRecordSets` UPSERT of a simple record or of a PRIMARY/SECONDARY
//!   failover pair (SetIdentifier and HealthCheckId kept), then `GetChange` until INSYNC;
//!   requests signed with SigV4 by [`aws`] (the `drfailover-aws` crate), credentials from its
//!   one chain (environment, shared files, container and instance metadata).
//!
//! With feature `sns` (on by default), [`sns::SnsPublisher`] publishes drfailover-notify events to
//! an SNS topic (configured by an `[sns]` table, [`SnsConfig`]).
//!
//! Configuration comes from the orchestrator's TOML file as `[[announce]]` tables
//! ([`AnnouncerConfig`]); [`AnnouncerConfig::build`] checks it and reads the secrets (a TSIG key
//! file as written by `tsig-keygen`). Secrets never appear in `Debug`, `Display` or errors.
//!
//! Blocking I/O on std sockets, no async runtime.

mod address;
/// The AWS client, credential chain and retries, shared with the rest of the workspace.
pub use drfailover_aws as aws;
mod config;
mod error;
pub mod retry;
pub mod rfc2136;
pub mod route53;
#[cfg(feature = "sns")]
pub mod sns;

pub use address::{AddressMap, Published};
pub use config::{AnnouncerConfig, Rfc2136Config};
pub use error::{AnnounceError, TsigFailure};
pub use route53::Route53Config;
#[cfg(feature = "sns")]
pub use sns::{SnsConfig, SnsPublisher};

use std::time::Instant;

/// A node as configured in the orchestrator: its name and its host (IP literal or DNS name).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeAddress {
    /// The node's name in the orchestrator's configuration (the key of an address map).
    pub name: String,
    /// The node's host: an IPv4 or IPv6 literal, or a DNS name.
    pub host: String,
}

impl NodeAddress {
    /// A node named `name` at `host`. Allocates two strings.
    pub fn new(name: impl Into<String>, host: impl Into<String>) -> NodeAddress {
        NodeAddress {
            name: name.into(),
            host: host.into(),
        }
    }
}

/// The change the orchestrator announces after a promotion.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WriterChange {
    /// The writer before the promotion, when the orchestrator knows it. When set, the update
    /// only applies if the record still points at it (compare-and-swap).
    pub old_writer: Option<NodeAddress>,
    /// The node just promoted: the record must point at it.
    pub new_writer: NodeAddress,
}

/// What an announcer did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AnnounceOutcome {
    /// The record now holds `published` (it held something else before).
    Changed {
        /// The record as written, e.g. `A 10.0.0.2`.
        published: String,
        /// Requests sent (1 when the first one succeeded).
        attempts: u32,
    },
    /// The record already held `published`: nothing to do (e.g. a retry after a lost reply,
    /// or another orchestrator that announced the same writer first).
    AlreadyCurrent {
        /// The record as found, e.g. `A 10.0.0.2`.
        published: String,
    },
}

/// Something that makes a name point at the current writer.
pub trait Announcer: Send + Sync + std::fmt::Debug {
    /// One line naming the announcer and its target, no secrets
    /// (`rfc2136 db.example.test. via 127.0.0.1:5300 zone example.test. key drfailover`).
    fn describe(&self) -> String;

    /// Point the managed record at the new writer. Blocks until done or `deadline` (each
    /// attempt is bounded; retries stop before the deadline).
    fn announce(
        &self,
        change: &WriterChange,
        deadline: Instant,
    ) -> Result<AnnounceOutcome, AnnounceError>;

    /// What the managed record holds now, one entry per record (`A 10.0.0.2`,
    /// `CNAME db2.example.test.`), for `drfailover dns show`. Blocks until `deadline` at most.
    fn current(&self, deadline: Instant) -> Result<Vec<String>, AnnounceError>;
}
