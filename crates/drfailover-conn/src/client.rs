use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use drfailover_mysql::{Connection, Deadline, ErrorClass, OwnedAbortHandle, QueryResult};
use drfailover_notify::{Event, EventKind, Notifier, SubscriptionId, WaitError};
use drfailover_probe::OutcomeClass;

use crate::monitor::{first_round_budget, FirstRound, Monitor};
use crate::pool::{Acquired, Leased};
use crate::retry::{verdict, RetryDecision, STATEMENT_BACKOFF};
use crate::shared::{Counters, EndpointStatus, Shared, Wake};
use crate::{Config, Endpoint, Error};

static NEXT_CLIENT_ID: AtomicU64 = AtomicU64::new(1);

/// While waiting for a writer with credentials from AWS: how often a caller checks whether a
/// refused probe asked for them to be renewed.
const STALE_CHECK: Duration = Duration::from_millis(200);

/// Per-statement options.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct QueryOptions {
    /// The statement may safely run twice: after a connection loss once sent, it is retried
    /// once instead of failing with [`Error::OutcomeUnknown`].
    pub idempotent: bool,
}

/// A snapshot of what the client knows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClientState {
    /// A writer is available.
    pub ready: bool,
    /// The writer generation (bumped on every writer change).
    pub generation: u64,
    /// The current writer.
    pub writer: Option<Endpoint>,
    /// Every endpoint in priority order.
    pub endpoints: Vec<EndpointStatus>,
}

/// Counters since the client started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Writer changes after the first writer was adopted.
    pub failovers: u64,
    /// Connections opened for the pool.
    pub connects: u64,
    /// Probes run by the monitor.
    pub probes: u64,
    /// Statements retried (not sent, rejected as read-only, or idempotent).
    pub retries: u64,
    /// Statements that failed with an unknown outcome.
    pub outcome_unknown: u64,
    /// In-flight connections aborted because their writer went down.
    pub aborted: u64,
    /// Events dropped because the event queue was full.
    pub events_dropped: u64,
}

type Subscriber = Box<dyn Fn(&Event) + Send + Sync>;

/// Configures and starts a [`Client`]; lets event subscribers be in place before the first
/// probe round.
pub struct ClientBuilder {
    config: Config,
    subscribers: Vec<Subscriber>,
}

impl std::fmt::Debug for ClientBuilder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientBuilder")
            .field("config", &self.config)
            .field("subscribers", &self.subscribers.len())
            .finish()
    }
}

impl ClientBuilder {
    /// A builder for `config`.
    pub fn new(config: Config) -> Self {
        ClientBuilder {
            config,
            subscribers: Vec::new(),
        }
    }

    /// Subscribe `callback` to every event, from the very first (see [`Client::subscribe`]).
    pub fn on_event(mut self, callback: impl Fn(&Event) + Send + Sync + 'static) -> Self {
        self.subscribers.push(Box::new(callback));
        self
    }

    /// Start the client (see [`Client::connect`]).
    pub fn connect(self) -> Result<Client, Error> {
        Client::start(self.config, self.subscribers)
    }
}

/// A failover-aware client: a pool of connections to whichever node is the writer, a monitor
/// thread that probes every node, and an event notifier thread.
///
/// `Send + Sync`: share it between threads (e.g. in an `Arc`); calls run concurrently and no
/// lock is held while a statement runs. Threads: two per client (monitor, notifier).
pub struct Client {
    shared: Arc<Shared>,
    monitor: Mutex<Option<JoinHandle<()>>>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("id", &self.shared.client_id)
            .field("endpoints", &self.shared.config.endpoints)
            .field("user", &self.shared.config.user)
            .finish_non_exhaustive()
    }
}

impl Client {
    /// Parse `dsn` and [`Client::connect`].
    pub fn connect_dsn(dsn: &str) -> Result<Client, Error> {
        Client::connect(Config::from_dsn(dsn)?)
    }

    /// Start the client: spawn the monitor and notifier threads and run one probe round over
    /// every endpoint, all at once. Blocks up to about `probe_timeout_ms`; when some endpoint
    /// is a host name, up to `2 × dns_timeout_ms + probe_timeout_ms` (its probe starts when its
    /// name resolved), except that once a writer is known it does not wait for names still
    /// being resolved. A name that does not resolve is an endpoint that is down
    /// (`endpoint_down`, reason `unresolved: …`), never an error here. Returns once that round
    /// is done, with or without a writer (use [`Client::wait_ready`]). Fails on bad
    /// configuration, or with [`Error::Auth`] when every endpoint rejected the credentials.
    pub fn connect(config: Config) -> Result<Client, Error> {
        ClientBuilder::new(config).connect()
    }

