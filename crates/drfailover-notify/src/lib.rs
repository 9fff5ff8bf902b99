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
//! - [`Webhook`] (feature `webhook`, on by default): HTTP POST of the JSON event, or a
//!   Slack-compatible text; timeouts, retries with backoff; URLs redacted in logs.
//! - [`CommandHook`]: run a program with the event as JSON on stdin and key fields in
//!   environment variables, with a timeout.
//! - [`backoff::Backoff`]: the workspace's one retry-pause rule (exponential, full jitter,
//!   capped), used here by webhooks and by the client and the announcers.
//! - [`AsyncSink`]: runs a slow subscriber (webhook, hook) on a thread of its own with a
//!   bounded queue, so it never holds up the dispatcher or other subscribers.
//!
//! Costs: one thread per [`Notifier`], plus one per configured webhook or hook; `publish`
//! is one bounded-channel `try_send`.

pub mod backoff;
mod bus;
mod event;
mod hook;
mod sink;
mod watch;
#[cfg(feature = "webhook")]
mod webhook;

pub use bus::{Notifier, SubscriptionId};
pub use event::{Event, EventKind};
pub use hook::CommandHook;
pub use sink::AsyncSink;
pub use watch::{StateWatch, WaitError, WatchState};
#[cfg(feature = "webhook")]
pub use webhook::{redact_url, Webhook, WebhookFormat};

/// A subscriber body that logs every event through the `log` crate (`info`, `warn` for
/// failures). Use with [`Notifier::subscribe`].
pub fn log_event(event: &Event) {
    match event.kind {
        EventKind::EndpointDown
        | EventKind::FailoverFailed
        | EventKind::SplitBrain
        | EventKind::OutcomeUnknown
        | EventKind::EventsDropped
        | EventKind::PrimaryUnreachable
        | EventKind::FailoverBlocked
        | EventKind::StepFailed => log::warn!(target: "drfailover", "{}", event.summary()),
        _ => log::info!(target: "drfailover", "{}", event.summary()),
    }
}
