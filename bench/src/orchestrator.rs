//! The orchestrator doing the promotion (no harness promotion): fault → new primary
//! writable, the application's unavailability through a drfailover client, switchover pause,
//! and the data (acknowledged writes lost; writes acknowledged by the old primary after the
//! promotion). Default orchestrator settings; one fresh topology (primary + 2 semi-sync
//! replicas, in a network namespace of its own) per trial.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use drfailover_conn::{Client, Error};
use drfailover_notify::{EventKind, Notifier};
use drfailover_orchestrator::{Config, Orchestrator, Outcome, Request};
use drfailover_testkit::{DirectWriter, Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

/// A fault the orchestrator must handle.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OrchFault {
    /// `kill -9` of the primary.
    Kill,
    /// SIGSTOP of the primary (thawed after the promotion: fenced on sight).
    Stop,
    /// Every packet to the primary dropped (healed after the promotion).
    Blackhole,
}

impl OrchFault {
    /// Table name.
    pub fn name(self) -> &'static str {
        match self {
            OrchFault::Kill => "kill -9",
            OrchFault::Stop => "SIGSTOP",
            OrchFault::Blackhole => "blackhole",
        }
    }
}

/// One trial's figures.
pub struct Trial {
    /// Fault → the orchestrator reported the new primary writable.
    pub writable: Duration,
    /// Per writer thread: last acknowledged write before the fault → first after.
    pub gaps: Vec<Duration>,
    /// Statements that failed other than with an unknown outcome.
    pub failed: u64,
    /// Statements with an unknown outcome (in flight at the fault).
    pub unknown: u64,
    /// Acknowledged writes missing on the new primary.
    pub lost: u64,
    /// Writes sent to the old primary after the promotion and acknowledged by it.
    pub fenced_acks: u64,
    /// Where the time to writable went, from the orchestrator's events.
    pub breakdown: Breakdown,
}

/// Fault → writable, cut at the orchestrator's events: *detect* (fault → the primary first
/// seen failing), *confirm* (→ failover decided), *catch-up* (the candidate stops receiving
/// and applies what it received), *promote* (the other promotion steps: fence, detach,
/// writable). The client's *repoint* (writable → writes acknowledged again) is the
/// unavailability minus writable.
#[derive(Clone, Copy, Debug, Default)]
pub struct Breakdown {
    /// Fault → first failed probe.
    pub detect: Duration,
    /// First failed probe → failover decided.
    pub confirm: Duration,
    /// Candidate's catch-up steps.
    pub catchup: Duration,
    /// Failover decided → writable, minus catch-up.
    pub promote: Duration,
}

/// One orchestrator event as the bench saw it: when, kind, reason, duration.
type Seen = (Instant, EventKind, String, Option<Duration>);

/// The breakdown of one failover from the events `seen`, the fault at `fault`.
fn breakdown(seen: &[Seen], fault: Instant) -> Breakdown {
    let started = seen
        .iter()
        .find(|(_, k, _, _)| *k == EventKind::FailoverStarted);
    let completed = seen
        .iter()
        .find(|(_, k, _, _)| *k == EventKind::FailoverCompleted);
    let (Some(started), Some(completed)) = (started, completed) else {
        return Breakdown::default();
    };
    let decided = started.0.saturating_duration_since(fault);
    let confirm = started.3.unwrap_or_default().min(decided);
    let catchup = seen
        .iter()
        .filter(|(at, k, reason, _)| {
            *k == EventKind::StepCompleted
                && *at >= started.0
                && *at <= completed.0
                && (reason.starts_with("stop receiving") || reason.starts_with("apply"))
        })
        .filter_map(|(_, _, _, d)| *d)
        .sum::<Duration>();
    let promoting = completed.0.saturating_duration_since(started.0);
    Breakdown {
        detect: decided - confirm,
        confirm,
        catchup: catchup.min(promoting),
        promote: promoting.saturating_sub(catchup),
    }
}

/// The orchestrator's configuration file for `topo` with default settings: only
/// credentials and nodes, every `[orchestrator]` setting at its default.
pub(crate) fn config_text(topo: &Topology) -> String {
    let text = topo.orchestrator_config("", "", &[]);
    let (_, rest) = text
        .split_once("[credentials]")
        .expect("testkit config has [credentials]");
    format!("[credentials]{rest}")
}

/// The orchestrator's configuration for `topo` with default settings.
fn config(topo: &Topology) -> Config {
    Config::parse(&config_text(topo)).expect("orchestrator config")
}

