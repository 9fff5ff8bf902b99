//! One drfailover client per process (the monitor), started at the first managed connect and
//! never stopped (process exit ends its threads; nothing waits for them). A forked child
//! starts its own at its first managed call: the parent's threads do not exist there, so its
//! client is leaked, never closed (closing would wait for them).

use std::ffi::CString;
use std::mem::ManuallyDrop;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, Instant};

use drfailover_conn::{Activity, Client, EventKind, Health, WriterView};

use crate::policy::{in_flight_abort, MonitorNews, WriterNow};
use crate::settings::Settings;

/// The process's monitor: a drfailover client used only for what it knows (writer,
/// generation), never for statements.
pub struct Monitor {
    /// Never dropped: in a forked child its threads do not exist, and closing would wait for
    /// them; at process exit nothing needs to wait.
    client: ManuallyDrop<Client>,
    view: WriterView,
    /// The writer a managed statement of this process saw refuse a write as read-only, with
    /// the generation it was writer of ([`refusal_mark`]; 0: none): no connect goes there
    /// until the generation changes. The client's monitor drops such a writer as soon as it
    /// reads the report; this closes the window before it does, in which a program that
    /// reconnects at once after the error would land on the fenced node again.
    refused: AtomicU64,
    /// The managed statements running on the writer, for the client's monitor (statements
    /// that stop completing get the writer probed at once).
    activity: Activity,
    pid: u32,
    /// How long a connect or a move waits for a writer.
    pub failover_timeout: Duration,
    /// The handshake bound of a connect this library makes for a program that set none, in
    /// the client library's whole seconds (the DSN's `connect_timeout_ms`, rounded up).
    pub connect_timeout_secs: u32,
}

/// Where a handle should connect now.
#[derive(Debug)]
pub struct Target {
    /// The writer's index into the configured endpoints.
    pub index: usize,
    /// The generation it is writer of.
    pub generation: u64,
    /// Its address (the resolved IP for a host name) and port, for the client library.
    pub host: CString,
    /// Its TCP port, for the client library.
    pub port: u16,
    /// The bound of the handshake when the program set no connect timeout (whole seconds).
    pub handshake_secs: u32,
}

impl Monitor {
    /// The writer now. One atomic load; never blocks.
    #[inline]
    pub fn now(&self) -> WriterNow {
        let (writer, generation) = self.view.current();
        WriterNow {
            known: writer.is_some(),
            generation,
        }
    }

    /// The current generation's writer, waiting for one until `deadline`. A writer that
    /// stopped answering its probes is not a target (a connect to a frozen node would wait
    /// for its greeting): its news are awaited, re-checked every [`UNANSWERED_RECHECK`].
    /// Nor is a writer this process saw refuse a write as read-only: the next generation is
    /// awaited. Blocks on a condition variable; `None` when none appeared in time.
    pub fn writer_by(&self, deadline: Instant) -> Option<Target> {
        loop {
            let (writer, generation) = self.view.current();
            let mut wait = None;
            if let Some(index) = writer {
                let state = self.client.state();
                let refused =
                    self.refused.load(Ordering::Acquire) == refusal_mark(index, generation);
                match state.endpoints.get(index) {
                    Some(_) if refused => {}
                    Some(status) if status.health != Health::Up => {
                        wait = Some(UNANSWERED_RECHECK);
                    }
                    Some(status) => {
                        let host = status
                            .address
                            .map(|a| a.to_string())
                            .unwrap_or_else(|| status.endpoint.host.clone());
                        if let Ok(host) = CString::new(host) {
                            return Some(Target {
                                index,
                                generation,
                                host,
                                port: status.endpoint.port,
                                handshake_secs: self.connect_timeout_secs,
                            });
                        }
                    }
                    None => {}
                }
            }
            let left = deadline.checked_duration_since(Instant::now())?;
            if left.is_zero() {
                return None;
            }
            let _ = self
                .client
                .wait_generation(generation, wait.map_or(left, |w| w.min(left)));
        }
    }

    /// The gauge of managed statements running on the writer, which also reads the writer
    /// stamp. Never blocks.
    pub fn activity(&self) -> &Activity {
        &self.activity
    }

    /// Wait until the generation differs from `seen` or `deadline` passes. Blocks.
    pub fn await_change(&self, seen: u64, deadline: Instant) {
        if let Some(left) = deadline.checked_duration_since(Instant::now()) {
            let _ = self.client.wait_generation(seen, left);
        }
    }

    /// Tell the monitor a managed connection to endpoint `index` was lost or refused as
    /// read-only, so it probes now; a refusal by the current writer also keeps this process's
    /// connects away from it until the generation changes. Never blocks.
    pub fn report(&self, index: usize, read_only: bool) {
        if read_only {
            let (writer, generation) = self.view.current();
            if writer == Some(index) {
                self.refused
                    .store(refusal_mark(index, generation), Ordering::Release);
            }
        }
        self.client.report_trouble(index, read_only);
    }

    /// Whether endpoint `index` answered its latest probes (health up). Takes the client's
    /// status lock briefly; never blocks on I/O.
    pub fn answering(&self, index: usize) -> bool {
        self.client
            .state()
            .endpoints
            .get(index)
            .is_some_and(|s| s.health == Health::Up)
    }

