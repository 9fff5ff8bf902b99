//! A planned switchover running beside the failover loop, on a thread and connections of
//! its own: the loop keeps observing and failing over while the target catches up.
//!
//! The job changes nothing until it commits its [`Ticket`]; the loop cancels the ticket
//! when the primary stops being healthy (a failover then runs instead), the requester when
//! it stops waiting. Once committed, the loop leaves the topology to the job until it ends
//! (its remaining steps are bounded by the step and catch-up timeouts).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::config::Config;
use crate::control::{Reply, Ticket};
use crate::core::{Notice, SwitchoverPlan};
use crate::execute::{Executor, SwitchoverError};
use crate::observe::NodeLink;

/// Where a job's step notices go (published as they happen).
pub type Report = Arc<dyn Fn(Notice) + Send + Sync>;

/// A switchover in progress.
pub struct SwitchoverJob {
    /// What it does.
    pub plan: SwitchoverPlan,
    /// The target's name.
    pub target: String,
    /// Pending until the job commits.
    pub ticket: Ticket,
    /// Where the outcome goes.
    pub reply: Reply,
    /// When the request was accepted.
    pub started: Instant,
    done: Receiver<Result<(), SwitchoverError>>,
    thread: Option<JoinHandle<()>>,
}

impl SwitchoverJob {
    /// Start `plan` on a new thread with new connections to every node (made from
    /// `config`). Returns at once; `Err` when the thread cannot be spawned.
    pub fn spawn(
        config: &Config,
        plan: SwitchoverPlan,
        target: String,
        ticket: Ticket,
        reply: Reply,
        report: Report,
    ) -> Result<SwitchoverJob, (Reply, String)> {
        let (tx, done) = crossbeam_channel::bounded(1);
        let config = config.clone();
        let job_plan = plan.clone();
        let job_ticket = ticket.clone();
        let spawned = std::thread::Builder::new()
            .name("drfailover-switchover".into())
            .spawn(move || {
                let mut links = links_for(&config);
                let result = run(&config, &mut links, &job_plan, &job_ticket, &*report);
                for link in &mut links {
                    link.close();
                }
                let _ = tx.send(result);
            });
        match spawned {
            Ok(thread) => Ok(SwitchoverJob {
                plan,
                target,
                ticket,
                reply,
                started: Instant::now(),
                done,
                thread: Some(thread),
            }),
            Err(e) => Err((reply, format!("cannot start the switchover thread: {e}"))),
        }
    }

    /// The job's result if it ended (waiting at most `wait`). Never blocks longer.
    pub fn finished(&mut self, wait: Duration) -> Option<Result<(), SwitchoverError>> {
        let result = self.done.recv_timeout(wait).ok()?;
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        Some(result)
    }
}

/// Connections to every node of `config`, host names resolved (each within
/// `max(probe_timeout, 2 s)`). Blocks for the lookups only.
pub fn links_for(config: &Config) -> Vec<NodeLink> {
    let timeout = config.probe_timeout.max(Duration::from_secs(2));
    (0..config.nodes.len())
        .map(|i| {
            let mut link = NodeLink::new(config.connect_options(i));
            let _ = link.resolve(timeout);
            link
        })
        .collect()
}

/// Carry out `plan` on `links` (see [`Executor::switchover`]). Blocks for the switchover.
pub fn run(
    config: &Config,
    links: &mut [NodeLink],
    plan: &SwitchoverPlan,
    ticket: &Ticket,
    report: &dyn Fn(Notice),
) -> Result<(), SwitchoverError> {
    let mut forward = |n: Notice| report(n);
    let mut ex = Executor {
        links,
        nodes: &config.nodes,
        settings: &config.settings,
        report: &mut forward,
    };
    ex.switchover(plan, ticket)
}
