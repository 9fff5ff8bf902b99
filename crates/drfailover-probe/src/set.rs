//! Many monitor probes at once, multiplexed in the calling thread with one `poll(2)`: each
//! probe ends by its own deadline, and a frozen node never delays hearing from the others.

use std::collections::VecDeque;
use std::os::fd::RawFd;
use std::time::{Duration, Instant};

use drfailover_mysql::{PollSet, Ready, Wait};

use crate::{Check, Deadline, MonitorProbe, Observation, Progress};

/// A running probe's wait, and when the C library's own timeout for it falls.
#[derive(Clone, Copy, Debug)]
struct Pending {
    wait: Wait,
    library_deadline: Option<Instant>,
}

/// What [`ProbeSet::wait`] returned for.
#[derive(Debug, Default)]
pub struct Woken {
    /// Probes that ended, as `(index, observation)`, in the order they ended.
    pub finished: Vec<(usize, Observation)>,
    /// The doorbell descriptor became readable (the caller drains it).
    pub doorbell: bool,
}

/// A set of [`MonitorProbe`]s (one per endpoint, indexed from 0) probed concurrently from the
/// calling thread: start any of them at any time ([`ProbeSet::start`]), each bounded by its
/// own [`Deadline`], and collect results as they come ([`ProbeSet::wait`]), or probe a batch
/// and wait for all of it ([`ProbeSet::probe_all`]). No threads: the MariaDB non-blocking API
/// and one `poll(2)` over every monitor connection. Cost per wait: one system call plus O(n).
#[derive(Debug)]
pub struct ProbeSet {
    probes: Vec<MonitorProbe>,
    pending: Vec<Option<Pending>>,
    finished: VecDeque<(usize, Observation)>,
    poll: PollSet,
    /// Per poll entry: the probe it belongs to.
    entries: Vec<usize>,
}

impl ProbeSet {
    /// A set over `probes` (none running).
    pub fn new(probes: Vec<MonitorProbe>) -> ProbeSet {
        let n = probes.len();
        ProbeSet {
            probes,
            pending: vec![None; n],
            finished: VecDeque::new(),
            poll: PollSet::new(),
            entries: Vec::with_capacity(n),
        }
    }

    /// Number of probes.
    pub fn len(&self) -> usize {
        self.probes.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.probes.is_empty()
    }

    /// Probe `i`.
    pub fn probe(&self, i: usize) -> &MonitorProbe {
        &self.probes[i]
    }

    /// Probe `i`, to change its credentials ([`MonitorProbe::set_credentials`]). Changing
    /// anything that abandons a running probe through this is not allowed: use
    /// [`ProbeSet::retarget`].
    pub fn probe_mut(&mut self, i: usize) -> &mut MonitorProbe {
        &mut self.probes[i]
    }

    /// Whether probe `i` is running (started, result not yet returned by a wait).
    pub fn is_running(&self, i: usize) -> bool {
        self.probes[i].is_running() || self.finished.iter().any(|(j, _)| *j == i)
    }

    /// Whether any probe is running.
    pub fn any_running(&self) -> bool {
        !self.finished.is_empty() || self.pending.iter().any(Option::is_some)
    }

    /// Start probe `i` (abandoning one in progress, whose result is then never returned).
    /// Never blocks: a connect or statement is only started; a result that is ready at once
    /// comes with the next [`ProbeSet::wait`].
    pub fn start(&mut self, i: usize, check: Check, deadline: Deadline) {
        self.finished.retain(|(j, _)| *j != i);
        self.pending[i] = None;
        let progress = self.probes[i].start(check, deadline);
        self.note(i, progress);
    }

    /// Abandon probe `i`'s probe in progress and close its monitor connection.
    pub fn cancel(&mut self, i: usize) {
        self.finished.retain(|(j, _)| *j != i);
        self.pending[i] = None;
        self.probes[i].cancel();
    }

    /// Point probe `i` at a new address (abandons its probe in progress).
    pub fn retarget(&mut self, i: usize, host: String, port: u16) {
        self.cancel(i);
        self.probes[i].retarget(host, port);
    }

