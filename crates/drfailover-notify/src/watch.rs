use std::sync::{Condvar, Mutex, MutexGuard};
use std::time::{Duration, Instant};

/// What waiters can see: whether a writer is available, and the writer generation.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WatchState {
    /// A writer is available.
    pub ready: bool,
    /// Bumped on every writer change.
    pub generation: u64,
    /// The owner closed; waits return [`WaitError::Closed`].
    pub closed: bool,
}

/// Why a wait returned without its condition.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WaitError {
    /// The timeout passed first.
    TimedOut,
    /// The watch was closed.
    Closed,
}

impl std::fmt::Display for WaitError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            WaitError::TimedOut => "timed out",
            WaitError::Closed => "closed",
        })
    }
}

impl std::error::Error for WaitError {}

/// A condition variable over [`WatchState`]. `Send + Sync`; publishers never block on waiters.
#[derive(Debug, Default)]
pub struct StateWatch {
    state: Mutex<WatchState>,
    changed: Condvar,
}

impl StateWatch {
    /// A watch: not ready, generation 0.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, WatchState> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The current state. Cheap.
    pub fn get(&self) -> WatchState {
        *self.lock()
    }

    /// Publish a new readiness and generation; wakes all waiters.
    pub fn publish(&self, ready: bool, generation: u64) {
        let mut s = self.lock();
        s.ready = ready;
        s.generation = generation;
        self.changed.notify_all();
    }

    /// Close: every current and future wait returns [`WaitError::Closed`].
    pub fn close(&self) {
        self.lock().closed = true;
        self.changed.notify_all();
    }

    /// Block until ready (returns the generation) or `timeout` passes.
    pub fn wait_ready(&self, timeout: Duration) -> Result<u64, WaitError> {
        self.wait_until(timeout, |s| s.ready)
    }

    /// Block until the generation differs from `seen` (returns it) or `timeout` passes.
    pub fn wait_generation(&self, seen: u64, timeout: Duration) -> Result<u64, WaitError> {
        self.wait_until(timeout, |s| s.generation != seen)
    }

    fn wait_until(
        &self,
        timeout: Duration,
        done: impl Fn(&WatchState) -> bool,
    ) -> Result<u64, WaitError> {
        let deadline = Instant::now().checked_add(timeout);
        let mut s = self.lock();
        loop {
            if s.closed {
                return Err(WaitError::Closed);
            }
            if done(&s) {
                return Ok(s.generation);
            }
            let left = match deadline {
                Some(d) => d.saturating_duration_since(Instant::now()),
                None => Duration::from_secs(3600),
            };
            if left.is_zero() {
                return Err(WaitError::TimedOut);
            }
            s = self
                .changed
                .wait_timeout(s, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn wait_ready_wakes_on_publish() {
        let w = Arc::new(StateWatch::new());
        let w2 = w.clone();
        let t = std::thread::spawn(move || w2.wait_ready(Duration::from_secs(10)));
        std::thread::sleep(Duration::from_millis(20));
        w.publish(true, 3);
        assert_eq!(t.join().unwrap(), Ok(3));
    }

    #[test]
    fn wait_generation_times_out_then_sees_change() {
        let w = StateWatch::new();
        w.publish(true, 1);
        assert_eq!(
            w.wait_generation(1, Duration::from_millis(10)),
            Err(WaitError::TimedOut)
        );
        assert_eq!(w.wait_generation(0, Duration::from_millis(10)), Ok(1));
        w.close();
        assert_eq!(
            w.wait_generation(1, Duration::from_secs(5)),
            Err(WaitError::Closed)
        );
    }
}
