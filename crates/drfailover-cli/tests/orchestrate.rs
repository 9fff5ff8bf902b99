//! `drfailover orchestrate | topology | switchover | ack` as real processes against real
//! MariaDB: several orchestrators racing, one killed half-way through a promotion, the HTTP
//! endpoint, a direct switchover. Data checked after every failover.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use drfailover_testkit::{eventually, free_loopback_port, Topology, WriteOutcome, Writers};

const BIN: &str = env!("CARGO_BIN_EXE_drfailover");

fn topology() -> Topology {
    Topology::primary_replicas(2).unwrap_or_else(|e| panic!("cannot start MariaDB topology: {e}"))
}

/// A `drfailover orchestrate --json` process; its stdout lines (events) collected.
struct Daemon {
    child: Child,
    lines: Arc<Mutex<Vec<String>>>,
    /// Its stderr lines (diagnostics), also echoed to the test's stderr.
    diagnostics: Arc<Mutex<Vec<String>>>,
    listen: String,
}

impl Daemon {
    fn start(config: &std::path::Path, failpoint: Option<&str>) -> Daemon {
        let listen = format!("127.0.0.1:{}", free_loopback_port());
        let mut cmd = Command::new(BIN);
        cmd.args(["orchestrate", "--json", "--listen", &listen])
            .arg(config)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
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
        let diagnostics = Arc::new(Mutex::new(Vec::new()));
        let err = child.stderr.take().unwrap();
        let d = diagnostics.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(err).lines().map_while(Result::ok) {
                eprintln!("{line}");
                d.lock().unwrap().push(line);
            }
        });
        Daemon {
            child,
            lines,
            diagnostics,
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
    let webhook = drfailover_testkit::http_recorder::HttpServer::start(vec![200]);
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
    let token_file = dir.path().join("control.token");
    std::fs::write(&token_file, "tok-1234567890abcdef\n").unwrap();
    let config = write_config(
        &dir,
        &topo.orchestrator_config(
            &format!("control_token_file = \"{}\"", token_file.display()),
            &sinks,
            &[],
        ),
    );
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
        .args(["ack", "--daemon", &a.listen, "--token-file"])
        .arg(&token_file)
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

/// Send `request` as is on a new connection; the whole answer (empty when the server
/// closed without one). Blocks up to 20 s.
fn raw(listen: &str, request: &[u8]) -> String {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(listen).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    s.write_all(request).unwrap();
    let mut answer = Vec::new();
    let _ = s.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

/// Peak resident memory of process `pid` (VmHWM), in KiB.
fn peak_rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[test]
fn a_public_listen_address_without_a_token_is_refused_before_anything_starts() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        &dir,
        "[credentials]\nuser = \"orc\"\npassword = \"pw\"\n\n\
         [[node]]\nname = \"a\"\nhost = \"127.0.0.1\"\nport = 9\n\n\
         [[node]]\nname = \"b\"\nhost = \"127.0.0.2\"\nport = 9\n",
    );
    let out = Command::new(BIN)
        .args(["orchestrate", "--listen", "0.0.0.0:0"])
        .arg(&config)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("refusing to listen on 0.0.0.0:0") && stderr.contains("control_token_file"),
        "{stderr}"
    );
    // A token file that cannot be used is named, its content never shown.
    let token = dir.path().join("token");
    std::fs::write(&token, "short-tok").unwrap();
    let out = Command::new(BIN)
        .args(["ack", "--daemon", "127.0.0.1:9", "--token-file"])
        .arg(&token)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("--token-file") && !stderr.contains("short-tok"),
        "{stderr}"
    );
}

