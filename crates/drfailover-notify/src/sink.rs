//! A slow subscriber on a thread of its own, so it cannot hold up the dispatcher.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use crossbeam_channel::{bounded, Sender, TrySendError};

use crate::Event;

/// A worker thread with a bounded queue that runs `handler` for each event it is given.
/// [`AsyncSink::offer`] never blocks: when the queue is full the event is dropped and
/// counted. Dropping the sink lets the worker finish what is queued (up to a bound) and stop.
pub struct AsyncSink {
    sender: Option<Sender<Event>>,
    thread: Option<JoinHandle<()>>,
    dropped: Arc<AtomicU64>,
    name: String,
    drain: Duration,
}

impl std::fmt::Debug for AsyncSink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AsyncSink")
            .field("name", &self.name)
            .finish()
    }
}

impl AsyncSink {
    /// Start a worker thread named `drfailover-<name>` with a queue of `capacity` events.
    /// `drain` bounds how long dropping the sink waits for queued events.
    pub fn spawn(
        name: &str,
        capacity: usize,
        drain: Duration,
        mut handler: impl FnMut(&Event) + Send + 'static,
    ) -> std::io::Result<AsyncSink> {
        let (sender, receiver) = bounded::<Event>(capacity.max(1));
        let thread = std::thread::Builder::new()
            .name(format!("drfailover-{name}"))
            .spawn(move || {
                for event in receiver {
                    let _ =
                        std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| handler(&event)));
                }
            })?;
        Ok(AsyncSink {
            sender: Some(sender),
            thread: Some(thread),
            dropped: Arc::default(),
            name: name.to_string(),
            drain,
        })
    }

    /// Queue an event for the worker; never blocks.
    pub fn offer(&self, event: &Event) {
        if let Some(sender) = &self.sender {
            if let Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) =
                sender.try_send(event.clone())
            {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                log::warn!(target: "drfailover", "{}: queue full, event dropped", self.name);
            }
        }
    }

    /// Events dropped because the worker's queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

impl Drop for AsyncSink {
    fn drop(&mut self) {
        self.sender.take(); // the worker ends after the queued events
        if let Some(thread) = self.thread.take() {
            let deadline = std::time::Instant::now() + self.drain;
            while !thread.is_finished() && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(2));
            }
            if thread.is_finished() {
                let _ = thread.join();
            } else {
                log::warn!(target: "drfailover", "{}: still busy after {:?}; left to finish alone", self.name, self.drain);
            }
        }
    }
}
