//! State shared by the client handle, the calling threads and the monitor thread.

use std::io::Write;
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Mutex, MutexGuard};
use std::time::Instant;

use crossbeam_channel::Sender;
use drfailover_mysql::ConnectOptions;
use drfailover_notify::{Event, EventKind, Notifier, StateWatch};
use drfailover_probe::{Health, OutcomeClass};

use crate::login::{Login, Ticket};
use crate::pool::Pool;
use crate::{Config, Endpoint, WriterStamp};

/// Messages to the monitor thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Wake {
    /// Application traffic saw a hard failure on this endpoint: probe it now.
    Failure(usize),
    /// A write was rejected as read-only on this endpoint: re-check its role now.
    ReadOnly(usize),
    /// Stop the monitor.
    Shutdown,
}

/// Counters, all monotonic. Relaxed atomics: one uncontended add per event.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub failovers: AtomicU64,
    pub connects: AtomicU64,
    pub probes: AtomicU64,
    pub retries: AtomicU64,
    pub outcome_unknown: AtomicU64,
    pub aborted: AtomicU64,
}

impl Counters {
    pub fn bump(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }
}

/// What the monitor last knew of one endpoint (for [`crate::Client::state`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EndpointStatus {
    /// The configured host and port.
    pub endpoint: Endpoint,
    /// Unknown, up, suspect or down, as the probes last saw it.
    pub health: Health,
    /// Whether its latest probe saw it writable.
    pub writable: bool,
    /// Class of its latest probe (`None` before the first).
    pub last_outcome: Option<OutcomeClass>,
    /// The address it resolved to (the host itself when it is an IP address).
    pub address: Option<std::net::IpAddr>,
}

pub(crate) struct Shared {
    pub config: Config,
    pub client_id: u64,
    pub epoch: Instant,
    /// `(generation << 16) | (writer index + 1)`; low bits 0 = no writer. One atomic load on
    /// the hot path.
    writer: AtomicU64,
    pub pool: Pool,
    pub notifier: Notifier,
    pub watch: StateWatch,
    pub counters: Counters,
    pub wake: Sender<Wake>,
    /// Rung (one byte, non-blocking) after every message on `wake`: the monitor's `poll(2)`
    /// watches the other end, so a wake-up interrupts probes in flight.
    doorbell: UnixStream,
    pub closed: AtomicBool,
    /// Where new connections to each endpoint go (the address changes when DNS does). `None`
    /// for a host name the monitor has not resolved yet: the C client never gets a name to
    /// resolve itself (its `getaddrinfo` has no deadline).
    pub endpoint_options: Vec<Mutex<Option<ConnectOptions>>>,
    pub status: Mutex<Vec<EndpointStatus>>,
    /// Where logins get their credentials (they may change: `secret_arn`, `auth=rds_iam`).
    pub login: Login,
    /// Statements callers run on the writer over their own connections ([`crate::Activity`]).
    pub activity: crate::activity::Gauge,
}

impl Shared {
    pub fn new(
        config: Config,
        login: Login,
        client_id: u64,
        notifier: Notifier,
        wake: Sender<Wake>,
        doorbell: UnixStream,
    ) -> Shared {
        let endpoint_options = config
            .endpoints
            .iter()
            .map(|e| {
                let resolved = !e.is_name();
                Mutex::new(resolved.then(|| config.connect_options(e)))
            })
            .collect();
        let status = config
            .endpoints
            .iter()
            .map(|e| EndpointStatus {
                endpoint: e.clone(),
                health: Health::Unknown,
                writable: false,
                last_outcome: None,
                address: e.host.parse().ok(),
            })
            .collect();
        Shared {
            pool: Pool::new(config.pool_size),
            epoch: notifier.epoch(),
            config,
            client_id,
            writer: AtomicU64::new(0),
            notifier,
            watch: StateWatch::new(),
            counters: Counters::default(),
            wake,
            doorbell,
            closed: AtomicBool::new(false),
            endpoint_options,
            status: Mutex::new(status),
            login,
            activity: Default::default(),
        }
    }

    /// The current writer index and generation. One atomic load.
    #[inline]
    pub fn writer(&self) -> (Option<usize>, u64) {
        let stamp = self.writer_stamp();
        (stamp.writer(), stamp.generation())
    }

    /// The current writer index and generation as one stamp. One atomic load.
    #[inline]
    pub fn writer_stamp(&self) -> WriterStamp {
        WriterStamp::from_word(self.writer.load(Ordering::Acquire))
    }

    pub fn set_writer(&self, writer: Option<usize>, generation: u64) {
        self.writer.store(
            WriterStamp::of(writer, generation).word(),
            Ordering::Release,
        );
        self.watch.publish(writer.is_some(), generation);
    }

    pub fn status(&self) -> MutexGuard<'_, Vec<EndpointStatus>> {
        self.status.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Options for a new connection to endpoint `i` (its current address and the current
    /// credentials, with the [`Ticket`] to renew them by), or an error when its name has not
    /// resolved yet. May block on an AWS credential lookup (see [`Login::apply`]).
    pub fn options(&self, i: usize) -> Result<(ConnectOptions, Ticket), drfailover_mysql::Error> {
        let mut options = self.address_options(i)?;
        let ticket = self
            .login
            .apply(&self.config.endpoints[i], &mut options, true)?;
        Ok((options, ticket))
    }

    fn address_options(&self, i: usize) -> Result<ConnectOptions, drfailover_mysql::Error> {
        self.endpoint_options[i]
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
            .ok_or_else(|| {
                // 2005: the C client's "unknown server host".
                drfailover_mysql::Error::from_server(
                    2005,
                    "HY000",
                    &format!(
                        "endpoint {}: its host name has not resolved",
                        self.endpoint_name(i)
                    ),
                )
            })
    }

    pub fn endpoint_name(&self, i: usize) -> String {
        self.config.endpoints[i].to_string()
    }

    pub fn event(&self, kind: EventKind, generation: u64) -> Event {
        Event::new(kind, self.client_id, generation, self.epoch)
    }

    /// Tell the monitor; never blocks (a full queue already holds a wake-up).
    pub fn wake(&self, wake: Wake) {
        let _ = self.wake.try_send(wake);
        self.ring();
    }

    /// Ring the monitor's doorbell. Never blocks (a full socket buffer already rings).
    pub fn ring(&self) {
        let _ = (&self.doorbell).write(&[1]);
    }
}
