//! Failover unavailability (docs/benchmarks.md, "Method"): writer threads doing small autocommit
//! writes; the fault lands at a random moment; per thread, the gap from the last success
//! before the fault to the first success after, minus any delay the harness imposed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_conn::{Client, Error};
use drfailover_testkit::dnsmasq::DnsServer;
use drfailover_testkit::{NodeRole, Topology, APP_DATABASE, APP_PASSWORD, APP_USER};
use rand::Rng;

/// How a trial ends when some writer thread never succeeds again.
pub const NEVER_RESUMED: &str = "did not resume within 30 s";

/// The faults measured.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// kill -9 of the primary; the replica is promoted at once.
    Kill,
    /// kill -9; the replica is promoted after a fixed delay (subtracted).
    KillDelayed(Duration),
    /// SIGSTOP of the primary; promoted at once (the client must detect the silence).
    Stop,
    /// iptables DROP of the primary inside the lab namespace; promoted at once.
    Blackhole,
    /// Switchover behind a DNS name: fence, promote, flip the record (TTL in seconds).
    DnsFlip(u32),
    /// Crash behind a DNS name: kill -9, promote (relay log applied first), flip the record
    /// (TTL in seconds). Measured from the flip.
    DnsCrashFlip(u32),
    /// SIGSTOP of the primary, the standby made writable after the delay; measured from the
    /// moment the standby became writable to each thread's first acknowledged write.
    StopThenWritable(Duration),
    /// SIGSTOP of the primary and the full promotion begun at once (`STOP SLAVE IO_THREAD`
    /// waits ~2 s on a silent primary, then the relay log is applied and replication
    /// forgotten); measured from the moment the standby became writable to each thread's
    /// first acknowledged write.
    StopPromoted,
    /// The same with the primary blackholed (iptables DROP in the lab namespace).
    BlackholePromoted,
}

impl Fault {
    /// Name for tables.
    pub fn name(self) -> String {
        match self {
            Fault::Kill => "kill -9, promoted at once".into(),
            Fault::KillDelayed(d) => {
                format!("kill -9, promoted after {} ms (subtracted)", d.as_millis())
            }
            Fault::Stop => "SIGSTOP (silent), promoted at once".into(),
            Fault::Blackhole => "blackhole (iptables DROP in a netns)".into(),
            Fault::DnsFlip(ttl) => format!("switchover + DNS flip (TTL {ttl} s), from the flip"),
            Fault::DnsCrashFlip(ttl) => {
                format!("kill -9 + promote + DNS flip (TTL {ttl} s), from the flip")
            }
            Fault::StopThenWritable(d) if d.is_zero() => {
                "SIGSTOP, standby writable at the same instant (replication left attached): from writable to first write".into()
            }
            Fault::StopThenWritable(d) => format!(
                "SIGSTOP, standby writable after {} ms: from writable to first write",
                d.as_millis()
            ),
            Fault::StopPromoted => {
                "SIGSTOP, full promotion begun at once: from writable to first write".into()
            }
            Fault::BlackholePromoted => {
                "blackhole, full promotion begun at once: from writable to first write".into()
            }
        }
    }

    /// Blackhole faults: the topology runs in a lab namespace (iptables DROP there).
    pub fn needs_lab(self) -> bool {
        matches!(self, Fault::Blackhole | Fault::BlackholePromoted)
    }

    /// The DNS record's TTL, for faults behind a name.
    pub fn dns_ttl(self) -> Option<u32> {
        match self {
            Fault::DnsFlip(ttl) | Fault::DnsCrashFlip(ttl) => Some(ttl),
            _ => None,
        }
    }
}

/// How the writer threads reach the database.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Via {
    /// drfailover's `Client`.
    Library,
    /// Raw connections through HAProxy, reconnecting after any error (what HAProxy users do).
    Haproxy,
    /// The hand-written C design (bench/c/handwritten.c): one connection behind a global
    /// mutex, a ping monitor, reconnect by host name.
    HandWritten,
}

/// DRFAILOVER_BENCH_EVENTS (an investigation): the client's events and every statement that
/// failed or took over 100 ms, timestamped, so a slow trial can be explained afterwards.
pub type Trace = Arc<Mutex<Vec<(Instant, String)>>>;

