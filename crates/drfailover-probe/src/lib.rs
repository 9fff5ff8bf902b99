//! Health probes for MySQL/MariaDB with millisecond deadlines, and a health tracker with
//! Route 53 semantics.
//!
//! - [`handshake::probe_handshake`]: TCP connect + the server's greeting packet, no
//!   credentials (what `mysqladmin ping` and HAProxy's `mysql-check` rely on). Pure Rust.
//! - [`RoleProbe`]: an authenticated monitor connection, reused across probes, that reads
//!   `@@read_only` / `@@innodb_read_only`. Every call is bounded by a [`Deadline`], honoured to
//!   the millisecond even against a server that accepts TCP and never answers.
//! - [`HealthTracker`]: pure state machine (interval, consecutive-failure threshold to go
//!   down, consecutive-success threshold to come back, an immediate path for hard failures
//!   seen by application traffic). Time is passed in, so it is tested without servers.
//!
//! Threading: probes block the calling thread up to their deadline; nothing here spawns
//! threads. Costs: one TCP connection per [`RoleProbe`], kept open between probes.

pub mod handshake;
mod outcome;
mod role;
mod tracker;

pub use drfailover_mysql::Deadline;
pub use outcome::{Observation, OutcomeClass, Role};
pub use role::RoleProbe;
pub use tracker::{Health, HealthTracker, TrackerConfig, Transition};