    /// A builder, to subscribe to events before the client starts (so the first `connected`
    /// event is seen too).
    pub fn builder(config: Config) -> ClientBuilder {
        ClientBuilder::new(config)
    }

    fn start(mut config: Config, subscribers: Vec<Subscriber>) -> Result<Client, Error> {
        config.validate()?;
        let login = crate::login::Login::new(&mut config)?;
        if config.endpoints.is_empty() {
            return Err(Error::Config(
                "no endpoints: give at least one host (the secret names none)".into(),
            ));
        }
        let client_id = NEXT_CLIENT_ID.fetch_add(1, Ordering::Relaxed);
        let notifier = Notifier::new(config.event_queue, client_id, Instant::now())
            .map_err(|e| Error::System(format!("start notifier thread: {e}")))?;
        for subscriber in subscribers {
            notifier.subscribe(subscriber);
        }
        for sink in crate::sinks::from_config(&config)? {
            notifier.subscribe(move |e| sink.offer(e));
        }
        let (wake_tx, wake_rx) = crossbeam_channel::bounded(64);
        let (bell, bell_rx) = std::os::unix::net::UnixStream::pair()
            .and_then(|(a, b)| {
                a.set_nonblocking(true)?;
                b.set_nonblocking(true)?;
                Ok((a, b))
            })
            .map_err(|e| Error::System(format!("monitor doorbell: {e}")))?;
        let shared = Arc::new(Shared::new(
            config, login, client_id, notifier, wake_tx, bell,
        ));
        let (first_tx, first_rx) = std::sync::mpsc::sync_channel::<FirstRound>(1);
        let resolver = crate::monitor::resolver_for(&shared.config)?;
        let monitor = Monitor::new(shared.clone(), wake_rx, bell_rx, resolver);
        let handle = std::thread::Builder::new()
            .name("drfailover-monitor".into())
            .spawn(move || monitor.run(first_tx))
            .map_err(|e| Error::System(format!("start monitor thread: {e}")))?;
        let client = Client {
            shared: shared.clone(),
            monitor: Mutex::new(Some(handle)),
        };
        let first = match first_rx.recv_timeout(first_round_budget(&shared)) {
            Ok(first) => first,
            // The monitor is late (a machine too loaded to run it, or the C client's own
            // name lookup with VERIFY_IDENTITY): keep the bound and start without a verdict;
            // the client works as soon as the monitor finds the writer.
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => {
                log::warn!(target: "drfailover", "the first probe round did not end within {:?}; starting without it", first_round_budget(&shared));
                return Ok(client);
            }
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                return Err(Error::System(
                    "the monitor thread stopped during its first probe round".into(),
                ))
            }
        };
        // Every endpoint was probed and rejected the credentials (or TLS): a configuration
        // problem, reported with the server's own errno, SQLSTATE and message (e.g. 1044/42000
        // for an unknown database, 1045/28000 for a wrong password), never a made-up one. An
        // endpoint without an observation (a name that did not resolve) is down, not a
        // credentials problem.
        let all = |class: OutcomeClass| {
            !first.observations.is_empty()
                && first
                    .observations
                    .iter()
                    .all(|o| o.as_ref().is_some_and(|o| o.class == class))
        };
        let first_error = || {
            first
                .observations
                .iter()
                .flatten()
                .find_map(|o| o.error.clone())
                .unwrap_or_else(|| {
                    // A probe class without a client error cannot come from the C client's probe;
                    // keep the detail, claim no errno.
                    drfailover_mysql::Error::from_server(
                        0,
                        "HY000",
                        first
                            .observations
                            .iter()
                            .flatten()
                            .next()
                            .map_or("", |o| o.detail.as_str()),
                    )
                })
        };
        if all(OutcomeClass::TlsFailed) {
            return Err(Error::Tls(first_error()));
        }
        if all(OutcomeClass::AuthFailed) {
            return Err(Error::Auth(first_error()));
        }
        Ok(client)
    }

    /// Run one statement on the writer and fetch its result.
    ///
    /// Blocks while the statement runs and, during a failover, up to `failover_timeout_ms`
    /// waiting for a writer. A statement that certainly did not run (connection found dead
    /// before sending, rejected by a read-only node) is retried on the new writer; one whose
    /// connection died after sending fails with [`Error::OutcomeUnknown`] and is never replayed.
    /// For autocommit statements: one that leaves a transaction open is rolled back and fails
    /// with [`Error::TransactionNotAllowed`].
    pub fn query(&self, sql: &str) -> Result<QueryResult, Error> {
        self.query_with(sql, QueryOptions::default())
    }

    /// [`Client::query`] with options (e.g. idempotent).
    pub fn query_with(&self, sql: &str, options: QueryOptions) -> Result<QueryResult, Error> {
        self.check_open()?;
        let started = Instant::now();
        let deadline = started + self.shared.config.failover_timeout;
        let backoff = STATEMENT_BACKOFF;
        let mut attempt = 0u32;
        let mut retried_after_send = false;
        let mut last_error: Option<drfailover_mysql::Error> = None;
        loop {
            let mut lease = self.lease_until(deadline, started, &mut last_error)?;
            let outcome = lease.conn().query_checked(sql);
            let (endpoint, generation) = (lease.endpoint(), lease.generation());
            let failure = match outcome {
                Ok(result) => {
                    if lease.conn().in_transaction() {
                        let _ = lease.conn().query("ROLLBACK");
                        self.give_back(lease, true);
                        return Err(Error::TransactionNotAllowed);
                    }
                    self.give_back(lease, true);
                    return Ok(result);
                }
                Err(failure) => failure,
            };
            let error = failure.error().clone();
            match verdict(&failure, options.idempotent, retried_after_send) {
                RetryDecision::Fail => {
                    self.give_back(lease, true);
                    return Err(Error::Server(error));
                }
                RetryDecision::OutcomeUnknown => {
                    self.give_back(lease, false);
                    self.shared.wake(Wake::Failure(endpoint));
                    Counters::bump(&self.shared.counters.outcome_unknown);
                    self.shared.notifier.publish(
                        self.shared
                            .event(EventKind::OutcomeUnknown, generation)
                            .endpoint(self.shared.endpoint_name(endpoint))
                            .reason(error.to_string()),
                    );
                    return Err(Error::OutcomeUnknown(error));
                }
                RetryDecision::RetryIdempotent => {
                    retried_after_send = true;
                    self.give_back(lease, false);
                    self.shared.wake(Wake::Failure(endpoint));
                }
                RetryDecision::RetryNotExecuted => {
                    self.give_back(lease, false);
                    self.shared.wake(Wake::Failure(endpoint));
                }
                RetryDecision::RetryReadOnly => {
                    self.give_back(lease, false);
                    self.shared.wake(Wake::ReadOnly(endpoint));
                }
            }
            Counters::bump(&self.shared.counters.retries);
            last_error = Some(error);
            if Instant::now() >= deadline {
                return Err(Error::NoWriter {
                    waited: started.elapsed(),
                    last: last_error,
                });
            }
            // Wait for the monitor to move the generation, or a jittered pause, whichever first.
            let pause = backoff.delay(attempt).min(deadline - Instant::now());
            attempt += 1;
            let _ = self.shared.watch.wait_generation(generation, pause);
        }
    }

    /// Lease a connection to the current writer, opening one if needed; waits for a writer
    /// until `deadline`.
    fn lease_until(
        &self,
        deadline: Instant,
        started: Instant,
        last_error: &mut Option<drfailover_mysql::Error>,
    ) -> Result<Leased, Error> {
        let backoff = STATEMENT_BACKOFF;
        let mut attempt = 0u32;
        let mut renewed = false;
        loop {
            self.check_open()?;
            let no_writer = |last: &Option<drfailover_mysql::Error>| Error::NoWriter {
                waited: started.elapsed(),
                last: last.clone(),
            };
            let (writer, generation) = self.shared.writer();
            let Some(writer) = writer else {
                // Credentials a probe found refused are renewed by a waiting caller (the
                // monitor never blocks on AWS); it then waits in short slices to notice the
                // next such mark.
                let login = &self.shared.login;
                login.renew_if_stale(deadline);
                let left = deadline.saturating_duration_since(Instant::now());
                let slice = if login.is_dynamic() {
                    left.min(STALE_CHECK)
                } else {
                    left
                };
                match self.shared.watch.wait_ready(slice) {
                    Err(WaitError::TimedOut) if Instant::now() < deadline => continue,
                    Ok(_) => continue,
                    Err(WaitError::Closed) => return Err(Error::Closed),
                    Err(WaitError::TimedOut) => return Err(no_writer(last_error)),
                }
            };
            let slot = match self.shared.pool.acquire(writer, generation, deadline) {
                Acquired::Idle(lease) => return Ok(lease),
                Acquired::Exhausted => {
                    self.check_open()?;
                    return Err(Error::PoolTimeout {
                        waited: started.elapsed(),
                        pool_size: self.shared.config.pool_size,
                    });
                }
                Acquired::Slot(id) => id,
            };
            let connect_deadline =
                deadline.min(Instant::now() + self.shared.config.connect_timeout);
            match self.open(writer, slot, Deadline::at(connect_deadline)) {
                Ok(conn) => {
                    Counters::bump(&self.shared.counters.connects);
                    return Ok(self.shared.pool.register(slot, conn, writer, generation));
                }
                Err((e, ticket)) => {
                    self.shared.pool.cancel_slot();
                    match e.class() {
                        // Refused: once, with credentials fetched again (a rotated secret, a
                        // new token), at once.
                        ErrorClass::Auth
                            if !renewed
                                && self.shared.login.renew(
                                    ticket,
                                    &self.shared.config.endpoints[writer],
                                    deadline,
                                ) =>
                        {
                            renewed = true;
                            continue;
                        }
                        ErrorClass::Auth => return Err(Error::Auth(e)),
                        ErrorClass::Tls => return Err(Error::Tls(e)),
                        ErrorClass::ConnectionLost
                        | ErrorClass::Timeout
                        | ErrorClass::TooManyConnections => {
                            // News for the monitor only while `writer` is still the writer
                            // (a login given up because the writer changed is not a failure).
                            if self.shared.writer().0 == Some(writer) {
                                self.shared.wake(Wake::Failure(writer));
                            }
                            *last_error = Some(e);
                        }
                        _ => return Err(Error::Server(e)),
                    }
                }
            }
            if Instant::now() >= deadline {
                return Err(no_writer(last_error));
            }
            let pause = backoff.delay(attempt).min(deadline - Instant::now());
            attempt += 1;
            let _ = self.shared.watch.wait_generation(generation, pause);
        }
    }

    /// Lease a connection to the current writer for direct use (prepared statements, explicit
    /// transactions, existing `mysql_*` code). Waits up to `timeout` for a writer and a free
    /// pool slot. The lease still gets in-flight abort (its socket is shut down if the writer
    /// dies) and belongs to the current generation. Give it back with [`Client::release`].
    pub fn lease(&self, timeout: Duration) -> Result<Leased, Error> {
        self.check_open()?;
        let started = Instant::now();
        let mut last = None;
        self.lease_until(started + timeout, started, &mut last)
    }

    /// Return a leased connection. It is reused only if it is healthy: no error that lost the
    /// connection, no transaction left open, socket alive, current generation; otherwise it is
    /// closed. A connection lost while leased makes the monitor probe its node at once.
    pub fn release(&self, mut lease: Leased) {
        let errno = lease.conn().last_errno();
        let lost =
            errno != 0 && drfailover_mysql::classify_errno(errno) == ErrorClass::ConnectionLost;
        if lost {
            self.shared.wake(Wake::Failure(lease.endpoint()));
        }
        let healthy =
            !lost && !lease.conn().in_transaction() && !lease.conn().abort_handle().looks_dead();
        self.give_back(lease, healthy);
    }

    /// Open a connection to endpoint `i` in reserved pool slot `slot` and run the init
    /// statements; blocks until `deadline` at most. While it logs in, the monitor's abort of
    /// `i` (declared down, or left for a promotion) makes it fail at once; on success the
    /// login stays registered until [`crate::pool::Pool::register`] makes it a lease.
    fn open(
        &self,
        i: usize,
        slot: u64,
        deadline: Deadline,
    ) -> Result<Connection, (drfailover_mysql::Error, crate::login::Ticket)> {
        let (options, ticket) = self.shared.options(i).map_err(|e| (e, 0))?;
        self.open_with(i, slot, deadline, &options)
            .map_err(|e| (e, ticket))
    }

    /// [`Client::open`] with these options.
    fn open_with(
        &self,
        i: usize,
        slot: u64,
        deadline: Deadline,
        options: &drfailover_mysql::ConnectOptions,
    ) -> Result<Connection, drfailover_mysql::Error> {
        let (mut conn, step) = Connection::start_connect(options)?;
        let abort = OwnedAbortHandle::duplicate(conn.abort_handle());
        let login = self.shared.pool.opening(slot, i, abort);
        // Left before the login was registered? (The monitor publishes the writer change
        // before it aborts the old writer's sockets, so one of the two sees the other.)
        if self.shared.writer().0 != Some(i) {
            return Err(drfailover_mysql::Error::connection_lost(
                "the writer changed while the connection was opened",
            ));
        }
        conn.finish_connect(step, deadline)?;
        for statement in &self.shared.config.init_statements {
            conn.query(statement)?;
        }
        login.keep();
        Ok(conn)
    }

    fn give_back(&self, lease: Leased, reusable: bool) {
        let (_, generation) = self.shared.writer();
        self.shared.pool.release(lease, reusable, generation);
    }

    fn check_open(&self) -> Result<(), Error> {
        if self.shared.closed.load(Ordering::Acquire) {
            Err(Error::Closed)
        } else {
            Ok(())
        }
    }

    /// Block until a writer is available (returns the generation) or `timeout` passes.
    pub fn wait_ready(&self, timeout: Duration) -> Result<u64, Error> {
        self.check_open()?;
        self.shared
            .watch
            .wait_ready(timeout)
            .map_err(|e| self.wait_error(e, timeout))
    }

    /// Block until the generation differs from `seen` (returns it) or `timeout` passes.
    pub fn wait_generation(&self, seen: u64, timeout: Duration) -> Result<u64, Error> {
        self.check_open()?;
        self.shared
            .watch
            .wait_generation(seen, timeout)
            .map_err(|e| self.wait_error(e, timeout))
    }

    fn wait_error(&self, e: WaitError, timeout: Duration) -> Error {
        match e {
            WaitError::Closed => Error::Closed,
            WaitError::TimedOut => Error::NoWriter {
                waited: timeout,
                last: None,
            },
        }
    }

    /// Subscribe to events; `callback` runs on the notifier thread, in order, never under an
    /// internal lock. It may call [`Client::query`]; it must not call [`Client::close`].
    pub fn subscribe(&self, callback: impl Fn(&Event) + Send + Sync + 'static) -> SubscriptionId {
        self.shared.notifier.subscribe(callback)
    }

    /// Remove a subscription.
    pub fn unsubscribe(&self, id: SubscriptionId) {
        self.shared.notifier.unsubscribe(id)
    }

    /// A snapshot of writer, generation and endpoint health. Cheap (one short lock).
    pub fn state(&self) -> ClientState {
        let (writer, generation) = self.shared.writer();
        ClientState {
            ready: writer.is_some(),
            generation,
            writer: writer.map(|w| self.shared.config.endpoints[w].clone()),
            endpoints: self.shared.status().clone(),
        }
    }

    /// A cheap, cloneable view of the current writer and generation, for callers that check
    /// it on every statement of their own connections (one atomic load per check).
    pub fn writer_view(&self) -> WriterView {
        WriterView {
            shared: self.shared.clone(),
        }
    }

    /// A cheap, cloneable handle for reporting the statements callers run on the writer over
    /// their own connections: when they stop completing, the monitor probes the writer at
    /// once (docs/ARCHITECTURE.md, "Writer selection"). Each report is one relaxed atomic add.
    pub fn activity(&self) -> crate::Activity {
        crate::Activity::new(self.shared.clone())
    }

    /// Tell the monitor that a statement on `endpoint` (an index into the configured
    /// endpoints) lost its connection (`read_only == false`) or was refused as read-only
    /// (`read_only == true`), so it probes that endpoint now instead of at its next tick.
    /// Never blocks; an out-of-range index is ignored.
    pub fn report_trouble(&self, endpoint: usize, read_only: bool) {
        if endpoint < self.shared.config.endpoints.len() {
            self.shared.wake(if read_only {
                Wake::ReadOnly(endpoint)
            } else {
                Wake::Failure(endpoint)
            });
        }
    }

    /// Counters since start. Cheap (atomic loads).
    pub fn stats(&self) -> Stats {
        let c = &self.shared.counters;
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Stats {
            failovers: load(&c.failovers),
            connects: load(&c.connects),
            probes: load(&c.probes),
            retries: load(&c.retries),
            outcome_unknown: load(&c.outcome_unknown),
            aborted: load(&c.aborted),
            events_dropped: self.shared.notifier.dropped(),
        }
    }

    /// The configuration (password hidden in `Debug`).
    pub fn config(&self) -> &Config {
        &self.shared.config
    }

    /// A process-unique id of this client (stamped on its events).
    pub fn id(&self) -> u64 {
        self.shared.client_id
    }

    /// Stop the monitor, deliver queued events (up to 1 s), close connections. Blocks until
    /// the threads have stopped; after it returns no callback runs. Idempotent. Calls made
    /// afterwards fail with [`Error::Closed`]. Must not be called from an event callback.
    pub fn close(&self) {
        if self.shared.closed.swap(true, Ordering::AcqRel) {
            return;
        }
        let _ = self.shared.wake.send(Wake::Shutdown);
        self.shared.ring();
        if let Some(handle) = self
            .monitor
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
        {
            let _ = handle.join();
        }
        self.shared.watch.close();
        self.shared.pool.close();
        self.shared.notifier.close(Duration::from_secs(1));
    }
}