    /// Whether this monitor belongs to the calling process (not inherited through `fork`).
    pub fn is_current_process(&self) -> bool {
        self.pid == std::process::id()
    }
}

/// How often a connect waiting on a writer that stopped answering looks again (its health
/// changes without a new generation when it answers again).
pub const UNANSWERED_RECHECK: Duration = Duration::from_millis(20);

/// The value [`Monitor`]'s refusal record holds for endpoint `index` refusing as writer of
/// `generation` (never 0).
fn refusal_mark(index: usize, generation: u64) -> u64 {
    (generation << 16) | ((index as u64 & 0xffff) + 1)
}

enum Slot {
    Empty,
    /// Starting it failed: the reason was printed once; connections pass through.
    Failed(u32),
    Running(Arc<Monitor>),
}

static SLOT: Mutex<Slot> = Mutex::new(Slot::Empty);

/// The calling process's monitor, started on first use (blocks up to one probe round, about
/// `probe_timeout_ms`, while holding a process-wide lock that only connects take). `None` when
/// it could not start (the reason is printed once on stderr).
pub fn for_process(settings: &Settings) -> Option<Arc<Monitor>> {
    let pid = std::process::id();
    let mut slot = SLOT.lock().unwrap_or_else(|e| e.into_inner());
    match &*slot {
        Slot::Running(m) if m.pid == pid => return Some(m.clone()),
        Slot::Failed(p) if *p == pid => return None,
        Slot::Running(_) => {
            // Inherited through fork: its threads are not in this process.
            if let Slot::Running(inherited) = std::mem::replace(&mut *slot, Slot::Empty) {
                std::mem::forget(inherited);
            }
        }
        _ => {}
    }
    let endpoints: Vec<String> = settings
        .config
        .endpoints
        .iter()
        .map(|e| e.to_string())
        .collect();
    // The client's endpoint health, for the event callback (set once the client exists;
    // events before that concern no managed connection yet).
    let started: Arc<OnceLock<Weak<Monitor>>> = Arc::new(OnceLock::new());
    let health_source = started.clone();
    let builder = Client::builder(settings.config.clone()).on_event(move |event| {
        // Runs on the client's notifier thread; the policy decides, the edge shuts sockets.
        let index = |name: Option<&str>| name.and_then(|n| endpoints.iter().position(|e| e == n));
        let news = match event.kind {
            EventKind::EndpointDown => {
                index(event.endpoint.as_deref()).map(|endpoint| MonitorNews::NodeDown { endpoint })
            }
            EventKind::FailoverStarted | EventKind::FailoverCompleted => {
                index(event.old_writer.as_deref()).map(|old| MonitorNews::WriterLeft {
                    old,
                    answering: health_source
                        .get()
                        .and_then(Weak::upgrade)
                        .is_some_and(|m| m.answering(old)),
                })
            }
            _ => None,
        };
        if let Some(endpoint) = in_flight_abort(news.unwrap_or(MonitorNews::Other)) {
            crate::abort::abort_endpoint(endpoint);
        }
    });
    match builder.connect() {
        Ok(client) => {
            let monitor = Arc::new(Monitor {
                view: client.writer_view(),
                refused: AtomicU64::new(0),
                activity: client.activity(),
                failover_timeout: settings.config.failover_timeout,
                connect_timeout_secs: whole_seconds_at_least_one(settings.config.connect_timeout),
                client: ManuallyDrop::new(client),
                pid,
            });
            let _ = started.set(Arc::downgrade(&monitor));
            *slot = Slot::Running(monitor.clone());
            Some(monitor)
        }
        Err(e) => {
            crate::report(&format!(
                "cannot start the monitor ({e}); connections pass through unchanged"
            ));
            *slot = Slot::Failed(pid);
            None
        }
    }
}

/// `d` in whole seconds, rounded up, at least 1 (the client library's connect timeout unit;
/// 0 would mean no bound).
fn whole_seconds_at_least_one(d: Duration) -> u32 {
    let secs = d.as_secs() + u64::from(d.subsec_nanos() > 0);
    u32::try_from(secs).unwrap_or(u32::MAX).max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusal_marks_differ_per_writer_and_generation_and_are_never_empty() {
        assert_ne!(refusal_mark(0, 0), 0);
        assert_ne!(refusal_mark(0, 5), refusal_mark(1, 5));
        assert_ne!(refusal_mark(1, 5), refusal_mark(1, 6));
    }

    #[test]
    fn handshake_bounds_round_up_to_whole_seconds() {
        assert_eq!(whole_seconds_at_least_one(Duration::ZERO), 1);
        assert_eq!(whole_seconds_at_least_one(Duration::from_millis(50)), 1);
        assert_eq!(whole_seconds_at_least_one(Duration::from_millis(1000)), 1);
        assert_eq!(whole_seconds_at_least_one(Duration::from_millis(1001)), 2);
        assert_eq!(whole_seconds_at_least_one(Duration::from_secs(30)), 30);
    }
}
