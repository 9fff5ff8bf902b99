//! The demo itself: a real failover on local servers, narrated.

use std::collections::HashSet;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_conn::{Client, Config, Error, Event, EventKind};
use drfailover_testkit::Topology;

/// Arguments of `drfailover-demo`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Writer threads.
    #[arg(long, default_value_t = 4)]
    threads: usize,
    /// Seconds of writing before the primary is killed.
    #[arg(long, default_value_t = 2.0)]
    before_s: f64,
    /// Seconds of writing after the failover.
    #[arg(long, default_value_t = 2.0)]
    after_s: f64,
    /// Milliseconds the "operator" waits between the kill and promoting the replica.
    #[arg(long, default_value_t = 0)]
    promote_delay_ms: u64,
    /// A quick run (for tests): 0.5 s before and after.
    #[arg(long)]
    short: bool,
    /// Primary + two replicas, and the drfailover orchestrator does the promotion (no
    /// harness promotion): detection, zero-loss checks, catch-up, promote, repoint.
    #[arg(long)]
    orchestrator: bool,
}

/// The orchestrator running next to the demo, its events narrated.
struct DemoOrchestrator {
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
    notifier: Arc<drfailover_notify::Notifier>,
    events: TimedEvents<drfailover_notify::Event>,
}

impl DemoOrchestrator {
    fn start(topo: &Topology, clock: &Arc<Clock>) -> Result<DemoOrchestrator, String> {
        let config = drfailover_orchestrator::Config::parse(&topo.orchestrator_config("", "", &[]))
            .map_err(|e| e.to_string())?;
        let notifier = Arc::new(
            drfailover_notify::Notifier::new(1024, 1, Instant::now()).map_err(|e| e.to_string())?,
        );
        let events: TimedEvents<drfailover_notify::Event> = Arc::default();
        let (c, e) = (clock.clone(), events.clone());
        notifier.subscribe(move |ev| {
            c.say(&format!("orchestrator: {}", ev.summary()));
            e.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push((c.ms(), ev.clone()));
        });
        let mut orch = drfailover_orchestrator::Orchestrator::new(config, notifier.clone(), 1);
        orch.start()?;
        let stop = Arc::new(AtomicBool::new(false));
        let s = stop.clone();
        let thread = std::thread::spawn(move || {
            let (_tx, rx) = crossbeam_channel::bounded(1);
            orch.run(&s, &rx);
        });
        Ok(DemoOrchestrator {
            stop,
            thread: Some(thread),
            notifier,
            events,
        })
    }

    fn at(&self, kind: EventKind) -> Option<f64> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(_, e)| e.kind == kind)
            .map(|(ms, _)| *ms)
    }

    fn new_writer(&self) -> Option<String> {
        self.events
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
            .find(|(_, e)| e.kind == EventKind::FailoverCompleted)
            .and_then(|(_, e)| e.new_writer.clone())
    }

    fn stop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
        self.notifier.close(Duration::from_secs(1));
    }
}

struct Clock(Instant);

impl Clock {
    fn ms(&self) -> f64 {
        self.0.elapsed().as_secs_f64() * 1000.0
    }

    fn say(&self, what: &str) {
        println!("[{:>9.1} ms] {what}", self.ms());
    }
}

fn fail(what: &str) -> ExitCode {
    eprintln!("drfailover-demo: {what}");
    ExitCode::from(1)
}

/// Events with the time they arrived at (ms on the demo's clock).
type TimedEvents<E> = Arc<Mutex<Vec<(f64, E)>>>;

