//! `drfailover orchestrate | topology | switchover | ack` as real processes against real
//! MariaDB: several orchestrators racing, one killed half-way through a promotion, the HTTP
//! endpoint, a direct switchover. Data checked after every failover.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_testkit::{eventually, Topology};

const BIN: &str = env!("CARGO_BIN_EXE_drfailover");

fn topology() -> Topology {
    Topology::primary_replicas(2).unwrap_or_else(|e| panic!("cannot start MariaDB topology: {e}"))
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A `drfailover orchestrate --json` process; its stdout lines (events) collected.
struct Daemon {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    listen: String,
}

impl Daemon {
    fn start(config: &std::path::Path, failpoint: Option<&str>) -> Daemon {
        let listen = format!("127.0.0.1:{}", free_port());
        let mut cmd = Command::new(BIN);
        cmd.args(["orchestrate", "--json", "--listen", &listen])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        if let Some(f) = failpoint {
            cmd.env("DRFAILOVER_FAILPOINT", f);
        }
        let mut child = cmd.spawn().expect("spawn drfailover orchestrate");
        let lines = Arc::new(Mutex::new(Vec::new()));
        let out = child.stdout.take().unwrap();
        let l = lines.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(out).lines().map_while(Result::ok) {
                l.lock().unwrap().push(line);
            }
        });
        Daemon {
            child,
            lines,
            listen,
        }
    }

    fn events(&self, kind: &str) -> Vec<serde_json::Value> {
        self.lines
            .lock()
            .unwrap()
            .iter()
            .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
            .filter(|e| e["kind"] == kind)
            .collect()
    }

    fn get(&self, path: &str) -> Option<String> {
        ureq::get(&format!("http://{}{path}", self.listen))
            .call()
            .ok()
            .and_then(|mut r| r.body_mut().read_to_string().ok())
    }

    fn status(&self) -> Option<serde_json::Value> {
        self.get("/status")
            .and_then(|b| serde_json::from_str(&b).ok())
    }

    fn wait_status(&self, what: &str, ok: impl Fn(&serde_json::Value) -> bool) {
        eventually(what, Duration::from_secs(30), || match self.status() {
            Some(s) if ok(&s) => Ok(()),
            other => Err(format!("status {other:?}")),
        });
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn write_config(dir: &tempfile::TempDir, text: &str) -> std::path::PathBuf {
    let path = dir.path().join("orchestrator.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn writable(topo: &Topology) -> Vec<usize> {
    (0..topo.nodes().len())
        .filter(|&i| {
            topo.node(i).is_running()
                && topo
                    .node(i)
                    .sql_value("SELECT @@read_only")
                    .ok()
                    .flatten()
                    .as_deref()
                    == Some("0")
        })
        .collect()
}

/// Rows written on the primary before the fault, all acknowledged.
fn write_rows(topo: &Topology, n: usize) {
    topo.node(0)
        .sql("CREATE TABLE IF NOT EXISTS app.t (id INT PRIMARY KEY)")
        .unwrap();
    for i in 0..n {
        topo.node(0)
            .sql(&format!("INSERT INTO app.t VALUES ({i})"))
            .unwrap();
    }
}

fn count_rows(topo: &Topology, node: usize) -> String {
    topo.node(node)
        .sql_value("SELECT COUNT(DISTINCT id) FROM app.t")
        .unwrap()
        .unwrap()
}

#[test]
fn two_orchestrators_promote_exactly_once_and_serve_status_and_metrics() {
    let mut topo = topology();
    let dir = tempfile::tempdir().unwrap();
    // Events also go to a webhook (a real HTTP server) and a command hook.
    let webhook = drfailover_testkit::http::HttpServer::start(vec![200]);
    let hook_log = dir.path().join("hook.log");
    let hook = dir.path().join("hook.sh");
    drfailover_testkit::write_script(
        &hook,
        format!(
            "#!/bin/sh\ncat >> {}\necho >> {}\n",
            hook_log.display(),
            hook_log.display()
        ),
    )
    .unwrap();
    let sinks = format!(
        "[[webhook]]\nurl = \"{}\"\n\n[[hook]]\ncommand = \"{}\"\n",
        webhook.url("/events"),
        hook.display()
    );
    let config = write_config(&dir, &topo.orchestrator_config("", &sinks, &[]));
    let a = Daemon::start(&config, None);
    a.wait_status("first orchestrator leads", |s| s["leader"] == true);
    let b = Daemon::start(&config, None);
    b.wait_status("second orchestrator sees a healthy primary", |s| {
        s["analysis"] == "healthy"
    });
    assert_eq!(b.status().unwrap()["leader"], false, "only one leader");
    write_rows(&topo, 200);
    topo.wait_replicated(0, 1).unwrap();

    topo.kill9(0).unwrap();
    a.wait_status("failover done", |s| s["failovers"] == 1);
    std::thread::sleep(Duration::from_secs(2));
    let completed = a.events("failover_completed").len() + b.events("failover_completed").len();
    assert_eq!(completed, 1, "exactly one promotion");
    let writers = writable(&topo);
    assert_eq!(writers.len(), 1, "exactly one writer: {writers:?}");
    assert_eq!(count_rows(&topo, writers[0]), "200");
    // B follows the new primary without acting.
    b.wait_status("second orchestrator sees the new primary", |s| {
        s["analysis"] == "healthy" && s["primary"] == topo.node(writers[0]).name()
    });
    let metrics = a.get("/metrics").unwrap();
    assert!(
        metrics.contains("drfailover_orchestrator_failovers_total 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("drfailover_orchestrator_leader 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains(&format!(
            "drfailover_orchestrator_node_primary{{node=\"{}\"}} 1",
            topo.node(writers[0]).name()
        )),
        "{metrics}"
    );
    // The webhook and the hook saw the promotion.
    eventually(
        "webhook and hook receive failover_completed",
        Duration::from_secs(20),
        || {
            let webhook_saw = webhook
                .received()
                .iter()
                .any(|(_, body)| body.contains("\"kind\":\"failover_completed\""));
            let hook_saw = std::fs::read_to_string(&hook_log)
                .unwrap_or_default()
                .contains("\"kind\":\"failover_completed\"");
            if webhook_saw && hook_saw {
                Ok(())
            } else {
                Err(format!("webhook {webhook_saw}, hook {hook_saw}"))
            }
        },
    );
    // `drfailover ack` through the endpoint, and `topology` from the file.
    let ack = Command::new(BIN)
        .args(["ack", "--daemon", &a.listen])
        .output()
        .unwrap();
    assert!(ack.status.success(), "{ack:?}");
    assert_eq!(String::from_utf8_lossy(&ack.stdout).trim(), "acknowledged");
    let out = Command::new(BIN)
        .args(["topology", "--json"])
        .arg(&config)
        .output()
        .unwrap();
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(status["primary"], topo.node(writers[0]).name(), "{status}");
}

#[test]
fn an_orchestrator_killed_mid_promotion_is_finished_by_the_next() {
    let mut topo = topology();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &topo.orchestrator_config("", "", &[]));
    let mut a = Daemon::start(&config, Some("after_detach"));
    a.wait_status("first orchestrator leads", |s| s["leader"] == true);
    let b = Daemon::start(&config, None);
    b.wait_status("second orchestrator sees a healthy primary", |s| {
        s["analysis"] == "healthy"
    });
    write_rows(&topo, 300);
    topo.wait_replicated(0, 1).unwrap();
    topo.wait_replicated(0, 2).unwrap();

    topo.kill9(0).unwrap();
    // A detaches the candidate and dies before making it writable.
    let status = eventually("A hits its failpoint", Duration::from_secs(30), || {
        a.child
            .try_wait()
            .unwrap()
            .ok_or_else(|| "still running".to_string())
    });
    assert_eq!(status.code(), Some(137));
    assert!(a.events("failover_completed").is_empty());
    // B takes the lock and finishes: exactly one writer, nothing lost.
    b.wait_status("B finishes the promotion", |s| s["failovers"] == 1);
    let writers = writable(&topo);
    assert_eq!(writers.len(), 1, "exactly one writer: {writers:?}");
    assert_eq!(count_rows(&topo, writers[0]), "300");
    let other = 3 - writers[0];
    topo.wait_follows(other, writers[0], Duration::from_secs(20))
        .unwrap();
    topo.wait_replicated(writers[0], other).unwrap();
    assert_eq!(count_rows(&topo, other), "300");
}

#[test]
fn switchover_from_the_command_line_moves_the_primary() {
    let topo = topology();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &topo.orchestrator_config("", "", &[]));
    write_rows(&topo, 50);
    let out = Command::new(BIN)
        .args(["switchover", "--to", topo.node(2).name(), "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(writable(&topo), vec![2]);
    topo.wait_replicated(2, 0).unwrap();
    assert_eq!(count_rows(&topo, 0), "50");
    // A switchover to an unknown node is refused with the list of nodes.
    let out = Command::new(BIN)
        .args(["switchover", "--to", "nosuchnode", "--config"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stderr).contains("no node named `nosuchnode`"));
    // A malformed configuration: exit 2, the problem named.
    std::fs::write(&config, "[orchestrator]\nfall = \"three\"\n").unwrap();
    let out = Command::new(BIN)
        .args(["orchestrate"])
        .arg(&config)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("fall"),
        "{out:?}"
    );
}

/// The old primary thaws while the other replica is still attached to it (the orchestrator
/// pauses right after making the candidate writable; no fence command): a write sent to the
/// old primary after the promotion is never acknowledged, because every replica was cut off
/// from it before the promotion, and it is fenced on sight.
#[test]
fn a_primary_thawed_before_the_replicas_are_repointed_acknowledges_nothing() {
    let mut topo = topology();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(&dir, &topo.orchestrator_config("", "", &[]));
    let daemon = Daemon::start(&config, Some("after_writable:sleep_ms=3000"));
    daemon.wait_status("leads a healthy topology", |s| {
        s["leader"] == true && s["analysis"] == "healthy"
    });
    write_rows(&topo, 100);
    topo.wait_replicated(0, 1).unwrap();
    topo.wait_replicated(0, 2).unwrap();

    // A client connected straight to the primary writes all the time.
    let direct = drfailover_testkit::DirectWriter::start(
        &topo,
        0,
        Duration::from_secs(2),
        1_000_000,
        |id| format!("INSERT INTO t VALUES ({id})"),
    );
    eventually(
        "50 direct writes",
        Duration::from_secs(20),
        || match direct.acked().len() {
            n if n >= 50 => Ok(()),
            n => Err(format!("{n} so far")),
        },
    );

    topo.freeze(0).unwrap();
    // The moment a replica is writable, thaw the old primary: the orchestrator is paused
    // before repointing, so the other replica still follows the old primary unless it was
    // cut off.
    let new = eventually("a replica is promoted", Duration::from_secs(30), || {
        [1, 2]
            .into_iter()
            .find(|&i| {
                topo.node(i)
                    .sql_value("SELECT @@read_only")
                    .ok()
                    .flatten()
                    .as_deref()
                    == Some("0")
            })
            .ok_or_else(|| "both replicas read-only".to_string())
    });
    let promoted_at = Instant::now();
    topo.thaw(0).unwrap();
    eventually(
        "the old primary is fenced",
        Duration::from_secs(30),
        || match daemon.events("fenced").is_empty() {
            false => Ok(()),
            true => Err("no fenced event".to_string()),
        },
    );
    std::thread::sleep(Duration::from_millis(500));
    let acked = direct.stop();
    let late: Vec<(u64, Duration)> = acked
        .iter()
        .filter(|(_, sent, _)| *sent >= promoted_at)
        .map(|(id, sent, at)| (*id, at.duration_since(*sent)))
        .collect();
    assert!(
        late.is_empty(),
        "the old primary acknowledged {} writes sent after the promotion, first: {:?}",
        late.len(),
        &late[..late.len().min(10)]
    );
    assert_eq!(
        topo.node(0)
            .sql_value("SELECT @@read_only")
            .unwrap()
            .as_deref(),
        Some("1"),
        "old primary fenced"
    );
    // Every write acknowledged before the freeze is on the new primary.
    let rows = topo.node(new).sql("SELECT id FROM app.t").unwrap();
    let on_new: std::collections::HashSet<u64> = (0..rows.num_rows())
        .filter_map(|r| rows.text(r, 0).and_then(|v| v.parse().ok()))
        .collect();
    let missing: Vec<u64> = acked
        .iter()
        .map(|(id, _, _)| *id)
        .chain(0..100)
        .filter(|id| !on_new.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "acknowledged writes missing on the new primary: {missing:?}"
    );
}
