//! Reconnect storm: many clients in one process, the writer killed and restarted in place;
//! connection attempts (TCP SYNs) per 10 ms window at the restarted server.

use std::io::BufRead;
use std::net::SocketAddrV4;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use drfailover_conn::Client;
use drfailover_testkit::{NodeRole, Topology};

use crate::stats::summary;

/// Window width for the attempt histogram.
pub const WINDOW: Duration = Duration::from_millis(10);

/// What one storm run saw.
pub struct Storm {
    pub clients: usize,
    pub app_interval: Duration,
    /// Connection attempts to the restarted server per 10 ms window, from its first SYN-ACK.
    pub per_window: Vec<u64>,
    /// Connection attempts while the server was down (refused by its kernel), per second.
    pub attempts_while_down_per_s: f64,
    /// Attempts per 100 ms from the kill to the end (refused ones included).
    pub timeline: Vec<u64>,
    /// The restarted server's first SYN-ACK, after the kill.
    pub listening_after: Duration,
    /// Per client: from the server's first SYN-ACK to that client's first successful
    /// statement begun after the kill.
    pub recovered: Vec<Duration>,
    /// Clients that had not recovered when the run gave up (30 s).
    pub not_recovered: usize,
    /// The server's `Aborted_connects` at the end: logins a client gave up on half-way.
    pub aborted_connects: u64,
    /// The server's `Max_used_connections` at the end.
    pub max_used_connections: u64,
    /// Packets the capture lost (0: the counts are complete).
    pub capture_dropped: u64,
}

impl Storm {
    pub fn total(&self) -> u64 {
        self.per_window.iter().sum()
    }

    pub fn peak(&self) -> u64 {
        self.per_window.iter().copied().max().unwrap_or(0)
    }

    /// Milliseconds until `share` of all attempts had arrived (window resolution).
    pub fn ms_until(&self, share: f64) -> f64 {
        let goal = (self.total() as f64 * share).ceil() as u64;
        let mut seen = 0;
        for (i, n) in self.per_window.iter().enumerate() {
            seen += n;
            if seen >= goal {
                return ((i + 1) as u32 * WINDOW).as_secs_f64() * 1000.0;
            }
        }
        self.per_window.len() as f64 * WINDOW.as_secs_f64() * 1000.0
    }

    /// The first `n` windows, for printing.
    pub fn head(&self, n: usize) -> String {
        let shown: Vec<String> = self.per_window.iter().take(n).map(u64::to_string).collect();
        shown.join(" ")
    }

    /// Recovery p50, p99 and max (ms).
    pub fn recovery(&self) -> (f64, f64, f64) {
        summary(&self.recovered)
    }
}