pub(crate) struct Running {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
    requests: crossbeam_channel::Sender<Request>,
    completed: Arc<Mutex<Vec<(Instant, String)>>>,
    seen: Arc<Mutex<Vec<Seen>>>,
    notifier: Arc<Notifier>,
}

impl Running {
    pub(crate) fn start(topo: &Topology) -> Result<Running, String> {
        let notifier = Arc::new(Notifier::new(4096, 1, Instant::now()).map_err(|e| e.to_string())?);
        let completed: Arc<Mutex<Vec<(Instant, String)>>> = Arc::default();
        let c = completed.clone();
        let seen: Arc<Mutex<Vec<Seen>>> = Arc::default();
        let all = seen.clone();
        let verbose = std::env::var_os("DRFAILOVER_BENCH_EVENTS").is_some();
        notifier.subscribe(move |e| {
            if verbose {
                eprintln!(
                    "{:>9.1} ms orchestrator: {}",
                    since_start(Instant::now()),
                    e.summary()
                );
            }
            all.lock().unwrap().push((
                Instant::now(),
                e.kind,
                e.reason.clone(),
                e.duration_us.map(Duration::from_micros),
            ));
            if e.kind == EventKind::FailoverCompleted {
                c.lock()
                    .unwrap()
                    .push((Instant::now(), e.new_writer.clone().unwrap_or_default()));
            }
        });
        let mut orch = Orchestrator::new(config(topo), notifier.clone(), 1);
        orch.start()?;
        let stop = Arc::new(AtomicBool::new(false));
        let (tx, rx) = crossbeam_channel::bounded(4);
        let s = stop.clone();
        let thread = std::thread::spawn(move || orch.run(&s, &rx));
        Ok(Running {
            stop,
            thread: Some(thread),
            requests: tx,
            completed,
            seen,
            notifier,
        })
    }