    fn note(&mut self, i: usize, progress: Progress) {
        match progress {
            Progress::Waiting(wait) => {
                self.pending[i] = Some(Pending {
                    wait,
                    library_deadline: wait.library_timeout().map(|t| Instant::now() + t),
                });
            }
            Progress::Finished(obs) => {
                self.pending[i] = None;
                self.finished.push_back((i, obs));
            }
        }
    }

    /// Block until a probe ends, `doorbell` (a descriptor, e.g. one end of a socket pair)
    /// becomes readable, or `until` passes (`None`: no limit; with nothing running and no
    /// doorbell it returns at once). Probes past their deadline end as timed out here.
    /// Blocks at most until `until` or the earliest running deadline, whichever is first.
    pub fn wait(&mut self, until: Option<Instant>, doorbell: Option<RawFd>) -> Woken {
        let mut woken = Woken::default();
        loop {
            if !self.finished.is_empty() || woken.doorbell {
                woken.finished.extend(self.finished.drain(..));
                return woken;
            }
            let now = Instant::now();
            let mut wake_at = until;
            self.poll.clear();
            self.entries.clear();
            for (i, pending) in self.pending.iter().enumerate() {
                let Some(p) = pending else { continue };
                self.poll.add_wait(p.wait);
                self.entries.push(i);
                let mut at = self.probes[i].deadline().map(Deadline::instant);
                if let Some(lib) = p.library_deadline {
                    at = Some(at.map_or(lib, |a| a.min(lib)));
                }
                if let Some(at) = at {
                    wake_at = Some(wake_at.map_or(at, |w| w.min(at)));
                }
            }
            let bell = doorbell.map(|fd| self.poll.add_readable(fd));
            if self.entries.is_empty() && bell.is_none() && until.is_none() {
                return woken;
            }
            // A deadline already past still gets one non-blocking look first: an answer that
            // arrived in time while this thread was busy elsewhere is not a timeout.
            let timeout = wake_at.map(|at| at.saturating_duration_since(now));
            if let Err(e) = self.poll.poll(timeout) {
                // Only EFAULT/EINVAL/ENOMEM: nothing a retry fixes at once; do not spin.
                log_poll_error(&e);
                std::thread::sleep(Duration::from_millis(1));
            }
            let now = Instant::now();
            for entry in 0..self.entries.len() {
                let i = self.entries[entry];
                let Some(p) = self.pending[i] else { continue };
                let ready = match self.poll.ready(entry) {
                    Some(ready) => ready,
                    None if p.library_deadline.is_some_and(|at| at <= now) => Ready::timeout(),
                    None => continue,
                };
                let progress = self.probes[i].resume(ready);
                self.note(i, progress);
            }
            if let Some(bell) = bell {
                woken.doorbell = self.poll.readable(bell);
            }
            for i in 0..self.probes.len() {
                let overdue = self.probes[i].deadline().is_some_and(|d| d.expired());
                if self.pending[i].is_some() && overdue {
                    self.pending[i] = None;
                    let obs = self.probes[i].expire();
                    self.finished.push_back((i, obs));
                }
            }
            if self.finished.is_empty() && !woken.doorbell && until.is_some_and(|u| u <= now) {
                return woken;
            }
        }
    }

    /// Probe every `(index, check, deadline)` of `batch` at once and wait until all ended;
    /// returns one observation per entry of `batch`, in its order. Blocks until the latest
    /// deadline of the batch at most.
    pub fn probe_all(&mut self, batch: &[(usize, Check, Deadline)]) -> Vec<Observation> {
        for (i, check, deadline) in batch {
            self.start(*i, check.clone(), *deadline);
        }
        let mut results: Vec<Option<Observation>> = vec![None; batch.len()];
        while results.iter().any(Option::is_none) {
            let woken = self.wait(None, None);
            if woken.finished.is_empty() && !self.any_running() {
                break;
            }
            for (i, obs) in woken.finished {
                if let Some(k) = (0..batch.len()).find(|&k| batch[k].0 == i && results[k].is_none())
                {
                    results[k] = Some(obs);
                }
            }
        }
        results
            .into_iter()
            .map(|o| o.expect("every started probe ends by its deadline"))
            .collect()
    }
}

fn log_poll_error(e: &std::io::Error) {
    log::warn!(target: "drfailover", "probe set: poll failed: {e}");
}