/// The control endpoint: mutating requests need the token and are never accepted
/// cross-site; `/status` stays fast while 1,000 sockets are held, slow clients dribble and
/// a 1 GiB request line is sent; odd node names give valid Prometheus text; concurrent
/// switchovers get 409 at once; switchovers count for anti-flapping; a failing hook is
/// printed and counted.
#[test]
fn the_control_endpoint_needs_its_token_and_stays_responsive_under_abuse() {
    let topo = topology();
    let dir = tempfile::tempdir().unwrap();
    let token = "tok-7f3a9c1e5b2d4f60-control";
    let token_file = dir.path().join("control.token");
    std::fs::write(&token_file, format!("{token}\n")).unwrap();
    let hook = dir.path().join("failing-hook.sh");
    drfailover_testkit::write_script(&hook, "#!/bin/sh\ncat >/dev/null\nexit 3\n").unwrap();
    let mut text = topo.orchestrator_config(
        &format!("control_token_file = \"{}\"", token_file.display()),
        &format!("[[hook]]\ncommand = \"{}\"\n", hook.display()),
        &[],
    );
    // Node names that need escaping in Prometheus labels.
    let names = ["db\"1", "db\\2", "дб3"];
    for (i, toml_name) in ["db\\\"1", "db\\\\2", "дб3"].iter().enumerate() {
        text = text.replace(
            &format!("name = \"{}\"", topo.node(i).name()),
            &format!("name = \"{toml_name}\""),
        );
    }
    let config = write_config(&dir, &text);
    let daemon = Daemon::start(&config, None);
    daemon.wait_status("leads a healthy topology", |s| {
        s["leader"] == true && s["analysis"] == "healthy" && s["primary"] == names[0]
    });
    let l = daemon.listen.clone();

    // Authentication and cross-site requests.
    let post = |extra: &str, body: &str| {
        raw(
            &l,
            format!(
                "POST /ack HTTP/1.1\r\nHost: {l}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .as_bytes(),
        )
    };
    assert!(post("", "").starts_with("HTTP/1.1 401"), "{}", post("", ""));
    let wrong = post("Authorization: Bearer tok-0000000000000000-control\r\n", "");
    assert!(wrong.starts_with("HTTP/1.1 401"), "{wrong}");
    let form = post(
        "Content-Type: application/x-www-form-urlencoded\r\n",
        &format!("token={token}&to=db%5C2"),
    );
    assert!(form.starts_with("HTTP/1.1 401"), "{form}");
    let cross = post(
        &format!("Authorization: Bearer {token}\r\nOrigin: http://evil.example\r\n"),
        "",
    );
    assert!(cross.starts_with("HTTP/1.1 403"), "{cross}");
    let ok = post(&format!("Authorization: Bearer {token}\r\n"), "");
    assert!(
        ok.starts_with("HTTP/1.1 200") && ok.contains("acknowledged"),
        "{ok}"
    );
    let bad = raw(&l, b"GET /st\xffatus HTTP/1.1\r\nHost: x\r\n\r\n");
    assert!(bad.starts_with("HTTP/1.1 400"), "{bad}");
    let out = Command::new(BIN)
        .args(["ack", "--daemon", &l])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("401"),
        "{out:?}"
    );

    // Abuse: held sockets, slow clients, a 1 GiB request line; /status stays fast.
    let pid = daemon.child.id();
    let rss_before = peak_rss_kib(pid);
    let held: Vec<std::net::TcpStream> = (0..1000)
        .map(|_| std::net::TcpStream::connect(&l).unwrap())
        .collect();
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let slow = {
        let (l, stop) = (l.clone(), stop.clone());
        std::thread::spawn(move || {
            use std::io::Write;
            let mut socks: Vec<std::net::TcpStream> = (0..50)
                .map(|_| std::net::TcpStream::connect(&l).unwrap())
                .collect();
            for s in &mut socks {
                let _ = s.write_all(b"GET /status HTTP/1.1\r\n");
            }
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                for s in &mut socks {
                    let _ = s.write_all(b"X");
                }
                std::thread::sleep(Duration::from_millis(200));
            }
        })
    };
    let huge = {
        let l = l.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            let mut s = std::net::TcpStream::connect(&l).unwrap();
            let chunk = vec![b'a'; 64 << 10];
            let mut sent: u64 = 0;
            if s.write_all(b"GET /").is_ok() {
                while sent < 1 << 30 {
                    if s.write_all(&chunk).is_err() {
                        break;
                    }
                    sent += chunk.len() as u64;
                }
            }
            sent
        })
    };
    let mut worst = Duration::ZERO;
    for _ in 0..50 {
        let t = Instant::now();
        let answer = drfailover_testkit::http_recorder::client(Duration::from_secs(20))
            .get(format!("http://{l}/status"))
            .call()
            .map(|a| a.status().as_u16());
        worst = worst.max(t.elapsed());
        assert!(matches!(answer, Ok(200)), "{answer:?}");
        std::thread::sleep(Duration::from_millis(20));
    }
    let sent = huge.join().unwrap();
    stop.store(true, std::sync::atomic::Ordering::SeqCst);
    slow.join().unwrap();
    drop(held);
    let grown = peak_rss_kib(pid).saturating_sub(rss_before);
    eprintln!(
        "under abuse: slowest /status {worst:?}; 1 GiB request line cut after {sent} bytes; \
         peak RSS grew {grown} KiB"
    );
    assert!(worst < Duration::from_secs(1), "/status took {worst:?}");
    assert!(sent < 1 << 30, "the server read a 1 GiB request line");
    assert!(grown < 64 << 10, "peak RSS grew {grown} KiB");

    // /metrics is valid exposition text for the odd names (checked by Prometheus' own
    // Python parser), and the failing hook is counted (and printed).
    eventually(
        "the failing hook is reported",
        Duration::from_secs(20),
        || {
            let diagnostics = daemon.diagnostics.lock().unwrap();
            match diagnostics.iter().any(|l| l.contains("exited with 3")) {
                true => Ok(()),
                false => Err(format!("{} diagnostic lines", diagnostics.len())),
            }
        },
    );
    let metrics_file = dir.path().join("metrics.txt");
    let metrics = eventually(
        "the failing hook is counted in /metrics",
        Duration::from_secs(20),
        || match daemon.get("/metrics") {
            Some(m) if !m.contains("sink_failures_total{sink=\"hook\"} 0") => Ok(m),
            other => Err(format!("{other:?}")),
        },
    );
    std::fs::write(&metrics_file, &metrics).unwrap();
    let parsed = Command::new("/opt/drfailover-venv/bin/python")
        .args([
            "-c",
            "import json, sys\n\
             from prometheus_client.parser import text_string_to_metric_families\n\
             out = [(s.name, s.labels, str(s.value)) for f in \
             text_string_to_metric_families(open(sys.argv[1]).read()) for s in f.samples]\n\
             print(json.dumps(out))",
        ])
        .arg(&metrics_file)
        .output()
        .expect("run the virtualenv's python (scripts/deps installs prometheus-client there)");
    assert!(
        parsed.status.success(),
        "prometheus_client rejected the text: {}\n{metrics}",
        String::from_utf8_lossy(&parsed.stderr)
    );
    let samples: Vec<(String, serde_json::Map<String, serde_json::Value>, String)> =
        serde_json::from_slice(&parsed.stdout).unwrap();
    for name in names {
        assert!(
            samples
                .iter()
                .any(|(m, labels, _)| m == "drfailover_orchestrator_node_up"
                    && labels["node"] == name),
            "no node_up sample for {name:?}: {samples:?}"
        );
    }
    assert!(
        samples.iter().any(
            |(m, labels, v)| m == "drfailover_orchestrator_sink_failures_total"
                && labels["sink"] == "hook"
                && v.parse::<f64>().is_ok_and(|v| v >= 1.0)
        ),
        "{samples:?}"
    );

    // Concurrent switchovers: while one waits for a lagging target, the next gets 409 at
    // once. Rows written before are all on the new primary.
    write_rows(&topo, 100);
    topo.node(2)
        .sql_batch(&[
            "STOP SLAVE",
            "CHANGE MASTER TO MASTER_DELAY=2",
            "START SLAVE",
        ])
        .unwrap();
    for i in 100..120 {
        topo.node(0)
            .sql(&format!("INSERT INTO app.t VALUES ({i})"))
            .unwrap();
    }
    // A switchover is refused while the topology does not look healthy (on a loaded machine a
    // probe of the primary can miss its deadline for a round): ask again until one starts.
    let start_switchover = || {
        let (l, token_file) = (l.clone(), token_file.clone());
        std::thread::spawn(move || {
            Command::new(BIN)
                .args(["switchover", "--daemon", &l, "--to", "дб3", "--token-file"])
                .arg(&token_file)
                .output()
                .unwrap()
        })
    };
    let mut first = start_switchover();
    let mut refusals = Vec::new();
    let t = Instant::now();
    while daemon.events("failover_started").is_empty() {
        if first.is_finished() {
            let out = first.join().unwrap();
            let stderr = String::from_utf8_lossy(&out.stderr).to_string();
            assert!(
                !out.status.success()
                    && (stderr.contains("not healthy") || stderr.contains("not replicating")),
                "the switchover ended without starting: {out:?}"
            );
            refusals.push(stderr);
            first = start_switchover();
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "switchover not started; refusals: {refusals:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    let asked = Instant::now();
    let second = drfailover_testkit::http_recorder::client(Duration::from_secs(20))
        .post(format!("http://{l}/switchover?to=db%5C2"))
        .header("authorization", format!("Bearer {token}"))
        .send_empty()
        .map(|mut a| (a.status().as_u16(), a.body_mut().read_to_string()));
    assert!(matches!(second, Ok((409, _))), "{second:?}");
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "{:?}",
        asked.elapsed()
    );
    let first = first.join().unwrap();
    assert!(first.status.success(), "{first:?}");
    assert_eq!(writable(&topo), vec![2]);
    assert_eq!(count_rows(&topo, 2), "120");
    // A second switchover right after is refused (anti-flapping) until acknowledged.
    let again = Command::new(BIN)
        .args([
            "switchover",
            "--daemon",
            &l,
            "--to",
            names[0],
            "--token-file",
        ])
        .arg(&token_file)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "{again:?}");
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("anti-flapping"),
        "{again:?}"
    );
    assert_eq!(writable(&topo), vec![2]);
}

