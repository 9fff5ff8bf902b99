//! Automatic failover for self-hosted MySQL/MariaDB: detect a dead primary holistically,
//! promote the replica that has everything, fence the old primary, repoint the others,
//! announce every step.
//!
//! - [`core::Core`]: the pure decision core. Observation rounds (with their time) in; an
//!   [`core::Analysis`] (named condition + facts), [`core::Action`]s and [`core::Notice`]s
//!   out. No I/O, no clock: unit-tested without servers.
//! - [`observe`]: one round — every node probed at the same time, each within its own
//!   deadline — and the leadership lock (`GET_LOCK` held on a majority of nodes).
//! - [`execute::Executor`]: carries out actions, one bounded, idempotent step at a time,
//!   each reported.
//! - [`daemon::Orchestrator`]: the loop tying them together; [`switchover`] runs a planned
//!   switchover beside it; [`control`] carries requests (`ack`, `switchover`) to it and holds
//!   the control token; [`http`] serves `/status`, [`metrics`] (`/metrics`), `/ack` and
//!   `/switchover` (see `docs/orchestrator-control.md`).
//! - [`config::Config`]: the TOML file.
//!
//! Promises (each tested against real servers in `tests/`): never lose an acknowledged
//! write (promote only the replica that received the most, after it applied everything,
//! only when semi-sync `AFTER_SYNC` was active and every replica that could have acknowledged
//! was examined — or when `allow_data_loss` says otherwise); never fail over falsely (the
//! primary is dead only when the orchestrator cannot reach it *and* every reachable replica
//! stopped receiving from it); never two writers (fence command before promoting when the old
//! primary may be alive; `read_only=1` and sessions killed the moment it is seen again).
//!
//! Threads: the loop runs on the caller's thread; each round spawns one short-lived scoped
//! thread per node; a switchover in progress has one thread; the HTTP endpoint, when used,
//! has one (a single-threaded tokio runtime serving every connection).

pub mod config;
pub mod control;
pub mod core;
pub mod daemon;
pub mod execute;
pub mod facts;
pub mod fence_retry;
pub mod gtid;
pub mod http;
pub mod leadership;
pub mod metrics;
pub mod observe;
pub mod policy;
pub mod state_file;
pub mod step_error;
pub mod switchover;

pub use config::{Config, ConfigError};
pub use control::{Outcome, Request, Ticket};
pub use daemon::Orchestrator;