/// Lock `m`, also after a panicking thread poisoned it (the data is still what was pushed).
fn locked<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The writer threads: each inserts unique ids through the client until stopped, recording
/// what was acknowledged (with when), what has an unknown outcome and other errors.
struct Writers {
    acked: Arc<Mutex<Vec<(u64, f64)>>>,
    unknown: Arc<Mutex<Vec<u64>>>,
    errors: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

/// What the writers did, once stopped.
struct Written {
    acked: Vec<(u64, f64)>,
    unknown: Vec<u64>,
    errors: Vec<String>,
}

impl Writers {
    fn start(client: &Arc<Client>, threads: usize, clock: &Arc<Clock>) -> Writers {
        let next_id = Arc::new(AtomicU64::new(1));
        let acked: Arc<Mutex<Vec<(u64, f64)>>> = Arc::default();
        let unknown: Arc<Mutex<Vec<u64>>> = Arc::default();
        let errors: Arc<Mutex<Vec<String>>> = Arc::default();
        let stop = Arc::new(AtomicBool::new(false));
        let threads = (0..threads)
            .map(|t| {
                let (client, next_id, acked, unknown, errors, stop, clock) = (
                    client.clone(),
                    next_id.clone(),
                    acked.clone(),
                    unknown.clone(),
                    errors.clone(),
                    stop.clone(),
                    clock.clone(),
                );
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let id = next_id.fetch_add(1, Ordering::Relaxed);
                        match client.query(&format!("INSERT INTO demo VALUES ({id}, {t})")) {
                            Ok(_) => locked(&acked).push((id, clock.ms())),
                            Err(Error::OutcomeUnknown(_)) => locked(&unknown).push(id),
                            Err(e) => {
                                locked(&errors).push(e.to_string());
                                std::thread::sleep(Duration::from_millis(10));
                            }
                        }
                    }
                })
            })
            .collect();
        Writers {
            acked,
            unknown,
            errors,
            stop,
            threads,
        }
    }

    fn acknowledged(&self) -> usize {
        locked(&self.acked).len()
    }

    fn finish(self) -> Written {
        self.stop.store(true, Ordering::SeqCst);
        for t in self.threads {
            let _ = t.join();
        }
        Written {
            acked: locked(&self.acked).clone(),
            unknown: locked(&self.unknown).clone(),
            errors: locked(&self.errors).clone(),
        }
    }
}

/// A client on `topo`'s nodes whose events are narrated and recorded (with their time).
fn connect(
    topo: &Topology,
    clock: &Arc<Clock>,
) -> Result<(Arc<Client>, TimedEvents<Event>), String> {
    let dsn = topo.dsn("probe_interval_ms=100&failover_timeout_ms=20000");
    let shown = dsn.replace(drfailover_testkit::APP_PASSWORD, "***");
    clock.say(&format!("connecting: {shown}"));
    let config = Config::from_dsn(&dsn).map_err(|e| e.to_string())?;
    let events: TimedEvents<Event> = Arc::default();
    let (c2, e2) = (clock.clone(), events.clone());
    let client = Client::builder(config)
        .on_event(move |e| {
            c2.say(&format!("event: {}", e.summary()));
            locked(&e2).push((c2.ms(), e.clone()));
        })
        .connect()
        .map_err(|e| e.to_string())?;
    client
        .wait_ready(Duration::from_secs(5))
        .and_then(|_| client.query("CREATE TABLE demo (id BIGINT PRIMARY KEY, thread INT)"))
        .map_err(|e| e.to_string())?;
    Ok((Arc::new(client), events))
}

/// Sleep `secs` (or until interrupted), redrawing the acknowledged-write count in place on a
/// terminal.
fn pause(secs: f64, writers: &Writers, clock: &Clock, interrupted: &AtomicBool) {
    let tty = std::io::IsTerminal::is_terminal(&std::io::stdout());
    let until = Instant::now() + Duration::from_secs_f64(secs);
    let mut shown = Instant::now();
    while Instant::now() < until && !interrupted.load(Ordering::SeqCst) {
        std::thread::sleep(Duration::from_millis(10));
        if tty && shown.elapsed() >= Duration::from_millis(100) {
            let n = writers.acknowledged();
            print!("\r[{:>9.1} ms] … {n} writes acknowledged\x1b[K", clock.ms());
            let _ = std::io::Write::flush(&mut std::io::stdout());
            shown = Instant::now();
        }
    }
    if tty {
        print!("\r\x1b[K");
    }
}