/// The current writer and generation of one [`Client`], readable from any thread for one
/// atomic load ([`Client::writer_view`]). Keeps the client's shared state alive, not its
/// threads: after [`Client::close`] it keeps answering the last writer it knew.
#[derive(Clone)]
pub struct WriterView {
    shared: Arc<Shared>,
}

impl WriterView {
    /// The writer's index into the configured endpoints (`None`: no writer now) and the
    /// generation. One atomic load; never blocks.
    #[inline]
    pub fn current(&self) -> (Option<usize>, u64) {
        self.shared.writer()
    }

    /// The writer and generation now as one comparable [`WriterStamp`]. One atomic load;
    /// never blocks.
    #[inline]
    pub fn stamp(&self) -> WriterStamp {
        self.shared.writer_stamp()
    }
}

/// The writer and the generation packed in one word, as the client publishes them: two
/// stamps are equal exactly when both the writer and the generation are. A caller that
/// remembers the stamp its connection was made under tells whether that connection still
/// goes to the current writer with one load and one comparison ([`WriterView::stamp`],
/// [`crate::Activity::writer_stamp`]).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WriterStamp(u64);

impl WriterStamp {
    /// A stamp no client ever publishes (it would take 2^48 generations): what a caller
    /// remembers while its connection must not be used as it is.
    pub const NEVER: WriterStamp = WriterStamp(u64::MAX);

