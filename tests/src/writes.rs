//! The acknowledged-writes ledger of failover tests: writer threads that write numbered
//! rows through a write function the test gives (the library under test, its C ABI, a pinned
//! connection) and record what every write ended as, and the data check every failover test
//! makes — the ids a node's table holds against what the writers were told.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::{EventLog, Node};

impl Node {
    /// Check the ids `select` returns (one integer column, e.g. `SELECT id FROM app.t`)
    /// against the writers' acknowledged ids and those whose outcome they were not told.
    /// Panics naming the first few when an acknowledged write is missing, when an id is
    /// there that was neither acknowledged nor unknown, or when an id was acknowledged twice.
    /// Returns how many rows the table holds. Blocks on one query.
    pub fn assert_writes(&self, select: &str, acked: &[u64], unknown: &[u64]) -> usize {
        let rows = self
            .sql(select)
            .unwrap_or_else(|e| panic!("{select} on {}: {e}", self.name()));
        let present: HashSet<u64> = (0..rows.num_rows())
            .map(|r| {
                let id = rows.text(r, 0).unwrap_or_default();
                id.parse()
                    .unwrap_or_else(|_| panic!("{select}: {id:?} is not an id"))
            })
            .collect();
        let first = |ids: Vec<u64>| ids.into_iter().take(5).collect::<Vec<_>>();
        let lost: Vec<u64> = acked
            .iter()
            .filter(|id| !present.contains(id))
            .copied()
            .collect();
        assert!(
            lost.is_empty(),
            "{} acknowledged writes lost on {}, e.g. {:?}",
            lost.len(),
            self.name(),
            first(lost.clone())
        );
        let known: HashSet<u64> = acked.iter().chain(unknown).copied().collect();
        let unexplained: Vec<u64> = present
            .iter()
            .filter(|id| !known.contains(id))
            .copied()
            .collect();
        assert!(
            unexplained.is_empty(),
            "{} rows on {} nobody was told about, e.g. {:?}",
            unexplained.len(),
            self.name(),
            first(unexplained.clone())
        );
        assert_eq!(
            acked.len(),
            acked.iter().collect::<HashSet<_>>().len(),
            "an id was acknowledged twice"
        );
        rows.num_rows()
    }
}

/// What one write ended as, as the write function saw it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum WriteOutcome {
    /// Acknowledged: the row must be there.
    Acknowledged,
    /// Sent, outcome unknown (the connection was lost): the row may or may not be there.
    Unknown,
    /// Certainly not executed anywhere (no writer known): the row must not be there.
    NotSent,
    /// Any other failure, described: a test usually asserts there is none.
    Failed(String),
}

/// What the writers did, once stopped.
#[derive(Debug)]
pub struct WriteLedger {
    /// Acknowledged ids, in acknowledgement order.
    pub acknowledged: Vec<u64>,
    /// Ids whose outcome is unknown.
    pub unknown: Vec<u64>,
    /// Failures other than lost connections, as "id: description".
    pub failed: Vec<String>,
}

/// `threads` threads writing ids 1, 2, 3, … (each id once, across threads) with `write`
/// until stopped. Starting does not block.
pub struct Writers {
    acknowledged: EventLog<u64>,
    unknown: Arc<Mutex<Vec<u64>>>,
    failed: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl Writers {
    /// Start the threads; `write(id)` runs one write and says how it ended.
    pub fn start(
        threads: usize,
        write: impl Fn(u64) -> WriteOutcome + Send + Sync + 'static,
    ) -> Writers {
        let write = Arc::new(write);
        let next = Arc::new(AtomicU64::new(1));
        let (acknowledged, unknown, failed, stop) = (
            EventLog::new(),
            Arc::<Mutex<Vec<u64>>>::default(),
            Arc::<Mutex<Vec<String>>>::default(),
            Arc::new(AtomicBool::new(false)),
        );
        let threads = (0..threads)
            .map(|_| {
                let (write, next, acknowledged, unknown, failed, stop) = (
                    write.clone(),
                    next.clone(),
                    acknowledged.clone(),
                    unknown.clone(),
                    failed.clone(),
                    stop.clone(),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        match write(id) {
                            WriteOutcome::Acknowledged => acknowledged.push(id),
                            WriteOutcome::Unknown => lock(&unknown).push(id),
                            WriteOutcome::NotSent => {}
                            WriteOutcome::Failed(e) => lock(&failed).push(format!("{id}: {e}")),
                        }
                    }
                })
            })
            .collect();
        Writers {
            acknowledged,
            unknown,
            failed,
            stop,
            threads,
        }
    }

    /// The acknowledgements so far, with their arrival times (for waiting on progress).
    pub fn acknowledged(&self) -> &EventLog<u64> {
        &self.acknowledged
    }

    /// The failures (other than lost connections) so far.
    pub fn failures(&self) -> Vec<String> {
        lock(&self.failed).clone()
    }

    /// Wait until `n` writes were acknowledged; panics naming the failures after `within`.
    pub fn wait_acknowledged(&self, n: usize, within: Duration) {
        crate::eventually(&format!("{n} acknowledged writes"), within, || {
            match self.acknowledged.all().len() {
                have if have >= n => Ok(()),
                have => Err(format!(
                    "{have} so far; failures: {:?}",
                    self.failures().iter().take(3).collect::<Vec<_>>()
                )),
            }
        });
    }

    /// Stop the threads (each finishes its write in progress) and return the ledger. Blocks
    /// for the writes in progress; a thread's panic is re-raised here.
    pub fn stop(self) -> WriteLedger {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            if let Err(panic) = thread.join() {
                std::panic::resume_unwind(panic);
            }
        }
        WriteLedger {
            acknowledged: self.acknowledged.all(),
            unknown: lock(&self.unknown).clone(),
            failed: lock(&self.failed).clone(),
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}
