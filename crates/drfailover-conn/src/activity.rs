//! The program's own statements as a witness of the writer's progress: a per-client gauge
//! of statements in flight and statements completed, read by the monitor thread
//! (docs/ARCHITECTURE.md, "Writer selection": statements that stop completing get the writer
//! probed at once).
//!
//! One `AtomicU64` holds both figures: the low 31 bits count statements in flight, the high
//! 32 bits count completions (wrapping; the monitor only compares two readings). Starting and
//! finishing a statement each cost one relaxed atomic add: no lock, no allocation.
//!
//! Bit 31 says the monitor stopped looking (nothing ran since its last look, so it asks for no
//! wake-up of its own): the first statement to start after that clears the bit and rings the
//! monitor's doorbell (one more atomic and one `write(2)` per idle spell, never in a steady
//! stream of statements), so the watch resumes at once.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crate::shared::Shared;
use crate::WriterStamp;

/// The monitor stopped looking at the gauge (see the module doc).
const IDLE: u64 = 1 << 31;

/// The in-flight count's bits.
const IN_FLIGHT: u64 = IDLE - 1;

/// Adds one completion and removes one statement in flight, in one add: the low half loses
/// one (it is at least one for a started statement), the high half gains the carry.
const FINISH: u64 = (1 << 32) - 1;

/// One reading of the gauge.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub(crate) struct Reading {
    /// Statements started and not finished.
    pub in_flight: u32,
    /// Statements finished so far (wrapping).
    pub completed: u32,
}

/// The gauge shared by a client's [`Activity`] handles and its monitor thread.
#[derive(Debug, Default)]
pub(crate) struct Gauge(AtomicU64);

impl Gauge {
    /// The current figures. One relaxed load.
    pub fn read(&self) -> Reading {
        let v = self.0.load(Ordering::Relaxed);
        Reading::of(v)
    }

    /// The monitor stops looking until a statement starts, if nothing changed since it read
    /// `seen`. Returns false when something did (it must look again). One atomic operation.
    pub fn go_idle(&self, seen: Reading) -> bool {
        let before = Reading::of(self.0.fetch_or(IDLE, Ordering::Relaxed));
        if before == seen && seen.in_flight == 0 {
            return true;
        }
        self.0.fetch_and(!IDLE, Ordering::Relaxed);
        false
    }

    /// A statement starts: true when it is the first since the monitor went idle (the
    /// caller rings the doorbell). One atomic add (two on the first start after idling).
    #[inline]
    fn start(&self) -> bool {
        let before = self.0.fetch_add(1, Ordering::Relaxed);
        before & IDLE != 0 && self.0.fetch_and(!IDLE, Ordering::Relaxed) & IDLE != 0
    }
}

impl Reading {
    fn of(v: u64) -> Reading {
        Reading {
            in_flight: (v & IN_FLIGHT) as u32,
            completed: (v >> 32) as u32,
        }
    }
}

/// A cheap, cloneable handle for reporting statements that callers run on the writer over
/// their own connections (the drop-in's managed connections, say), so that the client's
/// monitor sees at once when they stop completing and probes the writer then instead of at
/// its next scheduled probe. Never blocks; every call is one relaxed atomic add.
///
/// Every [`Activity::started`] must be followed by exactly one [`Activity::finished`] (on
/// any thread), whatever the statement's outcome.
#[derive(Clone)]
pub struct Activity {
    shared: Arc<Shared>,
}

impl std::fmt::Debug for Activity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Activity")
            .field("gauge", &self.shared.activity.read())
            .finish()
    }
}

impl Activity {
    pub(crate) fn new(shared: Arc<Shared>) -> Activity {
        Activity { shared }
    }

    /// A statement was sent to the writer. One relaxed atomic add (the first statement after
    /// an idle spell also rings the monitor: one more atomic and a non-blocking `write(2)`).
    #[inline]
    pub fn started(&self) {
        if self.shared.activity.start() {
            self.shared.ring();
        }
    }

    /// The writer and generation now ([`crate::WriterView::stamp`]), read through the same
    /// shared state as the gauge: a caller that checks the writer before each statement and
    /// counts it touches one allocation. One atomic load; never blocks.
    #[inline]
    pub fn writer_stamp(&self) -> WriterStamp {
        self.shared.writer_stamp()
    }

    /// A statement reported by [`Activity::started`] returned (succeeded or failed). One
    /// relaxed atomic add.
    #[inline]
    pub fn finished(&self) {
        self.shared.activity.0.fetch_add(FINISH, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn finish(g: &Gauge) {
        g.0.fetch_add(FINISH, Ordering::Relaxed);
    }

    #[test]
    fn starting_and_finishing_move_both_figures_in_one_word() {
        let g = Gauge::default();
        assert!(!g.start());
        assert!(!g.start());
        assert_eq!(
            g.read(),
            Reading {
                in_flight: 2,
                completed: 0
            }
        );
        finish(&g);
        assert_eq!(
            g.read(),
            Reading {
                in_flight: 1,
                completed: 1
            }
        );
        finish(&g);
        assert_eq!(
            g.read(),
            Reading {
                in_flight: 0,
                completed: 2
            }
        );
    }

    #[test]
    fn the_completion_count_wraps_without_touching_the_in_flight_count() {
        let g = Gauge(AtomicU64::new(u64::from(u32::MAX) << 32));
        g.start();
        finish(&g);
        assert_eq!(
            g.read(),
            Reading {
                in_flight: 0,
                completed: 0
            }
        );
    }

    #[test]
    fn only_the_first_start_after_the_monitor_went_idle_rings() {
        let g = Gauge::default();
        g.start();
        finish(&g);
        let seen = g.read();
        assert!(g.go_idle(seen));
        assert_eq!(g.read(), seen, "the idle mark is not a statement");
        assert!(g.start(), "first start after idle rings");
        assert!(!g.start());
        finish(&g);
        assert_eq!(
            g.read(),
            Reading {
                in_flight: 1,
                completed: 2
            }
        );
    }

    #[test]
    fn the_monitor_does_not_go_idle_when_something_changed_since_its_reading() {
        let g = Gauge::default();
        let seen = g.read();
        g.start();
        assert!(!g.go_idle(seen), "a statement started meanwhile");
        assert!(!g.start(), "not idle: no ring");
        finish(&g);
        finish(&g);
        let seen = g.read();
        assert!(g.go_idle(seen));
        assert!(g.start());
    }
}
