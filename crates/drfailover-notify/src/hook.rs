//! Command hooks: run a program for each event, like orchestrator's failover hooks.

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::Event;

/// A program run once per event, with the event's JSON on stdin and key fields in
/// environment variables: `DRFAILOVER_EVENT` (kind), `DRFAILOVER_CLIENT_ID`,
/// `DRFAILOVER_GENERATION`, `DRFAILOVER_ENDPOINT`, `DRFAILOVER_OLD_WRITER`,
/// `DRFAILOVER_NEW_WRITER`, `DRFAILOVER_REASON`, `DRFAILOVER_DURATION_US`. Run directly (no
/// shell); killed after `timeout`.
#[derive(Clone, Debug)]
pub struct CommandHook {
    /// The executable run for each event (run directly, no shell).
    pub program: PathBuf,
    /// How long one run may take before it is killed.
    pub timeout: Duration,
}

impl CommandHook {
    /// A hook running `program` with a 10 s timeout.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        CommandHook {
            program: program.into(),
            timeout: Duration::from_secs(10),
        }
    }

    /// Run the program for `event` and wait for it (up to the timeout). Blocks: call it from
    /// a worker thread (see [`crate::AsyncSink`]). Returns the exit code.
    pub fn run(&self, event: &Event) -> Result<i32, String> {
        let opt = |s: &Option<String>| s.clone().unwrap_or_default();
        let mut child = Command::new(&self.program)
            .env("DRFAILOVER_EVENT", event.kind.as_str())
            .env("DRFAILOVER_CLIENT_ID", event.client_id.to_string())
            .env("DRFAILOVER_GENERATION", event.generation.to_string())
            .env("DRFAILOVER_ENDPOINT", opt(&event.endpoint))
            .env("DRFAILOVER_OLD_WRITER", opt(&event.old_writer))
            .env("DRFAILOVER_NEW_WRITER", opt(&event.new_writer))
            .env("DRFAILOVER_REASON", &event.reason)
            .env(
                "DRFAILOVER_DURATION_US",
                event.duration_us.unwrap_or(0).to_string(),
            )
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|e| format!("hook {}: {e}", self.program.display()))?;
        if let Some(mut stdin) = child.stdin.take() {
            let _ = stdin.write_all(event.to_json().as_bytes());
            let _ = stdin.write_all(b"\n");
        }
        let started = Instant::now();
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                return Ok(status.code().unwrap_or(-1));
            }
            if started.elapsed() > self.timeout {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "hook {} killed after {:?}",
                    self.program.display(),
                    self.timeout
                ));
            }
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}
