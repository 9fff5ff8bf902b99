//! Event callbacks.

use std::ffi::CString;
use std::os::raw::{c_char, c_void};
use std::ptr;

use drfailover_conn::{Event, EventKind};

use crate::guard::Failure;

/// Kinds of event. Values are stable: a released value never changes meaning, and new kinds
/// get new values. Handle `DR_EVENT_OTHER` (and any value you do not know) as "something else
/// happened": `json` names it.
#[repr(u32)]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum dr_event_kind {
    /// A kind this version of the library has no constant for; its name is the `kind` field
    /// of `json`.
    DR_EVENT_OTHER = 0,
    /// A writer was adopted for the first time.
    DR_EVENT_CONNECTED = 1,
    /// An endpoint was declared down (`endpoint`, `reason`).
    DR_EVENT_ENDPOINT_DOWN = 2,
    /// An endpoint came back up.
    DR_EVENT_ENDPOINT_UP = 3,
    /// The writer was lost (`old_writer`); a new one is being sought.
    DR_EVENT_FAILOVER_STARTED = 4,
    /// A new writer was adopted (`old_writer`, `new_writer`, `duration_us`).
    DR_EVENT_FAILOVER_COMPLETED = 5,
    /// No writer was found within `failover_timeout_ms`.
    DR_EVENT_FAILOVER_FAILED = 6,
    /// A name resolved to a different address.
    DR_EVENT_DNS_CHANGED = 7,
    /// Two nodes were writable at once; the current writer was kept (`endpoint` lists the
    /// others).
    DR_EVENT_SPLIT_BRAIN = 8,
    /// A statement's connection died after it was sent; it was not replayed.
    DR_EVENT_OUTCOME_UNKNOWN = 9,
    /// `dropped` events were lost because the event queue was full.
    DR_EVENT_EVENTS_DROPPED = 10,
    /// Orchestrator: the primary cannot be reached, but the replicas still receive from it, so
    /// there is no failover (`endpoint`; `reason` lists the facts).
    DR_EVENT_PRIMARY_UNREACHABLE = 11,
    /// Orchestrator: a failover was needed but refused (zero-loss gate, anti-flapping, no
    /// candidate, not the lock holder, …); `reason` says why.
    DR_EVENT_FAILOVER_BLOCKED = 12,
    /// Orchestrator: a node was fenced (fence command, or `read_only=1` and sessions killed).
    DR_EVENT_FENCED = 13,
    /// Orchestrator: one step of a failover, switchover or repair finished (`reason` names the
    /// step, `duration_us` its time).
    DR_EVENT_STEP_COMPLETED = 14,
    /// Orchestrator: a step failed (`reason` says which and why).
    DR_EVENT_STEP_FAILED = 15,
}

/// One event, valid only during the callback that receives it (copy what you keep). String
/// fields are NUL-terminated UTF-8 or NULL when they do not apply; none contains a secret.
#[repr(C)]
pub struct dr_event {
    /// What happened.
    pub kind: dr_event_kind,
    /// The client that raised it (unique within the process).
    pub client_id: u64,
    /// The writer generation when it was raised.
    pub generation: u64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// Monotonic time, microseconds since the client started.
    pub monotonic_us: u64,
    /// Duration of the failover in microseconds (`FAILOVER_COMPLETED`/`FAILED`), else 0.
    pub duration_us: u64,
    /// Number of events dropped (`EVENTS_DROPPED`), else 0.
    pub dropped: u64,
    /// The endpoint concerned (`"host:port"`), or NULL.
    pub endpoint: *const c_char,
    /// The writer before the change, or NULL.
    pub old_writer: *const c_char,
    /// The writer after the change, or NULL.
    pub new_writer: *const c_char,
    /// Why it happened (probe outcome or error), possibly empty; never NULL.
    pub reason: *const c_char,
    /// The whole event as one line of JSON; never NULL.
    pub json: *const c_char,
}

/// An event callback: `userdata` as registered, and the event (valid during the call only).
pub type dr_event_cb = Option<unsafe extern "C" fn(userdata: *mut c_void, event: *const dr_event)>;

/// Called once with `userdata` when a callback is unregistered for good (at `dr_close`).
pub type dr_finalizer = Option<unsafe extern "C" fn(userdata: *mut c_void)>;

/// A C callback with its userdata and finalizer.
pub(crate) struct Subscription {
    callback: unsafe extern "C" fn(*mut c_void, *const dr_event),
    userdata: *mut c_void,
    finalizer: dr_finalizer,
}