/// Writer threads through a drfailover client over every node: acknowledged ids and ids
/// whose outcome is unknown (never replayed).
struct LibraryWriters {
    writers: Writers,
    client: Arc<drfailover_conn::Client>,
}

impl LibraryWriters {
    fn start(topo: &Topology, threads: usize) -> LibraryWriters {
        let dsn = topo.dsn("probe_interval_ms=50&probe_timeout_ms=200&failover_timeout_ms=60000");
        let client = Arc::new(drfailover_conn::Client::connect_dsn(&dsn).expect("client"));
        client.wait_ready(Duration::from_secs(20)).expect("writer");
        client
            .query("CREATE TABLE IF NOT EXISTS lw (id BIGINT PRIMARY KEY)")
            .expect("create table");
        let writer = client.clone();
        let writers = Writers::start(threads, move |id| {
            match writer.query(&format!("INSERT INTO lw VALUES ({id})")) {
                Ok(_) => WriteOutcome::Acknowledged,
                Err(drfailover_conn::Error::OutcomeUnknown(_)) => WriteOutcome::Unknown,
                // Refused before it ran (no writer yet): certainly not written.
                Err(_) => {
                    std::thread::sleep(Duration::from_millis(5));
                    WriteOutcome::NotSent
                }
            }
        });
        LibraryWriters { writers, client }
    }