    pub(crate) fn wait_completed(
        &self,
        n: usize,
        timeout: Duration,
    ) -> Result<(Instant, String), String> {
        let t = Instant::now();
        loop {
            if let Some(c) = self.completed.lock().unwrap().get(n - 1) {
                return Ok(c.clone());
            }
            if t.elapsed() > timeout {
                return Err(format!("no failover within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Running {
    /// The first promotion completed so far (when, the new primary's name).
    pub(crate) fn completed_first(&self) -> Option<(Instant, String)> {
        self.completed.lock().unwrap().first().cloned()
    }

    /// Promotions completed so far.
    pub(crate) fn completed_count(&self) -> usize {
        self.completed.lock().unwrap().len()
    }

    /// Wait for a failover to start; the candidate's name (from the event's reason).
    pub(crate) fn wait_started(&self, timeout: Duration) -> Result<String, String> {
        let t = Instant::now();
        loop {
            let found = self
                .seen
                .lock()
                .unwrap()
                .iter()
                .find_map(|(_, k, reason, _)| {
                    (*k == EventKind::FailoverStarted)
                        .then(|| reason.rsplit("promoting ").next().map(str::to_string))
                        .flatten()
                });
            if let Some(name) = found {
                return Ok(name);
            }
            if t.elapsed() > timeout {
                return Err(format!("no failover started within {timeout:?}"));
            }
            std::thread::sleep(Duration::from_millis(1));
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.notifier.close(Duration::from_secs(1));
    }
}

/// Writer threads through a drfailover client: per thread the instants of acknowledged
/// writes; acknowledged ids; counts of unknown and failed statements.
pub(crate) struct Writers {
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<Vec<Instant>>>,
    pub(crate) acked: Arc<Mutex<Vec<u64>>>,
    unknown: Arc<AtomicU64>,
    failed: Arc<AtomicU64>,
    client: Arc<Client>,
}

impl Writers {
    pub(crate) fn start(topo: &Topology, threads: usize) -> Result<Writers, String> {
        let dsn = topo.dsn("failover_timeout_ms=30000");
        let client = Arc::new(Client::connect_dsn(&dsn).map_err(|e| e.to_string())?);
        if std::env::var_os("DRFAILOVER_BENCH_EVENTS").is_some() {
            client.subscribe(|e| {
                eprintln!(
                    "{:>9.1} ms client: {}",
                    since_start(Instant::now()),
                    e.summary()
                )
            });
        }
        client
            .wait_ready(Duration::from_secs(10))
            .map_err(|e| e.to_string())?;
        client
            .query("CREATE TABLE IF NOT EXISTS bench_o (id BIGINT PRIMARY KEY)")
            .map_err(|e| e.to_string())?;
        Ok(Writers::from_client(client, threads))
    }

    /// Writer threads on an already connected client (the table exists).
    fn from_client(client: Arc<Client>, threads: usize) -> Writers {
        let next = Arc::new(AtomicU64::new(1));
        let stop = Arc::new(AtomicBool::new(false));
        let acked: Arc<Mutex<Vec<u64>>> = Arc::default();
        let unknown = Arc::new(AtomicU64::new(0));
        let failed = Arc::new(AtomicU64::new(0));
        let threads = (0..threads)
            .map(|_| {
                let (client, next, stop, acked, unknown, failed) = (
                    client.clone(),
                    next.clone(),
                    stop.clone(),
                    acked.clone(),
                    unknown.clone(),
                    failed.clone(),
                );
                std::thread::spawn(move || {
                    let mut times = Vec::new();
                    while !stop.load(Ordering::Relaxed) {
                        let id = next.fetch_add(1, Ordering::Relaxed);
                        match client.query(&format!("INSERT INTO bench_o VALUES ({id})")) {
                            Ok(_) => {
                                times.push(Instant::now());
                                acked.lock().unwrap().push(id);
                            }
                            Err(Error::OutcomeUnknown(_)) => {
                                unknown.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(_) => {
                                failed.fetch_add(1, Ordering::Relaxed);
                            }
                        }
                    }
                    times
                })
            })
            .collect();
        Writers {
            stop,
            threads,
            acked,
            unknown,
            failed,
            client,
        }
    }

    fn acked(&self) -> usize {
        self.acked.lock().unwrap().len()
    }

    pub(crate) fn wait_progress(&self, more: usize, timeout: Duration) -> Result<(), String> {
        let target = self.acked() + more;
        let t = Instant::now();
        while self.acked() < target {
            if t.elapsed() > timeout {
                return Err(format!("writes stalled ({} acknowledged)", self.acked()));
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        Ok(())
    }

    /// Stop; per-thread ack instants.
    pub(crate) fn finish(mut self) -> Vec<Vec<Instant>> {
        self.stop.store(true, Ordering::Relaxed);
        let times = self
            .threads
            .drain(..)
            .map(|t| t.join().unwrap_or_default())
            .collect();
        self.client.close();
        times
    }
}

/// Per thread, the outage around `at`.
fn gaps(times: &[Vec<Instant>], at: Instant) -> Vec<Duration> {
    // The longest gap between consecutive acknowledgements that ends after the fault (a
    // write already committed when the fault hit may still be acknowledged just after it:
    // the outage is the gap that follows, not that one).
    let from = at.checked_sub(Duration::from_secs(2)).unwrap_or(at);
    times
        .iter()
        .filter_map(|t| {
            t.windows(2)
                .filter(|w| w[1] > at && w[0] >= from)
                .map(|w| w[1] - w[0])
                .max()
        })
        .collect()
}

/// The node that is writable now (the first one found).
fn writable_node(topo: &Topology) -> Option<usize> {
    (0..topo.nodes().len()).find(|&i| {
        topo.node(i)
            .sql_value("SELECT @@read_only")
            .ok()
            .flatten()
            .as_deref()
            == Some("0")
    })
}

/// Acknowledged ids missing from `bench_o` on `node`.
pub(crate) fn lost_on(topo: &Topology, node: usize, acked: &[u64]) -> Result<u64, String> {
    let rows = topo.node(node).sql("SELECT id FROM app.bench_o")?;
    let present: HashSet<u64> = (0..rows.num_rows())
        .filter_map(|r| rows.text(r, 0)?.parse().ok())
        .collect();
    Ok(acked.iter().filter(|id| !present.contains(id)).count() as u64)
}

/// Milliseconds since the first call (for investigation output that lines up events).
fn since_start(at: Instant) -> f64 {
    static START: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    at.saturating_duration_since(*START.get_or_init(Instant::now))
        .as_secs_f64()
        * 1e3
}

/// One failover trial on a fresh topology.
pub fn trial(fault: OrchFault, threads: usize) -> Result<Trial, String> {
    let mut topo = Topology::primary_replicas_in_lab(2)?;
    let orch = Running::start(&topo)?;
    let writers = Writers::start(&topo, threads)?;
    writers.wait_progress(300, Duration::from_secs(20))?;
    let investigate = std::env::var_os("DRFAILOVER_BENCH_EVENTS").is_some();
    if investigate && fault != OrchFault::Kill {
        // Every statement the old primary runs, with microsecond times, for the diagnosis.
        topo.node(0)
            .sql_batch(&["SET GLOBAL log_output='TABLE'", "SET GLOBAL general_log=1"])?;
    }
    let direct = (fault != OrchFault::Kill).then(|| {
        DirectWriter::start(&topo, 0, Duration::from_secs(1), 1u64 << 40, |id| {
            format!("INSERT INTO bench_o VALUES ({id})")
        })
    });
    // A random moment, so the fault lands anywhere in a write's life.
    std::thread::sleep(Duration::from_millis(100 + rand::random::<u64>() % 200));
    match fault {
        OrchFault::Kill => topo.kill9(0)?,
        OrchFault::Stop => topo.freeze(0)?,
        OrchFault::Blackhole => topo.blackhole(0)?,
    }
    // After the fault took effect (the blackhole's iptables call takes tens of ms).
    let at = Instant::now();
    let (writable_at, new_writer) = orch.wait_completed(1, Duration::from_secs(30))?;
    writers.wait_progress(300, Duration::from_secs(30))?;
    match fault {
        OrchFault::Kill => {}
        OrchFault::Stop => topo.thaw(0)?,
        OrchFault::Blackhole => topo.heal(0)?,
    }
    // Give the old primary (if alive) time to misbehave, and the orchestrator to fence it.
    std::thread::sleep(Duration::from_millis(700));
    let direct = direct.map(DirectWriter::stop).unwrap_or_default();
    let (unknown, failed) = (
        writers.unknown.load(Ordering::Relaxed),
        writers.failed.load(Ordering::Relaxed),
    );
    let acked = writers.acked.lock().unwrap().clone();
    let times = writers.finish();
    let breakdown = breakdown(&orch.seen.lock().unwrap(), at);
    drop(orch);
    let new_index = topo
        .nodes()
        .iter()
        .position(|n| n.name() == new_writer)
        .ok_or("unknown new writer")?;
    let lost = lost_on(&topo, new_index, &acked)?;
    let fenced_acks = direct
        .iter()
        .filter(|(_, sent, _)| *sent >= writable_at)
        .count() as u64;
    if fenced_acks > 0 && std::env::var_os("DRFAILOVER_BENCH_EVENTS").is_some() {
        for (id, sent, acked) in direct.iter().rev().take(8) {
            let on = |i: usize| {
                topo.node(i)
                    .sql_value(&format!("SELECT COUNT(*) FROM app.bench_o WHERE id={id}"))
                    .ok()
                    .flatten()
                    .unwrap_or_default()
            };
            let gtid = topo
                .node(0)
                .sql_value(&format!("SELECT @@gtid_binlog_pos /* after id {id} */"))
                .ok()
                .flatten()
                .unwrap_or_default();
            eprintln!(
                "direct write {id}: sent {:?} after the fault ({:?} after writable), acknowledged {:?} later; present on nodes 0/1/2: {}/{}/{}; old primary gtid_binlog_pos now {gtid}",
                sent.saturating_duration_since(at),
                sent.saturating_duration_since(writable_at),
                acked.saturating_duration_since(*sent),
                on(0),
                on(1),
                on(2)
            );
        }
        for sql in [
            "SHOW GLOBAL STATUS LIKE 'Rpl_semi_sync_master%'",
            "SHOW GLOBAL VARIABLES LIKE 'rpl_semi_sync_master%'",
            "SHOW GLOBAL VARIABLES LIKE 'read_only'",
        ] {
            if let Ok(r) = topo.node(0).sql(sql) {
                let rows: Vec<String> = (0..r.num_rows())
                    .map(|i| {
                        format!(
                            "{}={}",
                            r.text(i, 0).unwrap_or(""),
                            r.text(i, 1).unwrap_or("")
                        )
                    })
                    .collect();
                eprintln!("old primary {sql}: {}", rows.join(" "));
            }
        }
        let log = topo.node(0).error_log();
        let interesting: Vec<&str> = log
            .lines()
            .filter(|l| {
                l.contains("emi-sync") || l.contains("binlog_dump") || l.contains("Timeout")
            })
            .collect();
        eprintln!("old primary log:\n{}", interesting.join("\n"));
        let late_id = direct
            .iter()
            .find(|(_, sent, _)| *sent >= writable_at)
            .map(|(id, _, _)| *id)
            .unwrap_or(0);
        let sql = format!(
            "SELECT event_time, thread_id, command_type, LEFT(argument, 120) FROM mysql.general_log \
             WHERE event_time >= (SELECT MIN(event_time) FROM mysql.general_log WHERE argument LIKE '%{late_id}%') - INTERVAL 0.3 SECOND \
             AND event_time <= (SELECT MIN(event_time) FROM mysql.general_log WHERE argument LIKE '%{late_id}%') + INTERVAL 0.1 SECOND \
             ORDER BY event_time"
        );
        match topo.node(0).sql(&sql) {
            Ok(r) => {
                for i in 0..r.num_rows() {
                    eprintln!(
                        "general log: {} {} {} {}",
                        r.text(i, 0).unwrap_or(""),
                        r.text(i, 1).unwrap_or(""),
                        r.text(i, 2).unwrap_or(""),
                        r.text(i, 3).unwrap_or("")
                    );
                }
            }
            Err(e) => eprintln!("general log: {e}"),
        }
    }
    Ok(Trial {
        writable: writable_at - at,
        gaps: gaps(&times, at),
        failed,
        unknown,
        lost,
        fenced_acks,
        breakdown,
    })
}

/// Switchovers back and forth under load on one topology: per switchover the longest
/// per-thread pause, and failed statements in total.
pub fn switchovers(n: usize, threads: usize) -> Result<(Vec<Duration>, u64, u64, u64), String> {
    let topo = Topology::primary_replicas_in_lab(2)?;
    let orch = Running::start(&topo)?;
    let writers = Writers::start(&topo, threads)?;
    writers.wait_progress(300, Duration::from_secs(20))?;
    let mut windows = Vec::new();
    for i in 0..n {
        let target = topo.node(1 + i % 2).name().to_string();
        if i > 0 {
            // Switchovers count for anti-flapping: acknowledge the last one first.
            let (ack, answer) = Request::ack();
            orch.requests.send(ack).map_err(|e| e.to_string())?;
            answer.blocking_recv().map_err(|e| e.to_string())?;
        }
        let (request, _ticket, answer) = Request::switchover(&target);
        let started = Instant::now();
        orch.requests.send(request).map_err(|e| e.to_string())?;
        match answer.blocking_recv().map_err(|e| e.to_string())? {
            Outcome::Done(_) => {}
            other => return Err(other.text().to_string()),
        }
        windows.push((started, Instant::now()));
        writers.wait_progress(300, Duration::from_secs(20))?;
        // Every replica caught up before the next switchover: it measures the switchover,
        // not a replica still applying what the last one left.
        let primary = 1 + i % 2;
        for r in (0..3).filter(|&r| r != primary) {
            topo.wait_replicated(primary, r)?;
        }
    }
    let (unknown, failed) = (
        writers.unknown.load(Ordering::Relaxed),
        writers.failed.load(Ordering::Relaxed),
    );
    let acked = writers.acked.lock().unwrap().clone();
    let times = writers.finish();
    if std::env::var_os("DRFAILOVER_BENCH_EVENTS").is_some() {
        for (start, end) in &windows {
            let worst = times
                .iter()
                .enumerate()
                .filter_map(|(thread, t)| {
                    t.windows(2)
                        .filter(|w| w[1] >= *start && w[0] <= *end)
                        .max_by_key(|w| w[1] - w[0])
                        .map(|w| (w[1] - w[0], thread, w[0], w[1]))
                })
                .max();
            if let Some((gap, thread, from, to)) = worst {
                eprintln!(
                    "switchover {:.1}..{:.1} ms: longest gap {:?} (thread {thread}, {:.1}..{:.1} ms)",
                    since_start(*start),
                    since_start(*end),
                    gap,
                    since_start(from),
                    since_start(to)
                );
            }
        }
    }
    let pauses = windows
        .iter()
        .map(|(start, end)| {
            times
                .iter()
                .filter_map(|t| {
                    // The longest gap between consecutive acks that overlaps the window.
                    t.windows(2)
                        .filter(|w| w[1] >= *start && w[0] <= *end)
                        .map(|w| w[1] - w[0])
                        .max()
                })
                .max()
                .unwrap_or_default()
        })
        .collect();
    let primary = writable_node(&topo).ok_or("no writable node after the switchovers")?;
    let lost = lost_on(&topo, primary, &acked)?;
    Ok((pauses, failed, unknown, lost))
}

/// One DNS end-to-end trial: BIND serves the name (TTL `ttl_s`), the orchestrator announces
/// through RFC 2136, a client configured only by name writes. Returns (promotion → the name
/// answers the new address, promotion → first acknowledged write through the name, lost).
pub fn dns_trial(ttl_s: u32, threads: usize) -> Result<(Duration, Duration, u64), String> {
    use drfailover_testkit::bind::BindServer;
    let mut topo = Topology::primary_replicas(2)?;
    let bind = BindServer::start("example.test", &[("db", topo.node(0).ip().into())], ttl_s)?;
    let mut text = topo.orchestrator_config("", "", &[]);
    let (_, rest) = text
        .split_once("[credentials]")
        .ok_or("testkit config has [credentials]")?;
    text = format!("[credentials]{rest}");
    text.push_str(&format!(
        "\n[[announce]]\nkind = \"rfc2136\"\nserver = \"{}\"\nzone = \"{}\"\nname = \"db.{}\"\n\
         ttl = {ttl_s}\nkey_file = \"{}\"\n",
        bind.address(),
        bind.zone(),
        bind.zone(),
        bind.key_file().display()
    ));
    let config = Config::parse(&text).map_err(|e| e.to_string())?;
    let notifier = Arc::new(Notifier::new(1024, 1, Instant::now()).map_err(|e| e.to_string())?);
    let completed: Arc<Mutex<Option<Instant>>> = Arc::default();
    let c = completed.clone();
    notifier.subscribe(move |e| {
        if e.kind == EventKind::FailoverCompleted {
            c.lock().unwrap().get_or_insert(Instant::now());
        }
    });
    let mut orch = Orchestrator::new(config, notifier.clone(), 1);
    orch.start()?;
    let stop = Arc::new(AtomicBool::new(false));
    let s = stop.clone();
    let runner = std::thread::spawn(move || {
        let (_tx, rx) = crossbeam_channel::bounded(1);
        orch.run(&s, &rx);
    });
    let dsn = format!(
        "mysql://{APP_USER}:{APP_PASSWORD}@db.{}:{}/{APP_DATABASE}?nameserver={}&failover_timeout_ms=30000",
        bind.zone(),
        topo.node(0).port(),
        bind.address()
    );
    let client = Arc::new(Client::connect_dsn(&dsn).map_err(|e| e.to_string())?);
    client
        .wait_ready(Duration::from_secs(10))
        .map_err(|e| e.to_string())?;
    client
        .query("CREATE TABLE IF NOT EXISTS bench_o (id BIGINT PRIMARY KEY)")
        .map_err(|e| e.to_string())?;
    let writers = Writers::from_client(client, threads);
    writers.wait_progress(300, Duration::from_secs(20))?;
    std::thread::sleep(Duration::from_millis(rand::random::<u64>() % 1000));
    topo.kill9(0)?;
    let t = Instant::now();
    let writable_at = loop {
        if let Some(at) = *completed.lock().unwrap() {
            break at;
        }
        if t.elapsed() > Duration::from_secs(30) {
            return Err("no failover".into());
        }
        std::thread::sleep(Duration::from_millis(1));
    };
    let answered = loop {
        let now = Instant::now();
        let a = bind.query(&format!("db.{}", bind.zone()), "A")?;
        if !a.iter().any(|ip| ip == &topo.node(0).ip().to_string()) && !a.is_empty() {
            break now;
        }
        if t.elapsed() > Duration::from_secs(30) {
            return Err("the name never changed".into());
        }
        std::thread::sleep(Duration::from_millis(2));
    };
    writers.wait_progress(100, Duration::from_secs(30))?;
    let acked = writers.acked.lock().unwrap().clone();
    let times = writers.finish();
    stop.store(true, Ordering::SeqCst);
    let _ = runner.join();
    notifier.close(Duration::from_secs(1));
    let first = times
        .iter()
        .filter_map(|t| t.iter().find(|&&x| x > writable_at).copied())
        .min()
        .ok_or("no write after the promotion")?;
    let primary = writable_node(&topo).ok_or("no new primary")?;
    let lost = lost_on(&topo, primary, &acked)?;
    Ok((
        answered.saturating_duration_since(writable_at),
        first - writable_at,
        lost,
    ))
}
