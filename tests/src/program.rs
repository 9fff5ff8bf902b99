//! Unmodified libmariadb programs under test: built from C with the system's client library
//! (no drfailover code), run with an environment (e.g. `LD_PRELOAD`), their stdout lines
//! stamped on arrival, and the data check of programs that print one `ack ID` line per
//! acknowledged write (`crates/drfailover-preload/tests/c/acked_writer.c`).

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::{Topology, APP_DATABASE, APP_PASSWORD, APP_USER};

/// Build the C file `source` into `out` with `cc -std=c11 -Wall -Wextra -Werror -O2 -g`,
/// linked against libmariadb (`link: None`) or the given library flags (e.g.
/// `-lmysqlclient`, the compatibility name). Blocking: a compiler run.
pub fn build_c(source: &Path, out: &Path, link: Option<&str>) -> Result<PathBuf, String> {
    let flags = Command::new("pkg-config")
        .args(["--cflags", "--libs", "libmariadb"])
        .output()
        .map_err(|e| format!("pkg-config: {e} (apt-get install pkg-config libmariadb-dev)"))?;
    if !flags.status.success() {
        return Err("pkg-config libmariadb failed: install libmariadb-dev".into());
    }
    let mut flags = String::from_utf8_lossy(&flags.stdout).to_string();
    if let Some(link) = link {
        flags = flags.replace("-lmariadb", link);
    }
    let cc = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let output = Command::new(&cc)
        .args([
            "-std=c11",
            "-D_GNU_SOURCE",
            "-Wall",
            "-Wextra",
            "-Werror",
            "-O2",
            "-g",
            "-pthread",
        ])
        .arg(source)
        .args(flags.split_whitespace())
        .arg("-o")
        .arg(out)
        .output()
        .map_err(|e| format!("run {cc}: {e} (apt-get install gcc)"))?;
    if !output.status.success() {
        return Err(format!(
            "compiling {} with {link:?} failed (-lmysqlclient needs libmariadb-dev-compat):\n{}",
            source.display(),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(out.to_path_buf())
}

/// A running program; its stdout lines are collected with their arrival time, its stderr
/// kept; killed on drop. Two reader threads.
pub struct Program {
    child: Option<Child>,
    lines: Arc<Mutex<Vec<(Instant, String)>>>,
    stderr: Arc<Mutex<String>>,
}

impl Program {
    /// Spawn `program args…` with `env` added to this process's environment.
    pub fn spawn(
        program: &Path,
        args: &[String],
        env: &[(String, String)],
    ) -> Result<Program, String> {
        let mut child = Command::new(program)
            .args(args)
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| format!("spawn {}: {e}", program.display()))?;
        let lines = Arc::new(Mutex::new(Vec::new()));
        let sink = lines.clone();
        let stdout = child.stdout.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                lock(&sink).push((Instant::now(), line));
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let sink = stderr.clone();
        let err = child.stderr.take().expect("piped");
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                let mut s = lock(&sink);
                s.push_str(&line);
                s.push('\n');
            }
        });
        Ok(Program {
            child: Some(child),
            lines,
            stderr,
        })
    }

    /// Lines so far, with their arrival times.
    pub fn lines(&self) -> Vec<(Instant, String)> {
        lock(&self.lines).clone()
    }

    /// How many lines so far start with `prefix`.
    pub fn count(&self, prefix: &str) -> usize {
        lock(&self.lines)
            .iter()
            .filter(|(_, l)| l.starts_with(prefix))
            .count()
    }

    /// Wait (polling every 10 ms) until `count(prefix) >= n`; an error with the program's
    /// stderr after `timeout`.
    pub fn wait_for(&self, prefix: &str, n: usize, timeout: Duration) -> Result<(), String> {
        crate::wait::until(timeout, || match self.count(prefix) {
            have if have >= n => Ok(()),
            have => Err(format!(
                "fewer than {n} `{prefix}` lines within {timeout:?} (have {have}); stderr:\n{}",
                self.stderr()
            )),
        })
    }

    /// What the program wrote on stderr so far.
    pub fn stderr(&self) -> String {
        lock(&self.stderr).clone()
    }

    /// Wait for the program to exit; killed after `timeout` (an error with its stderr). After
    /// an exit the readers get 100 ms to drain the pipes.
    pub fn wait(&mut self, timeout: Duration) -> Result<ExitStatus, String> {
        let deadline = Instant::now() + timeout;
        let child = self.child.as_mut().ok_or("already waited")?;
        loop {
            if let Some(status) = child.try_wait().map_err(|e| e.to_string())? {
                self.child = None;
                std::thread::sleep(Duration::from_millis(100));
                return Ok(status);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                let _ = child.wait();
                self.child = None;
                return Err(format!(
                    "the program did not exit within {timeout:?}; stderr:\n{}",
                    self.stderr()
                ));
            }
            std::thread::sleep(Duration::from_millis(10));
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

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// The table `acked_writer` writes into.
pub const ACK_TABLE: &str = "preload_acks";

/// Create the acknowledged-writes table on node `i` (replicated to the others).
pub fn create_ack_table(topo: &Topology, i: usize) -> Result<(), String> {
    topo.node(i)
        .sql(&format!(
            "CREATE TABLE {APP_DATABASE}.{ACK_TABLE} (n BIGINT AUTO_INCREMENT PRIMARY KEY, \
             id BIGINT NOT NULL, thread INT NOT NULL, KEY (id))"
        ))
        .map(|_| ())
}

/// The arguments of `acked_writer` for node `i`: `threads` threads for `seconds`, in `mode`
/// (`auto`, `txn`, `prepared`, `fork`, …).
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

/// The ids of the `ack ID` lines.
pub fn acked_ids(lines: &[(Instant, String)]) -> Vec<i64> {
    lines
        .iter()
        .filter_map(|(_, l)| l.strip_prefix("ack ")?.trim().parse().ok())
        .collect()
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

/// Check every `ack ID` line of `lines` against the rows of [`ACK_TABLE`] on node `i`. One
/// query.
pub fn check_acks(
    topo: &Topology,
    i: usize,
    lines: &[(Instant, String)],
) -> Result<DataCheck, String> {
    let acked = acked_ids(lines);
    let rows = topo
        .node(i)
        .sql(&format!("SELECT id FROM {APP_DATABASE}.{ACK_TABLE}"))?;
    let mut seen: HashMap<i64, usize> = HashMap::new();
    for r in 0..rows.num_rows() {
        let id: i64 = rows
            .text(r, 0)
            .and_then(|t| t.parse().ok())
            .ok_or("a non-numeric id in the table")?;
        *seen.entry(id).or_default() += 1;
    }
    let mut repeated: Vec<i64> = seen
        .iter()
        .filter(|(_, &n)| n > 1)
        .map(|(&id, _)| id)
        .collect();
    repeated.sort_unstable();
    Ok(DataCheck {
        acknowledged: acked.len(),
        lost: acked
            .iter()
            .copied()
            .filter(|id| !seen.contains_key(id))
            .collect(),
        repeated,
        rows: rows.num_rows(),
    })
}

/// The numbers of the last `done ACKS FAILS` line, if any.
pub fn done_line(lines: &[(Instant, String)]) -> Option<(u64, u64)> {
    let done = lines
        .iter()
        .rev()
        .find_map(|(_, l)| l.strip_prefix("done "))?;
    let mut parts = done.split_whitespace().map(|n| n.parse::<u64>().ok());
    Some((parts.next()??, parts.next()??))
}

/// The arguments of Debian's `sysbench TEST` against node 0 of `topo` as `user`, on one
/// table of `table_size` rows, then `rest` (threads, time, `run`/`prepare`, …).
pub fn sysbench_args(
    topo: &Topology,
    user: &str,
    password: &str,
    test: &str,
    table_size: u32,
    rest: &[&str],
) -> Vec<String> {
    let node = topo.node(0);
    let mut args: Vec<String> = vec![
        test.into(),
        format!("--mysql-host={}", node.ip()),
        format!("--mysql-port={}", node.port()),
        format!("--mysql-user={user}"),
        format!("--mysql-password={password}"),
        format!("--mysql-db={APP_DATABASE}"),
        "--tables=1".into(),
        format!("--table-size={table_size}"),
    ];
    args.extend(rest.iter().map(|s| s.to_string()));
    args
}

/// The number after `label` in sysbench's summary (`ignored errors:   3      (0.30 per
/// sec.)` → 3).
pub fn sysbench_number(lines: &[(Instant, String)], label: &str) -> Option<f64> {
    lines
        .iter()
        .find_map(|(_, l)| l.trim().strip_prefix(label))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
}
