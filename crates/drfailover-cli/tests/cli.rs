//! The `drfailover` command line against real servers: probe, watch, health server, Ctrl-C.

use std::process::Command;

#[test]
fn probe_rejects_a_malformed_dsn_with_exit_2() {
    let out = Command::new(env!("CARGO_BIN_EXE_drfailover"))
        .args(["probe", "mysql://u@h1:notaport/db"])
        .output()
        .expect("run drfailover probe");
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("port `notaport`"), "{stderr}");
}

mod live {
    use std::io::{BufRead, Read};
    use std::process::{Child, Command, Stdio};
    use std::time::{Duration, Instant};

    use drfailover_testkit::Topology;

    fn bin() -> Command {
        Command::new(env!("CARGO_BIN_EXE_drfailover"))
    }

    fn topology() -> Topology {
        Topology::primary_replica().unwrap_or_else(|e| panic!("cannot start MariaDB: {e}"))
    }

    /// Kills the child on drop (a failed assertion must not leave it running).
    struct Running(Child);

    impl Drop for Running {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }

    #[test]
    fn probe_reports_roles_as_table_and_json_with_exit_codes() {
        let mut topo = topology();
        let dsn = topo.dsn("");
        let out = bin().args(["probe", &dsn]).output().unwrap();
        let table = String::from_utf8_lossy(&out.stdout);
        assert_eq!(out.status.code(), Some(0), "{table}");
        assert!(
            table.contains("writer") && table.contains("replica"),
            "{table}"
        );
        assert!(!table.contains(drfailover_testkit::APP_PASSWORD));

        let out = bin().args(["probe", "--json", &dsn]).output().unwrap();
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["writer_found"], true);
        assert_eq!(v["endpoints"][0]["role"], "writer");
        assert_eq!(v["endpoints"][1]["role"], "replica");
        assert_eq!(v["endpoints"][1]["lag_seconds"], 0);

        topo.kill9(0).unwrap();
        let out = bin().args(["probe", "--json", &dsn]).output().unwrap();
        assert_eq!(out.status.code(), Some(1), "no writer left");
        let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(v["endpoints"][0]["outcome"], "refused");
    }

    #[test]
    fn watch_shows_the_failover_and_exits_cleanly() {
        let mut topo = topology();
        let dsn = topo.dsn("probe_interval_ms=50");
        let mut child = bin()
            .args(["watch", &dsn, "--duration-s", "10"])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        // Fault only once the watcher has connected (its stdout is line-buffered).
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut out = String::new();
        while !out.contains("event  connected") {
            let mut line = String::new();
            if stdout.read_line(&mut line).unwrap() == 0 {
                break; // exited: the assertions below say why
            }
            out.push_str(&line);
        }
        topo.kill9(0).unwrap();
        topo.promote(1).unwrap();
        stdout.read_to_string(&mut out).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success(), "{out}");
        let new_writer = format!("state  writer={} generation=2", topo.node(1).addr());
        assert!(out.contains("event  connected"), "{out}");
        assert!(out.contains("event  failover_completed"), "{out}");
        assert!(out.contains(&new_writer), "{out}");
        assert!(out.contains("stopped: failovers=1"), "{out}");
    }

    fn health_server(dsn: &str) -> (Running, String) {
        let port = drfailover_testkit::free_loopback_port();
        let listen = format!("127.0.0.1:{port}");
        let child = bin()
            .args([
                "health-server",
                "--listen",
                &listen,
                "--timeout-ms",
                "300",
                dsn,
            ])
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let base = format!("http://{listen}");
        drfailover_testkit::eventually("health-server listens", Duration::from_secs(10), || {
            std::net::TcpStream::connect(&listen)
                .map(drop)
                .map_err(|e| e.to_string())
        });
        (Running(child), base)
    }

    fn get(url: &str) -> (u16, serde_json::Value) {
        let mut response = drfailover_testkit::http_recorder::client(Duration::from_secs(10))
            .get(url)
            .call()
            .unwrap();
        let status = response.status().as_u16();
        let body = response.body_mut().read_to_string().unwrap();
        (
            status,
            serde_json::from_str(&body).unwrap_or(serde_json::Value::Null),
        )
    }

    #[test]
    fn health_server_answers_by_role_and_never_hangs() {
        let mut topo = topology();
        let node_dsn = |i: usize| {
            let n = topo.node(i);
            format!(
                "mysql://{}:{}@{}/{}",
                drfailover_testkit::APP_USER,
                drfailover_testkit::APP_PASSWORD,
                n.addr(),
                drfailover_testkit::APP_DATABASE
            )
        };
        let (_p, primary) = health_server(&node_dsn(0));
        let (_r, replica) = health_server(&node_dsn(1));
        assert_eq!(get(&format!("{primary}/writer")).0, 200);
        assert_eq!(get(&format!("{primary}/replica")).0, 503);
        assert_eq!(get(&format!("{replica}/writer")).0, 503);
        let (status, body) = get(&format!("{replica}/replica?max_lag=5"));
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["role"], "replica");
        let (status, body) = get(&format!("{primary}/health"));
        assert_eq!(status, 200);
        assert_eq!(body["endpoints"][0]["writable"], true);
        assert_eq!(get(&format!("{primary}/nope")).0, 404);

        topo.node(1).sql("STOP SLAVE SQL_THREAD").unwrap();
        assert_eq!(
            get(&format!("{replica}/replica?max_lag=5")).0,
            503,
            "stopped SQL thread"
        );

        topo.freeze(0).unwrap();
        let t = Instant::now();
        let (status, body) = get(&format!("{primary}/writer"));
        assert_eq!(status, 503);
        assert_eq!(body["outcome"], "timed_out");
        assert!(
            t.elapsed() < Duration::from_secs(3),
            "a frozen database hung the check: {:?}",
            t.elapsed()
        );
        topo.thaw(0).unwrap();
    }
}

mod interrupt {
    use std::io::{BufRead, BufReader};
    use std::process::{Command, Stdio};

    fn sigint(pid: u32) {
        let ok = Command::new("kill")
            .args(["-INT", &pid.to_string()])
            .status()
            .unwrap();
        assert!(ok.success());
    }

    #[test]
    fn ctrl_c_stops_watch_cleanly() {
        let topo =
            drfailover_testkit::Topology::primary_replica().unwrap_or_else(|e| panic!("{e}"));
        let mut child = Command::new(env!("CARGO_BIN_EXE_drfailover"))
            .args(["watch", &topo.dsn("")])
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let first = lines.next().unwrap().unwrap();
        assert!(
            first.contains("event") || first.contains("state"),
            "{first}"
        );
        sigint(child.id());
        let status = child.wait().unwrap();
        let rest: Vec<String> = lines.map_while(Result::ok).collect();
        assert!(status.success(), "{rest:?}");
        assert!(
            rest.last().is_some_and(|l| l.contains("stopped:")),
            "{rest:?}"
        );
    }
}

#[test]
fn demo_is_a_program_of_its_own_and_the_cli_says_where() {
    let out = Command::new(env!("CARGO_BIN_EXE_drfailover"))
        .args(["demo", "--short"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("scripts/demo"), "{stderr}");
}
