//! The program's own statements as a witness of the writer's progress: a per-client gauge
//! of statements in flight and statements completed, read by the monitor thread
//! (docs/ARCHITECTURE.md, "Writer selection": statements that stop completing get the writer
//! probed at once).
//!
//! One `AtomicU64` holds both figures: the low 32 bits count statements in flight, the high
//! 32 bits count completions (wrapping; the monitor only compares two readings). Starting and
//! finishing a statement each cost one relaxed atomic add: no lock, no allocation.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

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
        Reading {
            in_flight: v as u32,
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
#[derive(Clone, Debug)]
pub struct Activity {
    gauge: Arc<Gauge>,
}

impl Activity {
    pub(crate) fn new(gauge: Arc<Gauge>) -> Activity {
        Activity { gauge }
    }

    /// A statement was sent to the writer. One relaxed atomic add.
    #[inline]
    pub fn started(&self) {
        self.gauge.0.fetch_add(1, Ordering::Relaxed);
    }

    /// A statement reported by [`Activity::started`] returned (succeeded or failed). One
    /// relaxed atomic add.
    #[inline]
    pub fn finished(&self) {
        self.gauge.0.fetch_add(FINISH, Ordering::Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn started_and_finished_move_both_figures_in_one_word() {
        let gauge = Arc::new(Gauge::default());
        let activity = Activity::new(gauge.clone());
        activity.started();
        activity.started();
        assert_eq!(
            gauge.read(),
            Reading {
                in_flight: 2,
                completed: 0
            }
        );
        activity.finished();
        assert_eq!(
            gauge.read(),
            Reading {
                in_flight: 1,
                completed: 1
            }
        );
        activity.finished();
        assert_eq!(
            gauge.read(),
            Reading {
                in_flight: 0,
                completed: 2
            }
        );
    }

    #[test]
    fn the_completion_count_wraps_without_touching_the_in_flight_count() {
        let gauge = Arc::new(Gauge(AtomicU64::new(u64::from(u32::MAX) << 32)));
        let activity = Activity::new(gauge.clone());
        activity.started();
        activity.finished();
        assert_eq!(
            gauge.read(),
            Reading {
                in_flight: 0,
                completed: 0
            }
        );
    }
}