/// Start `clients` clients with default settings, each with one application thread issuing
/// `SELECT 1` every `app_interval`; kill -9 the primary, keep it down for `outage`, restart it
/// in place (writable), and count what reaches it.
pub fn run(clients: usize, app_interval: Duration, outage: Duration) -> Result<Storm, String> {
    let mut topo = Topology::primary_replica()?;
    let server = SocketAddrV4::new(topo.node(0).ip(), topo.node(0).port());
    // DRFAILOVER_BENCH_STORM_OPTIONS (an investigation): DSN options for every client.
    let dsn = topo.dsn(&std::env::var("DRFAILOVER_BENCH_STORM_OPTIONS").unwrap_or_default());
    let list: Vec<Arc<Client>> = (0..clients)
        .map(|i| {
            let c = Client::connect_dsn(&dsn).map_err(|e| format!("client {i}: {e}"))?;
            c.wait_ready(Duration::from_secs(30))
                .map_err(|e| format!("client {i}: {e}"))?;
            Ok(Arc::new(c))
        })
        .collect::<Result<_, String>>()?;

    let stop = Arc::new(AtomicBool::new(false));
    let killed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
    let first_after: Arc<Vec<Mutex<Option<Instant>>>> =
        Arc::new((0..clients).map(|_| Mutex::new(None)).collect());
    let apps: Vec<_> = list
        .iter()
        .enumerate()
        .map(|(i, client)| {
            let (client, stop, killed_at, first_after) = (
                client.clone(),
                stop.clone(),
                killed_at.clone(),
                first_after.clone(),
            );
            std::thread::spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let started = Instant::now();
                    if client.query("SELECT 1").is_ok() {
                        let killed = *killed_at.lock().unwrap_or_else(|e| e.into_inner());
                        let mut first = first_after[i].lock().unwrap_or_else(|e| e.into_inner());
                        // Only statements begun after the kill tell when the client recovered.
                        if killed.is_some_and(|k| started > k) && first.is_none() {
                            *first = Some(Instant::now());
                        }
                    }
                    std::thread::sleep(app_interval);
                }
            })
        })
        .collect();
    std::thread::sleep(Duration::from_millis(500));

    let capture = SynCapture::start(server)?;
    let clock = EpochClock::now();
    topo.kill9(0)?;
    let killed = Instant::now();
    *killed_at.lock().unwrap_or_else(|e| e.into_inner()) = Some(killed);
    std::thread::sleep(outage);
    topo.restart(0, NodeRole::Primary, None)?;

    let give_up = Instant::now() + Duration::from_secs(30);
    let all_recovered = || {
        first_after
            .iter()
            .all(|f| f.lock().unwrap_or_else(|e| e.into_inner()).is_some())
    };
    while !all_recovered() && Instant::now() < give_up {
        std::thread::sleep(Duration::from_millis(50));
    }
    std::thread::sleep(Duration::from_millis(500));
    let syns = capture.stop(server)?;
    stop.store(true, Ordering::Relaxed);
    for a in apps {
        let _ = a.join();
    }
    drop(list);
    let status = |name: &str| -> u64 {
        topo.node(0)
            .sql(&format!("SHOW GLOBAL STATUS LIKE '{name}'"))
            .ok()
            .and_then(|r| r.text(0, 1).and_then(|v| v.parse().ok()))
            .unwrap_or(0)
    };

    // The first SYN-ACK after the kill: the restarted server listens.
    let killed_epoch = clock.epoch(killed);
    let first_accept = syns
        .accepts
        .iter()
        .copied()
        .find(|&t| t > killed_epoch)
        .ok_or("the capture saw no SYN-ACK from the restarted server")?;
    let up_at = clock.instant(first_accept);
    let down_s = first_accept - killed_epoch;
    let while_down = syns
        .attempts
        .iter()
        .filter(|&&t| t > killed_epoch && t < first_accept)
        .count();
    let since_kill: Vec<f64> = syns
        .attempts
        .iter()
        .filter(|&&t| t > killed_epoch)
        .map(|t| t - killed_epoch)
        .collect();
    let timeline: Vec<u64> = windows(0.0, &since_kill)
        .chunks(10)
        .map(|c| c.iter().sum())
        .collect();
    let after: Vec<f64> = syns
        .attempts
        .iter()
        .copied()
        .filter(|&t| t >= first_accept)
        .collect();
    let recovered: Vec<Duration> = first_after
        .iter()
        .filter_map(|f| *f.lock().unwrap_or_else(|e| e.into_inner()))
        .map(|t| t.saturating_duration_since(up_at))
        .collect();
    Ok(Storm {
        clients,
        app_interval,
        per_window: windows(first_accept, &after),
        timeline,
        listening_after: Duration::from_secs_f64(down_s.max(0.0)),
        attempts_while_down_per_s: while_down as f64 / down_s.max(1e-3),
        not_recovered: clients - recovered.len(),
        recovered,
        aborted_connects: status("Aborted_connects"),
        max_used_connections: status("Max_used_connections"),
        capture_dropped: syns.dropped,
    })
}

/// Converts between the capture's wall-clock timestamps and `Instant`s (one reading of each
/// clock; fine for a run of seconds).
struct EpochClock {
    instant: Instant,
    epoch: f64,
}

impl EpochClock {
    fn now() -> EpochClock {
        let epoch = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0.0, |d| d.as_secs_f64());
        EpochClock {
            instant: Instant::now(),
            epoch,
        }
    }

    fn instant(&self, epoch: f64) -> Instant {
        self.instant + Duration::from_secs_f64((epoch - self.epoch).max(0.0))
    }

    fn epoch(&self, instant: Instant) -> f64 {
        self.epoch
            + instant
                .saturating_duration_since(self.instant)
                .as_secs_f64()
    }
}

