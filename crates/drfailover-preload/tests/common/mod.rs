//! Helpers for running unmodified programs under `libdrfailover-preload.so` against real
//! servers: find the built library, build the test's C program, spawn with the environment,
//! collect output lines, and check acknowledged writes on the new primary.

#![allow(dead_code)] // each test binary uses a subset.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_testkit::{eventually, Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

/// The preload library, built fresh for this test run: `cargo test` compiles a cdylib-only
/// crate for its integration tests but does not refresh `target/<profile>/` with it, so this
/// runs `cargo build -p drfailover-preload` once per test process, with the test binary's
/// profile and target directory (cargo's lock serialises it with other builds). Blocking:
/// seconds when fresh, a build otherwise.
pub fn preload_library() -> PathBuf {
    static BUILT: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    BUILT
        .get_or_init(|| {
            let profile_dir = drfailover_testkit::cprog::profile_dir();
            let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
                Some("debug") | None => "dev".to_owned(),
                Some(other) => other.to_owned(),
            };
            let target_dir = profile_dir.parent().expect("target dir").to_path_buf();
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let status = Command::new(cargo)
                .args(["build", "-p", "drfailover-preload", "--profile", &profile])
                .arg("--target-dir")
                .arg(&target_dir)
                .status()
                .expect("run cargo build -p drfailover-preload");
            assert!(status.success(), "cargo build -p drfailover-preload failed");
            let lib = profile_dir.join("libdrfailover_preload.so");
            assert!(lib.exists(), "{} is missing after the build", lib.display());
            lib
        })
        .clone()
}

/// Build `crates/drfailover-preload/tests/c/<name>.c` against the system's libmariadb (no
/// drfailover code) into `dir`.
pub fn build_c_program(name: &str, dir: &Path) -> PathBuf {
    let source = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/c")
        .join(format!("{name}.c"));
    build_c(&source, &dir.join(name), None)
}

/// Build the C file `source` into `out`, linked against libmariadb (`link: None`) or the
/// given library flags (e.g. `-lmysqlclient`, the compatibility name).
pub fn build_c(source: &Path, out: &Path, link: Option<&str>) -> PathBuf {
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "libmariadb"])
        .output()
        .expect("pkg-config is required (apt-get install pkg-config libmariadb-dev)");
    assert!(
        flags.status.success(),
        "pkg-config libmariadb failed: install libmariadb-dev"
    );
    let mut flags = String::from_utf8_lossy(&flags.stdout).to_string();
    if let Some(link) = link {
        flags = flags.replace("-lmariadb", link);
    }
    let status = Command::new(std::env::var("CC").unwrap_or_else(|_| "cc".into()))
        .args([
            "-std=c11",
            "-D_GNU_SOURCE",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-O1",
            "-pthread",
        ])
        .arg(source)
        .args(flags.split_whitespace())
        .arg("-o")
        .arg(out)
        .status()
        .expect("a C compiler is required (apt-get install gcc)");
    assert!(
        status.success(),
        "compiling {} with {link:?} failed (-lmysqlclient needs libmariadb-dev-compat)",
        source.display()
    );
    out.to_path_buf()
}

/// The environment that enables the preload library for `topo`'s nodes.
pub fn preload_env(topo: &Topology) -> Vec<(String, String)> {
    vec![
        (
            "LD_PRELOAD".into(),
            preload_library().to_string_lossy().into_owned(),
        ),
        (
            "DRFAILOVER_DSN".into(),
            topo.dsn("probe_interval_ms=100&failover_timeout_ms=20000"),
        ),
    ]
}

/// A running program; its stdout lines are collected; killed on drop.
pub struct Program {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    stderr: Arc<Mutex<String>>,
}

