//! `drfailover orchestrate --json` as a child process of the bench, for the faults that need
//! the orchestrator's own process killed: `kill -9` in the middle of a promotion, which a
//! second orchestrator process (running beside it, or started after it died) then finishes.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// One event line as the bench read it: when, `kind`, `reason`.
pub(crate) type Line = (Instant, String, String);

/// When to `kill -9` the orchestrator: at its `steps`-th `step_completed` event after
/// `failover_started` (1 = right after the first step of the promotion).
#[derive(Clone, Copy, Debug)]
pub(crate) struct KillMidPromotion {
    pub(crate) steps: usize,
}

/// A running `drfailover orchestrate --json --listen ADDR CONFIG`; its event lines kept.
pub(crate) struct Process {
    child: Arc<Mutex<Child>>,
    lines: Arc<Mutex<Vec<Line>>>,
    killed_at: Arc<Mutex<Option<Instant>>>,
    listen: String,
}

/// The `drfailover` binary next to the bench's own (same cargo profile).
fn binary() -> Result<PathBuf, String> {
    let exe = std::env::current_exe().map_err(|e| format!("current exe: {e}"))?;
    let path = exe.with_file_name("drfailover");
    if path.exists() {
        Ok(path)
    } else {
        Err(format!(
            "{} not found: build it first (cargo build --release -p drfailover-cli)",
            path.display()
        ))
    }
}

impl Process {
    /// Start an orchestrator on `config`; with `kill`, the thread reading its events sends it
    /// SIGKILL at that point of a promotion. Does not wait for it to lead (see
    /// [`Process::wait_status`]).
    pub(crate) fn start(config: &Path, kill: Option<KillMidPromotion>) -> Result<Process, String> {
        Process::start_with(config, kill, None)
    }

    /// [`Process::start`], and with `failpoint` set the process exits at that point of a
    /// promotion (`DRFAILOVER_FAILPOINT`, e.g. `after_detach`: as if killed there).
    pub(crate) fn start_with(
        config: &Path,
        kill: Option<KillMidPromotion>,
        failpoint: Option<&str>,
    ) -> Result<Process, String> {
        let listen = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| e.to_string())?;
            l.local_addr().map_err(|e| e.to_string())?.to_string()
        };
        let mut command = Command::new(binary()?);
        command
            .args(["orchestrate", "--json", "--listen", &listen])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        if let Some(point) = failpoint {
            command.env("DRFAILOVER_FAILPOINT", point);
        }
        let mut child = command
            .spawn()
            .map_err(|e| format!("spawn drfailover orchestrate: {e}"))?;
        let out = child.stdout.take().expect("piped stdout");
        let err = child.stderr.take().expect("piped stderr");
        let pid = nix::unistd::Pid::from_raw(child.id() as i32);
        let lines: Arc<Mutex<Vec<Line>>> = Arc::default();
        let killed_at: Arc<Mutex<Option<Instant>>> = Arc::default();
        {
            let (lines, killed_at) = (lines.clone(), killed_at.clone());
            std::thread::spawn(move || {
                let mut promoting = false;
                let mut steps = 0;
                for line in BufReader::new(out).lines().map_while(Result::ok) {
                    let at = Instant::now();
                    let Ok(v) = serde_json::from_str::<serde_json::Value>(&line) else {
                        continue;
                    };
                    let kind = v["kind"].as_str().unwrap_or_default().to_string();
                    promoting |= kind == "failover_started";
                    if promoting && kind == "step_completed" {
                        steps += 1;
                        if kill.is_some_and(|k| steps == k.steps) {
                            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGKILL);
                            *killed_at.lock().unwrap() = Some(Instant::now());
                        }
                    }
                    let reason = v["reason"].as_str().unwrap_or_default().to_string();
                    lines.lock().unwrap().push((at, kind, reason));
                }
            });
        }
        std::thread::spawn(move || {
            let verbose = std::env::var_os("DRFAILOVER_BENCH_EVENTS").is_some();
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                if verbose {
                    eprintln!("orchestrator process: {line}");
                }
            }
        });
        Ok(Process {
            child: Arc::new(Mutex::new(child)),
            lines,
            killed_at,
            listen,
        })
    }

    /// `GET /status` as JSON (`None` when it does not answer). Blocks up to 2 s.
    fn status(&self) -> Option<serde_json::Value> {
        let mut s = TcpStream::connect(&self.listen).ok()?;
        s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
        s.write_all(b"GET /status HTTP/1.0\r\nHost: bench\r\n\r\n")
            .ok()?;
        let mut text = String::new();
        s.take(1 << 20).read_to_string(&mut text).ok()?;
        let (_, body) = text.split_once("\r\n\r\n")?;
        serde_json::from_str(body).ok()
    }

    /// Wait (up to 30 s) until this process leads a healthy topology; the error names
    /// `what`, `context` and every event the process published. Blocks.
    pub(crate) fn wait_leading(&self, what: &str, context: &str) -> Result<(), String> {
        self.wait_status(what, Duration::from_secs(30), |s| {
            s["leader"] == true && s["analysis"] == "healthy"
        })
        .map_err(|e| {
            let seen: Vec<String> = self
                .lines()
                .iter()
                .map(|(_, kind, reason)| format!("{kind}: {reason}"))
                .collect();
            format!("{context}: {e}; its events: {}", seen.join(" | "))
        })
    }

    /// Wait until its `/status` satisfies `ok` (`what` names it in the error). Polls every
    /// 20 ms.
    pub(crate) fn wait_status(
        &self,
        what: &str,
        timeout: Duration,
        ok: impl Fn(&serde_json::Value) -> bool,
    ) -> Result<(), String> {
        let t = Instant::now();
        loop {
            if self.status().is_some_and(|s| ok(&s)) {
                return Ok(());
            }
            if let Some(code) = self.exited() {
                return Err(format!("the orchestrator exited ({code}) before: {what}"));
            }
            if t.elapsed() > timeout {
                return Err(format!("not within {timeout:?}: {what}"));
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Its exit status, if it exited.
    pub(crate) fn exited(&self) -> Option<String> {
        let mut child = self.child.lock().unwrap();
        child.try_wait().ok().flatten().map(|s| s.to_string())
    }

    /// When the bench killed it (mid-promotion), if it did.
    pub(crate) fn killed_at(&self) -> Option<Instant> {
        *self.killed_at.lock().unwrap()
    }

    /// When the first event of `kind` whose reason starts with `reason` was read, if any.
    pub(crate) fn first(&self, kind: &str, reason: &str) -> Option<Instant> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .find(|(_, k, r)| k == kind && r.starts_with(reason))
            .map(|(at, _, _)| *at)
    }

    /// Events of `kind` so far.
    pub(crate) fn count(&self, kind: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, k, _)| k == kind)
            .count()
    }

    /// Every event line so far (for a failure message).
    pub(crate) fn lines(&self) -> Vec<Line> {
        self.lines.lock().unwrap().clone()
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        // SIGTERM first: a clean exit gives the servers their own semi-sync timeout back.
        let mut child = self.child.lock().unwrap();
        if child.try_wait().ok().flatten().is_none() {
            let pid = nix::unistd::Pid::from_raw(child.id() as i32);
            let _ = nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM);
            let t = Instant::now();
            while child.try_wait().ok().flatten().is_none() && t.elapsed() < Duration::from_secs(10)
            {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}