fn tracing() -> bool {
    std::env::var_os("DRFAILOVER_BENCH_EVENTS").is_some()
}

enum Target<'a> {
    Client(Arc<Client>),
    Proxy(drfailover_mysql::ConnectOptions),
    HandWritten(&'a crate::handwritten::HandWritten, u16),
}

/// Per-thread success timestamps of a running write load.
struct Load {
    /// Ids acknowledged / with unknown outcome (library clients), for data checks.
    acked_ids: Arc<Mutex<Vec<u64>>>,
    unknown_ids: Arc<Mutex<Vec<u64>>>,
    /// Statements that came back to the application as failed (any error, outcome unknown
    /// included): what users see during the failover.
    failed: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    times: Vec<Arc<Mutex<Vec<Instant>>>>,
    errors: Arc<Mutex<Vec<String>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
    /// The hand-written program, when it is the subject.
    child: Option<std::process::Child>,
    /// Statements the hand-written program retried blindly after a lost connection.
    blind_retries: Arc<AtomicU64>,
}

impl Drop for Load {
    /// A trial that fails half-way must not leave the hand-written program running.
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Load {
    fn start(
        target: &Target<'_>,
        threads: usize,
        next: &Arc<AtomicU64>,
        trace: &Trace,
    ) -> Result<Load, String> {
        let stop = Arc::new(AtomicBool::new(false));
        let failed = Arc::new(AtomicU64::new(0));
        let acked_ids: Arc<Mutex<Vec<u64>>> = Arc::default();
        let unknown_ids: Arc<Mutex<Vec<u64>>> = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let mut times: Vec<Arc<Mutex<Vec<Instant>>>> = Vec::new();
        let mut handles = Vec::new();
        let blind_retries = Arc::new(AtomicU64::new(0));
        let mut child = None;
        if let Target::HandWritten(program, port) = target {
            let first_id = next.fetch_add(1 << 40, Ordering::Relaxed);
            let mut program = program.spawn(NAME, *port, threads, first_id)?;
            let stdout = program.stdout.take().ok_or("no stdout")?;
            child = Some(program);
            times = (0..threads).map(|_| Arc::default()).collect();
            let (logs, failed2, blind) = (times.clone(), failed.clone(), blind_retries.clone());
            // Lines are stamped with CLOCK_MONOTONIC, the clock `Instant` reads on Linux.
            let (ref_instant, ref_ns) = (Instant::now(), drfailover_testkit::cprog::monotonic_ns());
            let reader = std::thread::spawn(move || {
                use std::io::BufRead;
                for line in std::io::BufReader::new(stdout)
                    .lines()
                    .map_while(Result::ok)
                {
                    let f: Vec<&str> = line.split_whitespace().collect();
                    let thread = f.get(1).and_then(|t| t.parse::<usize>().ok());
                    match (f.first().copied(), thread) {
                        (Some("A"), Some(t)) if t < logs.len() => {
                            let Some(ns) = f.get(2).and_then(|v| v.parse::<u64>().ok()) else {
                                continue;
                            };
                            let at = if ns >= ref_ns {
                                ref_instant + Duration::from_nanos(ns - ref_ns)
                            } else {
                                ref_instant - Duration::from_nanos(ref_ns - ns)
                            };
                            logs[t].lock().unwrap().push(at);
                        }
                        (Some("F"), _) => {
                            failed2.fetch_add(1, Ordering::Relaxed);
                        }
                        (Some("B"), _) => {
                            blind.fetch_add(1, Ordering::Relaxed);
                        }
                        _ => {}
                    }
                }
            });
            handles.push(reader);
        }
        // The hand-written program runs its own threads; the others are ours.
        let own_threads = if child.is_some() { 0 } else { threads };
        for _ in 0..own_threads {
            let log: Arc<Mutex<Vec<Instant>>> = Arc::default();
            times.push(log.clone());
            let (stop, next, errors, failed) =
                (stop.clone(), next.clone(), errors.clone(), failed.clone());
            match target {
                Target::Client(client) => {
                    let client = client.clone();
                    let (acked_ids, unknown_ids) = (acked_ids.clone(), unknown_ids.clone());
                    let trace = tracing().then(|| trace.clone());
                    let thread = handles.len();
                    handles.push(std::thread::spawn(move || {
                        while !stop.load(Ordering::Relaxed) {
                            let id = next.fetch_add(1, Ordering::Relaxed);
                            let began = Instant::now();
                            let result = client.query(&format!("INSERT INTO t (id) VALUES ({id})"));
                            let took = began.elapsed();
                            if let Some(trace) = &trace {
                                if result.is_err() || took > Duration::from_millis(100) {
                                    let what = match &result {
                                        Ok(_) => "ok".to_string(),
                                        Err(e) => e.to_string(),
                                    };
                                    trace.lock().unwrap().push((
                                        began,
                                        format!(
                                            "thread {thread}: statement took {:.1} ms: {what}",
                                            took.as_secs_f64() * 1e3
                                        ),
                                    ));
                                }
                            }
                            match result {
                                Ok(_) => {
                                    log.lock().unwrap().push(Instant::now());
                                    acked_ids.lock().unwrap().push(id);
                                }
                                Err(Error::OutcomeUnknown(_)) => {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                    unknown_ids.lock().unwrap().push(id);
                                }
                                Err(e) => {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                    errors.lock().unwrap().push(e.to_string());
                                    std::thread::sleep(Duration::from_millis(1));
                                }
                            }
                        }
                    }));
                }
                Target::HandWritten(..) => unreachable!("started above"),
                Target::Proxy(opts) => {
                    let opts = opts.clone();
                    handles.push(std::thread::spawn(move || {
                        let mut conn: Option<drfailover_mysql::Connection> = None;
                        while !stop.load(Ordering::Relaxed) {
                            if conn.is_none() {
                                match drfailover_mysql::Connection::connect(&opts) {
                                    Ok(c) => conn = Some(c),
                                    Err(_) => {
                                        std::thread::sleep(Duration::from_millis(5));
                                        continue;
                                    }
                                }
                            }
                            let id = next.fetch_add(1, Ordering::Relaxed);
                            let c = conn.as_mut().expect("connected");
                            match c.query(&format!("INSERT INTO t (id) VALUES ({id})")) {
                                Ok(_) => log.lock().unwrap().push(Instant::now()),
                                Err(_) => {
                                    failed.fetch_add(1, Ordering::Relaxed);
                                    // Reconnect and go on (a write whose outcome is unknown is
                                    // simply not counted: HAProxy cannot tell).
                                    conn = None;
                                    std::thread::sleep(Duration::from_millis(5));
                                }
                            }
                        }
                    }));
                }
            }
        }
        Ok(Load {
            acked_ids,
            unknown_ids,
            failed,
            stop,
            times,
            errors,
            threads: handles,
            child,
            blind_retries,
        })
    }

    /// Stop and return each thread's time from `t` to its first acknowledged write after it.
    fn firsts_after(mut self, t: Instant) -> Result<(Vec<Duration>, u64), String> {
        let failed = self.failed.clone();
        self.stop.store(true, Ordering::Relaxed);
        for h in std::mem::take(&mut self.threads) {
            let _ = h.join();
        }
        if let Some(e) = self.errors.lock().unwrap().first() {
            return Err(format!("a write failed: {e}"));
        }
        let firsts = self
            .times
            .iter()
            .map(|log| {
                let log = log.lock().unwrap();
                log.iter()
                    .find(|at| **at > t)
                    .map(|at| *at - t)
                    .ok_or_else(|| "no write after the standby became writable".to_string())
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok((firsts, failed.load(Ordering::Relaxed)))
    }

    fn all_succeeded_after(&self, t: Instant) -> bool {
        self.times
            .iter()
            .all(|log| log.lock().unwrap().last().is_some_and(|last| *last > t))
    }

    /// Stop and return each thread's gap around `fault`, and the failed statements.
    fn gaps(mut self, fault: Instant) -> Result<(Vec<Duration>, u64), String> {
        let failed = self.failed.clone();
        self.stop.store(true, Ordering::Relaxed);
        if let Some(mut child) = self.child.take() {
            let _ = child.kill(); // its reader thread ends at EOF
            let _ = child.wait();
        }
        for t in std::mem::take(&mut self.threads) {
            let _ = t.join();
        }
        if let Some(e) = self.errors.lock().unwrap().first() {
            return Err(format!("a write failed: {e}"));
        }
        let gaps = self
            .times
            .iter()
            .map(|log| {
                let log = log.lock().unwrap();
                let before = log
                    .iter()
                    .rev()
                    .find(|t| **t <= fault)
                    .ok_or("no write before the fault")?;
                let after = log
                    .iter()
                    .find(|t| **t > fault)
                    .ok_or("no write after the fault")?;
                Ok(*after - *before)
            })
            .collect::<Result<Vec<_>, String>>()?;
        Ok((gaps, failed.load(Ordering::Relaxed)))
    }
}

/// A topology whose roles swap after every trial, and a client on it.
pub struct Rig {
    via: Via,
    haproxy: Option<crate::haproxy::Haproxy>,
    handwritten: Option<crate::handwritten::HandWritten>,
    topo: Topology,
    primary: usize,
    replica: usize,
    client: Arc<Client>,
    dns: Option<DnsServer>,
    next: Arc<AtomicU64>,
    /// How long each promotion took (part of the measured gap unless subtracted).
    pub promotions: Vec<Duration>,
    /// Statements returned to the application as failed, per trial.
    pub failed: Vec<u64>,
    /// Every id acknowledged to the writers so far.
    pub acked: Vec<u64>,
    /// Every id whose outcome was reported unknown so far.
    pub unknown: Vec<u64>,
    /// Blind retries (hand-written design), per trial.
    pub blind_retries: Vec<u64>,
    /// See [`Trace`]; empty unless DRFAILOVER_BENCH_EVENTS is set.
    pub trace: Trace,
    /// When the latest trial's fault took effect.
    pub fault_at: Option<Instant>,
}

const NAME: &str = "db.drfailover.test";

impl Rig {
    /// Start a topology (in a lab namespace for blackholes; behind a DNS name for DNS flips)
    /// and a client with default detection settings.
    pub fn start(fault: Fault, via: Via) -> Result<Rig, String> {
        let topo = match fault {
            f if f.needs_lab() => Topology::primary_replica_in_lab()?,
            _ => Topology::primary_replica()?,
        };
        let (dns, dsn) = if let Some(ttl) = fault.dns_ttl() {
            let dns = DnsServer::start(&[(NAME, topo.node(0).ip())], ttl)?;
            let dsn = format!(
                "mysql://{APP_USER}:{APP_PASSWORD}@{NAME}:{}/{APP_DATABASE}?nameserver={}&dns_min_ttl_ms=100&failover_timeout_ms=30000",
                topo.node(0).port(),
                dns.address()
            );
            (Some(dns), dsn)
        } else {
            (None, topo.dsn("failover_timeout_ms=30000"))
        };
        let client = Client::connect_dsn(&dsn).map_err(|e| e.to_string())?;
        let trace: Trace = Arc::default();
        if tracing() {
            let trace = trace.clone();
            client.subscribe(move |e| {
                let line = format!("client: {}", e.summary());
                trace.lock().unwrap().push((Instant::now(), line));
            });
        }
        client
            .wait_ready(Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        client
            .query("CREATE TABLE IF NOT EXISTS t (id BIGINT PRIMARY KEY)")
            .map_err(|e| e.to_string())?;
        topo.wait_replicated(0, 1)?;
        let haproxy = match (via, &dns) {
            (Via::Haproxy, Some(dns)) => Some(crate::haproxy::Haproxy::start_named(
                NAME,
                topo.node(0).port(),
                &dns.address(),
            )?),
            (Via::Haproxy, None) => Some(crate::haproxy::Haproxy::start(
                topo.node(0).addr(),
                topo.node(1).addr(),
            )?),
            _ => None,
        };
        let handwritten = match via {
            Via::HandWritten => {
                let h = crate::handwritten::HandWritten::build()?;
                h.point(NAME, topo.node(0).ip())?;
                Some(h)
            }
            _ => None,
        };
        Ok(Rig {
            via,
            haproxy,
            handwritten,
            topo,
            primary: 0,
            replica: 1,
            client: Arc::new(client),
            dns,
            next: Arc::new(AtomicU64::new(1)),
            promotions: Vec::new(),
            failed: Vec::new(),
            acked: Vec::new(),
            unknown: Vec::new(),
            blind_retries: Vec::new(),
            trace,
            fault_at: None,
        })
    }

    /// One trial: per-thread gaps, delay already subtracted.
    pub fn trial(&mut self, fault: Fault, threads: usize) -> Result<Vec<Duration>, String> {
        let target = match (&self.via, &self.haproxy) {
            (Via::Haproxy, Some(h)) => {
                let mut opts = drfailover_mysql::ConnectOptions::tcp("127.0.0.1", h.port())
                    .user(APP_USER)
                    .password(APP_PASSWORD)
                    .database(APP_DATABASE);
                opts.ssl_mode = drfailover_mysql::SslMode::Disabled;
                Target::Proxy(opts)
            }
            (Via::HandWritten, _) => {
                let program = self
                    .handwritten
                    .as_ref()
                    .ok_or("hand-written program missing")?;
                Target::HandWritten(program, self.topo.node(self.primary).port())
            }
            _ => Target::Client(self.client.clone()),
        };
        let load_started = Instant::now();
        self.trace.lock().unwrap().clear();
        let load = Load::start(&target, threads, &self.next, &self.trace)?;
        // Every writer thread is under way (one acknowledged write) before the fault: on a
        // loaded machine 16 threads opening connections can take longer than the pause below.
        while !load.all_succeeded_after(load_started) {
            if load_started.elapsed() > Duration::from_secs(10) {
                return Err("writer threads made no write within 10 s of starting".into());
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(
            rand::thread_rng().gen_range(200..400),
        ));
        let (p, r) = (self.primary, self.replica);
        // `fault_at`: when the fault has taken effect (its command returned). Statements
        // completing while the command still ran do not count as "after the fault".
        let mut subtract = Duration::ZERO;
        let fault_at;
        // Set for faults measured from a later moment than the fault (to the first write).
        let mut measure_from = None;
        let promote = |topo: &Topology| -> Result<Duration, String> {
            let t = Instant::now();
            topo.promote(r)?;
            Ok(t.elapsed())
        };
        let promotion;
        match fault {
            Fault::Kill => {
                self.topo.kill9(p)?;
                fault_at = Instant::now();
                promotion = promote(&self.topo)?;
            }
            Fault::KillDelayed(delay) => {
                self.topo.kill9(p)?;
                fault_at = Instant::now();
                std::thread::sleep(delay);
                subtract = delay;
                promotion = promote(&self.topo)?;
            }
            // Silent faults: the standby is made writable at once (its replication threads,
            // stuck on the silent primary, are detached in `restore`), so the gap measures the
            // client's detection, not MariaDB's IO-thread shutdown (~2 s against a silent master).
            Fault::StopThenWritable(delay) => {
                let before = self.client.state().generation;
                self.topo.freeze(p)?;
                fault_at = Instant::now();
                std::thread::sleep(delay);
                self.topo.promote_fast(r)?;
                let writable = Instant::now();
                measure_from = Some(writable);
                promotion = fault_at.elapsed();
                // DRFAILOVER_BENCH_TRIALS (an investigation): when the library client adopted
                // the new writer, per trial (a generation already moved counts as 0).
                if self.via == Via::Library && std::env::var_os("DRFAILOVER_BENCH_TRIALS").is_some()
                {
                    let adopted = self
                        .client
                        .wait_generation(before, Duration::from_secs(5))
                        .map(|_| writable.elapsed().as_secs_f64() * 1e3);
                    eprintln!("trial: writable -> new generation {adopted:?} ms");
                }
            }
            Fault::StopPromoted | Fault::BlackholePromoted => {
                fault_at = self.silence(p, fault)?;
                // What an operator or the orchestrator does: stop receiving (this is what
                // waits on the silent primary), apply what was received, forget the primary.
                self.topo.detach_replication(r)?;
                // Taken before the statement that makes the standby writable is sent: the
                // measurement can only be too long, never too short.
                let writable = Instant::now();
                self.topo.promote_fast(r)?;
                measure_from = Some(writable);
                promotion = fault_at.elapsed();
            }
            Fault::DnsCrashFlip(_) => {
                // Crash, promotion and flip are the harness's doing: the time from the kill to
                // the flip is subtracted, leaving flip -> first write.
                self.topo.kill9(p)?;
                fault_at = Instant::now();
                promotion = promote(&self.topo)?;
                let dns = self.dns.as_ref().ok_or("no DNS server")?;
                dns.set(&[(NAME, self.topo.node(r).ip())])?;
                subtract = fault_at.elapsed();
            }
            Fault::Stop | Fault::Blackhole => {
                if self.via == Via::Library && std::env::var_os("DRFAILOVER_BENCH_TRIALS").is_some()
                {
                    let state = self.client.state();
                    let h: Vec<&str> = state.endpoints.iter().map(|e| e.health.as_str()).collect();
                    eprintln!("trial: {fault:?}, health before the fault {h:?}, standby {r}");
                }
                fault_at = self.silence(p, fault)?;
                self.topo.promote_fast(r)?;
                promotion = fault_at.elapsed();
            }
            Fault::DnsFlip(_) => {
                // The switchover (fence, catch up, promote, flip) is the harness's doing: the
                // time from the fence to the flip is subtracted, leaving flip -> first write.
                self.topo.fence(p)?;
                fault_at = Instant::now();
                self.topo.wait_replicated(p, r)?;
                promotion = promote(&self.topo)?;
                let dns = self.dns.as_ref().ok_or("no DNS server")?;
                dns.set(&[(NAME, self.topo.node(r).ip())])?;
                subtract = fault_at.elapsed();
            }
        }
        self.promotions.push(promotion);
        self.fault_at = Some(fault_at);
        if tracing() {
            let line = format!("harness: fault {fault:?}, promotion took {promotion:?}");
            self.trace.lock().unwrap().push((fault_at, line));
        }
        // The hand-written design finds the new primary by name: the name flips the moment
        // the promotion is done (for the DNS flip, when the record flips).
        if let Some(h) = &self.handwritten {
            h.point(NAME, self.topo.node(r).ip())?;
        }
        let started = Instant::now();
        while !load.all_succeeded_after(fault_at) {
            if started.elapsed() > Duration::from_secs(30) {
                return Err(format!("{}: writes {NEVER_RESUMED}", fault.name()));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
        std::thread::sleep(Duration::from_millis(20));
        let (acked, unknown) = (load.acked_ids.clone(), load.unknown_ids.clone());
        let blind = load.blind_retries.clone();
        let (gaps, failed) = match measure_from {
            Some(t) => load.firsts_after(t)?,
            None => load.gaps(fault_at)?,
        };
        if std::env::var_os("DRFAILOVER_BENCH_TRIALS").is_some() {
            let ms: Vec<String> = gaps
                .iter()
                .map(|g| format!("{:.1}", g.as_secs_f64() * 1e3))
                .collect();
            eprintln!("trial: {} ms per thread", ms.join(" "));
        }
        self.failed.push(failed);
        self.blind_retries.push(blind.load(Ordering::Relaxed));
        self.acked.extend(acked.lock().unwrap().iter());
        self.unknown.extend(unknown.lock().unwrap().iter());
        self.restore(fault)?;
        Ok(gaps
            .into_iter()
            .map(|g| g.saturating_sub(subtract))
            .collect())
    }

    /// Make node `i` silent: blackholed for the blackhole faults, else frozen (SIGSTOP).
    /// Returns when the fault took effect.
    fn silence(&mut self, i: usize, fault: Fault) -> Result<Instant, String> {
        if fault.needs_lab() {
            self.topo.blackhole(i)?;
        } else {
            self.topo.freeze(i)?;
        }
        Ok(Instant::now())
    }

    /// The trace of the latest trial, in time order, relative to its fault (ms).
    pub fn trace_report(&self) -> String {
        let Some(fault_at) = self.fault_at else {
            return String::new();
        };
        let mut lines = self.trace.lock().unwrap().clone();
        lines.sort_by_key(|(t, _)| *t);
        lines
            .iter()
            .map(|(t, line)| {
                let ms = if *t >= fault_at {
                    t.duration_since(fault_at).as_secs_f64() * 1e3
                } else {
                    -(fault_at.duration_since(*t).as_secs_f64() * 1e3)
                };
                format!("{ms:>9.1} ms {line}\n")
            })
            .chain(std::iter::once(format!(
                "client counters since its start: {:?}\n",
                self.client.stats()
            )))
            .collect()
    }

    /// Bring the old primary back as a semi-sync replica of the new one; swap roles.
    fn restore(&mut self, fault: Fault) -> Result<(), String> {
        let (p, r) = (self.primary, self.replica);
        // After a quick promotion the new primary still replicates from the silent one: detach
        // it before the old primary can speak again, or both would write the same GTIDs.
        if matches!(
            fault,
            Fault::Stop | Fault::Blackhole | Fault::StopThenWritable(_)
        ) {
            self.topo.detach_replication(r)?;
        }
        match fault {
            Fault::Stop | Fault::StopThenWritable(_) | Fault::StopPromoted => self.topo.thaw(p)?,
            Fault::Blackhole | Fault::BlackholePromoted => self.topo.heal(p)?,
            _ => {}
        }
        if self.topo.node(p).is_running() {
            self.topo.kill9(p)?;
        }
        self.topo.restart(p, NodeRole::Replica, Some(r))?;
        self.topo
            .node(r)
            .sql("SET GLOBAL rpl_semi_sync_master_enabled=1")?;
        self.topo.wait_semi_sync_clients(r, 1)?;
        self.topo.wait_replicated(r, p)?;
        std::mem::swap(&mut self.primary, &mut self.replica);
        // The next fault lands on a settled topology: the library client has re-admitted the
        // restarted node (`rise` answers in a row). Otherwise a silent fault soon after the
        // restart is a double fault — the standby still rising when it is promoted — and the
        // trial measures the rise, not the failover.
        if self.via == Via::Library {
            let t = Instant::now();
            while self
                .client
                .state()
                .endpoints
                .iter()
                .any(|e| e.health != drfailover_conn::Health::Up)
            {
                if t.elapsed() > Duration::from_secs(10) {
                    return Err("the restarted node was not seen up within 10 s".into());
                }
                std::thread::sleep(Duration::from_millis(5));
            }
        }
        if self.via == Via::Haproxy {
            // HAProxy has no notion of roles: its configuration must follow the swap.
            self.haproxy = None;
            self.haproxy = Some(match &self.dns {
                Some(dns) => crate::haproxy::Haproxy::start_named(
                    NAME,
                    self.topo.node(self.primary).port(),
                    &dns.address(),
                )?,
                None => crate::haproxy::Haproxy::start(
                    self.topo.node(self.primary).addr(),
                    self.topo.node(self.replica).addr(),
                )?,
            });
        }
        Ok(())
    }
}

impl Rig {
    /// Check the data on the current primary: every acknowledged id is present, every row was
    /// acknowledged or reported unknown, no id was acknowledged twice.
    /// Returns (present rows, acknowledged, unknown).
    pub fn verify(&self) -> Result<(usize, usize, usize), String> {
        use std::collections::HashSet;
        let rows = self.topo.node(self.primary).sql("SELECT id FROM app.t")?;
        let present: HashSet<u64> = (0..rows.num_rows())
            .filter_map(|r| rows.text(r, 0).and_then(|v| v.parse().ok()))
            .collect();
        let acked: HashSet<u64> = self.acked.iter().copied().collect();
        if acked.len() != self.acked.len() {
            return Err("an id was acknowledged twice".into());
        }
        let lost: Vec<_> = acked
            .iter()
            .filter(|id| !present.contains(id))
            .take(5)
            .collect();
        if !lost.is_empty() {
            return Err(format!("acknowledged writes lost, e.g. {lost:?}"));
        }
        let unknown: HashSet<u64> = self.unknown.iter().copied().collect();
        let phantom: Vec<_> = present
            .iter()
            .filter(|id| !acked.contains(id) && !unknown.contains(id))
            .take(5)
            .collect();
        if !phantom.is_empty() {
            return Err(format!("rows nobody was told about, e.g. {phantom:?}"));
        }
        Ok((present.len(), acked.len(), unknown.len()))
    }
}
