//! Failover events delivered off the hot path.
//!
//! - [`Event`]: typed, timestamped (monotonic and wall clock), with a stable JSON form; never
//!   carries a secret.
//! - [`Notifier`]: a bounded `crossbeam-channel` queue and one dispatcher thread per notifier.
//!   [`Notifier::publish`] never blocks: when the queue is full the event is dropped and
//!   counted, and an [`EventKind::EventsDropped`] event follows when there is room. Events are
//!   delivered in order. [`Notifier::close`] drains what is queued (bounded) and returns only
//!   after the last callback has returned.
//! - [`StateWatch`]: condition-variable waits for "a writer is available" and "the
//!   generation moved".
//! - [`log_event`]: a subscriber that writes events to the `log` crate.
//!
//! Costs: one thread per [`Notifier`]; `publish` is one bounded-channel `try_send`.

mod bus;
mod event;
mod watch;

pub use bus::{Notifier, SubscriptionId};
pub use event::{Event, EventKind};
pub use watch::{StateWatch, WaitError, WatchState};

/// A subscriber body that logs every event through the `log` crate (`info`, `warn` for
/// failures). Use with [`Notifier::subscribe`].
pub fn log_event(event: &Event) {
    match event.kind {
        EventKind::EndpointDown
        | EventKind::FailoverFailed
        | EventKind::SplitBrain
        | EventKind::OutcomeUnknown
        | EventKind::EventsDropped => log::warn!(target: "drfailover", "{}", event.summary()),
        _ => log::info!(target: "drfailover", "{}", event.summary()),
    }
}