    /// The stamp of `writer` (an index into the configured endpoints; `None`: no writer)
    /// at `generation`.
    pub fn of(writer: Option<usize>, generation: u64) -> WriterStamp {
        let index = writer.map_or(0, |w| (w as u64 + 1) & 0xffff);
        WriterStamp((generation << 16) | index)
    }

    /// The writer's index into the configured endpoints (`None`: no writer).
    pub fn writer(self) -> Option<usize> {
        ((self.0 & 0xffff) as usize).checked_sub(1)
    }

    /// The generation.
    pub fn generation(self) -> u64 {
        self.0 >> 16
    }

    /// The packed word (what the client stores in its one atomic).
    pub(crate) fn word(self) -> u64 {
        self.0
    }

    /// The stamp of a packed word.
    pub(crate) fn from_word(word: u64) -> WriterStamp {
        WriterStamp(word)
    }
}

impl std::fmt::Debug for WriterView {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let (writer, generation) = self.current();
        f.debug_struct("WriterView")
            .field("writer", &writer)
            .field("generation", &generation)
            .finish()
    }
}

impl Drop for Client {
    fn drop(&mut self) {
        self.close();
    }
}

#[cfg(test)]
mod stamp_tests {
    use super::WriterStamp;

    #[test]
    fn a_stamp_keeps_the_writer_and_the_generation_and_never_matches_a_published_one() {
        let s = WriterStamp::of(Some(2), 7);
        assert_eq!((s.writer(), s.generation()), (Some(2), 7));
        let none = WriterStamp::of(None, 7);
        assert_eq!((none.writer(), none.generation()), (None, 7));
        assert_ne!(s, none);
        assert_ne!(s, WriterStamp::of(Some(2), 8));
        assert_ne!(s, WriterStamp::of(Some(1), 7));
        assert_eq!(WriterStamp::from_word(s.word()), s);
        for generation in [0, 1, u64::MAX >> 17] {
            for writer in [None, Some(0), Some(65_533)] {
                assert_ne!(WriterStamp::of(writer, generation), WriterStamp::NEVER);
            }
        }
    }
}