/// Kill the primary and, unless the orchestrator does it, promote the replica (after the
/// configured delay). Returns when the fault happened (ms on the demo's clock).
fn fault(
    topo: &mut Topology,
    args: &Args,
    by_orchestrator: bool,
    writers: &Writers,
    clock: &Clock,
    interrupted: &AtomicBool,
) -> Result<f64, String> {
    clock.say(&format!(
        "{} writes acknowledged so far. kill -9 the primary {}",
        writers.acknowledged(),
        topo.node(0).addr()
    ));
    // Taken before the signal: the client may see the connection drop before kill9 returns
    // (it also reaps the process), and nothing can happen before the kill.
    let kill_ms = clock.ms();
    topo.kill9(0)?;
    if by_orchestrator {
        clock.say("the orchestrator takes it from here (no harness promotion)");
        return Ok(kill_ms);
    }
    if args.promote_delay_ms > 0 {
        pause(
            args.promote_delay_ms as f64 / 1000.0,
            writers,
            clock,
            interrupted,
        );
    }
    clock.say(&format!(
        "promoting the replica {} (STOP SLAVE; RESET SLAVE ALL; read_only=0)",
        topo.node(1).addr()
    ));
    topo.promote(1)?;
    clock.say("promoted");
    Ok(kill_ms)
}

/// Run the demo; exit 0 when the failover happened with zero lost acknowledged writes.
pub fn run(mut args: Args) -> ExitCode {
    if args.short {
        args.before_s = 0.5;
        args.after_s = 0.5;
    }
    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = interrupted.clone();
    let _ = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst));

    let clock = Arc::new(Clock(Instant::now()));
    let replicas = if args.orchestrator { 2 } else { 1 };
    clock.say(&format!(
        "starting a MariaDB primary + {replicas} replica(s) (GTID, semi-sync AFTER_SYNC) on loopback…"
    ));
    let mut topo = match Topology::primary_replicas(replicas) {
        Ok(t) => t,
        Err(e) => return fail(&e),
    };
    clock.say(&format!(
        "ready: primary {}  replicas {} (read-only)",
        topo.node(0).addr(),
        topo.nodes()[1..]
            .iter()
            .map(|n| n.addr().to_string())
            .collect::<Vec<_>>()
            .join(" ")
    ));
    let mut orchestrator = if args.orchestrator {
        clock.say(
            "starting the drfailover orchestrator (probe every 100 ms, fall 3, heartbeats 200 ms)…",
        );
        match DemoOrchestrator::start(&topo, &clock) {
            Ok(o) => Some(o),
            Err(e) => return fail(&format!("orchestrator: {e}")),
        }
    } else {
        None
    };
    let (client, events) = match connect(&topo, &clock) {
        Ok(c) => c,
        Err(e) => return fail(&e),
    };
    clock.say(&format!(
        "{} threads writing through the library…",
        args.threads
    ));
    let writers = Writers::start(&client, args.threads, &clock);
    pause(args.before_s, &writers, &clock, &interrupted);
    let mut kill_ms = 0.0;
    if !interrupted.load(Ordering::SeqCst) {
        kill_ms = match fault(
            &mut topo,
            &args,
            orchestrator.is_some(),
            &writers,
            &clock,
            &interrupted,
        ) {
            Ok(ms) => ms,
            Err(e) => return fail(&e),
        };
        pause(args.after_s, &writers, &clock, &interrupted);
    }
    let written = writers.finish();
    if let Some(o) = orchestrator.as_mut() {
        o.stop();
    }
    if interrupted.load(Ordering::SeqCst) {
        client.close();
        drop(topo);
        println!("interrupted: servers stopped and removed");
        return ExitCode::from(130);
    }
    let new_primary = match orchestrator.as_ref().map(DemoOrchestrator::new_writer) {
        None => 1,
        Some(Some(name)) => topo
            .nodes()
            .iter()
            .position(|n| n.name() == name)
            .unwrap_or(1),
        Some(None) => return fail("the orchestrator did not fail over"),
    };
    let rows = match topo.node(new_primary).sql("SELECT id FROM app.demo") {
        Ok(r) => r,
        Err(e) => return fail(&e),
    };
    let present: HashSet<u64> = (0..rows.num_rows())
        .filter_map(|r| rows.text(r, 0).and_then(|v| v.parse().ok()))
        .collect();
    let retries = client.stats().retries;
    client.close();
    let events = locked(&events).clone();
    let ok = report(&Report {
        written: &written,
        present: &present,
        events: &events,
        orchestrator: orchestrator.as_ref(),
        kill_ms,
        retries,
        promote_delay_ms: args.promote_delay_ms,
    });
    drop(topo);
    println!("servers stopped and removed");
    if ok {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// What the summary is made of.
struct Report<'a> {
    written: &'a Written,
    present: &'a HashSet<u64>,
    events: &'a [(f64, Event)],
    orchestrator: Option<&'a DemoOrchestrator>,
    kill_ms: f64,
    retries: u64,
    promote_delay_ms: u64,
}

