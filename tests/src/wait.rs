//! Waiting in tests: on a condition, within a generous bound, never a fixed sleep before an
//! assertion. [`eventually`] polls any check; [`EventLog`] records events from a callback and
//! waits for the one a test needs.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How often [`eventually`] and [`EventLog`] look again.
const POLL: Duration = Duration::from_millis(10);

/// Call `check` until it returns `Ok`, and return its value; panic with `what`, the bound and
/// the last error if `within` passes first. Blocks the calling thread, polling every 10 ms.
pub fn eventually<T>(what: &str, within: Duration, check: impl FnMut() -> Result<T, String>) -> T {
    until(within, check)
        .unwrap_or_else(|last| panic!("{what}: not within {within:?}; last: {last}"))
}

/// Like [`eventually`], but returns the last error instead of panicking when `within` passes
/// (for callers that must not panic, such as the benchmarks).
pub fn until<T>(
    within: Duration,
    mut check: impl FnMut() -> Result<T, String>,
) -> Result<T, String> {
    let started = Instant::now();
    loop {
        match check() {
            Ok(value) => return Ok(value),
            Err(last) if started.elapsed() >= within => return Err(last),
            Err(_) => std::thread::sleep(POLL),
        }
    }
}

/// Like [`eventually`], but returns `None` instead of panicking when `within` passes.
pub fn within<T>(within: Duration, mut check: impl FnMut() -> Option<T>) -> Option<T> {
    until(within, || check().ok_or_else(String::new)).ok()
}

/// Events recorded in arrival order with their arrival time, shareable with the callback
/// that records them (clone it into the callback). Cheap to clone (one `Arc`).
#[derive(Debug)]
pub struct EventLog<T> {
    events: Arc<Mutex<Vec<(Instant, T)>>>,
}

impl<T> Clone for EventLog<T> {
    fn clone(&self) -> Self {
        EventLog {
            events: self.events.clone(),
        }
    }
}

impl<T> Default for EventLog<T> {
    fn default() -> Self {
        EventLog {
            events: Arc::default(),
        }
    }
}

impl<T: Clone + std::fmt::Debug> EventLog<T> {
    /// An empty log.
    pub fn new() -> Self {
        Self::default()
    }

    /// Record `event` now. Takes a lock briefly.
    pub fn push(&self, event: T) {
        self.lock().push((Instant::now(), event));
    }

    /// Every event so far, in order.
    pub fn all(&self) -> Vec<T> {
        self.lock().iter().map(|(_, e)| e.clone()).collect()
    }

    /// Every event so far with its arrival time.
    pub fn timed(&self) -> Vec<(Instant, T)> {
        self.lock().clone()
    }

    /// Events `pick` selects, in order.
    pub fn matching(&self, pick: impl Fn(&T) -> bool) -> Vec<T> {
        self.lock()
            .iter()
            .filter(|(_, e)| pick(e))
            .map(|(_, e)| e.clone())
            .collect()
    }

    /// The first event `pick` selects, waiting up to `within` for it; `None` if none came.
    pub fn find_within(&self, within: Duration, pick: impl Fn(&T) -> bool) -> Option<(Instant, T)> {
        self::within(within, || {
            self.lock().iter().find(|(_, e)| pick(e)).cloned()
        })
    }

    /// The first event `pick` selects, waiting up to `within`; panics naming `what` and
    /// listing every event seen when none came.
    pub fn wait_for(&self, what: &str, within: Duration, pick: impl Fn(&T) -> bool) -> T {
        match self.find_within(within, pick) {
            Some((_, e)) => e,
            None => panic!("{what}: not within {within:?}; events: {:#?}", self.all()),
        }
    }

    /// When the first event after `since` arrived, waiting up to `within` for one; panics
    /// naming `what` when none came.
    pub fn first_after(&self, what: &str, since: Instant, within: Duration) -> Instant {
        let first = self::within(within, || {
            self.lock()
                .iter()
                .find(|(at, _)| *at > since)
                .map(|(at, _)| *at)
        });
        first.unwrap_or_else(|| panic!("{what}: not within {within:?}"))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<(Instant, T)>> {
        // A test thread that panicked while holding the lock leaves the events readable.
        self.events.lock().unwrap_or_else(|p| p.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eventually_returns_the_first_success() {
        let mut calls = 0;
        let got = eventually("third call", Duration::from_secs(5), || {
            calls += 1;
            if calls == 3 {
                Ok(calls)
            } else {
                Err(format!("call {calls}"))
            }
        });
        assert_eq!(got, 3);
    }

    #[test]
    #[should_panic(expected = "never: not within")]
    fn eventually_panics_with_the_last_error() {
        eventually::<()>("never", Duration::from_millis(30), || Err("no".into()));
    }

    #[test]
    fn an_event_pushed_from_another_thread_is_found() {
        let log = EventLog::new();
        let writer = log.clone();
        let t = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(20));
            writer.push(7u32);
        });
        assert_eq!(
            log.wait_for("seven", Duration::from_secs(5), |&e| e == 7),
            7
        );
        t.join().unwrap();
        assert!(log
            .find_within(Duration::from_millis(20), |&e| e == 8)
            .is_none());
    }
}