impl Program {
    /// Spawn `program args…` with `env` added.
    pub fn spawn(program: &Path, args: &[String], env: &[(String, String)]) -> Program {
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", program.display()));
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                sink.lock().unwrap().push((Instant::now(), line));
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = sink.lock().unwrap();
                s.push_str(&line);
                s.push('\n');
            }
        });
        Program {
            child: Some(child),
            lines,
            stderr,
        }
    }

    /// Lines so far.
    pub fn lines(&self) -> Vec<(Instant, String)> {
        self.lines.lock().unwrap().clone()
    }

    /// Lines so far starting with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter(|(_, l)| l.starts_with(prefix))
            .count()
    }

    /// Wait (polling) until `count(prefix) >= n`, or panic after `timeout` with the output.
    pub fn wait_for(&self, prefix: &str, n: usize, timeout: Duration) {
        eventually(&format!("{n} `{prefix}` lines"), timeout, || {
            match self.count(prefix) {
                have if have >= n => Ok(()),
                have => Err(format!("{have} so far; stderr:\n{}", self.stderr())),
            }
        });
    }

    /// What the program wrote on stderr.
    pub fn stderr(&self) -> String {
        self.stderr.lock().unwrap().clone()
    }

    /// Wait for the program to exit (killed after `timeout`); its status.
    pub fn wait(&mut self, timeout: Duration) -> std::process::ExitStatus {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().expect("not waited yet");
        loop {
            if let Some(status) = child.try_wait().expect("try_wait") {
                self.child = None;
                // Let the readers drain the pipes.
                std::thread::sleep(Duration::from_millis(100));
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                panic!(
                    "program did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr()
                );
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Program {
    fn drop(&mut self) {
        if let Some(child) = self.child.as_mut() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The table the test programs write into.
pub const ACK_TABLE: &str = "preload_acks";

/// Create the acknowledged-writes table on node `i` (replicated to the others).
pub fn create_ack_table(topo: &Topology, i: usize) {
    topo.node(i)
        .sql(&format!(
            "CREATE TABLE {APP_DATABASE}.{ACK_TABLE} (n BIGINT AUTO_INCREMENT PRIMARY KEY, \
             id BIGINT NOT NULL, thread INT NOT NULL, KEY (id))"
        ))
        .expect("create the table");
}

/// The arguments of `acked_writer` for node `i`.
pub fn acked_writer_args(
    topo: &Topology,
    i: usize,
    threads: u32,
    seconds: f64,
    mode: &str,
) -> Vec<String> {
    let node = topo.node(i);
    vec![
        node.ip().to_string(),
        node.port().to_string(),
        APP_USER.into(),
        APP_PASSWORD.into(),
        APP_DATABASE.into(),
        threads.to_string(),
        seconds.to_string(),
        mode.into(),
    ]
}

/// What the data check found.
#[derive(Debug, Default)]
pub struct DataCheck {
    /// Acknowledged ids.
    pub acknowledged: usize,
    /// Acknowledged ids not on the node.
    pub lost: Vec<i64>,
    /// Ids on the node more than once (a statement run twice).
    pub repeated: Vec<i64>,
    /// Rows on the node.
    pub rows: usize,
}

/// Check every `ack ID` line of `lines` against the rows on node `i`.
pub fn check_acks(topo: &Topology, i: usize, lines: &[(Instant, String)]) -> DataCheck {
    let acked: Vec<i64> = lines
        .iter()
        .filter_map(|(_, l)| l.strip_prefix("ack "))
        .map(|id| id.trim().parse().expect("ack line"))
        .collect();
    let rows = topo
        .node(i)
        .sql(&format!("SELECT id FROM {APP_DATABASE}.{ACK_TABLE}"))
        .expect("read the rows");
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for r in 0..rows.num_rows() {
        let id: i64 = rows.text(r, 0).expect("id").parse().expect("numeric id");
        *seen.entry(id).or_default() += 1;
    }
    let mut repeated: Vec<i64> = seen
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(&id, _)| id)
        .collect();
    repeated.sort_unstable();
    DataCheck {
        acknowledged: acked.len(),
        lost: acked
            .iter()
            .copied()
            .filter(|id| !seen.contains_key(id))
            .collect(),
        repeated,
        rows: rows.num_rows(),
    }
}

/// The `done ACKS FAILS` line's numbers.
pub fn done_line(lines: &[(Instant, String)]) -> (u64, u64) {
    let done = lines
        .iter()
        .rev()
        .find_map(|(_, l)| l.strip_prefix("done "))
        .expect("the program printed its done line");
    let mut parts = done
        .split_whitespace()
        .map(|n| n.parse::<u64>().expect("number"));
    (parts.next().expect("acks"), parts.next().expect("fails"))
}
