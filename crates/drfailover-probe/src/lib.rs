//! Health probes for MySQL/MariaDB with millisecond deadlines, and a health tracker with
//! Route 53 semantics.
//!
//! - [`handshake::probe_handshake`]: TCP connect + the server's greeting packet, no
//!   credentials (what `mysqladmin ping` and HAProxy's `mysql-check` rely on). Pure Rust.
//! - [`tcp::probe_tcp`]: TCP connect only.
//! - [`MonitorProbe`]: an authenticated monitor connection, reused across probes: `ping`,
//!   `query` (e.g. `SELECT 1`) and `role` (`@@read_only`, `@@innodb_read_only`, GTID
//!   position, semi-sync status, replica threads and lag). Every call is bounded by a
//!   [`Deadline`], honoured to the millisecond even against a server that accepts TCP and
//!   never answers (the MariaDB non-blocking API driven by `poll(2)`).
//! - [`ProbeSet`]: many [`MonitorProbe`]s probed at once from the calling thread, each by its
//!   own deadline, results as they come: a frozen node never delays hearing from the others.
//! - [`HealthTracker`]: pure state machine (interval, consecutive-failure threshold to go
//!   down, consecutive-success threshold to come back, an immediate path for hard failures
//!   seen by application traffic). Time is passed in, so it is tested without servers.
//!
//! Threading: probes block the calling thread up to their deadline (a [`ProbeSet`] up to the
//! earliest); nothing here spawns threads. Costs: one TCP connection per [`MonitorProbe`],
//! kept open between probes.

pub mod handshake;
mod monitor;
mod outcome;
mod set;
pub mod tcp;
mod tracker;

pub use drfailover_mysql::Deadline;
pub use monitor::{Check, MonitorProbe, Progress};
pub use outcome::{Observation, OutcomeClass, Replication, Role};
pub use set::{ProbeSet, Woken};
pub use tracker::{Health, HealthTracker, TrackerConfig, Transition};
