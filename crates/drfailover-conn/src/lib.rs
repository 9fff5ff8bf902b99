//! A failover-aware MySQL/MariaDB client: the writer follows the database through failovers.
//!
//! [`Client`] keeps a pool of connections to whichever node is the writer. One monitor thread
//! probes every endpoint with millisecond deadlines (`drfailover-probe`), adopts a node as
//! writer only when a probe just saw it writable, bumps a generation on every writer change,
//! shuts down the sockets of connections leased to (or still logging in to) a dead writer
//! (in-flight abort) and raises events (`drfailover-notify`).
//!
//! Writer selection (docs/ARCHITECTURE.md, "Writer selection": two writable nodes — keep the
//! current *healthy* writer, never flip-flop): a node seen *becoming* writable (read-only at an
//! earlier probe) while the writer is *suspect* — its latest probe or a statement failed or
//! timed out — is a promotion and is adopted at once (new generation, the old writer's leased
//! connections aborted, `failover_started`/`failover_completed`), without waiting for the old
//! writer to be declared down. When the writer has not failed, it is probed at once: if it
//! answers writable, the other node is split brain (`split_brain` event, no flip). A healthy
//! writer is never left; a node that was writable all along is never adopted over the writer;
//! the old writer is not re-adopted while the new one is usable unless fail-back is configured.
//! While the writer is suspect or missing the other endpoints are probed fast: every
//! `failover_probe_interval_ms` at first, then every sixtieth of the time since the trouble
//! began (at most `probe_interval_ms`), so a promotion made `t` after the writer was lost is
//! seen within about `t / 60`, and a fleet waiting for a restarted server does not flood the
//! replicas with probes (the reconnect storm).
//!
//! Retry rules: a statement that certainly did not run is retried on the new writer; one whose
//! connection died after it was sent fails with [`Error::OutcomeUnknown`] and is never
//! replayed unless marked idempotent. `MYSQL_OPT_RECONNECT` is never used.
//!
//! Threads and costs: two threads per client (monitor, notifier); per statement one pool
//! lock to lease and one to release, one atomic load and one non-blocking `poll(2)`.
//!
//! ```no_run
//! use drfailover_conn::Client;
//! use std::time::Duration;
//! let client = Client::connect_dsn("mysql://app@db1:3306,db2:3306/shop?password_env=DB_PASSWORD")?;
//! client.wait_ready(Duration::from_secs(5))?;
//! client.query("INSERT INTO orders (item) VALUES ('book')")?;
//! # Ok::<(), drfailover_conn::Error>(())
//! ```

mod activity;
mod client;
pub mod config;
#[cfg(feature = "dns")]
mod dns;
pub mod dsn;
mod endpoint;
mod error;
pub mod keys;
mod lifecycle;
mod login;
mod monitor;
mod pool;
pub mod retry;
pub mod selection;
mod shared;
mod sinks;

pub use activity::Activity;
pub use client::{
    Client, ClientBuilder, ClientState, QueryOptions, Stats, WriterStamp, WriterView,
};
pub use config::{AuthMethod, Config, WebhookTarget};
pub use drfailover_mysql::QueryResult;
pub use drfailover_notify::{Event, EventKind, SubscriptionId};
pub use drfailover_probe::{Health, OutcomeClass};
pub use endpoint::{Endpoint, Generation};
pub use error::Error;
pub use pool::Leased;
pub use shared::EndpointStatus;

#[cfg(test)]
mod thread_safety {
    fn shared<T: Send + Sync>() {}

    #[test]
    fn public_types_are_send_and_sync_where_meant_to_be_shared() {
        shared::<crate::Client>();
        shared::<crate::Config>();
        shared::<crate::Error>();
        shared::<crate::Event>();
        shared::<crate::ClientState>();
        shared::<crate::QueryResult>();
        shared::<crate::WriterView>();
        fn sendable<T: Send>() {}
        sendable::<crate::Leased>();
    }
}
