use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{bounded, Receiver, Sender, TrySendError};

use crate::{Event, EventKind};

/// Handle of one subscription, for [`Notifier::unsubscribe`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct SubscriptionId(u64);

type Callback = Box<dyn Fn(&Event) + Send + Sync>;

struct Subscriber {
    id: SubscriptionId,
    callback: Callback,
}

enum Message {
    Event(Box<Event>),
    /// Stop: everything queued before it has been delivered or skipped.
    Close,
}

#[derive(Default)]
struct Shared {
    subscribers: Mutex<Arc<Vec<Arc<Subscriber>>>>,
    dropped_pending: AtomicU64,
    dropped_total: AtomicU64,
    next_id: AtomicU64,
    /// Set by `close`: events still queued after this instant are skipped, not delivered.
    drain_until: Mutex<Option<Instant>>,
}

impl Shared {
    fn subscribers(&self) -> MutexGuard<'_, Arc<Vec<Arc<Subscriber>>>> {
        self.subscribers.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// An event bus: publishers never block; one dispatcher thread calls subscribers in order.
///
/// `Send + Sync`. Subscribers run on the dispatcher thread, one at a time, never while an
/// internal lock is held, so they may publish, subscribe or unsubscribe themselves (but must
/// not call [`Notifier::close`]).
pub struct Notifier {
    shared: Arc<Shared>,
    sender: Sender<Message>,
    thread: Mutex<Option<JoinHandle<()>>>,
    client_id: u64,
    epoch: Instant,
}

impl std::fmt::Debug for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Notifier")
            .field("client_id", &self.client_id)
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl Notifier {
    /// Start a notifier with a queue of `capacity` events and its dispatcher thread.
    /// `client_id` and `epoch` stamp the events-dropped events it raises itself.
    pub fn new(capacity: usize, client_id: u64, epoch: Instant) -> std::io::Result<Notifier> {
        let (sender, receiver) = bounded(capacity.max(1));
        let shared = Arc::new(Shared::default());
        let worker = shared.clone();
        let thread = std::thread::Builder::new()
            .name("drfailover-notify".into())
            .spawn(move || dispatch(receiver, worker, client_id, epoch))?;
        Ok(Notifier {
            shared,
            sender,
            thread: Mutex::new(Some(thread)),
            client_id,
            epoch,
        })
    }

    /// Queue an event. Never blocks: when the queue is full the event is dropped and counted.
    pub fn publish(&self, event: Event) {
        match self.sender.try_send(Message::Event(Box::new(event))) {
            Ok(()) => {}
            Err(TrySendError::Full(_)) | Err(TrySendError::Disconnected(_)) => {
                self.shared.dropped_pending.fetch_add(1, Ordering::Relaxed);
                self.shared.dropped_total.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Total events dropped so far.
    pub fn dropped(&self) -> u64 {
        self.shared.dropped_total.load(Ordering::Relaxed)
    }

    /// Add a subscriber; it sees events published after this call. Cheap (copies the list).
    pub fn subscribe(&self, callback: impl Fn(&Event) + Send + Sync + 'static) -> SubscriptionId {
        let id = SubscriptionId(self.shared.next_id.fetch_add(1, Ordering::Relaxed));
        let mut subs = self.shared.subscribers();
        let mut list: Vec<_> = subs.iter().cloned().collect();
        list.push(Arc::new(Subscriber {
            id,
            callback: Box::new(callback),
        }));
        *subs = Arc::new(list);
        id
    }

    /// Remove a subscriber. It may still be running one last call when this returns if
    /// called from another thread; it is dropped after that call.
    pub fn unsubscribe(&self, id: SubscriptionId) {
        let mut subs = self.shared.subscribers();
        let list: Vec<_> = subs.iter().filter(|s| s.id != id).cloned().collect();
        *subs = Arc::new(list);
    }

    /// Deliver what is queued (for at most `drain_budget`), stop the dispatcher thread and
    /// drop all subscribers. When it returns, no callback is running or will run. Idempotent.
    /// Must not be called from a subscriber.
    pub fn close(&self, drain_budget: Duration) {
        let handle = self.thread.lock().unwrap_or_else(|e| e.into_inner()).take();
        if let Some(handle) = handle {
            *self
                .shared
                .drain_until
                .lock()
                .unwrap_or_else(|e| e.into_inner()) = Some(Instant::now() + drain_budget);
            // Blocking send: the queue may be full, but the dispatcher is draining it.
            let _ = self.sender.send(Message::Close);
            let _ = handle.join();
            *self.shared.subscribers() = Arc::new(Vec::new());
        }
    }

    /// The client id this notifier stamps on its own events.
    pub fn client_id(&self) -> u64 {
        self.client_id
    }

    /// The instant monotonic event times count from.
    pub fn epoch(&self) -> Instant {
        self.epoch
    }
}

impl Drop for Notifier {
    fn drop(&mut self) {
        self.close(Duration::from_millis(100));
    }
}

fn deliver(shared: &Shared, event: &Event) {
    let list = shared.subscribers().clone();
    for sub in list.iter() {
        // A panicking subscriber must not take the dispatcher (and all later events) down.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| (sub.callback)(event)));
    }
}

fn report_drops(shared: &Shared, client_id: u64, epoch: Instant, generation: u64) {
    let dropped = shared.dropped_pending.swap(0, Ordering::Relaxed);
    if dropped > 0 {
        let mut e = Event::new(EventKind::EventsDropped, client_id, generation, epoch)
            .reason("event queue full");
        e.dropped = dropped;
        deliver(shared, &e);
    }
}

fn dispatch(receiver: Receiver<Message>, shared: Arc<Shared>, client_id: u64, epoch: Instant) {
    let mut generation = 0;
    for message in receiver {
        match message {
            Message::Event(event) => {
                let drain_until = *shared.drain_until.lock().unwrap_or_else(|e| e.into_inner());
                if drain_until.is_some_and(|at| Instant::now() >= at) {
                    shared.dropped_total.fetch_add(1, Ordering::Relaxed);
                    continue;
                }
                generation = event.generation;
                deliver(&shared, &event);
                report_drops(&shared, client_id, epoch, generation);
            }
            Message::Close => {
                report_drops(&shared, client_id, epoch, generation);
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::AtomicBool;

    fn event(n: u64) -> Event {
        Event::new(EventKind::EndpointUp, 1, n, Instant::now())
    }

    #[test]
    fn delivers_in_order_and_close_drains() {
        let n = Notifier::new(1024, 1, Instant::now()).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let s = seen.clone();
        n.subscribe(move |e| s.lock().unwrap().push(e.generation));
        for i in 0..500 {
            n.publish(event(i));
        }
        n.close(Duration::from_secs(5));
        assert_eq!(*seen.lock().unwrap(), (0..500).collect::<Vec<_>>());
    }

    #[test]
    fn stuck_subscriber_drops_and_counts_and_reports() {
        let n = Notifier::new(4, 1, Instant::now()).unwrap();
        let release = Arc::new(AtomicBool::new(false));
        let kinds = Arc::new(Mutex::new(Vec::new()));
        let (r, k) = (release.clone(), kinds.clone());
        n.subscribe(move |e| {
            while !r.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(1));
            }
            k.lock().unwrap().push((e.kind, e.dropped));
        });
        let started = Instant::now();
        for i in 0..100 {
            n.publish(event(i));
        }
        assert!(
            started.elapsed() < Duration::from_millis(500),
            "publish blocked"
        );
        assert!(n.dropped() >= 90, "dropped {}", n.dropped());
        release.store(true, Ordering::Relaxed);
        n.close(Duration::from_secs(5));
        let kinds = kinds.lock().unwrap();
        let reported: u64 = kinds
            .iter()
            .filter(|(k, _)| *k == EventKind::EventsDropped)
            .map(|(_, d)| *d)
            .sum();
        assert_eq!(reported, n.dropped());
    }

    #[test]
    fn no_callback_runs_after_close_returns() {
        let n = Notifier::new(1024, 1, Instant::now()).unwrap();
        let running = Arc::new(AtomicBool::new(false));
        let calls = Arc::new(AtomicU64::new(0));
        let (r, c) = (running.clone(), calls.clone());
        n.subscribe(move |_| {
            r.store(true, Ordering::SeqCst);
            std::thread::sleep(Duration::from_millis(2));
            c.fetch_add(1, Ordering::SeqCst);
            r.store(false, Ordering::SeqCst);
        });
        for i in 0..50 {
            n.publish(event(i));
        }
        n.close(Duration::from_millis(20));
        let after = calls.load(Ordering::SeqCst);
        assert!(!running.load(Ordering::SeqCst));
        n.publish(event(99));
        std::thread::sleep(Duration::from_millis(30));
        assert_eq!(calls.load(Ordering::SeqCst), after);
    }
}