/// A packet capture of connection attempts to one server: `tcpdump` on loopback, SYNs to the
/// server and its SYN-ACKs, with kernel timestamps (exact whatever the scheduler does to this
/// process; passive, no load on the server).
struct SynCapture {
    child: std::process::Child,
    /// tcpdump's stdout (one line per packet), read as it comes so tcpdump never blocks.
    packets: std::thread::JoinHandle<Vec<String>>,
    /// tcpdump's stderr after the first line (its summary comes at exit).
    messages: std::thread::JoinHandle<Vec<String>>,
}

/// What the capture saw, in seconds since the epoch.
struct Syns {
    /// Connection attempts (SYN without ACK) to the server.
    attempts: Vec<f64>,
    /// The server's SYN-ACKs.
    accepts: Vec<f64>,
    /// Packets the kernel dropped before tcpdump read them (0 when the capture is complete).
    dropped: u64,
}

impl SynCapture {
    fn start(server: SocketAddrV4) -> Result<SynCapture, String> {
        let filter = format!(
            "tcp and host {} and port {} and tcp[tcpflags] & tcp-syn != 0",
            server.ip(),
            server.port()
        );
        let mut child = std::process::Command::new("tcpdump")
            .args([
                "-i",
                "lo",
                "-n",
                "-tt",
                "-l",
                "--immediate-mode",
                "-s",
                "96",
                "-B",
                "131072",
            ])
            .arg(filter)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .map_err(|e| format!("run tcpdump (apt-get install tcpdump): {e}"))?;
        // tcpdump says "listening on lo" once the capture runs.
        let stderr = child.stderr.take().ok_or("tcpdump stderr")?;
        let mut lines = std::io::BufReader::new(stderr).lines();
        let mut said = Vec::new();
        loop {
            match lines.next() {
                Some(Ok(l)) if l.contains("listening on") => break,
                Some(Ok(l)) => said.push(l),
                _ => return Err(format!("tcpdump did not start: {}", said.join("; "))),
            }
        }
        let messages = std::thread::spawn(move || lines.map_while(Result::ok).collect());
        let stdout = child.stdout.take().ok_or("tcpdump stdout")?;
        let packets = std::thread::spawn(move || {
            std::io::BufReader::new(stdout)
                .lines()
                .map_while(Result::ok)
                .collect()
        });
        Ok(SynCapture {
            child,
            packets,
            messages,
        })
    }

    /// Stop the capture and parse it.
    fn stop(mut self, server: SocketAddrV4) -> Result<Syns, String> {
        // SIGINT: tcpdump flushes its output and prints its drop count.
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        );
        self.child.wait().map_err(|e| format!("tcpdump: {e}"))?;
        let text = self.packets.join().unwrap_or_default();
        let to_server = format!("> {}.{}:", server.ip(), server.port());
        // "N packets dropped by kernel"
        let dropped = self
            .messages
            .join()
            .unwrap_or_default()
            .iter()
            .find_map(|l| l.strip_suffix(" packets dropped by kernel")?.parse().ok())
            .unwrap_or(0);
        let mut syns = Syns {
            attempts: Vec::new(),
            accepts: Vec::new(),
            dropped,
        };
        for line in &text {
            let Some(t) = line
                .split_whitespace()
                .next()
                .and_then(|t| t.parse::<f64>().ok())
            else {
                continue;
            };
            if line.contains("Flags [S],") && line.contains(&to_server) {
                syns.attempts.push(t);
            } else if line.contains("Flags [S.],") {
                syns.accepts.push(t);
            }
        }
        Ok(syns)
    }
}

/// Count attempts (epoch seconds) per 10 ms window from `start`.
fn windows(start: f64, attempts: &[f64]) -> Vec<u64> {
    let mut out: Vec<u64> = Vec::new();
    for t in attempts {
        let i = ((t - start).max(0.0) / WINDOW.as_secs_f64()) as usize;
        if out.len() <= i {
            out.resize(i + 1, 0);
        }
        out[i] += 1;
    }
    out
}