    /// Wait until `more` further writes are acknowledged (bounded, generous).
    fn wait_progress(&self, more: usize) {
        let target = self.writers.acknowledged().all().len() + more;
        self.writers
            .wait_acknowledged(target, Duration::from_secs(60));
    }

    /// Stop; the acknowledged and the unknown-outcome ids.
    fn finish(self) -> (Vec<u64>, Vec<u64>) {
        let ledger = self.writers.stop();
        self.client.close();
        (ledger.acknowledged, ledger.unknown)
    }
}

/// The orchestrator's state file in `dir` as JSON, once it records a primary seen healthy.
fn wait_saved_primary(dir: &std::path::Path) -> serde_json::Value {
    let path = dir.join("drfailover-orchestrator.state");
    eventually(
        "the orchestrator saves the primary's facts",
        Duration::from_secs(30),
        || {
            let text = std::fs::read_to_string(&path).map_err(|e| e.to_string())?;
            let state: serde_json::Value =
                serde_json::from_str(&text).map_err(|e| e.to_string())?;
            match state["primary"]["name"].is_string() {
                true => Ok(state),
                false => Err(format!("no primary yet: {state}")),
            }
        },
    )
}

/// A configuration for `topo` in `dir` that keeps the orchestrator's state in `dir/state`:
/// (configuration path, state directory).
fn config_with_state_dir(
    topo: &Topology,
    dir: &tempfile::TempDir,
) -> (std::path::PathBuf, std::path::PathBuf) {
    let state_dir = dir.path().join("state");
    std::fs::create_dir(&state_dir).unwrap();
    let config = write_config(
        dir,
        &topo.orchestrator_config(&format!("state_dir = \"{}\"", state_dir.display()), "", &[]),
    );
    (config, state_dir)
}