/// Print the failover timeline and the write counts; whether the demo succeeded (failed over,
/// nothing acknowledged lost, no other error).
fn report(r: &Report<'_>) -> bool {
    let kill_ms = r.kill_ms;
    let lost = r
        .written
        .acked
        .iter()
        .filter(|(id, _)| !r.present.contains(id))
        .count();
    // Writes acknowledged in the instant between the kill's timestamp and the signal landing
    // were the old primary's: the first write that counts is the first after the adoption.
    let adopted_ms = r
        .events
        .iter()
        .find(|(_, e)| e.kind == EventKind::FailoverCompleted)
        .map_or(kill_ms, |(ms, _)| *ms);
    let first_after = r
        .written
        .acked
        .iter()
        .map(|(_, ms)| *ms)
        .filter(|ms| *ms >= adopted_ms)
        .fold(f64::INFINITY, f64::min);
    let at = |kind: EventKind| {
        r.events
            .iter()
            .find(|(_, e)| e.kind == kind)
            .map(|(ms, _)| ms - kill_ms)
    };
    println!();
    println!("== failover timeline (ms after kill -9) ==");
    let show = |label: &str, v: Option<f64>| match v {
        Some(ms) => println!("  {label:<34} {ms:>8.1}"),
        None => println!("  {label:<34} {:>8}", "-"),
    };
    if let Some(o) = r.orchestrator {
        show(
            "orchestrator: failover started",
            o.at(EventKind::FailoverStarted).map(|ms| ms - kill_ms),
        );
        show(
            "orchestrator: new primary writable",
            o.at(EventKind::FailoverCompleted).map(|ms| ms - kill_ms),
        );
    }
    show("primary declared down", at(EventKind::EndpointDown));
    show("failover started", at(EventKind::FailoverStarted));
    show("new writer adopted", at(EventKind::FailoverCompleted));
    show(
        "first write on the new writer",
        first_after.is_finite().then_some(first_after - kill_ms),
    );
    if r.promote_delay_ms > 0 {
        println!(
            "  (the replica was promoted {} ms after the kill, on purpose)",
            r.promote_delay_ms
        );
    }
    let w = r.written;
    println!("== writes ==");
    println!("  acknowledged                       {:>8}", w.acked.len());
    println!("  acknowledged but lost              {:>8}", lost);
    println!(
        "  outcome unknown (not replayed)     {:>8}",
        w.unknown.len()
    );
    println!(
        "  rows on the new primary            {:>8}",
        r.present.len()
    );
    println!("  retries (never-sent statements)    {:>8}", r.retries);
    if let Some(first) = w.errors.first() {
        println!(
            "  other errors                       {:>8}  (first: {first})",
            w.errors.len()
        );
    }
    let failed_over = at(EventKind::FailoverCompleted).is_some() && first_after.is_finite();
    lost == 0 && failed_over && w.errors.is_empty()
}