// SAFETY: the header tells C callers that callbacks run on the notifier thread with their
// userdata; registering one is the caller's promise that userdata may be used there.
unsafe impl Send for Subscription {}
// SAFETY: only the notifier thread calls the callback, one call at a time.
unsafe impl Sync for Subscription {}

impl Drop for Subscription {
    fn drop(&mut self) {
        if let Some(finalizer) = self.finalizer {
            // SAFETY: the caller registered this finalizer for this userdata; runs once.
            unsafe { finalizer(self.userdata) };
        }
    }
}

fn kind(k: EventKind) -> dr_event_kind {
    use dr_event_kind::*;
    match k {
        EventKind::Connected => DR_EVENT_CONNECTED,
        EventKind::EndpointDown => DR_EVENT_ENDPOINT_DOWN,
        EventKind::EndpointUp => DR_EVENT_ENDPOINT_UP,
        EventKind::FailoverStarted => DR_EVENT_FAILOVER_STARTED,
        EventKind::FailoverCompleted => DR_EVENT_FAILOVER_COMPLETED,
        EventKind::FailoverFailed => DR_EVENT_FAILOVER_FAILED,
        EventKind::DnsChanged => DR_EVENT_DNS_CHANGED,
        EventKind::SplitBrain => DR_EVENT_SPLIT_BRAIN,
        EventKind::OutcomeUnknown => DR_EVENT_OUTCOME_UNKNOWN,
        EventKind::EventsDropped => DR_EVENT_EVENTS_DROPPED,
        EventKind::PrimaryUnreachable => DR_EVENT_PRIMARY_UNREACHABLE,
        EventKind::FailoverBlocked => DR_EVENT_FAILOVER_BLOCKED,
        EventKind::Fenced => DR_EVENT_FENCED,
        EventKind::StepCompleted => DR_EVENT_STEP_COMPLETED,
        EventKind::StepFailed => DR_EVENT_STEP_FAILED,
        // `EventKind` is non-exhaustive: a kind added later is "something else", never
        // mistaken for a released kind.
        _ => DR_EVENT_OTHER,
    }
}

fn c(s: &str) -> CString {
    CString::new(s.replace('\0', " ")).unwrap_or_default()
}

impl Subscription {
    pub(crate) fn new(
        callback: dr_event_cb,
        userdata: *mut c_void,
        finalizer: dr_finalizer,
    ) -> Result<Subscription, Failure> {
        let callback = callback.ok_or_else(|| Failure::invalid("callback is NULL"))?;
        Ok(Subscription {
            callback,
            userdata,
            finalizer,
        })
    }

    /// Deliver one event to C.
    pub(crate) fn deliver(&self, e: &Event) {
        let opt = |s: &Option<String>| s.as_deref().map(c);
        let (endpoint, old, new) = (opt(&e.endpoint), opt(&e.old_writer), opt(&e.new_writer));
        let reason = c(&e.reason);
        let json = c(&e.to_json());
        let ptr_of = |s: &Option<CString>| s.as_ref().map_or(ptr::null(), |s| s.as_ptr());
        let event = dr_event {
            kind: kind(e.kind),
            client_id: e.client_id,
            generation: e.generation,
            unix_ms: e.unix_ms,
            monotonic_us: e.monotonic_us,
            duration_us: e.duration_us.unwrap_or(0),
            dropped: e.dropped,
            endpoint: ptr_of(&endpoint),
            old_writer: ptr_of(&old),
            new_writer: ptr_of(&new),
            reason: reason.as_ptr(),
            json: json.as_ptr(),
        };
        // SAFETY: a callback registered by the C caller; `event` and its strings live until it
        // returns.
        unsafe { (self.callback)(self.userdata, &event) };
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_kind_maps_to_the_same_value() {
        use EventKind::*;
        let all = [
            Connected,
            EndpointDown,
            EndpointUp,
            FailoverStarted,
            FailoverCompleted,
            FailoverFailed,
            DnsChanged,
            SplitBrain,
            OutcomeUnknown,
            EventsDropped,
            PrimaryUnreachable,
            FailoverBlocked,
            Fenced,
            StepCompleted,
            StepFailed,
        ];
        for (i, k) in all.into_iter().enumerate() {
            assert_eq!(kind(k) as u32, k as u32, "{k:?}");
            assert_eq!(k as u32, i as u32 + 1, "{k:?}");
        }
    }
}