/// The only orchestrator, under writers through the library, is killed (the failpoint exits
/// the process at once, as SIGKILL would) at `point` of its promotion after a kill -9 of the
/// primary; a new process with the same configuration finishes the job: one writable node,
/// the other replica following it, every acknowledged write there exactly once.
fn restarted_orchestrator_finishes_the_promotion(point: &str, step: &str) {
    let mut topo = topology();
    let dir = tempfile::tempdir().unwrap();
    let (config, state_dir) = config_with_state_dir(&topo, &dir);
    let mut first = Daemon::start(&config, Some(point));
    first.wait_status("the first orchestrator leads a healthy topology", |s| {
        s["leader"] == true && s["analysis"] == "healthy"
    });
    let writers = LibraryWriters::start(&topo, 4);
    writers.wait_progress(300);
    wait_saved_primary(&state_dir);

    topo.kill9(0).unwrap();
    let status = eventually(
        "the orchestrator dies mid-promotion",
        Duration::from_secs(60),
        || {
            first.child.try_wait().unwrap().ok_or_else(|| {
                format!(
                    "still running; its events: {:?}",
                    first.lines.lock().unwrap()
                )
            })
        },
    );
    assert_eq!(status.code(), Some(137));
    assert!(first.events("failover_completed").is_empty());
    let state: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(state_dir.join("drfailover-orchestrator.state")).unwrap(),
    )
    .unwrap();
    assert_eq!(state["promotion"]["step"], step, "{state}");
    assert_eq!(state["promotion"]["old_primary"], topo.node(0).name());

    let second = Daemon::start(&config, None);
    second.wait_status("the new orchestrator finishes the promotion", |s| {
        s["analysis"] == "healthy" && s["leader"] == true && s["primary"] != topo.node(0).name()
    });
    let resumed = second.events("step_completed");
    assert!(
        resumed.iter().any(|e| e["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("resuming:") && r.contains(&format!("step `{step}`")))),
        "no resumption event: {resumed:?}"
    );
    writers.wait_progress(300);
    let (acked, unknown) = writers.finish();

    let writers = writable(&topo);
    assert_eq!(writers.len(), 1, "exactly one writer: {writers:?}");
    let new = writers[0];
    assert_eq!(
        state["promotion"]["candidate"],
        topo.node(new).name(),
        "the predecessor's candidate"
    );
    let other = 3 - new;
    topo.wait_follows(other, new, Duration::from_secs(30))
        .unwrap();
    topo.wait_replicated(new, other).unwrap();
    // Finished, not merely followed: semi-sync protects the new primary's commits.
    eventually(
        "semi-sync is active on the new primary",
        Duration::from_secs(30),
        || {
            let status = topo.node(new).sql_value(
                "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                 WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_STATUS'",
            );
            match status {
                Ok(Some(on)) if on == "ON" => Ok(()),
                other => {
                    // What the guard and the server say, for a failure's message.
                    let facts = topo.node(new).sql(
                        "SELECT @@rpl_semi_sync_master_enabled, @@rpl_semi_sync_master_timeout, \
                         (SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS \
                          WHERE VARIABLE_NAME = 'RPL_SEMI_SYNC_MASTER_CLIENTS')",
                    );
                    let facts = facts.map(|r| {
                        (0..3)
                            .map(|c| r.text(0, c).unwrap_or("NULL").to_owned())
                            .collect::<Vec<_>>()
                    });
                    Err(format!(
                        "{other:?}; enabled, timeout ms, clients: {facts:?}; the orchestrator's lines: {:?}",
                        second.lines.lock().unwrap()
                    ))
                }
            }
        },
    );
    for node in [new, other] {
        topo.node(node)
            .assert_writes("SELECT id FROM app.lw", &acked, &unknown);
    }

    // Restarted again while the old primary is still down: it starts (the state names the
    // old primary, fenced on sight) and leads the same primary.
    let old = topo.node(0).name().to_string();
    eventually(
        "the old primary is saved as a former primary",
        Duration::from_secs(30),
        || {
            let state = wait_saved_primary(&state_dir);
            match state["former_primaries"][0] == old.as_str() {
                true => Ok(()),
                false => Err(format!("{state}")),
            }
        },
    );
    drop(second);
    let third = Daemon::start(&config, None);
    third.wait_status("a third orchestrator leads the new primary", |s| {
        s["analysis"] == "healthy" && s["leader"] == true && s["primary"] == topo.node(new).name()
    });
    assert_eq!(writable(&topo), vec![new]);
}

#[test]
fn an_orchestrator_killed_after_detaching_the_candidate_and_restarted_finishes_the_promotion() {
    restarted_orchestrator_finishes_the_promotion("after_detach", "detached");
}

#[test]
fn an_orchestrator_killed_after_making_the_candidate_writable_and_restarted_finishes_the_promotion()
{
    restarted_orchestrator_finishes_the_promotion("after_writable", "writable");
}

/// A restart after the primary died, with a state file whose facts contradict the servers
/// (a replica is said to have received transactions no replica holds): the orchestrator
/// starts (no refusal), promotes nothing, and says why.
#[test]
fn a_restart_with_saved_facts_the_servers_contradict_promotes_nothing_and_says_why() {
    let mut topo = topology();
    let dir = tempfile::tempdir().unwrap();
    let (config, state_dir) = config_with_state_dir(&topo, &dir);
    let first = Daemon::start(&config, None);
    first.wait_status("the first orchestrator leads a healthy topology", |s| {
        s["leader"] == true && s["analysis"] == "healthy"
    });
    write_rows(&topo, 50);
    topo.wait_replicated(0, 1).unwrap();
    topo.wait_replicated(0, 2).unwrap();
    let mut state = wait_saved_primary(&state_dir);
    drop(first);
    topo.kill9(0).unwrap();
    state["primary"]["replicated"] = "0-1-999999".into();
    std::fs::write(
        state_dir.join("drfailover-orchestrator.state"),
        state.to_string(),
    )
    .unwrap();

    let second = Daemon::start(&config, None);
    let blocked = eventually(
        "the gate refuses and says why",
        Duration::from_secs(30),
        || {
            second
                .events("failover_blocked")
                .into_iter()
                .find_map(|e| e["reason"].as_str().map(str::to_string))
                .ok_or_else(|| "no failover_blocked event".to_string())
        },
    );
    assert!(
        blocked.contains("had received 0-1-999999") && blocked.contains("contradicts"),
        "{blocked}"
    );
    second.wait_status("it runs, the primary dead", |s| {
        s["analysis"] == "dead_primary"
    });
    assert!(
        writable(&topo).is_empty(),
        "a node was promoted without proof"
    );
    assert!(second.events("failover_started").is_empty());
}
