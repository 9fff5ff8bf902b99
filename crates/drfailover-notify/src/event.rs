use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;

/// What happened. Numeric values are stable (the C ABI exposes them).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
#[repr(u32)]
pub enum EventKind {
    /// A writer was adopted for the first time.
    Connected = 1,
    /// An endpoint was declared down.
    EndpointDown = 2,
    /// An endpoint came back up.
    EndpointUp = 3,
    /// The writer was lost; a new one is being sought.
    FailoverStarted = 4,
    /// A new writer was adopted after a loss (carries old/new writer and duration).
    FailoverCompleted = 5,
    /// No writer was found within the failover budget.
    FailoverFailed = 6,
    /// A name resolved to a different address.
    DnsChanged = 7,
    /// Two nodes were writable at once; the current writer was kept.
    SplitBrain = 8,
    /// A statement's connection died after it was sent: its outcome is unknown.
    OutcomeUnknown = 9,
    /// Events were dropped because the queue was full (`dropped` says how many).
    EventsDropped = 10,
    /// Orchestrator: it cannot reach the primary, but the replicas still receive from it, so
    /// there is no failover (`endpoint`, `reason` lists the facts).
    PrimaryUnreachable = 11,
    /// Orchestrator: a failover was needed but refused (zero-loss gate, anti-flapping, no
    /// candidate, not the lock holder, …); `reason` says why.
    FailoverBlocked = 12,
    /// Orchestrator: a node was fenced (fence command, or `read_only=1` and sessions killed).
    Fenced = 13,
    /// Orchestrator: one step of a failover, switchover or repair finished (`reason` names the
    /// step, `duration_us` its time).
    StepCompleted = 14,
    /// Orchestrator: a step failed (`reason` says which and why); the failover may be retried
    /// or blocked, never half-undone.
    StepFailed = 15,
}

impl EventKind {
    /// Stable lower-case name (the JSON `kind`).
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Connected => "connected",
            EventKind::EndpointDown => "endpoint_down",
            EventKind::EndpointUp => "endpoint_up",
            EventKind::FailoverStarted => "failover_started",
            EventKind::FailoverCompleted => "failover_completed",
            EventKind::FailoverFailed => "failover_failed",
            EventKind::DnsChanged => "dns_changed",
            EventKind::SplitBrain => "split_brain",
            EventKind::OutcomeUnknown => "outcome_unknown",
            EventKind::EventsDropped => "events_dropped",
            EventKind::PrimaryUnreachable => "primary_unreachable",
            EventKind::FailoverBlocked => "failover_blocked",
            EventKind::Fenced => "fenced",
            EventKind::StepCompleted => "step_completed",
            EventKind::StepFailed => "step_failed",
        }
    }
}

/// One event. Plain data; endpoints are `host:port` strings without credentials.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Event {
    /// What happened.
    pub kind: EventKind,
    /// The client that raised it (unique within the process).
    pub client_id: u64,
    /// The writer generation when it was raised.
    pub generation: u64,
    /// Wall-clock time, milliseconds since the Unix epoch.
    pub unix_ms: u64,
    /// Monotonic time, microseconds since the client started.
    pub monotonic_us: u64,
    /// The endpoint concerned, if one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// The writer before the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub old_writer: Option<String>,
    /// The writer after the change.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub new_writer: Option<String>,
    /// Why: the probe outcome or error that caused it.
    pub reason: String,
    /// Duration of the failover, where it applies.
    #[serde(skip_serializing_if = "Option::is_none", rename = "duration_us")]
    pub duration_us: Option<u64>,
    /// Number of events dropped (for `events_dropped`).
    #[serde(skip_serializing_if = "is_zero")]
    pub dropped: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

impl Event {
    /// A new event of `kind` stamped now; `epoch` is the client's start instant.
    pub fn new(kind: EventKind, client_id: u64, generation: u64, epoch: Instant) -> Self {
        Event {
            kind,
            client_id,
            generation,
            unix_ms: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap_or_default()
                .as_millis() as u64,
            monotonic_us: epoch.elapsed().as_micros() as u64,
            endpoint: None,
            old_writer: None,
            new_writer: None,
            reason: String::new(),
            duration_us: None,
            dropped: 0,
        }
    }

    /// Set the endpoint (builder style).
    pub fn endpoint(mut self, endpoint: impl Into<String>) -> Self {
        self.endpoint = Some(endpoint.into());
        self
    }

    /// Set old and new writer (builder style).
    pub fn writers(mut self, old: Option<String>, new: Option<String>) -> Self {
        self.old_writer = old;
        self.new_writer = new;
        self
    }

    /// Set the reason (builder style).
    pub fn reason(mut self, reason: impl Into<String>) -> Self {
        self.reason = reason.into();
        self
    }

    /// Set the duration (builder style).
    pub fn duration(mut self, d: Duration) -> Self {
        self.duration_us = Some(d.as_micros() as u64);
        self
    }

    /// The stable JSON form (one line).
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).unwrap_or_else(|_| "{}".into())
    }

    /// One human-readable line, e.g. for logs.
    pub fn summary(&self) -> String {
        let mut s = format!("{} gen={}", self.kind.as_str(), self.generation);
        if let Some(e) = &self.endpoint {
            s.push_str(&format!(" endpoint={e}"));
        }
        if self.old_writer.is_some() || self.new_writer.is_some() {
            s.push_str(&format!(
                " writer={}->{}",
                self.old_writer.as_deref().unwrap_or("none"),
                self.new_writer.as_deref().unwrap_or("none")
            ));
        }
        if let Some(d) = self.duration_us {
            s.push_str(&format!(" took={:.1}ms", d as f64 / 1000.0));
        }
        if self.dropped > 0 {
            s.push_str(&format!(" dropped={}", self.dropped));
        }
        if !self.reason.is_empty() {
            s.push_str(&format!(" reason=\"{}\"", self.reason));
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_is_stable_and_compact() {
        let mut e = Event::new(EventKind::FailoverCompleted, 7, 2, Instant::now())
            .writers(Some("a:1".into()), Some("b:1".into()))
            .reason("refused")
            .duration(Duration::from_millis(12));
        e.unix_ms = 1;
        e.monotonic_us = 2;
        assert_eq!(
            e.to_json(),
            r#"{"kind":"failover_completed","client_id":7,"generation":2,"unix_ms":1,"monotonic_us":2,"old_writer":"a:1","new_writer":"b:1","reason":"refused","duration_us":12000}"#
        );
    }
}
